//! Error types.

use std::path::PathBuf;

use crate::gitfmt::GitId;

/// Why an import (or a verification) failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The git repository could not be opened.
    #[error("cannot open git repository {}: {message}", path.display())]
    Open {
        /// The path given.
        path: PathBuf,
        /// What gix said.
        message: String,
    },
    /// The repository uses an object hash other than SHA-1.
    #[error("git repository {}: only SHA-1 repositories are supported", path.display())]
    UnsupportedHash {
        /// The path given.
        path: PathBuf,
    },
    /// The repository is a shallow clone: history stops before a parent.
    #[error(
        "git repository is shallow: commit {commit} (reached from {refname}) lacks its parent {missing}; run `git fetch --unshallow` first"
    )]
    Shallow {
        /// The ref being imported.
        refname: String,
        /// The commit at the shallow boundary.
        commit: GitId,
        /// The parent that is not there.
        missing: GitId,
    },
    /// An object is missing from the git repository.
    #[error("git object {id} (reached from {refname}) is missing")]
    MissingObject {
        /// The object.
        id: GitId,
        /// The ref being imported.
        refname: String,
    },
    /// An object cannot be read or does not make sense.
    #[error("git object {id} (reached from {refname}) is corrupt: {reason}")]
    CorruptObject {
        /// The object.
        id: GitId,
        /// The ref being imported.
        refname: String,
        /// What is wrong.
        reason: String,
    },
    /// A tree entry git itself refuses (`.git` or an alias of it, `.`, `..`, a name with `/`
    /// or NUL): it could be written as a repository's own directory or outside the work tree.
    #[error("unsafe path {path:?} in commit {commit} (reached from {refname}): {reason}")]
    UnsafePath {
        /// The path in the git tree (lossy if not UTF-8).
        path: String,
        /// The commit (or tag) whose tree holds it.
        commit: GitId,
        /// The ref being imported.
        refname: String,
        /// Why it is refused.
        reason: String,
    },
    /// Listing the refs failed.
    #[error("reading git refs: {0}")]
    Refs(String),
    /// The store refused something.
    #[error(transparent)]
    Store(#[from] hero_store::Error),
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Writing the target repository failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// gix could not write an object.
    #[error("writing git object: {0}")]
    Write(String),
    /// Reading a file's content from the store failed.
    #[error("reading store file {id}: {source}")]
    ReadFile {
        /// The store file.
        id: hero_store::ObjectId,
        /// The error.
        source: std::io::Error,
    },
    /// zlib refused to compress or inflate.
    #[error("zlib: {source}")]
    Zlib {
        /// What zlib said.
        source: gix::Error,
    },
    /// SHA-1 detected a collision attack in what it hashed.
    #[error("hashing: {source}")]
    Hash {
        /// What the hasher said.
        source: gix::Error,
    },
    /// The temporary files of the pack being written do not read back as written.
    #[error("pack being written is inconsistent: {reason}")]
    Spool {
        /// What is wrong.
        reason: &'static str,
    },
    /// More objects than one pack can count (2^32 - 1).
    #[error("too many new objects for one pack")]
    PackTooLarge,
    /// An object that came from git would not get its original id back.
    #[error("round trip broken: store {kind} {store} should export as {expected} but gives {got}")]
    RoundTrip {
        /// `commit`, `tree`, `blob` or `tag`.
        kind: &'static str,
        /// The store object.
        store: hero_store::ObjectId,
        /// The git id recorded at import.
        expected: GitId,
        /// The git id the export computed.
        got: GitId,
    },
    /// A store ref that git cannot hold.
    #[error("cannot export {refname}: {reason}")]
    BadRef {
        /// The ref.
        refname: String,
        /// Why.
        reason: &'static str,
    },
    /// A special file (FIFO, socket, device node): git has no mode for it, and leaving it out
    /// would make an export that looks whole and is not.
    #[error(
        "cannot export {}: it is a {} and git cannot hold special files",
        String::from_utf8_lossy(path),
        kind.as_str()
    )]
    SpecialFile {
        /// Its path in the exported tree.
        path: Vec<u8>,
        /// What it is.
        kind: hero_store::EntryKind,
    },
    /// The store refused something.
    #[error(transparent)]
    Store(#[from] hero_store::Error),
}
