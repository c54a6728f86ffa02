//! gatehouse-guard: the tower layer a resource server uses to check a bearer token
//! (CONTRACT §6).
//!
//! Not yet implemented: this crate reserves its place in the workspace.
#![warn(missing_docs)]
