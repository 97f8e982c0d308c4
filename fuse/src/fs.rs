//! The `fuser::Filesystem` glue: decodes kernel requests, calls the state, replies.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, Filesystem, FopenFlags, Generation, INodeNo,
    InitFlags, KernelConfig, LockOwner, Notifier, OpenAccMode, OpenFlags, RenameFlags, ReplyAttr,
    ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyStatfs, ReplyWrite, Request, TimeOrNow,
};

use hero_store::{EntryKind, Owner};

use crate::guard::{self, Caller};
use crate::readahead::Data;
use crate::state::{Cfg, Inval, MAX_NAME, R, SNAP, Shared, Source, State, io_errno, store_errno};
use crate::workers::Workers;

/// How long the kernel may cache names and attributes. Changes made elsewhere are pushed to
/// the kernel by invalidation, so this can be long.
const TTL: Duration = Duration::from_secs(60);
/// For `.snapshots/<rev>`, whose meaning moves with the branches.
const SNAP_TTL: Duration = Duration::from_secs(1);

pub(crate) struct HeroFs {
    pub shared: Arc<Shared>,
    /// Polling for requests while they keep coming (see `spin`); set once the session is
    /// made.
    pub spin: Arc<std::sync::OnceLock<Arc<crate::spin::Spin>>>,
    /// Where reads are answered (see `workers`).
    pub reads: Workers,
    /// Where requests that wait on commits are answered.
    pub waits: Workers,
}

pub(crate) fn send_invalidations(notifier: &Notifier, invals: Vec<Inval>) {
    for i in invals {
        let res = match &i {
            Inval::Entry(parent, name) => {
                notifier.inval_entry(INodeNo(*parent), OsStr::from_bytes(name))
            }
            Inval::Inode(ino) => notifier.inval_inode(INodeNo(*ino), 0, 0),
        };
        if let Err(e) = res
            && e.raw_os_error() != Some(nix::errno::Errno::ENOENT as i32)
        {
            tracing::debug!(?i, error = %e, "invalidation not delivered");
        }
    }
}

/// The attributes and attribute TTL of an inode for an entry reply.
fn entry_of(st: &State, ino: u64, cfg: &Cfg) -> R<(FileAttr, Duration)> {
    let attr = st.attr(ino, cfg)?;
    let ttl = if st.node(ino).is_ok_and(|n| n.parent == SNAP) {
        SNAP_TTL
    } else {
        TTL
    };
    Ok((attr, ttl))
}

fn send_entry(res: R<(FileAttr, Duration)>, reply: ReplyEntry) {
    match res {
        Ok((attr, ttl)) => reply.entry_with_ttls(&TTL, &ttl, &attr, Generation(0)),
        Err(e) => reply.error(e),
    }
}

