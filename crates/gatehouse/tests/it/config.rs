//! Settings (`docs/configuration.md`): flag > environment > TOML file > default, and a bad
//! setting stops start-up with one line naming the key, exit status 2.

use std::path::PathBuf;
use std::time::Duration;

use crate::helpers::*;
use crate::jose;

/// How long a server with a bad setting may take to give up.
const CONFIG_ERROR_DEADLINE: Duration = Duration::from_secs(10);

/// Writes `contents` to a TOML file in the test's directory.
fn write_config(db: &TestDb, name: &str, contents: &str) -> PathBuf {
    let path = db.dir().join(name);
    std::fs::write(&path, contents).expect("write the config file");
    path
}

async fn expires_in(server: &TestServer<'_>, client: &TestClient) -> u64 {
    let reply = server.client_credentials(client, &[]).await;
    reply.access_token();
    reply.json()["expires_in"].as_u64().expect("expires_in")
}

/// The `expires_in` a server started with `args` and `env` gives `client`.
async fn ttl_with(db: &TestDb, client: &TestClient, args: &[&str], env: &[(&str, &str)]) -> u64 {
    let mut builder = db.server().args(args);
    for (key, value) in env {
        builder = builder.env(key, value);
    }
    let server = builder.start().await;
    expires_in(&server, client).await
}

/// `access_token_ttl` from each source, checked through `expires_in`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precedence_is_flag_then_env_then_file_then_default() {
    let db = TestDb::new(Backend::Sqlite).await;
    let client = db.create_client("svc", &[]).await;
    let file = write_config(&db, "gatehouse.toml", "access_token_ttl = 100\n");
    let file = file.to_str().expect("UTF-8 path");

    let (db, client) = (&db, &client);
    let config_env = [("GATEHOUSE_CONFIG", file)];
    let ttl_env = [("GATEHOUSE_ACCESS_TOKEN_TTL", "200")];

    assert_eq!(ttl_with(db, client, &[], &[]).await, 3600, "default");
    assert_eq!(
        ttl_with(db, client, &["--config", file], &[]).await,
        100,
        "--config"
    );
    assert_eq!(
        ttl_with(db, client, &[], &config_env).await,
        100,
        "GATEHOUSE_CONFIG"
    );
    assert_eq!(ttl_with(db, client, &[], &ttl_env).await, 200, "env over default");
    assert_eq!(
        ttl_with(db, client, &["--config", file], &ttl_env).await,
        200,
        "env over file"
    );
    let flag_and_file = ["--config", file, "--access-token-ttl", "300"];
    assert_eq!(
        ttl_with(db, client, &flag_and_file, &ttl_env).await,
        300,
        "flag over env over file"
    );
    assert_eq!(
        ttl_with(db, client, &["--access-token-ttl", "300"], &config_env).await,
        300,
        "flag over GATEHOUSE_CONFIG file"
    );
}

/// Every key can come from the TOML file alone, and the environment overrides it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_and_environment_configure_everything() {
    let db = TestDb::new(Backend::Sqlite).await;
    let client = db.create_client("svc", &[]).await;
    let file = write_config(
        &db,
        "full.toml",
        &format!(
            "listen = \"127.0.0.1:0\"\n\
             database_url = \"{}\"\n\
             issuer = \"http://from-file.example\"\n\
             default_audience = \"https://aud-from-file.example\"\n\
             signing_alg = \"EdDSA\"\n\
             access_token_ttl = 120\n",
            db.url()
        ),
    );
    let file = file.to_str().expect("UTF-8 path");

    {
        let server = db.server().bare().args(&["--config", file]).start().await;
        assert_eq!(server.issuer().await, "http://from-file.example");
        let token = server.access_token(&client).await;
        let jwt = jose::decode(&token);
        assert_eq!(jwt.header["alg"], "EdDSA", "{}", jwt.header);
        assert_eq!(jose::audiences(&jwt.claims), ["https://aud-from-file.example"]);
        assert_eq!(expires_in(&server, &client).await, 120);
    }

    let server = db
        .server()
        .bare()
        .env("GATEHOUSE_CONFIG", file)
        .env("GATEHOUSE_ISSUER", "http://from-env.example")
        .env("GATEHOUSE_SIGNING_ALG", "ES256")
        .start()
        .await;
    assert_eq!(server.issuer().await, "http://from-env.example");
    let token = server.access_token(&client).await;
    assert_eq!(jose::decode(&token).header["alg"], "ES256");
    jose::verify(
        &token,
        &server.jwks().await,
        "http://from-env.example",
        "https://aud-from-file.example",
    );
}

