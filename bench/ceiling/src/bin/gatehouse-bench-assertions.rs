//! Client assertions for the `client_credentials_private_key_jwt` benchmark
//! (RFC 7523 §2.2, `private_key_jwt`).
//!
//! The server keeps a durable record of every assertion's `jti` and refuses a
//! second use, so wrk cannot send one assertion over and over: `bench/run.sh`
//! makes a file of fresh ones before each wrk run, outside the measured window,
//! and `bench/lua/token_private_key_jwt.lua` hands each thread its own slice.
//!
//! ```text
//! gatehouse-bench-assertions keygen --key KEY.p8 --jwks JWKS.json [--kid KID]
//! gatehouse-bench-assertions sign --key KEY.p8 --client-id ID --aud URL --count N
//!     --out FILE [--kid KID] [--ttl SECONDS] [--threads N]
//! ```
//!
//! `keygen` writes a fresh P-256 key (PKCS#8 DER) and the client's JWK Set with
//! its public half (`kid`, `alg` ES256, `use` sig). `sign` writes N ES256
//! assertions, one a line, all of the same length (so that a reader can slice
//! the file by offset): `iss` = `sub` = the client id, `aud` = URL, `iat` now,
//! `exp` = now + TTL (3600: the longest the server accepts), `jti` = a random
//! 64-bit prefix of this file and the assertion's number, zero-padded, so every
//! `jti` is new across files and runs. It prints `COUNT WIDTH SECONDS`.
//! Signing runs on `--threads` threads (2), with aws-lc-rs as gatehouse does;
//! signatures are sent in their low-S form, as gatehouse's client SDK sends them.

use std::{
    io::Write,
    time::{Instant, SystemTime},
};

use aws_lc_rs::{
    rand::{SecureRandom, SystemRandom},
    signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING},
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::Serialize;

/// An assertion's claims; the field order is the serialization order.
#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
    jti: &'a str,
}

/// The order n of the P-256 group (SEC 2 §2.4.2), big-endian.
const P256_ORDER: [u8; 32] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xBC,
    0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
];

/// ⌊n/2⌋, big-endian: the largest low `s`.
const P256_HALF_ORDER: [u8; 32] = [
    0x7F, 0xFF, 0xFF, 0xFF, 0x80, 0x00, 0x00, 0x00, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xDE,
    0x73, 0x7D, 0x56, 0xD3, 0x8B, 0xCF, 0x42, 0x79, 0xDC, 0xE5, 0x61, 0x7E, 0x31, 0x92, 0xA8,
];

/// `r ‖ s` with `s` replaced by `n − s` when it is above n/2 (both verify; ECDSA
/// is malleable, and aws-lc-rs leaves `s` high half the time): what gatehouse's
/// client SDK sends, and what a verifier that insists on one spelling accepts.
fn low_s(signature: &mut [u8]) {
    // Equal-length big-endian byte strings compare as numbers.
    if signature.len() == 64 && signature[32..] > P256_HALF_ORDER[..] {
        let mut borrow = false;
        for i in (0..32).rev() {
            let (difference, b1) = P256_ORDER[i].overflowing_sub(signature[32 + i]);
            let (difference, b2) = difference.overflowing_sub(u8::from(borrow));
            signature[32 + i] = difference;
            borrow = b1 || b2;
        }
    }
}

/// What `sign` needs from its flags.
struct SignJob {
    key: EcdsaKeyPair,
    client_id: String,
    aud: String,
    kid: String,
    count: usize,
    ttl: u64,
    threads: usize,
    out: String,
}

fn fail(message: &str) -> ! {
    eprintln!("gatehouse-bench-assertions: {message}");
    std::process::exit(2)
}

/// `--flag value` pairs after the subcommand.
fn flags(args: impl Iterator<Item = String>) -> std::collections::HashMap<String, String> {
    let mut map = std::collections::HashMap::new();
    let mut args = args.peekable();
    while let Some(flag) = args.next() {
        if !flag.starts_with("--") {
            fail(&format!("unexpected argument {flag}"));
        }
        let value = args
            .next()
            .unwrap_or_else(|| fail(&format!("{flag} needs a value")));
        map.insert(flag, value);
    }
    map
}

fn keygen(mut flags: std::collections::HashMap<String, String>) {
    let key_path = flags
        .remove("--key")
        .unwrap_or_else(|| fail("keygen: --key FILE is required"));
    let jwks_path = flags
        .remove("--jwks")
        .unwrap_or_else(|| fail("keygen: --jwks FILE is required"));
    let kid = flags.remove("--kid").unwrap_or_else(|| "bench".to_owned());
    if let Some(flag) = flags.keys().next() {
        fail(&format!("keygen: unknown flag {flag}"));
    }
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .unwrap_or_else(|_| fail("cannot generate a P-256 key"));
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .unwrap_or_else(|_| fail("cannot read back the generated key"));
    // The public key is the uncompressed point: 0x04, X (32 bytes), Y (32 bytes).
    let point = pair.public_key().as_ref();
    if point.len() != 65 || point[0] != 4 {
        fail("the public key is not an uncompressed P-256 point");
    }
    let jwks = serde_json::json!({
        "keys": [{
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            "kid": kid,
            "alg": "ES256",
            "use": "sig",
        }]
    });
    std::fs::write(&key_path, pkcs8.as_ref()).unwrap_or_else(|e| fail(&format!("{key_path}: {e}")));
    std::fs::write(&jwks_path, format!("{jwks}\n")).unwrap_or_else(|e| fail(&format!("{jwks_path}: {e}")));
}

