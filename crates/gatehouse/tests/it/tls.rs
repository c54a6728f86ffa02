//! TLS with rustls (ECDSA and RSA certificates), HTTP/1.1
//! and HTTP/2 by ALPN, `Strict-Transport-Security` on every answer, the
//! issuer's scheme, and the certificate files read again on SIGHUP without
//! dropping the connections that are open.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::helpers::*;

/// A self-signed certificate for 127.0.0.1 and localhost, as PEM files in the
/// test's directory.
struct TestCert {
    cert: PathBuf,
    key: PathBuf,
    cert_pem: String,
    der: Vec<u8>,
}

fn make_cert(db: &TestDb, name: &str, alg: &'static rcgen::SignatureAlgorithm) -> TestCert {
    let key = rcgen::KeyPair::generate_for(alg).expect("key pair");
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
    let cert = params.self_signed(&key).expect("self-signed certificate");
    let (cert_path, key_path) = (
        db.dir().join(format!("{name}.crt")),
        db.dir().join(format!("{name}.key")),
    );
    std::fs::write(&cert_path, cert.pem()).expect("write the certificate");
    std::fs::write(&key_path, key.serialize_pem()).expect("write the key");
    TestCert {
        cert: cert_path,
        key: key_path,
        cert_pem: cert.pem(),
        der: cert.der().to_vec(),
    }
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// An HTTPS client that trusts `certs` only.
fn https_client(certs: &[&TestCert], http1_only: bool) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(15))
        .tls_built_in_root_certs(false);
    for cert in certs {
        builder = builder
            .add_root_certificate(reqwest::Certificate::from_pem(cert.cert_pem.as_bytes()).expect("PEM"));
    }
    if http1_only {
        builder = builder.http1_only();
    }
    builder.build().expect("HTTPS client")
}

/// A raw TLS connection trusting `certs`, for a look at the certificate the
/// server presents and at what happens to an open connection.
async fn tls_connect(addr: SocketAddr, certs: &[&TestCert]) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots.add(CertificateDer::from(cert.der.clone())).expect("root");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(addr).await.expect("connect");
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::IpAddress(Ipv4Addr::LOCALHOST.into()), tcp)
        .await
        .expect("TLS handshake")
}

fn presented(stream: &TlsStream<TcpStream>) -> Vec<u8> {
    stream.get_ref().1.peer_certificates().expect("a certificate")[0].to_vec()
}

/// `GET path` on an open HTTP/1.1 connection; the status code.
async fn get_on(stream: &mut TlsStream<TcpStream>, path: &str) -> u16 {
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.expect("read the answer");
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
    stream.read_exact(&mut body).await.expect("read the body");
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status")
}

