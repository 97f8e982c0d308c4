//! Names and paths inside the store.
//!
//! A name is any byte string except empty, `.`, `..`, or one containing `/` or NUL. A path is a
//! sequence of names, written with `/` between them.

use std::fmt;

/// A name or path the store refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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
    /// Metadata that does not fit its entry's kind (a mode on a symlink, a file whose mode
    /// says executable but whose kind does not, bits beyond `0o7777`).
    #[error("entry metadata does not fit the entry's kind")]
    MetaMismatch,
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
