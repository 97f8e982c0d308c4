//! # hero-dav
//!
//! A WebDAV share of a hero store branch, built on dav-server's filesystem traits implemented
//! over the store itself (no checkout).
//!
//! - Reads always see the branch head as it is at the request (changes from other processes
//!   or a pull are visible to the next request) and stream with bounded memory.
//! - Writes (PUT, MKCOL, MOVE, COPY, DELETE) become commits on the branch; concurrent writes
//!   within [`DavConfig::commit_window`] land as one commit; a response is sent only once its
//!   change is committed. Uploads above 1 MiB are spooled to a temp file in the spill directory.
//!   A DELETE, COPY or MOVE of a collection is one commit, however many members it has.
//! - PROPFIND naming properties answers each one a resource lacks with a 404 propstat.
//! - Locks, dead properties and file times are kept in the repository's settings under `dav/`,
//!   so they survive a restart.
//! - `/.snapshots/<branch|tag|commit>/...` is a read-only view of any revision.
//! - Every request must authenticate ([`Auth`]; ADR 0022): any account on the machine can
//!   reach a loopback port, and a write through the share carries the authority of the
//!   account the share runs as. [`load_or_create_token`] keeps a token in a file beside the
//!   repository only that account can read ([`token_path`]); 401 otherwise.
//! - `.hero/` (the daemon's configuration) can be made read-only through the share
//!   ([`DavConfig::config_writable`]): every change there is then refused (403).
//! - Binding to anything but loopback needs `trusted_network` (this crate does not terminate
//!   TLS; put a TLS proxy in front and set the flag).
//!
//! ```no_run
//! # async fn run() -> Result<(), hero_dav::DavError> {
//! let repo = std::path::Path::new("/tmp/example.hero");
//! let token = hero_dav::load_or_create_token(&hero_dav::token_path(repo))?;
//! let config = hero_dav::DavConfig::new(repo, hero_dav::Auth::Token(token));
//! let server = hero_dav::bind(config).await?;
//! println!("serving on {}", server.local_addr());
//! server.run(std::future::pending::<()>()).await
//! # }
//! ```
#![forbid(unsafe_code)]

mod codec;
mod fs;
mod locks;
mod meta;
mod propfind;
mod writer;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use dav_server::DavHandler;
use dav_server::body::Body;
use dav_server::davpath::DavPath;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::fs::StoreFs;
use crate::locks::StoreLocks;
use crate::meta::Meta;
pub use hero_store::Author;

use crate::writer::Writer;

/// Credentials a client must present.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// A bearer token (`Authorization: Bearer <token>`), also accepted as the password of
    /// Basic authentication with any user name (for clients that only speak Basic).
    Token(String),
    /// Basic authentication with this user and password.
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Token(_) => f.write_str("Auth::Token(..)"),
            Auth::Basic { user, .. } => write!(f, "Auth::Basic({user:?}, ..)"),
        }
    }
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct DavConfig {
    /// The repository file.
    pub repo: PathBuf,
    /// Where to listen (port 0: any free port, see [`Server::local_addr`]).
    pub addr: SocketAddr,
    /// The branch to share.
    pub branch: String,
    /// How long a batch of concurrent writes may wait for more before it is committed.
    pub commit_window: Duration,
    /// Credentials every client must present.
    pub auth: Auth,
    /// Serve plain HTTP off loopback (the network is trusted, or a TLS proxy is in front).
    pub trusted_network: bool,
    /// Author and committer of the commits (its peer, when set, is recorded in each commit's
    /// `hero-peer` header). The share reads no environment for it.
    pub author: Author,
    /// Where large uploads are spooled (default: the repository file's directory).
    pub spill_dir: Option<PathBuf>,
    /// Whether `.hero/` (the daemon's configuration) may be changed through the share; read
    /// at every request, so the caller may switch it while serving (a daemon that is no owner
    /// of the membership turns it off). When off, every change there is refused with 403.
    /// Default: on.
    pub config_writable: Arc<AtomicBool>,
}

