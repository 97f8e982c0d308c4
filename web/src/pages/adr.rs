//! `/adr`: the decision records — Markdown files named `NNNN-title.md` under `docs/adr/`,
//! `doc/adr/`, `adr/`, `docs/decisions/` or `decisions/` — with their current status and
//! the history of that status (which commit proposed, accepted or superseded each), and
//! supersede links.

use std::collections::{BTreeMap, HashMap};

use hero_formats::Value;
use hero_store::{ObjectId, RepoPath, Tree, TreeEntry, View};
use maud::html;

use crate::Reply;
use crate::error::PageError;
use crate::layout::{self, Section, commit_link, lossy, time, tree_link};
use crate::request::{Query, revision};

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

/// The tree id of the directory `dir` in `commit`, if it is one.
fn dir_id(view: &View, commit: &ObjectId, dir: &RepoPath) -> Result<Option<ObjectId>, PageError> {
    match view.entry_in_commit(commit, dir)? {
        Some(e) if e.kind == hero_store::EntryKind::Dir => Ok(Some(e.id)),
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
        if let Some(t) = dir_id(view, &start, d)? {
            for (name, e) in records(Some(view.tree(&t)?)) {
                current.push((d.join(&name)?, fields(view, &mut cache, &e)));
            }
        }
    }
    // One walk along first parents: where a records directory changed, which statuses did.
    // Only the directories that hold records at the revision are followed; a commit's
    // directory ids are its first parent's "now" in the next step.
    let dirs: Vec<RepoPath> = dirs
        .into_iter()
        .filter(|d| current.iter().any(|(p, _)| p.parent() == *d))
        .collect();
    let mut events: HashMap<Vec<u8>, Vec<Event>> = HashMap::new();
    let mut walked = 0usize;
    let mut truncated = false;
    let mut carried: Option<(ObjectId, Vec<Option<ObjectId>>)> = None;
    if !dirs.is_empty() {
        for item in view.log(&[start], true)? {
            let (id, c) = item?;
            walked += 1;
            if walked > WALK_MAX {
                truncated = true;
                break;
            }
            let now: Vec<Option<ObjectId>> = match carried.take() {
                Some((at, ids)) if at == id => ids,
                _ => dirs
                    .iter()
                    .map(|d| dir_id(view, &id, d))
                    .collect::<Result<_, _>>()?,
            };
            let before: Vec<Option<ObjectId>> = match c.parents.first() {
                Some(p) => dirs
                    .iter()
                    .map(|d| dir_id(view, p, d))
                    .collect::<Result<_, _>>()?,
                None => vec![None; dirs.len()],
            };
            for (i, d) in dirs.iter().enumerate() {
                if now[i] == before[i] {
                    continue;
                }
                let tree = |t: Option<ObjectId>| t.map(|t| view.tree(&t)).transpose();
                let (n_recs, b_recs) = (records(tree(now[i])?), records(tree(before[i])?));
                let mut names: Vec<&Vec<u8>> = n_recs.keys().chain(b_recs.keys()).collect();
                names.sort();
                names.dedup();
                for name in names {
                    let (n, b) = (n_recs.get(name), b_recs.get(name));
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
            if let Some(p) = c.parents.first() {
                carried = Some((*p, before));
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
