//! One object as it travels in a pack, both ways: how the sender encodes an entry (stored
//! deltas and frames, raw objects through one zstd stream) and how the receiver parses it.

use std::collections::VecDeque;
use std::io::Write;

use hero_store::{IdMap, IdSet, ObjType, ObjectId, StoredForm, View, delta_frame};

use super::base::*;
use super::plan::*;
use crate::error::{Result, SyncError};
use crate::wire::{Dec, Enc, MAX_FRAME, form, kind, type_code, type_of};

/// How an entry names its delta base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BaseRef {
    /// The entry this many places earlier in the transfer.
    Back(u64),
    /// An object the receiver had before the transfer.
    Held(ObjectId),
}

/// One object as it travels: `type, form, varint raw length, [id of a manifest], [base],
/// varint data length, data`. A base is a varint: n > 0 is the entry n places back, 0 is
/// followed by the id of an object the receiver has.
pub(super) fn entry_bytes(
    ty: ObjType,
    form: u8,
    raw_len: u64,
    base: Option<BaseRef>,
    manifest_id: Option<&ObjectId>,
    data: &[u8],
) -> Vec<u8> {
    let mut m = Enc(Vec::with_capacity(data.len() + 48));
    m.u8(type_code(ty)).u8(form).varint(raw_len);
    if let Some(id) = manifest_id {
        m.id(id);
    }
    match base {
        Some(BaseRef::Back(n)) => {
            m.varint(n);
        }
        Some(BaseRef::Held(id)) => {
            m.varint(0).id(&id);
        }
        None => {}
    }
    m.varint(data.len() as u64);
    m.0.extend_from_slice(data);
    m.0
}

/// An encoded entry.
pub(super) struct Entry {
    pub(super) bytes: Vec<u8>,
    /// Travels outside the compressed stream.
    pub(super) bulk: bool,
    pub(super) delta: bool,
}

/// What the sender has sent so far.
#[derive(Default)]
pub(super) struct Sent {
    /// Stream position of every object sent.
    pub(super) at: IdMap<u64>,
    /// Objects the receiver said it has (from the inventory).
    pub(super) held: IdSet,
    pub(super) next: u64,
}

impl Sent {
    pub(super) fn base_ref(&self, plan: &Plan, b: &ObjectId) -> Option<BaseRef> {
        if let Some(&at) = self.at.get(b) {
            return Some(BaseRef::Back(self.next - at));
        }
        if plan.known.contains(b) || self.held.contains(b) {
            return Some(BaseRef::Held(*b));
        }
        None
    }
}

/// Encodes one object: its stored delta when the receiver has the base, its stored frame or
/// plain bytes, else its raw bytes (or a new delta against the receiver's version of its path).
pub(super) fn encode_entry(
    view: &View,
    ty: ObjType,
    id: &ObjectId,
    plan: &Plan,
    sent: &Sent,
) -> Result<Entry> {
    let stored = view
        .stored(id)?
        .ok_or(SyncError::Store(hero_store::Error::Missing(*id)))?;
    if stored.ty != ty && !(is_content(ty) && is_content(stored.ty)) {
        return Err(SyncError::Store(hero_store::Error::WrongType {
            id: *id,
            expected: ty.as_str(),
        }));
    }
    let ty = stored.ty;
    match stored.form {
        StoredForm::Delta { base, frame } => {
            if let Some(r) = sent.base_ref(plan, &base) {
                return Ok(Entry {
                    bulk: frame.len() >= BULK,
                    bytes: entry_bytes(ty, form::DELTA, stored.raw_len, Some(r), None, &frame),
                    delta: true,
                });
            }
        }
        StoredForm::Plain(raw) => {
            return Ok(Entry {
                bulk: raw.len() >= BULK,
                bytes: entry_bytes(ty, form::PLAIN, stored.raw_len, None, None, &raw),
                delta: false,
            });
        }
        // Whole objects travel raw through the compressed stream, where they compress against
        // what came before them (versions of a file on other branches, renamed copies): on a
        // 43,000-object history the stored frames of whole blobs were 6.4 MB, the same blobs
        // raw through the stream 2.2 MB. The receiver compresses them again as it stores them.
        // Only objects too large for one compressed message travel as their stored frame.
        StoredForm::Zstd(frame)
            if stored.raw_len > RAW_IN_STREAM_MAX as u64
                && plan
                    .bases
                    .get(id)
                    .and_then(|b| sent.base_ref(plan, b))
                    .is_none() =>
        {
            return Ok(Entry {
                bulk: frame.len() >= BULK,
                bytes: entry_bytes(ty, form::ZSTD, stored.raw_len, None, None, &frame),
                delta: false,
            });
        }
        StoredForm::Zstd(_) | StoredForm::Other => {}
    }
    let Some((_, raw)) = view.raw_object(id)? else {
        return Err(SyncError::Store(hero_store::Error::Missing(*id)));
    };
    let manifest_id = (ty == ObjType::Manifest).then_some(id);
    if manifest_id.is_none()
        && raw.len() <= FDELTA_MAX
        && let Some(b) = plan.bases.get(id)
        && b != id
        && let Some(r) = sent.base_ref(plan, b)
        && let Some((_, base_raw)) = view.raw_object(b)?
        && let Some(f) = delta_frame(&raw, &base_raw)
        && f.len() + 40 < raw.len()
    {
        return Ok(Entry {
            bulk: f.len() >= BULK,
            bytes: entry_bytes(ty, form::FDELTA, raw.len() as u64, Some(r), None, &f),
            delta: true,
        });
    }
    // Raw bytes go through the compressed stream (outside it they would travel uncompressed),
    // unless they are too large for one message.
    Ok(Entry {
        bulk: raw.len() > RAW_IN_STREAM_MAX,
        bytes: entry_bytes(ty, form::RAW, raw.len() as u64, None, manifest_id, &raw),
        delta: false,
    })
}

