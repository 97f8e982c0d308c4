//! Membership as signed changes (ADR 0017): storage on a real repository, refusal of forged
//! changes, the concurrency rules, convergence under random delivery, and replication through
//! the sync protocol.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use crate::replication::over_pipe;
use automerge::{ChangeHash, ReadDoc};
use hero_store::{CommitMeta, EntryKind, Expect, Repo, RepoPath, Signature};
use hero_sync::access::allow;
use hero_sync::membership::{
    self, BRANCH, Envelope, Member, Membership, MembershipError, Op, Refusal, Role, Rule,
    VerifiedChange, sign_change,
};
use hero_sync::session::{self, SyncReport};
use hero_sync::{Access, EndpointId, SecretKey, SyncError};
use proptest::prelude::*;

fn key(n: u8) -> SecretKey {
    SecretKey::from_bytes(&[n.wrapping_mul(3).wrapping_add(11); 32])
}

const T0: i64 = 1_780_000_000_000;

fn add(target: &SecretKey, role: Role) -> Op {
    Op::Add {
        target: target.public(),
        name: format!("node {}", target.public().fmt_short()),
        role,
        scopes: Vec::new(),
    }
}

/// A replica held in memory: the envelopes it has, by file name.
#[derive(Clone, Default)]
struct Replica {
    files: BTreeMap<String, Vec<u8>>,
    /// The same, verified once (evaluation need not verify signatures again).
    verified: BTreeMap<String, VerifiedChange>,
}

impl Replica {
    fn genesis(owner: &SecretKey) -> Replica {
        let mut r = Replica::default();
        r.put(&membership::genesis(owner, "first", T0).unwrap());
        r
    }

    fn put(&mut self, e: &Envelope) -> String {
        let v = e.verify().unwrap();
        let name = v.hash.to_string();
        self.files.insert(name.clone(), e.as_bytes().to_vec());
        self.verified.insert(name.clone(), v);
        name
    }

    fn state(&self) -> (Membership, Vec<Refusal>) {
        membership::evaluate_verified(self.verified.values().cloned().collect(), None)
    }

    fn state_from_bytes(&self) -> (Membership, Vec<Refusal>) {
        membership::evaluate(
            self.files
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            None,
        )
    }

    fn m(&self) -> Membership {
        self.state().0
    }

    /// `by` makes a change after everything this replica has accepted; its file name.
    fn make(&mut self, by: &SecretKey, op: Op) -> String {
        let e = self.m().change(by, &op, T0 + 1).unwrap();
        self.put(&e)
    }

    fn receive(&mut self, other: &Replica) {
        for (k, v) in &other.files {
            self.files.insert(k.clone(), v.clone());
        }
        for (k, v) in &other.verified {
            self.verified.insert(k.clone(), v.clone());
        }
    }

    fn refusal(&self, file: &str) -> Option<Rule> {
        self.state()
            .1
            .into_iter()
            .find(|r| r.file == file)
            .map(|r| r.rule)
    }
}

fn hash(name: &str) -> ChangeHash {
    name.parse().unwrap()
}

fn new_repo() -> (tempfile::TempDir, Repo) {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::init(dir.path().join("r.hero")).unwrap();
    (dir, repo)
}

/// Stores bytes as a change file without any check (what a peer's sync could bring).
fn store_raw(repo: &Repo, name: &str, bytes: &[u8]) {
    let mut cs = repo.change_set_reserved(BRANCH).unwrap();
    cs.put_bytes(
        &RepoPath::parse(format!("changes/{name}")).unwrap(),
        EntryKind::File,
        bytes,
    )
    .unwrap();
    let sig = Signature {
        name: b"raw".to_vec(),
        email: Vec::new(),
        time: 1,
        tz_offset_minutes: 0,
    };
    cs.commit(CommitMeta::new(sig, "raw"), Expect::Latest)
        .unwrap();
}

