//! Mutual TLS client authentication and certificate-bound tokens (RFC 8705;
//! docs/protocol.md), with certificates made here by rcgen: a CA and client
//! certificates it signs (with a subject DN), another CA, and self-signed
//! certificates. The server serves HTTPS with `tls_client_ca`; the client is
//! reqwest with an `Identity`. Behind a proxy, the certificate comes in the
//! `tls_client_cert_header` header, believed only from `trusted_proxies`.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD as BASE64URL};
use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::jose;
use crate::private_key_jwt::{assert_invalid_client, assert_oauth_error, key_client};

/// The subject DN of the client certificates, as a user would type it (RFC 4514).
const SUBJECT_DN: &str = "CN=svc-1,O=Example Corp,C=DE";

/// A certificate and its private key, as PEM, and the certificate's DER.
struct Cert {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
    key: KeyPair,
    /// The intermediate CAs' certificates (PEM) sent after this one.
    chain_pem: String,
}

impl Cert {
    /// The reqwest identity presenting this certificate (and its chain).
    fn identity(&self) -> reqwest::Identity {
        let pem = format!("{}{}{}", self.key_pem, self.cert_pem, self.chain_pem);
        reqwest::Identity::from_pem(pem.as_bytes()).expect("identity PEM")
    }

    /// `x5t#S256` (RFC 8705 §3.1): base64url of the SHA-256 of the DER.
    fn thumbprint(&self) -> String {
        BASE64URL.encode(sha256(&self.der))
    }

    /// The public key as a JWK with the certificate in `x5c`, as a
    /// self-signed client registers it.
    fn jwk_with_x5c(&self) -> Value {
        let point = self.key.public_key_raw();
        assert_eq!(point.len(), 65, "uncompressed P-256 point");
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": BASE64URL.encode(&point[1..33]),
            "y": BASE64URL.encode(&point[33..]),
            "use": "sig",
            "x5c": [BASE64.encode(&self.der)],
        })
    }

    /// The PEM percent-encoded, as nginx's `$ssl_client_escaped_cert` passes it.
    fn escaped_pem(&self) -> String {
        let mut out = String::new();
        for byte in self.cert_pem.bytes() {
            if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
                out.push(byte as char);
            } else {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
        out
    }
}

/// A DER certificate as a PEM block.
fn pem_block(der: &[u8]) -> String {
    let text = BASE64.encode(der);
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(64)
        .map(|l| std::str::from_utf8(l).expect("ASCII"))
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

fn sha256(data: &[u8]) -> Vec<u8> {
    let suite = rustls::crypto::aws_lc_rs::cipher_suite::TLS13_AES_128_GCM_SHA256;
    let hash = suite.tls13().expect("a TLS 1.3 suite").common.hash_provider;
    hash.hash(data).as_ref().to_vec()
}

/// `C`, `O`, `CN` in ASN.1 order, which RFC 4514 writes `CN=…,O=…,C=…`.
fn subject(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CountryName,
        DnValue::PrintableString("DE".try_into().expect("printable")),
    );
    dn.push(DnType::OrganizationName, "Example Corp");
    dn.push(DnType::CommonName, cn);
    dn
}

/// A certificate authority for client certificates.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    /// For an intermediate: the PEM of the CAs between it and the root, itself first.
    chain_pem: String,
}