impl DavConfig {
    /// Defaults: 127.0.0.1:4918, branch `main`, a 200 ms commit window, `.hero/` writable.
    pub fn new(repo: impl Into<PathBuf>, auth: Auth) -> DavConfig {
        DavConfig {
            repo: repo.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 4918)),
            branch: "main".into(),
            commit_window: Duration::from_millis(200),
            auth,
            trusted_network: false,
            author: Author::new("hero-dav", "hero-dav@localhost"),
            spill_dir: None,
            config_writable: Arc::new(AtomicBool::new(true)),
        }
    }
}

/// Why the share cannot start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DavError {
    /// The repository could not be opened or read.
    #[error(transparent)]
    Store(#[from] hero_store::Error),
    /// Listening or another I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// Refusing to listen beyond loopback without protection.
    #[error("refusing to serve on {addr}: {reason}")]
    Insecure {
        /// The address asked for.
        addr: SocketAddr,
        /// What is missing.
        reason: &'static str,
    },
    /// The configuration is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The token file could not be read or created, or holds no token.
    #[error("token file {}: {source}", path.display())]
    Token {
        /// The token file.
        path: PathBuf,
        /// The error (`InvalidData` when the file holds no token).
        #[source]
        source: std::io::Error,
    },
}

/// A bound, ready share.
pub struct Server {
    listener: TcpListener,
    ctx: Arc<Ctx>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.listener.local_addr().ok())
            .finish()
    }
}

struct Ctx {
    handler: DavHandler,
    fs: StoreFs,
    auth: Auth,
    config_writable: Arc<AtomicBool>,
}

/// Checks the configuration, opens the repository (with the resident memory budget,
/// [`hero_store::MemoryBudget::RESIDENT`]) and binds the address.
pub async fn bind(config: DavConfig) -> Result<Server, DavError> {
    let repo = Arc::new(hero_store::Repo::open_with_budget(
        &config.repo,
        hero_store::MemoryBudget::RESIDENT,
    )?);
    bind_repo(repo, config).await
}

/// Checks the configuration and binds the address, serving an open repository shared with
/// the caller (a daemon that also mounts and syncs it); [`DavConfig::repo`] only places the
/// default spill directory.
pub async fn bind_repo(repo: Arc<hero_store::Repo>, config: DavConfig) -> Result<Server, DavError> {
    // The share writes its branch: hero's own branches (the membership) are never shared.
    if hero_store::is_reserved_branch(&config.branch) {
        return Err(DavError::Store(hero_store::Error::ReservedBranch(
            config.branch.clone(),
        )));
    }
    if !config.addr.ip().is_loopback() && !config.trusted_network {
        return Err(DavError::Insecure {
            addr: config.addr,
            reason: "this server does not do TLS; put a TLS proxy in front and say the \
                     network is trusted, or bind to loopback",
        });
    }
    if config.auth.is_empty() {
        return Err(DavError::Config("the share's credentials are empty".into()));
    }
    hero_store::branch_ref(&config.branch)?;
    let spill_dir = match &config.spill_dir {
        Some(d) => d.clone(),
        None => config
            .repo
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    if !spill_dir.is_dir() {
        return Err(DavError::Config(format!(
            "spill directory {} does not exist",
            spill_dir.display()
        )));
    }
    let meta = Arc::new(Meta::load(repo.clone(), &config.branch)?);
    let locks = StoreLocks::load(repo.clone(), &config.branch)?;
    let writer = Writer::start(
        repo.clone(),
        config.branch.clone(),
        meta.clone(),
        config.commit_window,
        config.author.clone(),
    )
    .map_err(|source| DavError::Io {
        context: "starting the committer".into(),
        source,
    })?;
    let fs = StoreFs::new(repo, config.branch.clone(), writer, meta, spill_dir);
    let handler = DavHandler::builder()
        .filesystem(Box::new(fs.clone()))
        .locksystem(Box::new(locks))
        .autoindex(true)
        .read_buf_size(1 << 20)
        .build_handler();
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|source| DavError::Io {
            context: format!("binding {}", config.addr),
            source,
        })?;
    tracing::info!(addr = %config.addr, branch = %config.branch, "WebDAV share ready");
    Ok(Server {
        listener,
        ctx: Arc::new(Ctx {
            handler,
            fs,
            auth: config.auth,
            config_writable: config.config_writable,
        }),
    })
}

