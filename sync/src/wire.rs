//! Framing and message encoding of the sync protocol.
//!
//! Every message is one frame: a 4-byte big-endian length, then the body (one kind byte and
//! the fields). A frame over [`MAX_FRAME`] bytes is refused before it is read, and every read
//! has a deadline, so a peer can neither exhaust memory nor hold a connection forever.

use std::time::Duration;

use hero_store::codec::{ByteReader, ReadError, put_varint};
use hero_store::{ObjType, ObjectId};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{Result, SyncError};

/// The protocol's ALPN.
pub const ALPN: &[u8] = b"hero-store/sync/1";
/// The protocol version this build speaks (8: nothing new on the wire, but the merges a
/// receiver recomputes follow the rules of ADR 0040, which peers of version 7 would refuse;
/// 7: the hello carries only the fields it uses and may
/// carry the wants of a pull, signatures travel unasked after the objects, a push of nothing
/// ends at its result, ADR 0036; 6: the welcome carries the server's refs whole, as a delta
/// against the client's, or not at all, ADR 0031; 5: the hello may name the branches the
/// session is about, ADR 0019; invitations, the pinned membership genesis and commit
/// signatures, ADR 0018).
pub const VERSION: u32 = 8;
/// The first bytes of a hello.
pub const MAGIC: &[u8; 4] = b"HERO";
/// The largest frame accepted: the largest object plus room for its header.
pub const MAX_FRAME: usize = (64 << 20) + 4096;
/// How long one frame may take to arrive.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(120);
/// A message's body is read this much at a time, its buffer growing with what arrived.
const RECV_STEP: usize = 1 << 20;
/// Ids per inventory frame.
pub const INVENTORY_BATCH: usize = 16 * 1024;

/// Message kinds.
pub mod kind {
    /// Client → server: version, repository, intent.
    pub const HELLO: u8 = 1;
    /// Server → client: accepted; repository id, access, branches.
    pub const WELCOME: u8 = 2;
    /// Either way: an error, then the connection closes.
    pub const ERROR: u8 = 3;
    /// Receiver → sender: heads it wants, commits it has.
    pub const WANTS: u8 = 4;
    /// Sender → receiver: part of the list of candidate objects.
    pub const INVENTORY: u8 = 5;
    /// Sender → receiver: the list is complete.
    pub const INVENTORY_END: u8 = 6;
    /// Receiver → sender: bitmap of the candidates it lacks.
    pub const NEED: u8 = 7;
    /// Sender → receiver: how many objects follow, in PACK messages (see [`super::pack_start`]).
    pub const PACK_START: u8 = 8;
    /// Sender → receiver: all objects sent.
    pub const END: u8 = 9;
    /// Pusher → server: the branches pushed.
    pub const PUSH: u8 = 10;
    /// Server → pusher: what became of each branch.
    pub const PUSH_RESULT: u8 = 11;
    /// Sender → receiver: a run of objects (see `transfer.rs`).
    pub const PACK: u8 = 12;
    /// Sender → receiver, between PACKs: the number of objects in all, when PACK_START
    /// could only say how many were listed so far.
    pub const PACK_COUNT: u8 = 13;
    /// Client (not yet a member) → server, before its hello: an invitation's secret and the
    /// name it asks to be known by.
    pub const JOIN: u8 = 14;
    /// Server → client: the invitation was accepted; the role granted. The hello follows.
    pub const JOINED: u8 = 15;
    /// Receiver → sender, after the objects: the new commits whose signatures it wants.
    pub const SIG_WANT: u8 = 16;
    /// Sender → receiver: the signatures it has of those commits (ADR 0018).
    pub const SIGS: u8 = 17;
    /// Sender → receiver, right after END, unasked: the commits the transfer sent, then the
    /// signatures the sender has of them (as in SIGS).
    pub const SIGS_AHEAD: u8 = 18;
}

/// Error codes of an ERROR message.
pub mod code {
    /// The peer is not on the allow list.
    pub const NOT_ALLOWED: u8 = 1;
    /// The versions differ.
    pub const INCOMPATIBLE: u8 = 2;
    /// The repositories differ.
    pub const REPO_MISMATCH: u8 = 3;
    /// Pushing is not allowed.
    pub const READ_ONLY: u8 = 4;
    /// The peer broke the protocol.
    pub const PROTOCOL: u8 = 5;
    /// Something failed on the sending side.
    pub const INTERNAL: u8 = 6;
    /// An invitation was refused (unknown, used, expired).
    pub const INVITE_REFUSED: u8 = 7;
    /// A push was refused whole (a commit outside the pusher's scopes, a refused membership
    /// change, a reserved branch).
    pub const PUSH_REFUSED: u8 = 8;
}

