//! Moving a ticket along: assigning (and escalating) it, moving its status, resolving, reopening
//! and rating it. Each rule checks the lifecycle, then returns the ticket after the move with the
//! facts it establishes; which moves are allowed at all is [`super::lifecycle`].

use chrono::{DateTime, Duration, Utc};

use super::change::{ChangedTicket, Edit, HistoryAction, TicketChange};
use super::commands::{ExpectedVersion, TicketReference};
use super::facts::Fact;
use super::history::{Changes, FieldChange};
use super::lifecycle::{self, LifecycleError, Resolution};
use super::record::{ResolutionRecord, Satisfaction, Ticket};
use super::ticket::{PendingReason, Status, SupportTier, TicketType};

/// Who an assignment hands the ticket to: a group, an agent, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignTo {
    Group(String),
    Assignee(String),
    GroupAndAssignee { group: String, assignee: String },
}

impl AssignTo {
    pub fn group(&self) -> Option<&str> {
        match self {
            AssignTo::Group(group) | AssignTo::GroupAndAssignee { group, .. } => Some(group),
            AssignTo::Assignee(_) => None,
        }
    }

    pub fn assignee(&self) -> Option<&str> {
        match self {
            AssignTo::Assignee(assignee) | AssignTo::GroupAndAssignee { assignee, .. } => {
                Some(assignee)
            }
            AssignTo::Group(_) => None,
        }
    }
}

/// `AssignTicket`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignTicket {
    pub ticket: TicketReference,
    pub expected_version: ExpectedVersion,
    pub to: AssignTo,
    /// A new support tier; raising it makes the assignment an escalation.
    pub tier: Option<SupportTier>,
    pub note: Option<String>,
}

impl Ticket {
    /// The ticket handed to `command.to` at `now`.
    ///
    /// An assignment names the agent afresh: without an assignee it takes the ticket off its
    /// current one (back to the group's queue), while without a group it keeps the current group.
    /// A new ticket becomes `assigned`. The facts say what the assignment did — `assigned` when
    /// the group or agent changed, `escalated` when the tier rose, `status_changed` when the
    /// status moved — so a lowered tier alone is recorded in the history but publishes nothing.
    pub fn assign(
        &self,
        command: &AssignTicket,
        now: DateTime<Utc>,
    ) -> Result<Edit, LifecycleError> {
        lifecycle::check_assignable(self.status)?;
        let mut after = self.clone();
        after.assignment_group_id = command
            .to
            .group()
            .map(str::to_owned)
            .or_else(|| self.assignment_group_id.clone());
        after.assignee_id = command.to.assignee().map(str::to_owned);
        if let Some(tier) = command.tier {
            after.tier = tier;
        }
        after.status = lifecycle::status_after_assignment(self.status, true);

        let mut changes = Changes::new();
        changes.record_opt(
            "assignment_group_id",
            self.assignment_group_id.as_deref(),
            after.assignment_group_id.as_deref(),
        );
        changes.record_opt(
            "assignee_id",
            self.assignee_id.as_deref(),
            after.assignee_id.as_deref(),
        );
        changes.record("tier", &self.tier, &after.tier);
        changes.record("status", &self.status, &after.status);
        if changes.is_empty() {
            return Ok(Edit::NothingChanged);
        }

        let escalated = after.tier.rank() > self.tier.rank();
        let mut facts = Vec::new();
        if after.assignment_group_id != self.assignment_group_id
            || after.assignee_id != self.assignee_id
        {
            facts.push(Fact::Assigned {
                previous_group: self.assignment_group_id.clone(),
                previous_assignee: self.assignee_id.clone(),
                note: command.note.clone(),
            });
        }
        if escalated {
            facts.push(Fact::Escalated {
                previous_tier: self.tier,
                note: command.note.clone(),
            });
        }
        if after.status != self.status {
            facts.push(Fact::StatusChanged {
                previous: self.status,
                note: command.note.clone(),
            });
        }
        let change = TicketChange {
            action: if escalated {
                HistoryAction::Escalated
            } else {
                HistoryAction::Assigned
            },
            field_changes: changes.into_vec(),
            note: command.note.clone(),
            facts,
        };
        Ok(Edit::Changed(Box::new(ChangedTicket::next_version(
            self, after, now, change,
        ))))
    }
}

