//! Creating a ticket: the command, what a requester may set in it, and the defaults that fill in
//! what the caller left out.

use chrono::{DateTime, Utc};
use desk_kit::auth::Caller;
use uuid::Uuid;

use super::access::RequestedFields;
use super::change::{HistoryAction, TicketChange};
use super::commands::Title;
use super::facts::Fact;
use super::lifecycle;
use super::priority::PriorityMatrix;
use super::record::{ProblemDetails, Ticket};
use super::ticket::{Channel, Level, Status, SupportTier, TicketType};

/// `CreateTicket`, parsed. `None` means the caller left the field out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTicket {
    pub ticket_type: TicketType,
    pub title: Title,
    pub description: String,
    pub channel: Option<Channel>,
    /// Trimmed; blank text is no category.
    pub category: Option<String>,
    pub impact: Option<Level>,
    pub urgency: Option<Level>,
    pub tier: Option<SupportTier>,
    /// Someone the ticket is raised for; the caller when left out.
    pub requester_id: Option<String>,
    pub assignment_group_id: Option<String>,
    pub assignee_id: Option<String>,
    pub affected_service_ids: Vec<String>,
    pub affected_ci_ids: Vec<String>,
    pub major_incident: bool,
    pub watcher_ids: Vec<String>,
}

/// What a create needs from outside the rules: a fresh id and the next number of the tenant's
/// sequence for the ticket's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicketIdentity {
    pub id: Uuid,
    pub number: String,
}

/// The defaults of a field left out: what a requester's ticket starts with, since requesters may
/// not set them ([`RequestedFields`]).
pub const DEFAULT_IMPACT: Level = Level::Medium;
pub const DEFAULT_URGENCY: Level = Level::Medium;
pub const DEFAULT_TIER: SupportTier = SupportTier::Tier1;
/// A create that does not say how it came in came through the API.
pub const DEFAULT_CHANNEL: Channel = Channel::Api;

impl CreateTicket {
    /// Who the ticket is for: the named requester, or the caller.
    pub fn requester_for<'a>(&'a self, caller: &'a Caller) -> &'a str {
        self.requester_id.as_deref().unwrap_or(&caller.subject)
    }

    /// The staff-only fields this create sets. Naming oneself as the requester is not raising a
    /// ticket on someone's behalf.
    pub fn requested_fields(&self, caller: &Caller) -> RequestedFields {
        RequestedFields {
            impact: self.impact.is_some(),
            urgency: self.urgency.is_some(),
            assignment_group: self.assignment_group_id.is_some(),
            assignee: self.assignee_id.is_some(),
            tier: self.tier.is_some(),
            major_incident: self.major_incident,
            requester_other_than_self: self.requester_for(caller) != caller.subject,
            ..RequestedFields::default()
        }
    }

