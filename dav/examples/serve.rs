//! Serves a repository (created if missing) over WebDAV on loopback, for manual tests and
//! benchmarks: `cargo run --release -p hero-dav --example serve -- REPO [ADDR]`.
#![allow(missing_docs)]

use std::net::SocketAddr;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let repo = args.next().ok_or("usage: serve REPO [ADDR]")?;
    let addr: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:4918".into())
        .parse()?;
    hero_store::Repo::open_or_init(&repo)?;
    let token_file = hero_dav::token_path(std::path::Path::new(&repo));
    let token = hero_dav::load_or_create_token(&token_file)?;
    let mut config = hero_dav::DavConfig::new(repo, hero_dav::Auth::Token(token));
    config.addr = addr;
    let server = hero_dav::bind(config).await?;
    println!(
        "listening on http://{}/ (any user, the password is the token in {})",
        server.local_addr(),
        token_file.display()
    );
    server
        .run(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
