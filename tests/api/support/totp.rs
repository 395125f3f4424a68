//! TOTP codes for the tests, from this independent RFC 6238 implementation (HMAC-SHA-1
//! over the time step, dynamic truncation), not from the crate the app uses; checked
//! below against the RFC's own test vectors.

use hmac::{Hmac, Mac};

/// The `digits`-digit code of `key` for the time `unix`, with 30-second steps.
pub fn totp_digits(key: &[u8], unix: u64, digits: u32) -> String {
    let counter = unix / 30;
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).expect("any key length");
    mac.update(&counter.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[19] & 0x0f);
    let binary = u32::from_be_bytes([
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ]);
    format!(
        "{:0width$}",
        binary % 10u32.pow(digits),
        width = digits as usize
    )
}

/// RFC 4648 base32 (no padding), as the page shows the secret.
pub fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.trim().trim_end_matches('=').bytes() {
        let value = ALPHABET
            .iter()
            .position(|a| *a == c.to_ascii_uppercase())
            .expect("a base32 character") as u64;
        bits = (bits << 5) | value;
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    out
}

/// The 6-digit code an authenticator app shows for this base32 secret at `unix`.
pub fn totp(secret_base32: &str, unix: i64) -> String {
    totp_digits(&base32_decode(secret_base32), unix as u64, 6)
}

#[test]
fn this_implementation_matches_rfc_6238_appendix_b() {
    let key = b"12345678901234567890";
    for (time, code) in [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ] {
        assert_eq!(totp_digits(key, time, 8), code, "time {time}");
    }
    assert_eq!(base32_decode("GEZDGNBVGY3TQOJQ"), b"1234567890");
}
