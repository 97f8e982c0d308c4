//! The one error type of `heroctl`: every failure becomes a [`CommandError`] with a kind, which
//! picks the exit code, and at most one hint that says what to do next.
//!
//! The kind is found by walking the error's chain and matching the library error types
//! variant by variant ([`classify`]); errors the CLI raises itself carry their kind in a
//! [`Tagged`] error. Each library error is classified by an exhaustive `match` over its
//! variants (the workspace's error enums are not `#[non_exhaustive]`), so a new variant does
//! not compile until it is mapped here. A variant that maps to `None` leaves the decision to
//! the next cause in the chain (its source). Anything unknown is `internal` (exit 1).

use std::io::ErrorKind as IoKind;
use std::process::ExitCode;

use serde_json::json;

/// What kind of failure, and so which exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Anything else: a bug, a full disk, an I/O error without a better kind.
    Internal,
    /// The command line is wrong (what clap reports too).
    Usage,
    /// Something named does not exist: a repository, revision, branch, path, remote.
    NotFound,
    /// Refused: a ref moved or exists, a peer or the file system said no, read-only.
    Refused,
    /// Data that does not decode or verify: a corrupt object, a file that is no repository.
    Corrupt,
    /// The network: a peer unreachable, a connection lost, a peer breaking the protocol.
    Network,
}

impl Kind {
    /// The exit code of this kind.
    pub fn exit_code(self) -> u8 {
        match self {
            Kind::Internal => 1,
            Kind::Usage => 2,
            Kind::NotFound => 3,
            Kind::Refused => 4,
            Kind::Corrupt => 5,
            Kind::Network => 6,
        }
    }

    /// The kind a name of [`Kind::as_str`] stands for.
    pub fn from_name(name: &str) -> Option<Kind> {
        [
            Kind::Internal,
            Kind::Usage,
            Kind::NotFound,
            Kind::Refused,
            Kind::Corrupt,
            Kind::Network,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }

    /// The name of this kind in JSON errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Internal => "internal",
            Kind::Usage => "usage",
            Kind::NotFound => "not_found",
            Kind::Refused => "refused",
            Kind::Corrupt => "corrupt",
            Kind::Network => "network",
        }
    }
}

/// The exit codes, as `heroctl --help` and the README list them.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success (also when the reader of the output went away: `heroctl log | head -1`)
  1  internal or other error (a bug, a full disk, an I/O error)
  2  usage: a wrong command line, an invalid name or ticket
  3  not found: no repository, unknown revision, branch, path or remote
  4  refused: a ref moved or exists, a peer refused (not a member, a reader pushing, a path
     outside a writer's scopes, an unsigned commit, an invitation used, expired or forged),
     a reserved hero/ branch, read-only, a git history holding a path git refuses (.git, ..)
  5  corrupt: a corrupt object or repository, a file that is not a repository, an empty or
     corrupt key or token file (also `verify` when it finds corrupt or missing objects, and
     `repair` when something was lost); `heroctl repair` rebuilds a damaged repository
  6  network: a peer unreachable, a connection lost or timed out, a protocol error

With --json, errors are printed on stderr as
  {\"error\": {\"kind\", \"message\", \"causes\", \"hint\", \"exit_code\"}}";

/// An error raised by the CLI itself, with its kind and perhaps a hint.
#[derive(Debug)]
pub struct Tagged {
    kind: Kind,
    message: String,
    hint: Option<String>,
}

impl std::fmt::Display for Tagged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Tagged {}

/// An error of the given kind (for `bail!`-like returns in commands).
pub fn tagged(kind: Kind, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Tagged {
        kind,
        message: message.into(),
        hint: None,
    })
}

/// An error of the given kind with a hint.
pub fn tagged_hint(
    kind: Kind,
    message: impl Into<String>,
    hint: impl Into<String>,
) -> anyhow::Error {
    anyhow::Error::new(Tagged {
        kind,
        message: message.into(),
        hint: Some(hint.into()),
    })
}

/// A failed command: what went wrong, its kind, and what to do about it.
#[derive(Debug)]
pub struct CommandError {
    /// The kind, which picks the exit code.
    pub kind: Kind,
    /// The error with its causes.
    pub err: anyhow::Error,
    /// What to do next, when something helps.
    pub hint: Option<String>,
}

impl From<anyhow::Error> for CommandError {
    fn from(err: anyhow::Error) -> Self {
        let (kind, hint) = classify(&err);
        CommandError { kind, err, hint }
    }
}

impl CommandError {
    /// The exit code.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.kind.exit_code())
    }

    /// The message and its causes, each once: a cause whose text the message before it
    /// already contains (`{path}: {source}` followed by that source) is left out.
    pub fn messages(&self) -> Vec<String> {
        dedupe(self.err.chain().map(|c| c.to_string()))
    }

    /// Prints the error on stderr: as text, or as one JSON object.
    pub fn print(&self, json: bool) {
        let messages = self.messages();
        if json {
            let (message, causes) = match messages.split_first() {
                Some((m, c)) => (m.clone(), c.to_vec()),
                None => (String::new(), Vec::new()),
            };
            let v = json!({"error": {
                "kind": self.kind.as_str(),
                "message": message,
                "causes": causes,
                "hint": self.hint,
                "exit_code": self.kind.exit_code(),
            }});
            eprintln!("{v}");
            return;
        }
        eprintln!("error: {}", messages.join(": "));
        if let Some(h) = &self.hint {
            eprintln!("hint: {h}");
        }
    }
}

