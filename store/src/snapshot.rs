//! Working directories: snapshot a directory into a branch, check a revision out, compare.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::changes::{CommitMeta, Committed};
use crate::error::{Error, Result};
use crate::file::{Pending, SMALL_FILE_MAX, read_head};
use crate::id::ObjectId;
use crate::object::{EntryKind, EntryMeta, MODE_BITS, Owner, Timestamp, Tree, TreeEntry};
use crate::path::RepoPath;
use crate::record::{self, ObjType};
use crate::refs::RefValue;
use crate::refs::branch_ref;
use crate::repo::{Repo, View};

/// Name of the ignore file honoured by snapshots (gitignore syntax).
pub const IGNORE_FILE: &str = ".heroignore";

/// The file at the top of a checked-out directory that remembers where it came from; never
/// snapshotted.
pub const CHECKOUT_RECORD: &str = ".herocheckout";

/// Where a checked-out directory came from: the branch it follows (none for a tag or a
/// commit id) and the commit its content was last equal to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRecord {
    /// The branch commits of the directory go on.
    pub branch: Option<String>,
    /// The commit the directory was checked out at, or last committed or updated as.
    pub base: ObjectId,
}

impl CheckoutRecord {
    /// The record of `dir`, if it has one.
    pub fn read(dir: &Path) -> Result<Option<CheckoutRecord>> {
        let path = dir.join(CHECKOUT_RECORD);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let bad = |why: &str| {
            Error::io(
                &path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_owned()),
            )
        };
        let (mut branch, mut base) = (None, None);
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("branch", b)) => {
                    branch_ref(b).map_err(|_| bad("not a branch name"))?;
                    branch = Some(b.to_owned());
                }
                Some(("base", h)) => base = ObjectId::from_hex(h),
                _ => return Err(bad("unknown line")),
            }
        }
        let base = base.ok_or_else(|| bad("no base commit"))?;
        Ok(Some(CheckoutRecord { branch, base }))
    }

    /// Writes the record into `dir` (whole or not at all).
    pub fn write(&self, dir: &Path) -> Result<()> {
        let mut text = String::new();
        if let Some(b) = &self.branch {
            text.push_str(&format!("branch {b}\n"));
        }
        text.push_str(&format!("base {}\n", self.base.to_hex()));
        let tmp = dir.join(format!("{CHECKOUT_RECORD}.tmp"));
        fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
        let path = dir.join(CHECKOUT_RECORD);
        fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    }
}

/// Progress of a long operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Items done.
    pub done: u64,
    /// Items in all, when known.
    pub total: Option<u64>,
    /// Bytes done.
    pub bytes: u64,
}

/// Options for [`Repo::snapshot`].
#[derive(Default)]
pub struct SnapshotOptions<'a> {
    /// Called now and then with progress.
    pub progress: Option<&'a (dyn Fn(Progress) + Sync)>,
    /// Make a commit even if nothing changed.
    pub allow_empty: bool,
}

impl std::fmt::Debug for SnapshotOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotOptions")
            .field("allow_empty", &self.allow_empty)
            .finish()
    }
}

/// What a snapshot did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotReport {
    /// The branch head afterwards, and whether a commit was made.
    pub committed: Committed,
    /// Files read.
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Bytes read.
    pub bytes: u64,
}

/// One file or directory found in a working directory.
struct Found {
    path: RepoPath,
    fs_path: PathBuf,
    kind: EntryKind,
    size: u64,
    meta: EntryMeta,
}

/// The metadata a file system entry has, as the store keeps it: every permission bit (none
/// for a symlink, whose mode means nothing on Unix), owner and group, modification time.
pub(crate) fn meta_of(m: &fs::Metadata) -> EntryMeta {
    use std::os::unix::fs::MetadataExt as _;
    let mode = (!m.file_type().is_symlink()).then(|| m.mode() & MODE_BITS);
    let nanos = u32::try_from(m.mtime_nsec()).unwrap_or(0).min(999_999_999);
    EntryMeta {
        mode,
        owner: Some(Owner {
            uid: m.uid(),
            gid: m.gid(),
        }),
        mtime: Some(Timestamp {
            secs: m.mtime(),
            nanos,
        }),
        // The access time moves with every read: what a directory's files last had read is
        // not content worth a commit.
        ..EntryMeta::NONE
    }
}