fn sign_job(mut flags: std::collections::HashMap<String, String>) -> SignJob {
    let mut take = |name: &str| {
        flags
            .remove(name)
            .unwrap_or_else(|| fail(&format!("sign: {name} is required")))
    };
    let key_path = take("--key");
    let client_id = take("--client-id");
    let aud = take("--aud");
    let count = take("--count");
    let out = take("--out");
    let number = |name: &str, text: &str| -> usize {
        text.parse()
            .unwrap_or_else(|_| fail(&format!("sign: {name} must be a number, got {text:?}")))
    };
    let count = number("--count", &count);
    let kid = flags.remove("--kid").unwrap_or_else(|| "bench".to_owned());
    let ttl = flags.remove("--ttl").map_or(3600, |t| number("--ttl", &t) as u64);
    let threads = flags
        .remove("--threads")
        .map_or(2, |t| number("--threads", &t).max(1));
    if let Some(flag) = flags.keys().next() {
        fail(&format!("sign: unknown flag {flag}"));
    }
    let der = std::fs::read(&key_path).unwrap_or_else(|e| fail(&format!("{key_path}: {e}")));
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
        .unwrap_or_else(|_| fail(&format!("{key_path}: not a PKCS#8 P-256 key")));
    SignJob {
        key,
        client_id,
        aud,
        kid,
        count,
        ttl,
        threads,
        out,
    }
}

/// Assertions `range` of the job, each followed by a newline.
fn sign_range(job: &SignJob, header: &str, prefix: &str, now: u64, range: std::ops::Range<usize>) -> Vec<u8> {
    let rng = SystemRandom::new();
    let mut out = Vec::with_capacity(range.len() * 420);
    let mut jwt = String::with_capacity(512);
    for n in range {
        let jti = format!("{prefix}-{n:09}");
        let claims = Claims {
            iss: &job.client_id,
            sub: &job.client_id,
            aud: &job.aud,
            iat: now,
            exp: now + job.ttl,
            jti: &jti,
        };
        let payload = serde_json::to_vec(&claims).unwrap_or_else(|_| fail("claims do not serialize"));
        jwt.clear();
        jwt.push_str(header);
        URL_SAFE_NO_PAD.encode_string(&payload, &mut jwt);
        let signature = job
            .key
            .sign(&rng, jwt.as_bytes())
            .unwrap_or_else(|_| fail("signing failed"));
        let mut signature = signature.as_ref().to_vec();
        low_s(&mut signature);
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut jwt);
        out.extend_from_slice(jwt.as_bytes());
        out.push(b'\n');
    }
    out
}

fn sign(job: SignJob) {
    let started = Instant::now();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_else(|_| fail("the clock is before 1970"))
        .as_secs();
    let mut random = [0u8; 8];
    SystemRandom::new()
        .fill(&mut random)
        .unwrap_or_else(|_| fail("no random bytes"));
    let prefix: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let header = serde_json::json!({ "alg": "ES256", "typ": "JWT", "kid": job.kid });
    let mut header = URL_SAFE_NO_PAD.encode(header.to_string());
    header.push('.');

    let per_thread = job.count.div_ceil(job.threads);
    let chunks: Vec<Vec<u8>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..job.threads)
            .map(|t| {
                let start = (t * per_thread).min(job.count);
                let end = ((t + 1) * per_thread).min(job.count);
                let (job, header, prefix) = (&job, &header, &prefix);
                scope.spawn(move || sign_range(job, header, prefix, now, start..end))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| fail("a signing thread panicked")))
            .collect()
    });

    // Every line must be as long as the first: the Lua script slices by offset.
    let width = chunks
        .iter()
        .find_map(|c| c.iter().position(|&b| b == b'\n'))
        .unwrap_or(0);
    let total: usize = chunks.iter().map(Vec::len).sum();
    if total != job.count * (width + 1) {
        fail("the assertions are not all of one length");
    }
    let file = std::fs::File::create(&job.out).unwrap_or_else(|e| fail(&format!("{}: {e}", job.out)));
    let mut writer = std::io::BufWriter::new(file);
    for chunk in &chunks {
        writer
            .write_all(chunk)
            .unwrap_or_else(|e| fail(&format!("{}: {e}", job.out)));
    }
    writer
        .flush()
        .unwrap_or_else(|e| fail(&format!("{}: {e}", job.out)));
    println!("{} {} {:.2}", job.count, width, started.elapsed().as_secs_f64());
}

fn main() {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("keygen") => keygen(flags(args)),
        Some("sign") => sign(sign_job(flags(args))),
        _ => fail(
            "usage: gatehouse-bench-assertions keygen|sign --flag value … (see the source's opening comment)",
        ),
    }
}
