//! gatehouse: an OAuth 2.0 authorization server for APIs.
//!
//! This crate is the server: configuration ([`config`]), the admin command line
//! ([`cli`], [`admin`]), the HTTP endpoints ([`http`]), the in-memory caches that keep
//! the token hot path off the disk ([`cache`], [`keyring`]) and the task that keeps
//! them fresh ([`sync`]). The protocol itself lives in `gatehouse-core`, storage in
//! `gatehouse-store`.
#![warn(missing_docs)]
// Tests may unwrap: a panic there is a failed test (the workspace lint is for the rest).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod admin;
pub mod cache;
pub mod cli;
pub mod config;
pub mod http;
pub mod jwks_fetch;
pub mod keyring;
pub mod manage;
pub mod master_key;
pub mod net;
pub mod server;
pub mod sync;
pub mod telemetry;
