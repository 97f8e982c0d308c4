//! dav-server's own LocalFs serving a directory, the benchmark's point of comparison:
//! `cargo run --release -p hero-dav --features localfs-example --example localfs -- DIR [ADDR]`.
#![allow(missing_docs)]

use std::convert::Infallible;
use std::net::SocketAddr;

use dav_server::{DavHandler, localfs::LocalFs, memls::MemLs};
use hyper_util::rt::TokioIo;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: localfs DIR [ADDR]")?;
    let addr: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:4919".into())
        .parse()?;
    let handler = DavHandler::builder()
        .filesystem(LocalFs::new(dir, false, false, false))
        .locksystem(MemLs::new())
        .build_handler();
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}/", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let handler = handler.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler.handle(req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