/// Where an ordinary transition may go. Resolving is not one: it takes a resolution and has its
/// own command; pending always says what the ticket waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransitionTarget {
    New,
    Assigned,
    InProgress,
    Pending(PendingReason),
    Closed,
}

impl TransitionTarget {
    pub const fn status(self) -> Status {
        match self {
            TransitionTarget::New => Status::New,
            TransitionTarget::Assigned => Status::Assigned,
            TransitionTarget::InProgress => Status::InProgress,
            TransitionTarget::Pending(_) => Status::Pending,
            TransitionTarget::Closed => Status::Closed,
        }
    }

    pub const fn pending_reason(self) -> Option<PendingReason> {
        match self {
            TransitionTarget::Pending(reason) => Some(reason),
            _ => None,
        }
    }
}

/// `TransitionTicket`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionTicket {
    pub ticket: TicketReference,
    pub expected_version: ExpectedVersion,
    pub target: TransitionTarget,
    pub note: Option<String>,
}

impl Ticket {
    /// The ticket moved to `command.target` at `now`, if the lifecycle allows the move. Leaving
    /// `pending` clears its reason; closing is also published as `ticket.closed`.
    pub fn transition(
        &self,
        command: &TransitionTicket,
        now: DateTime<Utc>,
    ) -> Result<ChangedTicket, LifecycleError> {
        let target = command.target.status();
        lifecycle::check_transition(self.status, target)?;
        let mut after = self.clone();
        after.status = target;
        after.pending_reason = command.target.pending_reason();
        let mut changes = Changes::new();
        changes.record("status", &self.status, &after.status);
        changes.record_opt(
            "pending_reason",
            self.pending_reason.as_ref(),
            after.pending_reason.as_ref(),
        );
        let mut facts = vec![Fact::StatusChanged {
            previous: self.status,
            note: command.note.clone(),
        }];
        if target == Status::Closed {
            facts.push(Fact::Closed);
        }
        let change = TicketChange {
            action: HistoryAction::StatusChanged,
            field_changes: changes.into_vec(),
            note: command.note.clone(),
            facts,
        };
        Ok(ChangedTicket::next_version(self, after, now, change))
    }
}

/// `ResolveTicket`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolveTicket {
    pub ticket: TicketReference,
    pub expected_version: ExpectedVersion,
    pub resolution: Resolution,
}

impl Ticket {
    /// Whether resolving this ticket names its linked incidents (`problem.resolved`), so the
    /// caller knows to read them first: a resolved problem lets its incidents be resolved too.
    pub fn resolution_names_linked_incidents(&self) -> bool {
        self.ticket_type == TicketType::Problem
    }

    /// The ticket resolved by `resolved_by` at `now`. A pending reason goes with the wait it
    /// explained. For a problem, `linked_incident_ids` (the public ids of its incidents) are
    /// published with `problem.resolved`; for other tickets they are not read.
    pub fn resolve(
        &self,
        resolution: &Resolution,
        resolved_by: &str,
        linked_incident_ids: Vec<String>,
        now: DateTime<Utc>,
    ) -> Result<ChangedTicket, LifecycleError> {
        lifecycle::check_transition(self.status, Status::Resolved)?;
        let mut after = self.clone();
        after.status = Status::Resolved;
        after.pending_reason = None;
        after.resolution = Some(ResolutionRecord {
            code: resolution.code,
            notes: resolution.notes.clone(),
            resolved_by: resolved_by.to_owned(),
            resolved_at: now,
        });
        let mut changes = Changes::new();
        changes.record("status", &self.status, &Status::Resolved);
        changes.record_opt("resolution_code", None, Some(resolution.code.as_str()));
        let mut facts = vec![
            Fact::StatusChanged {
                previous: self.status,
                note: None,
            },
            Fact::Resolved,
        ];
        if self.resolution_names_linked_incidents() {
            facts.push(Fact::ProblemResolved {
                incident_ids: linked_incident_ids,
            });
        }
        let change = TicketChange {
            action: HistoryAction::Resolved,
            field_changes: changes.into_vec(),
            note: Some(resolution.notes.clone()),
            facts,
        };
        Ok(ChangedTicket::next_version(self, after, now, change))
    }
}

