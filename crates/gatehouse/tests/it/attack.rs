//! What a black-box attack found, each replayed against the real server.
//! Point 1: wrong secrets of an imported-secret client buy bounded Argon2 work.
//! Point 2: strangers cannot spend a client's quota. Point 3: concurrent guesses get
//! no more password checks than sequential ones. Point 4: a user's own address is not
//! held by failures from elsewhere. Point 6: over-long client ids are refused before
//! they are logged. Point 9: unknown client ids answer like known ones, without a
//! query each. Point 10: introspection and revocation are rate limited per address.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::abuse::{assert_too_many, client_from};
use crate::helpers::*;

/// A token request with Basic credentials `id:secret` and `grant_type=password` for
/// `username` (or client_credentials without one), from `http`, naming `forwarded_for`.
async fn token_request(
    http: &reqwest::Client,
    server: &TestServer<'_>,
    (id, secret): (&str, &str),
    login: Option<(&str, &str)>,
    forwarded_for: Option<&str>,
) -> Reply {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some((username, password)) = login {
        form = vec![
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ];
    }
    let mut request = http
        .post(server.url("/oauth/token"))
        .header("authorization", basic_authorization(id, secret))
        .form(&form);
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    Reply::from(request.send().await).await
}

/// Reads the counter `name` off `/metrics` (0 when absent).
async fn metric(server: &TestServer<'_>, name: &str) -> f64 {
    let page = server.get("/metrics").await;
    page.body
        .lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

backend_tests! {
    /// Point 1: 400 wrong secrets at once for a client whose secret was imported
    /// (Argon2id, 19 MiB each). With one slot, at most one hash runs at a time;
    /// the rest wait at most five seconds, then get 503 temporarily_unavailable with
    /// Retry-After. Memory stays bounded (before: one 19 MiB hash per request at
    /// once, gigabytes), and a client with a generated secret is served throughout.
    async fn wrong_imported_secrets_buy_bounded_hashing(backend) {
        let db = TestDb::new(backend).await;
        let victim = db.import_client("imported", "an imported secret, 16+", &[]).await;
        let honest = db.create_client("honest", &[]).await;
        let server = db
            .start(&[
                "--password-hash-concurrency", "1",
                "--rate-limit-per-address", "0",
                "--max-connections-per-address", "0",
            ])
            .await;
        let (rss_before, _) = server.memory_mib();
        let http = server.http();
        let attack: Vec<_> = (0..400)
            .map(|i| {
                let (http, url, id) = (http.clone(), server.url("/oauth/token"), victim.id.clone());
                tokio::spawn(async move {
                    let reply = http
                        .post(url)
                        .header("authorization", basic_authorization(&id, &format!("wrong secret number {i}")))
                        .form(&[("grant_type", "client_credentials")])
                        .send()
                        .await;
                    Reply::from(reply).await
                })
            })
            .collect();
        // An honest client in the middle of it: a real pause, so that the flood is
        // on the wire first (what is measured is a wall-clock wait under load).
        tokio::time::sleep(Duration::from_millis(100)).await;
        let honest_started = Instant::now();
        server.access_token(&honest).await;
        let honest_took = honest_started.elapsed();
        let mut answers = Vec::new();
        for task in attack {
            answers.push(task.await.expect("attack request"));
        }
        let (_, peak) = server.memory_mib();
        let refused: Vec<&Reply> = answers.iter().filter(|r| r.status == StatusCode::SERVICE_UNAVAILABLE).collect();
        let checked = answers.iter().filter(|r| r.status == StatusCode::UNAUTHORIZED).count();
        assert_eq!(refused.len() + checked, answers.len(), "only 401 and 503: {answers:?}");
        assert!(!refused.is_empty(), "one slot cannot check 400 hashes within five seconds");
        for reply in refused {
            let problems = reply.error_problems(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", true);
            assert!(problems.is_empty(), "{}: {reply:?}", problems.join("; "));
            assert_eq!(reply.header("retry-after"), Some("1"), "{reply:?}");
        }
        assert!(
            peak < rss_before + 150,
            "peak RSS {peak} MiB from {rss_before} MiB: the hashing is not bounded"
        );
        // Not a benchmark (bench/attack.sh is): just nowhere near the queue.
        assert!(honest_took < Duration::from_secs(1), "honest client waited {honest_took:?}");
        // The right secret still works once the attack is over.
        server
            .client_credentials(&victim, &[])
            .await
            .access_token();
    }

    /// Point 2: six addresses claiming a client's id with wrong secrets spend
    /// their own addresses' budgets, not the client's quota.
    async fn strangers_cannot_spend_a_clients_quota(backend) {
        let db = TestDb::new(backend).await;
        let victim = db.create_client("victim", &[]).await;
        let server = db
            .start(&["--rate-limit-per-client", "2", "--rate-limit-per-address", "3"])
            .await;
        for source in 2..8u8 {
            let stranger = client_from(Ipv4Addr::new(127, 0, 0, source));
            let mut statuses = Vec::new();
            for _ in 0..8 {
                let reply = token_request(&stranger, &server, (&victim.id, "wrong-secret"), None, None).await;
                statuses.push(reply.status);
            }
            // Their own address's burst (6), then 429 for that address.
            assert_eq!(
                statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count(),
                6,
                "from 127.0.0.{source}: {statuses:?}"
            );
        }
        // The client's own burst of four is intact.
        for i in 0..4 {
            let reply = server.client_credentials(&victim, &[]).await;
            assert_eq!(reply.status, StatusCode::OK, "request {i}: {reply:?}");
        }
        assert_too_many(&server.client_credentials(&victim, &[]).await, 1);
    }

    /// Point 3: 60 wrong passwords at once from one address are no more checks
    /// than 60 one after another: the three free attempts, then 429.
    async fn concurrent_guesses_get_no_more_checks_than_sequential_ones(backend) {
        let db = TestDb::new(backend).await;
        let (client, user) = db.refresh_app().await;
        let server = db.start(&[]).await;
        let http = server.http();
        let guesses: Vec<_> = (0..60)
            .map(|i| {
                let (http, url) = (http.clone(), server.url("/oauth/token"));
                let auth = basic_authorization(&client.id, &client.secret);
                let username = user.username.clone();
                tokio::spawn(async move {
                    let reply = http
                        .post(url)
                        .header("authorization", auth)
                        .form(&[
                            ("grant_type", "password"),
                            ("username", username.as_str()),
                            ("password", format!("guess {i}").as_str()),
                        ])
                        .send()
                        .await;
                    Reply::from(reply).await
                })
            })
            .collect();
        let mut checked = 0;
        for guess in guesses {
            let reply = guess.await.expect("guess");
            match reply.status {
                StatusCode::BAD_REQUEST => {
                    reply.assert_token_error(StatusCode::BAD_REQUEST, "invalid_grant");
                    checked += 1;
                }
                _ => {
                    assert_too_many(&reply, 60);
                }
            }
        }
        assert_eq!(checked, 3, "checked passwords of 60 concurrent guesses");
    }

    /// Point 4: 80 addresses guessing one user's password brake that username
    /// everywhere, except at the address the user signed in from before: every
    /// attempt of the user there goes through.
    async fn a_users_own_address_is_not_held_by_failures_from_elsewhere(backend) {
        let db = TestDb::new(backend).await;
        let (client, user) = db.refresh_app().await;
        let server = db.start(&["--trusted-proxies", "127.0.0.1"]).await;
        let http = server.http();
        let creds = (client.id.as_str(), client.secret.as_str());
        let home = "203.0.113.5";
        let login = (user.username.as_str(), user.password.as_str());
        token_request(&http, &server, creds, Some(login), Some(home)).await.access_token();
        for i in 0..80u8 {
            let attacker = format!("10.9.0.{i}");
            let reply = token_request(&http, &server, creds, Some((&user.username, "a guess")), Some(&attacker)).await;
            assert!(
                matches!(reply.status, StatusCode::BAD_REQUEST | StatusCode::TOO_MANY_REQUESTS),
                "{reply:?}"
            );
        }
        // Elsewhere the username is braked…
        let fresh = token_request(&http, &server, creds, Some(login), Some("198.51.100.9")).await;
        assert_too_many(&fresh, 1);
        // …but not at home: 24 logins in a row.
        for i in 0..24 {
            let reply = token_request(&http, &server, creds, Some(login), Some(home)).await;
            assert_eq!(reply.status, StatusCode::OK, "login {i} from home: {reply:?}");
        }
    }

    /// Point 6: a client id longer than any the CLI accepts is refused as an
    /// unknown client before it is logged, looked up or counted; so is one with
    /// control characters.
    async fn impossible_client_ids_are_refused_before_they_are_logged(backend) {
        let db = TestDb::new(backend).await;
        let server = db.start(&["--log-format", "json"]).await;
        // As long as a Basic header can carry (heads are at most 16 KiB).
        let long_id = "L".repeat(10_000);
        let bad_ids = [long_id.as_str(), "evil\r\nevent=token_issued", "esc\u{1b}[2J"];
        for id in bad_ids {
            for auth in [ClientAuth::basic(id, "whatever"), ClientAuth::Post(id.into(), "whatever".into())] {
                let reply = server.token_form(&auth, &[("grant_type", "client_credentials")]).await;
                reply.assert_token_error(StatusCode::UNAUTHORIZED, "invalid_client");
                for path in ["/oauth/introspect", "/oauth/revoke"] {
                    let reply = server.post_form(path, Some(&auth), &[("token", "x")]).await;
                    reply.assert_token_error(StatusCode::UNAUTHORIZED, "invalid_client");
                }
            }
        }
        // A stopped server has written its whole log: none of the ids is there.
        let log = server.stop_with("TERM").await.logs;
        assert!(log.contains("shutting down"), "the log is incomplete: {log}");
        assert!(!log.contains(&"L".repeat(300)), "the long id was logged");
        assert!(!log.contains("evil") && !log.contains("esc"), "a bad id was logged: {log}");
    }

    /// Point 9: a made-up client id is refused without a database query each
    /// (past a small budget for clients created a moment ago), and takes as long as
    /// a known id with a wrong secret.
    async fn unknown_client_ids_answer_like_known_ones_without_a_query(backend) {
        let db = TestDb::new(backend).await;
        let known = db.create_client("known", &[]).await;
        let server = db.start(&["--rate-limit-per-address", "0"]).await;
        let http = server.http();
        let mut known_times = Vec::new();
        let mut unknown_times = Vec::new();
        for i in 0..300 {
            let unknown_id = format!("made-up-{i}-{}", random_token(""));
            for (id, times) in [(known.id.as_str(), &mut known_times), (unknown_id.as_str(), &mut unknown_times)] {
                let started = Instant::now();
                let reply = token_request(&http, &server, (id, "wrong secret"), None, None).await;
                times.push(started.elapsed());
                reply.assert_token_error(StatusCode::UNAUTHORIZED, "invalid_client");
                assert_eq!(
                    reply.json()["error_description"], "Client authentication failed.",
                    "{reply:?}"
                );
            }
        }
        // 400 made-up ids as fast as 20 connections send them: the budget (50 a
        // second, bursts of 100) lets only a part of them reach the database.
        let skipped_before = metric(&server, "gatehouse_unknown_client_lookups_skipped_total").await;
        let flood_started = Instant::now();
        let flood: Vec<_> = (0..20)
            .map(|_| {
                let (http, url) = (http.clone(), server.url("/oauth/token"));
                tokio::spawn(async move {
                    for _ in 0..20 {
                        let id = random_token("flood-");
                        let reply = http
                            .post(&url)
                            .header("authorization", basic_authorization(&id, "wrong"))
                            .form(&[("grant_type", "client_credentials")])
                            .send()
                            .await;
                        assert_eq!(Reply::from(reply).await.status, StatusCode::UNAUTHORIZED);
                    }
                })
            })
            .collect();
        for task in flood {
            task.await.expect("flood");
        }
        let budget = 100.0 + 50.0 * flood_started.elapsed().as_secs_f64();
        let skipped = metric(&server, "gatehouse_unknown_client_lookups_skipped_total").await - skipped_before;
        assert!(
            skipped >= 400.0 - budget - 1.0,
            "{skipped} of 400 unknown ids skipped the database; the budget allowed {budget:.0} lookups"
        );
        assert!(skipped > 0.0, "the flood was too slow to show the budget");
        let median = |mut v: Vec<Duration>| {
            v.sort();
            v[v.len() / 2]
        };
        let (known_median, unknown_median) = (median(known_times), median(unknown_times));
        let gap = known_median.abs_diff(unknown_median);
        assert!(
            gap < Duration::from_micros(500),
            "median {known_median:?} for a known id, {unknown_median:?} for an unknown one"
        );
        // A client created now (not yet in this node's set) is still served at once.
        let late = db.create_client("late", &[]).await;
        server.access_token(&late).await;
    }

    /// Point 10: failed authentications at /oauth/introspect and /oauth/revoke
    /// count against the address, as at the token endpoint.
    async fn introspection_and_revocation_are_rate_limited(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("rs", &["--can-introspect"]).await;
        let server = db.start(&["--rate-limit-per-address", "2"]).await;
        let wrong = ClientAuth::basic(&client.id, "wrong");
        for path in ["/oauth/introspect", "/oauth/revoke"] {
            let mut statuses = Vec::new();
            for _ in 0..6 {
                statuses.push(server.post_form(path, Some(&wrong), &[("token", "x")]).await);
            }
            assert!(
                statuses[..4].iter().all(|r| r.status == StatusCode::UNAUTHORIZED),
                "{path}: {statuses:?}"
            );
            assert_too_many(&statuses[5], 1);
            // Two a second: the burst of four is back in two seconds. A real wait:
            // the rate limits run on the monotonic clock (docs/design.md, "Time").
            tokio::time::sleep(Duration::from_millis(2100)).await;
        }
    }
}
