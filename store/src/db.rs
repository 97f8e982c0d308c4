//! The redb tables and the low-level object access shared by reads and writes.

use redb::{ReadableTable, TableDefinition};

use crate::error::{DbResultExt as _, Error, Result};
use crate::id::ObjectId;
use crate::record::{self, Encoding, ObjType, Record};
use crate::refs::{RefMove, RefValue, decode_ref, encode_ref, now};

/// Objects by id: a record (see `record.rs`).
pub(crate) const OBJECTS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("objects-1");
/// For each whole object that others are stored as deltas against: the longest such chain,
/// under the first 8 bytes of its id ([`chain_key`]): 12 bytes an entry instead of 36. Two
/// bases sharing those bytes (one pair in 2^64) share an entry: a depth only bounds how long
/// chains grow, so a shared entry at worst stops a delta or lets a chain grow past its bound,
/// which costs read time, never correctness (readers follow at most 4,096 links).
pub(crate) const CHAINS: TableDefinition<u64, u32> = TableDefinition::new("chains-4");
/// The chain depths as formats 1 to 3 keep them, under the whole id; moved into [`CHAINS`] by
/// the first write of a format-4 build ([`move_legacy_chains`]).
pub(crate) const LEGACY_CHAINS: TableDefinition<&[u8; 32], u32> = TableDefinition::new("chains-1");

/// The key of an object's entry in [`CHAINS`].
pub(crate) fn chain_key(id: &ObjectId) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&id.0[..8]);
    u64::from_le_bytes(b)
}

/// Moves the depths of a `chains-1` table (formats 1 to 3) into [`CHAINS`] and removes it, in
/// the caller's transaction; nothing when there is none. Must run before [`CHAINS`] is opened
/// in the transaction.
pub(crate) fn move_legacy_chains(txn: &redb::WriteTransaction) -> Result<()> {
    use redb::TableHandle as _;
    if !txn
        .list_tables()
        .db_err()?
        .any(|t| t.name() == LEGACY_CHAINS.name())
    {
        return Ok(());
    }
    let mut moved: Vec<(u64, u32)> = Vec::new();
    {
        let old = txn.open_table(LEGACY_CHAINS).db_err()?;
        for item in old.iter().db_err()? {
            let (k, v) = item.db_err()?;
            moved.push((chain_key(&ObjectId(*k.value())), v.value()));
        }
    }
    {
        let mut new = txn.open_table(CHAINS).db_err()?;
        for (k, d) in moved {
            let cur = new.get(k).db_err()?.map_or(0, |g| g.value());
            if d > cur {
                new.insert(k, d).db_err()?;
            }
        }
    }
    txn.delete_table(LEGACY_CHAINS).db_err()?;
    Ok(())
}
/// Refs (`refs/heads/NAME`, `refs/tags/NAME`): a kind byte and an id.
pub(crate) const REFS: TableDefinition<&str, &[u8]> = TableDefinition::new("refs-1");
/// Every move of every ref: (ref, sequence) to an encoded [`crate::RefMove`].
pub(crate) const REFLOG: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("reflog-1");
/// Repository metadata: format version, generation counter.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta-1");
/// Settings other crates keep in the repository, by namespaced key.
pub(crate) const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv-1");
/// Cross-references with binary keys (for instance git id → store id), created on first write.
pub(crate) const XREF: TableDefinition<&[u8], &[u8]> = TableDefinition::new("xref-1");
/// Large object records cut into pieces that each fill a redb page exactly (format 2): a
/// sequence number to the piece. The record's `objects-1` value points at its pieces.
pub(crate) const PIECES: TableDefinition<u64, &[u8]> = TableDefinition::new("pieces-2");
/// Small object records grouped into compressed segments (format 4, `segment.rs`): a sequence
/// number to the segment, or to a pointer to its pieces when it is long.
pub(crate) const SEGMENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("segments-4");

/// The format this build writes and the newest it reads. Bumped whenever the layout or an
/// encoding changes (docs/format.md, ADR 0013): 2 adds large records stored in pieces
/// (`pieces-2`) and trees whose entries carry metadata; 3 adds special files (FIFOs, sockets,
/// device nodes), access times and hard-link groups in tree entries (tree encoding 3) and
/// manifest nodes with holes (ADR 0030); 4 adds small records packed into compressed
/// segments (`segments-4`, ADR 0035).
pub(crate) const FORMAT_VERSION: u32 = 4;
/// The oldest format this build reads; it reads such a repository as it is, and its first
/// write transaction records [`FORMAT_VERSION`].
pub(crate) const OLDEST_FORMAT: u32 = 1;

/// The format recorded in a repository's `meta-1` table (0 when missing or malformed; opening
/// refuses both).
pub(crate) fn stored_format<T>(meta: &T) -> Result<u32>
where
    T: ReadableTable<&'static str, &'static [u8]>,
{
    Ok(match meta.get("format").db_err()? {
        Some(g) => <[u8; 4]>::try_from(g.value())
            .map(u32::from_le_bytes)
            .unwrap_or(0),
        None => 0,
    })
}

/// Objects the garbage collector found unreachable: id to the time (Unix seconds) it first
/// did. Removed by a later collection once the grace period has passed and they are still
/// unreachable; a writer that finds one stored (to reuse it) takes it off the list.
pub(crate) const GC_CANDIDATES: TableDefinition<&[u8; 32], u64> = TableDefinition::new("gc-2");

