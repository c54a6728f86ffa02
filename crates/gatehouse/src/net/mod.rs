//! The listening socket and every connection on it: the server's own accept loop, so
//! that each connection gets the limits an exposed authorization server needs.
//!
//! - at most `max_connections` at once; beyond, new ones wait in the kernel's backlog;
//! - at most `max_connections_per_address` of them from one address, trusted proxies
//!   excepted; beyond, a new one is closed as soon as it is accepted ([`per_address`]);
//! - request heads: at most 16 KiB and 100 header fields (431 beyond; hyper's field
//!   limit, kept at its default so the fields stay on the stack), and, on HTTP/1.1,
//!   they must arrive within `request_timeout` (hyper's header read timeout, which
//!   also bounds how long a kept-alive connection may wait for its next request);
//! - a connection with no byte in either direction for `idle_timeout` is closed
//!   (HTTP/2 included), and so is one that has had no request in flight for
//!   `idle_timeout`, whatever else its peer sends (HTTP/2 PINGs: [`in_flight`]);
//! - TLS (optional) with HTTP/2 and HTTP/1.1 by ALPN, and a handshake that must end
//!   within `request_timeout`; the client's certificate, if it sent one
//!   (`tls_client_ca`), goes with every request of the connection as the extension
//!   `Option<Arc<PresentedCertificate>>`, next to `ConnectInfo` (and, for the
//!   admin API's guard, as a `gatehouse_guard::ClientCertificate`);
//! - on shutdown, no new connections; open ones finish their requests.

pub mod idle;
pub mod in_flight;
pub mod per_address;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use gatehouse_core::PresentedCertificate;
use gatehouse_guard::ClientCertificate;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt;

use self::idle::IdleTimeout;
use self::in_flight::InFlight;
use self::per_address::{AddressSlots, OverCap};
use self::tls::Tls;
use crate::config::{Limits, TrustedProxies};

/// The largest request head accepted, in bytes (start line and headers).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// How long open connections get to finish after a shutdown signal.
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// At most one warning this often about connections refused for the per-address cap
/// (the metric counts each): a flood of them must not become a flood of log lines.
const REFUSAL_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// A bound socket, ready to serve.
pub struct Listener {
    tcp: TcpListener,
    tls: Option<Arc<Tls>>,
    limits: Limits,
    address_slots: AddressSlots,
}

