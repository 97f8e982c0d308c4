//! The structured objects: trees, commits, tags and file manifests, and their byte encodings.
//!
//! Every encoding starts with a type byte and a format version byte, so a later format can be
//! told apart. Ids are the BLAKE3 of the encoded bytes.

use crate::codec::{DecodeError, Reader, Writer};
use crate::id::ObjectId;
use crate::path::{NameError, validate_name};

/// What a tree entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A regular file with the executable bit.
    Executable,
    /// A symbolic link; its content is the target.
    Symlink,
    /// A directory; its id is a tree.
    Dir,
    /// A git submodule entry. The id holds the git object id left-aligned and zero-padded; the
    /// entry's size is the length of that git id in bytes (20 for SHA-1, 32 for SHA-256).
    Gitlink,
}

impl EntryKind {
    fn code(self) -> u8 {
        match self {
            EntryKind::File => 0,
            EntryKind::Executable => 1,
            EntryKind::Symlink => 2,
            EntryKind::Dir => 3,
            EntryKind::Gitlink => 4,
        }
    }
    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => EntryKind::File,
            1 => EntryKind::Executable,
            2 => EntryKind::Symlink,
            3 => EntryKind::Dir,
            4 => EntryKind::Gitlink,
            _ => return None,
        })
    }
    /// Whether the entry's id names file content (files, executables and symlinks).
    pub fn is_blob(self) -> bool {
        matches!(
            self,
            EntryKind::File | EntryKind::Executable | EntryKind::Symlink
        )
    }
    /// A short lower-case name: `file`, `exec`, `symlink`, `dir`, `gitlink`.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Executable => "exec",
            EntryKind::Symlink => "symlink",
            EntryKind::Dir => "dir",
            EntryKind::Gitlink => "gitlink",
        }
    }
}

/// One entry of a tree.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TreeEntry {
    /// The name, any bytes but empty, `.`, `..`, `/` or NUL.
    pub name: Vec<u8>,
    /// What it is.
    pub kind: EntryKind,
    /// Content id (files, symlinks), tree id (directories) or git id (gitlinks).
    pub id: ObjectId,
    /// Size in bytes of the content; for a directory, the number of entries.
    pub size: u64,
}

/// A directory: entries sorted by name, bytewise, names unique.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tree {
    /// The entries, sorted and unique by name.
    pub entries: Vec<TreeEntry>,
}

const TREE_TAG: u8 = b't';
const COMMIT_TAG: u8 = b'c';
const TAG_TAG: u8 = b'g';
const MANIFEST_TAG: u8 = b'm';
const FORMAT: u8 = 1;

/// Reads a tree's header and hands each entry (kind, name, id, size) to `each`; returns the
/// reader so the caller can check nothing follows.
fn read_entries<'a>(
    bytes: &'a [u8],
    mut each: impl FnMut(EntryKind, &'a [u8], ObjectId, u64),
) -> Result<Reader<'a>, DecodeError> {
    let mut r = Reader::new(bytes, "tree");
    if r.u8()? != TREE_TAG {
        return Err(r.err("not a tree"));
    }
    if r.u8()? != FORMAT {
        return Err(r.err("unknown tree format"));
    }
    let n = r.varint()?;
    for _ in 0..n {
        let kind = EntryKind::from_code(r.u8()?).ok_or_else(|| r.err("bad entry kind"))?;
        let name = r.bytes()?;
        let id = r.id()?;
        let size = r.varint()?;
        each(kind, name, id, size);
    }
    Ok(r)
}

impl Tree {
    /// Looks an entry up by name.
    pub fn get(&self, name: &[u8]) -> Option<&TreeEntry> {
        self.entries
            .binary_search_by(|e| e.name.as_slice().cmp(name))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// Encodes the tree. Entries must be sorted and names valid; see [`Tree::check`].
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(TREE_TAG);
        w.u8(FORMAT);
        w.varint(self.entries.len() as u64);
        for e in &self.entries {
            w.u8(e.kind.code());
            w.bytes(&e.name);
            w.id(&e.id);
            w.varint(e.size);
        }
        w.buf
    }

    /// Checks sort order, uniqueness and names.
    pub fn check(&self) -> Result<(), NameError> {
        for pair in self.entries.windows(2) {
            if pair[0].name >= pair[1].name {
                return Err(NameError::Unsorted);
            }
        }
        for e in &self.entries {
            validate_name(&e.name)?;
        }
        Ok(())
    }

    /// Each entry's kind, id and size, without copying names: for walking many trees when
    /// the names do not matter.
    pub fn entries_without_names(
        bytes: &[u8],
    ) -> Result<Vec<(EntryKind, ObjectId, u64)>, DecodeError> {
        let mut out = Vec::new();
        let r = read_entries(bytes, |kind, _, id, size| out.push((kind, id, size)))?;
        r.finish()?;
        Ok(out)
    }

