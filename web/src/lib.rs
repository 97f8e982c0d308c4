//! # hero-web
//!
//! The web face of a hero store: read-only pages over one [`hero_store::Repo`] handle —
//! the timeline, any revision's tree and files, diffs, a file's and a key's history, the
//! decision records with the history of their status, and the peers, members and audit log —
//! kept live with server-sent events.
//!
//! ```no_run
//! # async fn example() -> Result<(), hero_web::WebError> {
//! let repo = std::sync::Arc::new(hero_store::Repo::open("/tmp/example.hero")?);
//! let auth = hero_dav::Auth::Token("secret".into());
//! let server = hero_web::bind_repo(repo, hero_web::WebConfig::new(auth)).await?;
//! println!("http://{}/", server.local_addr());
//! server.run(std::future::pending()).await
//! # }
//! ```
//!
//! What keeps it safe (docs/security.md, ADR 0026):
//! - every request is authenticated, on loopback too: `Authorization: Bearer <token>`, Basic
//!   with the token as the password (any user), or the cookie `/login?token=…` sets
//!   (`HttpOnly`, `SameSite=Strict`); the credentials are the WebDAV share's kind
//!   ([`hero_dav::Auth`]);
//! - only `GET` and `HEAD`; nothing here writes to the repository;
//! - every path and revision from the URL is parsed and checked ([`hero_store::RepoPath`],
//!   [`hero_store::View::resolve_dated`]): what does not exist is a 404, never a panic or a
//!   500;
//! - HTML is produced by `maud` templates, which escape every interpolated value; Markdown is
//!   rendered with its raw HTML shown as text and only `http`, `https`, `mailto` and relative
//!   links kept;
//! - a strict `Content-Security-Policy`: scripts, styles, images and connections from this
//!   origin only, no inline script or style, no framing; raw files are served as downloads
//!   (images inline) under `sandbox`.
//!
//! Commits are heard through [`hero_store::Repo::subscribe`] (as the mount and the daemon hear
//! them) and announced on `/events` when a branch or tag moved.
#![forbid(unsafe_code)]

mod assets;
mod error;
mod highlight;
pub mod history;
mod layout;
mod markdown;
mod pages;
mod request;
mod url;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{Either, Full};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

pub use error::{PageError, WebError};
pub use hero_dav::Auth;

/// The default address of the web face.
pub const DEFAULT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 4917);

/// The name of the cookie `/login` sets.
const COOKIE: &str = "hero_ui";

/// A peer as the daemon knows it, for the peers page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerView {
    /// Its node id.
    pub id: String,
    /// Where it came from (`config`, `remote NAME`, …).
    pub source: String,
    /// Whether a connection is open.
    pub connected: bool,
    /// The last successful sync, in seconds since the Unix epoch.
    pub last_sync: Option<u64>,
    /// Syncs so far.
    pub syncs: u64,
    /// The last failure.
    pub last_error: Option<String>,
    /// The head of the default branch the peer is known to have (from its announcements and
    /// sessions), in hex: the page counts how many commits it lags behind this node's.
    pub known_head: Option<String>,
}

/// What the daemon says about its peers, asked at each view of the peers page.
pub type PeerSource = Arc<dyn Fn() -> Vec<PeerView> + Send + Sync>;

/// What the web face serves and how.
#[derive(Clone)]
pub struct WebConfig {
    /// Where to listen (default 127.0.0.1:4917: beside the share on 4918 and sync on 4919).
    pub addr: SocketAddr,
    /// The credentials every request must present.
    pub auth: Auth,
    /// Allow an address beyond loopback (there is no TLS: the network must be trusted).
    pub trusted_network: bool,
    /// How often the generation counter is read for live updates where the repository file
    /// cannot be watched (default 100 ms); where it can, commits wake the page's updates.
    pub poll: Duration,
    /// The daemon's peers (none: the page shows what the repository records).
    pub peers: Option<PeerSource>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("addr", &self.addr)
            .field("trusted_network", &self.trusted_network)
            .field("poll", &self.poll)
            .finish_non_exhaustive()
    }
}

impl WebConfig {
    /// Defaults with these credentials.
    pub fn new(auth: Auth) -> WebConfig {
        WebConfig {
            addr: DEFAULT_ADDR,
            auth,
            trusted_network: false,
            poll: Duration::from_millis(100),
            peers: None,
        }
    }
}

