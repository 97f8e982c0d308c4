//! Revisions by date: `main@2026-12-01`, where a branch was at an instant.

use crate::error::{Error, Result};
use crate::id::ObjectId;
use crate::repo::View;

impl View {
    /// Resolves any revision [`View::resolve`] takes, and `[BRANCH]@DATE`: the branch
    /// (`default_branch` when BRANCH is empty) as it was at DATE, UTC, written `YYYY-MM-DD`,
    /// `YYYY-MM-DDTHH:MM` or `YYYY-MM-DDTHH:MM:SS` (a `Z` may follow). Within the branch's
    /// reflog it is where the branch pointed at that instant (so a reset or a pull counts from
    /// when it happened here); before the first recorded move (a cloned or imported history)
    /// it is the newest commit on the branch's first-parent line committed at or before DATE.
    pub fn resolve_dated(&self, rev: &str, default_branch: &str) -> Result<ObjectId> {
        if let Some((b, date)) = rev.rsplit_once('@')
            && let Some(t) = parse_utc_date(date)
        {
            let b = if b.is_empty() { default_branch } else { b };
            return at_time(self, b, t).and_then(|c| c.ok_or_else(|| unknown(rev)));
        }
        self.resolve(rev)
    }
}

fn unknown(name: &str) -> Error {
    Error::UnknownRevision(name.to_owned())
}

/// Where `branch` pointed at `t` (seconds since the epoch); `None` if it did not exist.
fn at_time(view: &View, branch: &str, t: i64) -> Result<Option<ObjectId>> {
    let refname = crate::refs::branch_ref(branch)?;
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
pub fn parse_utc_date(s: &str) -> Option<i64> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_utc_date("1970-01-01"), Some(0));
        assert_eq!(parse_utc_date("2026-12-01T10:00"), Some(1_796_119_200));
        assert_eq!(parse_utc_date("2026-12-01T10:00:05Z"), Some(1_796_119_205));
        assert_eq!(parse_utc_date("2000-02-29"), Some(951_782_400));
        for bad in [
            "2026-13-01",
            "2026-1-01",
            "26-12-01",
            "2026-12-01T1",
            "x",
            "",
        ] {
            assert_eq!(parse_utc_date(bad), None, "{bad}");
        }
    }
}
