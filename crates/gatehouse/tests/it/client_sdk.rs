//! gatehouse-client against the real server: a token
//! source renewing short-lived tokens, one token request for a crowd of
//! callers, a user session rotating its refresh token and outliving a server
//! restart, and the reqwest middleware renewing once on a 401. The server's
//! `/metrics` counts the token requests it served; its database shows the
//! refresh tokens consumed.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode as ApiStatus};
use axum::routing::get;
use axum::Router;
use gatehouse_client::{
    authorized_client, AccessToken, ClientAuthMethod, ClientCredentials, Error, ErrorCode, ExposeSecret,
    OAuthClient, RetryPolicy, SecretString, Session, SessionEnd, TokenEndpoint, TokenParams,
};
use reqwest::StatusCode;
use tokio::sync::Barrier;

use crate::helpers::*;
use crate::jose;

/// The value of `metric` with `label` in the server's `/metrics` (0 before
/// its first use: counters appear then).
async fn metric(server: &TestServer<'_>, metric: &str, label: &str) -> u64 {
    server.metric(metric, &[label]).await as u64
}

/// How many tokens the server issued for `grant`.
async fn issued(server: &TestServer<'_>, grant: &str) -> u64 {
    metric(
        server,
        "gatehouse_tokens_issued_total",
        &format!("grant=\"{grant}\""),
    )
    .await
}

/// An HTTP client that never goes through a proxy, like the harness's.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .expect("HTTP client")
}

/// An SDK client for `client` at the server's token endpoint.
fn sdk_client(server: &TestServer<'_>, client: &TestClient, retry: RetryPolicy) -> OAuthClient {
    let endpoint = TokenEndpoint::url(&server.url("/oauth/token"))
        .and_then(|endpoint| endpoint.revocation_endpoint(&server.url("/oauth/revoke")))
        .expect("endpoint URLs");
    OAuthClient::builder(endpoint, credentials(client))
        .http_client(http())
        .retry(retry)
        .build()
        .expect("SDK client")
}

fn credentials(client: &TestClient) -> ClientCredentials {
    ClientCredentials::new(client.id.clone(), SecretString::from(client.secret.clone()))
}

fn secret(token: &AccessToken) -> String {
    token.secret().expose_secret().to_string()
}

/// The `exp` claim of a JWT access token.
fn exp(token: &AccessToken) -> i64 {
    let claims = jose::decode(&secret(token)).claims;
    claims["exp"]
        .as_i64()
        .unwrap_or_else(|| panic!("no exp in {claims}"))
}

/// A patient policy: enough to wait out a server restart.
fn patient() -> RetryPolicy {
    RetryPolicy::default()
        .max_attempts(200)
        .initial_backoff(Duration::from_millis(100))
        .max_backoff(Duration::from_millis(300))
        .max_total_wait(Duration::from_secs(60))
}

/// Which tokens the test API refuses.
#[derive(Clone, Copy)]
enum Refuse {
    /// The first token it ever sees, and those a test adds.
    FirstToken,
    /// Every token: an API that does not accept this client at all.
    Everything,
}

/// The API of the middleware tests: answers 401 with an RFC 6750 challenge
/// to the tokens it refuses, 200 to the others, and records every token it
/// was shown.
#[derive(Clone)]
struct Api {
    state: Arc<Mutex<ApiState>>,
}

struct ApiState {
    refuse: Refuse,
    refused: HashSet<String>,
    seen: Vec<String>,
}

