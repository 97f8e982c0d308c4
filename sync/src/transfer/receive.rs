//! The receiver's side of a transfer: checks each object as it arrives, stores what it checked
//! sorted by id, and refuses what nothing asked for.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hero_store::{
    IdMap, IdSet, Incoming, ObjType, ObjectId, Prepared, Repo, View, apply_delta_frame,
};
use tokio::io::{AsyncRead, AsyncWrite};

use super::base::*;
use super::pack::*;
use super::plan::Ask;
use crate::error::{Result, SyncError};
use crate::wire::{Dec, Enc, INVENTORY_BATCH, Wire, form, kind, pack_start, type_of, wants_flag};

/// The receiver's state over one transfer.
pub(super) struct Rx {
    pub(super) dec: zstd::stream::raw::Decoder<'static>,
    /// What the checks look objects up in besides this transfer (refreshed after each store).
    pub(super) view: Option<View>,
    /// Checked and encoded, not yet stored.
    pub(super) pending: Vec<Prepared>,
    pub(super) pending_bytes: usize,
    /// Every object received, by stream position.
    pub(super) ids: Vec<ObjectId>,
    /// Every object received, with whether something received after it links to it (set
    /// while its linker's links are checked, so no second lookup is needed).
    pub(super) arrived: IdMap<(ObjType, Cell<bool>)>,
    /// Delta chains of objects kept as deltas (see `hero_store::Received::chain`).
    pub(super) chains: IdMap<(ObjectId, u32)>,
    /// Objects of this transfer kept whole.
    pub(super) whole_here: IdSet,
    pub(super) window: IdMap<Arc<[u8]>>,
    pub(super) window_order: VecDeque<ObjectId>,
    pub(super) window_bytes: usize,
    pub(super) wants: IdSet,
    /// With an inventory: the ids that will arrive, in order.
    pub(super) expected: Option<Vec<ObjectId>>,
    pub(super) started: bool,
    pub(super) stats: TransferStats,
}