/// The web face's token file of the repository at `repo`: `<repository file>.ui-token`
/// (read, or created on first use with mode 0600, by [`hero_dav::load_or_create_token`]).
pub fn token_path(repo: &Path) -> PathBuf {
    let mut s = repo.as_os_str().to_owned();
    s.push(".ui-token");
    PathBuf::from(s)
}

/// A bound web face, not yet serving.
pub struct Server {
    listener: TcpListener,
    ctx: Arc<Ctx>,
    live: watch::Sender<u64>,
    poll: Duration,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.local_addr())
            .finish_non_exhaustive()
    }
}

struct Ctx {
    repo: Arc<hero_store::Repo>,
    peers: Option<PeerSource>,
    auth: Auth,
    live: watch::Receiver<u64>,
}

/// Opens the repository at `path` and binds the web face.
pub async fn bind(path: &Path, config: WebConfig) -> Result<Server, WebError> {
    let repo = Arc::new(hero_store::Repo::open(path)?);
    bind_repo(repo, config).await
}

/// Binds the web face over an open repository.
pub async fn bind_repo(repo: Arc<hero_store::Repo>, config: WebConfig) -> Result<Server, WebError> {
    if !config.addr.ip().is_loopback() && !config.trusted_network {
        return Err(WebError::Insecure { addr: config.addr });
    }
    if config.auth.is_empty() {
        return Err(WebError::EmptyCredentials);
    }
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|source| WebError::Bind {
            addr: config.addr,
            source,
        })?;
    let (live, rx) = watch::channel(0u64);
    tracing::info!(addr = %config.addr, "web face ready");
    Ok(Server {
        listener,
        ctx: Arc::new(Ctx {
            repo,
            peers: config.peers,
            auth: config.auth,
            live: rx,
        }),
        live,
        poll: config.poll,
    })
}

impl Server {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Serves until `shutdown` completes. Open event streams end with it.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), WebError> {
        let Server {
            listener,
            ctx,
            live,
            poll,
        } = self;
        let watcher = tokio::spawn(watch_refs(ctx.repo.clone(), live, poll));
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                _ = &mut shutdown => break,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let ctx = ctx.clone();
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
        // Dropping the sender ends every event stream.
        watcher.abort();
        tracing::info!("web face stopped");
        Ok(())
    }
}

/// Bumps `live` whenever a branch or tag moved: woken by the repository's write transactions
/// (or every `poll` where the file cannot be watched), it compares the generation counter,
/// and the refs only when it changed.
async fn watch_refs(repo: Arc<hero_store::Repo>, live: watch::Sender<u64>, poll: Duration) {
    let refs = |repo: &hero_store::Repo| -> Option<(Vec<(String, hero_store::ObjectId)>, usize)> {
        let b = repo.branches().ok()?;
        let t = repo.tags().ok()?;
        Some((b, t.len()))
    };
    let (tx, mut changed) = watch::channel(0u64);
    let changes = repo.subscribe(move || tx.send_modify(|n| *n = n.wrapping_add(1)));
    let mut generation = repo.generation().unwrap_or(0);
    let mut last = refs(&repo);
    loop {
        let fallback = if changes.watched() {
            changes.fallback()
        } else {
            poll
        };
        tokio::select! {
            r = changed.changed() => {
                if r.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep(fallback) => {}
        }
        let Ok(g) = repo.generation() else { continue };
        if g == generation {
            continue;
        }
        generation = g;
        let now = refs(&repo);
        if now != last {
            last = now;
            live.send_modify(|n| *n += 1);
        }
    }
}

type Body = Either<Full<Bytes>, Events>;

/// A server-sent event stream: what its task sends.
pub struct Events {
    rx: mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for Events {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// What a page handler answers.
pub(crate) enum Reply {
    /// An HTML page.
    Html(String),
    /// A stored file's bytes.
    Raw {
        bytes: Vec<u8>,
        content_type: &'static str,
        /// Shown inline (images) rather than downloaded.
        inline: bool,
        name: String,
    },
    /// A redirect (303) to a path on this server.
    Redirect(String),
}

/// The policy of every page: nothing from elsewhere, no inline script or style, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

/// The policy of a raw file: nothing runs, even opened directly.
const CSP_RAW: &str = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox";

fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Either::Left(Full::new(body.into())));
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

fn secure(mut r: Response<Body>, csp: &'static str) -> Response<Body> {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    r
}

/// The token the `hero_ui` cookie carries, if any.
fn cookie_token<B>(req: &Request<B>) -> Option<&[u8]> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.as_bytes())
}

fn authorized<B>(auth: &Auth, req: &Request<B>) -> bool {
    hero_dav::authorized(auth, req)
        || cookie_token(req).is_some_and(|t| hero_dav::secret_matches(auth, t))
}

