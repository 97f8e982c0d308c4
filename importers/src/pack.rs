//! Writing one git pack (`objects/pack/pack-<sha1>.pack`) and its version 2 index
//! (`pack-<sha1>.idx`) from objects handed over one at a time.
//!
//! # The pack format (version 2)
//!
//! - A 12-byte header: `PACK`, the version (2) and the number of objects, both big-endian
//!   32-bit.
//! - One entry per object. An entry starts with the type and the size: the first byte holds
//!   three type bits (1 commit, 2 tree, 3 blob, 4 tag, 6 `OFS_DELTA`) above the four low bits of
//!   the size; further size bits follow seven at a time, low bits first, while the high bit of
//!   the previous byte is set. The size is that of the object, or of the delta for a delta.
//!   An `OFS_DELTA` entry then gives how far back its base's entry starts, counted from its own
//!   start: seven bits a byte, most significant first, each continued byte adding one before
//!   the shift (so no distance has two spellings). Then comes the zlib stream of the object or
//!   of the delta (format in [`delta`]). A base always comes before its deltas in the pack, and
//!   every base is in the same pack: no `REF_DELTA`, no thin pack.
//! - A trailer: the SHA-1 of everything before it. The pack is named after it.
//!
//! # The index format (version 2)
//!
//! `\xfftOc`, the version (2), a 256-entry fan-out table (entry `i`: how many objects have an
//! id whose first byte is at most `i`), the sorted object ids, the CRC-32 of each object's whole
//! entry in the pack (header and compressed data), each entry's offset as 31 bits (or, with the
//! high bit set, the position of its 64-bit offset in the table that follows, for packs past
//! 2 GiB), the pack's trailer and the SHA-1 of the index itself. Integers are big-endian.
//!
//! # How a pack is made
//!
//! [`PackWriter::add`] and [`PackWriter::add_stream`] compress each new object (zlib level 9)
//! into an unnamed temporary *spool* file beside the packs and keep only a small record of it:
//! id, type, size, a hash of its path and the previous and next object seen at the same path.
//! [`PackWriter::finish`] then chooses delta bases ([`select`]), writes the pack and the index
//! to `tmp_pack_*` and `tmp_idx_*` files, syncs them, and renames the pack and then the index
//! into place, so no half-written file ever carries a pack name. Memory holds the records and a
//! window of candidate bases, never all objects at once.

mod delta;
mod select;
mod spool;

use std::collections::HashMap;
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

use gix::objs::Kind;
use gix::zlib::stream::deflate::{Compress, FlushCompress};

use crate::error::ExportError;
use crate::gitfmt::{GitId, hex};
use spool::{BUF, LEVEL, NONE, Record, Spool, deflate, io_err};

/// Pack entry type of a delta against a base found by its offset.
const OFS_DELTA: u8 = 6;

/// The pack type number of `kind`.
fn type_number(kind: Kind) -> u8 {
    match kind {
        Kind::Commit => 1,
        Kind::Tree => 2,
        Kind::Blob => 3,
        Kind::Tag => 4,
    }
}

/// The git id of an object of `kind` with content `bytes`.
pub(crate) fn object_id(kind: Kind, bytes: &[u8]) -> Result<GitId, ExportError> {
    let mut h = object_hasher(kind, bytes.len() as u64);
    h.update(bytes);
    finish_hash(h)
}

fn object_hasher(kind: Kind, size: u64) -> gix::hash::Hasher {
    let mut h = gix::hash::hasher(gix::hash::Kind::Sha1);
    h.update(kind.as_bytes());
    h.update(format!(" {size}\0").as_bytes());
    h
}

fn finish_hash(h: gix::hash::Hasher) -> Result<GitId, ExportError> {
    let id = h
        .try_finalize()
        .map_err(|source| ExportError::Hash { source })?;
    GitId::from_gix(&id).ok_or_else(|| ExportError::Write("not SHA-1".into()))
}

/// git's path hash for ordering delta candidates: mostly the last 16 non-blank bytes of the
/// path, the last counting most, so that files with the same name (or extension) sort
/// together.
fn name_hash(path: &[u8]) -> u32 {
    path.iter()
        .filter(|c| !c.is_ascii_whitespace())
        .fold(0u32, |h, &c| (h >> 2).wrapping_add(u32::from(c) << 24))
}

