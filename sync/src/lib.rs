//! # hero-sync
//!
//! Peer-to-peer replication of a hero store over iroh: node keys as identities, a custom ALPN
//! protocol that negotiates and sends what the other side lacks, and deterministic merges so
//! that peers converge.
//!
//! # Identity and access
//!
//! Each repository has an ed25519 key in `<repository file>.key` (mode 0600); its public half
//! is the node (endpoint) id ([`endpoint_id`]) that commits record ([`peer_header`]). Who may
//! do what is the repository's [`membership`] (ADRs 0017, 0018; [`gate`]): the server decides
//! from the connecting node id (authenticated by iroh's TLS) before it says anything; a
//! non-member may only present an [`invite`]. Every decision goes to the [`audit`] log. A
//! repository never upgraded to membership falls back to its allow list ([`access`]).
//!
//! # The protocol ([`wire::ALPN`], one bidirectional stream, length-prefixed frames)
//!
//! 0. Only a client that is not a member yet: `JOIN` (invitation secret, name); server →
//!    `JOINED` (role) or `ERROR` (invitation refused). The hello follows on the same stream.
//! 1. client → `HELLO` (magic, version, repository id, intent pull/push, empty?, the branches
//!    the session is about: none means every ref, then a digest of its refs, which when equal
//!    to the server's ends the session after a welcome that lists nothing);
//!    server → `ERROR` (not allowed, incompatible version, repository mismatch, read-only)
//!    or `WELCOME` (version, repository id, access, branches, tags, default branch, pinned
//!    membership genesis); with named branches it advertises only those and no tags, and the
//!    receiver's haves follow only their history (protocol 5, ADRs 0018 and 0019).
//! 2. The receiver → `WANTS`: the advertised ids it lacks, a bitmap of the advertised refs it
//!    has, and — only when it lacks something — haves (its other heads plus first-parent
//!    ancestors of the branches it receives, [`transfer::haves_of`]) (ADR 0011).
//! 3. The sender finds the commits reachable from the wants but not from what the receiver
//!    has, and lists their objects newest commit first, each after what it links to, leaving
//!    out everything the trees of the edge commits (parents the receiver has) reach; then the
//!    commits, oldest first.
//! 4. Only when the receiver's last transfer was interrupted (setting `sync/incomplete`) the
//!    sender first sends that list as `INVENTORY` and the receiver answers `NEED`, a bitmap of
//!    what it lacks: objects are stored children first, so one present has its closure.
//! 5. `PACK_START`, `PACK`s, `END`: the objects as a pack (ADR 0007, 0009) — stored deltas as
//!    they are, small objects raw through one zstd stream, large ones as their stored frames,
//!    new deltas against the receiver's version of a path. A large transfer starts after 4,097
//!    objects are listed; the rest is listed as it is sent and the whole count follows in
//!    `PACK_COUNT`. No ids travel: the receiver hashes and checks each object as it arrives
//!    (`View::prepare_received`), keeps it in the form it came in, sorts each transaction's
//!    records by id and writes them in that order (`Batch::put_prepared_sorted`), skips objects
//!    it already has, and refuses new objects nothing asked for.
//! 6. The receiver → `SIG_WANT`: the commits new to it; the sender → `SIGS`: their signatures
//!    ([`commitsig`], its own signed first). The receiver checks the membership history and
//!    every new commit (ADR 0018); a push that fails is answered `ERROR` (push refused), a
//!    pull that fails takes no branch.
//! 7. Then branches move: created, fast-forwarded, or merged with [`hero_store::merge::merge`]
//!    (deterministic: both peers make the same merge commit); tags are created when missing.
//!    A push is the same exchange the other way, and the server answers `PUSH_RESULT`.
//!
//! Frames are capped ([`wire::MAX_FRAME`]), every read has a deadline (the first one a short
//! one, [`session::HELLO_TIMEOUT`]), sessions per peer and in all are bounded
//! ([`net::MAX_SESSIONS_PER_PEER`], [`net::MAX_SESSIONS`], and apart for peers that are not
//! members, [`net::MAX_STRANGER_SESSIONS`]), wants are limited to what was advertised, and a
//! peer that sends anything wrong is disconnected with a log line and an audit entry; what it
//! sent is not kept. Before all of that, new connections are counted per remote address
//! before the handshake, and a stranger just refused is closed as soon as the handshake names
//! it ([`admission`]).
#![forbid(unsafe_code)]

pub mod access;
pub mod admission;
mod allow;
pub mod audit;
pub mod authority;
pub mod commitsig;
mod current;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod gate;
pub mod gossip;
pub mod identity;
pub mod invite;
pub mod membership;
pub mod net;
mod peer;
pub mod pool;
pub mod session;
#[doc(hidden)]
pub mod testing;
pub mod ticket;
pub mod transfer;
pub mod wire;

pub use access::Access;
pub use error::{Result, SyncError};
pub use identity::{
    endpoint_id, key_path, load_or_create_key, parse_endpoint_id, peer_header, peer_header_for,
};
pub use iroh::{EndpointId, SecretKey};
pub use net::{NetConfig, NetMode, Server, pull, push, serve, serve_announced};
pub use pool::Pool;
pub use session::{
    BranchUpdate, ConnectionUse, SyncReport, TagOutcome, UpdateKind, integrate, integrate_tag,
};
pub use ticket::Ticket;
pub use transfer::{Phase, Progress, ProgressFn, TransferStats};
