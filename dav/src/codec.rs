//! A tiny length-prefixed encoding for the records kept in settings.

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

/// Reads fields back; every read returns `None` on malformed input.
pub(crate) struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn field(&mut self) -> Option<&'a [u8]> {
        let len = self.0.get(..4)?;
        let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
        let rest = self.0.get(4..)?;
        let (f, rest) = (rest.get(..len)?, rest.get(len..)?);
        self.0 = rest;
        Some(f)
    }

    pub(crate) fn opt(&mut self) -> Option<Option<&'a [u8]>> {
        let (&flag, rest) = self.0.split_first()?;
        self.0 = rest;
        match flag {
            0 => Some(None),
            1 => self.field().map(Some),
            _ => None,
        }
    }
}