/// Longest chain of stored blob deltas sent ahead of the blob that needs it.
pub(super) const MAX_AHEAD_CHAIN: usize = 512;

/// Takes the next objects to send off the queue: the next one not sent yet, preceded by the
/// blobs its stored delta needs. A blob stored as a delta against a blob that this transfer
/// sends later (listed, listing further if need be) has that base, and the base's own, sent
/// first, so it travels as its stored delta instead of raw: with many branches the listing
/// often meets an old version of a file before the newer one it is stored against. Blobs link
/// to nothing, so sending one early still sends every object after what it links to; each
/// object is still sent once (one sent early is skipped when the queue reaches it), so the
/// count is unchanged.
pub(super) fn next_objects(
    view: &View,
    plan: &mut Plan,
    lister: &mut Lister,
    queue: &mut VecDeque<(ObjType, ObjectId)>,
    sent: &Sent,
    out: &mut Vec<(ObjType, ObjectId)>,
) -> Result<()> {
    let (ty, id) = loop {
        if queue.is_empty() {
            lister.fill(view, plan, queue, LIST_STEP)?;
        }
        match queue.pop_front() {
            None => return Ok(()),
            Some((_, id)) if sent.at.contains_key(&id) => {}
            Some(x) => break x,
        }
    };
    if ty == ObjType::Blob {
        let start = out.len();
        let mut cur = id;
        while out.len() - start < MAX_AHEAD_CHAIN {
            let Some((_, Some(base))) = view.stored_base(&cur)? else {
                break;
            };
            if sent.base_ref(plan, &base).is_some() {
                break;
            }
            while !lister.listed.contains(&base) && !lister.done() {
                let more = queue.len() + LIST_STEP;
                lister.fill(view, plan, queue, more)?;
            }
            // Only a blob this transfer sends anyway and that is not sent yet.
            if !lister.listed.contains(&base)
                || base == id
                || out[start..].iter().any(|(_, o)| *o == base)
                || !matches!(view.stored_base(&base)?, Some((ObjType::Blob, _)))
            {
                break;
            }
            out.push((ObjType::Blob, base));
            cur = base;
        }
        out[start..].reverse();
    }
    out.push((ty, id));
    Ok(())
}

pub(super) fn is_content(t: ObjType) -> bool {
    matches!(t, ObjType::Blob | ObjType::Manifest)
}

/// Cuts entries into PACK messages: small ones through one zstd stream (flushed at each cut,
/// so every message decodes on its own given the ones before), large ones as they are.
///
/// The compressor is made when the first message is cut, so it is sized to what it will
/// compress: a transfer whose whole stream is known by then (the usual change of a few
/// objects) gets a context sized to those bytes (a few KiB of tables and window); a larger
/// one gets the full window and long-distance matching. A level-9 context with the full
/// window took about 60 MB, allocated and zeroed once per push and per pull served — for
/// every one-line save.
pub(super) struct Packer {
    level: i32,
    /// The window of a stream whose length is not known when it starts: the full one
    /// ([`PACK_WINDOW_LOG`]) for a large transfer, [`NARROW_WINDOW_LOG`] for one of a few
    /// thousand objects. The receiver holds a buffer of the window for the whole transfer.
    window_log: u32,
    z: Option<zstd::stream::write::Encoder<'static, Vec<u8>>>,
    /// Stream bytes given before the compressor exists.
    held: Vec<u8>,
    pub(super) pending: usize,
}

impl Packer {
    pub(super) fn new(level: i32, window_log: u32) -> Result<Self> {
        Ok(Packer {
            level,
            window_log,
            z: None,
            held: Vec::new(),
            pending: 0,
        })
    }

