//! Segments (format 4): small object records grouped into compressed frames.
//!
//! A record under [`PIECED_MIN`](crate::db::PIECED_MIN) bytes costs a B-tree entry and is
//! compressed alone; grouping many records of one kind — trees with trees of the same
//! directory, versions of one file together, commits with commits — into one zstd frame lets
//! each compress against its neighbours, as a git pack does. A record in a segment is stored
//! whole as it decodes (encoding 0, "plain") or as its delta; its `objects-1` value becomes a
//! short pointer: `u8 0x81, varint segment, varint offset, varint length`, offset and length
//! into the segment's decompressed bytes.
//!
//! A segment (`segments-4`: u64 → value) is `u8 1, [16] the first 16 bytes of the BLAKE3 of
//! the decompressed bytes, varint decompressed length, zstd frame`. A value of at least
//! [`PIECED_MIN`](crate::db::PIECED_MIN) bytes is kept in `pieces-2` like a large record
//! and the `segments-4` value is then a piece pointer (`0x80 ...`). Decoded segments are kept
//! in a small cache shared by the process, keyed by that hash, so reading neighbours (a tree
//! walk, a checkout, a clone's send) decompresses each segment once; the hash also checks the
//! decompressed bytes, so a damaged segment is reported as corrupt, never misread, and loses
//! only its own records.
//!
//! New records are written loose (as before) and packed by [`pack`], which compaction runs
//! (every import, gc, upgrade and clone ends with one): loose small records, and the live
//! records of segments that are mostly dead or small, are ordered and cut into new segments
//! in one write transaction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use redb::{ReadableTable, WriteTransaction};

use crate::db::{self, OBJECTS, PIECED_MIN, PIECES, POINTER, Pointer, REFS, SEGMENTS};
use crate::error::{DbResultExt as _, Error, Result};
use crate::id::{IdMap, IdSet, ObjectId};
use crate::object::{EntryKind, Tree};
use crate::record::{self, Encoding, ObjType, Record};

/// First byte of an `objects-1` value that points into a segment (never an object type code,
/// never [`POINTER`]).
pub(crate) const PACKED: u8 = 0x81;
/// First byte of a segment: zstd-compressed records.
const SEGMENT_ZSTD: u8 = 1;
/// Bytes of the content hash in a segment's header.
const HASH_LEN: usize = 16;
/// Decompressed bytes per segment: the pack cuts a segment at the first change of path or
/// type after three quarters of this, or once it holds this much. Measured on two imported
/// histories (docs/adr/0035): 128 KiB → 256 KiB → 512 KiB → 1 MiB took the corpus from
/// 8.83 to 8.37, 8.02 and 7.87 MB; larger segments cost more per cold read of one record.
pub(crate) const SEGMENT_TARGET: usize = 512 << 10;
/// Largest decompressed segment a reader accepts.
const SEGMENT_MAX: u64 = 4 << 20;
/// zstd level of segments: written once by a pack, read many times. Measured on the corpus
/// with 512 KiB segments: level 9 8.13 MB, 12 8.02 MB, 16 7.89 MB, 19 7.87 MB, the last two
/// taking 3 and 6 times as long to pack as 12 (decompression costs about the same at every
/// level).
const SEGMENT_LEVEL: i32 = 16;
/// A whole record is kept decoded in its segment when its object is at most this long
/// (longer ones keep their own compressed frame).
const PLAIN_MAX: u64 = 256 << 10;
/// Bytes of decoded segments kept by the process (at least one segment).
const CACHE_BYTES: usize = 4 << 20;

/// An `objects-1` value pointing into a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Packed {
    pub(crate) segment: u64,
    pub(crate) offset: u64,
    pub(crate) len: u64,
}

