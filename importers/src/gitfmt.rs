//! Git's object formats: parsing commits, tags and trees into their parts and writing them
//! back. Parsing never fails on odd input: whatever is not understood is kept so that the
//! caller can compare the re-written bytes with the original and keep the original when they
//! differ.

use hero_store::{EntryKind, Signature};

/// A SHA-1 git object id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GitId(pub [u8; 20]);

impl GitId {
    /// The id as 40 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
    /// Parses 40 hex digits.
    pub fn from_hex(s: &[u8]) -> Option<GitId> {
        let mut out = [0u8; 20];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(GitId(out))
    }
    /// From raw bytes (must be 20 long).
    pub fn from_bytes(b: &[u8]) -> Option<GitId> {
        <[u8; 20]>::try_from(b).ok().map(GitId)
    }
    pub(crate) fn to_gix(self) -> gix::ObjectId {
        gix::ObjectId::Sha1(self.0)
    }
    pub(crate) fn from_gix(id: &gix::oid) -> Option<GitId> {
        GitId::from_bytes(id.as_bytes())
    }
}

impl std::fmt::Display for GitId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The id of git's empty tree (which git does not always store).
pub const EMPTY_TREE: GitId = GitId([
    0x4b, 0x82, 0x5d, 0xc6, 0x42, 0xcb, 0x6e, 0xb9, 0xa0, 0x60, 0xe5, 0x4b, 0xf8, 0xd6, 0x92, 0x88,
    0xfb, 0xee, 0x49, 0x04,
]);

pub(crate) fn hex(b: &[u8]) -> String {
    hex::encode(b)
}

/// A commit's parts, with git ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitCommit {
    /// The root tree.
    pub tree: GitId,
    /// Parents, first parent first.
    pub parents: Vec<GitId>,
    /// The author line.
    pub author: Signature,
    /// The committer line.
    pub committer: Signature,
    /// Other headers, verbatim, in order.
    pub extra: Vec<(Vec<u8>, Vec<u8>)>,
    /// The message, verbatim.
    pub message: Vec<u8>,
}

/// An annotated tag's parts, with git ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitTag {
    /// The tagged object.
    pub target: GitId,
    /// Its type (`commit`, `tree`, `blob`, `tag`).
    pub target_type: Vec<u8>,
    /// The name, bytes.
    pub name: Vec<u8>,
    /// The tagger line, if any.
    pub tagger: Option<Signature>,
    /// Other headers, verbatim, in order.
    pub extra: Vec<(Vec<u8>, Vec<u8>)>,
    /// The message, verbatim.
    pub message: Vec<u8>,
}

/// One entry of a git tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitEntry {
    /// The mode digits as written.
    pub mode: Vec<u8>,
    /// The name, bytes.
    pub name: Vec<u8>,
    /// The object id.
    pub id: GitId,
}

/// Splits an object into headers (continuation lines joined with `\n`) and the message.
/// Headers as (key, value) pairs.
type Headers = Vec<(Vec<u8>, Vec<u8>)>;

fn split_headers(raw: &[u8]) -> (Headers, Vec<u8>) {
    let mut headers: Headers = Vec::new();
    let mut pos = 0;
    while pos < raw.len() {
        let end = raw[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| pos + i)
            .unwrap_or(raw.len());
        let line = &raw[pos..end];
        let next = (end + 1).min(raw.len());
        if line.is_empty() {
            return (headers, raw[next..].to_vec());
        }
        if line[0] == b' ' {
            if let Some(last) = headers.last_mut() {
                last.1.push(b'\n');
                last.1.extend_from_slice(&line[1..]);
            } else {
                headers.push((Vec::new(), line.to_vec()));
            }
        } else {
            match line.iter().position(|&b| b == b' ') {
                Some(sp) => headers.push((line[..sp].to_vec(), line[sp + 1..].to_vec())),
                None => headers.push((line.to_vec(), Vec::new())),
            }
        }
        pos = end + 1;
    }
    (headers, Vec::new())
}

fn write_header(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    out.extend_from_slice(key);
    out.push(b' ');
    for &b in value {
        out.push(b);
        if b == b'\n' {
            out.push(b' ');
        }
    }
    out.push(b'\n');
}

