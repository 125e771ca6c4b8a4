//! A person's preferences: channels per kind of notification, quiet hours in their time zone
//! (non-urgent notifications are held until they end; urgent ones pass), a daily digest, and a
//! locale. [`Preferences::schedule`] decides when a notification may go.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::rules::Channel;

/// Local `HH:MM`.
pub fn parse_local_time(text: &str) -> Option<NaiveTime> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, 0)
}

pub fn parse_zone(name: &str) -> Option<Tz> {
    name.parse().ok()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
    /// The person's own zone when `None`.
    #[serde(with = "zone_name")]
    pub zone: Option<Tz>,
}

impl QuietHours {
    /// When the quiet period containing `now` ends, or `None` when `now` is not quiet. A period
    /// whose `start` is after its `end` spans midnight. Local times that a DST jump skips resolve
    /// to the first instant after the gap.
    pub fn release_time(&self, now: DateTime<Utc>, person_zone: Tz) -> Option<DateTime<Utc>> {
        let zone = self.zone.unwrap_or(person_zone);
        let local = now.with_timezone(&zone);
        let time = local.time();
        let today = local.date_naive();
        let end_day = if self.start == self.end {
            return None;
        } else if self.start < self.end {
            if time < self.start || time >= self.end {
                return None;
            }
            today
        } else if time >= self.start {
            today.succ_opt()?
        } else if time < self.end {
            today
        } else {
            return None;
        };
        Some(resolve_local(zone, end_day.and_time(self.end)))
    }
}

/// The first instant at or after a local wall-clock time (a time in a DST gap moves forward).
fn resolve_local(zone: Tz, local: chrono::NaiveDateTime) -> DateTime<Utc> {
    let mut probe = local;
    for _ in 0..180 {
        if let Some(at) = zone.from_local_datetime(&probe).earliest() {
            return at.with_timezone(&Utc);
        }
        probe += Duration::minutes(1);
    }
    // No zone has a gap of three hours; fall back to reading the wall time as UTC.
    Utc.from_utc_datetime(&local)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelPreference {
    /// An event type, or `*` for every kind.
    pub kind: String,
    pub channels: Vec<Channel>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Preferences {
    pub channels: Vec<ChannelPreference>,
    pub quiet_hours: Option<QuietHours>,
    pub daily_digest: bool,
    /// Local time the digest goes out.
    pub digest_time: Option<NaiveTime>,
    /// BCP 47; the directory's when `None`.
    pub locale: Option<String>,
    /// Where e-mail goes; the directory's address when `None`.
    #[serde(default)]
    pub email: Option<String>,
}

/// When a notification may be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    Now,
    /// Held by quiet hours until then.
    HeldUntil(DateTime<Utc>),
    /// Gathered into the digest sent then.
    Digest(DateTime<Utc>),
}

impl Schedule {
    pub fn at(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Schedule::Now => now,
            Schedule::HeldUntil(t) | Schedule::Digest(t) => t,
        }
    }
}

impl Preferences {
    /// The channels the person wants for `kind` out of those the rule offers: the most specific
    /// preference (the exact kind, else `*`) wins; without one, the rule's channels.
    pub fn channels_for(&self, kind: &str, offered: &[Channel]) -> Vec<Channel> {
        let chosen = self
            .channels
            .iter()
            .find(|p| p.kind == kind)
            .or_else(|| self.channels.iter().find(|p| p.kind == "*"));
        match chosen {
            Some(p) => offered
                .iter()
                .copied()
                .filter(|c| p.channels.contains(c))
                .collect(),
            None => offered.to_vec(),
        }
    }

    /// When a notification on `channel` may go. Urgent ones go now; in-app ones go now too (they
    /// wake nobody, and the feed is where held ones would be looked for). A digest gathers
    /// non-urgent e-mail; quiet hours hold the rest.
    pub fn schedule(
        &self,
        channel: Channel,
        urgent: bool,
        now: DateTime<Utc>,
        person_zone: Tz,
    ) -> Schedule {
        if urgent || channel == Channel::InApp || channel == Channel::Webhook {
            return Schedule::Now;
        }
        if self.daily_digest && channel == Channel::Email {
            let at = self
                .digest_time
                .unwrap_or(NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default());
            return Schedule::Digest(next_local(now, person_zone, at));
        }
        match self
            .quiet_hours
            .as_ref()
            .and_then(|q| q.release_time(now, person_zone))
        {
            Some(t) => Schedule::HeldUntil(t),
            None => Schedule::Now,
        }
    }
}

/// The next instant (after `now`) whose local time in `zone` is `at`.
fn next_local(now: DateTime<Utc>, zone: Tz, at: NaiveTime) -> DateTime<Utc> {
    let local = now.with_timezone(&zone).date_naive();
    let today = resolve_local(zone, local.and_time(at));
    if today > now {
        return today;
    }
    match local.succ_opt() {
        Some(tomorrow) => resolve_local(zone, tomorrow.and_time(at)),
        None => today,
    }
}