fn refused_rule(r: Result<ChangeHash, MembershipError>) -> Rule {
    match r {
        Err(MembershipError::Refused(r)) => r.rule,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn round_trip_through_a_repository() {
    let (_d, repo) = new_repo();
    let (a, b, c) = (key(1), key(2), key(3));
    let m = membership::init(&repo, &a, "alice", T0).unwrap();
    assert_eq!(m.role_of(&a.public()), Some(Role::Owner));
    assert_eq!(m.members().count(), 1);
    assert!(matches!(
        membership::init(&repo, &a, "again", T0),
        Err(MembershipError::AlreadyInitialized)
    ));

    let step = |op: Op| {
        let (m, refused) = membership::load(&repo).unwrap();
        assert!(refused.is_empty(), "{refused:?}");
        membership::append(&repo, &m.change(&a, &op, T0 + 5).unwrap()).unwrap();
        membership::load(&repo).unwrap().0
    };
    let m = step(Op::Add {
        target: b.public(),
        name: "bob".into(),
        role: Role::Writer,
        scopes: vec!["services/web/**".into()],
    });
    let bob = m.member(&b.public()).unwrap();
    assert_eq!(bob.role, Role::Writer);
    assert_eq!(bob.name, "bob");
    assert_eq!(bob.added_by, a.public());
    assert_eq!(bob.added_at_ms, T0 + 5);
    assert!(m.may_write(&b.public(), "services/web/index.html"));
    assert!(!m.may_write(&b.public(), "services/db/conf"));
    assert!(!m.may_write(&b.public(), "services/web/../db/conf"));
    assert!(m.may_read(&b.public()));
    assert!(m.may_write(&a.public(), "anything/at/all"));

    let m = step(add(&c, Role::Reader));
    assert!(m.may_read(&c.public()));
    assert!(!m.may_write(&c.public(), "x"));
    let m = step(Op::SetRole {
        target: c.public(),
        role: Role::Writer,
    });
    assert!(
        m.may_write(&c.public(), "x"),
        "a writer without scopes writes everywhere"
    );
    let m = step(Op::SetScopes {
        target: b.public(),
        scopes: vec!["docs/*.md".into()],
    });
    assert!(m.may_write(&b.public(), "docs/a.md"));
    assert!(!m.may_write(&b.public(), "services/web/index.html"));
    let m = step(Op::Rename {
        target: b.public(),
        name: "robert".into(),
    });
    assert_eq!(m.member(&b.public()).unwrap().name, "robert");
    let m = step(Op::Remove { target: c.public() });
    assert_eq!(m.role_of(&c.public()), None);
    assert!(!m.may_read(&c.public()));
    assert_eq!(m.members().count(), 2);

    // The accepted changes form an automerge document, one record per change.
    assert_eq!(m.accepted_changes().len(), 7);
    let doc = m.document().unwrap();
    assert_eq!(doc.keys(automerge::ROOT).count(), 7);

    // A refused change is not stored: the sole owner cannot demote itself.
    let head = repo.branch_head(BRANCH).unwrap();
    let demote = m
        .change(
            &a,
            &Op::SetRole {
                target: a.public(),
                role: Role::Reader,
            },
            T0,
        )
        .unwrap();
    assert_eq!(
        refused_rule(membership::append(&repo, &demote)),
        Rule::LastOwner
    );
    assert_eq!(repo.branch_head(BRANCH).unwrap(), head);
    // Deleting the removal's file from the branch does not bring C back: every change file
    // of the branch's history counts.
    let removal = m.heads()[0].to_string();
    let mut cs = repo.change_set_reserved(BRANCH).unwrap();
    cs.delete(&RepoPath::parse(format!("changes/{removal}")).unwrap())
        .unwrap();
    let sig = Signature {
        name: b"eve".to_vec(),
        email: Vec::new(),
        time: 2,
        tz_offset_minutes: 0,
    };
    cs.commit(CommitMeta::new(sig, "undo a removal"), Expect::Latest)
        .unwrap();
    let (after, refused) = membership::load(&repo).unwrap();
    assert!(refused.is_empty());
    assert_eq!(after.role_of(&c.public()), None);
    assert_eq!(after, m);
    // Appending a stored change again is a no-op.
    let (files, _) = (membership::load(&repo).unwrap(), ());
    assert_eq!(files.0, m);
}

#[test]
fn forged_changes_are_refused_and_never_applied() {
    let (_d, repo) = new_repo();
    let (a, x, w) = (key(1), key(7), key(8));
    let m = membership::init(&repo, &a, "alice", T0).unwrap();
    let before: Vec<(EndpointId, Member)> = m.members().map(|(k, v)| (*k, v.clone())).collect();

    // Signed by a key that is not an owner (not a member at all).
    let by_x = m.change(&x, &add(&x, Role::Owner), T0).unwrap();
    assert_eq!(
        refused_rule(membership::append(&repo, &by_x)),
        Rule::NotOwner
    );
    let x_name = membership::file_name(&by_x).unwrap();
    store_raw(&repo, &x_name, by_x.as_bytes());

    // A bad signature: one bit of the signature, or one bit of the signed change.
    let good = m.change(&a, &add(&w, Role::Writer), T0).unwrap();
    let mut bad_sig = good.as_bytes().to_vec();
    bad_sig[4 + 1 + 32 + 3] ^= 1;
    let mut bad_change = good.as_bytes().to_vec();
    let last = bad_change.len() - 1;
    bad_change[last] ^= 1;
    for bad in [&bad_sig, &bad_change] {
        let e = Envelope::from_bytes(bad.clone());
        assert_eq!(
            refused_rule(membership::append(&repo, &e)),
            Rule::BadSignature
        );
    }
    store_raw(&repo, "badsig", &bad_sig);
    store_raw(&repo, "badchange", &bad_change);

    // Truncated.
    let truncated = &good.as_bytes()[..good.as_bytes().len() - 10];
    refused_as_malformed_and_stored(&repo, "truncated", truncated);

    // A record that is not the one the signed change carries.
    let other = m.change(&a, &add(&w, Role::Owner), T0).unwrap();
    refused_as_malformed_and_stored(&repo, "spliced", &splice_record(&good, &other));

    // Dependencies nobody has.
    let ghost = ChangeHash([9; 32]);
    let orphan = sign_change(&a, &add(&w, Role::Writer), vec![ghost], 2, 2, T0).unwrap();
    assert_eq!(
        refused_rule(membership::append(&repo, &orphan)),
        Rule::UnknownDeps(vec![ghost])
    );
    let orphan_name = membership::file_name(&orphan).unwrap();
    store_raw(&repo, &orphan_name, orphan.as_bytes());

    // A valid change stored under another name.
    store_raw(&repo, &"0".repeat(64), good.as_bytes());

    // A second genesis (another node claiming to be first owner).
    let y = key(9);
    let rival = membership::genesis(&y, "mallory", T0).unwrap();
    let rival_name = membership::file_name(&rival).unwrap();
    store_raw(&repo, &rival_name, rival.as_bytes());

    let (m2, refused) = membership::load(&repo).unwrap();
    let after: Vec<(EndpointId, Member)> = m2.members().map(|(k, v)| (*k, v.clone())).collect();
    assert_eq!(before, after, "nothing refused was applied");
    let rules: BTreeMap<String, (Rule, Option<EndpointId>)> = refused
        .into_iter()
        .map(|r| (r.file, (r.rule, r.author)))
        .collect();
    assert_eq!(rules[&x_name], (Rule::NotOwner, Some(x.public())));
    assert_eq!(rules["badsig"].0, Rule::BadSignature);
    assert_eq!(rules["badchange"].0, Rule::BadSignature);
    assert!(matches!(rules["truncated"].0, Rule::Malformed(_)));
    assert!(matches!(rules["spliced"].0, Rule::Malformed(_)));
    assert_eq!(
        rules[&orphan_name],
        (Rule::UnknownDeps(vec![ghost]), Some(a.public()))
    );
    assert_eq!(rules[&"0".repeat(64)].0, Rule::Misfiled);
    assert_eq!(rules[&rival_name], (Rule::NotGenesis, Some(y.public())));
    assert_eq!(rules.len(), 8);
}

/// `bytes`, offered as an envelope, are refused as malformed; then they are stored as they are
/// under `name`, the way a peer that skips the checks would.
fn refused_as_malformed_and_stored(repo: &Repo, name: &str, bytes: &[u8]) {
    let e = Envelope::from_bytes(bytes.to_vec());
    assert!(matches!(
        refused_rule(membership::append(repo, &e)),
        Rule::Malformed(_)
    ));
    store_raw(repo, name, bytes);
}

/// `base` with the record of `other` (same signature and change).
fn splice_record(base: &Envelope, other: &Envelope) -> Vec<u8> {
    let parts = |e: &Envelope| {
        let b = e.as_bytes();
        let rl = usize::from(u16::from_be_bytes([b[101], b[102]]));
        (
            b[..101].to_vec(),
            b[103..103 + rl].to_vec(),
            b[103 + rl..].to_vec(),
        )
    };
    let (head, _, rest) = parts(base);
    let (_, record, _) = parts(other);
    let mut out = head;
    out.extend_from_slice(&(record.len() as u16).to_be_bytes());
    out.extend_from_slice(&record);
    out.extend_from_slice(&rest);
    out
}

#[test]
fn a_removed_owner_cannot_act_after_its_removal() {
    let (a, b, w, v) = (key(1), key(2), key(5), key(6));
    let mut ra = Replica::genesis(&a);
    ra.make(&a, add(&b, Role::Owner));
    let mut rb = ra.clone();
    // A removes B; concurrently (before hearing of it) B adds W.
    ra.make(&a, Op::Remove { target: b.public() });
    let concurrent = rb.make(&b, add(&w, Role::Writer));
    ra.receive(&rb);
    rb.receive(&ra);
    // Decided at its causal point, where B was an owner: it stands.
    assert_eq!(ra.refusal(&concurrent), None);
    assert_eq!(ra.m().role_of(&w.public()), Some(Role::Writer));
    assert_eq!(ra.m().role_of(&b.public()), None);
    // After the removal (its dependencies include it), B's changes are refused...
    let late = rb.make(&b, add(&v, Role::Owner));
    assert_eq!(rb.refusal(&late), Some(Rule::NotOwner));
    // ...even when back-dated by its clock: the time is not what counts.
    let m = rb.m();
    let backdated = m.change(&b, &add(&v, Role::Writer), 0).unwrap();
    let name = rb.put(&backdated);
    assert_eq!(rb.refusal(&name), Some(Rule::NotOwner));
    assert_eq!(rb.m().role_of(&v.public()), None);
    ra.receive(&rb);
    assert_eq!(ra.state(), rb.state());
}

#[test]
fn removal_wins_over_a_concurrent_role_change_or_re_add() {
    let (a, b, w) = (key(1), key(2), key(5));
    let mut ra = Replica::genesis(&a);
    ra.make(&a, add(&b, Role::Owner));
    ra.make(&a, add(&w, Role::Writer));
    // Role change against removal.
    let mut rb = ra.clone();
    ra.make(
        &a,
        Op::SetRole {
            target: w.public(),
            role: Role::Owner,
        },
    );
    rb.make(&b, Op::Remove { target: w.public() });
    ra.receive(&rb);
    rb.receive(&ra);
    assert_eq!(ra.m().role_of(&w.public()), None);
    assert_eq!(rb.m(), ra.m());

    // Re-add against a concurrent removal: W is re-added by A after A's own removal, while B
    // removes W concurrently (having never seen A's removal).
    let mut ra = Replica::genesis(&a);
    ra.make(&a, add(&b, Role::Owner));
    ra.make(&a, add(&w, Role::Writer));
    let mut rb = ra.clone();
    ra.make(&a, Op::Remove { target: w.public() });
    let re_add = ra.make(&a, add(&w, Role::Reader));
    assert_eq!(ra.m().role_of(&w.public()), Some(Role::Reader));
    rb.make(&b, Op::Remove { target: w.public() });
    ra.receive(&rb);
    rb.receive(&ra);
    assert_eq!(
        ra.refusal(&re_add),
        None,
        "the re-add was valid where it was made"
    );
    assert_eq!(
        ra.m().role_of(&w.public()),
        None,
        "but the concurrent removal wins"
    );
    assert_eq!(rb.m(), ra.m());
    // A re-add that causally follows every removal brings W back.
    ra.make(&a, add(&w, Role::Writer));
    assert_eq!(ra.m().role_of(&w.public()), Some(Role::Writer));
    assert_eq!(ra.m().member(&w.public()).unwrap().added_by, a.public());

    // Concurrent role changes: the least privileged wins.
    let mut rb = ra.clone();
    ra.make(
        &a,
        Op::SetRole {
            target: w.public(),
            role: Role::Owner,
        },
    );
    rb.make(
        &b,
        Op::SetRole {
            target: w.public(),
            role: Role::Reader,
        },
    );
    ra.receive(&rb);
    assert_eq!(ra.m().role_of(&w.public()), Some(Role::Reader));
}

#[test]
fn owners_removing_each_other_concurrently() {
    let (a, b, c) = (key(1), key(2), key(3));
    // With a third owner left, both are removed.
    let mut ra = Replica::genesis(&a);
    ra.make(&a, add(&b, Role::Owner));
    ra.make(&a, add(&c, Role::Owner));
    let mut rb = ra.clone();
    ra.make(&a, Op::Remove { target: b.public() });
    rb.make(&b, Op::Remove { target: a.public() });
    ra.receive(&rb);
    rb.receive(&ra);
    let owners: Vec<EndpointId> = ra.m().owners().copied().collect();
    assert_eq!(owners, vec![c.public()]);
    assert_eq!(ra.m().members().count(), 1);
    assert_eq!(rb.m(), ra.m());

    // With nobody else, the most senior (A, the genesis owner) stays, and keeps acting.
    let mut ra = Replica::genesis(&a);
    ra.make(&a, add(&b, Role::Owner));
    let mut rb = ra.clone();
    ra.make(&a, Op::Remove { target: b.public() });
    rb.make(&b, Op::Remove { target: a.public() });
    ra.receive(&rb);
    rb.receive(&ra);
    let owners: Vec<EndpointId> = ra.m().owners().copied().collect();
    assert_eq!(owners, vec![a.public()]);
    assert_eq!(ra.m().role_of(&b.public()), None);
    let by_a = ra.make(&a, add(&c, Role::Writer));
    assert_eq!(ra.refusal(&by_a), None);
    assert_eq!(ra.m().role_of(&a.public()), Some(Role::Owner));
    assert_eq!(ra.m().role_of(&c.public()), Some(Role::Writer));
    let by_b = rb.make(&b, add(&c, Role::Owner));
    assert_eq!(rb.refusal(&by_b), Some(Rule::NotOwner));
    ra.receive(&rb);
    rb.receive(&ra);
    assert_eq!(ra.state(), rb.state());
    assert_eq!(ra.m().role_of(&a.public()), Some(Role::Owner));

    // Concurrent demotions: same rule.
    let mut ra = Replica::genesis(&a);
    ra.make(&a, add(&b, Role::Owner));
    let mut rb = ra.clone();
    ra.make(
        &a,
        Op::SetRole {
            target: b.public(),
            role: Role::Writer,
        },
    );
    rb.make(
        &b,
        Op::SetRole {
            target: a.public(),
            role: Role::Reader,
        },
    );
    ra.receive(&rb);
    assert_eq!(ra.m().role_of(&a.public()), Some(Role::Owner));
    assert_eq!(ra.m().role_of(&b.public()), Some(Role::Writer));
}

#[test]
fn the_last_owner_stays_by_seniority_with_ties_by_change_hash() {
    let (a, b, c) = (key(1), key(2), key(3));
    let mut r = Replica::genesis(&a);
    let g = hash(r.files.keys().next().unwrap());
    // A adds B and C in two concurrent changes (both right after the genesis): equal depth.
    let add_b = sign_change(&a, &add(&b, Role::Owner), vec![g], 2, 2, T0).unwrap();
    let add_c = sign_change(&a, &add(&c, Role::Owner), vec![g], 3, 2, T0).unwrap();
    let (nb, nc) = (r.put(&add_b), r.put(&add_c));
    // The sole owner cannot leave alone; with others it can.
    let mut alone = Replica::genesis(&a);
    let leave = alone.make(&a, Op::Remove { target: a.public() });
    assert_eq!(alone.refusal(&leave), Some(Rule::LastOwner));
    r.make(&a, Op::Remove { target: a.public() });
    assert_eq!(r.m().owners().count(), 2);
    // B and C remove each other concurrently: the one whose add has the smaller hash stays.
    let mut rc = r.clone();
    r.make(&b, Op::Remove { target: c.public() });
    rc.make(&c, Op::Remove { target: b.public() });
    r.receive(&rc);
    let senior = if hash(&nb) < hash(&nc) { &b } else { &c };
    let owners: Vec<EndpointId> = r.m().owners().copied().collect();
    assert_eq!(owners, vec![senior.public()]);
    assert_eq!(r.m().members().count(), 1);
}

#[test]
fn membership_replicates_through_the_sync_protocol() {
    let (a, b) = (key(1), key(2));
    let (w, x) = (key(5), key(6));
    let (_d1, r1) = new_repo();
    let (_d2, r2) = new_repo();
    allow(&r1, &b.public(), Access::ReadWrite).unwrap();
    allow(&r2, &a.public(), Access::ReadWrite).unwrap();
    membership::init(&r1, &a, "alice", T0).unwrap();
    let (m1, _) = membership::load(&r1).unwrap();
    membership::append(&r1, &m1.change(&a, &add(&b, Role::Owner), T0).unwrap()).unwrap();

    pull(&r2, &b, &r1, &a).unwrap();
    let (m2, refused) = membership::load(&r2).unwrap();
    assert!(refused.is_empty());
    assert_eq!(m2, membership::load(&r1).unwrap().0);
    assert_eq!(m2.role_of(&b.public()), Some(Role::Owner));

    // Concurrent changes on both sides, then a pull each way: the union, on both.
    let (m1, _) = membership::load(&r1).unwrap();
    membership::append(&r1, &m1.change(&a, &add(&w, Role::Writer), T0).unwrap()).unwrap();
    membership::append(&r2, &m2.change(&b, &add(&x, Role::Reader), T0).unwrap()).unwrap();
    pull(&r2, &b, &r1, &a).unwrap();
    pull(&r1, &a, &r2, &b).unwrap();
    let (m1, f1) = membership::load(&r1).unwrap();
    let (m2, f2) = membership::load(&r2).unwrap();
    assert_eq!(m1, m2);
    assert!(f1.is_empty() && f2.is_empty());
    assert_eq!(m1.role_of(&w.public()), Some(Role::Writer));
    assert_eq!(m1.role_of(&x.public()), Some(Role::Reader));
    assert_eq!(m1.heads().len(), 2);
    assert_eq!(
        r1.branch_head(BRANCH).unwrap(),
        r2.branch_head(BRANCH).unwrap()
    );

    // A forged change pushed by a peer is refused on arrival: the whole push (ADR 0018).
    let forged = m2.change(&x, &add(&x, Role::Owner), T0).unwrap();
    let name = membership::file_name(&forged).unwrap();
    store_raw(&r2, &name, forged.as_bytes());
    let before = r1.branch_head(BRANCH).unwrap();
    let err = push(&r2, &b, &r1, &a).unwrap_err();
    assert!(
        matches!(&err, SyncError::PushRefused { reason, .. } if reason.contains(&name)),
        "{err}"
    );
    let (m1, f1) = membership::load(&r1).unwrap();
    assert_eq!(m1.role_of(&x.public()), Some(Role::Reader));
    assert!(
        f1.is_empty(),
        "nothing of the refused push is in the membership"
    );
    assert_eq!(r1.branch_head(BRANCH).unwrap(), before);
    // Its own view never counted it.
    let (_, f2) = membership::load(&r2).unwrap();
    assert_eq!(f2.len(), 1);
    assert_eq!(f2[0].rule, Rule::NotOwner);
    assert_eq!(f2[0].file, name);
}

#[test]
fn changes_relayed_by_a_third_peer_are_checked_on_arrival() {
    let (a, b, c) = (key(1), key(2), key(3));
    let (w, x) = (key(5), key(6));
    let repos: Vec<(tempfile::TempDir, Repo)> = (0..3).map(|_| new_repo()).collect();
    let (r1, r2, r3) = (&repos[0].1, &repos[1].1, &repos[2].1);
    for (r, others) in [(r1, [&b, &c]), (r2, [&a, &c]), (r3, [&a, &b])] {
        for o in others {
            allow(r, &o.public(), Access::ReadWrite).unwrap();
        }
    }
    membership::init(r1, &a, "alice", T0).unwrap();
    let (m, _) = membership::load(r1).unwrap();
    membership::append(r1, &m.change(&a, &add(&b, Role::Owner), T0).unwrap()).unwrap();
    let (m, _) = membership::load(r1).unwrap();
    membership::append(r1, &m.change(&a, &add(&c, Role::Writer), T0).unwrap()).unwrap();
    pull(r2, &b, r1, &a).unwrap();
    pull(r3, &c, r1, &a).unwrap();

    // B's change reaches A only through C; C also slips in a change of its own (a writer may
    // not change membership) and a copy of B's change with another record.
    let (m2, _) = membership::load(r2).unwrap();
    let by_b = m2.change(&b, &add(&w, Role::Reader), T0).unwrap();
    membership::append(r2, &by_b).unwrap();
    pull(r3, &c, r2, &b).unwrap();
    let (m3, _) = membership::load(r3).unwrap();
    let by_c = m3.change(&c, &add(&x, Role::Owner), T0).unwrap();
    let by_c_name = membership::file_name(&by_c).unwrap();
    store_raw(r3, &by_c_name, by_c.as_bytes());
    let other = m3.change(&b, &add(&x, Role::Owner), T0).unwrap();
    store_raw(r3, "tampered", &splice_record(&by_b, &other));
    // C's view: B's change counts, its own and the tampered copy do not.
    let (m3, refused) = membership::load(r3).unwrap();
    assert_eq!(m3.role_of(&w.public()), Some(Role::Reader));
    assert_eq!(m3.role_of(&x.public()), None);
    let rules: BTreeMap<String, Rule> = refused.into_iter().map(|r| (r.file, r.rule)).collect();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[&by_c_name], Rule::NotOwner);
    assert!(matches!(rules["tampered"], Rule::Malformed(_)));

    // A pulling from C checks on arrival and takes none of that history (ADR 0018: a history
    // that brings a refused change is refused whole, and reported).
    let report = pull(r1, &a, r3, &c).unwrap();
    assert!(
        report
            .branches_failed
            .iter()
            .any(|(b, e)| b == BRANCH && e.to_string().contains("refused")),
        "{:?}",
        report.branches_failed
    );
    let (m1, refused) = membership::load(r1).unwrap();
    assert_eq!(m1.role_of(&w.public()), None);
    assert_eq!(m1.role_of(&x.public()), None);
    assert!(refused.is_empty());
    // B's change, relayed by an honest peer, arrives.
    pull(r1, &a, r2, &b).unwrap();
    let (m1, _) = membership::load(r1).unwrap();
    assert_eq!(m1.role_of(&w.public()), Some(Role::Reader));
}

fn pull(
    dst: &Repo,
    dst_key: &SecretKey,
    src: &Repo,
    src_key: &SecretKey,
) -> Result<SyncReport, SyncError> {
    let (me, them) = (dst_key.public(), src_key.public());
    over_pipe(src, me, |mut w| async move {
        session::pull(&mut w, dst, &them, &me, None).await
    })
}

fn push(
    src: &Repo,
    src_key: &SecretKey,
    dst: &Repo,
    dst_key: &SecretKey,
) -> Result<SyncReport, SyncError> {
    let (me, them) = (src_key.public(), dst_key.public());
    over_pipe(dst, me, |mut w| async move {
        session::push(&mut w, src, &them, &me, None, None).await
    })
}

// --- convergence ---

/// What a replica does in a random run.
#[derive(Debug, Clone)]
enum Action {
    /// Replica `r` makes a change (as its own node) of kind `kind` on node `target`.
    Change { r: usize, kind: u8, target: u8 },
    /// Replica `to` receives a random subset (by bit mask over its files) of `from`'s.
    Deliver { from: usize, to: usize, mask: u64 },
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (0..4usize, 0..6u8, 0..6u8).prop_map(|(r, kind, target)| Action::Change { r, kind, target }),
        2 => (0..4usize, 0..4usize, any::<u64>()).prop_map(|(from, to, mask)| Action::Deliver { from, to, mask }),
    ]
}

