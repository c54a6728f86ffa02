//! `gatehouse client create|list|show|update|delete|rotate-secret`: the command
//! line's words around [`crate::manage`]'s client operations.

use std::io::Read as _;
use std::path::Path;

use gatehouse_core::secret::MIN_IMPORTED_SECRET_LEN;
use gatehouse_core::{AuthMethod, GrantType};
use serde_json::{json, Value};

use super::table::{utc_time, Table};
use super::{print, read_stdin_secret, write_stdout, AdminError};
use crate::cli::{
    AuthFlags, ClientCommand, ClientRef, CreateClient, CreateFormat, JsonFlag, Lifetime, RotateSecret,
    UpdateClient,
};
use crate::manage::{Actor, ClientPatch, ClientView, JwksDocument, Manager, NewClient};

/// The largest JWK Set file read: the admin API's body limit, and room for a
/// hundred RSA keys with their certificates.
pub const MAX_JWKS_FILE_BYTES: u64 = 64 * 1024;

pub(super) async fn run(manager: &Manager, command: ClientCommand) -> Result<(), AdminError> {
    let actor = &Actor::Cli;
    match command {
        ClientCommand::Create(args) => create(manager, args).await,
        ClientCommand::List(json) => list(manager, json).await,
        ClientCommand::Show(ClientRef { id, json }) => print(&client_json(&manager.client(&id).await?), json),
        ClientCommand::Update(args) => update(manager, args).await,
        ClientCommand::Delete(ClientRef { id, json }) => {
            manager.delete_client(actor, &id).await?;
            print(&json!({ "deleted": id }), json)
        }
        ClientCommand::RotateSecret(RotateSecret { id, grace, json }) => {
            let rotated = manager.rotate_secret(actor, &id, grace).await?;
            print(&serde_json::to_value(&rotated).unwrap_or_default(), json)
        }
    }
}

async fn create(manager: &Manager, args: CreateClient) -> Result<(), AdminError> {
    let client_secret = if args.secret_stdin {
        Some(read_stdin_secret("--secret-stdin", MIN_IMPORTED_SECRET_LEN)?)
    } else {
        None
    };
    let jwks = args.auth.jwks_file.as_deref().map(read_jwks_file).transpose()?;
    let new = NewClient {
        name: args.name,
        client_id: args.client_id,
        scope: Some(args.scope),
        grant_types: Some(args.grant_types),
        audience: args.audience,
        token_ttl: args.token_ttl,
        refresh_token_ttl: args.refresh_token_ttl,
        token_format: Some(args.token_format),
        can_introspect: args.can_introspect,
        client_secret,
        auth_method: args.auth.auth_method,
        jwks,
        jwks_uri: args.auth.jwks_uri,
        tls_subject_dn: args.auth.tls_subject_dn,
        bound_tokens: args.bound_tokens,
    };
    let created = manager.create_client(&Actor::Cli, new).await?;
    let (client, secret) = (&created.client, created.secret.as_ref());
    let format = match args.format {
        Some(format) => format,
        None if args.json.json => CreateFormat::Json,
        None => CreateFormat::Text,
    };
    if format == CreateFormat::Env {
        let mut lines = format!("CLIENT_ID={}\n", shell_quote(client.id.as_str()));
        // A client of a key or certificate method has no secret to print.
        if let Some(secret) = secret {
            lines.push_str(&format!("CLIENT_SECRET={}\n", shell_quote(secret.expose())));
        }
        return write_stdout(&lines);
    }
    let mut shown = client_json(client);
    if let Some(secret) = secret {
        shown["client_secret"] = Value::String(secret.expose().to_owned());
    }
    print(
        &shown,
        JsonFlag {
            json: format == CreateFormat::Json,
        },
    )
}

