//! The server's side of a session: who may do what, then the pack sent or taken.

use hero_store::{ObjectId, Repo};
use iroh::{EndpointId, SecretKey};
use tokio::io::{AsyncRead, AsyncWrite};

use super::handshake::{Hello, Intent, NO_DIGEST, is_empty, join};
use super::refs::{
    RefSet, integrate, parse_branches, parse_tags, put_branches, put_delta, put_tags, recall,
    remember, take_tags, welcome_form,
};
use super::report::SyncReport;
use super::signatures::{fetch_signatures, send_signatures};
use crate::access::{self, Access};
use crate::audit::{self, Decision, Entry};
use crate::error::{Result, SyncError};
use crate::gate;
use crate::membership;
use crate::transfer::{self, Ask, advertised, blocking};
use crate::wire::{Dec, Enc, VERSION, Wire, code, kind, welcome_field};

/// The server's side of one session with `peer` (whose id the transport authenticated) over
/// `wire`, without a key: invitations cannot be redeemed.
pub async fn serve<R, W>(wire: &mut Wire<R, W>, repo: &Repo, peer: &EndpointId) -> Result<()>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    serve_as(wire, repo, peer, None, None).await
}

/// The most bytes a peer that is not a member may send: one JOIN message.
pub(super) const MAX_STRANGER_MESSAGE: usize = 1024;
/// How long a new session may take to send its first message (the hello, or a stranger's
/// invitation): a connection that opens a stream and stays silent frees its slot after this.
pub const HELLO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The first message of a session, within [`HELLO_TIMEOUT`].
async fn first_message<R, W>(wire: &mut Wire<R, W>, max: usize) -> Result<(u8, Vec<u8>)>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    tokio::time::timeout(HELLO_TIMEOUT, wire.recv_small(max))
        .await
        .map_err(|_| SyncError::Silent {
            what: "hello",
            waited: HELLO_TIMEOUT,
        })?
}