/// Listen address and database from the environment alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_alone_is_enough() {
    let db = TestDb::new(Backend::Sqlite).await;
    let client = db.create_client("svc", &[]).await;
    let server = db
        .server()
        .bare()
        .env("GATEHOUSE_LISTEN", "127.0.0.1:0")
        .env("GATEHOUSE_DATABASE_URL", db.url())
        .start()
        .await;
    server.access_token(&client).await;
}

/// Plain HTTP on a non-loopback address needs `allow_insecure_http`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_http_on_a_public_address_is_allowed_explicitly() {
    let db = TestDb::new(Backend::Sqlite).await;
    let client = db.create_client("svc", &[]).await;
    {
        let server = db
            .start(&["--listen", "0.0.0.0:0", "--allow-insecure-http"])
            .await;
        server.access_token(&client).await;
    }
    let server = db
        .server()
        .args(&["--listen", "0.0.0.0:0"])
        .env("GATEHOUSE_ALLOW_INSECURE_HTTP", "true")
        .start()
        .await;
    server.access_token(&client).await;
}

/// One `serve` that must refuse to start.
struct BadSetting {
    what: &'static str,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    /// The error line must name one of these keys.
    keys: &'static [&'static str],
}

impl BadSetting {
    fn new(what: &'static str, args: Vec<String>, keys: &'static [&'static str]) -> Self {
        BadSetting {
            what,
            args,
            env: Vec::new(),
            keys,
        }
    }

    fn env(mut self, key: &'static str, value: &str) -> Self {
        self.env.push((key, value.to_string()));
        self
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_stop_startup_with_one_line_and_status_2() {
    let db = TestDb::new(Backend::Sqlite).await;
    let url = db.url().to_string();
    let file = |name: &str, contents: &str| {
        let path = write_config(&db, name, contents);
        path.to_str().expect("UTF-8 path").to_string()
    };
    let bad_value = file("bad-value.toml", "access_token_ttl = \"abc\"\n");
    let unknown_key = file("unknown-key.toml", "no_such_setting = 1\n");
    let bad_alg = file("bad-alg.toml", "signing_alg = \"none\"\n");
    let short_key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, random_bytes(16));
    // A valid listen address and database, then `extra`.
    let valid_and = |extra: &[&str]| {
        let mut args = strings(&["--listen", "127.0.0.1:0", "--database-url", &url]);
        args.extend(strings(extra));
        args
    };

    let cases = vec![
        BadSetting::new(
            "flag: ttl not a number",
            valid_and(&["--access-token-ttl", "abc"]),
            &["access_token_ttl"],
        ),
        BadSetting::new("env: ttl negative", valid_and(&[]), &["access_token_ttl"])
            .env("GATEHOUSE_ACCESS_TOKEN_TTL", "-5"),
        BadSetting::new("env: HS256", valid_and(&[]), &["signing_alg"]).env("GATEHOUSE_SIGNING_ALG", "HS256"),
        BadSetting::new(
            "env: a proxy by name",
            valid_and(&[]),
            &["trusted_proxies", "lb.internal"],
        )
        .env("GATEHOUSE_TRUSTED_PROXIES", "10.0.0.0/8, lb.internal"),
        BadSetting::new(
            "flag: a proxy range too wide",
            valid_and(&["--trusted-proxies", "10.0.0.0/33"]),
            &["trusted_proxies"],
        ),
        BadSetting::new(
            "env: a negative per-address connection cap",
            valid_and(&[]),
            &["max_connections_per_address"],
        )
        .env("GATEHOUSE_MAX_CONNECTIONS_PER_ADDRESS", "-1"),
        BadSetting::new(
            "flag: alg none",
            valid_and(&["--signing-alg", "none"]),
            &["signing_alg"],
        ),
        BadSetting::new(
            "flag: listen nonsense",
            strings(&["--listen", "nonsense", "--database-url", &url]),
            &["listen"],
        ),
        BadSetting::new(
            "flag: mysql URL",
            strings(&["--listen", "127.0.0.1:0", "--database-url", "mysql://x"]),
            &["database_url"],
        ),
        BadSetting::new(
            "PostgreSQL without master_key",
            strings(&[
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                "postgres://postgres@127.0.0.1:1/none",
            ]),
            &["master_key"],
        ),
        BadSetting::new(
            "flag: master key not base64",
            valid_and(&["--master-key", "not base64!"]),
            &["master_key"],
        ),
        BadSetting::new(
            "flag: master key of 16 bytes",
            valid_and(&["--master-key", &short_key]),
            &["master_key"],
        ),
        BadSetting::new(
            "flag: issuer not a URL",
            valid_and(&["--issuer", "not a url"]),
            &["issuer"],
        ),
        BadSetting::new(
            "file: ttl a string",
            valid_and(&["--config", &bad_value]),
            &["access_token_ttl"],
        ),
        BadSetting::new(
            "file: unknown key",
            valid_and(&["--config", &unknown_key]),
            &["no_such_setting"],
        ),
        BadSetting::new(
            "GATEHOUSE_CONFIG file: alg none",
            valid_and(&[]),
            &["signing_alg"],
        )
        .env("GATEHOUSE_CONFIG", &bad_alg),
        BadSetting::new(
            "plain HTTP on 0.0.0.0",
            strings(&["--listen", "0.0.0.0:0", "--database-url", &url]),
            &["listen", "allow_insecure_http"],
        ),
    ];

    // Concurrently: a server that wrongly starts costs one deadline, not one each.
    let outcomes = futures::future::join_all(cases.iter().map(|case| {
        let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        let mut builder = db.server().bare().args(&args);
        for (key, value) in &case.env {
            builder = builder.env(key, value);
        }
        builder.run_to_exit(CONFIG_ERROR_DEADLINE)
    }))
    .await;

    let failures: Vec<String> = cases
        .iter()
        .zip(outcomes)
        .filter_map(|(case, outcome)| {
            let problem = match outcome {
                Err(e) => Some(format!("server {e}")),
                Ok(out) => out.one_line_error_problem(2, case.keys),
            };
            problem.map(|p| format!("{}: {p}", case.what))
        })
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// A key the file may not hold names its line and the key probably meant; a syntax
/// error names its line and column. Both stop start-up with one line, status 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_says_where_it_is_wrong() {
    let db = TestDb::new(Backend::Sqlite).await;
    let cases = [
        (
            "typo.toml",
            "listen = \"127.0.0.1:0\"\n\nacess_token_ttl = 60\n",
            "unknown key \"acess_token_ttl\" in ",
            "typo.toml, line 3: did you mean `access_token_ttl`?",
        ),
        (
            "flag-spelling.toml",
            "log-format = \"json\"\n",
            "unknown key \"log-format\" in ",
            "flag-spelling.toml, line 1: did you mean `log_format`?",
        ),
        (
            "syntax.toml",
            "listen = \"127.0.0.1:0\"\nissuer = = \"http://x\"\n",
            "syntax.toml is not valid TOML, line 2, column 10: ",
            "",
        ),
        (
            "bad-value.toml",
            "# lifetimes\naccess_token_ttl = \"soon\"\n",
            "access_token_ttl: must be a whole number of seconds",
            "bad-value.toml, line 2)",
        ),
    ];
    for (name, contents, expected, also) in cases {
        let file = write_config(&db, name, contents);
        let out = db
            .server()
            .args(&["--config", file.to_str().expect("UTF-8 path")])
            .run_to_exit(CONFIG_ERROR_DEADLINE)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Some(problem) = out.one_line_error_problem(2, &["config", "access_token_ttl"]) {
            panic!("{name}: {problem}");
        }
        assert!(
            out.stderr.starts_with("gatehouse: invalid configuration: "),
            "{name}: {}",
            out.stderr
        );
        assert!(out.stderr.contains(expected), "{name}: {}", out.stderr);
        assert!(out.stderr.trim_end().ends_with(also), "{name}: {}", out.stderr);
    }
}

/// Each command's `--help` lists the settings it uses, not `serve`'s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_command_lists_only_its_own_settings() {
    let db = TestDb::new(Backend::Sqlite).await;
    let help = |args: &'static [&'static str]| {
        let mut cmd = db.command();
        cmd.args(args);
        async move {
            let out = run_to_exit(cmd, None, CONFIG_ERROR_DEADLINE)
                .await
                .unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert!(out.status.success(), "{args:?}: {out:#?}");
            out.stdout
        }
    };
    let serve = help(&["serve", "--help"]).await;
    for flag in [
        "--listen",
        "--tls-cert",
        "--database-url",
        "--trusted-proxies",
        "--config",
    ] {
        assert!(serve.contains(flag), "serve --help lacks {flag}:\n{serve}");
    }
    assert!(serve.contains("GATEHOUSE_LISTEN"), "{serve}");

