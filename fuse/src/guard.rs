//! `.hero/`, the daemon's configuration (its hooks run as the daemon's account), is written
//! through the mount only by the account the mount runs as, and by nobody while
//! [`crate::MountOptions::config_writable`] is off (ADR 0022).

use std::sync::atomic::Ordering;

use fuser::{Errno, Request};

use crate::state::{Cfg, R, ROOT, State};

/// Whether the entry `name` of directory `dir` (or, without a name, `dir` itself) lies in
/// the configuration directory (`.hero` at the root included). Unlinked inodes and
/// snapshots are not in it.
pub(crate) fn in_config(st: &State, dir: u64, name: Option<&[u8]>) -> bool {
    let mut cur = dir;
    let mut top = name;
    for _ in 0..4096 {
        if cur == ROOT {
            return top.is_some_and(|n| n == hero_store::CONFIG_DIR.as_bytes());
        }
        let Ok(node) = st.node(cur) else {
            return false;
        };
        if node.parent == 0 || node.ro {
            return false;
        }
        top = Some(&node.name);
        cur = node.parent;
    }
    false
}

/// Refuses (EACCES) a change to the entry `name` of `dir` (or to `dir` itself) in the
/// configuration directory, unless it comes from the mount's own account while the
/// configuration may be changed.
pub(crate) fn check(cfg: &Cfg, req: &Request, st: &State, dir: u64, name: Option<&[u8]>) -> R<()> {
    check_as(cfg, Caller::of(req), st, dir, name)
}

/// Who made a request, kept when the request is answered on another thread.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
}

impl Caller {
    pub fn of(req: &Request) -> Caller {
        Caller {
            uid: req.uid(),
            gid: req.gid(),
            pid: req.pid(),
        }
    }
}

/// [`check`] for a caller taken from its request.
pub(crate) fn check_as(
    cfg: &Cfg,
    caller: Caller,
    st: &State,
    dir: u64,
    name: Option<&[u8]>,
) -> R<()> {
    if !in_config(st, dir, name) {
        return Ok(());
    }
    if !cfg.config_writable.load(Ordering::Relaxed) {
        tracing::debug!(
            uid = caller.uid,
            "refused: the configuration is not writable here"
        );
        return Err(Errno::EACCES);
    }
    if caller.uid != cfg.process_uid {
        tracing::info!(
            uid = caller.uid,
            pid = caller.pid,
            "refused a change to {} by another account",
            hero_store::CONFIG_DIR
        );
        return Err(Errno::EACCES);
    }
    Ok(())
}
