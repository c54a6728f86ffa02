use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use super::keys::{markdown_table, KeyDefault, KEYS};
use super::*;

/// Loads `args` with `env` as the whole environment.
fn load_env(args: &ConfigArgs, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let env: BTreeMap<String, OsString> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
        .collect();
    Settings::load_with_env(args, &|name| env.get(name).cloned())
}

/// Loads `args` with an empty environment.
fn load(args: &ConfigArgs) -> Result<Settings, ConfigError> {
    load_env(args, &[])
}

fn given(key: &str, value: &str) -> ConfigArgs {
    ConfigArgs::default().with(key, value)
}

#[test]
fn defaults() {
    let s = load(&ConfigArgs::default()).unwrap();
    assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(s.database_url, "sqlite://gatehouse.db");
    assert_eq!(s.backend, Backend::Sqlite);
    assert_eq!(s.access_token_ttl, 3600);
    assert_eq!(s.refresh_token_ttl, 2_592_000);
    assert_eq!(s.signing_alg, SigningAlg::ES256);
    assert_eq!(s.log_format, LogFormat::Text);
    assert!(!s.allow_insecure_http);
    assert_eq!(s.cleanup_interval, 60);
    assert_eq!(s.limits.max_connections, 4096);
    assert_eq!(s.limits.max_connections_per_address, 64);
    assert_eq!(s.limits.request_timeout, Duration::from_secs(10));
    assert_eq!(s.limits.idle_timeout, Duration::from_secs(60));
    assert_eq!(s.protection.rate_per_client, 1000);
    assert_eq!(s.protection.rate_per_address, 1000);
    assert_eq!(s.protection.lockout_threshold, 10);
    assert_eq!(s.protection.lockout_duration, Duration::from_secs(900));
    assert!(s.protection.password_hash_concurrency >= 1);
    assert_eq!(s.pool.max_connections, 8);
    assert_eq!(s.pool.acquire_timeout, Duration::from_secs(3));
    assert_eq!(s.pool.statement_timeout, Duration::from_secs(5));
    assert_eq!(s.trusted_proxies, TrustedProxies::default());
    assert!(s.tls.is_none() && s.issuer.is_none() && s.default_audience.is_none());
    assert!(matches!(s.master_key, MasterKeySource::File(ref p) if p == Path::new("gatehouse.master.key")));
}

/// Each declared default is parsed as a given value would be: a typo in one fails here.
#[test]
fn every_declared_default_parses() {
    for key in KEYS {
        if let KeyDefault::Value(default) = key.default {
            let settings = load(&given(key.name, default));
            assert!(settings.is_ok(), "{}: {default:?}: {settings:?}", key.name);
        }
    }
}

#[test]
fn errors_name_the_key_and_where_the_value_came_from() {
    let cases = [
        ("access_token_ttl", "abc"),
        ("signing_alg", "HS256"),
        ("listen", "nonsense"),
        ("listen", "0.0.0.0:0"),
        ("database_url", "mysql://x"),
        ("master_key", "short"),
        ("trusted_proxies", "10.0.0.0/8,lb.internal"),
        ("allow_insecure_http", "yes"),
        ("max_connections", "0"),
    ];
    for (key, value) in cases {
        let err = load(&given(key, value)).unwrap_err();
        assert_eq!(err.key, key, "{err}");
        assert!(!err.to_string().contains('\n'));
        assert!(
            err.to_string()
                .starts_with(&format!("gatehouse: invalid configuration: {key}: ")),
            "{err}"
        );
    }
    let err = load(&given("access_token_ttl", "abc")).unwrap_err();
    assert_eq!(
        err.problem,
        "must be a whole number of seconds from 1 to 315360000 (from --access-token-ttl)"
    );
    let err = load_env(&ConfigArgs::default(), &[("GATEHOUSE_LOG_FORMAT", "xml")]).unwrap_err();
    assert_eq!(err.problem, "must be text or json (from GATEHOUSE_LOG_FORMAT)");
    // A secret's value is never repeated.
    let err = load(&given("master_key", "not base64 secret!")).unwrap_err();
    assert!(!err.to_string().contains("secret!"), "{err}");
}

