//! File content: chunking on the way in, streaming verified reads on the way out.
//!
//! A file of at most [`SMALL_FILE_MAX`] bytes is one object. A larger file is split with
//! FastCDC; its chunks hang off a tree of manifest nodes (up to [`FANOUT`] children each), whose
//! top is stored under the file's content id. Reading and writing hold at most one chunk and one
//! node per tree level in memory.
//!
//! Long runs of zeros in a large file are holes: manifest entries that say "this many zero bytes"
//! with nothing stored behind them (docs/adr/0030-holes-in-the-chunk-list.md). The file is seen
//! as [`HOLE_BLOCK`]-sized blocks from offset 0; a run of all-zero blocks of at least
//! [`HOLE_MIN`] bytes is a hole, and the data between holes is chunked on its own. The rule
//! depends on the content only, so a file stored from a stream and the same file stored from a
//! sparse file on disk (whose holes are skipped without reading) get the same manifest. A file
//! without holes keeps the BLAKE3 of its content as its id; a file with holes is named by its
//! top manifest node ([`sparse_id`]), since hashing terabytes of zeros would cost what the hole
//! saves.

use std::io::{self, Read, Seek, SeekFrom};

use redb::ReadOnlyTable;

use crate::db::load_raw;
use crate::error::{DbResultExt as _, Error, Result};
use crate::id::ObjectId;
use crate::object::ManifestNode;
use crate::record::{self, ObjType};
use crate::repo::Repo;

/// Files up to this size are stored as one object (one chunk).
pub const SMALL_FILE_MAX: usize = 1 << 20;
/// FastCDC minimum chunk size for larger files.
pub const CHUNK_MIN: usize = 32 << 10;
/// FastCDC average chunk size.
pub const CHUNK_AVG: usize = 128 << 10;
/// FastCDC maximum chunk size.
pub const CHUNK_MAX: usize = 512 << 10;
/// Children per manifest node.
pub const FANOUT: usize = 1024;
/// Large files are looked at in blocks of this size (from offset 0) to find holes.
pub const HOLE_BLOCK: u64 = 4 << 10;
/// A run of all-zero blocks at least this long is stored as a hole.
pub const HOLE_MIN: u64 = 64 << 10;
/// Bytes read from a source at a time (a whole number of blocks).
const READ_SIZE: usize = 256 << 10;
/// The key derivation context of [`sparse_id`].
const SPARSE_ID_CONTEXT: &str = "hero-store 2026-12-07 id of a file with holes";

/// The id of a file whose manifest holds holes: derived from its top manifest node's bytes
/// (which name every chunk and hole below by hash and length), not from its content.
pub(crate) fn sparse_id(root_raw: &[u8]) -> ObjectId {
    ObjectId(blake3::derive_key(SPARSE_ID_CONTEXT, root_raw))
}

/// Splits `data` the way the store splits large files: (offset, length) of each chunk.
pub fn chunk_boundaries(data: &[u8]) -> Vec<(usize, usize)> {
    fastcdc::v2020::FastCDC::new(data, CHUNK_MIN, CHUNK_AVG, CHUNK_MAX)
        .map(|c| (c.offset, c.length))
        .collect()
}

/// Objects waiting to be written, already encoded.
#[derive(Default)]
pub(crate) struct Pending {
    pub(crate) records: Vec<(ObjectId, Vec<u8>)>,
    /// (old, new): re-store `old` as a delta against `new` once `new` is written.
    pub(crate) deltas: Vec<(ObjectId, ObjectId)>,
    pub(crate) bytes: usize,
}

impl Pending {
    pub(crate) fn add(
        &mut self,
        ty: ObjType,
        id: ObjectId,
        raw: &[u8],
        payload: Option<&ObjectId>,
    ) {
        let rec = record::encode_full(ty, raw, payload);
        self.add_encoded(id, rec);
    }
    pub(crate) fn add_encoded(&mut self, id: ObjectId, rec: Vec<u8>) {
        self.bytes += rec.len();
        self.records.push((id, rec));
    }
    pub(crate) fn delta(&mut self, old: ObjectId, new: ObjectId) {
        if old != new {
            self.deltas.push((old, new));
        }
    }
    /// Writes everything into the transaction `w`.
    pub(crate) fn apply(&mut self, w: &mut crate::db::WriteCtx<'_>) -> Result<()> {
        for (id, rec) in self.records.drain(..) {
            w.put_encoded(&id, &rec)?;
        }
        for (old, new) in self.deltas.drain(..) {
            w.deltify(&old, &new)?;
        }
        self.bytes = 0;
        Ok(())
    }
}

/// A file's id and size once stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredFile {
    /// BLAKE3 of the whole content.
    pub id: ObjectId,
    /// Size in bytes.
    pub size: u64,
}

/// Reads up to `SMALL_FILE_MAX + 1` bytes from `r`.
pub(crate) fn read_head(r: &mut dyn Read) -> Result<Vec<u8>> {
    let mut head = Vec::new();
    r.take(SMALL_FILE_MAX as u64 + 1)
        .read_to_end(&mut head)
        .map_err(Error::Input)?;
    Ok(head)
}