    /// Decodes and checks a tree.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut entries = Vec::new();
        let r = read_entries(bytes, |kind, name, id, size| {
            entries.push(TreeEntry {
                name: name.to_vec(),
                kind,
                id,
                size,
            })
        })?;
        r.finish()?;
        let tree = Tree { entries };
        tree.check()
            .map_err(|_| r.err("unsorted or invalid names"))?;
        Ok(tree)
    }

    /// The id the encoded tree has.
    pub fn id(&self) -> ObjectId {
        ObjectId::of(&self.encode())
    }
}

/// Who made a commit or tag, and when.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Signature {
    /// Name, bytes as given (git allows any encoding).
    pub name: Vec<u8>,
    /// E-mail address, bytes as given.
    pub email: Vec<u8>,
    /// Seconds since the Unix epoch.
    pub time: i64,
    /// Offset from UTC in minutes (east positive), as the signer's clock had it.
    pub tz_offset_minutes: i32,
}

impl Signature {
    fn write(&self, w: &mut Writer) {
        w.bytes(&self.name);
        w.bytes(&self.email);
        w.ivarint(self.time);
        w.ivarint(i64::from(self.tz_offset_minutes));
    }
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let name = r.bytes()?.to_vec();
        let email = r.bytes()?.to_vec();
        let time = r.ivarint()?;
        let tz = i32::try_from(r.ivarint()?).map_err(|_| r.err("time zone out of range"))?;
        Ok(Signature {
            name,
            email,
            time,
            tz_offset_minutes: tz,
        })
    }

    /// The time zone as `+HHMM`/`-HHMM`.
    pub fn tz_string(&self) -> String {
        let sign = if self.tz_offset_minutes < 0 { '-' } else { '+' };
        let m = self.tz_offset_minutes.unsigned_abs();
        format!("{sign}{:02}{:02}", m / 60, m % 60)
    }
}

/// A commit: a tree, its parents, who and when, a message, and extra headers kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// The root tree.
    pub tree: ObjectId,
    /// Parent commits, first parent first.
    pub parents: Vec<ObjectId>,
    /// Who wrote the change.
    pub author: Signature,
    /// Who made the commit.
    pub committer: Signature,
    /// The message, bytes as given.
    pub message: Vec<u8>,
    /// Any other headers (for instance git's `encoding`, `gpgsig`, `mergetag`, or hero's
    /// `hero-peer`), in order, verbatim.
    pub extra: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The header that records which peer (iroh endpoint id) made a commit.
pub const PEER_HEADER: &[u8] = b"hero-peer";

impl Commit {
    /// Encodes the commit.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(COMMIT_TAG);
        w.u8(FORMAT);
        w.id(&self.tree);
        w.varint(self.parents.len() as u64);
        for p in &self.parents {
            w.id(p);
        }
        self.author.write(&mut w);
        self.committer.write(&mut w);
        w.bytes(&self.message);
        write_extra(&mut w, &self.extra);
        w.buf
    }

    /// Decodes a commit.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, "commit");
        if r.u8()? != COMMIT_TAG {
            return Err(r.err("not a commit"));
        }
        if r.u8()? != FORMAT {
            return Err(r.err("unknown commit format"));
        }
        let tree = r.id()?;
        let n = r.varint()?;
        let mut parents = Vec::new();
        for _ in 0..n {
            parents.push(r.id()?);
        }
        let author = Signature::read(&mut r)?;
        let committer = Signature::read(&mut r)?;
        let message = r.bytes()?.to_vec();
        let extra = read_extra(&mut r)?;
        r.finish()?;
        Ok(Commit {
            tree,
            parents,
            author,
            committer,
            message,
            extra,
        })
    }

    /// The id of this commit.
    pub fn id(&self) -> ObjectId {
        ObjectId::of(&self.encode())
    }

    /// The first line of the message, lossily decoded.
    pub fn summary(&self) -> String {
        let first = self.message.split(|&b| b == b'\n').next().unwrap_or(&[]);
        String::from_utf8_lossy(first).into_owned()
    }

    /// The value of the first extra header called `key`.
    pub fn header(&self, key: &[u8]) -> Option<&[u8]> {
        self.extra
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }
}

fn write_extra(w: &mut Writer, extra: &[(Vec<u8>, Vec<u8>)]) {
    w.varint(extra.len() as u64);
    for (k, v) in extra {
        w.bytes(k);
        w.bytes(v);
    }
}

/// Extra headers: (key, value) pairs in order.
pub type ExtraHeaders = Vec<(Vec<u8>, Vec<u8>)>;

fn read_extra(r: &mut Reader<'_>) -> Result<ExtraHeaders, DecodeError> {
    let n = r.varint()?;
    let mut extra = Vec::new();
    for _ in 0..n {
        let k = r.bytes()?.to_vec();
        let v = r.bytes()?.to_vec();
        extra.push((k, v));
    }
    Ok(extra)
}

/// What an annotated tag points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// A commit.
    Commit,
    /// A tree.
    Tree,
    /// File content.
    Blob,
    /// Another annotated tag.
    Tag,
}

impl TargetKind {
    fn code(self) -> u8 {
        match self {
            TargetKind::Commit => 0,
            TargetKind::Tree => 1,
            TargetKind::Blob => 2,
            TargetKind::Tag => 3,
        }
    }
    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => TargetKind::Commit,
            1 => TargetKind::Tree,
            2 => TargetKind::Blob,
            3 => TargetKind::Tag,
            _ => return None,
        })
    }
}

