//! Names and paths inside the store.
//!
//! A name is any byte string except empty, `.`, `..`, or one containing `/` or NUL. A path is a
//! sequence of names, written with `/` between them.
//!
//! Names git refuses as its own directory (`.git` and its aliases, [`is_git_unsafe`]) are valid
//! names, so a tree that holds one still decodes; but nothing writes them: the import refuses
//! (or drops) them, checkout skips them, `commit DIR` leaves them out, and the mount and the
//! share refuse to create them ([`check_git_safe`]).

use std::fmt;

/// A name or path the store refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// An empty name (for instance `a//b`).
    #[error("empty name")]
    Empty,
    /// `.` or `..`.
    #[error("the name {0:?} is reserved")]
    Dot(String),
    /// A name containing `/`.
    #[error("name contains '/': {0:?}")]
    Slash(String),
    /// A name containing NUL.
    #[error("name contains a NUL byte: {0:?}")]
    Nul(String),
    /// Entries out of order in a tree (only from decoding).
    #[error("tree entries not sorted or not unique")]
    Unsorted,
    /// A name git would take for its own `.git` directory ([`is_git_unsafe`]).
    #[error("the name {0:?} is refused: git takes it for its .git directory")]
    GitDir(String),
    /// Metadata that does not fit its entry's kind (a mode on a symlink, a file whose mode
    /// says executable but whose kind does not, bits beyond `0o7777`).
    #[error("entry metadata does not fit the entry's kind")]
    MetaMismatch,
    /// A special file (FIFO, socket, device node) with an id or a size: it has no content.
    #[error("a special file has no content")]
    SpecialWithContent,
}

/// Checks one name.
pub fn validate_name(name: &[u8]) -> Result<(), NameError> {
    let show = || String::from_utf8_lossy(name).into_owned();
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name == b"." || name == b".." {
        return Err(NameError::Dot(show()));
    }
    if name.contains(&b'/') {
        return Err(NameError::Slash(show()));
    }
    if name.contains(&0) {
        return Err(NameError::Nul(show()));
    }
    Ok(())
}

/// Whether a name is one git refuses in a tree because a checkout could write it as the
/// `.git` directory (git's fsck `hasDotgit` and its NTFS and HFS+ cousins): `.git` in any case;
/// its Windows short name `git~1`; either followed by spaces or dots (which Windows drops), or
/// by `:` (an NTFS stream, `.git::$INDEX_ALLOCATION`) or `\` (a Windows path separator);
/// `.git` with code points HFS+ ignores inside it (U+200C..U+200F, U+202A..U+202E,
/// U+206A..U+206F, U+FEFF). `.gitignore`, `.github`, `.gitattributes`, `.gitmodules` and the
/// like are ordinary names.
pub fn is_git_unsafe(name: &[u8]) -> bool {
    let mut folded = Vec::with_capacity(name.len());
    let mut i = 0;
    while i < name.len() {
        if let Some(n) = hfs_ignorable_len(&name[i..]) {
            i += n;
            continue;
        }
        folded.push(name[i].to_ascii_lowercase());
        i += 1;
    }
    let rest = if let Some(r) = folded.strip_prefix(b".git") {
        r
    } else if let Some(r) = folded.strip_prefix(b"git~1") {
        r
    } else {
        return false;
    };
    for &c in rest {
        match c {
            b':' | b'\\' | b'/' => return true,
            b' ' | b'.' => {}
            _ => return false,
        }
    }
    true
}

/// The length of the UTF-8 sequence of a code point HFS+ ignores at the start of `b`, if one is.
fn hfs_ignorable_len(b: &[u8]) -> Option<usize> {
    match b {
        // U+200C..U+200F and U+202A..U+202E
        [0xe2, 0x80, 0x8c..=0x8f | 0xaa..=0xae, ..]
        // U+206A..U+206F
        | [0xe2, 0x81, 0xaa..=0xaf, ..]
        // U+FEFF
        | [0xef, 0xbb, 0xbf, ..] => Some(3),
        _ => None,
    }
}

/// Checks a name for a new entry that may end up in a git tree or on a disk: a valid name
/// ([`validate_name`]) that git would not take for its `.git` directory ([`is_git_unsafe`]).
pub fn check_git_safe(name: &[u8]) -> Result<(), NameError> {
    validate_name(name)?;
    if is_git_unsafe(name) {
        return Err(NameError::GitDir(
            String::from_utf8_lossy(name).into_owned(),
        ));
    }
    Ok(())
}

/// A validated path: zero or more names. The empty path is the root.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RepoPath {
    names: Vec<Vec<u8>>,
}

impl RepoPath {
    /// The root.
    pub fn root() -> Self {
        RepoPath { names: Vec::new() }
    }

    /// Parses `a/b/c`. Leading and trailing slashes are ignored; empty components, `.`, `..`
    /// and NUL are refused.
    pub fn parse(path: impl AsRef<[u8]>) -> Result<Self, NameError> {
        let path = path.as_ref();
        let trimmed = trim_slashes(path);
        if trimmed.is_empty() {
            return Ok(Self::root());
        }
        let mut names = Vec::new();
        for part in trimmed.split(|&b| b == b'/') {
            validate_name(part)?;
            names.push(part.to_vec());
        }
        Ok(RepoPath { names })
    }

