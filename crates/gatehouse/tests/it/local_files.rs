//! The files gatehouse keeps on disk hold secrets, and only their owner may open
//! them (`docs/security.md`, files on disk): the master key file (never reached
//! through a symbolic link, refused when group or others may open it), the file
//! `master_key_file` names, and the SQLite database with its `-wal` and `-shm`
//! files (0600).

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::helpers::*;

/// How long a `serve` that must refuse to start may take to say so.
const REFUSAL_DEADLINE: Duration = Duration::from_secs(30);

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{} ({e})", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {} ({e})", path.display()));
}

/// A file in the test's directory holding a new master key in base64 (with the
/// line break `echo` adds), with mode `mode`; returns the path and the key.
fn write_key_file(db: &TestDb, name: &str, mode: u32) -> (PathBuf, String) {
    let key = random_master_key();
    let path = db.dir().join(name);
    std::fs::write(&path, format!("{key}\n")).expect("write the key file");
    chmod(&path, mode);
    (path, key)
}

/// Asserts that `serve` with `args` (and the database's connection args) stops at
/// once with status 2 and one line naming `key`, which contains `expected`.
async fn assert_serve_refuses(db: &TestDb, args: &[&str], key: &str, expected: &str) {
    let out = db
        .server()
        .args(args)
        .run_to_exit(REFUSAL_DEADLINE)
        .await
        .unwrap_or_else(|e| panic!("serve {args:?} started anyway: {e}"));
    assert_one_line(&out, key, expected);
}

fn assert_one_line(out: &CliOutput, key: &str, expected: &str) {
    if let Some(problem) = out.one_line_error_problem(2, &[key]) {
        panic!("{problem}\n{out:#?}");
    }
    assert!(out.stderr.contains(expected), "no {expected:?} in {out:#?}");
    assert!(!out.stderr.contains("panicked"), "{out:#?}");
}

/// A dangling symbolic link at the master key path made `serve` and `keys
/// rotate` overflow their stack (exit 134): the read said "not found", the
/// create said "exists", and it retried forever. Now a link there is refused
/// with one line, and nothing is created at its target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_at_the_master_key_path_is_one_line_and_status_2() {
    let db = TestDb::new(Backend::Sqlite).await;
    let target = db.dir().join("elsewhere.key");
    std::os::unix::fs::symlink(&target, db.dir().join("gatehouse.master.key")).expect("symlink");

    assert_serve_refuses(&db, &[], "master_key", "symbolic link").await;
    let out = db.cli(&["keys", "rotate"]).await;
    assert_one_line(&out, "master_key", "symbolic link");
    assert!(!target.exists(), "a key was written through the link");

    // A link to a real key file is refused too: master_key_file is for that.
    write_key_file(&db, "elsewhere.key", 0o600);
    assert_serve_refuses(&db, &[], "master_key", "master_key_file").await;
}

/// The key file beside the database, made readable by others, is refused like an
/// SSH private key: one line naming master_key, the mode, and the chmod that fixes
/// it. Made private again, it works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_master_key_file_is_refused_with_the_fix() {
    let db = TestDb::new(Backend::Sqlite).await;
    let client = db.create_client("svc", &[]).await;
    let (key_file, _) = write_key_file(&db, "gatehouse.master.key", 0o644);

    assert_serve_refuses(&db, &[], "master_key", "chmod 600").await;
    let out = db.cli(&["keys", "rotate"]).await;
    assert_one_line(&out, "master_key", "0644");

    chmod(&key_file, 0o640);
    assert_serve_refuses(&db, &[], "master_key", "0640").await;

    chmod(&key_file, 0o600);
    let server = db.start(&[]).await;
    server.access_token(&client).await;
}

/// SQLite files hold password hashes, imported-secret hashes and token digests:
/// the database and the `-wal` and `-shm` files SQLite makes beside it are 0600,
/// checked while a server runs and after it has written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_files_are_private() {
    let db = TestDb::new(Backend::Sqlite).await;
    let path = db.sqlite_path().expect("SQLite");
    let client = db.create_client("svc", &[]).await;
    db.create_user("alice", PASSWORD, None).await;
    let server = db.start(&[]).await;
    for _ in 0..3 {
        server.access_token(&client).await;
    }
    db.create_client("another", &[]).await;

    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        assert!(file.exists(), "{} is missing", file.display());
        assert_eq!(mode(&file), 0o600, "mode of {}", file.display());
    }
}

/// A database an older version left readable by others (SQLite's 0644) is
/// tightened to 0600 on start, with a warning that says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_database_is_tightened_with_a_warning() {
    let db = TestDb::new(Backend::Sqlite).await;
    let path = db.sqlite_path().expect("SQLite");
    let client = db.create_client("svc", &[]).await;
    chmod(&path, 0o644);

    let server = db.start(&[]).await;
    server.access_token(&client).await;
    assert_eq!(mode(&path), 0o600);
    let logs = server.logs();
    assert!(
        logs.lines()
            .any(|line| line.contains("WARN") && line.contains("tightened to 0600")),
        "no warning:\n{logs}"
    );
}

backend_tests! {
    /// `master_key_file` (flag, variable) names a file holding the key, keeping it
    /// off command lines; on SQLite no key file is made beside the database, and
    /// the key is the one in the file.
    async fn master_key_file_serves(backend) {
        let db = TestDb::new(backend).await;
        let client = db.create_client("svc", &[]).await;
        let (key_file, key) = write_key_file(&db, "master.key", 0o600);
        let key_file = key_file.to_str().expect("UTF-8 path");
        let with_key_file = |db| {
            ServerBuilder::new(db)
                .bare()
                .args(&["--listen", "127.0.0.1:0", "--database-url", db.url()])
        };

        let server = with_key_file(&db).args(&["--master-key-file", key_file]).start().await;
        server.access_token(&client).await;
        drop(server);
        assert!(
            !db.dir().join("gatehouse.master.key").exists(),
            "a key file was made beside the database"
        );

        let server = with_key_file(&db)
            .env("GATEHOUSE_MASTER_KEY_FILE", key_file)
            .start()
            .await;
        server.access_token(&client).await;
        drop(server);

        // The signing keys were sealed with the key in the file.
        let server = with_key_file(&db).args(&["--master-key", &key]).start().await;
        server.access_token(&client).await;
    }

    /// A `master_key_file` that group or others may open is refused, as are a
    /// missing one and one given together with `master_key`.
    async fn master_key_file_must_be_private_and_alone(backend) {
        let db = TestDb::new(backend).await;
        let (key_file, key) = write_key_file(&db, "master.key", 0o644);
        let key_file = key_file.to_str().expect("UTF-8 path");
        let serve = |args: Vec<&str>| {
            let mut all = vec!["--listen", "127.0.0.1:0", "--database-url", db.url()];
            all.extend(args);
            db.server().bare().args(&all).run_to_exit(REFUSAL_DEADLINE)
        };

        let out = serve(vec!["--master-key-file", key_file]).await.expect("refused");
        assert_one_line(&out, "master_key_file", "chmod 600");

        let missing = db.dir().join("missing.key");
        let out = serve(vec!["--master-key-file", missing.to_str().unwrap()]).await.expect("refused");
        assert_one_line(&out, "master_key_file", "missing.key");
        assert!(!missing.exists(), "master_key_file was created");

        chmod(Path::new(key_file), 0o600);
        let out = serve(vec!["--master-key-file", key_file, "--master-key", &key]).await.expect("refused");
        assert_one_line(&out, "master_key_file", "master_key");
    }
}
