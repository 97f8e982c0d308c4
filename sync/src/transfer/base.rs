//! What every part of a transfer shares: its limits, its progress reports and counts, and
//! how store work runs beside the async runtime.

use std::sync::Arc;

/// Most haves a receiver sends (heads plus spaced ancestors).
pub const MAX_HAVES: usize = 2048;

/// Commits a sender walks down from the wants before it also walks the receiver's history.
pub(super) const SHORT_WALK: usize = 256;

/// Ancestors of the receiver's haves a sender walks at most.
pub(super) const EXCLUDE_WALK: usize = 20_000;

/// First-parent commits a receiver walks to sample its haves.
pub(super) const HAVES_WALK: usize = 1024;
/// Most candidate objects one transfer may list.
pub const MAX_INVENTORY: usize = 20_000_000;
/// A receiver stores what arrived once this many bytes are pending. Large enough that most
/// transfers of history are one transaction written in key order (dense pages, no compaction
/// needed), small enough that an interrupted transfer of bulk data keeps most of what came.
pub const STORE_BATCH_BYTES: usize = 32 << 20;
/// A sender reads and encodes this many bytes of objects between network writes.
pub(super) const SEND_GROUP_BYTES: usize = 512 << 10;
/// Most objects a receiver makes room for up front.
pub(super) const RESERVE_MAX: usize = 1 << 16;
/// Objects a sender lists at a time once it has started sending.
pub(super) const LIST_STEP: usize = 2048;
/// Raw bytes of small objects gathered before the sender cuts a compressed PACK message.
pub(super) const PACK_RAW: usize = 256 << 10;
/// Objects with at least this many bytes travel outside the compressed stream.
pub(super) const BULK: usize = 16 << 10;
/// Largest decoded content of one compressed PACK message a receiver accepts.
pub(super) const MAX_PACK_DECODED: usize = 8 << 20;
/// Window of the compressed stream (16 MiB, the most a receiver accepts): objects compress
/// against all that came shortly before them.
pub(super) const PACK_WINDOW_LOG: u32 = MAX_WINDOW_LOG;
/// Largest window a receiver decodes with.
pub(super) const MAX_WINDOW_LOG: u32 = 24;
/// Window of the compressed stream of a transfer of at most [`SMALL_TRANSFER`] objects whose
/// bytes are more than one message (2 MiB): the receiver's decoder holds a buffer of the
/// window for the whole transfer, and ten daemons pulling merges from each other held two
/// 16 MiB buffers each at their peak (heaptrack, `benches/load.sh`), while the objects of such
/// a transfer are deltas that find their bases in far less.
pub(super) const NARROW_WINDOW_LOG: u32 = 21;
/// Raw bytes of recently received objects a receiver keeps for deltas against them.
pub(super) const WINDOW_BYTES: usize = 64 << 20;
/// Transfers of at most this many objects are compressed at a higher level. It is also how
/// much the sender lists before it starts sending (listing 20,000 took ~60 ms on 10,000
/// commits, all of it waited for).
pub(super) const SMALL_TRANSFER: usize = 4096;
/// Largest raw object sent through the compressed stream (a small file or a chunk is at most
/// this), well within what one message may decode to.
pub(super) const RAW_IN_STREAM_MAX: usize = 1 << 20;
/// Largest object the sender makes a new delta for.
pub(super) const FDELTA_MAX: usize = 1 << 20;
/// Setting a receiver keeps while a transfer has stored part of what it will get.
pub(super) const INCOMPLETE: &str = "sync/incomplete";
/// Longest chain of tags pointing at tags that is followed.
pub(super) const MAX_TAG_CHAIN: usize = 16;
/// Have-commits whose trees are used to prune what is listed when no edge is found.
pub(super) const PRUNE_COMMITS: usize = 4;
/// Most edge commits whose trees are used to prune what is listed.
pub(super) const PRUNE_EDGES: usize = 256;

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
