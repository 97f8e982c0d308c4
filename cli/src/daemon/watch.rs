//! Watch hooks: a command run when files matching a glob change on the branch, locally or from
//! a peer, after an optional check that must pass (`[[watch]]` in the daemon's configuration,
//! `heroctl watch`).

use std::path::{Path, PathBuf};

use std::process::Command;

use hero_store::{ObjectId, Repo};
use serde::{Deserialize, Serialize};

/// One hook.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchSpec {
    /// Paths of the branch it watches: `*` and `?` within a name, `**` across directories.
    pub glob: String,
    /// Run first; the command runs only when this exits 0.
    #[serde(default)]
    pub check: Option<Vec<String>>,
    /// The command and its arguments.
    pub run: Vec<String>,
}

/// What became of a hook, for `status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WatchStatus {
    /// The glob.
    pub glob: String,
    /// How often the command ran.
    pub runs: u64,
    /// How often the check refused a change.
    pub checks_failed: u64,
    /// When it last fired (Unix seconds).
    pub last_time: Option<u64>,
    /// `ok`, `check failed`, `command failed` or `not started`.
    pub last_result: Option<String>,
    /// The last failure, with the command's exit status and the end of its error output.
    pub last_error: Option<String>,
    /// The paths of the last change it fired for.
    pub last_paths: Vec<String>,
}

/// Whether `path` matches `glob` (`*`, `?` within a name; `**` any number of names).
pub fn glob_match(glob: &str, path: &str) -> bool {
    let g: Vec<&str> = glob.trim_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_matches('/').split('/').collect();
    match_parts(&g, &p)
}

fn match_parts(g: &[&str], p: &[&str]) -> bool {
    match g.split_first() {
        None => p.is_empty(),
        Some((&"**", rest)) => (0..=p.len()).any(|i| match_parts(rest, &p[i..])),
        Some((first, rest)) => match p.split_first() {
            Some((name, prest)) => {
                match_name(first.as_bytes(), name.as_bytes()) && match_parts(rest, prest)
            }
            None => false,
        },
    }
}

fn match_name(g: &[u8], n: &[u8]) -> bool {
    match g.split_first() {
        None => n.is_empty(),
        Some((b'*', rest)) => (0..=n.len()).any(|i| match_name(rest, &n[i..])),
        Some((b'?', rest)) => !n.is_empty() && match_name(rest, &n[1..]),
        Some((c, rest)) => n.first() == Some(c) && match_name(rest, &n[1..]),
    }
}

/// The paths that differ between two commits (files and symlinks; directories are implied).
pub fn changed_paths(
    repo: &Repo,
    old: Option<ObjectId>,
    new: &ObjectId,
) -> hero_store::Result<Vec<String>> {
    let view = repo.view()?;
    Ok(view
        .diff_commits(old, new)?
        .into_iter()
        .map(|d| d.path.to_string())
        .collect())
}

/// Where a hook runs and what it is told.
#[derive(Debug, Clone)]
pub struct HookEnv {
    /// The working directory: the changed files as of the change (see [`materialize`]).
    pub cwd: Option<PathBuf>,
    /// The repository file.
    pub repo: PathBuf,
    /// The mount, when there is one (given as HERO_MOUNT).
    pub mount: Option<PathBuf>,
}

/// Writes the files among `paths` as they are in `commit` under a new directory (deleted ones
/// are absent): hooks see exactly the change they fire for, not whatever a mount shows yet.
pub fn materialize(repo: &Repo, commit: &ObjectId, paths: &[String]) -> std::io::Result<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "hero-watch-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    let io = |e: hero_store::Error| std::io::Error::other(e.to_string());
    let view = repo.view().map_err(io)?;
    for p in paths {
        let Ok(rp) = hero_store::RepoPath::parse(p) else {
            continue;
        };
        let Some(entry) = view.entry_in_commit(commit, &rp).map_err(io)? else {
            continue;
        };
        if entry.kind != hero_store::EntryKind::File
            && entry.kind != hero_store::EntryKind::Executable
        {
            continue;
        }
        let target = dir.join(p);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut reader = view.open_file(&entry.id).map_err(io)?;
        let mut out = std::fs::File::create(&target)?;
        std::io::copy(&mut reader, &mut out)?;
    }
    Ok(dir)
}

/// Runs `spec` for `paths` (those of a change that match its glob) in `env.cwd`; updates `st`.
pub fn fire(spec: &WatchSpec, paths: &[String], env: &HookEnv, st: &mut WatchStatus, now: u64) {
    st.glob = spec.glob.clone();
    st.last_time = Some(now);
    st.last_paths = paths.to_vec();
    if let Some(check) = &spec.check {
        match run(check, paths, env) {
            Ok(()) => {}
            Err(e) => {
                st.checks_failed += 1;
                st.last_result = Some("check failed".into());
                st.last_error = Some(e.clone());
                tracing::error!("watch {}: check failed, command not run: {e}", spec.glob);
                return;
            }
        }
    }
    match run(&spec.run, paths, env) {
        Ok(()) => {
            st.runs += 1;
            st.last_result = Some("ok".into());
            st.last_error = None;
            tracing::info!("watch {}: ran for {} path(s)", spec.glob, paths.len());
        }
        Err(e) => {
            st.runs += 1;
            st.last_result = Some("command failed".into());
            st.last_error = Some(e.clone());
            tracing::error!("watch {}: {e}", spec.glob);
        }
    }
}

