//! `/admin/v1/keys`: the signing keys (never private material) and their rotation.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use gatehouse_guard::Claims;
use serde::Serialize;

use super::clients::EmptyBody;
use super::input::OptionalJsonBody;
use super::problem::Problem;
use super::{actor, ProblemDoc};
use crate::http::AppState;
use crate::manage::KeyView;

/// The signing keys.
#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyList {
    /// The current key first, then every key still published, newest first.
    keys: Vec<KeyView>,
}

/// The current signing key and every key still published.
#[utoipa::path(get, path = "/admin/v1/keys", tag = "admin", operation_id = "admin_list_keys",
    responses(
        (status = 200, description = "The keys", body = KeyList),
        (status = 503, description = "The database cannot be reached", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("admin_token" = ["gatehouse:admin:read"]), ("admin_token" = ["gatehouse:admin"])),
)]
pub async fn list(State(state): State<AppState>) -> Result<Json<KeyList>, Problem> {
    let keys = state.manager.keys().await?;
    Ok(Json(KeyList { keys }))
}

/// Makes a new current signing key. The old one stays published until every token
/// it may have signed has expired; every node follows within the change feed's window.
#[utoipa::path(post, path = "/admin/v1/keys/rotate", tag = "admin", operation_id = "admin_rotate_key",
    request_body(content = Option<EmptyBody>, description = "Optional: nothing, or an empty object"),
    responses(
        (status = 201, description = "The new key", body = KeyView),
        (status = 400, description = "A body that is not an empty JSON object (`field` names the member)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Body over 64 KiB", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "A body that is not JSON", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "The database cannot be reached", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("admin_token" = ["gatehouse:admin"])),
)]
pub async fn rotate(
    State(state): State<AppState>,
    claims: Claims,
    OptionalJsonBody(_): OptionalJsonBody<EmptyBody>,
) -> Result<(StatusCode, Json<KeyView>), Problem> {
    let key = state
        .manager
        .rotate_key(&actor(&claims), &state.key_rotation)
        .await?;
    Ok((StatusCode::CREATED, Json(key)))
}
