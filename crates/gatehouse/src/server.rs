//! `gatehouse serve`: open the database, load keys, bind, serve until SIGTERM/SIGINT,
//! then finish in-flight requests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderValue};
use gatehouse_core::service::Stores;
use gatehouse_core::{Clock, Random, SlowHashGate, SystemRandom, TokenService};
use gatehouse_store::SqlStore;
use tokio::net::TcpListener;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::cache::{CachedClients, CLIENT_CACHE_CAPACITY};
use crate::config::{self, ConfigError, Settings};
use crate::http::certificate::{ClientCa, Forwarded};
use crate::http::protection::Protection;
use crate::http::{self, AppState, Shared};
use crate::jwks_fetch::FetchedClientKeys;
use crate::keyring::{self, KeyringError, Keys};
use crate::net::{tls, Listener};
use crate::telemetry;

/// Why the server could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A setting is wrong: exit status 2.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Anything else: exit status 1.
    #[error("gatehouse: {0}")]
    Failed(String),
}

impl From<KeyringError> for ServeError {
    fn from(err: KeyringError) -> Self {
        match err {
            KeyringError::Config(e) => Self::Config(e),
            other => Self::Failed(other.to_string()),
        }
    }
}

/// A server bound to its address, ready to run.
pub struct Server {
    listener: Listener,
    app: axum::Router,
    background: Vec<tokio::task::JoinHandle<()>>,
    store: Arc<SqlStore>,
}

