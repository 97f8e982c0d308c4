//! The spool: each object compressed once into a temporary file and read back by offset, and
//! the zlib helpers the writer and the choice of deltas share.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use gix::zlib::stream::deflate::{Compress, FlushCompress};
use gix::zlib::{Compression, Decompress, FlushDecompress, Status};

use crate::error::ExportError;
use crate::gitfmt::GitId;

/// zlib level of everything in the pack (git's default is 6).
pub(super) const LEVEL: Compression = Compression::BEST;
/// No object (in `Record::prev` and `next`).
pub(super) const NONE: u32 = u32::MAX;
/// I/O buffer size.
pub(super) const BUF: usize = 1 << 16;

pub(super) fn io_err(path: &Path) -> impl Fn(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What is known of one object to be packed.
pub(super) struct Record {
    pub(super) id: GitId,
    /// Pack type number (1 to 4).
    pub(super) ty: u8,
    /// Size of the object.
    pub(super) size: u64,
    /// [`name_hash`](super::name_hash) of the path it was first seen at.
    pub(super) name_hash: u32,
    /// Where its compressed bytes start in the spool, and how many there are.
    pub(super) at: u64,
    pub(super) zlen: u64,
    /// The object seen before and after it at the same path (same type), or [`NONE`].
    pub(super) prev: u32,
    pub(super) next: u32,
}

/// A temporary file written sequentially and read back by offset.
pub(super) struct Spool {
    pub(super) out: BufWriter<File>,
    pub(super) len: u64,
}

impl Spool {
    pub(super) fn new(dir: &Path) -> Result<Spool, ExportError> {
        let file = tempfile::tempfile_in(dir).map_err(io_err(dir))?;
        Ok(Spool {
            out: BufWriter::with_capacity(BUF, file),
            len: 0,
        })
    }

    pub(super) fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Forgets everything from `len` on.
    pub(super) fn truncate(&mut self, len: u64) -> std::io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().set_len(len)?;
        self.out.seek(SeekFrom::Start(len))?;
        self.len = len;
        Ok(())
    }

    /// Flushes, and gives the file for reading.
    pub(super) fn file(&mut self) -> std::io::Result<&File> {
        self.out.flush()?;
        Ok(self.out.get_ref())
    }
}

/// Compresses `input` into `sink` as part of the stream `c`; with [`FlushCompress::Finish`]
/// ends the stream. `buf` is scratch space.
pub(super) fn deflate(
    c: &mut Compress,
    mut input: &[u8],
    flush: FlushCompress,
    buf: &mut [u8],
    sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    dir: &Path,
) -> Result<(), ExportError> {
    loop {
        let (in0, out0) = (c.total_in(), c.total_out());
        let status = c
            .compress(input, buf, flush)
            .map_err(|source| ExportError::Zlib { source })?;
        let produced = usize::try_from(c.total_out() - out0).unwrap_or(usize::MAX);
        let consumed = usize::try_from(c.total_in() - in0).unwrap_or(usize::MAX);
        let (Some(out), Some(rest)) = (buf.get(..produced), input.get(consumed..)) else {
            return Err(ExportError::Spool {
                reason: "zlib reported more than it was given",
            });
        };
        sink(out).map_err(io_err(dir))?;
        input = rest;
        if status == Status::StreamEnd {
            return Ok(());
        }
        let output_full = produced == buf.len();
        if flush != FlushCompress::Finish && input.is_empty() && !output_full {
            return Ok(());
        }
        if produced == 0 && consumed == 0 && !output_full {
            return Err(ExportError::Spool {
                reason: "zlib made no progress",
            });
        }
    }
}

/// Compresses `input` as one whole zlib stream into `out` (cleared first).
pub(super) fn deflate_to_vec(
    c: &mut Compress,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), ExportError> {
    out.clear();
    c.reset();
    let mut buf = [0u8; 4096];
    deflate(
        c,
        input,
        FlushCompress::Finish,
        &mut buf,
        &mut |b| {
            out.extend_from_slice(b);
            Ok(())
        },
        Path::new("memory"),
    )
}

/// Reads `record`'s object back from the spool.
pub(super) fn load(
    spool: &File,
    record: &Record,
    inflate: &mut Decompress,
    dir: &Path,
) -> Result<Vec<u8>, ExportError> {
    let bad = |reason| ExportError::Spool { reason };
    let size = usize::try_from(record.size).map_err(|_| bad("object too large for memory"))?;
    let zlen = usize::try_from(record.zlen).map_err(|_| bad("object too large for memory"))?;
    let mut z = vec![0u8; zlen];
    spool
        .read_exact_at(&mut z, record.at)
        .map_err(io_err(dir))?;
    let mut out = vec![0u8; size];
    inflate.reset();
    let status = inflate
        .decompress(&z, &mut out, FlushDecompress::Finish)
        .map_err(|source| ExportError::Zlib { source })?;
    if status != Status::StreamEnd
        || inflate.total_out() != record.size
        || inflate.total_in() != record.zlen
    {
        return Err(bad("object in the spool does not inflate to its size"));
    }
    Ok(out)
}

/// The number of bytes of an entry header for `size`.
pub(super) fn header_len(size: u64) -> u64 {
    let mut n = 1;
    let mut rest = size >> 4;
    while rest > 0 {
        n += 1;
        rest >>= 7;
    }
    n
}
