//! `heroctl check [REV]`: every structured file of a revision must parse, and the schemas that
//! revision keeps under `.hero/schemas/` add their rules; `.hero/daemon.toml` must be a
//! configuration the daemon takes. The same checks run on the files a commit changes, before
//! the branch moves ([`check_move`]): a `refuse` rule refuses the commit, a `warn` rule and a
//! file no rule names only warn (docs/structured-files.md, "Schemas").

use anyhow::{Context, Result};
use clap::Args;
use hero_formats::{Format, Mode, Rule, Schema, Span};
use hero_store::{EntryKind, ObjectId, Repo, RepoPath, TreeEntry, View};
use serde_json::json;

use crate::commands::daemon::config;
use crate::commands::get::MAX_STRUCTURED_BYTES;
use crate::context::files_at;
use crate::error::{Kind, tagged, tagged_hint};
use crate::output::{outln, print_json};

/// Where schemas live.
pub const SCHEMA_DIR: &str = ".hero/schemas";

/// Arguments of `check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The revision (default: the default branch).
    #[arg(default_value = "HEAD")]
    pub rev: String,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Fails `check`; refuses a commit.
    Error,
    /// Reported only.
    Warning,
}

/// One thing wrong with one file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    /// The file's path in the tree.
    pub path: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
    /// How bad.
    pub severity: Severity,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let warning = match self.severity {
            Severity::Error => "",
            Severity::Warning => "warning: ",
        };
        write!(
            f,
            "{}:{}:{}: {warning}{}",
            self.path, self.line, self.column, self.message
        )
    }
}

/// The schemas of a revision, and the findings of the schema files that are not schemas.
pub struct Checker {
    rules: Vec<Rule>,
    /// This node's names, for `.hero/daemon.toml`.
    names: config::NodeNames,
}

fn finding(path: &str, at: Span, severity: Severity, message: String) -> Finding {
    Finding {
        path: path.to_string(),
        line: at.line,
        column: at.column,
        severity,
        message,
    }
}

impl Checker {
    /// Reads the schemas of `commit`; a schema file that is not one is an error finding.
    pub fn at(repo: &Repo, view: &View, commit: &ObjectId) -> Result<(Checker, Vec<Finding>)> {
        let mut rules = Vec::new();
        let mut findings = Vec::new();
        for (path, entry) in files_at(view, commit, &RepoPath::parse(SCHEMA_DIR)?)? {
            let shown = path.to_string();
            if !is_file(entry.kind) || !shown.ends_with(".toml") {
                continue;
            }
            let bytes = view.read_file(&entry.id, MAX_STRUCTURED_BYTES)?;
            match Schema::parse(&bytes) {
                Ok(s) => rules.extend(s.rules),
                Err(e) => findings.push(finding(
                    &shown,
                    e.span(),
                    Severity::Error,
                    format!("not a schema: {e}"),
                )),
            }
        }
        let id = hero_sync::endpoint_id(repo.path())
            .map(|i| i.to_string())
            .unwrap_or_default();
        let names = config::NodeNames::here(id);
        Ok((Checker { rules, names }, findings))
    }

    /// Checks one file. A file that does not parse (or a daemon configuration the daemon
    /// refuses) is `unparsed`'s severity unless a `refuse` rule names the file.
    pub fn check_file(&self, path: &str, bytes: &[u8], unparsed: Severity) -> Vec<Finding> {
        let Some(format) = Format::detect(path, bytes) else {
            return Vec::new();
        };
        let rules: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|r| hero_sync::membership::scope_matches(&r.glob, path))
            .collect();
        let unparsed = if rules.iter().any(|r| r.mode == Mode::Refuse) {
            Severity::Error
        } else {
            unparsed
        };
        let doc = match hero_formats::parse(format, bytes) {
            Ok(d) => d,
            Err(e) => {
                // The position is the finding's own; the message need not repeat it.
                let message = e.to_string().replacen(&format!("{}: ", e.span()), "", 1);
                return vec![finding(path, e.span(), unparsed, message)];
            }
        };
        let mut out = Vec::new();
        if path == config::CONFIG_PATH
            && let Err(e) = config::parse_bytes(bytes, path, &self.names)
        {
            let at = Span::new(e.line.unwrap_or(1), e.column.unwrap_or(1));
            out.push(finding(path, at, unparsed, e.message));
        }
        for rule in rules {
            let severity = match rule.mode {
                Mode::Refuse => Severity::Error,
                Mode::Warn => Severity::Warning,
            };
            for p in rule.check(&doc) {
                out.push(finding(path, p.span, severity, p.message));
            }
        }
        out
    }
}

