//! Membership as a signed CRDT (ADR 0017): who may read, write and change the membership of a
//! repository, replicated with the repository itself.
//!
//! Each membership change is one automerge change that puts one operation record ([`Op`])
//! under a key of its own, wrapped in an [`Envelope`] signed by its author's node key. The
//! envelopes are files `changes/<change hash>` on the branch [`BRANCH`], so the existing sync
//! protocol replicates them and its merge of two peers' branches is their union. The
//! membership is computed from the verified changes by a deterministic evaluation over their
//! causal graph ([`evaluate`]): a change counts only if its author was an owner in the state
//! of the change's causal past, and concurrent changes resolve by the rules of ADR 0017
//! (removal wins, the last owner stays). A change that fails a check is never applied; it comes
//! back as a [`Refusal`].

mod envelope;
mod eval;
mod glob;
mod state;

use std::collections::HashMap;

use automerge::ChangeHash;
use hero_store::{CommitMeta, EntryKind, Expect, ObjectId, Repo, RepoPath, Signature};
use iroh::{EndpointId, SecretKey};

pub use envelope::{
    Envelope, EnvelopeError, MAX_CHANGE, MAX_DEPS, MAX_ENVELOPE, MAX_NAME, MAX_SCOPES, Op, Role,
    VerifiedChange, record_key, sign_change,
};
pub use glob::{MAX_SCOPE_LEN, ScopeError, check_scope, scope_matches, segment_matches};
pub use state::{Member, Membership, MembershipError, Refusal, Rule};

use crate::allow::{self, Access};

/// The branch that holds the membership changes (the `hero/` prefix is reserved).
pub const BRANCH: &str = "hero/membership";
/// The directory of that branch that holds one file per change.
pub const CHANGES_DIR: &str = "changes";
/// The setting that pins the genesis change this repository trusts.
pub const GENESIS_KEY: &str = "membership/genesis";

/// The genesis change: `key`'s node as the first owner.
pub fn genesis(key: &SecretKey, name: &str, time_ms: i64) -> Result<Envelope, EnvelopeError> {
    let op = Op::Add {
        target: key.public(),
        name: name.to_owned(),
        role: Role::Owner,
        scopes: Vec::new(),
    };
    sign_change(key, &op, Vec::new(), 1, 1, time_ms)
}

/// Evaluates envelopes held in memory (`(name, bytes)`, the name being the change hash as
/// it would be stored); `pinned` is the trusted genesis, if any.
pub fn evaluate(
    envelopes: Vec<(String, Vec<u8>)>,
    pinned: Option<ChangeHash>,
) -> (Membership, Vec<Refusal>) {
    eval::evaluate(envelopes, pinned, Vec::new())
}

/// Evaluates changes already verified (with [`Envelope::verify`]), named by their hashes.
pub fn evaluate_verified(
    changes: Vec<VerifiedChange>,
    pinned: Option<ChangeHash>,
) -> (Membership, Vec<Refusal>) {
    eval::evaluate_verified(
        changes
            .into_iter()
            .map(|v| (v.hash.to_string(), v))
            .collect(),
        pinned,
        Vec::new(),
    )
}

/// The file name of an envelope: its change hash (after verifying it).
pub fn file_name(envelope: &Envelope) -> Result<String, EnvelopeError> {
    Ok(envelope.verify()?.hash.to_string())
}

/// The genesis this repository trusts, when one is pinned.
pub fn pinned(repo: &Repo) -> Result<Option<ChangeHash>, MembershipError> {
    Ok(repo
        .setting(GENESIS_KEY)?
        .and_then(|v| String::from_utf8_lossy(&v).parse::<ChangeHash>().ok()))
}

/// Pins the genesis this repository trusts (set by [`init`] and [`upgrade_from_allow_list`];
/// a clone adopts its source's).
pub fn pin_genesis(repo: &Repo, genesis: &ChangeHash) -> Result<(), MembershipError> {
    repo.set_setting(GENESIS_KEY, Some(genesis.to_string().as_bytes()))?;
    Ok(())
}

