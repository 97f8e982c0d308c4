//! Membership changes on the wire and on disk: the operation record, the automerge change that
//! carries it, and the signed envelope around both (format in ADR 0017).
//!
//! ```text
//! envelope := "hmb\x01" (magic) | version u8 = 1 | author [32] | signature [64]
//!           | record_len u16 BE | record | change_len u32 BE | change
//! record   := version u8 = 1 | kind u8 | target [32] | fields of the kind
//! ```
//!
//! The signature is ed25519 by `author` over [`SIGNING_DOMAIN`] followed by the change bytes.
//! The change is an uncompressed automerge change chunk whose actor is the author and whose
//! only operation puts the record (bytes) at key `<author hex>/<seq>` of the root map. Untrusted
//! change bytes are only parsed by automerge's chunk parser; they are then rebuilt from the
//! record and the parsed header and must come out byte for byte the same, so nothing else can
//! hide in them and automerge's op decoder never sees untrusted input.

use std::num::NonZeroU64;

use automerge::{ActorId, Change, ChangeHash, ExpandedChange, ScalarValue, legacy};
use hero_store::codec::ByteReader;
use iroh::{EndpointId, SecretKey, Signature};

use super::glob::{ScopeError, check_scope};

/// First bytes of an envelope.
pub const MAGIC: &[u8; 4] = b"hmb\x01";
/// The envelope version this code writes and reads.
pub const VERSION: u8 = 1;
/// What the signature covers before the change bytes.
pub const SIGNING_DOMAIN: &[u8] = b"hero-store membership change v1\0";
/// The largest change accepted, in bytes.
pub const MAX_CHANGE: usize = 16 << 10;
/// The largest record accepted, in bytes.
pub const MAX_RECORD: usize = 12 << 10;
/// The largest envelope accepted, in bytes.
pub const MAX_ENVELOPE: usize = 4 + 1 + 32 + 64 + 2 + MAX_RECORD + 4 + MAX_CHANGE;
/// The most dependencies a change may have.
pub const MAX_DEPS: usize = 256;
/// The longest display name, in bytes.
pub const MAX_NAME: usize = 256;
/// The most scopes a writer may have.
pub const MAX_SCOPES: usize = 32;

const RECORD_VERSION: u8 = 1;
const HEADER: usize = 4 + 1 + 32 + 64;
/// Automerge's chunk type of an uncompressed change (byte 8 of the chunk).
const CHUNK_CHANGE: u8 = 1;

/// What a member may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Pull only.
    Reader,
    /// Pull and push, within its scopes when it has any.
    Writer,
    /// Pull and push everywhere, and change the membership.
    Owner,
}

impl Role {
    fn code(self) -> u8 {
        match self {
            Role::Owner => 1,
            Role::Writer => 2,
            Role::Reader => 3,
        }
    }

    fn from_code(c: u8) -> Option<Role> {
        match c {
            1 => Some(Role::Owner),
            2 => Some(Role::Writer),
            3 => Some(Role::Reader),
            _ => None,
        }
    }

    /// The role's name: `owner`, `writer` or `reader`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Writer => "writer",
            Role::Reader => "reader",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One membership operation: what a change does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Adds a member (a node that is not one at the change's causal point).
    Add {
        /// The new member.
        target: EndpointId,
        /// Its display name.
        name: String,
        /// Its role.
        role: Role,
        /// Its path scopes (writers only; empty: everywhere).
        scopes: Vec<String>,
    },
    /// Removes a member.
    Remove {
        /// The member.
        target: EndpointId,
    },
    /// Changes a member's role.
    SetRole {
        /// The member.
        target: EndpointId,
        /// The new role.
        role: Role,
    },
    /// Replaces a writer's scopes.
    SetScopes {
        /// The member.
        target: EndpointId,
        /// The new scopes (empty: everywhere).
        scopes: Vec<String>,
    },
    /// Renames a member.
    Rename {
        /// The member.
        target: EndpointId,
        /// The new display name.
        name: String,
    },
}

impl Op {
    /// The node the operation is about.
    pub fn target(&self) -> &EndpointId {
        match self {
            Op::Add { target, .. }
            | Op::Remove { target }
            | Op::SetRole { target, .. }
            | Op::SetScopes { target, .. }
            | Op::Rename { target, .. } => target,
        }
    }

