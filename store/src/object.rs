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
    /// A named pipe (format 3). Special files have no content: id [`ObjectId::ZERO`], size 0.
    Fifo,
    /// A Unix domain socket's name (format 3); it names no open socket once stored.
    Socket,
    /// A character device node (format 3); its device number is [`EntryMeta::rdev`].
    CharDevice,
    /// A block device node (format 3); its device number is [`EntryMeta::rdev`].
    BlockDevice,
}

impl EntryKind {
    fn code(self) -> u8 {
        match self {
            EntryKind::File => 0,
            EntryKind::Executable => 1,
            EntryKind::Symlink => 2,
            EntryKind::Dir => 3,
            EntryKind::Gitlink => 4,
            EntryKind::Fifo => 5,
            EntryKind::Socket => 6,
            EntryKind::CharDevice => 7,
            EntryKind::BlockDevice => 8,
        }
    }
    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => EntryKind::File,
            1 => EntryKind::Executable,
            2 => EntryKind::Symlink,
            3 => EntryKind::Dir,
            4 => EntryKind::Gitlink,
            5 => EntryKind::Fifo,
            6 => EntryKind::Socket,
            7 => EntryKind::CharDevice,
            8 => EntryKind::BlockDevice,
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
    /// Whether this is a special file (FIFO, socket, device node): no content, no id.
    pub fn is_special(self) -> bool {
        matches!(
            self,
            EntryKind::Fifo | EntryKind::Socket | EntryKind::CharDevice | EntryKind::BlockDevice
        )
    }
    /// Whether this is a device node, which carries a device number.
    pub fn is_device(self) -> bool {
        matches!(self, EntryKind::CharDevice | EntryKind::BlockDevice)
    }
    /// Whether several names may share this entry as one inode (everything but directories
    /// and gitlinks).
    pub fn can_link(self) -> bool {
        !matches!(self, EntryKind::Dir | EntryKind::Gitlink)
    }
    /// A short lower-case name: `file`, `exec`, `symlink`, `dir`, `gitlink`, `fifo`,
    /// `socket`, `chardev`, `blockdev`.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Executable => "exec",
            EntryKind::Symlink => "symlink",
            EntryKind::Dir => "dir",
            EntryKind::Gitlink => "gitlink",
            EntryKind::Fifo => "fifo",
            EntryKind::Socket => "socket",
            EntryKind::CharDevice => "chardev",
            EntryKind::BlockDevice => "blockdev",
        }
    }
}

/// The group of tree entries that are one inode (hard links): every entry of a commit's tree
/// carrying the same group id is another name of the same file. A random number drawn when
/// the second name is made; it means nothing outside the tree it is found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkGroup(pub u64);

impl LinkGroup {
    /// A group id drawn from `seed` (the caller makes it unique: who, where and when the
    /// second name was made): the first eight bytes of its BLAKE3, never zero.
    pub fn from_seed(seed: &[u8]) -> LinkGroup {
        let h = ObjectId::of(seed);
        let mut b = [0u8; 8];
        b.copy_from_slice(&h.0[..8]);
        LinkGroup(u64::from_le_bytes(b).max(1))
    }
}

/// Owner of an entry as numbers, as tar and rsync keep them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Owner {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// A point in time: seconds since the Unix epoch (negative before it) and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp {
    /// Whole seconds since 1970-01-01T00:00:00Z.
    pub secs: i64,
    /// Nanoseconds within the second, below 1,000,000,000.
    pub nanos: u32,
}

impl Timestamp {
    /// The time as a [`SystemTime`](std::time::SystemTime).
    pub fn to_system_time(self) -> std::time::SystemTime {
        use std::time::{Duration, UNIX_EPOCH};
        let nanos = Duration::from_nanos(u64::from(self.nanos));
        if self.secs >= 0 {
            UNIX_EPOCH + Duration::from_secs(self.secs.unsigned_abs()) + nanos
        } else {
            UNIX_EPOCH - Duration::from_secs(self.secs.unsigned_abs()) + nanos
        }
    }

    /// The timestamp of a [`SystemTime`](std::time::SystemTime) (saturating far outside
    /// the range of `i64` seconds).
    pub fn from_system_time(t: std::time::SystemTime) -> Timestamp {
        match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => Timestamp {
                secs: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                nanos: d.subsec_nanos(),
            },
            Err(e) => {
                let d = e.duration();
                let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                if d.subsec_nanos() == 0 {
                    Timestamp {
                        secs: -secs,
                        nanos: 0,
                    }
                } else {
                    Timestamp {
                        secs: -secs - 1,
                        nanos: 1_000_000_000 - d.subsec_nanos(),
                    }
                }
            }
        }
    }
}