impl Packed {
    /// `None` when the value does not point into a segment.
    pub(crate) fn parse(v: &[u8]) -> Option<std::result::Result<Packed, String>> {
        if v.first() != Some(&PACKED) {
            return None;
        }
        let mut r = crate::codec::Reader::new(&v[1..], "segment pointer");
        let mut parse = || -> std::result::Result<Packed, crate::codec::DecodeError> {
            Ok(Packed {
                segment: r.varint()?,
                offset: r.varint()?,
                len: r.varint()?,
            })
        };
        Some(parse().map_err(|e| e.to_string()).and_then(|p| {
            if p.offset.saturating_add(p.len) > SEGMENT_MAX || !r.rest().is_empty() {
                Err("segment pointer out of range".to_owned())
            } else {
                Ok(p)
            }
        }))
    }

    fn encode(&self) -> Vec<u8> {
        let mut w = crate::codec::Writer::new();
        w.u8(PACKED);
        w.varint(self.segment);
        w.varint(self.offset);
        w.varint(self.len);
        w.buf
    }
}

/// A decoded segment under its content hash.
type Decoded = ([u8; HASH_LEN], Arc<[u8]>);

/// Decoded segments, most recently used last.
static CACHE: Mutex<Vec<Decoded>> = Mutex::new(Vec::new());

fn cached(hash: &[u8; HASH_LEN]) -> Option<Arc<[u8]>> {
    let mut c = CACHE.lock().ok()?;
    let at = c.iter().position(|(h, _)| h == hash)?;
    let entry = c.remove(at);
    let bytes = entry.1.clone();
    c.push(entry);
    Some(bytes)
}

fn remember(hash: [u8; HASH_LEN], bytes: Arc<[u8]>) {
    let Ok(mut c) = CACHE.lock() else {
        return;
    };
    if c.iter().any(|(h, _)| *h == hash) {
        return;
    }
    let mut held: usize = c.iter().map(|(_, b)| b.len()).sum();
    while !c.is_empty() && held + bytes.len() > CACHE_BYTES {
        held -= c.remove(0).1.len();
    }
    c.push((hash, bytes));
}

/// A segment's header: content hash and decompressed length.
struct Header {
    hash: [u8; HASH_LEN],
    raw_len: u64,
}

fn parse_header(v: &[u8]) -> std::result::Result<(Header, &[u8]), String> {
    let mut r = crate::codec::Reader::new(v, "segment");
    let err = |e: crate::codec::DecodeError| e.to_string();
    let kind = r.u8().map_err(err)?;
    let hash = r.raw(HASH_LEN).map_err(err)?;
    let raw_len = r.varint().map_err(err)?;
    if kind != SEGMENT_ZSTD {
        return Err(format!("unknown segment kind {kind}"));
    }
    if raw_len > SEGMENT_MAX {
        return Err("segment too long".to_owned());
    }
    let mut h = [0u8; HASH_LEN];
    h.copy_from_slice(hash);
    Ok((Header { hash: h, raw_len }, r.rest()))
}

fn content_hash(raw: &[u8]) -> [u8; HASH_LEN] {
    let mut h = [0u8; HASH_LEN];
    h.copy_from_slice(&blake3::hash(raw).as_bytes()[..HASH_LEN]);
    h
}