/// Binds and serves until `shutdown` completes.
pub async fn serve(config: DavConfig, shutdown: impl Future<Output = ()>) -> Result<(), DavError> {
    bind(config).await?.run(shutdown).await
}

impl Server {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Serves connections until `shutdown` completes; connections already open finish their
    /// current request.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), DavError> {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                _ = &mut shutdown => break,
                r = self.listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let ctx = self.ctx.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| handle(ctx.clone(), req));
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await
                {
                    tracing::debug!(%peer, error = %e, "connection ended");
                }
            });
        }
        tracing::info!("WebDAV share stopped");
        Ok(())
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = status;
    r
}

async fn handle(ctx: Arc<Ctx>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    // Every method, OPTIONS included: the clients in use (davfs2 and litmus through neon,
    // rclone, curl, Windows) answer a 401 with their credentials, and a share that says
    // nothing to strangers tells them nothing either.
    if !authorized(&ctx.auth, &req) {
        tracing::debug!(method = %req.method(), "unauthenticated request refused");
        let mut r = plain(StatusCode::UNAUTHORIZED, "authentication required\n");
        r.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static(REALM),
        );
        return Ok(r);
    }
    if !ctx.config_writable.load(Ordering::Relaxed) && changes_config(&req) {
        tracing::info!(method = %req.method(), path = %req.uri().path(), "refused: the configuration is not writable here");
        return Ok(plain(
            StatusCode::FORBIDDEN,
            "the configuration (.hero/) cannot be changed on this node\n",
        ));
    }
    if let Some(h) = req.headers().get("if")
        && !if_header_closed(h.as_bytes())
    {
        // dav-server's parser runs off the end of an unterminated `<...>` or `[...]`.
        return Ok(plain(StatusCode::BAD_REQUEST, "malformed If header\n"));
    }
    match req.method().as_str() {
        "PROPPATCH" => return Ok(proppatch(&ctx, req).await),
        "PROPFIND" => return Ok(propfind(&ctx, req).await),
        "DELETE" | "COPY" | "MOVE" => return Ok(grouped(&ctx, req).await),
        _ => {}
    }
    Ok(ctx.handler.handle(req).await)
}

/// PROPPATCH: dav-server acknowledges the Win32 properties Windows sends without storing them;
/// they are applied here once dav-server has accepted the request (locks checked).
async fn proppatch(ctx: &Ctx, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, 1 << 20).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "request too large\n"),
    };
    let win32 = win32_times(&body);
    let path = DavPath::from_uri(&parts.uri).ok();
    let req = Request::from_parts(parts, Full::new(body));
    let res = ctx.handler.handle(req).await;
    if res.status() == StatusCode::MULTI_STATUS
        && let (Some(w), Some(path)) = (win32, path)
        && let Err(e) = ctx.fs.set_win32(&path, w.mtime, w.ctime, w.attrs)
    {
        tracing::warn!(error = ?e, path = %path, "applying Win32 properties failed");
    }
    res
}

/// PROPFIND: a request naming properties gets a 404 propstat for each one a resource lacks
/// (dav-server leaves them out).
async fn propfind(ctx: &Ctx, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, 1 << 20).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "request too large\n"),
    };
    let wanted = propfind::requested(&body);
    let res = ctx
        .handler
        .handle(Request::from_parts(parts, Full::new(body)))
        .await;
    let Some(wanted) = wanted.filter(|w| !w.is_empty()) else {
        return res;
    };
    if res.status() != StatusCode::MULTI_STATUS {
        return res;
    }
    let (parts, body) = res.into_parts();
    let xml = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            tracing::warn!(error = %e, "PROPFIND response failed");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "PROPFIND failed\n");
        }
    };
    let xml = match propfind::add_missing(&xml, &wanted) {
        Some(v) => Bytes::from(v),
        None => xml,
    };
    Response::from_parts(parts, Body::from(xml))
}