/// How an object travels inside a PACK message.
pub mod form {
    /// The raw bytes; the receiver compresses them as it stores them.
    pub const RAW: u8 = 0;
    /// The raw bytes, kept uncompressed (the sender found them incompressible).
    pub const PLAIN: u8 = 1;
    /// A whole zstd frame, kept as it is.
    pub const ZSTD: u8 = 2;
    /// The sender's stored delta against an older or newer version, kept as it is.
    pub const DELTA: u8 = 3;
    /// A delta against an object the receiver has, made for the transfer; the receiver stores
    /// the object whole and the base as a delta against it.
    pub const FDELTA: u8 = 4;
}

/// Which optional fields a HELLO carries, in this order after its names.
pub mod hello_field {
    /// The client's refs digest (32 bytes).
    pub const DIGEST: u8 = 1;
    /// The agreed digest: the server's refs as the client last received them (32 bytes).
    pub const AGREED: u8 = 2;
    /// A pull's wants, sent before the welcome: the head the client expects of each named
    /// branch (32 bytes each, in the order named), then a WANTS body as `bytes`.
    pub const WANTS: u8 = 4;
    /// Every bit defined.
    pub const ALL: u8 = DIGEST | AGREED | WANTS;
}

/// Which optional parts a WELCOME has.
pub mod welcome_field {
    /// The server's repository id follows the flags (else it is the hello's).
    pub const REPO: u8 = 1;
    /// The server's pinned membership genesis ends the message.
    pub const GENESIS: u8 = 2;
    /// The server took the hello's wants: the objects follow the welcome.
    pub const TAKEN: u8 = 4;
    /// Every bit defined.
    pub const ALL: u8 = REPO | GENESIS | TAKEN;
}

/// WANTS flags.
pub mod wants_flag {
    /// The receiver may hold objects of an interrupted transfer: list candidates first.
    pub const INVENTORY: u8 = 1;
}

/// Flags of a PACK_START message, after its count.
pub mod pack_start {
    /// The count is the objects listed so far: the sender started before its listing ended,
    /// and a PACK_COUNT message with the whole count comes before END.
    pub const MORE: u8 = 1;
}

/// The wire code of an object type (the store's record code).
pub fn type_code(t: ObjType) -> u8 {
    t.code()
}

/// The object type of a wire code.
pub fn type_of(c: u8) -> Result<ObjType> {
    ObjType::from_code(c).ok_or_else(|| SyncError::protocol(format!("unknown object type {c}")))
}

/// A message body being built.
#[derive(Debug, Default)]
pub struct Enc(pub Vec<u8>);

impl Enc {
    /// A message of this kind.
    pub fn new(kind: u8) -> Self {
        Enc(vec![kind])
    }
    /// A byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    /// A u32.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// An id.
    pub fn id(&mut self, id: &ObjectId) -> &mut Self {
        self.0.extend_from_slice(id.as_bytes());
        self
    }
    /// Length-prefixed bytes.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(b);
        self
    }
    /// An unsigned LEB128 varint.
    pub fn varint(&mut self, v: u64) -> &mut Self {
        put_varint(&mut self.0, v);
        self
    }
    /// A list of ids.
    pub fn ids(&mut self, ids: &[ObjectId]) -> &mut Self {
        self.u32(u32::try_from(ids.len()).unwrap_or(u32::MAX));
        for id in ids {
            self.id(id);
        }
        self
    }
}

/// A message body being read; every read is bounds-checked (the store's [`ByteReader`], with
/// the protocol's errors).
#[derive(Debug)]
pub struct Dec<'a> {
    r: ByteReader<'a>,
}

fn malformed(e: ReadError) -> SyncError {
    match e {
        ReadError::Truncated => SyncError::protocol("message is truncated"),
        ReadError::VarintTooLong => SyncError::protocol("varint too long"),
    }
}

