//! Directories on disk that follow a branch: `commit DIR`, `update DIR`, and the record a
//! checkout leaves (`.herocheckout`: the branch and the commit the directory came from).
//!
//! A commit never silently undoes changes it did not make: a directory with a record commits
//! only what changed in it since its base, merged onto the branch's head with the rules and
//! conflict copies of sync; a directory without one may replace a branch only when the branch
//! is empty or `--replace` says so.

use crate::context::{files_at, files_below, new_meta, writable_branch};
use crate::error::{Kind, tagged};
use crate::output::{bytes, count, outln, print_json, progress_bar};
use anyhow::{Context, Result, bail};
use clap::Args;
use hero_store::{CheckoutOptions, CheckoutRecord, ObjectId, Repo, RepoPath, SnapshotOptions};
use serde_json::json;
use std::path::{Path, PathBuf};

/// Arguments of `commit`.
#[derive(Args, Debug)]
pub struct CommitArgs {
    /// The directory to snapshot.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The branch (default: the repository's default branch).
    #[arg(short, long)]
    pub branch: Option<String>,
    /// The message.
    #[arg(short, long, default_value = "snapshot")]
    pub message: String,
    /// Commit even if nothing changed.
    #[arg(long)]
    pub allow_empty: bool,
    /// Make the branch exactly the directory, even when the directory was not checked out from
    /// it (files of the branch that are not in the directory are deleted).
    #[arg(long, conflicts_with = "prefix")]
    pub replace: bool,
    /// Put the directory's files under this path of the branch (replacing what is there),
    /// leaving the rest of the branch alone.
    #[arg(long, value_name = "PATH")]
    pub prefix: Option<String>,
}

/// Arguments of `update`.
#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// The checked-out directory.
    #[arg(default_value = ".")]
    pub dir: std::path::PathBuf,
}

fn ensure_dir(dir: &Path) -> Result<()> {
    let md = std::fs::metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    if !md.is_dir() {
        bail!(
            "{}: not a directory (commit takes the directory to snapshot)",
            dir.display()
        );
    }
    Ok(())
}

/// `commit DIR --prefix PATH`: the branch's PATH becomes exactly the directory.
fn commit_under(repo: &Repo, a: &CommitArgs, prefix: &str, branch: &str, json: bool) -> Result<()> {
    let prefix = RepoPath::parse(prefix.trim_matches('/'))?;
    let m = new_meta(repo, a.message.clone())?;
    let snap = repo
        .snapshot_onto(&a.dir, None, m.clone(), &SnapshotOptions::default())
        .with_context(|| format!("snapshotting {}", a.dir.display()))?;
    let view = repo.view()?;
    let mut theirs = Vec::new();
    files_below(
        &view,
        &prefix,
        &view.commit(&snap.committed.id)?.tree,
        &mut theirs,
    )?;
    let mut cs = repo.change_set(branch)?;
    let mut ours = Vec::new();
    if let Some(head) = view.branch_head(branch)? {
        match view.entry_in_commit(&head, &prefix)? {
            Some(e) if e.kind == hero_store::EntryKind::Dir => {
                files_below(&view, &prefix, &e.id, &mut ours)?
            }
            Some(_) => bail!("{prefix} is a file in {branch}, not a directory"),
            None => {}
        }
    }
    let mut changed = 0usize;
    for (p, _) in &ours {
        if !theirs.iter().any(|(q, _)| q == p) {
            cs.delete(p)?;
            changed += 1;
        }
    }
    for (p, e) in &theirs {
        if ours.iter().any(|(q, o)| q == p && o == e) {
            continue;
        }
        cs.put_tree_entry(p, e)?;
        changed += 1;
    }
    if changed == 0 && !a.allow_empty {
        if json {
            return print_json(
                &json!({"created": false, "branch": branch, "prefix": prefix.to_string()}),
            );
        }
        outln!("nothing changed under {prefix} in {branch}")?;
        return Ok(());
    }
    crate::authority::check_paths(repo, cs.touched_paths())?;
    let done = crate::commands::check::commit_validated(repo, cs, branch, m)?;
    if json {
        return print_json(&json!({
            "commit": done.id.to_hex(),
            "created": true,
            "branch": branch,
            "prefix": prefix.to_string(),
            "changed": changed,
        }));
    }
    outln!(
        "[{branch} {}] {changed} file(s) changed under {prefix}",
        done.id.short()
    )?;
    Ok(())
}

