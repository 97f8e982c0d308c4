//! How many requests of each kind the kernel sent, and how long the thread that read them
//! spent answering (or handing them over): the mount's own share of a request's cost, the
//! rest being the kernel's round trip. Two relaxed atomic additions and two clock reads per
//! request; read with [`crate::MountHandle::request_stats`] and logged at debug level when
//! the session ends.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The kinds of request counted, in the order [`RequestStats::snapshot`] lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Lookup,
    Forget,
    Getattr,
    Setattr,
    Readlink,
    Mknod,
    Mkdir,
    Unlink,
    Rmdir,
    Symlink,
    Rename,
    Link,
    Open,
    Read,
    Write,
    Flush,
    Release,
    Fsync,
    Opendir,
    Readdir,
    Readdirplus,
    Releasedir,
    Fsyncdir,
    Statfs,
    Access,
    Create,
    Fallocate,
    Lseek,
}

const OPS: [(Op, &str); 28] = [
    (Op::Lookup, "LOOKUP"),
    (Op::Forget, "FORGET"),
    (Op::Getattr, "GETATTR"),
    (Op::Setattr, "SETATTR"),
    (Op::Readlink, "READLINK"),
    (Op::Mknod, "MKNOD"),
    (Op::Mkdir, "MKDIR"),
    (Op::Unlink, "UNLINK"),
    (Op::Rmdir, "RMDIR"),
    (Op::Symlink, "SYMLINK"),
    (Op::Rename, "RENAME"),
    (Op::Link, "LINK"),
    (Op::Open, "OPEN"),
    (Op::Read, "READ"),
    (Op::Write, "WRITE"),
    (Op::Flush, "FLUSH"),
    (Op::Release, "RELEASE"),
    (Op::Fsync, "FSYNC"),
    (Op::Opendir, "OPENDIR"),
    (Op::Readdir, "READDIR"),
    (Op::Readdirplus, "READDIRPLUS"),
    (Op::Releasedir, "RELEASEDIR"),
    (Op::Fsyncdir, "FSYNCDIR"),
    (Op::Statfs, "STATFS"),
    (Op::Access, "ACCESS"),
    (Op::Create, "CREATE"),
    (Op::Fallocate, "FALLOCATE"),
    (Op::Lseek, "LSEEK"),
];

/// The requests of one kind: how many, and the time the reading thread spent on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestCount {
    /// The request's name in the FUSE protocol (`LOOKUP`, `CREATE`, ...).
    pub name: &'static str,
    /// Requests received.
    pub count: u64,
    /// Time from the call of the handler on the reading thread to its return: the whole
    /// answer for most requests (its write to the kernel included), the hand-over for those
    /// answered by a worker.
    pub busy: Duration,
}

#[derive(Debug, Default)]
pub(crate) struct RequestStats {
    count: [AtomicU64; OPS.len()],
    nanos: [AtomicU64; OPS.len()],
}

/// Adds the time of one request when dropped (at the end of its handler). The request is
/// counted when it starts, so a caller that got its answer finds it counted.
pub(crate) struct Timed<'a> {
    stats: &'a RequestStats,
    op: Op,
    started: Instant,
}

impl Drop for Timed<'_> {
    fn drop(&mut self) {
        let ns = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.stats.nanos[self.op as usize].fetch_add(ns, Ordering::Relaxed);
    }
}

impl RequestStats {
    /// Counts a request of kind `op` and times it until the result is dropped.
    pub fn time(&self, op: Op) -> Timed<'_> {
        self.count[op as usize].fetch_add(1, Ordering::Relaxed);
        Timed {
            stats: self,
            op,
            started: Instant::now(),
        }
    }

    /// The kinds received at least once.
    pub fn snapshot(&self) -> Vec<RequestCount> {
        OPS.iter()
            .map(|&(op, name)| RequestCount {
                name,
                count: self.count[op as usize].load(Ordering::Relaxed),
                busy: Duration::from_nanos(self.nanos[op as usize].load(Ordering::Relaxed)),
            })
            .filter(|c| c.count > 0)
            .collect()
    }

    /// Logs the counts at debug level, one line per kind.
    pub fn log(&self) {
        for c in self.snapshot() {
            let per = c.busy.as_nanos() / u128::from(c.count.max(1));
            tracing::debug!(request = c.name, count = c.count, busy = ?c.busy,
                ns_per_request = per as u64, "requests answered");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_counted_under_its_own_name() {
        for (i, (op, _)) in OPS.iter().enumerate() {
            assert_eq!(*op as usize, i, "{op:?} is listed out of order");
        }
        let s = RequestStats::default();
        drop(s.time(Op::Lookup));
        drop(s.time(Op::Lookup));
        drop(s.time(Op::Create));
        let snap = s.snapshot();
        let names: Vec<_> = snap.iter().map(|c| (c.name, c.count)).collect();
        assert_eq!(names, vec![("LOOKUP", 2), ("CREATE", 1)]);
    }
}
