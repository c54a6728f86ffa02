//! Seed 004, SurveySphere: `POST /connect/token` with a form body of
//! `grant_type`, `client_id` and `client_secret`, tokens valid 60 minutes.

use reqwest::StatusCode;

use super::*;

backend_tests! {
    /// Lines 11-47 and 57-59 of the seed, and the standard endpoint beside it.
    async fn every_documented_request(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("survey-sync", &[]).await;
        let server = start_example(&db, "surveysphere").await;

        let documented = format!(
            "grant_type=client_credentials&client_id={}&client_secret={}",
            client.id, client.secret
        );
        let reply = server
            .post_raw("/connect/token", Some(FORM), None, documented.clone())
            .await;
        let body = assert_documented_token(&server, &reply).await;
        assert_eq!(body["token_type"], "Bearer");
        assert!(body.get("refresh_token").is_none(), "{body}");
        let claims = crate::jose::decode(&json_str(&body, "access_token")).claims;
        let lifetime = claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat");
        assert_eq!(lifetime, 60 * 60, "valid for 60 minutes: {claims}");

        // Lines 49-55: "Authorization: Bearer your_generated_token".
        assert_api_accepts(&server, "/api/v3/any", &json_str(&body, "access_token")).await;

        // Wrong credentials, and an unknown client: 401 invalid_client alike.
        for (id, secret) in [(client.id.as_str(), "WRONG"), ("no-such-client", client.secret.as_str())] {
            let body = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
            let reply = server.post_raw("/connect/token", Some(FORM), None, body).await;
            reply.assert_token_error(StatusCode::UNAUTHORIZED, "invalid_client");
        }
        // The route is POST only: no GET, and no parameters in its query.
        let reply = server.get(&format!("/connect/token?{documented}")).await;
        reply.assert_token_error(StatusCode::METHOD_NOT_ALLOWED, "invalid_request");
        let reply = server
            .post_raw(&format!("/connect/token?{documented}"), None, None, "")
            .await;
        reply.assert_token_error(StatusCode::BAD_REQUEST, "invalid_request");
        // The standard endpoint answers the same request the same way.
        let reply = server.post_raw("/oauth/token", Some(FORM), None, documented).await;
        assert_documented_token(&server, &reply).await;
    }
}
