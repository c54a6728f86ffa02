//! Seed 001, the Anti Grazer API: the standard `POST /oauth/token` with
//! `client_secret_post` in a form body, and `POST /oauth/revoke` with only
//! `token=…`, no client credentials.

use reqwest::StatusCode;

use super::*;

backend_tests! {
    /// Lines 11-28, 39-41, 43-52 and 54-63 of the seed.
    async fn every_documented_request(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("grazer", &[]).await;
        let short = db.create_client("short-lived", &["--token-ttl", "600"]).await;
        let resource_server = db.create_client("api", &["--can-introspect"]).await;
        let server = start_example(&db, "anti-grazer").await;

        // Lines 11-28: exactly the documented body, parameters in its order.
        let documented = format!(
            "client_id={}&client_secret={}&grant_type=client_credentials",
            client.id, client.secret
        );
        let reply = server.post_raw("/oauth/token", Some(FORM), None, documented).await;
        let body = assert_documented_token(&server, &reply).await;
        assert_eq!(body["token_type"], "Bearer");
        let token = json_str(&body, "access_token");
        assert!(server.is_active(&resource_server, &token).await);

        // Lines 30-37: GET /some-endpoint with "Authorization: Bearer ACCESS_TOKEN".
        assert_api_accepts(&server, "/some-endpoint", &token).await;

        // Lines 39-41: "typically 1 hour but can be configured differently".
        let reply = server
            .post_raw(
                "/oauth/token",
                Some(FORM),
                None,
                format!(
                    "client_id={}&client_secret={}&grant_type=client_credentials",
                    short.id, short.secret
                ),
            )
            .await;
        reply.access_token();
        assert_eq!(reply.json()["expires_in"], 600);

        // Lines 43-52: revocation by the holder, no client credentials.
        let reply = server
            .post_raw("/oauth/revoke", Some(FORM), None, format!("token={token}"))
            .await;
        reply.assert_status(StatusCode::OK).assert_no_store();
        assert!(!server.is_active(&resource_server, &token).await, "revoked");
        assert_eq!(db.connect().await.count("revoked_jtis").await, 1);

        // Lines 54-63: 401 invalid_client when client authentication fails.
        let wrong = format!(
            "client_id={}&client_secret=WRONG&grant_type=client_credentials",
            client.id
        );
        let reply = server.post_raw("/oauth/token", Some(FORM), None, wrong).await;
        reply.assert_token_error(StatusCode::UNAUTHORIZED, "invalid_client");
        assert!(reply.has_basic_challenge(), "RFC 9110: a 401 names a scheme: {reply:?}");
    }
}