/// The permission bits a mode may carry: rwx for user, group and others, setuid, setgid and
/// sticky.
pub const MODE_BITS: u32 = 0o7777;

/// What an entry keeps beyond its kind: all permission bits, the owner, the modification
/// and access times, the hard-link group and a device's number. Each part is optional: an
/// entry with none (all that git import and format 1 write) shows the defaults of its kind
/// (0644 or 0755, the viewer's own user, the commit's time, a link count of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EntryMeta {
    /// Permission bits (within [`MODE_BITS`]). For a file its user-executable bit must agree
    /// with the entry's kind; symlinks and gitlinks carry none.
    pub mode: Option<u32>,
    /// Owner and group.
    pub owner: Option<Owner>,
    /// Modification time.
    pub mtime: Option<Timestamp>,
    /// Access time, as last set explicitly (utimensat, `touch -a`); reads do not change it
    /// (format 3). Without one, the access time shown is the modification time.
    pub atime: Option<Timestamp>,
    /// The hard-link group: entries of one tree with the same group are names of one inode
    /// and agree on kind, content and every other part of their metadata (format 3). Never
    /// on directories or gitlinks.
    pub link: Option<LinkGroup>,
    /// A device node's device number, as Linux packs it (`st_rdev`) (format 3). Only on
    /// device kinds; a device without one is device 0.
    pub rdev: Option<u64>,
}

impl EntryMeta {
    /// No metadata: the entry shows its kind's defaults.
    pub const NONE: EntryMeta = EntryMeta {
        mode: None,
        owner: None,
        mtime: None,
        atime: None,
        link: None,
        rdev: None,
    };

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        *self == EntryMeta::NONE
    }

    /// Whether a part only format 3 can hold is recorded (access time, link group, device
    /// number).
    pub fn needs_format_3(&self) -> bool {
        self.atime.is_some() || self.link.is_some() || self.rdev.is_some()
    }

    /// The permission bits to show for an entry of `kind`: the recorded ones, else 0644 for
    /// files and special files, 0755 for executables and directories, 0777 for symlinks.
    pub fn mode_or_default(&self, kind: EntryKind) -> u32 {
        match (kind, self.mode) {
            (EntryKind::Symlink, _) => 0o777,
            (_, Some(m)) => m,
            (EntryKind::File, None) => 0o644,
            (k, None) if k.is_special() => 0o644,
            _ => 0o755,
        }
    }

    /// Whether this metadata may go with an entry of `kind` (see the fields).
    pub fn fits(&self, kind: EntryKind) -> bool {
        if self.mode.is_some_and(|m| m & !MODE_BITS != 0)
            || self.mtime.is_some_and(|t| t.nanos >= 1_000_000_000)
            || self.atime.is_some_and(|t| t.nanos >= 1_000_000_000)
            || self.link.is_some_and(|l| l.0 == 0 || !kind.can_link())
            || (self.rdev.is_some() && !kind.is_device())
        {
            return false;
        }
        match kind {
            EntryKind::Gitlink => self.is_empty(),
            EntryKind::Symlink => self.mode.is_none(),
            EntryKind::File => self.mode.is_none_or(|m| m & 0o100 == 0),
            EntryKind::Executable => self.mode.is_none_or(|m| m & 0o100 != 0),
            EntryKind::Dir
            | EntryKind::Fifo
            | EntryKind::Socket
            | EntryKind::CharDevice
            | EntryKind::BlockDevice => true,
        }
    }

    /// The metadata an entry keeps when its content is replaced by content of `kind`: mode
    /// (with the user-executable bit made to agree with `kind`), owner, access time and link
    /// group stay, the modification time goes (the entry then shows the time of the commit
    /// that changed it, unless one is set).
    pub fn for_new_content(&self, kind: EntryKind) -> EntryMeta {
        EntryMeta {
            mtime: None,
            ..self.fitted_to(kind)
        }
    }

    /// This metadata made to fit an entry of `kind`: a file's mode loses its executable bits,
    /// an executable's gains the user's, symlinks lose their mode, directories their link
    /// group, all but devices their device number, gitlinks everything.
    pub fn fitted_to(&self, kind: EntryKind) -> EntryMeta {
        let mode = self.mode.map(|m| m & MODE_BITS);
        let fitted = EntryMeta {
            mode,
            link: self.link.filter(|l| l.0 != 0 && kind.can_link()),
            rdev: self.rdev.filter(|_| kind.is_device()),
            ..*self
        };
        match kind {
            EntryKind::File => EntryMeta {
                mode: mode.map(|m| m & !0o111),
                ..fitted
            },
            EntryKind::Executable => EntryMeta {
                mode: mode.map(|m| m | 0o100),
                ..fitted
            },
            EntryKind::Symlink => EntryMeta {
                mode: None,
                ..fitted
            },
            EntryKind::Gitlink => EntryMeta::NONE,
            EntryKind::Dir
            | EntryKind::Fifo
            | EntryKind::Socket
            | EntryKind::CharDevice
            | EntryKind::BlockDevice => fitted,
        }
    }

    /// The kind a regular file with these permission bits has: executable when the user may
    /// execute it (git's rule).
    pub fn file_kind(mode: u32) -> EntryKind {
        if mode & 0o100 != 0 {
            EntryKind::Executable
        } else {
            EntryKind::File
        }
    }
}