/// The attributes of a negative entry: node id 0 tells the kernel the name is missing (the
/// rest is not read).
fn negative_attr() -> FileAttr {
    FileAttr {
        ino: INodeNo(0),
        size: 0,
        blocks: 0,
        atime: SystemTime::UNIX_EPOCH,
        mtime: SystemTime::UNIX_EPOCH,
        ctime: SystemTime::UNIX_EPOCH,
        crtime: SystemTime::UNIX_EPOCH,
        kind: fuser::FileType::RegularFile,
        perm: 0,
        nlink: 0,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

fn to_time(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

impl HeroFs {
    /// Counts and times a request (see `stats`), and keeps the request thread polling.
    fn begin(&self, op: crate::stats::Op) -> crate::stats::Timed<'_> {
        if let Some(s) = self.spin.get() {
            s.request();
        }
        self.shared.stats.time(op)
    }

    /// `unlink` (`dir` false) and `rmdir` (`dir` true).
    fn remove_reply(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        dir: bool,
        reply: ReplyEmpty,
    ) {
        let res = {
            let mut st = self.shared.lock();
            guard::check(&self.shared.cfg, req, &st, parent.0, Some(name.as_bytes()))
                .and_then(|()| st.remove(&self.shared, parent.0, name.as_bytes(), dir))
        };
        match res {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    /// Replies with the entry of `ino`, counted as looked up by the caller; if its attributes
    /// cannot be read the count is taken back (the kernel forgets only entries it got).
    fn entry_reply(&self, ino: u64, reply: ReplyEntry) {
        let res = {
            let mut st = self.shared.lock();
            let res = entry_of(&st, ino, &self.shared.cfg);
            if res.is_err() {
                st.forget(ino, 1);
            }
            res
        };
        send_entry(res, reply);
    }

    fn attr(&self, ino: u64) -> R<FileAttr> {
        let mut st = self.shared.lock();
        st.fill_links(&self.shared.repo, ino);
        st.attr(ino, &self.shared.cfg)
    }

    /// Runs `job`, a change to the content of `ino`, with the state locked, then `done` with
    /// its result (after the lock is released): on this thread, unless a commit is reading
    /// the file; then on a worker, once the commit has read it.
    fn writable<T: Send + 'static>(
        &self,
        ino: u64,
        job: impl FnOnce(&mut State, &Shared) -> T + Send + 'static,
        done: impl FnOnce(T) + Send + 'static,
    ) {
        if let Some(mut st) = self.shared.try_lock_writable(ino) {
            let res = job(&mut st, &self.shared);
            drop(st);
            done(res);
            return;
        }
        let shared = self.shared.clone();
        self.waits.run(move || {
            let res = {
                let mut st = shared.lock_writable(ino);
                job(&mut st, &shared)
            };
            done(res);
        });
    }
}

fn commit_now(shared: &Shared) -> R<()> {
    match shared.flush() {
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::error!(error = %e, "commit on fsync failed");
            Err(store_errno(&e))
        }
    }
}

fn reply_empty(res: R<()>, reply: ReplyEmpty) {
    match res {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

impl Filesystem for HeroFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        if config
            .add_capabilities(InitFlags::FUSE_DO_READDIRPLUS)
            .is_err()
        {
            tracing::debug!("kernel has no readdirplus");
        }
        let _ = config.add_capabilities(InitFlags::FUSE_PARALLEL_DIROPS);
        let _ = config.set_max_write(1 << 20);
        Ok(())
    }

    /// `SEEK_DATA` and `SEEK_HOLE` (the kernel answers the other kinds itself): holes of a
    /// stored file come from its chunk list, those of a file being written from its spill
    /// file.
    fn lseek(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: fuser::ReplyLseek,
    ) {
        let _timed = self.begin(crate::stats::Op::Lseek);
        let hole = match whence {
            nix::libc::SEEK_DATA => false,
            nix::libc::SEEK_HOLE => true,
            _ => {
                reply.error(Errno::EINVAL);
                return;
            }
        };
        let Ok(offset) = u64::try_from(offset) else {
            reply.error(Errno::ENXIO);
            return;
        };
        let res = self
            .shared
            .lock()
            .seek_data(&self.shared.repo, ino.0, offset, hole);
        match res.and_then(|p| i64::try_from(p).map_err(|_| Errno::EOVERFLOW)) {
            Ok(p) => reply.offset(p),
            Err(e) => reply.error(e),
        }
    }

    /// The session ended: unmounted, by the handle or from outside.
    fn destroy(&mut self) {
        tracing::debug!(mountpoint = %self.shared.cfg.mountpoint.display(), "session ended");
        self.shared.stats.log();
        if let Some(s) = self.spin.get() {
            s.end();
        }
        self.shared.ended.set();
        self.shared.bell.ring();
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let _timed = self.begin(crate::stats::Op::Lookup);
        // One lock for the lookup and the attributes (a cold `stat` is one lookup).
        let res = {
            let mut st = self.shared.lock();
            match st.lookup(&self.shared.repo, parent.0, name.as_bytes()) {
                Ok(ino) => {
                    let res = entry_of(&st, ino, &self.shared.cfg);
                    if res.is_err() {
                        // Not replied: the kernel will not forget it.
                        st.forget(ino, 1);
                    }
                    res
                }
                // Cached by the kernel as missing (node id 0), like a found entry.
                Err(e) if e == Errno::ENOENT && st.negative_entry(parent.0) => {
                    Ok((negative_attr(), TTL))
                }
                Err(e) => Err(e),
            }
        };
        send_entry(res, reply);
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        let _timed = self.begin(crate::stats::Op::Forget);
        self.shared.lock().forget(ino.0, nlookup);
    }
    // `batch_forget` keeps fuser's default (one `forget` per inode): fuser 0.18 does not
    // export `ForgetOne`, so it cannot be overridden.

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let _timed = self.begin(crate::stats::Op::Getattr);
        match self.attr(ino.0) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let _timed = self.begin(crate::stats::Op::Setattr);
        let caller = Caller::of(req);
        let mtime = mtime.map(to_time);
        let atime = atime.map(to_time);
        let job = move |st: &mut State, shared: &Shared| {
            let cfg = &shared.cfg;
            guard::check_as(cfg, caller, st, ino.0, None)
                .and_then(|()| st.attr(ino.0, cfg))
                .and_then(|before| {
                    if !cfg.kernel_checks {
                        may_setattr(
                            caller,
                            &before,
                            mode,
                            uid,
                            gid,
                            mtime.is_some() || atime.is_some(),
                        )?;
                    }
                    let owner = (uid.is_some() || gid.is_some()).then(|| Owner {
                        uid: uid.unwrap_or(before.uid),
                        gid: gid.unwrap_or(before.gid),
                    });
                    st.setattr(shared, ino.0, mode, size, mtime, owner, atime)
                })
                .and_then(|()| st.attr(ino.0, cfg))
        };
        let done = move |res: R<FileAttr>| match res {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        };
        if size.is_some() {
            self.writable(ino.0, job, done);
        } else {
            let res = job(&mut self.shared.lock(), &self.shared);
            done(res);
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let _timed = self.begin(crate::stats::Op::Readlink);
        let res = self.shared.lock().readlink(&self.shared.repo, ino.0);
        match res {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let _timed = self.begin(crate::stats::Op::Mknod);
        // The kernel has checked CAP_MKNOD for device nodes before asking.
        let special = match mode & libc_s_ifmt() {
            f if f == libc_s_ifreg() => None,
            f if f == nix::sys::stat::SFlag::S_IFIFO.bits() => Some((EntryKind::Fifo, None)),
            f if f == nix::sys::stat::SFlag::S_IFSOCK.bits() => Some((EntryKind::Socket, None)),
            f if f == nix::sys::stat::SFlag::S_IFCHR.bits() => {
                Some((EntryKind::CharDevice, Some(u64::from(rdev))))
            }
            f if f == nix::sys::stat::SFlag::S_IFBLK.bits() => {
                Some((EntryKind::BlockDevice, Some(u64::from(rdev))))
            }
            _ => {
                reply.error(Errno::EINVAL);
                return;
            }
        };
        let res = {
            let mut st = self.shared.lock();
            guard::check(&self.shared.cfg, req, &st, parent.0, Some(name.as_bytes())).and_then(
                |()| match special {
                    None => st.mknod(&self.shared, parent.0, name.as_bytes(), mode, owner_of(req)),
                    Some((kind, rdev)) => st.mknod_special(
                        &self.shared,
                        parent.0,
                        name.as_bytes(),
                        kind,
                        rdev,
                        mode,
                        owner_of(req),
                    ),
                },
            )
        };
        match res {
            Ok(ino) => self.entry_reply(ino, reply),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let _timed = self.begin(crate::stats::Op::Mkdir);
        let res = {
            let mut st = self.shared.lock();
            guard::check(&self.shared.cfg, req, &st, parent.0, Some(name.as_bytes())).and_then(
                |()| st.mkdir(&self.shared, parent.0, name.as_bytes(), mode, owner_of(req)),
            )
        };
        match res {
            Ok(ino) => self.entry_reply(ino, reply),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _timed = self.begin(crate::stats::Op::Unlink);
        self.remove_reply(req, parent, name, false, reply);
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _timed = self.begin(crate::stats::Op::Rmdir);
        self.remove_reply(req, parent, name, true, reply);
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let _timed = self.begin(crate::stats::Op::Symlink);
        let res = {
            let mut st = self.shared.lock();
            let allowed = guard::check(
                &self.shared.cfg,
                req,
                &st,
                parent.0,
                Some(link_name.as_bytes()),
            );
            allowed.and_then(|()| {
                st.symlink(
                    &self.shared,
                    parent.0,
                    link_name.as_bytes(),
                    target.as_os_str().as_bytes(),
                    owner_of(req),
                )
            })
        };
        match res {
            Ok(ino) => self.entry_reply(ino, reply),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let _timed = self.begin(crate::stats::Op::Rename);
        let exchange = flags.contains(RenameFlags::RENAME_EXCHANGE);
        if flags.contains(RenameFlags::RENAME_WHITEOUT)
            || (exchange && flags.contains(RenameFlags::RENAME_NOREPLACE))
        {
            reply.error(Errno::EINVAL);
            return;
        }
        let res = {
            let mut st = self.shared.lock();
            let allowed = guard::check(&self.shared.cfg, req, &st, parent.0, Some(name.as_bytes()))
                .and_then(|()| {
                    guard::check(
                        &self.shared.cfg,
                        req,
                        &st,
                        newparent.0,
                        Some(newname.as_bytes()),
                    )
                });
            allowed.and_then(|()| {
                if exchange {
                    st.exchange(
                        &self.shared,
                        parent.0,
                        name.as_bytes(),
                        newparent.0,
                        newname.as_bytes(),
                    )
                } else {
                    st.rename(
                        &self.shared,
                        parent.0,
                        name.as_bytes(),
                        newparent.0,
                        newname.as_bytes(),
                        flags.contains(RenameFlags::RENAME_NOREPLACE),
                    )
                }
            })
        };
        match res {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn link(
        &self,
        req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let _timed = self.begin(crate::stats::Op::Link);
        let res = {
            let mut st = self.shared.lock();
            guard::check(
                &self.shared.cfg,
                req,
                &st,
                newparent.0,
                Some(newname.as_bytes()),
            )
            .and_then(|()| st.link(&self.shared, ino.0, newparent.0, newname.as_bytes()))
        };
        match res {
            Ok(ino) => self.entry_reply(ino, reply),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let _timed = self.begin(crate::stats::Op::Open);
        let write = flags.acc_mode() != OpenAccMode::O_RDONLY;
        let trunc = flags.0 & nix::fcntl::OFlag::O_TRUNC.bits() != 0;
        let append = flags.0 & nix::fcntl::OFlag::O_APPEND.bits() != 0;
        let caller = Caller::of(req);
        let job = move |st: &mut State, shared: &Shared| {
            let allowed = if write {
                guard::check_as(&shared.cfg, caller, st, ino.0, None)
            } else {
                Ok(())
            };
            allowed.and_then(|()| st.open(shared, ino.0, write, trunc && write, append))
        };
        let done = move |res: R<(u64, bool)>| match res {
            Ok((fh, keep)) => {
                let f = if keep {
                    FopenFlags::FOPEN_KEEP_CACHE
                } else {
                    FopenFlags::empty()
                };
                reply.opened(FileHandle(fh), f);
            }
            Err(e) => reply.error(e),
        };
        if trunc && write {
            self.writable(ino.0, job, done);
        } else {
            let res = job(&mut self.shared.lock(), &self.shared);
            done(res);
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let _timed = self.begin(crate::stats::Op::Read);
        // Decoding stored content (or reading the disk) may take a while: on a worker.
        let shared = self.shared.clone();
        self.reads
            .run(move || read_reply(&shared, fh, offset, size, reply));
    }

    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: fuser::WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let _timed = self.begin(crate::stats::Op::Write);
        // A write to a file a commit is reading waits for that read (without the lock), on a
        // worker with a copy of the data; any other is done here.
        let caller = Caller::of(req);
        let done = move |res: R<u32>| match res {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        };
        if let Some(mut st) = self.shared.try_lock_writable(ino.0) {
            let res = guard::check_as(&self.shared.cfg, caller, &st, ino.0, None)
                .and_then(|()| st.write(&self.shared, fh.0, offset, data));
            drop(st);
            done(res);
            return;
        }
        let data = data.to_vec();
        let shared = self.shared.clone();
        self.waits.run(move || {
            let res = {
                let mut st = shared.lock_writable(ino.0);
                guard::check_as(&shared.cfg, caller, &st, ino.0, None)
                    .and_then(|()| st.write(&shared, fh.0, offset, &data))
            };
            done(res);
        });
    }

    fn fallocate(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let _timed = self.begin(crate::stats::Op::Fallocate);
        // Like a write: it waits for a commit reading the file.
        let caller = Caller::of(req);
        self.writable(
            ino.0,
            move |st, shared| {
                guard::check_as(&shared.cfg, caller, st, ino.0, None)
                    .and_then(|()| st.fallocate(shared, fh.0, offset, length, mode))
            },
            move |res| reply_empty(res, reply),
        );
    }

    /// Nothing to do on `close`: ENOSYS tells the kernel to stop sending FLUSH, which saves
    /// a round trip per `close` (the kernel then treats every flush as done).
    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        let _timed = self.begin(crate::stats::Op::Flush);
        reply.error(Errno::ENOSYS);
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let _timed = self.begin(crate::stats::Op::Release);
        self.shared.lock().release(fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let _timed = self.begin(crate::stats::Op::Fsync);
        // A commit (or the wait for others to share it): on a worker.
        let shared = self.shared.clone();
        let pid = req.pid();
        self.waits.run(move || {
            reply_empty(
                crate::durability::commit_for_fsync(&shared, ino.0, pid),
                reply,
            );
        });
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let _timed = self.begin(crate::stats::Op::Opendir);
        let res = {
            let mut st = self.shared.lock();
            st.list(&self.shared.repo, ino.0)
                .map(|items| st.open_dir(ino.0, items))
        };
        match res {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let _timed = self.begin(crate::stats::Op::Readdir);
        let items = self.shared.lock().dir_items(fh.0);
        let Some(items) = items else {
            reply.error(Errno::EBADF);
            return;
        };
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        for (i, item) in items.iter().enumerate().skip(start) {
            if reply.add(
                INodeNo(item.ino),
                i as u64 + 1,
                item.kind,
                OsStr::from_bytes(&item.name),
            ) {
                break;
            }
        }
        reply.ok();
    }

    fn readdirplus(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let _timed = self.begin(crate::stats::Op::Readdirplus);
        let mut st = self.shared.lock();
        let Some(items) = st.dir_items(fh.0) else {
            drop(st);
            reply.error(Errno::EBADF);
            return;
        };
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        for (i, item) in items.iter().enumerate().skip(start) {
            st.fill_links(&self.shared.repo, item.ino);
            let Ok(attr) = st.attr(item.ino, &self.shared.cfg) else {
                continue;
            };
            let dots = item.name == b"." || item.name == b"..";
            let ttl = if item.ino != SNAP && st.node(item.ino).is_ok_and(|n| n.parent == SNAP) {
                SNAP_TTL
            } else {
                TTL
            };
            if reply.add(
                INodeNo(item.ino),
                i as u64 + 1,
                OsStr::from_bytes(&item.name),
                &ttl,
                &attr,
                Generation(0),
            ) {
                break;
            }
            if !dots {
                st.add_lookup(item.ino);
            }
        }
        drop(st);
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        let _timed = self.begin(crate::stats::Op::Releasedir);
        self.shared.lock().release_dir(fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let _timed = self.begin(crate::stats::Op::Fsyncdir);
        let shared = self.shared.clone();
        self.waits
            .run(move || reply_empty(commit_now(&shared), reply));
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let _timed = self.begin(crate::stats::Op::Statfs);
        let dir = if self.shared.cfg.read_only {
            self.shared
                .repo
                .path()
                .parent()
                .unwrap_or(Path::new("/"))
                .to_path_buf()
        } else {
            self.shared.cfg.spill_dir.clone()
        };
        match nix::sys::statvfs::statvfs(&dir) {
            Ok(s) => reply.statfs(
                s.blocks(),
                s.blocks_free(),
                s.blocks_available(),
                s.files(),
                s.files_free(),
                u32::try_from(s.block_size()).unwrap_or(4096),
                MAX_NAME as u32,
                u32::try_from(s.fragment_size()).unwrap_or(4096),
            ),
            Err(e) => reply.error(Errno::from_i32(e as i32)),
        }
    }

    /// `access(2)` and `chdir`. The mount does without the kernel's `default_permissions`
    /// (that check needs fresh attributes of every directory on a path, and creating a file
    /// makes its directory's stale: one more round trip per created file). Only the mount's
    /// owner can use it (no `allow_other`), and every change to a read-only inode is refused
    /// by the file system itself (EROFS), so this answers by the mode bits like the kernel.
    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let _timed = self.begin(crate::stats::Op::Access);
        match self.attr(ino.0) {
            Ok(a) if access_ok(&a, req.uid(), req.gid(), mask) => reply.ok(),
            Ok(_) => reply.error(Errno::EACCES),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let _timed = self.begin(crate::stats::Op::Create);
        let append = flags & nix::fcntl::OFlag::O_APPEND.bits() != 0;
        let res = {
            let mut st = self.shared.lock();
            guard::check(&self.shared.cfg, req, &st, parent.0, Some(name.as_bytes()))
                .and_then(|()| {
                    st.mknod(&self.shared, parent.0, name.as_bytes(), mode, owner_of(req))
                })
                .and_then(|ino| {
                    // On failure the file exists, but the kernel gets no entry to forget and
                    // no handle to release: give both back here.
                    let opened = st.open(&self.shared, ino, true, false, append);
                    let res = opened.and_then(|(fh, _)| match st.attr(ino, &self.shared.cfg) {
                        Ok(attr) => Ok((ino, fh, attr)),
                        Err(e) => {
                            st.release(fh);
                            Err(e)
                        }
                    });
                    if res.is_err() {
                        st.forget(ino, 1);
                    }
                    res
                })
        };
        match res {
            Ok((_, fh, attr)) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(fh),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }
}

/// The caller, as the owner of what it creates.
fn owner_of(req: &Request) -> Owner {
    Owner {
        uid: req.uid(),
        gid: req.gid(),
    }
}

/// The kernel's rules for `chmod`, `chown` and `utimes` when it leaves them to us (without
/// `default_permissions`): root may do anything; the owner may change the mode, the times and
/// the group (to its own group: the request carries no supplementary groups); nobody else may.
fn may_setattr(
    req: Caller,
    before: &FileAttr,
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    times: bool,
) -> Result<(), Errno> {
    if req.uid == 0 {
        return Ok(());
    }
    let owner = req.uid == before.uid;
    let uid_ok = uid.is_none_or(|u| u == before.uid) && (uid.is_none() || owner);
    let gid_ok = gid.is_none_or(|g| g == before.gid || (owner && g == req.gid));
    let rest_ok = (mode.is_none() && !times) || owner;
    if uid_ok && gid_ok && rest_ok {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

/// Whether `uid`/`gid` may access an inode with attributes `a` as `mask` asks (the
/// kernel's `generic_permission` for mode bits).
fn access_ok(a: &FileAttr, uid: u32, gid: u32, mask: AccessFlags) -> bool {
    let mut want = 0u16;
    if mask.contains(AccessFlags::R_OK) {
        want |= 4;
    }
    if mask.contains(AccessFlags::W_OK) {
        want |= 2;
    }
    if mask.contains(AccessFlags::X_OK) {
        want |= 1;
    }
    if uid == 0 {
        // Root may do anything but execute a file nobody may execute.
        return want & 1 == 0 || a.kind == fuser::FileType::Directory || a.perm & 0o111 != 0;
    }
    let bits = if uid == a.uid {
        a.perm >> 6
    } else if gid == a.gid {
        a.perm >> 3
    } else {
        a.perm
    } & 7;
    want & !bits == 0
}

fn libc_s_ifmt() -> u32 {
    nix::sys::stat::SFlag::S_IFMT.bits()
}

fn libc_s_ifreg() -> u32 {
    nix::sys::stat::SFlag::S_IFREG.bits()
}

/// Answers a `read`.
fn read_reply(shared: &Shared, fh: FileHandle, offset: u64, size: u32, reply: ReplyData) {
    let handle = shared.lock().handles.get(&fh.0).cloned();
    let Some(handle) = handle else {
        reply.error(Errno::EBADF);
        return;
    };
    let Ok(mut src) = handle.source.lock() else {
        reply.error(Errno::EIO);
        return;
    };
    let res = match &mut *src {
        Source::Spill(s) => {
            let mut buf = vec![0u8; size as usize];
            let mut done = 0usize;
            let mut res = Ok(());
            while done < buf.len() {
                match s.file.read_at(&mut buf[done..], offset + done as u64) {
                    Ok(0) => break,
                    Ok(n) => done += n,
                    Err(e) => {
                        res = Err(io_errno(&e));
                        break;
                    }
                }
            }
            buf.truncate(done);
            res.map(|()| Data::Owned(buf))
        }
        Source::Reader(r) => r.read(&shared.repo, &shared.pool, offset, size),
        Source::Empty => Ok(Data::Owned(Vec::new())),
    };
    drop(src);
    match res {
        Ok(d) => reply.data(d.as_slice()),
        Err(e) => reply.error(e),
    }
}
