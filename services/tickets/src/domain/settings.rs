//! A tenant's desk settings: the priority matrix and how long a resolved ticket may be reopened.

use chrono::Duration;

use super::priority::PriorityMatrix;

/// Longest reopen window a tenant may choose: a year.
pub const REOPEN_WINDOW_HOURS_MAX: i32 = 24 * 365;

/// Per-tenant settings with their defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketSettings {
    pub priority_matrix: PriorityMatrix,
    pub reopen_window_hours: i32,
}

impl Default for TicketSettings {
    /// The ITIL matrix and a week to reopen, until a tenant chooses otherwise.
    fn default() -> Self {
        Self {
            priority_matrix: PriorityMatrix::itil_default(),
            reopen_window_hours: 7 * 24,
        }
    }
}

impl TicketSettings {
    /// How long after its resolution a ticket may be reopened.
    pub fn reopen_window(&self) -> Duration {
        Duration::hours(i64::from(self.reopen_window_hours))
    }

    /// Why `hours` cannot be a reopen window, if it cannot: at least an hour (a zero window would
    /// let no requester object to a resolution), at most [`REOPEN_WINDOW_HOURS_MAX`].
    pub fn reopen_window_hours_rule(hours: i32) -> Option<String> {
        (!(1..=REOPEN_WINDOW_HOURS_MAX).contains(&hours))
            .then(|| format!("must be between 1 and {REOPEN_WINDOW_HOURS_MAX} hours"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_without_settings_reopens_for_a_week_under_the_itil_matrix() {
        let settings = TicketSettings::default();
        assert_eq!(settings.reopen_window(), Duration::days(7));
        assert_eq!(settings.priority_matrix, PriorityMatrix::itil_default());
    }

    #[test]
    fn a_reopen_window_lasts_an_hour_to_a_year() {
        for hours in [1, 24, REOPEN_WINDOW_HOURS_MAX] {
            assert_eq!(TicketSettings::reopen_window_hours_rule(hours), None);
        }
        for hours in [0, -1, REOPEN_WINDOW_HOURS_MAX + 1] {
            assert_eq!(
                TicketSettings::reopen_window_hours_rule(hours).as_deref(),
                Some("must be between 1 and 8760 hours")
            );
        }
    }
}
