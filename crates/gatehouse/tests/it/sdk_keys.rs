//! gatehouse-client without a shared secret, against the real server, and
//! gatehouse-guard checking what it got (docs/client.md, docs/guard.md): the SDK signing
//! `private_key_jwt` assertions with keys jwt-simple made (ES256, EdDSA, RS256,
//! PS256) for tokens, a login and its revocation; and the SDK over mutual TLS
//! (`tls_client_auth`, and `private_key_jwt` on a connection with a
//! certificate) getting certificate-bound tokens, which an API behind the guard
//! accepts only from a connection presenting that certificate (through a TLS
//! acceptor that hands the guard a `ClientCertificate`, as `docs/guard.md`
//! shows), or in a trusted proxy's header.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine as _;
use gatehouse_client::{
    ClientCredentials, Error, ExposeSecret, OAuthClient, PrivateKey, SecretString, SessionEnd, TokenEndpoint,
    TokenParams,
};
use gatehouse_guard::{Claims, ClientCertificate, Guard, GuardBuilder, RequireScope};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tower::ServiceExt as _;

use crate::helpers::*;
use crate::jose;
use crate::private_key_jwt::{jwt_client, TestKey, ALGORITHMS};

/// What the SDK holds of `key`: its private PEM as jwt-simple writes it, with
/// its `kid` and, for PS256, the PSS choice.
fn sdk_key(key: &TestKey) -> PrivateKey {
    let mut private = PrivateKey::from_pem(&key.private_pem()).expect("the SDK reads jwt-simple's PEM");
    if let Some(kid) = key.jwk()["kid"].as_str() {
        private = private.kid(kid);
    }
    if key.alg() == "PS256" {
        private = private.rsa_pss().expect("an RSA key");
    }
    assert_eq!(private.algorithm(), key.alg());
    private
}

backend_tests! {
    /// For each algorithm, the SDK gets tokens with private_key_jwt (one
    /// assertion per request: the server records each jti once), the guard
    /// accepts them, a password login works, and its logout revokes the refresh
    /// token with an assertion meant for the revocation endpoint.
    async fn private_key_jwt_through_the_sdk_to_the_guard(backend) {
        let db = TestDb::new(backend).await;
        let mut clients = Vec::new();
        for (n, alg) in ALGORITHMS.iter().enumerate() {
            // Every other key without a kid: the server then tries each of the client's keys.
            let key = TestKey::generate(alg, (n % 2 == 0).then_some("key-1"));
            let extra = ["--scope", "read orders", "--grant-types", "client_credentials,password,refresh_token"];
            let id = jwt_client(&db, &format!("svc-{alg}"), &[&key], &extra).await;
            clients.push((*alg, key, id));
        }
        db.create_user("alice", PASSWORD, Some("read")).await;
        let server = db.start(&[]).await;
        let api = crate::api::Api::start(crate::api::guard_for(&server)).await;

        for (alg, key, id) in &clients {
            let client = OAuthClient::builder(
                TokenEndpoint::discover(&server.url("")).expect("issuer URL"),
                ClientCredentials::private_key_jwt(id.as_str(), sdk_key(key)),
            )
            .build()
            .expect("SDK client");
            let source = client.token_source(TokenParams::new().scope("read"));
            let read = source.token().await.unwrap_or_else(|e| panic!("{alg}: {e}"));
            let orders = source
                .token_for(&TokenParams::new().scope("orders"))
                .await
                .unwrap_or_else(|e| panic!("{alg}, a second assertion: {e}"));
            assert_eq!(jose::decode(read.secret().expose_secret()).claims["client_id"], id.as_str());
            let reply = api.get("/api/v3/cities", Some(read.secret().expose_secret())).await;
            reply.assert_status(StatusCode::OK);
            assert_eq!(reply.json()["client_id"], id.as_str(), "{alg}");
            api.get("/api/v3/orders", Some(orders.secret().expose_secret()))
                .await
                .assert_status(StatusCode::OK);

            let session = client.session(TokenParams::new().scope("read"));
            session
                .login("alice", SecretString::from(PASSWORD))
                .await
                .unwrap_or_else(|e| panic!("{alg}, login: {e}"));
            let refresh_token = session.refresh_token().await.expect("a refresh token");
            session.logout().await.unwrap_or_else(|e| panic!("{alg}, logout: {e}"));
            // The refresh token was revoked: a session resumed with it ends at once.
            let resumed = client.session(TokenParams::new());
            resumed.resume(refresh_token).await;
            let ended = resumed.token().await.expect_err("a revoked refresh token");
            assert!(
                matches!(ended, Error::SessionEnded(SessionEnd::RefreshRefused(_))),
                "{alg}: {ended:?}"
            );
        }

        // Five assertions per client (two tokens, a login, a revocation, a
        // refused refresh), each recorded once: none was sent twice.
        let mut conn = db.connect().await;
        assert_eq!(conn.count("used_jtis").await, 5 * ALGORITHMS.len() as i64);
    }
}

