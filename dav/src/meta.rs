//! What the tree cannot hold: dead properties and file times, kept in repository settings
//! under `dav/props/<branch>/` and `dav/times/<branch>/` (keys end with the hex of the path),
//! mirrored in memory.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dav_server::fs::DavProp;
use hero_store::{ObjectId, Repo, RepoPath};

use crate::codec::{Reader, put_field, put_opt};

/// Times recorded for one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Times {
    /// The content id the modification time belongs to (a file changed elsewhere falls back to
    /// its commit's time).
    pub id: Option<ObjectId>,
    /// Modification time, nanoseconds since the epoch.
    pub mtime: i128,
    /// Creation time, nanoseconds since the epoch.
    pub ctime: i128,
    /// Win32 file attributes as last set by a client.
    pub attrs: Option<u32>,
}

impl Times {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_opt(&mut out, self.id.as_ref().map(|i| i.0.as_slice()));
        put_field(&mut out, &self.mtime.to_le_bytes());
        put_field(&mut out, &self.ctime.to_le_bytes());
        put_opt(
            &mut out,
            self.attrs.map(u32::to_le_bytes).as_ref().map(|a| &a[..]),
        );
        out
    }

    fn decode(raw: &[u8]) -> Option<Times> {
        let mut r = Reader::new(raw);
        let id = r
            .opt()?
            .and_then(|b| <[u8; 32]>::try_from(b).ok().map(ObjectId));
        let mtime = i128::from_le_bytes(r.field()?.try_into().ok()?);
        let ctime = i128::from_le_bytes(r.field()?.try_into().ok()?);
        let attrs = match r.opt()? {
            Some(b) => Some(u32::from_le_bytes(b.try_into().ok()?)),
            None => None,
        };
        Some(Times {
            id,
            mtime,
            ctime,
            attrs,
        })
    }
}

/// Nanoseconds since the epoch.
pub(crate) fn nanos(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

/// The time `n` nanoseconds after (or before) the epoch.
pub(crate) fn from_nanos(n: i128) -> SystemTime {
    let d = Duration::from_nanos(n.unsigned_abs().min(u64::MAX as u128) as u64);
    if n >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH.checked_sub(d).unwrap_or(UNIX_EPOCH)
    }
}

type PropMap = BTreeMap<String, DavProp>;

fn prop_key(p: &DavProp) -> String {
    format!("{}\u{0}{}", p.namespace.as_deref().unwrap_or(""), p.name)
}

fn encode_props(props: &PropMap) -> Vec<u8> {
    let mut out = Vec::new();
    for p in props.values() {
        put_field(&mut out, p.name.as_bytes());
        put_opt(&mut out, p.prefix.as_deref().map(str::as_bytes));
        put_opt(&mut out, p.namespace.as_deref().map(str::as_bytes));
        put_opt(&mut out, p.xml.as_deref());
    }
    out
}

fn decode_props(raw: &[u8]) -> Option<PropMap> {
    let mut r = Reader::new(raw);
    let mut out = PropMap::new();
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).ok();
    while !r.is_empty() {
        let name = text(r.field()?)?;
        let prefix = match r.opt()? {
            Some(b) => Some(text(b)?),
            None => None,
        };
        let namespace = match r.opt()? {
            Some(b) => Some(text(b)?),
            None => None,
        };
        let xml = r.opt()?.map(<[u8]>::to_vec);
        let p = DavProp {
            name,
            prefix,
            namespace,
            xml,
        };
        out.insert(prop_key(&p), p);
    }
    Some(out)
}

fn hex(b: &[u8]) -> String {
    hex::encode(b)
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    hex::decode(s).ok()
}

/// Keys equal to `base` or below it.
fn subtree<V>(map: &BTreeMap<Vec<u8>, V>, base: &[u8]) -> Vec<Vec<u8>> {
    map.range(base.to_vec()..)
        .map(|(k, _)| k)
        .take_while(|k| k.starts_with(base))
        .filter(|k| base.is_empty() || k.len() == base.len() || k[base.len()] == b'/')
        .cloned()
        .collect()
}

fn rebase(key: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let rest = &key[from.len()..];
    let mut out = to.to_vec();
    if to.is_empty() {
        out.extend_from_slice(rest.strip_prefix(b"/").unwrap_or(rest));
    } else {
        out.extend_from_slice(rest);
    }
    out
}

#[derive(Default)]
struct Inner {
    props: BTreeMap<Vec<u8>, PropMap>,
    times: BTreeMap<Vec<u8>, Times>,
}

/// Dead properties and times of one branch.
pub(crate) struct Meta {
    repo: Arc<Repo>,
    props_prefix: String,
    times_prefix: String,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Meta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meta")
            .field("props_prefix", &self.props_prefix)
            .finish()
    }
}