/// The decompressed bytes of segment `n`, from the cache or decoded and checked. `id` is the
/// object being read (named by errors).
fn segment_bytes<P>(
    id: &ObjectId,
    n: u64,
    segments: Option<&P>,
    pieces: Option<&P>,
) -> Result<Arc<[u8]>>
where
    P: ReadableTable<u64, &'static [u8]>,
{
    let corrupt = |why: String| Error::corrupt(*id, format!("segment {n}: {why}"));
    let segments =
        segments.ok_or_else(|| corrupt("stored in a segment, but there is none".to_owned()))?;
    let Some(g) = segments.get(n).db_err()? else {
        return Err(corrupt("missing".to_owned()));
    };
    let value = g.value();
    // The header is at the start: in the value, or in the first piece of a long segment. The
    // whole segment is put together only when it is not in the cache.
    let pointer = Pointer::parse(value).transpose().map_err(&corrupt)?;
    if let Some(p) = &pointer
        && p.count > 0
    {
        let first = pieces
            .ok_or_else(|| corrupt("in pieces, but there is no pieces table".to_owned()))?
            .get(p.first)
            .db_err()?
            .ok_or_else(|| corrupt(format!("piece {} is missing", p.first)))?;
        let (header, _) = parse_header(first.value()).map_err(&corrupt)?;
        if let Some(hit) = cached(&header.hash) {
            return Ok(hit);
        }
    }
    let whole: Option<Vec<u8>> = match &pointer {
        None => None,
        Some(p) => Some(db::assemble(id, p, pieces)?),
    };
    let bytes = whole.as_deref().unwrap_or(value);
    let (header, frame) = parse_header(bytes).map_err(&corrupt)?;
    if let Some(hit) = cached(&header.hash) {
        return Ok(hit);
    }
    let len = usize::try_from(header.raw_len).map_err(|_| corrupt("too long".to_owned()))?;
    let raw = record::decode_zstd_frame(frame, header.raw_len)
        .map_err(|e| corrupt(format!("does not decompress: {e}")))?;
    if raw.len() != len || content_hash(&raw) != header.hash {
        return Err(corrupt("does not match its hash".to_owned()));
    }
    let raw: Arc<[u8]> = raw.into();
    remember(header.hash, raw.clone());
    Ok(raw)
}

/// The record a packed pointer names.
pub(crate) fn read_packed<P>(
    id: &ObjectId,
    p: &Packed,
    segments: Option<&P>,
    pieces: Option<&P>,
) -> Result<Vec<u8>>
where
    P: ReadableTable<u64, &'static [u8]>,
{
    let seg = segment_bytes(id, p.segment, segments, pieces)?;
    let (start, end) = (p.offset as usize, p.offset.saturating_add(p.len) as usize);
    seg.get(start..end).map(<[u8]>::to_vec).ok_or_else(|| {
        Error::corrupt(
            *id,
            format!("segment {}: record out of its bounds", p.segment),
        )
    })
}

/// What [`pack`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PackReport {
    /// Records written into segments (loose ones and those moved from repacked segments).
    pub records: u64,
    /// Segments written.
    pub segments_written: u64,
    /// Segments removed (their live records moved into the new ones).
    pub segments_removed: u64,
    /// Stored bytes of the records before (loose records as stored; packed ones decompressed).
    pub bytes_before: u64,
    /// Compressed bytes of the segments written.
    pub bytes_after: u64,
}

/// Where a record goes in the pack order: kind of object, then the path it was first met at
/// (reachable ones; the rest after them by id), then the order it was met in (newest first).
type SortKey = (u8, bool, Vec<u8>, u64);

fn type_rank(ty: ObjType) -> u8 {
    match ty {
        ObjType::Commit => 0,
        ObjType::Tag => 1,
        ObjType::Tree => 2,
        ObjType::Manifest => 3,
        ObjType::ManifestNode => 4,
        ObjType::Blob => 5,
    }
}

