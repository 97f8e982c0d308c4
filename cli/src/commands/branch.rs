//! `heroctl branch`: list, create, delete branches; the default branch.

use crate::context::check_writable;
use crate::error::{Kind, tagged};
use crate::output::{outln, print_json};
use anyhow::{Context, Result};
use clap::Args;
use hero_store::Repo;
use serde_json::json;

/// Arguments of `branch`.
#[derive(Args, Debug)]
pub struct BranchArgs {
    /// Create a branch with this name (lists branches when absent).
    pub name: Option<String>,
    /// Where the new branch starts (HEAD: the default branch).
    #[arg(default_value = "HEAD")]
    pub start: String,
    /// Delete the branch instead (its moves stay in the reflog).
    #[arg(short, long, conflicts_with = "default")]
    pub delete: bool,
    /// Make this branch the default one (git's HEAD): what commands, the mount and the share
    /// use when no branch is named. It must exist.
    #[arg(long = "default", value_name = "NAME", conflicts_with_all = ["name", "delete"])]
    pub default: Option<String>,
}

pub fn run(repo: &Repo, a: BranchArgs, json: bool) -> Result<()> {
    if let Some(name) = a.name.as_deref() {
        check_writable(name)?;
    }
    if let Some(name) = a.default {
        check_writable(&name)?;
        if repo.branch_head(&name)?.is_none() {
            return Err(tagged(Kind::NotFound, format!("no branch {name}")));
        }
        repo.set_default_branch(&name)?;
        if json {
            print_json(&json!({"default": name}))?;
        } else {
            outln!("the default branch is now {name}")?;
        }
        return Ok(());
    }
    match a.name {
        None => {
            // Hero's own branches (the membership) are not the user's: `heroctl member list`.
            let mut branches = repo.branches()?;
            branches.retain(|(n, _)| !hero_sync::membership::is_reserved(n));
            let default = repo.default_branch()?;
            if json {
                let items: Vec<_> = branches
                    .iter()
                    .map(
                        |(n, id)| json!({"name": n, "head": id.to_hex(), "default": *n == default}),
                    )
                    .collect();
                print_json(&serde_json::Value::Array(items))?;
            } else {
                for (n, id) in branches {
                    let mark = if n == default { "*" } else { " " };
                    outln!("{mark} {} {n}", id.short())?;
                }
            }
        }
        Some(name) if a.delete => {
            let head = repo
                .branch_head(&name)?
                .ok_or_else(|| tagged(Kind::NotFound, format!("no branch {name}")))?;
            repo.update_branch(&name, Some(head), None, "branch delete")?;
            if json {
                print_json(&json!({"deleted": name, "head": head.to_hex()}))?;
            } else {
                outln!("deleted branch {name} (was {})", head.short())?;
            }
        }
        Some(name) => {
            let start = repo.resolve(&a.start)?;
            if let Some(head) = repo.branch_head(&name)? {
                return Err(tagged(
                    Kind::Refused,
                    format!("branch {name} already exists (at {})", head.short()),
                ));
            }
            repo.update_branch(&name, None, Some(start), "branch create")
                .with_context(|| format!("creating branch {name}"))?;
            if json {
                print_json(&json!({"name": name, "head": start.to_hex()}))?;
            } else {
                outln!("created branch {name} at {}", start.short())?;
            }
        }
    }
    Ok(())
}
