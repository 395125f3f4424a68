//! Checking AWS Signature Version 4 on a request, as the AWS SDKs sign it: the
//! Authorization header's scope and signed headers, the X-Amz-Date within 15 minutes,
//! and the signature recomputed from the canonical request with HMAC-SHA256 (the
//! `hmac` and `sha2` crates; the comparison is `hmac`'s constant-time `verify_slice`).

use chrono::{NaiveDateTime, TimeDelta};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
pub const SERVICE: &str = "a4b";
/// How far the request's clock may be from ours.
pub const MAX_SKEW: TimeDelta = TimeDelta::minutes(15);
/// Headers that must be under the signature: without them, a captured request could be
/// replayed to another host, at another time, or as another operation.
const MUST_SIGN: [&str; 3] = ["host", "x-amz-date", "x-amz-target"];

/// Why a request's signature was not accepted, in the SDK's terms.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No Authorization header at all.
    Missing,
    /// An Authorization header that is not a SigV4 one, or lacks a part.
    Incomplete(String),
    /// The date is too far from now.
    Expired(String),
    /// The signature does not match.
    Mismatch,
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, PartialEq, Eq)]
pub struct Authorization {
    pub key_id: String,
    pub date: String,
    pub region: String,
    pub signed_headers: Vec<String>,
    signature: Vec<u8>,
}

fn incomplete(message: &str) -> Refusal {
    Refusal::Incomplete(message.to_owned())
}

impl Authorization {
    pub fn parse(header: Option<&str>) -> Result<Self, Refusal> {
        let header = header.ok_or(Refusal::Missing)?;
        let rest = header
            .strip_prefix(ALGORITHM)
            .filter(|rest| rest.starts_with(' '))
            .ok_or_else(|| {
                incomplete("Authorization header requires the AWS4-HMAC-SHA256 algorithm.")
            })?;
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let (name, value) = part
                .trim()
                .split_once('=')
                .ok_or_else(|| incomplete("Authorization header is malformed."))?;
            match name {
                "Credential" => credential = Some(value),
                "SignedHeaders" => signed = Some(value),
                "Signature" => signature = Some(value),
                _ => return Err(incomplete("Authorization header is malformed.")),
            }
        }
        let (Some(credential), Some(signed), Some(signature)) = (credential, signed, signature)
        else {
            return Err(incomplete(
                "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'.",
            ));
        };
        let scope: Vec<&str> = credential.split('/').collect();
        let [key_id, date, region, service, terminator] = scope[..] else {
            return Err(incomplete("Credential should be scoped to a valid region."));
        };
        let plain = |s: &str, max: usize| {
            !s.is_empty()
                && s.len() <= max
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if !plain(key_id, 128) || date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
            return Err(incomplete("Credential is malformed."));
        }
        if !plain(region, 64) {
            return Err(incomplete("Credential should be scoped to a valid region."));
        }
        if service != SERVICE || terminator != "aws4_request" {
            return Err(incomplete(
                "Credential should be scoped to the correct service: 'a4b'.",
            ));
        }
        let signed_headers: Vec<String> = signed.split(';').map(str::to_owned).collect();
        for must in MUST_SIGN {
            if !signed_headers.iter().any(|h| h == must) {
                return Err(Refusal::Incomplete(format!(
                    "Signed headers must include '{must}'."
                )));
            }
        }
        let signature = hex::decode(signature)
            .ok()
            .filter(|s| s.len() == 32)
            .ok_or_else(|| incomplete("Signature is malformed."))?;
        Ok(Self {
            key_id: key_id.to_owned(),
            date: date.to_owned(),
            region: region.to_owned(),
            signed_headers,
            signature,
        })
    }

    /// What the signing key is derived for: date, region and service.
    pub fn scope(&self) -> String {
        format!("{}/{}/{SERVICE}/aws4_request", self.date, self.region)
    }
}

/// What of the request goes into the signature.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The path as sent (already percent-encoded).
    pub path: &'a str,
    pub query: &'a str,
    /// Every header as (lower-case name, value); a name may repeat.
    pub headers: Vec<(String, &'a [u8])>,
    pub body: &'a [u8],
}