const META_MODE: u8 = 1;
const META_OWNER: u8 = 2;
const META_MTIME: u8 = 4;
/// Format-3 parts of an entry's metadata.
const META_ATIME: u8 = 8;
const META_LINK: u8 = 16;
const META_RDEV: u8 = 32;
/// The flags a format-2 tree may carry.
const META_FLAGS_2: u8 = META_MODE | META_OWNER | META_MTIME;
/// The flags a format-3 tree may carry.
const META_FLAGS_3: u8 = META_FLAGS_2 | META_ATIME | META_LINK | META_RDEV;

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
    /// Permission bits, owner and modification time, where recorded.
    pub meta: EntryMeta,
}

impl TreeEntry {
    /// An entry without metadata (it shows its kind's defaults).
    pub fn new(name: impl Into<Vec<u8>>, kind: EntryKind, id: ObjectId, size: u64) -> TreeEntry {
        TreeEntry {
            name: name.into(),
            kind,
            id,
            size,
            meta: EntryMeta::NONE,
        }
    }
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
/// Trees whose entries carry [`EntryMeta`]; a tree without any is written in format 1, so
/// its id is what it always was (git imports and older trees keep their ids).
const TREE_FORMAT_META: u8 = 2;
/// Trees with a special file or an entry whose metadata has a format-3 part (access time,
/// link group, device number); any other tree keeps its format-1 or format-2 encoding and id.
const TREE_FORMAT_3: u8 = 3;

/// One entry as read from an encoded tree, its name borrowed.
struct RawEntry<'a> {
    kind: EntryKind,
    name: &'a [u8],
    id: ObjectId,
    size: u64,
    meta: EntryMeta,
}

fn read_meta(r: &mut Reader<'_>, allowed: u8) -> Result<EntryMeta, DecodeError> {
    let flags = r.u8()?;
    if flags & !allowed != 0 {
        return Err(r.err("unknown entry metadata"));
    }
    let u32_of = |r: &Reader<'_>, v: u64| u32::try_from(v).map_err(|_| r.err("value too large"));
    let mut meta = EntryMeta::NONE;
    if flags & META_MODE != 0 {
        let v = r.varint()?;
        meta.mode = Some(u32_of(r, v)?);
    }
    if flags & META_OWNER != 0 {
        let uid = r.varint()?;
        let gid = r.varint()?;
        meta.owner = Some(Owner {
            uid: u32_of(r, uid)?,
            gid: u32_of(r, gid)?,
        });
    }
    if flags & META_MTIME != 0 {
        let secs = r.ivarint()?;
        let nanos = r.varint()?;
        meta.mtime = Some(Timestamp {
            secs,
            nanos: u32_of(r, nanos)?,
        });
    }
    if flags & META_ATIME != 0 {
        let secs = r.ivarint()?;
        let nanos = r.varint()?;
        meta.atime = Some(Timestamp {
            secs,
            nanos: u32_of(r, nanos)?,
        });
    }
    if flags & META_LINK != 0 {
        meta.link = Some(LinkGroup(r.varint()?));
    }
    if flags & META_RDEV != 0 {
        meta.rdev = Some(r.varint()?);
    }
    Ok(meta)
}

fn write_meta(w: &mut Writer, meta: &EntryMeta) {
    let mut flags = 0;
    if meta.mode.is_some() {
        flags |= META_MODE;
    }
    if meta.owner.is_some() {
        flags |= META_OWNER;
    }
    if meta.mtime.is_some() {
        flags |= META_MTIME;
    }
    if meta.atime.is_some() {
        flags |= META_ATIME;
    }
    if meta.link.is_some() {
        flags |= META_LINK;
    }
    if meta.rdev.is_some() {
        flags |= META_RDEV;
    }
    w.u8(flags);
    if let Some(mode) = meta.mode {
        w.varint(u64::from(mode));
    }
    if let Some(o) = meta.owner {
        w.varint(u64::from(o.uid));
        w.varint(u64::from(o.gid));
    }
    if let Some(t) = meta.mtime {
        w.ivarint(t.secs);
        w.varint(u64::from(t.nanos));
    }
    if let Some(t) = meta.atime {
        w.ivarint(t.secs);
        w.varint(u64::from(t.nanos));
    }
    if let Some(l) = meta.link {
        w.varint(l.0);
    }
    if let Some(d) = meta.rdev {
        w.varint(d);
    }
}

