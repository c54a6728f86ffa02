//! Certificate-bound access tokens (RFC 8705 §3) through the guard: tokens signed by
//! a test key of a stub issuer (metadata, JWKS, introspection on `127.0.0.1:0`),
//! requests with and without the certificate they are bound to, from the
//! connection ([`ClientCertificate`]) or from a trusted proxy's header.

// Tests may unwrap: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, State};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as BASE64URL};
use base64::Engine as _;
use gatehouse_guard::{Claims, ClientCertificate, Guard, GuardBuildError};
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Request, StatusCode};
use ipnet::IpNet;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tower::ServiceExt;

const AUDIENCE: &str = "https://api.example";

/// The issuer: its URL and its signing key.
struct Issuer {
    url: String,
    key: EncodingKey,
}

impl Issuer {
    /// Serves metadata, a JWKS of one Ed25519 key (`kid` k1; EdDSA has one
    /// signature per message, where an ES256 one would need its low-S form), and an
    /// introspection endpoint ([`introspect`]).
    async fn start() -> Issuer {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let jwk = json!({
            "kty": "OKP", "crv": "Ed25519", "kid": "k1", "alg": "EdDSA", "use": "sig",
            "x": BASE64URL.encode(pair.public_key().as_ref()),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let metadata = json!({
            "issuer": url,
            "jwks_uri": format!("{url}/jwks"),
            "introspection_endpoint": format!("{url}/introspect"),
        });
        let app = Router::new()
            .route(
                "/.well-known/oauth-authorization-server",
                get(move || async move { Json(metadata) }),
            )
            .route("/jwks", get(move || async move { Json(json!({"keys": [jwk]})) }))
            .route("/introspect", post(introspect))
            .with_state(url.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Issuer {
            url,
            key: EncodingKey::from_ed_der(pkcs8.as_ref()),
        }
    }

    /// An RFC 9068 access token with `cnf` as given.
    fn token(&self, cnf: Option<Value>) -> String {
        let mut claims = claims(&self.url);
        if let Some(cnf) = cnf {
            claims["cnf"] = cnf;
        }
        let mut header = Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.typ = Some("at+jwt".into());
        header.kid = Some("k1".into());
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }

    fn guard(&self) -> gatehouse_guard::GuardBuilder {
        Guard::builder(&self.url).audience(AUDIENCE)
    }
}

fn claims(issuer: &str) -> Value {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    json!({
        "iss": issuer, "aud": AUDIENCE, "sub": "svc", "client_id": "svc",
        "scope": "read", "iat": now, "exp": now + 300, "jti": "j1",
    })
}

/// RFC 7662: `bound.<thumbprint>` is active and bound to it, anything else active
/// and unbound.
async fn introspect(State(issuer): State<String>, Form(form): Form<Vec<(String, String)>>) -> Json<Value> {
    let token = form
        .iter()
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value.clone())
        .unwrap_or_default();
    let mut answer = claims(&issuer);
    answer["active"] = json!(true);
    answer["token_type"] = json!("Bearer");
    if let Some(thumbprint) = token.strip_prefix("bound.") {
        answer["cnf"] = json!({"x5t#S256": thumbprint});
    }
    Json(answer)
}

/// Two distinct "certificates": the guard compares DER bytes by their SHA-256 and
/// never parses them.
fn cert(name: &str) -> Vec<u8> {
    format!("certificate of {name}").into_bytes()
}

fn bound_to(der: &[u8]) -> Option<Value> {
    Some(json!({"x5t#S256": ClientCertificate(der.to_vec()).thumbprint()}))
}

fn url_encoded_pem(der: &[u8]) -> String {
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        STANDARD.encode(der)
    );
    percent_encoding::utf8_percent_encode(&pem, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// What a request carries besides its token.
#[derive(Default)]
struct With {
    certificate: Option<Vec<u8>>,
    header: Option<String>,
    peer: Option<&'static str>,
}

/// Status, `error_description` and body of a request to a guarded route that
/// answers the token's bound thumbprint.
async fn call(guard: &Guard, token: &str, with: With) -> (StatusCode, String) {
    let app =
        Router::new()
            .route(
                "/r",
                get(|claims: Claims| async move {
                    claims.certificate_thumbprint().unwrap_or("unbound").to_owned()
                }),
            )
            .layer(guard.layer());
    let mut request = Request::get("/r").header(AUTHORIZATION, format!("Bearer {token}"));
    if let Some(header) = with.header {
        request = request.header("x-client-cert", header);
    }
    let mut request = request.body(Body::empty()).unwrap();
    if let Some(der) = with.certificate {
        request.extensions_mut().insert(ClientCertificate(der));
    }
    if let Some(peer) = with.peer {
        let ip: IpAddr = peer.parse().unwrap();
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(ip, 40000)));
    }
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = String::from_utf8(to_bytes(response.into_body(), 1 << 16).await.unwrap().to_vec()).unwrap();
    if status == StatusCode::OK {
        return (status, body);
    }
    let error: Value = serde_json::from_str(&body).unwrap();
    assert!(
        challenge.contains(error["error"].as_str().unwrap()),
        "{challenge} / {body}"
    );
    (status, error["error_description"].as_str().unwrap().to_owned())
}

const NONE_PRESENTED: &str =
    "The access token is bound to a TLS client certificate (cnf x5t#S256), and the request presented none.";
const ANOTHER: &str =
    "The access token is bound to a TLS client certificate other than the one the request presented.";

#[tokio::test]
async fn a_bound_jwt_needs_the_connections_certificate() {
    let issuer = Issuer::start().await;
    let guard = issuer.guard().build().unwrap();
    let alice = cert("alice");
    let bound = issuer.token(bound_to(&alice));
    let thumbprint = ClientCertificate(alice.clone()).thumbprint();

    let right = With {
        certificate: Some(alice.clone()),
        ..With::default()
    };
    assert_eq!(call(&guard, &bound, right).await, (StatusCode::OK, thumbprint));

    let wrong = With {
        certificate: Some(cert("mallory")),
        ..With::default()
    };
    assert_eq!(
        call(&guard, &bound, wrong).await,
        (StatusCode::UNAUTHORIZED, ANOTHER.into())
    );
    assert_eq!(
        call(&guard, &bound, With::default()).await,
        (StatusCode::UNAUTHORIZED, NONE_PRESENTED.into())
    );
    // From no request at all there is no certificate either.
    assert!(guard.validate(&bound).await.is_err());

    // Bearer tokens are unaffected, with or without a certificate.
    let unbound = issuer.token(None);
    assert_eq!(
        call(&guard, &unbound, With::default()).await,
        (StatusCode::OK, "unbound".into())
    );
    let with_cert = With {
        certificate: Some(alice),
        ..With::default()
    };
    assert_eq!(
        call(&guard, &unbound, with_cert).await,
        (StatusCode::OK, "unbound".into())
    );
    assert!(guard.validate(&unbound).await.is_ok());

    // A binding the guard cannot check is not taken for a bearer token.
    let dpop = issuer.token(Some(
        json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}),
    ));
    let (status, description) = call(&guard, &dpop, With::default()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(description.contains("cannot check"), "{description}");
}

