//! One running `gatehouse serve`: started on `127.0.0.1:0`, its address read
//! from the log, every log line kept, killed when the test ends. Or the same
//! server run from the library inside the test's process, on a [`FixedClock`]
//! the test moves ([`ServerBuilder::start_on`]), for what depends on time: expiry,
//! grace periods, lockouts.

use std::net::SocketAddr;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use gatehouse_core::FixedClock;

use crate::helpers::*;

const STARTUP_DEADLINE: Duration = Duration::from_secs(30);
const HTTP_TIMEOUT: Duration = Duration::from_secs(15);

/// Settings for one `gatehouse serve`.
pub struct ServerBuilder<'a> {
    db: &'a TestDb,
    args: Vec<String>,
    env: Vec<(String, String)>,
    bare: bool,
}

impl<'a> ServerBuilder<'a> {
    pub fn new(db: &'a TestDb) -> Self {
        ServerBuilder {
            db,
            args: Vec::new(),
            env: vec![("GATEHOUSE_LOG".into(), "info".into())],
            bare: false,
        }
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Leaves out the default `--listen 127.0.0.1:0` and the connection args:
    /// for a test that sets them another way (environment, TOML file).
    pub fn bare(mut self) -> Self {
        self.bare = true;
        self
    }

    fn command(&self) -> Command {
        let mut cmd = self.db.command();
        cmd.arg("serve");
        if !self.bare && !self.args.iter().any(|a| a == "--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        cmd.args(&self.args);
        if !self.bare {
            cmd.args(self.db.connection_args());
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs `serve` expecting it to stop by itself within `deadline` (a
    /// configuration error); `Err` when it kept running.
    pub async fn run_to_exit(self, deadline: Duration) -> Result<CliOutput, String> {
        run_to_exit(self.command(), None, deadline).await
    }

    /// Runs the server from the `gatehouse` library inside this process, reading
    /// the time from `clock`, which the test moves instead of waiting. The settings
    /// are this builder's flags and `GATEHOUSE_*` variables (the process's own
    /// environment is not read); the log is not captured.
    pub async fn start_on(self, clock: Arc<FixedClock>) -> TestServer<'a> {
        let mut args = gatehouse::config::ConfigArgs::default();
        let mut given = self.args.clone();
        if !self.bare {
            if !given.iter().any(|a| a == "--listen") {
                given.extend(["--listen".to_string(), "127.0.0.1:0".to_string()]);
            }
            given.extend(self.db.connection_args());
        }
        let mut given = given.into_iter().peekable();
        while let Some(flag) = given.next() {
            let key = flag
                .strip_prefix("--")
                .unwrap_or_else(|| panic!("not a flag: {flag}"))
                .replace('-', "_");
            let value = match given.peek() {
                Some(next) if !next.starts_with("--") => given.next().expect("peeked"),
                _ => "true".to_string(),
            };
            args = args.with(&key, value);
        }
        for (name, value) in &self.env {
            if let Some(key) = name.strip_prefix("GATEHOUSE_").filter(|k| *k != "LOG") {
                args = args.with(&key.to_lowercase(), value.clone());
            }
        }
        let settings = gatehouse::config::Settings::load_with_env(&args, &|_| None)
            .unwrap_or_else(|e| panic!("settings: {e}"));
        let server = gatehouse::server::Server::bind(&settings, clock)
            .await
            .unwrap_or_else(|e| panic!("the in-process server does not start: {e}"));
        let mut addr = server.local_addr().expect("bound address");
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .run(async {
                    let _ = stopped.await;
                })
                .await
                .map_err(|e| e.to_string())
        });
        TestServer {
            db: self.db,
            child: Running::InProcess {
                stop: Some(stop),
                task: Some(task),
            },
            addr,
            logs: Arc::new(Mutex::new(Vec::new())),
            readers: Vec::new(),
            http: test_http_client(),
        }
    }

    /// Starts the server and waits (30 s at most) for its `listening addr=` line.
    pub async fn start(self) -> TestServer<'a> {
        let mut child = self.command().spawn().expect("spawn gatehouse serve");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = oneshot::channel();
        let readers = vec![
            tokio::spawn(collect_lines(
                child.stderr.take().expect("stderr"),
                logs.clone(),
                Some(addr_tx),
            )),
            tokio::spawn(collect_lines(
                child.stdout.take().expect("stdout"),
                logs.clone(),
                None,
            )),
        ];
        let addr = match tokio::time::timeout(STARTUP_DEADLINE, addr_rx).await {
            Ok(Ok(addr)) => addr,
            outcome => {
                let _ = child.start_kill();
                let status = child.wait().await;
                let log = logs.lock().unwrap().join("\n");
                match outcome {
                    Err(_) => panic!("no `listening addr=` within {STARTUP_DEADLINE:?}; log:\n{log}"),
                    _ => panic!("server stopped before listening ({status:?}); log:\n{log}"),
                }
            }
        };
        TestServer {
            db: self.db,
            child: Running::Process(child),
            addr,
            logs,
            readers,
            http: test_http_client(),
        }
    }
}

fn test_http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(HTTP_TIMEOUT)
        .build()
        .expect("HTTP client")
}