/// `ReopenTicket`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReopenTicket {
    pub ticket: TicketReference,
    pub expected_version: ExpectedVersion,
    /// Why the resolution did not hold; trimmed, never blank.
    pub reason: String,
}

impl Ticket {
    /// The resolved ticket back at work at `now`, within `reopen_window` of its resolution (a
    /// ticket resolved without a recorded time counts from its last change). It goes back to its
    /// assignee, else its group's queue, else the start, and its resolution is dropped; the
    /// rating, if any, stays.
    pub fn reopen(
        &self,
        reason: &str,
        reopen_window: Duration,
        now: DateTime<Utc>,
    ) -> Result<ChangedTicket, LifecycleError> {
        let resolved_at = self
            .resolution
            .as_ref()
            .map_or(self.updated_at, |resolution| resolution.resolved_at);
        lifecycle::check_reopen(self.status, resolved_at, now, reopen_window)?;
        let mut after = self.clone();
        after.status = lifecycle::reopen_target(
            self.assignment_group_id.is_some(),
            self.assignee_id.is_some(),
        );
        after.resolution = None;
        let mut changes = Changes::new();
        changes.record("status", &self.status, &after.status);
        changes.record_opt(
            "resolution_code",
            self.resolution.as_ref().map(|r| r.code.as_str()),
            None,
        );
        let change = TicketChange {
            action: HistoryAction::Reopened,
            field_changes: changes.into_vec(),
            note: Some(reason.to_owned()),
            facts: vec![
                Fact::StatusChanged {
                    previous: self.status,
                    note: Some(reason.to_owned()),
                },
                Fact::Reopened {
                    reason: reason.to_owned(),
                },
            ],
        };
        Ok(ChangedTicket::next_version(self, after, now, change))
    }
}

/// `RateTicket`, parsed. The rating's range is a lifecycle rule, checked once the caller is known
/// to be the requester ([`lifecycle::check_rating`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateTicket {
    pub ticket: TicketReference,
    pub rating: i32,
    pub comment: Option<String>,
}

impl Ticket {
    /// The ticket rated at `now`: once, from 1 to 5, after its resolution.
    pub fn rate(
        &self,
        rating: i32,
        comment: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<ChangedTicket, LifecycleError> {
        lifecycle::check_rating(self.status, rating, self.satisfaction.is_some())?;
        let mut after = self.clone();
        after.satisfaction = Some(Satisfaction {
            rating,
            comment,
            rated_at: now,
        });
        let change = TicketChange {
            action: HistoryAction::Rated,
            field_changes: vec![FieldChange {
                field: "satisfaction".into(),
                old: None,
                new: Some(rating.to_string()),
            }],
            note: None,
            facts: vec![Fact::Rated],
        };
        Ok(ChangedTicket::next_version(self, after, now, change))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        ResolutionCode,
        testing::{a_ticket, at, in_status},
        validate::Violations,
    };

    fn version_of(ticket: &Ticket) -> ExpectedVersion {
        ExpectedVersion::parse(ticket.version, &mut Violations::new()).expect("a version")
    }

    fn assignment(ticket: &Ticket, to: AssignTo, tier: Option<SupportTier>) -> AssignTicket {
        AssignTicket {
            ticket: TicketReference::Id(ticket.id),
            expected_version: version_of(ticket),
            to,
            tier,
            note: Some("over to you".into()),
        }
    }

    fn changed(edit: Edit) -> ChangedTicket {
        match edit {
            Edit::Changed(changed) => *changed,
            Edit::NothingChanged => panic!("expected a change"),
        }
    }

    fn event_names(changed: &ChangedTicket) -> Vec<&'static str> {
        changed.change.facts.iter().map(|f| f.name().1).collect()
    }

