//! A claimed client id (in the form body or in Basic) cannot
//! forge a log line, pass for another field, or reach a terminal as a control
//! sequence, in the text log and in the JSON log. Ids with CR, LF or ESC are
//! refused before they are logged (they are no valid client id); ids with
//! spaces, quotes, `=` and backslashes are valid (RFC 6749 appendix A.1) and
//! are logged: the text format quotes and escapes them.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

/// Claimed client ids that try to end the audit line and write another one,
/// and to drive the terminal of whoever reads the log.
const CONTROL: [&str; 3] = [
    "x\r\n1999-01-01T00:00:00.000000Z  INFO gatehouse::audit: event=token_issued client_id=forged-crlf grant=client_credentials",
    "y\n1999-01-01T00:00:00.000000Z  INFO gatehouse::audit: event=token_issued client_id=forged-lf",
    "z\u{1b}[2K\u{1b}[1A\u{1b}[31mforged-esc\u{1b}]0;title\u{7}",
];

/// Valid claimed client ids that try to pass for other fields of the audit
/// line, and how the text log must write each.
const IMPERSONATIONS: [(&str, &str); 3] = [
    (
        "svc grant=password event=token_issued scope=admin",
        r#"client_id="svc grant=password event=token_issued scope=admin" "#,
    ),
    (r#"a" client_id="b"#, r#"client_id="a\" client_id=\"b" "#),
    (r#"c\" d=e\"#, r#"client_id="c\\\" d=e\\" "#),
];

/// Sends every claimed id, in the body and in Basic; each is an unknown
/// client, refused with 401. Then one real grant.
async fn send_claimed_ids(server: &TestServer<'_>, client: &TestClient) {
    for id in CONTROL.into_iter().chain(IMPERSONATIONS.map(|(id, _)| id)) {
        for auth in [
            ClientAuth::Post(id.into(), "some-secret-value".into()),
            ClientAuth::basic(id, "some-secret-value"),
        ] {
            let reply = server
                .token_form(&auth, &[("grant_type", "client_credentials")])
                .await;
            reply.assert_token_error(StatusCode::UNAUTHORIZED, "invalid_client");
        }
    }
    server.access_token(client).await;
}

backend_tests! {
    /// The text log: one line per event, no forged line, no raw ESC, CR or
    /// BEL; each logged id one quoted field, escaped.
    async fn text_log_escapes_request_values(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &["--scope", "read"]).await;
        let server = db.start(&[]).await;
        send_claimed_ids(&server, &client).await;
        let log = server.stop_with("TERM").await.logs;

        // The harness strips ANSI sequences from what it reads, and so would
        // hide a raw ESC followed by `[`; the BEL and CR would remain.
        for forbidden in ['\u{1b}', '\r', '\u{7}'] {
            assert!(!log.contains(forbidden), "a raw {forbidden:?} in the log:\n{log}");
        }
        assert!(!log.contains("0;title"), "the remains of a raw OSC sequence:\n{log}");
        assert!(!log.lines().any(|l| l.starts_with("1999-")), "a forged line:\n{log}");
        for line in log.lines() {
            assert!(line.starts_with("20"), "a line that is no log line: {line:?}\n{log}");
        }
        // The only token_issued event is the real one.
        let issued: Vec<&str> = log.lines().filter(|l| l.contains(": event=token_issued ")).collect();
        assert_eq!(issued.len(), 1, "{log}");
        assert!(issued[0].contains(&format!("client_id={} ", client.id)), "{}", issued[0]);
        let refused: Vec<&str> = log.lines().filter(|l| l.contains(": event=token_refused ")).collect();
        for (id, written) in IMPERSONATIONS {
            let lines: Vec<&&str> = refused.iter().filter(|l| l.contains(written)).collect();
            assert_eq!(lines.len(), 2, "{id:?} is not written as {written} on two lines:\n{log}");
            for line in lines {
                assert!(line.ends_with(" grant=client_credentials error=invalid_client address=127.0.0.1"), "{line}");
            }
        }
    }

    /// The JSON log: every line one JSON object, and the audit events carry
    /// the claimed ids exactly as they were sent.
    async fn json_log_escapes_request_values(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &["--scope", "read"]).await;
        let server = db.start(&["--log-format", "json"]).await;
        send_claimed_ids(&server, &client).await;
        let log = server.stop_with("TERM").await.logs;

        let events: Vec<Value> = log
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}")))
            .collect();
        for forbidden in ['\u{1b}', '\r', '\u{7}'] {
            assert!(!log.contains(forbidden), "a raw {forbidden:?} in the log:\n{log}");
        }
        for id in CONTROL {
            assert!(
                events.iter().all(|e| e["client_id"] != id),
                "{id:?} was logged, though no client can have it:\n{log}"
            );
        }
        for (id, _) in IMPERSONATIONS {
            let refused = events
                .iter()
                .filter(|e| e["event"] == "token_refused" && e["client_id"] == id && e["grant"] == "client_credentials")
                .count();
            assert_eq!(refused, 2, "{id:?} not audited twice as sent:\n{log}");
        }
        let issued: Vec<&Value> = events.iter().filter(|e| e["event"] == "token_issued").collect();
        assert_eq!(issued.len(), 1, "{log}");
        assert_eq!(issued[0]["client_id"], client.id.as_str());
    }
}
