//! `gatehouse user create|list|update|delete|disable|enable`.

use std::io::Write as _;

use gatehouse_core::store::UserStore;
use gatehouse_core::user::{User, MIN_PASSWORD_LEN};
use gatehouse_core::{Clock as _, Scope, SystemClock};
use gatehouse_store::Enabled;
use serde_json::{json, Value};

use super::table::{utc_time, Table};
use super::{print, read_stdin_secret, write_stdout, AdminError};
use crate::cli::{CreateUser, JsonFlag, UpdateUser, UserCommand, UserRef};
use crate::manage::{Actor, Manager, NewUser, UserPatch, UserView};

pub(super) async fn run(manager: &Manager, command: UserCommand) -> Result<(), AdminError> {
    let store = manager.store();
    match command {
        UserCommand::Create(args) => create(manager, args).await,
        UserCommand::List(json) => list(manager, json).await,
        UserCommand::Update(args) => update(manager, args).await,
        UserCommand::Delete(UserRef { username, json }) => {
            manager.delete_user(&Actor::Cli, &username).await?;
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
async fn list(manager: &Manager, json: JsonFlag) -> Result<(), AdminError> {
    let users = manager.all_users().await?;
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
async fn update(manager: &Manager, args: UpdateUser) -> Result<(), AdminError> {
    let scope = match (args.scope, args.clear_scope) {
        (Some(text), _) => Some(Some(text)),
        (None, true) => Some(None),
        (None, false) => None,
    };
    if scope.is_none() && !args.password_stdin {
        return Err(AdminError::usage(
            "nothing to change: give --password-stdin, --scope or --clear-scope",
        ));
    }
    let password = if args.password_stdin {
        Some(read_stdin_secret("--password-stdin", MIN_PASSWORD_LEN)?)
    } else {
        None
    };
    let patch = UserPatch {
        password,
        scope,
        disabled: None,
    };
    let user = manager.update_user(&Actor::Cli, &args.username, patch).await?;
    print(&user_json(&user), args.json)
}

fn not_found(username: &str) -> AdminError {
    AdminError::failed(format!("no user named {username:?}"))
}

async fn create(manager: &Manager, args: CreateUser) -> Result<(), AdminError> {
    let password = read_stdin_secret("--password-stdin", MIN_PASSWORD_LEN)?;
    let new = NewUser {
        username: args.username,
        password,
        scope: args.scope,
    };
    let user = manager.create_user(&Actor::Cli, new).await?;
    print(&user_json(&user), args.json)
}

/// A user as shown by the CLI: [`UserView`], as the API shows it.
fn user_json(user: &User) -> Value {
    serde_json::to_value(UserView::from(user)).unwrap_or_default()
}
