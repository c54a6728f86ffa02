//! No unbounded growth: a background task deletes expired
//! refresh and opaque tokens, and a client_credentials JWT writes nothing.
//! These tests read the server's tables with a connection of their own.

use std::time::Duration;

use gatehouse_core::Clock as _;

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
    /// 1-second JWTs are deleted at the next sweep once expired (the server's
    /// clock is the test's, moved past the expiry by hand).
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
        let clock = stopped_clock();
        let now = clock.now();
        let server = db.server().env("GATEHOUSE_CLEANUP_INTERVAL", "1").start_on(clock.clone()).await;

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
        assert!(conn.count("revoked_jtis").await >= 3, "no jti revocation stored");
        assert!(
            conn.count("opaque_access_tokens").await >= 1,
            "no opaque token stored"
        );
        // The rows are there, with expires_at in Unix seconds of the server's clock.
        assert_eq!(
            conn.scalar("SELECT COALESCE(MAX(expires_at), 0) FROM refresh_tokens", None).await,
            now + 2,
            "the last refresh token does not expire 2 s after {now}"
        );
        // Nothing expired, nothing deleted: the sweep runs every second, on the
        // server's clock, which stands still until moved past the last expiry.
        clock.advance(3);
        eventually(Duration::from_secs(5), "expired tokens are deleted", || async {
            let mut conn = db.connect().await;
            let mut left = Vec::new();
            for table in ["refresh_tokens", "opaque_access_tokens", "revoked_jtis"] {
                left.push((table, conn.count(table).await));
            }
            if left.iter().all(|(_, n)| *n == 0) { Ok(()) } else { Err(format!("{left:?}")) }
        })
        .await;
        server.stop().await;
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
