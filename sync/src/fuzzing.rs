//! The checks of the sync crate's fuzz targets (`fuzz/`), shared with the test that replays
//! their checked-in corpora on stable Rust (`cli/tests/fuzz_corpus.rs`). Each takes what a
//! peer could send (or a user paste) and panics only on a bug: a decoder that panics, reads
//! past its bounds, or returns a value that does not survive a round trip through its encoder.

use crate::invite::Invitation;
use crate::membership::{self, Envelope, Op};
use crate::ticket::Ticket;
use crate::wire::{Dec, Enc, MAX_FRAME, Wire};

pub use crate::transfer::fuzzing::pack_entries;

/// A byte stream as a peer sends it: framed messages are read until the stream breaks the
/// framing or ends; every message is within the frame limit; nothing panics.
pub fn wire_frames(data: &[u8]) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    else {
        return;
    };
    rt.block_on(async {
        let mut wire = Wire::new(data, tokio::io::sink());
        for _ in 0..1024 {
            match wire.recv().await {
                Ok((_, body)) => assert!(body.len() < MAX_FRAME),
                Err(_) => break,
            }
        }
    });
}

/// The fields of a message, read in an order the first byte chooses (two bits per field):
/// each read value encodes back to the bytes it was read from.
pub fn wire_fields(data: &[u8]) {
    let Some((&plan, body)) = data.split_first() else {
        return;
    };
    let mut d = Dec::new(body);
    let mut e = Enc(Vec::new());
    for i in 0..4 {
        let before = e.0.len();
        let ok = match (plan >> (2 * i)) & 3 {
            0 => d.varint().map(|v| {
                e.varint(v);
            }),
            1 => d.bytes().map(|b| {
                e.bytes(b);
            }),
            2 => d.ids().map(|ids| {
                e.ids(&ids);
            }),
            _ => d.string().map(|s| {
                e.bytes(s.as_bytes());
            }),
        };
        if ok.is_err() {
            e.0.truncate(before);
            break;
        }
    }
    // Varints may be read from a longer (non-minimal) form; every other field reads back.
    let mut again = Dec::new(&e.0);
    for i in 0..4 {
        if again.is_empty() {
            break;
        }
        let ok = match (plan >> (2 * i)) & 3 {
            0 => again.varint().is_ok(),
            1 => again.bytes().is_ok(),
            2 => again.ids().is_ok(),
            _ => again.string().is_ok(),
        };
        assert!(ok, "a field encoded here does not decode");
    }
    assert!(again.is_empty());
}

/// A ticket as pasted: parsed or refused; a parsed ticket prints as a ticket that parses to
/// the same.
pub fn ticket(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = s.parse::<Ticket>() {
        let again: Ticket = t
            .to_string()
            .parse()
            .unwrap_or_else(|e| panic!("a printed ticket does not parse: {e}"));
        assert_eq!(again, t);
    }
}

/// An invitation as pasted: parsed or refused; a parsed one prints as one that parses to the
/// same.
pub fn invitation(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(i) = s.parse::<Invitation>() {
        let again: Invitation = i
            .to_string()
            .parse()
            .unwrap_or_else(|e| panic!("a printed invitation does not parse: {e}"));
        assert_eq!(again, i);
    }
}

/// A membership envelope as received: verified or refused; an operation record decodes and
/// encodes back to the same operation.
pub fn envelope(data: &[u8]) {
    let _ = Envelope::from_bytes(data.to_vec()).verify();
    if let Ok(op) = Op::decode(data)
        && let Ok(again) = op.encode()
    {
        assert_eq!(Op::decode(&again).ok(), Some(op));
    }
}

/// Envelopes as received from a peer (the input cut at `0xff 0x00` pairs), evaluated into a
/// membership document: refused changes are listed, nothing panics, and evaluating the same
/// envelopes again gives the same members.
pub fn membership_doc(data: &[u8]) {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 1 < data.len() {
        if data[i] == 0xff && data[i + 1] == 0 {
            parts.push(data[start..i].to_vec());
            start = i + 2;
            i += 2;
        } else {
            i += 1;
        }
    }
    parts.push(data[start..].to_vec());
    let named: Vec<(String, Vec<u8>)> = parts
        .into_iter()
        .take(64)
        .enumerate()
        .map(|(n, p)| (format!("e{n}"), p))
        .collect();
    let (m, _) = membership::evaluate(named.clone(), None);
    let (again, _) = membership::evaluate(named, None);
    let ids = |m: &membership::Membership| {
        m.members()
            .map(|(id, _)| id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&m), ids(&again));
    let _ = m.document();
}

/// The base the refs-delta target rebuilds from: two branches and a tag.
fn delta_base() -> crate::session::RefSet {
    use hero_store::{ObjectId, RefValue};
    crate::session::RefSet::sorted(
        vec![
            ("main".to_owned(), ObjectId([1; 32])),
            ("topic/a".to_owned(), ObjectId([2; 32])),
        ],
        vec![("v1".to_owned(), RefValue::Tag(ObjectId([3; 32])))],
    )
}