    fn kind(&self) -> u8 {
        match self {
            Op::Add { .. } => 1,
            Op::Remove { .. } => 2,
            Op::SetRole { .. } => 3,
            Op::SetScopes { .. } => 4,
            Op::Rename { .. } => 5,
        }
    }

    /// Encodes the record; checks names and scopes first.
    pub fn encode(&self) -> Result<Vec<u8>, EnvelopeError> {
        self.check()?;
        let mut out = vec![RECORD_VERSION, self.kind()];
        out.extend_from_slice(self.target().as_bytes());
        match self {
            Op::Add {
                name, role, scopes, ..
            } => {
                put_str(&mut out, name);
                out.push(role.code());
                put_scopes(&mut out, scopes);
            }
            Op::Remove { .. } => {}
            Op::SetRole { role, .. } => out.push(role.code()),
            Op::SetScopes { scopes, .. } => put_scopes(&mut out, scopes),
            Op::Rename { name, .. } => put_str(&mut out, name),
        }
        Ok(out)
    }

    fn check(&self) -> Result<(), EnvelopeError> {
        let name_ok = |n: &str| n.len() <= MAX_NAME && !n.chars().any(char::is_control);
        match self {
            Op::Add { name, scopes, .. } => {
                if !name_ok(name) {
                    return Err(EnvelopeError::Record(
                        "display name too long or not printable",
                    ));
                }
                check_scopes(scopes)
            }
            Op::Rename { name, .. } if !name_ok(name) => Err(EnvelopeError::Record(
                "display name too long or not printable",
            )),
            Op::SetScopes { scopes, .. } => check_scopes(scopes),
            _ => Ok(()),
        }
    }

    /// Decodes a record (untrusted bytes).
    pub fn decode(b: &[u8]) -> Result<Op, EnvelopeError> {
        let mut r = Reader::new(b);
        if r.u8()? != RECORD_VERSION {
            return Err(EnvelopeError::Record("unknown record version"));
        }
        let kind = r.u8()?;
        let target = EndpointId::from_bytes(&r.array::<32>()?)
            .map_err(|_| EnvelopeError::Record("target is not an ed25519 public key"))?;
        let role = |r: &mut Reader<'_>| {
            Role::from_code(r.u8()?).ok_or(EnvelopeError::Record("unknown role"))
        };
        let op = match kind {
            1 => Op::Add {
                target,
                name: r.str()?,
                role: role(&mut r)?,
                scopes: r.scopes()?,
            },
            2 => Op::Remove { target },
            3 => Op::SetRole {
                target,
                role: role(&mut r)?,
            },
            4 => Op::SetScopes {
                target,
                scopes: r.scopes()?,
            },
            5 => Op::Rename {
                target,
                name: r.str()?,
            },
            _ => return Err(EnvelopeError::Record("unknown operation")),
        };
        if !r.0.is_empty() {
            return Err(EnvelopeError::Record("bytes after the record"));
        }
        op.check()?;
        Ok(op)
    }
}

fn check_scopes(scopes: &[String]) -> Result<(), EnvelopeError> {
    if scopes.len() > MAX_SCOPES {
        return Err(EnvelopeError::Record("too many scopes"));
    }
    for s in scopes {
        check_scope(s)?;
    }
    Ok(())
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Lengths are checked before encoding (names ≤ MAX_NAME, scopes ≤ MAX_SCOPE_LEN).
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_scopes(out: &mut Vec<u8>, scopes: &[String]) {
    out.push(scopes.len() as u8);
    for s in scopes {
        put_str(out, s);
    }
}

/// The store's bounds-checked reader, with the envelope's errors.
struct Reader<'a>(ByteReader<'a>);