/// First byte of an `objects-1` value that points at pieces (never an object type code).
pub(crate) const POINTER: u8 = 0x80;
/// redb's page size (its default; only the fit of pieces depends on it, not correctness).
const PAGE: usize = 4096;
/// redb's bytes in a leaf holding one piece besides the piece: page header (4), value length
/// (4), the u64 key (8).
const LEAF_OVERHEAD: usize = 16;
/// Largest piece: fills a page of 2^8 pages (1 MiB).
const MAX_PIECE_ORDER: u32 = 8;
/// Records at least this long are stored in pieces: a record alone in a leaf otherwise takes
/// the next power-of-two number of pages.
pub(crate) const PIECED_MIN: usize = PAGE - LEAF_OVERHEAD;
/// The end of a pieced record shorter than this stays in its `objects-1` value (it shares a
/// leaf with small records); a longer end gets a piece of its own.
const INLINE_TAIL_MAX: usize = 2048;

/// The bytes a piece of page order `k` holds so that its leaf fills the page exactly.
fn piece_capacity(order: u32) -> usize {
    (PAGE << order) - LEAF_OVERHEAD
}

/// How a record of `len` bytes is cut: the pieces' lengths, then the length left inline.
/// Pieces are of page order `max_order` at most.
fn piece_plan_up_to(len: usize, max_order: u32) -> (Vec<usize>, usize) {
    let mut sizes = Vec::new();
    let mut rest = len;
    while rest >= piece_capacity(0) {
        let order = (0..=max_order)
            .rev()
            .find(|&k| piece_capacity(k) <= rest)
            .unwrap_or(0);
        sizes.push(piece_capacity(order));
        rest -= piece_capacity(order);
    }
    if rest > INLINE_TAIL_MAX {
        sizes.push(rest);
        rest = 0;
    }
    (sizes, rest)
}

/// An `objects-1` value that points at pieces: `u8 0x80, varint record length, varint first
/// piece, varint piece count`, then the record's last bytes.
#[derive(Debug)]
pub(crate) struct Pointer<'a> {
    pub(crate) len: u64,
    pub(crate) first: u64,
    pub(crate) count: u64,
    pub(crate) tail: &'a [u8],
}

impl<'a> Pointer<'a> {
    /// `None` when the value is a record itself.
    pub(crate) fn parse(v: &'a [u8]) -> Option<std::result::Result<Pointer<'a>, String>> {
        if v.first() != Some(&POINTER) {
            return None;
        }
        let mut r = crate::codec::Reader::new(&v[1..], "piece pointer");
        let mut parse = || -> std::result::Result<Pointer<'a>, crate::codec::DecodeError> {
            let len = r.varint()?;
            let first = r.varint()?;
            let count = r.varint()?;
            Ok(Pointer {
                len,
                first,
                count,
                tail: r.rest(),
            })
        };
        Some(parse().map_err(|e| e.to_string()).and_then(|p| {
            if p.len > record::MAX_RAW + 1024 || p.count > p.len / PIECED_MIN as u64 + 1 {
                Err("piece pointer out of range".to_owned())
            } else {
                Ok(p)
            }
        }))
    }

    fn encode(len: u64, first: u64, count: u64, tail: &[u8]) -> Vec<u8> {
        let mut w = crate::codec::Writer::new();
        w.u8(POINTER);
        w.varint(len);
        w.varint(first);
        w.varint(count);
        w.raw(tail);
        w.buf
    }
}

/// A stored record: borrowed from its page, or put together from pieces.
pub(crate) enum RecordBytes<'a> {
    Stored(redb::AccessGuard<'a, &'static [u8]>),
    Assembled(Vec<u8>),
}

impl std::ops::Deref for RecordBytes<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            RecordBytes::Stored(g) => g.value(),
            RecordBytes::Assembled(v) => v,
        }
    }
}

/// Where records are read from: the object table, the pieces of large records and the
/// segments of packed small ones.
pub(crate) trait RecordSource {
    /// The record stored under `id`, put together if it is in pieces.
    fn record(&self, id: &ObjectId) -> Result<Option<RecordBytes<'_>>>;
    /// The start of the record stored under `id`, at least its whole header (for a record in
    /// pieces, its first piece): for reading headers without putting large records together.
    fn record_head(&self, id: &ObjectId) -> Result<Option<RecordBytes<'_>>>;
    /// Stored ids starting with `prefix`, other than `this`.
    fn prefixed(&self, prefix: &[u8; record::SHORT_BASE], this: &ObjectId)
    -> Result<Vec<ObjectId>>;
}

/// The object table with the pieces table (absent in a format-1 repository never written to
/// by a format-2 build) and the segments table (absent before format 4).
pub(crate) struct Objects<'a, O, P> {
    pub(crate) objects: &'a O,
    pub(crate) pieces: Option<&'a P>,
    pub(crate) segments: Option<&'a P>,
}

/// [`Objects`] of a read transaction.
pub(crate) type ReadObjects<'a> = Objects<
    'a,
    redb::ReadOnlyTable<&'static [u8; 32], &'static [u8]>,
    redb::ReadOnlyTable<u64, &'static [u8]>,
>;

/// [`Objects`] of a write transaction.
pub(crate) type WriteObjects<'a, 't> = Objects<
    'a,
    redb::Table<'t, &'static [u8; 32], &'static [u8]>,
    redb::Table<'t, u64, &'static [u8]>,
>;

