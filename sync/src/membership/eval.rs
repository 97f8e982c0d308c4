//! The deterministic evaluation of a set of membership changes (rules in ADR 0017).
//!
//! The changes whose envelopes verify form a causal graph (automerge dependencies). They are
//! visited in a topological order (ties by change hash); each change is checked against the
//! membership computed from its causal past only, which is a pure function of that past, so
//! every peer decides every change the same way whatever else it has or in which order the
//! changes arrived. The state of a set of changes is computed per member from the accepted
//! operations on it, with a bitset of each change's ancestors to answer "is x before y".

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use automerge::ChangeHash;
use iroh::EndpointId;

use super::envelope::{Envelope, Op, Role, VerifiedChange};
use super::state::{Member, Membership, Refusal, Rule};

/// A set of change indices (ancestors of a change).
#[derive(Clone)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
    fn set(&mut self, i: usize) {
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }
    fn or(&mut self, other: &Bits) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }
}

/// The set of changes a state is computed for.
#[derive(Clone, Copy)]
enum Scope {
    /// The causal past of change `i` (not `i` itself).
    Past(usize),
    /// Everything.
    All,
}

struct Node {
    v: VerifiedChange,
    file: String,
    depth: u64,
}

struct Eval {
    nodes: Vec<Node>,
    past: Vec<Bits>,
    accepted: Vec<bool>,
    /// Accepted changes by target, in visiting order.
    ops_on: BTreeMap<EndpointId, Vec<usize>>,
    /// Nodes ever granted the owner role by an accepted change.
    owner_grantees: BTreeSet<EndpointId>,
    /// The owners at each accepted change's causal point.
    /// (Only the ids: the records are recomputed in the rare case they are needed.)
    owners_at: Vec<Vec<EndpointId>>,
    /// For each node, the accepted changes at whose causal point it was an owner.
    sightings: HashMap<EndpointId, Vec<usize>>,
    /// Whether an accepted change removed or demoted an owner.
    removes_owner: Vec<bool>,
}

impl Eval {
    fn in_scope(&self, s: Scope, j: usize) -> bool {
        match s {
            Scope::Past(i) => self.past[i].get(j),
            Scope::All => true,
        }
    }

    /// `x` is a causal ancestor of `y`.
    fn before(&self, x: usize, y: usize) -> bool {
        self.past[y].get(x)
    }

    fn hash(&self, i: usize) -> ChangeHash {
        self.nodes[i].v.hash
    }

    /// A removal or demotion of owner `t` that a later accepted change in `s` overrode: that
    /// change still saw `t` as an owner (it was kept as the last owner).
    fn void(&self, x: usize, t: &EndpointId, s: Scope) -> bool {
        self.removes_owner[x]
            && self
                .sightings
                .get(t)
                .is_some_and(|ys| ys.iter().any(|&y| self.in_scope(s, y) && self.before(x, y)))
    }

    /// Of `xs`, the one among those no other follows with the smallest hash.
    fn latest(&self, xs: &[usize]) -> Option<usize> {
        xs.iter()
            .copied()
            .filter(|&x| !xs.iter().any(|&y| y != x && self.before(x, y)))
            .min_by_key(|&x| self.hash(x))
    }