/// The JWK Set in the file `--jwks-file` names: at most [`MAX_JWKS_FILE_BYTES`] of
/// UTF-8. Whether it is a usable JWK Set is the admin operations' to say.
fn read_jwks_file(path: &Path) -> Result<JwksDocument, AdminError> {
    let unreadable =
        |e: std::io::Error| AdminError::usage(format!("--jwks-file: cannot read {}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut bytes = Vec::new();
    file.take(MAX_JWKS_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_JWKS_FILE_BYTES {
        return Err(AdminError::usage(format!(
            "--jwks-file: {} is larger than {MAX_JWKS_FILE_BYTES} bytes: a JWK Set of public keys is smaller",
            path.display()
        )));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| AdminError::usage(format!("--jwks-file: {} is not UTF-8 text", path.display())))?;
    Ok(JwksDocument::Text(text))
}

/// `text` as one word for a POSIX shell: bare when it holds only characters no
/// shell treats specially, else in single quotes (a `'` inside becomes `'\''`).
fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.,:/+=@%".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// `client list`: a table, or `{"clients": [...]}` with `--json`.
async fn list(manager: &Manager, json: JsonFlag) -> Result<(), AdminError> {
    let clients = manager.all_clients().await?;
    if json.json {
        let clients: Vec<Value> = clients.iter().map(client_json).collect();
        return write_stdout(&format!("{}\n", json!({ "clients": clients })));
    }
    let mut table = Table::new(&["CLIENT_ID", "NAME", "GRANT_TYPES", "SCOPE", "TOKENS", "CREATED"]);
    for client in &clients {
        table.row(vec![
            client.id.as_str().to_owned(),
            client.name.clone(),
            // Commas, as `--grant-types` takes them.
            client
                .grant_types
                .iter()
                .map(GrantType::as_str)
                .collect::<Vec<_>>()
                .join(","),
            client.scope.to_string(),
            client.token_format.as_str().to_owned(),
            utc_time(client.created_at),
        ]);
    }
    write_stdout(&table.render())
}

/// `client update`: the flags given, in one statement; prints the client as
/// `client show` does.
async fn update(manager: &Manager, args: UpdateClient) -> Result<(), AdminError> {
    let lifetime = |value: Option<Lifetime>| match value {
        None => None,
        Some(Lifetime::ServerDefault) => Some(None),
        Some(Lifetime::Seconds(seconds)) => Some(Some(seconds)),
    };
    let audience = match (args.audience, args.clear_audience) {
        (Some(audience), _) if audience.is_empty() => {
            return Err(AdminError::usage(
                "--audience must not be empty; --clear-audience gives the server's default_audience",
            ))
        }
        (Some(audience), _) => Some(Some(audience)),
        (None, true) => Some(None),
        (None, false) => None,
    };
    let mut patch = ClientPatch {
        name: args.name,
        scope: args.scope,
        grant_types: args.grant_types,
        audience,
        token_ttl: lifetime(args.token_ttl),
        refresh_token_ttl: lifetime(args.refresh_token_ttl),
        can_introspect: args.can_introspect,
        bound_tokens: args.bound_tokens,
        ..ClientPatch::default()
    };
    let nothing = patch.name.is_none()
        && patch.scope.is_none()
        && patch.grant_types.is_none()
        && patch.audience.is_none()
        && patch.token_ttl.is_none()
        && patch.refresh_token_ttl.is_none()
        && patch.can_introspect.is_none()
        && patch.bound_tokens.is_none()
        && !args.auth.given();
    if nothing {
        return Err(AdminError::usage(
            "nothing to change: give --name, --scope, --grant-types, --audience, --clear-audience, \
             --token-ttl, --refresh-token-ttl, --can-introspect, --auth-method, --jwks-file, --jwks-uri, \
             --tls-subject-dn or --bound-tokens",
        ));
    }
    if args.auth.given() {
        let current = manager.client(&args.id).await?;
        auth_patch(&mut patch, args.auth, &current.auth)?;
    }
    let client = manager.update_client(&Actor::Cli, &args.id, patch).await?;
    print(&client_json(&client), args.json)
}

impl AuthFlags {
    fn given(&self) -> bool {
        self.auth_method.is_some()
            || self.jwks_file.is_some()
            || self.jwks_uri.is_some()
            || self.tls_subject_dn.is_some()
    }
}

/// The authentication flags of `client update` as a change of `current`: keys given
/// replace the keys of either kind, and a new method drops the keys and subject DN
/// it does not use, so that `--auth-method tls_client_auth --tls-subject-dn DN` is
/// one whole change. (The API takes each member as given, `null` to drop one.) Only
/// what the client has is dropped: the audit event names what changed.
fn auth_patch(
    patch: &mut ClientPatch,
    flags: AuthFlags,
    current: &gatehouse_core::AuthSettings,
) -> Result<(), AdminError> {
    let method = flags
        .auth_method
        .as_deref()
        .and_then(|m| m.parse::<AuthMethod>().ok());
    let keys_given = flags.jwks_file.is_some() || flags.jwks_uri.is_some();
    let drops_keys = keys_given || method.is_some_and(|m| !m.uses_keys());
    if drops_keys && current.jwks.is_some() {
        patch.jwks = Some(None);
    }
    if drops_keys && current.jwks_uri.is_some() {
        patch.jwks_uri = Some(None);
    }
    if method.is_some_and(|m| m != AuthMethod::TlsClientAuth) && current.tls_subject_dn.is_some() {
        patch.tls_subject_dn = Some(None);
    }
    if let Some(path) = &flags.jwks_file {
        patch.jwks = Some(Some(read_jwks_file(path)?));
    }
    if let Some(uri) = flags.jwks_uri {
        patch.jwks_uri = Some(Some(uri));
    }
    if let Some(dn) = flags.tls_subject_dn {
        patch.tls_subject_dn = Some(Some(dn));
    }
    patch.auth_method = flags.auth_method;
    Ok(())
}

/// A client as shown by the CLI: [`ClientView`], as the API shows it.
fn client_json(client: &gatehouse_core::Client) -> Value {
    serde_json::to_value(ClientView::from(client)).unwrap_or_default()
}
