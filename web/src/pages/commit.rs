//! `/commit/REV`: a commit and its diff against its first parent; `/diff?from=A&to=B`: the
//! diff of any two revisions. Unified or side by side (`view=split`); structured files also
//! as the keys that changed; large and binary files summarised.

use hero_formats::Format;
use hero_store::{DiffEntry, DiffKind, EntryKind, LineDiff, ObjectId, Repo, View};
use maud::{Markup, html};

use crate::Reply;
use crate::error::PageError;
use crate::layout::{self, Section, commit_link, lossy, size, subject, time, tree_link};
use crate::request::{Query, revision};
use crate::url;

/// Files larger than this are summarised, not diffed.
const DIFF_MAX: u64 = 1 << 20;

/// Files shown with their diff; the rest of a large change is listed.
const FILES_MAX: usize = 200;

pub(crate) fn page(repo: &Repo, view: &View, rev: &str, q: &Query) -> Result<Reply, PageError> {
    let (_, id) = revision(view, Some(rev))?;
    let c = view.commit(&id)?;
    let parent = c.parents.first().copied();
    let entries = view.diff_commits(parent, &id)?;
    let split = q.get("view") == Some("split");
    let signers: Vec<String> = hero_sync::commitsig::stored(repo, &id)
        .unwrap_or_default()
        .into_iter()
        .map(|s| format!("{} ({:?})", s.signer, s.kind).to_lowercase())
        .collect();
    let here = format!("/commit/{}", id.to_hex());
    let body = html! {
        h1 { (subject(&c.message)) }
        table.meta {
            tr { th { "Commit" } td.mono { (id.to_hex()) } }
            tr { th { "Parents" } td.mono {
                @for p in &c.parents { a href=(commit_link(p)) { (p.short()) } " " }
                @if c.parents.is_empty() { span.muted { "none (first commit)" } }
            } }
            tr { th { "Author" } td { (lossy(&c.author.name)) " <" (lossy(&c.author.email)) ">" } }
            tr { th { "Date" } td { (time(c.author.time)) } }
            @if c.committer != c.author {
                tr { th { "Committer" } td { (lossy(&c.committer.name)) " · " (time(c.committer.time)) } }
            }
            @if let Some(peer) = c.header(hero_store::PEER_HEADER) {
                tr { th { "Peer" } td.mono { (lossy(peer)) } }
            }
            @if !signers.is_empty() {
                tr { th { "Signed by" } td.mono { @for s in &signers { (s) br; } } }
            }
            tr { th { "Browse" } td { a href=(tree_link(b"", &id.to_hex())) { "the tree at this commit" } } }
        }
        pre.msg { (lossy(&c.message)) }
        (view_switch(&here, "", split))
        (render_diff(view, &entries, parent, &id, split)?)
    };
    Ok(Reply::Html(layout::page(
        &format!("Commit {}", id.short()),
        Section::Timeline,
        false,
        body,
    )))
}

pub(crate) fn diff_page(view: &View, q: &Query) -> Result<Reply, PageError> {
    let from = q
        .get("from")
        .ok_or_else(|| PageError::BadRequest("from= is required".into()))?;
    let (from_rev, from_id) = revision(view, Some(from))?;
    let (to_rev, to_id) = revision(view, q.get("to"))?;
    let entries = view.diff_commits(Some(from_id), &to_id)?;
    let split = q.get("view") == Some("split");
    let keep = url::query(&[("from", &from_rev), ("to", &to_rev)]);
    let body = html! {
        h1 { "Diff " (from_rev) " → " (to_rev) }
        p.muted { (from_id.short()) " → " (to_id.short()) ", " (entries.len()) " paths changed" }
        (view_switch("/diff", &keep, split))
        (render_diff(view, &entries, Some(from_id), &to_id, split)?)
    };
    Ok(Reply::Html(layout::page(
        "Diff",
        Section::Timeline,
        false,
        body,
    )))
}

