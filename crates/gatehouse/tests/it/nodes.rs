//! Several gatehouse nodes on one PostgreSQL behave as one service.
//! Three nodes share their signing key (no race for the first one), follow
//! `keys rotate` and client changes within 5 s (LISTEN/NOTIFY, with the feed
//! read again as a safety net), agree on refresh rotation and revocation at
//! once, survive the loss of a node, and ride out a database outage on a
//! private PostgreSQL without a restart.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::*;
use crate::jose;
use crate::private_pg::PrivatePostgres;

/// Three nodes on `db`, started at the same moment.
async fn three_nodes<'a>(db: &'a TestDb, args: &[&str]) -> [TestServer<'a>; 3] {
    let (a, b, c) = tokio::join!(db.start(args), db.start(args), db.start(args));
    [a, b, c]
}

/// The kid of the key `server` signs with now.
async fn current_kid(server: &TestServer<'_>, client: &TestClient) -> String {
    jose::kid(&server.access_token(client).await)
}

/// Polls each node until `check` holds there, 5 s at most (the propagation deadline).
async fn on_every_node<F, Fut>(nodes: &[TestServer<'_>], what: &str, check: F)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    for (i, _) in nodes.iter().enumerate() {
        eventually(PROPAGATION_DEADLINE, &format!("{what} (node {i})"), || check(i)).await;
    }
}

