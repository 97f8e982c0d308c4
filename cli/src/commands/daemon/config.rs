//! The daemon's configuration: `.hero/daemon.toml` on the repository's default branch,
//! typed, with per-node overrides, validated with the line and column of every error.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use hero_store::{ObjectId, Repo, RepoPath};
use hero_sync::Ticket;
use serde::Deserialize;

use crate::commands::daemon::watch::WatchSpec;

/// Where the configuration lives in the repository.
pub const CONFIG_PATH: &str = ".hero/daemon.toml";
/// The largest configuration file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// The sync endpoint's port unless the configuration says otherwise.
pub const DEFAULT_PORT: u16 = 4919;

/// The commented default written by `heroctl daemon --init-config`.
pub const DEFAULT_TEXT: &str = r#"# hero store daemon configuration (docs/daemon.md lists every key).
# This file lives in the repository: edit it through the drive or commit it; every daemon
# that replicates this repository applies the new version without a restart.

# Peers to keep in sync with: tickets (ID@IP:PORT,...) or bare node ids. Saved remotes
# (`heroctl remote add`) count as peers too. Peers listed here may connect (read-write).
peers = []

# Full sync with every peer at least this often, in seconds: a safety net for a lost
# announcement. A peer that comes back is caught up with when it does, not on this timer.
catch_up_secs = 600

# Where the sync endpoint listens (a restart applies a change).
# listen = "0.0.0.0:4919"

# Find peers on the local network by their id (mDNS), with or without internet; off: only
# tickets, learned addresses and (with internet) iroh's lookups. A restart applies a change.
# lan_discovery = true

[mount]
# Mount the drive (at `heroctl daemon --mount DIR`, else at `path`).
enabled = true
# path = "/home/me/hero"
# Commit after this many milliseconds without writes.
idle_commit_ms = 100
read_only = false
# List `.snapshots` in the drive's root (reachable by name either way, as in
# `ls ~/hero/.snapshots/main~3/`; hidden, tree walkers and backup tools see only the branch).
show_snapshots = false

[dav]
# Serve the drive over WebDAV (loopback only; credentials are not configured here).
enabled = true
addr = "127.0.0.1:4918"

[ui]
# Serve the web face: timeline, files at any revision, diffs, decision records, peers and
# audit (loopback only; the token is in <repository>.ui-token or $HERO_UI_TOKEN).
enabled = true
addr = "127.0.0.1:4917"

# Watch hooks: run a command when files matching a glob change on the branch, here or on a
# peer; with `check`, only when the check exits 0 (`heroctl daemon status` shows failures).
# [[watch]]
# glob = "etc/nginx/**/*.conf"
# check = ["nginx", "-t"]
# run = ["systemctl", "reload", "nginx"]

[gc]
# Collect unreachable objects (what `heroctl gc` does) every `interval`; an object found
# unreachable is removed only by a collection at least `grace` later. Durations: a number
# with s, m, h or d.
enabled = true
interval = "1d"
grace = "14d"

# Per-node overrides: a section keyed by node id (`heroctl id`) or host name, with any of
# the keys above.
# [node.laptop]
# catch_up_secs = 10
# [node.laptop.dav]
# enabled = false
"#;

/// The mount section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountSection {
    /// Mount at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Where (the command line's `--mount` wins).
    #[serde(default)]
    pub path: Option<std::path::PathBuf>,
    /// Commit after this long without writes.
    #[serde(default = "default_idle_ms")]
    pub idle_commit_ms: u64,
    /// Refuse writes.
    #[serde(default)]
    pub read_only: bool,
    /// List `.snapshots` in the root (reachable by name either way).
    #[serde(default)]
    pub show_snapshots: bool,
}

/// The WebDAV section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DavSection {
    /// Serve at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Where (loopback).
    #[serde(default = "default_dav_addr")]
    pub addr: SocketAddr,
}

/// The web face section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiSection {
    /// Serve at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Where (loopback).
    #[serde(default = "default_ui_addr")]
    pub addr: SocketAddr,
}

/// The scheduled garbage collection, as written (top level and per-node overrides alike).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcFile {
    enabled: Option<bool>,
    interval: Option<toml::Spanned<String>>,
    grace: Option<toml::Spanned<String>>,
}

/// The scheduled garbage collection in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcSection {
    /// Collect at all.
    pub enabled: bool,
    /// Time between the end of one collection and the start of the next (the first starts
    /// one interval after the daemon).
    pub interval: Duration,
    /// `heroctl gc --grace`: how long an unreachable object is kept after it was found.
    pub grace: Duration,
}

