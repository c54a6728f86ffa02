//! Concurrent refreshes (issue 3, point 2): of many requests racing with one
//! refresh token exactly one wins, on both databases (Keycloak's
//! CVE-2026-1035 was this race); refreshes of different logins never get in
//! each other's way.

use std::sync::Arc;

use reqwest::StatusCode;
use tokio::sync::Barrier;

use crate::helpers::*;

const RACERS: usize = 24;

/// One raced request's outcome: status and body.
type Outcome = (StatusCode, String);

/// Sends one refresh request per token in `tokens`, all released at once by a
/// barrier from tasks of their own, and returns the outcomes in order.
async fn race(server: &TestServer<'_>, client: &TestClient, tokens: &[String]) -> Vec<Outcome> {
    let barrier = Arc::new(Barrier::new(tokens.len()));
    let url = server.url("/oauth/token");
    let authorization = basic_authorization(&client.id, &client.secret);
    let tasks: Vec<_> = tokens
        .iter()
        .map(|token| {
            let request = server
                .http()
                .post(&url)
                .header("authorization", &authorization)
                .header("content-type", FORM)
                .body(form_body(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token),
                ]));
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let response = request.send().await.expect("refresh request");
                let status = response.status();
                (status, response.text().await.expect("response body"))
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("racing task"));
    }
    outcomes
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