/// Stored envelopes: (file name, bytes).
type Files = Vec<(String, Vec<u8>)>;

/// The most commits of the membership branch's history [`load`] reads.
pub const MAX_HISTORY: usize = 1_000_000;

/// The stored envelopes, and refusals for files that cannot be envelopes.
///
/// Every change file found anywhere in the branch's history counts, not only those of its
/// head: a commit that deletes a change file (a removal, say) cannot bring back what it undid.
fn read_stored(repo: &Repo) -> Result<(Files, Vec<Refusal>), MembershipError> {
    read_stored_with(repo, None)
}

/// [`read_stored`], with the history of `extra` (a membership head that arrived) too.
fn read_stored_with(
    repo: &Repo,
    extra: Option<ObjectId>,
) -> Result<(Files, Vec<Refusal>), MembershipError> {
    let view = repo.view()?;
    let mut stack: Vec<ObjectId> = view.branch_head(BRANCH)?.into_iter().chain(extra).collect();
    if stack.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let dir = RepoPath::parse(CHANGES_DIR)?;
    let mut seen_commits = hero_store::IdSet::default();
    let mut seen_trees = hero_store::IdSet::default();
    let mut entries: HashMap<(Vec<u8>, ObjectId), (bool, u64)> = HashMap::new();
    while let Some(c) = stack.pop() {
        if !seen_commits.insert(c) {
            continue;
        }
        if seen_commits.len() > MAX_HISTORY {
            tracing::warn!(
                "membership history longer than {MAX_HISTORY} commits; the rest is not read"
            );
            break;
        }
        let commit = view.commit(&c)?;
        stack.extend(commit.parents.iter().copied());
        if let Some(e) = view.entry_at(&commit.tree, &dir)?
            && e.kind == EntryKind::Dir
            && seen_trees.insert(e.id)
        {
            for e in view.tree(&e.id)?.entries {
                entries.insert((e.name, e.id), (e.kind.is_blob(), e.size));
            }
        }
    }
    let mut files = Vec::new();
    let mut refusals = Vec::new();
    let mut entries: Vec<_> = entries.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for ((name, id), (is_blob, size)) in entries {
        let name = String::from_utf8_lossy(&name).into_owned();
        if !is_blob || size > MAX_ENVELOPE as u64 {
            refusals.push(Refusal {
                file: name,
                change: None,
                author: None,
                rule: Rule::Malformed("not a file of at most MAX_ENVELOPE bytes".into()),
            });
            continue;
        }
        files.push((name, view.read_file(&id, MAX_ENVELOPE as u64)?));
    }
    Ok((files, refusals))
}

/// Loads the membership of a repository: every stored change evaluated; the refused ones come
/// back (for the audit log) and are never applied.
pub fn load(repo: &Repo) -> Result<(Membership, Vec<Refusal>), MembershipError> {
    let (files, refusals) = read_stored(repo)?;
    let (m, r) = eval::evaluate(files, pinned(repo)?, refusals);
    for refusal in &r {
        tracing::debug!("{refusal}");
    }
    Ok((m, r))
}

/// The stored change files (name, bytes), with those of the history of `extra` (a membership
/// head that arrived) too.
pub fn stored_files(
    repo: &Repo,
    extra: Option<ObjectId>,
) -> Result<Vec<(String, Vec<u8>)>, MembershipError> {
    Ok(read_stored_with(repo, extra)?.0)
}

/// Whether the repository lives under a membership (a pinned genesis or a membership branch);
/// one that does not is governed by its allow list until it is upgraded.
pub fn is_enforced(repo: &Repo) -> Result<bool, MembershipError> {
    Ok(pinned(repo)?.is_some() || repo.branch_head(BRANCH)?.is_some())
}

/// The branch prefix only hero itself writes: users cannot create, move or delete these
/// branches with ordinary commands, and sync moves only [`BRANCH`], after checking it.
pub const RESERVED_PREFIX: &str = hero_store::RESERVED_BRANCH_PREFIX;

/// Whether `branch` is reserved (starts with [`RESERVED_PREFIX`]).
pub fn is_reserved(branch: &str) -> bool {
    hero_store::is_reserved_branch(branch)
}

