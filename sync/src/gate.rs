//! Who may do what on a connection (ADR 0018): the access a peer has, decided from the
//! membership (or, in a repository never upgraded, from its allow list), and the checks a
//! pushed history must pass before any branch moves.

use std::sync::Arc;

use hero_store::{IdSet, ObjectId, RefValue, Repo};
use iroh::{EndpointId, SecretKey};

use crate::access::{self, Access};
use crate::error::Result;
use crate::membership::{self, Membership, Role};

/// What a peer may do, and the membership it was decided from (`None`: the allow list).
#[derive(Debug, Clone)]
pub struct Standing {
    /// Its access; `None`: it may do nothing, not even learn branch names.
    pub access: Option<Access>,
    /// Its role when the repository lives under a membership.
    pub role: Option<Role>,
    /// The membership in force, when there is one.
    pub membership: Option<Arc<Membership>>,
}

impl Standing {
    /// Words for the audit log.
    pub fn describe(&self) -> String {
        match (&self.membership, self.role, self.access) {
            (Some(_), Some(r), _) => format!("member ({r})"),
            (Some(_), None, _) => "not a member".to_owned(),
            (None, _, Some(Access::ReadWrite)) => "on the allow list (read-write)".to_owned(),
            (None, _, Some(Access::ReadOnly)) => "on the allow list (read-only)".to_owned(),
            (None, _, None) => "not on the allow list".to_owned(),
        }
    }
}

/// The access of a role.
pub fn access_of_role(role: Role) -> Access {
    match role {
        Role::Owner | Role::Writer => Access::ReadWrite,
        Role::Reader => Access::ReadOnly,
    }
}

pub use crate::current::membership_of;

/// Decides what `peer` may do in `repo` now.
pub fn standing(repo: &Repo, peer: &EndpointId) -> Result<Standing> {
    if membership::is_enforced(repo)? {
        let m = membership_of(repo)?;
        let role = m.role_of(peer);
        Ok(Standing {
            access: role.map(access_of_role),
            role,
            membership: Some(m),
        })
    } else {
        Ok(Standing {
            access: access::access_of(repo, peer)?,
            role: None,
            membership: None,
        })
    }
}

/// Why a push was refused: the commit, the path and the rule (for the pusher and the audit
/// log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRefusal {
    /// The branch it was refused for.
    pub branch: String,
    /// The commit that broke a rule.
    pub commit: Option<ObjectId>,
    /// The path it changed, or the membership change file that was refused.
    pub path: Option<String>,
    /// The rule.
    pub rule: String,
}

impl std::fmt::Display for PushRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if !self.branch.is_empty() {
            parts.push(format!("branch {}", self.branch));
        }
        if let Some(c) = &self.commit {
            parts.push(format!("commit {}", c.short()));
        }
        write!(f, "{}", parts.join(", "))?;
        if let Some(p) = &self.path {
            write!(f, ", path {p}")?;
        }
        write!(f, ": {}", self.rule)
    }
}

/// Checks a pushed set of branches whose objects are stored, before any branch moves: reserved
/// branches other than the membership are refused; the membership branch may bring only
/// changes that pass the membership rules; every commit new here on another branch may change
/// only paths inside the pusher's scopes. The first failure refuses the whole push.
pub fn check_push(
    repo: &Repo,
    standing: &Standing,
    pusher: &EndpointId,
    pushed: &[(String, ObjectId)],
) -> Result<Option<PushRefusal>> {
    for (name, head) in pushed {
        if name == membership::BRANCH {
            let refused = membership::check_incoming(repo, *head)?;
            if let Some(r) = refused.into_iter().next() {
                return Ok(Some(PushRefusal {
                    branch: name.clone(),
                    commit: Some(*head),
                    path: Some(format!("{}/{}", membership::CHANGES_DIR, r.file)),
                    rule: format!("membership change refused: {}", r.rule),
                }));
            }
        } else if membership::is_reserved(name) {
            return Ok(Some(PushRefusal {
                branch: name.clone(),
                commit: None,
                path: None,
                rule: format!(
                    "the {} branch prefix is reserved",
                    membership::RESERVED_PREFIX
                ),
            }));
        }
    }
    let Some(m) = &standing.membership else {
        return Ok(None);
    };
    let scoped = match m.member(pusher) {
        Some(mm) if mm.role == Role::Owner => return Ok(None),
        // Writers, scoped or not: none may change the configuration directory.
        Some(mm) if mm.role == Role::Writer => mm.scopes.clone(),
        _ => {
            return Ok(Some(PushRefusal {
                branch: String::new(),
                commit: None,
                path: None,
                rule: "the pusher may not write".to_owned(),
            }));
        }
    };
    let ordinary: Vec<&(String, ObjectId)> = pushed
        .iter()
        .filter(|(n, _)| !membership::is_reserved(n))
        .collect();
    if ordinary.is_empty() {
        return Ok(None);
    }
    let view = repo.view()?;
    // What is here already: everything the local refs reach.
    let mut ours = IdSet::default();
    let mut stack: Vec<ObjectId> = view.branches()?.into_iter().map(|(_, id)| id).collect();
    for (_, v) in view.tags()? {
        if let RefValue::Commit(id) = v {
            stack.push(id);
        }
    }
    while let Some(c) = stack.pop() {
        if ours.insert(c) {
            stack.extend(view.commit(&c)?.parents);
        }
    }
    for (branch, head) in ordinary {
        let mut seen = IdSet::default();
        let mut stack = vec![*head];
        while let Some(c) = stack.pop() {
            if ours.contains(&c) || !seen.insert(c) {
                continue;
            }
            let commit = view.commit(&c)?;
            // An unscoped writer may change everything but `.hero/`: a commit that leaves it
            // as one of its parents has it needs no diff.
            if scoped.is_empty() && !may_touch_config(&view, &c, &commit.parents)? {
                stack.extend(commit.parents);
                continue;
            }
            for path in crate::commitsig::own_changes(&view, &c)? {
                if !m.may_write(pusher, &path) {
                    let rule = if hero_store::is_config_path(&path) {
                        membership::config_rule()
                    } else {
                        format!("outside the writer's scopes {scoped:?}")
                    };
                    return Ok(Some(PushRefusal {
                        branch: branch.clone(),
                        commit: Some(c),
                        path: Some(path),
                        rule,
                    }));
                }
            }
            stack.extend(commit.parents);
        }
    }
    Ok(None)
}

