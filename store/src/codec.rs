//! Little binary encoding used by every stored structure: varints, length-prefixed bytes, ids;
//! and the bounds-checked [`ByteReader`] the other crates' binary formats read with.
//!
//! Decoding never panics: truncated or malformed input is a [`DecodeError`].

use crate::id::ObjectId;

/// Malformed bytes where a stored structure was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {what}: {reason}")]
pub struct DecodeError {
    /// Which structure was being decoded.
    pub what: &'static str,
    /// What was wrong.
    pub reason: &'static str,
}

/// Appends `v` as an unsigned LEB128 varint (7 bits a byte, low bits first, high bit set on
/// every byte but the last): at most 10 bytes.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` as a zigzag-mapped varint (small magnitudes of either sign stay short).
pub fn put_ivarint(out: &mut Vec<u8>, v: i64) {
    put_varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Why a [`ByteReader`] could not read what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// Fewer bytes are left than the read needs.
    #[error("truncated")]
    Truncated,
    /// A varint runs past 64 bits.
    #[error("varint too long")]
    VarintTooLong,
}

impl ReadError {
    /// The reason as a static string (for errors that keep one).
    pub fn reason(self) -> &'static str {
        match self {
            ReadError::Truncated => "truncated",
            ReadError::VarintTooLong => "varint too long",
        }
    }
}

/// Reads fields from a byte slice; every read is bounds-checked and none panics, whatever the
/// bytes. The one reader of the workspace's binary encodings: the store's records, the sync
/// protocol's messages, membership envelopes, announcements and settings records wrap it with
/// their own error types.
#[derive(Debug, Clone)]
pub struct ByteReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> ByteReader<'a> {
    /// Reads `buf` from its start.
    pub fn new(buf: &'a [u8]) -> Self {
        ByteReader { buf, pos: 0 }
    }
    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ReadError> {
        let end = self.pos.checked_add(n).ok_or(ReadError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(ReadError::Truncated)?;
        self.pos = end;
        Ok(s)
    }
    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], ReadError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    /// A byte.
    pub fn u8(&mut self) -> Result<u8, ReadError> {
        Ok(self.array::<1>()?[0])
    }
    /// A big-endian u16.
    pub fn u16_be(&mut self) -> Result<u16, ReadError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    /// A big-endian u32.
    pub fn u32_be(&mut self) -> Result<u32, ReadError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    /// A little-endian u32.
    pub fn u32_le(&mut self) -> Result<u32, ReadError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    /// A big-endian u64.
    pub fn u64_be(&mut self) -> Result<u64, ReadError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    /// A little-endian u64.
    pub fn u64_le(&mut self) -> Result<u64, ReadError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    /// An unsigned LEB128 varint of at most 64 bits (what [`put_varint`] writes).
    pub fn varint(&mut self) -> Result<u64, ReadError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ReadError::VarintTooLong)
    }
    /// A zigzag varint (what [`put_ivarint`] writes).
    pub fn ivarint(&mut self) -> Result<i64, ReadError> {
        let v = self.varint()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }
    /// A 32-byte object id.
    pub fn id(&mut self) -> Result<ObjectId, ReadError> {
        Ok(ObjectId(self.array()?))
    }
    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        let s = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        s
    }
    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }
}

#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Writer { buf: Vec::new() }
    }
    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub(crate) fn varint(&mut self, v: u64) {
        put_varint(&mut self.buf, v);
    }
    pub(crate) fn ivarint(&mut self, v: i64) {
        put_ivarint(&mut self.buf, v);
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.varint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }
    pub(crate) fn id(&mut self, id: &ObjectId) {
        self.buf.extend_from_slice(&id.0);
    }
    pub(crate) fn raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
}

/// The store's reader: a [`ByteReader`] whose errors name the structure being decoded.
pub(crate) struct Reader<'a> {
    r: ByteReader<'a>,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader {
            r: ByteReader::new(buf),
            what,
        }
    }
    pub(crate) fn err(&self, reason: &'static str) -> DecodeError {
        DecodeError {
            what: self.what,
            reason,
        }
    }
    fn map(&self, e: ReadError) -> DecodeError {
        self.err(e.reason())
    }
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        self.r.u8().map_err(|e| self.map(e))
    }
    pub(crate) fn varint(&mut self) -> Result<u64, DecodeError> {
        self.r.varint().map_err(|e| self.map(e))
    }
    pub(crate) fn ivarint(&mut self) -> Result<i64, DecodeError> {
        self.r.ivarint().map_err(|e| self.map(e))
    }
    pub(crate) fn len(&mut self) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        let n = usize::try_from(n).map_err(|_| self.err("length overflow"))?;
        if n > self.r.remaining() {
            return Err(self.err("length past end"));
        }
        Ok(n)
    }
    pub(crate) fn raw(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        self.r.take(n).map_err(|e| self.map(e))
    }
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.len()?;
        self.raw(n)
    }
    pub(crate) fn id(&mut self) -> Result<ObjectId, DecodeError> {
        self.r.id().map_err(|e| self.map(e))
    }
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        self.r.rest()
    }
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.r.is_empty() {
            Ok(())
        } else {
            Err(self.err("trailing bytes"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_truncation_is_an_error() {
        let mut w = Writer::new();
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            w.varint(v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            w.ivarint(v);
        }
        let mut r = Reader::new(&w.buf, "test");
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            assert_eq!(r.varint().unwrap(), v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(r.ivarint().unwrap(), v);
        }
        r.finish().unwrap();
        let mut r = Reader::new(&[0x80, 0x80], "test");
        assert!(r.varint().is_err());
        let mut r = Reader::new(&[10, 1, 2], "test");
        assert!(r.bytes().is_err());
    }

    #[test]
    fn byte_reader_bounds_every_read() {
        let mut r = ByteReader::new(&[1, 0, 2, 0, 0, 0, 3]);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u16_be(), Ok(2));
        assert_eq!(r.u64_le(), Err(ReadError::Truncated));
        // A failed read consumes nothing.
        assert_eq!(r.remaining(), 4);
        assert_eq!(r.take(usize::MAX), Err(ReadError::Truncated));
        assert_eq!(r.rest(), &[0, 0, 0, 3]);
        assert!(r.is_empty());
        let mut r = ByteReader::new(&[0xff; 11]);
        assert_eq!(r.varint(), Err(ReadError::VarintTooLong));
    }
}
