//! Scratch files stay local: paths matched by the ignore rules (a default list of editor and
//! database scratch files, then the root `.heroignore` of the mounted branch, gitignore
//! syntax, `!` overriding) work as files in the mount but are never committed. They live in
//! memory and the spill directory of this mount only and are gone after unmount.
//!
//! A child module of `state`: it keeps the set of local inodes and decides, for each change,
//! whether it is recorded for the next commit.

use std::collections::HashSet;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::{Content, Kind, Op, ROOT, State};
use hero_store::{Repo, RepoPath};

/// Scratch files of editors and databases, never committed unless `.heroignore` says
/// otherwise (`!PATTERN`).
pub(crate) const DEFAULT_IGNORES: &[&str] = &[
    // vim: swap files, backups, its write test file
    "*.swp",
    "*.swo",
    "*.swx",
    "*~",
    "4913",
    // emacs: lock and auto-save files
    ".#*",
    "#*#",
    // kate, LibreOffice, GNOME's save-through-temporary
    "*.kate-swp",
    ".~lock.*#",
    ".goutputstream-*",
    // SQLite and others: rollback journals, write-ahead logs, shared memory
    "*-journal",
    "*-wal",
    "*-shm",
    // hidden temporary files
    ".*.tmp",
];

/// The ignore file read from the root of the mounted branch.
const IGNORE_FILE: &[u8] = b".heroignore";
/// Largest `.heroignore` read.
const MAX_IGNORE_FILE: u64 = 1 << 20;

/// The rules and the local inodes.
pub(crate) struct Scratch {
    /// The default patterns, for files only (by name).
    defaults: Gitignore,
    /// The root `.heroignore`.
    matcher: Gitignore,
    /// The root `.heroignore` may have changed: rebuild before the next decision.
    stale: bool,
    /// Inodes that are local (their descendants are too).
    local: HashSet<u64>,
    /// What the current rules were built from (`None`: nothing comparable).
    built_from: Option<Source>,
}

/// The identity of the `.heroignore` the rules were built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Absent,
    Stored(hero_store::ObjectId),
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch {
            defaults: build_defaults(),
            matcher: Gitignore::empty(),
            stale: true,
            local: HashSet::new(),
            built_from: None,
        }
    }
}

fn build_defaults() -> Gitignore {
    let mut b = GitignoreBuilder::new("");
    for line in DEFAULT_IGNORES {
        if let Err(e) = b.add_line(None, line) {
            tracing::error!(line, error = %e, "default ignore pattern");
        }
    }
    b.build().unwrap_or_else(|e| {
        tracing::error!(error = %e, "default ignore patterns");
        Gitignore::empty()
    })
}

fn build(text: &[u8]) -> Gitignore {
    let mut b = GitignoreBuilder::new("");
    for line in String::from_utf8_lossy(text).lines() {
        if let Err(e) = b.add_line(None, line) {
            tracing::warn!(line, error = %e, ".heroignore: pattern skipped");
        }
    }
    b.build().unwrap_or_else(|e| {
        tracing::warn!(error = %e, ".heroignore not usable; only the defaults apply");
        Gitignore::empty()
    })
}

/// Whether `parent`/`name` is the root `.heroignore`.
pub(super) fn is_ignore_file(parent: u64, name: &[u8]) -> bool {
    parent == ROOT && name == IGNORE_FILE
}

fn rel(path: &RepoPath) -> std::path::PathBuf {
    Path::new(std::ffi::OsStr::from_bytes(&path.to_bytes())).to_path_buf()
}

impl State {
    /// Whether an inode is local (it or a directory above it).
    pub(super) fn is_local(&self, mut ino: u64) -> bool {
        if self.scratch.local.is_empty() {
            return false;
        }
        for _ in 0..4096 {
            if self.scratch.local.contains(&ino) {
                return true;
            }
            match self.nodes.get(&ino) {
                Some(n) if n.parent != 0 && ino != ROOT => ino = n.parent,
                _ => return false,
            }
        }
        false
    }

    /// The rules changed if `parent`/`name` is the root `.heroignore`.
    pub(super) fn note_ignore_file(&mut self, parent: u64, name: &[u8]) {
        if is_ignore_file(parent, name) {
            self.scratch.stale = true;
        }
    }

    /// The branch changed under the mount: its `.heroignore` may have.
    pub(super) fn ignore_rules_stale(&mut self) {
        self.scratch.stale = true;
    }

    /// Whether `path` is ignored (the rules rebuilt first if needed).
    fn ignored(&mut self, repo: &Repo, path: &RepoPath, is_dir: bool) -> bool {
        if self.scratch.stale {
            self.scratch.stale = false;
            let source = self.ignore_source(repo);
            // A stored `.heroignore` (or none) that did not change keeps the rules built.
            if source.is_none() || source != self.scratch.built_from {
                let text = self.read_ignore_file(repo).unwrap_or_default();
                self.scratch.matcher = build(&text);
                self.scratch.built_from = source;
            }
        }
        // `.heroignore` first: what it ignores (or a directory above), and what it brings
        // back with `!`. Then the defaults, for files only and by their own name: a
        // directory called `travel-journal` or `old~` is not scratch, nor what is in it.
        let rel = rel(path);
        let m = self
            .scratch
            .matcher
            .matched_path_or_any_parents(&rel, is_dir);
        if m.is_ignore() {
            return true;
        }
        if m.is_whitelist() || is_dir {
            return false;
        }
        self.scratch.defaults.matched(&rel, false).is_ignore()
    }

