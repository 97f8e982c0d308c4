//! The store's error type.

use std::path::PathBuf;

use crate::codec::DecodeError;
use crate::id::ObjectId;
use crate::path::NameError;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No repository file at the path.
    #[error("no repository at {0}")]
    NoRepository(PathBuf),
    /// `init` on a path that already holds a file.
    #[error("a repository (or other file) already exists at {0}")]
    RepositoryExists(PathBuf),
    /// The file is not a hero store repository.
    #[error("{path}: not a hero store repository ({reason})")]
    NotARepository {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The repository was written by a newer format.
    #[error("repository format {found} is newer than this build understands ({supported})")]
    FormatTooNew {
        /// Format found in the file.
        found: u32,
        /// Newest format this build reads.
        supported: u32,
    },
    /// An object that should be there is not.
    #[error("object {0} is missing")]
    Missing(ObjectId),
    /// An object's stored bytes do not decode or do not match its id.
    #[error("object {id} is corrupt: {reason}")]
    Corrupt {
        /// The object.
        id: ObjectId,
        /// What is wrong.
        reason: String,
    },
    /// An object has another type than expected.
    #[error("object {id} is not a {expected}")]
    WrongType {
        /// The object.
        id: ObjectId,
        /// The type that was wanted.
        expected: &'static str,
    },
    /// A name or path is not allowed.
    #[error("invalid name: {0}")]
    Name(#[from] NameError),
    /// A branch or tag name is not allowed.
    #[error("invalid ref name {name:?}: {reason}")]
    RefName {
        /// The name.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A revision that names nothing.
    #[error("unknown revision {0:?}")]
    UnknownRevision(String),
    /// A short id that matches several objects.
    #[error("ambiguous revision {0:?}: several objects start with it")]
    AmbiguousRevision(String),
    /// Compare-and-swap on a ref failed: it moved since it was read.
    #[error(
        "{name} moved: expected {}, found {}",
        show_opt(expected),
        show_opt(found)
    )]
    RefMoved {
        /// The ref.
        name: String,
        /// What the caller expected.
        expected: Option<ObjectId>,
        /// What it is now.
        found: Option<ObjectId>,
    },
    /// A branch only the code that owns it writes (`hero/...`, [`crate::RESERVED_BRANCH_PREFIX`]):
    /// the ordinary write APIs refuse to create, move or delete it.
    #[error("branch {0} is reserved: only hero itself writes hero/ branches")]
    ReservedBranch(String),
    /// A ref that exists already.
    #[error("{0} already exists")]
    RefExists(String),
    /// A path that does not exist.
    #[error("{0}: no such file or directory")]
    NoSuchPath(String),
    /// A path whose parent is not a directory.
    #[error("{0}: not a directory")]
    NotADirectory(String),
    /// A directory where a file was needed.
    #[error("{0}: is a directory")]
    IsADirectory(String),
    /// A path that exists already.
    #[error("{0}: already exists")]
    PathExists(String),
    /// Removing a directory that has entries.
    #[error("{0}: directory not empty")]
    NotEmpty(String),
    /// An operation that makes no sense on the root or a path inside itself.
    #[error("invalid operation on {0}: {1}")]
    InvalidOperation(String, &'static str),
    /// A file larger than the store can hold.
    #[error("file too large")]
    FileTooLarge,
    /// I/O on a path outside the repository (a working directory).
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// I/O on a stream given by the caller.
    #[error("reading input: {0}")]
    Input(std::io::Error),
    /// An object offered from outside (another peer) was refused before it was stored.
    #[error("object {id} refused: {reason}")]
    Refused {
        /// The id it claimed.
        id: ObjectId,
        /// Why it was refused.
        reason: String,
    },
    /// Bytes received from elsewhere that do not decode (a broken frame or delta).
    #[error("received data does not decode: {0}")]
    Undecodable(String),
    /// The database engine failed (this includes a full disk): [`DbError::kind`] says how.
    #[error("repository database: {0}")]
    Db(#[source] DbError),
}

/// A failure of the database engine, as the store classifies it; the engine's own error is
/// kept as its source (boxed: it is large, and every store result carries room for it).
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct DbError {
    kind: DbErrorKind,
    source: Box<redb::Error>,
}

/// How the database engine failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbErrorKind {
    /// The database file is damaged: its pages or checksums do not make sense.
    Corrupted,
    /// Reading or writing the file failed with an I/O error of this kind (a full disk is
    /// [`std::io::ErrorKind::StorageFull`] or [`std::io::ErrorKind::QuotaExceeded`]).
    Io(std::io::ErrorKind),
    /// Another process (a mount, a share, a server) has the file open.
    AlreadyOpen,
    /// The file was written by an older version of the database engine and needs upgrading
    /// before this build can open it.
    UpgradeRequired,
    /// Anything else: a bug, an engine used in a way it refuses.
    Other,
}

impl DbError {
    /// How the engine failed.
    pub fn kind(&self) -> DbErrorKind {
        self.kind
    }

    fn new(source: redb::Error) -> DbError {
        let kind = match &source {
            redb::Error::Corrupted(_) => DbErrorKind::Corrupted,
            // The store's tables are fixed; the callers that allow a table to be absent match
            // that case before it gets here. A table missing or of other types than it is
            // opened with means the file's table directory is damaged.
            redb::Error::TableDoesNotExist(_)
            | redb::Error::TableTypeMismatch { .. }
            | redb::Error::TypeDefinitionChanged { .. }
            | redb::Error::TableIsMultimap(_)
            | redb::Error::TableIsNotMultimap(_) => DbErrorKind::Corrupted,
            // redb's "not a redb database" (a damaged header), and a page read past the end
            // of the file (a damaged length or page number).
            redb::Error::Io(io)
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
                ) =>
            {
                DbErrorKind::Corrupted
            }
            redb::Error::Io(io) => DbErrorKind::Io(io.kind()),
            redb::Error::DatabaseAlreadyOpen => DbErrorKind::AlreadyOpen,
            redb::Error::UpgradeRequired(_) => DbErrorKind::UpgradeRequired,
            _ => DbErrorKind::Other,
        };
        DbError {
            kind,
            source: Box::new(source),
        }
    }
}