/// Parses `Name <email> 1234567890 +0100`; odd input gives a best-effort signature.
pub fn parse_signature(line: &[u8]) -> Signature {
    let fallback = || Signature {
        name: line.to_vec(),
        email: Vec::new(),
        time: 0,
        tz_offset_minutes: 0,
    };
    let Some(lt) = line.iter().position(|&b| b == b'<') else {
        return fallback();
    };
    let Some(gt) = line[lt..].iter().position(|&b| b == b'>').map(|i| lt + i) else {
        return fallback();
    };
    let name = line[..lt]
        .strip_suffix(b" ")
        .unwrap_or(&line[..lt])
        .to_vec();
    let email = line[lt + 1..gt].to_vec();
    let rest = line[gt + 1..].strip_prefix(b" ").unwrap_or(&line[gt + 1..]);
    let mut parts = rest.splitn(2, |&b| b == b' ');
    let time = parts
        .next()
        .and_then(|t| std::str::from_utf8(t).ok())
        .and_then(|t| t.parse::<i64>().ok())
        .unwrap_or(0);
    let tz = parts.next().and_then(parse_tz).unwrap_or(0);
    Signature {
        name,
        email,
        time,
        tz_offset_minutes: tz,
    }
}

fn parse_tz(tz: &[u8]) -> Option<i32> {
    if tz.len() != 5 {
        return None;
    }
    let sign = match tz[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits = std::str::from_utf8(&tz[1..]).ok()?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i32 = digits[..2].parse().ok()?;
    let m: i32 = digits[2..].parse().ok()?;
    Some(sign * (h * 60 + m))
}

/// Writes a signature the way git does.
pub fn write_signature(out: &mut Vec<u8>, s: &Signature) {
    out.extend_from_slice(&s.name);
    out.extend_from_slice(b" <");
    out.extend_from_slice(&s.email);
    out.extend_from_slice(b"> ");
    out.extend_from_slice(s.time.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(s.tz_string().as_bytes());
}

fn empty_sig() -> Signature {
    Signature {
        name: Vec::new(),
        email: Vec::new(),
        time: 0,
        tz_offset_minutes: 0,
    }
}

/// Parses a commit. Returns `None` if it has no readable tree line.
pub fn parse_commit(raw: &[u8]) -> Option<GitCommit> {
    let (headers, message) = split_headers(raw);
    let mut it = headers.into_iter().peekable();
    let tree = match it.next() {
        Some((k, v)) if k == b"tree" => GitId::from_hex(&v)?,
        _ => return None,
    };
    let mut parents = Vec::new();
    let mut author = None;
    let mut committer = None;
    let mut extra = Vec::new();
    for (k, v) in it {
        match k.as_slice() {
            b"parent" if author.is_none() && committer.is_none() && extra.is_empty() => {
                parents.push(GitId::from_hex(&v)?)
            }
            b"author" if author.is_none() && committer.is_none() && extra.is_empty() => {
                author = Some(parse_signature(&v))
            }
            b"committer" if committer.is_none() && extra.is_empty() => {
                committer = Some(parse_signature(&v))
            }
            _ => extra.push((k, v)),
        }
    }
    Some(GitCommit {
        tree,
        parents,
        author: author.unwrap_or_else(empty_sig),
        committer: committer.unwrap_or_else(empty_sig),
        extra,
        message,
    })
}

/// Writes a commit in git's format.
pub fn write_commit(c: &GitCommit) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + c.message.len());
    write_header(&mut out, b"tree", c.tree.to_hex().as_bytes());
    for p in &c.parents {
        write_header(&mut out, b"parent", p.to_hex().as_bytes());
    }
    let mut sig = Vec::new();
    write_signature(&mut sig, &c.author);
    write_header(&mut out, b"author", &sig);
    sig.clear();
    write_signature(&mut sig, &c.committer);
    write_header(&mut out, b"committer", &sig);
    write_tail(&mut out, &c.extra, &c.message);
    out
}

/// Parses an annotated tag. Returns `None` without readable object and type lines.
pub fn parse_tag(raw: &[u8]) -> Option<GitTag> {
    let (headers, message) = split_headers(raw);
    let mut it = headers.into_iter();
    let target = match it.next() {
        Some((k, v)) if k == b"object" => GitId::from_hex(&v)?,
        _ => return None,
    };
    let target_type = match it.next() {
        Some((k, v)) if k == b"type" => v,
        _ => return None,
    };
    let mut name = None;
    let mut tagger = None;
    let mut extra = Vec::new();
    for (k, v) in it {
        match k.as_slice() {
            b"tag" if name.is_none() && tagger.is_none() && extra.is_empty() => name = Some(v),
            b"tagger" if tagger.is_none() && extra.is_empty() => tagger = Some(parse_signature(&v)),
            _ => extra.push((k, v)),
        }
    }
    Some(GitTag {
        target,
        target_type,
        name: name.unwrap_or_default(),
        tagger,
        extra,
        message,
    })
}

/// Writes a tag in git's format.
pub fn write_tag(t: &GitTag) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + t.message.len());
    write_header(&mut out, b"object", t.target.to_hex().as_bytes());
    write_header(&mut out, b"type", &t.target_type);
    write_header(&mut out, b"tag", &t.name);
    if let Some(s) = &t.tagger {
        let mut sig = Vec::new();
        write_signature(&mut sig, s);
        write_header(&mut out, b"tagger", &sig);
    }
    write_tail(&mut out, &t.extra, &t.message);
    out
}

