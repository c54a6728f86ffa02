//! `/admin/v1/users`: the users of the password grant.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gatehouse_guard::Claims;
use serde::{Deserialize, Serialize};

use super::clients::EmptyBody;
use super::input::{nullable, present, JsonBody, OptionalJsonBody, PageQuery, PathId, SecretInput};
use super::problem::Problem;
use super::{actor, location, ProblemDoc};
use crate::http::AppState;
use crate::manage::{NewUser, UserPatch, UserView};

/// A new user.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    /// The login name: 1 to 255 characters, no control characters.
    username: String,
    /// At least 8 characters; stored as Argon2id.
    #[schema(value_type = String)]
    password: SecretInput,
    /// The scopes the user may grant, space-separated (at least one); absent or
    /// `null`: limited by the client alone.
    #[serde(default)]
    scope: Option<String>,
}

/// A change to a user (a merge: an absent member is unchanged), in one transaction.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatchBody {
    /// A new password.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    password: Option<SecretInput>,
    /// New scopes; `null`: limited by the client alone.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, nullable)]
    scope: Option<Option<String>>,
    /// `true` disables the user and ends every token it holds; `false` enables it
    /// (earlier tokens stay dead).
    #[serde(default, deserialize_with = "present")]
    disabled: Option<bool>,
}

/// A page of users.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UserList {
    /// The users, ordered by username.
    users: Vec<UserView>,
    /// The `after` of the next page; `null` on the last page.
    next: Option<String>,
}

/// Lists users, by username.
#[utoipa::path(get, path = "/admin/v1/users", tag = "admin", operation_id = "admin_list_users",
    params(
        ("limit" = Option<i64>, Query, description = "Page size, 1 to 1000; 100 when absent"),
        ("after" = Option<String>, Query, description = "The `next` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of users", body = UserList),
        (status = 400, description = "A bad or unknown query parameter (`field`)", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("admin_token" = ["gatehouse:admin:read"]), ("admin_token" = ["gatehouse:admin"])),
)]
pub async fn list(State(state): State<AppState>, query: PageQuery) -> Result<Json<UserList>, Problem> {
    let page = state
        .manager
        .list_users(query.after.as_deref(), query.limit)
        .await?;
    Ok(Json(UserList {
        users: page.items.iter().map(UserView::from).collect(),
        next: page.next,
    }))
}

/// Creates a user.
#[utoipa::path(post, path = "/admin/v1/users", tag = "admin", operation_id = "admin_create_user",
    request_body = NewUserBody,
    responses(
        (status = 201, description = "Created; `Location` names it", body = UserView,
            headers(("Location" = String, description = "/admin/v1/users/{username}"))),
        (status = 400, description = "An invalid or unknown member (`field`), or malformed JSON", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The username is taken", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Body over 64 KiB", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "The database cannot be reached, or every password hashing slot is busy (Retry-After)", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("admin_token" = ["gatehouse:admin"])),
)]
pub async fn create(
    State(state): State<AppState>,
    claims: Claims,
    JsonBody(body): JsonBody<NewUserBody>,
) -> Result<Response, Problem> {
    let new = NewUser {
        username: body.username,
        password: body.password.0,
        scope: body.scope,
    };
    let user = state.manager.create_user(&actor(&claims), new).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location("users", &user.username))],
        Json(UserView::from(&user)),
    )
        .into_response())
}

/// One user.
#[utoipa::path(get, path = "/admin/v1/users/{username}", tag = "admin", operation_id = "admin_show_user",
    params(("username" = String, Path, description = "The username, percent-encoded")),
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = 400, description = "An id that no client or user can have (`field`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("admin_token" = ["gatehouse:admin:read"]), ("admin_token" = ["gatehouse:admin"])),
)]
pub async fn show(
    State(state): State<AppState>,
    PathId(username): PathId,
) -> Result<Json<UserView>, Problem> {
    let user = state.manager.user(&username).await?;
    Ok(Json(UserView::from(&user)))
}

/// Changes a user: only the members given, in one transaction.
#[utoipa::path(patch, path = "/admin/v1/users/{username}", tag = "admin", operation_id = "admin_update_user",
    params(("username" = String, Path, description = "The username, percent-encoded")),
    request_body = UserPatchBody,
    responses(
        (status = 200, description = "The user as it is now", body = UserView),
        (status = 400, description = "An invalid or unknown member (`field`), or nothing to change", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Body over 64 KiB", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("admin_token" = ["gatehouse:admin"])),
)]
pub async fn update(
    State(state): State<AppState>,
    claims: Claims,
    PathId(username): PathId,
    JsonBody(body): JsonBody<UserPatchBody>,
) -> Result<Json<UserView>, Problem> {
    let patch = UserPatch {
        password: body.password.map(|p| p.0),
        scope: body.scope,
        disabled: body.disabled,
    };
    let user = state
        .manager
        .update_user(&actor(&claims), &username, patch)
        .await?;
    Ok(Json(UserView::from(&user)))
}

/// Deletes a user; every token the user holds stops working.
#[utoipa::path(delete, path = "/admin/v1/users/{username}", tag = "admin", operation_id = "admin_delete_user",
    params(("username" = String, Path, description = "The username, percent-encoded")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "An id that no client or user can have (`field`)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("admin_token" = ["gatehouse:admin"])),
)]
pub async fn delete(
    State(state): State<AppState>,
    claims: Claims,
    PathId(username): PathId,
) -> Result<StatusCode, Problem> {
    state.manager.delete_user(&actor(&claims), &username).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every login of the user and every token issued to it, JWTs included.
#[utoipa::path(post, path = "/admin/v1/users/{username}/revoke-tokens", tag = "admin", operation_id = "admin_revoke_user_tokens",
    params(("username" = String, Path, description = "The username, percent-encoded")),
    request_body(content = Option<EmptyBody>, description = "Optional: nothing, or an empty object"),
    responses(
        (status = 204, description = "Every token of the user has stopped working"),
        (status = 400, description = "A body that is not an empty JSON object (`field` names the member)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Body over 64 KiB", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "A body that is not JSON", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("admin_token" = ["gatehouse:admin"])),
)]
pub async fn revoke_tokens(
    State(state): State<AppState>,
    claims: Claims,
    PathId(username): PathId,
    OptionalJsonBody(_): OptionalJsonBody<EmptyBody>,
) -> Result<StatusCode, Problem> {
    state
        .manager
        .revoke_user_tokens(&actor(&claims), &username)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
