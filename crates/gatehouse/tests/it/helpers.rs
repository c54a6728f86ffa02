//! The harness every integration test stands on.
//!
//! A test gets a fresh database ([`TestDb`]: a SQLite file in its own temporary
//! directory, or a fresh PostgreSQL database created for it and dropped after),
//! runs the real `gatehouse` binary against it ([`TestServer`], listening on
//! `127.0.0.1:0`, its log kept line by line), drives the admin CLI on the same
//! database ([`TestDb::cli`]) and talks HTTP to the server ([`Reply`] keeps
//! status, headers and body for the assertions). Nothing here sleeps for
//! ordering: whatever must happen "within N seconds" is polled with a deadline
//! ([`eventually`]). Nothing waits for time to pass either: a test of expiry or
//! lockout runs the server in-process on a clock it moves ([`TestDb::start_on`]).
//!
//! Tests import everything with `use crate::helpers::*`, which brings the
//! server and HTTP helpers along.

/// The password of the test users.
pub const PASSWORD: &str = "correct horse battery";

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

pub use crate::http::*;
pub use crate::server::*;

/// The server binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

/// Names the PostgreSQL server the PostgreSQL variants run on.
pub const PG_URL_VAR: &str = "GATEHOUSE_TEST_DATABASE_URL";

/// Admin changes reach running servers within 5 seconds (`docs/protocol.md`, Commands).
pub const PROPAGATION_DEADLINE: Duration = Duration::from_secs(5);

/// How long any `gatehouse` process may take to exit when it should.
pub const PROCESS_DEADLINE: Duration = Duration::from_secs(30);

/// Writes each test once for both storage backends: `backend_tests! { async fn
/// name(backend) { ... } }` makes a module `name` with the tests `sqlite` and
/// `postgres`, so `cargo test -p gatehouse --test it postgres` selects one
/// backend. The PostgreSQL variant says it was skipped when
/// `GATEHOUSE_TEST_DATABASE_URL` is not set.
macro_rules! backend_tests {
    ($($(#[$meta:meta])* async fn $name:ident($backend:ident) $body:block)*) => {
        $(
            $(#[$meta])*
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn run($backend: $crate::helpers::Backend) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    run($crate::helpers::Backend::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if $crate::helpers::Backend::Postgres.skipped() {
                        return;
                    }
                    run($crate::helpers::Backend::Postgres).await
                }
            }
        )*
    };
}

/// Where a test's data lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// True (and says so on stdout) when this backend cannot run here.
    pub fn skipped(self) -> bool {
        if self == Backend::Postgres && postgres_admin_url().is_none() {
            println!("skipped: {PG_URL_VAR} is not set");
            return true;
        }
        false
    }
}

fn postgres_admin_url() -> Option<String> {
    std::env::var(PG_URL_VAR)
        .ok()
        .filter(|url| !url.trim().is_empty())
}

/// `n` bytes from the operating system's random source.
pub fn random_bytes(n: usize) -> Vec<u8> {
    use std::io::Read as _;
    let mut bytes = vec![0; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    bytes
}

/// `prefix` and 256 random bits in unpadded base64url: the form of the
/// server's opaque tokens, but one it never issued.
pub fn random_token(prefix: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(random_bytes(32)))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A 32-byte master key, base64, as `--master-key` takes it.
pub fn random_master_key() -> String {
    BASE64.encode(random_bytes(32))
}

/// The output of one finished `gatehouse` process.
#[derive(Debug)]
pub struct CliOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Asserts exit status 0 and parses stdout as one JSON object.
    pub fn json(&self) -> Value {
        assert!(self.status.success(), "command failed: {self:#?}");
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}): {self:#?}"))
    }

    /// The non-empty lines of stderr.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|line| !line.trim().is_empty())
            .collect()
    }

    /// What is wrong with this output as a usage/config failure
    /// (`docs/configuration.md`): exit status `code` and exactly one non-empty line on stderr,
    /// naming one of `keys`.
    pub fn one_line_error_problem(&self, code: i32, keys: &[&str]) -> Option<String> {
        let lines = self.stderr_lines();
        if self.code() != Some(code) {
            Some(format!(
                "exit status {:?} (want {code}), stderr {:?}",
                self.code(),
                self.stderr
            ))
        } else if lines.len() != 1 {
            Some(format!(
                "{} lines on stderr (want 1): {:?}",
                lines.len(),
                self.stderr
            ))
        } else if !keys.iter().any(|key| lines[0].contains(key)) {
            Some(format!("the line does not name {keys:?}: {:?}", lines[0]))
        } else {
            None
        }
    }
}

