//! `/history/PATH`: every version of a file (or directory) with the change each made;
//! `/keys/PATH?key=K`: the commits where one key of a structured file changed.

use hero_store::{RepoPath, View};
use maud::html;

use crate::Reply;
use crate::error::PageError;
use crate::history::{file_history, key_history};
use crate::layout::{self, Section, commit_link, lossy, size, subject, time, tree_link};
use crate::request::{Query, revision};
use crate::url;

/// Versions on a page.
const PAGE: usize = 50;

/// Key changes listed at most.
const KEY_CHANGES_MAX: usize = 500;

pub(crate) fn file_page(view: &View, path: &RepoPath, q: &Query) -> Result<Reply, PageError> {
    if path.is_root() {
        return Ok(Reply::Redirect("/".into()));
    }
    let (rev, start) = revision(view, q.get("rev"))?;
    let page_no = q.number("page", 0)?.min(1_000_000);
    let mut changes = file_history(view, &start, path, page_no * PAGE, PAGE + 1)?;
    let more = changes.len() > PAGE;
    changes.truncate(PAGE);
    if changes.is_empty() && page_no == 0 && view.entry_in_commit(&start, path)?.is_none() {
        return Err(PageError::NotFound(format!("no {path} at {rev}")));
    }
    let p = path.to_bytes();
    let link = |n: usize| {
        let s = n.to_string();
        format!(
            "/history/{}{}",
            url::encode_path(&p),
            url::query(&[("rev", &rev), ("page", if n == 0 { "" } else { &s })])
        )
    };
    let body = html! {
        h1 { "History of " a href=(tree_link(&p, &rev)) { (path.to_string()) } }
        p.muted { "along the first parents of " (rev) ", following renames" }
        table.history {
            thead { tr { th { "Commit" } th { "Change" } th { "Message" } th { "Author" } th { "When" } } }
            tbody { @for c in &changes {
                @let id_hex = c.id.to_hex();
                tr {
                    td.mono { a href=(commit_link(&c.id)) { (c.id.short()) } }
                    td {
                        @match (&c.old, &c.new) {
                            (None, Some(n)) => { "added " span.muted { (size(n.size)) } }
                            (Some(_), None) => { "deleted" }
                            (Some(o), Some(n)) => {
                                @if c.old_path != c.path { "renamed from " (c.old_path.to_string()) " " }
                                @else { "changed " }
                                span.muted { (size(o.size)) " → " (size(n.size)) }
                            }
                            (None, None) => { "—" }
                        }
                        @if c.new.is_some() { " · " a href=(tree_link(&c.path.to_bytes(), &id_hex)) { "view" } }
                    }
                    td.msg { (subject(&c.commit.message)) }
                    td { (lossy(&c.commit.author.name)) }
                    td.muted { (time(c.commit.author.time)) }
                }
            } }
        }
        div.pager {
            @if page_no > 0 { a rel="prev" href=(link(page_no - 1)) { "← newer" } }
            @if more { a rel="next" href=(link(page_no + 1)) { "older →" } }
        }
    };
    Ok(Reply::Html(layout::page(
        &format!("History of {path}"),
        Section::Browse,
        page_no == 0,
        body,
    )))
}

pub(crate) fn key_page(view: &View, path: &RepoPath, q: &Query) -> Result<Reply, PageError> {
    let key = q
        .get("key")
        .ok_or_else(|| PageError::BadRequest("key= is required".into()))?;
    hero_formats::Path::parse(key).map_err(|e| PageError::BadRequest(format!("{key}: {e}")))?;
    let (rev, start) = revision(view, q.get("rev"))?;
    let changes = key_history(view, &start, path, key, Some(KEY_CHANGES_MAX))?;
    if changes.is_empty() && view.entry_in_commit(&start, path)?.is_none() {
        return Err(PageError::NotFound(format!("no {path} at {rev}")));
    }
    let show = |v: &Option<hero_formats::Value>| match v {
        None => "(none)".to_owned(),
        Some(hero_formats::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let p = path.to_bytes();
    let body = html! {
        h1 { "History of " code { (key) } " in " a href=(tree_link(&p, &rev)) { (path.to_string()) } }
        p.muted { "the commits along the first parents of " (rev) " where the value changed" }
        @if changes.is_empty() { p { "The value never changed (or the key was never there)." } }
        @else {
            table.history {
                thead { tr { th { "Commit" } th { "Before" } th { "After" } th { "Message" } th { "Author" } th { "When" } } }
                tbody { @for c in &changes {
                    tr {
                        td.mono { a href=(commit_link(&c.id)) { (c.id.short()) } }
                        td.mono { (show(&c.old)) }
                        td.mono { (show(&c.new)) }
                        td.msg { (subject(&c.commit.message)) }
                        td { (lossy(&c.commit.author.name)) }
                        td.muted { (time(c.commit.author.time)) }
                    }
                } }
            }
        }
    };
    Ok(Reply::Html(layout::page(
        &format!("History of {key}"),
        Section::Browse,
        true,
        body,
    )))
}