    /// A compressor for a stream of `total` bytes, or of unknown length.
    fn encoder(
        level: i32,
        window_log: u32,
        total: Option<usize>,
    ) -> Result<zstd::stream::write::Encoder<'static, Vec<u8>>> {
        let mut raw = zstd::stream::raw::Encoder::new(level).map_err(SyncError::Io)?;
        match total {
            // zstd sizes its window and tables to the bytes it is promised. The stream is
            // flushed, never ended, so the promise is never checked against an end.
            Some(n) => raw
                .set_pledged_src_size(Some(n as u64))
                .map_err(SyncError::Io)?,
            None => {
                raw.set_parameter(zstd::zstd_safe::CParameter::WindowLog(window_log))
                    .map_err(SyncError::Io)?;
                // Long-distance matching finds the far repeats of a history (a file's
                // version on another branch, megabytes back) at little cost.
                if window_log >= PACK_WINDOW_LOG {
                    raw.set_parameter(zstd::zstd_safe::CParameter::EnableLongDistanceMatching(
                        true,
                    ))
                    .map_err(SyncError::Io)?;
                }
            }
        }
        Ok(zstd::stream::write::Encoder::with_encoder(Vec::new(), raw))
    }

    pub(super) fn add(&mut self, e: Entry, out: &mut Vec<Enc>) -> Result<()> {
        if e.bulk {
            self.cut(out)?;
            let mut m = Enc(Vec::with_capacity(e.bytes.len() + 2));
            m.u8(kind::PACK).u8(0);
            m.0.extend_from_slice(&e.bytes);
            out.push(m);
            return Ok(());
        }
        match &mut self.z {
            Some(z) => z.write_all(&e.bytes).map_err(SyncError::Io)?,
            None => self.held.extend_from_slice(&e.bytes),
        }
        self.pending += e.bytes.len();
        if self.pending >= PACK_RAW {
            self.cut(out)?;
        }
        Ok(())
    }

    /// Cuts a message of what is pending; more may follow.
    pub(super) fn cut(&mut self, out: &mut Vec<Enc>) -> Result<()> {
        self.cut_as(out, false)
    }

    /// Cuts the last message: nothing follows.
    pub(super) fn finish(&mut self, out: &mut Vec<Enc>) -> Result<()> {
        self.cut_as(out, true)
    }

    fn cut_as(&mut self, out: &mut Vec<Enc>, last: bool) -> Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        let z = match &mut self.z {
            Some(z) => z,
            None => {
                let total = last.then_some(self.held.len());
                let mut z = Packer::encoder(self.level, self.window_log, total)?;
                z.write_all(&std::mem::take(&mut self.held))
                    .map_err(SyncError::Io)?;
                self.z.insert(z)
            }
        };
        z.flush().map_err(SyncError::Io)?;
        let data = std::mem::take(z.get_mut());
        let mut m = Enc(Vec::with_capacity(data.len() + 2));
        m.u8(kind::PACK).u8(1);
        m.0.extend_from_slice(&data);
        out.push(m);
        self.pending = 0;
        Ok(())
    }
}

/// An entry parsed from a PACK message, not yet stored.
#[derive(Debug)]
pub(super) struct Parsed {
    pub(super) ty: ObjType,
    pub(super) form: u8,
    pub(super) raw_len: u64,
    pub(super) manifest_id: Option<ObjectId>,
    pub(super) base: Option<BaseRef>,
    pub(super) data: Vec<u8>,
}

pub(super) fn parse_entries(buf: &[u8], out: &mut Vec<Parsed>) -> Result<usize> {
    let mut d = Dec::new(buf);
    let mut bytes = 0usize;
    while !d.is_empty() {
        let ty = type_of(d.u8()?)?;
        let f = d.u8()?;
        if f > form::FDELTA {
            return Err(SyncError::protocol(format!("unknown object form {f}")));
        }
        let raw_len = d.varint()?;
        if raw_len > MAX_FRAME as u64 {
            return Err(SyncError::protocol(format!(
                "an object claims {raw_len} bytes, over the limit"
            )));
        }
        let manifest_id = if ty == ObjType::Manifest && f == form::RAW {
            Some(d.id()?)
        } else {
            None
        };
        let base = if f == form::DELTA || f == form::FDELTA {
            match d.varint()? {
                0 => Some(BaseRef::Held(d.id()?)),
                n => Some(BaseRef::Back(n)),
            }
        } else {
            None
        };
        let n = usize::try_from(d.varint()?)
            .map_err(|_| SyncError::protocol("object length overflow"))?;
        let data = d.raw(n)?.to_vec();
        if (f == form::RAW || f == form::PLAIN) && data.len() as u64 != raw_len {
            return Err(SyncError::protocol("an object's length does not match"));
        }
        bytes += data.len();
        out.push(Parsed {
            ty,
            form: f,
            raw_len,
            manifest_id,
            base,
            data,
        });
    }
    Ok(bytes)
}