/// Reads the first `len` bytes (at most [`SMALL_FILE_MAX`]) of a file on disk into `out`.
pub(crate) fn read_file_head(file: &std::fs::File, len: u64, out: &mut Vec<u8>) -> Result<()> {
    FileSource::new(file, len.min(SMALL_FILE_MAX as u64))
        .read_all(out)
        .map_err(Error::Input)
}

impl Repo {
    /// Stores a file's content from a stream and returns its id. `previous` (the earlier
    /// version of the same file, if any) is used as the delta base for storage; it never
    /// changes the id. Memory stays bounded whatever the size.
    ///
    /// The content is durable when this returns; it is only reachable once a commit uses it.
    pub fn write_file(
        &self,
        mut content: impl Read,
        previous: Option<ObjectId>,
    ) -> Result<StoredFile> {
        let head = read_head(&mut content)?;
        if head.len() <= SMALL_FILE_MAX {
            let id = ObjectId::of(&head);
            let mut p = Pending::default();
            p.add(ObjType::Blob, id, &head, None);
            if let Some(prev) = previous {
                p.delta(prev, id);
            }
            self.write(|w| p.apply(w))?;
            return Ok(StoredFile {
                id,
                size: head.len() as u64,
            });
        }
        self.write_large(head, &mut content, previous)
    }

    /// Stores a large file: `head` is its first bytes (more than `SMALL_FILE_MAX`), `rest`
    /// the remainder.
    pub(crate) fn write_large(
        &self,
        head: Vec<u8>,
        rest: &mut dyn Read,
        previous: Option<ObjectId>,
    ) -> Result<StoredFile> {
        let mut stream = io::Cursor::new(head).chain(rest);
        let mut src = StreamSource { r: &mut stream };
        self.write_chunked(&mut src, previous, true)
    }

    /// Stores the first `len` bytes of a file on disk and returns its id. Its holes (where
    /// `SEEK_DATA` finds none) are not read, so a sparse file costs what its data costs; bytes
    /// past its end read as zeros. The file's offset may move.
    pub fn write_file_from(
        &self,
        file: &std::fs::File,
        len: u64,
        previous: Option<ObjectId>,
    ) -> Result<StoredFile> {
        if len <= SMALL_FILE_MAX as u64 {
            let mut head = Vec::new();
            read_file_head(file, len, &mut head)?;
            return self.write_file(head.as_slice(), previous);
        }
        self.write_chunked(&mut FileSource::new(file, len), previous, true)
    }

    /// The id a large file on disk would get if stored, without storing anything (holes
    /// skipped as in [`Repo::write_file_from`]).
    pub(crate) fn large_file_id(&self, file: &std::fs::File, len: u64) -> Result<ObjectId> {
        Ok(self
            .write_chunked(&mut FileSource::new(file, len), None, false)?
            .id)
    }

    /// Chunks a large file from `src`: data runs through FastCDC, holes become hole entries.
    /// With `store` false nothing is written (the id and size are still computed).
    fn write_chunked(
        &self,
        src: &mut dyn Source,
        previous: Option<ObjectId>,
        store: bool,
    ) -> Result<StoredFile> {
        let old = match previous {
            Some(prev) if store => OldLayout::load(self, prev)?,
            _ => None,
        };
        let mut old_leaves = old.as_ref().map(|o| o.leaves.iter().peekable());
        let mut seg = Segmenter::new(src);
        let mut hasher = blake3::Hasher::new();
        let mut levels: Vec<Vec<(Option<ObjectId>, u64)>> = vec![Vec::new()];
        let mut node_index: Vec<usize> = vec![0];
        let mut pending = Pending::default();
        let mut total: u64 = 0;
        let mut any_hole = false;
        loop {
            let chunker = fastcdc::v2020::StreamCDC::new(&mut seg, CHUNK_MIN, CHUNK_AVG, CHUNK_MAX);
            for chunk in chunker {
                let chunk = chunk.map_err(|e| Error::Input(e.into()))?;
                let chunk_offset = usize::try_from(total).map_err(|_| Error::FileTooLarge)?;
                hasher.update(&chunk.data);
                let id = ObjectId::of(&chunk.data);
                if store {
                    pending.add(ObjType::Blob, id, &chunk.data, None);
                }
                if let Some(leaves) = old_leaves.as_mut() {
                    // The old chunk that covered this offset, if any.
                    while let Some((_, off, len)) = leaves.peek() {
                        if off + len <= chunk_offset {
                            leaves.next();
                        } else {
                            break;
                        }
                    }
                    if let Some((old_id, off, _)) = leaves.peek()
                        && *off <= chunk_offset
                    {
                        pending.delta(*old_id, id);
                    }
                }
                total = total
                    .checked_add(chunk.length as u64)
                    .ok_or(Error::FileTooLarge)?;
                levels[0].push((Some(id), chunk.length as u64));
                push_full_nodes(
                    &mut levels,
                    &mut node_index,
                    &mut pending,
                    old.as_ref(),
                    false,
                );
                if store && pending.bytes >= self.budget().write_batch {
                    self.write(|w| pending.apply(w))?;
                }
            }
            // The data run ended at the end of the input or at a hole.
            if !seg.hole {
                break;
            }
            let len = seg.take_hole().map_err(Error::Input)?;
            any_hole = true;
            total = total.checked_add(len).ok_or(Error::FileTooLarge)?;
            levels[0].push((None, len));
            push_full_nodes(
                &mut levels,
                &mut node_index,
                &mut pending,
                old.as_ref(),
                false,
            );
            if seg.ended {
                break;
            }
        }
        push_full_nodes(
            &mut levels,
            &mut node_index,
            &mut pending,
            old.as_ref(),
            true,
        );
        let top = levels.len() - 1;
        let root = ManifestNode {
            level: u8::try_from(top).map_err(|_| Error::FileTooLarge)?,
            children: std::mem::take(&mut levels[top]),
        };
        let raw = root.encode();
        let id = if any_hole {
            sparse_id(&raw)
        } else {
            ObjectId(*hasher.finalize().as_bytes())
        };
        if !store {
            return Ok(StoredFile { id, size: total });
        }
        let payload = ObjectId::of(&raw);
        pending.add(ObjType::Manifest, id, &raw, Some(&payload));
        if let Some(prev) = previous {
            pending.delta(prev, id);
        }
        self.write(|w| pending.apply(w))?;
        Ok(StoredFile { id, size: total })
    }
}