/// The checkout record of `dir`, checked against `repo`: a record whose base commit this
/// repository does not hold was left by another repository (one deleted and created again at
/// the same path, or a directory checked out from elsewhere) — said plainly, with the way out.
pub fn read_record(repo: &Repo, dir: &Path) -> Result<Option<CheckoutRecord>> {
    let Some(rec) = CheckoutRecord::read(dir)? else {
        return Ok(None);
    };
    if !repo.has_object(&rec.base)? {
        return Err(crate::error::tagged_hint(
            Kind::Refused,
            format!(
                "{} was checked out from another repository: its {} names commit {}, which {} \
                 does not hold",
                dir.display(),
                hero_store::CHECKOUT_RECORD,
                rec.base.short(),
                repo.path().display()
            ),
            format!(
                "to commit the directory as it is into this repository, delete {} (then \
                 `heroctl commit DIR`, with --replace or --prefix if the branch holds other \
                 files); or check the branch out into a new directory",
                dir.join(hero_store::CHECKOUT_RECORD).display()
            ),
        ));
    }
    Ok(Some(rec))
}

/// Runs `commit DIR`.
pub fn commit(repo: &Repo, a: CommitArgs, json: bool) -> Result<()> {
    ensure_dir(&a.dir)?;
    if let Some(prefix) = a.prefix.clone() {
        let branch = writable_branch(repo, a.branch.clone())?;
        return commit_under(repo, &a, &prefix, &branch, json);
    }
    let record = read_record(repo, &a.dir)?;
    let branch = match (a.branch, record.as_ref().and_then(|r| r.branch.clone())) {
        (Some(b), _) | (None, Some(b)) => b,
        (None, None) => writable_branch(repo, None)?,
    };
    // A directory checked out from hero's own branch (the membership) is a copy to read.
    crate::context::check_writable(&branch)?;
    let bar = progress_bar(json, "snapshot");
    let cb = |p: hero_store::Progress| {
        if let Some(t) = p.total {
            bar.set_length(t);
        }
        bar.set_position(p.done);
    };
    let opts = SnapshotOptions {
        progress: Some(&cb),
        allow_empty: a.allow_empty,
    };
    let meta = new_meta(repo, a.message)?;
    let head = repo.branch_head(&branch)?;
    let (new, how, conflicts, report) = match record {
        Some(rec) if !a.replace => {
            let r = repo
                .snapshot_onto(&a.dir, Some(rec.base), meta, &opts)
                .with_context(|| format!("snapshotting {}", a.dir.display()))?;
            let mine = r.committed.id;
            let (new, how, conflicts) = if !r.committed.created {
                (head.unwrap_or(mine), "nothing changed", 0)
            } else {
                match head {
                    None => (mine, "created", 0),
                    Some(h) if h == rec.base => (mine, "fast-forward", 0),
                    Some(h) => {
                        let out = hero_store::merge::merge(repo, h, mine).with_context(|| {
                            format!("merging {} into {branch}", a.dir.display())
                        })?;
                        let how = match out.kind {
                            hero_store::merge::MergeKind::Merged => "merged",
                            hero_store::merge::MergeKind::FastForward => "fast-forward",
                            _ => "nothing changed",
                        };
                        (out.commit, how, out.conflicts.len())
                    }
                }
            };
            if Some(new) != head {
                crate::authority::check_move(repo, head, &new)?;
                crate::commands::check::move_validated(repo, &branch, head, new, "commit")?;
            }
            // The directory's content is `mine`: later commits and `status` start from it.
            CheckoutRecord {
                branch: Some(branch.clone()),
                base: mine,
            }
            .write(&a.dir)?;
            (new, how, conflicts, r)
        }
        _ => {
            if let (Some(h), false) = (head, a.replace) {
                let n = files_at(&repo.view()?, &h, &RepoPath::root())?.len();
                if n > 0 {
                    bar.finish_and_clear();
                    return Err(tagged(
                        Kind::Refused,
                        format!(
                            "{branch} holds {n} file(s) and {} was never checked out from it: \
                         committing it would replace them all. To add to them, check the \
                         branch out (`heroctl checkout {branch} NEWDIR`), copy your files in and \
                         commit NEWDIR; to put it under a path of {branch}, add --prefix PATH; to \
                         make {branch} exactly this directory, add --replace",
                            a.dir.display()
                        ),
                    ));
                }
            }
            let r = repo
                .snapshot_onto(&a.dir, head, meta, &opts)
                .with_context(|| format!("snapshotting {}", a.dir.display()))?;
            if r.committed.created {
                crate::authority::check_move(repo, head, &r.committed.id)?;
                crate::commands::check::move_validated(
                    repo,
                    &branch,
                    head,
                    r.committed.id,
                    "snapshot",
                )?;
            }
            CheckoutRecord {
                branch: Some(branch.clone()),
                base: r.committed.id,
            }
            .write(&a.dir)?;
            let how = if !r.committed.created {
                "nothing changed"
            } else if head.is_some() {
                "replaced"
            } else {
                "created"
            };
            (r.committed.id, how, 0, r)
        }
    };
    bar.finish_and_clear();
    if json {
        return print_json(&json!({
            "commit": new.to_hex(),
            "created": report.committed.created,
            "branch": branch,
            "how": how,
            "conflicts": conflicts,
            "files": report.files,
            "dirs": report.dirs,
            "bytes": report.bytes,
        }));
    }
    if !report.committed.created {
        outln!("nothing changed; {branch} stays at {}", new.short())?;
        return Ok(());
    }
    outln!(
        "[{branch} {}] {} files, {} directories, {} ({how})",
        new.short(),
        count(report.files),
        count(report.dirs),
        bytes(report.bytes)
    )?;
    if how == "merged" {
        outln!(
            "  {branch} had moved: merged with {conflicts} conflict(s) (both versions kept); \
             `heroctl update {}` brings the others' changes into the directory",
            a.dir.display()
        )?;
    }
    Ok(())
}

