//! A whole token request: an Authorization header and a form body, split at the
//! first NUL byte, parsed as the token endpoint does (with and without a route's
//! default grant type).
#![no_main]

use gatehouse::http::params::parse_form;
use gatehouse_core::request::Params;
use gatehouse_core::{GrantType, TokenOptions, TokenRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (header, body) = match data.iter().position(|&b| b == 0) {
        Some(at) => (Some(&data[..at]), &data[at + 1..]),
        None => (None, data),
    };
    for options in [
        TokenOptions::default(),
        TokenOptions {
            default_grant_type: Some(GrantType::ClientCredentials),
            refresh_on_client_credentials: true,
        },
    ] {
        if let Ok(pairs) = parse_form(body) {
            if let Ok(params) = Params::new(pairs) {
                let _ = TokenRequest::parse(params, header, &options);
            }
        }
    }
});