impl<'a> Reader<'a> {
    fn new(b: &'a [u8]) -> Self {
        Reader(ByteReader::new(b))
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], EnvelopeError> {
        self.0.take(n).map_err(|_| EnvelopeError::Truncated)
    }
    fn u8(&mut self) -> Result<u8, EnvelopeError> {
        self.0.u8().map_err(|_| EnvelopeError::Truncated)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], EnvelopeError> {
        self.0.array().map_err(|_| EnvelopeError::Truncated)
    }
    fn u16(&mut self) -> Result<usize, EnvelopeError> {
        Ok(usize::from(u16::from_be_bytes(self.array::<2>()?)))
    }
    fn u32(&mut self) -> Result<usize, EnvelopeError> {
        usize::try_from(u32::from_be_bytes(self.array::<4>()?)).map_err(|_| EnvelopeError::TooLarge)
    }
    fn str(&mut self) -> Result<String, EnvelopeError> {
        let n = self.u16()?;
        String::from_utf8(self.take(n)?.to_vec())
            .map_err(|_| EnvelopeError::Record("a name or scope is not UTF-8"))
    }
    fn scopes(&mut self) -> Result<Vec<String>, EnvelopeError> {
        let n = usize::from(self.u8()?);
        if n > MAX_SCOPES {
            return Err(EnvelopeError::Record("too many scopes"));
        }
        (0..n).map(|_| self.str()).collect()
    }
}