    /// What the rules come from: `Some(Stored(id))` or `Some(Absent)` when that can be
    /// compared with the last build; `None` for a `.heroignore` being written (rebuilt).
    fn ignore_source(&mut self, repo: &Repo) -> Option<Source> {
        let Ok(found) = self.child(repo, ROOT, IGNORE_FILE) else {
            return None;
        };
        let Some(ino) = found else {
            return Some(Source::Absent);
        };
        match &self.nodes.get(&ino)?.kind {
            Kind::File {
                content: Content::Stored { id, .. },
                ..
            } => Some(Source::Stored(*id)),
            _ => None,
        }
    }

    fn read_ignore_file(&mut self, repo: &Repo) -> Option<Vec<u8>> {
        let ino = self.child(repo, ROOT, IGNORE_FILE).ok()??;
        match &self.nodes.get(&ino)?.kind {
            Kind::File {
                content: Content::Stored { id, .. },
                ..
            } => repo
                .view()
                .and_then(|v| v.read_file(id, MAX_IGNORE_FILE))
                .map_err(|e| tracing::warn!(error = %e, "reading .heroignore"))
                .ok(),
            Kind::File {
                content: Content::Spill { spill, size, .. },
                ..
            } => {
                let mut out = Vec::new();
                let r = super::SpillReader {
                    file: &spill.file,
                    pos: 0,
                    len: (*size).min(MAX_IGNORE_FILE),
                }
                .read_to_end(&mut out);
                r.map_err(|e| tracing::warn!(error = %e, "reading .heroignore"))
                    .ok()?;
                Some(out)
            }
            _ => None,
        }
    }

    /// A new inode at `path`: local when the path is ignored or its directory is local.
    /// Returns whether it is.
    pub(super) fn scratch_new(&mut self, repo: &Repo, path: &RepoPath, ino: u64) -> bool {
        let parent_local = self
            .nodes
            .get(&ino)
            .is_some_and(|n| self.is_local(n.parent));
        let is_dir = self.nodes.get(&ino).is_some_and(|n| n.is_dir());
        if parent_local || self.ignored(repo, path, is_dir) {
            self.scratch.local.insert(ino);
            return true;
        }
        false
    }

    /// Records the removal of `ino` at `path` unless it was `local` (taken before unlinking).
    pub(super) fn scratch_remove(&mut self, ino: u64, path: RepoPath, local: bool) {
        if local {
            self.scratch.local.remove(&ino);
            return;
        }
        self.pending.journal_delete(&path);
        self.ops.push(Op::Delete(path));
    }

    /// Records a rename of `ino` (already moved in the tree) from `from` to `to`, which
    /// replaced `replaced`. `was_local` and `replaced_local` are taken before the move.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn scratch_rename(
        &mut self,
        repo: &Repo,
        ino: u64,
        from: RepoPath,
        to: RepoPath,
        was_local: bool,
        replaced: Option<u64>,
        replaced_local: bool,
    ) {
        let is_dir = self.nodes.get(&ino).is_some_and(|n| n.is_dir());
        let parent_local = self
            .nodes
            .get(&ino)
            .is_some_and(|n| self.is_local(n.parent));
        let now_local = parent_local || self.ignored(repo, &to, is_dir);
        let replaced_tracked = replaced.is_some() && !replaced_local;
        match (was_local, now_local) {
            (false, false) => {
                self.pending.journal_rename(&from, &to);
                self.ops.push(Op::Rename(from, to));
            }
            (false, true) => {
                // Leaves the branch; what it replaced there goes too.
                self.scratch.local.insert(ino);
                self.pending.journal_delete(&from);
                self.ops.push(Op::Delete(from));
                if replaced_tracked {
                    self.pending.journal_delete(&to);
                    self.ops.push(Op::Delete(to));
                }
            }
            (true, true) => {
                if !parent_local {
                    self.scratch.local.insert(ino);
                }
                if replaced_tracked {
                    self.pending.journal_delete(&to);
                    self.ops.push(Op::Delete(to));
                }
            }
            (true, false) => {
                // A scratch file saved under its real name (write, then rename over): it joins
                // the branch with everything under it that is not ignored itself.
                self.scratch.local.remove(&ino);
                if replaced_tracked && is_dir {
                    self.pending.journal_delete(&to);
                    self.ops.push(Op::Delete(to));
                }
                self.track_subtree(repo, ino);
            }
        }
    }

    /// Records a formerly local inode and what is under it for the next commit.
    fn track_subtree(&mut self, repo: &Repo, ino: u64) {
        let mut stack = vec![ino];
        let mut guard = 0usize;
        while let Some(cur) = stack.pop() {
            guard += 1;
            if guard > 1_000_000 {
                tracing::error!("local tree too large to add; the rest stays local");
                return;
            }
            let Ok(path) = self.path_of(cur) else {
                continue;
            };
            let is_dir = self.nodes.get(&cur).is_some_and(|n| n.is_dir());
            if cur != ino {
                if self.ignored(repo, &path, is_dir) {
                    self.scratch.local.insert(cur);
                    continue;
                }
                self.scratch.local.remove(&cur);
            }
            if is_dir {
                if let Err(e) = self.ensure_loaded(repo, cur) {
                    tracing::warn!(?e, "loading a directory to add it");
                }
                self.pending.journal_mkdir(&path);
                self.ops.push(Op::Mkdir(path));
                if let Some(c) = self.children(cur) {
                    stack.extend(c.values().copied());
                }
            } else {
                self.mark_put(cur);
            }
        }
        self.touch();
    }
}