/// Walks `dir` honouring `.heroignore` files; skips `skip` (the repository file itself) and
/// every `.git` ([`crate::is_git_unsafe`]) with what it holds.
fn walk(dir: &Path, skip: &[PathBuf]) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    let walker = ignore::WalkBuilder::new(dir)
        .standard_filters(false)
        .hidden(false)
        .follow_links(false)
        .add_custom_ignore_filename(IGNORE_FILE)
        .sort_by_file_name(|a, b| a.cmp(b))
        // A `.git` (or an alias of it) is left out with what it holds: a git work tree's own
        // directory is not content, and no tree the store writes holds one.
        .filter_entry(|e| e.depth() == 0 || !crate::path::is_git_unsafe(e.file_name().as_bytes()))
        .build();
    for item in walker {
        let entry = item.map_err(|e| Error::io(dir, std::io::Error::other(e.to_string())))?;
        let p = entry.path();
        if p == dir {
            continue;
        }
        if skip.iter().any(|s| p == s.as_path()) {
            continue;
        }
        let rel = p
            .strip_prefix(dir)
            .map_err(|e| Error::io(p, std::io::Error::other(e.to_string())))?;
        if rel.as_os_str() == CHECKOUT_RECORD {
            continue;
        }
        let names: Vec<Vec<u8>> = rel
            .components()
            .map(|c| c.as_os_str().as_bytes().to_vec())
            .collect();
        let path = RepoPath::from_names(names)?;
        let meta = fs::symlink_metadata(p).map_err(|e| Error::io(p, e))?;
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            EntryKind::Dir
        } else if ft.is_symlink() {
            EntryKind::Symlink
        } else if ft.is_file() {
            EntryMeta::file_kind(meta.permissions().mode())
        } else {
            tracing::warn!(path = %p.display(), "skipping special file");
            continue;
        };
        out.push(Found {
            path,
            fs_path: p.to_path_buf(),
            kind,
            size: meta.len(),
            meta: meta_of(&meta),
        });
    }
    Ok(out)
}

/// A file hashed (and, when small, encoded) by a worker.
enum Hashed {
    Small {
        id: ObjectId,
        size: u64,
        record: Vec<u8>,
    },
    Large,
}

fn hash_one(f: &Found, encode: bool) -> Result<Hashed> {
    let content = if f.kind == EntryKind::Symlink {
        let target = fs::read_link(&f.fs_path).map_err(|e| Error::io(&f.fs_path, e))?;
        target.as_os_str().as_bytes().to_vec()
    } else {
        let mut file = fs::File::open(&f.fs_path).map_err(|e| Error::io(&f.fs_path, e))?;
        let head = read_head(&mut file)?;
        if head.len() > SMALL_FILE_MAX {
            return Ok(Hashed::Large);
        }
        head
    };
    let id = ObjectId::of(&content);
    let record = if encode {
        record::encode_full(ObjType::Blob, &content, None)
    } else {
        Vec::new()
    };
    Ok(Hashed::Small {
        id,
        size: content.len() as u64,
        record,
    })
}

/// Hashes every file of `found` on all cores; results in the same order.
fn hash_all(
    found: &[Found],
    encode: bool,
    progress: Option<&(dyn Fn(Progress) + Sync)>,
) -> Result<Vec<Option<Hashed>>> {
    let files: Vec<usize> = (0..found.len())
        .filter(|&i| found[i].kind != EntryKind::Dir)
        .collect();
    let results: Mutex<Vec<Option<Result<Hashed>>>> =
        Mutex::new((0..found.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let bytes = std::sync::atomic::AtomicU64::new(0);
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = files.get(k) else { break };
                    let r = hash_one(&found[i], encode);
                    let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                    let b = bytes.fetch_add(found[i].size, Ordering::Relaxed) + found[i].size;
                    if let Some(p) = progress
                        && (d.is_multiple_of(256) || d == files.len())
                    {
                        p(Progress {
                            done: d as u64,
                            total: Some(files.len() as u64),
                            bytes: b,
                        });
                    }
                    if let Ok(mut guard) = results.lock() {
                        guard[i] = Some(r);
                    }
                }
            });
        }
    });
    let results = results
        .into_inner()
        .map_err(|_| Error::Input(std::io::Error::other("worker panicked")))?;
    results.into_iter().map(|r| r.transpose()).collect()
}

/// Flattened files of a tree: path to (kind, id, size). Entries named `.git` (or an alias of it)
/// are left out with what they hold: a directory never has them (checkout does not write
/// them, the walk does not read them).
fn flatten(view: &View, tree: ObjectId) -> Result<BTreeMap<RepoPath, TreeEntry>> {
    Ok(flatten_keeping(view, tree)?.0)
}