/// The subject DN of the client certificate, as registered.
const SUBJECT_DN: &str = "CN=svc-1,O=Example Corp";

/// A certificate and its key, as PEM, and its DER.
struct Cert {
    pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl Cert {
    fn identity(&self) -> reqwest::Identity {
        reqwest::Identity::from_pem(format!("{}{}", self.key_pem, self.pem).as_bytes()).expect("identity PEM")
    }

    fn thumbprint(&self) -> String {
        ClientCertificate(self.der.clone()).thumbprint()
    }

    /// URL-encoded PEM, as nginx's `$ssl_client_escaped_cert`.
    fn escaped_pem(&self) -> String {
        self.pem
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
}

/// The test's certificates: a client CA and two clients it signed, and a
/// self-signed server certificate for 127.0.0.1, written where the server reads
/// them.
struct Pki {
    client: Cert,
    mallory: Cert,
    server: Cert,
    ca_pem: String,
    server_args: Vec<String>,
}

impl Pki {
    fn new(dir: &std::path::Path) -> Pki {
        let ca_key = KeyPair::generate().expect("key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        ca.distinguished_name.push(DnType::CommonName, "Client CA");
        let ca_pem = ca.self_signed(&ca_key).expect("CA").pem();
        let issuer = Issuer::new(ca, ca_key);
        let client = |cn: &str| {
            let key = KeyPair::generate().expect("key");
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
            let mut dn = DistinguishedName::new();
            dn.push(DnType::OrganizationName, "Example Corp");
            dn.push(DnType::CommonName, cn);
            params.distinguished_name = dn;
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            let cert = params.signed_by(&key, &issuer).expect("client certificate");
            Cert {
                pem: cert.pem(),
                key_pem: key.serialize_pem(),
                der: cert.der().to_vec(),
            }
        };
        let server_key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
        let server_cert = params.self_signed(&server_key).expect("server certificate");
        let server = Cert {
            pem: server_cert.pem(),
            key_pem: server_key.serialize_pem(),
            der: server_cert.der().to_vec(),
        };
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write");
            path.to_str().expect("UTF-8 path").to_string()
        };
        let server_args = vec![
            "--tls-cert".to_string(),
            write("server.crt", &server.pem),
            "--tls-key".to_string(),
            write("server.key", &server.key_pem),
            "--tls-client-ca".to_string(),
            write("clients-ca.pem", &ca_pem),
        ];
        Pki {
            client: client("svc-1"),
            mallory: client("mallory"),
            server,
            ca_pem,
            server_args,
        }
    }

    /// An HTTPS client trusting the server certificate, presenting `cert`.
    fn http(&self, cert: Option<&Cert>) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(15))
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.server.pem.as_bytes()).expect("PEM"));
        if let Some(cert) = cert {
            builder = builder.identity(cert.identity());
        }
        builder.build().expect("HTTPS client")
    }

    /// rustls's acceptor for the API: the server certificate, and a client
    /// certificate asked for (not required) and checked against the client CA.
    fn api_acceptor(&self) -> tokio_rustls::TlsAcceptor {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).expect("CA PEM"))
            .expect("CA");
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .expect("client verifier");
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![CertificateDer::from(self.server.der.clone())],
                PrivateKeyDer::from_pem_slice(self.server.key_pem.as_bytes()).expect("key PEM"),
            )
            .expect("TLS config");
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}