    /// The new ticket at version 1, and what to record of its creation.
    ///
    /// Left-out fields take their defaults; the priority comes from the tenant's matrix; a ticket
    /// created with a group or an assignee starts `assigned` rather than `new`.
    pub fn into_ticket(
        self,
        caller: &Caller,
        identity: NewTicketIdentity,
        priority_matrix: &PriorityMatrix,
        now: DateTime<Utc>,
    ) -> (Ticket, TicketChange) {
        let requester_id = self.requester_for(caller).to_owned();
        let impact = self.impact.unwrap_or(DEFAULT_IMPACT);
        let urgency = self.urgency.unwrap_or(DEFAULT_URGENCY);
        let status = lifecycle::status_after_assignment(
            Status::New,
            self.assignment_group_id.is_some() || self.assignee_id.is_some(),
        );
        let ticket = Ticket {
            id: identity.id,
            tenant_id: caller.tenant.clone(),
            number: identity.number,
            ticket_type: self.ticket_type,
            title: self.title.into_string(),
            description: self.description,
            requester_id,
            channel: self.channel.unwrap_or(DEFAULT_CHANNEL),
            category: self.category,
            impact,
            urgency,
            priority: priority_matrix.priority(impact, urgency),
            status,
            pending_reason: None,
            assignment_group_id: self.assignment_group_id,
            assignee_id: self.assignee_id,
            tier: self.tier.unwrap_or(DEFAULT_TIER),
            affected_service_ids: self.affected_service_ids,
            affected_ci_ids: self.affected_ci_ids,
            major_incident: self.major_incident,
            watcher_ids: self.watcher_ids,
            resolution: None,
            problem: ProblemDetails::default(),
            satisfaction: None,
            version: 1,
            created_by: caller.subject.clone(),
            created_at: now,
            updated_at: now,
        };
        let change = TicketChange {
            action: HistoryAction::Created,
            field_changes: Vec::new(),
            note: None,
            facts: vec![Fact::Created],
        };
        (ticket, change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        Priority,
        access::check_requester_fields,
        commands::Title,
        testing::{agent, alice, at},
        validate::Violations,
    };

    fn titled(title: &str) -> Title {
        Title::parse("title", title, &mut Violations::new()).expect("a valid title")
    }

    /// What a requester sends from the portal: a type and a title.
    fn plain_incident() -> CreateTicket {
        CreateTicket {
            ticket_type: TicketType::Incident,
            title: titled("Printer jams on tray 2"),
            description: String::new(),
            channel: None,
            category: None,
            impact: None,
            urgency: None,
            tier: None,
            requester_id: None,
            assignment_group_id: None,
            assignee_id: None,
            affected_service_ids: Vec::new(),
            affected_ci_ids: Vec::new(),
            major_incident: false,
            watcher_ids: Vec::new(),
        }
    }

    fn identity() -> NewTicketIdentity {
        NewTicketIdentity {
            id: Uuid::from_u128(7),
            number: "INC-000007".into(),
        }
    }

    #[test]
    fn a_plain_create_is_a_new_medium_by_medium_first_line_api_ticket_of_the_caller() {
        let (ticket, change) = plain_incident().into_ticket(
            &alice(),
            identity(),
            &PriorityMatrix::itil_default(),
            at(9),
        );
        assert_eq!(ticket.status, Status::New);
        assert_eq!(
            (ticket.impact, ticket.urgency),
            (Level::Medium, Level::Medium)
        );
        assert_eq!(ticket.priority, Priority::P3);
        assert_eq!(ticket.tier, SupportTier::Tier1);
        assert_eq!(ticket.channel, Channel::Api);
        assert_eq!(ticket.requester_id, "alice");
        assert_eq!(ticket.created_by, "alice");
        assert_eq!(ticket.tenant_id, "acme");
        assert_eq!(
            (ticket.id, ticket.number.as_str()),
            (Uuid::from_u128(7), "INC-000007")
        );
        assert_eq!(
            (ticket.version, ticket.created_at, ticket.updated_at),
            (1, at(9), at(9))
        );
        assert_eq!(change.action, HistoryAction::Created);
        assert_eq!(change.facts, [Fact::Created]);
        assert!(change.field_changes.is_empty());
    }

    #[test]
    fn the_priority_comes_from_the_tenants_matrix() {
        let command = CreateTicket {
            impact: Some(Level::High),
            urgency: Some(Level::High),
            ..plain_incident()
        };
        let (ticket, _) =
            command.into_ticket(&agent(), identity(), &PriorityMatrix::itil_default(), at(9));
        assert_eq!(ticket.priority, Priority::P1);
    }

    #[test]
    fn a_ticket_created_with_a_group_or_an_assignee_starts_assigned() {
        for (group, assignee) in [
            (Some("team-net"), None),
            (None, Some("agent-7")),
            (Some("team-net"), Some("agent-7")),
        ] {
            let command = CreateTicket {
                assignment_group_id: group.map(str::to_owned),
                assignee_id: assignee.map(str::to_owned),
                ..plain_incident()
            };
            let (ticket, _) =
                command.into_ticket(&agent(), identity(), &PriorityMatrix::itil_default(), at(9));
            assert_eq!(ticket.status, Status::Assigned, "{group:?} {assignee:?}");
        }
    }

    #[test]
    fn staff_may_raise_a_ticket_for_someone_else() {
        let command = CreateTicket {
            requester_id: Some("bob".into()),
            ..plain_incident()
        };
        let (ticket, _) =
            command.into_ticket(&agent(), identity(), &PriorityMatrix::itil_default(), at(9));
        assert_eq!(ticket.requester_id, "bob");
        assert_eq!(ticket.created_by, "agent-7");
    }

    #[test]
    fn a_requester_naming_themselves_sets_no_staff_only_field() {
        let command = CreateTicket {
            requester_id: Some("alice".into()),
            ..plain_incident()
        };
        assert_eq!(
            command.requested_fields(&alice()),
            RequestedFields::default()
        );
        assert_eq!(
            check_requester_fields(&alice(), &command.requested_fields(&alice())),
            Ok(())
        );
    }

    #[test]
    fn a_create_reports_every_staff_only_field_it_sets() {
        let command = CreateTicket {
            impact: Some(Level::High),
            tier: Some(SupportTier::Tier2),
            requester_id: Some("bob".into()),
            major_incident: true,
            assignee_id: Some("agent-7".into()),
            ..plain_incident()
        };
        assert_eq!(
            command.requested_fields(&alice()).staff_only_fields(),
            [
                "impact",
                "assignee_id",
                "tier",
                "major_incident",
                "requester_id"
            ]
        );
    }
}