    fn both() -> AssignTo {
        AssignTo::GroupAndAssignee {
            group: "team-net".into(),
            assignee: "agent-7".into(),
        }
    }

    #[test]
    fn assigning_a_new_ticket_makes_it_assigned_and_says_so_twice() {
        let ticket = a_ticket();
        let changed = changed(
            ticket
                .assign(&assignment(&ticket, both(), None), at(10))
                .expect("open"),
        );
        assert_eq!(changed.ticket.status, Status::Assigned);
        assert_eq!(event_names(&changed), ["assigned", "status_changed"]);
        assert_eq!(changed.change.action, HistoryAction::Assigned);
        assert_eq!(changed.change.note.as_deref(), Some("over to you"));
        assert_eq!(
            changed.change.facts[0],
            Fact::Assigned {
                previous_group: None,
                previous_assignee: None,
                note: Some("over to you".into())
            }
        );
    }

    #[test]
    fn raising_the_tier_is_an_escalation() {
        let ticket = Ticket {
            assignment_group_id: Some("team-net".into()),
            assignee_id: Some("agent-7".into()),
            ..in_status(Status::InProgress, a_ticket())
        };
        let changed = changed(
            ticket
                .assign(
                    &assignment(&ticket, both(), Some(SupportTier::Tier2)),
                    at(10),
                )
                .expect("open"),
        );
        assert_eq!(changed.change.action, HistoryAction::Escalated);
        assert_eq!(event_names(&changed), ["escalated"]);
        assert_eq!(changed.ticket.tier, SupportTier::Tier2);
    }

    #[test]
    fn lowering_the_tier_alone_is_recorded_but_publishes_nothing() {
        let ticket = Ticket {
            assignment_group_id: Some("team-net".into()),
            assignee_id: Some("agent-7".into()),
            tier: SupportTier::Tier3,
            ..in_status(Status::InProgress, a_ticket())
        };
        let changed = changed(
            ticket
                .assign(
                    &assignment(&ticket, both(), Some(SupportTier::Tier1)),
                    at(10),
                )
                .expect("open"),
        );
        assert_eq!(changed.change.action, HistoryAction::Assigned);
        assert_eq!(
            changed.change.field_changes,
            [FieldChange {
                field: "tier".into(),
                old: Some("tier3".into()),
                new: Some("tier1".into())
            }]
        );
        assert!(changed.change.facts.is_empty());
    }

    #[test]
    fn a_group_alone_takes_the_ticket_off_its_agent_and_an_agent_alone_keeps_the_group() {
        let ticket = Ticket {
            assignment_group_id: Some("team-net".into()),
            assignee_id: Some("agent-7".into()),
            ..in_status(Status::InProgress, a_ticket())
        };
        let to_group = changed(
            ticket
                .assign(
                    &assignment(&ticket, AssignTo::Group("team-desktop".into()), None),
                    at(10),
                )
                .expect("open"),
        );
        assert_eq!(
            to_group.ticket.assignment_group_id.as_deref(),
            Some("team-desktop")
        );
        assert_eq!(to_group.ticket.assignee_id, None);
        let to_agent = changed(
            ticket
                .assign(
                    &assignment(&ticket, AssignTo::Assignee("agent-9".into()), None),
                    at(10),
                )
                .expect("open"),
        );
        assert_eq!(
            to_agent.ticket.assignment_group_id.as_deref(),
            Some("team-net")
        );
        assert_eq!(to_agent.ticket.assignee_id.as_deref(), Some("agent-9"));
    }

