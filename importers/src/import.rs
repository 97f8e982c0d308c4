//! `import_git`: streaming, batched, incremental import of a git repository.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use gix::objs::Kind;
use hero_store::{
    Commit, EntryKind, EntryMeta, ObjectId, RefValue, Repo, SMALL_FILE_MAX, Tag, TargetKind, Tree,
    TreeEntry,
};

use crate::error::ImportError;
use crate::gitfmt::{self, GitId};
use crate::mapping::{
    GIT_ID_HEADER, Mapped, MappedKind, g2s_key, lookup_git, raw_key, raw_tree_key, s2g_key,
};
use crate::reader::GitReader;

/// Progress of an import, passed to [`ImportOptions::progress`] after every commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportProgress {
    /// Commits imported so far in this run.
    pub commits_done: u64,
    /// Commits this run has to import, when counted (see [`ImportOptions::count_total`]).
    pub commits_total: Option<u64>,
}

/// A progress callback.
pub type ProgressFn = Box<dyn Fn(&ImportProgress) + Send + Sync>;

/// How to import.
pub struct ImportOptions {
    /// Prefix put before every imported branch name (`""`: same names as in git).
    pub branch_prefix: String,
    /// Prefix put before every imported tag name.
    pub tag_prefix: String,
    /// Commits per store transaction. Refs move only when a batch lands.
    pub batch_commits: usize,
    /// Raw bytes of small objects per store transaction.
    pub batch_bytes: usize,
    /// Count the commits to import first (one more pass over new commits, and a set of their
    /// ids in memory) so progress has a total.
    pub count_total: bool,
    /// Called after every imported commit.
    pub progress: Option<ProgressFn>,
    /// Move a branch or tag even when it holds work the import does not contain (its old
    /// value stays in the reflog).
    pub force: bool,
    /// Import a ref that would be refused under this prefix instead (`None`: refuse it).
    pub rename_refused: Option<String>,
    /// Drop tree entries git itself refuses (`.git` and its aliases, `.`, `..`, names with
    /// `/` or NUL; [`hero_store::is_git_unsafe`]) instead of failing with
    /// [`ImportError::UnsafePath`]. The commits that held one (and their descendants) then
    /// get other git ids on export: see [`ImportReport::rewritten`].
    pub skip_unsafe_paths: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            branch_prefix: String::new(),
            tag_prefix: String::new(),
            batch_commits: 2000,
            batch_bytes: 4 << 20,
            count_total: true,
            progress: None,
            force: false,
            rename_refused: None,
            skip_unsafe_paths: false,
        }
    }
}

impl std::fmt::Debug for ImportOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportOptions")
            .field("branch_prefix", &self.branch_prefix)
            .field("tag_prefix", &self.tag_prefix)
            .field("batch_commits", &self.batch_commits)
            .field("batch_bytes", &self.batch_bytes)
            .field("count_total", &self.count_total)
            .field("progress", &self.progress.is_some())
            .field("force", &self.force)
            .field("rename_refused", &self.rename_refused)
            .field("skip_unsafe_paths", &self.skip_unsafe_paths)
            .finish()
    }
}

/// A git ref that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRef {
    /// The git ref name (lossy if not UTF-8).
    pub name: String,
    /// Why.
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Commits newly imported.
    pub commits: u64,
    /// Trees newly imported.
    pub trees: u64,
    /// Blobs newly imported.
    pub blobs: u64,
    /// Annotated tags newly imported.
    pub tags: u64,
    /// Objects whose raw git bytes were kept because git's writer would not reproduce them.
    pub raw_kept: u64,
    /// Store refs created.
    pub refs_created: u64,
    /// Store refs moved (fast-forward or forced; the old value stays in the reflog).
    pub refs_moved: u64,
    /// Refs already where git has them.
    pub refs_unchanged: u64,
    /// Store transactions written.
    pub batches: u64,
    /// Refs that were not imported.
    pub skipped: Vec<SkippedRef>,
    /// Refs left where they were because they hold work the import does not contain.
    pub refused: Vec<RefusedRef>,
    /// Refs imported under another name instead (`--rename-refused`): (git's name, ours).
    pub renamed: Vec<(String, String)>,
    /// The default branch this import recorded: the one git's HEAD names, when the store had
    /// none recorded or no branch at all.
    pub default_branch: Option<String>,
    /// Tree entries dropped by [`ImportOptions::skip_unsafe_paths`], each path once with the
    /// first commit it was found in, sorted by path.
    pub dropped: Vec<DroppedPath>,
    /// Commits and tags imported without their git id: they held a dropped path, or descend
    /// from (or point at) one that did. An export writes them with new git ids (it is not
    /// lossless for them); every other object keeps its id.
    pub rewritten: u64,
}

