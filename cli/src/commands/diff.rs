//! `heroctl diff`: changes between revisions.

use crate::output::{bytes, print_json};
use anyhow::Result;
use clap::Args;
use hero_store::{DiffKind, LineDiff, Repo, RepoPath, line_diff};
use serde_json::json;
use std::io::Write;

/// Arguments of `diff`.
#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The old revision (default: the new one's first parent).
    pub old: Option<String>,
    /// The new revision (default: the default branch).
    pub new: Option<String>,
    /// Only the changed paths.
    #[arg(long)]
    pub name_status: bool,
    /// For TOML, Markdown and HeroScript files, the keys and actions that changed rather
    /// than lines (reordering is no change); other files as usual.
    #[arg(long)]
    pub semantic: bool,
}

/// The key-level changes of a structured file between two entries; `None` when the path is
/// not a structured file or a side does not parse (then lines are shown).
fn semantic_changes(
    view: &hero_store::View,
    d: &hero_store::DiffEntry,
) -> Result<Option<Vec<hero_formats::Change>>> {
    let shown = d.path.to_string();
    if hero_formats::Format::from_path(&shown).is_none() {
        return Ok(None);
    }
    let mut sides = Vec::new();
    for e in [&d.old, &d.new] {
        let v = match e {
            Some(e) if e.kind.is_blob() => {
                let bytes = view.read_file(&e.id, crate::commands::get::MAX_STRUCTURED_BYTES)?;
                let Some(format) = hero_formats::Format::detect(&shown, &bytes) else {
                    return Ok(None);
                };
                match hero_formats::parse(format, &bytes) {
                    Ok(doc) => doc.value,
                    Err(_) => return Ok(None),
                }
            }
            _ => serde_json::Value::Null,
        };
        sides.push(v);
    }
    Ok(Some(hero_formats::diff(&sides[0], &sides[1])))
}

fn show(v: &Option<serde_json::Value>) -> String {
    match v {
        None => "(none)".to_owned(),
        Some(serde_json::Value::String(s)) => format!("{s:?}"),
        Some(other) => other.to_string(),
    }
}

