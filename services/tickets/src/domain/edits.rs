//! Editing a ticket's fields (`UpdateTicket`) and a problem's analysis (`UpdateProblem`): which
//! fields a requester may touch, and what an edit changes, records and publishes.

use chrono::{DateTime, Utc};
use desk_kit::auth::Caller;

use super::access::{self, AccessError, RequestedFields};
use super::change::{ChangedTicket, Edit, HistoryAction, RuleError, TicketChange};
use super::commands::{ClearableEdit, ExpectedVersion, TicketReference, Title};
use super::facts::Fact;
use super::history::Changes;
use super::lifecycle::{self, LifecycleError};
use super::priority::PriorityMatrix;
use super::record::Ticket;
use super::ticket::Level;
use super::validate::{MAX_WATCHERS, Violations};

/// `UpdateTicket`, parsed. `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateTicket {
    pub ticket: TicketReference,
    pub expected_version: ExpectedVersion,
    pub title: Option<Title>,
    pub description: Option<String>,
    /// Trimmed when set; blank text clears the category.
    pub category: Option<ClearableEdit<String>>,
    pub impact: Option<Level>,
    pub urgency: Option<Level>,
    pub major_incident: Option<bool>,
    /// The new affected services and CIs, replacing both lists whole.
    pub replace_affected: Option<AffectedItems>,
    pub add_watcher_ids: Vec<String>,
    pub remove_watcher_ids: Vec<String>,
}

/// What a ticket affects: the services and the configuration items.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AffectedItems {
    pub service_ids: Vec<String>,
    pub ci_ids: Vec<String>,
}

impl UpdateTicket {
    /// The staff-only fields this update sets.
    pub fn requested_fields(&self) -> RequestedFields {
        RequestedFields {
            impact: self.impact.is_some(),
            urgency: self.urgency.is_some(),
            major_incident: self.major_incident.is_some(),
            ..RequestedFields::default()
        }
    }

    /// Whether the caller may send this update at all, before the ticket is looked at: no
    /// staff-only field from a requester, and no removing watchers or replacing what is affected.
    pub fn check_caller(&self, caller: &Caller) -> Result<(), AccessError> {
        access::check_requester_fields(caller, &self.requested_fields())?;
        access::check_list_edits(
            caller,
            self.replace_affected.is_some(),
            !self.remove_watcher_ids.is_empty(),
        )
    }
}

impl Ticket {
    /// The ticket with `command`'s fields applied at `now`.
    ///
    /// Only an open ticket's fields change. A new impact or urgency derives the priority again
    /// from `priority_matrix`. Watchers are removed before they are added, a watcher already on
    /// the ticket is not added twice, and the result may not exceed [`MAX_WATCHERS`] (reported on
    /// `add_watcher_ids`, the only way to exceed it). Only fields whose value really changes are
    /// recorded; an update that changes nothing is [`Edit::NothingChanged`].
    pub fn edit(
        &self,
        command: &UpdateTicket,
        priority_matrix: &PriorityMatrix,
        now: DateTime<Utc>,
    ) -> Result<Edit, RuleError> {
        lifecycle::check_field_edit(self.status)?;
        let mut after = self.clone();
        let mut changes = Changes::new();
        if let Some(title) = &command.title {
            changes.record("title", self.title.as_str(), title.as_str());
            after.title = title.as_str().to_owned();
        }
        if let Some(description) = &command.description {
            changes.record("description", &self.description, description);
            after.description.clone_from(description);
        }
        if let Some(category) = &command.category {
            let category = category.clone().into_option();
            changes.record_opt("category", self.category.as_deref(), category.as_deref());
            after.category = category;
        }
        if command.impact.is_some() || command.urgency.is_some() {
            let impact = command.impact.unwrap_or(self.impact);
            let urgency = command.urgency.unwrap_or(self.urgency);
            let priority = priority_matrix.priority(impact, urgency);
            changes.record("impact", &self.impact, &impact);
            changes.record("urgency", &self.urgency, &urgency);
            changes.record("priority", &self.priority, &priority);
            (after.impact, after.urgency, after.priority) = (impact, urgency, priority);
        }
        if let Some(major_incident) = command.major_incident {
            changes.record("major_incident", &self.major_incident, &major_incident);
            after.major_incident = major_incident;
        }
        if let Some(affected) = &command.replace_affected {
            changes.record(
                "affected_service_ids",
                &self.affected_service_ids.join(","),
                &affected.service_ids.join(","),
            );
            changes.record(
                "affected_ci_ids",
                &self.affected_ci_ids.join(","),
                &affected.ci_ids.join(","),
            );
            after.affected_service_ids.clone_from(&affected.service_ids);
            after.affected_ci_ids.clone_from(&affected.ci_ids);
        }
        let watchers = watchers_after(
            &self.watcher_ids,
            &command.add_watcher_ids,
            &command.remove_watcher_ids,
        );
        if watchers.len() > MAX_WATCHERS {
            let mut violations = Violations::new();
            violations.push(
                "add_watcher_ids",
                format!("a ticket has at most {MAX_WATCHERS} watchers"),
            );
            return Err(violations.into());
        }
        changes.record(
            "watcher_ids",
            &self.watcher_ids.join(","),
            &watchers.join(","),
        );
        after.watcher_ids = watchers;

        if changes.is_empty() {
            return Ok(Edit::NothingChanged);
        }
        let field_changes = changes.into_vec();
        let change = TicketChange {
            action: HistoryAction::Updated,
            facts: vec![Fact::Updated {
                changes: field_changes.clone(),
            }],
            field_changes,
            note: None,
        };
        Ok(Edit::Changed(Box::new(ChangedTicket::next_version(
            self, after, now, change,
        ))))
    }
}