/// A 64-bit FNV-1a hash of an object type and a path: the key of "the same path".
fn path_key(ty: u8, path: &[u8]) -> u64 {
    std::iter::once(ty)
        .chain(path.iter().copied())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// CRC-32 (IEEE, reflected) table, as zlib and git use.
const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// Continues a CRC-32 (start from 0) over `bytes`.
fn crc32(crc: u32, bytes: &[u8]) -> u32 {
    !bytes.iter().fold(!crc, |c, &b| {
        CRC_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    })
}

/// An entry header: type and size.
fn put_header(out: &mut Vec<u8>, ty: u8, size: u64) {
    let mut b = (ty << 4) | (size & 15) as u8;
    let mut rest = size >> 4;
    while rest > 0 {
        out.push(b | 0x80);
        b = (rest & 0x7f) as u8;
        rest >>= 7;
    }
    out.push(b);
}

/// The distance back to an `OFS_DELTA` base.
fn put_offset(out: &mut Vec<u8>, mut distance: u64) {
    let mut bytes = [0u8; 10];
    let mut i = bytes.len() - 1;
    bytes[i] = (distance & 0x7f) as u8;
    distance >>= 7;
    while distance > 0 {
        distance -= 1;
        i -= 1;
        bytes[i] = 0x80 | (distance & 0x7f) as u8;
        distance >>= 7;
    }
    out.extend_from_slice(&bytes[i..]);
}

/// A pack file being written: counts bytes and hashes them.
struct HashedOut {
    out: BufWriter<tempfile::NamedTempFile>,
    hasher: gix::hash::Hasher,
    pos: u64,
}

impl HashedOut {
    fn new(dir: &Path, prefix: &str) -> Result<HashedOut, ExportError> {
        let file = tempfile::Builder::new()
            .prefix(prefix)
            .tempfile_in(dir)
            .map_err(io_err(dir))?;
        Ok(HashedOut {
            out: BufWriter::with_capacity(BUF, file),
            hasher: gix::hash::hasher(gix::hash::Kind::Sha1),
            pos: 0,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hasher.update(bytes);
        self.out.write_all(bytes)?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Writes the SHA-1 of everything so far, syncs, and makes the file read-only.
    fn finish(mut self) -> Result<(GitId, tempfile::NamedTempFile), ExportError> {
        let sum = finish_hash(self.hasher)?;
        let path = self.out.get_ref().path().to_path_buf();
        self.out.write_all(&sum.0).map_err(io_err(&path))?;
        let file = self.out.into_inner().map_err(|e| ExportError::Io {
            path: path.clone(),
            source: e.into_error(),
        })?;
        file.as_file().sync_all().map_err(io_err(&path))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444))
            .map_err(io_err(&path))?;
        Ok((sum, file))
    }
}

/// What [`PackWriter::finish`] wrote.
#[derive(Debug, Clone)]
pub(crate) struct Written {
    /// The `.pack` file.
    pub pack: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Objects stored as deltas.
    pub deltas: u64,
}

/// Collects the new objects of an export and writes them as one pack.
pub(crate) struct PackWriter {
    dir: PathBuf,
    odb: gix::odb::Handle,
    spool: Spool,
    records: Vec<Record>,
    ids: HashMap<GitId, u32>,
    /// [`path_key`] → the last object seen there.
    at_path: HashMap<u64, u32>,
    compress: Compress,
    buf: Vec<u8>,
}

impl PackWriter {
    /// A writer for the repository whose object directory is `objects`.
    pub(crate) fn new(objects: &Path) -> Result<PackWriter, ExportError> {
        let dir = objects.join("pack");
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let odb = gix::odb::at(objects, gix::hash::Kind::Sha1).map_err(io_err(objects))?;
        let spool = Spool::new(&dir)?;
        Ok(PackWriter {
            dir,
            odb,
            spool,
            records: Vec::new(),
            ids: HashMap::new(),
            at_path: HashMap::new(),
            compress: Compress::new(LEVEL),
            buf: vec![0u8; BUF],
        })
    }

    /// Whether the repository has `id` already, or this pack will.
    pub(crate) fn exists(&self, id: &GitId) -> bool {
        self.ids.contains_key(id) || self.odb.exists_without_refresh(&id.to_gix())
    }

    fn record(&mut self, id: GitId, kind: Kind, size: u64, at: u64, path: &[u8]) {
        let ty = type_number(kind);
        let n = u32::try_from(self.records.len()).unwrap_or(NONE);
        let prev = match self.at_path.insert(path_key(ty, path), n) {
            Some(p) => {
                if let Some(r) = self.records.get_mut(p as usize)
                    && r.next == NONE
                {
                    r.next = n;
                }
                p
            }
            None => NONE,
        };
        self.records.push(Record {
            id,
            ty,
            size,
            name_hash: name_hash(path),
            at,
            zlen: self.spool.len - at,
            prev,
            next: NONE,
        });
        self.ids.insert(id, n);
    }

    fn check_room(&self) -> Result<(), ExportError> {
        // The pack header counts objects in 32 bits; `NONE` is kept free.
        if self.records.len() >= NONE as usize {
            return Err(ExportError::PackTooLarge);
        }
        Ok(())
    }

    /// Adds the object `id` (of `kind`, content `bytes`, first seen at `path`), which the
    /// caller found not to [`exist`](Self::exists) yet.
    pub(crate) fn add(
        &mut self,
        kind: Kind,
        id: GitId,
        bytes: &[u8],
        path: &[u8],
    ) -> Result<(), ExportError> {
        self.check_room()?;
        let at = self.spool.len;
        self.compress.reset();
        let spool = &mut self.spool;
        deflate(
            &mut self.compress,
            bytes,
            FlushCompress::Finish,
            &mut self.buf,
            &mut |b| spool.write(b),
            &self.dir,
        )?;
        self.record(id, kind, bytes.len() as u64, at, path);
        Ok(())
    }

    /// Adds the object of `kind` whose `size` bytes `reader` gives, first seen at `path`,
    /// unless it exists already. Returns its id and whether it was added. Read errors go
    /// through `read_err`.
    pub(crate) fn add_stream(
        &mut self,
        kind: Kind,
        size: u64,
        reader: &mut dyn Read,
        path: &[u8],
        read_err: &dyn Fn(std::io::Error) -> ExportError,
    ) -> Result<(GitId, bool), ExportError> {
        self.check_room()?;
        let at = self.spool.len;
        let mut hasher = object_hasher(kind, size);
        self.compress.reset();
        let mut input = vec![0u8; BUF];
        let mut total = 0u64;
        loop {
            let n = match reader.read(&mut input) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_err(e)),
            };
            total += n as u64;
            if total > size {
                break;
            }
            let chunk = &input[..n];
            hasher.update(chunk);
            let spool = &mut self.spool;
            deflate(
                &mut self.compress,
                chunk,
                FlushCompress::None,
                &mut self.buf,
                &mut |b| spool.write(b),
                &self.dir,
            )?;
        }
        if total != size {
            return Err(read_err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("file gave {total} bytes, not its {size}"),
            )));
        }
        let spool = &mut self.spool;
        deflate(
            &mut self.compress,
            &[],
            FlushCompress::Finish,
            &mut self.buf,
            &mut |b| spool.write(b),
            &self.dir,
        )?;
        let id = finish_hash(hasher)?;
        if self.exists(&id) {
            self.spool.truncate(at).map_err(io_err(&self.dir))?;
            return Ok((id, false));
        }
        self.record(id, kind, size, at, path);
        Ok((id, true))
    }

    /// Chooses delta bases and writes the pack and its index; nothing (and `None`) if no
    /// object was added.
    pub(crate) fn finish(mut self) -> Result<Option<Written>, ExportError> {
        if self.records.is_empty() {
            return Ok(None);
        }
        let dir = self.dir.clone();
        let spool = self.spool.file().map_err(io_err(&dir))?;
        let mut deltas = Spool::new(&dir)?;
        let choices = select::choose(&self.records, spool, &mut deltas, &dir)?;
        let delta_file = deltas.file().map_err(io_err(&dir))?;

        let n = self.records.len();
        let count = u32::try_from(n).map_err(|_| ExportError::PackTooLarge)?;
        let mut out = HashedOut::new(&dir, "tmp_pack_")?;
        let tmp = out.out.get_ref().path().to_path_buf();
        let mut head = Vec::with_capacity(12);
        head.extend_from_slice(b"PACK");
        head.extend_from_slice(&2u32.to_be_bytes());
        head.extend_from_slice(&count.to_be_bytes());
        out.write(&head).map_err(io_err(&tmp))?;

        let mut offsets = vec![u64::MAX; n];
        let mut crcs = vec![0u32; n];
        let mut chain = Vec::new();
        let mut copy = vec![0u8; BUF];
        let mut written_deltas = 0u64;
        for first in 0..n {
            // Bases first: follow the chain down to an object already written (or none).
            chain.clear();
            let mut i = first;
            while offsets[i] == u64::MAX {
                chain.push(i);
                if chain.len() > n {
                    return Err(ExportError::Spool {
                        reason: "delta chain loops",
                    });
                }
                match &choices[i] {
                    Some(c) => i = c.base as usize,
                    None => break,
                }
            }
            for &i in chain.iter().rev() {
                let r = &self.records[i];
                let start = out.pos;
                head.clear();
                let (file, at, zlen) = match &choices[i] {
                    Some(c) => {
                        put_header(&mut head, OFS_DELTA, c.delta_len);
                        let base = offsets[c.base as usize];
                        if base >= start {
                            return Err(ExportError::Spool {
                                reason: "delta base not written before its delta",
                            });
                        }
                        put_offset(&mut head, start - base);
                        written_deltas += 1;
                        (delta_file, c.at, c.zlen)
                    }
                    None => {
                        put_header(&mut head, r.ty, r.size);
                        (spool, r.at, r.zlen)
                    }
                };
                let mut crc = crc32(0, &head);
                out.write(&head).map_err(io_err(&tmp))?;
                let mut pos = at;
                let end = at + zlen;
                while pos < end {
                    let len = usize::try_from(end - pos).map_or(copy.len(), |l| l.min(copy.len()));
                    let chunk = &mut copy[..len];
                    file.read_exact_at(chunk, pos).map_err(io_err(&dir))?;
                    crc = crc32(crc, chunk);
                    out.write(chunk).map_err(io_err(&tmp))?;
                    pos += len as u64;
                }
                offsets[i] = start;
                crcs[i] = crc;
            }
        }
        let pack_len = out.pos + 20;
        let (sum, pack_file) = out.finish()?;
        let idx_file = self.write_index(&offsets, &crcs, &sum)?;

        let name = format!("pack-{}", hex(&sum.0));
        let pack_path = dir.join(format!("{name}.pack"));
        let idx_path = dir.join(format!("{name}.idx"));
        pack_file.persist(&pack_path).map_err(|e| ExportError::Io {
            path: pack_path.clone(),
            source: e.error,
        })?;
        idx_file.persist(&idx_path).map_err(|e| ExportError::Io {
            path: idx_path.clone(),
            source: e.error,
        })?;
        Ok(Some(Written {
            pack: pack_path,
            bytes: pack_len,
            deltas: written_deltas,
        }))
    }

    /// Writes the version 2 index of the pack whose trailer is `sum`.
    fn write_index(
        &self,
        offsets: &[u64],
        crcs: &[u32],
        sum: &GitId,
    ) -> Result<tempfile::NamedTempFile, ExportError> {
        let mut order: Vec<usize> = (0..self.records.len()).collect();
        order.sort_unstable_by_key(|&i| self.records[i].id);
        let mut out = HashedOut::new(&self.dir, "tmp_idx_")?;
        let tmp = out.out.get_ref().path().to_path_buf();
        let err = io_err(&tmp);
        out.write(b"\xfftOc").map_err(&err)?;
        out.write(&2u32.to_be_bytes()).map_err(&err)?;
        let mut fanout = [0u32; 256];
        for r in &self.records {
            fanout[usize::from(r.id.0[0])] += 1;
        }
        let mut total = 0u32;
        for f in fanout {
            total += f;
            out.write(&total.to_be_bytes()).map_err(&err)?;
        }
        for &i in &order {
            out.write(&self.records[i].id.0).map_err(&err)?;
        }
        for &i in &order {
            out.write(&crcs[i].to_be_bytes()).map_err(&err)?;
        }
        let mut large = Vec::new();
        for &i in &order {
            let off = offsets[i];
            let word = match u32::try_from(off) {
                Ok(small) if small < 0x8000_0000 => small,
                _ => {
                    let slot = u32::try_from(large.len()).map_err(|_| ExportError::PackTooLarge)?;
                    large.push(off);
                    0x8000_0000 | slot
                }
            };
            out.write(&word.to_be_bytes()).map_err(&err)?;
        }
        for off in large {
            out.write(&off.to_be_bytes()).map_err(&err)?;
        }
        out.write(&sum.0).map_err(&err)?;
        Ok(out.finish()?.1)
    }
}

