//! The server of `bench/guard.sh`: one handler served twice in one process, at
//! `/open` with no guard and at `/guarded` behind the guard and `RequireScope("read")`,
//! so that wrk measures what the guard costs and nothing else.
//!
//! ```sh
//! cargo run --release -p gatehouse-guard --example guard_bench -- --issuer URL [--listen ADDR]
//! ```

use std::net::SocketAddr;

use axum::routing::get;
use axum::Router;
use clap::Parser;
use gatehouse_guard::{Guard, RequireScope};

#[derive(Parser)]
struct Args {
    /// The gatehouse issuer URL.
    #[arg(long)]
    issuer: String,
    /// Address to serve on; `:0` picks a port, printed as `listening addr=…`.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

async fn resource() -> &'static str {
    r#"{"cities":["Amsterdam","Lisbon","Milan"]}"#
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let guard = Guard::builder(&args.issuer).build()?;
    let guarded = Router::new()
        .route("/guarded", get(resource).route_layer(RequireScope::new("read")))
        .layer(guard.layer());
    let app = Router::new().route("/open", get(resource)).merge(guarded);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    eprintln!("listening addr={}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
