//! Serves an embedded store over HTTP for manual testing with kubectl:
//!
//! ```text
//! cargo run -p kube-embedded --example serve -- DATA_DIR [127.0.0.1:PORT]
//! kubectl --server http://127.0.0.1:PORT get configmaps -A
//! ```

use std::path::PathBuf;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: serve DATA_DIR [ADDR]")?);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8001".into());
    let kube = kube_embedded::EmbeddedKube::open(&dir)?;
    kube.ensure_namespace("default")?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("serving on http://{}", listener.local_addr()?);
    axum::serve(listener, kube.router()).await?;
    Ok(())
}