fn op_of(kind: u8, target: &SecretKey) -> Op {
    let t = target.public();
    match kind {
        0 => add(
            target,
            [Role::Owner, Role::Writer, Role::Reader][usize::from(t.as_bytes()[0] % 3)],
        ),
        1 | 5 => Op::Remove { target: t },
        2 => Op::SetRole {
            target: t,
            role: Role::Owner,
        },
        3 => Op::SetRole {
            target: t,
            role: Role::Writer,
        },
        _ => Op::SetScopes {
            target: t,
            scopes: vec!["services/**".into()],
        },
    }
}

fn summary(m: &Membership) -> BTreeMap<EndpointId, (Role, Vec<String>, String)> {
    m.members()
        .map(|(k, v)| (*k, (v.role, v.scopes.clone(), v.name.clone())))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random concurrent changes (legal and illegal) among four replicas, delivered in random
    /// subsets, then everything to everyone in shuffled orders: the same membership and the
    /// same refusals everywhere; every decision made on a partial set stands in the full one.
    #[test]
    fn replicas_converge(actions in prop::collection::vec(action(), 1..40), seed in any::<u64>()) {
        let keys: Vec<SecretKey> = (1..=6).map(key).collect();
        // Replicas 0..3 speak as nodes 0..3; nodes 0 and 1 start as owners, 2 as a writer, 3
        // as nobody (until an owner promotes them, their changes are illegal).
        let mut base = Replica::genesis(&keys[0]);
        base.make(&keys[0], add(&keys[1], Role::Owner));
        base.make(&keys[0], add(&keys[2], Role::Writer));
        let mut reps = vec![base.clone(), base.clone(), base.clone(), base];
        for a in &actions {
            match a {
                Action::Change { r, kind, target } => {
                    let op = op_of(*kind, &keys[usize::from(*target)]);
                    let k = keys[*r].clone();
                    reps[*r].make(&k, op);
                }
                Action::Deliver { from, to, mask } => {
                    let mut picked = Replica::default();
                    for (i, (k, v)) in reps[*from].verified.iter().enumerate() {
                        if mask & (1 << (i % 64)) != 0 {
                            picked.files.insert(k.clone(), reps[*from].files[k].clone());
                            picked.verified.insert(k.clone(), v.clone());
                        }
                    }
                    reps[*to].receive(&picked);
                }
            }
        }
        let partial: Vec<(Membership, Vec<Refusal>)> = reps.iter().map(Replica::state).collect();
        let mut all = Replica::default();
        for r in &reps {
            all.receive(r);
        }
        let mut results = Vec::new();
        for i in 0..reps.len() {
            // A shuffled delivery order for each replica.
            let mut files: Vec<VerifiedChange> = all.verified.values().cloned().collect();
            fastrand::Rng::with_seed(seed.wrapping_add(i as u64)).shuffle(&mut files);
            results.push(membership::evaluate_verified(files, None));
        }
        // One replica from the bytes, as `load` does: the same.
        results.push(all.state_from_bytes());
        let (m0, f0) = &results[0];
        prop_assert!(m0.owners().count() >= 1, "never without an owner");
        for (m, f) in &results[1..] {
            prop_assert_eq!(summary(m), summary(m0));
            prop_assert_eq!(m, m0);
            prop_assert_eq!(f, f0);
        }
        // Decisions are final once a change's past is known.
        let refused_all: BTreeMap<&String, &Rule> = f0.iter().map(|r| (&r.file, &r.rule)).collect();
        for (r, (_, f)) in reps.iter().zip(&partial) {
            let refused_here: BTreeMap<&String, &Rule> = f.iter().map(|r| (&r.file, &r.rule)).collect();
            for name in r.files.keys() {
                match refused_here.get(name) {
                    Some(Rule::UnknownDeps(_)) => {}
                    Some(rule) => prop_assert_eq!(refused_all.get(name), Some(rule)),
                    None => prop_assert_eq!(refused_all.get(name), None),
                }
            }
        }
        let accepted: BTreeSet<String> = m0.accepted_changes().iter().map(|c| c.hash().to_string()).collect();
        prop_assert_eq!(accepted.len() + f0.len(), all.files.len());
        // The accepted changes load as an automerge document, one record each, unless a
        // signer broke automerge's numbering (this generator's illegal changes do): an error,
        // never a panic.
        if let Ok(doc) = m0.document() {
            prop_assert_eq!(doc.keys(automerge::ROOT).count(), accepted.len());
        }
    }
}