#[test]
fn flag_over_environment_over_file_over_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("g.toml");
    std::fs::write(&file, "access_token_ttl = 100\nrefresh_token_ttl = 1000\n").unwrap();
    let file = file.to_str().unwrap();
    let env = [("GATEHOUSE_ACCESS_TOKEN_TTL", "200"), ("GATEHOUSE_CONFIG", file)];
    let ttl = |args: &ConfigArgs, env: &[(&str, &str)]| load_env(args, env).unwrap().access_token_ttl;
    assert_eq!(ttl(&ConfigArgs::default(), &[]), 3600);
    assert_eq!(ttl(&given("config", file), &[]), 100);
    assert_eq!(ttl(&ConfigArgs::default(), &env[1..]), 100, "GATEHOUSE_CONFIG");
    assert_eq!(ttl(&ConfigArgs::default(), &env), 200);
    assert_eq!(ttl(&given("access_token_ttl", "300"), &env), 300);
    // The file still gives what nothing else does.
    assert_eq!(
        load_env(&ConfigArgs::default(), &env).unwrap().refresh_token_ttl,
        1000
    );
}

#[test]
fn a_bad_value_in_the_file_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("g.toml");
    std::fs::write(&file, "# tokens\n\naccess_token_ttl = \"abc\"\n").unwrap();
    let err = load(&given("config", file.to_str().unwrap())).unwrap_err();
    assert_eq!(err.key, "access_token_ttl");
    assert!(
        err.problem
            .ends_with(&format!("(from {}, line 3)", file.display())),
        "{err}"
    );
    std::fs::write(&file, "listen = 1.5\n").unwrap();
    let err = load(&given("config", file.to_str().unwrap())).unwrap_err();
    assert_eq!(err.key, "listen");
    assert!(
        err.problem
            .starts_with("must be a string, a whole number or a boolean"),
        "{err}"
    );
}

#[test]
fn postgres_needs_a_master_key_to_serve_only() {
    let args = given("database_url", "postgres://x/y");
    assert!(matches!(
        load(&args).unwrap().master_key,
        MasterKeySource::Missing
    ));
    let serving = Settings::load_with_env(&args, &|_| None).and_then(|s| {
        if matches!(s.master_key, MasterKeySource::Missing) {
            Err(MasterKeySource::missing())
        } else {
            Ok(s)
        }
    });
    assert_eq!(serving.unwrap_err().key, "master_key");
    let both = args
        .with("master_key_file", "k")
        .with("master_key", format!("{}=", "A".repeat(43)));
    assert_eq!(load(&both).unwrap_err().key, "master_key_file");
}

#[test]
fn tls_needs_both_files() {
    assert_eq!(load(&given("tls_cert", "c.pem")).unwrap_err().key, "tls_key");
    assert_eq!(load(&given("tls_key", "k.pem")).unwrap_err().key, "tls_cert");
    let both = given("tls_cert", "c.pem")
        .with("tls_key", "k.pem")
        .with("listen", "0.0.0.0:443");
    assert!(load(&both).unwrap().tls.is_some());
}

#[test]
fn insecure_http_can_be_allowed() {
    let args = given("listen", "0.0.0.0:0").with("allow_insecure_http", "true");
    assert!(load(&args).unwrap().allow_insecure_http);
    let env = [("GATEHOUSE_ALLOW_INSECURE_HTTP", "true")];
    assert!(
        load_env(&given("listen", "0.0.0.0:0"), &env)
            .unwrap()
            .allow_insecure_http
    );
}