/// Why an envelope is not a valid membership change.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// Shorter than its fields say.
    #[error("truncated envelope")]
    Truncated,
    /// Larger than [`MAX_ENVELOPE`] (or a part larger than its bound).
    #[error("envelope too large")]
    TooLarge,
    /// Not a membership envelope.
    #[error("not a membership envelope")]
    BadMagic,
    /// A version this code does not know.
    #[error("unsupported envelope version {0}")]
    UnsupportedVersion(u8),
    /// Bytes after the change.
    #[error("bytes after the change")]
    TrailingBytes,
    /// The author field is not an ed25519 public key.
    #[error("the author is not an ed25519 public key")]
    BadAuthor,
    /// The operation record is malformed.
    #[error("bad operation record: {0}")]
    Record(&'static str),
    /// A scope is not a valid glob.
    #[error(transparent)]
    Scope(#[from] ScopeError),
    /// Automerge could not parse the change.
    #[error("bad automerge change")]
    Change(#[source] automerge::LoadChangeError),
    /// The change is compressed, has other actors, other operations or another shape than
    /// the record rebuilt as a change.
    #[error("the change is not the canonical change of its record: {0}")]
    NotCanonical(&'static str),
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
}

/// A signed membership change, as bytes (what is stored and replicated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope(Vec<u8>);

impl Envelope {
    /// Wraps bytes (not checked: see [`Envelope::verify`]).
    pub fn from_bytes(bytes: Vec<u8>) -> Envelope {
        Envelope(bytes)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Checks everything that depends on the envelope alone: bounds, format, record, the
    /// change's canonical form and author, and the signature.
    pub fn verify(&self) -> Result<VerifiedChange, EnvelopeError> {
        let b = &self.0;
        if b.len() > MAX_ENVELOPE {
            return Err(EnvelopeError::TooLarge);
        }
        let mut r = Reader::new(b);
        if r.take(4)? != MAGIC {
            return Err(EnvelopeError::BadMagic);
        }
        let version = r.u8()?;
        if version != VERSION {
            return Err(EnvelopeError::UnsupportedVersion(version));
        }
        let author =
            EndpointId::from_bytes(&r.array::<32>()?).map_err(|_| EnvelopeError::BadAuthor)?;
        let signature = Signature::from_bytes(&r.array::<64>()?);
        let record_len = r.u16()?;
        if record_len > MAX_RECORD {
            return Err(EnvelopeError::TooLarge);
        }
        let record = r.take(record_len)?;
        let change_len = r.u32()?;
        if change_len > MAX_CHANGE {
            return Err(EnvelopeError::TooLarge);
        }
        let change_bytes = r.take(change_len)?;
        if !r.0.is_empty() {
            return Err(EnvelopeError::TrailingBytes);
        }
        // Signature first: nothing unsigned reaches a parser beyond our own.
        let mut msg = Vec::with_capacity(SIGNING_DOMAIN.len() + change_bytes.len());
        msg.extend_from_slice(SIGNING_DOMAIN);
        msg.extend_from_slice(change_bytes);
        author
            .verify(&msg, &signature)
            .map_err(|_| EnvelopeError::BadSignature)?;
        let op = Op::decode(record)?;
        if change_bytes.get(8) != Some(&CHUNK_CHANGE) {
            return Err(EnvelopeError::NotCanonical(
                "not an uncompressed change chunk",
            ));
        }
        let change = Change::try_from(change_bytes).map_err(EnvelopeError::Change)?;
        if change.actor_id().to_bytes() != author.as_bytes() {
            return Err(EnvelopeError::NotCanonical(
                "the change's actor is not its author",
            ));
        }
        if change.deps().len() > MAX_DEPS {
            return Err(EnvelopeError::NotCanonical("too many dependencies"));
        }
        let rebuilt = build_change(
            &author,
            change.seq(),
            change.start_op().get(),
            change.timestamp(),
            change.deps().to_vec(),
            record.to_vec(),
        )?;
        if rebuilt.raw_bytes() != change_bytes {
            return Err(EnvelopeError::NotCanonical(
                "the change holds more or other than its record",
            ));
        }
        Ok(VerifiedChange {
            hash: change.hash(),
            author,
            op,
            change,
        })
    }
}

/// An envelope whose format, record and signature are valid (its place in the membership is
/// decided by evaluation).
#[derive(Debug, Clone)]
pub struct VerifiedChange {
    /// The automerge change hash: the change's name.
    pub hash: ChangeHash,
    /// Who signed it.
    pub author: EndpointId,
    /// What it does.
    pub op: Op,
    /// The automerge change.
    pub change: Change,
}

impl VerifiedChange {
    /// The changes it depends on.
    pub fn deps(&self) -> &[ChangeHash] {
        self.change.deps()
    }

    /// The author's clock when it was made, milliseconds since the Unix epoch
    /// (informational; never used for ordering).
    pub fn time(&self) -> i64 {
        self.change.timestamp()
    }
}

/// The key of a change's record in the document's root map.
pub fn record_key(author: &EndpointId, seq: u64) -> String {
    format!("{}/{seq}", hex::encode(author.as_bytes()))
}

fn build_change(
    author: &EndpointId,
    seq: u64,
    start_op: u64,
    time: i64,
    deps: Vec<ChangeHash>,
    record: Vec<u8>,
) -> Result<Change, EnvelopeError> {
    let start_op =
        NonZeroU64::new(start_op).ok_or(EnvelopeError::NotCanonical("operation counter 0"))?;
    let op = legacy::Op {
        action: legacy::OpType::Put(ScalarValue::Bytes(record)),
        obj: legacy::ObjectId::Root,
        key: legacy::Key::Map(record_key(author, seq).into()),
        pred: legacy::SortedVec::new(),
        insert: false,
    };
    let expanded = ExpandedChange {
        operations: vec![op],
        actor_id: ActorId::from(author.as_bytes().as_slice()),
        hash: None,
        seq,
        start_op,
        time,
        message: None,
        deps,
        extra_bytes: Vec::new(),
        author: None,
    };
    Ok(Change::from(expanded))
}

/// Makes and signs a change: `op` by `key`'s node, after `deps`, as the author's `seq`-th
/// change with operation counter `start_op`, at `time_ms` (the author's clock).
pub fn sign_change(
    key: &SecretKey,
    op: &Op,
    deps: Vec<ChangeHash>,
    seq: u64,
    start_op: u64,
    time_ms: i64,
) -> Result<Envelope, EnvelopeError> {
    let author = key.public();
    let record = op.encode()?;
    if record.len() > MAX_RECORD || deps.len() > MAX_DEPS {
        return Err(EnvelopeError::TooLarge);
    }
    let mut deps = deps;
    deps.sort();
    deps.dedup();
    let change = build_change(&author, seq, start_op, time_ms, deps, record.clone())?;
    let change_bytes = change.raw_bytes();
    if change_bytes.len() > MAX_CHANGE {
        return Err(EnvelopeError::TooLarge);
    }
    let mut msg = Vec::with_capacity(SIGNING_DOMAIN.len() + change_bytes.len());
    msg.extend_from_slice(SIGNING_DOMAIN);
    msg.extend_from_slice(change_bytes);
    let signature = key.sign(&msg);
    let mut out = Vec::with_capacity(HEADER + 6 + record.len() + change_bytes.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(author.as_bytes());
    out.extend_from_slice(&signature.to_bytes());
    out.extend_from_slice(&(record.len() as u16).to_be_bytes());
    out.extend_from_slice(&record);
    out.extend_from_slice(&(change_bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(change_bytes);
    Ok(Envelope(out))
}