/// Puts a pieced record together and checks its length.
pub(crate) fn assemble<P>(id: &ObjectId, p: &Pointer<'_>, pieces: Option<&P>) -> Result<Vec<u8>>
where
    P: ReadableTable<u64, &'static [u8]>,
{
    let mut out = Vec::new();
    assemble_into(id, p, pieces, &mut out)?;
    Ok(out)
}

/// [`assemble`] into `out` (its earlier content replaced, its buffer reused).
fn assemble_into<P>(
    id: &ObjectId,
    p: &Pointer<'_>,
    pieces: Option<&P>,
    out: &mut Vec<u8>,
) -> Result<()>
where
    P: ReadableTable<u64, &'static [u8]>,
{
    let Some(pieces) = pieces else {
        return Err(Error::corrupt(
            *id,
            "stored in pieces, but there is no pieces table",
        ));
    };
    out.clear();
    out.reserve(usize::try_from(p.len).unwrap_or(0));
    for n in p.first..p.first.saturating_add(p.count) {
        let Some(g) = pieces.get(n).db_err()? else {
            return Err(Error::corrupt(*id, format!("piece {n} is missing")));
        };
        out.extend_from_slice(g.value());
        if out.len() as u64 > p.len {
            break;
        }
    }
    out.extend_from_slice(p.tail);
    if out.len() as u64 != p.len {
        return Err(Error::corrupt(
            *id,
            "pieces do not add up to the record's length",
        ));
    }
    Ok(())
}

/// [`load_raw`] for a reader that loads one object after another into the same buffer: a
/// whole object (plain or compressed) is decoded into `out`, reusing its allocation, and a
/// record stored in pieces is put together in a buffer of the thread, reused too (fresh
/// buffers per chunk are faulted in again each time once the allocator returns freed memory
/// at once, ADR 0021). Deltas go through [`load_raw`].
pub(crate) fn load_raw_reusing<O, P>(
    src: &Objects<'_, O, P>,
    id: &ObjectId,
    out: &mut Vec<u8>,
) -> Result<ObjType>
where
    O: ReadableTable<&'static [u8; 32], &'static [u8]>,
    P: ReadableTable<u64, &'static [u8]>,
{
    let Some(g) = src.objects.get(&id.0).db_err()? else {
        return Err(Error::Missing(*id));
    };
    if g.value().first() == Some(&crate::segment::PACKED) {
        drop(g);
        let (ty, raw) = load_raw(src, id)?;
        *out = raw;
        return Ok(ty);
    }
    let decoded = match Pointer::parse(g.value()) {
        None => {
            let rec = Record::parse(g.value()).map_err(|e| Error::corrupt(*id, e))?;
            let whole = rec
                .decode_whole_into(out)
                .map_err(|e| Error::corrupt(*id, e))?;
            whole.then_some((rec.ty, rec.payload_hash))
        }
        Some(p) => {
            let p = p.map_err(|e| Error::corrupt(*id, e))?;
            ASSEMBLED.with(|cell| -> Result<Option<(ObjType, Option<ObjectId>)>> {
                let mut buf = cell.borrow_mut();
                assemble_into(id, &p, src.pieces, &mut buf)?;
                let res = {
                    let rec = Record::parse(&buf).map_err(|e| Error::corrupt(*id, e))?;
                    let whole = rec
                        .decode_whole_into(out)
                        .map_err(|e| Error::corrupt(*id, e))?;
                    whole.then_some((rec.ty, rec.payload_hash))
                };
                if buf.capacity() > ASSEMBLED_KEEP {
                    *buf = Vec::new();
                }
                Ok(res)
            })?
        }
    };
    if let Some((ty, payload_hash)) = decoded {
        if ObjectId::of(out) != payload_hash.unwrap_or(*id) {
            return Err(Error::corrupt(*id, "content does not match its id"));
        }
        return Ok(ty);
    }
    drop(g);
    let (ty, raw) = load_raw(src, id)?;
    *out = raw;
    Ok(ty)
}

/// Largest buffer [`load_raw_reusing`] keeps per thread for putting records together (a
/// chunk's record is at most about 512 KiB).
const ASSEMBLED_KEEP: usize = 1 << 20;

thread_local! {
    static ASSEMBLED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl<O, P> Objects<'_, O, P>
where
    O: ReadableTable<&'static [u8; 32], &'static [u8]>,
    P: ReadableTable<u64, &'static [u8]>,
{
    /// The record of `id` when its index entry `value` points into a segment; `None` when it
    /// does not.
    fn segment_record(&self, id: &ObjectId, value: &[u8]) -> Result<Option<Vec<u8>>> {
        match crate::segment::Packed::parse(value) {
            None => Ok(None),
            Some(p) => {
                let p = p.map_err(|e| Error::corrupt(*id, e))?;
                crate::segment::read_packed(id, &p, self.segments, self.pieces).map(Some)
            }
        }
    }
}

impl<O, P> RecordSource for Objects<'_, O, P>
where
    O: ReadableTable<&'static [u8; 32], &'static [u8]>,
    P: ReadableTable<u64, &'static [u8]>,
{
    fn record(&self, id: &ObjectId) -> Result<Option<RecordBytes<'_>>> {
        let Some(g) = self.objects.get(&id.0).db_err()? else {
            return Ok(None);
        };
        if let Some(v) = self.segment_record(id, g.value())? {
            return Ok(Some(RecordBytes::Assembled(v)));
        }
        let assembled = match Pointer::parse(g.value()) {
            None => None,
            Some(p) => {
                let p = p.map_err(|e| Error::corrupt(*id, e))?;
                Some(assemble(id, &p, self.pieces)?)
            }
        };
        Ok(Some(match assembled {
            Some(v) => RecordBytes::Assembled(v),
            None => RecordBytes::Stored(g),
        }))
    }
    fn record_head(&self, id: &ObjectId) -> Result<Option<RecordBytes<'_>>> {
        let Some(g) = self.objects.get(&id.0).db_err()? else {
            return Ok(None);
        };
        if let Some(v) = self.segment_record(id, g.value())? {
            return Ok(Some(RecordBytes::Assembled(v)));
        }
        let first = match Pointer::parse(g.value()) {
            None => None,
            Some(p) => {
                let p = p.map_err(|e| Error::corrupt(*id, e))?;
                if p.count == 0 {
                    Some(RecordBytes::Assembled(p.tail.to_vec()))
                } else {
                    let pieces = self.pieces.ok_or_else(|| {
                        Error::corrupt(*id, "stored in pieces, but there is no pieces table")
                    })?;
                    let piece = pieces.get(p.first).db_err()?.ok_or_else(|| {
                        Error::corrupt(*id, format!("piece {} is missing", p.first))
                    })?;
                    Some(RecordBytes::Stored(piece))
                }
            }
        };
        Ok(Some(first.unwrap_or(RecordBytes::Stored(g))))
    }
    fn prefixed(
        &self,
        prefix: &[u8; record::SHORT_BASE],
        this: &ObjectId,
    ) -> Result<Vec<ObjectId>> {
        with_prefix(self.objects, prefix, this)
    }
}