/// An error's message and its causes, each once (see [`CommandError::messages`]).
pub fn messages_of(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
    dedupe(std::iter::successors(Some(err), |e| e.source()).map(|c| c.to_string()))
}

/// Drops empty messages and those the message before already contains.
fn dedupe(texts: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for text in texts {
        if text.is_empty() || out.last().is_some_and(|prev| prev.contains(&text)) {
            continue;
        }
        out.push(text);
    }
    out
}

/// The kind of an error and a hint, from the first cause in its chain that tells.
pub fn classify(err: &anyhow::Error) -> (Kind, Option<String>) {
    for cause in err.chain() {
        if let Some(found) = classify_one(cause) {
            return found;
        }
    }
    (Kind::Internal, None)
}

/// The kind and hint of an error that is no `anyhow::Error` (a branch that failed in a sync).
pub fn classify_dyn(err: &(dyn std::error::Error + 'static)) -> (Kind, Option<String>) {
    let mut cause = Some(err);
    while let Some(c) = cause {
        if let Some(found) = classify_one(c) {
            return found;
        }
        cause = c.source();
    }
    (Kind::Internal, None)
}

type Found = Option<(Kind, Option<String>)>;

/// The hint for a damaged repository file.
pub const REPAIR: &str = "`heroctl repair` rebuilds the repository from every object that still \
     verifies and reports what was lost (`--from PEER` fetches that from a peer); the damaged \
     file is kept aside";

fn classify_one(cause: &(dyn std::error::Error + 'static)) -> Found {
    if let Some(t) = cause.downcast_ref::<Tagged>() {
        return Some((t.kind, t.hint.clone()));
    }
    if let Some(e) = cause.downcast_ref::<hero_store::Error>() {
        return store(e);
    }
    if let Some(e) = cause.downcast_ref::<hero_sync::SyncError>() {
        return sync(e);
    }
    if let Some(e) = cause.downcast_ref::<hero_sync::membership::MembershipError>() {
        return membership(e);
    }
    if let Some(e) = cause.downcast_ref::<hero_sync::identity::KeyError>() {
        return key(e);
    }
    if let Some(e) = cause.downcast_ref::<hero_sync::audit::AuditError>() {
        return audit(e);
    }
    if let Some(e) = cause.downcast_ref::<hero_store::merge::MergeError>() {
        return merge(e);
    }
    if let Some(e) = cause.downcast_ref::<hero_store::NameError>() {
        return name(e);
    }
    if let Some(e) = cause.downcast_ref::<hero_importers::ImportError>() {
        return import(e);
    }
    if let Some(e) = cause.downcast_ref::<hero_importers::ExportError>() {
        return export(e);
    }
    if let Some(e) = cause.downcast_ref::<hero_fuse::MountError>() {
        return mount(e);
    }
    if let Some(e) = cause.downcast_ref::<hero_dav::DavError>() {
        return dav(e);
    }
    if let Some(e) = cause.downcast_ref::<hero_web::WebError>() {
        return web(e);
    }
    if let Some(e) = cause.downcast_ref::<std::io::Error>() {
        return io(e);
    }
    None
}

fn kind(k: Kind) -> Found {
    Some((k, None))
}

fn store(e: &hero_store::Error) -> Found {
    use hero_store::Error as E;
    match e {
        E::NoRepository(_) => Some((
            Kind::NotFound,
            Some("create one with `heroctl init`, or name another with -R/$HERO_REPO".to_owned()),
        )),
        E::FormatTooNew { .. } => Some((
            Kind::Corrupt,
            Some(format!(
                "open it with a newer heroctl; if none wrote it, the file is damaged: {REPAIR}"
            )),
        )),
        E::NotARepository { .. } => Some((
            Kind::Corrupt,
            Some(format!("if the file is a damaged repository: {REPAIR}")),
        )),
        E::Missing(_) | E::Corrupt { .. } | E::WrongType { .. } => Some((
            Kind::Corrupt,
            Some(format!("`heroctl verify` lists what is damaged; {REPAIR}")),
        )),
        // Bytes a peer sent: nothing in this repository is damaged.
        E::Undecodable(_) => kind(Kind::Corrupt),
        E::Name(_) | E::RefName { .. } | E::AmbiguousRevision(_) | E::InvalidOperation(..) => {
            kind(Kind::Usage)
        }
        E::UnknownRevision(_) => Some((
            Kind::NotFound,
            Some("`heroctl branch` and `heroctl tag` list what exists".to_owned()),
        )),
        E::NoSuchPath(_) | E::NotADirectory(_) | E::IsADirectory(_) => kind(Kind::NotFound),
        // Expected nothing: it exists (a create racing another); no retry helps.
        E::RefMoved { expected: None, .. } => kind(Kind::Refused),
        E::RefMoved { .. } => Some((
            Kind::Refused,
            Some("another writer moved it meanwhile; run the command again".to_owned()),
        )),
        E::RepositoryExists(_) | E::RefExists(_) | E::PathExists(_) | E::NotEmpty(_) => {
            kind(Kind::Refused)
        }
        E::FileTooLarge => kind(Kind::Refused),
        E::ReservedBranch(_) => Some((
            Kind::Refused,
            Some(
                "hero/ branches are hero's own: change the membership with `heroctl member`; \
                 reading them (log, ls, cat, mount --read-only) is allowed"
                    .to_owned(),
            ),
        )),
        E::Refused { .. } => kind(Kind::Network),
        // The io::Error below decides.
        E::Io { .. } => None,
        E::Input(io_err) => io(io_err),
        E::Db(db) => database(db),
    }
}

fn database(e: &hero_store::DbError) -> Found {
    use hero_store::DbErrorKind as K;
    match e.kind() {
        K::Corrupted => Some((Kind::Corrupt, Some(REPAIR.to_owned()))),
        K::UpgradeRequired => kind(Kind::Corrupt),
        K::Io(io_kind) => io_by_kind(io_kind),
        K::AlreadyOpen => Some((
            Kind::Refused,
            Some("another heroctl (a mount, a share, a server) has the repository open".to_owned()),
        )),
        K::Other => kind(Kind::Internal),
    }
}

fn name(e: &hero_store::NameError) -> Found {
    use hero_store::NameError as E;
    match e {
        // A name or path the store refuses, as for `Error::Name`; one arrives bare from
        // `RepoPath::parse` of a path given on the command line.
        E::Empty
        | E::Dot(_)
        | E::Slash(_)
        | E::Nul(_)
        | E::GitDir(_)
        | E::Unsorted
        | E::MetaMismatch
        | E::SpecialWithContent => kind(Kind::Usage),
    }
}

fn disk_full() -> Found {
    Some((Kind::Internal, Some("free some disk space".to_owned())))
}

fn sync(e: &hero_sync::SyncError) -> Found {
    use hero_sync::SyncError as E;
    match e {
        E::Unreachable { .. } => Some((
            Kind::Network,
            Some("is the peer's `heroctl serve` running, and is the ticket current?".to_owned()),
        )),
        E::Connection(_)
        | E::Bind(_)
        | E::Protocol(_)
        | E::OverLimit { .. }
        | E::Silent { .. }
        | E::Remote(_)
        | E::Incompatible { .. } => kind(Kind::Network),
        // Their messages say what to run on the serving peer.
        E::NotAllowed { .. }
        | E::ReadOnly { .. }
        | E::RepoMismatch { .. }
        | E::RefusedRecently { .. } => kind(Kind::Refused),
        E::InvitationRefused { .. } => Some((
            Kind::Refused,
            Some("ask an owner of the repository for a new invitation (heroctl invite)".to_owned()),
        )),
        E::PushRefused { .. } | E::NotOwner(_) | E::MembershipRefused(_) | E::HistoryRefused(_) => {
            kind(Kind::Refused)
        }
        E::BadScope(_) => kind(Kind::Usage),
        E::Membership(m) => membership(m),
        E::BadTicket { .. } | E::BadId(_) => kind(Kind::Usage),
        E::UnknownRemote(_) => kind(Kind::NotFound),
        E::Key(k) => key(k),
        // `Merge` has its source in the chain; `Store` and `Io` are transparent (their inner
        // error's source is next in the chain, not the inner error itself).
        E::Merge { .. } => None,
        E::Store(s) => store(s),
        E::Io(io_err) => io(io_err),
    }
}

fn key(e: &hero_sync::identity::KeyError) -> Found {
    use hero_sync::identity::KeyError as E;
    match e {
        E::Io { source, .. } => io(source),
        E::Empty { path } => Some((
            Kind::Corrupt,
            Some(format!(
                "it never held a key (an interrupted first run of an older heroctl left it); \
                 delete {} and the next command makes this node a new identity",
                path.display()
            )),
        )),
        E::Invalid { path } => Some((
            Kind::Corrupt,
            Some(format!(
                "restore {} from a backup; deleting it makes this node a new identity, \
                 which its peers and the membership must then admit again",
                path.display()
            )),
        )),
    }
}

fn audit(e: &hero_sync::audit::AuditError) -> Found {
    use hero_sync::audit::AuditError as E;
    match e {
        E::Io { source, .. } => io(source),
        E::Store(s) => store(s),
    }
}

fn membership(e: &hero_sync::membership::MembershipError) -> Found {
    use hero_sync::membership::MembershipError as E;
    match e {
        E::Refused(_) | E::AlreadyInitialized => kind(Kind::Refused),
        E::Store(s) => store(s),
        E::Envelope(_) => kind(Kind::Usage),
        // Names built from change hashes, a signer's broken sequence, automerge itself: bugs
        // or a misbehaving peer, nothing the user can fix.
        E::Name(_) | E::NotADocument { .. } | E::Automerge(_) => kind(Kind::Internal),
    }
}

fn merge(e: &hero_store::merge::MergeError) -> Found {
    use hero_store::merge::MergeError as E;
    match e {
        E::Store(s) => store(s),
        E::Name(_) => kind(Kind::Corrupt),
        E::NoSuchBranch(_) => kind(Kind::NotFound),
    }
}

fn import(e: &hero_importers::ImportError) -> Found {
    use hero_importers::ImportError as E;
    match e {
        E::Open { path, .. } if !path.exists() => kind(Kind::NotFound),
        E::Open { .. } | E::MissingObject { .. } | E::CorruptObject { .. } | E::Refs(_) => {
            kind(Kind::Corrupt)
        }
        E::UnsupportedHash { .. } | E::Shallow { .. } => kind(Kind::Refused),
        E::UnsafePath { .. } => Some((
            Kind::Refused,
            Some(
                "git itself refuses such a path; `heroctl import git --skip-unsafe-paths` \
                 imports the history without it (and lists what it dropped)"
                    .to_owned(),
            ),
        )),
        E::Store(s) => store(s),
    }
}

fn export(e: &hero_importers::ExportError) -> Found {
    use hero_importers::ExportError as E;
    match e {
        E::Io { source, .. } => io(source),
        E::PackTooLarge | E::BadRef { .. } => kind(Kind::Refused),
        E::SpecialFile { .. } => Some((
            Kind::Refused,
            Some(
                "git has no FIFOs, sockets or device nodes: remove them from the branch \
                 (or export a branch without them)"
                    .to_owned(),
            ),
        )),
        E::Store(s) => store(s),
        // gix, zlib or the hasher failing, our own pack not reading back, an object that
        // would not round-trip: bugs or a broken system, not the user's doing.
        E::Write(_)
        | E::ReadFile { .. }
        | E::Zlib { .. }
        | E::Hash { .. }
        | E::Spool { .. }
        | E::RoundTrip { .. } => kind(Kind::Internal),
    }
}

fn mount(e: &hero_fuse::MountError) -> Found {
    use hero_fuse::MountError as E;
    match e {
        E::Store(s) => store(s),
        E::StaleMount { .. } => kind(Kind::Refused),
        E::NotADirectory(_) => kind(Kind::NotFound),
        E::Io { source, .. } => io(source),
        E::Mount { .. } => Some((
            Kind::Refused,
            Some("is FUSE available (/dev/fuse, fusermount3) and the directory empty?".to_owned()),
        )),
        // fuse.conf refusing --allow-other, a busy mount detached lazily, the final commit
        // failing (the files stay in the spill directory), the spill directory itself: the
        // message says what happened and what is left; exit 1.
        E::AllowOtherNotPermitted | E::Unmount { .. } | E::Flush(_) | E::Durability(_) => {
            kind(Kind::Internal)
        }
    }
}

fn dav(e: &hero_dav::DavError) -> Found {
    use hero_dav::DavError as E;
    match e {
        E::Store(s) => store(s),
        E::Io { source, .. } => io(source),
        E::Insecure { .. } | E::Config(_) => kind(Kind::Usage),
        E::Token { path, source } if source.kind() == IoKind::InvalidData => Some((
            Kind::Corrupt,
            Some(format!(
                "delete {} and the share makes a new token (clients then need the new one)",
                path.display()
            )),
        )),
        E::Token { source, .. } => io(source),
    }
}

fn web(e: &hero_web::WebError) -> Found {
    use hero_web::WebError as E;
    match e {
        E::Store(s) => store(s),
        E::Bind { source, .. } => io(source),
        E::Insecure { .. } | E::EmptyCredentials => kind(Kind::Usage),
    }
}

fn io(e: &std::io::Error) -> Found {
    // A store error carried through `Read` (a `FileReader` copied to stdout or a file).
    if let Some(inner) = e.get_ref()
        && let Some(found) = classify_one(inner)
    {
        return Some(found);
    }
    io_by_kind(e.kind())
}

fn io_by_kind(io_kind: IoKind) -> Found {
    match io_kind {
        IoKind::NotFound => kind(Kind::NotFound),
        IoKind::PermissionDenied | IoKind::ReadOnlyFilesystem | IoKind::AlreadyExists => {
            kind(Kind::Refused)
        }
        IoKind::ConnectionRefused
        | IoKind::ConnectionReset
        | IoKind::ConnectionAborted
        | IoKind::NotConnected
        | IoKind::TimedOut
        | IoKind::HostUnreachable
        | IoKind::NetworkUnreachable
        | IoKind::AddrInUse
        | IoKind::AddrNotAvailable => kind(Kind::Network),
        IoKind::StorageFull | IoKind::QuotaExceeded => disk_full(),
        IoKind::InvalidData => kind(Kind::Corrupt),
        _ => kind(Kind::Internal),
    }
}

/// Set by the panic hook when the database engine panicked (on any thread).
static ENGINE_PANICKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a panic happened inside the database engine's code.
fn in_engine(info: &std::panic::PanicHookInfo<'_>) -> bool {
    info.location()
        .is_some_and(|l| l.file().contains("/redb-") || l.file().contains("/redb/"))
}

/// Runs a command; a panic of the database engine (redb panics on some damaged pages where it
/// should return an error) becomes a corrupt-repository error with the repair hint, exit 5.
/// Any other panic stays a panic: a bug of ours, reported as Rust reports it.
pub fn contain_engine_panics(
    f: impl FnOnce() -> anyhow::Result<ExitCode>,
) -> anyhow::Result<ExitCode> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if in_engine(info) {
            ENGINE_PANICKED.store(true, std::sync::atomic::Ordering::SeqCst);
            tracing::debug!(%info, "the database engine panicked");
        } else {
            previous(info);
        }
    }));
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) if ENGINE_PANICKED.load(std::sync::atomic::Ordering::SeqCst) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(tagged_hint(
                Kind::Corrupt,
                format!(
                    "the repository file is damaged: the database engine failed on a page ({what})"
                ),
                REPAIR,
            ))
        }
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// Whether an error chain ends in a broken pipe (`heroctl log | head`): the reader went
/// away, which is no failure of ours.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == IoKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_repeated_by_its_wrapper_is_printed_once() {
        let io = std::io::Error::from_raw_os_error(28);
        let store = hero_store::Error::Io {
            path: "/x/a".into(),
            source: io,
        };
        let err = anyhow::Error::new(store).context("snapshotting /x");
        let e = CommandError::from(err);
        let m = e.messages();
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(m[1].contains("os error 28"));
        assert_eq!(e.hint.as_deref(), Some("free some disk space"));
    }

    #[test]
    fn a_missing_repository_is_not_found_with_the_init_hint() {
        let err = anyhow::Error::new(hero_store::Error::NoRepository("/r".into()));
        let e = CommandError::from(err);
        assert_eq!(e.kind, Kind::NotFound);
        assert!(e.hint.is_some_and(|h| h.contains("heroctl init")));
    }

    #[test]
    fn a_file_that_is_no_repository_is_corrupt_with_the_repair_hint_not_the_init_hint() {
        let err = anyhow::Error::new(hero_store::Error::NotARepository {
            path: "/r".into(),
            reason: "bad magic".into(),
        });
        let e = CommandError::from(err);
        assert_eq!(e.kind, Kind::Corrupt);
        assert!(
            e.hint
                .is_some_and(|h| h.contains("heroctl repair") && !h.contains("init"))
        );
    }

    #[test]
    fn an_empty_key_file_is_corrupt_with_a_hint_naming_it() {
        let err = anyhow::Error::new(hero_sync::SyncError::from(
            hero_sync::identity::KeyError::Empty {
                path: "/r.hero.key".into(),
            },
        ));
        let e = CommandError::from(err);
        assert_eq!(e.kind, Kind::Corrupt);
        assert!(e.hint.is_some_and(|h| h.contains("delete /r.hero.key")));
    }

    #[test]
    fn a_bare_key_error_is_corrupt_not_internal() {
        let err = anyhow::Error::new(hero_sync::identity::KeyError::Invalid {
            path: "/r.hero.key".into(),
        })
        .context("loading the node key");
        let e = CommandError::from(err);
        assert_eq!(e.kind, Kind::Corrupt);
        assert!(e.hint.is_some_and(|h| h.contains("restore /r.hero.key")));
    }

    #[test]
    fn a_path_the_store_refuses_is_a_usage_error() {
        let err = hero_store::RepoPath::parse("a//b").map_err(anyhow::Error::new);
        let Err(err) = err else {
            panic!("a//b parsed");
        };
        assert_eq!(CommandError::from(err).kind, Kind::Usage);
    }

    #[test]
    fn membership_errors_wrapping_store_errors_classify_by_the_store_error() {
        let err = anyhow::Error::new(hero_sync::SyncError::from(
            hero_sync::membership::MembershipError::Store(hero_store::Error::RefMoved {
                name: "hero/membership".into(),
                expected: None,
                found: None,
            }),
        ));
        assert_eq!(CommandError::from(err).kind, Kind::Refused);
    }

    #[test]
    fn sync_errors_wrapping_store_errors_classify_by_the_store_error() {
        let err = anyhow::Error::new(hero_sync::SyncError::Store(
            hero_store::Error::UnknownRevision("x".into()),
        ));
        assert_eq!(CommandError::from(err).kind, Kind::NotFound);
        let err = anyhow::Error::new(hero_sync::SyncError::Unreachable {
            peer: "p".into(),
            reason: "timed out".into(),
        });
        assert_eq!(CommandError::from(err).kind, Kind::Network);
    }
}