impl Default for GcSection {
    fn default() -> Self {
        GcSection {
            enabled: true,
            interval: Duration::from_secs(86_400),
            grace: Duration::from_secs(14 * 86_400),
        }
    }
}

/// A partial mount section (per-node overrides).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountOverride {
    enabled: Option<bool>,
    path: Option<std::path::PathBuf>,
    idle_commit_ms: Option<u64>,
    read_only: Option<bool>,
    show_snapshots: Option<bool>,
}

/// A partial WebDAV section (per-node overrides).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DavOverride {
    enabled: Option<bool>,
    addr: Option<SocketAddr>,
}

/// A partial web face section (per-node overrides).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiOverride {
    enabled: Option<bool>,
    addr: Option<SocketAddr>,
}

/// What a `[node.X]` section may set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeOverride {
    peers: Option<Vec<toml::Spanned<String>>>,
    catch_up_secs: Option<u64>,
    listen: Option<SocketAddr>,
    lan_discovery: Option<bool>,
    mount: Option<MountOverride>,
    dav: Option<DavOverride>,
    ui: Option<UiOverride>,
    watch: Option<Vec<toml::Spanned<WatchSpec>>>,
    gc: Option<GcFile>,
}

/// The file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    peers: Vec<toml::Spanned<String>>,
    #[serde(default = "default_catch_up")]
    catch_up_secs: u64,
    #[serde(default)]
    listen: Option<SocketAddr>,
    #[serde(default = "yes")]
    lan_discovery: bool,
    #[serde(default)]
    mount: Option<MountSection>,
    #[serde(default)]
    dav: Option<DavSection>,
    #[serde(default)]
    ui: Option<UiSection>,
    #[serde(default)]
    watch: Vec<toml::Spanned<WatchSpec>>,
    #[serde(default)]
    gc: Option<GcFile>,
    #[serde(default)]
    node: BTreeMap<String, NodeOverride>,
}

fn yes() -> bool {
    true
}
fn default_idle_ms() -> u64 {
    100
}
fn default_catch_up() -> u64 {
    600
}
fn default_dav_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4918))
}
fn default_ui_addr() -> SocketAddr {
    hero_web::DEFAULT_ADDR
}

impl Default for UiSection {
    fn default() -> Self {
        UiSection {
            enabled: true,
            addr: default_ui_addr(),
        }
    }
}

impl Default for MountSection {
    fn default() -> Self {
        MountSection {
            enabled: true,
            path: None,
            idle_commit_ms: default_idle_ms(),
            read_only: false,
            show_snapshots: false,
        }
    }
}

impl Default for DavSection {
    fn default() -> Self {
        DavSection {
            enabled: true,
            addr: default_dav_addr(),
        }
    }
}

/// A peer to keep in sync with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its ticket (a bare id is a ticket without addresses).
    pub ticket: Ticket,
    /// Where it came from: `config` or `remote <name>`.
    pub source: String,
}

/// The configuration of this node, overrides applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Peers from the file (remotes are added at each round).
    pub peers: Vec<Peer>,
    /// The catch-up interval.
    pub catch_up: Duration,
    /// The sync endpoint's address (`None`: the default port).
    pub listen: Option<SocketAddr>,
    /// Local-network discovery (mDNS) on the default network.
    pub lan_discovery: bool,
    /// The mount.
    pub mount: MountSection,
    /// The share.
    pub dav: DavSection,
    /// The web face.
    pub ui: UiSection,
    /// Watch hooks.
    pub watch: Vec<WatchSpec>,
    /// Scheduled garbage collection.
    pub gc: GcSection,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            peers: Vec::new(),
            catch_up: Duration::from_secs(default_catch_up()),
            listen: None,
            lan_discovery: true,
            mount: MountSection::default(),
            dav: DavSection::default(),
            ui: UiSection::default(),
            watch: Vec::new(),
            gc: GcSection::default(),
        }
    }
}

/// Why a configuration was refused: the message and, when known, where.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigError {
    /// The file (a path, or `main:.hero/daemon.toml`).
    pub file: String,
    /// 1-based line.
    pub line: Option<usize>,
    /// 1-based column.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}: {}", self.file, self.message),
            _ => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// This node's names: its id and its host name.
#[derive(Debug, Clone)]
pub struct NodeNames {
    /// The endpoint id.
    pub id: String,
    /// The host name, when known.
    pub host: Option<String>,
}

