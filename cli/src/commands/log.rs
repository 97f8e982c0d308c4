//! `heroctl log`: history, newest first (`-- PATH` follows one file through renames).

use std::io::Write;

use anyhow::Result;
use clap::Args;
use hero_formats::Value;
use hero_store::{PathTracker, Repo, RepoPath};
use serde_json::json;

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
    let path = RepoPath::parse(path.trim_matches('/'))?;
    let mut changes = Vec::new();
    let mut out = std::io::stdout().lock();
    for ch in hero_web::history::key_history(&view, &start, &path, key, a.limit)? {
        let c = &ch.commit;
        let change = json!({
            "commit": ch.id.to_hex(),
            "path": ch.path.to_string(),
            "old": ch.old,
            "new": ch.new,
            "author": {"name": lossy(&c.author.name), "email": lossy(&c.author.email)},
            "date": c.author.time,
            "message": lossy(&c.message).lines().next().unwrap_or_default(),
        });
        if !json {
            writeln!(
                out,
                "{} {} {}  {} -> {}",
                ch.id.short(),
                show_time(&c.author),
                lossy(&c.author.name),
                show(&ch.old),
                show(&ch.new)
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
