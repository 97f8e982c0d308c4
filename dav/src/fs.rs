//! dav-server's filesystem traits over the store: every request reads the branch head as it
//! is now; writes go through the committer; `/.snapshots/<rev>/...` is a read-only view of any
//! revision.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes};
use dav_server::davpath::DavPath;
use dav_server::fs::{
    DavDirEntry, DavFile, DavFileSystem, DavMetaData, DavProp, FsError, FsFuture, FsResult,
    FsStream, OpenOptions, ReadDirMeta,
};
use futures_util::FutureExt;
use hero_store::{
    EntryKind, EntryMeta, FileReader, ObjectId, Repo, RepoPath, Tree, TreeEntry, View,
};
use http::StatusCode;

use crate::meta::{Meta, Times, from_nanos};
use crate::writer::{Done, Op, Writer};

/// The name of the read-only revisions directory at the root.
pub(crate) const SNAPSHOTS: &[u8] = b".snapshots";
/// Content up to this size is held in memory while it is uploaded.
const MEM_SPOOL: usize = 1 << 20;
/// Decoded trees kept (content-addressed, so never stale).
const TREE_CACHE: usize = 512;

tokio::task_local! {
    /// The changes of the DELETE, COPY or MOVE request being handled: collected here instead
    /// of committed one by one, then committed together (see [`StoreFs::submit_group`]).
    pub(crate) static GROUP: Group;
}

/// Changes collected during one request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Group(Arc<Mutex<Vec<Op>>>);

