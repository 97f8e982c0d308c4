//! The checks of the store's fuzz targets (`fuzz/`), shared with the test that replays their
//! checked-in corpora on stable Rust (`cli/tests/fuzz_corpus.rs`). Each takes any bytes and
//! panics only on a bug: a decoder that panics, or a value that does not survive a round trip
//! through its encoder.

use crate::object::{Commit, ManifestNode, Tag, Tree};
use crate::record::{self, Encoding, Record};

/// An object record as stored (`objects-1` values): parses or is refused; a parsed record
/// decodes or is refused (a delta against the record's own payload as its base), and its
/// header encodes back to the same fields.
pub fn record(data: &[u8]) {
    let Ok(rec) = Record::parse(data) else {
        return;
    };
    let base = rec.data;
    let _ = rec.decode(Some(base));
    let mut out = Vec::new();
    let _ = rec.decode_whole_into(&mut out);
    if matches!(rec.enc, Encoding::Plain | Encoding::Zstd) && rec.payload_hash.is_none() {
        let again = record::encode_with(rec.ty, rec.enc, rec.raw_len, rec.data);
        let back = Record::parse(&again).unwrap_or_else(|e| panic!("re-encoded record: {e}"));
        assert_eq!(
            (back.ty, back.enc, back.raw_len, back.data),
            (rec.ty, rec.enc, rec.raw_len, rec.data)
        );
    }
}

/// A tree: decodes and encodes back to a tree equal to it.
pub fn tree(data: &[u8]) {
    if let Ok(t) = Tree::decode(data) {
        let again = t.encode();
        assert_eq!(Tree::decode(&again).ok(), Some(t));
    }
}

/// A commit: decodes and encodes back to a commit equal to it.
pub fn commit(data: &[u8]) {
    if let Ok(c) = Commit::decode(data) {
        let again = c.encode();
        assert_eq!(Commit::decode(&again).ok(), Some(c));
    }
}

/// An annotated tag: decodes and encodes back to a tag equal to it.
pub fn tag(data: &[u8]) {
    if let Ok(t) = Tag::decode(data) {
        let again = t.encode();
        assert_eq!(Tag::decode(&again).ok(), Some(t));
    }
}

/// A large file's manifest node: decodes and encodes back to a node equal to it.
pub fn manifest(data: &[u8]) {
    if let Ok(n) = ManifestNode::decode(data) {
        let _ = (n.total(), n.has_holes(), n.stored_children().count());
        let again = n.encode();
        assert_eq!(ManifestNode::decode(&again).ok(), Some(n));
    }
}

/// A delta: the input is `u8 n, n bytes of base, target length (u16 LE), frame`. The frame
/// applied to the base gives bytes of the claimed length or is refused; and a delta made of
/// the frame's bytes against the base applies back to them exactly.
pub fn delta(data: &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n).min(rest.len());
    let (base, rest) = rest.split_at(n);
    let Some((len, frame)) = rest.split_first_chunk::<2>() else {
        return;
    };
    let raw_len = u64::from(u16::from_le_bytes(*len));
    if let Ok(out) = record::apply_delta_frame(frame, raw_len, base) {
        assert_eq!(out.len() as u64, raw_len);
    }
    if let Ok(out) = record::decode_zstd_frame(frame, raw_len) {
        assert_eq!(out.len() as u64, raw_len);
    }
    if let Some(d) = record::delta_frame(frame, base) {
        let back = record::apply_delta_frame(&d, frame.len() as u64, base)
            .unwrap_or_else(|e| panic!("a delta made here does not apply: {e}"));
        assert!(back == frame);
    }
}

