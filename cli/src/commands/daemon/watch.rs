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

/// Whether `path` matches `glob`: the matcher of writers' scopes
/// ([`hero_sync::membership::scope_matches`]): `*` and `?` (one character) within a name, `**`
/// any number of names; time bounded by the product of the name counts.
pub fn glob_match(glob: &str, path: &str) -> bool {
    hero_sync::membership::scope_matches(glob.trim_matches('/'), path)
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
    /// Whether hooks run at all, as whom, and which programs (the machine's local file).
    pub policy: HookPolicy,
}

/// What this machine lets hooks do (`[hooks]` of its local, unreplicated file): the
/// replicated configuration says what to run, the machine says whether and as whom.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookPolicy {
    /// `false`: no hook runs here (each firing is reported as refused).
    pub disabled: bool,
    /// The account commands run as (`None`: the daemon's own).
    pub account: Option<Account>,
    /// When not empty, the only programs (`run[0]`, `check[0]`) a hook may start: exact
    /// strings, or `*`/`?` globs over the whole program path.
    pub allow: Vec<String>,
}

/// An account of this machine, resolved from its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: PathBuf,
}

impl Account {
    /// Looks `name` up in the system's user database.
    pub fn lookup(name: &str) -> Result<Account, String> {
        match nix::unistd::User::from_name(name) {
            Ok(Some(u)) => Ok(Account {
                name: name.to_owned(),
                uid: u.uid.as_raw(),
                gid: u.gid.as_raw(),
                home: u.dir,
            }),
            Ok(None) => Err(format!("no account named {name:?} on this machine")),
            Err(e) => Err(format!("looking up the account {name:?}: {e}")),
        }
    }
}

impl HookPolicy {
    /// Why `argv` may not start here, if it may not.
    pub fn refuses(&self, argv: &[String]) -> Option<String> {
        if self.disabled {
            return Some("hooks are turned off on this machine (hooks.enabled = false)".into());
        }
        let prog = argv.first().map(String::as_str).unwrap_or_default();
        if !self.allow.is_empty() && prog.split('/').any(|s| s == "." || s == "..") {
            return Some(format!(
                "`{prog}` climbs out of the directories hooks.allow names"
            ));
        }
        if !self.allow.is_empty()
            && !self.allow.iter().any(|a| {
                a == prog || (!prog.is_empty() && hero_sync::membership::segment_matches(a, prog))
            })
        {
            return Some(format!(
                "`{prog}` is not among the programs this machine allows hooks (hooks.allow)"
            ));
        }
        None
    }
}

/// The search path hooks get (the daemon's own environment is not passed on).
const HOOK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Writes the files among `paths` as they are in `commit` under a new directory (deleted ones
/// are absent): hooks see exactly the change they fire for, not whatever a mount shows yet.
pub fn materialize(
    repo: &Repo,
    commit: &ObjectId,
    paths: &[String],
    account: Option<&Account>,
) -> std::io::Result<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "hero-watch-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    {
        use std::os::unix::fs::DirBuilderExt;
        // Only the hook's account reads the change it is given.
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    }
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
    if let Some(a) = account {
        chown_tree(&dir, a.uid, a.gid)?;
    }
    Ok(dir)
}

fn chown_tree(dir: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            chown_tree(&e.path(), uid, gid)?;
        } else {
            std::os::unix::fs::lchown(e.path(), Some(uid), Some(gid))?;
        }
    }
    Ok(())
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
    if let Some(why) = env.policy.refuses(argv) {
        return Err(why);
    }
    let Some(cwd) = env.cwd.as_deref().filter(|d| d.is_dir()) else {
        return Err("no directory holding the change to run in".into());
    };
    let mut c = Command::new(prog);
    // Nothing of the daemon's environment (tokens, keys, credentials) is passed on: the
    // change, where the repository and the mount are, a search path, a home and a locale.
    c.args(args)
        .env_clear()
        .env("PATH", HOOK_PATH)
        .env("LANG", "C.UTF-8")
        .env("HERO_CHANGED", paths.join("\n"))
        .env("HERO_REPO", &env.repo)
        .env("HERO_MOUNT", env.mount.as_deref().unwrap_or(Path::new("")))
        .current_dir(cwd)
        .stdin(std::process::Stdio::null());
    match &env.policy.account {
        Some(a) => {
            use std::os::unix::process::CommandExt;
            // Run as root, `uid` also drops every supplementary group.
            c.uid(a.uid)
                .gid(a.gid)
                .env("HOME", &a.home)
                .env("USER", &a.name);
        }
        None => {
            if let Some(h) = std::env::var_os("HOME") {
                c.env("HOME", h);
            }
        }
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
    hero_sync::membership::check_scope(spec.glob.trim_matches('/'))
        .map_err(|e| format!("watch: glob {:?}: {e}", spec.glob))?;
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
    let repo = crate::context::with_open_context(Repo::open(repo_path), repo_path)?;
    let branch = repo.default_branch()?;
    let env = HookEnv {
        cwd: None,
        repo: repo_path.to_path_buf(),
        mount: None,
        policy: HookPolicy::default(),
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
        let stop = crate::context::shutdown_signal();
        tokio::pin!(stop);
        // Woken by write transactions of any process (no polling while nothing changes).
        let (tx, mut changed) = tokio::sync::watch::channel(0u64);
        let changes = repo.subscribe(move || tx.send_modify(|n| *n = n.wrapping_add(1)));
        loop {
            tokio::select! {
                _ = &mut stop => return Ok::<(), anyhow::Error>(()),
                _ = changed.changed() => {}
                _ = tokio::time::sleep(changes.fallback()) => {}
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
            let dir = materialize(&repo, &new, &matched, None)
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
        // `?` is one character, not one byte.
        assert!(glob_match("caf?.toml", "café.toml"));
        // Linear: a pattern that backtracks exponentially in a naive matcher.
        let name = "a".repeat(5_000);
        let started = std::time::Instant::now();
        assert!(!glob_match(&format!("{}b", "*a".repeat(200)), &name));
        assert!(glob_match(&format!("{}*", "*a".repeat(200)), &name));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "not linear"
        );
    }

    #[test]
    fn the_machine_decides_whether_and_which_programs_hooks_run() {
        let argv = |p: &str| vec![p.to_owned(), "x".to_owned()];
        assert_eq!(HookPolicy::default().refuses(&argv("anything")), None);
        let off = HookPolicy {
            disabled: true,
            ..HookPolicy::default()
        };
        assert!(off.refuses(&argv("systemctl")).is_some());
        let only = HookPolicy {
            allow: vec!["systemctl".into(), "/usr/sbin/*".into()],
            ..HookPolicy::default()
        };
        assert_eq!(only.refuses(&argv("systemctl")), None);
        assert_eq!(only.refuses(&argv("/usr/sbin/nginx")), None);
        assert!(only.refuses(&argv("sh")).is_some());
        assert!(only.refuses(&argv("/usr/sbin/../bin/sh")).is_some());
    }
}
