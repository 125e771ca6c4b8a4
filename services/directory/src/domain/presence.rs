//! Presence: whether an agent is available, busy, away or offline. An agent sets it with a time
//! to live and refreshes it while they work; a presence not refreshed in time reads as offline
//! from the moment it expires, and the expiry is published once as `presence.changed`.
//!
//! Refreshing an unchanged status only moves its expiry: it is no change of presence, so it
//! publishes nothing (heartbeats would otherwise flood every consumer). Consumers therefore take
//! presence from the events — `presence.changed` to offline comes when it expires — and never
//! from `expire_time` arithmetic of their own.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::{string_enum::string_enum, validate::Violations};

string_enum! {
    pub enum PresenceStatus {
        Available => "available",
        Busy => "busy",
        Away => "away",
        Offline => "offline",
    }
}

/// The time to live of a presence set without one.
pub const DEFAULT_TTL_SECONDS: i64 = 300;
/// The longest time to live: a presence set once lasts a working day at most.
pub const MAX_TTL_SECONDS: i64 = 86_400;

/// A presence as stored: what was set, when, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    pub tenant_id: String,
    pub person_id: Uuid,
    /// As set: an expired presence still holds the status it had until the expiry is recorded.
    pub status: PresenceStatus,
    pub set_at: DateTime<Utc>,
    /// `None` for offline.
    pub expires_at: Option<DateTime<Utc>>,
    pub version: i64,
}

/// A presence as of a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceReading {
    pub status: PresenceStatus,
    /// Offline because it expired.
    pub expired: bool,
}

impl Presence {
    /// The presence as it reads at `now`.
    pub fn as_of(&self, now: DateTime<Utc>) -> PresenceReading {
        if self.is_due(now) {
            PresenceReading {
                status: PresenceStatus::Offline,
                expired: true,
            }
        } else {
            PresenceReading {
                status: self.status,
                expired: false,
            }
        }
    }

    /// Whether it has expired at `now` without the expiry being recorded yet.
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.status != PresenceStatus::Offline && self.expires_at.is_some_and(|at| at <= now)
    }
}

/// What no stored presence reads as.
pub fn never_set() -> PresenceReading {
    PresenceReading {
        status: PresenceStatus::Offline,
        expired: false,
    }
}

/// A presence after a change, and the status it had before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceChange {
    pub presence: Presence,
    pub previous: PresenceStatus,
    pub expired: bool,
}

/// The time to live a request asks for, checked: `0` is [`DEFAULT_TTL_SECONDS`].
pub fn checked_ttl(ttl_seconds: i32, violations: &mut Violations) -> Option<Duration> {
    match i64::from(ttl_seconds) {
        0 => Some(Duration::seconds(DEFAULT_TTL_SECONDS)),
        seconds if (1..=MAX_TTL_SECONDS).contains(&seconds) => Some(Duration::seconds(seconds)),
        _ => {
            violations.push(
                "ttl_seconds",
                format!("must be 1 to {MAX_TTL_SECONDS} seconds, or 0 for {DEFAULT_TTL_SECONDS}"),
            );
            None
        }
    }
}

/// Records the expiry of a presence that is due at `now`; `None` when it is not due.
pub fn expire(current: &Presence, now: DateTime<Utc>) -> Option<PresenceChange> {
    if !current.is_due(now) {
        return None;
    }
    let mut next = current.clone();
    next.status = PresenceStatus::Offline;
    // Offline from the moment it expired, whenever the expiry is recorded.
    next.set_at = current.expires_at.unwrap_or(now);
    next.expires_at = None;
    next.version += 1;
    Some(PresenceChange {
        presence: next,
        previous: current.status,
        expired: true,
    })
}

/// What setting a presence writes: the new row, and the changes to publish in order — an expiry
/// not yet recorded first, then the new status when it differs from what the presence read as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceSet {
    pub presence: Presence,
    /// The version the stored row must still have (`None`: there is none yet).
    pub expected_version: Option<i64>,
    pub changes: Vec<PresenceChange>,
}

