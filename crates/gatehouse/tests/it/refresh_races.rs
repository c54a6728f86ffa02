//! Concurrent refreshes (RFC 9700 §4.14.2): of many requests racing with one
//! refresh token exactly one wins, on both databases (Keycloak's
//! CVE-2026-1035 was this race); refreshes of different logins never get in
//! each other's way.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::*;

const RACERS: usize = 24;

/// One raced request's outcome: status and body.
type Outcome = (StatusCode, String);

/// Sends one refresh request per token in `tokens` to `server`, all at once.
async fn race(server: &TestServer<'_>, client: &TestClient, tokens: &[String]) -> Vec<Outcome> {
    refresh_race(client, tokens.iter().map(|token| (server, token.clone()))).await
}

/// The one `refresh_token` of a winning outcome.
fn refresh_token_of(body: &str) -> String {
    let body: serde_json::Value = serde_json::from_str(body).expect("JSON");
    let token = json_str(&body, "refresh_token");
    assert_token_form(&token, "ghr_");
    token
}

backend_tests! {
    /// 24 concurrent refreshes with one token: exactly one 200, the others
    /// 400 `invalid_grant`. Those presented a token that had been rotated, so
    /// the family is revoked after: even the winner's token is dead. Three
    /// rounds, each on a fresh login, the last after one earlier rotation.
    async fn only_one_of_concurrent_refreshes_wins(backend) {
        let db = TestDb::new(backend).await;
        let (client, user) = db.refresh_app().await;
        let server = db.start(&[]).await;

        for round in 0..3 {
            let mut refresh = json_str(&server.login(&client, &user).await, "refresh_token");
            if round == 2 {
                refresh = json_str(&server.refresh(&client, &refresh).await, "refresh_token");
            }
            let outcomes = race(&server, &client, &vec![refresh.clone(); RACERS]).await;

            let winners: Vec<&Outcome> = outcomes.iter().filter(|(s, _)| *s == StatusCode::OK).collect();
            assert_eq!(
                winners.len(),
                1,
                "round {round}: {} of {RACERS} concurrent refreshes with one token succeeded: {outcomes:?}",
                winners.len()
            );
            for (status, body) in outcomes.iter().filter(|(s, _)| *s != StatusCode::OK) {
                let error: serde_json::Value =
                    serde_json::from_str(body).unwrap_or_else(|_| panic!("round {round}: {status} {body}"));
                assert_eq!(
                    (*status, &error["error"]),
                    (StatusCode::BAD_REQUEST, &serde_json::json!("invalid_grant")),
                    "round {round}: a losing refresh: {body}"
                );
            }
            let won = refresh_token_of(&winners[0].1);
            assert_ne!(won, refresh);
            let reply = server.refresh_grant(&client, &won, &[]).await;
            let problems = reply.error_problems(StatusCode::BAD_REQUEST, "invalid_grant", true);
            assert!(
                problems.is_empty(),
                "round {round}: the losers presented a rotated token, so the family must be revoked, \
                 but the winner's new token: {}: {reply:?}",
                problems.join("; ")
            );
        }
    }

    /// 24 logins refreshing at the same moment, twice: every one succeeds.
    async fn concurrent_refreshes_of_different_logins_all_succeed(backend) {
        let db = TestDb::new(backend).await;
        let (client, user) = db.refresh_app().await;
        let server = db.start(&[]).await;

        let logins = futures::future::join_all((0..RACERS).map(|_| server.login(&client, &user))).await;
        let mut tokens: Vec<String> = logins.iter().map(|b| json_str(b, "refresh_token")).collect();
        for round in 0..2 {
            let outcomes = race(&server, &client, &tokens).await;
            for (status, body) in &outcomes {
                assert_eq!(*status, StatusCode::OK, "round {round}: {body}");
            }
            tokens = outcomes.iter().map(|(_, body)| refresh_token_of(body)).collect();
        }
        let distinct: std::collections::HashSet<&String> = tokens.iter().collect();
        assert_eq!(distinct.len(), RACERS, "refresh tokens repeat");
    }
}

/// A connection of the test's own to the PostgreSQL database of `db`.
async fn pg(db: &TestDb) -> sqlx::PgConnection {
    match db.connect().await {
        DbConn::Postgres(conn) => conn,
        DbConn::Sqlite(_) => panic!("PostgreSQL only"),
    }
}

/// Waits (5 s at most) until a session of `db` waits for a lock.
async fn until_waiting(db: &TestDb, what: &str) {
    let mut watcher = pg(db).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
        )
        .fetch_one(&mut watcher)
        .await
        .expect("pg_stat_activity");
        if waiting > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: nobody waits for a lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (5 s at most) until a session of `db` waits for a lock that the session
