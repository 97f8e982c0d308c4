//! `heroctl import git` and `heroctl export git`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use hero_importers::{
    ExportOptions, ImportOptions, ImportProgress, VerifyOptions, export_git, import_git,
    verify_import,
};
use hero_store::Repo;
use serde_json::json;

use crate::error::{Kind, tagged};
use crate::output::{bytes, count, outln, print_json, progress_bar};

/// What to import from.
#[derive(Subcommand, Debug)]
pub enum ImportKind {
    /// A local git repository (bare or with a work tree): every branch and tag, full history.
    Git(ImportGitArgs),
}

/// What to export to.
#[derive(Subcommand, Debug)]
pub enum ExportKind {
    /// A git repository: commits and tags that came from git get their original ids back.
    Git(ExportGitArgs),
}

/// Arguments of `import git`.
#[derive(Args, Debug)]
pub struct ImportGitArgs {
    /// The git repository (its work tree or its git directory).
    pub path: PathBuf,
    /// After importing, compare every imported commit's tree with git's, file by file.
    #[arg(long)]
    pub verify: bool,
    /// Put this before every imported branch name (e.g. `git/`).
    #[arg(long, default_value = "")]
    pub branch_prefix: String,
    /// Put this before every imported tag name.
    #[arg(long, default_value = "")]
    pub tag_prefix: String,
    /// Move branches and tags even when they hold work the import does not contain (the old
    /// heads stay in the reflog). Without it such a ref is refused and left where it is.
    #[arg(long, conflicts_with = "rename_refused")]
    pub force: bool,
    /// Import a ref that would be refused under this prefix instead (e.g. `git/`).
    #[arg(long, value_name = "PREFIX")]
    pub rename_refused: Option<String>,
    /// Drop the tree entries git itself refuses (`.git` in any case and its NTFS and HFS+
    /// aliases, `.`, `..`) and list them, instead of refusing the import. The commits that
    /// held one, and those after them, get new git ids when exported.
    #[arg(long)]
    pub skip_unsafe_paths: bool,
}

/// Arguments of `export git`.
#[derive(Args, Debug)]
pub struct ExportGitArgs {
    /// The git repository to write (created bare if missing; an existing one is updated).
    pub dir: PathBuf,
    /// Export only branches starting with this prefix, removing it.
    #[arg(long, default_value = "")]
    pub branch_prefix: String,
    /// Export only tags starting with this prefix, removing it.
    #[arg(long, default_value = "")]
    pub tag_prefix: String,
}

/// Runs `import ...`.
pub fn import(mut repo: Repo, kind: ImportKind, json: bool) -> Result<()> {
    let ImportKind::Git(a) = kind;
    import_one(&mut repo, &a, json)
}

