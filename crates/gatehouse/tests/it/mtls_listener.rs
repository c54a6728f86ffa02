//! The plumbing of mutual TLS (RFC 8705) between the socket and the core: with
//! `tls_client_ca` the TLS listener asks for a client certificate (hinting the CAs)
//! and requires none, lets a self-signed one through but still checks the handshake
//! signature, and the certificate reaches the token endpoint; behind a proxy,
//! `tls_client_cert_header` is believed from `trusted_proxies` only; the metadata
//! offers the mTLS methods when certificates can be seen; unusable settings stop
//! start-up with exit status 2. SIGHUP reloads the CAs.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::sign::CertifiedKey;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::helpers::*;

/// A certificate and its key, as PEM and DER.
struct Identity {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl Identity {
    fn from(cert: &rcgen::Certificate, key: &rcgen::KeyPair) -> Self {
        Identity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// The certificate as nginx's `$ssl_client_escaped_cert` forwards it.
    fn url_encoded(&self) -> String {
        percent_encode(&self.cert_pem)
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A CA, a server certificate for 127.0.0.1, a client certificate from the CA, and
/// a self-signed client certificate with the same subject; files in the test's
/// directory.
struct Pki {
    ca_cert: PathBuf,
    ca_subject_der: Vec<u8>,
    server_cert: PathBuf,
    server_key: PathBuf,
    server_pem: String,
    client: Identity,
    self_signed: Identity,
}

/// The subject of both client certificates: `CN=billing,O=Acme Corp,C=DE` as RFC 4514
/// writes it.
fn client_dn() -> rcgen::DistinguishedName {
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CountryName, "DE");
    dn.push(rcgen::DnType::OrganizationName, "Acme Corp");
    dn.push(rcgen::DnType::CommonName, "billing");
    dn
}

fn make_ca(name: &str) -> (rcgen::Certificate, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let key = rcgen::KeyPair::generate().expect("CA key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("CA certificate");
    (cert, rcgen::Issuer::new(params, key))
}

fn client_issued_by(issuer: &rcgen::Issuer<'_, rcgen::KeyPair>) -> Identity {
    let key = rcgen::KeyPair::generate().expect("client key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("client params");
    params.distinguished_name = client_dn();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, issuer).expect("client certificate");
    Identity::from(&cert, &key)
}

fn make_pki(db: &TestDb) -> Pki {
    let (ca, issuer) = make_ca("Test Client CA");
    let ca_subject_der = subject_der(ca.der());
    let client = client_issued_by(&issuer);

    let key = rcgen::KeyPair::generate().expect("self-signed key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name = client_dn();
    let self_signed = Identity::from(&params.self_signed(&key).expect("self-signed"), &key);

    let server_key = rcgen::KeyPair::generate().expect("server key");
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
    let server = params.self_signed(&server_key).expect("server certificate");

    let write = |name: &str, text: &str| {
        let path = db.dir().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    Pki {
        ca_cert: write("client-ca.pem", &ca.pem()),
        ca_subject_der,
        server_cert: write("server.crt", &server.pem()),
        server_key: write("server.key", &server_key.serialize_pem()),
        server_pem: server.pem(),
        client,
        self_signed,
    }
}

/// The DER of a certificate's subject name, as a CertificateRequest hints it.
fn subject_der(cert: &[u8]) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(cert.to_vec())).expect("a CA");
    roots.subjects()[0].as_ref().to_vec()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

impl Pki {
    fn tls_args(&self) -> Vec<&str> {
        vec![
            "--tls-cert",
            path(&self.server_cert),
            "--tls-key",
            path(&self.server_key),
            "--tls-client-ca",
            path(&self.ca_cert),
        ]
    }

    /// An HTTPS client trusting the server, presenting `identity`.
    fn https(&self, identity: Option<&Identity>) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(15))
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.server_pem.as_bytes()).expect("PEM"));
        if let Some(identity) = identity {
            let pem = format!("{}{}", identity.cert_pem, identity.key_pem);
            builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).expect("identity"));
        }
        builder.build().expect("HTTPS client")
    }
}