/// `holder` (a backend pid) holds.
async fn until_blocked_by(db: &TestDb, holder: i32, what: &str) {
    let mut watcher = pg(db).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let blocked: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))")
                .bind(holder)
                .fetch_one(&mut watcher)
                .await
                .expect("pg_blocking_pids");
        if blocked > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: nobody waits for the session");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `sql`, with `$1` bound to `token` if given, on `conn`.
async fn run(conn: &mut sqlx::PgConnection, sql: &str, token: Option<&str>) {
    let query = match token {
        Some(token) => sqlx::query(sql).bind(token),
        None => sqlx::query(sql),
    };
    query.execute(conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

const LOCK_ROW: &str =
    "SELECT 1 FROM refresh_tokens WHERE token_hash = sha256(convert_to($1, 'UTF8')) FOR UPDATE";

/// Should PostgreSQL break a lock cycle by aborting a rotation batch (here
/// forced by another session that holds one of the batch's tokens and then
/// asks for another), the batch, which wrote nothing, runs again: its callers
/// get their 200s, not a 503 or a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_batch_that_loses_a_deadlock_runs_again() {
    if Backend::Postgres.skipped() {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let (client, user) = db.refresh_app().await;
    // A pool of two: one rotation writer, so that queued rotations form one batch.
    let server = db.start(&["--database-max-connections", "2"]).await;
    let mut tokens = Vec::new();
    for _ in 0..3 {
        tokens.push(json_str(&server.login(&client, &user).await, "refresh_token"));
    }
    let first = tokens.remove(0);
    let lower: bool =
        sqlx::query_scalar("SELECT sha256(convert_to($1, 'UTF8')) < sha256(convert_to($2, 'UTF8'))")
            .bind(&tokens[0])
            .bind(&tokens[1])
            .fetch_one(&mut pg(&db).await)
            .await
            .expect("compare digests");
    // A batch takes its tokens in digest order: `low`, then `high`.
    let (low, high) = if lower {
        (&tokens[0], &tokens[1])
    } else {
        (&tokens[1], &tokens[0])
    };

    // The writer is held up by a lock on the first token, while the other two queue.
    let mut holder = pg(&db).await;
    run(&mut holder, "BEGIN", None).await;
    run(&mut holder, LOCK_ROW, Some(&first)).await;
    // The rival holds `high`, and is slow to look for deadlocks.
    let mut rival = pg(&db).await;
    run(&mut rival, "BEGIN", None).await;
    run(&mut rival, "SET LOCAL deadlock_timeout = '60s'", None).await;
    run(&mut rival, LOCK_ROW, Some(high)).await;
    let rival_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut rival)
        .await
        .expect("pg_backend_pid");

    let held_up = refresh_race(&client, [(&server, first.clone())]);
    let steps = async {
        until_waiting(&db, "the writer waits for the first token").await;
        let batch = refresh_race(&client, [(&server, low.clone()), (&server, high.clone())]);
        let choreography = async {
            // The two requests must have queued behind the held-up writer, which
            // nothing outside the server can see (the queue is in its memory): a
            // real wait, the one left in this test.
            tokio::time::sleep(Duration::from_millis(500)).await;
            run(&mut holder, "ROLLBACK", None).await;
            // The batch holds `low` and waits for `high`; the rival asks for `low`: a
            // cycle, which PostgreSQL breaks by aborting the batch (its check comes first).
            until_blocked_by(&db, rival_pid, "the batch waits for the high token").await;
            let started = Instant::now();
            let update = "UPDATE refresh_tokens SET expires_at = expires_at WHERE token_hash = sha256(convert_to($1, 'UTF8'))";
            run(&mut rival, update, Some(low)).await;
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the batch was the victim"
            );
            // The batch runs again and waits for the rival, which gives up.
            until_blocked_by(&db, rival_pid, "the batch runs again and waits for the rival").await;
            run(&mut rival, "ROLLBACK", None).await;
        };
        tokio::join!(batch, choreography).0
    };
    let (held_up, outcomes) = tokio::join!(held_up, steps);
    assert_eq!(held_up[0].0, StatusCode::OK, "{}", held_up[0].1);
    for (status, body) in &outcomes {
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert_ne!(&refresh_token_of(body), low);
    }
    let log = server.stop_with("TERM").await.logs;
    assert!(log.contains("lost to contention; running it again"), "{log}");
    assert!(
        !log.contains(low.as_str()) && !log.contains(high.as_str()),
        "no token in the log"
    );
}
