//! The sender's side of a transfer.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use hero_store::{ObjType, ObjectId, Repo};
use tokio::io::{AsyncRead, AsyncWrite};

use super::base::*;
use super::pack::*;
use super::plan::*;
use crate::error::{Result, SyncError};
use crate::wire::{Dec, Enc, INVENTORY_BATCH, Wire, kind, pack_start, type_code, wants_flag};

/// The sender's side: answers a WANTS message already received. The counts, and the commits
/// sent (in sending order).
pub(crate) async fn send_objects<R, W>(
    wire: &mut Wire<R, W>,
    repo: &Repo,
    wants_body: &[u8],
    advertised: &[ObjectId],
    progress: Option<&ProgressFn>,
) -> Result<(TransferStats, Vec<ObjectId>)>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let mut d = Dec::new(wants_body);
    let wants = d.ids()?;
    let haves = d.ids()?;
    let flags = d.u8()?;
    if haves.len() > MAX_HAVES * 2 {
        return Err(SyncError::OverLimit {
            what: "haves",
            asked: haves.len() as u64,
            limit: (MAX_HAVES * 2) as u64,
        });
    }
    // Only what was advertised in this session may be asked for: nothing outside the
    // branches the session is about, nothing no ref reaches (a refused push's objects stay
    // stored until gc), nothing named by guessing its id.
    if wants.len() > advertised.len() {
        return Err(SyncError::OverLimit {
            what: "wants",
            asked: wants.len() as u64,
            limit: advertised.len() as u64,
        });
    }
    let listed: hero_store::IdSet = advertised.iter().copied().collect();
    if let Some(w) = wants.iter().find(|w| !listed.contains(w)) {
        return Err(SyncError::protocol(format!(
            "it asked for {}, which was not advertised",
            w.to_hex()
        )));
    }
    let bits = d.bytes()?;
    if bits.len() != advertised.len().div_ceil(8) {
        return Err(SyncError::protocol(
            "the bitmap of common refs does not match what was advertised",
        ));
    }
    let common: Vec<ObjectId> = advertised
        .iter()
        .enumerate()
        .filter(|(i, _)| bits[i / 8] & (1 << (i % 8)) != 0)
        .map(|(_, id)| *id)
        .collect();
    let t0 = Instant::now();
    let inventory = flags & wants_flag::INVENTORY != 0;
    // List enough to know whether this is a small transfer; a large one starts sending while
    // the rest is listed. An inventory needs the whole list first.
    let (mut plan, mut lister, mut queue) = blocking(|| -> Result<_> {
        let view = repo.view()?;
        let (mut plan, mut lister) = plan(&view, &wants, &haves, &common)?;
        let mut queue = VecDeque::new();
        let first = if inventory {
            usize::MAX
        } else {
            SMALL_TRANSFER + 1
        };
        lister.fill(&view, &mut plan, &mut queue, first)?;
        Ok((plan, lister, queue))
    })?;
    tracing::debug!(
        objects = queue.len(),
        complete = lister.done(),
        "listed in {:?}",
        t0.elapsed()
    );
    let mut sent = Sent::default();
    if inventory {
        // The receiver may hold part of an interrupted transfer: it says which it lacks.
        let order: Vec<(ObjType, ObjectId)> = std::mem::take(&mut queue).into();
        for part in order.chunks(INVENTORY_BATCH) {
            let mut m = Enc::new(kind::INVENTORY);
            m.u32(part.len() as u32);
            for (t, id) in part {
                m.u8(type_code(*t)).id(id);
            }
            wire.send(&m).await?;
        }
        let mut m = Enc::new(kind::INVENTORY_END);
        m.u32(order.len() as u32);
        wire.send(&m).await?;
        wire.flush().await?;
        let need = wire.expect(kind::NEED).await?;
        let mut d = Dec::new(&need);
        let bits = d.bytes()?;
        if bits.len() != order.len().div_ceil(8) {
            return Err(SyncError::protocol(
                "the bitmap of needed objects has the wrong size",
            ));
        }
        for (i, x) in order.into_iter().enumerate() {
            if bits[i / 8] & (1 << (i % 8)) != 0 {
                queue.push_back(x);
            } else {
                sent.held.insert(x.1);
            }
        }
    }
    let candidates = lister.count;
    // The count is exact when the listing is complete; otherwise PACK_COUNT follows later.
    let exact = lister.done();
    let mut total = if inventory {
        queue.len() as u64
    } else {
        lister.count
    };
    let mut m = Enc::new(kind::PACK_START);
    m.varint(total).u8(if exact { 0 } else { pack_start::MORE });
    wire.send(&m).await?;
    let mut count_sent = exact;
    // Small transfers compress harder: a few milliseconds more for a few percent fewer bytes.
    // Large ones stay at level 3, where zstd keeps up with the network and the store.
    let small = exact && queue.len() <= SMALL_TRANSFER;
    let level = if small { 9 } else { 3 };
    let window_log = if small {
        NARROW_WINDOW_LOG
    } else {
        PACK_WINDOW_LOG
    };
    let mut packer = Packer::new(level, window_log)?;
    let mut stats = TransferStats::default();
    let mut commits = Vec::new();
    let (mut encoding, mut sending) = (Duration::ZERO, Duration::ZERO);
    loop {
        // Read and encode a group without holding a read transaction across network waits.
        let t = Instant::now();
        let (msgs, finished) = blocking(|| -> Result<(Vec<Enc>, bool)> {
            let view = repo.view()?;
            let mut msgs = Vec::new();
            let mut size = 0usize;
            let mut next = Vec::new();
            while size < SEND_GROUP_BYTES {
                next.clear();
                next_objects(&view, &mut plan, &mut lister, &mut queue, &sent, &mut next)?;
                if next.is_empty() {
                    break;
                }
                for (ty, id) in &next {
                    let e = encode_entry(&view, *ty, id, &plan, &sent)?;
                    sent.at.insert(*id, sent.next);
                    sent.next += 1;
                    size += e.bytes.len();
                    if e.delta {
                        stats.deltas += 1;
                    }
                    if *ty == ObjType::Commit {
                        stats.commits += 1;
                        commits.push(*id);
                    }
                    stats.objects += 1;
                    packer.add(e, &mut msgs)?;
                }
            }
            let finished = queue.is_empty() && lister.done();
            if finished {
                packer.finish(&mut msgs)?;
            }
            Ok((msgs, finished))
        })?;
        encoding += t.elapsed();
        let t = Instant::now();
        for m in &msgs {
            stats.object_bytes += m.0.len() as u64 + 4;
            wire.send(m).await?;
        }
        if !count_sent && lister.done() {
            total = lister.count;
            let mut m = Enc::new(kind::PACK_COUNT);
            m.varint(total);
            wire.send(&m).await?;
            count_sent = true;
        }
        sending += t.elapsed();
        if let Some(p) = progress {
            p(&Progress {
                phase: Phase::Transferring,
                objects: stats.objects,
                objects_total: if count_sent { total } else { 0 },
                bytes: wire.bytes_out,
            });
        }
        if finished {
            break;
        }
    }
    stats.candidates = candidates.max(lister.count);
    wire.send(&Enc::new(kind::END)).await?;
    wire.flush().await?;
    tracing::debug!(
        objects = stats.objects,
        bytes = stats.object_bytes,
        ?encoding,
        ?sending,
        "sent in {:?}",
        t0.elapsed()
    );
    Ok((stats, commits))
}
