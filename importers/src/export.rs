//! `export_git`: writes the store's branches and tags as a git repository, the new objects
//! as one pack ([`crate::pack`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use gix::objs::Kind;
use hero_store::{Commit, EntryKind, ObjectId, RefValue, Repo, Signature, TargetKind, View};

use crate::error::ExportError;
use crate::gitfmt::{self, GitCommit, GitId, GitTag};
use crate::mapping::{lookup_git, lookup_store, raw_key, raw_tree_key};
use crate::pack::{self, PackWriter};

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
    /// The pack written, `objects/pack/pack-<sha1>.pack` (`None`: no object was new).
    pub pack: Option<PathBuf>,
    /// The size of that pack in bytes.
    pub pack_bytes: u64,
    /// Objects stored in it as deltas.
    pub deltas: u64,
}

/// Tree and blob ids remembered; cleared past this many entries.
const CACHE_MAX: usize = 1 << 18;

struct Exporter<'a> {
    repo: &'a Repo,
    view: View,
    pack: PackWriter,
    /// Refs to write once the pack is in place: name, target.
    refs: Vec<(String, GitId)>,
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
/// repository at `git_dir`, which is created (bare) if it does not exist yet. The objects the
/// repository lacks are written as one pack with deltas, `objects/pack/pack-<sha1>.pack` and
/// its index (no pack if nothing is new); objects already there, loose or packed, are not
/// written again. The refs are written once the pack is in place. Commits, trees and tags that
/// came from git get exactly their original git id (checked while writing).
pub fn export_git(
    repo: &Repo,
    git_dir: &Path,
    opts: &ExportOptions,
) -> Result<ExportReport, ExportError> {
    let view = repo.view()?;
    let mut branches = Vec::new();
    for (name, head) in view.branches()? {
        // Hero's own branches (`hero/...`, the membership) are not history to export.
        if hero_store::is_reserved_branch(&name) {
            continue;
        }
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
        pack: PackWriter::new(&git_dir.join("objects"))?,
        refs: Vec::new(),
        cache: HashMap::new(),
        native: HashMap::new(),
        report: ExportReport::default(),
    };
    for (name, head) in &branches {
        let id = ex.commit_closure(*head)?;
        ex.refs.push((format!("refs/heads/{name}"), id));
    }
    for (name, value) in &tags {
        let id = match value {
            RefValue::Commit(c) => ex.commit_closure(*c)?,
            RefValue::Tag(t) => ex.tag(*t)?,
        };
        ex.refs.push((format!("refs/tags/{name}"), id));
    }
    let Exporter {
        pack,
        refs,
        mut report,
        ..
    } = ex;
    if let Some(written) = pack.finish()? {
        report.pack = Some(written.pack);
        report.pack_bytes = written.bytes;
        report.deltas = written.deltas;
    }
    for (refname, id) in &refs {
        write_ref(git_dir, refname, *id)?;
        report.refs += 1;
    }
    Ok(report)
}

fn write_ref(git_dir: &Path, refname: &str, id: GitId) -> Result<(), ExportError> {
    let path = git_dir.join(refname);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    std::fs::write(&path, format!("{id}\n")).map_err(io_err(&path))?;
    Ok(())
}