fn show_opt(id: &Option<ObjectId>) -> String {
    match id {
        Some(id) => id.short(),
        None => "nothing".to_owned(),
    }
}

impl Error {
    pub(crate) fn corrupt(id: ObjectId, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            id,
            reason: reason.into(),
        }
    }
    pub(crate) fn decode(id: ObjectId, e: DecodeError) -> Self {
        Error::corrupt(id, e.to_string())
    }
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    /// The store's error for a failure of the database engine.
    pub(crate) fn db(e: impl Into<redb::Error>) -> Self {
        Error::Db(DbError::new(e.into()))
    }

    /// Whether this error means the disk is full: an I/O error of kind "storage full"
    /// (ENOSPC) or "quota exceeded" (EDQUOT), the database's own or one in the chain.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Error::Db(db) => matches!(db.kind(), DbErrorKind::Io(k) if is_full_kind(k)),
            Error::Input(io) => is_disk_full_io(io),
            _ => {
                let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(self);
                while let Some(e) = cur {
                    if let Some(io) = e.downcast_ref::<std::io::Error>()
                        && is_disk_full_io(io)
                    {
                        return true;
                    }
                    cur = e.source();
                }
                false
            }
        }
    }
}

/// Whether an I/O error means the disk is full: its kind is "storage full" (ENOSPC) or
/// "quota exceeded" (EDQUOT).
pub fn is_disk_full_io(io: &std::io::Error) -> bool {
    is_full_kind(io.kind())
}

fn is_full_kind(kind: std::io::ErrorKind) -> bool {
    matches!(
        kind,
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// Turns the database engine's results into the store's inside the crate (`.db_err()?`), so
/// no public `From` impl names redb's types.
pub(crate) trait DbResultExt<T> {
    /// The result, its error as [`Error::Db`].
    fn db_err(self) -> Result<T>;
}

impl<T, E: Into<redb::Error>> DbResultExt<T> for std::result::Result<T, E> {
    fn db_err(self) -> Result<T> {
        self.map_err(Error::db)
    }
}

/// The store's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_errors_are_classified_by_their_kind_and_keep_their_source() {
        let full = Error::db(redb::Error::Io(std::io::Error::from(
            std::io::ErrorKind::StorageFull,
        )));
        assert!(full.is_disk_full());
        let Error::Db(db) = &full else {
            panic!("not a database error: {full}");
        };
        assert_eq!(db.kind(), DbErrorKind::Io(std::io::ErrorKind::StorageFull));
        let source = std::error::Error::source(db).map(|s| s.to_string());
        assert_eq!(source, Some(db.to_string()));

        let corrupted = Error::db(redb::StorageError::Corrupted("bad page".into()));
        assert!(matches!(&corrupted, Error::Db(db) if db.kind() == DbErrorKind::Corrupted));
        assert!(!corrupted.is_disk_full());
        assert!(corrupted.to_string().contains("bad page"), "{corrupted}");

        let open = Error::db(redb::DatabaseError::DatabaseAlreadyOpen);
        assert!(matches!(&open, Error::Db(db) if db.kind() == DbErrorKind::AlreadyOpen));
        let upgrade = Error::db(redb::DatabaseError::UpgradeRequired(2));
        assert!(matches!(&upgrade, Error::Db(db) if db.kind() == DbErrorKind::UpgradeRequired));
        let missing = Error::db(redb::TableError::TableDoesNotExist("kv-1".into()));
        assert!(matches!(&missing, Error::Db(db) if db.kind() == DbErrorKind::Corrupted));
        let other = Error::db(redb::CommitError::TransactionPoisoned);
        assert!(matches!(&other, Error::Db(db) if db.kind() == DbErrorKind::Other));
    }

    #[test]
    fn a_full_quota_is_a_full_disk_and_a_refused_write_is_not() {
        let quota = std::io::Error::from(std::io::ErrorKind::QuotaExceeded);
        assert!(Error::io("/w/a", quota).is_disk_full());
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(!Error::Input(denied).is_disk_full());
    }
}
