//! Request body at most 16 KiB (413), request heads at most
//! 16 KiB and 100 header fields (431), request and idle timeouts (a slowloris
//! client gets nowhere), and a cap on connections open at once; a cap on
//! connections per source address, and HTTP/2 connections
//! closed for having no request in flight, however often they ping.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;

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
        // A real wait: the timeout under test is one of the network, on the
        // monotonic clock.
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
        // The idle clock starts at the last answer, ~500 ms before `quiet_since`.
        took >= Duration::from_millis(1000) && took < Duration::from_secs(5),
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

/// A connection to `server` from `source`: every 127.0.0.0/8 address is the
/// loopback on Linux, so one test can be several clients.
async fn connect_from(source: &str, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    let source: IpAddr = source.parse().expect("a source address");
    socket
        .bind(SocketAddr::new(source, 0))
        .expect("bind the source address");
    socket.connect(server).await.expect("connect")
}

/// Asks `GET /healthz` on `stream`, keeping it alive: the status line, or
/// `None` when the server closed the connection without an answer.
async fn healthz_status(stream: &mut TcpStream) -> Option<String> {
    // Writing to a connection the server has closed may fail: the read says so.
    let _ = stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("an answer or a close within 5 s");
    match read {
        Ok(0) | Err(_) => None,
        Ok(n) => String::from_utf8_lossy(&buf[..n])
            .lines()
            .next()
            .map(str::to_owned),
    }
}

