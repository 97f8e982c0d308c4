//! `heroctl tag`: list, create, delete tags.

use crate::context::author;
use crate::output::{outln, print_json};
use anyhow::Result;
use clap::Args;
use hero_store::{RefValue, Repo, Tag, TargetKind};
use serde_json::json;

/// Arguments of `tag`.
#[derive(Args, Debug)]
pub struct TagArgs {
    /// Create a tag with this name (lists tags when absent).
    pub name: Option<String>,
    /// What to tag (HEAD: the default branch).
    #[arg(default_value = "HEAD")]
    pub rev: String,
    /// Make an annotated tag with this message.
    #[arg(short, long)]
    pub message: Option<String>,
    /// Delete the tag instead.
    #[arg(short, long)]
    pub delete: bool,
}

pub fn run(repo: &Repo, a: TagArgs, json: bool) -> Result<()> {
    match a.name {
        None => {
            let tags = repo.tags()?;
            if json {
                let items: Vec<_> = tags
                    .iter()
                    .map(|(n, v)| json!({"name": n, "id": v.id().to_hex(), "annotated": matches!(v, RefValue::Tag(_))}))
                    .collect();
                print_json(&serde_json::Value::Array(items))?;
            } else {
                for (n, v) in tags {
                    let kind = if matches!(v, RefValue::Tag(_)) {
                        "annotated"
                    } else {
                        "lightweight"
                    };
                    outln!("{} {n} ({kind})", v.id().short())?;
                }
            }
        }
        Some(name) if a.delete => {
            repo.delete_tag(&name)?;
            if json {
                print_json(&json!({"deleted": name}))?;
            } else {
                outln!("deleted tag {name}")?;
            }
        }
        Some(name) => {
            let target = repo.resolve(&a.rev)?;
            let annotation = a.message.map(|m| Tag {
                target,
                target_kind: TargetKind::Commit,
                name: name.clone().into_bytes(),
                tagger: Some(author().signature()),
                message: m.into_bytes(),
                extra: Vec::new(),
            });
            let v = repo.create_tag(&name, target, annotation)?;
            if json {
                print_json(
                    &json!({"name": name, "id": v.id().to_hex(), "target": target.to_hex()}),
                )?;
            } else {
                outln!("tagged {} as {name}", target.short())?;
            }
        }
    }
    Ok(())
}