fn unauthorized() -> Response<Body> {
    let page = layout::bare(
        "Sign in",
        maud::html! {
            h1 { "Sign in" }
            p { "This page needs the web face's token: open "
                code { "/login?token=TOKEN" }
                " with the token of "
                code { "<repository>.ui-token" }
                " (or "
                code { "$HERO_UI_TOKEN" }
                "), or give it as the password with any user name. "
                code { "heroctl ui --open" }
                " does this for you." }
        },
    );
    let mut r = respond(StatusCode::UNAUTHORIZED, "text/html; charset=utf-8", page);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"hero store\", charset=\"UTF-8\""),
    );
    secure(r, CSP)
}

async fn handle(ctx: Arc<Ctx>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    Ok(answer(ctx, req).await)
}

async fn answer(ctx: Arc<Ctx>, req: Request<Incoming>) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "read-only: GET and HEAD only\n",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return secure(r, CSP);
    }
    let head = req.method() == Method::HEAD;
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    if let Some((content_type, body)) = assets::get(&path) {
        let mut r = respond(StatusCode::OK, content_type, body);
        r.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=300"),
        );
        return secure(r, CSP);
    }
    if path == "/login" {
        return login(&ctx.auth, &query);
    }
    if !authorized(&ctx.auth, &req) {
        return unauthorized();
    }
    if path == "/events" {
        return secure(events(ctx.live.clone()), CSP);
    }
    let ctx2 = ctx.clone();
    let reply = tokio::task::spawn_blocking(move || {
        pages::route(&ctx2.repo, ctx2.peers.as_ref(), &path, &query)
    })
    .await;
    let r = match reply {
        Ok(Ok(Reply::Html(html))) => respond(StatusCode::OK, "text/html; charset=utf-8", html),
        Ok(Ok(Reply::Raw {
            bytes,
            content_type,
            inline,
            name,
        })) => {
            let mut r = respond(StatusCode::OK, content_type, bytes);
            let disposition = format!(
                "{}; filename*=UTF-8''{}",
                if inline { "inline" } else { "attachment" },
                url::encode_component(name.as_bytes())
            );
            if let Ok(v) = HeaderValue::from_str(&disposition) {
                r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            return secure(r, CSP_RAW);
        }
        Ok(Ok(Reply::Redirect(to))) => {
            let mut r = respond(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
            if let Ok(v) = HeaderValue::from_str(&to) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        Ok(Err(e)) => {
            let status = e.status();
            if status.is_server_error() {
                tracing::error!(error = %e, "page failed");
            }
            respond(
                status,
                "text/html; charset=utf-8",
                layout::error_page(status, &e),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "page task failed");
            respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain; charset=utf-8",
                "internal error\n",
            )
        }
    };
    let mut r = secure(r, CSP);
    if head {
        *r.body_mut() = Either::Left(Full::new(Bytes::new()));
    }
    r
}

/// `/login?token=…`: a valid token sets the cookie and goes to the timeline.
fn login(auth: &Auth, query: &str) -> Response<Body> {
    let token = url::query_pairs(query)
        .into_iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v);
    match token {
        Some(t) if hero_dav::secret_matches(auth, t.as_bytes()) && url::cookie_safe(&t) => {
            let mut r = respond(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
            r.headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static("/"));
            if let Ok(v) =
                HeaderValue::from_str(&format!("{COOKIE}={t}; Path=/; HttpOnly; SameSite=Strict"))
            {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            secure(r, CSP)
        }
        _ => unauthorized(),
    }
}

/// `/events`: `event: commit` each time a branch or tag moved, a comment every 15 s to keep
/// the connection open.
fn events(mut live: watch::Receiver<u64>) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    live.mark_unchanged();
    tokio::spawn(async move {
        if tx
            .send(Bytes::from_static(b"retry: 1000\n\n"))
            .await
            .is_err()
        {
            return;
        }
        loop {
            let frame = tokio::select! {
                r = live.changed() => match r {
                    Ok(()) => {
                        let n = *live.borrow_and_update();
                        Bytes::from(format!("event: commit\ndata: {n}\n\n"))
                    }
                    Err(_) => break,
                },
                _ = tokio::time::sleep(Duration::from_secs(15)) => Bytes::from_static(b": keep-alive\n\n"),
            };
            if tx.send(frame).await.is_err() {
                break;
            }
        }
    });
    let mut r = Response::new(Either::Right(Events { rx }));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