impl NodeNames {
    /// The names of the node with id `id` on this host.
    pub fn here(id: String) -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty());
        NodeNames { id, host }
    }
}

/// Parses and validates `text` for the node `me`.
pub fn parse(text: &str, file: &str, me: &NodeNames) -> Result<Config, ConfigError> {
    let err_at = |span: Option<std::ops::Range<usize>>, message: String| {
        let (line, column) = match span {
            Some(s) => {
                let (l, c) = line_col(text, s.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ConfigError {
            file: file.to_owned(),
            line,
            column,
            message,
        }
    };
    let f: File = toml::from_str(text).map_err(|e| err_at(e.span(), e.message().to_owned()))?;
    let mut peers_raw = f.peers;
    let mut cfg = Config {
        peers: Vec::new(),
        catch_up: Duration::from_secs(f.catch_up_secs),
        listen: f.listen,
        lan_discovery: f.lan_discovery,
        mount: f.mount.unwrap_or_default(),
        dav: f.dav.unwrap_or_default(),
        ui: f.ui.unwrap_or_default(),
        watch: Vec::new(),
        gc: GcSection::default(),
    };
    let mut watch_raw = f.watch;
    let mut gc_raw: Vec<GcFile> = f.gc.into_iter().collect();
    let mut overrides: Vec<&NodeOverride> = Vec::new();
    if let Some(h) = &me.host
        && let Some(o) = f.node.get(h)
    {
        overrides.push(o);
    }
    // The id is more specific than the host name: applied last.
    if let Some(o) = f.node.get(&me.id) {
        overrides.push(o);
    }
    for o in overrides {
        if let Some(p) = &o.peers {
            peers_raw = p.clone();
        }
        if let Some(w) = &o.watch {
            watch_raw = w.clone();
        }
        if let Some(g) = &o.gc {
            gc_raw.push(g.clone());
        }
        if let Some(v) = o.catch_up_secs {
            cfg.catch_up = Duration::from_secs(v);
        }
        if let Some(v) = o.listen {
            cfg.listen = Some(v);
        }
        if let Some(v) = o.lan_discovery {
            cfg.lan_discovery = v;
        }
        if let Some(m) = &o.mount {
            let t = &mut cfg.mount;
            t.enabled = m.enabled.unwrap_or(t.enabled);
            t.path = m.path.clone().or(t.path.take());
            t.idle_commit_ms = m.idle_commit_ms.unwrap_or(t.idle_commit_ms);
            t.read_only = m.read_only.unwrap_or(t.read_only);
            t.show_snapshots = m.show_snapshots.unwrap_or(t.show_snapshots);
        }
        if let Some(d) = &o.dav {
            cfg.dav.enabled = d.enabled.unwrap_or(cfg.dav.enabled);
            cfg.dav.addr = d.addr.unwrap_or(cfg.dav.addr);
        }
        if let Some(u) = &o.ui {
            cfg.ui.enabled = u.enabled.unwrap_or(cfg.ui.enabled);
            cfg.ui.addr = u.addr.unwrap_or(cfg.ui.addr);
        }
    }
    // Later sections (the node's) override single keys of earlier ones.
    for g in gc_raw {
        if let Some(v) = g.enabled {
            cfg.gc.enabled = v;
        }
        for (raw, slot, key) in [
            (&g.interval, &mut cfg.gc.interval, "gc.interval"),
            (&g.grace, &mut cfg.gc.grace, "gc.grace"),
        ] {
            if let Some(v) = raw {
                let secs = crate::context::parse_grace(v.get_ref())
                    .map_err(|m| err_at(Some(v.span()), format!("{key}: {m}")))?;
                *slot = Duration::from_secs(secs);
            }
        }
    }
    if cfg.gc.interval < Duration::from_secs(1) {
        return Err(err_at(None, "gc.interval must be at least 1s".to_owned()));
    }
    if cfg.catch_up < Duration::from_secs(1) {
        return Err(err_at(None, "catch_up_secs must be at least 1".to_owned()));
    }
    if cfg.dav.enabled && !cfg.dav.addr.ip().is_loopback() {
        return Err(err_at(
            None,
            format!(
                "dav.addr {} is not a loopback address (a share beyond loopback needs \
                 credentials: use `heroctl serve dav`)",
                cfg.dav.addr
            ),
        ));
    }
    if cfg.ui.enabled && !cfg.ui.addr.ip().is_loopback() {
        return Err(err_at(
            None,
            format!(
                "ui.addr {} is not a loopback address (beyond loopback: `heroctl ui \
                 --trusted-network` behind a TLS proxy)",
                cfg.ui.addr
            ),
        ));
    }
    for w in watch_raw {
        let span = w.span();
        let spec = w.into_inner();
        crate::commands::daemon::watch::validate(&spec).map_err(|m| err_at(Some(span), m))?;
        cfg.watch.push(spec);
    }
    for p in peers_raw {
        let span = p.span();
        let ticket: Ticket = p
            .get_ref()
            .parse()
            .map_err(|e: hero_sync::SyncError| err_at(Some(span), e.to_string()))?;
        if ticket.id().to_string() == me.id || cfg.peers.iter().any(|q| q.ticket == ticket) {
            continue;
        }
        cfg.peers.push(Peer {
            ticket,
            source: "config".to_owned(),
        });
    }
    Ok(cfg)
}

/// The configuration file on `branch`: its blob id and text, `None` when there is none.
pub fn read_from_repo(
    repo: &Repo,
    branch: &str,
) -> hero_store::Result<Option<(ObjectId, Vec<u8>)>> {
    let view = repo.view()?;
    let Some(head) = view.branch_head(branch)? else {
        return Ok(None);
    };
    let path = RepoPath::parse(CONFIG_PATH)?;
    let Some(entry) = view.entry_in_commit(&head, &path)? else {
        return Ok(None);
    };
    if entry.kind != hero_store::EntryKind::File {
        return Ok(None);
    }
    let bytes = view.read_file(&entry.id, MAX_CONFIG_BYTES)?;
    Ok(Some((entry.id, bytes)))
}

/// Parses bytes that should be UTF-8 TOML.
pub fn parse_bytes(bytes: &[u8], file: &str, me: &NodeNames) -> Result<Config, ConfigError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = line_col(
            &String::from_utf8_lossy(&bytes[..e.valid_up_to()]),
            e.valid_up_to(),
        );
        ConfigError {
            file: file.to_owned(),
            line: Some(line),
            column: Some(column),
            message: "not UTF-8".to_owned(),
        }
    })?;
    parse(text, file, me)
}

