//! Branch and tag lists as they travel, and the branch and tag moves a session ends with.

use hero_store::{ObjectId, RefValue, Repo};

use super::report::{BranchUpdate, SyncReport, UpdateKind};
use crate::error::{Result, SyncError};
use crate::wire::{Dec, Enc};

/// Most branches a hello may name.
pub(super) const MAX_NAMED: usize = 4096;

/// Moves `branch` to include `theirs`: create, fast-forward, or merge (deterministically), with
/// a compare-and-swap that retries if a local writer moved the branch meanwhile.
pub fn integrate(
    repo: &Repo,
    branch: &str,
    theirs: ObjectId,
    reason: &str,
) -> Result<BranchUpdate> {
    let mut tries = 0;
    loop {
        tries += 1;
        let local = repo.branch_head(branch)?;
        let (new, how, conflicts) = match local {
            None => (theirs, UpdateKind::Created, 0),
            Some(l) if l == theirs => (l, UpdateKind::UpToDate, 0),
            Some(l) => {
                let out = hero_store::merge::merge(repo, l, theirs).map_err(|source| {
                    SyncError::Merge {
                        branch: branch.to_owned(),
                        source,
                    }
                })?;
                let how = match out.kind {
                    hero_store::merge::MergeKind::UpToDate => UpdateKind::UpToDate,
                    hero_store::merge::MergeKind::FastForward => UpdateKind::FastForward,
                    hero_store::merge::MergeKind::Merged => UpdateKind::Merged,
                };
                (out.commit, how, out.conflicts.len())
            }
        };
        let update = BranchUpdate {
            branch: branch.to_owned(),
            old: local,
            new,
            how,
            conflicts,
        };
        if Some(new) == local {
            return Ok(BranchUpdate {
                how: UpdateKind::UpToDate,
                ..update
            });
        }
        // The membership branch is hero's own: the store's ordinary API refuses it, and the
        // session's checks (gate.rs) decided before that it may move.
        let moved = if branch == crate::membership::BRANCH {
            repo.update_branch_reserved(branch, local, Some(new), reason)
        } else {
            repo.update_branch(branch, local, Some(new), reason)
        };
        match moved {
            Ok(()) => return Ok(update),
            Err(hero_store::Error::RefMoved { .. }) if tries < 5 => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Creates a tag the other side has; a tag that exists here with another target is left alone
/// (tags do not move) and reported.
pub fn integrate_tag(repo: &Repo, name: &str, value: RefValue, reason: &str) -> Result<TagOutcome> {
    let refname = hero_store::tag_ref(name)?;
    match repo.view()?.get_ref(&refname)? {
        Some(v) if v == value => Ok(TagOutcome::Same),
        Some(_) => Ok(TagOutcome::Differs),
        None => match repo.cas_ref(&refname, None, Some(value), reason) {
            Ok(()) => Ok(TagOutcome::Created),
            Err(hero_store::Error::RefMoved { .. }) => Ok(TagOutcome::Differs),
            Err(e) => Err(e.into()),
        },
    }
}

/// What [`integrate_tag`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagOutcome {
    /// The tag was made here.
    Created,
    /// It was already here, the same.
    Same,
    /// It is here with another target; left alone.
    Differs,
}

pub(super) fn put_tags(m: &mut Enc, tags: &[(String, RefValue)]) {
    m.u32(tags.len() as u32);
    for (n, v) in tags {
        m.bytes(n.as_bytes());
        match v {
            RefValue::Commit(id) => m.u8(1).id(id),
            RefValue::Tag(id) => m.u8(2).id(id),
        };
    }
}

pub(super) fn parse_tags(d: &mut Dec<'_>) -> Result<Vec<(String, RefValue)>> {
    let n = d.u32()? as usize;
    if n > 1_000_000 {
        return Err(SyncError::protocol("too many tags"));
    }
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let name = d.string()?;
        hero_store::check_ref_name(&name)
            .map_err(|e| SyncError::protocol(format!("bad tag name {name:?}: {e}")))?;
        let v = match d.u8()? {
            1 => RefValue::Commit(d.id()?),
            2 => RefValue::Tag(d.id()?),
            k => return Err(SyncError::protocol(format!("unknown tag kind {k}"))),
        };
        out.push((name, v));
    }
    Ok(out)
}

/// Creates, in one transaction, the branches and tags of the peer that do not exist here and
/// whose objects are here (a clone of a repository with many refs is one commit, not one per
/// ref). Returns the names of the branches and tags made; none when a ref appeared meanwhile
/// (the per-ref path deals with it).
pub(super) fn create_missing_refs(
    repo: &Repo,
    branches: &[(String, ObjectId)],
    tags: &[(String, RefValue)],
    reason: &str,
) -> Result<(Vec<String>, Vec<String>)> {
    let mut moves: Vec<(String, RefValue)> = Vec::new();
    let (mut new_branches, mut new_tags) = (Vec::new(), Vec::new());
    {
        let view = repo.view()?;
        for (name, id) in branches {
            let refname = hero_store::branch_ref(name)?;
            if view.get_ref(&refname)?.is_none()
                && view.object_type(id)? == Some(hero_store::ObjType::Commit)
            {
                moves.push((refname, RefValue::Commit(*id)));
                new_branches.push(name.clone());
            }
        }
        for (name, v) in tags {
            let refname = hero_store::tag_ref(name)?;
            if view.get_ref(&refname)?.is_none() && view.object_type(&v.id())?.is_some() {
                moves.push((refname, *v));
                new_tags.push(name.clone());
            }
        }
    }
    if moves.is_empty() {
        return Ok((new_branches, new_tags));
    }
    let made = repo.batch(|b| {
        for (refname, v) in &moves {
            b.cas_ref(refname, None, Some(*v), reason)?;
        }
        Ok(())
    });
    match made {
        Ok(()) => Ok((new_branches, new_tags)),
        Err(hero_store::Error::RefMoved { .. }) => Ok((Vec::new(), Vec::new())),
        Err(e) => Err(e.into()),
    }
}

/// Creates the tags of `tags` whose objects are here; counts them into `report`.
pub(super) fn take_tags(
    repo: &Repo,
    tags: &[(String, RefValue)],
    reason: &str,
    report: &mut SyncReport,
) -> Result<()> {
    for (name, v) in tags {
        if repo.view()?.object_type(&v.id())?.is_none() {
            tracing::warn!("sync: tag {name} arrived without its object; skipped");
            continue;
        }
        match integrate_tag(repo, name, *v, reason)? {
            TagOutcome::Created => report.tags_created += 1,
            TagOutcome::Same => {}
            TagOutcome::Differs => report.tags_differing.push(name.clone()),
        }
    }
    Ok(())
}

pub(super) fn parse_branches(d: &mut Dec<'_>) -> Result<Vec<(String, ObjectId)>> {
    let n = d.u32()? as usize;
    if n > 1_000_000 {
        return Err(SyncError::protocol("too many branches"));
    }
    let mut out = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let name = d.string()?;
        hero_store::check_ref_name(&name)
            .map_err(|e| SyncError::protocol(format!("bad branch name {name:?}: {e}")))?;
        out.push((name, d.id()?));
    }
    Ok(out)
}

pub(super) fn put_branches(m: &mut Enc, branches: &[(String, ObjectId)]) {
    m.u32(branches.len() as u32);
    for (n, id) in branches {
        m.bytes(n.as_bytes()).id(id);
    }
}
