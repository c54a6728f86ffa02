//! Rate limits on the token endpoint per client and per source
//! address (429, `Retry-After`, OAuth JSON), and the brake on password
//! guessing: growing delays, then a lockout of one username from one address,
//! lifted by time or a success, never extended to other addresses.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::*;

/// Asserts a 429 with the OAuth JSON, no-store, and `Retry-After` in whole
/// seconds from 1 to `max`; returns it.
pub fn assert_too_many(reply: &Reply, max: u64) -> u64 {
    let problems = reply.error_problems(StatusCode::TOO_MANY_REQUESTS, "temporarily_unavailable", true);
    assert!(problems.is_empty(), "{}: {reply:?}", problems.join("; "));
    let retry_after: u64 = reply
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After in seconds: {reply:?}"));
    assert!(
        (1..=max).contains(&retry_after),
        "Retry-After {retry_after}: {reply:?}"
    );
    retry_after
}

/// An HTTP client whose connections come from `source` (any 127.0.0.0/8
/// address reaches the server on loopback).
pub fn client_from(source: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(IpAddr::V4(source))
        .timeout(Duration::from_secs(15))
        .build()
        .expect("HTTP client")
}

async fn password_from(
    http: &reqwest::Client,
    server: &TestServer<'_>,
    client: &TestClient,
    username: &str,
    password: &str,
) -> Reply {
    let request = http
        .post(server.url("/oauth/token"))
        .header("authorization", basic_authorization(&client.id, &client.secret))
        .form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ]);
    Reply::from(request.send().await).await
}

