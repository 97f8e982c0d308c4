//! Raw protocol access for tests that play a misbehaving peer. Not a stable API.

use hero_store::{ObjType, ObjectId};
use iroh::SecretKey;

use crate::error::Result;
use crate::net::{Client, NetConfig};
use crate::session::{Intent, hello};
use crate::ticket::Ticket;
use crate::wire::{Enc, kind, type_code};

pub mod attacker;

pub use crate::wire::kind as kinds;

/// A connection that sends whatever it is told to.
pub struct RawPeer {
    client: Client,
}

impl std::fmt::Debug for RawPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawPeer")
    }
}

impl RawPeer {
    /// Connects to `ticket` as `key`.
    pub async fn connect(key: SecretKey, cfg: &NetConfig, ticket: &Ticket) -> Result<Self> {
        Ok(RawPeer {
            client: Client::connect(key, cfg, ticket).await?,
        })
    }

    /// Sends a hello announcing a push of repository `repo_id`.
    pub async fn hello_push(&mut self, repo_id: &ObjectId) -> Result<()> {
        self.client
            .wire
            .send(&hello(
                repo_id,
                Intent::Push,
                false,
                None,
                &[0; 32],
                &[0; 32],
            ))
            .await?;
        self.client.wire.flush().await
    }

    /// Sends a pull hello speaking protocol `version`: today's hello (about every ref, with a
    /// digest that matches nothing) for this build's version, else the fields every version
    /// starts with.
    pub async fn hello_pull_version(&mut self, repo_id: &ObjectId, version: u32) -> Result<()> {
        let m = if version == crate::wire::VERSION {
            hello(repo_id, Intent::Pull, false, None, &[0; 32], &[0; 32])
        } else {
            let mut m = Enc::new(kind::HELLO);
            m.0.extend_from_slice(crate::wire::MAGIC);
            m.u32(version).id(repo_id).u8(1).u8(0);
            m
        };
        self.client.wire.send(&m).await?;
        self.client.wire.flush().await
    }

    /// Sends one frame of `kind` with `body`.
    pub async fn send(&mut self, kind: u8, body: &[u8]) -> Result<()> {
        let mut m = Enc::new(kind);
        m.0.extend_from_slice(body);
        self.client.wire.send(&m).await?;
        self.client.wire.flush().await
    }

    /// Sends raw bytes, unframed.
    pub async fn send_garbage(&mut self, bytes: &[u8]) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        let w = self.client.wire.writer();
        w.write_all(bytes)
            .await
            .map_err(|e| crate::SyncError::Connection(e.to_string()))?;
        w.flush()
            .await
            .map_err(|e| crate::SyncError::Connection(e.to_string()))
    }

    /// Ends the sending side (the peer reads the end of the stream).
    pub fn finish(&mut self) {
        let _ = self.client.wire.writer().finish();
    }

    /// Receives one frame (an ERROR frame becomes an error).
    pub async fn recv(&mut self) -> Result<(u8, Vec<u8>)> {
        self.client.wire.recv().await
    }

    /// Closes the connection.
    pub async fn close(self) {
        self.client.close().await
    }
}

/// A PUSH body announcing one branch (and no tags).
pub fn push_body(branch: &str, head: &ObjectId) -> Vec<u8> {
    let mut m = Enc::default();
    m.u32(1).bytes(branch.as_bytes()).id(head).u32(0);
    m.0
}

/// An INVENTORY body listing objects.
pub fn inventory_body(objects: &[(ObjType, ObjectId)]) -> Vec<u8> {
    let mut m = Enc::default();
    m.u32(objects.len() as u32);
    for (t, id) in objects {
        m.u8(type_code(*t)).id(id);
    }
    m.0
}

/// An INVENTORY_END body.
pub fn inventory_end_body(count: usize) -> Vec<u8> {
    let mut m = Enc::default();
    m.u32(count as u32);
    m.0
}

/// A PACK_START body announcing `count` objects.
pub fn pack_start_body(count: u64) -> Vec<u8> {
    let mut m = Enc::default();
    m.varint(count);
    m.0
}

/// A PACK_START body announcing that `count` objects are listed so far and that the whole
/// count follows in a PACK_COUNT message.
pub fn pack_start_more_body(count: u64) -> Vec<u8> {
    let mut m = Enc::default();
    m.varint(count).u8(crate::wire::pack_start::MORE);
    m.0
}

/// An uncompressed PACK body carrying `raw` as one object of type `ty`.
pub fn pack_body(ty: ObjType, raw: &[u8]) -> Vec<u8> {
    let mut m = Enc::default();
    m.u8(0)
        .u8(type_code(ty))
        .u8(crate::wire::form::RAW)
        .varint(raw.len() as u64)
        .varint(raw.len() as u64);
    m.0.extend_from_slice(raw);
    m.0
}

/// The kind byte of the messages a test may expect.
pub const WANTS: u8 = kind::WANTS;
