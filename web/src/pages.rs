//! The pages, one module each, and what they share: the query string, revisions and paths
//! from the URL.

mod adr;
mod commit;
mod history;
mod peers;
mod timeline;
mod tree;

use std::collections::HashMap;

use hero_store::{ObjectId, Repo, RepoPath, View};

use crate::Reply;
use crate::error::PageError;
use crate::url;

/// The longest revision accepted from a URL.
const MAX_REV: usize = 256;

/// A parsed query string.
pub(crate) struct Query(HashMap<String, String>);

impl Query {
    fn parse(q: &str) -> Query {
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

/// Answers a GET of `path?query`.
pub(crate) fn route(
    repo: &Repo,
    peers: Option<&crate::PeerSource>,
    path: &str,
    query: &str,
) -> Result<Reply, PageError> {
    let q = Query::parse(query);
    let view = repo.view()?;
    let sub = |prefix: &str| path.strip_prefix(prefix);
    match path {
        "/" => return timeline::page(repo, &view, &q),
        "/adr" => return adr::page(&view, &q),
        "/peers" => return peers::page(repo, peers, &view, &q),
        "/diff" => return commit::diff_page(&view, &q),
        "/tree" => return Ok(Reply::Redirect("/tree/".into())),
        _ => {}
    }
    if let Some(rev) = sub("/commit/") {
        let rev = String::from_utf8_lossy(&url::decode(rev, false)).into_owned();
        return commit::page(repo, &view, &rev, &q);
    }
    if let Some(rest) = sub("/tree/") {
        return tree::page(&view, &repo_path(rest)?, &q);
    }
    if let Some(rest) = sub("/raw/") {
        return tree::raw(&view, &repo_path(rest)?, &q);
    }
    if let Some(rest) = sub("/history/") {
        return history::file_page(&view, &repo_path(rest)?, &q);
    }
    if let Some(rest) = sub("/keys/") {
        return history::key_page(&view, &repo_path(rest)?, &q);
    }
    Err(PageError::NotFound(format!("no page {path}")))
}
