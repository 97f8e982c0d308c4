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

mod base;
#[doc(hidden)]
pub mod fuzzing;
mod pack;
mod plan;
mod receive;
mod send;

pub(crate) use base::blocking;
pub use base::{
    MAX_HAVES, MAX_INVENTORY, Phase, Progress, ProgressFn, STORE_BATCH_BYTES, TransferStats,
};
pub(crate) use plan::{Ask, advertised};
pub use plan::{haves_for, haves_of};
pub(crate) use receive::{receive_objects, resuming, wants_body};
pub(crate) use send::send_objects;
