//! A tiny length-prefixed encoding for the records kept in settings.

use hero_store::codec::ByteReader;

/// Appends one field: its length (u32, little endian) and its bytes.
pub(crate) fn put_field(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// Appends an optional field: a presence byte, then the field.
pub(crate) fn put_opt(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        Some(b) => {
            out.push(1);
            put_field(out, b);
        }
        None => out.push(0),
    }
}

/// Reads fields back (the store's bounds-checked reader); every read returns `None` on
/// malformed input.
pub(crate) struct Reader<'a>(ByteReader<'a>);

impl<'a> Reader<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Reader(ByteReader::new(b))
    }

    pub(crate) fn field(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.0.u32_le().ok()?).ok()?;
        self.0.take(len).ok()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn opt(&mut self) -> Option<Option<&'a [u8]>> {
        match self.0.u8().ok()? {
            0 => Some(None),
            1 => self.field().map(Some),
            _ => None,
        }
    }
}