impl SignedRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// The X-Amz-Date, checked against the credential's date and against `now`.
    pub fn check_date(&self, auth: &Authorization, now: NaiveDateTime) -> Result<String, Refusal> {
        let stamp = self
            .header("x-amz-date")
            .ok_or_else(|| incomplete("Request is missing the X-Amz-Date header."))?;
        let at = NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ")
            .map_err(|_| incomplete("X-Amz-Date must be in the form YYYYMMDD'T'HHMMSS'Z'."))?;
        if !stamp.starts_with(&auth.date) {
            return Err(incomplete("Credential date does not match X-Amz-Date."));
        }
        if (at - now).abs() > MAX_SKEW {
            let bound = if at < now {
                now - MAX_SKEW
            } else {
                now + MAX_SKEW
            };
            return Err(Refusal::Expired(format!(
                "Signature expired: {stamp} is now {} than {} ({} {} 15 min.)",
                if at < now { "earlier" } else { "later" },
                bound.format("%Y%m%dT%H%M%SZ"),
                now.format("%Y%m%dT%H%M%SZ"),
                if at < now { "-" } else { "+" },
            )));
        }
        Ok(stamp.to_owned())
    }

    /// The canonical request of SigV4: method, path, query, the signed headers with
    /// their values trimmed, and the body's SHA-256.
    fn canonical(&self, auth: &Authorization) -> Result<String, Refusal> {
        let mut canonical_headers = String::new();
        for name in &auth.signed_headers {
            let values: Vec<String> = self
                .headers
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| {
                    let text = String::from_utf8_lossy(v);
                    text.split_whitespace().collect::<Vec<_>>().join(" ")
                })
                .collect();
            if values.is_empty() {
                return Err(Refusal::Incomplete(format!(
                    "The header '{name}' is signed but not sent."
                )));
            }
            canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
        }
        let mut query: Vec<&str> = self.query.split('&').filter(|p| !p.is_empty()).collect();
        query.sort_unstable();
        let path = if self.path.is_empty() { "/" } else { self.path };
        Ok(format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            self.method,
            path,
            query.join("&"),
            canonical_headers,
            auth.signed_headers.join(";"),
            hex::encode(Sha256::digest(self.body)),
        ))
    }

    /// Whether the request was signed with the key [`signing_key`] derives for its
    /// scope.
    pub fn verify(
        &self,
        auth: &Authorization,
        amz_date: &str,
        signing_key: &[u8; 32],
    ) -> Result<(), Refusal> {
        let canonical = self.canonical(auth)?;
        let string_to_sign = format!(
            "{ALGORITHM}\n{amz_date}\n{}\n{}",
            auth.scope(),
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        keyed(signing_key, string_to_sign.as_bytes())
            .verify_slice(&auth.signature)
            .map_err(|_| Refusal::Mismatch)
    }
}

/// SigV4's signing key: `secret` through HMACs of the date, region, service and
/// terminator of `auth`'s scope. The same for every request of that scope.
pub fn signing_key(secret: &str, auth: &Authorization) -> [u8; 32] {
    let mut key: [u8; 32] = keyed(format!("AWS4{secret}").as_bytes(), auth.date.as_bytes())
        .finalize()
        .into_bytes()
        .into();
    for part in [auth.region.as_str(), SERVICE, "aws4_request"] {
        key = keyed(&key, part.as_bytes()).finalize().into_bytes().into();
    }
    key
}

/// An HMAC-SHA256 over `data`.
fn keyed(key: &[u8], data: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length: the error cannot happen.
    let mut mac = HmacSha256::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(data);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_headers_are_read_strictly() {
        let good = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/a4b/aws4_request, \
                    SignedHeaders=host;x-amz-date;x-amz-target, \
                    Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
        let auth = Authorization::parse(Some(good)).unwrap();
        assert_eq!(auth.key_id, "AKIDEXAMPLE");
        assert_eq!(auth.region, "us-east-1");
        assert_eq!(Authorization::parse(None), Err(Refusal::Missing));
        for bad in [
            "Basic abc",
            &good.replace("/a4b/", "/s3/"),
            &good.replace("host;", ""),
            &good.replace("Signature=5f", "Signature=zz"),
            &good.replace("20150830", "2015083"),
        ] {
            assert!(
                matches!(Authorization::parse(Some(bad)), Err(Refusal::Incomplete(_))),
                "{bad}"
            );
        }
    }
}