    /// A node's membership in `s`, before the last-owner rule.
    fn member_raw(&self, t: &EndpointId, s: Scope) -> Option<Member> {
        let ops: Vec<usize> = self
            .ops_on
            .get(t)?
            .iter()
            .copied()
            .filter(|&j| self.in_scope(s, j))
            .collect();
        let removals: Vec<usize> = ops
            .iter()
            .copied()
            .filter(|&j| matches!(self.nodes[j].v.op, Op::Remove { .. }) && !self.void(j, t, s))
            .collect();
        // Removal wins: only what causally follows every removal counts.
        let post: Vec<usize> = ops
            .iter()
            .copied()
            .filter(|&j| {
                !matches!(self.nodes[j].v.op, Op::Remove { .. })
                    && removals.iter().all(|&r| self.before(r, j))
            })
            .collect();
        let pick = |f: &dyn Fn(&Op) -> bool| -> Vec<usize> {
            post.iter()
                .copied()
                .filter(|&j| f(&self.nodes[j].v.op))
                .collect()
        };
        let adds = pick(&|o| matches!(o, Op::Add { .. }));
        let add = self.latest(&adds)?;
        let role_ops: Vec<usize> = pick(&|o| matches!(o, Op::Add { .. } | Op::SetRole { .. }))
            .into_iter()
            .filter(|&j| !self.void(j, t, s))
            .collect();
        // Concurrent role changes: the least privileged wins.
        let role = role_ops
            .iter()
            .copied()
            .filter(|&x| !role_ops.iter().any(|&y| y != x && self.before(x, y)))
            .filter_map(|j| match &self.nodes[j].v.op {
                Op::Add { role, .. } | Op::SetRole { role, .. } => Some(*role),
                _ => None,
            })
            .min()?;
        let scopes = match self
            .latest(&pick(&|o| {
                matches!(o, Op::Add { .. } | Op::SetScopes { .. })
            }))
            .map(|j| &self.nodes[j].v.op)
        {
            Some(Op::Add { scopes, .. } | Op::SetScopes { scopes, .. }) => scopes.clone(),
            _ => Vec::new(),
        };
        let name = match self
            .latest(&pick(&|o| matches!(o, Op::Add { .. } | Op::Rename { .. })))
            .map(|j| &self.nodes[j].v.op)
        {
            Some(Op::Add { name, .. } | Op::Rename { name, .. }) => name.clone(),
            _ => String::new(),
        };
        let n = &self.nodes[add];
        Some(Member {
            name,
            role,
            scopes,
            added_by: n.v.author,
            added_at_ms: n.v.time(),
            added_in: n.v.hash,
            seniority: (n.depth, n.v.hash),
        })
    }

    /// The owners in `s`, the last-owner rule applied: when concurrent changes removed or
    /// demoted every owner, the most senior of the owners seen at the causal points of the
    /// latest accepted changes stays.
    fn owners(&self, s: Scope) -> Vec<(EndpointId, Member)> {
        let raw: Vec<(EndpointId, Member)> = self
            .owner_grantees
            .iter()
            .filter_map(|t| {
                self.member_raw(t, s)
                    .filter(|m| m.role == Role::Owner)
                    .map(|m| (*t, m))
            })
            .collect();
        if !raw.is_empty() {
            return raw;
        }
        let n = self.nodes.len();
        let mut followed = Bits::new(n);
        let in_s: Vec<usize> = (0..n)
            .filter(|&j| self.accepted[j] && self.in_scope(s, j))
            .collect();
        for &j in &in_s {
            followed.or(&self.past[j]);
        }
        in_s.iter()
            .filter(|&&h| !followed.get(h))
            .flat_map(|&h| {
                self.owners_at[h]
                    .iter()
                    .filter_map(move |t| self.owner_record(t, h).map(|m| (*t, m)))
            })
            .min_by_key(|(t, m)| (m.seniority, *t))
            .map(|(t, mut m)| {
                m.role = Role::Owner;
                vec![(t, m)]
            })
            .unwrap_or_default()
    }

    /// The record of `t`, an owner at the causal point of change `h`.
    fn owner_record(&self, t: &EndpointId, h: usize) -> Option<Member> {
        let s = Scope::Past(h);
        match self.member_raw(t, s) {
            Some(m) if m.role == Role::Owner => Some(m),
            // It was an owner there by the last-owner rule: recompute that state.
            _ => self
                .owners(s)
                .into_iter()
                .find(|(o, _)| o == t)
                .map(|(_, m)| m),
        }
    }

    fn member(&self, t: &EndpointId, s: Scope, owners: &[(EndpointId, Member)]) -> Option<Member> {
        match owners.iter().find(|(o, _)| o == t) {
            Some((_, m)) => Some(m.clone()),
            None => self.member_raw(t, s),
        }
    }

