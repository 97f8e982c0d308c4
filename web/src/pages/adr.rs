//! `/adr`: the decision records — Markdown files named `NNNN-title.md` under `docs/adr/`,
//! `doc/adr/`, `adr/`, `docs/decisions/` or `decisions/` — with their current status and
//! the history of that status (which commit proposed, accepted or superseded each), and
//! supersede links.

use std::collections::{BTreeMap, HashMap};

use hero_formats::Value;
use hero_store::{ObjectId, RepoPath, Tree, TreeEntry, View};
use maud::html;

use super::{Query, revision};
use crate::Reply;
use crate::error::PageError;
use crate::layout::{self, Section, commit_link, lossy, time, tree_link};

/// Where decision records are looked for.
const DIRS: &[&str] = &["docs/adr", "doc/adr", "adr", "docs/decisions", "decisions"];

/// Commits walked at most for the status history.
const WALK_MAX: usize = 20_000;

/// The largest record parsed.
const ADR_MAX: u64 = 1 << 20;

/// Whether a file name is a decision record's: `NNNN-….md`.
fn is_adr(name: &[u8]) -> bool {
    name.len() > 8
        && name[..4].iter().all(u8::is_ascii_digit)
        && name[4] == b'-'
        && name.ends_with(b".md")
}

/// What a record says: title, status, date, supersedes, superseded by.
#[derive(Default, Clone)]
struct Fields {
    title: String,
    status: String,
    date: String,
    supersedes: Vec<String>,
    superseded_by: Vec<String>,
}

