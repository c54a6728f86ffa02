//! gatehouse's integration tests: one binary, each test starting the real
//! server on `127.0.0.1:0` with a fresh database and talking HTTP to it. Run
//! with `GATEHOUSE_TEST_DATABASE_URL=postgres://…` to include PostgreSQL.

#[macro_use]
mod helpers;
mod api;
mod http;
mod jose;
mod server;

mod abuse;
mod audit;
mod bad_input;
mod cache_sync;
mod cleanup;
mod cli;
mod client_sdk;
mod config;
mod discovery;
mod durability;
mod guard;
mod introspect;
mod jwt;
mod limits;
mod nodes;
mod oauth2_crate;
mod opaque;
mod ops;
mod postgres_outage;
mod private_pg;
mod refresh_races;
mod revoke;
mod routes;
mod secrets;
mod seeds;
mod tls;
mod token_client_credentials;
mod token_errors;
mod token_password;
mod token_refresh;
mod token_storage;
mod users;
