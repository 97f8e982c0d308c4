//! What the commands share: finding and opening the repository, the author of this process's
//! commits, branch names a command may write, the network options, durations, trees, the
//! share's credentials and the stop signal. Every command imports from here; this module
//! imports no command.

use crate::error::{Kind, tagged};
use crate::output::bytes;
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use hero_store::{
    Author, CommitMeta, EntryKind, MemoryBudget, ObjectId, Progress, Repo, RepoPath, Signature,
    TreeEntry, View,
};
use hero_sync::{NetConfig, NetMode};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The default repository: `$XDG_DATA_HOME/hero/store.hero` (or `~/.local/share/...`).
pub fn default_repo_path() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("hero").join("store.hero"));
    }
    let home = std::env::var_os("HOME").context("neither XDG_DATA_HOME nor HOME is set")?;
    Ok(PathBuf::from(home)
        .join(".local")
        .join("share")
        .join("hero")
        .join("store.hero"))
}

/// `-R`, then `HERO_REPO`, then the default.
pub fn repo_path(cli_repo: &Option<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = cli_repo {
        return Ok(p.clone());
    }
    if let Some(p) = std::env::var_os("HERO_REPO").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    default_repo_path()
}

pub(crate) fn open_repo(cli_repo: &Option<PathBuf>) -> Result<Repo> {
    let path = repo_path(cli_repo)?;
    with_open_context(Repo::open(&path), &path)
}

/// The memory an import's repository handle may keep: its lookups hit recent objects, which
/// the importer keeps itself, and it writes each object once, so the page cache only holds
/// pages read again and the decoded versions the deltas are made against.
pub(crate) const IMPORT_BUDGET: MemoryBudget = MemoryBudget {
    page_cache: 1 << 20,
    decoded_cache: 1 << 20,
    write_batch: 16 << 20,
};

/// Opens the repository with caches bounded by `budget`.
pub(crate) fn open_repo_with_budget(
    cli_repo: &Option<PathBuf>,
    budget: MemoryBudget,
) -> Result<Repo> {
    let path = repo_path(cli_repo)?;
    with_open_context(Repo::open_with_budget(&path, budget), &path)
}

/// Adds the path to an error opening a repository, except where the error names it already.
/// The hint (`heroctl init` for a missing file only) comes from the error's kind.
pub fn with_open_context(opened: hero_store::Result<Repo>, path: &std::path::Path) -> Result<Repo> {
    match opened {
        Ok(repo) => Ok(repo),
        Err(
            e @ (hero_store::Error::NoRepository(_) | hero_store::Error::NotARepository { .. }),
        ) => Err(e.into()),
        // A directory is a wrong argument, not a damaged repository.
        Err(_) if path.is_dir() => Err(tagged(
            Kind::Usage,
            format!(
                "{} is a directory; name the repository file (e.g. {})",
                path.display(),
                path.join("store.hero").display()
            ),
        )),
        Err(e) => {
            Err(anyhow::Error::new(e)
                .context(format!("cannot open the repository {}", path.display())))
        }
    }
}