/// What a [`Source`] hands on next.
enum Piece {
    /// Bytes, in the buffer.
    Data,
    /// This many zero bytes, known without reading them.
    Zeros(u64),
    /// Nothing more.
    End,
}

/// A file's bytes in order, as the chunked writer takes them.
trait Source {
    /// Replaces `buf` with the next bytes (a whole number of [`HOLE_BLOCK`]s unless the
    /// input ends with them), or reports the next zeros known without reading (a whole
    /// number of blocks unless they end the input).
    fn next(&mut self, buf: &mut Vec<u8>) -> io::Result<Piece>;
}

/// A stream: every byte is read.
struct StreamSource<'a> {
    r: &'a mut dyn Read,
}

impl Source for StreamSource<'_> {
    fn next(&mut self, buf: &mut Vec<u8>) -> io::Result<Piece> {
        buf.resize(READ_SIZE, 0);
        let mut n = 0;
        while n < buf.len() {
            match self.r.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(n);
        Ok(if n == 0 { Piece::End } else { Piece::Data })
    }
}

/// A file on disk read up to `len`: where `SEEK_DATA` finds no data is zeros, not read.
struct FileSource<'a> {
    file: &'a std::fs::File,
    pos: u64,
    len: u64,
    /// Data is known to run (at least) up to here; past it, ask for the next data.
    data_end: u64,
}

impl<'a> FileSource<'a> {
    fn new(file: &'a std::fs::File, len: u64) -> Self {
        FileSource {
            file,
            pos: 0,
            len,
            data_end: 0,
        }
    }

    /// Reads everything (for small files).
    fn read_all(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        let mut buf = Vec::new();
        loop {
            match self.next(&mut buf)? {
                Piece::Data => out.extend_from_slice(&buf),
                Piece::Zeros(n) => {
                    let n = usize::try_from(n).map_err(|_| io::ErrorKind::FileTooLarge)?;
                    out.resize(out.len() + n, 0);
                }
                Piece::End => return Ok(()),
            }
        }
    }

    /// Where the next data at or after `pos` starts and ends (`len` when there is none);
    /// a file system without `SEEK_DATA` has data everywhere.
    fn find_data(&self, pos: u64) -> io::Result<(u64, u64)> {
        use rustix::fs::{SeekFrom, seek};
        use rustix::io::Errno;
        let start = match seek(self.file, SeekFrom::Data(pos)) {
            Ok(d) => d,
            Err(Errno::NXIO) => return Ok((self.len, self.len)),
            Err(Errno::INVAL | Errno::OPNOTSUPP) => return Ok((pos, self.len)),
            Err(e) => return Err(e.into()),
        };
        let end = match seek(self.file, SeekFrom::Hole(start)) {
            Ok(h) => h,
            Err(Errno::NXIO | Errno::INVAL | Errno::OPNOTSUPP) => self.len,
            Err(e) => return Err(e.into()),
        };
        Ok((start.min(self.len), end.min(self.len)))
    }
}