#[test]
fn the_allow_list_becomes_the_initial_membership() {
    let (_d, repo) = new_repo();
    let (a, b, c) = (key(1), key(2), key(3));
    allow(&repo, &b.public(), Access::ReadWrite).unwrap();
    allow(&repo, &c.public(), Access::ReadOnly).unwrap();
    allow(&repo, &a.public(), Access::ReadWrite).unwrap();
    let up = membership::upgrade_from_allow_list(&repo, &a, "alice", T0).unwrap();
    assert!(up.skipped.is_empty());
    assert_eq!(up.added.len(), 2);
    let (m, refused) = membership::load(&repo).unwrap();
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(m, up.membership);
    assert_eq!(m.role_of(&a.public()), Some(Role::Owner));
    assert_eq!(m.role_of(&b.public()), Some(Role::Writer));
    assert_eq!(m.role_of(&c.public()), Some(Role::Reader));
    assert!(m.may_write(&b.public(), "any/path"));
    assert!(!m.may_write(&c.public(), "any/path"));
    assert_eq!(m.members().count(), 3);
    assert_eq!(m.member(&c.public()).unwrap().added_by, a.public());
    // The allow list is untouched, and a second upgrade is refused.
    assert_eq!(hero_sync::access::allowed(&repo).unwrap().len(), 3);
    assert!(matches!(
        membership::upgrade_from_allow_list(&repo, &a, "alice", T0),
        Err(MembershipError::AlreadyInitialized)
    ));
    // The pinned genesis wins over a rival root that another node signs.
    let rival = membership::genesis(&key(9), "rival", T0 - 1).unwrap();
    store_raw(
        &repo,
        &membership::file_name(&rival).unwrap(),
        rival.as_bytes(),
    );
    let (m2, refused) = membership::load(&repo).unwrap();
    assert_eq!(m2.members().count(), 3);
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].rule, Rule::NotGenesis);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Untrusted bytes: any mutation or truncation of a valid envelope is refused (never a
    /// panic), and only the unchanged bytes verify.
    #[test]
    fn mutated_envelopes_are_refused(
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1..=255u8), 0..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
        garbage in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let a = key(1);
        let g = membership::genesis(&a, "alice", T0).unwrap();
        let m = membership::evaluate(vec![(membership::file_name(&g).unwrap(), g.as_bytes().to_vec())], None).0;
        let e = m.change(&a, &Op::Add {
            target: key(2).public(),
            name: "bob".into(),
            role: Role::Writer,
            scopes: vec!["services/**".into()],
        }, T0).unwrap();
        let mut bytes = e.as_bytes().to_vec();
        for (i, x) in &flips {
            let i = i.index(bytes.len());
            bytes[i] ^= x;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        let changed = bytes != e.as_bytes();
        let verdict = Envelope::from_bytes(bytes).verify();
        prop_assert_eq!(verdict.is_ok(), !changed);
        prop_assert!(Envelope::from_bytes(garbage).verify().is_err());
    }
}