#[test]
fn trusted_proxies_as_a_list_or_a_string() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("g.toml");
    let load_file = |toml: &str| {
        std::fs::write(&file, toml).unwrap();
        load(&given("config", file.to_str().unwrap()))
    };
    let expected = TrustedProxies::parse("10.0.0.0/8,192.0.2.7").unwrap();
    let listed = load_file("trusted_proxies = [\"10.0.0.0/8\", \"192.0.2.7\"]\n").unwrap();
    assert_eq!(listed.trusted_proxies, expected);
    let one_string = load_file("trusted_proxies = \"10.0.0.0/8 192.0.2.7\"\n").unwrap();
    assert_eq!(one_string.trusted_proxies, expected);
    assert_eq!(
        load_file("trusted_proxies = [1]\n").unwrap_err().key,
        "trusted_proxies"
    );
    assert_eq!(load_file("").unwrap().trusted_proxies, TrustedProxies::default());
    // A list is for the keys that are lists.
    assert_eq!(load_file("issuer = [\"http://a\"]\n").unwrap_err().key, "issuer");
}

#[test]
fn max_connections_per_address_from_each_source() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("g.toml");
    std::fs::write(&file, "max_connections_per_address = 0\n").unwrap();
    let from_file = given("config", file.to_str().unwrap());
    assert_eq!(load(&from_file).unwrap().limits.max_connections_per_address, 0);
    let flag_over_file = from_file.with("max_connections_per_address", "8");
    assert_eq!(
        load(&flag_over_file).unwrap().limits.max_connections_per_address,
        8
    );
    for bad in ["-1", "many", "1000001"] {
        let err = load(&given("max_connections_per_address", bad)).unwrap_err();
        assert_eq!(err.key, "max_connections_per_address", "{bad}");
    }
}

#[test]
fn the_default_issuer() {
    let issuer = |args: ConfigArgs, listening: &str| {
        let settings = load(&args).unwrap();
        settings.issuer(listening.parse().unwrap())
    };
    // The address as bound: `:0` has become a port.
    assert_eq!(
        issuer(ConfigArgs::default(), "127.0.0.1:41234"),
        "http://127.0.0.1:41234"
    );
    assert_eq!(issuer(ConfigArgs::default(), "[::1]:8080"), "http://[::1]:8080");
    // An unspecified address is reached on loopback of its family.
    let public = || given("allow_insecure_http", "true");
    assert_eq!(issuer(public(), "0.0.0.0:8080"), "http://127.0.0.1:8080");
    assert_eq!(issuer(public(), "[::]:8080"), "http://[::1]:8080");
    // TLS makes it https.
    let tls = given("tls_cert", "c.pem").with("tls_key", "k.pem");
    assert_eq!(issuer(tls, "127.0.0.1:8443"), "https://127.0.0.1:8443");
    // A configured issuer is used as given (less a trailing slash).
    let named = given("issuer", "https://auth.example/");
    assert_eq!(issuer(named, "0.0.0.0:8080"), "https://auth.example");

    // The admin commands, with nothing bound, use `listen` as configured.
    let settings = load(&given("listen", "127.0.0.1:9000")).unwrap();
    let config = settings.issuer_config(settings.listen);
    assert_eq!(config.issuer, "http://127.0.0.1:9000");
    assert_eq!(config.default_audience, config.issuer);
    let settings = load(&given("default_audience", "https://api.example")).unwrap();
    assert_eq!(
        settings.issuer_config(settings.listen).default_audience,
        "https://api.example"
    );
}

#[test]
fn routes_come_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("g.toml");
    std::fs::write(&file, "[[routes]]\npath = \"/login\"\nendpoint = \"token\"\n").unwrap();
    let settings = load(&given("config", file.to_str().unwrap())).unwrap();
    assert_eq!(settings.routes.len(), 1);
    assert_eq!(settings.routes[0].path, "/login");
}