/// The count of connections refused for the per-address cap, asked from
/// `source` (another address than the one being refused).
async fn refused_connections(server: &TestServer<'_>, source: &str) -> f64 {
    let http = reqwest::Client::builder()
        .no_proxy()
        .local_address(source.parse::<IpAddr>().ok())
        .build()
        .expect("HTTP client");
    let page = http
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("the metrics page");
    page.lines()
        .find_map(|line| line.strip_prefix(r#"gatehouse_connections_refused_total{reason="per_address"} "#))
        .map_or(0.0, |value| value.parse().expect("a number"))
}

const OK: Option<&str> = Some("HTTP/1.1 200 OK");

/// With `--max-connections-per-address 2`, a third connection from one address
/// is closed unanswered while another address is still served; the refusals
/// are counted, logged once, and a closed connection frees its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_every_connection() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = db
        .start(&["--max-connections-per-address", "2", "--idle-timeout", "30"])
        .await;
    let addr = server.addr();

    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = connect_from("127.0.0.1", addr).await;
        assert_eq!(healthz_status(&mut stream).await.as_deref(), OK);
        held.push(stream);
    }
    for _ in 0..3 {
        let mut over = connect_from("127.0.0.1", addr).await;
        assert_eq!(
            healthz_status(&mut over).await,
            None,
            "a connection over the address's cap was served"
        );
    }
    let mut other = connect_from("127.0.0.2", addr).await;
    assert_eq!(healthz_status(&mut other).await.as_deref(), OK, "another address");

    assert_eq!(refused_connections(&server, "127.0.0.3").await, 3.0);
    let warnings = || {
        server
            .logs()
            .matches("connections refused: their address already holds max_connections_per_address")
            .count()
    };
    eventually(Duration::from_secs(5), "the refusal is logged", || async {
        match warnings() {
            0 => Err(server.logs()),
            _ => Ok(()),
        }
    })
    .await;
    assert_eq!(warnings(), 1, "one warning for three refusals");

    // A closed connection gives its place back.
    drop(held.pop());
    eventually(Duration::from_secs(5), "a freed place", || async {
        let mut stream = connect_from("127.0.0.1", addr).await;
        match healthz_status(&mut stream).await {
            Some(status) if status == "HTTP/1.1 200 OK" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

/// Trusted proxies are not held to the per-address cap (their clients are told
/// apart per request); everyone else still is. The cap here comes from the
/// environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_proxies_are_exempt_from_the_per_address_cap() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = db
        .server()
        .args(&["--trusted-proxies", "127.0.0.1", "--idle-timeout", "30"])
        .env("GATEHOUSE_MAX_CONNECTIONS_PER_ADDRESS", "1")
        .start()
        .await;
    let addr = server.addr();

    let mut proxy = Vec::new();
    for _ in 0..3 {
        let mut stream = connect_from("127.0.0.1", addr).await;
        assert_eq!(healthz_status(&mut stream).await.as_deref(), OK, "the proxy");
        proxy.push(stream);
    }
    let mut client = connect_from("127.0.0.2", addr).await;
    assert_eq!(healthz_status(&mut client).await.as_deref(), OK);
    let mut second = connect_from("127.0.0.2", addr).await;
    assert_eq!(
        healthz_status(&mut second).await,
        None,
        "a second connection of a client with a cap of 1"
    );
}

/// An HTTP/2 connection is closed once it has had no request in flight for
/// `idle_timeout`, although the peer pings all along; while it asks, it stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_connections_that_only_ping_are_closed() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = db.start(&["--idle-timeout", "2", "--request-timeout", "5"]).await;
    let mut h2 = RawH2::connect(server.addr()).await;
    let pinger = tokio::spawn({
        let outgoing = h2.outgoing.clone();
        async move {
            while outgoing.send(h2_frame(PING, 0, 0, &[7; 8])).is_ok() {
                // Pings spaced in real time, inside the idle timeout under test.
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    });

    // Requests 500 ms apart for twice the idle timeout: the connection stays.
    let asking_until = Instant::now() + Duration::from_secs(4);
    let mut stream_id = 1;
    while Instant::now() < asking_until {
        h2.get_healthz(stream_id);
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(2), h2.incoming.recv())
                .await
                .expect("an answer within 2 s")
                .expect("the connection of a client that asks stays open");
            assert_ne!(frame.kind, GOAWAY, "GOAWAY to a client that asks");
            if frame.kind == HEADERS && frame.stream_id == stream_id {
                break;
            }
        }
        stream_id += 2;
        // Requests spaced in real time: the connection's idle timeout is what is
        // under test.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Then only PINGs: answered, and the connection closed after 2 s.
    let quiet_since = Instant::now();
    // One deadline for the lot: the answers to the PINGs keep coming until then.
    let deadline = tokio::time::Instant::from_std(quiet_since + Duration::from_secs(10));
    let (mut pongs, mut goaway) = (0, false);
    loop {
        let frame = tokio::time::timeout_at(deadline, h2.incoming.recv())
            .await
            .expect("a connection that only pings is closed within 10 s");
        match frame {
            None => break,
            Some(frame) if frame.kind == PING && frame.flags & ACK != 0 => pongs += 1,
            Some(frame) if frame.kind == GOAWAY => goaway = true,
            Some(_) => {}
        }
    }
    let took = quiet_since.elapsed();
    pinger.abort();
    assert!(goaway, "closed without a GOAWAY");
    assert!(
        pongs >= 3,
        "only {pongs} PINGs answered: the peer was not pinging"
    );
    assert!(
        // The idle clock starts at the last answer, ~500 ms before `quiet_since`.
        took >= Duration::from_millis(1000) && took < Duration::from_secs(5),
        "closed {took:?} after the last request (idle timeout 2 s)"
    );
}

// RFC 9113 §6: the frame types and flags the raw HTTP/2 peer below uses.
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const ACK: u8 = 0x1;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

/// One HTTP/2 frame (RFC 9113 §4.1).
struct H2Frame {
    kind: u8,
    flags: u8,
    stream_id: u32,
}

fn h2_frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).expect("a small payload");
    let mut frame = length.to_be_bytes()[1..].to_vec();
    frame.extend([kind, flags]);
    frame.extend(stream_id.to_be_bytes());
    frame.extend(payload);
    frame
}

/// An HTTP/2 peer on a plain socket (prior knowledge), as bare as an attacker's:
/// it sends what a test puts in `outgoing`, acknowledges the server's SETTINGS
/// and PINGs by itself, and hands every frame it reads to `incoming`, which
/// ends when the server closes the connection.
struct RawH2 {
    outgoing: mpsc::UnboundedSender<Vec<u8>>,
    incoming: mpsc::UnboundedReceiver<H2Frame>,
}

impl RawH2 {
    async fn connect(server: SocketAddr) -> Self {
        let (mut reader, mut writer) = TcpStream::connect(server).await.expect("connect").into_split();
        let (outgoing, mut to_send) = mpsc::unbounded_channel::<Vec<u8>>();
        let (received, incoming) = mpsc::unbounded_channel();
        outgoing
            .send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec())
            .expect("the writer");
        outgoing.send(h2_frame(SETTINGS, 0, 0, &[])).expect("the writer");
        tokio::spawn(async move {
            while let Some(bytes) = to_send.recv().await {
                if writer.write_all(&bytes).await.is_err() {
                    break;
                }
            }
        });
        let acks = outgoing.clone();
        tokio::spawn(async move {
            while let Some((frame, payload)) = read_h2_frame(&mut reader).await {
                if frame.flags & ACK == 0 && frame.kind == SETTINGS {
                    let _ = acks.send(h2_frame(SETTINGS, ACK, 0, &[]));
                }
                if frame.flags & ACK == 0 && frame.kind == PING {
                    let _ = acks.send(h2_frame(PING, ACK, 0, &payload));
                }
                if received.send(frame).is_err() {
                    break;
                }
            }
        });
        RawH2 { outgoing, incoming }
    }

    /// `GET /healthz` on `stream_id`, its head HPACK-encoded by hand (RFC 7541
    /// appendix C.2: indexed `:method GET` and `:scheme http`, literal `:path`
    /// and `:authority` with indexed names).
    fn get_healthz(&self, stream_id: u32) {
        let mut head = vec![0x82, 0x86, 0x04, 8];
        head.extend(b"/healthz");
        head.extend([0x01, 1, b'x']);
        self.outgoing
            .send(h2_frame(HEADERS, END_STREAM | END_HEADERS, stream_id, &head))
            .expect("the writer");
    }
}

/// The next frame and its payload, or `None` once the connection is closed.
async fn read_h2_frame(reader: &mut OwnedReadHalf) -> Option<(H2Frame, Vec<u8>)> {
    let mut header = [0u8; 9];
    reader.read_exact(&mut header).await.ok()?;
    let length = u32::from_be_bytes([0, header[0], header[1], header[2]]);
    let mut payload = vec![0u8; usize::try_from(length).ok()?];
    reader.read_exact(&mut payload).await.ok()?;
    let stream_id = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
    let frame = H2Frame {
        kind: header[3],
        flags: header[4],
        stream_id,
    };
    Some((frame, payload))
}
