//! The pages, one module each, and the router that picks one. What they share (the query
//! string, revisions and paths from the URL) is in [`crate::request`], which imports no page.

mod adr;
mod commit;
mod history;
mod peers;
mod timeline;
mod tree;

use hero_store::Repo;

use crate::Reply;
use crate::error::PageError;
use crate::request::{Query, repo_path};
use crate::url;

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
