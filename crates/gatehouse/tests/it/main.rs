//! gatehouse's integration tests: one binary, each test starting the real
//! server on `127.0.0.1:0` with a fresh database and talking HTTP to it. Run
//! with `GATEHOUSE_TEST_DATABASE_URL=postgres://…` to include PostgreSQL.

// Tests may unwrap: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod helpers;
mod api;
mod http;
mod jose;
mod server;

mod abuse;
mod admin_api;
mod admin_api_abuse;
mod attack;
mod audit;
mod bad_input;
mod cache_sync;
mod cleanup;
mod cli;
mod cli_streams;
mod client_sdk;
mod config;
mod deletion;
mod discovery;
mod durability;
mod ecdsa_low_s;
mod front_door;
mod guard;
mod introspect;
mod jwks_uri;
mod jwt;
mod key_auth_abuse;
mod key_clients_admin;
mod limits;
mod local_files;
mod log_colours;
mod log_escaping;
mod mtls;
mod mtls_listener;
mod nodes;
mod oauth2_crate;
mod opaque;
mod ops;
mod postgres_outage;
mod private_key_jwt;
mod private_pg;
mod refresh_races;
mod registration;
mod revoke;
mod routes;
mod sdk_example;
mod sdk_keys;
mod secrets;
mod seeds;
mod server_errors;
mod tls;
mod token_client_credentials;
mod token_errors;
mod token_password;
mod token_refresh;
mod token_storage;
mod user_scope;
mod users;