impl Group {
    fn push(&self, op: Op) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(op);
    }

    /// The collected changes.
    pub(crate) fn take(&self) -> Vec<Op> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Drops deletions made redundant by a later deletion of an ancestor (dav-server deletes a
/// collection member by member, then the collection).
fn compress(ops: Vec<Op>) -> Vec<Op> {
    let mut keep = vec![true; ops.len()];
    for i in 0..ops.len() {
        let Op::Delete(p) = &ops[i] else { continue };
        for (j, later) in ops.iter().enumerate().skip(i + 1) {
            match later {
                Op::Delete(q) if p.starts_with(q) && j > i => {
                    keep[i] = false;
                    break;
                }
                Op::Delete(_) => {}
                _ => break,
            }
        }
    }
    ops.into_iter()
        .zip(keep)
        .filter_map(|(op, k)| k.then_some(op))
        .collect()
}

/// The status a failed change is answered with.
pub(crate) fn fs_status(e: &FsError) -> StatusCode {
    match e {
        FsError::NotFound => StatusCode::NOT_FOUND,
        FsError::Exists => StatusCode::CONFLICT,
        FsError::Forbidden | FsError::NotImplemented => StatusCode::FORBIDDEN,
        FsError::InsufficientStorage => StatusCode::INSUFFICIENT_STORAGE,
        FsError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Maps store errors to WebDAV results.
pub(crate) fn fs_err(e: &hero_store::Error) -> FsError {
    use hero_store::Error as E;
    match e {
        E::NoSuchPath(_) | E::NotADirectory(_) | E::UnknownRevision(_) => FsError::NotFound,
        E::PathExists(_) | E::NotEmpty(_) => FsError::Exists,
        E::IsADirectory(_) | E::InvalidOperation(..) | E::Name(_) => FsError::Forbidden,
        E::FileTooLarge => FsError::TooLarge,
        e if e.is_disk_full() => FsError::InsufficientStorage,
        e => {
            tracing::error!(error = %e, "store error");
            FsError::GeneralFailure
        }
    }
}

fn store<T>(r: hero_store::Result<T>) -> FsResult<T> {
    r.map_err(|e| fs_err(&e))
}

fn join_err(e: tokio::task::JoinError) -> FsError {
    tracing::error!(error = %e, "blocking task failed");
    FsError::GeneralFailure
}

/// An entity tag from a content (or tree) id: 128 bits are plenty, and short tags keep the
/// `If:` headers clients build from them short (neon, litmus' HTTP library, cuts long ones).
fn etag(id: &ObjectId) -> String {
    id.to_hex()[..32].to_owned()
}

/// Where a request path points.
#[derive(Debug, Clone)]
pub(crate) enum Loc {
    /// A path on the served branch.
    Head(RepoPath),
    /// `/.snapshots/` itself.
    SnapRoot,
    /// A path in a revision; `rev` is the name it was reached by.
    Snap(Vec<Vec<u8>>),
}

pub(crate) fn parse_loc(p: &DavPath) -> FsResult<Loc> {
    let segs: Vec<&[u8]> = p
        .as_bytes()
        .split(|&c| c == b'/')
        .filter(|s| !s.is_empty())
        .collect();
    if segs.first() == Some(&SNAPSHOTS) {
        if segs.len() == 1 {
            return Ok(Loc::SnapRoot);
        }
        let rest: Vec<Vec<u8>> = segs[1..].iter().map(|s| s.to_vec()).collect();
        return Ok(Loc::Snap(rest));
    }
    RepoPath::from_names(segs.iter().map(|s| s.to_vec()))
        .map(Loc::Head)
        .map_err(|_| FsError::NotFound)
}

/// Metadata of one entry.
#[derive(Debug, Clone)]
pub(crate) struct Meta2 {
    dir: bool,
    len: u64,
    mtime: SystemTime,
    ctime: SystemTime,
    etag: String,
    exec: bool,
}

impl DavMetaData for Meta2 {
    fn len(&self) -> u64 {
        self.len
    }
    fn modified(&self) -> FsResult<SystemTime> {
        Ok(self.mtime)
    }
    fn is_dir(&self) -> bool {
        self.dir
    }
    fn etag(&self) -> Option<String> {
        Some(self.etag.clone())
    }
    fn created(&self) -> FsResult<SystemTime> {
        Ok(self.ctime)
    }
    fn executable(&self) -> FsResult<bool> {
        Ok(self.exec)
    }
}

/// A resolved revision to read from.
struct Rev {
    view: View,
    /// The root tree (`None`: the branch does not exist yet, an empty root).
    root: Option<ObjectId>,
    /// The commit's time, used where no better time is known.
    time: SystemTime,
    /// Whether this is the served branch (times recorded by the share apply).
    head: bool,
}

/// The shared state of the filesystem.
pub(crate) struct Shared {
    pub repo: Arc<Repo>,
    pub branch: String,
    pub writer: Writer,
    pub meta: Arc<Meta>,
    pub spill_dir: PathBuf,
    trees: Mutex<HashMap<ObjectId, Arc<Tree>>>,
}

/// The filesystem handed to dav-server.
#[derive(Clone)]
pub(crate) struct StoreFs {
    pub s: Arc<Shared>,
}

impl StoreFs {
    pub(crate) fn new(
        repo: Arc<Repo>,
        branch: String,
        writer: Writer,
        meta: Arc<Meta>,
        spill_dir: PathBuf,
    ) -> StoreFs {
        StoreFs {
            s: Arc::new(Shared {
                repo,
                branch,
                writer,
                meta,
                spill_dir,
                trees: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn tree(&self, view: &View, id: &ObjectId) -> FsResult<Arc<Tree>> {
        let mut cache = self.s.trees.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = cache.get(id) {
            return Ok(t.clone());
        }
        drop(cache);
        let t = Arc::new(store(view.tree(id))?);
        cache = self.s.trees.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= TREE_CACHE {
            cache.clear();
        }
        cache.insert(*id, t.clone());
        Ok(t)
    }

    fn commit_rev(&self, view: View, commit: &ObjectId, head: bool) -> FsResult<Rev> {
        let c = store(view.commit(commit))?;
        let time = UNIX_EPOCH + std::time::Duration::from_secs(c.committer.time.max(0) as u64);
        Ok(Rev {
            view,
            root: Some(c.tree),
            time,
            head,
        })
    }

    /// The branch as it is now.
    fn head(&self) -> FsResult<Rev> {
        let view = store(self.s.repo.view())?;
        match store(view.branch_head(&self.s.branch))? {
            Some(c) => self.commit_rev(view, &c, true),
            None => Ok(Rev {
                view,
                root: None,
                time: SystemTime::now(),
                head: true,
            }),
        }
    }

    /// Resolves a location to a revision and a path in it.
    fn resolve(&self, loc: &Loc) -> FsResult<(Rev, RepoPath)> {
        match loc {
            Loc::Head(p) => Ok((self.head()?, p.clone())),
            Loc::SnapRoot => Err(FsError::NotFound),
            Loc::Snap(segs) => {
                let view = store(self.s.repo.view())?;
                // A revision name may hold slashes (`feature/x`): the shortest prefix that names
                // a revision wins.
                for k in 1..=segs.len() {
                    let Ok(rev) = std::str::from_utf8(&segs[..k].join(&b'/')).map(str::to_owned)
                    else {
                        return Err(FsError::NotFound);
                    };
                    if let Ok(commit) = view.resolve(&rev) {
                        let path = RepoPath::from_names(segs[k..].iter().cloned())
                            .map_err(|_| FsError::NotFound)?;
                        return Ok((self.commit_rev(view, &commit, false)?, path));
                    }
                }
                Err(FsError::NotFound)
            }
        }
    }

    /// The entry at `path` (the root is a directory entry of the root tree). A path through a
    /// `.git` or an alias of it ([`hero_store::is_git_unsafe`]) is not served: not found.
    fn entry(&self, rev: &Rev, path: &RepoPath) -> FsResult<TreeEntry> {
        if path.names().iter().any(|n| hero_store::is_git_unsafe(n)) {
            return Err(FsError::NotFound);
        }
        let Some(root) = rev.root else {
            if path.is_root() {
                return Ok(TreeEntry {
                    name: Vec::new(),
                    kind: EntryKind::Dir,
                    id: Tree::default().id(),
                    size: 0,
                    meta: EntryMeta::NONE,
                });
            }
            return Err(FsError::NotFound);
        };
        let mut cur = TreeEntry {
            name: Vec::new(),
            kind: EntryKind::Dir,
            id: root,
            size: 0,
            meta: EntryMeta::NONE,
        };
        for (i, name) in path.names().iter().enumerate() {
            if cur.kind != EntryKind::Dir {
                return Err(FsError::NotFound);
            }
            if i == 0 && rev.head && name.as_slice() == SNAPSHOTS {
                return Err(FsError::NotFound);
            }
            let tree = self.tree(&rev.view, &cur.id)?;
            cur = tree.get(name).cloned().ok_or(FsError::NotFound)?;
        }
        // Special files (FIFOs, sockets, device nodes) have no content to offer: like
        // gitlinks, they are neither listed nor served.
        if cur.kind == EntryKind::Gitlink || cur.kind.is_special() {
            return Err(FsError::NotFound);
        }
        Ok(cur)
    }

    fn meta_of(&self, rev: &Rev, e: &TreeEntry, times: Option<Times>) -> Meta2 {
        let dir = e.kind == EntryKind::Dir;
        // The entry's own time when the tree keeps one (saved through the mount, committed
        // from a directory), else its commit's; a time a client set here wins below.
        let kept = e.meta.mtime.map(|t| t.to_system_time());
        let (mut mtime, mut ctime) = (kept.unwrap_or(rev.time), kept.unwrap_or(rev.time));
        if rev.head
            && let Some(t) = times
        {
            ctime = from_nanos(t.ctime);
            if dir || t.id == Some(e.id) {
                mtime = from_nanos(t.mtime);
            }
            if ctime > mtime {
                ctime = mtime;
            }
        }
        Meta2 {
            dir,
            len: if dir { 0 } else { e.size },
            mtime,
            ctime,
            etag: etag(&e.id),
            exec: e.kind == EntryKind::Executable,
        }
    }

    fn snap_root_meta(&self) -> Meta2 {
        let now = SystemTime::now();
        Meta2 {
            dir: true,
            len: 0,
            mtime: now,
            ctime: now,
            etag: "snapshots".into(),
            exec: false,
        }
    }

    /// Metadata of a location, synchronously.
    pub(crate) fn lookup(&self, loc: &Loc) -> FsResult<(Meta2, Option<TreeEntry>)> {
        if let Loc::SnapRoot = loc {
            return Ok((self.snap_root_meta(), None));
        }
        let (rev, path) = self.resolve(loc)?;
        let e = self.entry(&rev, &path)?;
        let times = if rev.head {
            self.s.meta.times(&path)
        } else {
            None
        };
        Ok((self.meta_of(&rev, &e, times), Some(e)))
    }

    fn head_path(p: &DavPath) -> FsResult<RepoPath> {
        match parse_loc(p)? {
            Loc::Head(path) if path.is_root() => Err(FsError::Forbidden),
            Loc::Head(path) => Ok(path),
            _ => Err(FsError::Forbidden),
        }
    }

    /// A path on the branch that a request writes (PUT, MKCOL, the destination of MOVE and
    /// COPY): 403 when one of its names is `.git` or an alias of it
    /// ([`hero_store::is_git_unsafe`]), which no tree the share writes may hold.
    fn written_path(p: &DavPath) -> FsResult<RepoPath> {
        let path = Self::head_path(p)?;
        if path.names().iter().any(|n| hero_store::is_git_unsafe(n)) {
            return Err(FsError::Forbidden);
        }
        Ok(path)
    }

    async fn submit(&self, op: Op) -> FsResult<Done> {
        self.s.writer.submit(op).await.map_err(|e| fs_err(&e))
    }

    /// Commits a change now, or adds it to the request's group.
    async fn change(&self, op: Op) -> FsResult<()> {
        let op = match GROUP.try_with(|g| g.clone()) {
            Ok(g) => {
                g.push(op);
                return Ok(());
            }
            Err(_) => op,
        };
        self.submit(op).await.map(|_| ())
    }

    /// Commits the changes collected during one request as one commit.
    pub(crate) async fn submit_group(&self, label: String, ops: Vec<Op>) -> Result<(), StatusCode> {
        let mut ops = compress(ops);
        let op = if ops.len() == 1 {
            ops.remove(0)
        } else {
            Op::Group { label, ops }
        };
        self.submit(op).await.map(|_| ()).map_err(|e| fs_status(&e))
    }

    /// Applies times a Windows client set with PROPPATCH.
    pub(crate) fn set_win32(
        &self,
        p: &DavPath,
        mtime: Option<SystemTime>,
        ctime: Option<SystemTime>,
        attrs: Option<u32>,
    ) -> FsResult<()> {
        let Loc::Head(path) = parse_loc(p)? else {
            return Err(FsError::Forbidden);
        };
        let rev = self.head()?;
        let e = self.entry(&rev, &path)?;
        let id = (e.kind != EntryKind::Dir).then_some(e.id);
        store(
            self.s
                .meta
                .set_times(&path, id, mtime, ctime, attrs, rev.time),
        )
    }
}

struct DirEntry {
    name: Vec<u8>,
    meta: Meta2,
}

impl DavDirEntry for DirEntry {
    fn name(&self) -> Vec<u8> {
        self.name.clone()
    }
    fn metadata(&'_ self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        let m: Box<dyn DavMetaData> = Box::new(self.meta.clone());
        futures_util::future::ready(Ok(m)).boxed()
    }
    fn is_dir(&'_ self) -> FsFuture<'_, bool> {
        futures_util::future::ready(Ok(self.meta.dir)).boxed()
    }
}

impl DavFileSystem for StoreFs {
    fn open<'a>(
        &'a self,
        path: &'a DavPath,
        options: OpenOptions,
    ) -> FsFuture<'a, Box<dyn DavFile>> {
        async move {
            let loc = parse_loc(path)?;
            if options.write {
                let path = Self::written_path(path)?;
                let rev = self.head()?;
                let existing = match self.entry(&rev, &path) {
                    Ok(e) => Some(e),
                    Err(FsError::NotFound) => None,
                    Err(e) => return Err(e),
                };
                match &existing {
                    Some(e) if e.kind == EntryKind::Dir => return Err(FsError::Forbidden),
                    Some(_) if options.create_new => return Err(FsError::Exists),
                    None if !options.create => return Err(FsError::NotFound),
                    None => match self.entry(&rev, &path.parent()) {
                        Ok(p) if p.kind == EntryKind::Dir => {}
                        _ => return Err(FsError::NotFound),
                    },
                    _ => {}
                }
                let kind = match &existing {
                    Some(e) if e.kind == EntryKind::Executable => EntryKind::Executable,
                    _ => EntryKind::File,
                };
                let prev = existing.as_ref().map(|e| e.id);
                let mut file = WriteFile::new(self.clone(), path, kind, prev);
                if !options.truncate
                    && let Some(e) = existing
                {
                    // Partial update: start from the current content.
                    let reader = store(rev.view.open_file(&e.id))?;
                    file.preload(reader).await?;
                }
                if options.append {
                    file.pos = file.len;
                }
                return Ok(Box::new(file) as Box<dyn DavFile>);
            }
            let (rev, rpath) = self.resolve(&loc)?;
            let e = self.entry(&rev, &rpath)?;
            if e.kind == EntryKind::Dir {
                return Err(FsError::Forbidden);
            }
            let times = if rev.head {
                self.s.meta.times(&rpath)
            } else {
                None
            };
            let meta = self.meta_of(&rev, &e, times);
            let reader = store(rev.view.open_file(&e.id))?;
            Ok(Box::new(ReadFile {
                reader: Arc::new(Mutex::new(reader)),
                pos: 0,
                meta,
                ahead: Default::default(),
                last_end: None,
            }) as Box<dyn DavFile>)
        }
        .boxed()
    }

    fn read_dir<'a>(
        &'a self,
        path: &'a DavPath,
        _meta: ReadDirMeta,
    ) -> FsFuture<'a, FsStream<Box<dyn DavDirEntry>>> {
        async move {
            let loc = parse_loc(path)?;
            let mut out: Vec<FsResult<Box<dyn DavDirEntry>>> = Vec::new();
            if let Loc::SnapRoot = loc {
                let view = store(self.s.repo.view())?;
                let mut names: Vec<String> = store(view.branches())?
                    .into_iter()
                    .map(|(n, _)| n)
                    .collect();
                names.extend(store(view.tags())?.into_iter().map(|(n, _)| n));
                let meta = self.snap_root_meta();
                for n in names {
                    out.push(Ok(Box::new(DirEntry {
                        name: n.into_bytes(),
                        meta: meta.clone(),
                    })));
                }
            } else {
                let (rev, dir) = self.resolve(&loc)?;
                let e = self.entry(&rev, &dir)?;
                if e.kind != EntryKind::Dir {
                    return Err(FsError::Forbidden);
                }
                let tree = if rev.root.is_some() {
                    self.tree(&rev.view, &e.id)?
                } else {
                    Arc::new(Tree::default())
                };
                let times = if rev.head {
                    self.s.meta.child_times(&dir)
                } else {
                    Default::default()
                };
                for child in &tree.entries {
                    // A `.git` a tree holds (from a peer, or from before the store refused
                    // them) is neither listed nor served (see `entry`).
                    if child.kind == EntryKind::Gitlink
                        || child.kind.is_special()
                        || (rev.head && dir.is_root() && child.name == SNAPSHOTS)
                        || hero_store::is_git_unsafe(&child.name)
                    {
                        continue;
                    }
                    let meta = self.meta_of(&rev, child, times.get(&child.name).copied());
                    out.push(Ok(Box::new(DirEntry {
                        name: child.name.clone(),
                        meta,
                    })));
                }
            }
            let s: FsStream<Box<dyn DavDirEntry>> = Box::pin(futures_util::stream::iter(out));
            Ok(s)
        }
        .boxed()
    }

    fn metadata<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, Box<dyn DavMetaData>> {
        async move {
            let loc = parse_loc(path)?;
            let (m, _) = self.lookup(&loc)?;
            Ok(Box::new(m) as Box<dyn DavMetaData>)
        }
        .boxed()
    }

    fn create_dir<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        async move {
            let p = match parse_loc(path)? {
                Loc::Head(p) if p.is_root() => return Err(FsError::Exists),
                Loc::Head(_) => Self::written_path(path)?,
                Loc::SnapRoot => return Err(FsError::Exists),
                Loc::Snap(_) => return Err(FsError::Forbidden),
            };
            self.change(Op::Mkdir(p)).await
        }
        .boxed()
    }

    fn remove_dir<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        async move {
            let p = Self::head_path(path)?;
            self.change(Op::Delete(p)).await
        }
        .boxed()
    }

    fn remove_file<'a>(&'a self, path: &'a DavPath) -> FsFuture<'a, ()> {
        async move {
            let p = Self::head_path(path)?;
            self.change(Op::Delete(p)).await
        }
        .boxed()
    }

    fn rename<'a>(&'a self, from: &'a DavPath, to: &'a DavPath) -> FsFuture<'a, ()> {
        async move {
            let a = Self::head_path(from)?;
            let b = Self::written_path(to)?;
            self.change(Op::Rename(a, b)).await
        }
        .boxed()
    }

    fn copy<'a>(&'a self, from: &'a DavPath, to: &'a DavPath) -> FsFuture<'a, ()> {
        async move {
            let to = Self::written_path(to)?;
            let loc = parse_loc(from)?;
            let (rev, src) = self.resolve(&loc)?;
            let e = self.entry(&rev, &src)?;
            if e.kind == EntryKind::Dir {
                return Err(FsError::Forbidden);
            }
            let copied_from = matches!(loc, Loc::Head(_)).then_some(src);
            self.change(Op::PutEntry {
                path: to,
                kind: e.kind,
                id: e.id,
                size: e.size,
                copied_from,
            })
            .await
        }
        .boxed()
    }

    fn have_props<'a>(
        &'a self,
        _path: &'a DavPath,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + 'a>> {
        futures_util::future::ready(true).boxed()
    }

    fn patch_props<'a>(
        &'a self,
        path: &'a DavPath,
        patch: Vec<(bool, DavProp)>,
    ) -> FsFuture<'a, Vec<(StatusCode, DavProp)>> {
        async move {
            let Loc::Head(p) = parse_loc(path)? else {
                return Err(FsError::Forbidden);
            };
            self.lookup(&Loc::Head(p.clone()))?;
            let result = patch
                .iter()
                .map(|(_, prop)| {
                    (
                        StatusCode::OK,
                        DavProp {
                            name: prop.name.clone(),
                            prefix: prop.prefix.clone(),
                            namespace: prop.namespace.clone(),
                            xml: None,
                        },
                    )
                })
                .collect();
            store(self.s.meta.patch_props(&p, patch))?;
            Ok(result)
        }
        .boxed()
    }

    fn get_props<'a>(&'a self, path: &'a DavPath, do_content: bool) -> FsFuture<'a, Vec<DavProp>> {
        async move {
            let Loc::Head(p) = parse_loc(path)? else {
                return Ok(Vec::new());
            };
            let mut props = self.s.meta.props(&p);
            if !do_content {
                for p in &mut props {
                    p.xml = None;
                }
            }
            Ok(props)
        }
        .boxed()
    }

    fn get_prop<'a>(&'a self, path: &'a DavPath, prop: DavProp) -> FsFuture<'a, Vec<u8>> {
        async move {
            let Loc::Head(p) = parse_loc(path)? else {
                return Err(FsError::NotFound);
            };
            self.s
                .meta
                .props(&p)
                .into_iter()
                .find(|x| x.name == prop.name && x.namespace == prop.namespace)
                .and_then(|x| x.xml)
                .ok_or(FsError::NotFound)
        }
        .boxed()
    }

    fn get_quota(&'_ self) -> FsFuture<'_, (u64, Option<u64>)> {
        async move {
            let path = self.s.repo.path();
            let used = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let avail = rustix::fs::statvfs(dir)
                .ok()
                .map(|s| s.f_bavail.saturating_mul(s.f_frsize));
            Ok((used, avail.map(|a| a.saturating_add(used))))
        }
        .boxed()
    }
}