/// Offers one certificate (with `key`, which need not be its own) and writes down
/// the CA names the server hinted.
#[derive(Debug)]
struct Offer {
    certified: Option<Arc<CertifiedKey>>,
    hints: Mutex<Option<Vec<Vec<u8>>>>,
}

impl Offer {
    fn new(identity: Option<(&Identity, &str)>) -> Arc<Self> {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let certified = identity.map(|(identity, key_pem)| {
            let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key");
            let key = provider.key_provider.load_private_key(key).expect("signing key");
            Arc::new(CertifiedKey::new(
                vec![CertificateDer::from(identity.der.clone())],
                key,
            ))
        });
        Arc::new(Offer {
            certified,
            hints: Mutex::new(None),
        })
    }

    fn hints(&self) -> Option<Vec<Vec<u8>>> {
        self.hints.lock().unwrap().clone()
    }
}

impl ResolvesClientCert for Offer {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        *self.hints.lock().unwrap() = Some(root_hint_subjects.iter().map(|s| s.to_vec()).collect());
        self.certified.clone()
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A TLS connection (HTTP/1.1) that answers a CertificateRequest with `offer`.
async fn connect(addr: SocketAddr, pki: &Pki, offer: Arc<Offer>) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.server_pem.as_bytes()).expect("PEM"))
        .expect("root");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_client_cert_resolver(offer);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(addr).await?;
    let mut stream = TlsConnector::from(Arc::new(config))
        .connect(ServerName::IpAddress(Ipv4Addr::LOCALHOST.into()), tcp)
        .await?;
    // TLS 1.3: the server sees the client's certificate after the client's first
    // flight, and refuses it with an alert the client reads with its first bytes.
    stream.flush().await?;
    Ok(stream)
}

/// `GET path` on an open HTTP/1.1 connection; the status code, or the error that
/// ended the connection.
async fn get_on(stream: &mut TlsStream<TcpStream>, path: &str) -> std::io::Result<u16> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await?;
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().expect("length"))
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await?;
    Ok(head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status"))
}