/// [`flatten`], and the `.git` entries it leaves out, each with its directory.
#[allow(clippy::type_complexity)]
fn flatten_keeping(
    view: &View,
    tree: ObjectId,
) -> Result<(BTreeMap<RepoPath, TreeEntry>, Vec<(RepoPath, TreeEntry)>)> {
    let mut out = BTreeMap::new();
    let mut kept = Vec::new();
    let mut stack = vec![(RepoPath::root(), tree)];
    while let Some((at, id)) = stack.pop() {
        let t = view.tree(&id)?;
        for e in t.entries {
            // Special files are not written to a working directory either (see
            // [`CheckoutReport::skipped_special`]): they stay as the branch has them.
            if crate::path::is_git_unsafe(&e.name) || e.kind.is_special() {
                kept.push((at.clone(), e));
                continue;
            }
            let p = at.join(&e.name)?;
            if e.kind == EntryKind::Dir {
                stack.push((p.clone(), e.id));
            }
            out.insert(p, e);
        }
    }
    Ok((out, kept))
}

impl Repo {
    /// Makes the branch's tree exactly the content of `dir` (honouring `.heroignore`, leaving
    /// out `.git` directories and their aliases), in one
    /// commit on top of the branch head. Refuses with [`Error::RefMoved`] if the branch moved
    /// while the directory was being read. Refuses hero's reserved branches
    /// ([`Error::ReservedBranch`]).
    pub fn snapshot(
        &self,
        dir: &Path,
        branch: &str,
        meta: CommitMeta,
        opts: &SnapshotOptions<'_>,
    ) -> Result<SnapshotReport> {
        let refname = crate::refs::ordinary_branch_ref(branch)?;
        let head = {
            let view = self.view()?;
            match view.get_ref(&refname)? {
                Some(v) => Some(view.peel(v)?),
                None => None,
            }
        };
        self.snapshot_inner(dir, head, Some(&refname), meta, opts)
    }

    /// Snapshots `dir` as a commit whose parent is `parent` (none: a root commit) and moves no
    /// ref: the commit is stored, and it is for the caller to put it on a branch (a
    /// fast-forward or a merge). When nothing changed against `parent`, returns `parent` with
    /// `created: false` (unless `allow_empty`).
    pub fn snapshot_onto(
        &self,
        dir: &Path,
        parent: Option<ObjectId>,
        meta: CommitMeta,
        opts: &SnapshotOptions<'_>,
    ) -> Result<SnapshotReport> {
        self.snapshot_inner(dir, parent, None, meta, opts)
    }

