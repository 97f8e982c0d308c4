//! WebDAV locks kept in repository settings (`dav/locks/<branch>/<token>`), so they survive a
//! restart. Expired locks are dropped as they are met.

use std::future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dav_server::davpath::DavPath;
use dav_server::ls::{DavLock, DavLockSystem, LsFuture};
use futures_util::FutureExt;
use hero_store::Repo;
use xmltree::Element;

use crate::codec::{Reader, put_field, put_opt};

/// A lock system over the repository's settings.
#[derive(Clone)]
pub(crate) struct StoreLocks {
    repo: Arc<Repo>,
    prefix: String,
    locks: Arc<Mutex<Vec<DavLock>>>,
}

impl std::fmt::Debug for StoreLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreLocks")
            .field("prefix", &self.prefix)
            .finish()
    }
}

fn segs(p: &DavPath) -> Vec<&[u8]> {
    p.as_bytes()
        .split(|&c| c == b'/')
        .filter(|s| !s.is_empty())
        .collect()
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn encode(l: &DavLock) -> Vec<u8> {
    let mut out = Vec::new();
    put_field(&mut out, l.path.as_url_string().as_bytes());
    put_opt(&mut out, l.principal.as_deref().map(str::as_bytes));
    let owner = l.owner.as_ref().and_then(|o| {
        let mut buf = Vec::new();
        o.write(&mut buf).ok().map(|_| buf)
    });
    put_opt(&mut out, owner.as_deref());
    put_opt(
        &mut out,
        l.timeout_at
            .map(|t| secs(t).to_le_bytes())
            .as_ref()
            .map(|b| &b[..]),
    );
    put_opt(
        &mut out,
        l.timeout
            .map(|t| t.as_secs().to_le_bytes())
            .as_ref()
            .map(|b| &b[..]),
    );
    put_field(&mut out, &[u8::from(l.shared), u8::from(l.deep)]);
    out
}

fn decode(token: &str, raw: &[u8]) -> Option<DavLock> {
    let mut r = Reader::new(raw);
    let path = DavPath::new(std::str::from_utf8(r.field()?).ok()?).ok()?;
    let principal = match r.opt()? {
        Some(b) => Some(String::from_utf8(b.to_vec()).ok()?),
        None => None,
    };
    let owner = match r.opt()? {
        Some(b) => Some(Box::new(Element::parse(b).ok()?)),
        None => None,
    };
    let u64_of = |b: &[u8]| -> Option<u64> { Some(u64::from_le_bytes(b.try_into().ok()?)) };
    let timeout_at = match r.opt()? {
        Some(b) => Some(UNIX_EPOCH + Duration::from_secs(u64_of(b)?)),
        None => None,
    };
    let timeout = match r.opt()? {
        Some(b) => Some(Duration::from_secs(u64_of(b)?)),
        None => None,
    };
    let flags = r.field()?;
    Some(DavLock {
        token: token.to_owned(),
        path: Box::new(path),
        principal,
        owner,
        timeout_at,
        timeout,
        shared: *flags.first()? != 0,
        deep: *flags.get(1)? != 0,
    })
}

fn expired(l: &DavLock, now: SystemTime) -> bool {
    l.timeout_at.is_some_and(|t| t <= now)
}

impl StoreLocks {
    /// Loads the locks of `branch` that have not expired.
    pub(crate) fn load(repo: Arc<Repo>, branch: &str) -> hero_store::Result<StoreLocks> {
        let prefix = format!("dav/locks/{branch}/");
        let now = SystemTime::now();
        let mut locks = Vec::new();
        let mut stale = Vec::new();
        for (k, v) in repo.settings_with_prefix(&prefix)? {
            let token = &k[prefix.len()..];
            match decode(token, &v) {
                Some(l) if !expired(&l, now) => locks.push(l),
                _ => stale.push(k),
            }
        }
        if !stale.is_empty() {
            repo.batch(|b| {
                for k in &stale {
                    b.set_setting(k, None)?;
                }
                Ok(())
            })?;
        }
        Ok(StoreLocks {
            repo,
            prefix,
            locks: Arc::new(Mutex::new(locks)),
        })
    }

    fn lock_list(&self) -> MutexGuard<'_, Vec<DavLock>> {
        let mut g = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        let now = SystemTime::now();
        if g.iter().any(|l| expired(l, now)) {
            let gone: Vec<String> = g
                .iter()
                .filter(|l| expired(l, now))
                .map(|l| l.token.clone())
                .collect();
            g.retain(|l| !expired(l, now));
            self.persist(gone.iter().map(|t| (t.as_str(), None)).collect());
        }
        g
    }

    fn persist(&self, writes: Vec<(&str, Option<Vec<u8>>)>) {
        if writes.is_empty() {
            return;
        }
        let res = self.repo.batch(|b| {
            for (token, v) in &writes {
                b.set_setting(&format!("{}{token}", self.prefix), v.as_deref())?;
            }
            Ok(())
        });
        if let Err(e) = res {
            tracing::error!(error = %e, "storing locks failed");
        }
    }
}

/// Whether `a` (segments) is `b` or an ancestor of it.
fn covers(a: &[&[u8]], b: &[&[u8]]) -> bool {
    a.len() <= b.len() && a == &b[..a.len()]
}