fn view_switch(path: &str, query: &str, split: bool) -> Markup {
    let sep = if query.is_empty() { "?" } else { "&" };
    html! {
        p {
            @if split { a href=(format!("{path}{query}")) { "unified" } " · " b { "side by side" } }
            @else { b { "unified" } " · " a href=(format!("{path}{query}{sep}view=split")) { "side by side" } }
        }
    }
}

/// The diff of `entries` between `old` and `new`.
pub(crate) fn render_diff(
    view: &View,
    entries: &[DiffEntry],
    old: Option<ObjectId>,
    new: &ObjectId,
    split: bool,
) -> Result<Markup, PageError> {
    let old_rev = old.map(|o| o.to_hex()).unwrap_or_default();
    let new_rev = new.to_hex();
    let mut files = Vec::new();
    for e in entries.iter().take(FILES_MAX) {
        files.push((e, file_body(view, e, split)?));
    }
    Ok(html! {
        @if entries.is_empty() { p.muted { "No changes." } }
        @for (e, body) in &files {
            section.file {
                header {
                    span.mono { (e.kind.letter()) } " "
                    @if e.kind == DiffKind::Deleted {
                        a href=(tree_link(&e.path.to_bytes(), &old_rev)) { (e.path.to_string()) }
                    } @else {
                        a href=(tree_link(&e.path.to_bytes(), &new_rev)) { (e.path.to_string()) }
                    }
                    " " span.muted { (sizes(e)) }
                }
                div.body { (body) }
            }
        }
        @if entries.len() > FILES_MAX {
            h2 { "And " (entries.len() - FILES_MAX) " more" }
            ul { @for e in entries.iter().skip(FILES_MAX) {
                li { span.mono { (e.kind.letter()) } " " (e.path.to_string()) }
            } }
        }
    })
}

fn sizes(e: &DiffEntry) -> String {
    match (&e.old, &e.new) {
        (Some(o), Some(n)) if o.kind.is_blob() && n.kind.is_blob() => {
            format!("{} → {}", size(o.size), size(n.size))
        }
        (None, Some(n)) if n.kind.is_blob() => size(n.size),
        (Some(o), None) if o.kind.is_blob() => size(o.size),
        _ => String::new(),
    }
}

fn file_body(view: &View, e: &DiffEntry, split: bool) -> Result<Markup, PageError> {
    if e.kind == DiffKind::Metadata {
        return Ok(html! { p.muted { "mode, owner or time changed; same content" } });
    }
    let is_file =
        |x: &Option<hero_store::TreeEntry>| x.as_ref().is_none_or(|x| x.kind == EntryKind::File);
    if !is_file(&e.old) || !is_file(&e.new) {
        return Ok(html! { p.muted { "not a regular file (directory, link or submodule)" } });
    }
    let too_big = |x: &Option<hero_store::TreeEntry>| x.as_ref().is_some_and(|x| x.size > DIFF_MAX);
    if too_big(&e.old) || too_big(&e.new) {
        return Ok(summary("large file", e));
    }
    let read = |x: &Option<hero_store::TreeEntry>| -> Result<Vec<u8>, PageError> {
        match x {
            Some(x) => Ok(view.read_file(&x.id, DIFF_MAX)?),
            None => Ok(Vec::new()),
        }
    };
    let (a, b) = (read(&e.old)?, read(&e.new)?);
    let name = e.path.to_string();
    let text = match hero_store::line_diff(&a, &b, &format!("a/{name}"), &format!("b/{name}")) {
        LineDiff::Binary => return Ok(summary("binary file", e)),
        LineDiff::Text(t) => t,
    };
    let keys = key_changes(&name, &a, &b, e);
    Ok(html! {
        @if let Some(k) = keys { (k) }
        @if split { (split_view(&text)) } @else { (unified(&text)) }
    })
}