impl Source for FileSource<'_> {
    fn next(&mut self, buf: &mut Vec<u8>) -> io::Result<Piece> {
        use std::os::unix::fs::FileExt;
        if self.pos >= self.len {
            return Ok(Piece::End);
        }
        if self.pos >= self.data_end {
            let (start, end) = self.find_data(self.pos)?;
            // Zeros up to the block the data starts in; the rest of that block is read.
            let block_start = start - start % HOLE_BLOCK;
            if block_start > self.pos {
                let zeros = block_start - self.pos;
                self.pos = block_start;
                return Ok(Piece::Zeros(zeros));
            }
            if start >= self.len {
                // Only a partial block of zeros is left.
                let zeros = self.len - self.pos;
                self.pos = self.len;
                return Ok(Piece::Zeros(zeros));
            }
            self.data_end = end.max(self.pos + 1);
        }
        // Read whole blocks up to the end of the data.
        let to = self
            .data_end
            .div_ceil(HOLE_BLOCK)
            .saturating_mul(HOLE_BLOCK)
            .min(self.len)
            .min(self.pos + READ_SIZE as u64);
        let n = usize::try_from(to - self.pos).map_err(|_| io::ErrorKind::FileTooLarge)?;
        buf.clear();
        buf.resize(n, 0);
        let mut got = 0;
        while got < n {
            match self.file.read_at(&mut buf[got..], self.pos + got as u64) {
                // Past the file's end: zeros (already in the buffer).
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.pos = to;
        Ok(Piece::Data)
    }
}

/// Splits a [`Source`] into data runs and holes. As a [`Read`] it yields the current data run
/// and ends where a hole starts (then [`Segmenter::take_hole`] measures the hole) or where the
/// input ends. Holds at most one read buffer and [`HOLE_MIN`] bytes of undecided zeros.
struct Segmenter<'a> {
    src: &'a mut dyn Source,
    /// Input not yet looked at: `buf[at..]`.
    buf: Vec<u8>,
    at: usize,
    /// Zero bytes seen and not yet decided (whole blocks).
    zeros: u64,
    /// Data decided: `ready[ready_at..]` is still to hand out.
    ready: Vec<u8>,
    ready_at: usize,
    /// The current data run ended at a hole of (at least) `zeros` bytes.
    hole: bool,
    /// The input ended.
    ended: bool,
}

impl<'a> Segmenter<'a> {
    fn new(src: &'a mut dyn Source) -> Self {
        Segmenter {
            src,
            buf: Vec::new(),
            at: 0,
            zeros: 0,
            ready: Vec::new(),
            ready_at: 0,
            hole: false,
            ended: false,
        }
    }

    fn add_zeros(&mut self, n: u64) {
        self.zeros = self.zeros.saturating_add(n);
        if self.zeros >= HOLE_MIN {
            self.hole = true;
        }
    }

    /// Undecided zeros followed by data are data (fewer than [`HOLE_MIN`] bytes).
    fn zeros_are_data(&mut self) {
        let n = usize::try_from(self.zeros).unwrap_or(0);
        self.ready.resize(self.ready.len() + n, 0);
        self.zeros = 0;
    }

    /// Decides more input: data into `ready`, zeros counted, until a hole or a full batch.
    fn fill(&mut self) -> io::Result<()> {
        if self.at >= self.buf.len() {
            match self.src.next(&mut self.buf)? {
                Piece::Data => self.at = 0,
                Piece::Zeros(n) => {
                    self.buf.clear();
                    self.at = 0;
                    self.add_zeros(n);
                    return Ok(());
                }
                Piece::End => {
                    self.buf.clear();
                    self.at = 0;
                    self.zeros_are_data();
                    self.ended = true;
                    return Ok(());
                }
            }
        }
        while self.at < self.buf.len() && !self.hole && self.ready.len() < READ_SIZE {
            let end = (self.at + HOLE_BLOCK as usize).min(self.buf.len());
            if self.buf[self.at..end].iter().all(|&b| b == 0) {
                self.add_zeros((end - self.at) as u64);
            } else {
                self.zeros_are_data();
                self.ready.extend_from_slice(&self.buf[self.at..end]);
            }
            self.at = end;
        }
        Ok(())
    }

    /// Measures the hole the data run ended at: zeros up to the next data or the end.
    fn take_hole(&mut self) -> io::Result<u64> {
        loop {
            while self.at < self.buf.len() {
                let end = (self.at + HOLE_BLOCK as usize).min(self.buf.len());
                if !self.buf[self.at..end].iter().all(|&b| b == 0) {
                    return Ok(self.end_hole());
                }
                self.zeros = self.zeros.saturating_add((end - self.at) as u64);
                self.at = end;
            }
            match self.src.next(&mut self.buf)? {
                Piece::Data => self.at = 0,
                Piece::Zeros(n) => {
                    self.buf.clear();
                    self.at = 0;
                    self.zeros = self.zeros.saturating_add(n);
                }
                Piece::End => {
                    self.buf.clear();
                    self.at = 0;
                    self.ended = true;
                    return Ok(self.end_hole());
                }
            }
        }
    }

    fn end_hole(&mut self) -> u64 {
        self.hole = false;
        std::mem::take(&mut self.zeros)
    }
}