/// Locks on `path` and its ancestors that apply to it, root first.
fn check_to_path(
    locks: &[DavLock],
    path: &DavPath,
    principal: Option<&str>,
    ignore_principal: bool,
    tokens: &[String],
    shared_ok: bool,
) -> Result<(), DavLock> {
    let target = segs(path);
    let mut applicable: Vec<&DavLock> = locks
        .iter()
        .filter(|l| {
            let ls = segs(&l.path);
            covers(&ls, &target) && (l.deep || ls.len() == target.len())
        })
        .collect();
    applicable.sort_by_key(|l| segs(&l.path).len());
    let mut holds = false;
    let mut first_shared: Option<&DavLock> = None;
    for l in applicable {
        if tokens.contains(&l.token) && (ignore_principal || principal == l.principal.as_deref()) {
            holds = true;
        } else {
            if !l.shared {
                return Err(l.clone());
            }
            if !shared_ok {
                first_shared.get_or_insert(l);
            }
        }
    }
    match first_shared {
        Some(l) if !holds => Err(l.clone()),
        _ => Ok(()),
    }
}

/// Locks strictly below `path` (or on it) that conflict.
fn check_from_path(
    locks: &[DavLock],
    path: &DavPath,
    principal: Option<&str>,
    ignore_principal: bool,
    tokens: &[String],
    shared_ok: bool,
) -> Result<(), DavLock> {
    let target = segs(path);
    for l in locks {
        if !covers(&target, &segs(&l.path)) {
            continue;
        }
        if (!l.shared || !shared_ok)
            && (!tokens.contains(&l.token)
                || (!ignore_principal && principal != l.principal.as_deref()))
        {
            return Err(l.clone());
        }
    }
    Ok(())
}

impl DavLockSystem for StoreLocks {
    fn lock(
        &'_ self,
        path: &DavPath,
        principal: Option<&str>,
        owner: Option<&Element>,
        timeout: Option<Duration>,
        shared: bool,
        deep: bool,
    ) -> LsFuture<'_, Result<DavLock, DavLock>> {
        let mut locks = self.lock_list();
        let res = check_to_path(&locks, path, None, true, &[], shared).and_then(|()| {
            if deep {
                check_from_path(&locks, path, None, true, &[], shared)
            } else {
                Ok(())
            }
        });
        let res = res.map(|()| {
            let lock = DavLock {
                token: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
                path: Box::new(path.clone()),
                principal: principal.map(str::to_owned),
                owner: owner.map(|o| Box::new(o.clone())),
                timeout_at: timeout.map(|d| SystemTime::now() + d),
                timeout,
                shared,
                deep,
            };
            self.persist(vec![(lock.token.as_str(), Some(encode(&lock)))]);
            locks.push(lock.clone());
            lock
        });
        future::ready(res).boxed()
    }

    fn unlock(&'_ self, path: &DavPath, token: &str) -> LsFuture<'_, Result<(), ()>> {
        let mut locks = self.lock_list();
        let target = segs(path);
        let found = locks
            .iter()
            .position(|l| l.token == token && covers(&segs(&l.path), &target));
        let res = match found {
            Some(i) => {
                locks.remove(i);
                self.persist(vec![(token, None)]);
                Ok(())
            }
            None => Err(()),
        };
        future::ready(res).boxed()
    }

    fn refresh(
        &'_ self,
        path: &DavPath,
        token: &str,
        timeout: Option<Duration>,
    ) -> LsFuture<'_, Result<DavLock, ()>> {
        let mut locks = self.lock_list();
        let target = segs(path);
        let res = match locks
            .iter_mut()
            .find(|l| l.token == token && covers(&segs(&l.path), &target))
        {
            Some(l) => {
                l.timeout = timeout;
                l.timeout_at = timeout.map(|d| SystemTime::now() + d);
                let l = l.clone();
                self.persist(vec![(token, Some(encode(&l)))]);
                Ok(l)
            }
            None => Err(()),
        };
        future::ready(res).boxed()
    }

    fn check(
        &'_ self,
        path: &DavPath,
        principal: Option<&str>,
        ignore_principal: bool,
        deep: bool,
        submitted_tokens: &[String],
    ) -> LsFuture<'_, Result<(), DavLock>> {
        let locks = self.lock_list();
        let res = check_to_path(
            &locks,
            path,
            principal,
            ignore_principal,
            submitted_tokens,
            false,
        )
        .and_then(|()| {
            if deep {
                check_from_path(
                    &locks,
                    path,
                    principal,
                    ignore_principal,
                    submitted_tokens,
                    false,
                )
            } else {
                Ok(())
            }
        });
        future::ready(res).boxed()
    }

    fn discover(&'_ self, path: &DavPath) -> LsFuture<'_, Vec<DavLock>> {
        let locks = self.lock_list();
        let target = segs(path);
        let mut out: Vec<DavLock> = locks
            .iter()
            .filter(|l| {
                let ls = segs(&l.path);
                covers(&ls, &target) && (l.deep || ls.len() == target.len())
            })
            .cloned()
            .collect();
        out.sort_by_key(|l| segs(&l.path).len());
        future::ready(out).boxed()
    }

    fn delete(&'_ self, path: &DavPath) -> LsFuture<'_, Result<(), ()>> {
        let mut locks = self.lock_list();
        let target = segs(path);
        let gone: Vec<String> = locks
            .iter()
            .filter(|l| covers(&target, &segs(&l.path)))
            .map(|l| l.token.clone())
            .collect();
        locks.retain(|l| !covers(&target, &segs(&l.path)));
        self.persist(gone.iter().map(|t| (t.as_str(), None)).collect());
        future::ready(Ok(())).boxed()
    }
}