/// A path git refuses that an import dropped ([`ImportOptions::skip_unsafe_paths`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedPath {
    /// The path in the git tree (lossy if not UTF-8).
    pub path: String,
    /// The first commit (or tag) whose tree held it.
    pub commit: GitId,
}

/// A ref an import did not move: here it holds commits the import does not contain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedRef {
    /// The store ref (`refs/heads/x`, `refs/tags/x`).
    pub name: String,
    /// What it holds here.
    pub local: RefValue,
    /// What the import would have set it to.
    pub imported: RefValue,
}

/// Objects of the current batch, written in one transaction.
#[derive(Default)]
struct Pending {
    blobs: Vec<(Vec<u8>, Option<ObjectId>)>,
    trees: Vec<(Tree, Option<ObjectId>)>,
    tree_index: HashMap<ObjectId, usize>,
    commits: Vec<Commit>,
    commit_index: HashMap<ObjectId, usize>,
    tags: Vec<Tag>,
    xrefs: Vec<(Vec<u8>, Vec<u8>)>,
    map: HashMap<GitId, Mapped>,
    refs: Vec<(String, RefValue)>,
    bytes: usize,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.xrefs.is_empty() && self.refs.is_empty() && self.blobs.is_empty()
    }
}

/// Mappings read back recently; cleared when it grows past this many entries.
const RECENT_MAX: usize = 1 << 18;

struct Importer<'a> {
    repo: &'a Repo,
    git: GitReader,
    opts: &'a ImportOptions,
    pending: Pending,
    recent: HashMap<GitId, Mapped>,
    /// Git trees kept raw (their export needs the raw bytes).
    raw_trees: HashSet<GitId>,
    /// Root git tree of recently converted commits: a child finds its parent's here instead
    /// of reading the parent commit from git again.
    commit_trees: HashMap<GitId, GitId>,
    refname: String,
    /// The commit (or tag) being converted, for the paths it drops or refuses.
    current: GitId,
    /// Git trees, commits and tags of this run imported without a dropped entry's git id.
    altered: HashSet<GitId>,
    /// Dropped paths: path → first commit.
    dropped: std::collections::BTreeMap<String, GitId>,
    report: ImportReport,
    done: u64,
    total: Option<u64>,
    batch_commits: usize,
}

