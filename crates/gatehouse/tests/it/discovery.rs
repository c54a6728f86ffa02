//! RFC 8414 metadata and the JWKS: what a client or resource server reads to
//! find everything else.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

const ISSUER: &str = "http://test.local";

/// Every algorithm listed by a `*_signing_alg_values_supported` member.
pub fn signing_algs(metadata: &Value) -> Vec<String> {
    metadata
        .as_object()
        .expect("metadata is an object")
        .iter()
        .filter(|(name, _)| name.ends_with("signing_alg_values_supported"))
        .filter_map(|(_, algs)| algs.as_array())
        .flatten()
        .filter_map(|alg| alg.as_str().map(str::to_string))
        .collect()
}

const METADATA_PATHS: [&str; 2] = [
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
];

fn strings(metadata: &Value, member: &str) -> Vec<String> {
    metadata[member]
        .as_array()
        .unwrap_or_else(|| panic!("{member} is not an array: {metadata}"))
        .iter()
        .map(|v| v.as_str().expect("strings").to_string())
        .collect()
}

backend_tests! {
    /// Both well-known documents name the issuer, every endpoint, the grant,
    /// the client authentication methods and the signing algorithm.
    async fn metadata_names_every_endpoint(backend) {
        let db = TestDb::new(backend).await;
        let server = db.start(&["--issuer", ISSUER, "--signing-alg", "EdDSA"]).await;

        for path in METADATA_PATHS {
            let reply = server.get(path).await;
            reply.assert_status(StatusCode::OK).assert_json_content_type();
            let metadata = reply.json();
            assert_eq!(metadata["issuer"], ISSUER, "{path}: {metadata}");
            for (member, endpoint) in [("token_endpoint", "/oauth/token"), ("jwks_uri", "/oauth/jwks")] {
                assert_eq!(
                    metadata[member],
                    format!("{ISSUER}{endpoint}"),
                    "{path} {member}: {metadata}"
                );
            }
            assert!(
                strings(&metadata, "grant_types_supported").contains(&"client_credentials".into()),
                "{path}: {metadata}"
            );
            let methods = strings(&metadata, "token_endpoint_auth_methods_supported");
            for method in ["client_secret_basic", "client_secret_post"] {
                assert!(
                    methods.contains(&method.into()),
                    "{path} lacks {method}: {metadata}"
                );
            }
            assert!(
                signing_algs(&metadata).contains(&"EdDSA".into()),
                "{path}: {metadata}"
            );
        }
    }

    /// Revocation and introspection are advertised at the issuer's
    /// `/oauth/revoke` and `/oauth/introspect`, and every grant is listed;
    /// the named endpoints answer.
    async fn metadata_names_revocation_introspection_and_every_grant(backend) {
        let db = TestDb::new(backend).await;
        let server = db.start(&["--issuer", ISSUER]).await;

        for path in METADATA_PATHS {
            let metadata = server.get(path).await.json();
            for (member, endpoint) in [
                ("revocation_endpoint", "/oauth/revoke"),
                ("introspection_endpoint", "/oauth/introspect"),
            ] {
                assert_eq!(
                    metadata[member],
                    format!("{ISSUER}{endpoint}"),
                    "{path} {member}: {metadata}"
                );
                // The endpoint exists: a request without a client is refused
                // as OAuth, not 404.
                let reply = server.post_form(endpoint, None, &[]).await;
                assert!(
                    reply.status == StatusCode::BAD_REQUEST || reply.status == StatusCode::UNAUTHORIZED,
                    "POST {endpoint}: {reply:?}"
                );
            }
            let grants = strings(&metadata, "grant_types_supported");
            for grant in ["client_credentials", "password", "refresh_token"] {
                assert!(grants.contains(&grant.into()), "{path} lacks {grant}: {metadata}");
            }
        }
        let openapi = server.get("/openapi.json").await.json();
        for endpoint in ["/oauth/revoke", "/oauth/introspect"] {
            assert!(
                openapi["paths"][endpoint].get("post").is_some(),
                "/openapi.json does not describe POST {endpoint}: {}",
                openapi["paths"]
            );
        }
    }

    /// The JWKS publishes public signing keys with kid, kty, alg and use.
    async fn jwks_publishes_the_current_key(backend) {
        let db = TestDb::new(backend).await;
        let server = db.start(&[]).await;

        let reply = server.get("/oauth/jwks").await;
        reply.assert_status(StatusCode::OK).assert_json_content_type();
        let jwks = reply.json();
        let keys = jwks["keys"].as_array().expect("keys");
        assert!(!keys.is_empty(), "no keys: {jwks}");
        for key in keys {
            assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()), "{key}");
            assert_eq!(key["kty"], "EC", "{key}");
            assert_eq!(key["crv"], "P-256", "{key}");
            assert_eq!(key["alg"], "ES256", "{key}");
            assert_eq!(key["use"], "sig", "{key}");
            assert!(key.get("d").is_none(), "private key published: {key}");
        }
    }
}
