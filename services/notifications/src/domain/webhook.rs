//! Webhooks in the Standard Webhooks scheme (<https://www.standardwebhooks.com>): the signature
//! is `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")), sent in `webhook-signature`
//! next to `webhook-id` and `webhook-timestamp`; during a secret rotation both secrets sign
//! (space-separated), so receivers holding either one verify. Also the retry schedule and the
//! SSRF classification of the addresses a URL resolves to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of a secret as the scheme writes it: `whsec_` + base64 of the key.
pub const SECRET_PREFIX: &str = "whsec_";

/// A signing key. Its `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// From 24 to 64 random bytes, as the scheme recommends.
    pub fn from_bytes(key: Vec<u8>) -> Option<Secret> {
        (24..=64).contains(&key.len()).then_some(Secret(key))
    }

    /// A 32-byte key, the scheme's recommended size.
    pub fn from_key(key: [u8; 32]) -> Secret {
        Secret(key.to_vec())
    }

    pub fn parse(text: &str) -> Option<Secret> {
        let key = STANDARD.decode(text.strip_prefix(SECRET_PREFIX)?).ok()?;
        Secret::from_bytes(key)
    }

    pub fn encoded(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// HMAC takes keys of every length, so this is `None` never in practice; an `Option`
    /// rather than a panic keeps the sender's path free of them.
    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Option<Hmac<Sha256>> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).ok()?;
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        Some(mac)
    }

    /// `v1,<base64>` for one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        match self.mac(id, timestamp, body) {
            Some(mac) => format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())),
            None => String::new(),
        }
    }

    /// Whether one `v1,<base64>` signature is this secret's (in constant time).
    pub fn verifies(&self, id: &str, timestamp: i64, body: &[u8], signature: &str) -> bool {
        let Some(tag) = signature
            .strip_prefix("v1,")
            .and_then(|b| STANDARD.decode(b).ok())
        else {
            return false;
        };
        self.mac(id, timestamp, body)
            .is_some_and(|mac| mac.verify_slice(&tag).is_ok())
    }
}

/// The `webhook-signature` header: every current secret's signature, space-separated.
pub fn signature_header(secrets: &[&Secret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| s.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Attempts in all by default, and the delay before each retry (before jitter): 30 s, then
/// doubling up to 4 h, about 12 hours in all — receivers get a working day to recover.
pub const MAX_ATTEMPTS: u32 = 12;
const FIRST_DELAY_SECONDS: i64 = 30;
const MAX_DELAY_SECONDS: i64 = 4 * 3600;

/// The delay before attempt `attempt + 1` after `attempt` failed attempts (1-based), or `None`
/// after the last of `max_attempts`. `jitter` in `[0, 1)` comes from the caller's random source; it spreads the
/// delay over ±20 % so endpoints that failed together do not retry in lockstep.
pub fn retry_delay(attempt: u32, max_attempts: u32, jitter: f64) -> Option<chrono::Duration> {
    if attempt == 0 || attempt >= max_attempts {
        return None;
    }
    let base = FIRST_DELAY_SECONDS
        .saturating_mul(1_i64 << (attempt - 1).min(20))
        .min(MAX_DELAY_SECONDS);
    let spread = (base as f64) * 0.4 * (jitter.clamp(0.0, 1.0) - 0.5);
    let millis = (base as f64 * 1000.0 + spread * 1000.0).round() as i64;
    Some(chrono::Duration::milliseconds(millis.max(1000)))
}

/// Why an address may not be connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forbidden {
    Loopback,
    Private,
    LinkLocal,
    /// Unspecified, broadcast, multicast, documentation, benchmarking, shared and reserved.
    NotGlobal,
}

impl Forbidden {
    pub fn as_str(self) -> &'static str {
        match self {
            Forbidden::Loopback => "loopback",
            Forbidden::Private => "private",
            Forbidden::LinkLocal => "link-local",
            Forbidden::NotGlobal => "not globally routable",
        }
    }
}