/// Automerge 0.12 panics on some numberings a signer can choose; the membership does not
/// depend on them, and the document view reports them as an error.
#[test]
fn wild_numbering_is_an_error_of_the_document_view_never_a_panic() {
    let (a, b, c, w) = (key(1), key(2), key(3), key(5));
    // Concurrent changes by one author are an ordinary automerge history.
    let mut r = Replica::genesis(&a);
    let g = hash(r.files.keys().next().unwrap());
    r.put(&sign_change(&a, &add(&b, Role::Owner), vec![g], 2, 2, T0).unwrap());
    r.put(&sign_change(&a, &add(&c, Role::Owner), vec![g], 3, 2, T0).unwrap());
    let doc = r.m().document().unwrap();
    assert_eq!(doc.keys(automerge::ROOT).count(), 3);
    // B's first change numbered 2 (what made automerge panic), or with an operation counter
    // that does not follow its dependencies': accepted as membership, refused as a document.
    for (seq, start_op) in [(2, 10), (1, 1)] {
        let mut r = Replica::genesis(&a);
        r.make(&a, add(&b, Role::Owner));
        let heads = r.m().heads().to_vec();
        r.put(&sign_change(&b, &add(&w, Role::Writer), heads, seq, start_op, T0).unwrap());
        let m = r.m();
        assert_eq!(m.role_of(&w.public()), Some(Role::Writer));
        match m.document() {
            Err(MembershipError::NotADocument { author }) => assert_eq!(author, b.public()),
            other => panic!("expected NotADocument, got {:?}", other.map(|_| ())),
        }
    }
}
