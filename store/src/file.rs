//! File content: chunking on the way in, streaming verified reads on the way out.
//!
//! A file of at most [`SMALL_FILE_MAX`] bytes is one object. A larger file is split with
//! FastCDC; its chunks hang off a tree of manifest nodes (up to [`FANOUT`] children each), whose
//! top is stored under the file's content id. Reading and writing hold at most one chunk and one
//! node per tree level in memory.

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
        let old = match previous {
            Some(prev) => OldLayout::load(self, prev)?,
            None => None,
        };
        let mut old_leaves = old.as_ref().map(|o| o.leaves.iter().peekable());
        let source = io::Cursor::new(head).chain(rest);
        let chunker = fastcdc::v2020::StreamCDC::new(source, CHUNK_MIN, CHUNK_AVG, CHUNK_MAX);
        let mut hasher = blake3::Hasher::new();
        let mut levels: Vec<Vec<(ObjectId, u64)>> = vec![Vec::new()];
        let mut node_index: Vec<usize> = vec![0];
        let mut pending = Pending::default();
        let mut total: u64 = 0;
        for chunk in chunker {
            let chunk = chunk.map_err(|e| Error::Input(e.into()))?;
            let chunk_offset = usize::try_from(chunk.offset).map_err(|_| Error::FileTooLarge)?;
            hasher.update(&chunk.data);
            let id = ObjectId::of(&chunk.data);
            pending.add(ObjType::Blob, id, &chunk.data, None);
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
            total += chunk.length as u64;
            levels[0].push((id, chunk.length as u64));
            push_full_nodes(
                &mut levels,
                &mut node_index,
                &mut pending,
                old.as_ref(),
                false,
            );
            if pending.bytes >= self.budget().write_batch {
                self.write(|w| pending.apply(w))?;
            }
        }
        let id = ObjectId(*hasher.finalize().as_bytes());
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
        let payload = ObjectId::of(&raw);
        pending.add(ObjType::Manifest, id, &raw, Some(&payload));
        if let Some(prev) = previous {
            pending.delta(prev, id);
        }
        self.write(|w| pending.apply(w))?;
        Ok(StoredFile { id, size: total })
    }
}

/// Turns full levels into nodes one level up; with `finish`, flushes every level but the top.
fn push_full_nodes(
    levels: &mut Vec<Vec<(ObjectId, u64)>>,
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
            levels[l + 1].push((nid, node.total()));
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
            if level == 0 {
                let len = usize::try_from(len).map_err(|_| Error::FileTooLarge)?;
                layout.leaves.push((cid, offset, len));
                offset += len;
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
    id: ObjectId,
    len: u64,
    pos: u64,
    body: Body,
    /// The chunk currently loaded: (offset, data).
    current: Option<(u64, Vec<u8>)>,
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
        let pieces = match self.txn.open_table(crate::db::PIECES) {
            Ok(t) => Some(t),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(Error::db(e)),
        };
        FileReader::new(objects, pieces, *id)
    }
}

/// The child holding byte `target`; `base` is the offset of the first child and ends as the
/// offset of the one found.
fn find_child(
    children: &[(ObjectId, u64)],
    target: u64,
    base: &mut u64,
) -> Option<(ObjectId, u64)> {
    for (cid, len) in children {
        if target < *base + len {
            return Some((*cid, *len));
        }
        *base += len;
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
        id: ObjectId,
    ) -> Result<Self> {
        let src = crate::db::Objects {
            objects: &objects,
            pieces: pieces.as_ref(),
        };
        let (ty, raw) = load_raw(&src, &id)?;
        match ty {
            ObjType::Blob => Ok(FileReader {
                objects,
                pieces,
                id,
                len: raw.len() as u64,
                pos: 0,
                body: Body::Small,
                current: Some((0, raw)),
                spare: Vec::new(),
            }),
            ObjType::Manifest => {
                let root = ManifestNode::decode(&raw).map_err(|e| Error::decode(id, e))?;
                let len = root.total();
                let levels = usize::from(root.level);
                Ok(FileReader {
                    objects,
                    pieces,
                    id,
                    len,
                    pos: 0,
                    body: Body::Large {
                        root,
                        cache: vec![None; levels],
                    },
                    current: None,
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
        let child_level = usize::from(root.level - 1);
        let hit = matches!(cache.get(child_level), Some(Some((sid, _))) if *sid == cid);
        if !hit {
            let child = load_node(
                &crate::db::Objects {
                    objects: &self.objects,
                    pieces: self.pieces.as_ref(),
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

    fn load_leaf(&mut self, cid: ObjectId, clen: u64, base: u64) -> Result<()> {
        let src = crate::db::Objects {
            objects: &self.objects,
            pieces: self.pieces.as_ref(),
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
            let child_level = level - 1;
            let hit = matches!(&cache[child_level], Some((sid, _)) if *sid == cid);
            if !hit {
                let child = load_node(
                    &crate::db::Objects {
                        objects: &self.objects,
                        pieces: self.pieces.as_ref(),
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
        if !inside(&self.current, self.pos) {
            if let Some((_, data)) = self.current.take() {
                self.spare = data;
            }
            self.load_chunk()?;
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
    /// a run of chunks of [`CHUNK_MAX`] zeros (what the chunker makes of a run of zeros, one
    /// stored chunk however long the run); every other chunk is data, and a small file is one
    /// data run. Reads the file's manifest, not its chunks; a manifest node already seen to
    /// hold only zeros (repeated runs share one node) is not read again.
    pub fn file_extents(&self, id: &ObjectId) -> Result<Vec<Extent>> {
        let objects = self.txn.open_table(crate::db::OBJECTS).db_err()?;
        let pieces = match self.txn.open_table(crate::db::PIECES) {
            Ok(t) => Some(t),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(Error::db(e)),
        };
        let src = crate::db::Objects {
            objects: &objects,
            pieces: pieces.as_ref(),
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
                        let hole = cid == zero && clen == CHUNK_MAX as u64;
                        push(&mut out, clen, !hole);
                        if !hole && let Some(me) = stack.last_mut() {
                            me.3 = false;
                        }
                    } else if zero_nodes.contains(&cid) {
                        push(&mut out, clen, false);
                    } else {
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
