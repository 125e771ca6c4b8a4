//! Opaque cursor tokens for list calls: the position after the last item of a page, encoded so
//! clients treat it as a token rather than a number they could edit.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Serialize, de::DeserializeOwned};

/// Encodes a cursor (any serde value, typically the sort key of the last item returned).
pub fn encode_cursor<T: Serialize>(cursor: &T) -> String {
    serde_json::to_vec(cursor)
        .map(|bytes| URL_SAFE_NO_PAD.encode(bytes))
        .unwrap_or_default()
}

/// Decodes a token from [`encode_cursor`]; `None` when it was tampered with or is from another list.
pub fn decode_cursor<T: DeserializeOwned>(token: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Clamps a requested page size: `0` means the default.
pub fn page_size(requested: i32, default: u64, max: u64) -> u64 {
    match requested {
        n if n <= 0 => default,
        n => (n as u64).min(max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_garbage_does_not_decode() {
        let token = encode_cursor(&("2026-11-25T10:00:00Z", 42));
        assert_eq!(
            decode_cursor::<(String, i64)>(&token),
            Some(("2026-11-25T10:00:00Z".into(), 42))
        );
        assert_eq!(decode_cursor::<(String, i64)>("not a token"), None);
    }

    #[test]
    fn page_sizes_are_clamped() {
        assert_eq!(page_size(0, 50, 200), 50);
        assert_eq!(page_size(-3, 50, 200), 50);
        assert_eq!(page_size(1000, 50, 200), 200);
        assert_eq!(page_size(10, 50, 200), 10);
    }
}
