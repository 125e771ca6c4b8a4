//! Region-qualified ids (ARCHITECTURE §6, §8): `<region>-<uuidv7>`.
//!
//! The region is part of every id the API returns so that the gateway can route a call to the
//! region that owns the object without asking anyone. Storage keeps the bare UUID.

use uuid::Uuid;

/// A new time-ordered id.
pub fn new_uuid() -> Uuid {
    Uuid::now_v7()
}

/// `emea-0192...`.
pub fn format_id(region: &str, id: Uuid) -> String {
    // One exact allocation: answers such as a CMDB impact closure format thousands of ids.
    let mut buffer = Uuid::encode_buffer();
    let uuid = id.hyphenated().encode_lower(&mut buffer);
    let mut formatted = String::with_capacity(region.len() + 1 + uuid.len());
    formatted.push_str(region);
    formatted.push('-');
    formatted.push_str(uuid);
    formatted
}

/// A parsed public id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionalId {
    pub region: String,
    pub uuid: Uuid,
}

/// Parses `<region>-<uuid>`; `None` for anything else (callers answer `NOT_FOUND` or a field violation).
pub fn parse_id(text: &str) -> Option<RegionalId> {
    let (region, rest) = text.split_once('-')?;
    if !is_region(region) {
        return None;
    }
    let uuid = Uuid::try_parse(rest).ok()?;
    Some(RegionalId {
        region: region.to_owned(),
        uuid,
    })
}

/// Region names: lower-case letters and digits, 1..=16 chars (they appear in NATS subjects and ids).
pub fn is_region(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 16
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Tenant ids: 1..=63 characters, lower-case ASCII letters, digits, `_` and `-`, starting with a
/// letter or digit. They are one token of every event subject (`desk.<region>.<service>.<tenant>.…`),
/// so nothing in them may be a NATS wildcard, separator or white space; a token that starts with
/// `_` (the dead-letter token) can never be a tenant's.
pub fn is_tenant_id(value: &str) -> bool {
    let mut bytes = value.bytes();
    let Some(first) = bytes.next() else {
        return false;
    };
    value.len() <= 63
        && (first.is_ascii_lowercase() || first.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A stable 64-bit FNV-1a hash: the same input gives the same value in every process and version,
/// unlike `std`'s hasher. For short names (advisory locks, sequence names), not for security, and
/// not for request fingerprints: 64 bits can collide (see [`crate::idempotency::Fingerprint`]).
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_round_trips_through_its_text_form() {
        let uuid = new_uuid();
        let text = format_id("emea", uuid);
        assert_eq!(
            parse_id(&text),
            Some(RegionalId {
                region: "emea".into(),
                uuid
            })
        );
    }

    #[test]
    fn malformed_ids_do_not_parse() {
        for text in [
            "",
            "emea",
            "emea-",
            "EMEA-0192f3c4-0000-7000-8000-000000000000",
            "emea-not-a-uuid",
            "-0192f3c4-0000-7000-8000-000000000000",
        ] {
            assert_eq!(parse_id(text), None, "{text}");
        }
    }
}