/// The changes that the membership history ending at `head` (one that arrived from a peer,
/// already stored as objects) brings and that are refused: what the stored changes plus that
/// history give, less the refusals of the stored changes alone. Empty: every change it brings
/// is acceptable.
pub fn check_incoming(repo: &Repo, head: ObjectId) -> Result<Vec<Refusal>, MembershipError> {
    let pinned = pinned(repo)?;
    let (files, refusals) = read_stored(repo)?;
    let (_, before) = eval::evaluate(files, pinned, refusals);
    let before: std::collections::HashSet<String> = before.into_iter().map(|r| r.file).collect();
    let (files, refusals) = read_stored_with(repo, Some(head))?;
    let (_, after) = eval::evaluate(files, pinned, refusals);
    Ok(after
        .into_iter()
        .filter(|r| !before.contains(&r.file))
        .collect())
}

/// Puts a repository under membership on first use: one without a pinned genesis and without
/// a membership branch is upgraded from its allow list ([`upgrade_from_allow_list`], `key`'s
/// node the first owner). Returns the upgrade when one was made.
pub fn ensure(
    repo: &Repo,
    key: &SecretKey,
    name: &str,
    time_ms: i64,
) -> Result<Option<Upgrade>, MembershipError> {
    if is_enforced(repo)? {
        return Ok(None);
    }
    match upgrade_from_allow_list(repo, key, name, time_ms) {
        Ok(u) => Ok(Some(u)),
        // Another process upgraded meanwhile.
        Err(MembershipError::AlreadyInitialized) => Ok(None),
        Err(MembershipError::Store(hero_store::Error::RefMoved { .. })) => Ok(None),
        Err(e) => Err(e),
    }
}

fn commit_meta(author: &EndpointId, time_ms: i64, message: String) -> CommitMeta {
    let mut meta = CommitMeta::new(
        Signature {
            name: b"hero membership".to_vec(),
            email: Vec::new(),
            time: time_ms.div_euclid(1000),
            tz_offset_minutes: 0,
        },
        message,
    );
    meta.extra.push(crate::peer::peer_header(author));
    meta
}

fn write_envelopes(
    repo: &Repo,
    envs: &[(String, &Envelope)],
    meta: CommitMeta,
) -> Result<(), MembershipError> {
    let mut cs = repo.change_set_reserved(BRANCH)?;
    for (name, env) in envs {
        let path = RepoPath::parse(format!("{CHANGES_DIR}/{name}"))?;
        cs.put_bytes(&path, EntryKind::File, env.as_bytes())?;
    }
    cs.commit(meta, Expect::Latest)?;
    Ok(())
}

/// Verifies a change, checks it against the stored membership, and stores it. A change that
/// would be refused is not stored: [`MembershipError::Refused`]. Storing one already there is
/// a no-op. Returns its hash.
pub fn append(repo: &Repo, envelope: &Envelope) -> Result<ChangeHash, MembershipError> {
    let v = envelope.verify().map_err(|e| {
        MembershipError::Refused(Box::new(Refusal {
            file: String::new(),
            change: None,
            author: None,
            rule: match e {
                EnvelopeError::BadSignature => Rule::BadSignature,
                e => Rule::Malformed(e.to_string()),
            },
        }))
    })?;
    let name = v.hash.to_string();
    let (mut files, refusals) = read_stored(repo)?;
    if files.iter().any(|(f, _)| *f == name) {
        return Ok(v.hash);
    }
    files.push((name.clone(), envelope.as_bytes().to_vec()));
    let (_, refused) = eval::evaluate(files, pinned(repo)?, refusals);
    if let Some(r) = refused.into_iter().find(|r| r.file == name) {
        return Err(MembershipError::Refused(Box::new(r)));
    }
    let msg = format!(
        "membership: {} by {}",
        describe(&v.op),
        v.author.fmt_short()
    );
    write_envelopes(
        repo,
        &[(name, envelope)],
        commit_meta(&v.author, v.time(), msg),
    )?;
    Ok(v.hash)
}