impl Read for Segmenter<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.ready_at < self.ready.len() {
                let n = out.len().min(self.ready.len() - self.ready_at);
                out[..n].copy_from_slice(&self.ready[self.ready_at..self.ready_at + n]);
                self.ready_at += n;
                return Ok(n);
            }
            if self.hole || self.ended || out.is_empty() {
                return Ok(0);
            }
            self.ready.clear();
            self.ready_at = 0;
            self.fill()?;
        }
    }
}

/// Turns full levels into nodes one level up; with `finish`, flushes every level but the top.
fn push_full_nodes(
    levels: &mut Vec<Vec<(Option<ObjectId>, u64)>>,
    node_index: &mut Vec<usize>,
    pending: &mut Pending,
    old: Option<&OldLayout>,
    finish: bool,
) {
    let mut l = 0;
    while l < levels.len() {
        let is_top = l + 1 == levels.len();
        let flush = if finish {
            !is_top && !levels[l].is_empty()
        } else {
            levels[l].len() >= FANOUT
        };
        if flush || (finish && is_top && levels[l].len() > FANOUT) {
            let children = std::mem::take(&mut levels[l]);
            let node = ManifestNode {
                level: l as u8,
                children,
            };
            let raw = node.encode();
            let nid = ObjectId::of(&raw);
            pending.add(ObjType::ManifestNode, nid, &raw, None);
            if let Some(old) = old
                && let Some(oid) = old.nodes.get(l).and_then(|v| v.get(node_index[l]))
            {
                pending.delta(*oid, nid);
            }
            node_index[l] += 1;
            if is_top {
                levels.push(Vec::new());
                node_index.push(0);
            }
            levels[l + 1].push((Some(nid), node.total()));
        }
        l += 1;
    }
}

/// The chunks and nodes of an earlier version of a file, to pair with the new one for deltas.
struct OldLayout {
    /// (chunk id, offset, length) in order.
    leaves: Vec<(ObjectId, usize, usize)>,
    /// Node ids per level, in order.
    nodes: Vec<Vec<ObjectId>>,
}

/// Old layouts larger than this are not used for delta pairing (bounded memory).
const OLD_LAYOUT_MAX_CHUNKS: usize = 1 << 16;

impl OldLayout {
    fn load(repo: &Repo, prev: ObjectId) -> Result<Option<OldLayout>> {
        let view = repo.view()?;
        let root = match view.object_type(&prev)? {
            Some(ObjType::Manifest) => {
                let (_, raw) = view.raw(&prev)?;
                ManifestNode::decode(&raw).map_err(|e| Error::decode(prev, e))?
            }
            _ => return Ok(None),
        };
        let mut layout = OldLayout {
            leaves: Vec::new(),
            nodes: vec![Vec::new(); usize::from(root.level)],
        };
        let mut offset = 0usize;
        let mut stack: Vec<(ManifestNode, usize)> = vec![(root, 0)];
        while let Some((node, i)) = stack.pop() {
            if i >= node.children.len() {
                continue;
            }
            let (cid, len) = node.children[i];
            let level = node.level;
            stack.push((node, i + 1));
            let len = usize::try_from(len).map_err(|_| Error::FileTooLarge)?;
            let Some(cid) = cid else {
                // A hole: no chunk to pair with.
                offset = offset.saturating_add(len);
                continue;
            };
            if level == 0 {
                layout.leaves.push((cid, offset, len));
                offset = offset.saturating_add(len);
                if layout.leaves.len() > OLD_LAYOUT_MAX_CHUNKS {
                    return Ok(None);
                }
            } else {
                let (_, raw) = view.raw(&cid)?;
                let child = ManifestNode::decode(&raw).map_err(|e| Error::decode(cid, e))?;
                if let Some(v) = layout.nodes.get_mut(usize::from(child.level)) {
                    v.push(cid);
                }
                stack.push((child, 0));
            }
        }
        Ok(Some(layout))
    }
}

/// A verified, seekable reader of one file, reading from one consistent snapshot of the
/// repository. Holds at most one chunk and one manifest node per level in memory.
pub struct FileReader {
    objects: ReadOnlyTable<&'static [u8; 32], &'static [u8]>,
    pieces: Option<ReadOnlyTable<u64, &'static [u8]>>,
    segments: Option<ReadOnlyTable<u64, &'static [u8]>>,
    id: ObjectId,
    len: u64,
    pos: u64,
    body: Body,
    /// The chunk currently loaded: (offset, data).
    current: Option<(u64, Vec<u8>)>,
    /// The hole last found: (offset, length); it reads as zeros.
    hole: Option<(u64, u64)>,
    /// The buffer of the chunk loaded before, reused for the next one.
    spare: Vec<u8>,
}

enum Body {
    Small,
    Large {
        root: ManifestNode,
        /// Cached nodes by level below the root: (id, node).
        cache: Vec<Option<(ObjectId, ManifestNode)>>,
    },
}

impl std::fmt::Debug for FileReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileReader")
            .field("id", &self.id)
            .field("len", &self.len)
            .field("pos", &self.pos)
            .finish()
    }
}