/// Polls each node until a client_credentials request of `client` gets
/// `status` there, 5 s at most.
async fn every_node_answers(nodes: &[TestServer<'_>], client: &TestClient, status: StatusCode, what: &str) {
    on_every_node(nodes, what, |i| {
        let node = &nodes[i];
        async move {
            let reply = node.client_credentials(client, &[]).await;
            if reply.status == status {
                Ok(())
            } else {
                Err(format!("{} {}", reply.status, reply.body))
            }
        }
    })
    .await;
}

/// The status and OAuth `error` (empty on success) of each of `refreshes`, sent
/// all at once.
async fn refresh_all_at_once<'s, 'd: 's>(
    client: &TestClient,
    refreshes: impl IntoIterator<Item = (&'s TestServer<'d>, String)>,
) -> Vec<(StatusCode, String)> {
    let outcomes = refresh_race(client, refreshes).await;
    outcomes
        .into_iter()
        .map(|(status, body)| {
            let body: serde_json::Value =
                serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
            (status, body["error"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_keys_and_follow_changes() {
    if Backend::Postgres.skipped() {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let client = db.create_client("svc", &[]).await;
    let resource_server = db.create_client("api", &["--can-introspect"]).await;
    // An empty database: the three race to create the first signing key.
    let nodes = three_nodes(&db, &[]).await;
    let kids = [
        current_kid(&nodes[0], &client).await,
        current_kid(&nodes[1], &client).await,
        current_kid(&nodes[2], &client).await,
    ];
    assert!(
        kids.iter().all(|k| *k == kids[0]),
        "one signing key for all: {kids:?}"
    );
    assert_eq!(
        db.connect().await.count("signing_keys").await,
        1,
        "only one first key was stored"
    );
    // A token of one node is good at every other.
    let token = nodes[0].access_token(&client).await;
    for node in &nodes {
        assert!(node.is_active(&resource_server, &token).await);
    }

    // keys rotate on any node's database reaches all within 5 s.
    let rotated = db.cli_json(&["keys", "rotate"]).await;
    let new_kid = json_str(&rotated, "kid");
    let started = Instant::now();
    on_every_node(&nodes, "tokens with the rotated key", |i| {
        let (node, client, new_kid) = (&nodes[i], &client, &new_kid);
        async move {
            let kid = current_kid(node, client).await;
            if kid == *new_kid {
                Ok(())
            } else {
                Err(kid)
            }
        }
    })
    .await;
    let rotation_took = started.elapsed();

    // A new client works everywhere within 5 s; a deleted one stops everywhere.
    let late = db.create_client("late", &[]).await;
    every_node_answers(&nodes, &late, StatusCode::OK, "the new client gets tokens").await;
    db.cli_json(&["client", "delete", &late.id]).await;
    let started = Instant::now();
    every_node_answers(
        &nodes,
        &late,
        StatusCode::UNAUTHORIZED,
        "the deleted client is refused",
    )
    .await;
    let deletion_took = started.elapsed();

    // The notifications did it, not only the safety net: each node was woken.
    for (i, node) in nodes.iter().enumerate() {
        let woken = node.metric("gatehouse_change_notifications_total", &[]).await;
        assert!(woken >= 2.0, "node {i} got {woken} change notifications");
    }
    assert!(
        rotation_took < Duration::from_secs(2) && deletion_took < Duration::from_secs(2),
        "changes took {rotation_took:?} and {deletion_took:?}: notifications should make them immediate"
    );
}

/// Notifications lost (the listening connections killed): the feed, read every
/// few seconds, still brings the change within 5 s, and listening resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_notification_is_caught_by_the_safety_net() {
    if Backend::Postgres.skipped() {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let client = db.create_client("svc", &[]).await;
    let nodes = three_nodes(&db, &[]).await;
    for node in &nodes {
        node.access_token(&client).await;
    }
    let mut conn = db.connect().await;
    let killed = conn
        .scalar(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
            None,
        )
        .await;
    assert_eq!(killed, 3, "one listening connection per node");
    db.cli_json(&["client", "delete", &client.id]).await;
    every_node_answers(
        &nodes,
        &client,
        StatusCode::UNAUTHORIZED,
        "the deletion arrives without its notification",
    )
    .await;
    eventually(Duration::from_secs(10), "the nodes listen again", || async {
        let listening = db
            .connect()
            .await
            .scalar(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
                None,
            )
            .await;
        if listening == 3 { Ok(()) } else { Err(format!("{listening} listening")) }
    })
    .await;
}

/// 24 concurrent refreshes of one token, spread over three nodes: exactly one
/// 200. A token revoked on one node is inactive on every node at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_and_revocation_hold_across_nodes() {
    if Backend::Postgres.skipped() {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let (client, user) = db.refresh_app().await;
    let machine = db.create_client("machine", &[]).await;
    let resource_server = db.create_client("api", &["--can-introspect"]).await;
    let nodes = three_nodes(&db, &[]).await;

    for round in 0..3 {
        let login = nodes[round].login(&client, &user).await;
        let refresh_token = json_str(&login, "refresh_token");
        let statuses =
            refresh_all_at_once(&client, (0..24).map(|i| (&nodes[i % 3], refresh_token.clone()))).await;
        let wins = statuses.iter().filter(|(s, _)| *s == StatusCode::OK).count();
        assert_eq!(wins, 1, "round {round}: {statuses:?}");
        assert!(
            statuses
                .iter()
                .all(|(s, e)| *s == StatusCode::OK || (*s == StatusCode::BAD_REQUEST && e == "invalid_grant")),
            "round {round}: {statuses:?}"
        );
    }

    // Revocation: at node 1, seen by all three at once (no node trusts a cache).
    let access = nodes[0].access_token(&machine).await;
    let login = nodes[2].login(&client, &user).await;
    let (user_access, refresh) = (
        json_str(&login, "access_token"),
        json_str(&login, "refresh_token"),
    );
    for node in &nodes {
        assert!(node.is_active(&resource_server, &access).await);
        assert!(node.is_active(&resource_server, &user_access).await);
    }
    nodes[1]
        .revoke(Some(&machine.basic()), &[("token", access.as_str())])
        .await
        .assert_status(StatusCode::OK);
    nodes[1]
        .revoke(Some(&client.basic()), &[("token", refresh.as_str())])
        .await
        .assert_status(StatusCode::OK);
    for (i, node) in nodes.iter().enumerate() {
        assert!(
            !node.is_active(&resource_server, &access).await,
            "node {i}: the access token"
        );
        assert!(
            !node.is_active(&resource_server, &user_access).await,
            "node {i}: the login's access token"
        );
        assert!(
            !node.is_active(&resource_server, &refresh).await,
            "node {i}: the refresh token"
        );
        node.refresh_grant(&client, &refresh, &[])
            .await
            .assert_token_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
}

/// Rotation batches lock the tokens they consume. Two nodes each taking the same
/// tokens in opposite orders must not deadlock (which PostgreSQL would break by
/// failing a whole batch): every token is refreshed exactly once, the second use
/// of each is refused as reuse, and nobody gets a 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossing_rotation_batches_do_not_deadlock() {
    if Backend::Postgres.skipped() {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let (client, user) = db.refresh_app().await;
    let (a, b) = tokio::join!(db.start(&[]), db.start(&[]));
    const LOGINS: usize = 48;
    for round in 0..3 {
        let mut tokens = Vec::with_capacity(LOGINS);
        for _ in 0..LOGINS {
            tokens.push(json_str(&a.login(&client, &user).await, "refresh_token"));
        }
        // Node a gets the tokens in one order, node b in the other, interleaved.
        let owners: Vec<usize> = (0..LOGINS).flat_map(|i| [i, LOGINS - 1 - i]).collect();
        let nodes = [&a, &b];
        let refreshes = owners
            .iter()
            .enumerate()
            .map(|(n, &i)| (nodes[n % 2], tokens[i].clone()));
        let statuses = refresh_all_at_once(&client, refreshes).await;
        for i in 0..LOGINS {
            let mut mine: Vec<(StatusCode, &str)> = owners
                .iter()
                .zip(&statuses)
                .filter(|(owner, _)| **owner == i)
                .map(|(_, (status, error))| (*status, error.as_str()))
                .collect();
            mine.sort();
            assert_eq!(
                mine,
                [(StatusCode::OK, ""), (StatusCode::BAD_REQUEST, "invalid_grant")],
                "round {round}, login {i}: one rotation, one reuse"
            );
        }
    }
}

/// SIGKILL one node under load: every token it handed out still works on the
/// others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_a_killed_node_work_on_the_others() {
    if Backend::Postgres.skipped() {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let (client, user) = db.refresh_app().await;
    let machine = db.create_client("machine", &[]).await;
    let resource_server = db.create_client("api", &["--can-introspect"]).await;
    let [survivor_a, doomed, survivor_b] = three_nodes(&db, &[]).await;

    // Load on the doomed node: logins (refresh tokens stored) and machine tokens,
    // collected as they are answered, until the node dies.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(std::sync::Mutex::new(Vec::<(String, Option<String>)>::new()));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let (http, url) = (doomed.http(), doomed.url("/oauth/token"));
            let (client, user, machine) = (client.clone(), user.clone(), machine.clone());
            let (stop, answered) = (stop.clone(), answered.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let request = if w % 2 == 0 {
                        http.post(&url)
                            .header("authorization", basic_authorization(&client.id, &client.secret))
                            .form(&[
                                ("grant_type", "password"),
                                ("username", user.username.as_str()),
                                ("password", user.password.as_str()),
                            ])
                    } else {
                        http.post(&url)
                            .header("authorization", basic_authorization(&machine.id, &machine.secret))
                            .form(&[("grant_type", "client_credentials")])
                    };
                    let Ok(response) = request.send().await else { break };
                    if response.status() != StatusCode::OK {
                        continue;
                    }
                    let Ok(body) = response.json::<serde_json::Value>().await else {
                        break;
                    };
                    let refresh = body["refresh_token"].as_str().map(str::to_owned);
                    answered
                        .lock()
                        .unwrap()
                        .push((json_str(&body, "access_token"), refresh));
                }
            })
        })
        .collect();
    eventually(
        Duration::from_secs(30),
        "the doomed node serves logins and machine tokens",
        || async {
            let answered = answered.lock().unwrap().clone();
            let logins = answered.iter().filter(|(_, r)| r.is_some()).count();
            let machine = answered.len() - logins;
            if logins >= 5 && machine >= 20 {
                Ok(())
            } else {
                Err(format!("{logins} logins, {machine} machine tokens"))
            }
        },
    )
    .await;
    doomed.signal("KILL");
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        let _ = worker.await;
    }
    let tokens = answered.lock().unwrap().clone();
    assert!(tokens.iter().any(|(_, r)| r.is_some()) && tokens.iter().any(|(_, r)| r.is_none()));

    let survivors = [&survivor_a, &survivor_b];
    for (i, (access, refresh)) in tokens.iter().enumerate() {
        let survivor = survivors[i % 2];
        assert!(
            survivor.is_active(&resource_server, access).await,
            "access token {i} of the killed node"
        );
        if let Some(refresh) = refresh {
            survivor.refresh(&client, refresh).await;
        }
    }
    let _ = doomed.wait_for_exit().await;
}

/// A private PostgreSQL stopped under load: every node answers 503 (and
/// /readyz fails) within its timeouts, nothing panics, and service resumes by
/// itself once PostgreSQL is back. A cached client keeps getting tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_ride_out_a_database_outage() {
    if !PrivatePostgres::available() {
        return;
    }
    let pg = tokio::task::spawn_blocking(PrivatePostgres::start)
        .await
        .expect("start PostgreSQL");
    let db = TestDb::postgres_at(&pg.url()).await;
    let (client, user) = db.refresh_app().await;
    let machine = db.create_client("machine", &[]).await;
    let timeouts = [
        "--database-acquire-timeout",
        "1",
        "--database-statement-timeout",
        "2",
    ];
    let nodes = [db.start(&timeouts).await, db.start(&timeouts).await];
    let mut refresh_tokens = Vec::new();
    for node in &nodes {
        node.access_token(&machine).await;
        refresh_tokens.push(json_str(&node.login(&client, &user).await, "refresh_token"));
    }

    // Load during the outage, to check that nothing hangs or panics under it.
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = nodes
        .iter()
        .map(|node| {
            let (http, url) = (node.http(), node.url("/oauth/token"));
            let (client, user, stop) = (client.clone(), user.clone(), stop.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let reply = http
                        .post(&url)
                        .header("authorization", basic_authorization(&client.id, &client.secret))
                        .form(&[
                            ("grant_type", "password"),
                            ("username", user.username.as_str()),
                            ("password", user.password.as_str()),
                        ])
                        .send()
                        .await
                        .expect("an answer, outage or not");
                    statuses.push(reply.status());
                }
                statuses
            })
        })
        .collect();

    tokio::task::block_in_place(|| pg.stop());
    let stopped_at = Instant::now();
    for (i, node) in nodes.iter().enumerate() {
        let reply = node
            .password_grant(&client, &user.username, &user.password, &[])
            .await;
        reply.assert_token_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
        node.refresh_grant(&client, &refresh_tokens[i], &[])
            .await
            .assert_token_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
        eventually(Duration::from_secs(10), "/readyz reports the outage", || async {
            let reply = node.get("/readyz").await;
            if reply.status == StatusCode::SERVICE_UNAVAILABLE {
                Ok(())
            } else {
                Err(reply.body)
            }
        })
        .await;
        // A client in the cache is served: its token needs no database.
        node.access_token(&machine).await;
    }
    assert!(
        stopped_at.elapsed() < Duration::from_secs(20),
        "answers took {:?}",
        stopped_at.elapsed()
    );

    tokio::task::block_in_place(|| pg.resume());
    let resumed_at = Instant::now();
    for (i, node) in nodes.iter().enumerate() {
        eventually(
            Duration::from_secs(15),
            "service resumes without a restart",
            || async {
                let reply = node
                    .password_grant(&client, &user.username, &user.password, &[])
                    .await;
                if reply.status == StatusCode::OK {
                    Ok(())
                } else {
                    Err(format!("{} {}", reply.status, reply.body))
                }
            },
        )
        .await;
        node.refresh(&client, &refresh_tokens[i]).await;
        node.get("/readyz").await.assert_status(StatusCode::OK);
    }
    let recovery = resumed_at.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut seen = Vec::new();
    for task in load {
        seen.extend(task.await.expect("load task"));
    }
    assert!(
        seen.iter()
            .all(|s| [StatusCode::OK, StatusCode::SERVICE_UNAVAILABLE].contains(s)),
        "only 200 and 503 under an outage: {:?}",
        seen.iter()
            .filter(|s| ![StatusCode::OK, StatusCode::SERVICE_UNAVAILABLE].contains(s))
            .collect::<Vec<_>>()
    );
    assert!(seen.contains(&StatusCode::SERVICE_UNAVAILABLE) && seen.contains(&StatusCode::OK));
    assert!(recovery < Duration::from_secs(15), "recovered after {recovery:?}");
    for node in nodes {
        let log = node.stop_with("TERM").await.logs;
        assert!(!log.contains("panicked"), "{log}");
    }
}
