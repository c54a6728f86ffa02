//! The SDK against the README's Quickstart server: get a client_credentials token,
//! see it served from the cache, and ask the server what it is (RFC 7662).
//!
//! ```sh
//! export GATEHOUSE_ISSUER=http://127.0.0.1:8080   # the default
//! export CLIENT_ID=… CLIENT_SECRET=…              # from `gatehouse client create --json`
//! cargo run -p gatehouse-client --example quickstart
//! ```
//!
//! `GATEHOUSE_SCOPE` asks for a narrower scope than the client's full set (space-separated).

use std::env;
use std::error::Error;

use gatehouse_client::{
    ClientCredentials, ExposeSecret, OAuthClient, SecretString, TokenEndpoint, TokenParams,
};
use serde_json::Value;

/// What the example learned, printed by `main`.
pub struct Report {
    /// The scope granted.
    pub scope: String,
    /// Seconds until the SDK stops handing the token out.
    pub expires_in: u64,
    /// Whether a second call got the same token from the cache.
    pub cached: bool,
    /// The server's introspection answer for the token.
    pub introspection: Value,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("quickstart: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn Error>> {
    let issuer = env::var("GATEHOUSE_ISSUER").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let client_id = required("CLIENT_ID")?;
    let client_secret = SecretString::from(required("CLIENT_SECRET")?);
    let scope = env::var("GATEHOUSE_SCOPE").ok();

    let report = quickstart(&issuer, &client_id, client_secret, scope.as_deref()).await?;
    println!("scope:      {}", report.scope);
    println!("expires in: {} s", report.expires_in);
    println!("cached:     {}", report.cached);
    println!("introspection: {}", report.introspection);
    Ok(())
}

/// Gets a token for `client_id` from the server at `issuer`, twice, and introspects it.
pub async fn quickstart(
    issuer: &str,
    client_id: &str,
    client_secret: SecretString,
    scope: Option<&str>,
) -> Result<Report, Box<dyn Error>> {
    // The token endpoint comes from the server's RFC 8414 metadata. Plain HTTP is
    // allowed to loopback addresses only; anything else needs https.
    let client = OAuthClient::builder(
        TokenEndpoint::discover(issuer)?,
        ClientCredentials::new(client_id, client_secret.clone()),
    )
    .build()?;
    let params = match scope {
        Some(scope) => TokenParams::new().scope(scope),
        // No scope: the server grants the client's full set.
        None => TokenParams::new(),
    };
    let source = client.token_source(params);

    let token = source.token().await?;
    // The second call is answered from the cache: the token is renewed only when
    // it nears its expiry.
    let cached = source.token().await? == token;
    let expires_in = token
        .expires_at()
        .saturating_duration_since(tokio::time::Instant::now())
        .as_secs();

    // Introspection is not part of the SDK (it is the resource server's side), so
    // this is a plain request: the client may introspect its own tokens, with
    // client_secret_post.
    let http = reqwest::Client::new();
    let metadata: Value = http
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            issuer.trim_end_matches('/')
        ))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let endpoint = metadata["introspection_endpoint"]
        .as_str()
        .ok_or("the metadata names no introspection_endpoint")?;
    let introspection: Value = http
        .post(endpoint)
        .form(&[
            ("client_id", client_id),
            ("client_secret", client_secret.expose_secret()),
            ("token", token.secret().expose_secret()),
        ])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;

    Ok(Report {
        scope: token.scope().unwrap_or_default().to_owned(),
        expires_in,
        cached,
        introspection,
    })
}

/// The environment variable `name`, or an error that says which one is missing.
fn required(name: &str) -> Result<String, Box<dyn Error>> {
    env::var(name).map_err(|_| format!("{name} is not set (see the README's Quickstart)").into())
}