/// Longest delta chain followed before the repository is declared corrupt.
const MAX_CHAIN_FOLLOW: usize = 4096;

/// Objects decoded in the middle of delta chains, shared by every view of one `Repo`.
///
/// Reading old versions one after another (a sync sending history oldest first, `log -p`)
/// walks the same chains again and again; each walk decodes every newer version on the way,
/// so keeping those makes the next read stop early. Ids name content, so entries never go
/// stale. Bounded by bytes; cleared whole when full.
#[derive(Debug)]
pub(crate) struct RawCache {
    map: crate::id::IdMap<(ObjType, std::sync::Arc<[u8]>)>,
    bytes: usize,
    /// The most bytes kept; a version larger than a sixteenth of it is not kept.
    limit: usize,
}

/// A cache shared between a repository and its views.
pub(crate) type SharedCache = std::sync::Arc<std::sync::Mutex<RawCache>>;

impl RawCache {
    /// An empty cache of at most `limit` bytes, to share between a repository and its views.
    pub(crate) fn shared(limit: usize) -> SharedCache {
        std::sync::Arc::new(std::sync::Mutex::new(RawCache {
            map: Default::default(),
            bytes: 0,
            limit,
        }))
    }
    fn get(cache: &SharedCache, id: &ObjectId) -> Option<(ObjType, std::sync::Arc<[u8]>)> {
        let c = cache.lock().ok()?;
        c.map.get(id).cloned()
    }
    fn put(cache: &SharedCache, id: ObjectId, ty: ObjType, raw: &[u8]) {
        let Ok(mut c) = cache.lock() else {
            return;
        };
        if raw.len() > c.limit / 16 {
            return;
        }
        if c.bytes + raw.len() > c.limit {
            c.map.clear();
            c.bytes = 0;
        }
        if c.map.insert(id, (ty, raw.into())).is_none() {
            c.bytes += raw.len();
        }
    }
}

/// Loads an object's raw bytes, following and verifying its delta chain.
pub(crate) fn load_raw<T>(table: &T, id: &ObjectId) -> Result<(ObjType, Vec<u8>)>
where
    T: RecordSource,
{
    load_raw_at(table, id, 0, None)
}

/// [`load_raw`] that stops at objects found in `cache` and remembers the versions it decodes
/// on the way.
pub(crate) fn load_raw_cached<T>(
    table: &T,
    id: &ObjectId,
    cache: &SharedCache,
) -> Result<(ObjType, Vec<u8>)>
where
    T: RecordSource,
{
    if let Some((ty, raw)) = RawCache::get(cache, id) {
        return Ok((ty, raw.to_vec()));
    }
    load_raw_at(table, id, 0, Some(cache))
}

/// How deep [`load_raw_at`] recurses to tell apart several bases sharing a short prefix.
const MAX_AMBIGUOUS_DEPTH: u32 = 4;