/// The parameters of a CA certificate named `name`.
fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("key");
        let params = ca_params(name);
        let cert = params.self_signed(&key).expect("CA certificate");
        Ca {
            issuer: Issuer::new(params, key),
            cert_pem: cert.pem(),
            chain_pem: String::new(),
        }
    }

    /// An intermediate CA signed by this one.
    fn intermediate(&self, name: &str) -> Ca {
        let key = KeyPair::generate().expect("key");
        let params = ca_params(name);
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("intermediate CA certificate");
        Ca {
            issuer: Issuer::new(params, key),
            cert_pem: cert.pem(),
            chain_pem: format!("{}{}", cert.pem(), self.chain_pem),
        }
    }

    /// A client certificate with subject `CN=cn,O=Example Corp,C=DE`, signed by this CA.
    fn client(&self, cn: &str) -> Cert {
        self.client_with(cn, |_| {})
    }

    /// [`Ca::client`] with `change` made to the certificate's parameters first.
    fn client_with(&self, cn: &str, change: impl FnOnce(&mut CertificateParams)) -> Cert {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name = subject(cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        change(&mut params);
        let cert = params.signed_by(&key, &self.issuer).expect("client certificate");
        Cert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
            key,
            chain_pem: self.chain_pem.clone(),
        }
    }
}

/// A self-signed client certificate with subject `CN=cn,O=Example Corp,C=DE`.
fn self_signed(cn: &str) -> Cert {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name = subject(cn);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.self_signed(&key).expect("self-signed certificate");
    Cert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().to_vec(),
        key,
        chain_pem: String::new(),
    }
}

/// The certificates of one test, and the files the server reads.
struct Pki {
    ca: Ca,
    other_ca: Ca,
    server_cert: PathBuf,
    server_key: PathBuf,
    server_pem: String,
    ca_file: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        let ca = Ca::new("Client CA");
        let other_ca = Ca::new("Other CA");
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
        let server = params.self_signed(&key).expect("server certificate");
        let (server_cert, server_key, ca_file) = (
            dir.join("server.crt"),
            dir.join("server.key"),
            dir.join("clients-ca.pem"),
        );
        std::fs::write(&server_cert, server.pem()).expect("write");
        std::fs::write(&server_key, key.serialize_pem()).expect("write");
        std::fs::write(&ca_file, &ca.cert_pem).expect("write");
        Pki {
            ca,
            other_ca,
            server_cert,
            server_key,
            server_pem: server.pem(),
            ca_file,
        }
    }

    /// `--tls-cert`, `--tls-key`, `--tls-client-ca`.
    fn server_args(&self) -> Vec<&str> {
        vec![
            "--tls-cert",
            path(&self.server_cert),
            "--tls-key",
            path(&self.server_key),
            "--tls-client-ca",
            path(&self.ca_file),
        ]
    }

    /// An HTTPS client trusting the server's certificate, presenting `cert` if given.
    fn client(&self, cert: Option<&Cert>) -> reqwest::Client {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(15))
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.server_pem.as_bytes()).expect("PEM"));
        if let Some(cert) = cert {
            builder = builder.identity(cert.identity());
        }
        builder.build().expect("HTTPS client")
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// `https://127.0.0.1:PORT{path}` of `server`.
fn https_url(server: &TestServer<'_>, path: &str) -> String {
    format!("https://127.0.0.1:{}{path}", server.addr().port())
}

/// POSTs a form over `http` to `url`, with extra `headers`.
async fn post(http: &reqwest::Client, url: &str, params: &[(&str, &str)], headers: &[(&str, &str)]) -> Reply {
    let mut request = http
        .post(url)
        .header("content-type", FORM)
        .body(form_body(params));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    Reply::from(request.send().await).await
}

/// client_credentials for `client_id` (sent in the body, no secret).
async fn cert_token(http: &reqwest::Client, base: &str, client_id: &str) -> Reply {
    let params = [("grant_type", "client_credentials"), ("client_id", client_id)];
    post(http, &format!("{base}/oauth/token"), &params, &[]).await
}

/// A 200 for `client_id`; its token.
fn token_of(reply: &Reply, client_id: &str, what: &str) -> String {
    assert_eq!(reply.status, StatusCode::OK, "{what}: {reply:?}");
    let token = reply.access_token();
    if token.matches('.').count() == 2 {
        assert_eq!(jose::decode(&token).claims["client_id"], client_id, "{what}");
    }
    token
}