/// DELETE, COPY and MOVE: every change the request makes (one per member of a collection)
/// lands in one commit, made before the response is sent.
async fn grouped(ctx: &Ctx, req: Request<Incoming>) -> Response<Body> {
    let label = format!(
        "{} {}{}",
        req.method().as_str().to_ascii_lowercase(),
        percent_decoded(req.uri().path()),
        req.headers()
            .get("destination")
            .and_then(|d| d.to_str().ok())
            .and_then(|d| d.parse::<http::Uri>().ok())
            .map(|u| format!(" to {}", percent_decoded(u.path())))
            .unwrap_or_default()
    );
    let group = fs::Group::default();
    let (parts, body) = fs::GROUP
        .scope(group.clone(), async {
            let res = ctx.handler.handle(req).await;
            // A multistatus body is produced lazily; drain it here so all its changes are seen.
            let (parts, body) = res.into_parts();
            (parts, body.collect().await.map(|b| b.to_bytes()))
        })
        .await;
    let ops = group.take();
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "response failed");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "request failed\n");
        }
    };
    if !ops.is_empty()
        && let Err(status) = ctx.fs.submit_group(label, ops).await
    {
        return plain(status, "the change could not be committed\n");
    }
    Response::from_parts(parts, Body::from(body))
}

fn percent_decoded(p: &str) -> String {
    let b = p.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Win32 {
    mtime: Option<std::time::SystemTime>,
    ctime: Option<std::time::SystemTime>,
    attrs: Option<u32>,
}

const NS_MS: &str = "urn:schemas-microsoft-com:";

fn win32_times(body: &Bytes) -> Option<Win32> {
    let tree = xmltree::Element::parse(body.as_ref()).ok()?;
    let mut w = Win32 {
        mtime: None,
        ctime: None,
        attrs: None,
    };
    for set in tree.children.iter().filter_map(|n| n.as_element()) {
        if set.name != "set" {
            continue;
        }
        for prop in set.children.iter().filter_map(|n| n.as_element()) {
            if prop.name != "prop" {
                continue;
            }
            for p in prop.children.iter().filter_map(|n| n.as_element()) {
                if p.namespace.as_deref() != Some(NS_MS) {
                    continue;
                }
                let Some(text) = p.get_text() else { continue };
                let text = text.trim();
                match p.name.as_str() {
                    "Win32LastModifiedTime" => w.mtime = httpdate::parse_http_date(text).ok(),
                    "Win32CreationTime" => w.ctime = httpdate::parse_http_date(text).ok(),
                    "Win32FileAttributes" => w.attrs = u32::from_str_radix(text, 16).ok(),
                    _ => {}
                }
            }
        }
    }
    (w.mtime.is_some() || w.ctime.is_some() || w.attrs.is_some()).then_some(w)
}

/// Whether every `<` and `[` in an `If:` header is closed.
fn if_header_closed(h: &[u8]) -> bool {
    let mut i = 0;
    while i < h.len() {
        let close = match h[i] {
            b'<' => b'>',
            b'[' => b']',
            _ => {
                i += 1;
                continue;
            }
        };
        let mut quote = false;
        let mut j = i + 1;
        while j < h.len() && (quote || h[j] != close) {
            if h[j] == b'"' {
                quote = !quote;
            }
            j += 1;
        }
        if j >= h.len() {
            return false;
        }
        i = j + 1;
    }
    true
}

/// The challenge of a 401.
const REALM: &str = "Basic realm=\"hero store\"";

/// Whether a request would change something in `.hero/` (its path, or for COPY and MOVE the
/// destination; a MOVE also takes its source away). Reads and UNLOCK change nothing.
fn changes_config<B>(req: &Request<B>) -> bool {
    let in_config =
        |path: &str| DavPath::new(path).is_ok_and(|p| hero_store::is_config_path(p.as_bytes()));
    let method = req.method().as_str();
    if matches!(method, "GET" | "HEAD" | "OPTIONS" | "PROPFIND" | "UNLOCK") {
        return false;
    }
    let destination = req
        .headers()
        .get("destination")
        .and_then(|d| d.to_str().ok())
        .and_then(|d| d.parse::<http::Uri>().ok())
        .is_some_and(|u| in_config(u.path()));
    match method {
        "COPY" => destination,
        "MOVE" => destination || in_config(req.uri().path()),
        _ => in_config(req.uri().path()),
    }
}

/// The share's token file of the repository at `repo`: `<repository file>.dav-token`.
pub fn token_path(repo: &Path) -> PathBuf {
    let mut s = repo.as_os_str().to_owned();
    s.push(".dav-token");
    PathBuf::from(s)
}

/// Reads the token in `path`, creating the file on first use: 32 random bytes in hex, mode
/// 0600 whatever the umask, created atomically (a temporary file hard-linked to `path`, so
/// processes starting at once all end with the one token that won). A file whose mode lets
/// other accounts read it is tightened to 0600 (logged). An empty file, or one holding
/// anything but one line of printable ASCII, is an error (`InvalidData`), never replaced.
pub fn load_or_create_token(path: &Path) -> Result<String, DavError> {
    let err = |source| DavError::Token {
        path: path.to_owned(),
        source,
    };
    for _ in 0..2 {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                hero_store::private::tighten_logged(path, "the token file");
                let token = text.trim();
                if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "it holds no token (one line of printable ASCII); delete it to make a \
                         new one",
                    )));
                }
                return Ok(token.to_owned());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let token = new_token().map_err(err)?;
                match hero_store::private::write_new_atomically(
                    path,
                    format!("{token}\n").as_bytes(),
                )
                .map_err(err)?
                {
                    hero_store::private::WriteNew::Created => {
                        tracing::info!(path = %path.display(), "created the token file");
                        return Ok(token);
                    }
                    hero_store::private::WriteNew::Exists => continue,
                }
            }
            Err(e) => return Err(err(e)),
        }
    }
    Err(err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "it keeps disappearing",
    )))
}

