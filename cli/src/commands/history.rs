//! Finding and restoring earlier states: `reflog`, `restore`, `revert`, `undo`.
//!
//! Nothing here rewrites history: `restore` and `revert` make new commits, `undo` moves a
//! branch back by compare-and-swap and is itself a move in the reflog (so it can be undone).

use crate::context::{files_at, new_meta, writable_branch};
use crate::error::{Kind, tagged};
use crate::output::{outln, print_json};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use hero_store::{EntryKind, RefValue, Repo, RepoPath, TreeEntry, View};
use serde_json::json;

/// Commands that find and restore earlier states.
#[derive(Subcommand, Debug)]
pub enum HistoryCommand {
    /// Every move of a branch or tag: when, by which command or peer, from what to what.
    Reflog(ReflogArgs),
    /// Put paths back as they were at a revision, as a new commit on the branch.
    Restore(RestoreArgs),
    /// Make a commit on the branch that undoes one commit.
    Revert(RevertArgs),
    /// Move a branch back to where it was before the last command that moved it (an undo is
    /// itself a move: `undo` again redoes).
    Undo(UndoArgs),
}

/// Arguments of `reflog`.
#[derive(Args, Debug)]
pub struct ReflogArgs {
    /// A branch or tag (`main`, `v1`, `refs/heads/main`; default: the default branch).
    pub refname: Option<String>,
    /// At most this many moves, newest first.
    #[arg(short = 'n', long)]
    pub limit: Option<usize>,
}

/// Arguments of `restore`.
#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Paths (files or directories) to put back.
    #[arg(required = true)]
    pub paths: Vec<String>,
    /// The revision they are taken from (default: the branch's previous commit).
    #[arg(long)]
    pub rev: Option<String>,
    /// The branch the commit goes on (default: the default branch).
    #[arg(short, long)]
    pub branch: Option<String>,
    /// The commit message.
    #[arg(short, long)]
    pub message: Option<String>,
}

/// Arguments of `revert`.
#[derive(Args, Debug)]
pub struct RevertArgs {
    /// The commit to undo.
    pub rev: String,
    /// The branch the commit goes on (default: the default branch).
    #[arg(short, long)]
    pub branch: Option<String>,
}

/// Arguments of `undo`.
#[derive(Args, Debug)]
pub struct UndoArgs {
    /// The branch (default: the default branch).
    #[arg(short, long)]
    pub branch: Option<String>,
}

/// Runs one of the history commands.
pub fn run(repo: &Repo, cmd: HistoryCommand, json: bool) -> Result<()> {
    match cmd {
        HistoryCommand::Reflog(a) => reflog(repo, a, json),
        HistoryCommand::Restore(a) => restore(repo, a, json),
        HistoryCommand::Revert(a) => revert(repo, a, json),
        HistoryCommand::Undo(a) => undo(repo, a, json),
    }
}

/// `main` -> `refs/heads/main` (or `refs/tags/main` when only that tag exists).
fn full_refname(view: &View, name: &str) -> Result<String> {
    if name.starts_with("refs/") {
        return Ok(name.to_owned());
    }
    let branch = hero_store::branch_ref(name)?;
    let tag = hero_store::tag_ref(name)?;
    if view.get_ref(&branch)?.is_none() && view.get_ref(&tag)?.is_some() {
        return Ok(tag);
    }
    Ok(branch)
}

fn value_hex(v: &Option<RefValue>) -> Option<String> {
    v.map(|v| v.id().to_hex())
}

fn value_short(v: &Option<RefValue>) -> String {
    v.map_or_else(|| "(none)".to_owned(), |v| v.id().short())
}

fn show_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| t.to_string())
}