impl Rx {
    pub(super) fn new(wants: &[ObjectId], expected: Option<Vec<ObjectId>>) -> Result<Self> {
        let mut dec = zstd::stream::raw::Decoder::new().map_err(SyncError::Io)?;
        dec.set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(MAX_WINDOW_LOG))
            .map_err(SyncError::Io)?;
        Ok(Rx {
            dec,
            view: None,
            pending: Vec::new(),
            pending_bytes: 0,
            ids: Vec::new(),
            arrived: IdMap::default(),
            chains: IdMap::default(),
            whole_here: IdSet::default(),
            window: IdMap::default(),
            window_order: VecDeque::new(),
            window_bytes: 0,
            wants: wants.iter().copied().collect(),
            expected,
            started: false,
            stats: TransferStats::default(),
        })
    }

    /// Takes a PACK message apart and checks its objects as they arrive (the sender is still
    /// sending meanwhile); they are written by [`Rx::store`].
    pub(super) fn unpack(&mut self, repo: &Repo, body: &[u8]) -> Result<()> {
        let (&flag, data) = body
            .split_first()
            .ok_or_else(|| SyncError::protocol("empty pack"))?;
        let mut parsed = Vec::new();
        match flag {
            0 => parse_entries(data, &mut parsed)?,
            1 => {
                let decoded = self.inflate(data)?;
                parse_entries(&decoded, &mut parsed)?
            }
            other => return Err(SyncError::protocol(format!("unknown pack flag {other}"))),
        };
        for p in &parsed {
            self.prepare_one(repo, p)?;
        }
        Ok(())
    }

    /// Decodes the next part of the compressed stream, refusing more than
    /// [`MAX_PACK_DECODED`] bytes.
    pub(super) fn inflate(&mut self, mut input: &[u8]) -> Result<Vec<u8>> {
        use zstd::stream::raw::Operation;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let start = out.len();
            let room = (256usize << 10).min(MAX_PACK_DECODED + 1 - start);
            if room == 0 {
                return Err(SyncError::protocol("a pack decodes to more than the limit"));
            }
            out.resize(start + room, 0);
            let st = self
                .dec
                .run_on_buffers(input, &mut out[start..])
                .map_err(|e| SyncError::protocol(format!("a pack does not decode: {e}")))?;
            out.truncate(start + st.bytes_written);
            input = &input[st.bytes_read..];
            if input.is_empty() && st.bytes_written < room {
                return Ok(out);
            }
        }
    }

    pub(super) fn remember(&mut self, id: ObjectId, raw: Arc<[u8]>) {
        if raw.len() > WINDOW_BYTES / 8 || self.window.contains_key(&id) {
            return;
        }
        self.window_bytes += raw.len();
        self.window.insert(id, raw);
        self.window_order.push_back(id);
        while self.window_bytes > WINDOW_BYTES {
            let Some(old) = self.window_order.pop_front() else {
                break;
            };
            if let Some(r) = self.window.remove(&old) {
                self.window_bytes -= r.len();
            }
        }
    }

    /// Opens the read view the checks use, unless one is open.
    pub(super) fn ensure_view(&mut self, repo: &Repo) -> Result<()> {
        if self.view.is_none() {
            self.view = Some(repo.view()?);
        }
        Ok(())
    }

    /// The raw bytes of a delta base: recently received, stored, or (received but neither
    /// remembered nor stored yet) stored now to be read back.
    pub(super) fn base_raw(&mut self, repo: &Repo, base: &ObjectId) -> Result<Arc<[u8]>> {
        if let Some(r) = self.window.get(base) {
            return Ok(r.clone());
        }
        if self.arrived.contains_key(base) && self.pending.iter().any(|p| p.id == *base) {
            self.store(repo, false)?;
        }
        self.ensure_view(repo)?;
        let found = match &self.view {
            Some(v) => v.raw_object(base)?,
            None => None,
        };
        match found {
            Some((_, r)) => Ok(r.into()),
            None => Err(SyncError::protocol(format!(
                "a delta is against {}, which is not here",
                base.short()
            ))),
        }
    }

    /// Checks and encodes one entry; its record waits in `pending`.
    pub(super) fn prepare_one(&mut self, repo: &Repo, p: &Parsed) -> Result<()> {
        let index = self.ids.len() as u64;
        let base = match p.base {
            None => None,
            Some(BaseRef::Held(id)) => Some(id),
            Some(BaseRef::Back(n)) => match index.checked_sub(n) {
                Some(at) => self.ids.get(at as usize).copied(),
                None => {
                    return Err(SyncError::protocol(
                        "a delta names a base before the start of the transfer",
                    ));
                }
            },
        };
        let base_raw = match base {
            Some(b) => Some(self.base_raw(repo, &b)?),
            None => None,
        };
        let forward: Option<Vec<u8>> = match (p.form, &base_raw) {
            (form::FDELTA, Some(br)) => {
                Some(apply_delta_frame(&p.data, p.raw_len, br).map_err(refused)?)
            }
            _ => None,
        };
        let incoming = match (p.form, base, &base_raw, &forward) {
            (form::RAW, _, _, _) => Incoming::Raw {
                raw: &p.data,
                plain: false,
                previous: None,
            },
            (form::PLAIN, _, _, _) => Incoming::Raw {
                raw: &p.data,
                plain: true,
                previous: None,
            },
            (form::ZSTD, _, _, _) => Incoming::Zstd {
                frame: &p.data,
                raw_len: p.raw_len,
            },
            (form::DELTA, Some(bid), Some(br), _) => Incoming::Delta {
                base: bid,
                base_raw: br,
                frame: &p.data,
                raw_len: p.raw_len,
                chain: self.chains.get(&bid).copied(),
                base_whole: self.whole_here.contains(&bid),
            },
            (form::FDELTA, Some(bid), _, Some(raw)) => Incoming::Raw {
                raw,
                plain: false,
                previous: Some(bid),
            },
            _ => return Err(SyncError::protocol("a malformed pack entry")),
        };
        self.ensure_view(repo)?;
        let Some(view) = &self.view else {
            return Err(SyncError::protocol("no view of the repository"));
        };
        let arrived = &self.arrived;
        let mut r = view
            .prepare_received(p.ty, p.manifest_id, incoming, &|x| {
                arrived.get(x).map(|(t, linked)| {
                    linked.set(true);
                    *t
                })
            })
            .map_err(refused)?;
        if let Some(exp) = &self.expected
            && exp.get(index as usize) != Some(&r.id)
        {
            return Err(SyncError::protocol(format!(
                "object {} refused: its content does not match its id (expected {})",
                r.id.short(),
                exp.get(index as usize)
                    .map(|e| e.short())
                    .unwrap_or_else(|| "nothing more".to_owned())
            )));
        }
        // The links are not kept with what is pending (a tree's are most of its size).
        r.links = Vec::new();
        // An object this side already has is never a stray: it was stored with everything it
        // links to, and nothing of it is stored again.
        self.arrived.insert(r.id, (p.ty, Cell::new(r.present)));
        self.ids.push(r.id);
        match r.chain {
            Some(c) => {
                self.chains.insert(r.id, c);
            }
            None if !r.present => {
                self.whole_here.insert(r.id);
            }
            None => {}
        }
        let raw: Arc<[u8]> = match (r.decoded.take(), forward) {
            (Some(d), _) => d.into(),
            (None, Some(f)) => f.into(),
            (None, None) => p.data.as_slice().into(),
        };
        self.remember(r.id, raw);
        if !r.present && p.ty == ObjType::Commit {
            self.stats.commits += 1;
        }
        if matches!(p.form, form::DELTA | form::FDELTA) {
            self.stats.deltas += 1;
        }
        self.pending_bytes += p.data.len();
        self.pending.push(r);
        Ok(())
    }

    /// Writes what is pending in one transaction, sorted by id. The last call also checks that
    /// everything received is reachable from what was asked for; if not, that transaction is
    /// dropped.
    pub(super) fn store(&mut self, repo: &Repo, last: bool) -> Result<()> {
        // Nothing to store and nothing to clear: no transaction (a pull with nothing new must
        // not bump the repository's generation). A resumed transfer clears the mark even when
        // nothing was left to send.
        if self.pending.is_empty() && (!last || (!self.started && self.expected.is_none())) {
            return Ok(());
        }
        let mut pending = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        // In key order, B-tree leaves fill up (ids are random: in arrival order they end up
        // about two thirds full, and the file correspondingly larger). A peer sending one object
        // twice gets it stored once.
        pending.sort_unstable_by_key(|p| p.id);
        pending.dedup_by_key(|p| p.id);
        // No read transaction of ours may stay open while writing: redb cannot reuse the pages
        // a write frees while an older reader might see them (the file grew several-fold).
        self.view = None;
        let result = repo.batch(|b| -> hero_store::Result<u64> {
            if !self.started && !pending.is_empty() {
                b.set_setting(INCOMPLETE, Some(b"1"))?;
                self.started = true;
            }
            let new = b.put_prepared_sorted(pending)?;
            if last {
                let stray: Vec<ObjectId> = self
                    .arrived
                    .iter()
                    .filter(|(id, (_, linked))| !linked.get() && !self.wants.contains(*id))
                    .map(|(id, _)| *id)
                    .collect();
                if let Some(first) = stray.first() {
                    // Dropping this transaction keeps none of its objects.
                    return Err(hero_store::Error::Refused {
                        id: *first,
                        reason: format!(
                            "{} object(s) were sent that nothing asked for: their content \
                             does not match the id of anything wanted",
                            stray.len()
                        ),
                    });
                }
                b.set_setting(INCOMPLETE, None)?;
            }
            Ok(new)
        });
        let new = result.map_err(refused)?;
        self.stats.objects += new;
        self.stats.transactions += 1;
        Ok(())
    }
}

