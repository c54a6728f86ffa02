//! What an operator relies on: health and readiness probes, Prometheus
//! metrics, the OpenAPI description, and a clean stop on a signal.

use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// The value of the first sample of `metric` whose labels include `label`.
fn sample(metrics: &str, metric: &str, label: &str) -> Option<f64> {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| line.starts_with(&format!("{metric}{{")) || line.starts_with(&format!("{metric} ")))
        .filter(|line| line.contains(label))
        .find_map(|line| line.rsplit(' ').next()?.parse().ok())
}

backend_tests! {
    async fn health_and_readiness_probes(backend) {
        let db = TestDb::new(backend).await;
        let server = db.start(&[]).await;

        server.get("/healthz").await.assert_status(StatusCode::OK);
        server.get("/readyz").await.assert_status(StatusCode::OK);
    }

    /// Requests and issued tokens are counted, and no token or secret leaks
    /// into the metrics.
    async fn metrics_count_requests_and_tokens(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &[]).await;
        let server = db.start(&[]).await;

        let token = server.access_token(&client).await;
        server.access_token(&client).await;

        let reply = server.get("/metrics").await;
        reply.assert_status(StatusCode::OK);
        let content_type = reply.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("text/plain"),
            "content type {content_type:?}"
        );
        let metrics = &reply.body;
        assert!(
            metrics.contains("gatehouse_http_requests_total"),
            "no gatehouse_http_requests_total:\n{metrics}"
        );
        let issued = sample(
            metrics,
            "gatehouse_tokens_issued_total",
            r#"grant="client_credentials""#,
        );
        assert!(
            issued.is_some_and(|n| n >= 2.0),
            "gatehouse_tokens_issued_total{{grant=\"client_credentials\"}} should count 2, found {issued:?}:\n{metrics}"
        );
        assert!(!metrics.contains(&token), "an access token in /metrics");
        assert!(!metrics.contains(&client.secret), "a client secret in /metrics");
    }

    /// /openapi.json is an OpenAPI 3 document describing the endpoints.
    async fn openapi_describes_the_endpoints(backend) {
        let db = TestDb::new(backend).await;
        let server = db.start(&[]).await;

        let reply = server.get("/openapi.json").await;
        reply.assert_status(StatusCode::OK).assert_json_content_type();
        let doc = reply.json();
        assert!(
            doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
            "openapi version: {}",
            doc["openapi"]
        );
        for path in [
            "/oauth/token",
            "/oauth/jwks",
            "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration",
            "/healthz",
            "/readyz",
        ] {
            assert!(
                doc["paths"].get(path).is_some(),
                "paths lack {path}: {}",
                doc["paths"]
            );
        }
        assert!(
            doc["paths"]["/oauth/token"].get("post").is_some(),
            "POST /oauth/token undescribed"
        );
    }

    /// SIGTERM stops the server cleanly: exit status 0.
    async fn sigterm_shuts_down_gracefully(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &[]).await;
        let server = db.start(&[]).await;
        server.access_token(&client).await;

        let stopped = server.stop_with("TERM").await;
        assert_eq!(
            stopped.status.code(),
            Some(0),
            "exit status after SIGTERM: {stopped:?}"
        );
    }
}

/// SIGINT (Ctrl-C) stops the server cleanly too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_shuts_down_gracefully() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = db.start(&[]).await;
    server.get("/healthz").await.assert_status(StatusCode::OK);

    let stopped = server.stop_with("INT").await;
    assert_eq!(
        stopped.status.code(),
        Some(0),
        "exit status after SIGINT: {stopped:?}"
    );
}

/// A signal sent the moment the server says it listens is already caught: the
/// handlers are in place before the `listening` line, so the exit is the
/// graceful one (status 0), never death by the signal's default action.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_right_after_listening_is_graceful() {
    let db = TestDb::new(Backend::Sqlite).await;
    for (round, signal) in ["TERM", "INT", "TERM", "INT", "TERM"].into_iter().enumerate() {
        let stopped = db.start(&[]).await.stop_with(signal).await;
        assert_eq!(
            stopped.status.code(),
            Some(0),
            "round {round}, SIG{signal}: {stopped:?}"
        );
    }
}

/// Reads from `stream` until the end of an HTTP message head (a blank line).
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.expect("read from the server");
        assert!(
            n == 1,
            "connection closed after {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A request that is being handled when SIGTERM arrives is answered in full
/// before the server exits. `Expect: 100-continue` tells when the handler has
/// started: the server asks for the body only once it reads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_request_finishes_after_sigterm() {
    let deadline = Duration::from_secs(10);
    let db = TestDb::new(Backend::Sqlite).await;
    let client = db.create_client("svc", &[]).await;
    let server = db.start(&[]).await;

    let body = "grant_type=client_credentials";
    let head = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\n\
         Content-Type: {FORM}\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\
         Connection: close\r\n\r\n",
        server.addr(),
        basic_authorization(&client.id, &client.secret),
        body.len()
    );
    let mut stream = TcpStream::connect(server.addr()).await.expect("connect");
    stream
        .write_all(head.as_bytes())
        .await
        .expect("send the request head");
    let interim = tokio::time::timeout(deadline, read_head(&mut stream))
        .await
        .expect("no 100 Continue: the server never started reading the body");
    assert!(
        interim.starts_with("HTTP/1.1 100"),
        "interim response {interim:?}"
    );

    server.signal("TERM");
    stream.write_all(body.as_bytes()).await.expect("send the body");
    let mut response = String::new();
    tokio::time::timeout(deadline, stream.read_to_string(&mut response))
        .await
        .expect("the in-flight request was not answered")
        .expect("read the response");
    assert!(response.starts_with("HTTP/1.1 200"), "response {response:?}");
    assert!(response.contains("access_token"), "response {response:?}");

    let stopped = server.wait_for_exit().await;
    assert_eq!(
        stopped.status.code(),
        Some(0),
        "exit status after SIGTERM: {stopped:?}"
    );
}
