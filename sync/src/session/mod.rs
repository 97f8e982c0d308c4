//! One sync session over a framed stream: the handshake (version, repository, access), then a
//! pull (the server sends) or a push (the server receives), then branch moves.
//!
//! `handshake.rs` the hello, the welcome and invitations; `client.rs` a client's pull and
//! push; `server.rs` the server's side of both; `refs.rs` branch and tag lists on the wire and
//! the branch moves (`integrate`); `signatures.rs` commit signatures sent after a pack;
//! `report.rs` what a session did. This module only names them.

mod client;
mod handshake;
mod refs;
mod report;
mod server;
mod signatures;

pub use client::{pull, pull_announced, pull_only, push};
pub(crate) use handshake::handshake;
pub(crate) use handshake::hello;
pub use handshake::{EarlyWants, Hello, Intent, present_invitation, refs_digest};
pub use refs::{RefSet, TagOutcome, apply_delta, integrate, integrate_tag, put_delta};
pub use report::{BranchUpdate, ConnectionUse, SyncReport, UpdateKind};
pub use server::{HELLO_TIMEOUT, serve, serve_as};