fn reflog(repo: &Repo, a: ReflogArgs, json: bool) -> Result<()> {
    let view = repo.view()?;
    let name = match a.refname {
        Some(n) => n,
        None => view.default_branch()?,
    };
    let refname = full_refname(&view, &name)?;
    let mut moves = view.reflog(&refname)?;
    moves.reverse();
    if let Some(n) = a.limit {
        moves.truncate(n);
    }
    if json {
        let items: Vec<_> = moves
            .iter()
            .map(|m| {
                json!({
                    "ref": refname,
                    "time": m.time,
                    "reason": m.reason,
                    "old": value_hex(&m.old),
                    "new": value_hex(&m.new),
                })
            })
            .collect();
        return print_json(&serde_json::Value::Array(items));
    }
    if moves.is_empty() {
        outln!("{refname}: no moves recorded")?;
    }
    for m in &moves {
        outln!(
            "{}  {} -> {}  {}",
            show_time(m.time),
            value_short(&m.old),
            value_short(&m.new),
            m.reason
        )?;
    }
    Ok(())
}

fn restore(repo: &Repo, a: RestoreArgs, json: bool) -> Result<()> {
    let branch = writable_branch(repo, a.branch)?;
    let view = repo.view()?;
    let head = view
        .branch_head(&branch)?
        .with_context(|| format!("no branch {branch}"))?;
    let rev = a.rev.unwrap_or_else(|| format!("{}~1", head.to_hex()));
    let from = view
        .resolve(&rev)
        .with_context(|| format!("resolving {rev}"))?;
    let mut cs = repo.change_set(&branch)?;
    let mut changed = 0usize;
    for p in &a.paths {
        let path = RepoPath::parse(p.trim_matches('/'))?;
        let then = files_at(&view, &from, &path)?;
        let now = files_at(&view, &head, &path)?;
        if then.is_empty() && now.is_empty() {
            bail!("{p}: in neither {} nor {}", from.short(), head.short());
        }
        for (q, _) in &now {
            if !then.iter().any(|(t, _)| t == q) {
                cs.delete(q)?;
                changed += 1;
            }
        }
        for (q, e) in then {
            if now.iter().any(|(n, ne)| *n == q && ne == &e) {
                continue;
            }
            cs.put_tree_entry(&q, &e)?;
            changed += 1;
        }
    }
    if changed == 0 {
        if json {
            print_json(&json!({"commit": null, "branch": branch, "changed": 0}))?;
        } else {
            outln!(
                "nothing to restore: {} already matches {}",
                branch,
                from.short()
            )?;
        }
        return Ok(());
    }
    let message = a
        .message
        .unwrap_or_else(|| format!("restore {} as at {}", a.paths.join(", "), from.short()));
    crate::authority::check_paths(repo, cs.touched_paths())?;
    let done =
        crate::commands::check::commit_validated(repo, cs, &branch, new_meta(repo, message)?)?;
    if json {
        print_json(&json!({"commit": done.id.to_hex(), "branch": branch, "changed": changed}))?;
    } else {
        outln!(
            "[{branch} {}] restored {changed} file(s) as at {}",
            done.id.short(),
            from.short()
        )?;
    }
    Ok(())
}