impl crate::repo::View {
    /// Opens a file by content id for streaming, verified reads from this view's snapshot.
    pub fn open_file(&self, id: &ObjectId) -> Result<FileReader> {
        let objects = self.txn.open_table(crate::db::OBJECTS).db_err()?;
        let pieces = crate::repo::optional_table(&self.txn, crate::db::PIECES)?;
        let segments = crate::repo::optional_table(&self.txn, crate::db::SEGMENTS)?;
        FileReader::new(objects, pieces, segments, *id)
    }
}

/// The child holding byte `target`; `base` is the offset of the first child and ends as the
/// offset of the one found.
fn find_child(
    children: &[(Option<ObjectId>, u64)],
    target: u64,
    base: &mut u64,
) -> Option<(Option<ObjectId>, u64)> {
    for (cid, len) in children {
        if target < base.saturating_add(*len) {
            return Some((*cid, *len));
        }
        *base = base.saturating_add(*len);
    }
    None
}

fn load_node(
    objects: &impl crate::db::RecordSource,
    file: ObjectId,
    cid: ObjectId,
    level: usize,
    len: u64,
) -> Result<ManifestNode> {
    let (ty, raw) = load_raw(objects, &cid)?;
    if ty != ObjType::ManifestNode {
        return Err(Error::WrongType {
            id: cid,
            expected: "manifest node",
        });
    }
    let node = ManifestNode::decode(&raw).map_err(|e| Error::decode(cid, e))?;
    if usize::from(node.level) != level || node.total() != len {
        return Err(Error::corrupt(file, "inconsistent manifest"));
    }
    Ok(node)
}

impl Repo {
    /// Opens a file by content id, reading the repository as it is now.
    pub fn open_file(&self, id: &ObjectId) -> Result<FileReader> {
        self.view()?.open_file(id)
    }
}

impl FileReader {
    fn new(
        objects: ReadOnlyTable<&'static [u8; 32], &'static [u8]>,
        pieces: Option<ReadOnlyTable<u64, &'static [u8]>>,
        segments: Option<ReadOnlyTable<u64, &'static [u8]>>,
        id: ObjectId,
    ) -> Result<Self> {
        let src = crate::db::Objects {
            objects: &objects,
            pieces: pieces.as_ref(),
            segments: segments.as_ref(),
        };
        let (ty, raw) = load_raw(&src, &id)?;
        match ty {
            ObjType::Blob => Ok(FileReader {
                objects,
                pieces,
                segments,
                id,
                len: raw.len() as u64,
                pos: 0,
                body: Body::Small,
                current: Some((0, raw)),
                hole: None,
                spare: Vec::new(),
            }),
            ObjType::Manifest => {
                let root = ManifestNode::decode(&raw).map_err(|e| Error::decode(id, e))?;
                let len = root.total();
                let levels = usize::from(root.level);
                Ok(FileReader {
                    objects,
                    pieces,
                    segments,
                    id,
                    len,
                    pos: 0,
                    body: Body::Large {
                        root,
                        cache: vec![None; levels],
                    },
                    current: None,
                    hole: None,
                    spare: Vec::new(),
                })
            }
            _ => Err(Error::WrongType {
                id,
                expected: "file",
            }),
        }
    }

    /// The file's size.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// The file's id.
    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// Loads the chunk that holds `self.pos`, starting at the root.
    fn load_chunk(&mut self) -> Result<()> {
        let Body::Large { root, cache } = &mut self.body else {
            return Ok(());
        };
        let target = self.pos;
        let mut base = 0u64;
        let (cid, clen) = find_child(&root.children, target, &mut base)
            .ok_or_else(|| Error::corrupt(self.id, "manifest shorter than file"))?;
        if root.level == 0 {
            return self.load_leaf(cid, clen, base);
        }
        let cid = cid.ok_or_else(|| Error::corrupt(self.id, "hole above level 0"))?;
        let child_level = usize::from(root.level - 1);
        let hit = matches!(cache.get(child_level), Some(Some((sid, _))) if *sid == cid);
        if !hit {
            let child = load_node(
                &crate::db::Objects {
                    objects: &self.objects,
                    pieces: self.pieces.as_ref(),
                    segments: self.segments.as_ref(),
                },
                self.id,
                cid,
                child_level,
                clen,
            )?;
            let slot = cache
                .get_mut(child_level)
                .ok_or_else(|| Error::corrupt(self.id, "bad manifest level"))?;
            *slot = Some((cid, child));
        }
        self.load_chunk_from(child_level, base)
    }

    fn load_leaf(&mut self, cid: Option<ObjectId>, clen: u64, base: u64) -> Result<()> {
        let Some(cid) = cid else {
            // A hole: zeros, nothing to load.
            self.hole = Some((base, clen));
            return Ok(());
        };
        let src = crate::db::Objects {
            objects: &self.objects,
            pieces: self.pieces.as_ref(),
            segments: self.segments.as_ref(),
        };
        let mut data = std::mem::take(&mut self.spare);
        let ty = crate::db::load_raw_reusing(&src, &cid, &mut data)?;
        if ty != ObjType::Blob || data.len() as u64 != clen {
            return Err(Error::corrupt(
                self.id,
                format!("chunk {} does not match the manifest", cid.short()),
            ));
        }
        self.current = Some((base, data));
        Ok(())
    }

