//! `.snapshots/`: what it lists and which names it accepts, and directory link counts.
//!
//! - Listed: every branch and tag (names without `/`), and the [`RECENT`] newest commits of
//!   the mounted branch (first parents) by short id.
//! - Accepted besides: any revision `heroctl` takes (full or abbreviated commit id, `main~2`),
//!   and `[BRANCH]@DATE`: the branch (the mounted one when BRANCH is empty) as it was at DATE,
//!   UTC, written `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM` or `YYYY-MM-DDTHH:MM:SS` (a `Z` may
//!   follow). Within the branch's reflog it is where the branch pointed at that instant (so a
//!   reset or a pull counts from when it happened here); before the first recorded move (a
//!   cloned or imported history) it is the newest commit on the branch's first-parent line
//!   committed at or before DATE.

use hero_store::{Error, ObjectId, Repo, View};

use crate::state::{Kind, State};

/// Where the number of entries of `.snapshots` is kept among the trees' subdirectory counts
/// (no tree has this id: it is not the hash of anything).
const SNAP_KEY: ObjectId = ObjectId([0xff; 32]);

/// How many of the mounted branch's newest commits `.snapshots` lists.
pub(crate) const RECENT: usize = 20;

/// The names `.snapshots` lists.
pub(crate) fn names(view: &View, branch: &str) -> Result<Vec<String>, Error> {
    let mut names: Vec<String> = Vec::new();
    names.extend(view.branches()?.into_iter().map(|b| b.0));
    names.extend(view.tags()?.into_iter().map(|t| t.0));
    if let Some(head) = view.get_ref(&hero_store::branch_ref(branch)?)? {
        let head = view.peel(head)?;
        for item in view.log(&[head], true)?.take(RECENT) {
            names.push(item?.0.short());
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// The commit a `.snapshots` name stands for.
pub(crate) fn resolve(view: &View, branch: &str, name: &str) -> Result<ObjectId, Error> {
    if let Some((b, date)) = name.rsplit_once('@')
        && let Some(t) = parse_date(date)
    {
        let b = if b.is_empty() { branch } else { b };
        return at_time(view, b, t).and_then(|c| c.ok_or_else(|| unknown(name)));
    }
    view.resolve(name)
}

fn unknown(name: &str) -> Error {
    Error::UnknownRevision(name.to_owned())
}

/// Where `branch` pointed at `t` (seconds since the epoch); `None` if it did not exist.
fn at_time(view: &View, branch: &str, t: i64) -> Result<Option<ObjectId>, Error> {
    let refname = hero_store::branch_ref(branch)?;
    let log = view.reflog(&refname)?;
    if let Some(m) = log.iter().rev().find(|m| m.time <= t) {
        return m.new.map(|v| view.peel(v)).transpose();
    }
    // Before the reflog: by commit times along the branch's first parents.
    let Some(start) = view.get_ref(&refname)? else {
        return Ok(None);
    };
    let mut cur = Some(view.peel(start)?);
    while let Some(id) = cur {
        let c = view.commit(&id)?;
        if c.committer.time <= t {
            return Ok(Some(id));
        }
        cur = c.parents.first().copied();
    }
    Ok(None)
}

/// Parses `YYYY-MM-DD[THH:MM[:SS]][Z]` (UTC) to seconds since the epoch.
fn parse_date(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let num = |p: &str, len: usize| -> Option<i64> {
        (p.len() == len && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
    };
    let mut d = date.split('-');
    let (y, m, day) = (num(d.next()?, 4)?, num(d.next()?, 2)?, num(d.next()?, 2)?);
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let (mut hh, mut mm, mut ss) = (0, 0, 0);
    if let Some(t) = time {
        let mut p = t.split(':');
        hh = num(p.next()?, 2)?;
        mm = num(p.next()?, 2)?;
        if let Some(x) = p.next() {
            ss = num(x, 2)?;
        }
        if p.next().is_some() || hh > 23 || mm > 59 || ss > 60 {
            return None;
        }
    }
    Some(days_from_civil(y, m, day) * 86400 + hh * 3600 + mm * 60 + ss)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl State {
    /// Counts the subdirectories of an unloaded directory from its stored tree (once per
    /// tree), so that its link count can be given without loading its children.
    pub(crate) fn fill_links(&mut self, repo: &Repo, ino: u64) {
        self.fill_data_len(repo, ino);
        if ino == crate::state::SNAP {
            // Counted again on every request: the refs move.
            match repo.view().and_then(|v| names(&v, &self.branch)) {
                Ok(n) => {
                    self.links
                        .insert(SNAP_KEY, u32::try_from(n.len()).unwrap_or(u32::MAX));
                }
                Err(e) => tracing::warn!(error = %e, "listing .snapshots for its link count"),
            }
            return;
        }
        let Ok(node) = self.node(ino) else { return };
        let Kind::Dir {
            tree: Some(t),
            children: None,
        } = node.kind
        else {
            return;
        };
        if self.links.contains_key(&t) {
            return;
        }
        match repo.tree(&t) {
            Ok(tree) => {
                let n = tree.entries.iter().filter(|e| is_dir_kind(e.kind)).count();
                self.links.insert(t, u32::try_from(n).unwrap_or(u32::MAX));
            }
            Err(e) => tracing::warn!(error = %e, "reading a tree for its link count"),
        }
    }

    /// A directory's link count: 2 plus its subdirectories (`.snapshots` counts in the
    /// root when the root lists it; its entries count in `.snapshots`).
    pub(crate) fn dir_nlink(&self, ino: u64) -> u32 {
        let Ok(node) = self.node(ino) else { return 2 };
        let subdirs = match &node.kind {
            Kind::Dir {
                children: Some(c), ..
            } => c
                .values()
                .filter(|c| self.node(**c).is_ok_and(|n| n.is_dir()))
                .count() as u32,
            Kind::Dir {
                tree: Some(t),
                children: None,
            } => self.links.get(t).copied().unwrap_or(0),
            Kind::SnapRoot => self.links.get(&SNAP_KEY).copied().unwrap_or(0),
            _ => 0,
        };
        let snap = u32::from(ino == crate::state::ROOT && self.show_snapshots);
        2u32.saturating_add(subdirs).saturating_add(snap)
    }
}

fn is_dir_kind(k: hero_store::EntryKind) -> bool {
    matches!(
        k,
        hero_store::EntryKind::Dir | hero_store::EntryKind::Gitlink
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2026-12-01T10:00"), Some(1_796_119_200));
        assert_eq!(parse_date("2026-12-01T10:00:05Z"), Some(1_796_119_205));
        assert_eq!(parse_date("2000-02-29"), Some(951_782_400));
        for bad in [
            "2026-13-01",
            "2026-1-01",
            "26-12-01",
            "2026-12-01T1",
            "x",
            "",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }
}
