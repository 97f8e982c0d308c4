//! Branch and tag names, and the log of every ref move.

use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::id::ObjectId;

/// Encodes a ref value.
pub(crate) fn encode_ref(target: &RefValue) -> Vec<u8> {
    let mut v = Vec::with_capacity(33);
    match target {
        RefValue::Commit(id) => {
            v.push(0);
            v.extend_from_slice(&id.0);
        }
        RefValue::Tag(id) => {
            v.push(1);
            v.extend_from_slice(&id.0);
        }
    }
    v
}

/// Decodes a ref value.
pub(crate) fn decode_ref(name: &str, v: &[u8]) -> Result<RefValue> {
    let bad = || Error::NotARepository {
        path: std::path::PathBuf::from(name),
        reason: "malformed ref value".to_owned(),
    };
    if v.len() != 33 {
        return Err(bad());
    }
    let mut id = [0u8; 32];
    id.copy_from_slice(&v[1..]);
    match v[0] {
        0 => Ok(RefValue::Commit(ObjectId(id))),
        1 => Ok(RefValue::Tag(ObjectId(id))),
        _ => Err(bad()),
    }
}

/// What a ref points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefValue {
    /// A commit (branches and lightweight tags).
    Commit(ObjectId),
    /// An annotated tag object.
    Tag(ObjectId),
}

impl RefValue {
    /// The id, whatever it is.
    pub fn id(&self) -> ObjectId {
        match self {
            RefValue::Commit(id) | RefValue::Tag(id) => *id,
        }
    }
}

/// Prefix of branch refs.
pub const BRANCH_PREFIX: &str = "refs/heads/";
/// Prefix of tag refs.
pub const TAG_PREFIX: &str = "refs/tags/";
/// The branch names hero keeps for itself (`hero/membership`): not history a user made, so
/// never the default branch, never exported, never written by an import. The ordinary write
/// APIs ([`crate::Repo::change_set`], [`crate::Repo::update_branch`],
/// [`crate::Repo::force_branch`], [`crate::Repo::snapshot`], [`crate::Repo::set_default_branch`])
/// refuse them with [`Error::ReservedBranch`]; the code that owns one (hero-sync's membership)
/// writes it through the `*_reserved` variants. The low-level [`crate::Repo::cas_ref`] and
/// `Batch::cas_ref` take any ref: their callers (importers, sync after its checks) decide.
pub const RESERVED_BRANCH_PREFIX: &str = "hero/";

/// Whether `branch` (a short name) is one of hero's own ([`RESERVED_BRANCH_PREFIX`]).
pub fn is_reserved_branch(branch: &str) -> bool {
    branch.starts_with(RESERVED_BRANCH_PREFIX)
}

/// `refs/heads/NAME` for a write through the ordinary APIs: refuses hero's reserved branches
/// ([`Error::ReservedBranch`]).
pub(crate) fn ordinary_branch_ref(name: &str) -> Result<String> {
    let refname = branch_ref(name)?;
    if is_reserved_branch(name) {
        return Err(Error::ReservedBranch(name.to_owned()));
    }
    Ok(refname)
}

/// Checks a branch or tag name (git's rules, roughly): not empty, no `..`, no control
/// characters, spaces or `~^:?*[\`, no leading `-` or `/`, no trailing `/`, `.` or `.lock`,
/// no empty component, no component starting with `.`.
pub fn check_ref_name(name: &str) -> Result<()> {
    let bad = |reason| Error::RefName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if name.len() > 255 {
        return Err(bad("longer than 255 bytes"));
    }
    if name.starts_with('-') {
        return Err(bad("starts with '-'"));
    }
    if name.contains("..") || name.contains("@{") {
        return Err(bad("contains '..' or '@{'"));
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == ' ' || "~^:?*[\\".contains(c))
    {
        return Err(bad(
            "contains a space, control character or one of ~^:?*[\\",
        ));
    }
    if name.ends_with(".lock") || name.ends_with('.') {
        return Err(bad("ends with '.' or '.lock'"));
    }
    for part in name.split('/') {
        if part.is_empty() {
            return Err(bad("empty path component"));
        }
        if part.starts_with('.') {
            return Err(bad("component starts with '.'"));
        }
    }
    Ok(())
}

/// One recorded move of a ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefMove {
    /// Where it pointed before (`None`: it did not exist).
    pub old: Option<RefValue>,
    /// Where it points after (`None`: deleted).
    pub new: Option<RefValue>,
    /// Seconds since the epoch.
    pub time: i64,
    /// Why: `commit`, `snapshot`, `import`, `pull`, ...
    pub reason: String,
}

impl RefMove {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(1);
        for v in [&self.old, &self.new] {
            match v {
                Some(v) => w.bytes(&encode_ref(v)),
                None => w.bytes(&[]),
            }
        }
        w.ivarint(self.time);
        w.bytes(self.reason.as_bytes());
        w.buf
    }

    pub(crate) fn decode(name: &str, bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "reflog entry");
        let bad = |e: crate::codec::DecodeError| Error::NotARepository {
            path: name.into(),
            reason: e.to_string(),
        };
        r.u8().map_err(bad)?;
        let mut vals = [None, None];
        for v in &mut vals {
            let b = r.bytes().map_err(bad)?;
            if !b.is_empty() {
                *v = Some(decode_ref(name, b)?);
            }
        }
        let time = r.ivarint().map_err(bad)?;
        let reason = String::from_utf8_lossy(r.bytes().map_err(bad)?).into_owned();
        let [old, new] = vals;
        Ok(RefMove {
            old,
            new,
            time,
            reason,
        })
    }
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `refs/heads/NAME` after checking NAME.
pub fn branch_ref(name: &str) -> Result<String> {
    check_ref_name(name)?;
    Ok(format!("{BRANCH_PREFIX}{name}"))
}

/// `refs/tags/NAME` after checking NAME.
pub fn tag_ref(name: &str) -> Result<String> {
    check_ref_name(name)?;
    Ok(format!("{TAG_PREFIX}{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_names() {
        for good in ["main", "feature/x", "v1.0", "ünïcode"] {
            check_ref_name(good).unwrap();
        }
        for bad in [
            "", "a..b", "a b", "-x", "a/", "/a", "a//b", "x.lock", ".hidden", "a:b",
        ] {
            assert!(check_ref_name(bad).is_err(), "{bad:?}");
        }
    }
}