async fn metadata(client: &reqwest::Client, base: &str) -> Value {
    client
        .get(format!("{base}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .expect("metadata")
        .json()
        .await
        .expect("JSON")
}

fn methods(metadata: &Value) -> Vec<&str> {
    metadata["token_endpoint_auth_methods_supported"]
        .as_array()
        .expect("methods")
        .iter()
        .map(|m| m.as_str().expect("string"))
        .collect()
}

/// With `tls_client_ca`, a certificate is asked for (hinting the CA) and none is
/// required: clients without one, with the CA's and with a self-signed one all
/// connect; a certificate whose key the client does not hold fails the handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_are_asked_for_not_required() {
    let db = TestDb::new(Backend::Sqlite).await;
    let pki = make_pki(&db);
    let secret_client = db.create_client("svc", &[]).await;
    let server = db.start(&pki.tls_args()).await;
    let addr = server.addr();

    for (what, identity) in [
        ("no certificate", None),
        (
            "the CA's certificate",
            Some((&pki.client, pki.client.key_pem.as_str())),
        ),
        (
            "a self-signed certificate",
            Some((&pki.self_signed, pki.self_signed.key_pem.as_str())),
        ),
    ] {
        let offer = Offer::new(identity);
        let mut stream = connect(addr, &pki, offer.clone())
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(get_on(&mut stream, "/healthz").await.expect(what), 200, "{what}");
        assert_eq!(
            offer.hints(),
            Some(vec![pki.ca_subject_der.clone()]),
            "{what}: the CA is hinted"
        );
    }

    // The CA's certificate with another key: the handshake signature does not verify.
    let offer = Offer::new(Some((&pki.client, pki.self_signed.key_pem.as_str())));
    let refused = match connect(addr, &pki, offer).await {
        Err(e) => Err(e),
        Ok(mut stream) => get_on(&mut stream, "/healthz").await,
    };
    assert!(
        refused.is_err(),
        "a certificate without its key got through: {refused:?}"
    );

    // HTTP, with and without a certificate: a secret client is not disturbed.
    let base = format!("https://127.0.0.1:{}", addr.port());
    for identity in [None, Some(&pki.client), Some(&pki.self_signed)] {
        let https = pki.https(identity);
        let reply = Reply::from(
            https
                .post(format!("{base}/oauth/token"))
                .basic_auth(&secret_client.id, Some(&secret_client.secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await,
        )
        .await;
        reply.assert_status(StatusCode::OK);
    }
    let metadata = metadata(&pki.https(None), &base).await;
    assert_eq!(
        methods(&metadata),
        [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "tls_client_auth",
            "self_signed_tls_client_auth"
        ]
    );
    assert_eq!(metadata["tls_client_certificate_bound_access_tokens"], true);
}

/// Without `tls_client_ca` no certificate is asked for, and the metadata offers no
/// mTLS method.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_client_ca_no_certificate_is_asked_for() {
    let db = TestDb::new(Backend::Sqlite).await;
    let pki = make_pki(&db);
    let server = db
        .start(&[
            "--tls-cert",
            path(&pki.server_cert),
            "--tls-key",
            path(&pki.server_key),
        ])
        .await;
    let offer = Offer::new(Some((&pki.client, pki.client.key_pem.as_str())));
    let mut stream = connect(server.addr(), &pki, offer.clone())
        .await
        .expect("connect");
    assert_eq!(get_on(&mut stream, "/healthz").await.expect("GET"), 200);
    assert_eq!(offer.hints(), None, "no CertificateRequest");
    let metadata = metadata(
        &pki.https(None),
        &format!("https://127.0.0.1:{}", server.addr().port()),
    )
    .await;
    assert_eq!(
        methods(&metadata),
        ["client_secret_basic", "client_secret_post", "private_key_jwt"]
    );
    assert!(metadata
        .get("tls_client_certificate_bound_access_tokens")
        .is_none());
}

/// `client create` of a `tls_client_auth` client with [`client_dn`], written the way
/// an operator might (other spacing and case).
async fn tls_client(db: &TestDb) -> String {
    let created = db
        .cli_json(&[
            "client",
            "create",
            "--name",
            "billing",
            "--auth-method",
            "tls_client_auth",
            "--tls-subject-dn",
            "cn=billing, o=Acme Corp, c=DE",
        ])
        .await;
    created["client_id"].as_str().expect("client_id").to_owned()
}

/// The certificate of the connection reaches the token endpoint: a `tls_client_auth`
/// client authenticates with the CA's certificate and nothing else; the self-signed
/// one with the same subject, or none, does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_certificate_authenticates_a_tls_client() {
    let db = TestDb::new(Backend::Sqlite).await;
    let pki = make_pki(&db);
    let client_id = tls_client(&db).await;
    let server = db.start(&pki.tls_args()).await;
    let base = format!("https://127.0.0.1:{}", server.addr().port());
    let token = |identity: Option<&Identity>| {
        let https = pki.https(identity);
        let (url, client_id) = (format!("{base}/oauth/token"), client_id.clone());
        async move {
            Reply::from(
                https
                    .post(url)
                    .form(&[("grant_type", "client_credentials"), ("client_id", &client_id)])
                    .send()
                    .await,
            )
            .await
        }
    };
    let issued = token(Some(&pki.client)).await;
    issued.assert_status(StatusCode::OK);
    assert!(issued.json()["access_token"].is_string(), "{issued:?}");
    for (what, identity) in [("self-signed", Some(&pki.self_signed)), ("none", None)] {
        let refused = token(identity).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{what}: {refused:?}");
        assert_eq!(refused.json()["error"], "invalid_client", "{what}");
    }
}

/// The connection's certificate also reaches the admin API's guard: an admin client
/// whose tokens are bound to its certificate uses the API over that connection, and
/// its token is refused on a connection without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bound_admin_tokens_work_over_the_same_certificate() {
    let db = TestDb::new(Backend::Sqlite).await;
    let pki = make_pki(&db);
    let admin = db
        .create_client("ops", &["--scope", "gatehouse:admin", "--bound-tokens"])
        .await;
    let server = db.start(&pki.tls_args()).await;
    let base = format!("https://127.0.0.1:{}", server.addr().port());
    let with_cert = pki.https(Some(&pki.client));
    let issued = Reply::from(
        with_cert
            .post(format!("{base}/oauth/token"))
            .basic_auth(&admin.id, Some(&admin.secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await,
    )
    .await;
    issued.assert_status(StatusCode::OK);
    let token = issued.json()["access_token"].as_str().expect("token").to_owned();
    let list = |http: reqwest::Client| {
        let (url, token) = (format!("{base}/admin/v1/clients"), token.clone());
        async move { Reply::from(http.get(url).bearer_auth(token).send().await).await }
    };
    list(with_cert.clone()).await.assert_status(StatusCode::OK);
    for (what, http) in [
        ("no certificate", pki.https(None)),
        ("another certificate", pki.https(Some(&pki.self_signed))),
    ] {
        let refused = list(http).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{what}: {refused:?}");
    }
}

/// Behind a proxy: the header is believed from `trusted_proxies` (a forwarded
/// certificate from the CA authenticates a `tls_client_auth` client, with no TLS on
/// the server), and ignored from anyone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_certificates_from_trusted_proxies_only() {
    let db = TestDb::new(Backend::Sqlite).await;
    let pki = make_pki(&db);
    let client_id = tls_client(&db).await;
    let secret_client = db.create_client("svc", &[]).await;
    let header_args = [
        "--tls-client-cert-header",
        "X-Client-Cert",
        "--tls-client-ca",
        path(&pki.ca_cert),
    ];
    let behind_proxy = db
        .server()
        .args(&header_args)
        .args(&["--trusted-proxies", "127.0.0.1"])
        .start()
        .await;
    let exposed = db
        .server()
        .args(&header_args)
        .args(&["--trusted-proxies", "10.0.0.0/8"])
        .start()
        .await;
    let token = |server: &TestServer<'_>, certificate: &str| {
        let request = server
            .http()
            .post(server.url("/oauth/token"))
            .header("x-client-cert", certificate)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id.as_str()),
            ]);
        async move { Reply::from(request.send().await).await }
    };

    let issued = token(&behind_proxy, &pki.client.url_encoded()).await;
    issued.assert_status(StatusCode::OK);
    let refused = token(&behind_proxy, &pki.self_signed.url_encoded()).await;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "not the CA's: {refused:?}"
    );
    let refused = token(&exposed, &pki.client.url_encoded()).await;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "from a stranger: {refused:?}"
    );
    assert_eq!(refused.json()["error"], "invalid_client");

    // A malformed header: 400 from a trusted proxy, ignored from anyone else.
    let secret_token = |server: &TestServer<'_>, certificate: &str| {
        let request = server
            .http()
            .post(server.url("/oauth/token"))
            .basic_auth(&secret_client.id, Some(&secret_client.secret))
            .header("x-client-cert", certificate)
            .form(&[("grant_type", "client_credentials")]);
        async move { Reply::from(request.send().await).await }
    };
    for bad in [
        "garbage",
        "%2D%2D%2D%2D%2DBEGIN%20CERTIFICATE",
        &percent_encode(&pki.client.key_pem),
    ] {
        let refused = secret_token(&behind_proxy, bad).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad}: {refused:?}");
        assert_eq!(refused.json()["error"], "invalid_request");
        secret_token(&exposed, bad).await.assert_status(StatusCode::OK);
    }
    // An empty one (nginx without a client certificate) is no certificate.
    secret_token(&behind_proxy, "")
        .await
        .assert_status(StatusCode::OK);

    let metadata = behind_proxy
        .get("/.well-known/oauth-authorization-server")
        .await
        .json();
    assert!(methods(&metadata).contains(&"tls_client_auth"));
    assert_eq!(metadata["tls_client_certificate_bound_access_tokens"], true);
}