    #[test]
    fn assigning_a_ticket_to_whom_it_is_with_changes_nothing() {
        let ticket = Ticket {
            assignment_group_id: Some("team-net".into()),
            assignee_id: Some("agent-7".into()),
            ..in_status(Status::Assigned, a_ticket())
        };
        assert_eq!(
            ticket.assign(&assignment(&ticket, both(), None), at(10)),
            Ok(Edit::NothingChanged)
        );
    }

    #[test]
    fn a_resolved_ticket_is_not_assigned() {
        let ticket = in_status(Status::Resolved, a_ticket());
        assert_eq!(
            ticket.assign(&assignment(&ticket, both(), None), at(10)),
            Err(LifecycleError::NotAssignable {
                status: Status::Resolved
            })
        );
    }

    fn moving(ticket: &Ticket, target: TransitionTarget) -> TransitionTicket {
        TransitionTicket {
            ticket: TicketReference::Id(ticket.id),
            expected_version: version_of(ticket),
            target,
            note: None,
        }
    }

    #[test]
    fn pending_keeps_its_reason_until_the_ticket_leaves_it() {
        let ticket = in_status(Status::InProgress, a_ticket());
        let pending = ticket
            .transition(
                &moving(&ticket, TransitionTarget::Pending(PendingReason::Vendor)),
                at(10),
            )
            .expect("allowed");
        assert_eq!(pending.ticket.pending_reason, Some(PendingReason::Vendor));
        let back = pending
            .ticket
            .transition(
                &moving(&pending.ticket, TransitionTarget::InProgress),
                at(11),
            )
            .expect("allowed");
        assert_eq!(back.ticket.pending_reason, None);
        let fields: Vec<&str> = back
            .change
            .field_changes
            .iter()
            .map(|c| c.field.as_str())
            .collect();
        assert_eq!(fields, ["status", "pending_reason"]);
    }

    #[test]
    fn closing_is_published_as_a_status_change_and_a_closing() {
        let ticket = in_status(Status::Resolved, a_ticket());
        let closed = ticket
            .transition(&moving(&ticket, TransitionTarget::Closed), at(10))
            .expect("allowed");
        assert_eq!(
            closed
                .change
                .facts
                .iter()
                .map(|f| f.name().1)
                .collect::<Vec<_>>(),
            ["status_changed", "closed"]
        );
        assert_eq!(closed.change.action, HistoryAction::StatusChanged);
    }

    #[test]
    fn a_move_the_lifecycle_forbids_is_refused() {
        let ticket = a_ticket();
        assert_eq!(
            ticket
                .transition(&moving(&ticket, TransitionTarget::Closed), at(10))
                .map(|_| ()),
            Err(LifecycleError::TransitionNotAllowed {
                from: Status::New,
                to: Status::Closed
            })
        );
    }

    fn resolution() -> Resolution {
        lifecycle::check_resolution("solved_permanently", "Replaced the SSD").expect("valid")
    }

    #[test]
    fn resolving_records_who_and_when_and_drops_the_pending_reason() {
        let ticket = Ticket {
            pending_reason: Some(PendingReason::Customer),
            ..in_status(Status::Pending, a_ticket())
        };
        let resolved = ticket
            .resolve(&resolution(), "agent-7", Vec::new(), at(10))
            .expect("allowed");
        assert_eq!(resolved.ticket.status, Status::Resolved);
        assert_eq!(resolved.ticket.pending_reason, None);
        assert_eq!(
            resolved.ticket.resolution,
            Some(ResolutionRecord {
                code: ResolutionCode::SolvedPermanently,
                notes: "Replaced the SSD".into(),
                resolved_by: "agent-7".into(),
                resolved_at: at(10),
            })
        );
        assert_eq!(resolved.change.note.as_deref(), Some("Replaced the SSD"));
        assert_eq!(
            resolved
                .change
                .facts
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>(),
            [("ticket", "status_changed"), ("ticket", "resolved")]
        );
    }