fn load_raw_at<T>(
    table: &T,
    id: &ObjectId,
    depth: u32,
    cache: Option<&SharedCache>,
) -> Result<(ObjType, Vec<u8>)>
where
    T: RecordSource,
{
    // Most objects are stored whole: decode straight from the stored value, one copy. A delta's
    // stored bytes are kept as the first link of its chain.
    let mut first = {
        let Some(g) = table.record(id)? else {
            return Err(Error::Missing(*id));
        };
        let rec = Record::parse(&g).map_err(|e| Error::corrupt(*id, e))?;
        if rec.is_full() {
            let out = rec.decode(None).map_err(|e| Error::corrupt(*id, e))?;
            check_hash(id, &rec, &out)?;
            return Ok((rec.ty, out));
        }
        Some(g.to_vec())
    };
    let mut chain: Vec<(ObjectId, Vec<u8>)> = Vec::new();
    // The base of the last delta in `chain`, when it had to be found by trial decoding.
    let mut resolved: Option<Vec<u8>> = None;
    let mut cur = *id;
    loop {
        if !chain.is_empty()
            && let Some(c) = cache
            && let Some((_, raw)) = RawCache::get(c, &cur)
        {
            // A newer version decoded earlier: the chain can start from it.
            resolved = Some(raw.to_vec());
            break;
        }
        let stored = match first.take() {
            Some(b) => Some(b),
            None => table.record(&cur)?.map(|g| g.to_vec()),
        };
        let bytes = match stored {
            Some(b) => b,
            None if chain.is_empty() => return Err(Error::Missing(cur)),
            None => {
                return Err(Error::corrupt(
                    chain[0].0,
                    format!("delta base {} is missing", cur.short()),
                ));
            }
        };
        let rec = Record::parse(&bytes).map_err(|e| Error::corrupt(cur, e))?;
        let next = match rec.enc {
            Encoding::Delta(base) => Some(base),
            Encoding::DeltaShort(prefix) => {
                let candidates = table.prefixed(&prefix, &cur)?;
                match candidates.as_slice() {
                    [] => {
                        return Err(Error::corrupt(
                            cur,
                            format!("delta base {}.. is missing", hex_prefix(&prefix)),
                        ));
                    }
                    [one] => Some(*one),
                    several => {
                        if depth >= MAX_AMBIGUOUS_DEPTH {
                            return Err(Error::corrupt(cur, "ambiguous delta bases nest too deep"));
                        }
                        let mut found = None;
                        for c in several {
                            let Ok((_, base_raw)) = load_raw_at(table, c, depth + 1, None) else {
                                continue;
                            };
                            if let Ok(out) = rec.decode(Some(&base_raw))
                                && check_hash(&cur, &rec, &out).is_ok()
                            {
                                found = Some(base_raw);
                                break;
                            }
                        }
                        resolved = Some(found.ok_or_else(|| {
                            Error::corrupt(cur, "no object with its base prefix decodes it")
                        })?);
                        None
                    }
                }
            }
            _ => None,
        };
        chain.push((cur, bytes));
        match next {
            Some(base) => {
                if chain.len() >= MAX_CHAIN_FOLLOW {
                    return Err(Error::corrupt(*id, "delta chain too long or cyclic"));
                }
                cur = base;
            }
            None => break,
        }
    }
    let mut raw: Option<Vec<u8>> = resolved;
    let mut ty = ObjType::Blob;
    let last = chain.len().saturating_sub(1);
    for (i, (oid, bytes)) in chain.iter().enumerate().rev() {
        let rec = Record::parse(bytes).map_err(|e| Error::corrupt(*oid, e))?;
        let out = rec
            .decode(raw.as_deref())
            .map_err(|e| Error::corrupt(*oid, e))?;
        check_hash(oid, &rec, &out)?;
        if let Some(c) = cache
            && i != last
        {
            // Keep the versions decoded from deltas, the one asked for included: readers
            // going through history one version after another start from it next time.
            RawCache::put(c, *oid, rec.ty, &out);
        }
        ty = rec.ty;
        raw = Some(out);
    }
    let raw = raw.ok_or_else(|| Error::corrupt(*id, "empty delta chain"))?;
    Ok((ty, raw))
}

/// Stored ids starting with `prefix`, other than `this`.
pub(crate) fn with_prefix<T>(
    table: &T,
    prefix: &[u8; record::SHORT_BASE],
    this: &ObjectId,
) -> Result<Vec<ObjectId>>
where
    T: ReadableTable<&'static [u8; 32], &'static [u8]>,
{
    let (lo, hi) = record::prefix_range(prefix);
    let mut out = Vec::new();
    for item in table.range::<&[u8; 32]>(&lo..=&hi).db_err()? {
        let (k, _) = item.db_err()?;
        let id = ObjectId(*k.value());
        if id != *this {
            out.push(id);
        }
    }
    Ok(out)
}

fn hex_prefix(p: &[u8]) -> String {
    hex::encode(p)
}

fn check_hash(id: &ObjectId, rec: &Record<'_>, raw: &[u8]) -> Result<()> {
    let expect = rec.payload_hash.unwrap_or(*id);
    if ObjectId::of(raw) != expect {
        return Err(Error::corrupt(*id, "content does not match its id"));
    }
    Ok(())
}

/// The type recorded for an object, without decoding it.
pub(crate) fn object_type<T>(table: &T, id: &ObjectId) -> Result<Option<ObjType>>
where
    T: RecordSource,
{
    match table.record_head(id)? {
        Some(g) => {
            let rec = Record::parse(&g).map_err(|e| Error::corrupt(*id, e))?;
            Ok(Some(rec.ty))
        }
        None => Ok(None),
    }
}

/// Whether an object's record is whole (not a delta), without decoding it; `None` if absent.
pub(crate) fn record_is_whole<T>(table: &T, id: &ObjectId) -> Result<Option<bool>>
where
    T: RecordSource,
{
    match table.record_head(id)? {
        Some(g) => {
            let rec = Record::parse(&g).map_err(|e| Error::corrupt(*id, e))?;
            Ok(Some(rec.is_full()))
        }
        None => Ok(None),
    }
}

/// Stores (or replaces) the record of `id`: small records as they are, large ones in pieces
/// that fill their pages exactly. The pieces of a record it replaces are removed.
pub(crate) fn store_record(
    objects: &mut redb::Table<'_, &'static [u8; 32], &'static [u8]>,
    pieces: &mut redb::Table<'_, u64, &'static [u8]>,
    id: &ObjectId,
    rec: &[u8],
) -> Result<()> {
    let value = pieced_value(pieces, rec, MAX_PIECE_ORDER)?;
    let old = objects
        .insert(&id.0, value.as_deref().unwrap_or(rec))
        .db_err()?
        .map(|g| g.value().to_vec());
    if let Some(old) = old {
        remove_pieces(pieces, id, &old)?;
    }
    Ok(())
}