/// SIGHUP reads `tls_client_ca` again: new handshakes hint the new CA; a broken file
/// keeps the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_client_cas() {
    let db = TestDb::new(Backend::Sqlite).await;
    let pki = make_pki(&db);
    let live = db.dir().join("live-ca.pem");
    std::fs::copy(&pki.ca_cert, &live).expect("copy");
    let mut args = pki.tls_args();
    let at = args.len() - 1;
    args[at] = path(&live);
    let server = db.start(&args).await;
    let hinted = || async {
        let offer = Offer::new(None);
        let mut stream = connect(server.addr(), &pki, offer.clone())
            .await
            .expect("connect");
        assert_eq!(get_on(&mut stream, "/healthz").await.expect("GET"), 200);
        offer.hints().expect("a CertificateRequest")
    };
    assert_eq!(hinted().await, std::slice::from_ref(&pki.ca_subject_der));

    std::fs::write(&live, "not a certificate").expect("write");
    server.signal("HUP");
    eventually(Duration::from_secs(5), "the failed reload is logged", || async {
        if server.logs().contains("client CAs (tls_client_ca) not reloaded") {
            Ok(())
        } else {
            Err(server.logs())
        }
    })
    .await;
    assert_eq!(hinted().await, std::slice::from_ref(&pki.ca_subject_der));

    let (other, _) = make_ca("Other Client CA");
    std::fs::write(
        &live,
        format!(
            "{}{}",
            other.pem(),
            std::fs::read_to_string(&pki.ca_cert).expect("read")
        ),
    )
    .expect("write");
    server.signal("HUP");
    let expected = vec![subject_der(other.der()), pki.ca_subject_der.clone()];
    eventually(Duration::from_secs(5), "new handshakes hint both CAs", || async {
        let hints = hinted().await;
        if hints == expected {
            Ok(())
        } else {
            Err(format!("{} hints", hints.len()))
        }
    })
    .await;
}

