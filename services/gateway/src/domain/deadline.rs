//! Deadlines: every call through the gateway has one, no longer than `gateway.max_deadline_ms`.
//! A call that names none (`grpc-timeout`), or a longer one, gets the cap; the capped value is
//! what the service sees, so its own calls to other services inherit it (`desk_kit::calls`).

use std::time::Duration;

/// The deadline a call gets: what it asked for (`grpc-timeout`, if it parsed), at most `cap`.
pub fn capped(requested: Option<Duration>, cap: Duration) -> Duration {
    requested.map_or(cap, |asked| asked.min(cap))
}

/// `duration` as a `grpc-timeout` value: at most 8 digits and a unit, in the finest unit that
/// fits (microseconds up to 99 s, then milliseconds, then seconds), never rounded up.
pub fn grpc_timeout_value(duration: Duration) -> String {
    const MAX: u128 = 99_999_999;
    let micros = duration.as_micros();
    if micros <= MAX {
        return format!("{micros}u");
    }
    let millis = duration.as_millis();
    if millis <= MAX {
        return format!("{millis}m");
    }
    format!("{}S", u128::from(duration.as_secs()).min(MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use desk_kit::calls::parse_grpc_timeout;

    #[test]
    fn a_call_gets_what_it_asked_for_up_to_the_cap() {
        let cap = Duration::from_secs(30);
        assert_eq!(capped(None, cap), cap);
        assert_eq!(
            capped(Some(Duration::from_secs(5)), cap),
            Duration::from_secs(5)
        );
        assert_eq!(capped(Some(Duration::from_secs(3600)), cap), cap);
    }

    #[test]
    fn timeouts_are_written_so_that_they_parse_back_exactly() {
        for duration in [
            Duration::from_micros(1),
            Duration::from_millis(250),
            Duration::from_secs(30),
            Duration::from_secs(99),
            Duration::from_secs(100),
            Duration::from_secs(86_400),
        ] {
            let value = grpc_timeout_value(duration);
            assert_eq!(parse_grpc_timeout(&value), Some(duration), "{value}");
        }
        assert_eq!(grpc_timeout_value(Duration::from_secs(30)), "30000000u");
        assert_eq!(grpc_timeout_value(Duration::from_secs(3600)), "3600000m");
    }
}