/// 32 bytes from the kernel's random source, in hex.
fn new_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    let mut filled = 0;
    while filled < bytes.len() {
        filled +=
            rustix::rand::getrandom(&mut bytes[filled..], rustix::rand::GetRandomFlags::empty())
                .map_err(std::io::Error::from)?;
    }
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Auth {
    /// Whether the secret is empty (a server refuses to start with it).
    pub fn is_empty(&self) -> bool {
        match self {
            Auth::Token(t) => t.is_empty(),
            Auth::Basic { password, .. } => password.is_empty(),
        }
    }
}

/// Whether a request carries the credentials `auth` asks for (`Authorization: Bearer` with the
/// token, or Basic with the token as the password, or the user and password asked for).
/// Shared with the web face, which authenticates the same way.
pub fn authorized<B>(auth: &Auth, req: &Request<B>) -> bool {
    let Some(h) = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
    else {
        return false;
    };
    let (scheme, value) = h.trim().split_once(' ').unwrap_or((h, ""));
    let value = value.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return matches!(auth, Auth::Token(t) if same(t.as_bytes(), value.as_bytes()));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Some(decoded) = base64_decode(value) else {
        return false;
    };
    let Some(colon) = decoded.iter().position(|&b| b == b':') else {
        return false;
    };
    let (u, p) = (&decoded[..colon], &decoded[colon + 1..]);
    match auth {
        Auth::Token(t) => same(t.as_bytes(), p),
        Auth::Basic { user, password } => same(user.as_bytes(), u) & same(password.as_bytes(), p),
    }
}

/// Whether `presented` is the secret of `auth` (the token, or the Basic password), compared
/// without an early exit.
pub fn secret_matches(auth: &Auth, presented: &[u8]) -> bool {
    match auth {
        Auth::Token(t) => same(t.as_bytes(), presented),
        Auth::Basic { password, .. } => same(password.as_bytes(), presented),
    }
}