    fn load_chunk_from(&mut self, level: usize, start: u64) -> Result<()> {
        // Walk down from the cached node at `level`, whose content starts at `start`.
        let mut level = level;
        let mut base = start;
        let target = self.pos;
        loop {
            let Body::Large { cache, .. } = &mut self.body else {
                return Ok(());
            };
            let (_, node) = cache
                .get(level)
                .and_then(Option::as_ref)
                .ok_or_else(|| Error::corrupt(self.id, "manifest cache"))?;
            let (cid, clen) = find_child(&node.children, target, &mut base)
                .ok_or_else(|| Error::corrupt(self.id, "manifest shorter than file"))?;
            if level == 0 {
                return self.load_leaf(cid, clen, base);
            }
            let cid = cid.ok_or_else(|| Error::corrupt(self.id, "hole above level 0"))?;
            let child_level = level - 1;
            let hit = matches!(&cache[child_level], Some((sid, _)) if *sid == cid);
            if !hit {
                let child = load_node(
                    &crate::db::Objects {
                        objects: &self.objects,
                        pieces: self.pieces.as_ref(),
                        segments: self.segments.as_ref(),
                    },
                    self.id,
                    cid,
                    child_level,
                    clen,
                )?;
                cache[child_level] = Some((cid, child));
            }
            level = child_level;
        }
    }

    /// The id this file's content and chunk tree give, what its id must be: the BLAKE3 of
    /// its content, or for a file with holes [`sparse_id`] of its top node. Reads every chunk
    /// (each checked against the manifest) and skips holes without looking at their bytes.
    pub fn content_id(&mut self) -> Result<ObjectId> {
        let root_raw = match &self.body {
            Body::Small => {
                return Ok(match &self.current {
                    Some((_, data)) => ObjectId::of(data),
                    None => ObjectId::of(b""),
                });
            }
            Body::Large { root, .. } => root.encode(),
        };
        let mut hasher = blake3::Hasher::new();
        let mut any_hole = false;
        let mut pos = 0u64;
        while pos < self.len {
            self.pos = pos;
            if let Some((_, data)) = self.current.take() {
                self.spare = data;
            }
            self.hole = None;
            self.load_chunk()?;
            match (&self.current, self.hole) {
                (Some((off, data)), _) if *off == pos && !data.is_empty() => {
                    hasher.update(data);
                    pos += data.len() as u64;
                }
                (_, Some((off, len))) if off == pos && len > 0 => {
                    any_hole = true;
                    pos = pos.saturating_add(len);
                }
                _ => return Err(Error::corrupt(self.id, "manifest does not cover the file")),
            }
        }
        self.pos = 0;
        Ok(if any_hole {
            sparse_id(&root_raw)
        } else {
            ObjectId(*hasher.finalize().as_bytes())
        })
    }

    /// Reads at `pos` into `buf` (like `pread`), returning bytes read (0 at end of file).
    pub fn read_at(&mut self, pos: u64, buf: &mut [u8]) -> Result<usize> {
        self.pos = pos;
        self.read_inner(buf)
    }

    fn read_inner(&mut self, buf: &mut [u8]) -> Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let inside = |c: &Option<(u64, Vec<u8>)>, pos: u64| match c {
            Some((off, data)) => pos >= *off && pos < off + data.len() as u64,
            None => false,
        };
        let in_hole = |h: Option<(u64, u64)>, pos: u64| {
            h.is_some_and(|(off, len)| pos >= off && pos - off < len)
        };
        if !inside(&self.current, self.pos) && !in_hole(self.hole, self.pos) {
            if let Some((_, data)) = self.current.take() {
                self.spare = data;
            }
            self.load_chunk()?;
        }
        if let Some((off, len)) = self.hole
            && in_hole(self.hole, self.pos)
        {
            let left = off.saturating_add(len) - self.pos;
            let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            buf[..n].fill(0);
            self.pos += n as u64;
            return Ok(n);
        }
        let (off, data) = self
            .current
            .as_ref()
            .ok_or_else(|| Error::corrupt(self.id, "no chunk at offset"))?;
        let start = (self.pos - off) as usize;
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Read for FileReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf).map_err(io::Error::other)
    }
}

impl Seek for FileReader {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let new = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let new =
            new.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before start"))?;
        self.pos = new;
        Ok(new)
    }
}