#[cfg(test)]
mod tests {
    use super::spool::header_len;
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(0, b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(crc32(0, b"1234"), b"56789"), 0xCBF4_3926);
    }

    #[test]
    fn entry_headers_and_offsets() {
        let mut v = Vec::new();
        put_header(&mut v, 3, 15);
        assert_eq!(v, [0x3f]);
        v.clear();
        put_header(&mut v, 1, 16);
        assert_eq!(v, [0x90, 0x01]);
        assert_eq!(header_len(15), 1);
        assert_eq!(header_len(16), 2);
        assert_eq!(header_len(1 << 11), 3);
        v.clear();
        put_offset(&mut v, 127);
        assert_eq!(v, [0x7f]);
        v.clear();
        put_offset(&mut v, 128);
        assert_eq!(v, [0x80, 0x00]);
        v.clear();
        put_offset(&mut v, 16_511);
        assert_eq!(v, [0xff, 0x7f]);
        v.clear();
        put_offset(&mut v, 16_512);
        assert_eq!(v, [0x80, 0x80, 0x00]);
    }

    #[test]
    fn name_hash_groups_by_file_name_ending() {
        assert_eq!(name_hash(b""), 0);
        assert_eq!(name_hash(b"main.rs"), name_hash(b" main .rs\n"));
        assert_ne!(name_hash(b"main.rs"), name_hash(b"main.c"));
    }
}