fn revert(repo: &Repo, a: RevertArgs, json: bool) -> Result<()> {
    let branch = writable_branch(repo, a.branch)?;
    let view = repo.view()?;
    let head = view
        .branch_head(&branch)?
        .with_context(|| format!("no branch {branch}"))?;
    let target = view
        .resolve(&a.rev)
        .with_context(|| format!("resolving {}", a.rev))?;
    let commit = view.commit(&target)?;
    if commit.parents.len() > 1 {
        bail!(
            "{} is a merge; restore the paths you mean with `heroctl restore --rev REV PATH`",
            target.short()
        );
    }
    let parent = commit.parents.first().copied();
    let mut cs = repo.change_set(&branch)?;
    let mut conflicts = Vec::new();
    let mut changed = 0usize;
    for d in view.diff_commits(parent, &target)? {
        let now = view.entry_in_commit(&head, &d.path)?;
        let same = |x: &Option<TreeEntry>, y: &Option<TreeEntry>| match (x, y) {
            (Some(x), Some(y)) => x.id == y.id && x.kind == y.kind && x.meta == y.meta,
            (None, None) => true,
            _ => false,
        };
        if same(&now, &d.old) {
            continue;
        }
        if same(&now, &d.new) {
            // Unchanged since: put the old version back.
            match &d.old {
                Some(e) if e.kind == EntryKind::Dir => cs.set_meta(&d.path, e.meta)?,
                Some(e) => cs.put_tree_entry(&d.path, e)?,
                None => cs.delete(&d.path)?,
            }
            changed += 1;
            continue;
        }
        // Changed since: merge the text of the undo into today's version, if it can be.
        let read = |e: &Option<TreeEntry>| -> Result<Option<Vec<u8>>> {
            match e {
                Some(e) if e.kind.is_blob() => Ok(Some(view.read_file(&e.id, 16 << 20)?)),
                _ => Ok(None),
            }
        };
        match (read(&d.new)?, read(&now)?, read(&d.old)?, &now) {
            (Some(base), Some(ours), Some(theirs), Some(e)) => {
                match hero_store::merge::merge_text(&base, &ours, &theirs) {
                    Some(merged) => {
                        cs.put_bytes(&d.path, e.kind, &merged)?;
                        changed += 1;
                    }
                    None => conflicts.push(d.path.to_string()),
                }
            }
            _ => conflicts.push(d.path.to_string()),
        }
    }
    if !conflicts.is_empty() {
        return Err(tagged(
            Kind::Refused,
            format!(
                "cannot revert {}: these paths changed since in ways that overlap the undo: {} \
             (nothing was committed; restore them by hand with `heroctl restore --rev {} PATH`)",
                target.short(),
                conflicts.join(", "),
                parent.map_or_else(|| "REV".to_owned(), |p| p.short())
            ),
        ));
    }
    if changed == 0 {
        bail!(
            "nothing to revert: {branch} no longer holds what {} changed",
            target.short()
        );
    }
    let summary = String::from_utf8_lossy(&commit.message)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    let message = format!("revert {}: {summary}", target.short());
    crate::authority::check_paths(repo, cs.touched_paths())?;
    let done =
        crate::commands::check::commit_validated(repo, cs, &branch, new_meta(repo, message)?)?;
    if json {
        print_json(
            &json!({"commit": done.id.to_hex(), "branch": branch, "reverted": target.to_hex(), "changed": changed}),
        )?;
    } else {
        outln!(
            "[{branch} {}] reverted {} ({changed} file(s))",
            done.id.short(),
            target.short()
        )?;
    }
    Ok(())
}

fn undo(repo: &Repo, a: UndoArgs, json: bool) -> Result<()> {
    let branch = writable_branch(repo, a.branch)?;
    let refname = hero_store::branch_ref(&branch)?;
    let view = repo.view()?;
    let moves = view.reflog(&refname)?;
    let Some(last) = moves.last() else {
        return Err(tagged(
            Kind::NotFound,
            format!("{branch} has no recorded move to undo"),
        ));
    };
    let head = view.branch_head(&branch)?;
    if last.new.map(|v| v.id()) != head {
        bail!("{branch} moved without a reflog entry; nothing is undone");
    }
    let Some(old) = last.old else {
        bail!(
            "the last move created {branch}; delete it with `heroctl branch -d {branch}` if that \
             is what you mean"
        );
    };
    let reason = format!("undo {}", last.reason);
    if let Some(h) = head {
        crate::authority::check_move(repo, Some(h), &old.id())?;
    }
    repo.update_branch(&branch, head, Some(old.id()), &reason)
        .with_context(|| format!("moving {branch} back"))?;
    if json {
        print_json(
            &json!({"branch": branch, "from": head.map(|h| h.to_hex()), "to": old.id().to_hex(), "undid": last.reason}),
        )?;
    } else {
        outln!(
            "{branch}: {} -> {} (undid: {})",
            head.map_or_else(|| "(none)".to_owned(), |h| h.short()),
            old.id().short(),
            last.reason
        )?;
    }
    Ok(())
}