    fn snapshot_inner(
        &self,
        dir: &Path,
        head: Option<ObjectId>,
        refname: Option<&str>,
        meta: CommitMeta,
        opts: &SnapshotOptions<'_>,
    ) -> Result<SnapshotReport> {
        // A file (or anything else) given for the directory would snapshot as an empty tree:
        // every file of the branch deleted.
        if !fs::metadata(dir).map_err(|e| Error::io(dir, e))?.is_dir() {
            return Err(Error::NotADirectory(dir.display().to_string()));
        }
        let view = self.view()?;
        let base_tree = match head {
            Some(h) => Some(view.commit(&h)?.tree),
            None => None,
        };
        // The `.git` entries and special files of the base are not in the directory (never
        // written there, never read from it): they stay as they are, in the directories that
        // still exist.
        let (old, kept) = match base_tree {
            Some(t) => flatten_keeping(&view, t)?,
            None => (BTreeMap::new(), Vec::new()),
        };
        let dir = fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
        let skip = self.own_files();
        let found = walk(&dir, &skip)?;
        let hashed = hash_all(&found, true, opts.progress)?;

        let mut pending = Pending::default();
        let mut dirs: BTreeMap<RepoPath, Vec<TreeEntry>> = BTreeMap::new();
        let mut dir_meta: HashMap<RepoPath, EntryMeta> = HashMap::new();
        dirs.insert(RepoPath::root(), Vec::new());
        let (mut files, mut bytes) = (0u64, 0u64);
        for (f, h) in found.iter().zip(hashed) {
            if f.kind == EntryKind::Dir {
                dirs.entry(f.path.clone()).or_default();
                dir_meta.insert(f.path.clone(), f.meta);
                continue;
            }
            let prev = old.get(&f.path).filter(|e| e.kind.is_blob()).map(|e| e.id);
            let (id, size) = match h {
                Some(Hashed::Small { id, size, record }) => {
                    pending.add_encoded(id, record);
                    if let Some(p) = prev {
                        pending.delta(p, id);
                    }
                    (id, size)
                }
                Some(Hashed::Large) | None => {
                    // Holes of the file on disk are skipped, not read.
                    let file = fs::File::open(&f.fs_path).map_err(|e| Error::io(&f.fs_path, e))?;
                    let len = file.metadata().map_err(|e| Error::io(&f.fs_path, e))?.len();
                    let stored = self.write_file_from(&file, len, prev)?;
                    (stored.id, stored.size)
                }
            };
            files += 1;
            bytes += size;
            if pending.bytes >= 32 << 20 {
                self.write(|w| pending.apply(w))?;
            }
            let name = f.path.file_name().unwrap_or_default().to_vec();
            dirs.entry(f.path.parent()).or_default().push(TreeEntry {
                name,
                kind: f.kind,
                id,
                size,
                meta: f.meta,
            });
        }
        for (parent, e) in kept {
            if let Some(entries) = dirs.get_mut(&parent) {
                entries.push(e);
            }
        }
        // Build trees deepest first.
        let mut paths: Vec<RepoPath> = dirs.keys().cloned().collect();
        paths.sort_by_key(|p| std::cmp::Reverse(p.depth()));
        let ndirs = paths.len() as u64 - 1;
        let mut root_id = None;
        for p in paths {
            let mut entries = dirs.remove(&p).unwrap_or_default();
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            let tree = Tree { entries };
            let raw = tree.encode();
            let id = ObjectId::of(&raw);
            pending.add(ObjType::Tree, id, &raw, None);
            let old_id = if p.is_root() {
                base_tree
            } else {
                old.get(&p)
                    .filter(|e| e.kind == EntryKind::Dir)
                    .map(|e| e.id)
            };
            if let Some(o) = old_id {
                pending.delta(o, id);
            }
            if p.is_root() {
                root_id = Some(id);
            } else {
                let name = p.file_name().unwrap_or_default().to_vec();
                dirs.entry(p.parent()).or_default().push(TreeEntry {
                    name,
                    kind: EntryKind::Dir,
                    id,
                    size: tree.entries.len() as u64,
                    meta: dir_meta.get(&p).copied().unwrap_or_default(),
                });
            }
        }
        let tree_id = root_id.ok_or_else(|| Error::InvalidOperation("/".into(), "no root"))?;
        let committed = self.write(|w| {
            pending.apply(w)?;
            let cur = match refname {
                Some(r) => w.get_ref(r)?,
                None => head.map(RefValue::Commit),
            };
            if let Some(r) = refname
                && cur != head.map(RefValue::Commit)
            {
                return Err(Error::RefMoved {
                    name: r.to_owned(),
                    expected: head,
                    found: cur.map(|v| v.id()),
                });
            }
            if let Some(h) = head
                && base_tree == Some(tree_id)
                && !opts.allow_empty
            {
                return Ok(Committed {
                    id: h,
                    created: false,
                });
            }
            let id = meta.put_commit(w, tree_id, head.into_iter().collect())?;
            if let Some(r) = refname {
                w.set_ref(r, cur, Some(RefValue::Commit(id)), "snapshot")?;
            }
            Ok(Committed { id, created: true })
        })?;
        Ok(SnapshotReport {
            committed,
            files,
            dirs: ndirs,
            bytes,
        })
    }

    /// The repository file and redb's companions, never snapshotted.
    fn own_files(&self) -> Vec<PathBuf> {
        let p = fs::canonicalize(self.path()).unwrap_or_else(|_| self.path().to_path_buf());
        vec![p]
    }