fn summary(what: &str, e: &DiffEntry) -> Markup {
    let side = |x: &Option<hero_store::TreeEntry>| {
        x.as_ref().map_or_else(
            || "none".to_owned(),
            |x| format!("{} ({})", size(x.size), x.id.to_hex()),
        )
    };
    html! { p.muted { (what) ": " (side(&e.old)) " → " (side(&e.new)) } }
}

/// The key-level changes of a structured file (both sides parse), or `None`.
fn key_changes(name: &str, a: &[u8], b: &[u8], e: &DiffEntry) -> Option<Markup> {
    let format = Format::from_path(name)?;
    let parse = |bytes: &[u8], present: bool| -> Option<hero_formats::Value> {
        if !present {
            return Some(hero_formats::Value::Null);
        }
        hero_formats::parse(format, bytes).ok().map(|d| d.value)
    };
    let old = parse(a, e.old.is_some())?;
    let new = parse(b, e.new.is_some())?;
    let changes = hero_formats::diff(&old, &new);
    if changes.is_empty() {
        return Some(
            html! { p.muted { "no key changed (" (format.name()) ": order or formatting only)" } },
        );
    }
    let show = |v: &Option<hero_formats::Value>| match v {
        None => "(none)".to_owned(),
        Some(hero_formats::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    Some(html! {
        table.keys {
            thead { tr { th { "Key" } th { "Before" } th { "After" } } }
            tbody { @for c in &changes {
                tr { td.mono { (if c.path.is_empty() { "(whole file)" } else { &c.path }) }
                     td.mono { (show(&c.old)) } td.mono { (show(&c.new)) } }
            } }
        }
    })
}

/// The unified diff's lines, classed.
fn unified(text: &str) -> Markup {
    html! {
        div.diff.mono {
            @for line in text.lines().filter(|l| !l.starts_with("--- ") && !l.starts_with("+++ ")) {
                @let class = match line.as_bytes().first() {
                    Some(b'+') => "add",
                    Some(b'-') => "del",
                    Some(b'@') => "hunk",
                    _ => "ctx",
                };
                div class=(class) { (line) }
            }
        }
    }
}

/// One row of the side-by-side view: (class, text) on each side.
type SplitRow<'a> = (
    Option<(&'static str, &'a str)>,
    Option<(&'static str, &'a str)>,
);

/// Pairs the pending removed and added lines into rows.
fn flush<'a>(dels: &mut Vec<&'a str>, adds: &mut Vec<&'a str>, rows: &mut Vec<SplitRow<'a>>) {
    let n = dels.len().max(adds.len());
    for i in 0..n {
        rows.push((
            dels.get(i).map(|l| ("del", l.get(1..).unwrap_or(""))),
            adds.get(i).map(|l| ("add", l.get(1..).unwrap_or(""))),
        ));
    }
    dels.clear();
    adds.clear();
}

/// The unified diff laid out in two columns: removed lines beside the lines that replaced
/// them.
fn split_view(text: &str) -> Markup {
    let mut rows: Vec<SplitRow<'_>> = Vec::new();
    let mut dels: Vec<&str> = Vec::new();
    let mut adds: Vec<&str> = Vec::new();
    for line in text.lines() {
        if line.starts_with("--- ") || line.starts_with("+++ ") {
            continue;
        }
        match line.as_bytes().first() {
            Some(b'-') => dels.push(line),
            Some(b'+') => adds.push(line),
            Some(b'@') => {
                flush(&mut dels, &mut adds, &mut rows);
                rows.push((Some(("hunk", line)), Some(("hunk", ""))));
            }
            _ => {
                flush(&mut dels, &mut adds, &mut rows);
                let l = line.get(1..).unwrap_or("");
                rows.push((Some(("ctx", l)), Some(("ctx", l))));
            }
        }
    }
    flush(&mut dels, &mut adds, &mut rows);
    html! {
        table.split.mono { tbody { @for (l, r) in &rows {
            tr {
                @match l { Some((c, t)) => td class=(c) { (t) }, None => td {} }
                @match r { Some((c, t)) => td class=(c) { (t) }, None => td {} }
            }
        } } }
    }
}