backend_tests! {
    /// Per client: a burst of twice the rate, then 429 for that client only.
    /// Per address: the same for everything from one address.
    async fn token_requests_are_rate_limited(backend) {
        let db = TestDb::new(backend).await;
        let busy = db.create_client("busy", &[]).await;
        let calm = db.create_client("calm", &[]).await;
        let server = db
            .start(&["--rate-limit-per-client", "2", "--rate-limit-per-address", "0"])
            .await;
        for i in 0..4 {
            let reply = server.client_credentials(&busy, &[]).await;
            assert_eq!(reply.status, StatusCode::OK, "request {i} of the burst: {reply:?}");
        }
        let reply = server.client_credentials(&busy, &[]).await;
        assert_too_many(&reply, 1);
        server.access_token(&calm).await;
        // Refused requests are audited, with the address (the log is written by a
        // thread of its own: wait for the line).
        eventually(PROPAGATION_DEADLINE, "the refusal is audited", || async {
            let log = server.logs();
            let audited = log
                .lines()
                .any(|l| l.contains("token_refused") && l.contains("rate_limited") && l.contains("address=127.0.0.1"));
            if audited { Ok(()) } else { Err(log) }
        })
        .await;
        // The limit refills: one more after half a second (2 a second). A real wait:
        // the rate limits run on the monotonic clock, not the server's injected one
        // (docs/design.md, "Time").
        tokio::time::sleep(Duration::from_millis(600)).await;
        server.client_credentials(&busy, &[]).await.access_token();

        let per_address = TestDb::new(backend).await;
        let one = per_address.create_client("one", &[]).await;
        let two = per_address.create_client("two", &[]).await;
        let server = per_address
            .start(&["--rate-limit-per-client", "0", "--rate-limit-per-address", "3"])
            .await;
        let mut answers = Vec::new();
        for i in 0..8 {
            let client = if i % 2 == 0 { &one } else { &two };
            answers.push(server.client_credentials(client, &[]).await.status);
        }
        assert_eq!(
            answers.iter().filter(|s| **s == StatusCode::OK).count(),
            6,
            "a burst of 6 from one address, whatever the client: {answers:?}"
        );
        let elsewhere = client_from(Ipv4Addr::new(127, 0, 0, 2));
        let reply = Reply::from(
            elsewhere
                .post(server.url("/oauth/token"))
                .header("authorization", basic_authorization(&one.id, &one.secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await,
        )
        .await;
        reply.access_token();
    }

    /// Wrong passwords: free attempts, then growing delays (429), then a
    /// lockout that even the right password cannot pass, lifted by time. Another
    /// address is never locked out, and a success lifts the delays. The server
    /// runs on a clock the test moves, so no delay is waited out.
    async fn password_guessing_is_braked_and_locked(backend) {
        let db = TestDb::new(backend).await;
        let (client, user) = db.refresh_app().await;
        let clock = stopped_clock();
        let server = db
            .start_on(&clock, &["--login-lockout-threshold", "5", "--login-lockout-duration", "3"])
            .await;
        let here = client_from(Ipv4Addr::LOCALHOST);
        let there = client_from(Ipv4Addr::new(127, 0, 0, 2));
        let guess = |http| password_from(http, &server, &client, &user.username, "wrong guess");

        for _ in 0..3 {
            guess(&here).await.assert_token_error(StatusCode::BAD_REQUEST, "invalid_grant");
        }
        // The fourth attempt comes too soon: 429, and the password is not checked.
        assert_eq!(assert_too_many(&guess(&here).await, 1), 1);
        clock.advance(1);
        guess(&here).await.assert_token_error(StatusCode::BAD_REQUEST, "invalid_grant");
        // The next delay is two seconds: one is not enough.
        clock.advance(1);
        assert_eq!(assert_too_many(&guess(&here).await, 2), 1);
        clock.advance(1);
        guess(&here).await.assert_token_error(StatusCode::BAD_REQUEST, "invalid_grant");
        // Five failures: locked, right password or not, for the 3 seconds.
        let reply = password_from(&here, &server, &client, &user.username, &user.password).await;
        assert_eq!(assert_too_many(&reply, 3), 3);
        // From another address the user logs in at once.
        password_from(&there, &server, &client, &user.username, &user.password)
            .await
            .access_token();
        // Time lifts the lockout, not before it is over.
        clock.advance(2);
        let reply = password_from(&here, &server, &client, &user.username, &user.password).await;
        assert_eq!(assert_too_many(&reply, 1), 1, "lifted early");
        clock.advance(1);
        password_from(&here, &server, &client, &user.username, &user.password)
            .await
            .access_token();

        // A success lifts the delays: three failures, a success, three free failures.
        for _ in 0..3 {
            guess(&there).await.assert_token_error(StatusCode::BAD_REQUEST, "invalid_grant");
        }
        clock.advance(1);
        password_from(&there, &server, &client, &user.username, &user.password)
            .await
            .access_token();
        for _ in 0..3 {
            guess(&there).await.assert_token_error(StatusCode::BAD_REQUEST, "invalid_grant");
        }
        server.stop().await;
    }

    /// A lockout refusal is audited as `login_locked`, and no password reaches the
    /// log (the binary, whose log is captured; one failure locks).
    async fn a_lockout_is_audited_without_the_password(backend) {
        let db = TestDb::new(backend).await;
        let (client, user) = db.refresh_app().await;
        let server = db
            .start(&["--login-lockout-threshold", "1", "--login-lockout-duration", "600"])
            .await;
        let here = client_from(Ipv4Addr::LOCALHOST);
        password_from(&here, &server, &client, &user.username, "wrong guess")
            .await
            .assert_token_error(StatusCode::BAD_REQUEST, "invalid_grant");
        let reply = password_from(&here, &server, &client, &user.username, &user.password).await;
        assert_too_many(&reply, 600);
        let log = server.stop_with("TERM").await.logs;
        assert!(log.contains("login_locked"), "refusals are audited: {log}");
        assert!(!log.contains(&user.password) && !log.contains("wrong guess"), "a password in the log");
    }
}

/// Behind a trusted proxy (`trusted_proxies`), the client is the address the
/// proxy puts in `X-Forwarded-For`: each gets its own rate limit, and the
/// audit log names it. From any other address the header is ignored, so a
/// client cannot shed its limit by claiming to be someone else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_proxies_forward_the_client_address() {
    let db = TestDb::new(Backend::Sqlite).await;
    let client = db.create_client("svc", &[]).await;
    let server = db
        .start(&[
            "--trusted-proxies",
            "127.0.0.1, 10.0.0.0/8",
            "--rate-limit-per-client",
            "0",
            "--rate-limit-per-address",
            "1",
        ])
        .await;
    let request = |http: &reqwest::Client, forwarded: &str| {
        http.post(server.url("/oauth/token"))
            .header("authorization", basic_authorization(&client.id, &client.secret))
            .header("x-forwarded-for", forwarded)
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    let proxy = client_from(Ipv4Addr::new(127, 0, 0, 1));
    // A burst of two for the first client (the left entry is the client's own
    // claim and is not believed; 10.0.0.7 is a trusted hop).
    for forwarded in ["203.0.113.1", "198.51.100.99, 203.0.113.1, 10.0.0.7"] {
        Reply::from(request(&proxy, forwarded).await).await.access_token();
    }
    assert_too_many(&Reply::from(request(&proxy, "203.0.113.1").await).await, 1);
    // Another client behind the same proxy has a limit of its own.
    Reply::from(request(&proxy, "203.0.113.2").await)
        .await
        .access_token();

    // Not a trusted proxy: its own address, whatever it forwards.
    let direct = client_from(Ipv4Addr::new(127, 0, 0, 2));
    for forwarded in ["203.0.113.3", "203.0.113.4"] {
        Reply::from(request(&direct, forwarded).await)
            .await
            .access_token();
    }
    assert_too_many(&Reply::from(request(&direct, "203.0.113.5").await).await, 1);

    let log = server.stop_with("TERM").await.logs;
    let refused: Vec<&str> = log.lines().filter(|l| l.contains("token_refused")).collect();
    assert!(
        refused.iter().any(|l| l.contains("address=203.0.113.1")),
        "{refused:?}"
    );
    assert!(
        refused.iter().any(|l| l.contains("address=127.0.0.2")),
        "{refused:?}"
    );
    assert!(
        !log.contains("203.0.113.5") && !log.contains("198.51.100.99"),
        "claims are not believed: {log}"
    );
}