/// The server's side of one session with `peer` over `wire`; `key` (this node's) lets a peer
/// that presents a valid invitation in (ADR 0018); `admitted` is called once the peer is let
/// in (the server then counts the connection among those to close if the peer is removed).
pub async fn serve_as<R, W>(
    wire: &mut Wire<R, W>,
    repo: &Repo,
    peer: &EndpointId,
    key: Option<&SecretKey>,
    admitted: Option<&(dyn Fn() + Send + Sync)>,
) -> Result<()>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    // Refuse strangers before saying anything about us; a stranger may present an
    // invitation (one small message), nothing else.
    let mut standing = blocking(|| gate::standing(repo, peer))?;
    let mut first: Option<(u8, Vec<u8>)> = None;
    if standing.access.is_none() {
        if let Some(key) = key
            && standing.membership.is_some()
        {
            let (k, body) = first_message(wire, MAX_STRANGER_MESSAGE).await?;
            if k == kind::JOIN {
                let role = join(wire, repo, peer, key, &body).await?;
                standing = blocking(|| gate::standing(repo, peer))?;
                if standing.access.is_none() {
                    standing.access = Some(gate::access_of_role(role));
                }
            } else {
                first = Some((k, body));
            }
        }
        if standing.access.is_none() {
            let why = standing.describe();
            blocking(|| {
                audit::record(
                    repo,
                    Entry::new(Some(peer), "connect", Decision::Refused, why.clone())
                        .rule("not a member"),
                )
            });
            wire.send_error(code::NOT_ALLOWED, "not allowed").await;
            return Err(SyncError::NotAllowed {
                peer: peer.to_string(),
                me: String::new(),
            });
        }
    }
    let Some(access) = standing.access else {
        return Err(SyncError::NotAllowed {
            peer: peer.to_string(),
            me: String::new(),
        });
    };
    if let Some(f) = admitted {
        f();
    }
    let (k, body) = match first {
        Some(f) => f,
        None => first_message(wire, crate::wire::MAX_FRAME).await?,
    };
    let hello = if k == kind::HELLO {
        Hello::version_of(&body).ok()
    } else {
        None
    };
    let Some(version) = hello else {
        wire.send_error(code::PROTOCOL, "expected a hello").await;
        return Err(SyncError::protocol("the first message is not a hello"));
    };
    if version != VERSION {
        wire.send_error(code::INCOMPATIBLE, &VERSION.to_string())
            .await;
        return Err(SyncError::Incompatible {
            ours: VERSION,
            theirs: version,
        });
    }
    let Hello {
        repo: their_repo,
        intent,
        empty: they_are_empty,
        only,
        digest: their_digest,
        agreed: agreed_digest,
        early,
        ..
    } = Hello::decode(&body)?;
    let ours = access::sync_repo_id(repo)?;
    let we_are_empty = is_empty(repo)?;
    if their_repo != ours && !they_are_empty {
        if intent == Intent::Push && we_are_empty {
            access::adopt_repo_id(repo, &their_repo)?;
        } else {
            wire.send_error(code::REPO_MISMATCH, &ours.to_hex()).await;
            return Err(SyncError::RepoMismatch {
                ours: ours.to_hex(),
                theirs: their_repo.to_hex(),
            });
        }
    }
    if intent == Intent::Push && access != Access::ReadWrite {
        let why = standing.describe();
        blocking(|| {
            audit::record(
                repo,
                Entry::new(Some(peer), "push", Decision::Refused, why.clone())
                    .rule("readers may not push"),
            )
        });
        wire.send_error(code::READ_ONLY, "read-only").await;
        return Err(SyncError::ReadOnly {
            peer: peer.to_string(),
            me: String::new(),
        });
    }
    let our_id = access::sync_repo_id(repo)?;
    // The refs travel whole, as a delta against the client's (when this process advertised
    // the set the client's digest names), or not at all (the digests match).
    let mut ours_now = blocking(|| RefSet::of(repo))?;
    let mut base = None;
    let mut form = if only.is_empty() {
        let digest = ours_now.digest();
        remember(&our_id, digest, &ours_now);
        if their_digest == NO_DIGEST {
            welcome_form::FULL
        } else if their_digest == digest {
            welcome_form::SAME
        } else {
            base = recall(&our_id, &their_digest);
            if base.is_some() {
                welcome_form::DELTA
            } else if agreed_digest != NO_DIGEST
                && let Some(b) = recall(&our_id, &agreed_digest)
            {
                base = Some(b);
                welcome_form::DELTA_AGREED
            } else {
                welcome_form::FULL
            }
        }
    } else {
        ours_now.branches.retain(|(n, _)| only.contains(n));
        ours_now.tags.clear();
        welcome_form::FULL
    };
    // The hello's wants are taken when they were made against exactly what is advertised:
    // the objects follow the welcome at once, and the refs are those the client expected.
    let taken = early.filter(|e| {
        ours_now.tags.is_empty()
            && e.heads.len() == ours_now.branches.len()
            && ours_now
                .branches
                .iter()
                .zip(&only)
                .zip(&e.heads)
                .all(|(((n, id), named), head)| n == named && id == head)
    });
    if taken.is_some() {
        form = welcome_form::EXPECTED;
    }
    let genesis = membership::pinned(repo)?;
    let mut fields = 0;
    if our_id != their_repo {
        fields |= welcome_field::REPO;
    }
    if genesis.is_some() {
        fields |= welcome_field::GENESIS;
    }
    if taken.is_some() {
        fields |= welcome_field::TAKEN;
    }
    let mut m = Enc::new(kind::WELCOME);
    m.u32(VERSION).u8(fields);
    if our_id != their_repo {
        m.id(&our_id);
    }
    m.u8(match access {
        Access::ReadWrite => 2,
        Access::ReadOnly => 1,
    });
    m.u8(form);
    match (form, &base) {
        (welcome_form::FULL, _) => {
            put_branches(&mut m, &ours_now.branches);
            put_tags(&mut m, &ours_now.tags);
        }
        (welcome_form::DELTA | welcome_form::DELTA_AGREED, Some(base)) => {
            put_delta(&mut m, base, &ours_now)
        }
        _ => {}
    }
    let same = form == welcome_form::SAME;
    let RefSet {
        branches: our_branches,
        tags: our_tags,
    } = ours_now;
    m.bytes(repo.default_branch()?.as_bytes());
    if let Some(g) = genesis {
        m.0.extend_from_slice(&g.0);
    }
    wire.send(&m).await?;
    if taken.is_none() {
        wire.flush().await?;
    }
    if same {
        // Both sides have the same refs: nothing to send either way.
        return Ok(());
    }
    match intent {
        Intent::Pull => {
            let wants = match taken {
                Some(e) => e.wants,
                None => wire.expect(kind::WANTS).await?,
            };
            let advertised = advertised(&our_branches, &our_tags);
            let (stats, commits) =
                transfer::send_objects(wire, repo, &wants, &advertised, None).await?;
            send_signatures(wire, repo, key, stats.candidates, &commits).await?;
            tracing::info!(
                "sync: sent {} objects ({} bytes) to {}",
                stats.objects,
                wire.bytes_out,
                peer.fmt_short()
            );
            let why = format!("{}; {} objects sent", standing.describe(), stats.objects);
            blocking(|| {
                audit::record(
                    repo,
                    Entry::new(Some(peer), "pull", Decision::Accepted, why),
                )
            });
        }
        Intent::Push => {
            let body = wire.expect(kind::PUSH).await?;
            let mut d = Dec::new(&body);
            let pushed = parse_branches(&mut d)?;
            let pushed_tags = parse_tags(&mut d)?;
            if pushed.is_empty() && pushed_tags.is_empty() {
                // The pusher found every ref here already: its result at once, nothing to
                // send or sign.
                let mut m = Enc::new(kind::PUSH_RESULT);
                m.u32(0).u32(0).u32(0);
                wire.send(&m).await?;
                return wire.flush().await;
            }
            let ask = blocking(|| Ask::of(repo, &pushed, &pushed_tags, !only.is_empty()))?;
            let stats = transfer::receive_objects(wire, repo, &ask, false, None).await?;
            // Every check before any branch moves: one failing commit refuses the whole push.
            for (name, id) in &pushed {
                if blocking(|| repo.view()?.object_type(id))?.is_none() {
                    return Err(SyncError::protocol(format!(
                        "branch {name} was pushed without its commit"
                    )));
                }
            }
            let ordinary: Vec<ObjectId> = pushed
                .iter()
                .filter(|(n, _)| !membership::is_reserved(n))
                .map(|(_, id)| *id)
                .chain(pushed_tags.iter().map(|(_, v)| v.id()))
                .collect();
            let new_commits = fetch_signatures(wire, repo, &ordinary).await?;
            let incoming = pushed
                .iter()
                .find(|(n, _)| n == membership::BRANCH)
                .map(|(_, id)| *id);
            let mut refusal = blocking(|| gate::check_push(repo, &standing, peer, &pushed))?;
            if refusal.is_none() && standing.membership.is_some() {
                refusal =
                    blocking(|| crate::commitsig::check(repo, incoming, &new_commits))?.map(|r| {
                        gate::PushRefusal {
                            branch: String::new(),
                            commit: Some(r.commit),
                            path: r.path,
                            rule: r.rule,
                        }
                    });
            }
            if let Some(r) = refusal {
                let text = r.to_string();
                blocking(|| {
                    let mut e = Entry::new(Some(peer), "push", Decision::Refused, text.clone())
                        .rule(r.rule.clone());
                    e.commit = r.commit.map(|c| c.to_hex());
                    e.path = r.path.clone();
                    audit::record(repo, e)
                });
                wire.send_error(code::PUSH_REFUSED, &text).await;
                return Err(SyncError::PushRefused {
                    peer: peer.to_string(),
                    reason: text,
                });
            }
            let reason = format!("push from {}", peer.fmt_short());
            let mut m = Enc::new(kind::PUSH_RESULT);
            m.u32(pushed.len() as u32);
            for (name, id) in &pushed {
                let u = blocking(|| integrate(repo, name, *id, &reason))?;
                m.bytes(name.as_bytes())
                    .u8(u.how.code())
                    .u32(u.conflicts as u32)
                    .id(&u.new);
            }
            let mut tag_report = SyncReport::default();
            blocking(|| take_tags(repo, &pushed_tags, &reason, &mut tag_report))?;
            m.u32(tag_report.tags_created as u32);
            m.u32(tag_report.tags_differing.len() as u32);
            for t in &tag_report.tags_differing {
                m.bytes(t.as_bytes());
            }
            wire.send(&m).await?;
            wire.flush().await?;
            tracing::info!(
                "sync: received {} objects from {}",
                stats.objects,
                peer.fmt_short()
            );
            let names: Vec<&str> = pushed.iter().map(|(n, _)| n.as_str()).collect();
            let why = format!(
                "{}; {} objects received; branches {}",
                standing.describe(),
                stats.objects,
                names.join(", ")
            );
            blocking(|| {
                audit::record(
                    repo,
                    Entry::new(Some(peer), "push", Decision::Accepted, why),
                )
            });
        }
    }
    Ok(())
}