/// Packs, in the caller's transaction: every loose small record, and the live records of
/// segments that are less than three quarters live or less than half full, into new
/// segments; removes the segments emptied. Returns what it did (nothing when there is nothing
/// loose and no segment to redo).
pub(crate) fn pack(txn: &WriteTransaction, cache: &db::SharedCache) -> Result<PackReport> {
    let mut report = PackReport::default();
    let mut objects = txn.open_table(OBJECTS).db_err()?;
    let mut pieces = txn.open_table(PIECES).db_err()?;
    let mut segments = txn.open_table(SEGMENTS).db_err()?;

    // What is where: loose small records, records in pieces that may be small files' (their
    // object short enough to keep decoded), live bytes per segment.
    let mut loose: Vec<ObjectId> = Vec::new();
    let mut pieced: IdSet = IdSet::default();
    let mut entries = 0u64;
    let mut live: HashMap<u64, (u64, Vec<ObjectId>)> = HashMap::new();
    for item in objects.iter().db_err()? {
        let (k, v) = item.db_err()?;
        let id = ObjectId(*k.value());
        let v = v.value();
        entries += 1;
        match v.first() {
            Some(&PACKED) => {
                let Some(Ok(p)) = Packed::parse(v) else {
                    // Verify and repair report it; packing leaves it alone.
                    tracing::warn!(id = %id.short(), "bad segment pointer: not repacked");
                    continue;
                };
                let e = live.entry(p.segment).or_default();
                e.0 += p.len;
                e.1.push(id);
            }
            Some(&POINTER) => {
                if let Some(Ok(p)) = Pointer::parse(v)
                    && p.count > 0
                    && let Some(g) = pieces.get(p.first).db_err()?
                    && let Ok(rec) = Record::parse(g.value())
                    && rec.raw_len <= PLAIN_MAX
                    && matches!(rec.ty, ObjType::Blob | ObjType::Tree | ObjType::Commit)
                {
                    pieced.insert(id);
                }
            }
            _ if v.len() < PIECED_MIN => loose.push(id),
            _ => {}
        }
    }
    // Segments to redo: mostly dead, or small (the last one of an earlier pack, say).
    let mut redo: Vec<u64> = Vec::new();
    let mut dead_bytes = false;
    let sized = sizes(&segments, Some(&pieces))?;
    for item in segments.iter().db_err()? {
        let (k, _) = item.db_err()?;
        let n = k.value();
        let head = sized.get(&n).map(|&(_, raw)| raw);
        let used = live.get(&n).map_or(0, |e| e.0);
        // A segment whose header does not read is left alone while records point into it
        // (verify and repair report them); one nothing points at any more goes.
        let Some(raw_len) = head else {
            if used == 0 {
                redo.push(n);
                dead_bytes = true;
            }
            continue;
        };
        if used * 4 < raw_len * 3 || raw_len < SEGMENT_TARGET as u64 / 2 {
            redo.push(n);
            dead_bytes |= used < raw_len;
        }
    }
    // Nothing loose and nothing dead: at most small segments that would come out the same.
    if loose.is_empty() && !dead_bytes && redo.len() <= 1 {
        return Ok(report);
    }
    let mut candidates: IdSet = loose.iter().copied().collect();
    for n in &redo {
        if let Some((_, ids)) = live.get(n) {
            candidates.extend(ids.iter().copied());
        }
    }
    // Records in pieces join when the walk meets them as a small file, a tree or a commit (a
    // large file's chunks, never met, stay in their pieces).
    let mut want = candidates.clone();
    want.extend(pieced.iter().copied());

    // The order: walk from the refs, newest commits first, naming every record by the path
    // it is first met at.
    let order = {
        let src = db::Objects {
            objects: &objects,
            pieces: Some(&pieces),
            segments: Some(&segments),
        };
        let refs = txn.open_table(REFS).db_err()?;
        walk_order(&src, &refs, &want, &candidates, cache)?
    };
    for id in &pieced {
        if order.contains_key(id) {
            candidates.insert(*id);
        }
    }
    drop(want);
    let mut keyed: Vec<(SortKey, ObjectId)> = Vec::with_capacity(candidates.len());
    {
        let src = db::Objects {
            objects: &objects,
            pieces: Some(&pieces),
            segments: Some(&segments),
        };
        for id in &candidates {
            let key = match order.get(id) {
                Some((ty, path, seq)) => (type_rank(*ty), false, path.clone(), *seq),
                None => {
                    let ty = match db::RecordSource::record_head(&src, id)? {
                        Some(h) => Record::parse(&h).map(|r| r.ty).unwrap_or(ObjType::Blob),
                        None => continue,
                    };
                    (type_rank(ty), true, id.0.to_vec(), 0)
                }
            };
            keyed.push((key, *id));
        }
    }
    keyed.sort();

    // Cut into segments. Records are read before their pointers change (from loose values
    // or from the old segments, which are removed at the end).
    let mut next = match segments.last().db_err()? {
        Some((k, _)) => k.value() + 1,
        None => 0,
    };
    let mut buf: Vec<u8> = Vec::with_capacity(SEGMENT_TARGET + 4096);
    let mut placed: Vec<(ObjectId, u64, u64)> = Vec::new();
    let mut moved: IdMap<Vec<u8>> = IdMap::default();
    let mut last_group: Option<(u8, Vec<u8>)> = None;
    for (key, id) in &keyed {
        // Cut at a group boundary (another type or path) once the segment is three quarters
        // full, so the versions of one path stay together.
        let group = (key.0, key.2.clone());
        if buf.len() >= SEGMENT_TARGET * 3 / 4 && last_group.as_ref() != Some(&group) {
            flush(
                &mut moved,
                &mut pieces,
                &mut segments,
                next,
                &mut buf,
                &mut placed,
                &mut report,
            )?;
            next += 1;
        }
        last_group = Some(group);
        let rec = {
            let src = db::Objects {
                objects: &objects,
                pieces: Some(&pieces),
                segments: Some(&segments),
            };
            match db::RecordSource::record(&src, id) {
                Ok(Some(r)) => r.to_vec(),
                Ok(None) => continue,
                Err(e @ Error::Corrupt { .. }) => {
                    tracing::warn!(error = %e, "a damaged record is not packed");
                    continue;
                }
                Err(e) => return Err(e),
            }
        };
        report.bytes_before += rec.len() as u64;
        // A record that does not decode stays where it is (verify and repair report it).
        let rec = match plain_form(id, rec) {
            Ok(r) => r,
            Err(e @ Error::Corrupt { .. }) => {
                tracing::warn!(error = %e, "a damaged record is not packed");
                continue;
            }
            Err(e) => return Err(e),
        };
        placed.push((*id, buf.len() as u64, rec.len() as u64));
        buf.extend_from_slice(&rec);
        if buf.len() >= SEGMENT_TARGET {
            flush(
                &mut moved,
                &mut pieces,
                &mut segments,
                next,
                &mut buf,
                &mut placed,
                &mut report,
            )?;
            next += 1;
        }
    }
    if !buf.is_empty() {
        flush(
            &mut moved,
            &mut pieces,
            &mut segments,
            next,
            &mut buf,
            &mut placed,
            &mut report,
        )?;
    }
    for n in redo {
        // A segment goes only when every record pointing into it has moved.
        if live
            .get(&n)
            .is_some_and(|(_, ids)| ids.iter().any(|id| !moved.contains_key(id)))
        {
            continue;
        }
        if let Some(old) = segments.remove(n).db_err()? {
            let old = old.value().to_vec();
            db::remove_pieces(&mut pieces, &ObjectId::ZERO, &old)?;
            report.segments_removed += 1;
        }
    }
    // Point the moved records at their segments. Their values shrink to a few bytes, which
    // would leave the leaves they sit in nearly empty: when many move, the table is written
    // anew in key order (full leaves), else updated in place.
    if moved.len() as u64 * 8 < entries {
        for (id, value) in &moved {
            if let Some(old) = objects.insert(&id.0, value.as_slice()).db_err()? {
                let old = old.value().to_vec();
                db::remove_pieces(&mut pieces, id, &old)?;
            }
        }
        return Ok(report);
    }
    let mut all: Vec<([u8; 32], Vec<u8>)> = Vec::with_capacity(entries as usize);
    for item in objects.iter().db_err()? {
        let (k, v) = item.db_err()?;
        let id = ObjectId(*k.value());
        match moved.get(&id) {
            Some(new) => {
                db::remove_pieces(&mut pieces, &id, v.value())?;
                all.push((id.0, new.clone()));
            }
            None => all.push((id.0, v.value().to_vec())),
        }
    }
    drop(objects);
    txn.delete_table(OBJECTS).db_err()?;
    let mut objects = txn.open_table(OBJECTS).db_err()?;
    for (k, v) in &all {
        objects.insert(k, v.as_slice()).db_err()?;
    }
    Ok(report)
}

