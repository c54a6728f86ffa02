//! Issue 6 point 2: request body at most 16 KiB (413), request heads at most
//! 16 KiB and 100 header fields (431), request and idle timeouts (a slowloris
//! client gets nowhere), and a cap on connections open at once.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Reads whatever the server sends until it closes the connection (or 10 s
/// pass); returns it with the time it took.
async fn read_until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let start = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "the connection is still open after 10 s: {:?}",
                String::from_utf8_lossy(&answer)
            ),
        }
    }
    (String::from_utf8_lossy(&answer).into_owned(), start.elapsed())
}

/// The request body is at most 16 KiB on the OAuth endpoints: 413 with the
/// OAuth error JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_16_kib_are_413() {
    let db = TestDb::new(Backend::Sqlite).await;
    let client = db.create_client("svc", &[]).await;
    let server = db.start(&[]).await;
    let padding = "a".repeat(16 * 1024);
    for path in ["/oauth/token", "/oauth/revoke", "/oauth/introspect"] {
        let body = form_body(&[
            ("grant_type", "client_credentials"),
            ("token", "x"),
            ("padding", padding.as_str()),
        ]);
        let reply = server
            .post_raw(path, Some(FORM), client.basic().header().as_deref(), body)
            .await;
        let problems = reply.error_problems(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request", true);
        assert!(problems.is_empty(), "{path}: {}: {reply:?}", problems.join("; "));
    }
    // Just under the limit is read (and refused for what it says, not its size).
    let body = form_body(&[
        ("grant_type", "client_credentials"),
        ("padding", &"a".repeat(15 * 1024)),
    ]);
    let reply = server
        .post_raw(
            "/oauth/token",
            Some(FORM),
            client.basic().header().as_deref(),
            body,
        )
        .await;
    reply.access_token();
}

/// Request heads over 16 KiB, or with more than 100 fields: 431.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_or_numerous_headers_are_431() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = db.start(&[]).await;
    let http = server.http();

    let reply = http
        .get(server.url("/healthz"))
        .header("x-padding", "a".repeat(20 * 1024))
        .send()
        .await
        .expect("an answer");
    assert_eq!(reply.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);

    let mut request = http.get(server.url("/healthz"));
    for i in 0..100 {
        request = request.header(format!("x-header-{i}"), "v");
    }
    let reply = request.send().await.expect("an answer");
    assert_eq!(reply.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);

    // A 6 KB header is fine: it reaches the endpoint (here, a failed Basic login).
    let reply = server
        .post_raw(
            "/oauth/token",
            Some(FORM),
            Some(&format!("Basic {}", "A".repeat(6000))),
            "grant_type=client_credentials",
        )
        .await;
    reply.assert_basic_challenge();
    // The server still answers.
    server.get("/healthz").await.assert_status(StatusCode::OK);
}

/// A client that sends its head or its body slowly, or nothing at all, is cut
/// off: headers within `request_timeout`, a whole request within it too (408),
/// and silence for `idle_timeout` closes the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_silent_clients_are_cut_off() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = db.start(&["--request-timeout", "1", "--idle-timeout", "2"]).await;

    // Slowloris: a head that never ends.
    let mut slow = TcpStream::connect(server.addr()).await.expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Each header arrives in time, the head as a whole does not.
        let _ = slow.write_all(b"X-Slow: 1\r\n").await;
    }
    let (_, took) = read_until_closed(&mut slow).await;
    assert!(
        took < Duration::from_secs(3),
        "a slow head kept the connection {took:?}"
    );

    // A body that trickles in: 408 with the OAuth JSON.
    let mut trickle = TcpStream::connect(server.addr()).await.expect("connect");
    trickle
        .write_all(
            b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant",
        )
        .await
        .expect("write");
    let started = Instant::now();
    let mut answer = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), trickle.read(&mut answer))
        .await
        .expect("an answer within 5 s")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""error":"invalid_request""#), "{answer}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "408 before the timeout"
    );

    // Silence: the idle connection is closed (HTTP/1.1 also by the head timeout).
    let mut silent = TcpStream::connect(server.addr()).await.expect("connect");
    let (answer, took) = read_until_closed(&mut silent).await;
    assert!(
        took < Duration::from_secs(4),
        "a silent connection stayed {took:?}"
    );
    assert!(!answer.contains("200"), "{answer}");

    // HTTP/2 has no head timeout: an idle HTTP/2 connection is closed by the idle
    // timeout (2 s) alone.
    let mut h2 = TcpStream::connect(server.addr()).await.expect("connect");
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .expect("preface");
    h2.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0])
        .await
        .expect("SETTINGS");
    let (_, took) = read_until_closed(&mut h2).await;
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(5),
        "an idle HTTP/2 connection closed after {took:?} (idle timeout 2 s)"
    );

    // A kept-alive connection that goes quiet after a request is closed too.
    let mut kept = TcpStream::connect(server.addr()).await.expect("connect");
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let (answer, took) = read_until_closed(&mut kept).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        took < Duration::from_secs(4),
        "an idle kept-alive connection stayed {took:?}"
    );
}

/// With `--max-connections 2`, a third connection waits until one of the two
/// closes; the server keeps serving throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = db
        .start(&["--max-connections", "2", "--idle-timeout", "30"])
        .await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

    let mut first = TcpStream::connect(server.addr()).await.expect("connect");
    let mut second = TcpStream::connect(server.addr()).await.expect("connect");
    for stream in [&mut first, &mut second] {
        stream.write_all(request).await.expect("write");
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).await.expect("read");
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
    // Both are kept alive, holding the two places.
    let mut third = TcpStream::connect(server.addr())
        .await
        .expect("the kernel queues it");
    third.write_all(request).await.expect("write");
    let mut buf = [0u8; 512];
    let early = tokio::time::timeout(Duration::from_millis(700), third.read(&mut buf)).await;
    assert!(early.is_err(), "a third connection was served beyond the cap");
    drop(first);
    let n = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf))
        .await
        .expect("served once a place is free")
        .expect("read");
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
}