fn describe(op: &Op) -> String {
    match op {
        Op::Add { target, role, .. } => format!("add {} as {role}", target.fmt_short()),
        Op::Remove { target } => format!("remove {}", target.fmt_short()),
        Op::SetRole { target, role } => format!("make {} {role}", target.fmt_short()),
        Op::SetScopes { target, .. } => format!("set scopes of {}", target.fmt_short()),
        Op::Rename { target, .. } => format!("rename {}", target.fmt_short()),
    }
}

/// Starts the membership of a repository: `key`'s node is its first owner (what
/// `heroctl init` does). Pins the genesis.
pub fn init(
    repo: &Repo,
    key: &SecretKey,
    name: &str,
    time_ms: i64,
) -> Result<Membership, MembershipError> {
    if repo.branch_head(BRANCH)?.is_some() {
        return Err(MembershipError::AlreadyInitialized);
    }
    let g = genesis(key, name, time_ms)?;
    let hash = append(repo, &g)?;
    pin_genesis(repo, &hash)?;
    Ok(load(repo)?.0)
}

/// The rule a writer's change of `.hero/` breaks.
pub fn config_rule() -> String {
    format!(
        "only owners may change {}/ (the configuration the daemons obey)",
        hero_store::CONFIG_DIR
    )
}

/// What [`upgrade_from_allow_list`] did.
#[derive(Debug, Clone)]
pub struct Upgrade {
    /// The membership it made.
    pub membership: Membership,
    /// The peers added, with the role their access became.
    pub added: Vec<(EndpointId, Role)>,
    /// Allow-list entries that are not node ids (kept in the allow list, not members).
    pub skipped: Vec<String>,
}

/// Makes the initial membership of an existing repository from its allow list: `key`'s node
/// becomes the first owner, each read-write peer a writer (no scopes), each read-only peer a
/// reader, all signed by `key`, in one commit. The allow list itself is left as it is.
pub fn upgrade_from_allow_list(
    repo: &Repo,
    key: &SecretKey,
    name: &str,
    time_ms: i64,
) -> Result<Upgrade, MembershipError> {
    if repo.branch_head(BRANCH)?.is_some() {
        return Err(MembershipError::AlreadyInitialized);
    }
    let me = key.public();
    let g = genesis(key, name, time_ms)?;
    let mut prev = g.verify()?;
    let mut envs = vec![(prev.hash.to_string(), g)];
    let mut verified = vec![prev.clone()];
    let mut added = Vec::new();
    let mut skipped = Vec::new();
    for (id, acc) in allow::allowed(repo)? {
        let Ok(node) = id.trim().parse::<EndpointId>() else {
            tracing::warn!("allow-list entry {id:?} is not a node id; left out of the membership");
            skipped.push(id);
            continue;
        };
        if node == me || added.iter().any(|(n, _)| *n == node) {
            continue;
        }
        let role = match acc {
            Access::ReadWrite => Role::Writer,
            Access::ReadOnly => Role::Reader,
        };
        let op = Op::Add {
            target: node,
            name: String::new(),
            role,
            scopes: Vec::new(),
        };
        // One chain by one author: each change after the previous, numbered in order.
        let n = prev.change.seq() + 1;
        let env = sign_change(key, &op, vec![prev.hash], n, n, time_ms)?;
        prev = env.verify()?;
        envs.push((prev.hash.to_string(), env));
        verified.push(prev.clone());
        added.push((node, role));
    }
    let (state, refused) = evaluate_verified(verified, None);
    if let Some(r) = refused.into_iter().next() {
        return Err(MembershipError::Refused(Box::new(r)));
    }
    let refs: Vec<(String, &Envelope)> = envs.iter().map(|(n, e)| (n.clone(), e)).collect();
    let msg = format!(
        "membership: initial membership from the allow list ({} peers)",
        added.len()
    );
    write_envelopes(repo, &refs, commit_meta(&me, time_ms, msg))?;
    if let Some(g) = state.genesis() {
        pin_genesis(repo, &g)?;
    }
    Ok(Upgrade {
        membership: state,
        added,
        skipped,
    })
}
