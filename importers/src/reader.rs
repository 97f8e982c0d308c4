//! Reading a git repository through gix, with every object's hash checked.

use std::path::Path;

use gix::objs::Find;
use gix::objs::Kind;

use crate::error::ImportError;
use crate::gitfmt::{EMPTY_TREE, GitId};

/// One git ref worth importing.
pub(crate) struct GitRef {
    /// Full name, `refs/heads/x` or `refs/tags/x`.
    pub(crate) name: String,
    /// What it points at.
    pub(crate) target: GitId,
}

/// Refs left out: (name, reason).
pub(crate) type Skipped = Vec<(String, String)>;

pub(crate) struct GitReader {
    repo: gix::Repository,
    pub(crate) shallow: bool,
}

impl GitReader {
    pub(crate) fn open(path: &Path) -> Result<GitReader, ImportError> {
        let repo = gix::open_opts(path, gix::open::Options::isolated()).map_err(|e| {
            ImportError::Open {
                path: path.to_path_buf(),
                message: e.to_string(),
            }
        })?;
        if repo.object_hash() != gix::hash::Kind::Sha1 {
            return Err(ImportError::UnsupportedHash {
                path: path.to_path_buf(),
            });
        }
        let shallow = repo.is_shallow().unwrap_or(false);
        Ok(GitReader { repo, shallow })
    }

    /// The branch HEAD names (`None` when HEAD is detached or names no branch).
    pub(crate) fn head_branch(&self) -> Option<String> {
        let name = self.repo.head_name().ok()??;
        let name = std::str::from_utf8(name.as_bstr()).ok()?;
        name.strip_prefix("refs/heads/").map(str::to_owned)
    }

    /// Branches and tags (symbolic refs and refs with non-UTF-8 names are returned in `skipped`).
    pub(crate) fn refs(&self) -> Result<(Vec<GitRef>, Skipped), ImportError> {
        let err = |e: gix::Error| ImportError::Refs(e.to_string());
        let platform = self.repo.references().map_err(err)?;
        let mut out = Vec::new();
        let mut skipped = Vec::new();
        for r in platform.all().map_err(err)? {
            let r = r.map_err(err)?;
            let name_b = r.name().as_bstr();
            let Ok(name) = std::str::from_utf8(name_b) else {
                skipped.push((
                    String::from_utf8_lossy(name_b).into_owned(),
                    "name is not UTF-8".to_owned(),
                ));
                continue;
            };
            if !(name.starts_with("refs/heads/") || name.starts_with("refs/tags/")) {
                continue;
            }
            match r.target() {
                gix::refs::TargetRef::Object(id) => match GitId::from_gix(id) {
                    Some(target) => out.push(GitRef {
                        name: name.to_owned(),
                        target,
                    }),
                    None => skipped.push((name.to_owned(), "not a SHA-1 id".to_owned())),
                },
                gix::refs::TargetRef::Symbolic(_) => {
                    skipped.push((name.to_owned(), "symbolic ref".to_owned()))
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok((out, skipped))
    }

    /// Reads an object of any kind, checking its hash.
    pub(crate) fn read_any(
        &self,
        id: GitId,
        refname: &str,
    ) -> Result<(Kind, Vec<u8>), ImportError> {
        if id == EMPTY_TREE {
            return Ok((Kind::Tree, Vec::new()));
        }
        let corrupt = |reason: String| ImportError::CorruptObject {
            id,
            refname: refname.to_owned(),
            reason,
        };
        let mut buf = Vec::new();
        let found = self
            .repo
            .objects
            .try_find(&id.to_gix(), &mut buf)
            .map_err(|e| corrupt(e.to_string()))?;
        let Some(data) = found else {
            return Err(ImportError::MissingObject {
                id,
                refname: refname.to_owned(),
            });
        };
        let kind = data.kind;
        let bytes = data.data.to_vec();
        let actual = gix::objs::compute_hash(gix::hash::Kind::Sha1, kind, &bytes)
            .map_err(|e| corrupt(e.to_string()))?;
        if actual.as_bytes() != id.0 {
            return Err(corrupt(format!("content hashes to {actual}")));
        }
        Ok((kind, bytes))
    }

    /// Reads an object that must be of `want` kind.
    pub(crate) fn read(
        &self,
        id: GitId,
        want: Kind,
        refname: &str,
    ) -> Result<Vec<u8>, ImportError> {
        let (kind, bytes) = self.read_any(id, refname)?;
        if kind != want {
            return Err(ImportError::CorruptObject {
                id,
                refname: refname.to_owned(),
                reason: format!("is a {kind}, expected a {want}"),
            });
        }
        Ok(bytes)
    }
}
