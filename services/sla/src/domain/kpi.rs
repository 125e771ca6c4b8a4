//! Service-level KPIs from the same data the clocks come from: ticket histories and the clocks'
//! states, grouped by team, region, priority, service or month.
//!
//! - **SLA compliance**: SLA clocks met over SLA clocks met or breached (running ones that have
//!   not breached yet are not decided).
//! - **MTTA / MTTR**: wall-clock time from creation to first response (the ticket first worked
//!   on) and to resolution (the last one, for tickets resolved now).
//! - **First-contact resolution**: resolved tickets that never changed team and were never
//!   reopened, over resolved tickets.
//! - **Backlog age**: mean age at the end of the period of tickets still open then.
//! - **Reopen rate**: resolved tickets reopened at least once, over resolved tickets.
//! - **CSAT**: the mean rating (1–5) over rated tickets.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::clock::ClockState;
use super::policy::{Metric, PolicyKind};
use super::ticket::{FactKind, TicketHistory};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    Team,
    Region,
    Priority,
    Service,
    /// The calendar month (UTC) of creation.
    Period,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct KpiRow {
    pub key: String,
    pub tickets: i64,
    pub sla_compliance: f64,
    pub mean_time_to_acknowledge_seconds: f64,
    pub mean_time_to_resolve_seconds: f64,
    pub first_contact_resolution: f64,
    pub backlog_age_seconds: f64,
    pub backlog: i64,
    pub reopen_rate: f64,
    pub csat_average: f64,
    pub csat_responses: i64,
}

#[derive(Default)]
struct Sums {
    tickets: i64,
    met: i64,
    decided: i64,
    acknowledge: (f64, i64),
    resolve: (f64, i64),
    first_contact: i64,
    resolved: i64,
    reopened: i64,
    backlog_age: f64,
    backlog: i64,
    csat: (f64, i64),
}

fn ratio(part: f64, whole: i64) -> f64 {
    if whole == 0 { 0.0 } else { part / whole as f64 }
}