    /// Decides change `i` against the state of its causal past.
    fn decide(
        &self,
        i: usize,
        genesis: Option<usize>,
    ) -> Result<(Vec<(EndpointId, Member)>, bool), Rule> {
        let v = &self.nodes[i].v;
        if v.deps().is_empty() {
            return match &v.op {
                Op::Add {
                    target,
                    role: Role::Owner,
                    scopes,
                    ..
                } if Some(i) == genesis && *target == v.author && scopes.is_empty() => {
                    Ok((Vec::new(), false))
                }
                _ => Err(Rule::NotGenesis),
            };
        }
        let s = Scope::Past(i);
        let owners = self.owners(s);
        if !owners.iter().any(|(o, _)| *o == v.author) {
            return Err(Rule::NotOwner);
        }
        let target = v.op.target();
        let tm = self.member(target, s, &owners);
        let sole_owner = |m: &Member| m.role == Role::Owner && owners.len() == 1;
        let mut removes_owner = false;
        match (&v.op, &tm) {
            (Op::Add { .. }, Some(_)) => return Err(Rule::AlreadyMember),
            (Op::Add { role, scopes, .. }, None) => {
                if *role != Role::Writer && !scopes.is_empty() {
                    return Err(Rule::ScopesOnlyForWriters);
                }
            }
            (_, None) => return Err(Rule::NotMember),
            (Op::Remove { .. }, Some(m)) => {
                if sole_owner(m) {
                    return Err(Rule::LastOwner);
                }
                removes_owner = m.role == Role::Owner;
            }
            (Op::SetRole { role, .. }, Some(m)) => {
                if *role != Role::Owner && sole_owner(m) {
                    return Err(Rule::LastOwner);
                }
                removes_owner = *role != Role::Owner && m.role == Role::Owner;
            }
            (Op::SetScopes { scopes, .. }, Some(m)) => {
                if m.role != Role::Writer && !scopes.is_empty() {
                    return Err(Rule::ScopesOnlyForWriters);
                }
            }
            (Op::Rename { .. }, Some(_)) => {}
        }
        Ok((owners, removes_owner))
    }
}

/// Evaluates stored changes (`(file name, envelope bytes)`); `pinned` is the genesis this
/// repository trusts, when it has pinned one.
pub(crate) fn evaluate(
    files: Vec<(String, Vec<u8>)>,
    pinned: Option<ChangeHash>,
    mut refusals: Vec<Refusal>,
) -> (Membership, Vec<Refusal>) {
    // 1. Envelopes.
    let mut by_hash: BTreeMap<ChangeHash, Node> = BTreeMap::new();
    for (file, bytes) in files {
        match Envelope::from_bytes(bytes).verify() {
            Err(e) => {
                let rule = match e {
                    super::envelope::EnvelopeError::BadSignature => Rule::BadSignature,
                    e => Rule::Malformed(e.to_string()),
                };
                refusals.push(Refusal {
                    file,
                    change: None,
                    author: None,
                    rule,
                });
            }
            Ok(v) => {
                if file != v.hash.to_string() {
                    refusals.push(Refusal::of(&v, file, Rule::Misfiled));
                } else {
                    by_hash.insert(v.hash, Node { v, file, depth: 0 });
                }
            }
        }
    }
    evaluate_verified(
        by_hash.into_values().map(|n| (n.file, n.v)).collect(),
        pinned,
        refusals,
    )
}

