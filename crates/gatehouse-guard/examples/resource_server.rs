//! A protected API to try tokens on (`docs/guard.md`):
//!
//! ```sh
//! cargo run -p gatehouse-guard --example resource_server -- \
//!     --issuer http://127.0.0.1:8080 --listen 127.0.0.1:9090 \
//!     [--audience AUD] [--introspect CLIENT_ID:SECRET]
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:9090/api/v3/cities
//! ```
//!
//! `GET /api/v3/cities` needs scope `read`, `GET /api/v3/orders` scope `orders`. Both
//! answer with what the token says.

use std::net::SocketAddr;

use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use gatehouse_guard::{Claims, Guard, RequireScope};
use serde_json::{json, Value};

/// A protected API in front of a gatehouse issuer.
#[derive(Parser)]
struct Args {
    /// The issuer URL (its metadata names the JWKS and the introspection endpoint).
    #[arg(long)]
    issuer: String,
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:9090")]
    listen: SocketAddr,
    /// The `aud` tokens must carry; default: the issuer.
    #[arg(long)]
    audience: Option<String>,
    /// Validate by introspection with this client (created with --can-introspect)
    /// instead of locally against the JWKS.
    #[arg(long, value_name = "CLIENT_ID:SECRET")]
    introspect: Option<String>,
}

async fn cities(claims: Claims) -> Json<Value> {
    Json(json!({
        "cities": ["Amsterdam", "Lisbon", "Milan"],
        "sub": claims.sub,
        "client_id": claims.client_id,
        "scope": claims.scope,
    }))
}

async fn orders(claims: Claims) -> Json<Value> {
    Json(json!({
        "orders": [],
        "sub": claims.sub,
        "username": claims.username,
    }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let args = Args::parse();
    let mut guard = Guard::builder(&args.issuer);
    if let Some(audience) = &args.audience {
        guard = guard.audience(audience);
    }
    if let Some(credentials) = &args.introspect {
        let (id, secret) = credentials
            .split_once(':')
            .ok_or("--introspect takes CLIENT_ID:SECRET")?;
        guard = guard.introspect(id, secret);
    }
    let guard = guard.build()?;

    let app = Router::new()
        .route(
            "/api/v3/cities",
            get(cities).route_layer(RequireScope::new("read")),
        )
        .route(
            "/api/v3/orders",
            get(orders).route_layer(RequireScope::new("orders")),
        )
        .layer(guard.layer());
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, issuer = %args.issuer, "listening");
    axum::serve(listener, app).await?;
    Ok(())
}
