//! The pack-entry check of the fuzz targets (see [`crate::fuzzing`]).

use super::pack::{BaseRef, Parsed, entry_bytes, parse_entries};

fn base_key(b: &Option<BaseRef>) -> Option<(u64, Option<[u8; 32]>)> {
    b.map(|b| match b {
        BaseRef::Back(n) => (n, None),
        BaseRef::Held(id) => (0, Some(id.0)),
    })
}

fn key(p: &Parsed) -> impl PartialEq + std::fmt::Debug + '_ {
    (
        p.ty,
        p.form,
        p.raw_len,
        p.manifest_id,
        base_key(&p.base),
        p.data.as_slice(),
    )
}

/// The entries of a PACK message: parsed or refused; parsed entries encode back to entries
/// that parse to the same.
pub fn pack_entries(data: &[u8]) {
    let mut parsed = Vec::new();
    if parse_entries(data, &mut parsed).is_err() {
        return;
    }
    let mut again = Vec::new();
    for p in &parsed {
        again.extend_from_slice(&entry_bytes(
            p.ty,
            p.form,
            p.raw_len,
            p.base,
            p.manifest_id.as_ref(),
            &p.data,
        ));
    }
    let mut back = Vec::new();
    parse_entries(&again, &mut back).unwrap_or_else(|e| panic!("re-encoded entries: {e}"));
    assert_eq!(back.len(), parsed.len());
    for (a, b) in parsed.iter().zip(&back) {
        assert_eq!(key(a), key(b));
    }
}

/// A PACK body of two entries: an object sent whole, and a delta against the one before.
pub(crate) fn sample_pack(ty: hero_store::ObjType) -> Vec<u8> {
    let mut out = entry_bytes(ty, crate::wire::form::PLAIN, 6, None, None, b"hello\n");
    out.extend(entry_bytes(
        ty,
        crate::wire::form::DELTA,
        12,
        Some(BaseRef::Back(1)),
        None,
        b"\x01\x02\x03",
    ));
    out
}