/// A file opened for reading: a verified, seekable reader of one snapshot. Sequential reads
/// are pipelined: while one buffer is sent, the next ones are read (verified and
/// decompressed) on a blocking thread. (A second reader verifying in parallel was tried: no
/// measurable gain on 2 cores, and chunks straddling buffers were verified twice.)
#[derive(Debug)]
struct ReadFile {
    reader: Arc<Mutex<FileReader>>,
    pos: u64,
    meta: Meta2,
    /// Reads started ahead: position, size and task, in file order.
    ahead: std::collections::VecDeque<(u64, usize, ReadTask)>,
    /// Where the previous read ended (reads ahead start with the second sequential read, so
    /// a short range request does not read more than it needs).
    last_end: Option<u64>,
}

/// A read running on a blocking thread.
type ReadTask = tokio::task::JoinHandle<FsResult<Vec<u8>>>;

/// Buffers read ahead of the one asked for.
const READ_AHEAD: usize = 2;

/// Reads `count` bytes at `pos` (fewer at the end of the file).
fn read_range(reader: &Mutex<FileReader>, pos: u64, count: usize) -> FsResult<Vec<u8>> {
    let mut r = reader.lock().unwrap_or_else(|e| e.into_inner());
    let mut buf = vec![0u8; count];
    let mut filled = 0;
    while filled < count {
        let n = store(r.read_at(pos + filled as u64, &mut buf[filled..]))?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    buf.truncate(filled);
    Ok(buf)
}

impl ReadFile {
    fn spawn_read(&self, pos: u64, count: usize) -> ReadTask {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || read_range(&reader, pos, count))
    }
}

