//! `export_git`: writes the store's branches and tags as a git repository.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use gix::objs::{Kind, Write as _};
use hero_store::{Commit, EntryKind, ObjectId, RefValue, Repo, Signature, TargetKind, View};

use crate::error::ExportError;
use crate::gitfmt::{self, GitCommit, GitId, GitTag};
use crate::mapping::{lookup_git, lookup_store, raw_key, raw_tree_key};

/// How to export.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// Export only branches whose name starts with this prefix, with the prefix removed
    /// (`""`: all branches, same names).
    pub branch_prefix: String,
    /// Export only tags whose name starts with this prefix, with the prefix removed.
    pub tag_prefix: String,
    /// The branch HEAD names in a newly created repository (default: `main` if exported,
    /// else the first exported branch).
    pub head: Option<String>,
}

/// What an export did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Commits written.
    pub commits: u64,
    /// Trees written.
    pub trees: u64,
    /// Blobs written.
    pub blobs: u64,
    /// Annotated tags written.
    pub tags: u64,
    /// Objects that came from git and got their original id back (checked).
    pub original_ids: u64,
    /// Refs written.
    pub refs: u64,
}

/// Tree and blob ids remembered; cleared past this many entries.
const CACHE_MAX: usize = 1 << 18;

struct Exporter<'a> {
    repo: &'a Repo,
    view: View,
    odb: gix::odb::loose::Store,
    git_dir: PathBuf,
    /// Trees and blobs already written in this run (bounded).
    cache: HashMap<ObjectId, GitId>,
    /// Commits and tags with no recorded git id (made in the store), written in this run.
    native: HashMap<ObjectId, GitId>,
    report: ExportReport,
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes every branch and tag of `repo` (filtered and renamed by `opts`) into the git
/// repository at `git_dir`, which is created (bare) if it does not exist yet. Objects are
/// written loose; objects already there are not written again. Commits, trees and tags that
/// came from git get exactly their original git id (checked while writing).
pub fn export_git(
    repo: &Repo,
    git_dir: &Path,
    opts: &ExportOptions,
) -> Result<ExportReport, ExportError> {
    let view = repo.view()?;
    let mut branches = Vec::new();
    for (name, head) in view.branches()? {
        if let Some(short) = name.strip_prefix(&opts.branch_prefix) {
            branches.push((short.to_owned(), head));
        }
    }
    let mut tags = Vec::new();
    for (name, value) in view.tags()? {
        if let Some(short) = name.strip_prefix(&opts.tag_prefix) {
            tags.push((short.to_owned(), value));
        }
    }
    // HEAD names the store's default branch when it is exported.
    let default = view.default_branch()?;
    let default = default
        .strip_prefix(&opts.branch_prefix)
        .unwrap_or(&default);
    let head = opts.head.clone().unwrap_or_else(|| {
        if branches.iter().any(|(n, _)| n == default) {
            default.to_owned()
        } else if branches.iter().any(|(n, _)| n == "main") || branches.is_empty() {
            "main".to_owned()
        } else {
            branches[0].0.clone()
        }
    });
    init_bare(git_dir, &head)?;
    let mut ex = Exporter {
        repo,
        view,
        odb: gix::odb::loose::Store::at(git_dir.join("objects"), gix::hash::Kind::Sha1),
        git_dir: git_dir.to_path_buf(),
        cache: HashMap::new(),
        native: HashMap::new(),
        report: ExportReport::default(),
    };
    for (name, head) in &branches {
        let id = ex.commit_closure(*head)?;
        ex.write_ref(&format!("refs/heads/{name}"), id)?;
    }
    for (name, value) in &tags {
        let id = match value {
            RefValue::Commit(c) => ex.commit_closure(*c)?,
            RefValue::Tag(t) => ex.tag(*t)?,
        };
        ex.write_ref(&format!("refs/tags/{name}"), id)?;
    }
    Ok(ex.report)
}