/// A client as `client create --json` printed it.
#[derive(Clone, Debug)]
pub struct TestClient {
    pub id: String,
    pub secret: String,
    pub created: Value,
}

impl TestClient {
    pub fn basic(&self) -> ClientAuth {
        ClientAuth::Basic(self.id.clone(), self.secret.clone())
    }

    pub fn post(&self) -> ClientAuth {
        ClientAuth::Post(self.id.clone(), self.secret.clone())
    }
}

/// A user as `user create --json` printed it, and the password it was given.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: String,
    pub username: String,
    pub password: String,
    pub created: Value,
}

/// The string member `name` of a JSON object.
pub fn json_str(object: &Value, name: &str) -> String {
    object[name]
        .as_str()
        .unwrap_or_else(|| panic!("no string {name} in {object}"))
        .to_string()
}

/// The part of a token that must not appear anywhere: for opaque tokens the
/// random part after the prefix, for JWTs the signature.
pub fn secret_part(token: &str) -> &str {
    if let Some(random) = token.strip_prefix("ghr_").or_else(|| token.strip_prefix("gho_")) {
        random
    } else if token.matches('.').count() == 2 {
        token.rsplit('.').next().expect("JWS")
    } else {
        token
    }
}

/// Asserts that `log` holds none of `secrets` (tokens by their [`secret_part`]),
/// nor their form-encoding, as a query string would carry them.
pub fn assert_log_holds_none(log: &str, secrets: &[String]) {
    assert!(log.contains("listening"), "the log was not captured:\n{log}");
    for secret in secrets {
        let part = secret_part(secret);
        for form in [part.to_string(), form_urlencode(part)] {
            assert!(!log.contains(&form), "{secret:?} is in the log:\n{log}");
        }
    }
}

