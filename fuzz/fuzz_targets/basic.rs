//! HTTP Basic client authentication (RFC 6749 §2.3.1 form-decoding included).
#![no_main]

use gatehouse_core::ClientAuth;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ClientAuth::from_basic_header(data);
});