/// Whether an address a webhook URL resolves to may be connected to. `None` means allowed.
/// Written here (std's `is_global` is unstable, and no maintained SSRF crate exists): the
/// ranges of RFC 6890 that are not global, IPv4-mapped IPv6 read as IPv4.
pub fn classify(address: IpAddr) -> Option<Forbidden> {
    match address {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Forbidden> {
    let [a, b, _, _] = ip.octets();
    if ip.is_loopback() {
        Some(Forbidden::Loopback)
    } else if ip.is_private() {
        Some(Forbidden::Private)
    } else if ip.is_link_local() {
        Some(Forbidden::LinkLocal)
    } else if ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (18..20).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || a >= 240
    {
        Some(Forbidden::NotGlobal)
    } else {
        None
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<Forbidden> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some(Forbidden::Loopback)
    } else if ip.is_unique_local() {
        Some(Forbidden::Private)
    } else if ip.is_unicast_link_local() {
        Some(Forbidden::LinkLocal)
    } else if ip.is_unspecified()
        || ip.is_multicast()
        || first == 0x2001 && ip.segments()[1] == 0xdb8
    {
        Some(Forbidden::NotGlobal)
    } else {
        None
    }
}

/// A webhook URL parsed: http(s), a host, a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// The host as an address when the URL names one (it then skips name resolution).
    pub literal: Option<IpAddr>,
}

/// Parses a webhook URL; the error says what is wrong with it. Credentials in the URL are
/// refused: they would be logged with it.
pub fn parse_url(text: &str) -> Result<Target, &'static str> {
    let uri: http::Uri = text.parse().map_err(|_| "is not a URL")?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        Some(_) => return Err("must be http or https"),
        None => return Err("must be an absolute http(s) URL"),
    };
    let authority = uri.authority().ok_or("must name a host")?;
    if authority.as_str().contains('@') {
        return Err("must not carry credentials");
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if host.is_empty() {
        return Err("must name a host");
    }
    Ok(Target {
        https,
        host: host.to_owned(),
        port: authority.port_u16().unwrap_or(if https { 443 } else { 80 }),
        literal: host.parse().ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::from_bytes(b"a-test-secret-of-32-bytes-length".to_vec()).expect("length")
    }

    #[test]
    fn the_signature_matches_the_scheme_reference() {
        // The value the `standardwebhooks` Python package's `sign()` gives for key `secret` (see
        // /work/shared/facts/crates.md): the short key bypasses `from_bytes`' bound on purpose.
        let key = Secret(b"secret".to_vec());
        let signature = key.sign("msg_1", 1_700_000_000, br#"{"a":1}"#);
        assert!(signature.starts_with("v1,Q5nZ7DiO"), "{signature}");
        assert!(key.verifies("msg_1", 1_700_000_000, br#"{"a":1}"#, &signature));
    }

    #[test]
    fn verification_fails_on_any_change() {
        let s = secret();
        let sig = s.sign("msg_1", 10, b"body");
        assert!(s.verifies("msg_1", 10, b"body", &sig));
        assert!(!s.verifies("msg_2", 10, b"body", &sig));
        assert!(!s.verifies("msg_1", 11, b"body", &sig));
        assert!(!s.verifies("msg_1", 10, b"bodY", &sig));
        assert!(!s.verifies("msg_1", 10, b"body", "v2,abc"));
        assert!(!s.verifies("msg_1", 10, b"body", "v1,not base64!"));
    }

    #[test]
    fn during_rotation_both_secrets_sign() {
        let old = secret();
        let new = Secret::from_bytes(vec![7; 32]).expect("length");
        let header = signature_header(&[&new, &old], "m", 5, b"x");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert!(new.verifies("m", 5, b"x", parts[0]));
        assert!(old.verifies("m", 5, b"x", parts[1]));
    }

    #[test]
    fn secrets_round_trip_and_refuse_bad_text() {
        let s = secret();
        assert_eq!(Secret::parse(&s.encoded()), Some(s.clone()));
        assert!(s.encoded().starts_with("whsec_"));
        assert_eq!(Secret::parse("c2VjcmV0"), None);
        assert_eq!(Secret::parse("whsec_!!"), None);
        assert_eq!(Secret::from_bytes(vec![1; 8]), None);
        assert_eq!(format!("{s:?}"), "Secret(..)");
    }

    #[test]
    fn retries_back_off_exponentially_with_bounded_jitter() {
        let middle: Vec<i64> = (1..MAX_ATTEMPTS)
            .map(|a| {
                retry_delay(a, MAX_ATTEMPTS, 0.5)
                    .expect("a retry")
                    .num_seconds()
            })
            .collect();
        assert_eq!(&middle[..5], &[30, 60, 120, 240, 480]);
        assert!(middle.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*middle.last().expect("some"), 4 * 3600);
        let total: i64 = middle.iter().sum();
        assert!(total > 8 * 3600, "retries span hours: {total}");
        let low = retry_delay(3, MAX_ATTEMPTS, 0.0)
            .expect("a retry")
            .num_milliseconds();
        let high = retry_delay(3, MAX_ATTEMPTS, 0.999)
            .expect("a retry")
            .num_milliseconds();
        assert_eq!(low, 96_000);
        assert!((143_000..144_000).contains(&high));
        assert_eq!(retry_delay(MAX_ATTEMPTS, MAX_ATTEMPTS, 0.5), None);
        assert_eq!(retry_delay(0, MAX_ATTEMPTS, 0.5), None);
        assert_eq!(retry_delay(3, 3, 0.5), None);
        assert!(retry_delay(2, 3, 0.5).is_some());
    }

    #[test]
    fn urls_must_be_http_with_a_host() {
        let t = parse_url("https://hooks.example.com/desk").expect("valid");
        assert_eq!(
            (t.https, t.host.as_str(), t.port, t.literal),
            (true, "hooks.example.com", 443, None)
        );
        let t = parse_url("http://127.0.0.1:8080/x").expect("valid");
        assert_eq!(t.port, 8080);
        assert_eq!(t.literal, Some("127.0.0.1".parse().expect("ip")));
        assert_eq!(
            parse_url("http://[::1]:9/").expect("valid").literal,
            Some("::1".parse().expect("ip"))
        );
        assert_eq!(
            parse_url("ftp://example.com/"),
            Err("must be http or https")
        );
        assert_eq!(
            parse_url("/relative"),
            Err("must be an absolute http(s) URL")
        );
        assert_eq!(
            parse_url("http://u:p@example.com/"),
            Err("must not carry credentials")
        );
        assert_eq!(parse_url("not a url"), Err("is not a URL"));
    }

    #[test]
    fn addresses_are_classified() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("an address");
        assert_eq!(classify(ip("127.0.0.1")), Some(Forbidden::Loopback));
        assert_eq!(classify(ip("::1")), Some(Forbidden::Loopback));
        assert_eq!(classify(ip("10.1.2.3")), Some(Forbidden::Private));
        assert_eq!(classify(ip("172.16.0.1")), Some(Forbidden::Private));
        assert_eq!(classify(ip("192.168.1.1")), Some(Forbidden::Private));
        assert_eq!(classify(ip("::ffff:10.0.0.1")), Some(Forbidden::Private));
        assert_eq!(classify(ip("fd00::1")), Some(Forbidden::Private));
        assert_eq!(classify(ip("169.254.169.254")), Some(Forbidden::LinkLocal));
        assert_eq!(classify(ip("fe80::1")), Some(Forbidden::LinkLocal));
        for not_global in [
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "198.18.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "::",
            "ff02::1",
            "2001:db8::1",
        ] {
            assert_eq!(
                classify(ip(not_global)),
                Some(Forbidden::NotGlobal),
                "{not_global}"
            );
        }
        for global in ["8.8.8.8", "100.128.0.1", "2606:4700::1111", "172.32.0.1"] {
            assert_eq!(classify(ip(global)), None, "{global}");
        }
    }
}