/// KPIs of `tickets` (id and history), with the `clocks` (ticket id, kind, state) they had,
/// as of `as_of`; `regions` names each team's region.
pub fn compute(
    tickets: &[(&str, &TicketHistory)],
    clocks: &[(&str, PolicyKind, ClockState)],
    regions: &HashMap<String, String>,
    dimension: Dimension,
    as_of: DateTime<Utc>,
) -> Vec<KpiRow> {
    let mut sla: HashMap<&str, (i64, i64)> = HashMap::new();
    for (ticket, kind, state) in clocks {
        if *kind != PolicyKind::Sla {
            continue;
        }
        let entry = sla.entry(ticket).or_default();
        match state {
            ClockState::Met => {
                entry.0 += 1;
                entry.1 += 1;
            }
            ClockState::Breached => entry.1 += 1,
            ClockState::Running | ClockState::Paused => {}
        }
    }
    let mut groups: BTreeMap<String, Sums> = BTreeMap::new();
    for (id, history) in tickets {
        let Some(latest) = history.latest() else {
            continue;
        };
        let created = latest.created_at;
        let keys: Vec<String> = match dimension {
            Dimension::Team => vec![
                latest
                    .team_id
                    .clone()
                    .unwrap_or_else(|| "unassigned".into()),
            ],
            Dimension::Region => vec![
                latest
                    .team_id
                    .as_ref()
                    .and_then(|team| regions.get(team).cloned())
                    .unwrap_or_else(|| latest.region.clone()),
            ],
            Dimension::Priority => vec![latest.priority.label()],
            Dimension::Service if latest.service_ids.is_empty() => vec!["none".into()],
            Dimension::Service => latest.service_ids.clone(),
            Dimension::Period => vec![created.format("%Y-%m").to_string()],
        };
        let acknowledged = history
            .facts
            .iter()
            .find(|f| Metric::FirstResponse.is_achieved_in(f.ticket.status))
            .map(|f| f.at);
        let done = latest.status.is_done();
        let resolved_at = done
            .then(|| {
                // The start of the final resolved stretch.
                let mut at = None;
                for fact in history.facts.iter().rev() {
                    if fact.ticket.status.is_done() {
                        at = Some(fact.at);
                    } else {
                        break;
                    }
                }
                at
            })
            .flatten();
        let reopened = history.facts.iter().any(|f| f.kind == FactKind::Reopened);
        let mut teams: Vec<&String> = history
            .facts
            .iter()
            .filter_map(|f| f.ticket.team_id.as_ref())
            .collect();
        teams.dedup();
        for key in keys {
            let sums = groups.entry(key).or_default();
            sums.tickets += 1;
            if let Some((met, decided)) = sla.get(id) {
                sums.met += met;
                sums.decided += decided;
            }
            if let Some(at) = acknowledged {
                sums.acknowledge.0 += (at - created).num_seconds() as f64;
                sums.acknowledge.1 += 1;
            }
            if let Some(at) = resolved_at {
                sums.resolve.0 += (at - created).num_seconds() as f64;
                sums.resolve.1 += 1;
                sums.resolved += 1;
                if reopened {
                    sums.reopened += 1;
                }
                if teams.len() <= 1 && !reopened {
                    sums.first_contact += 1;
                }
            } else {
                sums.backlog += 1;
                sums.backlog_age += (as_of - created).num_seconds().max(0) as f64;
            }
            if let Some(rating) = latest.rating {
                sums.csat.0 += f64::from(rating);
                sums.csat.1 += 1;
            }
        }
    }
    groups
        .into_iter()
        .map(|(key, s)| KpiRow {
            key,
            tickets: s.tickets,
            sla_compliance: ratio(s.met as f64, s.decided),
            mean_time_to_acknowledge_seconds: ratio(s.acknowledge.0, s.acknowledge.1),
            mean_time_to_resolve_seconds: ratio(s.resolve.0, s.resolve.1),
            first_contact_resolution: ratio(s.first_contact as f64, s.resolved),
            backlog_age_seconds: ratio(s.backlog_age, s.backlog),
            backlog: s.backlog,
            reopen_rate: ratio(s.reopened as f64, s.resolved),
            csat_average: ratio(s.csat.0, s.csat.1),
            csat_responses: s.csat.1,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, TimeZone};

    use super::*;
    use crate::domain::ticket::tests::snapshot;
    use crate::domain::ticket::{TicketFact, TicketStatus};

    fn at(hours: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 7, 0, 0, 0)
            .single()
            .expect("a time")
            + TimeDelta::hours(hours)
    }

    /// A history from (hour, status, team, kind) steps.
    fn history(
        steps: &[(i64, TicketStatus, &str, FactKind)],
        rating: Option<i32>,
    ) -> TicketHistory {
        let mut history = TicketHistory::default();
        for (version, (hour, status, team, kind)) in steps.iter().enumerate() {
            let mut ticket = snapshot(*status);
            ticket.created_at = at(steps[0].0);
            ticket.team_id = Some((*team).to_owned());
            ticket.rating = if version + 1 == steps.len() {
                rating
            } else {
                None
            };
            history.record(TicketFact {
                version: i64::try_from(version).expect("small") + 1,
                at: at(*hour),
                kind: *kind,
                actor: None,
                note: None,
                ticket,
            });
        }
        history
    }

    #[test]
    fn kpis_of_a_known_data_set() {
        use FactKind::{Changed, Created, Reopened};
        use TicketStatus::{InProgress, New, Resolved};
        // a: acknowledged after 1 h, resolved after 4 h, one team, rated 5.
        let a = history(
            &[
                (0, New, "l1", Created),
                (1, InProgress, "l1", Changed),
                (4, Resolved, "l1", Changed),
            ],
            Some(5),
        );
        // b: moved to l2, resolved after 10 h, reopened and resolved again at 12 h, rated 3.
        let b = history(
            &[
                (0, New, "l1", Created),
                (2, InProgress, "l2", Changed),
                (10, Resolved, "l2", Changed),
                (11, InProgress, "l2", Reopened),
                (12, Resolved, "l2", Changed),
            ],
            Some(3),
        );
        // c: still open, created at hour 6.
        let c = history(&[(6, New, "l1", Created)], None);
        let clocks = [
            ("a", PolicyKind::Sla, ClockState::Met),
            ("a", PolicyKind::Ola, ClockState::Breached),
            ("b", PolicyKind::Sla, ClockState::Breached),
            ("c", PolicyKind::Sla, ClockState::Running),
        ];
        let tickets = [("a", &a), ("b", &b), ("c", &c)];
        let regions = HashMap::from([("l1".to_owned(), "emea".to_owned())]);
        let rows = compute(&tickets, &clocks, &regions, Dimension::Priority, at(24));
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.key, "p3");
        assert_eq!(row.tickets, 3);
        assert_eq!(row.sla_compliance, 0.5);
        assert_eq!(row.mean_time_to_acknowledge_seconds, 1.5 * 3600.0);
        // a: 4 h; b: 12 h (the final resolution).
        assert_eq!(row.mean_time_to_resolve_seconds, 8.0 * 3600.0);
        assert_eq!(row.first_contact_resolution, 0.5);
        assert_eq!(row.reopen_rate, 0.5);
        assert_eq!(row.backlog, 1);
        assert_eq!(row.backlog_age_seconds, 18.0 * 3600.0);
        assert_eq!(row.csat_average, 4.0);
        assert_eq!(row.csat_responses, 2);

        let by_team = compute(&tickets, &clocks, &regions, Dimension::Team, at(24));
        let keys: Vec<&str> = by_team.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["l1", "l2"]);
        assert_eq!(by_team[0].tickets, 2);
        let by_region = compute(&tickets, &clocks, &regions, Dimension::Region, at(24));
        let keys: Vec<&str> = by_region.iter().map(|r| r.key.as_str()).collect();
        // l2 has no region in the projection: the ticket's own region.
        assert_eq!(keys, ["emea"]);
        let by_period = compute(&tickets, &clocks, &regions, Dimension::Period, at(24));
        assert_eq!(by_period[0].key, "2026-12");
    }

    #[test]
    fn no_tickets_no_rows_and_no_division_by_zero() {
        let rows = compute(&[], &[], &HashMap::new(), Dimension::Team, at(0));
        assert!(rows.is_empty());
        let open = history(&[(0, TicketStatus::New, "l1", FactKind::Created)], None);
        let rows = compute(
            &[("x", &open)],
            &[],
            &HashMap::new(),
            Dimension::Service,
            at(1),
        );
        assert_eq!(rows[0].key, "none");
        assert_eq!(rows[0].sla_compliance, 0.0);
        assert_eq!(rows[0].mean_time_to_resolve_seconds, 0.0);
    }
}