/// A welcome's refs delta as a peer sends it: refused, or rebuilt into refs with valid names
/// whose delta from the same base rebuilds the same refs.
pub fn refs_delta(data: &[u8]) {
    let base = delta_base();
    let Ok(set) = crate::session::apply_delta(&mut Dec::new(data), &base) else {
        return;
    };
    for (n, _) in &set.branches {
        assert!(hero_store::check_ref_name(n).is_ok(), "{n:?}");
    }
    let mut e = Enc(Vec::new());
    crate::session::put_delta(&mut e, &base, &set);
    let again = crate::session::apply_delta(&mut Dec::new(&e.0), &base)
        .unwrap_or_else(|e| panic!("a delta encoded here does not apply: {e}"));
    assert_eq!(again, set);
}

/// A HELLO body (after its kind byte) as a client sends it: refused, or read into a hello that
/// encodes to a body read back the same.
pub fn hello(data: &[u8]) {
    let Ok(h) = crate::session::Hello::decode(data) else {
        return;
    };
    let e = h.encode();
    let again = crate::session::Hello::decode(&e.0[1..])
        .unwrap_or_else(|e| panic!("a hello encoded here does not decode: {e}"));
    assert_eq!(again, h);
}

/// Small valid inputs of each sync target, made by the crate's own encoders: the seeds of the
/// checked-in corpora (`fuzz/seeds/`).
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    use hero_store::{ObjType, ObjectId};
    let key = iroh::SecretKey::from_bytes(&[7u8; 32]);
    let other = iroh::SecretKey::from_bytes(&[9u8; 32]);
    let id = key.public();
    let ticket = format!("{id}@127.0.0.1:4242,[::1]:4242");
    let invitation = format!("invite:{}:{ticket}", "ab".repeat(32));
    let mut frames = Vec::new();
    for m in [
        Enc::new(crate::wire::kind::HELLO)
            .u32(crate::wire::VERSION)
            .bytes(b"repo"),
        Enc::new(crate::wire::kind::WANTS).ids(&[ObjectId([3; 32])]),
    ] {
        frames.extend_from_slice(&(m.0.len() as u32).to_be_bytes());
        frames.extend_from_slice(&m.0);
    }
    let mut fields = vec![0b1110_0100u8];
    fields.extend_from_slice(
        &Enc(Vec::new())
            .varint(300)
            .bytes(b"main")
            .ids(&[ObjectId([1; 32])])
            .bytes(b"refs/heads/main")
            .0,
    );
    let pack = crate::transfer::fuzzing::sample_pack(ObjType::Blob);
    let mut delta = Enc(Vec::new());
    let mut to = delta_base();
    to.branches[0].1 = ObjectId([4; 32]);
    to.branches.push(("zeta".to_owned(), ObjectId([5; 32])));
    to.tags.clear();
    crate::session::put_delta(&mut delta, &delta_base(), &to);
    let plain = crate::session::Hello {
        version: crate::wire::VERSION,
        repo: ObjectId([6; 32]),
        intent: crate::session::Intent::Push,
        empty: false,
        only: Vec::new(),
        digest: [7; 32],
        agreed: [8; 32],
        early: None,
    };
    let early = crate::session::Hello {
        intent: crate::session::Intent::Pull,
        only: vec!["main".to_owned()],
        digest: [0; 32],
        agreed: [0; 32],
        early: Some(crate::session::EarlyWants {
            heads: vec![ObjectId([9; 32])],
            wants: Enc(Vec::new())
                .ids(&[ObjectId([9; 32])])
                .ids(&[ObjectId([10; 32])])
                .u8(0)
                .bytes(&[0])
                .0
                .clone(),
        }),
        ..plain.clone()
    };
    let mut ahead = Enc::new(crate::wire::kind::SIGS_AHEAD);
    ahead.ids(&[ObjectId([9; 32])]).varint(0);
    for m in [early.encode(), ahead] {
        frames.extend_from_slice(&(m.0.len() as u32).to_be_bytes());
        frames.extend_from_slice(&m.0);
    }
    let mut out = vec![
        ("sync_hello", plain.encode().0[1..].to_vec()),
        ("sync_hello", early.encode().0[1..].to_vec()),
        ("sync_wire_frames", frames),
        ("sync_wire_fields", fields),
        ("sync_pack_entries", pack),
        ("sync_refs_delta", delta.0),
        ("sync_ticket", ticket.into_bytes()),
        ("sync_invitation", invitation.into_bytes()),
    ];
    if let Ok(g) = membership::genesis(&key, "owner", 1_700_000_000_000) {
        let op = Op::Add {
            target: other.public(),
            name: "peer".to_owned(),
            role: membership::Role::Writer,
            scopes: vec!["docs/**".to_owned()],
        };
        if let Ok(b) = op.encode() {
            out.push(("sync_envelope", b));
        }
        let mut doc = g.as_bytes().to_vec();
        if let Ok(h) = g.verify().map(|v| v.hash)
            && let Ok(add) = membership::sign_change(&key, &op, vec![h], 2, 2, 1_700_000_001_000)
        {
            doc.extend_from_slice(&[0xff, 0]);
            doc.extend_from_slice(add.as_bytes());
        }
        out.push(("sync_envelope", g.as_bytes().to_vec()));
        out.push(("sync_membership_doc", doc));
    }
    out
}