    #[test]
    fn a_resolved_problem_names_its_incidents_and_nothing_else_does() {
        let problem = Ticket {
            ticket_type: TicketType::Problem,
            ..a_ticket()
        };
        assert!(problem.resolution_names_linked_incidents());
        let resolved = problem
            .resolve(&resolution(), "agent-7", vec!["test-1".into()], at(10))
            .expect("allowed");
        assert_eq!(
            resolved.change.facts.last(),
            Some(&Fact::ProblemResolved {
                incident_ids: vec!["test-1".into()]
            })
        );
        let incident = a_ticket();
        assert!(!incident.resolution_names_linked_incidents());
        let resolved = incident
            .resolve(&resolution(), "agent-7", vec!["test-1".into()], at(10))
            .expect("allowed");
        assert_eq!(resolved.change.facts.len(), 2);
    }

    fn resolved_at_nine(ticket: Ticket) -> Ticket {
        ticket
            .resolve(&resolution(), "agent-7", Vec::new(), at(9))
            .expect("allowed")
            .ticket
    }

    #[test]
    fn a_reopened_ticket_goes_back_to_its_agent_without_its_resolution() {
        let ticket = resolved_at_nine(Ticket {
            assignment_group_id: Some("team-net".into()),
            assignee_id: Some("agent-7".into()),
            ..in_status(Status::InProgress, a_ticket())
        });
        let reopened = ticket
            .reopen("Still broken", Duration::hours(24), at(12))
            .expect("within the window");
        assert_eq!(reopened.ticket.status, Status::InProgress);
        assert_eq!(reopened.ticket.resolution, None);
        assert_eq!(reopened.change.note.as_deref(), Some("Still broken"));
        assert_eq!(
            reopened.change.facts,
            [
                Fact::StatusChanged {
                    previous: Status::Resolved,
                    note: Some("Still broken".into())
                },
                Fact::Reopened {
                    reason: "Still broken".into()
                }
            ]
        );
    }

    #[test]
    fn the_reopen_window_counts_from_the_resolution() {
        let ticket = resolved_at_nine(in_status(Status::InProgress, a_ticket()));
        assert!(ticket.reopen("late", Duration::hours(2), at(11)).is_ok());
        assert!(matches!(
            ticket.reopen("late", Duration::hours(2), at(12)),
            Err(LifecycleError::ReopenWindowEnded { .. })
        ));
    }

    #[test]
    fn a_ticket_resolved_without_a_time_counts_from_its_last_change() {
        let ticket = Ticket {
            updated_at: at(9),
            ..in_status(Status::Resolved, a_ticket())
        };
        assert!(ticket.reopen("late", Duration::hours(2), at(11)).is_ok());
        assert!(ticket.reopen("late", Duration::hours(2), at(12)).is_err());
    }

    #[test]
    fn a_rating_is_kept_once_with_its_time() {
        let ticket = in_status(Status::Closed, a_ticket());
        let rated = ticket
            .rate(4, Some("quick".into()), at(10))
            .expect("allowed");
        assert_eq!(
            rated.ticket.satisfaction,
            Some(Satisfaction {
                rating: 4,
                comment: Some("quick".into()),
                rated_at: at(10)
            })
        );
        assert_eq!(rated.change.facts, [Fact::Rated]);
        assert_eq!(
            rated.ticket.rate(5, None, at(11)).map(|_| ()),
            Err(LifecycleError::AlreadyRated)
        );
    }

    #[test]
    fn assign_to_names_its_group_and_agent() {
        assert_eq!(AssignTo::Group("g".into()).assignee(), None);
        assert_eq!(AssignTo::Assignee("a".into()).group(), None);
        assert_eq!(both().group(), Some("team-net"));
        assert_eq!(both().assignee(), Some("agent-7"));
    }
}