pub fn run(repo: &Repo, a: DiffArgs, json: bool) -> Result<()> {
    let view = repo.view()?;
    let (old, new) = match (&a.old, &a.new) {
        (Some(o), Some(n)) => (Some(view.resolve(o)?), view.resolve(n)?),
        (Some(n), None) => {
            let new = view.resolve(n)?;
            (view.commit(&new)?.parents.first().copied(), new)
        }
        _ => {
            let new = view.resolve("HEAD")?;
            (view.commit(&new)?.parents.first().copied(), new)
        }
    };
    let changes = view.diff_commits(old, &new)?;
    if a.semantic {
        return semantic(&view, &changes, json);
    }
    if json {
        let items: Vec<_> = changes
            .iter()
            .map(|d| {
                json!({
                    "path": d.path.to_string(),
                    "change": format!("{:?}", d.kind).to_lowercase(),
                    "old": d.old.as_ref().map(|e| e.id.to_hex()),
                    "new": d.new.as_ref().map(|e| e.id.to_hex()),
                })
            })
            .collect();
        print_json(&serde_json::Value::Array(items))?;
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    for d in &changes {
        if a.name_status {
            writeln!(out, "{}\t{}", d.kind.letter(), d.path)?;
            continue;
        }
        if d.kind == DiffKind::Metadata {
            if let (Some(x), Some(y)) = (&d.old, &d.new) {
                writeln!(out, "diff a/{} b/{}", d.path, d.path)?;
                writeln!(out, "{}", meta_change(x, y))?;
            }
            continue;
        }
        // A special file has no lines: say what it is (or was).
        if [&d.old, &d.new]
            .iter()
            .any(|e| e.as_ref().is_some_and(|e| e.kind.is_special()))
        {
            let what = |e: &Option<hero_store::TreeEntry>| {
                e.as_ref()
                    .map_or("nothing".to_owned(), crate::context::describe_kind)
            };
            writeln!(out, "diff a/{} b/{}", d.path, d.path)?;
            writeln!(out, "{} -> {}", what(&d.old), what(&d.new))?;
            continue;
        }
        let (x, y) = match (
            diff_side(&view, &d.old, &d.path)?,
            diff_side(&view, &d.new, &d.path)?,
        ) {
            (Side::Text(x), Side::Text(y)) => (x, y),
            (x, y) => {
                writeln!(out, "diff a/{} b/{}", d.path, d.path)?;
                let size = |s: &Side| match s {
                    Side::Large(n) => bytes(*n),
                    Side::Text(t) => bytes(t.len() as u64),
                };
                writeln!(out, "large file, not shown ({} -> {})", size(&x), size(&y))?;
                continue;
            }
        };
        let (an, bn) = match d.kind {
            DiffKind::Added => ("/dev/null".to_owned(), format!("b/{}", d.path)),
            DiffKind::Deleted => (format!("a/{}", d.path), "/dev/null".to_owned()),
            DiffKind::Modified | DiffKind::Metadata => {
                (format!("a/{}", d.path), format!("b/{}", d.path))
            }
        };
        writeln!(out, "diff {} {}", an, bn)?;
        match line_diff(&x, &y, &an, &bn) {
            LineDiff::Text(t) => write!(out, "{t}")?,
            LineDiff::Binary => writeln!(out, "Binary files differ")?,
        }
    }
    Ok(())
}

/// What changed in an entry's metadata, one part per clause: `mode 0644 -> 0600, owner
/// 0:0 -> 33:33, time 2026-12-01T10:00:00Z -> 2026-12-02T09:00:00Z` (a part not kept shows
/// as `-`).
fn meta_change(x: &hero_store::TreeEntry, y: &hero_store::TreeEntry) -> String {
    let mode = |e: &hero_store::TreeEntry| e.meta.mode.map_or("-".into(), |m| format!("{m:04o}"));
    let owner = |e: &hero_store::TreeEntry| {
        e.meta
            .owner
            .map_or("-".into(), |o| format!("{}:{}", o.uid, o.gid))
    };
    let time = |e: &hero_store::TreeEntry| {
        e.meta.mtime.map_or("-".into(), |t| {
            chrono::DateTime::from_timestamp(t.secs, t.nanos)
                .map_or_else(|| t.secs.to_string(), |d| d.to_rfc3339())
        })
    };
    let atime = |e: &hero_store::TreeEntry| {
        e.meta.atime.map_or("-".into(), |t| {
            chrono::DateTime::from_timestamp(t.secs, t.nanos)
                .map_or_else(|| t.secs.to_string(), |d| d.to_rfc3339())
        })
    };
    let link =
        |e: &hero_store::TreeEntry| e.meta.link.map_or("-".into(), |l| format!("{:016x}", l.0));
    let mut parts = Vec::new();
    for (what, f) in [
        ("mode", &mode as &dyn Fn(&hero_store::TreeEntry) -> String),
        ("owner", &owner),
        ("time", &time),
        ("access time", &atime),
        ("hard-link group", &link),
        ("kind", &crate::context::describe_kind),
    ] {
        let (a, b) = (f(x), f(y));
        if a != b {
            parts.push(format!("{what} {a} -> {b}"));
        }
    }
    parts.join(", ")
}

/// Files larger than this are not diffed line by line.
const DIFF_LIMIT: u64 = 64 << 20;

/// One side of a file's diff: its bytes (empty when absent), or the size of a file too large.
enum Side {
    Text(Vec<u8>),
    Large(u64),
}

/// Reads one side of a diff; an unreadable file is an error, never an empty side.
fn diff_side(
    view: &hero_store::View,
    e: &Option<hero_store::TreeEntry>,
    path: &RepoPath,
) -> Result<Side> {
    match e {
        Some(e) if e.kind.is_blob() && e.size > DIFF_LIMIT => Ok(Side::Large(e.size)),
        Some(e) if e.kind.is_blob() => match view.read_file(&e.id, DIFF_LIMIT) {
            Ok(b) => Ok(Side::Text(b)),
            Err(hero_store::Error::FileTooLarge) => Ok(Side::Large(e.size)),
            Err(err) => Err(anyhow::Error::new(err)
                .context(format!("reading {path} ({}) for the diff", e.id.short()))),
        },
        _ => Ok(Side::Text(Vec::new())),
    }
}

/// `diff --semantic`.
fn semantic(view: &hero_store::View, changes: &[hero_store::DiffEntry], json: bool) -> Result<()> {
    let mut items = Vec::new();
    let mut out = std::io::stdout().lock();
    for d in changes {
        let keys = semantic_changes(view, d)?;
        if json {
            let mut item = json!({
                "path": d.path.to_string(),
                "change": format!("{:?}", d.kind).to_lowercase(),
            });
            if let Some(k) = &keys {
                item["keys"] = k
                    .iter()
                    .map(|c| json!({"key": c.path, "old": c.old, "new": c.new}))
                    .collect();
            }
            items.push(item);
            continue;
        }
        match keys {
            // Reordered, reformatted or commented only: the same values.
            Some(k) if k.is_empty() => {}
            Some(k) => {
                writeln!(out, "{} {}", d.kind.letter(), d.path)?;
                for c in k {
                    let key = if c.path.is_empty() {
                        "(document)"
                    } else {
                        &c.path
                    };
                    writeln!(out, "    {key}: {} -> {}", show(&c.old), show(&c.new))?;
                }
            }
            None => writeln!(out, "{} {}", d.kind.letter(), d.path)?,
        }
    }
    if json {
        drop(out);
        print_json(&serde_json::Value::Array(items))?;
    }
    Ok(())
}
