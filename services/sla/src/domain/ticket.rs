//! What the SLA service knows of a ticket: the snapshots the tickets service's events carry,
//! kept in version order as the ticket's history, which every clock is folded from.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketType {
    Incident,
    ServiceRequest,
    Problem,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    New,
    Assigned,
    InProgress,
    Pending,
    Resolved,
    Closed,
}

impl TicketStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::New => "new",
            TicketStatus::Assigned => "assigned",
            TicketStatus::InProgress => "in_progress",
            TicketStatus::Pending => "pending",
            TicketStatus::Resolved => "resolved",
            TicketStatus::Closed => "closed",
        }
    }

    /// Resolved or closed: the provider's work is done.
    pub fn is_done(self) -> bool {
        matches!(self, TicketStatus::Resolved | TicketStatus::Closed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingReason {
    Customer,
    Vendor,
    Change,
}

impl PendingReason {
    pub fn as_str(self) -> &'static str {
        match self {
            PendingReason::Customer => "customer",
            PendingReason::Vendor => "vendor",
            PendingReason::Change => "change",
        }
    }
}

/// P1 (critical) … P5 (planning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Priority(u8);

impl Priority {
    pub const ALL: [Priority; 5] = [
        Priority(1),
        Priority(2),
        Priority(3),
        Priority(4),
        Priority(5),
    ];

    pub fn new(level: u8) -> Option<Priority> {
        (1..=5).contains(&level).then_some(Priority(level))
    }

    pub fn level(self) -> u8 {
        self.0
    }

    pub fn label(self) -> String {
        format!("p{}", self.0)
    }
}

/// A ticket as one of its events shows it after the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketSnapshot {
    pub number: String,
    pub ticket_type: TicketType,
    pub priority: Priority,
    pub status: TicketStatus,
    pub pending_reason: Option<PendingReason>,
    /// The owning team (assignment group).
    pub team_id: Option<String>,
    pub requester_id: String,
    pub service_ids: Vec<String>,
    pub region: String,
    /// 1–5 once the requester rated the resolution.
    pub rating: Option<i32>,
    pub created_at: DateTime<Utc>,
}

/// Which event of the tickets service a snapshot came with; only those a clock reacts to
/// differently from "the state is now this" are told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactKind {
    Created,
    Reopened,
    /// Every other event (assigned, status changed, updated, escalated, resolved, rated…).
    Changed,
}

/// One ticket event, reduced to what clocks and KPIs need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketFact {
    /// The ticket's version after the event; several events of one change share it.
    pub version: i64,
    pub at: DateTime<Utc>,
    pub kind: FactKind,
    /// The token subject that caused it, when known.
    pub actor: Option<String>,
    /// Free text the actor gave (a pending note, a reopen reason).
    pub note: Option<String>,
    pub ticket: TicketSnapshot,
}

/// A ticket's facts in version order, one per version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketHistory {
    pub facts: Vec<TicketFact>,
}

/// What adding a fact did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Added,
    /// Another event of a version already held: its kind is kept when it says more
    /// (`status_changed` then `reopened` of one change).
    Merged,
    /// Nothing new.
    Unchanged,
}

impl TicketHistory {
    /// Adds `fact` in version order (events may arrive out of order after redeliveries).
    pub fn record(&mut self, fact: TicketFact) -> Recorded {
        match self
            .facts
            .binary_search_by_key(&fact.version, |held| held.version)
        {
            Ok(position) => {
                let held = &mut self.facts[position];
                let mut changed = false;
                if held.kind == FactKind::Changed && fact.kind != FactKind::Changed {
                    held.kind = fact.kind;
                    changed = true;
                }
                if held.note.is_none() && fact.note.is_some() {
                    held.note = fact.note;
                    changed = true;
                }
                if changed {
                    Recorded::Merged
                } else {
                    Recorded::Unchanged
                }
            }
            Err(position) => {
                self.facts.insert(position, fact);
                Recorded::Added
            }
        }
    }

    pub fn latest(&self) -> Option<&TicketSnapshot> {
        self.facts.last().map(|fact| &fact.ticket)
    }

    pub fn first(&self) -> Option<&TicketFact> {
        self.facts.first()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;

    pub fn snapshot(status: TicketStatus) -> TicketSnapshot {
        TicketSnapshot {
            number: "INC-000001".into(),
            ticket_type: TicketType::Incident,
            priority: Priority::new(3).expect("a priority"),
            status,
            pending_reason: None,
            team_id: Some("emea-l1".into()),
            requester_id: "rita".into(),
            service_ids: vec![],
            region: "emea".into(),
            rating: None,
            created_at: Utc
                .with_ymd_and_hms(2026, 12, 7, 8, 0, 0)
                .single()
                .expect("a time"),
        }
    }

    fn fact(version: i64, kind: FactKind) -> TicketFact {
        TicketFact {
            version,
            at: Utc
                .with_ymd_and_hms(2026, 12, 7, 8, 0, 0)
                .single()
                .expect("a time")
                + chrono::TimeDelta::minutes(version),
            kind,
            actor: None,
            note: None,
            ticket: snapshot(TicketStatus::New),
        }
    }

    #[test]
    fn facts_arriving_out_of_order_are_kept_in_version_order() {
        let mut history = TicketHistory::default();
        assert_eq!(history.record(fact(3, FactKind::Changed)), Recorded::Added);
        assert_eq!(history.record(fact(1, FactKind::Created)), Recorded::Added);
        assert_eq!(history.record(fact(2, FactKind::Changed)), Recorded::Added);
        let versions: Vec<i64> = history.facts.iter().map(|f| f.version).collect();
        assert_eq!(versions, [1, 2, 3]);
    }

    #[test]
    fn a_second_event_of_one_version_adds_only_what_it_says_more() {
        let mut history = TicketHistory::default();
        history.record(fact(4, FactKind::Changed));
        assert_eq!(
            history.record(fact(4, FactKind::Changed)),
            Recorded::Unchanged
        );
        assert_eq!(
            history.record(fact(4, FactKind::Reopened)),
            Recorded::Merged
        );
        assert_eq!(history.facts.len(), 1);
        assert_eq!(history.facts[0].kind, FactKind::Reopened);
        assert_eq!(
            history.record(fact(4, FactKind::Changed)),
            Recorded::Unchanged
        );
        assert_eq!(history.facts[0].kind, FactKind::Reopened);
    }

    #[test]
    fn priorities_are_one_to_five() {
        assert!(Priority::new(0).is_none());
        assert!(Priority::new(6).is_none());
        assert_eq!(Priority::new(1).map(Priority::label).as_deref(), Some("p1"));
        assert_eq!(Priority::ALL.len(), 5);
    }
}
