//! What the pages take from a request: the query string, and the revisions and repository
//! paths named in the URL, checked (a revision too long or with control characters, or a path
//! that is no repository path, is refused before anything is read).

use std::collections::HashMap;

use hero_store::{ObjectId, RepoPath, View};

use crate::error::PageError;
use crate::url;

/// The longest revision accepted from a URL.
const MAX_REV: usize = 256;

/// A parsed query string.
pub(crate) struct Query(HashMap<String, String>);

impl Query {
    pub(crate) fn parse(q: &str) -> Query {
        Query(url::query_pairs(q).into_iter().collect())
    }

    /// A non-empty parameter.
    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// A number parameter (absent: `default`).
    pub(crate) fn number(&self, k: &str, default: usize) -> Result<usize, PageError> {
        match self.get(k) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| PageError::BadRequest(format!("{k}={v} is not a number"))),
        }
    }
}

/// A revision from the URL (`None`: the default branch), resolved: what to show it as, and
/// the commit. Anything [`View::resolve_dated`] takes: a branch, a tag, a commit id,
/// `main~3`, `@2026-12-01`.
pub(crate) fn revision(view: &View, rev: Option<&str>) -> Result<(String, ObjectId), PageError> {
    let default = view.default_branch()?;
    let rev = rev.unwrap_or(&default).to_owned();
    if rev.len() > MAX_REV || rev.chars().any(char::is_control) {
        return Err(PageError::NotFound(format!("no revision {rev:?}")));
    }
    let id = view.resolve_dated(&rev, &default)?;
    Ok((rev, id))
}

/// A repository path from the rest of a URL path (percent-decoded; empty is the root).
pub(crate) fn repo_path(rest: &str) -> Result<RepoPath, PageError> {
    let bytes = url::decode(rest, false);
    if bytes.iter().all(|&b| b == b'/') {
        return Ok(RepoPath::root());
    }
    Ok(RepoPath::parse(bytes)?)
}