    /// Compares `dir` with the tree of `commit` (or the empty tree).
    pub fn status(&self, dir: &Path, commit: Option<ObjectId>) -> Result<Vec<StatusEntry>> {
        let view = self.view()?;
        let old = match commit {
            Some(c) => flatten(&view, view.commit(&c)?.tree)?,
            None => BTreeMap::new(),
        };
        let dir = fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
        let found = walk(&dir, &self.own_files())?;
        let hashed = hash_all(&found, false, None)?;
        let mut seen: HashMap<&RepoPath, ()> = HashMap::new();
        let mut out = Vec::new();
        for (f, h) in found.iter().zip(hashed) {
            seen.insert(&f.path, ());
            let new_id = match h {
                Some(Hashed::Small { id, .. }) => Some(id),
                Some(Hashed::Large) => {
                    let file = fs::File::open(&f.fs_path).map_err(|e| Error::io(&f.fs_path, e))?;
                    let len = file.metadata().map_err(|e| Error::io(&f.fs_path, e))?.len();
                    Some(self.large_file_id(&file, len)?)
                }
                None => None,
            };
            match old.get(&f.path) {
                None => out.push(StatusEntry {
                    path: f.path.clone(),
                    kind: StatusKind::Added,
                }),
                Some(e) => {
                    let same = if f.kind == EntryKind::Dir {
                        e.kind == EntryKind::Dir
                    } else {
                        e.kind == f.kind && Some(e.id) == new_id
                    };
                    let kind = if !same {
                        Some(StatusKind::Modified)
                    } else if e.meta != f.meta {
                        Some(StatusKind::Metadata)
                    } else {
                        None
                    };
                    if let Some(kind) = kind {
                        out.push(StatusEntry {
                            path: f.path.clone(),
                            kind,
                        });
                    }
                }
            }
        }
        for p in old.keys() {
            if !seen.contains_key(p) {
                out.push(StatusEntry {
                    path: p.clone(),
                    kind: StatusKind::Deleted,
                });
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Writes the tree of `commit` into `dir` (created if missing). Refuses a non-empty `dir`
    /// unless `opts.force`, which overwrites files the revision holds and leaves other files.
    pub fn checkout(
        &self,
        commit: &ObjectId,
        dir: &Path,
        opts: &CheckoutOptions<'_>,
    ) -> Result<CheckoutReport> {
        let view = self.view()?;
        let tree = view.commit(commit)?.tree;
        if dir.exists() {
            let mut rd = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
            if rd.next().is_some() && !opts.force {
                return Err(Error::PathExists(format!(
                    "{} is not empty (use force to write into it)",
                    dir.display()
                )));
            }
        } else {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        // Collect the work first (directories made in order), then write files on all cores,
        // then give directories their metadata (writing into them changed their times).
        let mut files: Vec<(PathBuf, TreeEntry)> = Vec::new();
        let mut made_dirs: Vec<(PathBuf, EntryMeta)> = Vec::new();
        let mut stack = vec![(dir.to_path_buf(), RepoPath::root(), tree)];
        let mut dirs = 0u64;
        let mut skipped_unsafe = Vec::new();
        let mut skipped_special = Vec::new();
        while let Some((at, path, id)) = stack.pop() {
            for e in view.tree(&id)?.entries {
                let target = at.join(std::ffi::OsStr::from_bytes(&e.name));
                // A `.git` (or an alias of it) is never written: it would be a git repository's
                // own directory (hooks, config) made by whoever wrote the tree.
                if crate::path::is_git_unsafe(&e.name) {
                    skipped_unsafe.push(path.join(&e.name)?);
                    continue;
                }
                match e.kind {
                    EntryKind::Dir => {
                        match fs::create_dir(&target) {
                            Ok(()) => {}
                            Err(err)
                                if err.kind() == std::io::ErrorKind::AlreadyExists
                                    && target.is_dir() => {}
                            Err(err) => return Err(Error::io(&target, err)),
                        }
                        dirs += 1;
                        made_dirs.push((target.clone(), e.meta));
                        stack.push((target, path.join(&e.name)?, e.id));
                    }
                    EntryKind::Gitlink => {
                        fs::create_dir_all(&target).map_err(|err| Error::io(&target, err))?;
                    }
                    k if k.is_special() => skipped_special.push(path.join(&e.name)?),
                    _ => files.push((target, e)),
                }
            }
        }
        skipped_unsafe.sort();
        skipped_special.sort();
        // Owners are given back only when running as root (asked once, not per file).
        let as_root = is_root();
        let total = files.len() as u64;
        let next = AtomicUsize::new(0);
        let done = AtomicUsize::new(0);
        let bytes = std::sync::atomic::AtomicU64::new(0);
        let first_err: Mutex<Option<Error>> = Mutex::new(None);
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(1, 8);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    let v = match self.view() {
                        Ok(v) => v,
                        Err(e) => {
                            if let Ok(mut g) = first_err.lock() {
                                g.get_or_insert(e);
                            }
                            return;
                        }
                    };
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some((target, e)) = files.get(k) else {
                            break;
                        };
                        if let Err(err) = write_entry(&v, target, e, as_root) {
                            if let Ok(mut g) = first_err.lock() {
                                g.get_or_insert(err);
                            }
                            break;
                        }
                        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                        let b = bytes.fetch_add(e.size, Ordering::Relaxed) + e.size;
                        if let Some(p) = opts.progress
                            && (d.is_multiple_of(256) || d as u64 == total)
                        {
                            p(Progress {
                                done: d as u64,
                                total: Some(total),
                                bytes: b,
                            });
                        }
                    }
                });
            }
        });
        if let Some(e) = first_err.into_inner().ok().flatten() {
            return Err(e);
        }
        // Deepest first: setting a directory's time after its children are done.
        for (target, meta) in made_dirs.iter().rev() {
            apply_meta(target, meta, EntryKind::Dir, as_root)?;
        }
        Ok(CheckoutReport {
            files: total,
            dirs,
            bytes: bytes.into_inner(),
            skipped_unsafe,
            skipped_special,
        })
    }
}

