//! The daemon's control socket (`<repository file>.sock`, mode 0600) and systemd's readiness
//! notification.
//!
//! The protocol is one line per connection: the client sends `status`, `reload`,
//! `script "TEXT"` (a HeroScript as a JSON string, run as `heroctl script -` runs it), or
//! `pull TICKET` / `push TICKET [BRANCH]` (a session on the daemon's pooled connection,
//! `commands::daemon::asked`); the daemon answers one JSON value and closes.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::error::{Kind, tagged, tagged_hint};

/// The control socket of the repository at `repo`.
pub fn socket_path(repo: &Path) -> PathBuf {
    let mut s = repo.as_os_str().to_owned();
    s.push(".sock");
    PathBuf::from(s)
}

/// Binds the control socket; refuses when a daemon answers on it already, replaces a socket
/// left by one that ended.
pub async fn bind(path: &Path) -> Result<UnixListener> {
    if path.exists() {
        match UnixStream::connect(path).await {
            Ok(_) => {
                return Err(tagged_hint(
                    Kind::Refused,
                    format!(
                        "a daemon already runs here (its socket is {})",
                        path.display()
                    ),
                    "`heroctl daemon status` shows it",
                ));
            }
            Err(_) => {
                std::fs::remove_file(path)
                    .with_context(|| format!("removing the stale socket {}", path.display()))?;
            }
        }
    }
    // Bound in a directory only this account can enter, made 0600 there and then renamed into
    // place: no other account can ever connect, not even between the bind and a chmod
    // (ADR 0022).
    let mut private = path.as_os_str().to_owned();
    private.push(format!(".tmp-{}", std::process::id()));
    let private = PathBuf::from(private);
    let _ = std::fs::remove_dir_all(&private);
    hero_store::private::create_dir_all(&private)
        .with_context(|| format!("creating {}", private.display()))?;
    let inner = private.join("sock");
    let bound = (|| {
        let l =
            UnixListener::bind(&inner).with_context(|| format!("binding {}", path.display()))?;
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("setting the mode of {}", path.display()))?;
        std::fs::rename(&inner, path).with_context(|| format!("binding {}", path.display()))?;
        Ok(l)
    })();
    let _ = std::fs::remove_dir_all(&private);
    bound
}

/// The longest request line: a script and its quoting.
pub const MAX_REQUEST: u64 = 1 << 20;

/// Reads one request line (bounded).
pub async fn read_request(stream: &mut UnixStream) -> Option<String> {
    let mut line = String::new();
    let mut r = BufReader::new(stream).take(MAX_REQUEST);
    let read = tokio::time::timeout(Duration::from_secs(5), r.read_line(&mut line)).await;
    match read {
        Ok(Ok(_)) => Some(line.trim().to_owned()),
        _ => None,
    }
}

/// Sends `request` to the daemon of `repo` and returns its JSON answer.
pub fn ask(repo: &Path, request: &str) -> Result<serde_json::Value> {
    ask_within(repo, request, Duration::from_secs(30))
}

/// [`ask`], waiting at most `wait` for the answer.
pub fn ask_within(repo: &Path, request: &str, wait: Duration) -> Result<serde_json::Value> {
    try_ask(repo, request, wait)?.ok_or_else(|| {
        tagged_hint(
            Kind::NotFound,
            format!("no daemon is running for {}", repo.display()),
            "start one with `heroctl daemon`",
        )
    })
}

/// [`ask_within`], `None` when no daemon takes the request (no socket, or one left by a
/// daemon that ended).
pub fn try_ask(repo: &Path, request: &str, wait: Duration) -> Result<Option<serde_json::Value>> {
    use std::io::{Read, Write};
    let path = socket_path(repo);
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(&path) else {
        return Ok(None);
    };
    s.set_read_timeout(Some(wait))?;
    if s.write_all(format!("{request}\n").as_bytes()).is_err() {
        return Ok(None);
    }
    let mut text = String::new();
    s.read_to_string(&mut text)
        .context("reading the daemon's answer")?;
    serde_json::from_str(&text).map(Some).map_err(|e| {
        tagged(
            Kind::Internal,
            format!("the daemon's answer is not JSON: {e}"),
        )
    })
}

/// Writes a JSON answer and closes.
pub async fn answer(mut stream: UnixStream, v: &serde_json::Value) {
    let text = v.to_string();
    let _ = stream.write_all(text.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Tells systemd (or any supervisor listening on `$NOTIFY_SOCKET`) a state such as
/// `READY=1`; nothing when the variable is not set.
pub fn sd_notify(state: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET").filter(|s| !s.is_empty()) else {
        return;
    };
    let sock = match std::os::unix::net::UnixDatagram::unbound() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("sd_notify: {e}");
            return;
        }
    };
    use std::os::unix::ffi::OsStrExt;
    let bytes = target.as_bytes();
    let sent = if let Some(name) = bytes.strip_prefix(b"@") {
        // An abstract socket: `@` stands for the leading NUL.
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|addr| sock.send_to_addr(state.as_bytes(), &addr))
    } else {
        sock.send_to(state.as_bytes(), Path::new(&target))
    };
    if let Err(e) = sent {
        tracing::warn!("sd_notify to {}: {e}", target.to_string_lossy());
    }
}