fn init_bare(git_dir: &Path, head: &str) -> Result<(), ExportError> {
    if git_dir.join("HEAD").exists() {
        return Ok(());
    }
    for sub in ["objects/info", "objects/pack", "refs/heads", "refs/tags"] {
        let p = git_dir.join(sub);
        std::fs::create_dir_all(&p).map_err(io_err(&p))?;
    }
    let config = git_dir.join("config");
    std::fs::write(
        &config,
        "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n",
    )
    .map_err(io_err(&config))?;
    let head_path = git_dir.join("HEAD");
    std::fs::write(&head_path, format!("ref: refs/heads/{head}\n")).map_err(io_err(&head_path))?;
    Ok(())
}

struct Frame {
    id: ObjectId,
    commit: Commit,
    next: usize,
}

/// Makes a signature of a store-made commit acceptable to `git fsck`.
fn clean_signature(s: &Signature) -> Signature {
    let clean = |b: &[u8]| -> Vec<u8> {
        b.iter()
            .copied()
            .filter(|c| !matches!(c, b'<' | b'>' | b'\n' | 0))
            .collect()
    };
    let mut name = clean(&s.name);
    while name.last() == Some(&b' ') {
        name.pop();
    }
    Signature {
        name,
        email: clean(&s.email),
        time: s.time,
        tz_offset_minutes: s.tz_offset_minutes,
    }
}

