//! The listening socket and every connection on it: the server's own accept loop, so
//! that each connection gets the limits an exposed authorization server needs.
//!
//! - at most `max_connections` at once; beyond, new ones wait in the kernel's backlog;
//! - request heads: at most 16 KiB and 100 header fields (431 beyond; hyper's field
//!   limit, kept at its default so the fields stay on the stack), and, on HTTP/1.1,
//!   they must arrive within `request_timeout` (hyper's header read timeout, which
//!   also bounds how long a kept-alive connection may wait for its next request);
//! - a connection with no byte in either direction for `idle_timeout` is closed
//!   (HTTP/2 included);
//! - TLS (optional) with HTTP/2 and HTTP/1.1 by ALPN, and a handshake that must end
//!   within `request_timeout`;
//! - on shutdown, no new connections; open ones finish their requests.

pub mod idle;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower_http::add_extension::AddExtension;

use self::idle::IdleTimeout;

/// The largest request head accepted, in bytes (start line and headers).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// How long open connections get to finish after a shutdown signal.
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// Per-connection limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Headers of one request, and a TLS handshake, must arrive within this.
    pub request_timeout: Duration,
    /// A connection silent this long is closed.
    pub idle_timeout: Duration,
}

/// A bound socket, ready to serve.
pub struct Listener {
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
    limits: Limits,
}

impl Listener {
    /// Serves on `tcp`, over TLS when `tls` is given.
    pub fn new(tcp: TcpListener, tls: Option<TlsAcceptor>, limits: Limits) -> Self {
        Self { tcp, tls, limits }
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// Accepts connections until `shutdown` completes, then waits (30 s at most) for
    /// the open ones to finish their requests.
    pub async fn serve(self, app: Router, shutdown: impl Future<Output = ()> + Send) {
        let builder = self.connection_builder();
        let graceful = GracefulShutdown::new();
        let permits = Arc::new(Semaphore::new(self.limits.max_connections.max(1)));
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            };
            let (stream, peer) = tokio::select! {
                accepted = self.tcp.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors, say: wait a little rather than spin.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let connection = Connection {
                builder: builder.clone(),
                service: TowerToHyperService::new(AddExtension::new(app.clone(), ConnectInfo(peer))),
                watcher: graceful.watcher(),
                idle_timeout: self.limits.idle_timeout,
            };
            let tls = self.tls.clone();
            let handshake_timeout = self.limits.request_timeout;
            tokio::spawn(async move {
                let _permit = permit;
                match tls {
                    None => connection.serve(stream).await,
                    Some(acceptor) => {
                        match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => connection.serve(stream).await,
                            Ok(Err(e)) => tracing::debug!(peer = %peer, error = %e, "TLS handshake failed"),
                            Err(_) => tracing::debug!(peer = %peer, "TLS handshake timed out"),
                        }
                    }
                }
            });
        }
        drop(self.tcp);
        if tokio::time::timeout(DRAIN_DEADLINE, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("connections still open {DRAIN_DEADLINE:?} after shutdown began: closing them");
        }
    }

    fn connection_builder(&self) -> Builder<TokioExecutor> {
        let mut builder = Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.request_timeout)
            .max_buf_size(MAX_HEADER_BYTES);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(MAX_HEADER_BYTES).unwrap_or(u32::MAX))
            .max_concurrent_streams(256);
        builder
    }
}

/// What one connection task needs.
struct Connection {
    builder: Builder<TokioExecutor>,
    service: TowerToHyperService<AddExtension<Router, ConnectInfo<SocketAddr>>>,
    watcher: Watcher,
    idle_timeout: Duration,
}

impl Connection {
    async fn serve<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let io = TokioIo::new(IdleTimeout::new(io, self.idle_timeout));
        let connection = self.builder.serve_connection_with_upgrades(io, self.service);
        if let Err(e) = self.watcher.watch(connection.into_owned()).await {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    }
}