/// Imports every branch and tag of the git repository at `git_dir` (bare, or a work tree's
/// `.git` or its parent) into `repo`. Only commits not imported before are read. Commits are
/// written in batches, each one store transaction; refs move only when the batch holding
/// their commits lands, so an error leaves the store as it was before the failing batch and a
/// rerun resumes where the last one stopped.
pub fn import_git(
    repo: &Repo,
    git_dir: &Path,
    opts: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    let git = GitReader::open(git_dir)?;
    let (refs, skipped) = git.refs()?;
    let adopt_head = repo.branches()?.is_empty() || !repo.has_default_branch()?;
    let head = git.head_branch();
    let mut imp = Importer {
        repo,
        git,
        opts,
        pending: Pending::default(),
        recent: HashMap::new(),
        raw_trees: repo
            .xrefs_with_prefix(crate::mapping::RAW_TREE)?
            .into_iter()
            .filter_map(|(k, _)| GitId::from_bytes(&k[crate::mapping::RAW_TREE.len()..]))
            .collect(),
        commit_trees: HashMap::new(),
        refname: String::new(),
        current: GitId([0; 20]),
        altered: HashSet::new(),
        dropped: std::collections::BTreeMap::new(),
        report: ImportReport::default(),
        done: 0,
        total: None,
        batch_commits: opts.batch_commits.max(1),
    };
    imp.report.skipped = skipped
        .into_iter()
        .map(|(name, reason)| SkippedRef { name, reason })
        .collect();
    if opts.count_total {
        imp.total = Some(imp.count(&refs)?);
    }
    for r in &refs {
        imp.refname = r.name.clone();
        let (hero_ref, is_branch) = if let Some(b) = r.name.strip_prefix("refs/heads/") {
            let mut name = format!("{}{b}", opts.branch_prefix);
            // hero's own branches (the membership) are never written by an import: such a git
            // branch goes under the rename prefix, or is skipped and said so.
            if hero_store::is_reserved_branch(&name) {
                match &opts.rename_refused {
                    Some(p) if !hero_store::is_reserved_branch(&format!("{p}{name}")) => {
                        let other = format!("{p}{name}");
                        imp.report.renamed.push((
                            format!("{}{name}", hero_store::BRANCH_PREFIX),
                            format!("{}{other}", hero_store::BRANCH_PREFIX),
                        ));
                        name = other;
                    }
                    _ => {
                        imp.skip(
                            &r.name,
                            format!(
                                "`{}` branches are hero's own (its membership); import it under \
                                 another name with --branch-prefix or --rename-refused",
                                hero_store::RESERVED_BRANCH_PREFIX
                            ),
                        );
                        continue;
                    }
                }
            }
            (hero_store::branch_ref(&name), true)
        } else if let Some(t) = r.name.strip_prefix("refs/tags/") {
            (
                hero_store::tag_ref(&format!("{}{t}", opts.tag_prefix)),
                false,
            )
        } else {
            continue;
        };
        let hero_ref = match hero_ref {
            Ok(n) => n,
            Err(e) => {
                imp.skip(&r.name, e.to_string());
                continue;
            }
        };
        let (kind, _) = imp.git.read_any(r.target, &r.name)?;
        let value = match kind {
            Kind::Commit => RefValue::Commit(imp.commit_closure(r.target)?),
            Kind::Tag if is_branch => {
                // A branch naming a tag: follow it to the commit.
                match imp.peel_to_commit(r.target)? {
                    Some(c) => RefValue::Commit(imp.commit_closure(c)?),
                    None => {
                        imp.skip(&r.name, "does not lead to a commit".to_owned());
                        continue;
                    }
                }
            }
            Kind::Tag => RefValue::Tag(imp.tag(r.target)?.id),
            _ => {
                imp.skip(&r.name, format!("points at a {kind}, not a commit or tag"));
                continue;
            }
        };
        imp.pending.refs.push((hero_ref, value));
    }
    imp.flush()?;
    imp.report.dropped = std::mem::take(&mut imp.dropped)
        .into_iter()
        .map(|(path, commit)| DroppedPath { path, commit })
        .collect();
    // An imported project whose trunk is `master` (or anything) works with plain commands.
    if let (true, Some(h)) = (adopt_head, head) {
        let name = format!("{}{h}", opts.branch_prefix);
        if repo.branch_head(&name)?.is_some() {
            repo.set_default_branch(&name)?;
            imp.report.default_branch = Some(name);
        }
    }
    Ok(imp.report)
}

struct Frame {
    id: GitId,
    parents: Vec<GitId>,
    next: usize,
}