/// How a [`TestServer`] runs.
enum Running {
    /// The `gatehouse` binary.
    Process(Child),
    /// The library, in this process ([`ServerBuilder::start_on`]).
    InProcess {
        stop: Option<oneshot::Sender<()>>,
        task: Option<JoinHandle<Result<(), String>>>,
    },
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Running::InProcess { task: Some(task), .. } = self {
            task.abort();
        }
    }
}

/// Keeps every line of a server's output; reports the bound address once seen.
async fn collect_lines(
    stream: impl AsyncRead + Unpin,
    logs: Arc<Mutex<Vec<String>>>,
    mut addr_tx: Option<oneshot::Sender<SocketAddr>>,
) {
    let mut reader = BufReader::new(stream);
    let mut raw = Vec::new();
    loop {
        raw.clear();
        match reader.read_until(b'\n', &mut raw).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = strip_ansi(&String::from_utf8_lossy(&raw)).trim_end().to_string();
        let addr = addr_tx.as_ref().and_then(|_| listening_addr(&line));
        logs.lock().unwrap().push(line);
        if let Some(addr) = addr {
            let _ = addr_tx.take().expect("found only while unsent").send(addr);
        }
    }
}

/// The address in a `listening addr=IP:PORT` log line; an unspecified IP
/// (`0.0.0.0`) is reached on loopback.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    if !line.contains("listening") {
        return None;
    }
    let value: String = if line.starts_with('{') {
        // log_format = "json": {"message":"listening","addr":"127.0.0.1:PORT",...}
        let event: Value = serde_json::from_str(line).ok()?;
        event["addr"].as_str()?.to_string()
    } else {
        let rest = line.split("addr=").nth(1)?;
        rest.trim_start_matches('"')
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '"' && *c != ',')
            .collect()
    };
    let mut addr: SocketAddr = value.parse().ok()?;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    Some(addr)
}

/// Removes ANSI escape sequences (colour codes a logger may add).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A running `gatehouse serve`; killed when dropped.
pub struct TestServer<'a> {
    db: &'a TestDb,
    child: Running,
    addr: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
    http: reqwest::Client,
}