/// Compares without an early exit on the first differing byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        match chunk.len() {
            4 => out.extend_from_slice(&bytes[1..4]),
            3 => out.extend_from_slice(&bytes[1..3]),
            2 => out.push(bytes[1]),
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_auth() {
        assert_eq!(base64_decode("dXNlcjpwYXNz"), Some(b"user:pass".to_vec()));
        assert_eq!(base64_decode("YQ=="), Some(b"a".to_vec()));
        assert_eq!(base64_decode("YWI="), Some(b"ab".to_vec()));
        assert_eq!(base64_decode("!!"), None);
        let auth = Auth::Basic {
            user: "user".into(),
            password: "pass".into(),
        };
        let req = |h: &str| {
            Request::builder()
                .header("authorization", h)
                .body(())
                .unwrap_or_default()
        };
        assert!(authorized(&auth, &req("Basic dXNlcjpwYXNz")));
        assert!(!authorized(&auth, &req("Basic dXNlcjpwYXNT")));
        let tok = Auth::Token("s3cret".into());
        assert!(authorized(&tok, &req("Bearer s3cret")));
        assert!(!authorized(&tok, &req("Bearer s3cre")));
    }

    #[test]
    fn token_file_made_once_owner_only() -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let path = token_path(&dir.path().join("r.hero"));
        assert!(path.ends_with("r.hero.dav-token"));
        let tokens = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| s.spawn(|| load_or_create_token(&path).map_err(|e| e.to_string())))
                .collect();
            hs.into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("panicked".into())))
                .collect::<Result<Vec<_>, _>>()
        })?;
        assert_eq!(tokens[0].len(), 64);
        assert!(tokens.iter().all(|t| *t == tokens[0]));
        let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_dir(dir.path())?.count(), 1);
        std::fs::write(&path, b"\n")?;
        assert!(matches!(
            load_or_create_token(&path),
            Err(DavError::Token { source, .. }) if source.kind() == std::io::ErrorKind::InvalidData
        ));
        Ok(())
    }

    #[test]
    fn config_changes_recognised() {
        let req = |m: &str, path: &str, dest: Option<&str>| {
            let mut b = Request::builder().method(m).uri(path);
            if let Some(d) = dest {
                b = b.header("destination", d);
            }
            b.body(()).unwrap_or_default()
        };
        assert!(changes_config(&req("PUT", "/.hero/daemon.toml", None)));
        assert!(changes_config(&req("PUT", "/%2ehero/daemon.toml", None)));
        assert!(changes_config(&req("MKCOL", "/.hero", None)));
        assert!(changes_config(&req("DELETE", "/a/../.hero/", None)));
        assert!(changes_config(&req("MOVE", "/a", Some("http://h/.hero/a"))));
        assert!(changes_config(&req("MOVE", "/.hero/a", Some("http://h/a"))));
        assert!(!changes_config(&req(
            "COPY",
            "/.hero/a",
            Some("http://h/a")
        )));
        assert!(!changes_config(&req("GET", "/.hero/daemon.toml", None)));
        assert!(!changes_config(&req("PROPFIND", "/.hero/", None)));
        assert!(!changes_config(&req("PUT", "/.heroignore", None)));
        assert!(!changes_config(&req("PUT", "/a/.hero/x", None)));
    }

    #[test]
    fn if_headers_checked() {
        assert!(if_header_closed(
            b"(<urn:uuid:x> [\"ab\"]) (Not <DAV:no-lock>)"
        ));
        assert!(!if_header_closed(b"(<urn:uuid:x> [\"ab"));
        assert!(!if_header_closed(b"(<urn:uu"));
    }

    #[test]
    fn win32_props_parse() {
        let body = Bytes::from_static(
            br#"<?xml version="1.0" encoding="utf-8" ?><D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop><Z:Win32LastModifiedTime>Wed, 01 Jan 2020 10:00:00 GMT</Z:Win32LastModifiedTime><Z:Win32FileAttributes>00000020</Z:Win32FileAttributes></D:prop></D:set></D:propertyupdate>"#,
        );
        let w = win32_times(&body);
        assert!(w.is_some());
        if let Some(w) = w {
            assert_eq!(
                w.mtime,
                Some(std::time::UNIX_EPOCH + Duration::from_secs(1_577_872_800))
            );
            assert_eq!(w.attrs, Some(0x20));
        }
    }
}
