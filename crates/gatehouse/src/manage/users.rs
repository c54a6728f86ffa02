//! Users of the password grant: create, read, list, change, delete, ending their tokens.

use gatehouse_core::store::UserStore as _;
use gatehouse_core::user::{User, UserId, MIN_PASSWORD_LEN};
use gatehouse_core::{ClientSecret, Scope, StoreError, UnixTime};
use gatehouse_store::UserChanges;
use serde::Serialize;

use super::{audit, check_text, page_limit, Actor, ManageError, Manager, Page};

/// A user to create.
#[derive(Debug)]
pub struct NewUser {
    /// The login name: 1 to 255 characters, no control characters.
    pub username: String,
    /// The password, at least [`MIN_PASSWORD_LEN`] characters; stored as Argon2id.
    pub password: ClientSecret,
    /// The scopes the user may grant, space-separated; `None`: limited by the client
    /// alone.
    pub scope: Option<String>,
}

/// A change to a user: `None` leaves a setting as it is; `scope: Some(None)` leaves
/// the user limited by the client alone.
#[derive(Debug, Default)]
pub struct UserPatch {
    /// A new password.
    pub password: Option<ClientSecret>,
    /// New scopes, or none of the user's own.
    pub scope: Option<Option<String>>,
    /// Disable (ending every token the user holds) or enable (earlier tokens stay dead).
    pub disabled: Option<bool>,
}

/// A user as the CLI and the API show it: never the password or its hash.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserView {
    /// The stable id: the `sub` of the user's tokens.
    pub user_id: String,
    /// The login name.
    pub username: String,
    /// The scopes the user may grant; `null`: limited by the client alone.
    pub scope: Option<String>,
    /// Whether the user is disabled.
    pub disabled: bool,
    /// When the user was created, seconds since the epoch.
    pub created_at: UnixTime,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            user_id: user.id.0.clone(),
            username: user.username.clone(),
            scope: user.scope.as_ref().map(Scope::to_string),
            disabled: user.disabled,
            created_at: user.created_at,
        }
    }
}

/// A user's scope: at least one. An empty one would be stored as no restriction
/// (see the store's `users.rs`), the opposite of what it seems to ask.
fn parse_user_scope(text: &str) -> Result<Scope, ManageError> {
    let scope = Scope::parse(text).map_err(|e| ManageError::invalid("scope", e.description()))?;
    if scope.is_empty() {
        return Err(ManageError::invalid(
            "scope",
            "name at least one scope, or leave the scope out for a user limited only by the client",
        ));
    }
    Ok(scope)
}

fn check_password(password: &ClientSecret) -> Result<(), ManageError> {
    if password.expose().chars().count() < MIN_PASSWORD_LEN {
        return Err(ManageError::invalid(
            "password",
            format!("must be at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    Ok(())
}

/// A username to look up: no user has a control character in its name (creation
/// refuses them), and PostgreSQL cannot even compare a text with NUL in it, so such
/// a name is refused before any query.
fn check_lookup(field: &'static str, username: &str) -> Result<(), ManageError> {
    if username.chars().any(char::is_control) {
        return Err(ManageError::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

fn user_not_found(username: &str) -> ManageError {
    ManageError::NotFound {
        kind: "user",
        id: username.to_owned(),
    }
}

impl Manager {
    /// Registers a user.
    pub async fn create_user(&self, actor: &Actor, new: NewUser) -> Result<User, ManageError> {
        check_text("username", &new.username)?;
        let scope = new.scope.as_deref().map(parse_user_scope).transpose()?;
        check_password(&new.password)?;
        let password_hash = self.argon2id(&new.password).await?;
        let user = User {
            id: UserId(crate::admin::random_hex(self.rng().as_ref(), 16)),
            username: new.username,
            password_hash,
            scope,
            disabled: false,
            created_at: self.clock().now(),
        };
        self.store().insert_user(&user).await.map_err(|e| match e {
            StoreError::Conflict(_) => ManageError::Conflict {
                field: "username",
                id: user.username.clone(),
            },
            other => other.into(),
        })?;
        let mut fields = vec!["username", "password"];
        if user.scope.is_some() {
            fields.push("scope");
        }
        audit(actor, "user.create", &user.username, &fields);
        Ok(user)
    }

    /// One user.
    pub async fn user(&self, username: &str) -> Result<User, ManageError> {
        check_lookup("username", username)?;
        self.store()
            .find_user(username)
            .await?
            .ok_or_else(|| user_not_found(username))
    }

    /// A page of users, by username, after `after`.
    pub async fn list_users(
        &self,
        after: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Page<User>, ManageError> {
        let limit = page_limit(limit)?;
        if let Some(after) = after {
            check_lookup("after", after)?;
        }
        let fetched = self.store().list_users_page(after, limit + 1).await?;
        Ok(Page::from_fetched(fetched, limit, |u: &User| u.username.clone()))
    }

    /// Every user, by username (the CLI's `user list`).
    pub async fn all_users(&self) -> Result<Vec<User>, ManageError> {
        Ok(self.store().list_users().await?)
    }

    /// Changes a user in one transaction and returns the user as it is now.
    pub async fn update_user(
        &self,
        actor: &Actor,
        username: &str,
        patch: UserPatch,
    ) -> Result<User, ManageError> {
        let mut fields = Vec::new();
        if patch.password.is_some() {
            fields.push("password");
        }
        if patch.scope.is_some() {
            fields.push("scope");
        }
        if patch.disabled.is_some() {
            fields.push("disabled");
        }
        if fields.is_empty() {
            return Err(ManageError::invalid("", "nothing to change"));
        }
        check_lookup("username", username)?;
        let scope = match patch.scope {
            Some(Some(text)) => Some(Some(parse_user_scope(&text)?)),
            Some(None) => Some(None),
            None => None,
        };
        let password_hash = match &patch.password {
            Some(password) => {
                check_password(password)?;
                Some(self.argon2id(password).await?)
            }
            None => None,
        };
        let changes = UserChanges {
            password_hash,
            scope,
            disabled: patch.disabled,
        };
        let user = self
            .store()
            .update_user(username, &changes, self.clock().now())
            .await?
            .ok_or_else(|| user_not_found(username))?;
        audit(actor, "user.update", username, &fields);
        Ok(user)
    }

    /// Deletes a user; every token the user holds ends.
    pub async fn delete_user(&self, actor: &Actor, username: &str) -> Result<(), ManageError> {
        check_lookup("username", username)?;
        if !self.store().delete_user(username, self.clock().now()).await? {
            return Err(user_not_found(username));
        }
        audit(actor, "user.delete", username, &[]);
        Ok(())
    }

    /// Ends every login of the user and every token issued to the user, JWTs
    /// included; returns once a token issued after the call lives.
    pub async fn revoke_user_tokens(&self, actor: &Actor, username: &str) -> Result<(), ManageError> {
        check_lookup("username", username)?;
        if !self
            .store()
            .revoke_user_tokens(username, self.clock().now())
            .await?
        {
            return Err(user_not_found(username));
        }
        audit(actor, "user.revoke_tokens", username, &[]);
        self.wait_out_second().await;
        Ok(())
    }
}
