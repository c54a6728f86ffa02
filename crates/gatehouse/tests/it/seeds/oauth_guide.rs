//! Seed 002, the "API Authentication Guide": the standard `POST /oauth/token`
//! with a form body printed one parameter to a line, scope limits, and
//! `Invalid Client` for wrong credentials.

use reqwest::StatusCode;

use super::*;
use crate::api::assert_refused;

backend_tests! {
    /// Lines 38-52, 70-78 and 80-84 of the seed.
    async fn every_documented_request(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("reports", &["--scope", "read write"]).await;
        let server = start_example(&db, "oauth-guide").await;

        // Lines 40-45, byte for byte: the line breaks are in the body. Both
        // line endings a copied snippet may carry.
        for newline in ["\n", "\r\n"] {
            let body = format!(
                "grant_type=client_credentials{newline}&client_id={}{newline}&client_secret={}",
                client.id, client.secret
            );
            let reply = server.post_raw("/oauth/token", Some(FORM), None, body).await;
            let issued = assert_documented_token(&server, &reply).await;
            assert_eq!(scope_set(&json_str(&issued, "scope")), ["read", "write"]);
        }

        // Line 78: "Limit token scope to only required permissions."
        let body = format!(
            "grant_type=client_credentials\n&client_id={}\n&client_secret={}\n&scope=read\n",
            client.id, client.secret
        );
        let reply = server.post_raw("/oauth/token", Some(FORM), None, body).await;
        let issued = assert_documented_token(&server, &reply).await;
        assert_eq!(issued["scope"], "read");
        let claims = crate::jose::decode(&json_str(&issued, "access_token")).claims;
        assert_eq!(claims["scope"], "read", "{claims}");
        let reply = server
            .client_credentials(&client, &[("scope", "read admin")])
            .await;
        reply.assert_token_error(StatusCode::BAD_REQUEST, "invalid_scope");

        // Lines 54-58 and 80-83 at the API: the token works; no token is 401; a
        // token without the scope is 403; an expired token is 401.
        let api = Api::start(guard_for(&server).leeway(std::time::Duration::ZERO)).await;
        let read_token = json_str(&issued, "access_token");
        api.get("/api/v3/cities", Some(&read_token)).await.assert_status(StatusCode::OK);
        assert_refused(&api.get("/api/v3/cities", None).await, StatusCode::UNAUTHORIZED, "unauthorized");
        assert_refused(&api.get("/api/v3/orders", Some(&read_token)).await, StatusCode::FORBIDDEN, "insufficient_scope");
        let brief = db.create_client("brief", &["--scope", "read", "--token-ttl", "1"]).await;
        let short = server.access_token(&brief).await;
        api.get("/api/v3/cities", Some(&short)).await.assert_status(StatusCode::OK);
        let reply = eventually(std::time::Duration::from_secs(5), "the token expires", || async {
            let reply = api.get("/api/v3/cities", Some(&short)).await;
            if reply.status == StatusCode::OK { Err("still accepted".to_string()) } else { Ok(reply) }
        })
        .await;
        assert_refused(&reply, StatusCode::UNAUTHORIZED, "invalid_token");

        // Line 84: "Invalid Client: Incorrect credentials".
        let body = format!(
            "grant_type=client_credentials\n&client_id={}\n&client_secret=WRONG",
            client.id
        );
        let reply = server.post_raw("/oauth/token", Some(FORM), None, body).await;
        reply.assert_token_error(StatusCode::UNAUTHORIZED, "invalid_client");

        // An encoded line break is data, not layout: this secret is wrong.
        let body = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}%0A",
            client.id, client.secret
        );
        let reply = server.post_raw("/oauth/token", Some(FORM), None, body).await;
        reply.assert_token_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
}