impl<'a> Dec<'a> {
    /// Reads `b`.
    pub fn new(b: &'a [u8]) -> Self {
        Dec {
            r: ByteReader::new(b),
        }
    }
    /// A byte.
    pub fn u8(&mut self) -> Result<u8> {
        self.r.u8().map_err(malformed)
    }
    /// A u32.
    pub fn u32(&mut self) -> Result<u32> {
        self.r.u32_be().map_err(malformed)
    }
    /// An id.
    pub fn id(&mut self) -> Result<ObjectId> {
        self.r.id().map_err(malformed)
    }
    /// An unsigned LEB128 varint of at most 64 bits.
    pub fn varint(&mut self) -> Result<u64> {
        self.r.varint().map_err(malformed)
    }
    /// `n` bytes.
    pub fn raw(&mut self, n: usize) -> Result<&'a [u8]> {
        self.r.take(n).map_err(malformed)
    }
    /// Length-prefixed bytes.
    pub fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.raw(n)
    }
    /// Length-prefixed UTF-8.
    pub fn string(&mut self) -> Result<String> {
        String::from_utf8(self.bytes()?.to_vec())
            .map_err(|_| SyncError::protocol("a name is not UTF-8"))
    }
    /// A list of ids.
    pub fn ids(&mut self) -> Result<Vec<ObjectId>> {
        let n = self.u32()? as usize;
        if n > self.r.remaining() / 32 {
            return Err(SyncError::protocol("id list is truncated"));
        }
        (0..n).map(|_| self.id()).collect()
    }
    /// The rest.
    pub fn rest(&mut self) -> &'a [u8] {
        self.r.rest()
    }
    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.r.is_empty()
    }
}

/// A framed, counted, bounded connection.
#[derive(Debug)]
pub struct Wire<R, W> {
    r: R,
    w: W,
    /// Bytes read so far.
    pub bytes_in: u64,
    /// Bytes written so far.
    pub bytes_out: u64,
    /// Round trips so far: the times this side waited for a message after sending one.
    pub round_trips: u64,
    /// Something was sent since the last message read.
    spoke: bool,
}

impl<R: AsyncRead + Unpin + Send, W: AsyncWrite + Unpin + Send> Wire<R, W> {
    /// Wraps the two halves of a stream.
    pub fn new(r: R, w: W) -> Self {
        Wire {
            r,
            w,
            bytes_in: 0,
            bytes_out: 0,
            round_trips: 0,
            spoke: false,
        }
    }

    /// Sends one message.
    pub async fn send(&mut self, m: &Enc) -> Result<()> {
        let len = u32::try_from(m.0.len())
            .map_err(|_| SyncError::protocol("message too large to send"))?;
        let mut buf = Vec::with_capacity(4 + m.0.len());
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(&m.0);
        self.w
            .write_all(&buf)
            .await
            .map_err(|e| SyncError::Connection(e.to_string()))?;
        self.bytes_out += buf.len() as u64;
        self.spoke = true;
        Ok(())
    }

    /// Flushes what was sent.
    pub async fn flush(&mut self) -> Result<()> {
        self.w
            .flush()
            .await
            .map_err(|e| SyncError::Connection(e.to_string()))
    }

    /// Receives one message: its kind and body. An ERROR message becomes an error.
    pub async fn recv(&mut self) -> Result<(u8, Vec<u8>)> {
        let (k, body) = self.recv_any().await?;
        if k == kind::ERROR {
            let mut d = Dec::new(&body);
            let c = d.u8()?;
            let msg = d.string()?;
            return Err(remote_error(c, msg));
        }
        Ok((k, body))
    }

    /// Receives one message, errors included.
    pub async fn recv_any(&mut self) -> Result<(u8, Vec<u8>)> {
        tokio::time::timeout(FRAME_TIMEOUT, self.recv_inner())
            .await
            .map_err(|_| SyncError::Connection("the peer stopped answering".to_owned()))?
    }

    /// Receives one message of at most `max` bytes, errors included (what a peer that is not
    /// a member may send).
    pub async fn recv_small(&mut self, max: usize) -> Result<(u8, Vec<u8>)> {
        tokio::time::timeout(FRAME_TIMEOUT, self.recv_limited(max))
            .await
            .map_err(|_| SyncError::Connection("the peer stopped answering".to_owned()))?
    }

