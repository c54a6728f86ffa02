//! JSON bodies: one object of strings, repeats kept for the repeat check.
#![no_main]

use gatehouse::http::params::parse_json;
use gatehouse_core::request::Params;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(pairs) = parse_json(data) {
        let _ = Params::new(pairs);
    }
});