/// Evaluates changes whose envelopes were already verified, each with its file name.
pub(crate) fn evaluate_verified(
    changes: Vec<(String, VerifiedChange)>,
    pinned: Option<ChangeHash>,
    mut refusals: Vec<Refusal>,
) -> (Membership, Vec<Refusal>) {
    let mut by_hash: BTreeMap<ChangeHash, Node> = changes
        .into_iter()
        .map(|(file, v)| (v.hash, Node { v, file, depth: 0 }))
        .collect();
    // 2. Topological order (Kahn, smallest hash first); what never becomes ready has
    // unknown dependencies.
    let mut waiting: HashMap<ChangeHash, Vec<ChangeHash>> = HashMap::new();
    let mut missing: HashMap<ChangeHash, usize> = HashMap::new();
    let mut ready = BinaryHeap::new();
    for (h, n) in &by_hash {
        let deps: BTreeSet<&ChangeHash> = n.v.deps().iter().collect();
        missing.insert(*h, deps.len());
        if deps.is_empty() {
            ready.push(Reverse(*h));
        }
        for d in deps {
            waiting.entry(*d).or_default().push(*h);
        }
    }
    let mut order: Vec<ChangeHash> = Vec::with_capacity(by_hash.len());
    while let Some(Reverse(h)) = ready.pop() {
        order.push(h);
        for w in waiting.get(&h).map(Vec::as_slice).unwrap_or_default() {
            if let Some(m) = missing.get_mut(w) {
                *m -= 1;
                if *m == 0 {
                    ready.push(Reverse(*w));
                }
            }
        }
    }
    let mut index: HashMap<ChangeHash, usize> = HashMap::with_capacity(order.len());
    let mut nodes = Vec::with_capacity(order.len());
    for h in &order {
        if let Some(n) = by_hash.remove(h) {
            index.insert(*h, nodes.len());
            nodes.push(n);
        }
    }
    for (_, n) in by_hash {
        let unknown: Vec<ChangeHash> =
            n.v.deps()
                .iter()
                .filter(|d| !index.contains_key(d))
                .copied()
                .collect();
        refusals.push(Refusal::of(
            &n.v,
            n.file.clone(),
            Rule::UnknownDeps(unknown),
        ));
    }
    // 3. Ancestor sets and depths.
    let count = nodes.len();
    let mut past = Vec::with_capacity(count);
    for i in 0..count {
        let mut b = Bits::new(count);
        let mut depth = 0;
        for d in nodes[i].v.deps() {
            if let Some(&j) = index.get(d) {
                b.or(&past[j]);
                b.set(j);
                depth = depth.max(nodes[j].depth + 1);
            }
        }
        nodes[i].depth = depth;
        past.push(b);
    }
    // 4. The genesis: the pinned one, else the root with the smallest hash.
    let genesis = match pinned {
        Some(p) => index.get(&p).copied(),
        None => (0..count).find(|&i| {
            let v = &nodes[i].v;
            v.deps().is_empty()
                && matches!(&v.op, Op::Add { target, role: Role::Owner, .. } if *target == v.author)
        }),
    };
    // 5. Decide each change in order.
    let mut e = Eval {
        nodes,
        past,
        accepted: vec![false; count],
        ops_on: BTreeMap::new(),
        owner_grantees: BTreeSet::new(),
        owners_at: vec![Vec::new(); count],
        sightings: HashMap::new(),
        removes_owner: vec![false; count],
    };
    for i in 0..count {
        match e.decide(i, genesis) {
            Err(rule) => {
                tracing::debug!(change = %e.nodes[i].v.hash, %rule, "membership change refused");
                refusals.push(Refusal::of(&e.nodes[i].v, e.nodes[i].file.clone(), rule));
            }
            Ok((owners, removes_owner)) => {
                e.accepted[i] = true;
                e.removes_owner[i] = removes_owner;
                let v = &e.nodes[i].v;
                let target = *v.op.target();
                if matches!(
                    v.op,
                    Op::Add {
                        role: Role::Owner,
                        ..
                    } | Op::SetRole {
                        role: Role::Owner,
                        ..
                    }
                ) {
                    e.owner_grantees.insert(target);
                }
                e.ops_on.entry(target).or_default().push(i);
                for (t, _) in &owners {
                    e.sightings.entry(*t).or_default().push(i);
                }
                e.owners_at[i] = owners.into_iter().map(|(t, _)| t).collect();
            }
        }
    }
    // 6. The final state.
    let owners = if e.accepted.iter().any(|a| *a) {
        e.owners(Scope::All)
    } else {
        Vec::new()
    };
    let members: BTreeMap<EndpointId, Member> = e
        .ops_on
        .keys()
        .filter_map(|t| e.member(t, Scope::All, &owners).map(|m| (*t, m)))
        .collect();
    let mut followed = Bits::new(count);
    for i in (0..count).filter(|&i| e.accepted[i]) {
        followed.or(&e.past[i]);
    }
    let heads: Vec<ChangeHash> = (0..count)
        .filter(|&i| e.accepted[i] && !followed.get(i))
        .map(|i| e.hash(i))
        .collect();
    let mut next_seq: BTreeMap<EndpointId, u64> = BTreeMap::new();
    let mut max_op = 0;
    for n in &e.nodes {
        let s = next_seq.entry(n.v.author).or_default();
        *s = (*s).max(n.v.change.seq());
        max_op = max_op.max(n.v.change.max_op());
    }
    let accepted = (0..count)
        .filter(|&i| e.accepted[i])
        .map(|i| e.nodes[i].v.change.clone())
        .collect();
    refusals.sort_by(|a, b| a.file.cmp(&b.file));
    (
        Membership {
            members,
            heads,
            genesis: genesis.filter(|&g| e.accepted[g]).map(|g| e.hash(g)),
            last_seq: next_seq,
            max_op,
            accepted,
        },
        refusals,
    )
}
