//! gatehouse-client: the SDK a caller uses to hold a fresh token (CONTRACT §6).
//!
//! Not yet implemented: this crate reserves its place in the workspace.
#![warn(missing_docs)]