fn is_file(kind: EntryKind) -> bool {
    matches!(kind, EntryKind::File | EntryKind::Executable)
}

/// The bytes of a file to check, or a warning that it is too large to parse.
fn read_checked(
    view: &View,
    entry: &TreeEntry,
    path: &str,
) -> Result<std::result::Result<Vec<u8>, Finding>> {
    if entry.size > MAX_STRUCTURED_BYTES {
        return Ok(Err(finding(
            path,
            Span::START,
            Severity::Warning,
            format!(
                "not checked: {} bytes, more than the {MAX_STRUCTURED_BYTES} parsed",
                entry.size
            ),
        )));
    }
    Ok(Ok(view.read_file(&entry.id, MAX_STRUCTURED_BYTES)?))
}

/// Every finding in the tree of `commit`, files in path order.
pub fn check_commit(repo: &Repo, commit: &ObjectId) -> Result<Vec<Finding>> {
    let view = repo.view()?;
    let (checker, mut findings) = Checker::at(repo, &view, commit)?;
    for (path, entry) in files_at(&view, commit, &RepoPath::root())? {
        let shown = path.to_string();
        if !is_file(entry.kind) || Format::from_path(&shown).is_none() {
            continue;
        }
        match read_checked(&view, &entry, &shown)? {
            Ok(bytes) => findings.extend(checker.check_file(&shown, &bytes, Severity::Error)),
            Err(too_large) => findings.push(too_large),
        }
    }
    Ok(findings)
}

/// The findings of the structured files that change from `old` to `new`, checked against
/// the schemas of `new` (the schema files among them included: one that is not a schema is an
/// error).
pub fn check_changes(repo: &Repo, old: Option<ObjectId>, new: &ObjectId) -> Result<Vec<Finding>> {
    if old == Some(*new) {
        return Ok(Vec::new());
    }
    let view = repo.view()?;
    let diff = view.diff_commits(old, new)?;
    let (checker, schema_findings) = Checker::at(repo, &view, new)?;
    // A schema file that is not one counts where it changes, not in every later change.
    let mut findings: Vec<Finding> = schema_findings
        .into_iter()
        .filter(|f| diff.iter().any(|d| d.path.to_string() == f.path))
        .collect();
    for d in diff {
        let Some(entry) = d.new.filter(|e| is_file(e.kind)) else {
            continue;
        };
        let shown = d.path.to_string();
        if Format::from_path(&shown).is_none() {
            continue;
        }
        match read_checked(&view, &entry, &shown)? {
            Ok(bytes) => findings.extend(checker.check_file(&shown, &bytes, Severity::Warning)),
            Err(too_large) => findings.push(too_large),
        }
    }
    Ok(findings)
}

/// The findings of the tree at `new`, from `known`, those of the tree at `old`: the files that
/// change between them are checked again (against the schemas of `new`), the others keep
/// their findings; without `old`, the whole tree is checked. Returns the fresh findings.
/// What the daemon keeps for its status (a file untouched keeps the verdict of the schemas
/// it was checked against).
pub fn refresh(
    repo: &Repo,
    old: Option<ObjectId>,
    new: &ObjectId,
    known: &mut Vec<Finding>,
) -> Result<Vec<Finding>> {
    let Some(old) = old else {
        *known = check_commit(repo, new)?;
        return Ok(known.clone());
    };
    let changed: std::collections::BTreeSet<String> = repo
        .view()?
        .diff_commits(Some(old), new)?
        .into_iter()
        .map(|d| d.path.to_string())
        .collect();
    known.retain(|f| !changed.contains(&f.path));
    let fresh = check_changes(repo, Some(old), new)?;
    known.extend(fresh.iter().cloned());
    known.sort_by(|a, b| (&a.path, a.line, a.column).cmp(&(&b.path, b.line, b.column)));
    Ok(fresh)
}