/// `/api/v3/cities` (scope `read`) behind `guard`, answering with the client id
/// and the certificate thumbprint the token is bound to.
fn api_app(guard: &Guard) -> Router {
    let echo = |claims: Claims| async move {
        Json(json!({"client_id": claims.client_id, "x5t#S256": claims.certificate_thumbprint()}))
    };
    Router::new()
        .route("/api/v3/cities", get(echo).route_layer(RequireScope::new("read")))
        .layer(guard.layer())
}

/// Serves `app` over TLS as `docs/guard.md` shows: each request of a connection
/// carries the connection's leaf certificate as a `ClientCertificate`.
async fn serve_tls(
    app: Router,
    acceptor: tokio_rustls::TlsAcceptor,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, peer)) = listener.accept().await else {
                return;
            };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let certificate = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .map(|leaf| ClientCertificate(leaf.to_vec()));
                let service =
                    hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                        if let Some(certificate) = &certificate {
                            request.extensions_mut().insert(certificate.clone());
                        }
                        request.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                        app.clone().oneshot(request)
                    });
                let builder = ConnectionBuilder::new(TokioExecutor::new());
                let _ = builder.serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    (addr, task)
}

/// Serves `app` over plain HTTP with the peer address (for a proxy's header).
async fn serve_plain(app: Router) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await;
    });
    (addr, task)
}