/// `client create --auth-method tls_client_auth --tls-subject-dn DN [extra] --json`.
async fn tls_client(db: &TestDb, name: &str, dn: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "client",
        "create",
        "--name",
        name,
        "--auth-method",
        "tls_client_auth",
        "--tls-subject-dn",
        dn,
    ];
    args.extend_from_slice(extra);
    let created = db.cli_json(&args).await;
    assert!(
        created.get("client_secret").is_none_or(Value::is_null),
        "a tls_client_auth client was shown a secret: {created}"
    );
    json_str(&created, "client_id")
}

/// A self_signed_tls_client_auth client registering `cert`.
async fn self_signed_client(db: &TestDb, name: &str, cert: &Cert, extra: &[&str]) -> String {
    key_client(
        db,
        name,
        "self_signed_tls_client_auth",
        &json!({"keys": [cert.jwk_with_x5c()]}),
        extra,
    )
    .await
}

backend_tests! {
    /// tls_client_auth: a certificate of the configured CA with the registered
    /// subject DN authenticates the client at the token, introspection and
    /// revocation endpoints; a wrong DN, another CA, a self-signed certificate
    /// with the right DN, and no certificate are refused.
    async fn tls_client_auth_checks_the_chain_and_the_subject(backend) {
        let db = TestDb::new(backend).await;
        let pki = Pki::new(db.dir());
        let right = tls_client(&db, "right", SUBJECT_DN, &[]).await;
        // The same DN written another way: attribute types in lower case, spaces after commas.
        let spaced = tls_client(&db, "spaced", "cn=svc-1, o=Example Corp, c=DE", &[]).await;
        let wrong = tls_client(&db, "wrong", "CN=svc-2,O=Example Corp,C=DE", &[]).await;
        let secret_client = db.create_client("secret", &[]).await;
        let server = db.start(&pki.server_args()).await;
        let base = https_url(&server, "");

        let good = pki.ca.client("svc-1");
        let with_good = pki.client(Some(&good));
        let token = token_of(&cert_token(&with_good, &base, &right).await, &right, "the right DN");
        token_of(&cert_token(&with_good, &base, &spaced).await, &spaced, "the right DN, written with spaces");
        assert_invalid_client(&cert_token(&with_good, &base, &wrong).await, "a registered DN of another subject");

        let introspection = post(&with_good, &format!("{base}/oauth/introspect"), &[("token", &token), ("client_id", &right)], &[]).await;
        introspection.assert_status(StatusCode::OK);
        assert_eq!(introspection.json()["active"], true, "{introspection:?}");
        let revoked = post(&with_good, &format!("{base}/oauth/revoke"), &[("token", &token), ("client_id", &right)], &[]).await;
        revoked.assert_status(StatusCode::OK);
        let introspection = post(&with_good, &format!("{base}/oauth/introspect"), &[("token", &token), ("client_id", &right)], &[]).await;
        assert_eq!(introspection.json(), json!({"active": false}), "{introspection:?}");

        let foreign = pki.other_ca.client("svc-1");
        assert_invalid_client(&cert_token(&pki.client(Some(&foreign)), &base, &right).await, "a certificate of another CA");
        let unsigned = self_signed("svc-1");
        assert_invalid_client(&cert_token(&pki.client(Some(&unsigned)), &base, &right).await, "a self-signed certificate with the right DN");
        let plain = pki.client(None);
        assert_invalid_client(&cert_token(&plain, &base, &right).await, "no certificate");
        let reply = post(&plain, &format!("{base}/oauth/token"), &[("grant_type", "client_credentials"), ("client_id", &right), ("client_secret", &random_token(""))], &[]).await;
        assert_invalid_client(&reply, "a tls_client_auth client with a client_secret and no certificate");

        // A secret client authenticates by its secret, certificate or not; with
        // only its client_id and a certificate, it does not.
        for http in [&with_good, &plain] {
            let reply = post(http, &format!("{base}/oauth/token"), &[("grant_type", "client_credentials")], &[("authorization", &basic_authorization(&secret_client.id, &secret_client.secret))]).await;
            token_of(&reply, &secret_client.id, "a secret client over TLS");
        }
        assert_invalid_client(&cert_token(&with_good, &base, &secret_client.id).await, "a secret client with a certificate and no secret");
    }

    /// self_signed_tls_client_auth: the certificate registered in the JWK
    /// Set's `x5c` authenticates; another self-signed certificate, a
    /// CA-signed one and none are refused.
    async fn self_signed_tls_client_auth_matches_the_registered_certificate(backend) {
        let db = TestDb::new(backend).await;
        let pki = Pki::new(db.dir());
        let mine = self_signed("svc-1");
        let id = self_signed_client(&db, "self", &mine, &[]).await;
        let server = db.start(&pki.server_args()).await;
        let base = https_url(&server, "");

        token_of(&cert_token(&pki.client(Some(&mine)), &base, &id).await, &id, "the registered certificate");
        let other = self_signed("svc-1");
        assert_invalid_client(&cert_token(&pki.client(Some(&other)), &base, &id).await, "another self-signed certificate");
        let signed = pki.ca.client("svc-1");
        assert_invalid_client(&cert_token(&pki.client(Some(&signed)), &base, &id).await, "a CA-signed certificate");
        assert_invalid_client(&cert_token(&pki.client(None), &base, &id).await, "no certificate");
    }

    /// `--bound-tokens`: the access token (JWT claim or introspection) carries
    /// `cnf.x5t#S256` of the certificate the token was requested with; a bound
    /// secret client without a certificate is told to connect with one.
    async fn bound_tokens_carry_the_certificate_thumbprint(backend) {
        let db = TestDb::new(backend).await;
        let pki = Pki::new(db.dir());
        let bound = tls_client(&db, "bound", SUBJECT_DN, &["--bound-tokens"]).await;
        let opaque = tls_client(&db, "opaque", SUBJECT_DN, &["--bound-tokens", "--token-format", "opaque"]).await;
        let unbound = tls_client(&db, "unbound", SUBJECT_DN, &[]).await;
        let bound_secret = db.create_client("bound-secret", &["--bound-tokens"]).await;
        let server = db.start(&pki.server_args()).await;
        let base = https_url(&server, "");
        let cert = pki.ca.client("svc-1");
        let http = pki.client(Some(&cert));
        let cnf = json!({"x5t#S256": cert.thumbprint()});
        let introspect = |client_id: &str, token: &str| {
            let (http, url) = (&http, format!("{base}/oauth/introspect"));
            let params = [("token", token.to_string()), ("client_id", client_id.to_string())];
            async move {
                let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let reply = post(http, &url, &params, &[]).await;
                reply.assert_status(StatusCode::OK);
                reply.json()
            }
        };

        let token = token_of(&cert_token(&http, &base, &bound).await, &bound, "bound JWT");
        assert_eq!(jose::decode(&token).claims["cnf"], cnf, "the JWT's cnf");
        assert_eq!(introspect(&bound, &token).await["cnf"], cnf, "introspection of the bound JWT");

        let token = token_of(&cert_token(&http, &base, &opaque).await, &opaque, "bound opaque token");
        assert_token_form(&token, "gho_");
        let body = introspect(&opaque, &token).await;
        assert_eq!(body["active"], true, "{body}");
        assert_eq!(body["cnf"], cnf, "introspection of the bound opaque token");

        let token = token_of(&cert_token(&http, &base, &unbound).await, &unbound, "unbound JWT");
        assert!(jose::decode(&token).claims.get("cnf").is_none(), "an unbound token has cnf");
        assert!(introspect(&unbound, &token).await.get("cnf").is_none(), "an unbound token's introspection has cnf");

        let basic = basic_authorization(&bound_secret.id, &bound_secret.secret);
        let reply = post(&http, &format!("{base}/oauth/token"), &[("grant_type", "client_credentials")], &[("authorization", &basic)]).await;
        let token = token_of(&reply, &bound_secret.id, "bound secret client with a certificate");
        assert_eq!(jose::decode(&token).claims["cnf"], cnf, "the secret client's bound JWT");
        let reply = post(&pki.client(None), &format!("{base}/oauth/token"), &[("grant_type", "client_credentials")], &[("authorization", &basic)]).await;
        assert_oauth_error(&reply, StatusCode::BAD_REQUEST, "invalid_request", "a bound secret client without a certificate");
    }

    /// A certificate counts as the CA's only if it chains to it (through an
    /// intermediate the client sends), is valid now and allows client
    /// authentication (docs/configuration.md, tls_client_ca).
    async fn a_certificate_counts_if_it_chains_is_valid_now_and_allows_client_authentication(backend) {
        let db = TestDb::new(backend).await;
        let pki = Pki::new(db.dir());
        let id = tls_client(&db, "svc", SUBJECT_DN, &[]).await;
        let server = db.start(&pki.server_args()).await;
        let base = https_url(&server, "");

        let intermediate = pki.ca.intermediate("Issuing CA");
        let chained = intermediate.client("svc-1");
        token_of(&cert_token(&pki.client(Some(&chained)), &base, &id).await, &id, "a certificate of an intermediate, sent with it");
        let mut unchained = intermediate.client("svc-1");
        unchained.chain_pem.clear();
        assert_invalid_client(&cert_token(&pki.client(Some(&unchained)), &base, &id).await, "a certificate of an intermediate, sent without it");

        let expired = pki.ca.client_with("svc-1", |p| {
            p.not_before = rcgen::date_time_ymd(2001, 1, 1);
            p.not_after = rcgen::date_time_ymd(2002, 1, 1);
        });
        assert_invalid_client(&cert_token(&pki.client(Some(&expired)), &base, &id).await, "an expired certificate");
        let future = pki.ca.client_with("svc-1", |p| {
            p.not_before = rcgen::date_time_ymd(2090, 1, 1);
            p.not_after = rcgen::date_time_ymd(2091, 1, 1);
        });
        assert_invalid_client(&cert_token(&pki.client(Some(&future)), &base, &id).await, "a certificate not yet valid");
        let server_only = pki.ca.client_with("svc-1", |p| {
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        });
        assert_invalid_client(&cert_token(&pki.client(Some(&server_only)), &base, &id).await, "a certificate for servers only");
        // The plain client certificate of the CA, after all those refusals.
        let good = pki.ca.client("svc-1");
        token_of(&cert_token(&pki.client(Some(&good)), &base, &id).await, &id, "the CA's plain client certificate");
    }

    /// A bound client's refresh: the new access token is bound to the
    /// certificate of the refresh request, and a refresh without one is refused.
    async fn a_refresh_binds_to_the_refresh_requests_certificate(backend) {
        let db = TestDb::new(backend).await;
        let pki = Pki::new(db.dir());
        let client = db
            .create_client("app", &["--scope", "read", "--grant-types", "password,refresh_token", "--bound-tokens"])
            .await;
        let user = db.create_user("alice", PASSWORD, Some("read")).await;
        let server = db.start(&pki.server_args()).await;
        let url = https_url(&server, "/oauth/token");
        let basic = basic_authorization(&client.id, &client.secret);
        let (first, second) = (pki.ca.client("svc-1"), pki.other_ca.client("svc-2"));

        let login = [("grant_type", "password"), ("username", user.username.as_str()), ("password", PASSWORD)];
        let reply = post(&pki.client(Some(&first)), &url, &login, &[("authorization", &basic)]).await;
        let access = token_of(&reply, &client.id, "login with a certificate");
        assert_eq!(jose::decode(&access).claims["cnf"], json!({"x5t#S256": first.thumbprint()}));
        let refresh = reply.refresh_token();

        let params = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
        let reply = post(&pki.client(Some(&second)), &url, &params, &[("authorization", &basic)]).await;
        let access = token_of(&reply, &client.id, "refresh with another certificate");
        assert_eq!(jose::decode(&access).claims["cnf"], json!({"x5t#S256": second.thumbprint()}), "bound to the refresh request's certificate");
        let refresh = reply.refresh_token();

        let params = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
        let reply = post(&pki.client(None), &url, &params, &[("authorization", &basic)]).await;
        assert_oauth_error(&reply, StatusCode::BAD_REQUEST, "invalid_request", "a bound client's refresh without a certificate");
        let reply = post(&pki.client(None), &url, &login, &[("authorization", &basic)]).await;
        assert_oauth_error(&reply, StatusCode::BAD_REQUEST, "invalid_request", "a bound client's login without a certificate");
    }

    /// Behind a TLS-terminating proxy: the certificate in `X-Client-Cert`
    /// (URL-encoded PEM) is believed from a trusted proxy, and ignored from
    /// anyone else.
    async fn a_trusted_proxy_passes_the_certificate_in_a_header(backend) {
        let db = TestDb::new(backend).await;
        let pki = Pki::new(db.dir());
        let cert = pki.ca.client("svc-1");
        let mine = self_signed("svc-1");
        let tls = tls_client(&db, "tls", SUBJECT_DN, &["--bound-tokens"]).await;
        let self_id = self_signed_client(&db, "self", &mine, &[]).await;
        let header_args = ["--tls-client-cert-header", "X-Client-Cert", "--tls-client-ca", path(&pki.ca_file)];
        let mut trusting = vec!["--trusted-proxies", "127.0.0.1"];
        trusting.extend(header_args);
        let server = db.start(&trusting).await;
        let base = server.url("");
        let http = server.http();
        let token_with_header = |client_id: &str, header: Option<String>| {
            let (http, base, client_id) = (&http, &base, client_id.to_string());
            async move {
                let headers: Vec<(&str, &str)> = header.iter().map(|h| ("x-client-cert", h.as_str())).collect();
                let params = [("grant_type", "client_credentials"), ("client_id", client_id.as_str())];
                post(http, &format!("{base}/oauth/token"), &params, &headers).await
            }
        };

        let reply = token_with_header(&tls, Some(cert.escaped_pem())).await;
        let token = token_of(&reply, &tls, "tls_client_auth by a trusted proxy's header");
        assert_eq!(jose::decode(&token).claims["cnf"], json!({"x5t#S256": cert.thumbprint()}), "bound by the header's certificate");
        token_of(&token_with_header(&self_id, Some(mine.escaped_pem())).await, &self_id, "self-signed by a trusted proxy's header");
        assert_invalid_client(&token_with_header(&self_id, Some(self_signed("svc-1").escaped_pem())).await, "another self-signed certificate in the header");
        let foreign = pki.other_ca.client("svc-1");
        assert_invalid_client(&token_with_header(&tls, Some(foreign.escaped_pem())).await, "a certificate of another CA in the header");
        // A chain in the header, leaf first (docs/configuration.md): through an intermediate.
        let chained = pki.ca.intermediate("Issuing CA").client("svc-1");
        let leaf_first = Cert { cert_pem: format!("{}{}", chained.cert_pem, chained.chain_pem), ..chained };
        let reply = token_with_header(&tls, Some(leaf_first.escaped_pem())).await;
        let token = token_of(&reply, &tls, "a chain through an intermediate in the header");
        assert_eq!(jose::decode(&token).claims["cnf"], json!({"x5t#S256": leaf_first.thumbprint()}), "bound to the leaf");
        let leaf_alone = Cert { cert_pem: pem_block(&leaf_first.der), chain_pem: String::new(), ..leaf_first };
        assert_invalid_client(&token_with_header(&tls, Some(leaf_alone.escaped_pem())).await, "an intermediate's leaf without its chain in the header");
        assert_invalid_client(&token_with_header(&tls, None).await, "no header");
        // nginx sends an empty $ssl_client_escaped_cert when there is no certificate.
        assert_invalid_client(&token_with_header(&tls, Some(String::new())).await, "an empty header");
        // A malformed header from a trusted proxy is its error (docs/configuration.md).
        for garbage in ["not a certificate", "-----BEGIN%20CERTIFICATE-----%0Azzzz%0A-----END%20CERTIFICATE-----%0A", "%ZZ", &"A".repeat(6000)] {
            let reply = token_with_header(&tls, Some(garbage.to_string())).await;
            assert_oauth_error(&reply, StatusCode::BAD_REQUEST, "invalid_request", &format!("header {:?}", &garbage[..garbage.len().min(40)]));
        }
        // A private key instead of a certificate, and the header twice: never a client.
        let key_pem = cert.key_pem.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
        let reply = token_with_header(&tls, Some(key_pem)).await;
        assert_oauth_error(&reply, StatusCode::BAD_REQUEST, "invalid_request", "a private key in the header");
        let (first, second) = (cert.escaped_pem(), foreign.escaped_pem());
        let params = [("grant_type", "client_credentials"), ("client_id", tls.as_str())];
        for headers in [[("x-client-cert", &first), ("x-client-cert", &second)], [("x-client-cert", &second), ("x-client-cert", &first)]] {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let reply = post(&http, &format!("{base}/oauth/token"), &params, &headers).await;
            assert!(
                matches!(reply.status, StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED),
                "two certificate headers, one of them good: {reply:?}"
            );
        }

        // The same header from an address that is not a trusted proxy is ignored.
        let mut distrusting = vec!["--trusted-proxies", "192.0.2.7"];
        distrusting.extend(header_args);
        let elsewhere = db.start(&distrusting).await;
        let params = [("grant_type", "client_credentials"), ("client_id", tls.as_str())];
        let escaped = cert.escaped_pem();
        let reply = post(&http, &elsewhere.url("/oauth/token"), &params, &[("x-client-cert", &escaped)]).await;
        assert_invalid_client(&reply, "the header from an untrusted peer");
        let params = [("grant_type", "client_credentials"), ("client_id", self_id.as_str())];
        let escaped = mine.escaped_pem();
        let reply = post(&http, &elsewhere.url("/oauth/token"), &params, &[("x-client-cert", &escaped)]).await;
        assert_invalid_client(&reply, "the self-signed header from an untrusted peer");

        // Without tls_client_ca, a forwarded certificate chains to nothing: good for
        // self_signed_tls_client_auth and bound tokens only.
        let no_ca = db.start(&["--trusted-proxies", "127.0.0.1", "--tls-client-cert-header", "X-Client-Cert"]).await;
        let params = [("grant_type", "client_credentials"), ("client_id", tls.as_str())];
        let escaped = cert.escaped_pem();
        let reply = post(&http, &no_ca.url("/oauth/token"), &params, &[("x-client-cert", &escaped)]).await;
        assert_invalid_client(&reply, "tls_client_auth by a header, with no tls_client_ca");
        let params = [("grant_type", "client_credentials"), ("client_id", self_id.as_str())];
        let escaped = mine.escaped_pem();
        let reply = post(&http, &no_ca.url("/oauth/token"), &params, &[("x-client-cert", &escaped)]).await;
        token_of(&reply, &self_id, "self-signed by a header, with no tls_client_ca");

        // Without tls_client_cert_header, the header means nothing even from a trusted proxy.
        let unnamed = db.start(&["--trusted-proxies", "127.0.0.1"]).await;
        let escaped = cert.escaped_pem();
        let params = [("grant_type", "client_credentials"), ("client_id", tls.as_str())];
        let reply = post(&http, &unnamed.url("/oauth/token"), &params, &[("x-client-cert", &escaped)]).await;
        assert_invalid_client(&reply, "the header with no tls_client_cert_header set");
    }
}