/// Stores a segment (or replaces one) under `n` in `table`, in pieces when it is long.
pub(crate) fn store_value(
    table: &mut redb::Table<'_, u64, &'static [u8]>,
    pieces: &mut redb::Table<'_, u64, &'static [u8]>,
    n: u64,
    bytes: &[u8],
) -> Result<()> {
    // Pieces of one page each: a segment is read whole once (then cached), and single pages
    // can always move down when compaction gives the file's free space back, where pieces of
    // several pages stop it at the first one that finds no free run of its size below.
    let value = pieced_value(pieces, bytes, 0)?;
    let old = table
        .insert(n, value.as_deref().unwrap_or(bytes))
        .db_err()?
        .map(|g| g.value().to_vec());
    if let Some(old) = old {
        remove_pieces(pieces, &ObjectId::ZERO, &old)?;
    }
    Ok(())
}

/// For bytes of at least [`PIECED_MIN`]: stores their pieces and returns the pointer to store
/// in their place; `None` (nothing stored) for shorter ones.
fn pieced_value(
    pieces: &mut redb::Table<'_, u64, &'static [u8]>,
    rec: &[u8],
    max_order: u32,
) -> Result<Option<Vec<u8>>> {
    Ok(if rec.len() < PIECED_MIN {
        None
    } else {
        let (sizes, tail) = piece_plan_up_to(rec.len(), max_order);
        let first = match pieces.last().db_err()? {
            Some((k, _)) => k.value() + 1,
            None => 0,
        };
        let mut at = 0;
        for (n, len) in sizes.iter().enumerate() {
            pieces
                .insert(first + n as u64, &rec[at..at + len])
                .db_err()?;
            at += len;
        }
        debug_assert_eq!(rec.len() - at, tail);
        Some(Pointer::encode(
            rec.len() as u64,
            first,
            sizes.len() as u64,
            &rec[at..],
        ))
    })
}

/// Every stored id, those packed in segments in segment order (the rest after them, by id):
/// the order that reads every record decoding each segment once.
pub(crate) fn storage_order<T>(objects: &T) -> Result<Vec<ObjectId>>
where
    T: ReadableTable<&'static [u8; 32], &'static [u8]>,
{
    let mut keyed: Vec<((u64, u64), ObjectId)> = Vec::new();
    for item in objects.iter().db_err()? {
        let (k, v) = item.db_err()?;
        let at = match crate::segment::Packed::parse(v.value()) {
            Some(Ok(p)) => (p.segment, p.offset),
            _ => (u64::MAX, 0),
        };
        keyed.push((at, ObjectId(*k.value())));
    }
    keyed.sort();
    Ok(keyed.into_iter().map(|(_, id)| id).collect())
}

/// The length of the record an `objects-1` value holds or points at.
pub(crate) fn stored_len(value: &[u8]) -> u64 {
    if let Some(Ok(p)) = Pointer::parse(value) {
        return p.len;
    }
    if let Some(Ok(p)) = crate::segment::Packed::parse(value) {
        return p.len;
    }
    value.len() as u64
}

/// Removes the pieces an `objects-1` value points at (nothing for a plain record).
pub(crate) fn remove_pieces(
    pieces: &mut redb::Table<'_, u64, &'static [u8]>,
    id: &ObjectId,
    value: &[u8],
) -> Result<()> {
    if let Some(p) = Pointer::parse(value) {
        let p = p.map_err(|e| Error::corrupt(*id, e))?;
        for n in p.first..p.first.saturating_add(p.count) {
            pieces.remove(n).db_err()?;
        }
    }
    Ok(())
}

/// Moves every large record stored whole in `objects-1` (format 1) into pieces, in the
/// caller's transaction. Returns how many moved. Holds one record in memory at a time.
pub(crate) fn convert_large_records(txn: &redb::WriteTransaction) -> Result<u64> {
    let mut objects = txn.open_table(OBJECTS).db_err()?;
    let mut pieces = txn.open_table(PIECES).db_err()?;
    let mut large = Vec::new();
    for item in objects.iter().db_err()? {
        let (k, v) = item.db_err()?;
        let v = v.value();
        if v.len() >= PIECED_MIN && Pointer::parse(v).is_none() {
            large.push(ObjectId(*k.value()));
        }
    }
    for id in &large {
        let rec = match objects.get(&id.0).db_err()? {
            Some(g) => g.value().to_vec(),
            None => continue,
        };
        store_record(&mut objects, &mut pieces, id, &rec)?;
    }
    Ok(large.len() as u64)
}

/// The write side of one transaction: every table open.
pub(crate) struct WriteCtx<'t> {
    pub(crate) objects: redb::Table<'t, &'static [u8; 32], &'static [u8]>,
    pub(crate) chains: redb::Table<'t, u64, u32>,
    pub(crate) refs: redb::Table<'t, &'static str, &'static [u8]>,
    pub(crate) reflog: redb::Table<'t, (&'static str, u64), &'static [u8]>,
    pub(crate) kv: redb::Table<'t, &'static str, &'static [u8]>,
    pub(crate) xref: redb::Table<'t, &'static [u8], &'static [u8]>,
    pub(crate) pieces: redb::Table<'t, u64, &'static [u8]>,
    pub(crate) segments: redb::Table<'t, u64, &'static [u8]>,
    pub(crate) gc: redb::Table<'t, &'static [u8; 32], u64>,
    /// Whether `gc` holds anything (read once per transaction).
    pub(crate) gc_pending: bool,
    /// Stored objects this transaction's writer asked about (to reuse them) that the garbage
    /// collector had listed; taken off the list when the transaction ends.
    pub(crate) reused: std::cell::RefCell<Vec<ObjectId>>,
}