    for command in [
        &["client", "create", "--help"][..],
        &["client", "list", "--help"],
        &["user", "create", "--help"],
        &["migrate", "--help"],
        &["token", "revoke", "--help"],
        &["keys", "rotate", "--help"],
    ] {
        let text = help(command).await;
        assert!(text.contains("--database-url"), "{command:?}:\n{text}");
        assert!(text.contains("--config"), "{command:?}:\n{text}");
        for flag in [
            "--listen",
            "--tls-cert",
            "--issuer",
            "--rate-limit-per-client",
            "--log-format",
        ] {
            assert!(!text.contains(flag), "{command:?} lists {flag}:\n{text}");
        }
        // Far under serve's page: the settings of serve are not repeated here.
        assert!(text.lines().count() < 100, "{command:?}:\n{text}");
    }
    let create = help(&["client", "create", "--help"]).await;
    assert!(!create.contains("--master-key"), "{create}");
    let rotate = help(&["keys", "rotate", "--help"]).await;
    for flag in ["--master-key-file", "--signing-alg", "--access-token-ttl"] {
        assert!(
            rotate.contains(flag),
            "keys rotate --help lacks {flag}:\n{rotate}"
        );
    }
    let revoke = help(&["token", "revoke", "--help"]).await;
    assert!(revoke.contains("--master-key-file"), "{revoke}");