impl Api {
    async fn start(refuse: Refuse) -> (Api, String) {
        let api = Api {
            state: Arc::new(Mutex::new(ApiState {
                refuse,
                refused: HashSet::new(),
                seen: Vec::new(),
            })),
        };
        let state = api.clone();
        let handler = move |headers: HeaderMap| {
            let api = state.clone();
            async move { api.answer(&headers) }
        };
        let app = Router::new().route("/api/v3/cities", get(handler.clone()).post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/api/v3/cities", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (api, url)
    }

    fn answer(&self, headers: &HeaderMap) -> (ApiStatus, [(&'static str, &'static str); 1]) {
        let token = headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_string();
        let mut state = self.state.lock().unwrap();
        if state.seen.is_empty() {
            state.refused.insert(token.clone());
        }
        state.seen.push(token.clone());
        let refused = match state.refuse {
            Refuse::FirstToken => state.refused.contains(&token),
            Refuse::Everything => true,
        };
        if refused {
            let challenge = r#"Bearer realm="api", error="invalid_token""#;
            (ApiStatus::UNAUTHORIZED, [("www-authenticate", challenge)])
        } else {
            (ApiStatus::OK, [("content-type", "text/plain")])
        }
    }

    fn seen(&self) -> Vec<String> {
        self.state.lock().unwrap().seen.clone()
    }

    fn refuse(&self, token: &str) {
        self.state.lock().unwrap().refused.insert(token.to_string());
    }
}

/// The session's current refresh token.
async fn current_refresh_token(session: &Session) -> String {
    let token = session.refresh_token().await.expect("a refresh token");
    token.expose_secret().to_string()
}

backend_tests! {
    /// A 2-second token is renewed before it expires: callers asking every
    /// 50 ms for 4 s are never handed a token the server considers expired,
    /// several renewals happen, and far fewer requests than calls are made
    /// (never a renewal before half the lifetime: at most one per 0.5 s).
    async fn a_short_lived_token_is_renewed_before_it_expires(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &["--token-ttl", "2"]).await;
        let server = db.start(&[]).await;
        let source = sdk_client(&server, &client, RetryPolicy::default()).token_source(TokenParams::new());

        let first = source.token().await.expect("a token");
        assert_eq!(source.token().await.expect("a token"), first, "cached");
        assert_eq!(issued(&server, "client_credentials").await, 1);

        let mut distinct = vec![first];
        let mut calls = 0;
        let window = tokio::time::Instant::now();
        while window.elapsed() < Duration::from_secs(4) {
            let token = source.token().await.expect("a token");
            calls += 1;
            let now = unix_now();
            assert!(exp(&token) > now, "handed out a token with exp {} at {now}", exp(&token));
            if distinct.last() != Some(&token) {
                assert!(!distinct.contains(&token), "an older token came back");
                distinct.push(token);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let requests = issued(&server, "client_credentials").await;
        assert!(distinct.len() >= 3, "only {} tokens in 4 s of a 2 s lifetime", distinct.len());
        assert!(
            requests as usize >= distinct.len() && requests <= 10,
            "{requests} token requests for {calls} calls and {} tokens",
            distinct.len()
        );
        // Every token handed out was a real one.
        assert!(server.is_active(&client, &secret(distinct.last().expect("one"))).await);
    }

    /// 100 concurrent callers with an empty cache: one token request, one
    /// token for all.
    async fn a_hundred_concurrent_callers_make_one_token_request(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &[]).await;
        let server = db.start(&[]).await;
        let source = sdk_client(&server, &client, RetryPolicy::default()).token_source(TokenParams::new());

        let barrier = Arc::new(Barrier::new(100));
        let callers: Vec<_> = (0..100)
            .map(|_| {
                let (source, barrier) = (source.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    source.token().await
                })
            })
            .collect();
        let mut tokens = Vec::new();
        for caller in callers {
            tokens.push(caller.await.expect("caller task").expect("a token"));
        }
        assert!(tokens.iter().all(|token| token == &tokens[0]), "one token for everyone");
        assert_eq!(issued(&server, "client_credentials").await, 1, "one token request");
        assert!(server.is_active(&client, &secret(&tokens[0])).await);
    }

    /// Tokens for different scopes are different tokens, each with its own
    /// scope, cached apart; `client_secret_post` works as well as Basic.
    async fn each_scope_gets_its_own_token(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &["--scope", "read write"]).await;
        let server = db.start(&[]).await;
        let sdk = OAuthClient::builder(
            TokenEndpoint::url(&server.url("/oauth/token")).expect("URL"),
            credentials(&client).auth_method(ClientAuthMethod::ClientSecretPost),
        )
        .http_client(http())
        .build()
        .expect("SDK client");
        let source = sdk.token_source(TokenParams::new().scope("read"));