/// The small local file of a machine (`$XDG_CONFIG_HOME/hero/daemon.toml`, else
/// `~/.config/hero/daemon.toml`): only what cannot live in the replicated file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalFile {
    /// The repository (when neither `-R` nor `HERO_REPO` says).
    pub repo: Option<std::path::PathBuf>,
    /// The mount point (when `--mount` does not say).
    pub mount: Option<std::path::PathBuf>,
    /// The sync endpoint's address on this machine (wins over the configuration's `listen`).
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// What watch hooks may do on this machine.
    #[serde(default)]
    pub hooks: HooksLocal,
}

/// `[hooks]` of the local file: whether the replicated configuration's watch hooks run on
/// this machine, as whom, and which programs they may start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HooksLocal {
    /// Run hooks at all (default: yes — they come only from owner-signed configuration).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The account hook commands run as (default: the daemon's own).
    #[serde(default)]
    pub user: Option<String>,
    /// The only programs hooks may start (exact, or `*`/`?` globs); empty: any.
    #[serde(default)]
    pub allow: Vec<String>,
}

impl Default for HooksLocal {
    fn default() -> Self {
        HooksLocal {
            enabled: true,
            user: None,
            allow: Vec::new(),
        }
    }
}

impl HooksLocal {
    /// The policy in force; an unknown account turns hooks off (never runs them as someone
    /// else than the file says).
    pub fn policy(&self) -> crate::commands::daemon::watch::HookPolicy {
        use crate::commands::daemon::watch::{Account, HookPolicy};
        let mut p = HookPolicy {
            disabled: !self.enabled,
            account: None,
            allow: self.allow.clone(),
        };
        if let Some(name) = &self.user {
            match Account::lookup(name) {
                Ok(a) => p.account = Some(a),
                Err(e) => {
                    tracing::error!("hooks.user: {e}; hooks are off");
                    p.disabled = true;
                }
            }
        }
        p
    }
}

/// Where the local file is.
pub fn local_file_path() -> Option<std::path::PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".config"))
        })?;
    Some(base.join("hero").join("daemon.toml"))
}