/// Largest chain depth allowed for an object of `raw_len` bytes: reading the deepest object of
/// a chain decodes at most about 64 MiB.
pub(crate) fn max_depth(raw_len: u64) -> u32 {
    let by_cost = (64u64 << 20) / raw_len.max(1);
    by_cost.clamp(1, 256) as u32
}

/// The record of an object stored whole, refusing objects over the size limit.
pub(crate) fn whole_record(
    ty: ObjType,
    raw: &[u8],
    payload_hash: Option<&ObjectId>,
) -> Result<Vec<u8>> {
    if raw.len() as u64 > record::MAX_RAW {
        return Err(Error::FileTooLarge);
    }
    Ok(record::encode_full(ty, raw, payload_hash))
}

impl<'t> WriteCtx<'t> {
    /// Whether the object is stored. A writer asks before reusing a stored object; one the
    /// garbage collector had found unreachable is taken off its list, so the next collection
    /// sees it afresh (referenced by then, or young again).
    pub(crate) fn has(&self, id: &ObjectId) -> Result<bool> {
        let found = self.objects.get(&id.0).db_err()?.is_some();
        if found && self.gc_pending && self.gc.get(&id.0).db_err()?.is_some() {
            self.reused.borrow_mut().push(*id);
        }
        Ok(found)
    }

    /// Takes the objects reused by this transaction off the collector's list.
    pub(crate) fn unlist_reused(&mut self) -> Result<()> {
        for id in self.reused.take() {
            self.gc.remove(&id.0).db_err()?;
        }
        Ok(())
    }

    /// Stores an object whole unless it is there already. Returns whether it was new.
    pub(crate) fn put(
        &mut self,
        ty: ObjType,
        id: &ObjectId,
        raw: &[u8],
        payload_hash: Option<&ObjectId>,
    ) -> Result<bool> {
        if self.has(id)? {
            return Ok(false);
        }
        self.insert_whole(ty, id, raw, payload_hash)?;
        Ok(true)
    }

    /// Stores an object whole; the caller knows it is not stored yet.
    pub(crate) fn insert_whole(
        &mut self,
        ty: ObjType,
        id: &ObjectId,
        raw: &[u8],
        payload_hash: Option<&ObjectId>,
    ) -> Result<()> {
        let rec = whole_record(ty, raw, payload_hash)?;
        self.insert_record(id, &rec)
    }

    /// Stores an encoded record; the caller knows the object is not stored yet.
    pub(crate) fn insert_record(&mut self, id: &ObjectId, rec: &[u8]) -> Result<()> {
        store_record(&mut self.objects, &mut self.pieces, id, rec)
    }

    /// Stores an already encoded record unless the object is there already.
    pub(crate) fn put_encoded(&mut self, id: &ObjectId, rec: &[u8]) -> Result<bool> {
        if self.has(id)? {
            return Ok(false);
        }
        self.insert_record(id, rec)?;
        Ok(true)
    }

    /// The tables records are read from.
    pub(crate) fn source(&self) -> WriteObjects<'_, 't> {
        Objects {
            objects: &self.objects,
            pieces: Some(&self.pieces),
            segments: Some(&self.segments),
        }
    }

    /// Fossil-style reverse delta: re-stores `old` as a delta against `new`, which stays whole,
    /// so the newest version reads fastest. Does nothing when that would not pay, would make a
    /// chain too long, or either object is not whole and of the same type.
    pub(crate) fn deltify(&mut self, old: &ObjectId, new: &ObjectId) -> Result<bool> {
        if old == new {
            return Ok(false);
        }
        let old_bytes = match self.source().record(old)? {
            Some(g) => g.to_vec(),
            None => return Ok(false),
        };
        let new_bytes = match self.source().record(new)? {
            Some(g) => g.to_vec(),
            None => return Ok(false),
        };
        let old_rec = Record::parse(&old_bytes).map_err(|e| Error::corrupt(*old, e))?;
        let new_rec = Record::parse(&new_bytes).map_err(|e| Error::corrupt(*new, e))?;
        if !old_rec.is_full() || !new_rec.is_full() || old_rec.ty != new_rec.ty {
            return Ok(false);
        }
        let old_depth = self
            .chains
            .get(chain_key(old))
            .db_err()?
            .map(|g| g.value())
            .unwrap_or(0);
        let new_depth = self
            .chains
            .get(chain_key(new))
            .db_err()?
            .map(|g| g.value())
            .unwrap_or(0);
        let limit = max_depth(old_rec.raw_len.max(new_rec.raw_len));
        if old_depth + 1 > limit {
            return Ok(false);
        }
        let old_raw = old_rec.decode(None).map_err(|e| Error::corrupt(*old, e))?;
        check_hash(old, &old_rec, &old_raw)?;
        let new_raw = new_rec.decode(None).map_err(|e| Error::corrupt(*new, e))?;
        check_hash(new, &new_rec, &new_raw)?;
        // The compact form names the base by a prefix of its id; use it only while that
        // prefix names nothing else (readers still cope if a later object shares it).
        let short = with_prefix(&self.objects, &record::short_base(new), new)?.is_empty();
        let Some(delta) = record::encode_delta(
            old_rec.ty,
            &old_raw,
            *new,
            &new_raw,
            old_rec.payload_hash.as_ref(),
            short,
        ) else {
            return Ok(false);
        };
        // Only worth it when the delta is clearly smaller than what is stored now.
        if delta.len() * 4 > old_bytes.len() * 3 {
            return Ok(false);
        }
        self.insert_record(old, &delta)?;
        self.chains.remove(chain_key(old)).db_err()?;
        self.chains
            .insert(chain_key(new), new_depth.max(old_depth + 1))
            .db_err()?;
        Ok(true)
    }