/// Sets `person`'s presence to `status` at `now`, lasting `ttl` (ignored for offline).
pub fn set(
    current: Option<&Presence>,
    tenant: &str,
    person: Uuid,
    status: PresenceStatus,
    ttl: Duration,
    now: DateTime<Utc>,
) -> PresenceSet {
    let mut changes = Vec::new();
    let mut base = current.cloned();
    if let Some(due) = current.and_then(|presence| expire(presence, now)) {
        base = Some(due.presence.clone());
        changes.push(due);
    }
    let previous = base.as_ref().map_or(PresenceStatus::Offline, |p| p.status);
    let expires_at = (status != PresenceStatus::Offline).then(|| now + ttl);
    let next = match &base {
        Some(stored) if stored.status == status => Presence {
            expires_at,
            ..stored.clone()
        },
        Some(stored) => Presence {
            status,
            set_at: now,
            expires_at,
            version: stored.version + 1,
            ..stored.clone()
        },
        None => Presence {
            tenant_id: tenant.to_owned(),
            person_id: person,
            status,
            set_at: now,
            expires_at,
            version: 1,
        },
    };
    let changed = match &base {
        Some(stored) => stored.status != status,
        // Nobody is offline "more" than never having been present.
        None => status != PresenceStatus::Offline,
    };
    if changed {
        changes.push(PresenceChange {
            presence: next.clone(),
            previous,
            expired: false,
        });
    }
    PresenceSet {
        presence: next,
        expected_version: current.map(|p| p.version),
        changes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::at;

    fn available_until(expiry: i64) -> Presence {
        Presence {
            tenant_id: "acme".into(),
            person_id: Uuid::from_u128(1),
            status: PresenceStatus::Available,
            set_at: at(0),
            expires_at: Some(at(expiry)),
            version: 3,
        }
    }

    #[test]
    fn a_presence_reads_as_set_until_it_expires_and_offline_after() {
        let presence = available_until(300);
        assert_eq!(presence.as_of(at(299)).status, PresenceStatus::Available);
        let after = presence.as_of(at(300));
        assert_eq!(after.status, PresenceStatus::Offline);
        assert!(after.expired);
    }

    #[test]
    fn an_expiry_is_recorded_once_as_offline_from_when_it_expired() {
        let presence = available_until(300);
        assert_eq!(expire(&presence, at(299)), None);
        let expired = expire(&presence, at(450)).expect("due");
        assert_eq!(expired.presence.status, PresenceStatus::Offline);
        assert_eq!(expired.presence.set_at, at(300));
        assert_eq!(expired.presence.version, 4);
        assert_eq!(expired.previous, PresenceStatus::Available);
        assert!(expired.expired);
        assert_eq!(expire(&expired.presence, at(500)), None, "only once");
    }

    #[test]
    fn a_first_presence_is_a_change_and_a_refresh_is_not() {
        let first = set(
            None,
            "acme",
            Uuid::from_u128(1),
            PresenceStatus::Busy,
            Duration::seconds(60),
            at(10),
        );
        assert_eq!(first.expected_version, None);
        assert_eq!(first.presence.version, 1);
        assert_eq!(first.presence.expires_at, Some(at(70)));
        assert_eq!(first.changes.len(), 1);
        assert_eq!(first.changes[0].previous, PresenceStatus::Offline);

        let refresh = set(
            Some(&first.presence),
            "acme",
            Uuid::from_u128(1),
            PresenceStatus::Busy,
            Duration::seconds(60),
            at(50),
        );
        assert!(refresh.changes.is_empty());
        assert_eq!(refresh.presence.version, 1);
        assert_eq!(refresh.presence.expires_at, Some(at(110)));
        assert_eq!(refresh.expected_version, Some(1));
    }

    #[test]
    fn setting_after_an_unrecorded_expiry_publishes_the_expiry_first() {
        let presence = available_until(300);
        let again = set(
            Some(&presence),
            "acme",
            presence.person_id,
            PresenceStatus::Available,
            Duration::seconds(300),
            at(400),
        );
        let versions: Vec<_> = again
            .changes
            .iter()
            .map(|c| (c.presence.status, c.presence.version, c.expired))
            .collect();
        assert_eq!(
            versions,
            [
                (PresenceStatus::Offline, 4, true),
                (PresenceStatus::Available, 5, false)
            ]
        );
        assert_eq!(again.presence.version, 5);
        assert_eq!(again.expected_version, Some(3));
    }

    #[test]
    fn going_offline_has_no_expiry_and_ttls_are_bounded() {
        let offline = set(
            Some(&available_until(300)),
            "acme",
            Uuid::from_u128(1),
            PresenceStatus::Offline,
            Duration::seconds(60),
            at(10),
        );
        assert_eq!(offline.presence.expires_at, None);
        assert_eq!(offline.changes.len(), 1);
        let mut violations = Violations::new();
        assert_eq!(
            checked_ttl(0, &mut violations),
            Some(Duration::seconds(300))
        );
        assert_eq!(checked_ttl(-1, &mut violations), None);
        assert_eq!(checked_ttl(86_401, &mut violations), None);
        assert_eq!(violations.len(), 2);
    }
}