/// The local file, when there is a valid one; a broken one is logged and ignored.
pub fn read_local() -> LocalFile {
    let Some(path) = local_file_path() else {
        return LocalFile::default();
    };
    let Ok(bytes) = std::fs::read(&path) else {
        return LocalFile::default();
    };
    let name = path.display().to_string();
    let parsed = std::str::from_utf8(&bytes)
        .map_err(|_| format!("{name}: not UTF-8"))
        .and_then(|text| {
            toml::from_str::<LocalFile>(text).map_err(|e| {
                let (l, c) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
                format!("{name}:{l}:{c}: {}", e.message())
            })
        });
    match parsed {
        Ok(f) => f,
        Err(e) => {
            tracing::error!("{e}; ignoring the file");
            LocalFile::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> NodeNames {
        NodeNames {
            id: "me".to_owned(),
            host: Some("box".to_owned()),
        }
    }

    #[test]
    fn default_text_parses() {
        let c = parse(DEFAULT_TEXT, "d", &me()).expect("default parses");
        assert_eq!(c, Config::default());
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = parse("catch_up_secs = 5\nbogus = 1\n", "f", &me()).expect_err("unknown key");
        assert_eq!((e.line, e.column), (Some(2), Some(1)), "{e}");
        let e = parse("catch_up_secs = \"x\"\n", "f", &me()).expect_err("wrong type");
        assert_eq!(e.line, Some(1), "{e}");
        let e = parse("[dav]\naddr = \"nowhere\"\n", "f", &me()).expect_err("bad address");
        assert_eq!(e.line, Some(2), "{e}");
        let e = parse("peers = [\n  \"zz\"]\n", "f", &me()).expect_err("bad ticket");
        assert_eq!((e.line, e.column), (Some(2), Some(3)), "{e}");
        let e = parse("peers = [", "f", &me()).expect_err("bad toml");
        assert_eq!(e.line, Some(1), "{e}");
    }

    /// Whoever may write the configuration, it cannot put the web face or the share beyond
    /// loopback (only `heroctl ui --trusted-network`, run by the machine's own account, can):
    /// the file is refused, also through a node override.
    #[test]
    fn the_web_face_and_the_share_stay_on_loopback() {
        for t in [
            "[ui]\naddr = \"0.0.0.0:4917\"\n",
            "[node.me.ui]\naddr = \"10.0.0.1:4917\"\n",
            "[dav]\naddr = \"0.0.0.0:4918\"\n",
        ] {
            let e = parse(t, "f", &me()).expect_err(t);
            assert!(e.to_string().contains("not a loopback address"), "{e}");
        }
        let c = parse("[ui]\naddr = \"127.0.0.1:5000\"\n", "f", &me()).expect("loopback");
        assert_eq!(c.ui.addr.port(), 5000);
    }

    #[test]
    fn node_overrides_apply_host_then_id() {
        let t = "catch_up_secs = 5\n[node.box]\ncatch_up_secs = 7\n[node.box.dav]\nenabled = false\n\
                 [node.me]\ncatch_up_secs = 9\n[node.other]\ncatch_up_secs = 11\n";
        let c = parse(t, "f", &me()).expect("parses");
        assert_eq!(c.catch_up, Duration::from_secs(9));
        assert!(!c.dav.enabled);
        assert!(c.lan_discovery, "on unless turned off");
        let t = "[node.box]\nlan_discovery = false\n";
        assert!(!parse(t, "f", &me()).expect("parses").lan_discovery);
        let t = "lan_discovery = false\n[node.me]\nlan_discovery = true\n";
        assert!(parse(t, "f", &me()).expect("parses").lan_discovery);
        let e = parse("lan_discovery = \"no\"\n", "f", &me()).expect_err("wrong type");
        assert_eq!(e.line, Some(1), "{e}");
    }

    #[test]
    fn gc_durations_and_overrides() {
        let t = "[gc]\ninterval = \"2h\"\n[node.me.gc]\ngrace = \"30m\"\n";
        let c = parse(t, "f", &me()).expect("parses");
        assert_eq!(c.gc.interval, Duration::from_secs(7200));
        assert_eq!(c.gc.grace, Duration::from_secs(1800));
        assert!(c.gc.enabled);
        let e = parse("[gc]\ngrace = \"soon\"\n", "f", &me()).expect_err("bad duration");
        assert_eq!((e.line, e.column), (Some(2), Some(9)), "{e}");
        let e = parse("[gc]\ninterval = \"0\"\n", "f", &me()).expect_err("zero interval");
        assert!(e.message.contains("gc.interval"), "{e}");
        let e = parse("[gc]\nevery = \"1d\"\n", "f", &me()).expect_err("unknown key");
        assert_eq!(e.line, Some(2), "{e}");
    }
}