impl DavFile for ReadFile {
    fn metadata(&'_ mut self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        let m: Box<dyn DavMetaData> = Box::new(self.meta.clone());
        futures_util::future::ready(Ok(m)).boxed()
    }
    fn write_buf(&'_ mut self, _buf: Box<dyn Buf + Send>) -> FsFuture<'_, ()> {
        futures_util::future::ready(Err(FsError::Forbidden)).boxed()
    }
    fn write_bytes(&'_ mut self, _buf: Bytes) -> FsFuture<'_, ()> {
        futures_util::future::ready(Err(FsError::Forbidden)).boxed()
    }
    fn read_bytes(&'_ mut self, count: usize) -> FsFuture<'_, Bytes> {
        async move {
            let pos = self.pos;
            let len = self.meta.len;
            let want = count.min(len.saturating_sub(pos) as usize);
            let sequential = self.last_end == Some(pos);
            let task = match self.ahead.pop_front() {
                Some((p, n, t)) if p == pos && n == want => t,
                _ => {
                    self.ahead.clear();
                    self.spawn_read(pos, want)
                }
            };
            let buf = task.await.map_err(join_err)??;
            self.pos += buf.len() as u64;
            self.last_end = Some(self.pos);
            if sequential && !buf.is_empty() {
                let mut next = self
                    .ahead
                    .back()
                    .map(|(p, n, _)| p + *n as u64)
                    .unwrap_or(self.pos);
                while self.ahead.len() < READ_AHEAD && next < len {
                    let n = count.min((len - next) as usize);
                    let t = self.spawn_read(next, n);
                    self.ahead.push_back((next, n, t));
                    next += n as u64;
                }
            }
            Ok(Bytes::from(buf))
        }
        .boxed()
    }
    fn seek(&'_ mut self, pos: SeekFrom) -> FsFuture<'_, u64> {
        let res = seek_to(&mut self.pos, self.meta.len, pos);
        futures_util::future::ready(res).boxed()
    }
    fn flush(&'_ mut self) -> FsFuture<'_, ()> {
        futures_util::future::ready(Ok(())).boxed()
    }
}

/// Where an upload's bytes go until the request body is complete.
#[derive(Debug)]
enum Spool {
    Mem(Vec<u8>),
    File(Arc<std::fs::File>),
    /// Streamed into the store as it arrives (a plain sequential upload).
    Stream(Upload),
}

/// Bytes handed to the store thread at a time.
const STREAM_BATCH: usize = 256 << 10;

/// An upload being stored while it arrives: a blocking task runs [`Repo::write_file`] over
/// the bytes sent through `tx`.
#[derive(Debug)]
struct Upload {
    tx: Option<tokio::sync::mpsc::Sender<Vec<u8>>>,
    /// Set once the body is complete: the end of the channel is the end of the file, not an
    /// aborted upload.
    complete: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<hero_store::Result<hero_store::StoredFile>>,
}

impl Upload {
    fn start(repo: Arc<Repo>, prev: Option<ObjectId>) -> Upload {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let complete = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = ChannelReader {
            rx,
            cur: Vec::new(),
            off: 0,
            complete: complete.clone(),
        };
        let task = tokio::task::spawn_blocking(move || repo.write_file(reader, prev));
        Upload {
            tx: Some(tx),
            complete,
            task,
        }
    }

    /// Hands bytes to the store thread; on failure, the store's error.
    async fn send(&mut self, data: Vec<u8>) -> FsResult<()> {
        let sent = match &self.tx {
            Some(tx) => tx.send(data).await.is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The store thread stopped early: its result says why.
        self.tx = None;
        match (&mut self.task).await.map_err(join_err)? {
            Err(e) => Err(fs_err(&e)),
            Ok(_) => Err(FsError::GeneralFailure),
        }
    }

    async fn finish(&mut self) -> FsResult<hero_store::StoredFile> {
        self.complete.store(true, Ordering::SeqCst);
        self.tx = None;
        store((&mut self.task).await.map_err(join_err)?)
    }
}

/// The store thread's view of an upload.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
    cur: Vec<u8>,
    off: usize,
    complete: Arc<std::sync::atomic::AtomicBool>,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.off >= self.cur.len() {
            match self.rx.blocking_recv() {
                Some(v) => {
                    self.cur = v;
                    self.off = 0;
                }
                None if self.complete.load(Ordering::SeqCst) => return Ok(0),
                None => return Err(std::io::Error::other("upload aborted")),
            }
        }
        let n = buf.len().min(self.cur.len() - self.off);
        buf[..n].copy_from_slice(&self.cur[self.off..self.off + n]);
        self.off += n;
        Ok(n)
    }
}

/// A file opened for writing: the body is spooled (memory up to 1 MiB, then a temp file in the
/// spill directory), stored and committed on flush.
struct WriteFile {
    fs: StoreFs,
    path: RepoPath,
    kind: EntryKind,
    prev: Option<ObjectId>,
    spool: Spool,
    /// Bytes waiting to be appended to the spool file at `pending_at`.
    pending: Vec<u8>,
    pending_at: u64,
    pos: u64,
    len: u64,
    /// Every write so far appended at the end, from an empty file: the upload can be
    /// streamed into the store.
    appending: bool,
    counted: bool,
    done: Option<Meta2>,
}

impl std::fmt::Debug for WriteFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteFile")
            .field("path", &self.path)
            .field("len", &self.len)
            .finish()
    }
}

impl Drop for WriteFile {
    fn drop(&mut self) {
        self.uncount();
    }
}

fn io_err(e: std::io::Error) -> FsError {
    tracing::error!(error = %e, "spool file");
    if hero_store::is_disk_full_io(&e) {
        FsError::InsufficientStorage
    } else {
        FsError::GeneralFailure
    }
}

impl WriteFile {
    fn new(fs: StoreFs, path: RepoPath, kind: EntryKind, prev: Option<ObjectId>) -> WriteFile {
        fs.s.writer.in_flight.fetch_add(1, Ordering::SeqCst);
        WriteFile {
            fs,
            path,
            kind,
            prev,
            spool: Spool::Mem(Vec::new()),
            pending: Vec::new(),
            pending_at: 0,
            pos: 0,
            len: 0,
            appending: true,
            counted: true,
            done: None,
        }
    }

    fn uncount(&mut self) {
        if self.counted {
            self.counted = false;
            self.fs.s.writer.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }

    async fn preload(&mut self, mut reader: FileReader) -> FsResult<()> {
        self.appending = false;
        let len = reader.len();
        if len as usize <= MEM_SPOOL {
            let data = tokio::task::spawn_blocking(move || {
                let mut v = Vec::with_capacity(len as usize);
                reader.read_to_end(&mut v).map(|_| v)
            })
            .await
            .map_err(join_err)?
            .map_err(io_err)?;
            self.spool = Spool::Mem(data);
        } else {
            let dir = self.fs.s.spill_dir.clone();
            let file = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
                let mut f = tempfile::tempfile_in(dir)?;
                std::io::copy(&mut reader, &mut f)?;
                Ok(f)
            })
            .await
            .map_err(join_err)?
            .map_err(io_err)?;
            self.spool = Spool::File(Arc::new(file));
        }
        self.len = len;
        Ok(())
    }

    /// Writes the pending bytes into the spool file.
    async fn drain(&mut self) -> FsResult<()> {
        let Spool::File(f) = &self.spool else {
            return Ok(());
        };
        if self.pending.is_empty() {
            return Ok(());
        }
        let f = f.clone();
        let data = std::mem::take(&mut self.pending);
        let at = self.pending_at;
        let data = tokio::task::spawn_blocking(move || {
            use std::os::unix::fs::FileExt;
            f.write_all_at(&data, at).map(|_| data)
        })
        .await
        .map_err(join_err)?
        .map_err(io_err)?;
        self.pending = data;
        self.pending.clear();
        Ok(())
    }

    async fn write(&mut self, data: &[u8]) -> FsResult<()> {
        let end = self.pos + data.len() as u64;
        if self.pos != self.len {
            self.appending = false;
        }
        if let Spool::Stream(up) = &mut self.spool {
            if !self.appending {
                // dav-server seeks only before the first write; refuse rather than corrupt.
                tracing::warn!(path = %self.path, "non-sequential write to a streamed upload");
                return Err(FsError::GeneralFailure);
            }
            self.pending.extend_from_slice(data);
            self.pos = end;
            self.len = end;
            if self.pending.len() >= STREAM_BATCH {
                let batch = std::mem::replace(&mut self.pending, Vec::with_capacity(STREAM_BATCH));
                up.send(batch).await?;
            }
            return Ok(());
        }
        if let Spool::Mem(v) = &mut self.spool
            && end as usize > MEM_SPOOL
            && self.appending
        {
            // Too big for memory and plainly sequential: store it as it arrives.
            let mut up = Upload::start(self.fs.s.repo.clone(), self.prev);
            let mut first = std::mem::take(v);
            first.extend_from_slice(data);
            self.pos = end;
            self.len = end;
            let sent = up.send(first).await;
            self.spool = Spool::Stream(up);
            return sent;
        }
        if let Spool::Mem(v) = &mut self.spool {
            if end as usize <= MEM_SPOOL {
                let start = self.pos as usize;
                if v.len() < end as usize {
                    v.resize(end as usize, 0);
                }
                v[start..end as usize].copy_from_slice(data);
                self.pos = end;
                self.len = self.len.max(end);
                return Ok(());
            }
            // Too big for memory: move to a file.
            let dir = self.fs.s.spill_dir.clone();
            let mem = std::mem::take(v);
            let file = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
                use std::io::Write;
                let mut f = tempfile::tempfile_in(dir)?;
                f.write_all(&mem)?;
                Ok(f)
            })
            .await
            .map_err(join_err)?
            .map_err(io_err)?;
            self.spool = Spool::File(Arc::new(file));
            self.pending_at = self.pos;
        }
        if self.pending_at + self.pending.len() as u64 != self.pos {
            self.drain().await?;
            self.pending_at = self.pos;
        }
        self.pending.extend_from_slice(data);
        self.pos = end;
        self.len = self.len.max(end);
        if self.pending.len() >= MEM_SPOOL {
            self.drain().await?;
            self.pending_at = self.pos;
        }
        Ok(())
    }

    fn meta_now(&self, id: ObjectId, time: SystemTime) -> Meta2 {
        Meta2 {
            dir: false,
            len: self.len,
            mtime: time,
            ctime: time,
            etag: etag(&id),
            exec: self.kind == EntryKind::Executable,
        }
    }
}

