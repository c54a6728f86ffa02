//! `gatehouse client create|list|show|update|delete|rotate-secret`: the command
//! line's words around [`crate::manage`]'s client operations.

use gatehouse_core::secret::MIN_IMPORTED_SECRET_LEN;
use gatehouse_core::GrantType;
use serde_json::{json, Value};

use super::table::{utc_time, Table};
use super::{print, read_stdin_secret, write_stdout, AdminError};
use crate::cli::{
    ClientCommand, ClientRef, CreateClient, CreateFormat, JsonFlag, Lifetime, RotateSecret, UpdateClient,
};
use crate::manage::{Actor, ClientPatch, ClientView, Manager, NewClient};

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
    };
    let created = manager.create_client(&Actor::Cli, new).await?;
    let (client, secret) = (&created.client, &created.secret);
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
    let mut shown = client_json(client);
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
    let patch = ClientPatch {
        name: args.name,
        scope: args.scope,
        grant_types: args.grant_types,
        audience,
        token_ttl: lifetime(args.token_ttl),
        refresh_token_ttl: lifetime(args.refresh_token_ttl),
        can_introspect: args.can_introspect,
        ..ClientPatch::default()
    };
    let nothing = patch.name.is_none()
        && patch.scope.is_none()
        && patch.grant_types.is_none()
        && patch.audience.is_none()
        && patch.token_ttl.is_none()
        && patch.refresh_token_ttl.is_none()
        && patch.can_introspect.is_none();
    if nothing {
        return Err(AdminError::usage(
            "nothing to change: give --name, --scope, --grant-types, --audience, --clear-audience, \
             --token-ttl, --refresh-token-ttl or --can-introspect",
        ));
    }
    let client = manager.update_client(&Actor::Cli, &args.id, patch).await?;
    print(&client_json(&client), args.json)
}

/// A client as shown by the CLI: [`ClientView`], as the API shows it.
fn client_json(client: &gatehouse_core::Client) -> Value {
    serde_json::to_value(ClientView::from(client)).unwrap_or_default()
}