/// An annotated tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// The tagged object.
    pub target: ObjectId,
    /// Its kind.
    pub target_kind: TargetKind,
    /// The tag's name, as recorded in the tag (bytes).
    pub name: Vec<u8>,
    /// Who tagged, if recorded.
    pub tagger: Option<Signature>,
    /// The message.
    pub message: Vec<u8>,
    /// Other headers, verbatim (for instance a signature).
    pub extra: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Tag {
    /// Encodes the tag.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(TAG_TAG);
        w.u8(FORMAT);
        w.id(&self.target);
        w.u8(self.target_kind.code());
        w.bytes(&self.name);
        match &self.tagger {
            Some(s) => {
                w.u8(1);
                s.write(&mut w);
            }
            None => w.u8(0),
        }
        w.bytes(&self.message);
        write_extra(&mut w, &self.extra);
        w.buf
    }

    /// Decodes a tag.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, "tag");
        if r.u8()? != TAG_TAG {
            return Err(r.err("not a tag"));
        }
        if r.u8()? != FORMAT {
            return Err(r.err("unknown tag format"));
        }
        let target = r.id()?;
        let target_kind = TargetKind::from_code(r.u8()?).ok_or_else(|| r.err("bad target"))?;
        let name = r.bytes()?.to_vec();
        let tagger = match r.u8()? {
            0 => None,
            1 => Some(Signature::read(&mut r)?),
            _ => return Err(r.err("bad tagger flag")),
        };
        let message = r.bytes()?.to_vec();
        let extra = read_extra(&mut r)?;
        r.finish()?;
        Ok(Tag {
            target,
            target_kind,
            name,
            tagger,
            message,
            extra,
        })
    }

    /// The id of this tag.
    pub fn id(&self) -> ObjectId {
        ObjectId::of(&self.encode())
    }
}

/// One node of a large file's chunk tree: children with the number of content bytes under each.
/// Level 0 children are chunks; level `n` children are level `n - 1` nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ManifestNode {
    pub(crate) level: u8,
    pub(crate) children: Vec<(ObjectId, u64)>,
}

impl ManifestNode {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(MANIFEST_TAG);
        w.u8(FORMAT);
        w.u8(self.level);
        w.varint(self.children.len() as u64);
        for (id, len) in &self.children {
            w.id(id);
            w.varint(*len);
        }
        w.buf
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, "file manifest");
        if r.u8()? != MANIFEST_TAG {
            return Err(r.err("not a manifest"));
        }
        if r.u8()? != FORMAT {
            return Err(r.err("unknown manifest format"));
        }
        let level = r.u8()?;
        let n = r.varint()?;
        let mut children = Vec::with_capacity(n.min(1 << 16) as usize);
        for _ in 0..n {
            let id = r.id()?;
            let len = r.varint()?;
            children.push((id, len));
        }
        r.finish()?;
        Ok(ManifestNode { level, children })
    }

    pub(crate) fn total(&self) -> u64 {
        self.children.iter().map(|(_, l)| *l).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig() -> Signature {
        Signature {
            name: b"A U Thor".to_vec(),
            email: b"a@example.com".to_vec(),
            time: 1_700_000_000,
            tz_offset_minutes: -330,
        }
    }

    #[test]
    fn commit_round_trip_keeps_extra_headers() {
        let c = Commit {
            tree: ObjectId::of(b"t"),
            parents: vec![ObjectId::of(b"p1"), ObjectId::of(b"p2")],
            author: sig(),
            committer: sig(),
            message: b"msg\xff\n".to_vec(),
            extra: vec![(b"gpgsig".to_vec(), b"-----BEGIN\n x\n".to_vec())],
        };
        let d = Commit::decode(&c.encode()).unwrap();
        assert_eq!(c, d);
        assert_eq!(sig().tz_string(), "-0530");
        assert!(Commit::decode(&c.encode()[..10]).is_err());
    }

    #[test]
    fn tree_decode_refuses_unsorted_entries() {
        let e = |n: &[u8]| TreeEntry {
            name: n.to_vec(),
            kind: EntryKind::File,
            id: ObjectId::of(n),
            size: 1,
        };
        let good = Tree {
            entries: vec![e(b"a"), e(b"b")],
        };
        assert_eq!(Tree::decode(&good.encode()).unwrap(), good);
        let bad = Tree {
            entries: vec![e(b"b"), e(b"a")],
        };
        assert!(Tree::decode(&bad.encode()).is_err());
        let dup = Tree {
            entries: vec![e(b"a"), e(b"a")],
        };
        assert!(Tree::decode(&dup.encode()).is_err());
    }

    #[test]
    fn tag_round_trip() {
        let t = Tag {
            target: ObjectId::of(b"c"),
            target_kind: TargetKind::Commit,
            name: b"v1".to_vec(),
            tagger: Some(sig()),
            message: b"release\n".to_vec(),
            extra: vec![],
        };
        assert_eq!(Tag::decode(&t.encode()).unwrap(), t);
    }
}