    // A flag of another command is a usage error, not ignored.
    let out = db.cli(&["client", "list", "--listen", "127.0.0.1:0"]).await;
    assert_eq!(out.code(), Some(2), "{out:#?}");
    assert!(out.stderr.contains("--listen"), "{out:#?}");
}

/// The admin commands read the database from a flag before the command, after the
/// group or after the command, from the environment, and from the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_take_settings_from_every_source() {
    let db = TestDb::new(Backend::Sqlite).await;
    let client = db.create_client("svc", &[]).await;
    let listed = |out: CliOutput| {
        assert!(out.status.success(), "{out:#?}");
        assert!(out.stdout.contains(&client.id), "{out:#?}");
    };
    let run = |args: Vec<String>, env: Vec<(&'static str, String)>| {
        let mut cmd = db.command();
        cmd.args(&args).envs(env);
        async move {
            run_to_exit(cmd, None, CONFIG_ERROR_DEADLINE)
                .await
                .expect("exits")
        }
    };
    let url = db.url().to_string();
    listed(run(strings(&["--database-url", &url, "client", "list"]), vec![]).await);
    listed(run(strings(&["client", "--database-url", &url, "list"]), vec![]).await);
    listed(run(strings(&["client", "list", "--database-url", &url]), vec![]).await);
    listed(
        run(
            strings(&["client", "list"]),
            vec![("GATEHOUSE_DATABASE_URL", url.clone())],
        )
        .await,
    );
    let file = write_config(&db, "admin.toml", &format!("database_url = \"{url}\"\n"));
    let file = file.to_str().expect("UTF-8 path").to_string();
    listed(run(strings(&["client", "list", "--config", &file]), vec![]).await);
    listed(run(strings(&["client", "list"]), vec![("GATEHOUSE_CONFIG", file)]).await);
}

/// The default issuer is the bound address: the port `:0` picked, and loopback for
/// an unspecified address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_issuer_is_the_bound_address() {
    let db = TestDb::new(Backend::Sqlite).await;
    {
        let server = db.start(&[]).await;
        let port = server.addr().port();
        assert_ne!(port, 0);
        assert_eq!(server.issuer().await, format!("http://127.0.0.1:{port}"));
    }
    let server = db
        .start(&["--listen", "0.0.0.0:0", "--allow-insecure-http"])
        .await;
    let port = server.addr().port();
    assert_eq!(server.issuer().await, format!("http://127.0.0.1:{port}"));
}
