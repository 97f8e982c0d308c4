//! `/`: the timeline. Commits newest first across branches (or one branch), with their
//! branch and merge lines, filtered by branch, path, author and date, 50 to a page.

use std::collections::HashMap;

use hero_store::{Commit, ObjectId, Repo, RepoPath, View};
use maud::html;

use crate::Reply;
use crate::error::PageError;
use crate::layout::{self, Section, commit_link, lossy, subject, time};
use crate::request::{Query, revision};
use crate::url;

/// Commits on a page.
pub(crate) const PAGE: usize = 50;

/// Lanes drawn at most; a history wider than this draws its extra lanes in the last one.
const MAX_LANES: usize = 12;

struct Row {
    id: ObjectId,
    commit: Commit,
    graph: String,
}

pub(crate) fn page(repo: &Repo, view: &View, q: &Query) -> Result<Reply, PageError> {
    let branch = q.get("branch");
    let author = q.get("author").map(str::to_lowercase);
    let path = q
        .get("path")
        .map(|p| RepoPath::parse(p.trim_matches('/')))
        .transpose()
        .map_err(|e| PageError::BadRequest(format!("path: {e}")))?;
    let date = |k: &str| -> Result<Option<i64>, PageError> {
        q.get(k)
            .map(|d| {
                hero_store::parse_utc_date(d)
                    .ok_or_else(|| PageError::BadRequest(format!("{k}={d}: expected YYYY-MM-DD")))
            })
            .transpose()
    };
    let since = date("since")?;
    // `until` takes the whole day.
    let until = date("until")?.map(|t| t + 86_399);
    let page_no = q.number("page", 0)?.min(1_000_000);
    let skip = page_no * PAGE;

    let branches: Vec<(String, ObjectId)> = view
        .branches()?
        .into_iter()
        .filter(|(b, _)| !hero_store::is_reserved_branch(b))
        .collect();
    let starts: Vec<ObjectId> = match branch {
        Some(b) => vec![revision(view, Some(b))?.1],
        None => branches.iter().map(|(_, id)| *id).collect(),
    };
    let mut labels: HashMap<ObjectId, Vec<String>> = HashMap::new();
    for (b, id) in &branches {
        labels.entry(*id).or_default().push(b.clone());
    }
    for (t, v) in view.tags()? {
        if let Ok(id) = view.peel(v) {
            labels.entry(id).or_default().push(format!("tag: {t}"));
        }
    }
    let filtered = author.is_some() || path.is_some() || since.is_some() || until.is_some();

    let mut lanes: Vec<Option<ObjectId>> = Vec::new();
    let mut rows = Vec::new();
    let mut matched = 0usize;
    let mut more = false;
    for item in view.log(&starts, false)? {
        let (id, c) = item?;
        let graph = if filtered {
            String::new()
        } else {
            graph_row(&mut lanes, &id, &c.parents)
        };
        if until.is_some_and(|u| c.committer.time > u) {
            continue;
        }
        if since.is_some_and(|s| c.committer.time < s) {
            break;
        }
        if let Some(a) = &author {
            let who = format!("{} <{}>", lossy(&c.author.name), lossy(&c.author.email));
            if !who.to_lowercase().contains(a.as_str()) {
                continue;
            }
        }
        if let Some(p) = &path {
            let now = view.entry_in_commit(&id, p)?;
            let before = match c.parents.first() {
                Some(parent) => view.entry_in_commit(parent, p)?,
                None => None,
            };
            if now.map(|e| e.id) == before.map(|e| e.id) {
                continue;
            }
        }
        matched += 1;
        if matched <= skip {
            continue;
        }
        if rows.len() == PAGE {
            more = true;
            break;
        }
        rows.push(Row {
            id,
            commit: c,
            graph,
        });
    }

    let names = member_names(repo);
    let mut changed = Vec::with_capacity(rows.len());
    let mut signers = Vec::with_capacity(rows.len());
    for r in &rows {
        changed.push(
            view.diff_commits(r.commit.parents.first().copied(), &r.id)?
                .len(),
        );
        let made = hero_sync::commitsig::stored(repo, &r.id)
            .unwrap_or_default()
            .into_iter()
            .find(|s| s.kind == hero_sync::commitsig::Kind::Made)
            .map(|s| {
                let id = s.signer.to_string();
                names.get(&id).cloned().unwrap_or_else(|| short(&id))
            });
        signers.push(made);
    }

    let link = |page: usize| -> String {
        let p = page.to_string();
        format!(
            "/{}",
            url::query(&[
                ("branch", branch.unwrap_or("")),
                ("path", q.get("path").unwrap_or("")),
                ("author", q.get("author").unwrap_or("")),
                ("since", q.get("since").unwrap_or("")),
                ("until", q.get("until").unwrap_or("")),
                ("page", if page == 0 { "" } else { &p }),
            ])
        )
    };
    let body = html! {
        h1 { "Timeline" }
        form.filters method="get" action="/" {
            select name="branch" aria-label="branch" {
                option value="" { "all branches" }
                @for (b, _) in &branches {
                    option value=(b) selected[branch == Some(b.as_str())] { (b) }
                }
            }
            input name="path" placeholder="path" value=(q.get("path").unwrap_or(""));
            input name="author" placeholder="author" value=(q.get("author").unwrap_or(""));
            input name="since" placeholder="since YYYY-MM-DD" value=(q.get("since").unwrap_or(""));
            input name="until" placeholder="until YYYY-MM-DD" value=(q.get("until").unwrap_or(""));
            button type="submit" { "Filter" }
        }
        @if rows.is_empty() {
            p.muted { "No commits." }
        } @else {
            table.timeline {
                thead { tr {
                    th.graph {}
                    th { "Message" }
                    th { "Author" }
                    th.wide { "Signed by · peer" }
                    th { "When" }
                    th.wide { "Files" }
                } }
                tbody {
                    @for (i, r) in rows.iter().enumerate() {
                        tr.commit data-id=(r.id.to_hex()) {
                            td.graph { (r.graph) }
                            td.msg {
                                @if let Some(ls) = labels.get(&r.id) {
                                    @for l in ls { span.ref { (l) } }
                                }
                                a href=(commit_link(&r.id)) { (subject(&r.commit.message)) }
                                " " span.id { (r.id.short()) }
                            }
                            td { (lossy(&r.commit.author.name)) }
                            td.wide.muted {
                                (signers[i].as_deref().unwrap_or("—"))
                                @if let Some(peer) = r.commit.header(hero_store::PEER_HEADER) {
                                    " · " span.id title=(lossy(peer)) { (short(&lossy(peer))) }
                                }
                            }
                            td.muted { (time(r.commit.author.time)) }
                            td.wide { (changed[i]) }
                        }
                    }
                }
            }
        }
        div.pager {
            @if page_no > 0 { a rel="prev" href=(link(page_no - 1)) { "← newer" } }
            @if more { a rel="next" href=(link(page_no + 1)) { "older →" } }
        }
    };
    Ok(Reply::Html(layout::page(
        "Timeline",
        Section::Timeline,
        page_no == 0,
        body,
    )))
}