/// Whether an entry needs a format-3 tree: a special file, or metadata with a format-3 part.
fn needs_format_3(kind: EntryKind, meta: &EntryMeta) -> bool {
    kind.is_special() || meta.needs_format_3()
}

/// Reads a tree's header and hands each entry to `each`; returns the reader so the caller
/// can check nothing follows. Each tree has one encoding: refuses metadata that does not fit
/// its entry's kind, a special file with content, a format-2 tree without any metadata (it
/// has a format-1 encoding, so another id) and a format-3 tree without anything only format 3
/// holds (it has a format-1 or format-2 encoding).
fn read_entries<'a>(
    bytes: &'a [u8],
    mut each: impl FnMut(RawEntry<'a>),
) -> Result<Reader<'a>, DecodeError> {
    let mut r = Reader::new(bytes, "tree");
    if r.u8()? != TREE_TAG {
        return Err(r.err("not a tree"));
    }
    let format = r.u8()?;
    let allowed = match format {
        FORMAT => 0,
        TREE_FORMAT_META => META_FLAGS_2,
        TREE_FORMAT_3 => META_FLAGS_3,
        _ => return Err(r.err("unknown tree format")),
    };
    let n = r.varint()?;
    let (mut any_meta, mut any_3) = (false, false);
    for _ in 0..n {
        let kind = EntryKind::from_code(r.u8()?).ok_or_else(|| r.err("bad entry kind"))?;
        if kind.is_special() && format != TREE_FORMAT_3 {
            return Err(r.err("special file in a tree older than format 3"));
        }
        let name = r.bytes()?;
        let id = r.id()?;
        let size = r.varint()?;
        let meta = if format == FORMAT {
            EntryMeta::NONE
        } else {
            read_meta(&mut r, allowed)?
        };
        if !meta.fits(kind) {
            return Err(r.err("entry metadata does not fit its kind"));
        }
        if kind.is_special() && (id != ObjectId::ZERO || size != 0) {
            return Err(r.err("special file with content"));
        }
        any_meta |= !meta.is_empty();
        any_3 |= needs_format_3(kind, &meta);
        each(RawEntry {
            kind,
            name,
            id,
            size,
            meta,
        });
    }
    if format == TREE_FORMAT_META && !any_meta {
        return Err(r.err("format-2 tree without metadata"));
    }
    if format == TREE_FORMAT_3 && !any_3 {
        return Err(r.err("format-3 tree without anything only format 3 holds"));
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

    /// Whether any entry carries metadata (the tree is then written in format 2 or 3).
    pub fn has_meta(&self) -> bool {
        self.entries.iter().any(|e| !e.meta.is_empty())
    }

    /// Whether any entry needs format 3 (a special file, an access time, a link group or a
    /// device number).
    pub fn needs_format_3(&self) -> bool {
        self.entries.iter().any(|e| needs_format_3(e.kind, &e.meta))
    }

    /// Encodes the tree, in the oldest tree format that holds it (so a tree keeps the id it
    /// had under older formats). Entries must be sorted, names valid and metadata fit its
    /// kind; see [`Tree::check`].
    pub fn encode(&self) -> Vec<u8> {
        let with_meta = self.has_meta();
        let format = if self.needs_format_3() {
            TREE_FORMAT_3
        } else if with_meta {
            TREE_FORMAT_META
        } else {
            FORMAT
        };
        let mut w = Writer::new();
        w.u8(TREE_TAG);
        w.u8(format);
        w.varint(self.entries.len() as u64);
        for e in &self.entries {
            w.u8(e.kind.code());
            w.bytes(&e.name);
            w.id(&e.id);
            w.varint(e.size);
            if format != FORMAT {
                write_meta(&mut w, &e.meta);
            }
        }
        w.buf
    }

    /// Checks sort order, uniqueness, names and that each entry's metadata fits its kind.
    pub fn check(&self) -> Result<(), NameError> {
        for pair in self.entries.windows(2) {
            if pair[0].name >= pair[1].name {
                return Err(NameError::Unsorted);
            }
        }
        for e in &self.entries {
            validate_name(&e.name)?;
            if !e.meta.fits(e.kind) {
                return Err(NameError::MetaMismatch);
            }
            if e.kind.is_special() && (e.id != ObjectId::ZERO || e.size != 0) {
                return Err(NameError::SpecialWithContent);
            }
        }
        Ok(())
    }

    /// Each entry's kind, id and size, without copying names: for walking many trees when
    /// the names do not matter.
    pub fn entries_without_names(
        bytes: &[u8],
    ) -> Result<Vec<(EntryKind, ObjectId, u64)>, DecodeError> {
        let mut out = Vec::new();
        let r = read_entries(bytes, |e| out.push((e.kind, e.id, e.size)))?;
        r.finish()?;
        Ok(out)
    }

    /// Decodes and checks a tree.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut entries = Vec::new();
        let r = read_entries(bytes, |e| {
            entries.push(TreeEntry {
                name: e.name.to_vec(),
                kind: e.kind,
                id: e.id,
                size: e.size,
                meta: e.meta,
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

/// The header that keeps the root directory's metadata (the root is no tree's entry, so it
/// has no [`EntryMeta`] of its own): `mode=<octal> uid=<n> gid=<n> mtime=<secs>.<nanos>`, each
/// part optional. A commit made through a [`crate::ChangeSet`] carries its parent's value
/// unless the change set sets another ([`crate::ChangeSet::set_root_meta`]).
pub const ROOT_META_HEADER: &[u8] = b"hero-root-meta";

impl EntryMeta {
    /// The value of [`ROOT_META_HEADER`] for this metadata (`None` when nothing is recorded).
    pub fn to_header(&self) -> Option<Vec<u8>> {
        let mut parts = Vec::new();
        if let Some(m) = self.mode {
            parts.push(format!("mode={m:o}"));
        }
        if let Some(o) = self.owner {
            parts.push(format!("uid={} gid={}", o.uid, o.gid));
        }
        if let Some(t) = self.mtime {
            parts.push(format!("mtime={}.{:09}", t.secs, t.nanos));
        }
        if let Some(t) = self.atime {
            parts.push(format!("atime={}.{:09}", t.secs, t.nanos));
        }
        (!parts.is_empty()).then(|| parts.join(" ").into_bytes())
    }

    /// Reads a [`ROOT_META_HEADER`] value. Parts it does not understand, or out of range, are
    /// left out (a header from a newer writer still gives what this one knows).
    pub fn from_header(value: &[u8]) -> EntryMeta {
        let mut meta = EntryMeta::NONE;
        let (mut uid, mut gid) = (None, None);
        let text = String::from_utf8_lossy(value);
        for part in text.split_ascii_whitespace() {
            let Some((key, val)) = part.split_once('=') else {
                continue;
            };
            match key {
                "mode" => {
                    meta.mode = u32::from_str_radix(val, 8)
                        .ok()
                        .filter(|m| m & !MODE_BITS == 0);
                }
                "uid" => uid = val.parse::<u32>().ok(),
                "gid" => gid = val.parse::<u32>().ok(),
                "mtime" | "atime" => {
                    let (secs, nanos) = val.split_once('.').unwrap_or((val, "0"));
                    if let (Ok(secs), Ok(nanos)) = (secs.parse::<i64>(), nanos.parse::<u32>())
                        && nanos < 1_000_000_000
                    {
                        let t = Some(Timestamp { secs, nanos });
                        if key == "mtime" {
                            meta.mtime = t;
                        } else {
                            meta.atime = t;
                        }
                    }
                }
                _ => {}
            }
        }
        if let (Some(uid), Some(gid)) = (uid, gid) {
            meta.owner = Some(Owner { uid, gid });
        }
        meta
    }
}

impl Commit {
    /// The root directory's metadata ([`ROOT_META_HEADER`]); empty when none is recorded.
    pub fn root_meta(&self) -> EntryMeta {
        self.extra
            .iter()
            .rev()
            .find(|(k, _)| k == ROOT_META_HEADER)
            .map_or(EntryMeta::NONE, |(_, v)| EntryMeta::from_header(v))
    }
}

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

/// Manifest encoding whose level 0 may hold holes: each child starts with a kind byte.
const MANIFEST_FORMAT_HOLES: u8 = 2;
/// Kind byte of a stored child in [`MANIFEST_FORMAT_HOLES`].
const CHILD_OBJECT: u8 = 0;
/// Kind byte of a hole in [`MANIFEST_FORMAT_HOLES`].
const CHILD_HOLE: u8 = 1;

/// One node of a large file's chunk tree: children with the number of content bytes under each.
/// Level 0 children are chunks or holes (`None`: that many zero bytes, nothing stored); level
/// `n` children are level `n - 1` nodes.
///
/// A node without holes keeps the first encoding (so files without holes keep their ids); a
/// node with holes uses [`MANIFEST_FORMAT_HOLES`]. Only level 0 holds holes, never empty ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ManifestNode {
    pub(crate) level: u8,
    pub(crate) children: Vec<(Option<ObjectId>, u64)>,
}

impl ManifestNode {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let holes = self.has_holes();
        let mut w = Writer::new();
        w.u8(MANIFEST_TAG);
        w.u8(if holes { MANIFEST_FORMAT_HOLES } else { FORMAT });
        w.u8(self.level);
        w.varint(self.children.len() as u64);
        for (id, len) in &self.children {
            match (holes, id) {
                (false, Some(id)) => w.id(id),
                (true, Some(id)) => {
                    w.u8(CHILD_OBJECT);
                    w.id(id);
                }
                (_, None) => w.u8(CHILD_HOLE),
            }
            w.varint(*len);
        }
        w.buf
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, "file manifest");
        if r.u8()? != MANIFEST_TAG {
            return Err(r.err("not a manifest"));
        }
        let holes = match r.u8()? {
            FORMAT => false,
            MANIFEST_FORMAT_HOLES => true,
            _ => return Err(r.err("unknown manifest format")),
        };
        let level = r.u8()?;
        if holes && level != 0 {
            return Err(r.err("holes above level 0"));
        }
        let n = r.varint()?;
        let mut children = Vec::with_capacity(n.min(1 << 16) as usize);
        let mut seen_hole = false;
        for _ in 0..n {
            let id = if holes {
                match r.u8()? {
                    CHILD_OBJECT => Some(r.id()?),
                    CHILD_HOLE => None,
                    _ => return Err(r.err("bad manifest child kind")),
                }
            } else {
                Some(r.id()?)
            };
            let len = r.varint()?;
            if id.is_none() {
                if len == 0 {
                    return Err(r.err("empty hole"));
                }
                seen_hole = true;
            }
            children.push((id, len));
        }
        if holes && !seen_hole {
            return Err(r.err("hole format without a hole"));
        }
        r.finish()?;
        Ok(ManifestNode { level, children })
    }

    /// Content bytes under this node (saturating: a hostile manifest cannot overflow it).
    pub(crate) fn total(&self) -> u64 {
        self.children
            .iter()
            .fold(0u64, |acc, (_, l)| acc.saturating_add(*l))
    }

    /// Whether any child is a hole.
    pub(crate) fn has_holes(&self) -> bool {
        self.children.iter().any(|(id, _)| id.is_none())
    }

    /// The stored children: chunks at level 0 (holes left out), nodes above.
    pub(crate) fn stored_children(&self) -> impl Iterator<Item = (ObjectId, u64)> + '_ {
        self.children
            .iter()
            .filter_map(|(id, len)| id.map(|id| (id, *len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_meta_header_round_trips_and_reads_bad_input_without_panicking() {
        let full = EntryMeta {
            mode: Some(0o2750),
            owner: Some(Owner {
                uid: 1234,
                gid: 5678,
            }),
            mtime: Some(Timestamp { secs: -5, nanos: 7 }),
            ..EntryMeta::NONE
        };
        let text = full.to_header().unwrap();
        assert_eq!(text, b"mode=2750 uid=1234 gid=5678 mtime=-5.000000007");
        assert_eq!(EntryMeta::from_header(&text), full);
        assert_eq!(EntryMeta::NONE.to_header(), None);
        let part = EntryMeta {
            mode: Some(0o700),
            ..EntryMeta::NONE
        };
        assert_eq!(EntryMeta::from_header(&part.to_header().unwrap()), part);
        // Unknown parts, bad numbers, a mode past the permission bits, half an owner.
        assert_eq!(
            EntryMeta::from_header(b"mode=777777 uid=1 future=x mtime=1.9999999999 =\xff"),
            EntryMeta::NONE
        );
        let c = Commit {
            tree: ObjectId([0; 32]),
            parents: vec![],
            author: sig(),
            committer: sig(),
            message: vec![],
            extra: vec![(ROOT_META_HEADER.to_vec(), text)],
        };
        assert_eq!(Commit::decode(&c.encode()).unwrap().root_meta(), full);
    }

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

    fn entry(name: &[u8], kind: EntryKind, meta: EntryMeta) -> TreeEntry {
        TreeEntry {
            name: name.to_vec(),
            kind,
            id: ObjectId::of(name),
            size: 3,
            meta,
        }
    }

    #[test]
    fn a_tree_without_metadata_keeps_format_1_and_its_id() {
        let t = Tree {
            entries: vec![entry(b"a", EntryKind::File, EntryMeta::NONE)],
        };
        let raw = t.encode();
        assert_eq!(&raw[..2], b"t\x01");
        assert_eq!(Tree::decode(&raw).unwrap(), t);
    }

    #[test]
    fn entry_metadata_round_trips_in_format_2() {
        let full = EntryMeta {
            mode: Some(0o2600),
            owner: Some(Owner { uid: 33, gid: 1000 }),
            mtime: Some(Timestamp {
                secs: -1,
                nanos: 999_999_999,
            }),
            ..EntryMeta::NONE
        };
        let t = Tree {
            entries: vec![
                entry(b"a", EntryKind::File, full),
                entry(b"b", EntryKind::File, EntryMeta::NONE),
                entry(
                    b"c",
                    EntryKind::Dir,
                    EntryMeta {
                        mode: Some(0o1777),
                        ..EntryMeta::NONE
                    },
                ),
                entry(
                    b"d",
                    EntryKind::Symlink,
                    EntryMeta {
                        mtime: Some(Timestamp { secs: 5, nanos: 0 }),
                        ..EntryMeta::NONE
                    },
                ),
                entry(
                    b"e",
                    EntryKind::Executable,
                    EntryMeta {
                        mode: Some(0o100),
                        ..EntryMeta::NONE
                    },
                ),
            ],
        };
        let raw = t.encode();
        assert_eq!(&raw[..2], b"t\x02");
        assert_eq!(Tree::decode(&raw).unwrap(), t);
        let (kinds, _): (Vec<_>, Vec<_>) = Tree::entries_without_names(&raw)
            .unwrap()
            .into_iter()
            .map(|(k, _, _)| (k, ()))
            .unzip();
        assert_eq!(kinds.len(), 5);
        // Every truncation is an error, never a panic.
        for n in 0..raw.len() {
            assert!(Tree::decode(&raw[..n]).is_err());
        }
    }

    fn special(name: &[u8], kind: EntryKind, meta: EntryMeta) -> TreeEntry {
        TreeEntry {
            name: name.to_vec(),
            kind,
            id: ObjectId::ZERO,
            size: 0,
            meta,
        }
    }

    #[test]
    fn special_files_access_times_and_link_groups_round_trip_in_format_3() {
        let t1 = Timestamp {
            secs: 1_700_000_000,
            nanos: 5,
        };
        let group = LinkGroup::from_seed(b"two names");
        let linked = EntryMeta {
            mode: Some(0o640),
            link: Some(group),
            ..EntryMeta::NONE
        };
        let t = Tree {
            entries: vec![
                entry(b"a", EntryKind::File, linked),
                entry(
                    b"b",
                    EntryKind::File,
                    EntryMeta {
                        atime: Some(t1),
                        ..EntryMeta::NONE
                    },
                ),
                special(b"blk", EntryKind::BlockDevice, EntryMeta::NONE),
                special(
                    b"null",
                    EntryKind::CharDevice,
                    EntryMeta {
                        mode: Some(0o666),
                        rdev: Some((1 << 8) | 3),
                        ..EntryMeta::NONE
                    },
                ),
                special(b"pipe", EntryKind::Fifo, EntryMeta::NONE),
                special(b"sock", EntryKind::Socket, linked),
            ],
        };
        assert!(t.check().is_ok());
        let raw = t.encode();
        assert_eq!(&raw[..2], b"t\x03");
        assert_eq!(Tree::decode(&raw).unwrap(), t);
        for n in 0..raw.len() {
            assert!(Tree::decode(&raw[..n]).is_err());
        }
        // A FIFO alone, without any metadata, still needs format 3.
        let fifo = Tree {
            entries: vec![special(b"p", EntryKind::Fifo, EntryMeta::NONE)],
        };
        let raw = fifo.encode();
        assert_eq!(&raw[..2], b"t\x03");
        assert_eq!(Tree::decode(&raw).unwrap(), fifo);
        // A tree without anything of format 3 keeps its older encoding (and id).
        let old = Tree {
            entries: vec![entry(
                b"a",
                EntryKind::File,
                EntryMeta {
                    mode: Some(0o600),
                    ..EntryMeta::NONE
                },
            )],
        };
        assert_eq!(&old.encode()[..2], b"t\x02");
    }

    #[test]
    fn format_3_parts_outside_a_format_3_tree_or_their_kind_are_refused() {
        // A special file in a format-2 tree: its kind byte in an otherwise valid encoding.
        let mut raw = Tree {
            entries: vec![entry(
                b"x",
                EntryKind::File,
                EntryMeta {
                    mode: Some(0o600),
                    ..EntryMeta::NONE
                },
            )],
        }
        .encode();
        assert_eq!(raw[3], 0, "the kind byte of the only entry");
        raw[3] = 5;
        assert!(Tree::decode(&raw).is_err());
        // An access time's flag in a format-2 tree.
        let flags_at = raw.len() - 3;
        raw[3] = 0;
        raw[flags_at] |= 8;
        assert!(Tree::decode(&raw).is_err());
        // A format-3 tree holding only what format 2 holds (a second id for one tree).
        let mut raw = Tree {
            entries: vec![entry(
                b"x",
                EntryKind::File,
                EntryMeta {
                    mode: Some(0o600),
                    ..EntryMeta::NONE
                },
            )],
        }
        .encode();
        raw[1] = 3;
        assert!(Tree::decode(&raw).is_err());
        // Parts that do not fit their kind; a special file with content.
        let bad = [
            entry(
                b"d",
                EntryKind::Dir,
                EntryMeta {
                    link: Some(LinkGroup(7)),
                    ..EntryMeta::NONE
                },
            ),
            entry(
                b"f",
                EntryKind::File,
                EntryMeta {
                    rdev: Some(1),
                    ..EntryMeta::NONE
                },
            ),
            special(
                b"p",
                EntryKind::Fifo,
                EntryMeta {
                    rdev: Some(1),
                    ..EntryMeta::NONE
                },
            ),
            special(
                b"l",
                EntryKind::Fifo,
                EntryMeta {
                    link: Some(LinkGroup(0)),
                    ..EntryMeta::NONE
                },
            ),
            entry(b"s", EntryKind::Socket, EntryMeta::NONE),
        ];
        for e in bad {
            let t = Tree {
                entries: vec![e.clone()],
            };
            assert!(t.check().is_err(), "{e:?}");
            assert!(Tree::decode(&t.encode()).is_err(), "{e:?}");
        }
        // Fitting drops what a kind cannot hold.
        let all = EntryMeta {
            mode: Some(0o644),
            link: Some(LinkGroup(9)),
            rdev: Some(4),
            atime: Some(Timestamp { secs: 1, nanos: 0 }),
            ..EntryMeta::NONE
        };
        assert_eq!(all.fitted_to(EntryKind::Dir).link, None);
        assert_eq!(all.fitted_to(EntryKind::File).rdev, None);
        assert_eq!(all.fitted_to(EntryKind::CharDevice), all);
        assert!(all.fitted_to(EntryKind::Fifo).fits(EntryKind::Fifo));
    }

    #[test]
    fn the_root_header_keeps_an_access_time() {
        let m = EntryMeta {
            atime: Some(Timestamp { secs: 3, nanos: 4 }),
            ..EntryMeta::NONE
        };
        assert_eq!(m.to_header().unwrap(), b"atime=3.000000004");
        assert_eq!(EntryMeta::from_header(&m.to_header().unwrap()), m);
    }

    #[test]
    fn metadata_that_does_not_fit_its_kind_is_refused() {
        let mode = |m| EntryMeta {
            mode: Some(m),
            ..EntryMeta::NONE
        };
        for (kind, meta) in [
            (EntryKind::File, mode(0o755)),
            (EntryKind::Executable, mode(0o644)),
            (EntryKind::Symlink, mode(0o777)),
            (EntryKind::File, mode(0o10644)),
            (EntryKind::Gitlink, mode(0o644)),
        ] {
            let t = Tree {
                entries: vec![entry(b"x", kind, meta)],
            };
            assert!(t.check().is_err(), "{kind:?} {meta:?}");
            assert!(Tree::decode(&t.encode()).is_err(), "{kind:?} {meta:?}");
        }
        // A format-2 tree whose entries carry nothing has a format-1 twin: refused.
        let mut raw = Tree {
            entries: vec![entry(b"x", EntryKind::File, mode(0o600))],
        }
        .encode();
        // The entry ends with its flags byte and the two-byte varint of 0o600.
        let flags_at = raw.len() - 3;
        assert_eq!(raw[flags_at], 1);
        raw[flags_at] = 0;
        raw.truncate(flags_at + 1);
        assert!(Tree::decode(&raw).is_err());
    }

    #[test]
    fn timestamps_convert_both_ways_around_the_epoch() {
        for t in [
            Timestamp { secs: 0, nanos: 0 },
            Timestamp {
                secs: 1_700_000_000,
                nanos: 123,
            },
            Timestamp {
                secs: -1,
                nanos: 500,
            },
            Timestamp {
                secs: -86_400,
                nanos: 0,
            },
        ] {
            assert_eq!(Timestamp::from_system_time(t.to_system_time()), t);
        }
    }

    #[test]
    fn tree_decode_refuses_unsorted_entries() {
        let e = |n: &[u8]| TreeEntry {
            name: n.to_vec(),
            kind: EntryKind::File,
            id: ObjectId::of(n),
            size: 1,
            meta: EntryMeta::NONE,
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
