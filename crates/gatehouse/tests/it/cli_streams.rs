//! The admin commands' standard streams: output to a reader
//! that went away ends quietly, and secrets come in on standard input, never on the
//! command line, where every user of the machine sees them in the process list.

use std::os::unix::process::ExitStatusExt as _;

use serde_json::json;

use crate::helpers::*;

/// Runs `gatehouse ARGS` on `db` with its standard output a pipe whose reading
/// end is closed before the command starts: its first write fails with EPIPE.
async fn run_with_closed_stdout(db: &TestDb, args: &[&str]) -> CliOutput {
    let mut cmd = db.command();
    cmd.args(args).args(db.connection_args());
    let mut child = cmd.spawn().expect("spawn gatehouse");
    drop(child.stdout.take());
    let output = tokio::time::timeout(PROCESS_DEADLINE, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("gatehouse {args:?} did not exit"))
        .expect("wait for gatehouse");
    CliOutput {
        status: output.status,
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `gatehouse client list | head` panicked on the broken pipe. Every command that
/// prints now ends quietly: status 0 (or death by SIGPIPE, as `ls` does), nothing
/// on stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_ends_every_printing_command_quietly() {
    let db = TestDb::new(Backend::Sqlite).await;
    for n in 0..5 {
        db.create_client(&format!("client {n}"), &["--client-id", &format!("c{n}")])
            .await;
    }
    db.create_user("alice", PASSWORD, None).await;

    let commands: &[&[&str]] = &[
        &["client", "list"],
        &["client", "list", "--json"],
        &["client", "show", "c1"],
        &["client", "create", "--name", "piped"],
        &["client", "rotate-secret", "c2", "--json"],
        &["client", "delete", "c3"],
        &["user", "list"],
        &["user", "list", "--json"],
        &["user", "disable", "alice"],
        &["keys", "rotate"],
        &["token", "revoke", "not-a-token"],
        &["migrate", "--json"],
    ];
    for args in commands {
        let out = run_with_closed_stdout(&db, args).await;
        let quiet_exit = out.status.code() == Some(0) || out.status.signal() == Some(13);
        assert!(
            quiet_exit && out.stderr.trim().is_empty(),
            "gatehouse {args:?} with a closed stdout: {out:#?}"
        );
    }
    // The work was done even though nobody read about it.
    let listed = db.cli_json(&["client", "list"]).await;
    let ids: Vec<&str> = listed["clients"]
        .as_array()
        .expect("clients")
        .iter()
        .filter_map(|c| c["client_id"].as_str())
        .collect();
    assert!(!ids.contains(&"c3"), "client c3 was not deleted: {listed}");
    assert_eq!(ids.len(), 5, "{listed}");
}

backend_tests! {
    /// `token revoke --token-stdin` reads the token from standard input (one
    /// trailing line break dropped): the revoked token is then inactive, and the
    /// help says to prefer this form.
    async fn token_revoke_reads_the_token_from_stdin(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &[]).await;
        let opaque = db.create_client("opaque", &["--token-format", "opaque"]).await;
        let server = db.start(&[]).await;
        let jwt = server.access_token(&client).await;
        let opaque_token = server.access_token(&opaque).await;
        let untouched = server.access_token(&client).await;

        for token in [&jwt, &opaque_token] {
            let out = db
                .cli_with_stdin(&["token", "revoke", "--token-stdin", "--json"], Some(&format!("{token}\n")))
                .await;
            assert_eq!(out.json(), json!({"revoked": true}), "{out:#?}");
            assert!(!out.stdout.contains(token.as_str()), "{out:#?}");
        }
        eventually(PROPAGATION_DEADLINE, "the revoked tokens are inactive", || async {
            let active = (
                server.is_active(&client, &jwt).await,
                server.is_active(&opaque, &opaque_token).await,
            );
            (active == (false, false)).then_some(()).ok_or(format!("{active:?}"))
        })
        .await;
        assert!(server.is_active(&client, &untouched).await);

        // The token comes one way only; an empty one is a usage error.
        let both = db
            .cli_with_stdin(&["token", "revoke", "--token-stdin", &untouched], Some(&untouched))
            .await;
        assert_eq!(both.code(), Some(2), "{both:#?}");
        let empty = db.cli_with_stdin(&["token", "revoke", "--token-stdin"], Some("\n")).await;
        assert_eq!(empty.code(), Some(2), "{empty:#?}");
        assert!(server.is_active(&client, &untouched).await);

        let help = db.cli(&["token", "revoke", "--help"]).await;
        assert!(help.stdout.contains("--token-stdin"), "{help:#?}");
        let help = db.cli(&["serve", "--help"]).await;
        assert!(help.stdout.contains("--master-key-file"), "{help:#?}");
        assert!(help.stdout.contains("GATEHOUSE_MASTER_KEY_FILE"), "{help:#?}");
    }
}