/// The first characters of a long id.
fn short(id: &str) -> String {
    id.chars().take(10).collect()
}

/// Member display names by node id (empty when the membership cannot be read).
pub(crate) fn member_names(repo: &Repo) -> HashMap<String, String> {
    match hero_sync::membership::load(repo) {
        Ok((m, _)) => m
            .members()
            .map(|(id, member)| (id.to_string(), member.name.clone()))
            .collect(),
        Err(e) => {
            tracing::debug!(error = %e, "no membership for the timeline");
            HashMap::new()
        }
    }
}

/// One row of the graph: `●` the commit (`◆` a merge) in its lane, `│` lanes passing by,
/// `┘` lanes that end in this commit; then the lanes move to its parents.
fn graph_row(lanes: &mut Vec<Option<ObjectId>>, id: &ObjectId, parents: &[ObjectId]) -> String {
    let col = match lanes.iter().position(|l| l.as_ref() == Some(id)) {
        Some(c) => c,
        None => match lanes.iter().position(Option::is_none) {
            Some(free) => free,
            None if lanes.len() < MAX_LANES => {
                lanes.push(None);
                lanes.len() - 1
            }
            None => lanes.len() - 1,
        },
    };
    let mut s = String::new();
    for (i, l) in lanes.iter().enumerate() {
        s.push(if i == col {
            if parents.len() > 1 { '◆' } else { '●' }
        } else if l.as_ref() == Some(id) {
            '┘'
        } else if l.is_some() {
            '│'
        } else {
            ' '
        });
        s.push(' ');
    }
    for l in lanes.iter_mut() {
        if l.as_ref() == Some(id) {
            *l = None;
        }
    }
    lanes[col] = parents.first().copied();
    for p in parents.iter().skip(1) {
        if lanes.contains(&Some(*p)) {
            continue;
        }
        match lanes.iter().position(Option::is_none) {
            Some(free) => lanes[free] = Some(*p),
            None if lanes.len() < MAX_LANES => lanes.push(Some(*p)),
            None => {}
        }
    }
    while lanes.last() == Some(&None) {
        lanes.pop();
    }
    s.trim_end().to_owned()
}