fn fields(view: &View, cache: &mut HashMap<ObjectId, Fields>, e: &TreeEntry) -> Fields {
    if let Some(f) = cache.get(&e.id) {
        return f.clone();
    }
    let doc = view
        .read_file(&e.id, ADR_MAX)
        .ok()
        .and_then(|b| hero_formats::parse_markdown(&b).ok());
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let list = |v: &Value, k: &str| -> Vec<String> {
        v.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let f = match doc {
        Some(d) => Fields {
            title: text(&d.value, "title"),
            status: text(&d.value, "status"),
            date: text(&d.value, "date"),
            supersedes: list(&d.value, "supersedes"),
            superseded_by: list(&d.value, "superseded_by"),
        },
        None => Fields::default(),
    };
    cache.insert(e.id, f.clone());
    f
}

/// The records of a directory, by name.
fn records(tree: Option<Tree>) -> BTreeMap<Vec<u8>, TreeEntry> {
    tree.map(|t| {
        t.entries
            .into_iter()
            .filter(|e| e.kind.is_blob() && is_adr(&e.name))
            .map(|e| (e.name.clone(), e))
            .collect()
    })
    .unwrap_or_default()
}

fn dir_tree(
    view: &View,
    commit: &ObjectId,
    dir: &RepoPath,
) -> Result<Option<(ObjectId, Tree)>, PageError> {
    match view.entry_in_commit(commit, dir)? {
        Some(e) if e.kind == hero_store::EntryKind::Dir => Ok(Some((e.id, view.tree(&e.id)?))),
        _ => Ok(None),
    }
}

/// A change of a record's status.
struct Event {
    commit: ObjectId,
    time: i64,
    before: Option<String>,
    after: Option<String>,
}

pub(crate) fn page(view: &View, q: &Query) -> Result<Reply, PageError> {
    let (rev, start) = revision(view, q.get("rev"))?;
    let dirs: Vec<RepoPath> = DIRS
        .iter()
        .filter_map(|d| RepoPath::parse(d).ok())
        .collect();
    let mut cache = HashMap::new();
    // The records at the revision, by path.
    let mut current: Vec<(RepoPath, Fields)> = Vec::new();
    for d in &dirs {
        if let Some((_, tree)) = dir_tree(view, &start, d)? {
            for (name, e) in records(Some(tree)) {
                current.push((d.join(&name)?, fields(view, &mut cache, &e)));
            }
        }
    }
    // One walk along first parents: where a records directory changed, which statuses did.
    let mut events: HashMap<Vec<u8>, Vec<Event>> = HashMap::new();
    let mut walked = 0usize;
    let mut truncated = false;
    if !current.is_empty() {
        for item in view.log(&[start], true)? {
            let (id, c) = item?;
            walked += 1;
            if walked > WALK_MAX {
                truncated = true;
                break;
            }
            for d in &dirs {
                let now = dir_tree(view, &id, d)?;
                let before = match c.parents.first() {
                    Some(p) => dir_tree(view, p, d)?,
                    None => None,
                };
                if now.as_ref().map(|x| x.0) == before.as_ref().map(|x| x.0) {
                    continue;
                }
                let (now, before) = (records(now.map(|x| x.1)), records(before.map(|x| x.1)));
                let mut names: Vec<&Vec<u8>> = now.keys().chain(before.keys()).collect();
                names.sort();
                names.dedup();
                for name in names {
                    let (n, b) = (now.get(name), before.get(name));
                    if n.map(|e| e.id) == b.map(|e| e.id) {
                        continue;
                    }
                    let after = n.map(|e| fields(view, &mut cache, e).status);
                    let was = b.map(|e| fields(view, &mut cache, e).status);
                    if after != was {
                        let key = d.join(name)?.to_bytes();
                        events.entry(key).or_default().push(Event {
                            commit: id,
                            time: c.author.time,
                            before: was,
                            after,
                        });
                    }
                }
            }
        }
    }
    let by_number: HashMap<String, RepoPath> = current
        .iter()
        .filter_map(|(p, _)| {
            let name = lossy(p.file_name()?);
            Some((name.get(..4)?.to_owned(), p.clone()))
        })
        .collect();
    let target = |r: &str| -> Option<RepoPath> {
        let base = r.rsplit('/').next().unwrap_or(r);
        by_number.get(base.get(..4)?).cloned()
    };
    let class = |s: &str| {
        format!(
            "status-{}",
            s.split_whitespace().next().unwrap_or("").to_lowercase()
        )
    };
    let body = html! {
        h1 { "Decision records" }
        p.muted { "at " (rev) " · from " @for (i, d) in DIRS.iter().enumerate() { @if i > 0 { ", " } code { (d) "/" } } }
        @if truncated { p.muted { "status history from the newest " (WALK_MAX) " commits" } }
        @if current.is_empty() { p { "No decision records (NNNN-title.md) here." } }
        @else {
            table.adr {
                thead { tr { th { "Record" } th { "Status" } th.wide { "Date" } th { "Status history" } } }
                tbody { @for (p, f) in &current {
                    tr id=(lossy(p.file_name().unwrap_or_default())) {
                        td {
                            a href=(tree_link(&p.to_bytes(), &rev)) {
                                (lossy(p.file_name().unwrap_or_default()))
                            }
                            @if !f.title.is_empty() { br; span.muted { (f.title) } }
                            @for s in &f.supersedes {
                                br; "supersedes "
                                @if let Some(t) = target(s) { a href=(tree_link(&t.to_bytes(), &rev)) { (s) } } @else { (s) }
                            }
                            @for s in &f.superseded_by {
                                br; "superseded by "
                                @if let Some(t) = target(s) { a href=(tree_link(&t.to_bytes(), &rev)) { (s) } } @else { (s) }
                            }
                        }
                        td class=(class(&f.status)) { (f.status) }
                        td.wide.muted { (f.date) }
                        td { ol.status-history {
                            @for ev in events.get(&p.to_bytes()).map(|v| v.as_slice()).unwrap_or_default().iter().rev() {
                                li {
                                    @match (&ev.before, &ev.after) {
                                        (None, Some(a)) => { "added as " b { (if a.is_empty() { "(no status)" } else { a }) } }
                                        (Some(_), None) => { "removed" }
                                        (Some(b), Some(a)) => { (if b.is_empty() { "(no status)" } else { b }) " → " b { (a) } }
                                        (None, None) => {}
                                    }
                                    " in " a href=(commit_link(&ev.commit)) { (ev.commit.short()) }
                                    " " span.muted { (time(ev.time)) }
                                }
                            }
                        } }
                    }
                } }
            }
        }
    };
    Ok(Reply::Html(layout::page(
        "Decision records",
        Section::Decisions,
        true,
        body,
    )))
}
