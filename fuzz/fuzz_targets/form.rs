//! Form bodies and query strings: `parse_form`, then the repeat and NUL checks.
#![no_main]

use gatehouse::http::params::parse_form;
use gatehouse_core::request::Params;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(pairs) = parse_form(data) {
        let _ = Params::new(pairs);
    }
});