/// A store error about what the peer sent, as a protocol error (the peer is cut off).
pub(super) fn refused(e: hero_store::Error) -> SyncError {
    match e {
        hero_store::Error::Refused { id, reason } => {
            SyncError::protocol(format!("object {} refused: {reason}", id.short()))
        }
        hero_store::Error::Undecodable(reason) => SyncError::protocol(reason),
        other => SyncError::Store(other),
    }
}

/// The body of the WANTS message of `ask` (`resume`: list candidates first).
pub(crate) fn wants_body(ask: &Ask, resume: bool) -> Vec<u8> {
    let mut m = Enc(Vec::new());
    m.ids(&ask.wants)
        .ids(&ask.haves)
        .u8(if resume { wants_flag::INVENTORY } else { 0 })
        .bytes(&ask.common);
    m.0
}

/// Whether the last transfer into `repo` was interrupted (the next one lists first).
pub(crate) fn resuming(repo: &Repo) -> Result<bool> {
    Ok(repo.setting(INCOMPLETE)?.is_some())
}

/// The receiver's side: sends WANTS (unless `sent`: the hello carried them and the sender
/// took them), stores what arrives.
pub(crate) async fn receive_objects<R, W>(
    wire: &mut Wire<R, W>,
    repo: &Repo,
    ask: &Ask,
    sent: bool,
    progress: Option<&ProgressFn>,
) -> Result<TransferStats>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let t0 = Instant::now();
    let wants = ask.wants.as_slice();
    let resume = blocking(|| resuming(repo))?;
    if !sent {
        let mut m = Enc::new(kind::WANTS);
        m.0.extend_from_slice(&wants_body(ask, resume));
        wire.send(&m).await?;
        wire.flush().await?;
    }
    if let Some(p) = progress {
        p(&Progress {
            phase: Phase::Negotiating,
            objects: 0,
            objects_total: 0,
            bytes: wire.bytes_in,
        });
    }
    let mut candidates = 0u64;
    let expected = if resume {
        let (n, expected) = receive_inventory(wire, repo).await?;
        candidates = n;
        Some(expected)
    } else {
        None
    };
    let start = wire.expect(kind::PACK_START).await?;
    let mut d = Dec::new(&start);
    let announced = d.varint()?;
    let more = if d.is_empty() {
        false
    } else {
        d.u8()? & pack_start::MORE != 0
    };
    if announced > MAX_INVENTORY as u64 {
        return Err(SyncError::protocol("too many objects announced"));
    }
    // The whole count: known now, or from the PACK_COUNT a sender still listing sends later.
    let mut total = (!more).then_some(announced);
    let mut rx = Rx::new(wants, expected)?;
    rx.stats.candidates = candidates.max(announced);
    // Room for what was announced, within reason (the count is the peer's word).
    let room = (announced as usize).min(RESERVE_MAX);
    rx.pending.reserve(room);
    rx.arrived.reserve(room);
    let report = |rx: &Rx, total: Option<u64>, bytes: u64| {
        if let Some(p) = progress {
            p(&Progress {
                phase: Phase::Transferring,
                objects: rx.ids.len() as u64,
                objects_total: total.unwrap_or(0),
                bytes,
            });
        }
    };
    // Where the receiver's time goes: waiting for the network, or checking what arrived.
    let (mut waited, mut checking) = (Duration::ZERO, Duration::ZERO);
    loop {
        // No read transaction waits on the network: while it lives, redb cannot reuse the
        // pages that any write of this process or another frees, and a peer that is slow to
        // send (a loaded fleet) grew the file by gigabytes.
        rx.view = None;
        let t = Instant::now();
        let (k, body) = wire.recv().await?;
        waited += t.elapsed();
        match k {
            kind::PACK => {
                rx.stats.object_bytes += body.len() as u64 + 5;
                let t = Instant::now();
                blocking(|| rx.unpack(repo, &body))?;
                checking += t.elapsed();
                if rx.ids.len() as u64 > total.unwrap_or(MAX_INVENTORY as u64) {
                    return Err(SyncError::protocol("more objects than announced"));
                }
                if rx.pending_bytes >= STORE_BATCH_BYTES {
                    blocking(|| rx.store(repo, false))?;
                }
                report(&rx, total, wire.bytes_in);
            }
            kind::PACK_COUNT if total.is_none() => {
                let n = Dec::new(&body).varint()?;
                if n < announced.max(rx.ids.len() as u64) || n > MAX_INVENTORY as u64 {
                    return Err(SyncError::protocol(format!(
                        "a count of {n} objects does not fit what was announced"
                    )));
                }
                total = Some(n);
                rx.stats.candidates = rx.stats.candidates.max(n);
            }
            kind::END => break,
            other => {
                return Err(SyncError::protocol(format!(
                    "expected objects, got message {other}"
                )));
            }
        }
    }
    let Some(total) = total else {
        return Err(SyncError::protocol(
            "the transfer ended without saying how many objects it held",
        ));
    };
    if rx.ids.len() as u64 != total {
        return Err(SyncError::protocol(format!(
            "the transfer ended after {} of {total} objects",
            rx.ids.len()
        )));
    }
    let t = Instant::now();
    blocking(|| rx.store(repo, true))?;
    report(&rx, Some(total), wire.bytes_in);
    tracing::debug!(
        objects = rx.ids.len(),
        ?waited,
        ?checking,
        storing = ?t.elapsed(),
        "received in {:?}",
        t0.elapsed()
    );
    Ok(rx.stats)
}

