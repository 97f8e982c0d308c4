//! `heroctl log`: history, newest first (`-- PATH` follows one file through renames).

use std::collections::HashMap;
use std::io::Write;

use anyhow::Result;
use clap::Args;
use hero_formats::{Format, Value};
use hero_store::{ObjectId, Repo, RepoPath};
use serde_json::json;

use crate::commands::history::PathTracker;
use crate::context::{lossy, show_time};
use crate::error::{Kind, tagged};
use crate::output::print_json;

/// Arguments of `log`.
#[derive(Args, Debug)]
pub struct LogArgs {
    /// Where to start (HEAD: the default branch).
    #[arg(default_value = "HEAD")]
    pub rev: String,
    /// At most this many commits.
    #[arg(short = 'n', long)]
    pub limit: Option<usize>,
    /// Only first parents.
    #[arg(long)]
    pub first_parent: bool,
    /// Only commits that changed this file or directory, following renames (`log -- PATH`).
    #[arg(last = true, value_name = "PATH")]
    pub path: Option<String>,
    /// Only the commits where a value of a structured file changed, creation included, with
    /// the old and new value (`--key etc/app.toml:server.port`; the key syntax of `get`).
    /// Follows the file's renames along first parents.
    #[arg(long, value_name = "PATH:KEY", conflicts_with = "path")]
    pub key: Option<String>,
}

pub fn run(repo: &Repo, a: LogArgs, json: bool) -> Result<()> {
    if let Some(spec) = &a.key {
        return key_log(repo, &a, spec, json);
    }
    let view = repo.view()?;
    let start = view.resolve(&a.rev)?;
    let mut tracker = match &a.path {
        Some(p) => Some(PathTracker::new(RepoPath::parse(p.trim_matches('/'))?)),
        None => None,
    };
    let mut out = std::io::stdout().lock();
    let mut items = Vec::new();
    let mut shown = 0usize;
    for item in view.log(&[start], a.first_parent)? {
        let (id, c) = item?;
        let path = match &mut tracker {
            Some(t) => match t.changed_in(&view, &id, &c)? {
                Some(p) => Some(p.to_string()),
                None => continue,
            },
            None => None,
        };
        if a.limit.is_some_and(|l| shown >= l) {
            break;
        }
        shown += 1;
        if json {
            items.push(json!({
                "path": path,
                "id": id.to_hex(),
                "parents": c.parents.iter().map(|p| p.to_hex()).collect::<Vec<_>>(),
                "tree": c.tree.to_hex(),
                "author": {"name": lossy(&c.author.name), "email": lossy(&c.author.email), "time": c.author.time, "tz": c.author.tz_string()},
                "committer": {"name": lossy(&c.committer.name), "email": lossy(&c.committer.email), "time": c.committer.time, "tz": c.committer.tz_string()},
                "message": lossy(&c.message),
                "peer": c.header(hero_store::PEER_HEADER).map(lossy),
            }));
            continue;
        }
        writeln!(out, "commit {id}")?;
        if c.parents.len() > 1 {
            let ps: Vec<String> = c.parents.iter().map(|p| p.short()).collect();
            writeln!(out, "Merge: {}", ps.join(" "))?;
        }
        writeln!(
            out,
            "Author: {} <{}>",
            lossy(&c.author.name),
            lossy(&c.author.email)
        )?;
        if let Some(peer) = c.header(hero_store::PEER_HEADER) {
            writeln!(out, "Peer:   {}", lossy(peer))?;
        }
        writeln!(out, "Date:   {}", show_time(&c.author))?;
        if let Some(p) = &path {
            writeln!(out, "Path:   {p}")?;
        }
        writeln!(out)?;
        for line in lossy(&c.message).lines() {
            writeln!(out, "    {line}")?;
        }
        writeln!(out)?;
    }
    if json {
        drop(out);
        print_json(&serde_json::Value::Array(items))?;
    }
    Ok(())
}

/// The value of `key` in the file `id` at `path`, parsed once per blob (`cache`): `None` when
/// the file is absent, does not parse, or has no such key.
fn value_of(
    view: &hero_store::View,
    cache: &mut HashMap<ObjectId, Option<Value>>,
    entry: Option<&hero_store::TreeEntry>,
    path: &RepoPath,
    key: &str,
) -> Result<Option<Value>> {
    let Some(e) = entry.filter(|e| e.kind.is_blob()) else {
        return Ok(None);
    };
    if let Some(v) = cache.get(&e.id) {
        return Ok(v.clone());
    }
    let shown = path.to_string();
    let bytes = view.read_file(&e.id, crate::commands::get::MAX_STRUCTURED_BYTES)?;
    let v = Format::detect(&shown, &bytes)
        .and_then(|f| hero_formats::parse(f, &bytes).ok())
        .and_then(|doc| doc.find(key).ok().flatten().cloned());
    cache.insert(e.id, v.clone());
    Ok(v)
}

fn show(v: &Option<Value>) -> String {
    match v {
        None => "(none)".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// `log --key PATH:KEY`: the commits of the first-parent history where the value changed.
fn key_log(repo: &Repo, a: &LogArgs, spec: &str, json: bool) -> Result<()> {
    let Some((path, key)) = spec.split_once(':') else {
        return Err(tagged(
            Kind::Usage,
            format!("--key {spec}: expected PATH:KEY (e.g. etc/app.toml:server.port)"),
        ));
    };
    hero_formats::Path::parse(key).map_err(|e| tagged(Kind::Usage, format!("{key}: {e}")))?;
    let view = repo.view()?;
    let start = view.resolve(&a.rev)?;
    let mut tracker = PathTracker::new(RepoPath::parse(path.trim_matches('/'))?);
    let mut cache = HashMap::new();
    let mut changes = Vec::new();
    let mut out = std::io::stdout().lock();
    for item in view.log(&[start], true)? {
        let (id, c) = item?;
        let Some(here) = tracker.changed_in(&view, &id, &c)? else {
            continue;
        };
        // The tracker now names the file as the first parent has it (a rename followed).
        let new_entry = view.entry_in_commit(&id, &here)?;
        let old_entry = match c.parents.first() {
            Some(p) => view.entry_in_commit(p, tracker.path())?,
            None => None,
        };
        let new = value_of(&view, &mut cache, new_entry.as_ref(), &here, key)?;
        let old = value_of(&view, &mut cache, old_entry.as_ref(), tracker.path(), key)?;
        if old == new {
            continue;
        }
        if a.limit.is_some_and(|l| changes.len() >= l) {
            break;
        }
        let change = json!({
            "commit": id.to_hex(),
            "path": here.to_string(),
            "old": old,
            "new": new,
            "author": {"name": lossy(&c.author.name), "email": lossy(&c.author.email)},
            "date": c.author.time,
            "message": lossy(&c.message).lines().next().unwrap_or_default(),
        });
        if !json {
            writeln!(
                out,
                "{} {} {}  {} -> {}",
                id.short(),
                show_time(&c.author),
                lossy(&c.author.name),
                show(&old),
                show(&new)
            )?;
        }
        changes.push(change);
    }
    if json {
        drop(out);
        print_json(&serde_json::Value::Array(changes))?;
    }
    Ok(())
}
