//! SLA and OLA policies: which tickets they cover, their targets per metric and priority, when
//! their clocks pause, stop and reset, and at which fractions of a target they warn — with the
//! validation that keeps a policy that can never do anything out of the store.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Violation;
use super::ticket::{PendingReason, Priority, TicketSnapshot, TicketStatus, TicketType};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    /// Customer-facing, on the policy's (the customer's) calendar.
    Sla,
    /// Internal, on the calendar of the team owning the ticket at each moment.
    Ola,
}

impl PolicyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Sla => "sla",
            PolicyKind::Ola => "ola",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    FirstResponse,
    Resolution,
}

impl Metric {
    pub const ALL: [Metric; 2] = [Metric::FirstResponse, Metric::Resolution];

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::FirstResponse => "first_response",
            Metric::Resolution => "resolution",
        }
    }

    pub fn parse(text: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.as_str() == text)
    }

    /// Whether a ticket in `status` has had what this metric measures.
    pub fn is_achieved_in(self, status: TicketStatus) -> bool {
        match self {
            // The provider has responded once someone works on it (or it is already done).
            Metric::FirstResponse => matches!(
                status,
                TicketStatus::InProgress
                    | TicketStatus::Pending
                    | TicketStatus::Resolved
                    | TicketStatus::Closed
            ),
            Metric::Resolution => status.is_done(),
        }
    }
}

/// Which tickets a policy covers; an empty list matches every value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyMatch {
    pub ticket_types: Vec<TicketType>,
    pub priorities: Vec<Priority>,
    pub service_ids: Vec<String>,
    pub customer_ids: Vec<String>,
    pub team_ids: Vec<String>,
}

impl PolicyMatch {
    pub fn covers(&self, ticket: &TicketSnapshot) -> bool {
        let any = |list: &[String], value: &str| list.is_empty() || list.iter().any(|v| v == value);
        (self.ticket_types.is_empty() || self.ticket_types.contains(&ticket.ticket_type))
            && (self.priorities.is_empty() || self.priorities.contains(&ticket.priority))
            && (self.service_ids.is_empty()
                || ticket
                    .service_ids
                    .iter()
                    .any(|s| self.service_ids.contains(s)))
            && any(&self.customer_ids, &ticket.requester_id)
            && (self.team_ids.is_empty()
                || ticket
                    .team_id
                    .as_ref()
                    .is_some_and(|team| self.team_ids.contains(team)))
    }