impl Exporter<'_> {
    fn write_ref(&mut self, refname: &str, id: GitId) -> Result<(), ExportError> {
        let path = self.git_dir.join(refname);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        std::fs::write(&path, format!("{id}\n")).map_err(io_err(&path))?;
        self.report.refs += 1;
        Ok(())
    }

    fn exists(&self, id: &GitId) -> bool {
        self.odb.object_path(&id.to_gix()).exists()
    }

    fn raw(&self, id: &ObjectId) -> Result<Option<Vec<u8>>, ExportError> {
        Ok(self.repo.xref(&raw_key(id))?)
    }

    /// The git id of a store commit or tag already in the target, if it is.
    fn done(&self, id: &ObjectId) -> Result<Option<GitId>, ExportError> {
        if let Some(g) = self.native.get(id) {
            return Ok(Some(*g));
        }
        Ok(lookup_store(self.repo, id)?.filter(|g| self.exists(g)))
    }

    /// Writes `bytes` as an object of `kind`, checking it against the id recorded at import.
    fn put(
        &mut self,
        kind: Kind,
        what: &'static str,
        store: ObjectId,
        bytes: &[u8],
    ) -> Result<(GitId, bool), ExportError> {
        let id = gix::objs::compute_hash(gix::hash::Kind::Sha1, kind, bytes)
            .map_err(|e| ExportError::Write(e.to_string()))?;
        let id = GitId::from_gix(&id).ok_or_else(|| ExportError::Write("not SHA-1".into()))?;
        if let Some(expected) = lookup_store(self.repo, &store)? {
            if expected != id {
                return Err(ExportError::RoundTrip {
                    kind: what,
                    store,
                    expected,
                    got: id,
                });
            }
            self.report.original_ids += 1;
        }
        if self.exists(&id) {
            return Ok((id, false));
        }
        self.odb
            .write_buf(kind, bytes)
            .map_err(|e| ExportError::Write(e.to_string()))?;
        Ok((id, true))
    }

    /// Writes a git tree kept raw at import, and everything below it.
    fn raw_tree(&mut self, git: GitId) -> Result<(), ExportError> {
        if self.exists(&git) {
            return Ok(());
        }
        let Some(raw) = self.repo.xref(&raw_tree_key(&git))? else {
            return Err(ExportError::BadRef {
                refname: git.to_hex(),
                reason: "raw tree recorded at import is missing",
            });
        };
        let bad = || ExportError::BadRef {
            refname: git.to_hex(),
            reason: "raw tree recorded at import does not parse",
        };
        for e in gitfmt::parse_tree(&raw).ok_or_else(bad)? {
            match gitfmt::kind_of_mode(&e.mode).ok_or_else(bad)? {
                EntryKind::Gitlink => {}
                EntryKind::Dir => self.git_tree(e.id)?,
                _ => {
                    let m = lookup_git(self.repo, &e.id)?.ok_or_else(bad)?;
                    self.blob(m.id)?;
                }
            }
        }
        let id = gix::objs::compute_hash(gix::hash::Kind::Sha1, Kind::Tree, &raw)
            .map_err(|e| ExportError::Write(e.to_string()))?;
        if id.as_bytes() != git.0 {
            return Err(bad());
        }
        self.odb
            .write_buf(Kind::Tree, &raw)
            .map_err(|e| ExportError::Write(e.to_string()))?;
        self.report.trees += 1;
        Ok(())
    }

    /// Writes the git tree `git` recorded at import: raw if it was kept raw, else from the
    /// store tree it maps to.
    fn git_tree(&mut self, git: GitId) -> Result<(), ExportError> {
        if self.repo.xref(&raw_tree_key(&git))?.is_some() {
            return self.raw_tree(git);
        }
        let m = lookup_git(self.repo, &git)?.ok_or_else(|| ExportError::BadRef {
            refname: git.to_hex(),
            reason: "tree recorded in a kept commit is not mapped",
        })?;
        let got = self.tree(m.id)?;
        if got != git {
            return Err(ExportError::RoundTrip {
                kind: "tree",
                store: m.id,
                expected: git,
                got,
            });
        }
        Ok(())
    }

    fn commit_closure(&mut self, tip: ObjectId) -> Result<GitId, ExportError> {
        if let Some(g) = self.done(&tip)? {
            return Ok(g);
        }
        let mut stack = vec![Frame {
            id: tip,
            commit: self.view.commit(&tip)?,
            next: 0,
        }];
        while let Some(top) = stack.last_mut() {
            if top.next < top.commit.parents.len() {
                let p = top.commit.parents[top.next];
                top.next += 1;
                if self.done(&p)?.is_none() {
                    let commit = self.view.commit(&p)?;
                    stack.push(Frame {
                        id: p,
                        commit,
                        next: 0,
                    });
                }
                continue;
            }
            if let Some(f) = stack.pop() {
                self.commit(f.id, f.commit)?;
            }
        }
        self.done(&tip)?.ok_or_else(|| ExportError::BadRef {
            refname: tip.to_hex(),
            reason: "commit was not written",
        })
    }

    fn commit(&mut self, id: ObjectId, c: Commit) -> Result<(), ExportError> {
        let mut parents = Vec::with_capacity(c.parents.len());
        for p in &c.parents {
            parents.push(self.done(p)?.ok_or_else(|| ExportError::BadRef {
                refname: p.to_hex(),
                reason: "parent was not written",
            })?);
        }
        let from_git = lookup_store(self.repo, &id)?.is_some();
        let bytes = match self.raw(&id)? {
            Some(raw) => {
                let tree = gitfmt::parse_commit(&raw)
                    .ok_or(ExportError::BadRef {
                        refname: id.to_hex(),
                        reason: "raw commit recorded at import does not parse",
                    })?
                    .tree;
                self.git_tree(tree)?;
                raw
            }
            None => {
                let tree = self.tree(c.tree)?;
                let (author, committer) = if from_git {
                    (c.author, c.committer)
                } else {
                    (clean_signature(&c.author), clean_signature(&c.committer))
                };
                gitfmt::write_commit(&GitCommit {
                    tree,
                    parents,
                    author,
                    committer,
                    extra: c.extra,
                    message: c.message,
                })
            }
        };
        let (g, written) = self.put(Kind::Commit, "commit", id, &bytes)?;
        self.report.commits += u64::from(written);
        if !from_git {
            self.native.insert(id, g);
        }
        Ok(())
    }

    fn remember(&mut self, id: ObjectId, g: GitId) {
        if self.cache.len() >= CACHE_MAX {
            self.cache.clear();
        }
        self.cache.insert(id, g);
    }

    fn known(&self, id: &ObjectId) -> Result<Option<GitId>, ExportError> {
        if let Some(g) = self.cache.get(id) {
            return Ok(Some(*g));
        }
        Ok(lookup_store(self.repo, id)?.filter(|g| self.exists(g)))
    }

    fn tree(&mut self, id: ObjectId) -> Result<GitId, ExportError> {
        if let Some(g) = self.known(&id)? {
            self.remember(id, g);
            return Ok(g);
        }
        let tree = self.view.tree(&id)?;
        let mut entries = Vec::with_capacity(tree.entries.len());
        for e in tree.entries {
            let g = match e.kind {
                EntryKind::Dir => self.tree(e.id)?,
                EntryKind::Gitlink => {
                    GitId::from_bytes(&e.id.0[..20]).ok_or_else(|| ExportError::BadRef {
                        refname: e.id.to_hex(),
                        reason: "bad gitlink",
                    })?
                }
                _ => self.blob(e.id)?,
            };
            entries.push((e.kind, e.name, g));
        }
        let bytes = gitfmt::write_tree(&mut entries);
        let (g, written) = self.put(Kind::Tree, "tree", id, &bytes)?;
        self.report.trees += u64::from(written);
        self.remember(id, g);
        Ok(g)
    }

    fn blob(&mut self, id: ObjectId) -> Result<GitId, ExportError> {
        if let Some(g) = self.known(&id)? {
            self.remember(id, g);
            return Ok(g);
        }
        let mut reader = self.view.open_file(&id)?;
        let len = reader.len();
        let g = self
            .odb
            .write_stream(Kind::Blob, len, &mut reader)
            .map_err(|e| ExportError::Write(e.to_string()))?;
        let g = GitId::from_gix(&g).ok_or_else(|| ExportError::Write("not SHA-1".into()))?;
        if let Some(expected) = lookup_store(self.repo, &id)?
            && expected != g
        {
            return Err(ExportError::RoundTrip {
                kind: "blob",
                store: id,
                expected,
                got: g,
            });
        }
        self.report.blobs += 1;
        self.remember(id, g);
        Ok(g)
    }

    fn tag(&mut self, id: ObjectId) -> Result<GitId, ExportError> {
        if let Some(g) = self.done(&id)? {
            return Ok(g);
        }
        let t = self.view.tag(&id)?;
        let raw = self.raw(&id)?;
        let raw_tree_target = match &raw {
            Some(r) if t.target_kind == TargetKind::Tree => gitfmt::parse_tag(r)
                .map(|g| g.target)
                .filter(|g| self.repo.xref(&raw_tree_key(g)).ok().flatten().is_some()),
            _ => None,
        };
        let (target, ty): (GitId, &[u8]) = match t.target_kind {
            TargetKind::Commit => (self.commit_closure(t.target)?, b"commit"),
            TargetKind::Tree => match raw_tree_target {
                Some(g) => {
                    self.raw_tree(g)?;
                    (g, b"tree")
                }
                None => (self.tree(t.target)?, b"tree"),
            },
            TargetKind::Blob => (self.blob(t.target)?, b"blob"),
            TargetKind::Tag => (self.tag(t.target)?, b"tag"),
        };
        let from_git = lookup_store(self.repo, &id)?.is_some();
        let bytes = match raw {
            Some(raw) => raw,
            None => gitfmt::write_tag(&GitTag {
                target,
                target_type: ty.to_vec(),
                name: t.name,
                tagger: if from_git {
                    t.tagger
                } else {
                    t.tagger.as_ref().map(clean_signature)
                },
                extra: t.extra,
                message: t.message,
            }),
        };
        let (g, written) = self.put(Kind::Tag, "tag", id, &bytes)?;
        self.report.tags += u64::from(written);
        if !from_git {
            self.native.insert(id, g);
        }
        Ok(g)
    }
}
