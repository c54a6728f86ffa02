//! `gatehouse user create|list|update|delete|disable|enable`.

use std::io::Write as _;

use gatehouse_core::store::UserStore;
use gatehouse_core::user::{User, UserId, MIN_PASSWORD_LEN};
use gatehouse_core::{Clock as _, Random, Scope, SecretHash, StoreError, SystemClock, SystemRandom};
use gatehouse_store::{Enabled, SqlStore, UserChanges};
use serde_json::{json, Value};

use super::table::{utc_time, Table};
use super::{print, random_hex, read_stdin_secret, write_stdout, AdminError};
use crate::cli::{CreateUser, JsonFlag, UpdateUser, UserCommand, UserRef};

pub(super) async fn run(store: &SqlStore, command: UserCommand) -> Result<(), AdminError> {
    match command {
        UserCommand::Create(args) => create(store, args).await,
        UserCommand::List(json) => list(store, json).await,
        UserCommand::Update(args) => update(store, args).await,
        UserCommand::Delete(UserRef { username, json }) => {
            if !store.delete_user(&username, SystemClock.now()).await? {
                return Err(not_found(&username));
            }
            print(&json!({ "deleted": username }), json)
        }
        UserCommand::Disable(UserRef { username, json }) => {
            if !store.disable_user(&username, SystemClock.now()).await? {
                return Err(not_found(&username));
            }
            print(&json!({ "disabled": username }), json)
        }
        UserCommand::Enable(UserRef { username, json }) => {
            match store.enable_user(&username, SystemClock.now()).await? {
                Enabled::NoSuchUser => return Err(not_found(&username)),
                Enabled::Now => {}
                Enabled::Already => {
                    // Said on stderr: stdout stays the same for scripts.
                    let _ = writeln!(std::io::stderr(), "gatehouse: {username:?} was enabled already");
                }
            }
            print(&json!({ "enabled": username }), json)
        }
    }
}

/// `user list`: a table, or `{"users": [...]}` with `--json`. A user without a
/// scope of their own is limited by the client alone: `-` in the table.
async fn list(store: &SqlStore, json: JsonFlag) -> Result<(), AdminError> {
    let users = store.list_users().await?;
    if json.json {
        let users: Vec<Value> = users.iter().map(user_json).collect();
        return write_stdout(&format!("{}\n", json!({ "users": users })));
    }
    let mut table = Table::new(&["USERNAME", "STATUS", "SCOPE", "CREATED"]);
    for user in &users {
        table.row(vec![
            user.username.clone(),
            if user.disabled { "disabled" } else { "enabled" }.to_owned(),
            user.scope.as_ref().map(Scope::to_string).unwrap_or_default(),
            utc_time(user.created_at),
        ]);
    }
    write_stdout(&table.render())
}

/// `user update`: a new password, a new scope, or the scope removed; prints the
/// user as `create` does.
async fn update(store: &SqlStore, args: UpdateUser) -> Result<(), AdminError> {
    let scope = match (args.scope.as_deref(), args.clear_scope) {
        (Some(text), _) => Some(Some(parse_user_scope(text)?)),
        (None, true) => Some(None),
        (None, false) => None,
    };
    if scope.is_none() && !args.password_stdin {
        return Err(AdminError::usage(
            "nothing to change: give --password-stdin, --scope or --clear-scope",
        ));
    }
    let password_hash = if args.password_stdin {
        let password = read_stdin_secret("--password-stdin", MIN_PASSWORD_LEN)?;
        Some(SecretHash::argon2id(&password, &SystemRandom).map_err(AdminError::failed)?)
    } else {
        None
    };
    let changes = UserChanges { password_hash, scope };
    let user = store
        .update_user(&args.username, &changes, SystemClock.now())
        .await?
        .ok_or_else(|| not_found(&args.username))?;
    print(&user_json(&user), args.json)
}

fn not_found(username: &str) -> AdminError {
    AdminError::failed(format!("no user named {username:?}"))
}

async fn create(store: &SqlStore, args: CreateUser) -> Result<(), AdminError> {
    let rng = SystemRandom;
    if args.username.is_empty() || args.username.len() > 255 || args.username.contains('\0') {
        return Err(AdminError::usage("--username must be 1 to 255 characters"));
    }
    let scope = args.scope.as_deref().map(parse_user_scope).transpose()?;
    let password = read_stdin_secret("--password-stdin", MIN_PASSWORD_LEN)?;
    let password_hash = SecretHash::argon2id(&password, &rng).map_err(AdminError::failed)?;
    let user = User {
        id: UserId(random_hex(&rng as &dyn Random, 16)),
        username: args.username,
        password_hash,
        scope,
        disabled: false,
        created_at: SystemClock.now(),
    };
    store.insert_user(&user).await.map_err(|e| match e {
        StoreError::Conflict(_) => {
            AdminError::failed(format!("a user named {:?} exists already", user.username))
        }
        other => other.into(),
    })?;
    print(&user_json(&user), args.json)
}

/// `--scope`: at least one scope. An empty one would be stored as no restriction
/// (see the store's `users.rs`), the opposite of what it seems to ask.
fn parse_user_scope(text: &str) -> Result<Scope, AdminError> {
    let scope = Scope::parse(text).map_err(|e| AdminError::usage(format!("--scope: {}", e.description())))?;
    if scope.is_empty() {
        return Err(AdminError::usage(
            "--scope: name at least one scope, or leave --scope out for a user limited only by the client",
        ));
    }
    Ok(scope)
}

/// A user as shown by the CLI: never the password hash. `scope` is null for a user
/// limited only by the client.
fn user_json(user: &User) -> Value {
    json!({
        "user_id": user.id.0,
        "username": user.username,
        "scope": user.scope.as_ref().map(Scope::to_string),
        "disabled": user.disabled,
        "created_at": user.created_at,
    })
}