    fn matched_priorities(&self) -> Vec<Priority> {
        if self.priorities.is_empty() {
            Priority::ALL.to_vec()
        } else {
            self.priorities.clone()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub metric: Metric,
    /// `None`: every priority without a target of its own.
    pub priority: Option<Priority>,
    pub business_minutes: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conditions {
    pub pause_pending_reasons: Vec<PendingReason>,
    pub pause_statuses: Vec<TicketStatus>,
    pub reset_on_reopen: bool,
}

impl Conditions {
    /// Why a clock would be paused on `ticket`, or `None` when it runs.
    pub fn pause_reason(&self, ticket: &TicketSnapshot) -> Option<String> {
        if ticket.status == TicketStatus::Pending
            && let Some(reason) = ticket.pending_reason
            && self.pause_pending_reasons.contains(&reason)
        {
            return Some(format!("pending: {}", reason.as_str()));
        }
        self.pause_statuses
            .contains(&ticket.status)
            .then(|| format!("status: {}", ticket.status.as_str()))
    }
}

/// A policy as the user wrote it, before validation gives it an id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRules {
    pub name: String,
    pub kind: PolicyKind,
    pub matcher: PolicyMatch,
    pub targets: Vec<Target>,
    pub conditions: Conditions,
    /// Sorted, distinct, each in (0, 100).
    pub warning_thresholds_percent: Vec<u32>,
    /// SLA: the clocks' calendar; OLA: the calendar of teams that name none. `None`: around
    /// the clock (UTC).
    pub calendar_id: Option<Uuid>,
    pub precedence: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub id: Uuid,
    pub tenant: String,
    pub rules: PolicyRules,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PolicyRules {
    /// The target for `metric` on a ticket of `priority`: its own, else the default.
    pub fn target_for(&self, metric: Metric, priority: Priority) -> Option<TimeDelta> {
        let own = self
            .targets
            .iter()
            .find(|t| t.metric == metric && t.priority == Some(priority));
        let default = || {
            self.targets
                .iter()
                .find(|t| t.metric == metric && t.priority.is_none())
        };
        own.or_else(default)
            .map(|t| TimeDelta::minutes(t.business_minutes))
    }

    /// The metrics this policy keeps a clock for.
    pub fn metrics(&self) -> Vec<Metric> {
        Metric::ALL
            .into_iter()
            .filter(|m| self.targets.iter().any(|t| t.metric == *m))
            .collect()
    }

    /// Every problem, with field paths under `prefix` (`policy`).
    pub fn validate(&self, prefix: &str) -> Vec<Violation> {
        let mut problems = Vec::new();
        let mut problem = |field: String, description: &str| {
            problems.push(Violation::new(format!("{prefix}.{field}"), description));
        };
        if self.name.trim().is_empty() {
            problem("name".into(), "a policy needs a name");
        } else if self.name.chars().count() > 200 {
            problem("name".into(), "at most 200 characters");
        }
        if self.targets.is_empty() {
            problem("targets".into(), "a policy needs at least one target");
        }
        if self.targets.len() > 50 {
            problem("targets".into(), "at most 50 targets");
        }
        let matched = self.matcher.matched_priorities();
        for (index, target) in self.targets.iter().enumerate() {
            if target.business_minutes <= 0 {
                problem(
                    format!("targets[{index}].business_minutes"),
                    "a target must be more than 0 minutes",
                );
            } else if target.business_minutes > 60 * 24 * 366 {
                problem(
                    format!("targets[{index}].business_minutes"),
                    "a target may be at most a year of minutes",
                );
            }
            if self.targets[..index]
                .iter()
                .any(|t| t.metric == target.metric && t.priority == target.priority)
            {
                problem(
                    format!("targets[{index}]"),
                    "a second target for the same metric and priority",
                );
            }
            if let Some(priority) = target.priority
                && !matched.contains(&priority)
            {
                problem(
                    format!("targets[{index}].priority"),
                    "the policy does not match tickets of this priority, so the target never applies",
                );
            }
        }
        if !self.targets.is_empty()
            && !matched.iter().any(|priority| {
                self.metrics()
                    .iter()
                    .any(|m| self.target_for(*m, *priority).is_some())
            })
        {
            problem(
                "match.priorities".into(),
                "no target applies to any priority the policy matches: it would match nothing",
            );
        }
        for (index, threshold) in self.warning_thresholds_percent.iter().enumerate() {
            if *threshold == 0 || *threshold >= 100 {
                problem(
                    format!("warning_thresholds_percent[{index}]"),
                    "a warning threshold is a percentage strictly between 0 and 100",
                );
            } else if self.warning_thresholds_percent[..index].contains(threshold) {
                problem(
                    format!("warning_thresholds_percent[{index}]"),
                    "the same threshold twice",
                );
            }
        }
        if self.warning_thresholds_percent.len() > 10 {
            problem(
                "warning_thresholds_percent".into(),
                "at most 10 warning thresholds",
            );
        }
        let lists: [(&str, &[String]); 3] = [
            ("match.service_ids", &self.matcher.service_ids),
            ("match.customer_ids", &self.matcher.customer_ids),
            ("match.team_ids", &self.matcher.team_ids),
        ];
        for (field, list) in lists {
            for (index, value) in list.iter().enumerate() {
                if value.trim().is_empty() {
                    problem(format!("{field}[{index}]"), "an empty id matches nothing");
                }
            }
        }
        if self.kind == PolicyKind::Sla && !self.matcher.team_ids.is_empty() {
            problem(
                "match.team_ids".into(),
                "teams are matched by OLAs; an SLA is with a customer",
            );
        }
        if self.conditions.pause_statuses.iter().any(|s| s.is_done()) {
            problem(
                "conditions.pause_statuses".into(),
                "resolved and closed stop a clock; they cannot pause it",
            );
        }
        problems
    }

    /// Normalizes what needs no user decision: thresholds sorted.
    pub fn normalized(mut self) -> Self {
        self.warning_thresholds_percent.sort_unstable();
        self
    }
}

/// The policy of `kind` that covers `ticket`: the highest precedence, then the oldest.
pub fn select<'p>(
    policies: &'p [Policy],
    kind: PolicyKind,
    ticket: &TicketSnapshot,
) -> Option<&'p Policy> {
    policies
        .iter()
        .filter(|p| p.rules.kind == kind && p.rules.matcher.covers(ticket))
        .max_by(|a, b| {
            a.rules
                .precedence
                .cmp(&b.rules.precedence)
                .then_with(|| b.created_at.cmp(&a.created_at))
                .then_with(|| b.id.cmp(&a.id))
        })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::ticket::tests::snapshot;

    pub fn rules(kind: PolicyKind) -> PolicyRules {
        PolicyRules {
            name: "Gold".into(),
            kind,
            matcher: PolicyMatch::default(),
            targets: vec![
                Target {
                    metric: Metric::FirstResponse,
                    priority: None,
                    business_minutes: 60,
                },
                Target {
                    metric: Metric::Resolution,
                    priority: None,
                    business_minutes: 8 * 60,
                },
                Target {
                    metric: Metric::Resolution,
                    priority: Priority::new(1),
                    business_minutes: 120,
                },
            ],
            conditions: Conditions {
                pause_pending_reasons: vec![PendingReason::Customer],
                pause_statuses: vec![],
                reset_on_reopen: false,
            },
            warning_thresholds_percent: vec![75, 90],
            calendar_id: None,
            precedence: 0,
        }
    }

    fn fields(rules: &PolicyRules) -> Vec<String> {
        rules
            .validate("policy")
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    #[test]
    fn a_sensible_policy_is_valid() {
        assert!(fields(&rules(PolicyKind::Sla)).is_empty());
        assert!(fields(&rules(PolicyKind::Ola)).is_empty());
    }

    #[test]
    fn targets_of_zero_or_less_are_refused_each_by_its_path() {
        let mut bad = rules(PolicyKind::Sla);
        bad.targets[0].business_minutes = 0;
        bad.targets[2].business_minutes = -5;
        assert_eq!(
            fields(&bad),
            [
                "policy.targets[0].business_minutes",
                "policy.targets[2].business_minutes"
            ]
        );
    }

    #[test]
    fn thresholds_outside_zero_to_a_hundred_are_refused() {
        let mut bad = rules(PolicyKind::Sla);
        bad.warning_thresholds_percent = vec![0, 50, 100, 50];
        assert_eq!(
            fields(&bad),
            [
                "policy.warning_thresholds_percent[0]",
                "policy.warning_thresholds_percent[2]",
                "policy.warning_thresholds_percent[3]"
            ]
        );
    }

    #[test]
    fn a_policy_that_matches_nothing_is_refused() {
        let mut none = rules(PolicyKind::Sla);
        none.targets = vec![];
        assert_eq!(fields(&none), ["policy.targets"]);

        let mut unreachable = rules(PolicyKind::Sla);
        unreachable.matcher.priorities = vec![Priority::new(4).expect("a priority")];
        unreachable.targets = vec![Target {
            metric: Metric::Resolution,
            priority: Priority::new(1),
            business_minutes: 60,
        }];
        assert_eq!(
            fields(&unreachable),
            ["policy.targets[0].priority", "policy.match.priorities"]
        );
    }

    #[test]
    fn duplicate_targets_names_and_done_pauses_are_refused() {
        let mut bad = rules(PolicyKind::Sla);
        bad.name = " ".into();
        bad.targets.push(bad.targets[0].clone());
        bad.conditions.pause_statuses = vec![TicketStatus::Resolved];
        bad.matcher.team_ids = vec!["".into()];
        assert_eq!(
            fields(&bad),
            [
                "policy.name",
                "policy.targets[3]",
                "policy.match.team_ids[0]",
                "policy.match.team_ids",
                "policy.conditions.pause_statuses"
            ]
        );
    }

    #[test]
    fn a_priority_of_its_own_beats_the_default_target() {
        let rules = rules(PolicyKind::Sla);
        let p1 = Priority::new(1).expect("a priority");
        let p3 = Priority::new(3).expect("a priority");
        assert_eq!(
            rules.target_for(Metric::Resolution, p1),
            Some(TimeDelta::hours(2))
        );
        assert_eq!(
            rules.target_for(Metric::Resolution, p3),
            Some(TimeDelta::hours(8))
        );
        assert_eq!(
            rules.target_for(Metric::FirstResponse, p1),
            Some(TimeDelta::hours(1))
        );
    }

    #[test]
    fn pending_on_the_customer_pauses_but_on_a_vendor_does_not() {
        let rules = rules(PolicyKind::Sla);
        let mut ticket = snapshot(TicketStatus::Pending);
        ticket.pending_reason = Some(PendingReason::Customer);
        assert_eq!(
            rules.conditions.pause_reason(&ticket).as_deref(),
            Some("pending: customer")
        );
        ticket.pending_reason = Some(PendingReason::Vendor);
        assert_eq!(rules.conditions.pause_reason(&ticket), None);
        ticket.status = TicketStatus::InProgress;
        ticket.pending_reason = Some(PendingReason::Customer);
        assert_eq!(rules.conditions.pause_reason(&ticket), None);
    }

    #[test]
    fn metrics_are_achieved_by_status() {
        assert!(!Metric::FirstResponse.is_achieved_in(TicketStatus::Assigned));
        assert!(Metric::FirstResponse.is_achieved_in(TicketStatus::InProgress));
        assert!(!Metric::Resolution.is_achieved_in(TicketStatus::Pending));
        assert!(Metric::Resolution.is_achieved_in(TicketStatus::Closed));
    }

    fn policy(id: u128, kind: PolicyKind, precedence: i32, matcher: PolicyMatch) -> Policy {
        let mut rules = rules(kind);
        rules.precedence = precedence;
        rules.matcher = matcher;
        let at = snapshot(TicketStatus::New).created_at;
        Policy {
            id: Uuid::from_u128(id),
            tenant: "acme".into(),
            rules,
            version: 1,
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn the_covering_policy_of_highest_precedence_is_selected() {
        let ticket = snapshot(TicketStatus::New);
        let policies = vec![
            policy(1, PolicyKind::Sla, 0, PolicyMatch::default()),
            policy(
                2,
                PolicyKind::Sla,
                5,
                PolicyMatch {
                    customer_ids: vec!["rita".into()],
                    ..PolicyMatch::default()
                },
            ),
            policy(
                3,
                PolicyKind::Sla,
                9,
                PolicyMatch {
                    customer_ids: vec!["someone-else".into()],
                    ..PolicyMatch::default()
                },
            ),
            policy(4, PolicyKind::Ola, 0, PolicyMatch::default()),
        ];
        assert_eq!(
            select(&policies, PolicyKind::Sla, &ticket).map(|p| p.id),
            Some(Uuid::from_u128(2))
        );
        assert_eq!(
            select(&policies, PolicyKind::Ola, &ticket).map(|p| p.id),
            Some(Uuid::from_u128(4))
        );
        let mut problem = ticket.clone();
        problem.ticket_type = TicketType::Problem;
        let typed = vec![policy(
            5,
            PolicyKind::Sla,
            0,
            PolicyMatch {
                ticket_types: vec![TicketType::Incident],
                service_ids: vec![],
                ..PolicyMatch::default()
            },
        )];
        assert!(select(&typed, PolicyKind::Sla, &problem).is_none());
        assert!(select(&typed, PolicyKind::Sla, &ticket).is_some());
    }
}
