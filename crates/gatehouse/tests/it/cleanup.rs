//! No unbounded growth: a background task deletes expired
//! refresh and opaque tokens, and a client_credentials JWT writes nothing.
//! These tests read the server's tables with a connection of their own.

use std::time::{Duration, Instant};

use crate::helpers::*;

/// The tables that tokens can add rows to.
const TOKEN_TABLES: [&str; 4] = [
    "refresh_tokens",
    "opaque_access_tokens",
    "token_families",
    "revoked_jtis",
];

async fn counts(conn: &mut DbConn) -> Vec<(&'static str, i64)> {
    let mut counts = Vec::new();
    for table in TOKEN_TABLES {
        counts.push((table, conn.count(table).await));
    }
    counts
}

backend_tests! {
    /// With `GATEHOUSE_CLEANUP_INTERVAL=1`, refresh tokens of a 2-second
    /// client, opaque tokens of a 1-second client and the revocations of
    /// 1-second JWTs are deleted once expired.
    async fn expired_tokens_are_deleted(backend) {
        let db = TestDb::new(backend).await;
        let client = db
            .create_client(
                "app",
                &[
                    "--scope",
                    "read",
                    "--grant-types",
                    "password,refresh_token",
                    "--refresh-token-ttl",
                    "2",
                ],
            )
            .await;
        let opaque = db
            .create_client("opaque", &["--token-format", "opaque", "--token-ttl", "1"])
            .await;
        let short = db.create_client("short", &["--token-ttl", "1"]).await;
        let user = db.create_user("alice", PASSWORD, Some("read")).await;
        let server = db.server().env("GATEHOUSE_CLEANUP_INTERVAL", "1").start().await;

        let mut conn = db.connect().await;
        let mut refresh = json_str(&server.login(&client, &user).await, "refresh_token");
        for _ in 0..4 {
            let body = server.refresh(&client, &refresh).await;
            refresh = json_str(&body, "refresh_token");
        }
        for _ in 0..5 {
            assert_token_form(&server.access_token(&opaque).await, "gho_");
        }
        for _ in 0..3 {
            let token = server.access_token(&short).await;
            let reply = server.revoke(Some(&short.basic()), &[("token", &token)]).await;
            reply.assert_status(reqwest::StatusCode::OK);
        }
        let now = unix_now();
        assert!(conn.count("revoked_jtis").await >= 3, "no jti revocation stored");
        // The rows are there, with expires_at in Unix seconds about now.
        let soon = conn
            .scalar(
                "SELECT COUNT(*) FROM refresh_tokens WHERE expires_at <= $1",
                Some(now + 5),
            )
            .await;
        assert!(
            soon >= 1,
            "no refresh token expiring within 5 s of {now} in the table"
        );
        assert!(
            conn.count("opaque_access_tokens").await >= 1,
            "no opaque token stored"
        );
        let last_expiry = conn
            .scalar("SELECT COALESCE(MAX(expires_at), 0) FROM refresh_tokens", None)
            .await;
        assert!(
            (now - 2..=now + 5).contains(&last_expiry),
            "the last refresh token expires at {last_expiry}, not a second after {now}"
        );

        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let now = unix_now();
            let expired = conn
                .scalar(
                    "SELECT COUNT(*) FROM refresh_tokens WHERE expires_at < $1",
                    Some(now),
                )
                .await;
            let refresh_rows = conn.count("refresh_tokens").await;
            let opaque_rows = conn.count("opaque_access_tokens").await;
            let jti_rows = conn.count("revoked_jtis").await;
            if now > last_expiry + 1 && expired == 0 && refresh_rows == 0 && opaque_rows == 0 && jti_rows == 0
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "expired tokens are not deleted: at {now}, {expired} expired of {refresh_rows} \
                 refresh tokens, {opaque_rows} opaque tokens, {jti_rows} jti revocations"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Twenty client_credentials JWTs add no row to any token table.
    async fn client_credentials_jwts_write_nothing(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &["--scope", "read"]).await;
        let (app, user) = db.refresh_app().await;
        let server = db.start(&[]).await;
        // Some rows of other kinds first, so that the tables exist and are in use.
        server.login(&app, &user).await;

        let mut conn = db.connect().await;
        let before = counts(&mut conn).await;
        for _ in 0..20 {
            server.access_token(&client).await;
        }
        assert_eq!(
            counts(&mut conn).await,
            before,
            "client_credentials JWTs wrote rows"
        );
    }
}