/// Zones stored by their IANA name (chrono-tz's serde feature is off in the workspace).
mod zone_name {
    use chrono_tz::Tz;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(zone: &Option<Tz>, s: S) -> Result<S::Ok, S::Error> {
        match zone {
            Some(z) => s.serialize_some(z.name()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Tz>, D::Error> {
        let name: Option<String> = Option::deserialize(d)?;
        name.map(|n| n.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .expect("valid")
    }

    fn quiet(start: &str, end: &str) -> QuietHours {
        QuietHours {
            start: parse_local_time(start).expect("time"),
            end: parse_local_time(end).expect("time"),
            zone: None,
        }
    }

    const STOCKHOLM: Tz = chrono_tz::Europe::Stockholm;

    #[test]
    fn local_times_parse_strictly() {
        assert_eq!(parse_local_time("22:00"), NaiveTime::from_hms_opt(22, 0, 0));
        assert_eq!(parse_local_time("7:00"), None);
        assert_eq!(parse_local_time("24:00"), None);
        assert_eq!(parse_local_time("12:60"), None);
        assert_eq!(parse_local_time("noon"), None);
        assert!(parse_zone("Asia/Jakarta").is_some());
        assert!(parse_zone("Mars/Olympus").is_none());
    }

    #[test]
    fn quiet_hours_over_midnight_release_the_next_morning_in_the_persons_zone() {
        let q = quiet("22:00", "07:00");
        // 23:30 in Stockholm (CET, UTC+1) on 10 January.
        let release = q.release_time(utc(2026, 1, 10, 22, 30), STOCKHOLM);
        assert_eq!(release, Some(utc(2026, 1, 11, 6, 0)));
        // 03:00 local: released the same morning.
        assert_eq!(
            q.release_time(utc(2026, 1, 11, 2, 0), STOCKHOLM),
            Some(utc(2026, 1, 11, 6, 0))
        );
        // 12:00 local: not quiet.
        assert_eq!(q.release_time(utc(2026, 1, 11, 11, 0), STOCKHOLM), None);
        // The end itself is no longer quiet.
        assert_eq!(q.release_time(utc(2026, 1, 11, 6, 0), STOCKHOLM), None);
    }

    #[test]
    fn quiet_hours_within_a_day_and_in_their_own_zone() {
        let mut q = quiet("12:00", "13:00");
        q.zone = Some(chrono_tz::Asia::Jakarta);
        // 12:30 in Jakarta (UTC+7) is 05:30 UTC.
        assert_eq!(
            q.release_time(utc(2026, 3, 2, 5, 30), STOCKHOLM),
            Some(utc(2026, 3, 2, 6, 0))
        );
        assert_eq!(q.release_time(utc(2026, 3, 2, 6, 30), STOCKHOLM), None);
        assert_eq!(
            quiet("09:00", "09:00").release_time(utc(2026, 3, 2, 8, 0), STOCKHOLM),
            None
        );
    }

    #[test]
    fn a_release_in_a_dst_gap_moves_to_the_first_instant_after_it() {
        // Stockholm skips 02:00–03:00 on 29 March 2026; quiet hours ending at 02:30.
        let q = quiet("22:00", "02:30");
        let release = q.release_time(utc(2026, 3, 28, 22, 0), STOCKHOLM);
        // 03:00 CEST = 01:00 UTC.
        assert_eq!(release, Some(utc(2026, 3, 29, 1, 0)));
    }

    #[test]
    fn urgent_and_in_app_pass_quiet_hours_others_are_held() {
        let prefs = Preferences {
            quiet_hours: Some(quiet("22:00", "07:00")),
            ..Preferences::default()
        };
        let night = utc(2026, 1, 10, 22, 30);
        assert_eq!(
            prefs.schedule(Channel::Email, true, night, STOCKHOLM),
            Schedule::Now
        );
        assert_eq!(
            prefs.schedule(Channel::InApp, false, night, STOCKHOLM),
            Schedule::Now
        );
        assert_eq!(
            prefs.schedule(Channel::Email, false, night, STOCKHOLM),
            Schedule::HeldUntil(utc(2026, 1, 11, 6, 0))
        );
        assert_eq!(
            prefs.schedule(Channel::Sms, false, night, STOCKHOLM),
            Schedule::HeldUntil(utc(2026, 1, 11, 6, 0))
        );
        let noon = utc(2026, 1, 11, 11, 0);
        assert_eq!(
            prefs.schedule(Channel::Email, false, noon, STOCKHOLM),
            Schedule::Now
        );
    }

    #[test]
    fn the_digest_gathers_non_urgent_email_until_the_next_digest_time() {
        let prefs = Preferences {
            daily_digest: true,
            digest_time: parse_local_time("08:00"),
            ..Preferences::default()
        };
        // 10:00 local → tomorrow 08:00 local (07:00 UTC in winter).
        let at = utc(2026, 1, 10, 9, 0);
        assert_eq!(
            prefs.schedule(Channel::Email, false, at, STOCKHOLM),
            Schedule::Digest(utc(2026, 1, 11, 7, 0))
        );
        // 06:00 local → today 08:00.
        let early = utc(2026, 1, 10, 5, 0);
        assert_eq!(
            prefs.schedule(Channel::Email, false, early, STOCKHOLM),
            Schedule::Digest(utc(2026, 1, 10, 7, 0))
        );
        assert_eq!(
            prefs.schedule(Channel::Email, true, at, STOCKHOLM),
            Schedule::Now
        );
        assert_eq!(
            prefs.schedule(Channel::Sms, false, at, STOCKHOLM),
            Schedule::Now
        );
    }

    #[test]
    fn the_most_specific_channel_preference_wins_within_what_the_rule_offers() {
        let prefs = Preferences {
            channels: vec![
                ChannelPreference {
                    kind: "*".into(),
                    channels: vec![Channel::InApp],
                },
                ChannelPreference {
                    kind: "desk.tickets.ticket.assigned.v1".into(),
                    channels: vec![Channel::Email, Channel::Sms],
                },
            ],
            ..Preferences::default()
        };
        let offered = [Channel::Email, Channel::InApp];
        assert_eq!(
            prefs.channels_for("desk.tickets.ticket.assigned.v1", &offered),
            vec![Channel::Email]
        );
        assert_eq!(
            prefs.channels_for("desk.tickets.ticket.created.v1", &offered),
            vec![Channel::InApp]
        );
        assert_eq!(
            Preferences::default().channels_for("x", &offered),
            offered.to_vec()
        );
    }
}