/// Small valid inputs of each store target, made by the store's own encoders: the seeds of
/// the checked-in corpora (`fuzz/seeds/`).
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    use crate::id::ObjectId;
    use crate::object::{
        EntryKind, EntryMeta, LinkGroup, Owner, Signature, TargetKind, Timestamp, TreeEntry,
    };
    use crate::record::ObjType;
    let id = |b: u8| ObjectId([b; 32]);
    let sig = Signature {
        name: b"A U Thor".to_vec(),
        email: b"a@example.com".to_vec(),
        time: 1_700_000_000,
        tz_offset_minutes: 60,
    };
    let tree = Tree {
        entries: vec![
            TreeEntry::new("a.txt", EntryKind::File, id(1), 6),
            TreeEntry::new("d", EntryKind::Dir, id(2), 0),
        ],
    };
    // A tree in each later encoding: metadata (2); special files, an access time, a link
    // group and a device number (3).
    let with_meta = |e: TreeEntry, meta: EntryMeta| TreeEntry { meta, ..e };
    let stamp = |secs| Some(Timestamp { secs, nanos: 7 });
    let tree2 = Tree {
        entries: vec![with_meta(
            TreeEntry::new("a.txt", EntryKind::File, id(1), 6),
            EntryMeta {
                mode: Some(0o640),
                owner: Some(Owner { uid: 1, gid: 2 }),
                mtime: stamp(1_700_000_000),
                ..EntryMeta::NONE
            },
        )],
    };
    let linked = EntryMeta {
        link: Some(LinkGroup(0x0123_4567_89ab_cdef)),
        atime: stamp(-3),
        ..EntryMeta::NONE
    };
    let tree3 = Tree {
        entries: vec![
            with_meta(TreeEntry::new("a", EntryKind::File, id(1), 6), linked),
            with_meta(TreeEntry::new("b", EntryKind::File, id(1), 6), linked),
            TreeEntry::new("fifo", EntryKind::Fifo, ObjectId::ZERO, 0),
            with_meta(
                TreeEntry::new("null", EntryKind::CharDevice, ObjectId::ZERO, 0),
                EntryMeta {
                    mode: Some(0o666),
                    rdev: Some(259),
                    ..EntryMeta::NONE
                },
            ),
            TreeEntry::new("sda", EntryKind::BlockDevice, ObjectId::ZERO, 0),
            TreeEntry::new("sock", EntryKind::Socket, ObjectId::ZERO, 0),
        ],
    };
    let commit = Commit {
        tree: id(3),
        parents: vec![id(4)],
        author: sig.clone(),
        committer: sig.clone(),
        message: b"a change\n".to_vec(),
        extra: vec![(b"hero-peer".to_vec(), b"ab12".to_vec())],
    };
    let tag = Tag {
        target: id(5),
        target_kind: TargetKind::Commit,
        name: b"v1".to_vec(),
        tagger: Some(sig),
        message: b"release\n".to_vec(),
        extra: Vec::new(),
    };
    let manifest = ManifestNode {
        level: 0,
        children: vec![(Some(id(6)), 65536), (Some(id(7)), 1234)],
    };
    let sparse = ManifestNode {
        level: 0,
        children: vec![
            (None, 1 << 44),
            (Some(id(9)), 4096),
            (None, 65536),
            (Some(id(6)), 1234),
        ],
    };
    let text = b"port = 80\nhost = \"example\"\n".repeat(8);
    let changed = b"port = 8080\nhost = \"example\"\n".repeat(8);
    let mut delta = vec![64u8];
    delta.extend_from_slice(&text[..64]);
    delta.extend_from_slice(&(changed.len() as u16).to_le_bytes());
    delta.extend(record::delta_frame(&changed, &text[..64]).unwrap_or_default());
    vec![
        (
            "store_record",
            record::encode_full(ObjType::Blob, b"hello\n", None),
        ),
        (
            "store_record",
            record::encode_full(ObjType::Blob, &text, None),
        ),
        (
            "store_record",
            record::encode_delta(ObjType::Blob, &changed, id(8), &text, None, true)
                .unwrap_or_default(),
        ),
        (
            "store_record",
            record::encode_full(ObjType::Tree, &tree.encode(), None),
        ),
        ("store_tree", tree.encode()),
        ("store_tree", tree2.encode()),
        ("store_tree", tree3.encode()),
        ("store_commit", commit.encode()),
        ("store_tag", tag.encode()),
        ("store_manifest", manifest.encode()),
        ("store_manifest", sparse.encode()),
        ("store_delta", delta),
    ]
}