/// The methods a server lists, and whether it says it binds tokens.
async fn advertised(http: &reqwest::Client, base: &str) -> Vec<(String, HashSet<String>, Value)> {
    let mut out = Vec::new();
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let metadata: Value = http
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("metadata")
            .json()
            .await
            .expect("JSON");
        for endpoint in ["token", "revocation", "introspection"] {
            let methods = metadata[format!("{endpoint}_endpoint_auth_methods_supported")]
                .as_array()
                .unwrap_or_else(|| panic!("{path}: no {endpoint} methods: {metadata}"))
                .iter()
                .map(|m| m.as_str().expect("string").to_string())
                .collect();
            out.push((
                format!("{path} {endpoint}"),
                methods,
                metadata["tls_client_certificate_bound_access_tokens"].clone(),
            ));
        }
    }
    out
}

/// The metadata lists the mTLS methods and bound tokens when the server can
/// see client certificates (a client CA, or a proxy's header), and not otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_lists_the_mtls_methods_when_certificates_can_be_seen() {
    let db = TestDb::new(Backend::Sqlite).await;
    let pki = Pki::new(db.dir());
    let all = [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "tls_client_auth",
        "self_signed_tls_client_auth",
    ];

    let tls = db.start(&pki.server_args()).await;
    let header = db
        .start(&[
            "--trusted-proxies",
            "127.0.0.1",
            "--tls-client-cert-header",
            "X-Client-Cert",
        ])
        .await;
    for (what, http, base) in [
        ("tls_client_ca", pki.client(None), https_url(&tls, "")),
        ("tls_client_cert_header", header.http(), header.url("")),
    ] {
        for (where_, methods, bound) in advertised(&http, &base).await {
            for method in all {
                assert!(
                    methods.contains(method),
                    "{what}: {where_} lacks {method}: {methods:?}"
                );
            }
            assert_eq!(
                bound, true,
                "{what}: {where_}: tls_client_certificate_bound_access_tokens"
            );
        }
    }

    let plain = db.start(&[]).await;
    for (where_, methods, bound) in advertised(&plain.http(), &plain.url("")).await {
        assert!(methods.contains("private_key_jwt"), "{where_}: {methods:?}");
        assert!(
            !methods.contains("tls_client_auth") && !methods.contains("self_signed_tls_client_auth"),
            "a server that sees no certificate lists mTLS: {where_}: {methods:?}"
        );
        assert_ne!(
            bound, true,
            "a server that sees no certificate binds tokens: {where_}"
        );
    }
}

/// `tls_client_ca` without TLS, or naming no usable PEM bundle, stops start-up
/// with one line naming the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_client_ca_stops_start_up() {
    let db = TestDb::new(Backend::Sqlite).await;
    let pki = Pki::new(db.dir());
    let missing = db.dir().join("missing.pem");
    let garbage = db.dir().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write");
    let tls = [
        "--tls-cert",
        path(&pki.server_cert),
        "--tls-key",
        path(&pki.server_key),
    ];
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("without tls_cert", vec!["--tls-client-ca", path(&pki.ca_file)]),
        (
            "a missing file",
            [&tls[..], &["--tls-client-ca", path(&missing)][..]].concat(),
        ),
        (
            "a file with no certificate",
            [&tls[..], &["--tls-client-ca", path(&garbage)][..]].concat(),
        ),
    ];
    for (what, args) in cases {
        let out = db
            .server()
            .args(&args)
            .run_to_exit(Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        if let Some(problem) = out.one_line_error_problem(2, &["tls_client_ca"]) {
            panic!("{what}: {problem}");
        }
    }
}