/// A whole record as it goes into a segment: decoded (the segment compresses it with its
/// neighbours), unless its object is long. Deltas stay as they are.
fn plain_form(id: &ObjectId, rec: Vec<u8>) -> Result<Vec<u8>> {
    let parsed = Record::parse(&rec).map_err(|e| Error::corrupt(*id, e))?;
    if parsed.enc != Encoding::Zstd || parsed.raw_len > PLAIN_MAX {
        return Ok(rec);
    }
    let mut raw = Vec::new();
    parsed
        .decode_whole_into(&mut raw)
        .map_err(|e| Error::corrupt(*id, e))?;
    let expect = parsed.payload_hash.unwrap_or(*id);
    if ObjectId::of(&raw) != expect {
        return Err(Error::corrupt(*id, "content does not match its id"));
    }
    Ok(record::encode_plain(
        parsed.ty,
        &raw,
        parsed.payload_hash.as_ref(),
    ))
}

/// Compresses `buf` into segment `n` and points the records placed in it there.
fn flush(
    moved: &mut IdMap<Vec<u8>>,
    pieces: &mut redb::Table<'_, u64, &'static [u8]>,
    segments: &mut redb::Table<'_, u64, &'static [u8]>,
    n: u64,
    buf: &mut Vec<u8>,
    placed: &mut Vec<(ObjectId, u64, u64)>,
    report: &mut PackReport,
) -> Result<()> {
    let frame = zstd::bulk::compress(buf, SEGMENT_LEVEL).map_err(|e| Error::Io {
        path: std::path::PathBuf::from("segment"),
        source: e,
    })?;
    let mut w = crate::codec::Writer::new();
    w.u8(SEGMENT_ZSTD);
    w.raw(&content_hash(buf));
    w.varint(buf.len() as u64);
    w.raw(&frame);
    let value = w.buf;
    report.bytes_after += value.len() as u64;
    report.segments_written += 1;
    db::store_value(segments, pieces, n, &value)?;
    for (id, offset, len) in placed.drain(..) {
        let p = Packed {
            segment: n,
            offset,
            len,
        };
        moved.insert(id, p.encode());
        report.records += 1;
    }
    buf.clear();
    Ok(())
}