/// `current` without `removed`, then with each of `added` not already there, in order.
fn watchers_after(current: &[String], added: &[String], removed: &[String]) -> Vec<String> {
    let mut watchers: Vec<String> = current
        .iter()
        .filter(|watcher| !removed.contains(watcher))
        .cloned()
        .collect();
    for watcher in added {
        if !watchers.contains(watcher) {
            watchers.push(watcher.clone());
        }
    }
    watchers
}

/// `UpdateProblem`, parsed: a problem's root cause analysis. `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateProblem {
    pub ticket: TicketReference,
    pub expected_version: ExpectedVersion,
    /// As written (multi-line); blank text clears it.
    pub root_cause: Option<ClearableEdit<String>>,
    pub workaround: Option<ClearableEdit<String>>,
    pub known_error: Option<bool>,
}

impl UpdateProblem {
    /// Every field of a problem's analysis is staff work.
    pub fn requested_fields(&self) -> RequestedFields {
        RequestedFields {
            root_cause: self.root_cause.is_some(),
            workaround: self.workaround.is_some(),
            known_error: self.known_error.is_some(),
            ..RequestedFields::default()
        }
    }
}

impl Ticket {
    /// The problem with `command`'s analysis applied at `now`: only problems carry one, and only
    /// while open.
    pub fn update_problem_details(
        &self,
        command: &UpdateProblem,
        now: DateTime<Utc>,
    ) -> Result<Edit, LifecycleError> {
        lifecycle::check_problem_fields(self.ticket_type)?;
        lifecycle::check_field_edit(self.status)?;
        let mut after = self.clone();
        let mut changes = Changes::new();
        if let Some(root_cause) = &command.root_cause {
            let root_cause = root_cause.clone().into_option();
            changes.record_opt(
                "root_cause",
                self.problem.root_cause.as_deref(),
                root_cause.as_deref(),
            );
            after.problem.root_cause = root_cause;
        }
        if let Some(workaround) = &command.workaround {
            let workaround = workaround.clone().into_option();
            changes.record_opt(
                "workaround",
                self.problem.workaround.as_deref(),
                workaround.as_deref(),
            );
            after.problem.workaround = workaround;
        }
        if let Some(known_error) = command.known_error {
            changes.record("known_error", &self.problem.known_error, &known_error);
            after.problem.known_error = known_error;
        }
        if changes.is_empty() {
            return Ok(Edit::NothingChanged);
        }
        let field_changes = changes.into_vec();
        let change = TicketChange {
            action: HistoryAction::ProblemUpdated,
            facts: vec![Fact::ProblemUpdated {
                changes: field_changes.clone(),
            }],
            field_changes,
            note: None,
        };
        Ok(Edit::Changed(Box::new(ChangedTicket::next_version(
            self, after, now, change,
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        FieldChange, Priority, Status, TicketType,
        testing::{a_ticket, agent, alice, at, in_status},
    };

    fn nothing_for(ticket: &Ticket) -> UpdateTicket {
        UpdateTicket {
            ticket: TicketReference::Id(ticket.id),
            expected_version: ExpectedVersion::parse(ticket.version, &mut Violations::new())
                .expect("a version"),
            title: None,
            description: None,
            category: None,
            impact: None,
            urgency: None,
            major_incident: None,
            replace_affected: None,
            add_watcher_ids: Vec::new(),
            remove_watcher_ids: Vec::new(),
        }
    }

    fn changed(edit: Edit) -> ChangedTicket {
        match edit {
            Edit::Changed(changed) => *changed,
            Edit::NothingChanged => panic!("expected a change"),
        }
    }

    fn fields(changed: &ChangedTicket) -> Vec<&str> {
        changed
            .change
            .field_changes
            .iter()
            .map(|c| c.field.as_str())
            .collect()
    }

    fn ids(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn raising_the_impact_derives_the_priority_again_and_publishes_what_changed() {
        let ticket = a_ticket();
        let command = UpdateTicket {
            impact: Some(Level::High),
            ..nothing_for(&ticket)
        };
        let changed = changed(
            ticket
                .edit(&command, &PriorityMatrix::itil_default(), at(10))
                .expect("an open ticket"),
        );
        assert_eq!(changed.ticket.priority, Priority::P2);
        assert_eq!(fields(&changed), ["impact", "priority"]);
        assert_eq!(changed.change.action, HistoryAction::Updated);
        assert_eq!(
            changed.change.facts,
            [Fact::Updated {
                changes: changed.change.field_changes.clone()
            }]
        );
        assert_eq!((changed.read_version, changed.ticket.version), (1, 2));
        assert_eq!(changed.ticket.updated_at, at(10));
    }

    #[test]
    fn an_update_to_the_values_the_ticket_has_changes_nothing() {
        let ticket = Ticket {
            watcher_ids: ids(&["walter"]),
            category: Some("network".into()),
            ..a_ticket()
        };
        let command = UpdateTicket {
            title: Title::parse("title", " VPN drops every hour ", &mut Violations::new()),
            category: Some(ClearableEdit::Set("network".into())),
            impact: Some(Level::Medium),
            add_watcher_ids: ids(&["walter"]),
            ..nothing_for(&ticket)
        };
        assert_eq!(
            ticket.edit(&command, &PriorityMatrix::itil_default(), at(10)),
            Ok(Edit::NothingChanged)
        );
    }

    #[test]
    fn blank_text_clears_the_category() {
        let ticket = Ticket {
            category: Some("network".into()),
            ..a_ticket()
        };
        let command = UpdateTicket {
            category: Some(ClearableEdit::Clear),
            ..nothing_for(&ticket)
        };
        let changed = changed(
            ticket
                .edit(&command, &PriorityMatrix::itil_default(), at(10))
                .expect("open"),
        );
        assert_eq!(changed.ticket.category, None);
        assert_eq!(
            changed.change.field_changes,
            [FieldChange {
                field: "category".into(),
                old: Some("network".into()),
                new: None
            }]
        );
    }

    #[test]
    fn watchers_are_removed_before_they_are_added_and_never_twice() {
        assert_eq!(
            watchers_after(&ids(&["a", "b"]), &ids(&["c", "a", "c"]), &ids(&["a"])),
            ids(&["b", "c", "a"])
        );
    }

    #[test]
    fn a_ticket_keeps_at_most_fifty_watchers() {
        let full: Vec<String> = (0..MAX_WATCHERS).map(|i| format!("w{i}")).collect();
        let ticket = Ticket {
            watcher_ids: full.clone(),
            ..a_ticket()
        };
        let one_more = UpdateTicket {
            add_watcher_ids: ids(&["newcomer"]),
            ..nothing_for(&ticket)
        };
        let error = ticket
            .edit(&one_more, &PriorityMatrix::itil_default(), at(10))
            .expect_err("a 51st watcher");
        let RuleError::Invalid(violations) = error else {
            panic!("expected a field violation, got {error:?}");
        };
        assert_eq!(
            violations.to_string(),
            "add_watcher_ids: a ticket has at most 50 watchers"
        );
        // and making room first is fine
        let swap = UpdateTicket {
            remove_watcher_ids: ids(&["w0"]),
            ..one_more
        };
        assert!(
            ticket
                .edit(&swap, &PriorityMatrix::itil_default(), at(10))
                .is_ok()
        );
    }

    #[test]
    fn replacing_what_is_affected_replaces_both_lists() {
        let ticket = Ticket {
            affected_service_ids: ids(&["svc-mail"]),
            affected_ci_ids: ids(&["ci-1", "ci-2"]),
            ..a_ticket()
        };
        let command = UpdateTicket {
            replace_affected: Some(AffectedItems {
                service_ids: ids(&["svc-mail"]),
                ci_ids: ids(&["ci-3"]),
            }),
            ..nothing_for(&ticket)
        };
        let changed = changed(
            ticket
                .edit(&command, &PriorityMatrix::itil_default(), at(10))
                .expect("open"),
        );
        assert_eq!(changed.ticket.affected_ci_ids, ids(&["ci-3"]));
        assert_eq!(fields(&changed), ["affected_ci_ids"]);
    }

    #[test]
    fn a_resolved_tickets_fields_do_not_change() {
        let ticket = in_status(Status::Resolved, a_ticket());
        let command = UpdateTicket {
            description: Some("more detail".into()),
            ..nothing_for(&ticket)
        };
        assert_eq!(
            ticket.edit(&command, &PriorityMatrix::itil_default(), at(10)),
            Err(RuleError::Lifecycle(LifecycleError::NotEditable {
                status: Status::Resolved
            }))
        );
    }

    #[test]
    fn a_requester_may_edit_ordinary_fields_and_add_watchers_only() {
        let ticket = a_ticket();
        let ordinary = UpdateTicket {
            description: Some("It also drops on the guest network".into()),
            add_watcher_ids: ids(&["walter"]),
            ..nothing_for(&ticket)
        };
        assert_eq!(ordinary.check_caller(&alice()), Ok(()));
        let urgent = UpdateTicket {
            urgency: Some(Level::High),
            ..nothing_for(&ticket)
        };
        assert_eq!(
            urgent.check_caller(&alice()),
            Err(AccessError::StaffOnlyFields {
                fields: vec!["urgency"]
            })
        );
        let removing = UpdateTicket {
            remove_watcher_ids: ids(&["walter"]),
            ..nothing_for(&ticket)
        };
        assert!(matches!(
            removing.check_caller(&alice()),
            Err(AccessError::Denied { .. })
        ));
        assert_eq!(removing.check_caller(&agent()), Ok(()));
    }

    fn analysis_for(ticket: &Ticket) -> UpdateProblem {
        UpdateProblem {
            ticket: TicketReference::Id(ticket.id),
            expected_version: ExpectedVersion::parse(ticket.version, &mut Violations::new())
                .expect("a version"),
            root_cause: Some(ClearableEdit::Set("Pool sized for 10".into())),
            workaround: None,
            known_error: Some(true),
        }
    }

    #[test]
    fn a_problems_analysis_is_recorded_and_published_as_problem_updated() {
        let problem = Ticket {
            ticket_type: TicketType::Problem,
            ..a_ticket()
        };
        let changed = changed(
            problem
                .update_problem_details(&analysis_for(&problem), at(10))
                .expect("a problem"),
        );
        assert_eq!(
            changed.ticket.problem.root_cause.as_deref(),
            Some("Pool sized for 10")
        );
        assert!(changed.ticket.problem.known_error);
        assert_eq!(fields(&changed), ["root_cause", "known_error"]);
        assert_eq!(changed.change.action, HistoryAction::ProblemUpdated);
        assert!(matches!(
            changed.change.facts.as_slice(),
            [Fact::ProblemUpdated { .. }]
        ));
    }

    #[test]
    fn only_open_problems_carry_an_analysis() {
        let incident = a_ticket();
        assert_eq!(
            incident.update_problem_details(&analysis_for(&incident), at(10)),
            Err(LifecycleError::ProblemFieldsOnly {
                ticket_type: TicketType::Incident
            })
        );
        let closed_problem = in_status(
            Status::Closed,
            Ticket {
                ticket_type: TicketType::Problem,
                ..a_ticket()
            },
        );
        assert_eq!(
            closed_problem.update_problem_details(&analysis_for(&closed_problem), at(10)),
            Err(LifecycleError::NotEditable {
                status: Status::Closed
            })
        );
    }

    #[test]
    fn a_problems_analysis_is_staff_work() {
        let problem = a_ticket();
        assert_eq!(
            analysis_for(&problem)
                .requested_fields()
                .staff_only_fields(),
            ["root_cause", "known_error"]
        );
    }
}