        let read = source.token().await.expect("read");
        let write = source.token_for(&TokenParams::new().scope("write")).await.expect("write");
        let both = source.token_for(&TokenParams::new().scope("write read")).await.expect("both");
        for (token, scope) in [(&read, "read"), (&write, "write")] {
            assert_eq!(jose::decode(&secret(token)).claims["scope"], scope);
            assert_eq!(token.scope(), Some(scope));
        }
        let claims = jose::decode(&secret(&both)).claims;
        assert_eq!(scope_set(claims["scope"].as_str().expect("scope")), ["read", "write"]);
        assert_eq!(source.token().await.expect("read"), read);
        assert_eq!(source.token_for(&TokenParams::new().scope("read write")).await.expect("both"), both);
        assert_eq!(issued(&server, "client_credentials").await, 3);
    }

    /// What the server refuses comes back typed, and is not retried.
    async fn refusals_come_back_typed_and_are_not_retried(backend) {
        let db = TestDb::new(backend).await;
        let (client, user) = db.refresh_app().await;
        let server = db.start(&[]).await;

        let wrong_secret = TestClient { secret: "not-the-secret-at-all".into(), ..client.clone() };
        let error = sdk_client(&server, &wrong_secret, RetryPolicy::default())
            .token_source(TokenParams::new())
            .token()
            .await
            .expect_err("wrong secret");
        let refusal = error.oauth_error().unwrap_or_else(|| panic!("{error:?}"));
        assert!(matches!(error, Error::OAuth(_)), "{error:?}");
        assert_eq!(refusal.error(), &ErrorCode::InvalidClient);
        assert_eq!(refusal.status(), StatusCode::UNAUTHORIZED);
        assert!(refusal.error_description().is_some());
        assert_eq!(metric(&server, "gatehouse_token_errors_total", "invalid_client").await, 1, "no retry");

        let sdk = sdk_client(&server, &client, RetryPolicy::default());
        let session = sdk.session(TokenParams::new().scope("read"));
        let error = session
            .login(&user.username, SecretString::from("wrong password"))
            .await
            .expect_err("wrong password");
        assert!(matches!(&error, Error::OAuth(e) if e.error() == &ErrorCode::InvalidGrant), "{error:?}");
        assert!(!format!("{error} {error:?}").contains("wrong password"));
        assert!(matches!(session.token().await, Err(Error::NotLoggedIn)));

        let error = sdk
            .session(TokenParams::new().scope("admin"))
            .login(&user.username, SecretString::from(user.password.clone()))
            .await
            .expect_err("scope beyond the client's");
        assert!(matches!(&error, Error::OAuth(e) if e.error() == &ErrorCode::InvalidScope), "{error:?}");
        assert_eq!(metric(&server, "gatehouse_token_errors_total", "invalid_grant").await, 1);
        assert_eq!(metric(&server, "gatehouse_token_errors_total", "invalid_scope").await, 1);
    }

    /// A session refreshes a short-lived access token three times, storing
    /// each rotated refresh token: the database shows three consumed, the
    /// first one is refused by the server, and presenting it (reuse) revokes
    /// the login, which the session then reports as ended, for good and
    /// without asking again.
    async fn a_session_rotates_its_refresh_token(backend) {
        let db = TestDb::new(backend).await;
        let client = db
            .create_client(
                "app",
                &["--scope", "read", "--grant-types", "password,refresh_token", "--token-ttl", "2"],
            )
            .await;
        let user = db.create_user("alice", PASSWORD, Some("read")).await;
        let server = db.start(&[]).await;
        let sdk = sdk_client(&server, &client, RetryPolicy::default());
        let session = sdk.session(TokenParams::new().scope("read"));

        let login = session.login(&user.username, SecretString::from(PASSWORD)).await;
        let mut access = vec![login.expect("login")];
        let mut refresh = vec![current_refresh_token(&session).await];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while access.len() < 4 {
            assert!(tokio::time::Instant::now() < deadline, "only {} tokens", access.len());
            let token = session.token().await.expect("a token");
            if access.last() != Some(&token) {
                access.push(token);
                refresh.push(current_refresh_token(&session).await);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let distinct: HashSet<&String> = refresh.iter().collect();
        assert_eq!(distinct.len(), 4, "every refresh rotated the refresh token");
        for token in &access {
            assert_eq!(jose::decode(&secret(token)).claims["sub"], user.id.as_str());
        }
        assert_eq!(issued(&server, "refresh_token").await, 3);
        let mut conn = db.connect().await;
        let used = conn.scalar("SELECT COUNT(*) FROM refresh_tokens WHERE used_at IS NOT NULL", None).await;
        assert_eq!(used, 3, "three refresh tokens consumed");
        assert!(server.is_active(&client, &refresh[3]).await, "the newest is live");

        // The first refresh token is dead; presenting it is a reuse, which
        // revokes the login (RFC 9700 §4.14.2).
        server
            .refresh_grant(&client, &refresh[0], &[])
            .await
            .assert_token_error(StatusCode::BAD_REQUEST, "invalid_grant");
        let ended = eventually(Duration::from_secs(10), "the session notices", || async {
            match session.token().await {
                Err(error) => Ok(error),
                Ok(_) => Err("still handing out tokens".to_string()),
            }
        })
        .await;
        let Error::SessionEnded(SessionEnd::RefreshRefused(refusal)) = &ended else {
            panic!("not a session end: {ended:?}");
        };
        assert_eq!(refusal.error(), &ErrorCode::InvalidGrant);
        assert_eq!(session.refresh_token().await.map(|t| t.expose_secret().to_string()), None);
        for _ in 0..3 {
            assert!(matches!(session.token().await, Err(Error::SessionEnded(_))));
        }
        assert_eq!(
            metric(&server, "gatehouse_token_errors_total", "invalid_grant").await,
            2,
            "the refused refresh token was presented once, and never again"
        );
    }

    /// The server stops mid-session and a new one starts on the same
    /// database and port: the session's next refresh, begun while the
    /// server was down, waits it out and succeeds.
    async fn a_session_survives_a_server_restart(backend) {
        let db = TestDb::new(backend).await;
        let client = db
            .create_client(
                "app",
                &["--scope", "read", "--grant-types", "password,refresh_token", "--token-ttl", "2"],
            )
            .await;
        let user = db.create_user("alice", PASSWORD, Some("read")).await;
        let server = db.start(&[]).await;
        let issuer = server.issuer().await;
        let port = server.addr().port();
        let endpoint = TokenEndpoint::discover(&issuer).expect("issuer");
        let sdk = OAuthClient::builder(endpoint, credentials(&client))
            .http_client(http())
            .retry(patient())
            .build()
            .expect("SDK client");
        let session = sdk.session(TokenParams::new().scope("read"));
        let before = session.login(&user.username, SecretString::from(PASSWORD)).await.expect("login");

        let stopped = server.stop_with("TERM").await;
        assert!(stopped.status.success(), "{stopped:?}");
        tokio::time::sleep_until(before.expires_at()).await;
        let pending = {
            let session = session.clone();
            tokio::spawn(async move { session.token().await })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!pending.is_finished(), "the refresh gave up while the server was down");

        let listen = format!("127.0.0.1:{port}");
        let server = db.start(&["--listen", &listen]).await;
        let after = pending.await.expect("task").expect("a refreshed token");
        assert_ne!(after, before);
        assert!(server.is_active(&client, &secret(&after)).await);
        let mut conn = db.connect().await;
        let used = conn.scalar("SELECT COUNT(*) FROM refresh_tokens WHERE used_at IS NOT NULL", None).await;
        assert_eq!(used, 1);
        assert_eq!(session.token().await.expect("cached"), after);
    }

    /// Through the reqwest middleware, the API's 401 to the first token
    /// makes one renewal and one retry with the new token; fifty requests
    /// refused at once with the same token make one renewal between them.
    async fn the_middleware_renews_once_on_a_401(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &[]).await;
        let server = db.start(&[]).await;
        let source = sdk_client(&server, &client, RetryPolicy::default()).token_source(TokenParams::new());
        let (api, url) = Api::start(Refuse::FirstToken).await;
        let api_client = authorized_client(http(), source.clone());

        let response = api_client.get(&url).send().await.expect("a response");
        assert_eq!(response.status(), StatusCode::OK);
        let seen = api.seen();
        assert_eq!(seen.len(), 2, "one request, one retry");
        assert_ne!(seen[0], seen[1], "the retry carried a renewed token");
        assert_eq!(issued(&server, "client_credentials").await, 2, "exactly one renewal");
        assert!(server.is_active(&client, &seen[1]).await);
        let current = source.token().await.expect("cached");
        assert_eq!(secret(&current), seen[1]);

        // Fifty requests refused with the current token.
        api.refuse(&seen[1]);
        let requests: Vec<_> = (0..50)
            .map(|_| {
                let (api_client, url) = (api_client.clone(), url.clone());
                tokio::spawn(async move { api_client.get(&url).send().await })
            })
            .collect();
        for request in requests {
            let response = request.await.expect("task").expect("a response");
            assert_eq!(response.status(), StatusCode::OK);
        }
        assert_eq!(issued(&server, "client_credentials").await, 3, "one renewal for fifty 401s");
        let seen = api.seen();
        let renewed: HashSet<&String> = seen[2..].iter().filter(|token| *token != &seen[1]).collect();
        assert_eq!(renewed.len(), 1, "every retry carried the same renewed token");
        // A late report of the same refused token gets the replacement, no renewal.
        let replacement = source.renew_rejected(&current).await.expect("the replacement");
        assert!(renewed.contains(&secret(&replacement)));
        assert_eq!(issued(&server, "client_credentials").await, 3);

        // A request with an Authorization of its own is left alone.
        let response = api_client.get(&url).bearer_auth("callers-own").send().await.expect("a response");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(api.seen().last().map(String::as_str), Some("callers-own"));
        assert_eq!(issued(&server, "client_credentials").await, 3);
    }

    /// A 401 that a renewal does not cure is the answer after one retry.
    async fn the_middleware_retries_only_once(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &[]).await;
        let server = db.start(&[]).await;
        let source = sdk_client(&server, &client, RetryPolicy::default()).token_source(TokenParams::new());
        let (api, url) = Api::start(Refuse::Everything).await;
        let api_client = authorized_client(http(), source.clone());
        let response = api_client.get(&url).send().await.expect("a response");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(api.seen().len(), 2, "one request, one retry, no more");
        assert_eq!(issued(&server, "client_credentials").await, 2);
    }

    /// A refused request whose body is a stream cannot be sent again: the
    /// caller gets the 401, the token is still replaced, and the next request
    /// carries the replacement with no further renewal.
    async fn a_streamed_body_gets_the_401_and_the_next_request_a_new_token(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &[]).await;
        let server = db.start(&[]).await;
        let source = sdk_client(&server, &client, RetryPolicy::default()).token_source(TokenParams::new());
        let (api, url) = Api::start(Refuse::FirstToken).await;
        let api_client = authorized_client(http(), source.clone());

        let chunks: Vec<Result<&'static str, std::io::Error>> = vec![Ok("city="), Ok("Milan")];
        let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
        let response = api_client.post(&url).body(body).send().await.expect("a response");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(api.seen().len(), 1, "a stream is not sent twice");
        assert_eq!(issued(&server, "client_credentials").await, 2, "the refused token was replaced");

        let response = api_client.get(&url).send().await.expect("a response");
        assert_eq!(response.status(), StatusCode::OK);
        let seen = api.seen();
        assert_eq!(seen.len(), 2, "the next request went through at once");
        assert_ne!(seen[0], seen[1]);
        assert_eq!(secret(&source.token().await.expect("cached")), seen[1]);
        assert_eq!(issued(&server, "client_credentials").await, 2, "no other renewal");
    }

    /// Logout revokes the refresh token (RFC 7009) and with it the login's
    /// access tokens; the session is over.
    async fn logout_revokes_the_session(backend) {
        let db = TestDb::new(backend).await;
        let (client, user) = db.refresh_app().await;
        let server = db.start(&[]).await;
        let sdk = sdk_client(&server, &client, RetryPolicy::default());
        let session = sdk.session(TokenParams::new().scope("read"));
        let access = session.login(&user.username, SecretString::from(PASSWORD)).await.expect("login");
        let refresh = current_refresh_token(&session).await;

        session.logout().await.expect("logout");
        assert!(!server.is_active(&client, &refresh).await, "the refresh token is revoked");
        assert!(!server.is_active(&client, &secret(&access)).await, "and the login's access token");
        let error = session.token().await.expect_err("logged out");
        assert!(matches!(error, Error::SessionEnded(SessionEnd::LoggedOut)), "{error:?}");
        // Through the middleware, the same error, before any request is sent.
        let api_client = authorized_client(http(), session.clone());
        let error = api_client.get(server.url("/healthz")).send().await.expect_err("logged out");
        let cause = match &error {
            reqwest_middleware::Error::Middleware(cause) => cause.downcast_ref::<Error>(),
            reqwest_middleware::Error::Reqwest(_) => None,
        };
        assert!(matches!(cause, Some(Error::SessionEnded(SessionEnd::LoggedOut))), "{error:?}");
    }
}