/// For the records in `want`: their type, the path they were first met at and when, walking
/// from every ref through commits (newest first), their trees and entries, until every record
/// of `needed` has been met.
fn walk_order<S, R>(
    src: &S,
    refs: &R,
    want: &IdSet,
    needed: &IdSet,
    cache: &db::SharedCache,
) -> Result<IdMap<(ObjType, Vec<u8>, u64)>>
where
    S: db::RecordSource,
    R: ReadableTable<&'static str, &'static [u8]>,
{
    let mut out: IdMap<(ObjType, Vec<u8>, u64)> = IdMap::default();
    let mut seq = 0u64;
    let found = std::cell::Cell::new(0usize);
    let mut note = |out: &mut IdMap<(ObjType, Vec<u8>, u64)>, id: ObjectId, ty, path: &[u8]| {
        if want.contains(&id) && !out.contains_key(&id) {
            out.insert(id, (ty, path.to_vec(), seq));
            seq += 1;
            if needed.contains(&id) {
                found.set(found.get() + 1);
            }
        }
    };
    let mut commits: Vec<ObjectId> = Vec::new();
    for item in refs.iter().db_err()? {
        let (k, v) = item.db_err()?;
        if let Ok(r) = crate::refs::decode_ref(k.value(), v.value()) {
            commits.push(r.id());
        }
    }
    commits.reverse();
    let mut seen_commits = IdSet::default();
    let mut seen_trees = IdSet::default();
    while let Some(c) = commits.pop() {
        if found.get() == needed.len() {
            // Every loose record is placed: older history adds nothing (records in pieces
            // met so far join; the rest stay where they are).
            break;
        }
        if !seen_commits.insert(c) {
            continue;
        }
        let Ok((ty, raw)) = db::load_raw_cached(src, &c, cache) else {
            continue;
        };
        match ty {
            ObjType::Tag => {
                note(&mut out, c, ObjType::Tag, b"");
                if let Ok(links) = crate::transfer::object_links(ty, &raw) {
                    commits.extend(links.into_iter().map(|(_, id)| id));
                }
                continue;
            }
            ObjType::Commit => {}
            _ => continue,
        }
        note(&mut out, c, ObjType::Commit, b"");
        let Ok(commit) = crate::object::Commit::decode(&raw) else {
            continue;
        };
        // Parents pushed in reverse so the first parent is walked first.
        commits.extend(commit.parents.iter().rev().copied());
        let mut trees = vec![(Vec::new(), commit.tree)];
        while let Some((path, t)) = trees.pop() {
            if !seen_trees.insert(t) {
                continue;
            }
            note(&mut out, t, ObjType::Tree, &path);
            let Ok((ObjType::Tree, raw)) = db::load_raw_cached(src, &t, cache) else {
                continue;
            };
            let Ok(tree) = Tree::decode(&raw) else {
                continue;
            };
            for e in tree.entries {
                let mut p = path.clone();
                if !p.is_empty() {
                    p.push(b'/');
                }
                p.extend_from_slice(&e.name);
                match e.kind {
                    EntryKind::Dir => trees.push((p, e.id)),
                    k if k.is_blob() => {
                        // A large file's id names its manifest; a small one's its blob.
                        let ty = if e.size > crate::file::SMALL_FILE_MAX as u64 {
                            ObjType::Manifest
                        } else {
                            ObjType::Blob
                        };
                        note(&mut out, e.id, ty, &p);
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(out)
}

/// Each segment's stored bytes (compressed, with its header) and decompressed length; a
/// segment whose header does not read is left out.
pub(crate) fn sizes<P>(segments: &P, pieces: Option<&P>) -> Result<HashMap<u64, (u64, u64)>>
where
    P: ReadableTable<u64, &'static [u8]>,
{
    let mut out = HashMap::new();
    for item in segments.iter().db_err()? {
        let (k, v) = item.db_err()?;
        let v = v.value();
        let (stored, head) = match Pointer::parse(v) {
            None => (v.len() as u64, parse_header(v).map(|(h, _)| h.raw_len).ok()),
            Some(Ok(p)) if p.count > 0 => {
                let head = match pieces {
                    Some(t) => t
                        .get(p.first)
                        .db_err()?
                        .and_then(|g| parse_header(g.value()).map(|(h, _)| h.raw_len).ok()),
                    None => None,
                };
                (p.len, head)
            }
            Some(_) => continue,
        };
        if let Some(raw) = head {
            out.insert(k.value(), (stored, raw));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_packed_pointer_round_trips_and_bad_values_are_refused() {
        let p = Packed {
            segment: 300,
            offset: 70_000,
            len: 1234,
        };
        let v = p.encode();
        assert_eq!(v[0], PACKED);
        assert_eq!(Packed::parse(&v).unwrap().unwrap(), p);
        // A value of another kind is no packed pointer.
        assert!(Packed::parse(&[1, 0, 3, b'a', b'b', b'c']).is_none());
        assert!(Packed::parse(&[POINTER, 1, 2, 3]).is_none());
        // Truncated, trailing bytes, out of a segment's range: refused, never a panic.
        assert!(Packed::parse(&v[..v.len() - 1]).unwrap().is_err());
        let mut long = v.clone();
        long.push(0);
        assert!(Packed::parse(&long).unwrap().is_err());
        let far = Packed {
            segment: 0,
            offset: SEGMENT_MAX,
            len: 1,
        }
        .encode();
        assert!(Packed::parse(&far).unwrap().is_err());
    }

    #[test]
    fn segment_headers_from_arbitrary_bytes_never_panic() {
        for n in 0..2000usize {
            let mut b = blake3::hash(&n.to_le_bytes()).as_bytes()[..n % 33].to_vec();
            if n % 3 == 0 && !b.is_empty() {
                b[0] = SEGMENT_ZSTD;
            }
            let _ = parse_header(&b);
            let _ = Packed::parse(&b);
        }
        let (h, rest) = parse_header(&[SEGMENT_ZSTD; 20]).unwrap();
        assert_eq!((h.raw_len, rest.len()), (1, 2));
    }
}