impl TestServer<'_> {
    pub fn db(&self) -> &TestDb {
        self.db
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The HTTP client the helpers use (cheap to clone, for spawned tasks).
    pub fn http(&self) -> reqwest::Client {
        self.http.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every line the server wrote so far (stderr and stdout).
    pub fn logs(&self) -> String {
        assert!(
            matches!(self.child, Running::Process(_)),
            "the log of an in-process server is not captured: start the binary"
        );
        self.logs.lock().unwrap().join("\n")
    }

    /// The process id of the binary.
    fn pid(&self) -> u32 {
        match &self.child {
            Running::Process(child) => child.id().expect("server still running"),
            Running::InProcess { .. } => panic!("an in-process server has no process of its own"),
        }
    }

    pub async fn cli_json(&self, args: &[&str]) -> Value {
        self.db.cli_json(args).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        Reply::from(self.http.get(self.url(path)).send().await).await
    }

    /// POSTs `body` with the given content type (none when `None`).
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        authorization: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let mut request = self.http.post(self.url(path)).body(body);
        if let Some(content_type) = content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        if let Some(authorization) = authorization {
            request = request.header(AUTHORIZATION, authorization);
        }
        Reply::from(request.send().await).await
    }

    /// POST /oauth/token with a form body: `params`, then the body credentials of `auth`.
    pub async fn token_form(&self, auth: &ClientAuth, params: &[(&str, &str)]) -> Reply {
        self.post_form("/oauth/token", Some(auth), params).await
    }

    /// POSTs a form body to `path`: `params`, then the body credentials of
    /// `auth` (no client authentication when `None`).
    pub async fn post_form(&self, path: &str, auth: Option<&ClientAuth>, params: &[(&str, &str)]) -> Reply {
        let mut pairs: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut authorization = None;
        if let Some(auth) = auth {
            pairs.extend(auth.body_params());
            authorization = auth.header();
        }
        self.post_raw(path, Some(FORM), authorization.as_deref(), form_body(&pairs))
            .await
    }

    /// `grant_type=password` for `username` and `password` (plus `extra`),
    /// form body, `client_secret_basic`.
    pub async fn password_grant(
        &self,
        client: &TestClient,
        username: &str,
        password: &str,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut params = vec![
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ];
        params.extend_from_slice(extra);
        self.token_form(&client.basic(), &params).await
    }

    /// A successful password grant of `user` at `client`: the response body,
    /// after checking status and headers.
    pub async fn login(&self, client: &TestClient, user: &TestUser) -> Value {
        let reply = self
            .password_grant(client, &user.username, &user.password, &[])
            .await;
        reply.access_token();
        reply.json()
    }

    /// `grant_type=refresh_token` with `refresh_token` (plus `extra`), form
    /// body, `client_secret_basic`.
    pub async fn refresh_grant(
        &self,
        client: &TestClient,
        refresh_token: &str,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut params = vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
        params.extend_from_slice(extra);
        self.token_form(&client.basic(), &params).await
    }

    /// A successful refresh: the response body, after checking status and headers.
    pub async fn refresh(&self, client: &TestClient, refresh_token: &str) -> Value {
        let reply = self.refresh_grant(client, refresh_token, &[]).await;
        reply.access_token();
        reply.json()
    }

    /// POST /oauth/revoke with a form body (RFC 7009).
    pub async fn revoke(&self, auth: Option<&ClientAuth>, params: &[(&str, &str)]) -> Reply {
        self.post_form("/oauth/revoke", auth, params).await
    }

    /// POST /oauth/introspect of `token` with a form body (RFC 7662).
    pub async fn introspect(&self, auth: Option<&ClientAuth>, token: &str) -> Reply {
        self.post_form("/oauth/introspect", auth, &[("token", token)])
            .await
    }

    /// What `client` learns by introspecting `token`: the JSON body of a 200
    /// with the no-store headers.
    pub async fn introspection(&self, client: &TestClient, token: &str) -> Value {
        let reply = self.introspect(Some(&client.basic()), token).await;
        reply
            .assert_status(StatusCode::OK)
            .assert_json_content_type()
            .assert_no_store();
        let body = reply.json();
        assert!(
            body["active"].is_boolean(),
            "introspection without active: {reply:?}"
        );
        body
    }

    /// Whether `client`, introspecting `token`, is told it is active; an
    /// inactive answer must be exactly `{"active": false}`.
    pub async fn is_active(&self, client: &TestClient, token: &str) -> bool {
        let body = self.introspection(client, token).await;
        if body["active"] == true {
            return true;
        }
        assert_eq!(
            body,
            serde_json::json!({"active": false}),
            "an inactive answer says more"
        );
        false
    }

    /// POST /oauth/token with a JSON object body: `params`, then the body credentials of `auth`.
    pub async fn token_json(&self, auth: &ClientAuth, params: &[(&str, &str)]) -> Reply {
        let mut object = serde_json::Map::new();
        for (k, v) in params {
            object.insert(k.to_string(), Value::from(*v));
        }
        for (k, v) in auth.body_params() {
            object.insert(k, Value::from(v));
        }
        self.post_raw(
            "/oauth/token",
            Some(JSON),
            auth.header().as_deref(),
            Value::Object(object).to_string(),
        )
        .await
    }

    /// `grant_type=client_credentials` (plus `extra`), form body, `client_secret_basic`.
    pub async fn client_credentials(&self, client: &TestClient, extra: &[(&str, &str)]) -> Reply {
        let mut params = vec![("grant_type", "client_credentials")];
        params.extend_from_slice(extra);
        self.token_form(&client.basic(), &params).await
    }

    /// A successful client_credentials access token for `client`.
    pub async fn access_token(&self, client: &TestClient) -> String {
        self.client_credentials(client, &[]).await.access_token()
    }

    /// A value of the Prometheus page: the sum of the samples of `name` whose
    /// labels include every one of `labels` (0 when there is none yet).
    pub async fn metric(&self, name: &str, labels: &[&str]) -> f64 {
        let page = self.get("/metrics").await;
        page.assert_status(StatusCode::OK);
        page.body
            .lines()
            .filter(|line| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
                    && labels.iter().all(|l| line.contains(l))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// GET /oauth/jwks, asserted to be a JSON key set.
    pub async fn jwks(&self) -> Value {
        let reply = self.get("/oauth/jwks").await;
        reply.assert_status(StatusCode::OK);
        let jwks = reply.json();
        assert!(jwks["keys"].is_array(), "JWKS without keys: {jwks}");
        jwks
    }

    /// The issuer as the server's metadata names it.
    pub async fn issuer(&self) -> String {
        let reply = self.get("/.well-known/oauth-authorization-server").await;
        reply.assert_status(StatusCode::OK);
        reply.json()["issuer"]
            .as_str()
            .unwrap_or_else(|| panic!("metadata without issuer: {}", reply.body))
            .to_string()
    }

    /// The server's resident memory and its high-water mark, in MiB (Linux).
    pub fn memory_mib(&self) -> (u64, u64) {
        let pid = self.pid();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
                / 1024
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Sends `signal` (`TERM`, `INT`) to the server process.
    pub fn signal(&self, signal: &str) {
        let pid = self.pid();
        let sent = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{signal} {pid} failed");
    }

    /// Waits (30 s at most) for the server process to exit, then for the
    /// last of its output.
    pub async fn wait_for_exit(mut self) -> Stopped {
        let child = match &mut self.child {
            Running::Process(child) => child,
            Running::InProcess { .. } => panic!("an in-process server stops with `stop`"),
        };
        let status = match tokio::time::timeout(PROCESS_DEADLINE, child.wait()).await {
            Ok(status) => status.expect("wait for server"),
            Err(_) => panic!(
                "server still running after {PROCESS_DEADLINE:?}; log:\n{}",
                self.logs()
            ),
        };
        for reader in std::mem::take(&mut self.readers) {
            // The pipes close at exit; a grandchild holding them open must not hang the test.
            let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
        }
        Stopped {
            status,
            logs: self.logs(),
        }
    }

    /// Stops an in-process server as SIGTERM stops the binary (in-flight requests
    /// finish), and waits for it.
    pub async fn stop(mut self) {
        let Running::InProcess { stop, task } = &mut self.child else {
            panic!("`stop` is for an in-process server; the binary stops with `stop_with`")
        };
        let _ = stop.take().expect("stopped once").send(());
        let task = task.take().expect("stopped once");
        match tokio::time::timeout(PROCESS_DEADLINE, task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(outcome) => panic!("the in-process server failed: {outcome:?}"),
            Err(_) => panic!("the in-process server still runs after {PROCESS_DEADLINE:?}"),
        }
    }

    /// Sends `signal` and waits for the process to exit.
    pub async fn stop_with(self, signal: &str) -> Stopped {
        self.signal(signal);
        self.wait_for_exit().await
    }
}

/// A server that has exited: how, and everything it wrote.
#[derive(Debug)]
pub struct Stopped {
    pub status: ExitStatus,
    pub logs: String,
}

/// Sends one refresh request of `client` per `(server, refresh token)`, all
/// released at once by a barrier from tasks of their own, and returns status and
/// body of each, in order.
pub async fn refresh_race<'s, 'd: 's>(
    client: &TestClient,
    refreshes: impl IntoIterator<Item = (&'s TestServer<'d>, String)>,
) -> Vec<(reqwest::StatusCode, String)> {
    let refreshes: Vec<_> = refreshes.into_iter().collect();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(refreshes.len()));
    let authorization = basic_authorization(&client.id, &client.secret);
    let tasks: Vec<_> = refreshes
        .into_iter()
        .map(|(server, token)| {
            let request = server
                .http()
                .post(server.url("/oauth/token"))
                .header("authorization", &authorization)
                .header("content-type", FORM)
                .body(form_body(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.as_str()),
                ]));
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let response = request.send().await.expect("refresh request");
                let status = response.status();
                (status, response.text().await.expect("response body"))
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        outcomes.push(task.await.expect("racing task"));
    }
    outcomes
}