/// Before a branch moves from `old` to `new`: prints the warnings on stderr and refuses (exit
/// 2, with every error printed) when a changed file breaks a `refuse` rule.
pub fn check_move(repo: &Repo, old: Option<ObjectId>, new: &ObjectId) -> Result<()> {
    let findings = check_changes(repo, old, new).context("validating the changed files")?;
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    for f in &findings {
        eprintln!("{f}");
    }
    if errors == 0 {
        return Ok(());
    }
    Err(tagged_hint(
        Kind::Usage,
        format!("{errors} problem(s) in the changed files: nothing was committed"),
        format!(
            "fix the files (or the rules under {SCHEMA_DIR}/, whose `mode = \"warn\"` lets a \
             change through with a warning) and commit again"
        ),
    ))
}

/// Starts a thread that checks each move of `branch` of the repository at `path` against its
/// schemas, as the daemon does, and logs every problem as a warning: what a standalone mount
/// or share lets in is reported where it is run. Reads the branch again every `every`
/// (a cheap generation check first); the first look checks the whole tree.
pub fn watch_branch(
    path: &std::path::Path,
    branch: String,
    every: std::time::Duration,
) -> Result<()> {
    let repo = Repo::open(path)?;
    std::thread::Builder::new()
        .name("validate".into())
        .spawn(move || {
            let mut known = Vec::new();
            let mut seen: Option<ObjectId> = None;
            let mut generation = None;
            loop {
                let now = repo.generation().ok();
                if now.is_none() || now != generation {
                    generation = now;
                    match repo.branch_head(&branch) {
                        Ok(Some(head)) if Some(head) != seen => {
                            match refresh(&repo, seen, &head, &mut known) {
                                Ok(fresh) => {
                                    for f in &fresh {
                                        tracing::warn!("{branch} at {}: {f}", head.short());
                                    }
                                }
                                Err(e) => tracing::warn!(
                                    "checking {} against its schemas: {e:#}",
                                    head.short()
                                ),
                            }
                            seen = Some(head);
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!("reading {branch}: {e}"),
                    }
                }
                std::thread::sleep(every);
            }
        })
        .context("starting the validation thread")?;
    Ok(())
}

/// Commits a change set onto `branch` only when the files it changes keep the schemas
/// ([`check_move`]): the commit is written, checked, and the branch moved from the change
/// set's base (a branch that moved meanwhile is an error: run the command again).
pub fn commit_validated(
    repo: &Repo,
    cs: hero_store::ChangeSet<'_>,
    branch: &str,
    meta: hero_store::CommitMeta,
) -> Result<hero_store::Committed> {
    let head = cs.base();
    let done = cs
        .commit_unattached(meta)
        .with_context(|| format!("committing onto {branch}"))?;
    if done.created {
        move_validated(repo, branch, head, done.id, "commit")?;
    }
    Ok(done)
}

/// Moves `branch` from `old` to `new` (compare-and-swap) once the files the move changes keep
/// the schemas ([`check_move`]).
pub fn move_validated(
    repo: &Repo,
    branch: &str,
    old: Option<ObjectId>,
    new: ObjectId,
    reason: &str,
) -> Result<()> {
    check_move(repo, old, &new)?;
    repo.update_branch(branch, old, Some(new), reason)
        .with_context(|| format!("{branch} moved while committing; run the commit again"))
}

/// Runs `check`.
pub fn run(repo: &Repo, a: CheckArgs, json: bool) -> Result<()> {
    let commit = repo.view()?.resolve(&a.rev)?;
    let findings = check_commit(repo, &commit)?;
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    if json {
        print_json(&json!({
            "rev": a.rev,
            "commit": commit.to_hex(),
            "valid": errors == 0,
            "problems": findings,
        }))?;
    } else {
        for f in &findings {
            outln!("{f}")?;
        }
    }
    if errors > 0 {
        return Err(tagged(
            Kind::Usage,
            format!("{errors} problem(s) in {}", a.rev),
        ));
    }
    if !json {
        eprintln!("{}: every structured file is valid", a.rev);
    }
    Ok(())
}