impl crate::repo::View {
    /// Writes a file's content into `out` (an empty file at `out_path`, named in errors):
    /// its data runs only, at their offsets, then the length, so the file's holes stay holes
    /// of `out` and cost nothing. Returns the size.
    pub fn write_sparse(
        &self,
        id: &ObjectId,
        out: &std::fs::File,
        out_path: &std::path::Path,
    ) -> Result<u64> {
        use std::os::unix::fs::FileExt;
        let mut reader = self.open_file(id)?;
        let size = reader.len();
        let extents = if size > SMALL_FILE_MAX as u64 {
            self.file_extents(id)?
        } else {
            vec![Extent {
                start: 0,
                len: size,
                data: true,
            }]
        };
        let mut buf = vec![0u8; 1 << 17];
        for e in extents.iter().filter(|e| e.data) {
            let end = e.start.saturating_add(e.len);
            let mut pos = e.start;
            while pos < end {
                let want = buf
                    .len()
                    .min(usize::try_from(end - pos).unwrap_or(usize::MAX));
                let n = reader.read_at(pos, &mut buf[..want])?;
                if n == 0 {
                    return Err(Error::corrupt(*id, "manifest longer than its chunks"));
                }
                out.write_all_at(&buf[..n], pos)
                    .map_err(|e| Error::io(out_path, e))?;
                pos += n as u64;
            }
        }
        out.set_len(size).map_err(|e| Error::io(out_path, e))?;
        Ok(size)
    }
}

/// A run of a stored file's bytes: data, or a hole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// Offset of the run's first byte.
    pub start: u64,
    /// Its length.
    pub len: u64,
    /// Data (`true`) or a hole (`false`).
    pub data: bool,
}

/// The id of a chunk of [`CHUNK_MAX`] zeros: what the chunker cuts a long run of zeros into.
fn zero_chunk_id() -> ObjectId {
    static ID: std::sync::OnceLock<ObjectId> = std::sync::OnceLock::new();
    *ID.get_or_init(|| ObjectId::of(&vec![0u8; CHUNK_MAX]))
}

impl crate::repo::View {
    /// The data and hole runs of a file, in order, adjacent runs of one kind merged. A hole is
    /// a hole entry of the manifest, or (in files stored before holes existed) a run of chunks
    /// of [`CHUNK_MAX`] zeros (what the chunker makes of a run of zeros, one
    /// stored chunk however long the run); every other chunk is data, and a small file is one
    /// data run. Reads the file's manifest, not its chunks; a manifest node already seen to
    /// hold only zeros (repeated runs share one node) is not read again.
    pub fn file_extents(&self, id: &ObjectId) -> Result<Vec<Extent>> {
        let objects = self.txn.open_table(crate::db::OBJECTS).db_err()?;
        let pieces = crate::repo::optional_table(&self.txn, crate::db::PIECES)?;
        let segments = crate::repo::optional_table(&self.txn, crate::db::SEGMENTS)?;
        let src = crate::db::Objects {
            objects: &objects,
            pieces: pieces.as_ref(),
            segments: segments.as_ref(),
        };
        let (ty, raw) = load_raw(&src, id)?;
        let mut out: Vec<Extent> = Vec::new();
        let push = |out: &mut Vec<Extent>, len: u64, data: bool| {
            if len == 0 {
                return;
            }
            match out.last_mut() {
                Some(last) if last.data == data => last.len += len,
                last => {
                    let start = last.map_or(0, |l| l.start + l.len);
                    out.push(Extent { start, len, data });
                }
            }
        };
        match ty {
            ObjType::Blob => push(&mut out, raw.len() as u64, true),
            ObjType::Manifest => {
                let root = ManifestNode::decode(&raw).map_err(|e| Error::decode(*id, e))?;
                let zero = zero_chunk_id();
                let mut zero_nodes: std::collections::HashSet<ObjectId> =
                    std::collections::HashSet::new();
                // Depth first, in order: (node, its id, the index of the next child).
                let mut stack: Vec<(ManifestNode, Option<ObjectId>, usize, bool)> =
                    vec![(root, None, 0, true)];
                while let Some((node, nid, next, all_zero)) = stack.pop() {
                    let Some(&(cid, clen)) = node.children.get(next) else {
                        if let (Some(n), true) = (nid, all_zero) {
                            zero_nodes.insert(n);
                        }
                        // The parent's "all zeros" flag follows its children.
                        if !all_zero && let Some(parent) = stack.last_mut() {
                            parent.3 = false;
                        }
                        continue;
                    };
                    let level = node.level;
                    stack.push((node, nid, next + 1, all_zero));
                    if level == 0 {
                        let hole = cid.is_none_or(|c| c == zero && clen == CHUNK_MAX as u64);
                        push(&mut out, clen, !hole);
                        if !hole && let Some(me) = stack.last_mut() {
                            me.3 = false;
                        }
                    } else if let Some(cid) = cid
                        && zero_nodes.contains(&cid)
                    {
                        push(&mut out, clen, false);
                    } else {
                        let cid = cid.ok_or_else(|| Error::corrupt(*id, "hole above level 0"))?;
                        let child = load_node(&src, *id, cid, usize::from(level - 1), clen)?;
                        stack.push((child, Some(cid), 0, true));
                    }
                }
            }
            _ => {
                return Err(Error::WrongType {
                    id: *id,
                    expected: "file",
                });
            }
        }
        Ok(out)
    }
}