/// The author of the commits this process makes: `HERO_AUTHOR_NAME`/`HERO_AUTHOR_EMAIL`, else
/// the user name, in the local time zone, with no peer. The one place the environment is read
/// for it; the mount, the share, the daemon and every command take what this returns.
pub fn author() -> Author {
    let name = std::env::var("HERO_AUTHOR_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "hero".to_owned());
    let email = std::env::var("HERO_AUTHOR_EMAIL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("{name}@localhost"));
    Author::new(name, email).with_zone(local_offset_minutes)
}

/// The local time zone's offset from UTC at `time` (seconds since the Unix epoch), in minutes.
pub(crate) fn local_offset_minutes(time: i64) -> i32 {
    use chrono::TimeZone;
    chrono::Local
        .timestamp_opt(time, 0)
        .earliest()
        .map_or(0, |t| t.offset().local_minus_utc() / 60)
}

/// [`author`] recording this repository's peer id in each commit (the endpoint id of its key
/// beside the repository file, created on first use).
pub fn author_for(repo: &std::path::Path) -> Result<Author> {
    let key = hero_sync::key_path(repo);
    let verb = if key.exists() { "reading" } else { "creating" };
    let id = hero_sync::endpoint_id(repo)
        .with_context(|| format!("{verb} the peer key {} of this repository", key.display()))?;
    Ok(author().with_peer(id.to_string()))
}

pub(crate) fn show_time(sig: &Signature) -> String {
    let offset = chrono::FixedOffset::east_opt(sig.tz_offset_minutes.saturating_mul(60));
    match (chrono::DateTime::from_timestamp(sig.time, 0), offset) {
        (Some(t), Some(offset)) => t
            .with_timezone(&offset)
            .format("%Y-%m-%d %H:%M:%S %z")
            .to_string(),
        _ => format!("@{} {}", sig.time, sig.tz_string()),
    }
}

/// The branch named, or the repository's default branch, for a command that writes to it:
/// hero's reserved branches (`hero/...`, the membership) are refused.
pub fn writable_branch(repo: &Repo, branch: Option<String>) -> Result<String> {
    let b = or_default_branch(repo, branch)?;
    check_writable(&b)?;
    Ok(b)
}

/// Refuses hero's reserved branch names (`hero/...`) for ordinary commands.
pub fn check_writable(branch: &str) -> Result<()> {
    if hero_sync::membership::is_reserved(branch) {
        return Err(crate::error::tagged_hint(
            Kind::Refused,
            format!(
                "branch {branch} is reserved: only hero writes {}* branches",
                hero_sync::membership::RESERVED_PREFIX
            ),
            "change the membership with `heroctl member`",
        ));
    }
    Ok(())
}

/// The branch named, or the repository's default branch.
pub fn or_default_branch(repo: &Repo, branch: Option<String>) -> Result<String> {
    match branch {
        Some(b) => Ok(b),
        None => Ok(repo.default_branch()?),
    }
}

pub(crate) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub(crate) fn bar_callback<'a>(
    bar: &'a indicatif::ProgressBar,
    what: &'static str,
) -> impl Fn(Progress) + Sync + 'a {
    move |p: Progress| {
        if let Some(t) = p.total {
            bar.set_length(t);
        }
        bar.set_position(p.done);
        bar.set_message(format!("{what} {}", bytes(p.bytes)));
    }
}

pub(crate) fn file_id(view: &hero_store::View, commit: &ObjectId, path: &str) -> Result<ObjectId> {
    let p = RepoPath::parse(path)?;
    match view.entry_in_commit(commit, &p)? {
        Some(e) if e.kind.is_blob() => Ok(e.id),
        Some(_) => Err(tagged(Kind::NotFound, format!("{path}: is a directory"))),
        None => Err(tagged(
            Kind::NotFound,
            format!("{path}: no such file in {}", commit.short()),
        )),
    }
}

/// A duration as people write it: a whole number with a unit `s`, `m`, `h` or `d` (no unit:
/// seconds) — `90s`, `30m`, `6h`, `14d`. The one parser of durations of the command line,
/// the daemon's configuration and invitations.
pub(crate) fn parse_duration(s: &str) -> std::result::Result<std::time::Duration, String> {
    let s = s.trim();
    let (n, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = n
        .parse()
        .map_err(|_| format!("not a duration: {s:?} (try 90s, 30m, 6h, 14d)"))?;
    let mul = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit in {s:?} (s, m, h or d)")),
    };
    n.checked_mul(mul)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("too long: {s:?}"))
}

/// [`parse_duration`] in whole seconds (`--grace`, `gc.interval`, `gc.grace`).
pub(crate) fn parse_grace(s: &str) -> std::result::Result<u64, String> {
    parse_duration(s).map(|d| d.as_secs())
}

/// Creates a new repository file at `path`, and the directories above it.
pub(crate) fn create_repo(path: &Path) -> Result<Repo> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    Repo::init(path).with_context(|| format!("creating {}", path.display()))
}

/// Networking choice.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetChoice {
    /// Relays, address lookup and hole punching.
    Internet,
    /// Direct addresses only, no relays or lookups.
    Local,
}

/// Networking options.
#[derive(Args, Debug, Clone)]
pub struct NetArgs {
    /// `local`: direct addresses only (LAN, tests); `internet`: relays and hole punching.
    #[arg(long, env = "HERO_NET", value_enum, default_value = "internet")]
    pub net: NetChoice,
}

impl NetArgs {
    pub(crate) fn config(&self, bind: Option<SocketAddr>) -> NetConfig {
        NetConfig {
            mode: match self.net {
                NetChoice::Internet => NetMode::Internet,
                NetChoice::Local => NetMode::Local,
            },
            bind,
            no_relay_wait: false,
            no_lan_discovery: false,
        }
    }
}

