//! The guard: the bearer header and query check, and JWT parsing and
//! verification (header, claims, signature against a fixed key).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gatehouse_guard::fuzzing::bearer(data, "");
    if let Ok(text) = std::str::from_utf8(data) {
        gatehouse_guard::fuzzing::bearer(b"Bearer x", text);
        gatehouse_guard::fuzzing::jwt(text);
    }
});