/// Unusable client certificate settings stop start-up: exit status 2, one line
/// naming the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_client_certificate_settings_stop_start_up() {
    let db = TestDb::new(Backend::Sqlite).await;
    let pki = make_pki(&db);
    let empty = db.dir().join("empty.pem");
    std::fs::write(&empty, "no certificate here\n").expect("write");
    let missing = db.dir().join("missing.pem");
    let tls = [
        "--tls-cert",
        path(&pki.server_cert),
        "--tls-key",
        path(&pki.server_key),
    ];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        // A CA, and no way for a certificate to arrive.
        (vec!["--tls-client-ca", path(&pki.ca_cert)], "tls_client_ca"),
        (
            [&tls[..], &["--tls-client-ca", path(&missing)]].concat(),
            "tls_client_ca",
        ),
        (
            [&tls[..], &["--tls-client-ca", path(&empty)]].concat(),
            "tls_client_ca",
        ),
        // A server certificate is no CA.
        (
            [&tls[..], &["--tls-client-ca", path(&pki.server_key)]].concat(),
            "tls_client_ca",
        ),
        (
            vec!["--tls-client-cert-header", "X Client Cert"],
            "tls_client_cert_header",
        ),
        (
            vec!["--tls-client-cert-header", "Authorization"],
            "tls_client_cert_header",
        ),
        (
            vec!["--allow-insecure-jwks-uri", "maybe"],
            "allow_insecure_jwks_uri",
        ),
    ];
    for (args, key) in cases {
        let out = db
            .server()
            .args(&args)
            .run_to_exit(Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        if let Some(problem) = out.one_line_error_problem(2, &[key]) {
            panic!("{args:?}: {problem}");
        }
    }
    // The environment and the file say the same.
    let out = db
        .server()
        .env("GATEHOUSE_TLS_CLIENT_CA", path(&pki.ca_cert))
        .run_to_exit(Duration::from_secs(10))
        .await
        .expect("exits");
    assert!(
        out.one_line_error_problem(2, &["tls_client_ca"]).is_none(),
        "{out:#?}"
    );
    let file = db.dir().join("g.toml");
    std::fs::write(&file, "tls_client_cert_header = \"bad header\"\n").expect("write");
    let out = db
        .server()
        .args(&["--config", path(&file)])
        .run_to_exit(Duration::from_secs(10))
        .await
        .expect("exits");
    assert!(
        out.one_line_error_problem(2, &["tls_client_cert_header"])
            .is_none(),
        "{out:#?}"
    );
}