/// The end of a commit or tag: extra headers in order, a blank line, the message.
fn write_tail(out: &mut Vec<u8>, extra: &[(Vec<u8>, Vec<u8>)], message: &[u8]) {
    for (k, v) in extra {
        write_header(out, k, v);
    }
    out.push(b'\n');
    out.extend_from_slice(message);
}

/// Parses a tree. Returns `None` if it is malformed.
pub fn parse_tree(raw: &[u8]) -> Option<Vec<GitEntry>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < raw.len() {
        let sp = raw[pos..].iter().position(|&b| b == b' ')? + pos;
        let nul = raw[sp..].iter().position(|&b| b == 0)? + sp;
        let id = GitId::from_bytes(raw.get(nul + 1..nul + 21)?)?;
        out.push(GitEntry {
            mode: raw[pos..sp].to_vec(),
            name: raw[sp + 1..nul].to_vec(),
            id,
        });
        pos = nul + 21;
    }
    Some(out)
}

/// What a git mode means to the store, if anything.
pub fn kind_of_mode(mode: &[u8]) -> Option<EntryKind> {
    let s = std::str::from_utf8(mode).ok()?;
    let m = u32::from_str_radix(s, 8).ok()?;
    Some(match m & 0o170000 {
        0o040000 => EntryKind::Dir,
        0o120000 => EntryKind::Symlink,
        0o160000 => EntryKind::Gitlink,
        0o100000 if m & 0o100 != 0 => EntryKind::Executable,
        0o100000 => EntryKind::File,
        _ => return None,
    })
}

/// The canonical git mode of a store entry kind. Special files have none; export refuses
/// them before writing a tree ([`crate::ExportError::SpecialFile`]), and a regular file's
/// mode stands for them here.
pub fn mode_of_kind(kind: EntryKind) -> &'static [u8] {
    match kind {
        EntryKind::File
        | EntryKind::Fifo
        | EntryKind::Socket
        | EntryKind::CharDevice
        | EntryKind::BlockDevice => b"100644",
        EntryKind::Executable => b"100755",
        EntryKind::Symlink => b"120000",
        EntryKind::Dir => b"40000",
        EntryKind::Gitlink => b"160000",
    }
}

/// Writes a tree with canonical modes, sorted the way git sorts (a directory's name compares
/// as if it ended in `/`).
pub fn write_tree(entries: &mut [(EntryKind, Vec<u8>, GitId)]) -> Vec<u8> {
    entries.sort_by(|a, b| git_name_cmp(&a.1, a.0 == EntryKind::Dir, &b.1, b.0 == EntryKind::Dir));
    let mut out = Vec::with_capacity(entries.len() * 40);
    for (kind, name, id) in entries.iter() {
        out.extend_from_slice(mode_of_kind(*kind));
        out.push(b' ');
        out.extend_from_slice(name);
        out.push(0);
        out.extend_from_slice(&id.0);
    }
    out
}

fn git_name_cmp(a: &[u8], a_dir: bool, b: &[u8], b_dir: bool) -> std::cmp::Ordering {
    let ai = a.iter().copied().chain(a_dir.then_some(b'/'));
    let bi = b.iter().copied().chain(b_dir.then_some(b'/'));
    ai.cmp(bi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_round_trip_with_multiline_header() {
        let raw = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
author A U Thor <a@x> 1700000000 -0530\n\
committer C <c@x> 1700000001 +0000\n\
gpgsig -----BEGIN PGP SIGNATURE-----\n \n abc\n -----END PGP SIGNATURE-----\n\
\n\
msg\xff\n";
        let c = parse_commit(raw).expect("parses");
        assert_eq!(c.author.tz_offset_minutes, -330);
        assert_eq!(c.extra.len(), 1);
        assert_eq!(write_commit(&c), raw.to_vec());
    }

    #[test]
    fn odd_timezone_is_detected_as_not_canonical() {
        let raw = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
author A <a@x> 1 -0000\ncommitter C <c@x> 1 +0000\n\nm\n";
        let c = parse_commit(raw).expect("parses");
        assert_ne!(write_commit(&c), raw.to_vec());
    }

    #[test]
    fn tree_sorting_puts_dirs_after_dotted_files() {
        let id = EMPTY_TREE;
        let mut e = vec![
            (EntryKind::Dir, b"a".to_vec(), id),
            (EntryKind::File, b"a.txt".to_vec(), id),
        ];
        let raw = write_tree(&mut e);
        let parsed = parse_tree(&raw).expect("parses");
        assert_eq!(parsed[0].name, b"a.txt");
        assert_eq!(parsed[1].name, b"a");
        assert_eq!(kind_of_mode(b"100664"), Some(EntryKind::File));
    }
}