/// Whether `.hero/` at commit `c` may differ from every parent's: compares the directory's
/// entry only (a merge that takes files from both sides is a false positive, which costs the
/// full diff and nothing else).
fn may_touch_config(view: &hero_store::View, c: &ObjectId, parents: &[ObjectId]) -> Result<bool> {
    let dir =
        hero_store::RepoPath::parse(hero_store::CONFIG_DIR).map_err(hero_store::Error::from)?;
    let version = |id: &ObjectId| -> Result<Option<(hero_store::EntryKind, ObjectId)>> {
        Ok(view.entry_in_commit(id, &dir)?.map(|e| (e.kind, e.id)))
    };
    let here = version(c)?;
    if parents.is_empty() {
        return Ok(here.is_some());
    }
    for p in parents {
        if version(p)? == here {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Branches with their heads.
pub type Branches = Vec<(String, ObjectId)>;

/// The branches of a peer's advertisement this side takes in a pull: reserved branches other
/// than the membership are left out; the membership only when both sides trust the same
/// genesis and every change it brings passes the rules. What is left out is returned too, with
/// why.
pub fn filter_pulled(
    repo: &Repo,
    their_genesis: Option<automerge::ChangeHash>,
    branches: &[(String, ObjectId)],
) -> Result<(Branches, Vec<(String, String)>)> {
    let mut keep = Vec::new();
    let mut dropped = Vec::new();
    for (name, head) in branches {
        if name == membership::BRANCH {
            let ours = membership::pinned(repo)?;
            if ours.is_none() || ours != their_genesis {
                dropped.push((
                    name.clone(),
                    "the peer's membership starts from another genesis".to_owned(),
                ));
                continue;
            }
            if repo.view()?.object_type(head)? != Some(hero_store::ObjType::Commit) {
                dropped.push((name.clone(), "its head did not arrive".to_owned()));
                continue;
            }
            let refused = membership::check_incoming(repo, *head)?;
            if let Some(r) = refused.first() {
                dropped.push((name.clone(), r.to_string()));
                continue;
            }
        } else if membership::is_reserved(name) {
            dropped.push((name.clone(), "reserved branch".to_owned()));
            continue;
        }
        keep.push((name.clone(), *head));
    }
    Ok((keep, dropped))
}

/// Puts a repository under membership on first use ([`membership::ensure`]) and, when it
/// upgraded one, vouches as its first owner for every branch head and tagged commit already
/// there: the history made before membership stays acceptable to every peer (ADR 0018).
pub fn ensure_membership(
    repo: &Repo,
    key: &SecretKey,
    name: &str,
) -> Result<Option<membership::Upgrade>> {
    let up = membership::ensure(repo, key, name, crate::audit::now_ms())?;
    if up.is_some() {
        vouch_everything(repo, key)?;
    }
    Ok(up)
}

/// Vouches, as owner `key`, for every branch head (hero's own aside) and tagged commit.
pub fn vouch_everything(repo: &Repo, key: &SecretKey) -> Result<usize> {
    let view = repo.view()?;
    let mut heads: Vec<ObjectId> = view
        .branches()?
        .into_iter()
        .filter(|(n, _)| !membership::is_reserved(n))
        .map(|(_, id)| id)
        .collect();
    for (_, v) in view.tags()? {
        if let RefValue::Commit(id) = v {
            heads.push(id);
        }
    }
    drop(view);
    crate::commitsig::vouch(repo, key, &heads)
}

/// After a git import by `key`'s node: an owner vouches for every head (as at an upgrade); a
/// writer signs every commit no member signed yet as its own, so its scopes bound what it
/// imported (ADR 0018). What it signed.
pub fn vouch_import(repo: &Repo, key: &SecretKey) -> Result<usize> {
    if !membership::is_enforced(repo)? {
        return Ok(0);
    }
    let m = membership_of(repo)?;
    match m.role_of(&key.public()) {
        Some(Role::Owner) => vouch_everything(repo, key),
        Some(Role::Writer) => {
            let view = repo.view()?;
            let mut stack: Vec<ObjectId> = view
                .branches()?
                .into_iter()
                .filter(|(n, _)| !membership::is_reserved(n))
                .map(|(_, id)| id)
                .collect();
            let mut seen = IdSet::default();
            let mut todo = Vec::new();
            while let Some(c) = stack.pop() {
                if !seen.insert(c) {
                    continue;
                }
                stack.extend(view.commit(&c)?.parents);
                if crate::commitsig::stored(repo, &c)?.is_empty() {
                    todo.push(c);
                }
            }
            drop(view);
            let heads = m.heads().to_vec();
            let sigs: Vec<_> = todo
                .iter()
                .map(|c| {
                    (
                        *c,
                        crate::commitsig::CommitSig::sign(
                            key,
                            crate::commitsig::Kind::Made,
                            c,
                            &heads,
                        ),
                    )
                })
                .collect();
            crate::commitsig::store(repo, &sigs)
        }
        _ => Ok(0),
    }
}