#[tokio::test]
async fn introspection_answers_carry_the_binding_too() {
    let issuer = Issuer::start().await;
    let guard = issuer.guard().introspect("rs", "rs-secret").build().unwrap();
    let alice = cert("alice");
    let thumbprint = ClientCertificate(alice.clone()).thumbprint();
    let bound = format!("bound.{thumbprint}");

    let right = With {
        certificate: Some(alice),
        ..With::default()
    };
    assert_eq!(call(&guard, &bound, right).await, (StatusCode::OK, thumbprint));
    // The cached answer is checked against each request's certificate anew.
    let wrong = With {
        certificate: Some(cert("mallory")),
        ..With::default()
    };
    assert_eq!(
        call(&guard, &bound, wrong).await,
        (StatusCode::UNAUTHORIZED, ANOTHER.into())
    );
    assert_eq!(
        call(&guard, &bound, With::default()).await,
        (StatusCode::UNAUTHORIZED, NONE_PRESENTED.into())
    );
    assert_eq!(
        call(&guard, "opaque", With::default()).await,
        (StatusCode::OK, "unbound".into())
    );
}

#[tokio::test]
async fn a_forwarded_certificate_counts_only_from_a_trusted_proxy() {
    let issuer = Issuer::start().await;
    let proxies: [IpNet; 2] = ["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
    let guard = issuer
        .guard()
        .client_cert_header("X-Client-Cert", proxies)
        .build()
        .unwrap();
    let alice = cert("alice");
    let bound = issuer.token(bound_to(&alice));
    let thumbprint = ClientCertificate(alice.clone()).thumbprint();
    let forwarded = |der: &[u8], peer| With {
        header: Some(url_encoded_pem(der)),
        peer: Some(peer),
        ..With::default()
    };

    assert_eq!(
        call(&guard, &bound, forwarded(&alice, "10.1.2.3")).await,
        (StatusCode::OK, thumbprint.clone())
    );
    // A dual-stack listener's view of the same proxy.
    assert_eq!(
        call(&guard, &bound, forwarded(&alice, "::ffff:10.1.2.3")).await,
        (StatusCode::OK, thumbprint.clone())
    );
    assert_eq!(
        call(&guard, &bound, forwarded(&cert("mallory"), "10.1.2.3")).await,
        (StatusCode::UNAUTHORIZED, ANOTHER.into())
    );
    // Anyone else's header is ignored.
    assert_eq!(
        call(&guard, &bound, forwarded(&alice, "192.0.2.7")).await,
        (StatusCode::UNAUTHORIZED, NONE_PRESENTED.into())
    );
    // Without ConnectInfo the peer is unknown, so no one is trusted.
    let no_peer = With {
        header: Some(url_encoded_pem(&alice)),
        ..With::default()
    };
    assert_eq!(
        call(&guard, &bound, no_peer).await,
        (StatusCode::UNAUTHORIZED, NONE_PRESENTED.into())
    );
    // From a trusted proxy the header is the whole truth: the certificate of the
    // proxy's own connection is not its client's.
    let proxy_connection_only = With {
        certificate: Some(alice.clone()),
        peer: Some("10.1.2.3"),
        ..With::default()
    };
    assert_eq!(
        call(&guard, &bound, proxy_connection_only).await,
        (StatusCode::UNAUTHORIZED, NONE_PRESENTED.into())
    );
    // From anyone else the connection's certificate stands, whatever the header says.
    let direct = With {
        certificate: Some(alice),
        header: Some(url_encoded_pem(&cert("mallory"))),
        peer: Some("192.0.2.7"),
    };
    assert_eq!(call(&guard, &bound, direct).await, (StatusCode::OK, thumbprint));
    // A header a trusted proxy garbled is a malformed request, as at the token endpoint.
    let garbled = With {
        header: Some("not%20PEM".into()),
        peer: Some("10.1.2.3"),
        ..With::default()
    };
    let (status, description) = call(&guard, &bound, garbled).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{description}");
    // An unbound token never looks at the header.
    let garbled = With {
        header: Some("not%20PEM".into()),
        peer: Some("10.1.2.3"),
        ..With::default()
    };
    assert_eq!(
        call(&guard, &issuer.token(None), garbled).await,
        (StatusCode::OK, "unbound".into())
    );
}

#[tokio::test]
async fn the_header_setting_is_checked_when_built() {
    let issuer = Issuer::start().await;
    let localhost = [IpAddr::from([127, 0, 0, 1])];
    assert!(matches!(
        issuer.guard().client_cert_header("bad header", localhost).build(),
        Err(GuardBuildError::ClientCertHeader(_))
    ));
    assert!(matches!(
        issuer
            .guard()
            .client_cert_header("x-client-cert", Vec::<IpNet>::new())
            .build(),
        Err(GuardBuildError::ClientCertHeader(_))
    ));
    assert!(issuer
        .guard()
        .client_cert_header("x-client-cert", localhost)
        .build()
        .is_ok());
}