    pub(crate) fn get_raw(&self, id: &ObjectId) -> Result<(ObjType, Vec<u8>)> {
        load_raw(&self.source(), id)
    }

    pub(crate) fn get_ref(&self, name: &str) -> Result<Option<RefValue>> {
        match self.refs.get(name).db_err()? {
            Some(g) => Ok(Some(decode_ref(name, g.value())?)),
            None => Ok(None),
        }
    }

    /// Moves a ref if it still holds `expected` (compare-and-swap); logs the move.
    pub(crate) fn cas_ref(
        &mut self,
        name: &str,
        expected: Option<RefValue>,
        new: Option<RefValue>,
        reason: &str,
    ) -> Result<()> {
        let cur = self.get_ref(name)?;
        if cur != expected {
            return Err(Error::RefMoved {
                name: name.to_owned(),
                expected: expected.map(|v| v.id()),
                found: cur.map(|v| v.id()),
            });
        }
        self.set_ref(name, cur, new, reason)
    }

    /// Sets a ref unconditionally (the caller read `cur` in this transaction); logs the move.
    pub(crate) fn set_ref(
        &mut self,
        name: &str,
        cur: Option<RefValue>,
        new: Option<RefValue>,
        reason: &str,
    ) -> Result<()> {
        if cur == new {
            return Ok(());
        }
        match &new {
            Some(v) => {
                self.refs.insert(name, encode_ref(v).as_slice()).db_err()?;
            }
            None => {
                self.refs.remove(name).db_err()?;
            }
        }
        let seq = {
            let mut last = self
                .reflog
                .range((name, 0u64)..=(name, u64::MAX))
                .db_err()?;
            match last.next_back() {
                Some(entry) => entry.db_err()?.0.value().1 + 1,
                None => 0,
            }
        };
        let mv = RefMove {
            old: cur,
            new,
            time: now(),
            reason: reason.to_owned(),
        };
        self.reflog
            .insert((name, seq), mv.encode().as_slice())
            .db_err()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn no_pieces<'a>(
        t: &'a redb::ReadOnlyTable<&'static [u8; 32], &'static [u8]>,
    ) -> ReadObjects<'a> {
        Objects {
            objects: t,
            pieces: None,
            segments: None,
        }
    }

    #[test]
    fn pieces_fill_pages_and_keep_a_short_end_inline() {
        for len in [4079usize, 4080, 4081, 6200, 8000, 131_072, 524_300, 3 << 20] {
            let (sizes, tail) = piece_plan_up_to(len, MAX_PIECE_ORDER);
            assert_eq!(sizes.iter().sum::<usize>() + tail, len, "{len}");
            assert!(tail <= INLINE_TAIL_MAX, "{len}");
            // Every piece but a long end fills its page exactly.
            for s in &sizes[..sizes.len().saturating_sub(1)] {
                assert!((s + LEAF_OVERHEAD).is_power_of_two(), "{len}: {s}");
            }
        }
        assert_eq!(piece_plan_up_to(100, MAX_PIECE_ORDER), (vec![], 100));
        // One-page pieces (segments): every piece fills one page.
        let (sizes, tail) = piece_plan_up_to(99_000, 0);
        assert!(sizes.iter().all(|&s| s == PIECED_MIN) && tail <= INLINE_TAIL_MAX);
        assert_eq!(sizes.len() * PIECED_MIN + tail, 99_000);
    }

    #[test]
    fn a_compact_delta_finds_its_base_among_ids_sharing_the_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("t.redb")).unwrap();
        let base: Vec<u8> = (0..20_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let mut new = base.clone();
        new[7_000] ^= 0x5a;
        let bid = ObjectId::of(&base);
        let nid = ObjectId::of(&new);
        let delta = record::encode_delta(ObjType::Blob, &new, bid, &base, None, true).unwrap();
        // A decoy whose key shares the base's prefix: its content does not match its key.
        let mut decoy = bid;
        decoy.0[31] ^= 1;
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(OBJECTS).unwrap();
            t.insert(
                &bid.0,
                record::encode_full(ObjType::Blob, &base, None).as_slice(),
            )
            .unwrap();
            t.insert(
                &decoy.0,
                record::encode_full(ObjType::Blob, b"decoy", None).as_slice(),
            )
            .unwrap();
            t.insert(&nid.0, delta.as_slice()).unwrap();
        }
        tx.commit().unwrap();
        let rx = redb::ReadableDatabase::begin_read(&db).unwrap();
        let t = rx.open_table(OBJECTS).unwrap();
        assert_eq!(
            with_prefix(&t, &record::short_base(&bid), &nid)
                .unwrap()
                .len(),
            2
        );
        let (ty, raw) = load_raw(&no_pieces(&t), &nid).unwrap();
        assert_eq!(ty, ObjType::Blob);
        assert_eq!(raw, new);
        // Without the real base, the delta is reported corrupt, not decoded from the decoy.
        drop(t);
        drop(rx);
        let tx = db.begin_write().unwrap();
        tx.open_table(OBJECTS).unwrap().remove(&bid.0).unwrap();
        tx.commit().unwrap();
        let rx = redb::ReadableDatabase::begin_read(&db).unwrap();
        let t = rx.open_table(OBJECTS).unwrap();
        let err = load_raw(&no_pieces(&t), &nid).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    }
}