/// `docs/configuration.md` holds the table made from the declaration, so every key is
/// documented with its flag, variable, default and meaning, and no key is documented
/// that does not exist.
#[test]
fn the_configuration_reference_documents_every_key() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let table = markdown_table();
    assert!(
        doc.contains(&table),
        "{} lacks the table of settings made from src/config/keys.rs; put this in its place:\n\n{table}",
        path.display()
    );
    for key in KEYS {
        assert!(doc.contains(&format!("`{}`", key.env)), "{}", key.name);
    }
}

#[test]
fn sqlite_paths() {
    assert_eq!(
        sqlite_path("sqlite:///tmp/a.db?mode=rwc"),
        Some(PathBuf::from("/tmp/a.db"))
    );
    assert_eq!(
        sqlite_path("sqlite://gatehouse.db"),
        Some(PathBuf::from("gatehouse.db"))
    );
    assert_eq!(sqlite_path("sqlite::memory:"), None);
}

#[test]
fn client_certificates_need_a_way_in() {
    let defaults = load(&ConfigArgs::default()).unwrap();
    assert!(!defaults.client_certificates.visible());
    assert!(!defaults.allow_insecure_jwks_uri);
    // A CA alone: no connection could bring a certificate.
    let err = load(&given("tls_client_ca", "ca.pem")).unwrap_err();
    assert_eq!(err.key, "tls_client_ca");
    assert!(
        err.problem.contains("tls_cert") && err.problem.contains("tls_client_cert_header"),
        "{err}"
    );
    let over_tls = given("tls_client_ca", "ca.pem")
        .with("tls_cert", "c.pem")
        .with("tls_key", "k.pem");
    let settings = load(&over_tls).unwrap();
    assert_eq!(settings.client_certificates.ca, Some(PathBuf::from("ca.pem")));
    assert!(settings.client_certificates.visible());
    let behind_a_proxy = given("tls_client_ca", "ca.pem").with("tls_client_cert_header", "X-Client-Cert");
    assert!(load(&behind_a_proxy).unwrap().client_certificates.ca.is_some());
    assert_eq!(
        load(&given("tls_client_ca", "")).unwrap_err().key,
        "tls_client_ca"
    );
}

#[test]
fn the_client_certificate_header_from_each_source() {
    let header = |settings: Settings| settings.client_certificates.header.map(|h| h.to_string());
    assert_eq!(
        header(load(&given("tls_client_cert_header", "X-Client-Cert")).unwrap()),
        Some("x-client-cert".to_owned())
    );
    let env = [("GATEHOUSE_TLS_CLIENT_CERT_HEADER", "ssl-client-cert")];
    assert_eq!(
        header(load_env(&ConfigArgs::default(), &env).unwrap()),
        Some("ssl-client-cert".to_owned())
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("g.toml");
    std::fs::write(&file, "tls_client_cert_header = \"X-Amzn-Mtls-Clientcert\"\n").unwrap();
    let settings = load(&given("config", file.to_str().unwrap())).unwrap();
    assert!(settings.client_certificates.visible());
    assert_eq!(header(settings), Some("x-amzn-mtls-clientcert".to_owned()));
    for bad in ["", "X Client Cert", "x-cert:", "Authorization", "x-forwarded-for"] {
        let err = load(&given("tls_client_cert_header", bad)).unwrap_err();
        assert_eq!(err.key, "tls_client_cert_header", "{bad:?}");
    }
}

#[test]
fn insecure_jwks_uri_can_be_allowed() {
    assert!(
        load(&given("allow_insecure_jwks_uri", "true"))
            .unwrap()
            .allow_insecure_jwks_uri
    );
    let env = [("GATEHOUSE_ALLOW_INSECURE_JWKS_URI", "true")];
    assert!(
        load_env(&ConfigArgs::default(), &env)
            .unwrap()
            .allow_insecure_jwks_uri
    );
    assert_eq!(
        load(&given("allow_insecure_jwks_uri", "yes")).unwrap_err().key,
        "allow_insecure_jwks_uri"
    );
}
