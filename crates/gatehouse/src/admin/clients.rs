//! `gatehouse client create|list|show|update|delete|rotate-secret`.

use gatehouse_core::secret::MIN_IMPORTED_SECRET_LEN;
use gatehouse_core::store::{ClientLookup, ClientStore};
use gatehouse_core::{
    Client, ClientId, ClientSecret, Clock as _, GrantType, Scope, SecretHash, StoreError, SystemClock,
    SystemRandom, TokenFormat,
};
use gatehouse_store::{ClientChanges, SqlStore};
use serde_json::{json, Value};

use super::table::{utc_time, Table};
use super::{print, random_hex, read_stdin_secret, write_stdout, AdminError};
use crate::cli::{
    ClientCommand, ClientRef, CreateClient, CreateFormat, JsonFlag, Lifetime, RotateSecret, UpdateClient,
};

/// Longest lifetime a client may be given: ten years.
const MAX_TTL: i64 = 10 * 365 * 24 * 3600;

/// Longest grace period of a replaced secret: 30 days. A roll-over that takes longer
/// is a second secret in all but name.
const MAX_GRACE: i64 = 30 * 24 * 3600;

pub(super) async fn run(store: &SqlStore, command: ClientCommand) -> Result<(), AdminError> {
    match command {
        ClientCommand::Create(args) => create(store, args).await,
        ClientCommand::List(json) => list(store, json).await,
        ClientCommand::Show(ClientRef { id, json }) => {
            let client = store
                .find_client(&parse_id(&id)?)
                .await?
                .ok_or_else(|| not_found(&id))?;
            print(&client_json(&client), json)
        }
        ClientCommand::Update(args) => update(store, args).await,
        ClientCommand::Delete(ClientRef { id, json }) => {
            if !store.delete_client(&parse_id(&id)?, SystemClock.now()).await? {
                return Err(not_found(&id));
            }
            print(&json!({ "deleted": id }), json)
        }
        ClientCommand::RotateSecret(RotateSecret { id, grace, json }) => {
            let client_id = parse_id(&id)?;
            let now = SystemClock.now();
            let previous_valid_until = match grace {
                None | Some(0) => None,
                Some(seconds) if (1..=MAX_GRACE).contains(&seconds) => Some(now + seconds),
                Some(_) => {
                    return Err(AdminError::usage(format!(
                        "--grace must be from 0 to {MAX_GRACE} seconds"
                    )))
                }
            };
            let secret = ClientSecret::generate(&SystemRandom);
            if !store
                .replace_secret(
                    &client_id,
                    &SecretHash::sha256(&secret),
                    previous_valid_until,
                    now,
                )
                .await?
            {
                return Err(not_found(&id));
            }
            print(
                &json!({
                    "client_id": id,
                    "client_secret": secret.expose(),
                    "previous_secret_expires_at": previous_valid_until,
                }),
                json,
            )
        }
    }
}

fn parse_id(id: &str) -> Result<ClientId, AdminError> {
    ClientId::parse(id).ok_or_else(|| {
        AdminError::usage("a client id is 1 to 255 printable ASCII characters (RFC 6749 appendix A.1)")
    })
}

fn not_found(id: &str) -> AdminError {
    AdminError::failed(format!("no client with id {id:?}"))
}

fn ttl(value: Option<i64>, flag: &str) -> Result<Option<i64>, AdminError> {
    match value {
        Some(s) if !(1..=MAX_TTL).contains(&s) => Err(AdminError::usage(format!(
            "{flag} must be from 1 to {MAX_TTL} seconds"
        ))),
        other => Ok(other),
    }
}