/// The credentials of a WebDAV share of the repository at `repo` (`heroctl serve dav` and the
/// daemon's share), and how to tell a user where they are (never the token itself):
/// `HERO_DAV_TOKEN`, else `HERO_DAV_BASIC` (USER:PASSWORD), else the token in `token_file`
/// (default `<repo>.dav-token`, created on first use, mode 0600; ADR 0022).
pub(crate) fn share_auth(
    repo: &Path,
    token_file: Option<&Path>,
) -> Result<(hero_dav::Auth, String)> {
    if let Some(t) = std::env::var_os("HERO_DAV_TOKEN") {
        let t = t.into_string().map_err(|_| {
            crate::error::tagged(crate::error::Kind::Usage, "HERO_DAV_TOKEN is not UTF-8")
        })?;
        if t.trim().is_empty() {
            return Err(crate::error::tagged(
                crate::error::Kind::Usage,
                "HERO_DAV_TOKEN is empty",
            ));
        }
        return Ok((
            hero_dav::Auth::Token(t.trim().to_owned()),
            "clients authenticate with the token in $HERO_DAV_TOKEN (any user name)".to_owned(),
        ));
    }
    if let Some(b) = std::env::var_os("HERO_DAV_BASIC") {
        let b = b.to_string_lossy().into_owned();
        let (user, password) = b.split_once(':').ok_or_else(|| {
            crate::error::tagged(
                crate::error::Kind::Usage,
                "HERO_DAV_BASIC takes USER:PASSWORD",
            )
        })?;
        return Ok((
            hero_dav::Auth::Basic {
                user: user.to_owned(),
                password: password.to_owned(),
            },
            format!("clients authenticate as {user} with the password in $HERO_DAV_BASIC"),
        ));
    }
    let path = token_file.map_or_else(|| hero_dav::token_path(repo), Path::to_path_buf);
    let token = hero_dav::load_or_create_token(&path)?;
    Ok((
        hero_dav::Auth::Token(token),
        format!(
            "clients authenticate with any user name and the token in {} as the password",
            path.display()
        ),
    ))
}

/// The credentials of the web face of the repository at `repo` (`heroctl ui` and the
/// daemon's): `HERO_UI_TOKEN`, else the token in `token_file` (default `<repo>.ui-token`,
/// created on first use, mode 0600; ADR 0026). The token itself (for `ui --open`) and where
/// it comes from, in words.
pub(crate) fn ui_auth(repo: &Path, token_file: Option<&Path>) -> Result<(String, String)> {
    if let Some(t) = std::env::var_os("HERO_UI_TOKEN") {
        let t = t.into_string().map_err(|_| {
            crate::error::tagged(crate::error::Kind::Usage, "HERO_UI_TOKEN is not UTF-8")
        })?;
        let t = t.trim();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(crate::error::tagged(
                crate::error::Kind::Usage,
                "HERO_UI_TOKEN must be one word of printable ASCII",
            ));
        }
        return Ok((t.to_owned(), "the token in $HERO_UI_TOKEN".to_owned()));
    }
    let path = token_file.map_or_else(|| hero_web::token_path(repo), Path::to_path_buf);
    let token = hero_dav::load_or_create_token(&path)?;
    Ok((token, format!("the token in {}", path.display())))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

/// Every file entry below `root` (a tree id), by path under `prefix`.
pub(crate) fn files_below(
    view: &View,
    prefix: &RepoPath,
    root: &ObjectId,
    out: &mut Vec<(RepoPath, TreeEntry)>,
) -> Result<()> {
    for e in view.tree(root)?.entries {
        let path = prefix.join(&e.name)?;
        match e.kind {
            EntryKind::Dir => files_below(view, &path, &e.id, out)?,
            _ => out.push((path, e)),
        }
    }
    Ok(())
}

/// The files at `path` in `commit`: the file itself, or everything below a directory.
pub(crate) fn files_at(
    view: &View,
    commit: &ObjectId,
    path: &RepoPath,
) -> Result<Vec<(RepoPath, TreeEntry)>> {
    let mut out = Vec::new();
    if path.is_root() {
        let tree = view.commit(commit)?.tree;
        files_below(view, path, &tree, &mut out)?;
        return Ok(out);
    }
    match view.entry_in_commit(commit, path)? {
        Some(e) if e.kind == EntryKind::Dir => files_below(view, path, &e.id, &mut out)?,
        Some(e) => out.push((path.clone(), e)),
        None => {}
    }
    Ok(out)
}

pub(crate) fn new_meta(repo: &Repo, message: String) -> Result<CommitMeta> {
    Ok(author_for(repo.path())?.commit_meta(message))
}

/// The host name, for display names.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// A device number as `major,minor` (Linux's packing of `st_rdev`).
pub(crate) fn device_numbers(rdev: u64) -> String {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    format!("{major},{minor}")
}

/// What an entry is, for people: its kind, with a device's numbers.
pub(crate) fn describe_kind(e: &hero_store::TreeEntry) -> String {
    if e.kind.is_device() {
        format!(
            "{} {}",
            e.kind.as_str(),
            device_numbers(e.meta.rdev.unwrap_or(0))
        )
    } else {
        e.kind.as_str().to_owned()
    }
}