fn write_entry(view: &View, target: &Path, e: &TreeEntry, as_root: bool) -> Result<()> {
    if let Ok(m) = fs::symlink_metadata(target) {
        if m.is_dir() {
            return Err(Error::IsADirectory(target.display().to_string()));
        }
        fs::remove_file(target).map_err(|err| Error::io(target, err))?;
    }
    match e.kind {
        EntryKind::Symlink => {
            let content = view.read_file(&e.id, 1 << 20)?;
            std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&content), target)
                .map_err(|err| Error::io(target, err))?;
        }
        _ => {
            // Holes stay holes: a sparse file checks out sparse.
            let out = fs::File::create(target).map_err(|err| Error::io(target, err))?;
            view.write_sparse(&e.id, &out, target)?;
        }
    }
    apply_meta(target, &e.meta, e.kind, as_root)
}

/// Gives a checked-out entry its recorded metadata: owner (only when running as root, as tar
/// does; otherwise files belong to whoever checks out), the modification time, then permission
/// bits (the kind's default when none is recorded; after the owner, since chown clears setuid
/// and setgid). Symlinks get no time: a symlink's own time cannot be set without
/// `lutimes`, and nothing reads it.
fn apply_meta(target: &Path, meta: &EntryMeta, kind: EntryKind, as_root: bool) -> Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    if let Some(o) = meta.owner {
        let md = fs::symlink_metadata(target).map_err(|err| Error::io(target, err))?;
        if as_root && (md.uid(), md.gid()) != (o.uid, o.gid) {
            std::os::unix::fs::lchown(target, Some(o.uid), Some(o.gid))
                .map_err(|err| Error::io(target, err))?;
        }
    }
    if kind == EntryKind::Symlink {
        return Ok(());
    }
    // The time before the mode: a mode without read permission would keep us from opening it.
    if let Some(t) = meta.mtime {
        let f = fs::File::open(target).map_err(|err| Error::io(target, err))?;
        f.set_modified(t.to_system_time())
            .map_err(|err| Error::io(target, err))?;
    }
    let mode = meta.mode_or_default(kind);
    fs::set_permissions(target, fs::Permissions::from_mode(mode))
        .map_err(|err| Error::io(target, err))
}

/// Whether this process runs as root (owner of `/proc/self`, which is the process's own
/// effective user).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Options for [`Repo::checkout`].
#[derive(Default)]
pub struct CheckoutOptions<'a> {
    /// Write into a non-empty directory, overwriting files the revision holds.
    pub force: bool,
    /// Called now and then with progress.
    pub progress: Option<&'a (dyn Fn(Progress) + Sync)>,
}

impl std::fmt::Debug for CheckoutOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckoutOptions")
            .field("force", &self.force)
            .finish()
    }
}

/// What a checkout wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutReport {
    /// Files and symlinks written.
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Entries not written because git would take them for its `.git` directory
    /// ([`crate::is_git_unsafe`]), with everything below them.
    pub skipped_unsafe: Vec<RepoPath>,
    /// Special files (FIFOs, sockets, device nodes) not written: a working directory holds
    /// content, and making device nodes needs root. A later commit of the directory keeps
    /// them as the branch has them.
    pub skipped_special: Vec<RepoPath>,
}

/// How a path in a directory differs from a revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    /// Not in the revision.
    Added,
    /// Different content or kind.
    Modified,
    /// The same content; different permission bits, owner or modification time.
    Metadata,
    /// In the revision, not in the directory.
    Deleted,
}

/// One line of `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusEntry {
    /// The path.
    pub path: RepoPath,
    /// How it differs.
    pub kind: StatusKind,
}
