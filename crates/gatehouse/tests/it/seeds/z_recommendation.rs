//! Seed 000, the Z Recommendation Engine API: `POST /auth/token` with a JSON
//! body of `client_id` and `client_secret` and no `grant_type`; 404 for an
//! unknown client, 401 for a wrong secret; and the Dart example that refreshes
//! at `POST /token` with a form body.

use reqwest::StatusCode;
use serde_json::json;

use super::*;

/// What Dart's `http.post` sends for a `Map` body.
const DART_FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

backend_tests! {
    /// Every request of the seed, then the standard endpoint beside the route.
    async fn every_documented_request(backend) {
        let db = TestDb::new(backend).await;
        let client = db
            .create_client("recommender", &["--grant-types", "client_credentials,refresh_token"])
            .await;
        let server = start_example(&db, "z-recommendation").await;

        // Lines 19-40 and 67-88: the JSON request, no grant_type.
        let body = json!({"client_id": client.id, "client_secret": client.secret});
        let reply = server
            .post_raw("/auth/token", Some(JSON), None, body.to_string())
            .await;
        let issued = assert_documented_token(&server, &reply).await;
        let refresh_token = reply.refresh_token();
        let mut db_conn = db.connect().await;
        assert_eq!(db_conn.count("refresh_tokens").await, 1);
        assert_eq!(
            db_conn.scalar("SELECT COUNT(*) FROM token_families WHERE user_id IS NULL", None).await,
            1,
            "a login of the client alone"
        );

        // Lines 11-13: the token in the Authorization header of API requests.
        assert_api_accepts(&server, "/api/v3/any", &json_str(&issued, "access_token")).await;

        // Lines 92-99: 404 for an unknown client.
        let unknown = json!({"client_id": "no-such-client", "client_secret": client.secret});
        let reply = server
            .post_raw("/auth/token", Some(JSON), None, unknown.to_string())
            .await;
        reply.assert_token_error(StatusCode::NOT_FOUND, "invalid_client");
        assert_eq!(reply.json()["error_description"], "Client not found.");
        // Lines 101-108: 401 for a wrong secret.
        let wrong = json!({"client_id": client.id, "client_secret": "not-the-secret"});
        let reply = server
            .post_raw("/auth/token", Some(JSON), None, wrong.to_string())
            .await;
        reply.assert_token_error(StatusCode::UNAUTHORIZED, "invalid_client");

        // Lines 45-63: the Dart refresh, a form body at /token.
        let dart = form_body(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
            ("client_id", client.id.as_str()),
            ("client_secret", client.secret.as_str()),
        ]);
        let reply = server.post_raw("/token", Some(DART_FORM), None, dart.clone()).await;
        let refreshed = assert_documented_token(&server, &reply).await;
        assert_ne!(refreshed["access_token"], issued["access_token"]);
        let next = reply.refresh_token();
        assert_ne!(next, refresh_token, "the refresh token rotates");
        let claims = jose::decode(&json_str(&refreshed, "access_token")).claims;
        assert_eq!(claims["sub"], client.id.as_str(), "{claims}");
        // The spent refresh token is refused, as everywhere.
        let reply = server.post_raw("/token", Some(DART_FORM), None, dart).await;
        reply.assert_token_error(StatusCode::BAD_REQUEST, "invalid_grant");
        assert_eq!(
            db_conn.scalar("SELECT COUNT(*) FROM refresh_tokens WHERE used_at IS NOT NULL", None).await,
            1
        );

        // The standard endpoint stays strict beside the route.
        let reply = server
            .post_raw("/oauth/token", Some(JSON), None, body.to_string())
            .await;
        reply.assert_token_error(StatusCode::BAD_REQUEST, "invalid_request");
        let reply = server
            .token_json(
                &ClientAuth::Post("no-such-client".into(), client.secret.clone()),
                &[("grant_type", "client_credentials")],
            )
            .await;
        reply.assert_token_error(StatusCode::UNAUTHORIZED, "invalid_client");
        assert_eq!(reply.json()["error_description"], "Client authentication failed.");
        let reply = server.client_credentials(&client, &[]).await;
        reply.access_token();
        assert!(reply.json().get("refresh_token").is_none(), "RFC 6749 §4.4.3: {}", reply.body);
    }

    /// A client without the refresh_token grant gets the documented three
    /// fields and no refresh token; Basic authentication works on the route
    /// too, and an unknown client there is 404 without a Basic challenge.
    async fn client_without_refresh_grant(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("recommender", &[]).await;
        let server = start_example(&db, "z-recommendation").await;

        let reply = server
            .post_raw("/auth/token", Some(JSON), None, json!({"client_id": client.id, "client_secret": client.secret}).to_string())
            .await;
        let body = assert_documented_token(&server, &reply).await;
        assert!(body.get("refresh_token").is_none(), "{body}");
        assert_eq!(db.connect().await.count("token_families").await, 0);

        let reply = server
            .post_raw("/auth/token", Some(JSON), client.basic().header().as_deref(), "{}")
            .await;
        assert_documented_token(&server, &reply).await;
        let stranger = ClientAuth::basic("no-such-client", &client.secret);
        let reply = server
            .post_raw("/auth/token", Some(JSON), stranger.header().as_deref(), "{}")
            .await;
        reply.assert_token_error(StatusCode::NOT_FOUND, "invalid_client");
        assert!(reply.header("www-authenticate").is_none(), "{reply:?}");
    }
}
