//! Whose word a configuration file is: what the daemons obey (`.hero/`) takes effect only when
//! the commit that wrote it carries an owner's authority (docs/security.md).
//!
//! Receivers already refuse a writer's change of `.hero/` ([`crate::gate::check_push`],
//! [`crate::commitsig::check`]); this is the check at the point of use, so that a
//! configuration written by a path those checks never saw (a local process running as a
//! writer's node, history from before the rule) is not obeyed either.
//!
//! The version of a path at a commit was written by the nearest commit, following parents
//! that hold the same version, whose parents all hold another one. That commit's authority:
//! - signed by an owner (a commit it made, or a vouch for it or a descendant on the way);
//! - made on this node (its `hero-peer` header names this node, or it names none and no one
//!   signed it: local code that records no maker) while this node is an owner;
//! - a merge any peer would make the same: the authority of both parents' versions;
//! - in a repository without a membership: this node's own word (nothing to check against).

use hero_store::{EntryKind, ObjectId, Repo, RepoPath};
use iroh::EndpointId;

use crate::commitsig::{self, Kind};
use crate::error::Result;
use crate::membership::{self, Role};

/// The most commits followed back before giving up (a refusal, never an endless walk).
pub const MAX_WALK: usize = 100_000;

/// Who stands behind the version of a path at a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authority {
    /// The repository has no membership: it is this node's own.
    Unenforced,
    /// The path never existed in the history followed, or was last changed by an owner.
    Owner {
        /// The commit that wrote this version (`None`: the path never existed).
        commit: Option<ObjectId>,
        /// The owner, when a signature names one (`None`: made here, by this owner node).
        by: Option<EndpointId>,
    },
    /// Written by someone who may not command the machines.
    Refused {
        /// The commit that wrote this version.
        commit: ObjectId,
        /// Its maker, when its header or a signature names one.
        by: Option<String>,
        /// Why.
        rule: String,
    },
}

impl Authority {
    /// Whether it may be obeyed.
    pub fn is_obeyed(&self) -> bool {
        !matches!(self, Authority::Refused { .. })
    }
}

fn version_at(
    view: &hero_store::View,
    c: &ObjectId,
    path: &RepoPath,
) -> Result<Option<(EntryKind, ObjectId)>> {
    Ok(view.entry_in_commit(c, path)?.map(|e| (e.kind, e.id)))
}

/// The authority behind the version of `path` at `head`, as judged by node `me`.
pub fn of_path(
    repo: &Repo,
    head: &ObjectId,
    path: &RepoPath,
    me: &EndpointId,
) -> Result<Authority> {
    if !membership::is_enforced(repo)? {
        return Ok(Authority::Unenforced);
    }
    let m = crate::current::membership_of(repo)?;
    let me_owner = m.role_of(me) == Some(Role::Owner);
    let me_text = me.to_string();
    let view = repo.view()?;
    let mut owners = commitsig::OwnerSignatures::new(repo)?;
    // Each item: a commit to follow, and whether an owner vouched for it from above.
    let mut stack = vec![(*head, false)];
    let mut seen = hero_store::IdSet::default();
    let mut first_origin: Option<(ObjectId, Option<EndpointId>)> = None;
    let mut steps = 0usize;
    while let Some((c, vouched)) = stack.pop() {
        if !seen.insert(c) {
            continue;
        }
        steps += 1;
        if steps > MAX_WALK {
            return Ok(Authority::Refused {
                commit: *head,
                by: None,
                rule: format!("its history could not be followed within {MAX_WALK} commits"),
            });
        }
        let sig = owners.of(&c)?;
        let vouched = vouched || matches!(sig, Some((Kind::Vouch, _)));
        let commit = view.commit(&c)?;
        let here = version_at(&view, &c, path)?;
        let mut same_parent = None;
        for p in &commit.parents {
            if version_at(&view, p, path)? == here {
                same_parent = Some(*p);
                break;
            }
        }
        if let Some(p) = same_parent {
            stack.push((p, vouched));
            continue;
        }
        if here.is_none() && commit.parents.is_empty() {
            // The path never existed on this line of history.
            continue;
        }
        // `c` wrote this version.
        if vouched {
            first_origin.get_or_insert((c, sig.map(|(_, by)| by)));
            continue;
        }
        if let Some((_, by)) = sig {
            first_origin.get_or_insert((c, Some(by)));
            continue;
        }
        let maker = commit
            .header(hero_store::PEER_HEADER)
            .map(|h| String::from_utf8_lossy(h).into_owned());
        let sigs = commitsig::stored(repo, &c)?;
        let signed = !sigs.is_empty();
        let made_here = match &maker {
            Some(h) => *h == me_text,
            None => !signed,
        };
        if made_here && me_owner {
            first_origin.get_or_insert((c, None));
            continue;
        }
        if maker.is_none() && crate::commitsig::is_anyones_merge(repo, &c, &commit)? {
            // A merge any peer makes the same: both sides must stand.
            for p in &commit.parents {
                stack.push((*p, false));
            }
            continue;
        }
        let signer = sigs
            .into_iter()
            .find(|s| s.verify(&c))
            .map(|s| s.signer.to_string());
        let by = signer.or(maker);
        let role = by
            .as_deref()
            .and_then(|b| b.parse::<EndpointId>().ok())
            .and_then(|id| m.role_of(&id));
        let rule = match (role, made_here) {
            (_, true) => "made on this node, which is not an owner".to_owned(),
            (Some(r), _) => format!("made by a {r}; only owners command the machines"),
            (None, _) => {
                "made by no member this node knows; only owners command the machines".to_owned()
            }
        };
        return Ok(Authority::Refused {
            commit: c,
            by,
            rule,
        });
    }
    Ok(match first_origin {
        Some((c, by)) => Authority::Owner {
            commit: Some(c),
            by,
        },
        None => Authority::Owner {
            commit: None,
            by: None,
        },
    })
}