impl Listener {
    /// Serves on `tcp`, over TLS when `tls` is given. Connections from
    /// `trusted_proxies` are not held to `max_connections_per_address`.
    pub fn new(
        tcp: TcpListener,
        tls: Option<Arc<Tls>>,
        limits: Limits,
        trusted_proxies: TrustedProxies,
    ) -> Self {
        let address_slots = AddressSlots::new(limits.max_connections_per_address, trusted_proxies);
        Self {
            tcp,
            tls,
            limits,
            address_slots,
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// Accepts connections until `shutdown` completes, then waits (30 s at most) for
    /// the open ones to finish their requests.
    pub async fn serve(self, app: Router, shutdown: impl Future<Output = ()> + Send) {
        let builder = self.connection_builder();
        // Each connection holds a receiver until it ends: the send tells them all to
        // finish, and the sender sees when the last one has.
        let (draining, _) = watch::channel(());
        let permits = Arc::new(Semaphore::new(self.limits.max_connections.max(1)));
        let mut refusals = Refusals::new();
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
            let address_slot = match self.address_slots.claim(peer.ip()) {
                Ok(slot) => slot,
                Err(OverCap) => {
                    // Dropping the stream closes it; its permit goes back at once.
                    refusals.count(peer);
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let connection = Connection {
                builder: builder.clone(),
                app: app.clone(),
                peer,
                draining: draining.subscribe(),
                idle_timeout: self.limits.idle_timeout,
                closing_deadline: self.limits.request_timeout,
            };
            let tls = self.tls.clone();
            let handshake_timeout = self.limits.request_timeout;
            tokio::spawn(async move {
                let _permits = (permit, address_slot);
                match tls {
                    None => connection.serve(stream, None).await,
                    Some(tls) => {
                        match tokio::time::timeout(handshake_timeout, tls.acceptor().accept(stream)).await {
                            Ok(Ok(stream)) => {
                                let certificate = tls.presented(stream.get_ref().1);
                                connection.serve(stream, certificate).await;
                            }
                            Ok(Err(e)) => tracing::debug!(peer = %peer, error = %e, "TLS handshake failed"),
                            Err(_) => tracing::debug!(peer = %peer, "TLS handshake timed out"),
                        }
                    }
                }
            });
        }
        drop(self.tcp);
        let _ = draining.send(());
        if tokio::time::timeout(DRAIN_DEADLINE, draining.closed())
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

/// Connections refused for the per-address cap: each counted in
/// `gatehouse_connections_refused_total{reason="per_address"}`, and a warning at most
/// once a [`REFUSAL_WARNING_INTERVAL`].
struct Refusals {
    counter: metrics::Counter,
    last_warning: Option<Instant>,
    since_last_warning: u64,
}

impl Refusals {
    fn new() -> Self {
        Self {
            counter: metrics::counter!("gatehouse_connections_refused_total", "reason" => "per_address"),
            last_warning: None,
            since_last_warning: 0,
        }
    }

    fn count(&mut self, peer: SocketAddr) {
        self.counter.increment(1);
        self.since_last_warning += 1;
        let now = Instant::now();
        if self
            .last_warning
            .is_none_or(|last| now.duration_since(last) >= REFUSAL_WARNING_INTERVAL)
        {
            tracing::warn!(
                address = %peer.ip(),
                refused = self.since_last_warning,
                "connections refused: their address already holds max_connections_per_address"
            );
            self.last_warning = Some(now);
            self.since_last_warning = 0;
        }
    }
}

/// What one connection task needs.
struct Connection {
    builder: Builder<TokioExecutor>,
    app: Router,
    peer: SocketAddr,
    /// Changes (or closes) when the server shuts down; held until the connection ends.
    draining: watch::Receiver<()>,
    idle_timeout: Duration,
    /// How long a connection closed for idleness may take to say goodbye (an HTTP/2
    /// GOAWAY exchange, a response the peer is slow to take) before it is dropped.
    closing_deadline: Duration,
}

impl Connection {
    /// Serves the connection `io`, whose client presented `certificate` (TLS only).
    async fn serve<I>(mut self, io: I, certificate: Option<Arc<PresentedCertificate>>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let in_flight = InFlight::new();
        let counted = in_flight.clone();
        let peer = self.peer;
        let service =
            ServiceExt::<Request<Incoming>>::map_request(self.app, move |mut request: Request<Incoming>| {
                let extensions = request.extensions_mut();
                extensions.insert(ConnectInfo(peer));
                if let Some(certificate) = &certificate {
                    // What gatehouse-guard (the admin API's) checks certificate-bound tokens by.
                    extensions.insert(ClientCertificate(certificate.der.clone()));
                }
                extensions.insert(certificate.clone());
                request
            });
        let service = ServiceExt::<Request<Incoming>>::map_future(service, move |answer| {
            let request = counted.start();
            async move {
                let answer = answer.await;
                drop(request);
                answer
            }
        });
        let io = TokioIo::new(IdleTimeout::new(io, self.idle_timeout));
        let connection = self
            .builder
            .serve_connection_with_upgrades(io, TowerToHyperService::new(service));
        tokio::pin!(connection);
        let deadline = tokio::select! {
            ended = connection.as_mut() => return report_end(ended),
            // The listener's drain deadline bounds the rest.
            _ = self.draining.changed() => None,
            () = in_flight.idle_for(self.idle_timeout) => {
                tracing::debug!("closing a connection without a request in flight for idle_timeout");
                Some(self.closing_deadline)
            }
        };
        // HTTP/1.1: closes once the request being read (if any) is answered; HTTP/2:
        // GOAWAY, then closes once the open streams end.
        connection.as_mut().graceful_shutdown();
        match deadline {
            None => report_end(connection.await),
            Some(deadline) => match tokio::time::timeout(deadline, connection).await {
                Ok(ended) => report_end(ended),
                Err(_) => tracing::debug!("an idle connection did not close in time: dropped"),
            },
        }
    }
}

fn report_end(ended: Result<(), Box<dyn std::error::Error + Send + Sync>>) {
    if let Err(e) = ended {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