impl Server {
    /// Opens and migrates the database, loads keys, and binds the listener. Every
    /// reading of the time that tokens, keys, secrets, the login brake and the
    /// cleanup sweep act on comes from `clock`: the binary passes [`SystemClock`](gatehouse_core::SystemClock),
    /// a test may pass a clock it moves by hand (see `docs/design.md`, "Time").
    pub async fn bind(settings: &Settings, clock: Arc<dyn Clock>) -> Result<Self, ServeError> {
        // Routes and certificate files first: a bad one is a configuration error,
        // found before anything is created.
        config::routes::check_reserved(&settings.routes, http::STANDARD_PATHS)?;
        let client_ca = match &settings.client_certificates.ca {
            Some(path) => Some(Arc::new(
                ClientCa::load(path, tls::provider(), clock.clone())
                    .map_err(|e| ConfigError::new("tls_client_ca", e.to_string()))?,
            )),
            None => None,
        };
        let tls = match &settings.tls {
            Some(files) => Some(Arc::new(tls::Tls::new(files, client_ca.clone()).map_err(
                |e| match e {
                    tls::TlsError::File { key, problem } => ConfigError::new(key, problem),
                },
            )?)),
            None => None,
        };
        let rng: Arc<dyn Random> = Arc::new(SystemRandom);

        let master = keyring::load_master_key(&settings.master_key, rng.as_ref())?;
        let store = SqlStore::open(&settings.database_url, &settings.pool)
            .map_err(|e| ConfigError::new("database_url", e.to_string()))?;
        let store = Arc::new(store);
        store
            .migrate()
            .await
            .map_err(|e| ServeError::Failed(format!("cannot prepare the database (database_url): {e}")))?;

        let key_rotation = crate::manage::KeyRotation {
            master: master.clone(),
            alg: settings.signing_alg,
            default_access_token_ttl: settings.access_token_ttl,
        };
        let keys = Arc::new(Keys::new(store.clone(), master));
        keys.ensure_current(
            settings.signing_alg,
            settings.access_token_ttl,
            rng.as_ref(),
            clock.now(),
        )
        .await?;

        let tcp = TcpListener::bind(settings.listen)
            .await
            .map_err(|e| ServeError::Failed(format!("cannot listen on {} (listen): {e}", settings.listen)))?;
        let addr = tcp
            .local_addr()
            .map_err(|e| ServeError::Failed(format!("cannot read the bound address: {e}")))?;
        let config = settings.issuer_config(addr);
        let issuer = config.issuer.clone();

        let clients = Arc::new(CachedClients::new(store.clone(), CLIENT_CACHE_CAPACITY));
        let known_clients = clients.load_known_ids().await.map_err(|e| {
            ServeError::Failed(format!("cannot read the registered clients (database_url): {e}"))
        })?;
        tracing::debug!(clients = known_clients, "registered client ids loaded");
        let stores = Stores {
            clients: clients.clone(),
            users: store.clone(),
            tokens: store.clone(),
            replays: store.clone(),
        };
        let client_keys =
            FetchedClientKeys::new(settings.allow_insecure_jwks_uri).map_err(ServeError::Failed)?;
        let tokens = TokenService::new(config, stores, keys.ring(), clock.clone(), rng.clone())
            .with_slow_hash_gate(SlowHashGate::new(
                settings.protection.password_hash_concurrency as usize,
                gatehouse_core::slow_hash::DEFAULT_MAX_WAIT,
            ))
            .with_client_keys(Arc::new(client_keys));
        let manager = crate::manage::Manager::new(
            store.clone(),
            clock.clone(),
            rng.clone(),
            crate::manage::Hashing::Gate(tokens.slow_hash_gate().clone()),
        )
        .with_allow_insecure_jwks_uri(settings.allow_insecure_jwks_uri);
        let metrics = telemetry::metrics_handle();
        let state = AppState::new(Shared {
            manager,
            key_rotation,
            tokens,
            keys: keys.ring(),
            store: store.clone(),
            metadata: http::discovery::metadata(
                &issuer,
                settings.registration,
                settings.client_certificates.visible(),
            ),
            registration: http::register::Registration::new(settings.registration, &issuer, clients.clone()),
            metrics: metrics.clone(),
            clock: clock.clone(),
            protection: Protection::new(&settings.protection, clock.clone()),
            body_timeout: settings.limits.request_timeout,
            trusted_proxies: settings.trusted_proxies.clone(),
            forwarded_certificates: settings
                .client_certificates
                .header
                .clone()
                .map(|header| Forwarded::new(header, settings.trusted_proxies.clone(), client_ca.clone())),
        });
        let mut background = vec![
            tokio::spawn(crate::sync::follow_changes(
                store.clone(),
                clients,
                keys,
                clock.clone(),
            )),
            tokio::spawn(crate::sync::purge_expired_tokens(
                store.clone(),
                clock,
                Duration::from_secs(settings.cleanup_interval.unsigned_abs()),
            )),
            tokio::spawn(async move {
                // Histograms are drained into their buckets by upkeep.
                loop {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    metrics.run_upkeep();
                }
            }),
            tokio::spawn({
                let state = state.clone();
                async move {
                    loop {
                        tokio::time::sleep(Duration::from_secs(10)).await;
                        state.protection.sweep();
                    }
                }
            }),
        ];
        if tls.is_some() || client_ca.is_some() {
            background.push(tokio::spawn(tls::reload_on_sighup(tls.clone(), client_ca)));
        }
        for route in &settings.routes {
            tracing::info!(path = %route.path, endpoint = route.endpoint.as_str(), methods = %route.methods(), "route");
        }
        tracing::info!(addr = %addr, issuer = %issuer, backend = ?store.backend(), tls = tls.is_some(), "listening");
        let mut app = http::router(state, &settings.routes);
        if tls.is_some() {
            // RFC 6797: browsers and well-behaved clients stick to HTTPS from then on.
            app = app.layer(SetResponseHeaderLayer::overriding(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=31536000"),
            ));
        }
        Ok(Self {
            listener: Listener::new(tcp, tls, settings.limits, settings.trusted_proxies.clone()),
            app,
            background,
            store,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        self.listener.serve(self.app, shutdown).await;
        for task in self.background {
            task.abort();
        }
        self.store.close().await;
        Ok(())
    }
}

/// Completes on SIGTERM or SIGINT. Both are caught from this call on, not from the
/// future's first poll: call it before the server says it is listening, so that a
/// signal sent as soon as it does finds a handler rather than the default action
/// (exit at once, with no graceful shutdown). Needs a Tokio runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    let terminate = signal(SignalKind::terminate());
    let interrupt = signal(SignalKind::interrupt());
    async move {
        let wait = |signal: std::io::Result<tokio::signal::unix::Signal>| async move {
            match signal {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = wait(terminate) => {},
            () = wait(interrupt) => {},
        }
        tracing::info!("shutting down: finishing in-flight requests");
    }
}