fn import_one(repo: &mut Repo, a: &ImportGitArgs, json: bool) -> Result<()> {
    let bar = progress_bar(json, "import");
    let bar_cb = bar.clone();
    let opts = ImportOptions {
        branch_prefix: a.branch_prefix.clone(),
        tag_prefix: a.tag_prefix.clone(),
        progress: Some(Box::new(move |p: &ImportProgress| {
            if let Some(t) = p.commits_total {
                bar_cb.set_length(t);
            }
            bar_cb.set_position(p.commits_done);
        })),
        force: a.force,
        rename_refused: a.rename_refused.clone(),
        skip_unsafe_paths: a.skip_unsafe_paths,
        ..ImportOptions::default()
    };
    let start = Instant::now();
    let report = import_git(repo, &a.path, &opts)
        .with_context(|| format!("importing {}", a.path.display()))?;
    bar.finish_and_clear();
    // The importing node vouches for what it imported: an owner for the heads, a writer by
    // signing each commit, bounded by its scopes (ADR 0018).
    if report.commits > 0 {
        let key = hero_sync::load_or_create_key(repo.path())?;
        hero_sync::gate::vouch_import(repo, &key).context("signing the imported commits")?;
    }
    // A big import leaves many free pages behind (copy-on-write); give them back.
    let compacted = if report.commits > 0 {
        match repo.compact() {
            Ok((before, after)) => Some((before, after)),
            Err(e) => {
                tracing::warn!("could not compact the repository after the import: {e}");
                None
            }
        }
    } else {
        None
    };
    let secs = start.elapsed().as_secs_f64();
    let verify = if a.verify {
        let bar = progress_bar(json, "verify");
        bar.set_length(0);
        let opts = VerifyOptions {
            skip_unsafe_paths: a.skip_unsafe_paths,
            ..VerifyOptions::default()
        };
        let v = verify_import(repo, &a.path, &opts)
            .with_context(|| format!("verifying against {}", a.path.display()))?;
        bar.finish_and_clear();
        Some(v)
    } else {
        None
    };
    if json {
        let mut out = json!({
            "commits": report.commits,
            "trees": report.trees,
            "blobs": report.blobs,
            "tags": report.tags,
            "raw_kept": report.raw_kept,
            "refs_created": report.refs_created,
            "refs_moved": report.refs_moved,
            "refs_unchanged": report.refs_unchanged,
            "default_branch": report.default_branch,
            "skipped": report.skipped.iter().map(|s| json!({"ref": s.name, "reason": s.reason})).collect::<Vec<_>>(),
            "refused": report.refused.iter().map(|r| json!({
                "ref": r.name,
                "local": r.local.id().to_hex(),
                "imported": r.imported.id().to_hex(),
            })).collect::<Vec<_>>(),
            "renamed": report.renamed.iter().map(|(from, to)| json!({"ref": from, "as": to})).collect::<Vec<_>>(),
            "dropped": report.dropped.iter().map(|d| json!({"path": d.path, "commit": d.commit.to_hex()})).collect::<Vec<_>>(),
            "rewritten": report.rewritten,
            "seconds": secs,
            "file_bytes": compacted.map(|c| c.1),
        });
        if let Some(v) = &verify {
            out["verify"] = json!({
                "commits": v.commits,
                "trees": v.trees,
                "files": v.files,
                "differences": v.differences.iter().map(|d| json!({
                    "commit": d.commit.to_hex(),
                    "path": String::from_utf8_lossy(&d.path),
                    "what": d.what,
                })).collect::<Vec<_>>(),
            });
        }
        print_json(&out)?;
    } else {
        let rate = if secs > 0.0 {
            report.commits as f64 / secs
        } else {
            0.0
        };
        outln!(
            "imported {} commits, {} trees, {} files, {} tags in {secs:.1} s ({} commits/s)",
            count(report.commits),
            count(report.trees),
            count(report.blobs),
            count(report.tags),
            count(rate as u64)
        )?;
        outln!(
            "refs: {} created, {} moved, {} unchanged",
            count(report.refs_created),
            count(report.refs_moved),
            count(report.refs_unchanged)
        )?;
        if let Some((before, after)) = compacted {
            outln!(
                "repository file compacted: {} -> {}",
                bytes(before),
                bytes(after)
            )?;
        }
        if let Some(d) = &report.default_branch {
            outln!("default branch: {d} (as git's HEAD)")?;
        }
        for s in &report.skipped {
            outln!("skipped {}: {}", s.name, s.reason)?;
        }
        for (from, to) in &report.renamed {
            outln!("{from} holds other work here: imported as {to}")?;
        }
        for d in &report.dropped {
            outln!(
                "dropped unsafe path {} (first in commit {})",
                d.path,
                d.commit
            )?;
        }
        if report.rewritten > 0 {
            outln!(
                "{} commit(s) and tag(s) lost a dropped path or descend from one: an export \
                 gives them new git ids (it is not lossless for them)",
                count(report.rewritten)
            )?;
        }
        if let Some(v) = &verify {
            outln!(
                "verify: {} commits, {} trees, {} files compared, {} differences",
                count(v.commits),
                count(v.trees),
                count(v.files),
                count(v.differences.len() as u64)
            )?;
            for d in &v.differences {
                outln!(
                    "  {} {}: {}",
                    d.commit.to_hex(),
                    String::from_utf8_lossy(&d.path),
                    d.what
                )?;
            }
        }
    }
    for r in &report.refused {
        eprintln!(
            "refused {}: it is at {} here, which the import does not contain; git has {}",
            r.name,
            r.local.id().short(),
            r.imported.id().short()
        );
    }
    if !report.refused.is_empty() {
        return Err(tagged(
            Kind::Refused,
            format!(
                "{} ref(s) left where they were (everything else was imported); rerun with \
                 `--rename-refused git/` to import them under other names, or `--force` to \
                 move them (the old heads stay in `heroctl reflog`)",
                report.refused.len()
            ),
        ));
    }
    if let Some(v) = verify
        && !v.is_ok()
    {
        return Err(tagged(
            Kind::Corrupt,
            format!(
                "the import differs from git in {} places",
                v.differences.len()
            ),
        ));
    }
    Ok(())
}

/// Runs `export ...`.
pub fn export(repo: &Repo, kind: ExportKind, json: bool) -> Result<()> {
    let ExportKind::Git(a) = kind;
    export_one(repo, &a.dir, &a, json)
}

fn export_one(repo: &Repo, dir: &Path, a: &ExportGitArgs, json: bool) -> Result<()> {
    let opts = ExportOptions {
        branch_prefix: a.branch_prefix.clone(),
        tag_prefix: a.tag_prefix.clone(),
        ..ExportOptions::default()
    };
    let start = Instant::now();
    let report =
        export_git(repo, dir, &opts).with_context(|| format!("exporting to {}", dir.display()))?;
    let secs = start.elapsed().as_secs_f64();
    if json {
        print_json(&json!({
            "commits": report.commits,
            "trees": report.trees,
            "blobs": report.blobs,
            "tags": report.tags,
            "original_ids": report.original_ids,
            "refs": report.refs,
            "pack": report.pack.as_ref().map(|p| p.display().to_string()),
            "pack_bytes": report.pack_bytes,
            "deltas": report.deltas,
            "seconds": secs,
        }))?;
    } else {
        outln!(
            "exported {} commits, {} trees, {} blobs, {} tags, {} refs to {} in {secs:.1} s ({} objects kept their git id)",
            count(report.commits),
            count(report.trees),
            count(report.blobs),
            count(report.tags),
            count(report.refs),
            dir.display(),
            count(report.original_ids)
        )?;
        match &report.pack {
            Some(p) => outln!(
                "pack {} ({}, {} deltas)",
                p.display(),
                bytes(report.pack_bytes),
                count(report.deltas)
            )?,
            None => outln!("nothing new: no pack written")?,
        }
    }
    Ok(())
}
