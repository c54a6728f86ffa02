//! `gatehouse token revoke`: what POST /oauth/revoke does for a token holder.

use std::sync::Arc;

use gatehouse_core::grant::Credential;
use gatehouse_core::service::Stores;
use gatehouse_core::tokens::TokenKind;
use gatehouse_core::{KeyRing, RevocationRequest, SystemClock, SystemRandom, TokenService};
use gatehouse_store::SqlStore;
use serde_json::json;

use super::{print, read_stdin_secret, AdminError};
use crate::cache::CachedClients;
use crate::cli::{RevokeToken, TokenCommand};
use crate::config::Settings;
use crate::keyring::{self, Keys};

pub(super) async fn run(
    settings: &Settings,
    store: Arc<SqlStore>,
    command: TokenCommand,
) -> Result<(), AdminError> {
    let TokenCommand::Revoke(RevokeToken { token, json, .. }) = command;
    // clap lets exactly one of the two through.
    let token = match token {
        Some(token) => token,
        None => read_stdin_secret("--token-stdin", 1)?.expose().to_owned(),
    };
    // Only a JWT needs the signing keys (to check it is ours), and so the master key.
    let ring = if TokenKind::of(&token) == TokenKind::Jwt {
        let master = keyring::load_master_key(&settings.master_key, &SystemRandom)?;
        let keys = Keys::new(store.clone(), master);
        keys.reload(gatehouse_core::Clock::now(&SystemClock)).await?;
        keys.ring()
    } else {
        Arc::new(KeyRing::default())
    };
    // Nothing is bound here: the issuer of the configured address (revocation does
    // not depend on it).
    let config = settings.issuer_config(settings.listen);
    let stores = Stores {
        clients: Arc::new(CachedClients::new(store.clone(), 1)),
        users: store.clone(),
        tokens: store.clone(),
        replays: store,
    };
    let service = TokenService::new(
        config,
        stores,
        ring,
        Arc::new(SystemClock),
        Arc::new(SystemRandom),
    );
    let holder = RevocationRequest {
        client_auth: None,
        token: Credential::new(token),
    };
    let revoked = service.revoke(holder).await.map_err(|e| {
        // The operator is the reader here: the cause of a failure, not the sentence.
        let why = e
            .cause()
            .map_or_else(|| e.description().to_owned(), ToString::to_string);
        AdminError::failed(format!("cannot revoke: {why}"))
    })?;
    print(&json!({ "revoked": revoked }), json)
}