impl Importer<'_> {
    fn skip(&mut self, name: &str, reason: String) {
        tracing::warn!(git_ref = name, %reason, "git ref skipped");
        self.report.skipped.push(SkippedRef {
            name: name.to_owned(),
            reason,
        });
    }

    fn corrupt(&self, id: GitId, reason: impl Into<String>) -> ImportError {
        ImportError::CorruptObject {
            id,
            refname: self.refname.clone(),
            reason: reason.into(),
        }
    }

    fn lookup(&mut self, id: &GitId) -> Result<Option<Mapped>, ImportError> {
        if let Some(m) = self.pending.map.get(id) {
            return Ok(Some(*m));
        }
        if let Some(m) = self.recent.get(id) {
            return Ok(Some(*m));
        }
        let found = lookup_git(self.repo, id)?;
        if let Some(m) = found {
            self.remember(*id, m);
        }
        Ok(found)
    }

    fn remember(&mut self, id: GitId, m: Mapped) {
        if self.recent.len() >= RECENT_MAX {
            self.recent.clear();
        }
        self.recent.insert(id, m);
    }

    /// Remembers what a git object became. Commits and tags are kept in the repository both
    /// ways; trees and blobs only in memory unless `persist` (export needs them below a tree
    /// or commit kept raw), since later imports find them through the parent commit.
    fn record(&mut self, git: GitId, m: Mapped, raw: Option<Vec<u8>>, persist: bool) {
        // An altered commit or tag has no git id to give back on export: only git → store,
        // so a later import finds it.
        let both_ways =
            matches!(m.kind, MappedKind::Commit | MappedKind::Tag) && !self.altered.contains(&git);
        if both_ways || persist {
            self.pending.xrefs.push((g2s_key(&git), m.encode()));
        }
        if both_ways {
            self.pending.xrefs.push((s2g_key(&m.id), git.0.to_vec()));
        } else if matches!(m.kind, MappedKind::Commit | MappedKind::Tag) {
            self.pending
                .xrefs
                .push((crate::mapping::altered_key(&m.id), git.0.to_vec()));
        }
        if let Some(raw) = raw {
            self.report.raw_kept += 1;
            self.pending.bytes += raw.len();
            let key = if m.kind == MappedKind::RawTree {
                raw_tree_key(&git)
            } else {
                raw_key(&m.id)
            };
            if m.kind == MappedKind::RawTree {
                self.raw_trees.insert(git);
            }
            self.pending.xrefs.push((key, raw));
        }
        self.pending.map.insert(git, m);
    }

    /// Whether the git commit or tag `git`, imported as `sid`, was imported without its git
    /// id (this run: [`Importer::altered`]; an earlier one: [`crate::mapping::ALTERED`]).
    fn is_altered(&self, git: &GitId, sid: &ObjectId) -> Result<bool, ImportError> {
        Ok(self.altered.contains(git)
            || self.repo.xref(&crate::mapping::altered_key(sid))?.is_some())
    }

    /// An entry git refuses, at `path` in the tree of the current commit: dropped and listed
    /// with [`ImportOptions::skip_unsafe_paths`], else the import fails naming it.
    fn unsafe_entry(&mut self, path: &[u8], reason: String) -> Result<(), ImportError> {
        let shown = String::from_utf8_lossy(path).into_owned();
        if !self.opts.skip_unsafe_paths {
            return Err(ImportError::UnsafePath {
                path: shown,
                commit: self.current,
                refname: self.refname.clone(),
                reason,
            });
        }
        tracing::debug!(path = %shown, commit = %self.current, %reason, "unsafe path dropped");
        self.dropped.entry(shown).or_insert(self.current);
        Ok(())
    }

    fn commit_parents(&self, id: GitId) -> Result<Vec<GitId>, ImportError> {
        let raw = self.git.read(id, Kind::Commit, &self.refname)?;
        gitfmt::parse_commit(&raw)
            .map(|c| c.parents)
            .ok_or_else(|| self.corrupt(id, "not a well-formed commit"))
    }

    /// Reads a parent's commit, turning "missing" into a shallow-clone error when it is one.
    fn parent_parents(&self, child: GitId, p: GitId) -> Result<Vec<GitId>, ImportError> {
        match self.commit_parents(p) {
            Err(ImportError::MissingObject { .. }) if self.git.shallow => {
                Err(ImportError::Shallow {
                    refname: self.refname.clone(),
                    commit: child,
                    missing: p,
                })
            }
            other => other,
        }
    }

    /// Counts commits not imported yet, reachable from the refs.
    fn count(&mut self, refs: &[crate::reader::GitRef]) -> Result<u64, ImportError> {
        let mut seen: HashSet<GitId> = HashSet::new();
        for r in refs {
            self.refname = r.name.clone();
            let start = match self.git.read_any(r.target, &r.name)?.0 {
                Kind::Commit => Some(r.target),
                Kind::Tag => self.peel_to_commit(r.target)?,
                _ => None,
            };
            let mut stack: Vec<(GitId, Option<GitId>)> =
                start.map(|s| (s, None)).into_iter().collect();
            while let Some((id, child)) = stack.pop() {
                if seen.contains(&id) || self.lookup(&id)?.is_some() {
                    continue;
                }
                seen.insert(id);
                let parents = match child {
                    Some(c) => self.parent_parents(c, id)?,
                    None => self.commit_parents(id)?,
                };
                for p in parents {
                    if !seen.contains(&p) {
                        stack.push((p, Some(id)));
                    }
                }
            }
        }
        Ok(seen.len() as u64)
    }

    /// Follows annotated tags to a commit, if they lead to one.
    fn peel_to_commit(&self, mut id: GitId) -> Result<Option<GitId>, ImportError> {
        for _ in 0..64 {
            let (kind, raw) = self.git.read_any(id, &self.refname)?;
            match kind {
                Kind::Commit => return Ok(Some(id)),
                Kind::Tag => {
                    id = gitfmt::parse_tag(&raw)
                        .ok_or_else(|| self.corrupt(id, "not a well-formed tag"))?
                        .target;
                }
                _ => return Ok(None),
            }
        }
        Err(self.corrupt(id, "tag chain longer than 64"))
    }

    /// Imports `tip` and every ancestor not imported yet, parents first (depth-first, so
    /// memory holds only the current path, not the history).
    fn commit_closure(&mut self, tip: GitId) -> Result<ObjectId, ImportError> {
        if let Some(m) = self.lookup(&tip)? {
            return Ok(m.id);
        }
        let parents = self.commit_parents(tip)?;
        let mut stack = vec![Frame {
            id: tip,
            parents,
            next: 0,
        }];
        while let Some(top) = stack.last_mut() {
            if top.next < top.parents.len() {
                let p = top.parents[top.next];
                top.next += 1;
                let child = top.id;
                if self.lookup(&p)?.is_none() {
                    let parents = self.parent_parents(child, p)?;
                    stack.push(Frame {
                        id: p,
                        parents,
                        next: 0,
                    });
                }
                continue;
            }
            let id = top.id;
            stack.pop();
            self.commit(id)?;
            self.done += 1;
            if let Some(cb) = &self.opts.progress {
                cb(&ImportProgress {
                    commits_done: self.done,
                    commits_total: self.total,
                });
            }
            if self.pending.commits.len() >= self.batch_commits
                || self.pending.bytes >= self.opts.batch_bytes
            {
                self.flush()?;
            }
        }
        self.lookup(&tip)?
            .map(|m| m.id)
            .ok_or_else(|| self.corrupt(tip, "was not imported"))
    }

    /// The store tree of a store commit (pending or stored).
    fn tree_of_commit(&self, id: &ObjectId) -> Option<ObjectId> {
        if let Some(&i) = self.pending.commit_index.get(id) {
            return Some(self.pending.commits[i].tree);
        }
        self.repo.commit(id).ok().map(|c| c.tree)
    }

    fn load_tree(&self, id: &ObjectId) -> Option<Tree> {
        if let Some(&i) = self.pending.tree_index.get(id) {
            return Some(self.pending.trees[i].0.clone());
        }
        self.repo.tree(id).ok()
    }

    /// Converts one commit whose parents are all imported.
    fn commit(&mut self, id: GitId) -> Result<(), ImportError> {
        let raw = self.git.read(id, Kind::Commit, &self.refname)?;
        let gc = gitfmt::parse_commit(&raw)
            .ok_or_else(|| self.corrupt(id, "not a well-formed commit"))?;
        let mut parents = Vec::with_capacity(gc.parents.len());
        let mut altered = false;
        for p in &gc.parents {
            match self.lookup(p)? {
                Some(m) if m.kind == MappedKind::Commit => {
                    altered = altered || self.is_altered(p, &m.id)?;
                    parents.push(m.id);
                }
                _ => return Err(self.corrupt(*p, format!("parent of {id} was not imported"))),
            }
        }
        self.current = id;
        let prev_tree = parents.first().and_then(|p| self.tree_of_commit(p));
        let prev_git = match gc.parents.first() {
            None => None,
            Some(p) => match self.commit_trees.get(p) {
                Some(t) => Some(*t),
                None => {
                    let praw = self.git.read(*p, Kind::Commit, &self.refname)?;
                    let pc = gitfmt::parse_commit(&praw)
                        .ok_or_else(|| self.corrupt(*p, "not a well-formed commit"))?;
                    Some(pc.tree)
                }
            },
        };
        let tree = self.tree(gc.tree, prev_tree, prev_git, b"")?;
        if self.commit_trees.len() >= RECENT_MAX {
            self.commit_trees.clear();
        }
        self.commit_trees.insert(id, gc.tree);
        altered = altered || self.altered.contains(&gc.tree);
        if altered {
            self.altered.insert(id);
            self.report.rewritten += 1;
        }
        // An altered commit is exported from its store tree, as a commit made here would be:
        // no raw bytes (they name the git tree it no longer has), no git id header.
        let canonical =
            altered || (tree.kind == MappedKind::Tree && gitfmt::write_commit(&gc) == raw);
        if !canonical && tree.kind == MappedKind::Tree {
            // Export rebuilds this commit from its raw bytes and finds the tree by git id.
            self.pending.xrefs.push((g2s_key(&gc.tree), tree.encode()));
        }
        let mut extra = gc.extra;
        if !canonical {
            extra.push((GIT_ID_HEADER.to_vec(), id.to_hex().into_bytes()));
        }
        let commit = Commit {
            tree: tree.id,
            parents,
            author: gc.author,
            committer: gc.committer,
            message: gc.message,
            extra,
        };
        let sid = commit.id();
        self.pending.bytes += raw.len();
        self.pending
            .commit_index
            .insert(sid, self.pending.commits.len());
        self.pending.commits.push(commit);
        self.report.commits += 1;
        self.record(
            id,
            Mapped {
                kind: MappedKind::Commit,
                id: sid,
                size: 0,
            },
            (!canonical).then_some(raw),
            true,
        );
        Ok(())
    }

    fn blob(&mut self, id: GitId, prev: Option<ObjectId>) -> Result<Mapped, ImportError> {
        if let Some(m) = self.lookup(&id)? {
            return Ok(m);
        }
        let bytes = self.git.read(id, Kind::Blob, &self.refname)?;
        let size = bytes.len() as u64;
        let sid = if bytes.len() <= SMALL_FILE_MAX {
            let sid = ObjectId::of(&bytes);
            self.pending.bytes += bytes.len();
            self.pending.blobs.push((bytes, prev.filter(|p| *p != sid)));
            sid
        } else {
            // Large files are chunked by the store in their own transactions; they become
            // reachable only when the batch that uses them lands.
            self.repo.write_file(bytes.as_slice(), prev)?.id
        };
        self.report.blobs += 1;
        let m = Mapped {
            kind: MappedKind::Blob,
            id: sid,
            size,
        };
        self.record(id, m, None, false);
        Ok(m)
    }

    /// Converts a git tree. `prev` is the store tree and `prev_git` the git tree at the same
    /// path in the first parent: entries whose git id did not change are taken from `prev`
    /// without reading them again.
    fn tree(
        &mut self,
        id: GitId,
        prev: Option<ObjectId>,
        prev_git: Option<GitId>,
        path: &[u8],
    ) -> Result<Mapped, ImportError> {
        if let Some(m) = self.lookup(&id)? {
            if !matches!(m.kind, MappedKind::Tree | MappedKind::RawTree) {
                return Err(self.corrupt(id, "is used as a tree but was imported as another kind"));
            }
            return Ok(m);
        }
        let prev_tree = prev.and_then(|p| self.load_tree(&p));
        if prev_git == Some(id)
            && let (Some(p), Some(t)) = (prev, prev_tree.as_ref())
        {
            let m = Mapped {
                kind: if self.raw_trees.contains(&id) {
                    MappedKind::RawTree
                } else {
                    MappedKind::Tree
                },
                id: p,
                size: t.entries.len() as u64,
            };
            self.remember(id, m);
            return Ok(m);
        }
        let raw = self.git.read(id, Kind::Tree, &self.refname)?;
        let entries =
            gitfmt::parse_tree(&raw).ok_or_else(|| self.corrupt(id, "not a well-formed tree"))?;
        // The parent's entries at this path, by name: unchanged ones are reused as they are.
        let prev_git_entries: HashMap<Vec<u8>, GitId> = match prev_git {
            Some(pg) if prev_tree.is_some() => {
                let praw = self.git.read(pg, Kind::Tree, &self.refname)?;
                gitfmt::parse_tree(&praw)
                    .ok_or_else(|| self.corrupt(pg, "not a well-formed tree"))?
                    .into_iter()
                    .map(|e| (e.name, e.id))
                    .collect()
            }
            _ => HashMap::new(),
        };
        let mut children: Vec<(GitId, Mapped)> = Vec::new();
        let mut store_entries = Vec::with_capacity(entries.len());
        let mut git_entries = Vec::with_capacity(entries.len());
        let mut reproducible = true;
        // Entries dropped (or, below, trees that dropped some): the store tree is not this
        // git tree any more.
        let mut altered = false;
        for e in entries {
            let mut at = path.to_vec();
            if !at.is_empty() {
                at.push(b'/');
            }
            at.extend_from_slice(&e.name);
            let refused = match hero_store::validate_name(&e.name) {
                Err(err) => Some(err.to_string()),
                Ok(()) if hero_store::is_git_unsafe(&e.name) => {
                    Some("git takes this name for its .git directory".to_owned())
                }
                Ok(()) => None,
            };
            if let Some(reason) = refused {
                self.unsafe_entry(&at, reason)?;
                altered = true;
                continue;
            }
            let kind = gitfmt::kind_of_mode(&e.mode).ok_or_else(|| {
                self.corrupt(
                    id,
                    format!(
                        "entry {:?} has unknown mode {}",
                        String::from_utf8_lossy(&e.name),
                        String::from_utf8_lossy(&e.mode)
                    ),
                )
            })?;
            let prev_entry = prev_tree
                .as_ref()
                .and_then(|t| t.get(&e.name))
                .filter(|p| (p.kind == EntryKind::Dir) == (kind == EntryKind::Dir))
                .filter(|p| p.kind != EntryKind::Gitlink)
                .cloned();
            let prev_child = prev_entry.as_ref().map(|p| p.id);
            let prev_git_child = prev_git_entries.get(&e.name).copied();
            if kind != EntryKind::Gitlink
                && prev_git_child == Some(e.id)
                && let Some(pe) = prev_entry.as_ref().filter(|p| p.kind == kind)
            {
                // Same git object as in the parent: same store entry.
                altered |= self.altered.contains(&e.id);
                let child = if kind == EntryKind::Dir {
                    let raw_child = self.raw_trees.contains(&e.id);
                    reproducible &= !raw_child;
                    Mapped {
                        kind: if raw_child {
                            MappedKind::RawTree
                        } else {
                            MappedKind::Tree
                        },
                        id: pe.id,
                        size: pe.size,
                    }
                } else {
                    Mapped {
                        kind: MappedKind::Blob,
                        id: pe.id,
                        size: pe.size,
                    }
                };
                children.push((e.id, child));
                git_entries.push((kind, e.name.clone(), e.id));
                store_entries.push(TreeEntry {
                    name: e.name,
                    kind,
                    id: pe.id,
                    size: pe.size,
                    meta: EntryMeta::NONE,
                });
                continue;
            }
            let (sid, size) = match kind {
                EntryKind::Dir => {
                    let m = self.tree(e.id, prev_child, prev_git_child, &at)?;
                    reproducible &= m.kind == MappedKind::Tree;
                    altered |= self.altered.contains(&e.id);
                    children.push((e.id, m));
                    (m.id, m.size)
                }
                EntryKind::Gitlink => {
                    let mut padded = [0u8; 32];
                    padded[..20].copy_from_slice(&e.id.0);
                    (ObjectId(padded), 20)
                }
                _ => {
                    let m = self.blob(e.id, prev_child)?;
                    if m.kind != MappedKind::Blob {
                        return Err(self.corrupt(e.id, "is used as a blob but is not one"));
                    }
                    children.push((e.id, m));
                    (m.id, m.size)
                }
            };
            git_entries.push((kind, e.name.clone(), e.id));
            store_entries.push(TreeEntry {
                name: e.name,
                kind,
                id: sid,
                size,
                meta: EntryMeta::NONE,
            });
        }
        store_entries.sort_by(|a, b| a.name.cmp(&b.name));
        let tree = Tree {
            entries: store_entries,
        };
        tree.check()
            .map_err(|e| self.corrupt(id, format!("the store cannot hold this tree: {e}")))?;
        if altered {
            self.altered.insert(id);
        }
        // An altered tree is exported from the store tree (never from git's raw bytes, which
        // hold what was dropped).
        let canonical = altered || (reproducible && gitfmt::write_tree(&mut git_entries) == raw);
        let sid = tree.id();
        let m = Mapped {
            kind: if canonical {
                MappedKind::Tree
            } else {
                MappedKind::RawTree
            },
            id: sid,
            size: tree.entries.len() as u64,
        };
        self.pending.bytes += raw.len();
        self.pending
            .tree_index
            .insert(sid, self.pending.trees.len());
        self.pending.trees.push((tree, prev.filter(|p| *p != sid)));
        self.report.trees += 1;
        if !canonical && !altered {
            // Export writes this tree from its raw bytes and finds its entries by git id.
            for (g, cm) in children {
                self.pending.xrefs.push((g2s_key(&g), cm.encode()));
            }
        }
        self.record(id, m, (!canonical).then_some(raw), false);
        Ok(m)
    }

    fn tag(&mut self, id: GitId) -> Result<Mapped, ImportError> {
        if let Some(m) = self.lookup(&id)? {
            return Ok(m);
        }
        let raw = self.git.read(id, Kind::Tag, &self.refname)?;
        let gt =
            gitfmt::parse_tag(&raw).ok_or_else(|| self.corrupt(id, "not a well-formed tag"))?;
        let mut reproducible = true;
        let (target, target_kind) = match gt.target_type.as_slice() {
            b"commit" => (self.commit_closure(gt.target)?, TargetKind::Commit),
            b"tree" => {
                self.current = id;
                let m = self.tree(gt.target, None, None, b"")?;
                reproducible = m.kind == MappedKind::Tree;
                if !self.altered.contains(&gt.target) {
                    self.pending.xrefs.push((g2s_key(&gt.target), m.encode()));
                }
                (m.id, TargetKind::Tree)
            }
            b"blob" => {
                let m = self.blob(gt.target, None)?;
                self.pending.xrefs.push((g2s_key(&gt.target), m.encode()));
                (m.id, TargetKind::Blob)
            }
            b"tag" => (self.tag(gt.target)?.id, TargetKind::Tag),
            other => {
                return Err(self.corrupt(
                    id,
                    format!("unknown target type {}", String::from_utf8_lossy(other)),
                ));
            }
        };
        let altered = match target_kind {
            TargetKind::Commit | TargetKind::Tag => self.is_altered(&gt.target, &target)?,
            _ => self.altered.contains(&gt.target),
        };
        if altered {
            self.altered.insert(id);
            self.report.rewritten += 1;
        }
        let canonical = altered || (reproducible && gitfmt::write_tag(&gt) == raw);
        let mut extra = gt.extra;
        if !canonical {
            extra.push((GIT_ID_HEADER.to_vec(), id.to_hex().into_bytes()));
        }
        let tag = Tag {
            target,
            target_kind,
            name: gt.name,
            tagger: gt.tagger,
            message: gt.message,
            extra,
        };
        let sid = tag.id();
        self.pending.bytes += raw.len();
        self.pending.tags.push(tag);
        self.report.tags += 1;
        let m = Mapped {
            kind: MappedKind::Tag,
            id: sid,
            size: 0,
        };
        self.record(id, m, (!canonical).then_some(raw), true);
        Ok(m)
    }

    /// Writes the batch in one transaction, refs last.
    fn flush(&mut self) -> Result<(), ImportError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let p = std::mem::take(&mut self.pending);
        let (created, moved, unchanged, refused, renamed) = self.repo.batch(|b| {
            for (bytes, prev) in &p.blobs {
                b.put_blob(bytes, *prev)?;
            }
            for (tree, prev) in &p.trees {
                b.put_tree(tree, *prev)?;
            }
            for c in &p.commits {
                b.put_commit(c)?;
            }
            for t in &p.tags {
                b.put_tag(t)?;
            }
            for (k, v) in &p.xrefs {
                b.set_xref(k, Some(v))?;
            }
            let (mut created, mut moved, mut unchanged) = (0, 0, 0);
            let mut refused = Vec::new();
            let mut renamed = Vec::new();
            for (name, value) in &p.refs {
                let mut name = name.clone();
                let mut cur = b.get_ref(&name)?;
                // A ref that holds only imported history moves (a fast-forward, or a git
                // branch that was force-pushed); one that holds other work is left alone.
                if let Some(c) = cur
                    && c != *value
                    && !self.opts.force
                    && b.xref(&s2g_key(&c.id()))?.is_none()
                    && b.xref(&crate::mapping::altered_key(&c.id()))?.is_none()
                {
                    let reserved = |p: &str| {
                        renamed_ref(&name, p)
                            .strip_prefix(hero_store::BRANCH_PREFIX)
                            .is_some_and(hero_store::is_reserved_branch)
                    };
                    match &self.opts.rename_refused {
                        Some(prefix) if !reserved(prefix) => {
                            let other = renamed_ref(&name, prefix);
                            renamed.push((name.clone(), other.clone()));
                            name = other;
                            cur = b.get_ref(&name)?;
                        }
                        _ => {
                            refused.push(RefusedRef {
                                name: name.clone(),
                                local: c,
                                imported: *value,
                            });
                            continue;
                        }
                    }
                }
                match cur {
                    Some(c) if c == *value => unchanged += 1,
                    Some(_) => moved += 1,
                    None => created += 1,
                }
                if cur != Some(*value) {
                    b.cas_ref(&name, cur, Some(*value), "git import")?;
                }
            }
            Ok((created, moved, unchanged, refused, renamed))
        })?;
        self.report.refused.extend(refused);
        self.report.renamed.extend(renamed);
        self.report.refs_created += created;
        self.report.refs_moved += moved;
        self.report.refs_unchanged += unchanged;
        self.report.batches += 1;
        tracing::debug!(
            commits = p.commits.len(),
            trees = p.trees.len(),
            blobs = p.blobs.len(),
            "git import batch written"
        );
        for (k, v) in p.map {
            self.remember(k, v);
        }
        Ok(())
    }
}

/// `refs/heads/x` under `prefix`: `refs/heads/<prefix>x`.
fn renamed_ref(name: &str, prefix: &str) -> String {
    for kind in ["refs/heads/", "refs/tags/"] {
        if let Some(short) = name.strip_prefix(kind) {
            return format!("{kind}{prefix}{short}");
        }
    }
    format!("{prefix}{name}")
}