/// A pending settings write.
type Write = (String, Option<Vec<u8>>);

impl Meta {
    /// Loads what was stored for `branch`.
    pub(crate) fn load(repo: Arc<Repo>, branch: &str) -> hero_store::Result<Meta> {
        let props_prefix = format!("dav/props/{branch}/");
        let times_prefix = format!("dav/times/{branch}/");
        let mut inner = Inner::default();
        for (k, v) in repo.settings_with_prefix(&props_prefix)? {
            let path = k.get(props_prefix.len()..).and_then(unhex);
            match (path, decode_props(&v)) {
                (Some(p), Some(props)) => {
                    inner.props.insert(p, props);
                }
                _ => tracing::warn!(key = %k, "ignoring undecodable dav property record"),
            }
        }
        for (k, v) in repo.settings_with_prefix(&times_prefix)? {
            let path = k.get(times_prefix.len()..).and_then(unhex);
            match (path, Times::decode(&v)) {
                (Some(p), Some(t)) => {
                    inner.times.insert(p, t);
                }
                _ => tracing::warn!(key = %k, "ignoring undecodable dav times record"),
            }
        }
        Ok(Meta {
            repo,
            props_prefix,
            times_prefix,
            inner: Mutex::new(inner),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn persist(&self, writes: Vec<Write>) -> hero_store::Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        self.repo.batch(|b| {
            for (k, v) in &writes {
                b.set_setting(k, v.as_deref())?;
            }
            Ok(())
        })
    }

    fn props_write(&self, inner: &Inner, path: &[u8]) -> Write {
        let key = format!("{}{}", self.props_prefix, hex(path));
        match inner.props.get(path) {
            Some(p) if !p.is_empty() => (key, Some(encode_props(p))),
            _ => (key, None),
        }
    }

    fn times_write(&self, inner: &Inner, path: &[u8]) -> Write {
        let key = format!("{}{}", self.times_prefix, hex(path));
        (key, inner.times.get(path).map(Times::encode))
    }

    /// The dead properties of a path.
    pub(crate) fn props(&self, path: &RepoPath) -> Vec<DavProp> {
        self.lock()
            .props
            .get(&path.to_bytes())
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Sets (`true`) or removes (`false`) dead properties, stored before this returns.
    pub(crate) fn patch_props(
        &self,
        path: &RepoPath,
        patch: Vec<(bool, DavProp)>,
    ) -> hero_store::Result<()> {
        let key = path.to_bytes();
        let write = {
            let mut inner = self.lock();
            let map = inner.props.entry(key.clone()).or_default();
            for (set, p) in patch {
                if set {
                    map.insert(prop_key(&p), p);
                } else {
                    map.remove(&prop_key(&p));
                }
            }
            if map.is_empty() {
                inner.props.remove(&key);
            }
            self.props_write(&inner, &key)
        };
        self.persist(vec![write])
    }

    /// Times recorded for a path.
    pub(crate) fn times(&self, path: &RepoPath) -> Option<Times> {
        self.lock().times.get(&path.to_bytes()).copied()
    }

    /// Times of the children of `dir`, by name.
    pub(crate) fn child_times(&self, dir: &RepoPath) -> BTreeMap<Vec<u8>, Times> {
        let base = dir.to_bytes();
        let inner = self.lock();
        let mut out = BTreeMap::new();
        for k in subtree(&inner.times, &base) {
            let rest = if base.is_empty() {
                &k[..]
            } else {
                k.get(base.len() + 1..).unwrap_or_default()
            };
            if !rest.is_empty()
                && !rest.contains(&b'/')
                && let Some(t) = inner.times.get(&k)
            {
                out.insert(rest.to_vec(), *t);
            }
        }
        out
    }

    /// Changes the recorded times of a path (a client's PROPPATCH).
    pub(crate) fn set_times(
        &self,
        path: &RepoPath,
        id: Option<ObjectId>,
        mtime: Option<SystemTime>,
        ctime: Option<SystemTime>,
        attrs: Option<u32>,
        fallback: SystemTime,
    ) -> hero_store::Result<()> {
        let key = path.to_bytes();
        let write = {
            let mut inner = self.lock();
            let old = inner.times.get(&key).copied();
            let base = nanos(fallback);
            let t = Times {
                id: id.or(old.and_then(|o| o.id)),
                mtime: mtime
                    .map(nanos)
                    .unwrap_or_else(|| old.filter(|o| o.id == id).map(|o| o.mtime).unwrap_or(base)),
                ctime: ctime
                    .map(nanos)
                    .unwrap_or_else(|| old.map(|o| o.ctime).unwrap_or(base)),
                attrs: attrs.or(old.and_then(|o| o.attrs)),
            };
            inner.times.insert(key.clone(), t);
            self.times_write(&inner, &key)
        };
        self.persist(vec![write])
    }

    /// Records the effects of committed operations.
    pub(crate) fn committed(&self, events: &[Event], now: SystemTime) -> hero_store::Result<()> {
        let now = nanos(now);
        let mut writes = Vec::new();
        {
            let mut inner = self.lock();
            for ev in events {
                match ev {
                    Event::Written {
                        path,
                        id,
                        copied_from,
                    } => {
                        let key = path.to_bytes();
                        let ctime = inner.times.get(&key).map(|t| t.ctime).unwrap_or(now);
                        inner.times.insert(
                            key.clone(),
                            Times {
                                id: *id,
                                mtime: now,
                                ctime,
                                attrs: None,
                            },
                        );
                        writes.push(self.times_write(&inner, &key));
                        if let Some(from) = copied_from {
                            let props = inner.props.get(&from.to_bytes()).cloned();
                            match props {
                                Some(p) => inner.props.insert(key.clone(), p),
                                None => inner.props.remove(&key),
                            };
                            writes.push(self.props_write(&inner, &key));
                        }
                    }
                    Event::Removed(path) => {
                        let base = path.to_bytes();
                        for k in subtree(&inner.props, &base) {
                            inner.props.remove(&k);
                            writes.push(self.props_write(&inner, &k));
                        }
                        for k in subtree(&inner.times, &base) {
                            inner.times.remove(&k);
                            writes.push(self.times_write(&inner, &k));
                        }
                    }
                    Event::Moved(from, to) => {
                        let (from, to) = (from.to_bytes(), to.to_bytes());
                        for k in subtree(&inner.props, &to) {
                            inner.props.remove(&k);
                            writes.push(self.props_write(&inner, &k));
                        }
                        for k in subtree(&inner.props, &from) {
                            if let Some(v) = inner.props.remove(&k) {
                                let nk = rebase(&k, &from, &to);
                                inner.props.insert(nk.clone(), v);
                                writes.push(self.props_write(&inner, &nk));
                            }
                            writes.push(self.props_write(&inner, &k));
                        }
                        for k in subtree(&inner.times, &to) {
                            inner.times.remove(&k);
                            writes.push(self.times_write(&inner, &k));
                        }
                        for k in subtree(&inner.times, &from) {
                            if let Some(v) = inner.times.remove(&k) {
                                let nk = rebase(&k, &from, &to);
                                inner.times.insert(nk.clone(), v);
                                writes.push(self.times_write(&inner, &nk));
                            }
                            writes.push(self.times_write(&inner, &k));
                        }
                    }
                }
            }
        }
        self.persist(writes)
    }
}

/// A committed change, as the metadata sees it.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    /// A file written (or a directory made: `id` is `None`).
    Written {
        /// Where.
        path: RepoPath,
        /// The content id.
        id: Option<ObjectId>,
        /// The source of a COPY, whose properties come along.
        copied_from: Option<RepoPath>,
    },
    /// A path and everything below it removed.
    Removed(RepoPath),
    /// A path moved.
    Moved(RepoPath, RepoPath),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtree_and_rebase() {
        let mut m = BTreeMap::new();
        for k in ["a", "a/b", "ab", "a/c/d", "b"] {
            m.insert(k.as_bytes().to_vec(), ());
        }
        let s: Vec<_> = subtree(&m, b"a");
        assert_eq!(s, vec![b"a".to_vec(), b"a/b".to_vec(), b"a/c/d".to_vec()]);
        assert_eq!(subtree(&m, b"").len(), 5);
        assert_eq!(rebase(b"a/c/d", b"a", b"x/y"), b"x/y/c/d".to_vec());
        assert_eq!(unhex(&hex(b"\xffa/b")), Some(b"\xffa/b".to_vec()));
    }

    #[test]
    fn records_round_trip() {
        let t = Times {
            id: Some(ObjectId::of(b"x")),
            mtime: -5,
            ctime: 1 << 70,
            attrs: Some(0x20),
        };
        assert_eq!(Times::decode(&t.encode()), Some(t));
        let mut props = PropMap::new();
        let p = DavProp {
            name: "n".into(),
            prefix: None,
            namespace: Some("urn:x".into()),
            xml: Some(b"<n xmlns=\"urn:x\">v</n>".to_vec()),
        };
        props.insert(prop_key(&p), p);
        let back = decode_props(&encode_props(&props)).unwrap_or_default();
        assert_eq!(back.len(), 1);
        assert!(decode_props(b"\x05").is_none());
    }
}