/// TLS with `alg`: both HTTP versions, HSTS, the https issuer, a token.
async fn serves_https_with(alg: &'static rcgen::SignatureAlgorithm) {
    let db = TestDb::new(Backend::Sqlite).await;
    let client = db.create_client("svc", &[]).await;
    let cert = make_cert(&db, "server", alg);
    // A non-loopback address needs no allow_insecure_http when TLS is on.
    let server = db
        .start(&[
            "--listen",
            "0.0.0.0:0",
            "--tls-cert",
            path(&cert.cert),
            "--tls-key",
            path(&cert.key),
        ])
        .await;
    let base = format!("https://127.0.0.1:{}", server.addr().port());

    for (http1_only, version) in [
        (true, reqwest::Version::HTTP_11),
        (false, reqwest::Version::HTTP_2),
    ] {
        let https = https_client(&[&cert], http1_only);
        let reply = https
            .get(format!("{base}/healthz"))
            .send()
            .await
            .expect("GET /healthz");
        assert_eq!(reply.status(), StatusCode::OK);
        assert_eq!(reply.version(), version);
        assert_eq!(
            reply
                .headers()
                .get("strict-transport-security")
                .and_then(|v| v.to_str().ok()),
            Some("max-age=31536000"),
            "{version:?}: {reply:?}"
        );
        let reply = https
            .post(format!("{base}/oauth/token"))
            .basic_auth(&client.id, Some(&client.secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("POST /oauth/token");
        assert_eq!(reply.status(), StatusCode::OK);
        assert!(
            reply.headers().contains_key("strict-transport-security"),
            "errors and tokens too"
        );
        let reply = https
            .get(format!("{base}/no-such-path"))
            .send()
            .await
            .expect("GET");
        assert_eq!(reply.status(), StatusCode::NOT_FOUND);
        assert!(reply.headers().contains_key("strict-transport-security"));
    }
    let metadata: serde_json::Value = https_client(&[&cert], false)
        .get(format!("{base}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .expect("metadata")
        .json()
        .await
        .expect("JSON");
    let issuer = metadata["issuer"].as_str().expect("issuer");
    assert!(
        issuer.starts_with("https://"),
        "the issuer follows the scheme: {issuer}"
    );
    assert!(metadata["token_endpoint"]
        .as_str()
        .is_some_and(|e| e.starts_with("https://")));

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let attempt = plain
        .get(format!("http://127.0.0.1:{}/healthz", server.addr().port()))
        .send()
        .await;
    assert!(attempt.is_err(), "plain HTTP was answered: {attempt:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_an_ecdsa_certificate() {
    serves_https_with(&rcgen::PKCS_ECDSA_P256_SHA256).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_an_rsa_certificate() {
    serves_https_with(&rcgen::PKCS_RSA_SHA256).await;
}

/// SIGHUP reads the files again: new connections get the new certificate, an
/// open connection keeps working; a bad file on reload keeps the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_without_dropping_connections() {
    let db = TestDb::new(Backend::Sqlite).await;
    let first = make_cert(&db, "first", &rcgen::PKCS_ECDSA_P256_SHA256);
    let second = make_cert(&db, "second", &rcgen::PKCS_ECDSA_P256_SHA256);
    let live = (db.dir().join("live.crt"), db.dir().join("live.key"));
    std::fs::copy(&first.cert, &live.0).expect("copy");
    std::fs::copy(&first.key, &live.1).expect("copy");
    let server = db
        .start(&["--tls-cert", path(&live.0), "--tls-key", path(&live.1)])
        .await;
    let addr = server.addr();

    let mut open = tls_connect(addr, &[&first, &second]).await;
    assert_eq!(presented(&open), first.der);
    assert_eq!(get_on(&mut open, "/healthz").await, 200);

    // A broken file on reload: the old certificate stays.
    std::fs::write(&live.0, "not a certificate").expect("write");
    server.signal("HUP");
    eventually(Duration::from_secs(5), "the failed reload is logged", || async {
        if server.logs().contains("TLS certificate not reloaded") {
            Ok(())
        } else {
            Err("no log line yet".to_string())
        }
    })
    .await;
    assert_eq!(presented(&tls_connect(addr, &[&first, &second]).await), first.der);

    std::fs::copy(&second.cert, &live.0).expect("copy");
    std::fs::copy(&second.key, &live.1).expect("copy");
    server.signal("HUP");
    eventually(
        Duration::from_secs(5),
        "new connections get the new certificate",
        || async {
            let fresh = tls_connect(addr, &[&first, &second]).await;
            if presented(&fresh) == second.der {
                Ok(())
            } else {
                Err("still the first certificate".to_string())
            }
        },
    )
    .await;
    // The connection opened before the reload was not dropped.
    assert_eq!(get_on(&mut open, "/healthz").await, 200);
    assert_eq!(presented(&open), first.der);
    eventually(Duration::from_secs(5), "the reload is logged", || async {
        if server.logs().contains("TLS certificate reloaded") {
            Ok(())
        } else {
            Err(server.logs())
        }
    })
    .await;
}

/// Unusable files stop start-up: one line naming the key, exit status 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_certificate_files_stop_start_up() {
    let db = TestDb::new(Backend::Sqlite).await;
    let one = make_cert(&db, "one", &rcgen::PKCS_ECDSA_P256_SHA256);
    let other = make_cert(&db, "other", &rcgen::PKCS_ECDSA_P256_SHA256);
    let missing = db.dir().join("missing.pem");
    let garbage = db.dir().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    let cases: [(&std::path::Path, &std::path::Path, &str); 4] = [
        (&missing, &one.key, "tls_cert"),
        (&garbage, &one.key, "tls_cert"),
        (&one.cert, &missing, "tls_key"),
        (&one.cert, &other.key, "tls_key"),
    ];
    for (cert, key, named) in cases {
        let out = db
            .server()
            .args(&["--tls-cert", path(cert), "--tls-key", path(key)])
            .run_to_exit(Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("{cert:?} {key:?}: {e}"));
        if let Some(problem) = out.one_line_error_problem(2, &[named]) {
            panic!("{cert:?} {key:?}: {problem}");
        }
    }
    // Only one of the pair.
    let out = db
        .server()
        .args(&["--tls-cert", path(&one.cert)])
        .run_to_exit(Duration::from_secs(10))
        .await
        .expect("exits");
    assert!(out.one_line_error_problem(2, &["tls_key"]).is_none(), "{out:#?}");
}
