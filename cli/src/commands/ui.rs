//! `heroctl ui`: the web face of a repository without a daemon (the daemon serves the same
//! pages when its `[ui]` section says so).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use crate::context::{shutdown_signal, ui_auth};
use crate::output::outln;

/// Arguments of `ui`.
#[derive(Args, Debug)]
pub struct UiArgs {
    /// Address to listen on. Anything but loopback needs --trusted-network.
    #[arg(long, default_value_t = hero_web::DEFAULT_ADDR)]
    pub addr: SocketAddr,
    /// Open the timeline in the browser, signed in (through a page readable only by you,
    /// so the token never appears on a command line).
    #[arg(long)]
    pub open: bool,
    /// The file holding the token a browser must present; created on first use, mode 0600
    /// [default: REPO.ui-token]. HERO_UI_TOKEN, when set, is the token instead.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Say that the network is trusted (no TLS) when binding beyond loopback.
    #[arg(long)]
    pub trusted_network: bool,
}

/// Serves the web face until Ctrl-C or SIGTERM.
pub fn run(repo: &Path, a: UiArgs) -> Result<()> {
    let (token, from) = ui_auth(repo, a.token_file.as_deref())?;
    let mut cfg = hero_web::WebConfig::new(hero_web::Auth::Token(token.clone()));
    cfg.addr = a.addr;
    cfg.trusted_network = a.trusted_network;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let server = hero_web::bind(repo, cfg)
            .await
            .with_context(|| format!("starting the web face of {}", repo.display()))?;
        let addr = server.local_addr();
        outln!(
            "serving the web face at http://{addr}/ (Ctrl-C to stop); sign in with {from} \
             (open /login?token=TOKEN once, or give it as the password)"
        )?;
        if a.open {
            open_browser(repo, addr, &token)?;
        }
        server
            .run(shutdown_signal())
            .await
            .context("serving the web face")
    })
}

/// Opens the browser on a page, private to this account, that signs in and goes to the
/// timeline: `<repo>.ui-open.html`, mode 0600, handed to `$BROWSER` or `xdg-open`.
fn open_browser(repo: &Path, addr: SocketAddr, token: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut page = repo.as_os_str().to_owned();
    page.push(".ui-open.html");
    let page = PathBuf::from(page);
    let url = format!("http://{addr}/login?token={token}");
    let _ = std::fs::remove_file(&page);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&page)
        .with_context(|| format!("writing {}", page.display()))?;
    writeln!(
        f,
        "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=\"0;url={url}\">\
         <title>hero store</title><a href=\"{url}\">Open the hero store</a>"
    )
    .with_context(|| format!("writing {}", page.display()))?;
    let browser = std::env::var_os("BROWSER").unwrap_or_else(|| "xdg-open".into());
    match std::process::Command::new(&browser)
        .arg(&page)
        .stdin(std::process::Stdio::null())
        .spawn()
    {
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::warn!(
                "could not start {}: {e}; open {} yourself",
                browser.to_string_lossy(),
                page.display()
            );
            Ok(())
        }
    }
}
