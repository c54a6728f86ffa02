//! A token is returned only once the database has committed it: SIGKILL the server while chains of refreshes run, restart it on
//! the same database, and every refresh token a client received still works.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::*;

/// Chains that stop, each right after a 200, once the chains together have
/// done [`STOP_AFTER`] rotations; the server is killed the moment the last of
/// them stops. Their last token was received before the kill with no request
/// in flight: it must work after the restart.
const STOPPING_CHAINS: usize = 4;
/// Chains that keep rotating until the server dies under them. Their last
/// request may have been committed without its answer arriving, so their last
/// received token is either still valid or rotated out by that request.
const RUNNING_CHAINS: usize = 4;
const STOP_AFTER: usize = 360;
/// No chain rotates more than this many times.
const MAX_ROTATIONS: usize = 100;

/// How a chain ended.
#[derive(Debug)]
struct Chain {
    /// The last refresh token received with a 200.
    last: String,
    rotations: usize,
    /// Whether a request was in flight when the chain ended (its outcome unknown).
    in_flight: bool,
}

/// Rotates `token` at `url` until told to stop (`stop_at` reached by
/// `rotations`, counted over all chains) or the server goes away.
async fn run_chain(
    http: reqwest::Client,
    url: String,
    authorization: String,
    mut token: String,
    total: Arc<AtomicUsize>,
    stop_at: Option<usize>,
) -> Chain {
    let mut rotations = 0;
    loop {
        let stop = stop_at.is_some_and(|n| total.load(Ordering::SeqCst) >= n);
        if stop || rotations == MAX_ROTATIONS {
            return Chain {
                last: token,
                rotations,
                in_flight: false,
            };
        }
        let sent = http
            .post(&url)
            .header("authorization", &authorization)
            .header("content-type", FORM)
            .body(form_body(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &token),
            ]))
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                return Chain {
                    last: token,
                    rotations,
                    // A refused connection never reached the server.
                    in_flight: !e.is_connect(),
                };
            }
        };
        let status = response.status();
        let body = match response.text().await {
            Ok(body) => body,
            Err(_) => {
                return Chain {
                    last: token,
                    rotations,
                    in_flight: true,
                }
            }
        };
        assert_eq!(status, StatusCode::OK, "a rotation under load failed: {body}");
        let body: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        token = json_str(&body, "refresh_token");
        rotations += 1;
        total.fetch_add(1, Ordering::SeqCst);
    }
}

backend_tests! {
    /// SIGKILL under load, restart, and each chain's last received refresh
    /// token still refreshes.
    async fn received_refresh_tokens_survive_sigkill(backend) {
        let db = TestDb::new(backend).await;
        let (client, user) = db.refresh_app().await;
        let server = db.start(&[]).await;

        let logins = futures::future::join_all(
            (0..STOPPING_CHAINS + RUNNING_CHAINS).map(|_| server.login(&client, &user)),
        )
        .await;
        let total = Arc::new(AtomicUsize::new(0));
        let url = server.url("/oauth/token");
        let authorization = basic_authorization(&client.id, &client.secret);
        let mut stopping = Vec::new();
        let mut running = Vec::new();
        for (i, login) in logins.iter().enumerate() {
            let chain = run_chain(
                server.http(),
                url.clone(),
                authorization.clone(),
                json_str(login, "refresh_token"),
                total.clone(),
                (i < STOPPING_CHAINS).then_some(STOP_AFTER),
            );
            if i < STOPPING_CHAINS {
                stopping.push(tokio::spawn(chain));
            } else {
                running.push(tokio::spawn(chain));
            }
        }
        let mut stopped = Vec::new();
        for chain in stopping {
            stopped.push(chain.await.expect("chain task"));
        }
        server.signal("KILL");
        let mut killed = Vec::new();
        for chain in running {
            killed.push(
                tokio::time::timeout(Duration::from_secs(30), chain)
                    .await
                    .expect("a chain ends when the server dies")
                    .expect("chain task"),
            );
        }
        let exit = server.wait_for_exit().await;
        assert!(!exit.status.success(), "the server survived SIGKILL: {exit:?}");
        assert!(
            stopped.iter().chain(&killed).all(|c| c.rotations > 0),
            "a chain never rotated: {stopped:?} {killed:?}"
        );

        let summary: Vec<(usize, bool)> = stopped
            .iter()
            .chain(&killed)
            .map(|c| (c.rotations, c.in_flight))
            .collect();
        println!("chains (rotations, request in flight at the kill): {summary:?}");

        let server = db.start(&[]).await;
        for (i, chain) in stopped.iter().chain(&killed).enumerate() {
            let reply = server.refresh_grant(&client, &chain.last, &[]).await;
            if chain.in_flight && reply.status == StatusCode::BAD_REQUEST {
                // Its last request may have committed a rotation whose answer was lost.
                reply.assert_token_error(StatusCode::BAD_REQUEST, "invalid_grant");
                continue;
            }
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "chain {i} ({} rotations, request in flight: {}): its last received refresh token \
                 no longer works after SIGKILL and restart: {reply:?}",
                chain.rotations,
                chain.in_flight
            );
            reply.refresh_token();
        }
    }
}