/// Whether `needle` occurs in `haystack`.
pub fn bytes_contain(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// A connection to a test's database ([`TestDb::connect`]).
pub enum DbConn {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl DbConn {
    /// The one integer a query like `SELECT COUNT(*) ...` returns; `$1`, if
    /// the query has it, is `param`.
    pub async fn scalar(&mut self, sql: &str, param: Option<i64>) -> i64 {
        let result = match self {
            DbConn::Sqlite(conn) => {
                let sql = sql.replace("$1", "?1");
                let mut query = sqlx::query_scalar::<sqlx::Sqlite, i64>(&sql);
                if let Some(param) = param {
                    query = query.bind(param);
                }
                query.fetch_one(conn).await
            }
            DbConn::Postgres(conn) => {
                let mut query = sqlx::query_scalar::<sqlx::Postgres, i64>(sql);
                if let Some(param) = param {
                    query = query.bind(param);
                }
                query.fetch_one(conn).await
            }
        };
        result.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// `SELECT COUNT(*) FROM table`.
    pub async fn count(&mut self, table: &str) -> i64 {
        self.scalar(&format!("SELECT COUNT(*) FROM {table}"), None).await
    }
}

/// Retries `attempt` until it returns `Ok` or `deadline` has passed, then
/// fails the test with the last error it returned.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(last) if start.elapsed() >= deadline => {
                panic!("{what}: not within {deadline:?}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// A PostgreSQL database made for one test, dropped when the test ends.
struct PgDatabase {
    admin_url: String,
    name: String,
}

impl PgDatabase {
    async fn create(admin_url: &str) -> (PgDatabase, String) {
        use sqlx::Connection as _;
        let name = format!("gh_{}", hex(&random_bytes(8)));
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .unwrap_or_else(|e| panic!("connect to {PG_URL_VAR}: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("CREATE DATABASE");
        conn.close().await.ok();
        let mut url = reqwest::Url::parse(admin_url).expect("parse the PostgreSQL URL");
        url.set_path(&format!("/{name}"));
        let db = PgDatabase {
            admin_url: admin_url.to_string(),
            name,
        };
        (db, url.to_string())
    }

    async fn drop_database(admin_url: &str, name: &str) -> Result<(), sqlx::Error> {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(admin_url).await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await?;
        conn.close().await
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Best effort, on a runtime of its own: Drop cannot await.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(PgDatabase::drop_database(&admin_url, &name))
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

/// A fresh, empty database for one test, and a temporary directory that is
/// the working directory of every process the test starts.
pub struct TestDb {
    backend: Backend,
    url: String,
    master_key: Option<String>,
    pg: Option<PgDatabase>,
    dir: TempDir,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        match backend {
            Backend::Sqlite => {
                let path = dir.path().join("gatehouse.db");
                TestDb {
                    backend,
                    url: format!("sqlite://{}", path.display()),
                    master_key: None,
                    pg: None,
                    dir,
                }
            }
            Backend::Postgres => {
                let admin_url = postgres_admin_url()
                    .unwrap_or_else(|| panic!("{PG_URL_VAR} is needed for PostgreSQL tests"));
                let (pg, url) = PgDatabase::create(&admin_url).await;
                TestDb {
                    backend,
                    url,
                    master_key: Some(random_master_key()),
                    pg: Some(pg),
                    dir,
                }
            }
        }
    }

    /// A fresh database on the PostgreSQL server at `admin_url` (a private one,
    /// which goes away with its directory: nothing to drop).
    pub async fn postgres_at(admin_url: &str) -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (pg, url) = PgDatabase::create(admin_url).await;
        std::mem::forget(pg);
        TestDb {
            backend: Backend::Postgres,
            url,
            master_key: Some(random_master_key()),
            pg: None,
            dir,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The temporary directory: working directory of every process started.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The SQLite database file, for SQLite.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        (self.backend == Backend::Sqlite).then(|| self.dir.path().join("gatehouse.db"))
    }

    /// `--database-url` and, where the test chose one, `--master-key`.
    pub fn connection_args(&self) -> Vec<String> {
        let mut args = vec!["--database-url".to_string(), self.url.clone()];
        if let Some(key) = &self.master_key {
            args.extend(["--master-key".to_string(), key.clone()]);
        }
        args
    }

    /// Drops the PostgreSQL database under a running server (an outage).
    pub async fn drop_database_now(&self) {
        let pg = self
            .pg
            .as_ref()
            .expect("only PostgreSQL databases can be dropped");
        PgDatabase::drop_database(&pg.admin_url, &pg.name)
            .await
            .expect("DROP DATABASE ... WITH (FORCE)");
    }

    /// A `gatehouse` command with no inherited `GATEHOUSE_*` variables, run in
    /// the test's directory, its output captured.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("GATEHOUSE_") {
                cmd.env_remove(key);
            }
        }
        cmd.current_dir(self.dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Runs an admin command on this database: `args`, then the connection args.
    pub async fn cli(&self, args: &[&str]) -> CliOutput {
        self.cli_with_stdin(args, None).await
    }

    /// Like [`TestDb::cli`], writing `stdin` to the command's standard input.
    pub async fn cli_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> CliOutput {
        let mut cmd = self.command();
        cmd.args(args).args(self.connection_args());
        run_to_exit(cmd, stdin, PROCESS_DEADLINE)
            .await
            .unwrap_or_else(|e| panic!("gatehouse {args:?}: {e}"))
    }

    /// Runs an admin command with `--json`, asserts success, parses stdout.
    pub async fn cli_json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        self.cli(&args).await.json()
    }

    /// `client create --name NAME [extra] --json`, with a generated secret.
    pub async fn create_client(&self, name: &str, extra: &[&str]) -> TestClient {
        let mut args = vec!["client", "create", "--name", name];
        args.extend_from_slice(extra);
        let client = client_from(self.cli_json(&args).await);
        self.assert_usable_id(&client, extra).await;
        client
    }

    /// `client create --name NAME [extra] --secret-stdin --json`: imports `secret`.
    pub async fn import_client(&self, name: &str, secret: &str, extra: &[&str]) -> TestClient {
        let mut args = vec!["client", "create", "--name", name];
        args.extend_from_slice(extra);
        args.extend(["--secret-stdin", "--json"]);
        let out = self.cli_with_stdin(&args, Some(&format!("{secret}\n"))).await;
        let mut client = client_from(out.json());
        self.assert_usable_id(&client, extra).await;
        // The secret the client holds is the one it imported.
        client.secret = secret.to_string();
        client
    }

    /// A generated id is what the user passes to `client show ID` next. About
    /// one in 64 random base64url ids starts with `-`, which a command-line
    /// parser may take for a flag: when one does, check that it still works.
    async fn assert_usable_id(&self, client: &TestClient, create_args: &[&str]) {
        if client.id.starts_with('-') && !create_args.contains(&"--client-id") {
            let out = self.cli(&["client", "show", &client.id, "--json"]).await;
            assert!(
                out.status.success(),
                "the generated client_id {:?} cannot be passed back: `client show` fails: {out:#?}",
                client.id
            );
        }
    }

    /// The usual cast of the grant tests: client "app" (scope `read`, grants
    /// password and refresh_token) and user "alice" (scope `read`, [`PASSWORD`]).
    pub async fn refresh_app(&self) -> (TestClient, TestUser) {
        let client = self
            .create_client(
                "app",
                &["--scope", "read", "--grant-types", "password,refresh_token"],
            )
            .await;
        let user = self.create_user("alice", PASSWORD, Some("read")).await;
        (client, user)
    }

    /// `user create --username NAME --password-stdin [--scope SCOPE] --json`;
    /// the password goes to stdin with a trailing newline, and the output is
    /// checked not to repeat it.
    pub async fn create_user(&self, username: &str, password: &str, scope: Option<&str>) -> TestUser {
        let mut args = vec!["user", "create", "--username", username, "--password-stdin"];
        if let Some(scope) = scope {
            args.extend(["--scope", scope]);
        }
        args.push("--json");
        let out = self.cli_with_stdin(&args, Some(&format!("{password}\n"))).await;
        assert!(
            !out.stdout.contains(password) && !out.stderr.contains(password),
            "user create prints the password: {out:#?}"
        );
        assert!(
            !out.stdout.contains("$argon2"),
            "user create prints the password hash: {out:#?}"
        );
        let created = out.json();
        TestUser {
            id: json_str(&created, "user_id"),
            username: username.to_string(),
            password: password.to_string(),
            created,
        }
    }

    /// The SQLite database file and its WAL/shared-memory companions, as bytes.
    pub fn sqlite_bytes(&self) -> Vec<u8> {
        let path = self.sqlite_path().expect("SQLite");
        let mut bytes = std::fs::read(&path).expect("read the SQLite database");
        for suffix in ["-wal", "-shm", "-journal"] {
            let companion = format!("{}{suffix}", path.display());
            if let Ok(more) = std::fs::read(companion) {
                bytes.extend(more);
            }
        }
        bytes
    }

    /// A connection of the test's own to its database, to look at what the
    /// server stored (never to change it).
    pub async fn connect(&self) -> DbConn {
        use sqlx::Connection as _;
        match self.backend {
            Backend::Sqlite => DbConn::Sqlite(
                sqlx::SqliteConnection::connect(&self.url)
                    .await
                    .expect("open the SQLite database"),
            ),
            Backend::Postgres => DbConn::Postgres(
                sqlx::PgConnection::connect(&self.url)
                    .await
                    .expect("connect to the PostgreSQL database"),
            ),
        }
    }

    /// A `gatehouse serve` on this database, to be configured then started.
    pub fn server(&self) -> ServerBuilder<'_> {
        ServerBuilder::new(self)
    }

    /// A server with default settings plus `args`.
    pub async fn start(&self, args: &[&str]) -> TestServer<'_> {
        self.server().args(args).start().await
    }

    /// A server with default settings plus `args`, run in this process on `clock`
    /// ([`ServerBuilder::start_on`]).
    pub async fn start_on(&self, clock: &Arc<FixedClock>, args: &[&str]) -> TestServer<'_> {
        self.server().args(args).start_on(clock.clone()).await
    }
}

fn client_from(created: Value) -> TestClient {
    let id = created["client_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no client_id in {created}"))
        .to_string();
    let secret = created["client_secret"]
        .as_str()
        .unwrap_or_else(|| panic!("no client_secret in {created}"))
        .to_string();
    TestClient { id, secret, created }
}

pub async fn run_to_exit(
    mut cmd: Command,
    stdin: Option<&str>,
    deadline: Duration,
) -> Result<CliOutput, String> {
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().expect("spawn gatehouse");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        // A command that stops before reading (a usage error) closes its stdin.
        match pipe.write_all(input.as_bytes()).await {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => panic!("write stdin: {e}"),
            _ => {}
        }
        drop(pipe);
    }
    let output = tokio::time::timeout(deadline, child.wait_with_output())
        .await
        .map_err(|_| format!("did not exit within {deadline:?}"))?
        .expect("wait for gatehouse");
    Ok(CliOutput {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// Splits a space-delimited scope into a sorted list, to compare sets.
pub fn scope_set(scope: &str) -> Vec<&str> {
    let mut scopes: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
    scopes.sort_unstable();
    scopes
}

/// A clock for an in-process server, stopped at the real time now: what the admin
/// CLI writes (on the real clock) lines up with it until the test moves it.
pub fn stopped_clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::new(unix_now()))
}

/// Unix time now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}
