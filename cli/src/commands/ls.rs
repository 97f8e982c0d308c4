//! `heroctl ls [REV[:PATH]]`: a directory of a revision.

use crate::context::lossy;
use crate::output::print_json;
use anyhow::Result;
use clap::Args;
use hero_store::{EntryKind, Repo, RepoPath};
use serde_json::json;
use std::io::Write;

/// Arguments of `ls`.
#[derive(Args, Debug)]
pub struct LsArgs {
    /// The revision (HEAD: the default branch).
    #[arg(default_value = "HEAD")]
    pub rev: String,
    /// The directory inside it.
    #[arg(default_value = "")]
    pub path: String,
    /// List everything below, recursively.
    #[arg(short, long)]
    pub recursive: bool,
}

pub fn run(repo: &Repo, a: LsArgs, json: bool) -> Result<()> {
    let view = repo.view()?;
    let commit = view.resolve(&a.rev)?;
    let path = RepoPath::parse(&a.path)?;
    let mut rows = Vec::new();
    let mut stack = vec![(path.clone(), view.list_dir(&commit, &path)?)];
    while let Some((at, tree)) = stack.pop() {
        for e in tree.entries.iter().rev() {
            let p = at.join(&e.name)?;
            if a.recursive && e.kind == EntryKind::Dir {
                stack.push((p.clone(), view.tree(&e.id)?));
            }
            rows.push((p, e.clone()));
        }
    }
    if a.recursive {
        rows.sort_by(|x, y| x.0.cmp(&y.0));
    } else {
        rows.reverse();
    }
    let mut out = std::io::stdout().lock();
    if json {
        let items: Vec<_> = rows
            .iter()
            .map(|(p, e)| {
                let mut v = json!({"path": p.to_string(), "kind": e.kind.as_str(), "id": e.id.to_hex(), "size": e.size});
                if let Some(d) = e.meta.rdev {
                    v["device"] = json!(crate::context::device_numbers(d));
                }
                if let Some(l) = e.meta.link {
                    v["link_group"] = json!(format!("{:016x}", l.0));
                }
                v
            })
            .collect();
        drop(out);
        print_json(&serde_json::Value::Array(items))?;
        return Ok(());
    }
    for (p, e) in rows {
        let shown = if a.recursive {
            p.to_string()
        } else {
            lossy(&e.name)
        };
        let suffix = if e.kind == EntryKind::Dir { "/" } else { "" };
        // A special file has no content: a device shows its numbers where a size goes.
        let (size, id) = if e.kind.is_special() {
            let size = if e.kind.is_device() {
                crate::context::device_numbers(e.meta.rdev.unwrap_or(0))
            } else {
                "-".to_owned()
            };
            (size, format!("{:<12}", "-"))
        } else {
            (e.size.to_string(), e.id.short())
        };
        // Names of one hard-linked file are marked with their group.
        let link = e
            .meta
            .link
            .map_or(String::new(), |l| format!("  (hard link {:016x})", l.0));
        writeln!(
            out,
            "{:<7} {:>10} {}  {shown}{suffix}{link}",
            e.kind.as_str(),
            size,
            id
        )?;
    }
    Ok(())
}