/// `dir/name`, or `name` at the root.
fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        return name.to_vec();
    }
    let mut p = Vec::with_capacity(dir.len() + 1 + name.len());
    p.extend_from_slice(dir);
    p.push(b'/');
    p.extend_from_slice(name);
    p
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
    fn exists(&self, id: &GitId) -> bool {
        self.pack.exists(id)
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

    /// Writes `bytes` as an object of `kind` (first seen at `path`), checking it against the
    /// id recorded at import.
    fn put(
        &mut self,
        kind: Kind,
        what: &'static str,
        store: ObjectId,
        bytes: &[u8],
        path: &[u8],
    ) -> Result<(GitId, bool), ExportError> {
        let id = pack::object_id(kind, bytes)?;
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
        self.pack.add(kind, id, bytes, path)?;
        Ok((id, true))
    }

    /// Writes a git tree kept raw at import (at `path`), and everything below it.
    fn raw_tree(&mut self, git: GitId, path: &[u8]) -> Result<(), ExportError> {
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
                EntryKind::Dir => self.git_tree(e.id, path, &e.name)?,
                _ => {
                    let m = lookup_git(self.repo, &e.id)?.ok_or_else(bad)?;
                    self.blob(m.id, path, &e.name)?;
                }
            }
        }
        if pack::object_id(Kind::Tree, &raw)? != git {
            return Err(bad());
        }
        self.pack.add(Kind::Tree, git, &raw, path)?;
        self.report.trees += 1;
        Ok(())
    }

    /// Writes the git tree `git` recorded at import, at `dir/name`: raw if it was kept raw,
    /// else from the store tree it maps to.
    fn git_tree(&mut self, git: GitId, dir: &[u8], name: &[u8]) -> Result<(), ExportError> {
        if self.repo.xref(&raw_tree_key(&git))?.is_some() {
            return self.raw_tree(git, &join(dir, name));
        }
        let m = lookup_git(self.repo, &git)?.ok_or_else(|| ExportError::BadRef {
            refname: git.to_hex(),
            reason: "tree recorded in a kept commit is not mapped",
        })?;
        let got = self.tree(m.id, dir, name)?;
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
                self.git_tree(tree, b"", b"")?;
                raw
            }
            None => {
                let tree = self.tree(c.tree, b"", b"")?;
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
        let (g, written) = self.put(Kind::Commit, "commit", id, &bytes, b"")?;
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

    /// Writes the store tree `id` found at `dir/name`, and everything below it.
    fn tree(&mut self, id: ObjectId, dir: &[u8], name: &[u8]) -> Result<GitId, ExportError> {
        if let Some(g) = self.known(&id)? {
            self.remember(id, g);
            return Ok(g);
        }
        let path = join(dir, name);
        let tree = self.view.tree(&id)?;
        let mut entries = Vec::with_capacity(tree.entries.len());
        for e in tree.entries {
            let g = match e.kind {
                EntryKind::Dir => self.tree(e.id, &path, &e.name)?,
                EntryKind::Gitlink => {
                    GitId::from_bytes(&e.id.0[..20]).ok_or_else(|| ExportError::BadRef {
                        refname: e.id.to_hex(),
                        reason: "bad gitlink",
                    })?
                }
                k if k.is_special() => {
                    return Err(ExportError::SpecialFile {
                        path: join(&path, &e.name),
                        kind: k,
                    });
                }
                // Names of one hard-link group are each a file with the group's content: git
                // has no hard links, and the same content is one blob.
                _ => self.blob(e.id, &path, &e.name)?,
            };
            entries.push((e.kind, e.name, g));
        }
        let bytes = gitfmt::write_tree(&mut entries);
        let (g, written) = self.put(Kind::Tree, "tree", id, &bytes, &path)?;
        self.report.trees += u64::from(written);
        self.remember(id, g);
        Ok(g)
    }

    /// Writes the store file `id` found at `dir/name`.
    fn blob(&mut self, id: ObjectId, dir: &[u8], name: &[u8]) -> Result<GitId, ExportError> {
        if let Some(g) = self.known(&id)? {
            self.remember(id, g);
            return Ok(g);
        }
        let mut reader = self.view.open_file(&id)?;
        let len = reader.len();
        let (g, written) =
            self.pack
                .add_stream(Kind::Blob, len, &mut reader, &join(dir, name), &|source| {
                    ExportError::ReadFile { id, source }
                })?;
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
        self.report.blobs += u64::from(written);
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
                    self.raw_tree(g, b"")?;
                    (g, b"tree")
                }
                None => (self.tree(t.target, b"", b"")?, b"tree"),
            },
            TargetKind::Blob => (self.blob(t.target, b"", b"")?, b"blob"),
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
        let (g, written) = self.put(Kind::Tag, "tag", id, &bytes, b"")?;
        self.report.tags += u64::from(written);
        if !from_git {
            self.native.insert(id, g);
        }
        Ok(g)
    }
}
