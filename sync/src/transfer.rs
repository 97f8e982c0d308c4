//! The two roles of an object transfer, independent of the network.
//!
//! The sender finds what the receiver lacks and streams it as a pack: newest content first,
//! every object after what it links to, then the commits oldest first. Objects stored as
//! deltas against objects the receiver has or already received travel as those stored deltas;
//! small objects travel raw inside one zstd stream, so commits and trees compress against each
//! other; large ones travel on their own. No object ids are sent: the receiver hashes what it
//! gets, checks every link, and only keeps objects reachable from what it asked for.
//!
//! The receiver stores what arrives in transactions of up to 32 MiB, so an interrupted transfer
//! keeps what arrived; the next one asks for an inventory first and skips those objects.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hero_store::{
    EntryKind, IdMap, IdSet, Incoming, ObjType, ObjectId, Prepared, Repo, StoredForm, Tree,
    TreeEntry, View, apply_delta_frame, delta_frame, entry_link_type, object_links,
};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::{Result, SyncError};
use crate::session::Ask;
use crate::wire::{
    Dec, Enc, INVENTORY_BATCH, MAX_FRAME, Wire, form, kind, pack_start, type_code, type_of,
    wants_flag,
};

/// Most haves a receiver sends (heads plus spaced ancestors).
pub const MAX_HAVES: usize = 2048;

/// Commits a sender walks down from the wants before it also walks the receiver's history.
const SHORT_WALK: usize = 256;

/// Ancestors of the receiver's haves a sender walks at most.
const EXCLUDE_WALK: usize = 20_000;

/// First-parent commits a receiver walks to sample its haves.
const HAVES_WALK: usize = 1024;
/// Most candidate objects one transfer may list.
pub const MAX_INVENTORY: usize = 20_000_000;
/// A receiver stores what arrived once this many bytes are pending. Large enough that most
/// transfers of history are one transaction written in key order (dense pages, no compaction
/// needed), small enough that an interrupted transfer of bulk data keeps most of what came.
pub const STORE_BATCH_BYTES: usize = 32 << 20;
/// A sender reads and encodes this many bytes of objects between network writes.
const SEND_GROUP_BYTES: usize = 512 << 10;
/// Most objects a receiver makes room for up front.
const RESERVE_MAX: usize = 1 << 16;
/// Objects a sender lists at a time once it has started sending.
const LIST_STEP: usize = 2048;
/// Raw bytes of small objects gathered before the sender cuts a compressed PACK message.
const PACK_RAW: usize = 256 << 10;
/// Objects with at least this many bytes travel outside the compressed stream.
const BULK: usize = 16 << 10;
/// Largest decoded content of one compressed PACK message a receiver accepts.
const MAX_PACK_DECODED: usize = 8 << 20;
/// Window of the compressed stream (16 MiB, the most a receiver accepts): objects compress
/// against all that came shortly before them.
const PACK_WINDOW_LOG: u32 = MAX_WINDOW_LOG;
/// Largest window a receiver decodes with.
const MAX_WINDOW_LOG: u32 = 24;
/// Raw bytes of recently received objects a receiver keeps for deltas against them.
const WINDOW_BYTES: usize = 64 << 20;
/// Transfers of at most this many objects are compressed at a higher level. It is also how
/// much the sender lists before it starts sending (listing 20,000 took ~60 ms on 10,000
/// commits, all of it waited for).
const SMALL_TRANSFER: usize = 4096;
/// Largest raw object sent through the compressed stream (a small file or a chunk is at most
/// this), well within what one message may decode to.
const RAW_IN_STREAM_MAX: usize = 1 << 20;
/// Largest object the sender makes a new delta for.
const FDELTA_MAX: usize = 1 << 20;
/// Setting a receiver keeps while a transfer has stored part of what it will get.
const INCOMPLETE: &str = "sync/incomplete";
/// Longest chain of tags pointing at tags that is followed.
const MAX_TAG_CHAIN: usize = 16;
/// Have-commits whose trees are used to prune what is listed when no edge is found.
const PRUNE_COMMITS: usize = 4;
/// Most edge commits whose trees are used to prune what is listed.
const PRUNE_EDGES: usize = 256;

/// What a transfer is doing, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Finding what is missing.
    Negotiating,
    /// Moving objects.
    Transferring,
    /// Moving branches.
    UpdatingRefs,
}

/// Progress of a transfer.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// What is happening.
    pub phase: Phase,
    /// Objects moved so far.
    pub objects: u64,
    /// Objects to move in all (once known).
    pub objects_total: u64,
    /// Bytes on the wire so far.
    pub bytes: u64,
}

/// A progress callback.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Counts of one transfer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferStats {
    /// Objects moved.
    pub objects: u64,
    /// Objects listed as candidates.
    pub candidates: u64,
    /// Commits moved.
    pub commits: u64,
    /// Bytes of object data on the wire (after compression).
    pub object_bytes: u64,
    /// Objects sent as deltas.
    pub deltas: u64,
    /// Transactions the receiver stored objects in.
    pub transactions: u64,
}

/// Runs blocking store work without stalling the async runtime.
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

#[doc(hidden)]
pub mod fuzzing;
mod pack;
mod plan;
mod receive;
mod send;

pub use plan::{haves_for, haves_of};
pub(crate) use receive::receive_objects;
pub(crate) use send::send_objects;