/// GET `url` with the bearer `token` (and `X-Client-Cert: header`) over `http`:
/// the status and the JSON body.
async fn call_api(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    header: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = http.get(url).bearer_auth(token);
    if let Some(header) = header {
        request = request.header("x-client-cert", header);
    }
    let reply = Reply::from(request.send().await).await;
    let body = reply.json();
    if reply.status == StatusCode::UNAUTHORIZED {
        let challenge = reply.header("www-authenticate").unwrap_or_default();
        assert!(challenge.contains(r#"error="invalid_token""#), "{challenge}");
    }
    (reply.status, body)
}

/// Asserts a 401 saying the token is bound to a certificate.
fn assert_bound_refusal((status, body): (StatusCode, Value), what: &str) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
    assert_eq!(body["error"], "invalid_token", "{what}: {body}");
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(
        description.contains("bound to a TLS client certificate"),
        "{what}: {description}"
    );
}

/// The guard of the HTTPS server at `base`, trusting its certificate.
fn guard_of(pki: &Pki, base: &str) -> GuardBuilder {
    Guard::builder(base).http_client(pki.http(None))
}

backend_tests! {
    /// The SDK over mutual TLS: a tls_client_auth client (only its client_id
    /// in the body) and a private_key_jwt client on a connection with the same
    /// certificate get tokens bound to it (`cnf.x5t#S256`). The API accepts them
    /// on a connection presenting that certificate, and refuses them (401
    /// invalid_token) with another certificate or none; an unbound token needs
    /// none. Behind a proxy, the certificate in its header counts only when the
    /// proxy is trusted.
    async fn bound_tokens_from_the_sdk_need_the_certificate_at_the_api(backend) {
        let db = TestDb::new(backend).await;
        let pki = Pki::new(db.dir());
        let tls_id = json_str(
            &db.cli_json(&[
                "client", "create", "--name", "device", "--auth-method", "tls_client_auth",
                "--tls-subject-dn", SUBJECT_DN, "--bound-tokens", "--scope", "read",
            ])
            .await,
            "client_id",
        );
        let key = TestKey::generate("ES256", Some("k1"));
        let jwt_id = jwt_client(&db, "signer", &[&key], &["--bound-tokens", "--scope", "read"]).await;
        let plain = db.create_client("plain", &["--scope", "read"]).await;
        let args: Vec<&str> = pki.server_args.iter().map(String::as_str).collect();
        let server = db.start(&args).await;
        let base = format!("https://127.0.0.1:{}", server.addr().port());
        let with_cert = pki.http(Some(&pki.client));

        let sdk = |credentials: ClientCredentials, http: reqwest::Client| {
            OAuthClient::builder(TokenEndpoint::discover(&base).expect("issuer URL"), credentials)
                .http_client(http)
                .build()
                .expect("SDK client")
        };
        let read = TokenParams::new().scope("read");
        let device = sdk(ClientCredentials::tls_client_auth(tls_id.as_str()), with_cert.clone());
        let device_token = device.token_source(read.clone()).token().await.expect("tls_client_auth token");
        let signer = sdk(ClientCredentials::private_key_jwt(jwt_id.as_str(), sdk_key(&key)), with_cert.clone());
        let signer_token = signer.token_source(read.clone()).token().await.expect("private_key_jwt token");
        let plain_token = sdk(
            ClientCredentials::new(plain.id.as_str(), SecretString::from(plain.secret.clone())),
            pki.http(None),
        )
        .token_source(read.clone())
        .token()
        .await
        .expect("a secret client's token");
        let bound = [
            ("tls_client_auth", device_token.secret().expose_secret().to_string()),
            ("private_key_jwt", signer_token.secret().expose_secret().to_string()),
        ];
        for (what, token) in &bound {
            assert_eq!(
                jose::decode(token).claims["cnf"],
                json!({"x5t#S256": pki.client.thumbprint()}),
                "{what}"
            );
        }
        let plain_token = plain_token.secret().expose_secret().to_string();
        assert!(jose::decode(&plain_token).claims.get("cnf").is_none());
        // Without its certificate, the tls_client_auth client is not even authenticated.
        let refused = sdk(ClientCredentials::tls_client_auth(tls_id.as_str()), pki.http(None))
            .token_source(read.clone())
            .token()
            .await
            .expect_err("no certificate");
        assert_eq!(refused.oauth_error().map(|e| e.error().as_str()), Some("invalid_client"), "{refused:?}");

        // The API over TLS, handed each connection's certificate.
        let guard = guard_of(&pki, &base).build().expect("guard");
        let (addr, api_task) = serve_tls(api_app(&guard), pki.api_acceptor()).await;
        let url = format!("https://127.0.0.1:{}/api/v3/cities", addr.port());
        let with_mallory = pki.http(Some(&pki.mallory));
        let anonymous = pki.http(None);
        for (what, token) in &bound {
            let (status, body) = call_api(&with_cert, &url, token, None).await;
            assert_eq!(status, StatusCode::OK, "{what}: {body}");
            assert_eq!(body["x5t#S256"], pki.client.thumbprint(), "{what}");
            assert_bound_refusal(call_api(&with_mallory, &url, token, None).await, &format!("{what}, another certificate"));
            assert_bound_refusal(call_api(&anonymous, &url, token, None).await, &format!("{what}, no certificate"));
        }
        let (status, body) = call_api(&anonymous, &url, &plain_token, None).await;
        assert_eq!(status, StatusCode::OK, "an unbound token needs no certificate: {body}");
        api_task.abort();

        // Behind a TLS-terminating proxy on 127.0.0.1: its header is believed...
        let proxied = guard_of(&pki, &base)
            .client_cert_header("X-Client-Cert", [std::net::IpAddr::from(Ipv4Addr::LOCALHOST)])
            .build()
            .expect("guard");
        let (addr, proxied_task) = serve_plain(api_app(&proxied)).await;
        let url = format!("http://{addr}/api/v3/cities");
        let http = reqwest::Client::builder().no_proxy().build().expect("HTTP client");
        let (token, good, bad) = (&bound[0].1, pki.client.escaped_pem(), pki.mallory.escaped_pem());
        let (status, body) = call_api(&http, &url, token, Some(&good)).await;
        assert_eq!(status, StatusCode::OK, "the proxy's header: {body}");
        assert_bound_refusal(call_api(&http, &url, token, Some(&bad)).await, "another certificate in the header");
        assert_bound_refusal(call_api(&http, &url, token, None).await, "no header");
        proxied_task.abort();

        // ...and ignored from a peer that is not a trusted proxy.
        let elsewhere = guard_of(&pki, &base)
            .client_cert_header("X-Client-Cert", ["192.0.2.0/24".parse::<ipnet::IpNet>().expect("network")])
            .build()
            .expect("guard");
        let (addr, elsewhere_task) = serve_plain(api_app(&elsewhere)).await;
        let url = format!("http://{addr}/api/v3/cities");
        assert_bound_refusal(call_api(&http, &url, token, Some(&good)).await, "the header from an untrusted peer");
        elsewhere_task.abort();
        assert!(BASE64URL.decode(pki.client.thumbprint()).is_ok_and(|digest| digest.len() == 32));
    }
}