async fn create(store: &SqlStore, args: CreateClient) -> Result<(), AdminError> {
    let rng = SystemRandom;
    let id = match &args.client_id {
        Some(id) => parse_id(id)?,
        // 128 random bits in hex: no `-` or `_` that a shell or a flag parser could trip on.
        None => parse_id(&random_hex(&rng, 16))?,
    };
    let scope = parse_scope(&args.scope)?;
    let token_format: TokenFormat = args
        .token_format
        .parse()
        .map_err(|()| AdminError::usage("--token-format must be jwt or opaque"))?;
    if args.audience.as_deref() == Some("") {
        return Err(AdminError::usage("--audience must not be empty"));
    }
    let (secret, secret_hash) = if args.secret_stdin {
        let secret = read_stdin_secret("--secret-stdin", MIN_IMPORTED_SECRET_LEN)?;
        let hash = SecretHash::argon2id(&secret, &rng).map_err(AdminError::failed)?;
        (secret, hash)
    } else {
        let secret = ClientSecret::generate(&rng);
        let hash = SecretHash::sha256(&secret);
        (secret, hash)
    };
    let client = Client {
        id,
        name: args.name,
        secret_hash,
        previous_secret: None,
        scope,
        grant_types: args.grant_types,
        audience: args.audience,
        access_token_ttl: ttl(args.token_ttl, "--token-ttl")?,
        refresh_token_ttl: ttl(args.refresh_token_ttl, "--refresh-token-ttl")?,
        token_format,
        can_introspect: args.can_introspect,
        created_at: SystemClock.now(),
    };
    store.insert_client(&client).await.map_err(|e| match e {
        StoreError::Conflict(_) => AdminError::failed(format!(
            "a client with id {:?} exists already",
            client.id.as_str()
        )),
        other => other.into(),
    })?;
    let format = match args.format {
        Some(format) => format,
        None if args.json.json => CreateFormat::Json,
        None => CreateFormat::Text,
    };
    if format == CreateFormat::Env {
        return write_stdout(&format!(
            "CLIENT_ID={}\nCLIENT_SECRET={}\n",
            shell_quote(client.id.as_str()),
            shell_quote(secret.expose())
        ));
    }
    let mut shown = client_json(&client);
    shown["client_secret"] = Value::String(secret.expose().to_owned());
    print(
        &shown,
        JsonFlag {
            json: format == CreateFormat::Json,
        },
    )
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

fn parse_scope(text: &str) -> Result<Scope, AdminError> {
    Scope::parse(text).map_err(|e| AdminError::usage(format!("--scope: {}", e.description())))
}

/// `client list`: a table, or `{"clients": [...]}` with `--json`.
async fn list(store: &SqlStore, json: JsonFlag) -> Result<(), AdminError> {
    let clients = store.list_clients().await?;
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
async fn update(store: &SqlStore, args: UpdateClient) -> Result<(), AdminError> {
    let lifetime = |value: Option<Lifetime>, flag: &str| -> Result<Option<Option<i64>>, AdminError> {
        match value {
            None => Ok(None),
            Some(Lifetime::ServerDefault) => Ok(Some(None)),
            Some(Lifetime::Seconds(seconds)) => ttl(Some(seconds), flag).map(Some),
        }
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
    let changes = ClientChanges {
        name: args.name,
        scope: args.scope.as_deref().map(parse_scope).transpose()?,
        grant_types: args.grant_types,
        audience,
        access_token_ttl: lifetime(args.token_ttl, "--token-ttl")?,
        refresh_token_ttl: lifetime(args.refresh_token_ttl, "--refresh-token-ttl")?,
        can_introspect: args.can_introspect,
    };
    let nothing = changes.name.is_none()
        && changes.scope.is_none()
        && changes.grant_types.is_none()
        && changes.audience.is_none()
        && changes.access_token_ttl.is_none()
        && changes.refresh_token_ttl.is_none()
        && changes.can_introspect.is_none();
    if nothing {
        return Err(AdminError::usage(
            "nothing to change: give --name, --scope, --grant-types, --audience, --clear-audience, \
             --token-ttl, --refresh-token-ttl or --can-introspect",
        ));
    }
    let client = store
        .update_client(&parse_id(&args.id)?, &changes, SystemClock.now())
        .await?
        .ok_or_else(|| not_found(&args.id))?;
    print(&client_json(&client), args.json)
}

/// A client as shown by the CLI: everything but the secret hash.
fn client_json(client: &Client) -> Value {
    json!({
        "client_id": client.id.as_str(),
        "name": client.name,
        "scope": client.scope.to_string(),
        "grant_types": client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "audience": client.audience,
        "token_ttl": client.access_token_ttl,
        "refresh_token_ttl": client.refresh_token_ttl,
        "token_format": client.token_format.as_str(),
        "can_introspect": client.can_introspect,
        "created_at": client.created_at,
        "previous_secret_expires_at": client.previous_secret.as_ref().map(|p| p.expires_at),
    })
}
