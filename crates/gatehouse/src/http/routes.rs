//! `[[routes]]` on the router: each entry serves its standard endpoint's handler at one
//! more path, for the methods it lists, with the entry in the request's extensions
//! for the handler to read ([`super::params::OAuthRequest`]).

use std::sync::Arc;

use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Extension;

use super::error::ApiError;
use super::{inspect, token, AppState};
use crate::config::{Endpoint, Route};

/// The handlers of one route.
pub fn method_router(route: &Route) -> MethodRouter<AppState> {
    let mut filter = None;
    if route.get {
        filter = Some(MethodFilter::GET);
    }
    if route.post {
        filter = Some(filter.map_or(MethodFilter::POST, |f| f.or(MethodFilter::POST)));
    }
    // A route always serves at least one method (checked with the configuration).
    let filter = filter.unwrap_or(MethodFilter::POST);
    let handlers = match route.endpoint {
        Endpoint::Token => on(filter, token::token),
        Endpoint::Revoke => on(filter, inspect::revoke),
        Endpoint::Introspect => on(filter, inspect::introspect),
    };
    // axum answers HEAD with the GET handler and drops the body: here that would
    // spend a refresh token on an answer nobody can read.
    handlers
        .on(MethodFilter::HEAD, || async { ApiError::MethodNotAllowed })
        .layer(Extension(Arc::new(route.clone())))
}
