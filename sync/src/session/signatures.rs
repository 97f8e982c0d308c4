//! Commit signatures travel after a pack (SIG_WANT / SIGS, ADR 0018).

use hero_store::{ObjectId, Repo};
use iroh::SecretKey;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::Result;
use crate::transfer::blocking;
use crate::wire::{Dec, Enc, Wire, kind};

/// This node's key, for signing its own commits as they are sent: the key beside the
/// repository file (none for a repository without one, e.g. in memory).
pub(super) fn own_key(repo: &Repo) -> Option<SecretKey> {
    let path = crate::identity::key_path(repo.path());
    if !path.exists() {
        return None;
    }
    crate::identity::load_or_create_key(repo.path()).ok()
}

/// The most commits a SIG_WANT may name beyond the objects the transfer listed: a receiver
/// asks for the commits new to it, which are among those listed, or (when it held them
/// already, unreferenced) a few more.
pub const MAX_SIG_WANT: usize = 16 * 1024;

/// Sender side of the signature exchange: right after the objects, SIGS_AHEAD with the
/// commits the transfer sent (`sent`) and their signatures, unasked; then the receiver's
/// SIG_WANT names the new commits those did not cover (usually none), at most `listed` (the
/// objects the transfer listed) or [`MAX_SIG_WANT`] commits, whichever is more; when it
/// names some, SIGS answers.
pub(super) async fn send_signatures<R, W>(
    wire: &mut Wire<R, W>,
    repo: &Repo,
    key: Option<&SecretKey>,
    listed: u64,
    sent: &[ObjectId],
) -> Result<()>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let key = key.cloned().or_else(|| blocking(|| own_key(repo)));
    let sigs = blocking(|| crate::commitsig::for_sending(repo, key.as_ref(), sent))?;
    let mut m = Enc::new(kind::SIGS_AHEAD);
    m.ids(sent);
    m.0.extend_from_slice(&crate::commitsig::encode_grouped(sent, &sigs));
    wire.send(&m).await?;
    wire.flush().await?;
    let body = wire.expect(kind::SIG_WANT).await?;
    let mut ids = Dec::new(&body).ids()?;
    if ids.is_empty() {
        return Ok(());
    }
    let limit = listed.max(MAX_SIG_WANT as u64);
    if ids.len() as u64 > limit {
        return Err(crate::SyncError::OverLimit {
            what: "signatures",
            asked: ids.len() as u64,
            limit,
        });
    }
    ids.sort_unstable();
    ids.dedup();
    let sigs = blocking(|| crate::commitsig::for_sending(repo, key.as_ref(), &ids))?;
    let mut m = Enc::new(kind::SIGS);
    m.0.extend_from_slice(&crate::commitsig::encode_list(&sigs));
    wire.send(&m).await?;
    wire.flush().await
}

/// Receiver side: takes the signatures sent ahead, asks for those of the commits the transfer
/// brought (those of `heads` that no ref here reaches) that they did not cover, and stores
/// the ones that verify. The new commits. When every head is already where one of this
/// side's refs points (a pull with nothing new), the history is not walked. (Present is not
/// enough: objects of a refused push stay stored, unreferenced, until gc, and must be
/// checked again when offered again.)
pub(super) async fn fetch_signatures<R, W>(
    wire: &mut Wire<R, W>,
    repo: &Repo,
    heads: &[ObjectId],
) -> Result<Vec<ObjectId>>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let body = wire.expect(kind::SIGS_AHEAD).await?;
    let mut d = Dec::new(&body);
    let sent = d.ids()?;
    let mut sigs = crate::commitsig::decode_grouped(&sent, d.rest())?;
    let covered: hero_store::IdSet = sent.into_iter().collect();
    let new = blocking(|| -> Result<Vec<ObjectId>> {
        let view = repo.view()?;
        let mut at: hero_store::IdSet = view.branches()?.into_iter().map(|(_, id)| id).collect();
        at.extend(view.tags()?.into_iter().map(|(_, v)| v.id()));
        drop(view);
        if heads.iter().all(|h| at.contains(h)) {
            return Ok(Vec::new());
        }
        crate::commitsig::new_commits(repo, heads)
    })?;
    let rest: Vec<ObjectId> = new
        .iter()
        .filter(|c| !covered.contains(c))
        .copied()
        .collect();
    let mut m = Enc::new(kind::SIG_WANT);
    m.ids(&rest);
    wire.send(&m).await?;
    wire.flush().await?;
    if !rest.is_empty() {
        let body = wire.expect(kind::SIGS).await?;
        sigs.extend(crate::commitsig::decode_list(&body)?);
    }
    let asked: hero_store::IdSet = new.iter().copied().collect();
    let sigs: Vec<_> = sigs
        .into_iter()
        .filter(|(c, _)| asked.contains(c))
        .collect();
    blocking(|| crate::commitsig::store(repo, &sigs))?;
    Ok(new)
}
