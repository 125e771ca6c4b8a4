//! Coalescing: a burst of notifications to one recipient about one ticket on one channel becomes
//! one message. A delivery still waiting to go when the next one arrives within the window is
//! folded into it (the later one carries the ticket as it is now); the window starts at the
//! burst's first notification, so a steady stream still sends at least once per window.

use chrono::{DateTime, Duration, Utc};

/// How long a delivery waits for more of the same before it goes, by default.
pub const WINDOW_SECONDS: i64 = 60;

/// What groups notifications for coalescing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CoalesceKey {
    pub recipient: String,
    pub channel: &'static str,
    pub ticket_id: String,
}

/// The pending delivery a new notification meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    /// When the burst began (the first folded notification's time).
    pub burst_start: DateTime<Utc>,
    /// When it is due to go.
    pub due: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Fold into the pending one: it goes at `due` with the newer content.
    Fold { due: DateTime<Utc> },
    /// A new delivery, due at `due`.
    New { due: DateTime<Utc> },
}

/// Where a notification arriving at `now`, otherwise due at `earliest`, goes, with a coalescing
/// `window` (zero turns coalescing off). Urgent ones are never delayed by the window (but still
/// fold into a pending one, which then goes at once).
pub fn decide(
    pending: Option<Pending>,
    now: DateTime<Utc>,
    earliest: DateTime<Utc>,
    urgent: bool,
    window: Duration,
) -> Decision {
    match pending {
        Some(p) if window > Duration::zero() && now < p.burst_start + window => Decision::Fold {
            due: if urgent { now } else { p.due.max(earliest) },
        },
        _ if urgent => Decision::New { due: earliest },
        _ => Decision::New {
            due: earliest.max(now + window),
        },
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    const W: Duration = Duration::seconds(WINDOW_SECONDS);

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + s, 0)
            .single()
            .expect("valid")
    }

    #[test]
    fn ten_updates_in_a_minute_make_one_message() {
        let first = decide(None, t(0), t(0), false, W);
        let Decision::New { due } = first else {
            panic!("the first is new: {first:?}")
        };
        assert_eq!(due, t(60));
        let pending = Pending {
            burst_start: t(0),
            due,
        };
        for s in 1..10 {
            assert_eq!(
                decide(Some(pending), t(s * 5), t(s * 5), false, W),
                Decision::Fold { due: t(60) }
            );
        }
    }

    #[test]
    fn after_the_window_a_new_message_starts() {
        let pending = Pending {
            burst_start: t(0),
            due: t(60),
        };
        assert_eq!(
            decide(Some(pending), t(61), t(61), false, W),
            Decision::New { due: t(121) }
        );
    }

    #[test]
    fn a_zero_window_turns_coalescing_off() {
        let pending = Pending {
            burst_start: t(0),
            due: t(0),
        };
        let zero = Duration::zero();
        assert_eq!(
            decide(None, t(0), t(0), false, zero),
            Decision::New { due: t(0) }
        );
        assert_eq!(
            decide(Some(pending), t(1), t(1), false, zero),
            Decision::New { due: t(1) }
        );
    }

    #[test]
    fn urgent_notifications_go_at_once() {
        assert_eq!(
            decide(None, t(0), t(0), true, W),
            Decision::New { due: t(0) }
        );
        let pending = Pending {
            burst_start: t(0),
            due: t(60),
        };
        assert_eq!(
            decide(Some(pending), t(10), t(10), true, W),
            Decision::Fold { due: t(10) }
        );
    }

    #[test]
    fn a_held_notification_keeps_its_hold() {
        // Quiet hours until t(3600): the window does not bring it forward.
        assert_eq!(
            decide(None, t(0), t(3600), false, W),
            Decision::New { due: t(3600) }
        );
        let pending = Pending {
            burst_start: t(0),
            due: t(3600),
        };
        assert_eq!(
            decide(Some(pending), t(30), t(3600), false, W),
            Decision::Fold { due: t(3600) }
        );
    }
}