impl DavFile for WriteFile {
    fn metadata(&'_ mut self) -> FsFuture<'_, Box<dyn DavMetaData>> {
        let m = match &self.done {
            Some(m) => m.clone(),
            None => Meta2 {
                dir: false,
                len: self.len,
                mtime: SystemTime::now(),
                ctime: SystemTime::now(),
                etag: "uploading".into(),
                exec: self.kind == EntryKind::Executable,
            },
        };
        futures_util::future::ready(Ok(Box::new(m) as Box<dyn DavMetaData>)).boxed()
    }
    fn write_buf(&'_ mut self, mut buf: Box<dyn Buf + Send>) -> FsFuture<'_, ()> {
        async move {
            while buf.has_remaining() {
                let chunk = buf.chunk().to_vec();
                buf.advance(chunk.len());
                self.write(&chunk).await?;
            }
            Ok(())
        }
        .boxed()
    }
    fn write_bytes(&'_ mut self, buf: Bytes) -> FsFuture<'_, ()> {
        async move { self.write(&buf).await }.boxed()
    }
    fn read_bytes(&'_ mut self, _count: usize) -> FsFuture<'_, Bytes> {
        futures_util::future::ready(Err(FsError::Forbidden)).boxed()
    }
    fn seek(&'_ mut self, pos: SeekFrom) -> FsFuture<'_, u64> {
        let res = seek_to(&mut self.pos, self.len, pos);
        futures_util::future::ready(res).boxed()
    }
    fn flush(&'_ mut self) -> FsFuture<'_, ()> {
        async move {
            if self.done.is_some() {
                return Ok(());
            }
            let op = match &mut self.spool {
                Spool::Mem(v) => {
                    let data = std::mem::take(v);
                    Op::Put {
                        path: self.path.clone(),
                        kind: self.kind,
                        data,
                    }
                }
                Spool::Stream(up) => {
                    let rest = std::mem::take(&mut self.pending);
                    if !rest.is_empty() {
                        up.send(rest).await?;
                    }
                    let stored = up.finish().await?;
                    if stored.size != self.len {
                        tracing::error!(path = %self.path, "streamed upload size mismatch");
                        return Err(FsError::GeneralFailure);
                    }
                    Op::PutEntry {
                        path: self.path.clone(),
                        kind: self.kind,
                        id: stored.id,
                        size: stored.size,
                        copied_from: None,
                    }
                }
                Spool::File(_) => {
                    self.drain().await?;
                    let Spool::File(f) = &self.spool else {
                        return Err(FsError::GeneralFailure);
                    };
                    let f = f.clone();
                    let repo = self.fs.s.repo.clone();
                    let prev = self.prev;
                    let len = self.len;
                    let stored = tokio::task::spawn_blocking(move || {
                        let mut file: &std::fs::File = &f;
                        file.seek(SeekFrom::Start(0))
                            .map_err(hero_store::Error::Input)?;
                        let reader = std::io::BufReader::with_capacity(1 << 20, file).take(len);
                        repo.write_file(reader, prev)
                    })
                    .await
                    .map_err(join_err)?;
                    let stored = store(stored)?;
                    Op::PutEntry {
                        path: self.path.clone(),
                        kind: self.kind,
                        id: stored.id,
                        size: stored.size,
                        copied_from: None,
                    }
                }
            };
            self.uncount();
            let done = self.fs.submit(op).await?;
            let id = done.id.ok_or(FsError::GeneralFailure)?;
            self.done = Some(self.meta_now(id, done.time));
            tracing::debug!(path = %self.path, commit = %done.commit.short(), "stored");
            Ok(())
        }
        .boxed()
    }
}

/// Moves a file position as `Seek` does; a position before the start is an error.
fn seek_to(cur: &mut u64, len: u64, pos: SeekFrom) -> Result<u64, FsError> {
    let new = match pos {
        SeekFrom::Start(n) => i128::from(n),
        SeekFrom::End(d) => i128::from(len) + i128::from(d),
        SeekFrom::Current(d) => i128::from(*cur) + i128::from(d),
    };
    *cur = u64::try_from(new).map_err(|_| FsError::GeneralFailure)?;
    Ok(*cur)
}