/// Reads the sender's inventory and answers which objects are missing; returns the number
/// of candidates and the ids that will arrive, in order.
pub(super) async fn receive_inventory<R, W>(
    wire: &mut Wire<R, W>,
    repo: &Repo,
) -> Result<(u64, Vec<ObjectId>)>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let mut inventory: Vec<ObjectId> = Vec::new();
    loop {
        let (k, body) = wire.recv().await?;
        let mut d = Dec::new(&body);
        match k {
            kind::INVENTORY => {
                let n = d.u32()? as usize;
                if n > INVENTORY_BATCH || inventory.len() + n > MAX_INVENTORY {
                    return Err(SyncError::protocol("inventory too large"));
                }
                for _ in 0..n {
                    type_of(d.u8()?)?;
                    inventory.push(d.id()?);
                }
            }
            kind::INVENTORY_END => {
                if d.u32()? as usize != inventory.len() {
                    return Err(SyncError::protocol("inventory count does not match"));
                }
                break;
            }
            other => {
                return Err(SyncError::protocol(format!(
                    "expected the inventory, got message {other}"
                )));
            }
        }
    }
    // The bitmap of what is missing: an object present means its closure is present.
    let (bits, expected) = blocking(|| -> Result<(Vec<u8>, Vec<ObjectId>)> {
        let view = repo.view()?;
        let mut bits = vec![0u8; inventory.len().div_ceil(8)];
        let mut expected = Vec::new();
        for (i, id) in inventory.iter().enumerate() {
            if view.object_type(id)?.is_none() {
                bits[i / 8] |= 1 << (i % 8);
                expected.push(*id);
            }
        }
        Ok((bits, expected))
    })?;
    let mut m = Enc::new(kind::NEED);
    m.bytes(&bits);
    wire.send(&m).await?;
    wire.flush().await?;
    Ok((inventory.len() as u64, expected))
}