    /// Builds a path from names, checking each.
    pub fn from_names<I, N>(names: I) -> Result<Self, NameError>
    where
        I: IntoIterator<Item = N>,
        N: Into<Vec<u8>>,
    {
        let mut out = Vec::new();
        for n in names {
            let n = n.into();
            validate_name(&n)?;
            out.push(n);
        }
        Ok(RepoPath { names: out })
    }

    /// The names, root first.
    pub fn names(&self) -> &[Vec<u8>] {
        &self.names
    }

    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.names.is_empty()
    }

    /// The last name, if any.
    pub fn file_name(&self) -> Option<&[u8]> {
        self.names.last().map(Vec::as_slice)
    }

    /// The parent path (the root's parent is the root).
    pub fn parent(&self) -> RepoPath {
        let mut names = self.names.clone();
        names.pop();
        RepoPath { names }
    }

    /// This path with one more name.
    pub fn join(&self, name: &[u8]) -> Result<RepoPath, NameError> {
        validate_name(name)?;
        let mut names = self.names.clone();
        names.push(name.to_vec());
        Ok(RepoPath { names })
    }

    /// Whether `self` is `other` or inside it.
    pub fn starts_with(&self, other: &RepoPath) -> bool {
        self.names.len() >= other.names.len() && self.names[..other.names.len()] == other.names
    }

    /// The path as bytes with `/` separators.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.names.join(&b'/')
    }

    /// Number of names.
    pub fn depth(&self) -> usize {
        self.names.len()
    }
}

fn trim_slashes(mut p: &[u8]) -> &[u8] {
    while let [b'/', rest @ ..] = p {
        p = rest;
    }
    while let [rest @ .., b'/'] = p {
        p = rest;
    }
    p
}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

impl fmt::Debug for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RepoPath({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(matches!(validate_name(b""), Err(NameError::Empty)));
        assert!(matches!(validate_name(b"."), Err(NameError::Dot(_))));
        assert!(matches!(validate_name(b".."), Err(NameError::Dot(_))));
        assert!(matches!(validate_name(b"a/b"), Err(NameError::Slash(_))));
        assert!(matches!(validate_name(b"a\0b"), Err(NameError::Nul(_))));
        validate_name(b"\xff\xfe weird \\ name...").unwrap();
        validate_name(b"...").unwrap();
    }

    #[test]
    fn git_unsafe_names() {
        for bad in [
            &b".git"[..],
            b".GIT",
            b".Git",
            b".gIt",
            b"git~1",
            b"GIT~1",
            b".git ",
            b".git. . ",
            b".git...",
            b"git~1.",
            b".git::$INDEX_ALLOCATION",
            b".git:stream",
            b"git~1::$INDEX_ALLOCATION",
            b".git\\hooks",
            "\u{200c}.git".as_bytes(),
            ".g\u{200d}it".as_bytes(),
            ".gi\u{200e}t\u{200f}".as_bytes(),
            ".\u{202a}git".as_bytes(),
            ".\u{202e}GIT".as_bytes(),
            ".g\u{206a}i\u{206f}t".as_bytes(),
            "\u{feff}.git".as_bytes(),
            ".git\u{feff} ".as_bytes(),
        ] {
            assert!(is_git_unsafe(bad), "{:?}", String::from_utf8_lossy(bad));
            assert!(matches!(check_git_safe(bad), Err(NameError::GitDir(_))));
        }
        for good in [
            &b".gitignore"[..],
            b".github",
            b".gitattributes",
            b".gitmodules",
            b".gitkeep",
            b"git",
            b"git~2",
            b"git~10",
            b".git~1",
            b"x.git",
            b".gi",
            b"..git",
            b".git-old",
            b".git_",
            "\u{2010}.git".as_bytes(),
            ".g\u{200b}it".as_bytes(),
            b"\xe2\x80",
        ] {
            assert!(!is_git_unsafe(good), "{:?}", String::from_utf8_lossy(good));
            check_git_safe(good).unwrap();
        }
        assert!(matches!(check_git_safe(b".."), Err(NameError::Dot(_))));
        assert!(matches!(check_git_safe(b"a/b"), Err(NameError::Slash(_))));
        assert!(matches!(check_git_safe(b"a\0"), Err(NameError::Nul(_))));
    }

    #[test]
    fn paths_parse() {
        let p = RepoPath::parse("/a/b/c/").unwrap();
        assert_eq!(p.depth(), 3);
        assert_eq!(p.to_bytes(), b"a/b/c");
        assert_eq!(p.parent().to_bytes(), b"a/b");
        assert!(RepoPath::parse("a//b").is_err());
        assert!(RepoPath::parse("a/../b").is_err());
        assert!(RepoPath::parse("").unwrap().is_root());
        assert!(p.starts_with(&RepoPath::parse("a").unwrap()));
    }
}