/// Runs one command; `Err` says how it failed.
fn run(argv: &[String], paths: &[String], env: &HookEnv) -> Result<(), String> {
    let Some((prog, args)) = argv.split_first() else {
        return Err("empty command".into());
    };
    let mut c = Command::new(prog);
    c.args(args)
        .env("HERO_CHANGED", paths.join("\n"))
        .env("HERO_REPO", &env.repo)
        .env("HERO_MOUNT", env.mount.as_deref().unwrap_or(Path::new("")))
        .stdin(std::process::Stdio::null());
    if let Some(d) = env.cwd.as_deref().filter(|d| d.is_dir()) {
        c.current_dir(d);
    }
    match c.output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: String = err
                .trim_end()
                .chars()
                .rev()
                .take(300)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            Err(format!(
                "`{}` exited with {}{}",
                argv.join(" "),
                out.status,
                if tail.is_empty() {
                    String::new()
                } else {
                    format!(": {tail}")
                }
            ))
        }
        Err(e) => Err(format!("`{}` could not start: {e}", argv.join(" "))),
    }
}

/// The hooks to fire for a change of `paths`: each spec with the paths it matches.
pub fn matching<'a>(
    specs: &'a [WatchSpec],
    paths: &[String],
) -> Vec<(usize, &'a WatchSpec, Vec<String>)> {
    specs
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let m: Vec<String> = paths
                .iter()
                .filter(|p| glob_match(&s.glob, p))
                .cloned()
                .collect();
            (!m.is_empty()).then_some((i, s, m))
        })
        .collect()
}

/// Checks a spec read from the command line or a file.
pub fn validate(spec: &WatchSpec) -> Result<(), String> {
    if spec.glob.trim().is_empty() {
        return Err("watch: glob is empty".into());
    }
    if spec.run.is_empty() {
        return Err(format!("watch {}: run is empty", spec.glob));
    }
    if spec.check.as_ref().is_some_and(|c| c.is_empty()) {
        return Err(format!("watch {}: check is empty", spec.glob));
    }
    Ok(())
}

/// Arguments of `heroctl watch`.
#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    /// Paths of the default branch to watch: `*` and `?` within a name, `**` across
    /// directories (quote it for the shell).
    pub glob: String,
    /// A shell command that must exit 0 before the command runs (e.g. `nginx -t`).
    #[arg(long)]
    pub check: Option<String>,
    /// The command to run, after `--`. It runs in a directory holding the changed files as
    /// of the change, and gets HERO_CHANGED (the changed paths, one a line) and HERO_REPO.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// `heroctl watch`: runs until Ctrl-C or SIGTERM, firing for every change of the branch,
/// whoever made it (a save, a commit, a pull by a daemon).
pub fn watch_command(repo_path: &Path, a: WatchArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    let spec = WatchSpec {
        glob: a.glob,
        check: a.check.map(|c| vec!["sh".to_owned(), "-c".to_owned(), c]),
        run: a.command,
    };
    validate(&spec).map_err(|m| crate::error::tagged(crate::error::Kind::Usage, m))?;
    let repo = crate::commands::with_open_context(Repo::open(repo_path), repo_path)?;
    let branch = repo.default_branch()?;
    let env = HookEnv {
        cwd: None,
        repo: repo_path.to_path_buf(),
        mount: None,
    };
    crate::output::outln!(
        "watching {} on {branch} of {} (Ctrl-C to stop)",
        spec.glob,
        repo_path.display()
    )?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal handler")?;
    let mut head = repo.branch_head(&branch)?;
    let mut generation = repo.generation()?;
    let mut st = WatchStatus::default();
    rt.block_on(async {
        let stop = crate::serve::shutdown_signal();
        tokio::pin!(stop);
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = &mut stop => return Ok::<(), anyhow::Error>(()),
                _ = tick.tick() => {}
            }
            let g = repo.generation()?;
            if g == generation {
                continue;
            }
            generation = g;
            let Some(new) = repo.branch_head(&branch)? else {
                continue;
            };
            if Some(new) == head {
                continue;
            }
            let paths = changed_paths(&repo, head, &new)?;
            head = Some(new);
            let matched: Vec<String> = paths
                .into_iter()
                .filter(|p| glob_match(&spec.glob, p))
                .collect();
            if matched.is_empty() {
                continue;
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let dir = materialize(&repo, &new, &matched)
                .with_context(|| format!("writing the changed files of {}", new.short()))?;
            let env = HookEnv {
                cwd: Some(dir.clone()),
                ..env.clone()
            };
            fire(&spec, &matched, &env, &mut st, now);
            let _ = std::fs::remove_dir_all(&dir);
            crate::output::outln!(
                "{}: {}{}",
                matched.join(", "),
                st.last_result.as_deref().unwrap_or("-"),
                st.last_error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            )?;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("etc/*.toml", "etc/app.toml"));
        assert!(!glob_match("etc/*.toml", "etc/sub/app.toml"));
        assert!(glob_match("etc/**/*.toml", "etc/sub/app.toml"));
        assert!(glob_match("etc/**/*.toml", "etc/app.toml"));
        assert!(glob_match("**", "a/b/c"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(!glob_match("*.toml", "etc/app.toml"));
    }
}
