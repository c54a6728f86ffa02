//! Output that is not a terminal carries no ANSI escape codes: the server's log
//! read through a pipe (where logs usually go: a file, journald, a collector) and
//! the admin commands' output and errors. The harness strips escape codes from the
//! lines it keeps, so this test reads the server's stderr itself, byte for byte.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::oneshot;

use crate::helpers::*;

/// The start of every ANSI control sequence a logger or a CLI colours with.
const CSI: &str = "\u{1b}[";

/// Runs `serve` with stderr on a pipe and `NO_COLOR` unset (so that only the
/// terminal check can keep the colours off), makes it log at every level it
/// uses for requests (an issued token, a refused one, a warning), stops it, and
/// returns all it wrote to stderr.
async fn raw_server_log(db: &TestDb, client: &TestClient) -> String {
    let mut command = db.command();
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(db.connection_args())
        .env("GATEHOUSE_LOG", "debug")
        .env_remove("NO_COLOR");
    let mut child = command.spawn().expect("spawn gatehouse serve");
    let stderr = child.stderr.take().expect("stderr");
    let raw = Arc::new(Mutex::new(Vec::new()));
    let (addr_tx, addr_rx) = oneshot::channel();
    let reader = tokio::spawn({
        let raw = raw.clone();
        async move {
            let mut lines = BufReader::new(stderr);
            let mut addr_tx = Some(addr_tx);
            let mut line = Vec::new();
            while lines.read_until(b'\n', &mut line).await.is_ok_and(|n| n > 0) {
                let text = String::from_utf8_lossy(&line);
                if let Some(addr) = text
                    .contains("listening")
                    .then(|| listening_port(&text))
                    .flatten()
                {
                    if let Some(tx) = addr_tx.take() {
                        let _ = tx.send(addr);
                    }
                }
                raw.lock().unwrap().extend_from_slice(&line);
                line.clear();
            }
        }
    });
    let port = tokio::time::timeout(PROCESS_DEADLINE, addr_rx)
        .await
        .expect("a listening line within the deadline")
        .unwrap_or_else(|_| {
            panic!(
                "the server stopped first:\n{}",
                String::from_utf8_lossy(&raw.lock().unwrap())
            )
        });

    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("HTTP client");
    let token_url = format!("http://127.0.0.1:{port}/oauth/token");
    for secret in [client.secret.as_str(), "a wrong secret"] {
        http.post(&token_url)
            .header("authorization", basic_authorization(&client.id, secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .expect("token request");
    }
    // A credential in the query string: refused, and logged as a warning.
    http.post(format!("{token_url}?client_secret=x"))
        .send()
        .await
        .expect("token request with a query");

    let pid = child.id().expect("server still running");
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -TERM {pid} failed");
    tokio::time::timeout(PROCESS_DEADLINE, child.wait())
        .await
        .expect("the server stops on SIGTERM")
        .expect("wait for the server");
    tokio::time::timeout(PROCESS_DEADLINE, reader)
        .await
        .expect("stderr closes at exit")
        .expect("the reader task");
    let bytes = raw.lock().unwrap().clone();
    String::from_utf8(bytes).expect("a UTF-8 log")
}

/// The port of a text `listening addr=127.0.0.1:PORT` line.
fn listening_port(line: &str) -> Option<u16> {
    let addr = line.split("addr=").nth(1)?;
    let port: String = addr
        .split(':')
        .nth(1)?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    port.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_through_a_pipe_has_no_colours() {
    let db = TestDb::new(Backend::Sqlite).await;
    let client = db.create_client("svc", &["--scope", "read"]).await;
    let log = raw_server_log(&db, &client).await;
    for event in ["event=token_issued", "event=token_refused", " WARN "] {
        assert!(log.contains(event), "no {event:?} in the log:\n{log}");
    }
    assert!(
        !log.contains(CSI),
        "an ANSI escape code in the piped log:\n{log:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_output_through_a_pipe_has_no_colours() {
    let db = TestDb::new(Backend::Sqlite).await;
    db.create_client("svc", &["--scope", "read"]).await;
    let mut outputs = vec![db.cli(&["client", "list"]).await];
    // Usage errors and help, which the argument parser colours on a terminal.
    for args in [
        &["client", "create", "--no-such-flag"][..],
        &["client", "create", "--help"],
    ] {
        let mut command = db.command();
        command.args(args).env_remove("NO_COLOR");
        outputs.push(run_to_exit(command, None, PROCESS_DEADLINE).await.expect("exits"));
    }
    for output in &outputs {
        assert!(
            !output.stdout.is_empty() || !output.stderr.is_empty(),
            "{output:?}"
        );
        assert!(
            !output.stdout.contains(CSI) && !output.stderr.contains(CSI),
            "an ANSI escape code in piped output: {output:?}"
        );
    }
}