/// Runs `update DIR`: merges the branch's new commits into the directory, keeping local edits.
pub fn update(repo: &Repo, a: UpdateArgs, json: bool) -> Result<()> {
    ensure_dir(&a.dir)?;
    let Some(rec) = read_record(repo, &a.dir)? else {
        return Err(tagged(
            Kind::NotFound,
            format!(
                "{} was not checked out (no {}): nothing to update it from",
                a.dir.display(),
                hero_store::CHECKOUT_RECORD
            ),
        ));
    };
    let Some(branch) = rec.branch.clone() else {
        bail!(
            "{} was checked out at a commit, not a branch: nothing to follow",
            a.dir.display()
        );
    };
    let head = repo
        .branch_head(&branch)?
        .with_context(|| format!("no branch {branch}"))?;
    let local = repo
        .snapshot_onto(
            &a.dir,
            Some(rec.base),
            new_meta(repo, format!("local changes in {}", a.dir.display()))?,
            &SnapshotOptions::default(),
        )
        .with_context(|| format!("snapshotting {}", a.dir.display()))?;
    let mine = local.committed.id;
    let (target, conflicts) = if head == rec.base || head == mine {
        (mine, 0)
    } else if !local.committed.created {
        (head, 0)
    } else {
        let out = hero_store::merge::merge(repo, head, mine)
            .with_context(|| format!("merging {branch} into {}", a.dir.display()))?;
        (out.commit, out.conflicts.len())
    };
    if target != mine {
        // Files the target no longer holds go; then everything it holds is written.
        let view = repo.view()?;
        for d in view.diff_commits(Some(mine), &target)? {
            // A `.git` in the tree was never written here: what is at its place is not ours.
            if d.new.is_none()
                && d.old.as_ref().is_some_and(|e| e.kind.is_blob())
                && !d.path.names().iter().any(|n| hero_store::is_git_unsafe(n))
            {
                let p = a.dir.join(d.path.to_string());
                match std::fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e).with_context(|| format!("removing {}", p.display())),
                }
            }
        }
        repo.checkout(
            &target,
            &a.dir,
            &CheckoutOptions {
                force: true,
                progress: None,
            },
        )
        .with_context(|| format!("writing {} into {}", target.short(), a.dir.display()))?;
    }
    CheckoutRecord {
        branch: Some(branch.clone()),
        base: target,
    }
    .write(&a.dir)?;
    if json {
        return print_json(&json!({
            "branch": branch,
            "base": target.to_hex(),
            "conflicts": conflicts,
            "up_to_date": target == mine,
        }));
    }
    if target == mine {
        outln!("{} is up to date with {branch}", a.dir.display())?;
    } else {
        outln!(
            "{} updated to {branch} ({}){}",
            a.dir.display(),
            target.short(),
            if conflicts > 0 {
                format!(
                    "; {conflicts} conflict(s): both versions kept side by side, see \
                     `heroctl conflicts {branch}`"
                )
            } else {
                String::new()
            }
        )?;
    }
    Ok(())
}

/// After `checkout REV DIR`: remember where the directory came from.
pub fn remember_checkout(repo: &Repo, rev: &str, commit: ObjectId, dir: &Path) -> Result<()> {
    let branch = if rev == "HEAD" {
        Some(repo.default_branch()?)
    } else if repo.branch_head(rev)? == Some(commit) {
        Some(rev.to_owned())
    } else {
        None
    };
    CheckoutRecord {
        branch,
        base: commit,
    }
    .write(dir)
    .context("recording where the directory came from")
}