    async fn recv_inner(&mut self) -> Result<(u8, Vec<u8>)> {
        self.recv_limited(MAX_FRAME).await
    }

    async fn recv_limited(&mut self, max: usize) -> Result<(u8, Vec<u8>)> {
        if std::mem::take(&mut self.spoke) {
            self.round_trips += 1;
        }
        let mut len = [0u8; 4];
        self.r.read_exact(&mut len).await.map_err(read_err)?;
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 {
            return Err(SyncError::protocol("empty message"));
        }
        if len > max {
            return Err(SyncError::protocol(format!(
                "message of {len} bytes is over the limit of {max}"
            )));
        }
        let mut k = [0u8; 1];
        self.r.read_exact(&mut k).await.map_err(read_err)?;
        // The body grows as its bytes arrive: a peer that claims a large message and sends
        // little of it costs memory for what it sent, not for what it claimed.
        let rest = len - 1;
        let mut body = Vec::with_capacity(rest.min(RECV_STEP));
        while body.len() < rest {
            let start = body.len();
            body.resize(start + (rest - start).min(RECV_STEP), 0);
            self.r
                .read_exact(&mut body[start..])
                .await
                .map_err(read_err)?;
        }
        self.bytes_in += 4 + len as u64;
        Ok((k[0], body))
    }

    /// Receives a message that must be of kind `want`.
    pub async fn expect(&mut self, want: u8) -> Result<Vec<u8>> {
        let (k, body) = self.recv().await?;
        if k != want {
            return Err(SyncError::protocol(format!(
                "expected message {want}, got {k}"
            )));
        }
        Ok(body)
    }

    /// Sends an error message (best effort).
    pub async fn send_error(&mut self, c: u8, msg: &str) {
        let mut m = Enc::new(kind::ERROR);
        m.u8(c).bytes(msg.as_bytes());
        let _ = self.send(&m).await;
        let _ = self.flush().await;
    }

    /// The write half (to finish it).
    pub fn writer(&mut self) -> &mut W {
        &mut self.w
    }
}

fn read_err(e: std::io::Error) -> SyncError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        SyncError::Connection("the stream ended in the middle of the transfer".to_owned())
    } else {
        SyncError::Connection(e.to_string())
    }
}

fn remote_error(c: u8, msg: String) -> SyncError {
    match c {
        code::PROTOCOL => SyncError::Remote(format!("it says we broke the protocol: {msg}")),
        _ => SyncError::Remote(msg),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// A message larger than one read step arrives whole, kind and body apart.
    #[test]
    fn a_message_larger_than_a_read_step_arrives_whole() {
        runtime().block_on(async {
            let (a, b) = tokio::io::duplex(64 << 10);
            let (ar, aw) = tokio::io::split(a);
            let (br, bw) = tokio::io::split(b);
            let mut tx = Wire::new(ar, aw);
            let mut rx = Wire::new(br, bw);
            let body: Vec<u8> = (0..RECV_STEP * 2 + 123).map(|i| (i % 251) as u8).collect();
            let mut m = Enc::new(kind::PACK);
            m.0.extend_from_slice(&body);
            let send = async {
                tx.send(&m).await.unwrap();
                tx.flush().await.unwrap();
            };
            let (_, got) = tokio::join!(send, rx.recv());
            let (k, got) = got.unwrap();
            assert_eq!(k, kind::PACK);
            assert_eq!(got, body);
            assert_eq!(rx.bytes_in, 4 + 1 + body.len() as u64);
        });
    }

    /// A peer that claims the largest message and sends a few bytes of it, then stops, gets an
    /// error, not a wait for bytes that never come nor a buffer of the size it claimed.
    #[test]
    fn a_claimed_length_the_peer_does_not_send_is_an_error() {
        runtime().block_on(async {
            let mut claim = (MAX_FRAME as u32).to_be_bytes().to_vec();
            claim.extend_from_slice(&[kind::PACK, 1, 2, 3]);
            let mut rx = Wire::new(&claim[..], tokio::io::sink());
            assert!(rx.recv().await.is_err());
            // Over the limit: refused before any body is read.
            let over = ((MAX_FRAME + 1) as u32).to_be_bytes();
            let mut rx = Wire::new(&over[..], tokio::io::sink());
            let e = rx.recv().await.unwrap_err();
            assert!(e.to_string().contains("over the limit"), "{e}");
        });
    }
}
