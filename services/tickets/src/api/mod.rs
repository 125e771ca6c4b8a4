//! The gRPC face of the tickets service: decode, authorize, check the domain rules, then write the
//! change, its history and its events in one transaction.
//!
//! Every handler follows the same order, so a failed call leaves nothing behind: validate the
//! request (all field violations at once) → load the ticket (`NOT_FOUND` also when the caller may
//! not see it) → check the caller's rights → check the version the caller read (`ABORTED`) → check
//! the lifecycle rules (`FAILED_PRECONDITION`) → write and commit.

pub mod convert;
mod error;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use desk_kit::{
    clock::SharedClock,
    error::Classify,
    idempotency::{Fingerprint, IdempotentCreate, Recorded},
    ids, paging,
};
use desk_proto::{common::v1 as common, tickets::v1 as pb};
use tonic::{Request, Response, Status};
use uuid::Uuid;

pub use error::TicketError;

use crate::{
    domain::{
        Actor, Changes, Fact, Level, LinkKind, RequestedFields, Role, Status as TicketStatus,
        SupportTier, TicketType, Violations, Visibility, access, lifecycle,
        record::{
            Comment, Link, ProblemDetails, ResolutionRecord, Satisfaction, Ticket, WorklogEntry,
        },
        validate,
    },
    events,
    store::{HistoryActor, IDEMPOTENCY_KEYS, TicketFilter, TicketStore},
};

/// Longest free-text note on an assignment, transition or reopen.
const NOTE_MAX: usize = 2_000;
/// Longest search text in a list call.
const SEARCH_TEXT_MAX: usize = 200;

type TicketResult<T> = Result<T, TicketError>;

/// The `desk.tickets.v1.TicketService` implementation.
#[derive(Clone)]
pub struct TicketApi {
    store: Arc<TicketStore>,
    region: String,
    clock: SharedClock,
}

/// What a change did, for its history entry and its events.
struct Change {
    action: &'static str,
    changes: Vec<crate::domain::FieldChange>,
    note: Option<String>,
    facts: Vec<Fact>,
}

impl TicketApi {
    pub fn new(store: Arc<TicketStore>, region: String, clock: SharedClock) -> Self {
        Self {
            store,
            region,
            clock,
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn to_pb(&self, ticket: &Ticket) -> pb::Ticket {
        convert::ticket_to_pb(&self.region, ticket)
    }

    /// Resolves a public id (`emea-<uuid>`) or a number (`INC-000123`) to a ticket the caller may read.
    async fn find_readable<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        actor: &Actor,
        id: &str,
    ) -> TicketResult<Ticket> {
        let ticket = self
            .find_any(conn, &actor.tenant, id)
            .await?
            .ok_or(TicketError::NotFound)?;
        if !access::can_read(actor, &ticket.access_facts()) {
            return Err(TicketError::NotFound);
        }
        Ok(ticket)
    }

    async fn find_any<C: sea_orm::ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        id: &str,
    ) -> TicketResult<Option<Ticket>> {
        if let Some(parsed) = ids::parse_id(id) {
            // Another region's ticket lives in another database; the gateway routes such calls there.
            if parsed.region != self.region {
                return Ok(None);
            }
            return Ok(self.store.find(conn, tenant, parsed.uuid).await?);
        }
        if TicketType::parse_number(id).is_some() {
            return Ok(self.store.find_by_number(conn, tenant, id).await?);
        }
        Ok(None)
    }

    /// Bumps the version, writes the ticket if nobody else did since `expected_version`, and records
    /// the history entry and events, all in `txn`.
    async fn save(
        &self,
        txn: &desk_kit::db::WriteTxn,
        actor: &Actor,
        ticket: &mut Ticket,
        expected_version: i64,
        change: Change,
    ) -> TicketResult<()> {
        let now = self.now();
        ticket.version = expected_version + 1;
        ticket.updated_at = now;
        if !self.store.update(txn, ticket, expected_version).await? {
            let current = self
                .store
                .find(&**txn, &ticket.tenant_id, ticket.id)
                .await?
                .map_or(0, |t| t.version);
            return Err(TicketError::Stale {
                expected: expected_version,
                current,
            });
        }
        self.record(txn, actor, ticket, change, now).await
    }

    async fn record(
        &self,
        txn: &desk_kit::db::WriteTxn,
        actor: &Actor,
        ticket: &Ticket,
        change: Change,
        now: DateTime<Utc>,
    ) -> TicketResult<()> {
        let history_actor = HistoryActor {
            subject: actor.subject.clone(),
            name: actor.name.clone(),
            roles: actor.roles.iter().map(|r| r.as_str().to_owned()).collect(),
        };
        self.store
            .append_history(
                txn,
                ticket,
                &history_actor,
                change.action,
                &change.changes,
                change.note.as_deref(),
                now,
            )
            .await?;
        let snapshot = self.to_pb(ticket);
        let actor_pb = convert::actor_to_pb(actor);
        for fact in change.facts {
            self.store
                .stage(txn, events::event_for(fact, &snapshot, &actor_pb), now)
                .await?;
        }
        Ok(())
    }

    /// Loads a ticket for a write inside `txn` and checks the version the caller read.
    async fn load_for_write(
        &self,
        txn: &desk_kit::db::WriteTxn,
        actor: &Actor,
        id: &str,
        expected_version: Option<i64>,
    ) -> TicketResult<Ticket> {
        let ticket = self.find_readable(&**txn, actor, id).await?;
        if let Some(expected) = expected_version
            && expected != ticket.version
        {
            return Err(TicketError::Stale {
                expected,
                current: ticket.version,
            });
        }
        Ok(ticket)
    }

    fn require_staff(actor: &Actor, reason: &'static str) -> TicketResult<()> {
        if access::can_work(actor) {
            Ok(())
        } else {
            Err(TicketError::Forbidden(reason))
        }
    }

    // ---- create ----

    pub async fn create(
        &self,
        actor: &Actor,
        request: pb::CreateTicketRequest,
    ) -> TicketResult<Ticket> {
        let mut violations = Violations::new();
        let ticket_type = convert::required(
            "type",
            convert::ticket_type(request.r#type),
            &mut violations,
        );
        validate::single_line(
            "title",
            &request.title,
            1,
            validate::TITLE_MAX,
            &mut violations,
        );
        validate::multi_line(
            "description",
            &request.description,
            0,
            validate::DESCRIPTION_MAX,
            &mut violations,
        );
        let channel = optional_enum(
            "channel",
            request.channel,
            convert::channel,
            &mut violations,
        );
        validate::category("category", non_empty(&request.category), &mut violations);
        let impact = optional_enum("impact", request.impact, convert::level, &mut violations);
        let urgency = optional_enum("urgency", request.urgency, convert::level, &mut violations);
        let tier = optional_enum("tier", request.tier, convert::tier, &mut violations);
        for (field, value) in [
            ("requester_id", &request.requester_id),
            ("assignment_group_id", &request.assignment_group_id),
            ("assignee_id", &request.assignee_id),
        ] {
            if !value.is_empty() {
                validate::id(field, value, &mut violations);
            }
        }
        validate::id_list(
            "affected_service_ids",
            &request.affected_service_ids,
            validate::MAX_AFFECTED,
            &mut violations,
        );
        validate::id_list(
            "affected_ci_ids",
            &request.affected_ci_ids,
            validate::MAX_AFFECTED,
            &mut violations,
        );
        validate::id_list(
            "watcher_ids",
            &request.watcher_ids,
            validate::MAX_WATCHERS,
            &mut violations,
        );
        if !request.idempotency_key.is_empty() {
            validate::idempotency_key("idempotency_key", &request.idempotency_key, &mut violations);
        }
        violations.into_result()?;
        let ticket_type = ticket_type.ok_or(TicketError::NotFound)?;

        let requester_id = if request.requester_id.is_empty() {
            actor.subject.clone()
        } else {
            request.requester_id.clone()
        };
        access::check_requester_fields(
            actor,
            &RequestedFields {
                impact: impact.is_some(),
                urgency: urgency.is_some(),
                assignment_group: !request.assignment_group_id.is_empty(),
                assignee: !request.assignee_id.is_empty(),
                tier: tier.is_some(),
                major_incident: request.major_incident,
                requester_other_than_self: requester_id != actor.subject,
                ..RequestedFields::default()
            },
        )?;

        let idempotent = IdempotentCreate::new(
            &actor.tenant,
            &actor.subject,
            &request.idempotency_key,
            || {
                // CreateTicketRequest has no map field: its encoding is deterministic.
                let mut body = request.clone();
                body.idempotency_key.clear();
                Fingerprint::of_message(&body)
            },
        );
        if let Some(create) = &idempotent
            && let Some(existing) = self.replay(actor, create).await?
        {
            return Ok(existing);
        }

        let settings = self.store.cached_settings(&actor.tenant).await?;
        let impact = impact.unwrap_or(Level::Medium);
        let urgency = urgency.unwrap_or(Level::Medium);
        let now = self.now();
        let assignment_group_id = non_empty(&request.assignment_group_id).map(str::to_owned);
        let assignee_id = non_empty(&request.assignee_id).map(str::to_owned);
        let status = lifecycle::status_after_assignment(
            TicketStatus::New,
            assignment_group_id.is_some() || assignee_id.is_some(),
        );

        self.store
            .prepare_numbering(&actor.tenant, ticket_type)
            .await?;
        let txn = self.store.begin().await?;
        let number = self
            .store
            .next_number(&txn, &actor.tenant, ticket_type)
            .await?;
        let ticket = Ticket {
            id: ids::new_uuid(),
            tenant_id: actor.tenant.clone(),
            number,
            ticket_type,
            title: request.title.trim().to_owned(),
            description: request.description,
            requester_id,
            channel: channel.unwrap_or(crate::domain::Channel::Api),
            category: non_empty(&request.category).map(|c| c.trim().to_owned()),
            impact,
            urgency,
            priority: settings.priority_matrix.priority(impact, urgency),
            status,
            pending_reason: None,
            assignment_group_id,
            assignee_id,
            tier: tier.unwrap_or(SupportTier::Tier1),
            affected_service_ids: request.affected_service_ids,
            affected_ci_ids: request.affected_ci_ids,
            major_incident: request.major_incident,
            watcher_ids: request.watcher_ids,
            resolution: None,
            problem: ProblemDetails::default(),
            satisfaction: None,
            version: 1,
            created_by: actor.subject.clone(),
            created_at: now,
            updated_at: now,
        };
        self.store.insert(&txn, &ticket).await?;
        self.record(
            &txn,
            actor,
            &ticket,
            Change {
                action: "created",
                changes: Vec::new(),
                note: None,
                facts: vec![Fact::Created],
            },
            now,
        )
        .await?;
        if let Some(create) = &idempotent
            && IDEMPOTENCY_KEYS
                .record(&txn, create, ticket.id, now)
                .await?
                == Recorded::TakenConcurrently
        {
            // A concurrent retry with the same key won: answer with its ticket, write nothing.
            drop(txn);
            return self
                .replay(actor, create)
                .await?
                .ok_or(TicketError::NotFound);
        }
        self.store.commit(txn).await?;
        Ok(ticket)
    }

    /// The ticket an earlier create with this key made, if the body matches; a conflict if it does not.
    async fn replay(
        &self,
        actor: &Actor,
        create: &IdempotentCreate,
    ) -> TicketResult<Option<Ticket>> {
        let conn = self.store.db().connection();
        let Some(ticket_id) = IDEMPOTENCY_KEYS.earlier_result(conn, create).await? else {
            return Ok(None);
        };
        Ok(self.store.find(conn, &actor.tenant, ticket_id).await?)
    }

    // ---- read ----

    pub async fn get(&self, actor: &Actor, id: &str) -> TicketResult<Ticket> {
        self.find_readable(self.store.db().connection(), actor, id)
            .await
    }

    pub async fn list(
        &self,
        actor: &Actor,
        request: pb::ListTicketsRequest,
    ) -> TicketResult<pb::ListTicketsResponse> {
        let mut violations = Violations::new();
        let mut filter = TicketFilter {
            open_only: request.open_only,
            ..TicketFilter::default()
        };
        for (index, value) in request.types.iter().enumerate() {
            if let Some(t) = convert::required(
                &format!("types[{index}]"),
                convert::ticket_type(*value),
                &mut violations,
            ) {
                filter.types.push(t);
            }
        }
        for (index, value) in request.statuses.iter().enumerate() {
            if let Some(s) = convert::required(
                &format!("statuses[{index}]"),
                convert::status(*value),
                &mut violations,
            ) {
                filter.statuses.push(s);
            }
        }
        for (index, value) in request.priorities.iter().enumerate() {
            if let Some(p) = convert::required(
                &format!("priorities[{index}]"),
                convert::priority(*value),
                &mut violations,
            ) {
                filter.priorities.push(p);
            }
        }
        for (field, value, slot) in [
            (
                "assignment_group_id",
                &request.assignment_group_id,
                &mut filter.assignment_group_id,
            ),
            ("assignee_id", &request.assignee_id, &mut filter.assignee_id),
            (
                "requester_id",
                &request.requester_id,
                &mut filter.requester_id,
            ),
        ] {
            if !value.is_empty() {
                validate::id(field, value, &mut violations);
                *slot = Some(value.clone());
            }
        }
        if !request.text.is_empty() {
            validate::single_line("text", &request.text, 1, SEARCH_TEXT_MAX, &mut violations);
            filter.text = Some(request.text.trim().to_owned());
        }
        if !(0..=200).contains(&request.page_size) {
            violations.push(
                "page_size",
                "must be between 1 and 200 (0 for the default of 50)",
            );
        }
        let after = if request.page_token.is_empty() {
            None
        } else {
            let cursor = paging::decode_cursor::<Uuid>(&request.page_token);
            if cursor.is_none() {
                violations.push(
                    "page_token",
                    "not a token from a previous page of this list",
                );
            }
            cursor
        };
        violations.into_result()?;

        if !actor.is_staff() {
            // Requesters only ever list their own tickets.
            filter.requester_id = Some(actor.subject.clone());
        } else if request.mine {
            filter.assignee_id = Some(actor.subject.clone());
        }
        let limit = paging::page_size(request.page_size, 50, 200);
        let (tickets, total) = self
            .store
            .list(
                self.store.db().connection(),
                &actor.tenant,
                &filter,
                after,
                limit,
            )
            .await?;
        let next_page_token = match tickets.last() {
            Some(last) if tickets.len() as u64 == limit => paging::encode_cursor(&last.id),
            _ => String::new(),
        };
        Ok(pb::ListTicketsResponse {
            tickets: tickets.iter().map(|t| self.to_pb(t)).collect(),
            next_page_token,
            total_size: total as i64,
        })
    }

    // ---- field edits ----

    pub async fn update(
        &self,
        actor: &Actor,
        request: pb::UpdateTicketRequest,
    ) -> TicketResult<Ticket> {
        let mut violations = Violations::new();
        expected_version(request.expected_version, &mut violations);
        if let Some(title) = &request.title {
            validate::single_line("title", title, 1, validate::TITLE_MAX, &mut violations);
        }
        if let Some(description) = &request.description {
            validate::multi_line(
                "description",
                description,
                0,
                validate::DESCRIPTION_MAX,
                &mut violations,
            );
        }
        if let Some(category) = &request.category {
            validate::category("category", non_empty(category), &mut violations);
        }
        let impact = optional_enum("impact", request.impact, convert::level, &mut violations);
        let urgency = optional_enum("urgency", request.urgency, convert::level, &mut violations);
        validate::id_list(
            "affected_service_ids",
            &request.affected_service_ids,
            validate::MAX_AFFECTED,
            &mut violations,
        );
        validate::id_list(
            "affected_ci_ids",
            &request.affected_ci_ids,
            validate::MAX_AFFECTED,
            &mut violations,
        );
        validate::id_list(
            "add_watcher_ids",
            &request.add_watcher_ids,
            validate::MAX_WATCHERS,
            &mut violations,
        );
        validate::id_list(
            "remove_watcher_ids",
            &request.remove_watcher_ids,
            validate::MAX_WATCHERS,
            &mut violations,
        );
        violations.into_result()?;
        access::check_requester_fields(
            actor,
            &RequestedFields {
                impact: impact.is_some(),
                urgency: urgency.is_some(),
                major_incident: request.major_incident.is_some(),
                ..RequestedFields::default()
            },
        )?;
        if !actor.is_staff() && (request.replace_affected || !request.remove_watcher_ids.is_empty())
        {
            return Err(TicketError::Forbidden(
                "only staff may change affected services and CIs or remove watchers",
            ));
        }

        let txn = self.store.begin().await?;
        let mut ticket = self
            .load_for_write(&txn, actor, &request.id, Some(request.expected_version))
            .await?;
        lifecycle::check_field_edit(ticket.status)?;
        let settings = self.store.settings(&*txn, &actor.tenant).await?;
        let mut changes = Changes::new();
        if let Some(title) = request.title {
            let title = title.trim().to_owned();
            changes.record("title", &ticket.title, &title);
            ticket.title = title;
        }
        if let Some(description) = request.description {
            changes.record("description", &ticket.description, &description);
            ticket.description = description;
        }
        if let Some(category) = request.category {
            let category = non_empty(&category).map(|c| c.trim().to_owned());
            changes.record_opt("category", ticket.category.as_deref(), category.as_deref());
            ticket.category = category;
        }
        if impact.is_some() || urgency.is_some() {
            let (new_impact, new_urgency) = (
                impact.unwrap_or(ticket.impact),
                urgency.unwrap_or(ticket.urgency),
            );
            let priority = settings.priority_matrix.priority(new_impact, new_urgency);
            changes.record("impact", &ticket.impact, &new_impact);
            changes.record("urgency", &ticket.urgency, &new_urgency);
            changes.record("priority", &ticket.priority, &priority);
            (ticket.impact, ticket.urgency, ticket.priority) = (new_impact, new_urgency, priority);
        }
        if let Some(major) = request.major_incident {
            changes.record("major_incident", &ticket.major_incident, &major);
            ticket.major_incident = major;
        }
        if request.replace_affected {
            changes.record(
                "affected_service_ids",
                &ticket.affected_service_ids.join(","),
                &request.affected_service_ids.join(","),
            );
            changes.record(
                "affected_ci_ids",
                &ticket.affected_ci_ids.join(","),
                &request.affected_ci_ids.join(","),
            );
            ticket.affected_service_ids = request.affected_service_ids;
            ticket.affected_ci_ids = request.affected_ci_ids;
        }
        let mut watchers = ticket.watcher_ids.clone();
        watchers.retain(|w| !request.remove_watcher_ids.contains(w));
        for watcher in request.add_watcher_ids {
            if !watchers.contains(&watcher) {
                watchers.push(watcher);
            }
        }
        if watchers.len() > validate::MAX_WATCHERS {
            let mut violations = Violations::new();
            violations.push(
                "add_watcher_ids",
                format!("a ticket has at most {} watchers", validate::MAX_WATCHERS),
            );
            return Err(violations.into());
        }
        changes.record(
            "watcher_ids",
            &ticket.watcher_ids.join(","),
            &watchers.join(","),
        );
        ticket.watcher_ids = watchers;

        if changes.is_empty() {
            return Ok(ticket);
        }
        let changes = changes.into_vec();
        let change = Change {
            action: "updated",
            facts: vec![Fact::Updated {
                changes: changes.clone(),
            }],
            changes,
            note: None,
        };
        self.save(&txn, actor, &mut ticket, request.expected_version, change)
            .await?;
        self.store.commit(txn).await?;
        Ok(ticket)
    }

    pub async fn assign(
        &self,
        actor: &Actor,
        request: pb::AssignTicketRequest,
    ) -> TicketResult<Ticket> {
        let mut violations = Violations::new();
        expected_version(request.expected_version, &mut violations);
        if request.assignment_group_id.is_empty() && request.assignee_id.is_empty() {
            violations.push(
                "assignment_group_id",
                "a group, an assignee or both are required",
            );
        }
        for (field, value) in [
            ("assignment_group_id", &request.assignment_group_id),
            ("assignee_id", &request.assignee_id),
        ] {
            if !value.is_empty() {
                validate::id(field, value, &mut violations);
            }
        }
        let tier = optional_enum("tier", request.tier, convert::tier, &mut violations);
        validate::multi_line("note", &request.note, 0, NOTE_MAX, &mut violations);
        violations.into_result()?;
        Self::require_staff(actor, "only staff may assign tickets")?;

        let txn = self.store.begin().await?;
        let mut ticket = self
            .load_for_write(&txn, actor, &request.id, Some(request.expected_version))
            .await?;
        lifecycle::check_assignable(ticket.status)?;
        let previous = ticket.clone();
        let group = non_empty(&request.assignment_group_id)
            .map(str::to_owned)
            .or(ticket.assignment_group_id.clone());
        let assignee = non_empty(&request.assignee_id).map(str::to_owned);
        let mut changes = Changes::new();
        changes.record_opt(
            "assignment_group_id",
            previous.assignment_group_id.as_deref(),
            group.as_deref(),
        );
        changes.record_opt(
            "assignee_id",
            previous.assignee_id.as_deref(),
            assignee.as_deref(),
        );
        ticket.assignment_group_id = group;
        ticket.assignee_id = assignee;
        if let Some(tier) = tier {
            changes.record("tier", &previous.tier, &tier);
            ticket.tier = tier;
        }
        ticket.status = lifecycle::status_after_assignment(ticket.status, true);
        changes.record("status", &previous.status, &ticket.status);
        if changes.is_empty() {
            return Ok(ticket);
        }
        let note = non_empty(&request.note).map(str::to_owned);
        let mut facts = Vec::new();
        if previous.assignment_group_id != ticket.assignment_group_id
            || previous.assignee_id != ticket.assignee_id
        {
            facts.push(Fact::Assigned {
                previous_group: previous.assignment_group_id.clone(),
                previous_assignee: previous.assignee_id.clone(),
                note: note.clone(),
            });
        }
        if ticket.tier.rank() > previous.tier.rank() {
            facts.push(Fact::Escalated {
                previous_tier: previous.tier,
                note: note.clone(),
            });
        }
        if ticket.status != previous.status {
            facts.push(Fact::StatusChanged {
                previous: previous.status,
                note: note.clone(),
            });
        }
        let action = if ticket.tier.rank() > previous.tier.rank() {
            "escalated"
        } else {
            "assigned"
        };
        self.save(
            &txn,
            actor,
            &mut ticket,
            request.expected_version,
            Change {
                action,
                changes: changes.into_vec(),
                note,
                facts,
            },
        )
        .await?;
        self.store.commit(txn).await?;
        Ok(ticket)
    }

    // ---- lifecycle ----

    pub async fn transition(
        &self,
        actor: &Actor,
        request: pb::TransitionTicketRequest,
    ) -> TicketResult<Ticket> {
        let mut violations = Violations::new();
        expected_version(request.expected_version, &mut violations);
        let target = convert::required(
            "target_status",
            convert::status(request.target_status),
            &mut violations,
        );
        if target == Some(TicketStatus::Resolved) {
            violations.push(
                "target_status",
                "resolve with ResolveTicket, which takes the resolution code and notes",
            );
        }
        let reason = optional_enum(
            "pending_reason",
            request.pending_reason,
            convert::pending_reason,
            &mut violations,
        );
        if target == Some(TicketStatus::Pending) && reason.is_none() {
            violations.push("pending_reason", "required when the target is pending");
        }
        validate::multi_line("note", &request.note, 0, NOTE_MAX, &mut violations);
        violations.into_result()?;
        let target = target.ok_or(TicketError::NotFound)?;

        let txn = self.store.begin().await?;
        let mut ticket = self
            .load_for_write(&txn, actor, &request.id, Some(request.expected_version))
            .await?;
        if target == TicketStatus::Closed {
            access::can_close(actor, &ticket.access_facts())?;
        } else {
            Self::require_staff(actor, "only staff may move a ticket through its lifecycle")?;
        }
        lifecycle::check_transition(ticket.status, target)?;
        let previous = ticket.status;
        let mut changes = Changes::new();
        changes.record("status", &previous, &target);
        let new_reason = (target == TicketStatus::Pending)
            .then_some(reason)
            .flatten();
        changes.record_opt(
            "pending_reason",
            ticket.pending_reason.as_ref(),
            new_reason.as_ref(),
        );
        ticket.status = target;
        ticket.pending_reason = new_reason;
        let note = non_empty(&request.note).map(str::to_owned);
        let mut facts = vec![Fact::StatusChanged {
            previous,
            note: note.clone(),
        }];
        if target == TicketStatus::Closed {
            facts.push(Fact::Closed);
        }
        self.save(
            &txn,
            actor,
            &mut ticket,
            request.expected_version,
            Change {
                action: "status_changed",
                changes: changes.into_vec(),
                note,
                facts,
            },
        )
        .await?;
        self.store.commit(txn).await?;
        Ok(ticket)
    }

    pub async fn resolve(
        &self,
        actor: &Actor,
        request: pb::ResolveTicketRequest,
    ) -> TicketResult<Ticket> {
        let mut violations = Violations::new();
        expected_version(request.expected_version, &mut violations);
        violations.into_result()?;
        let resolution =
            lifecycle::check_resolution(&request.resolution_code, &request.resolution_notes)?;
        Self::require_staff(actor, "only staff may resolve tickets")?;

        let txn = self.store.begin().await?;
        let mut ticket = self
            .load_for_write(&txn, actor, &request.id, Some(request.expected_version))
            .await?;
        lifecycle::check_transition(ticket.status, TicketStatus::Resolved)?;
        let previous = ticket.status;
        let now = self.now();
        let mut changes = Changes::new();
        changes.record("status", &previous, &TicketStatus::Resolved);
        changes.record_opt("resolution_code", None, Some(resolution.code.as_str()));
        ticket.status = TicketStatus::Resolved;
        ticket.pending_reason = None;
        ticket.resolution = Some(ResolutionRecord {
            code: resolution.code,
            notes: resolution.notes.clone(),
            resolved_by: actor.subject.clone(),
            resolved_at: now,
        });
        let mut facts = vec![
            Fact::StatusChanged {
                previous,
                note: None,
            },
            Fact::Resolved,
        ];
        if ticket.ticket_type == TicketType::Problem {
            let incident_ids = self
                .store
                .linked_targets(&*txn, &actor.tenant, ticket.id, LinkKind::Incident)
                .await?;
            facts.push(Fact::ProblemResolved { incident_ids });
        }
        self.save(
            &txn,
            actor,
            &mut ticket,
            request.expected_version,
            Change {
                action: "resolved",
                changes: changes.into_vec(),
                note: Some(resolution.notes),
                facts,
            },
        )
        .await?;
        self.store.commit(txn).await?;
        Ok(ticket)
    }

    pub async fn reopen(
        &self,
        actor: &Actor,
        request: pb::ReopenTicketRequest,
    ) -> TicketResult<Ticket> {
        let mut violations = Violations::new();
        expected_version(request.expected_version, &mut violations);
        validate::multi_line("reason", &request.reason, 1, NOTE_MAX, &mut violations);
        violations.into_result()?;

        let txn = self.store.begin().await?;
        let mut ticket = self
            .load_for_write(&txn, actor, &request.id, Some(request.expected_version))
            .await?;
        access::can_reopen(actor, &ticket.access_facts())?;
        let settings = self.store.settings(&*txn, &actor.tenant).await?;
        let resolved_at = ticket
            .resolution
            .as_ref()
            .map_or(ticket.updated_at, |r| r.resolved_at);
        lifecycle::check_reopen(
            ticket.status,
            resolved_at,
            self.now(),
            chrono::Duration::hours(i64::from(settings.reopen_window_hours)),
        )?;
        let previous = ticket.status;
        let target = lifecycle::reopen_target(
            ticket.assignment_group_id.is_some(),
            ticket.assignee_id.is_some(),
        );
        let mut changes = Changes::new();
        changes.record("status", &previous, &target);
        changes.record_opt(
            "resolution_code",
            ticket.resolution.as_ref().map(|r| r.code.as_str()),
            None,
        );
        ticket.status = target;
        ticket.resolution = None;
        let reason = request.reason.trim().to_owned();
        let facts = vec![
            Fact::StatusChanged {
                previous,
                note: Some(reason.clone()),
            },
            Fact::Reopened {
                reason: reason.clone(),
            },
        ];
        self.save(
            &txn,
            actor,
            &mut ticket,
            request.expected_version,
            Change {
                action: "reopened",
                changes: changes.into_vec(),
                note: Some(reason),
                facts,
            },
        )
        .await?;
        self.store.commit(txn).await?;
        Ok(ticket)
    }

    // ---- conversation and work ----

    pub async fn add_comment(
        &self,
        actor: &Actor,
        request: pb::AddCommentRequest,
    ) -> TicketResult<(pb::Comment, i64)> {
        let mut violations = Violations::new();
        validate::multi_line(
            "body",
            &request.body,
            1,
            validate::COMMENT_MAX,
            &mut violations,
        );
        let visibility = optional_enum(
            "visibility",
            request.visibility,
            convert::visibility,
            &mut violations,
        )
        .unwrap_or(Visibility::Public);
        violations.into_result()?;

        let txn = self.store.begin().await?;
        let mut ticket = self
            .load_for_write(&txn, actor, &request.ticket_id, None)
            .await?;
        access::can_comment(actor, &ticket.access_facts(), visibility)?;
        lifecycle::check_comment(ticket.status)?;
        let row = Comment {
            id: ids::new_uuid(),
            tenant_id: actor.tenant.clone(),
            ticket_id: ticket.id,
            author_id: actor.subject.clone(),
            author_name: actor.name.clone(),
            body: request.body,
            visibility,
            created_at: self.now(),
        };
        self.store.insert_comment(&txn, &row).await?;
        let comment = convert::comment_to_pb(&self.region, &row);
        let expected = ticket.version;
        let action = if visibility == Visibility::Internal {
            "commented_internally"
        } else {
            "commented"
        };
        self.save(
            &txn,
            actor,
            &mut ticket,
            expected,
            Change {
                action,
                changes: Vec::new(),
                note: None,
                facts: vec![Fact::Commented { comment: row }],
            },
        )
        .await?;
        self.store.commit(txn).await?;
        Ok((comment, ticket.version))
    }

    pub async fn comments(&self, actor: &Actor, ticket_id: &str) -> TicketResult<Vec<pb::Comment>> {
        let conn = self.store.db().connection();
        let ticket = self.find_readable(conn, actor, ticket_id).await?;
        let include_internal = access::can_see_comment(actor, Visibility::Internal);
        let rows = self
            .store
            .comments(conn, &actor.tenant, ticket.id, include_internal)
            .await?;
        Ok(rows
            .iter()
            .map(|c| convert::comment_to_pb(&self.region, c))
            .collect())
    }

    pub async fn add_worklog(
        &self,
        actor: &Actor,
        request: pb::AddWorklogRequest,
    ) -> TicketResult<(pb::WorklogEntry, i64)> {
        let mut violations = Violations::new();
        validate::worklog_minutes("minutes", i64::from(request.minutes), &mut violations);
        validate::multi_line("note", &request.note, 0, NOTE_MAX, &mut violations);
        violations.into_result()?;
        Self::require_staff(actor, "only staff log work")?;

        let txn = self.store.begin().await?;
        let mut ticket = self
            .load_for_write(&txn, actor, &request.ticket_id, None)
            .await?;
        lifecycle::check_comment(ticket.status)?;
        let row = WorklogEntry {
            id: ids::new_uuid(),
            tenant_id: actor.tenant.clone(),
            ticket_id: ticket.id,
            agent_id: actor.subject.clone(),
            minutes: request.minutes,
            note: request.note,
            created_at: self.now(),
        };
        self.store.insert_worklog(&txn, &row).await?;
        let entry = convert::worklog_to_pb(&self.region, &row);
        let expected = ticket.version;
        let changes = vec![crate::domain::FieldChange {
            field: "worklog_minutes".into(),
            old: None,
            new: Some(request.minutes.to_string()),
        }];
        self.save(
            &txn,
            actor,
            &mut ticket,
            expected,
            Change {
                action: "worklogged",
                changes,
                note: None,
                facts: vec![Fact::Worklogged { entry: row }],
            },
        )
        .await?;
        self.store.commit(txn).await?;
        Ok((entry, ticket.version))
    }

    pub async fn worklog(
        &self,
        actor: &Actor,
        ticket_id: &str,
    ) -> TicketResult<pb::ListWorklogResponse> {
        Self::require_staff(actor, "only staff see the worklog")?;
        let conn = self.store.db().connection();
        let ticket = self.find_readable(conn, actor, ticket_id).await?;
        let rows = self.store.worklog(conn, &actor.tenant, ticket.id).await?;
        Ok(pb::ListWorklogResponse {
            total_minutes: rows.iter().map(|w| w.minutes).sum(),
            entries: rows
                .iter()
                .map(|w| convert::worklog_to_pb(&self.region, w))
                .collect(),
        })
    }

    pub async fn add_link(
        &self,
        actor: &Actor,
        request: pb::AddLinkRequest,
    ) -> TicketResult<(pb::Link, i64)> {
        let mut violations = Violations::new();
        let kind = convert::required("kind", convert::link_kind(request.kind), &mut violations);
        validate::id("target_id", &request.target_id, &mut violations);
        violations.into_result()?;
        let kind = kind.ok_or(TicketError::NotFound)?;
        Self::require_staff(actor, "only staff may link tickets")?;

        let txn = self.store.begin().await?;
        let mut ticket = self
            .load_for_write(&txn, actor, &request.ticket_id, None)
            .await?;
        lifecycle::check_comment(ticket.status)?;
        let target = if kind.targets_ticket() {
            let target = self
                .find_any(&*txn, &actor.tenant, &request.target_id)
                .await?;
            let Some(target) = target else {
                let mut violations = Violations::new();
                violations.push("target_id", "no such ticket");
                return Err(violations.into());
            };
            Some(target)
        } else {
            None
        };
        lifecycle::check_link(
            ticket.ticket_type,
            kind,
            target.as_ref().map(|t| t.ticket_type),
            target.as_ref().is_some_and(|t| t.id == ticket.id),
        )?;
        let now = self.now();
        let target_id = target.as_ref().map_or(request.target_id.clone(), |t| {
            ids::format_id(&self.region, t.id)
        });
        let row = Link {
            id: ids::new_uuid(),
            tenant_id: actor.tenant.clone(),
            ticket_id: ticket.id,
            kind,
            target_id: target_id.clone(),
            target_number: target.as_ref().map(|t| t.number.clone()),
            created_by: actor.subject.clone(),
            created_at: now,
        };
        let link = convert::link_to_pb(&row);
        if !self.store.insert_link(&txn, &row).await? {
            // The same link already exists: nothing changes.
            return Ok((link, ticket.version));
        }
        if let (Some(target), Some(inverse)) = (&target, kind.inverse()) {
            // The other side sees the link too (problem ↔ incidents, parent ↔ child).
            self.store
                .insert_link(
                    &txn,
                    &Link {
                        id: ids::new_uuid(),
                        tenant_id: actor.tenant.clone(),
                        ticket_id: target.id,
                        kind: inverse,
                        target_id: ids::format_id(&self.region, ticket.id),
                        target_number: Some(ticket.number.clone()),
                        created_by: actor.subject.clone(),
                        created_at: now,
                    },
                )
                .await?;
        }
        let expected = ticket.version;
        let changes = vec![crate::domain::FieldChange {
            field: format!("link.{}", kind.as_str()),
            old: None,
            new: Some(target_id),
        }];
        self.save(
            &txn,
            actor,
            &mut ticket,
            expected,
            Change {
                action: "linked",
                changes,
                note: None,
                facts: vec![Fact::Linked { link: row }],
            },
        )
        .await?;
        self.store.commit(txn).await?;
        Ok((link, ticket.version))
    }

    pub async fn links(&self, actor: &Actor, ticket_id: &str) -> TicketResult<Vec<pb::Link>> {
        let conn = self.store.db().connection();
        let ticket = self.find_readable(conn, actor, ticket_id).await?;
        Ok(self
            .store
            .links(conn, &actor.tenant, ticket.id)
            .await?
            .iter()
            .map(convert::link_to_pb)
            .collect())
    }

    pub async fn update_problem(
        &self,
        actor: &Actor,
        request: pb::UpdateProblemRequest,
    ) -> TicketResult<Ticket> {
        let mut violations = Violations::new();
        expected_version(request.expected_version, &mut violations);
        for (field, value) in [
            ("root_cause", &request.root_cause),
            ("workaround", &request.workaround),
        ] {
            if let Some(value) = value {
                validate::multi_line(field, value, 0, validate::DESCRIPTION_MAX, &mut violations);
            }
        }
        violations.into_result()?;
        access::check_requester_fields(
            actor,
            &RequestedFields {
                root_cause: request.root_cause.is_some(),
                workaround: request.workaround.is_some(),
                known_error: request.known_error.is_some(),
                ..RequestedFields::default()
            },
        )?;

        let txn = self.store.begin().await?;
        let mut ticket = self
            .load_for_write(&txn, actor, &request.id, Some(request.expected_version))
            .await?;
        lifecycle::check_problem_fields(ticket.ticket_type)?;
        lifecycle::check_field_edit(ticket.status)?;
        let mut changes = Changes::new();
        if let Some(root_cause) = request.root_cause {
            let value = non_empty(&root_cause).map(str::to_owned);
            changes.record_opt(
                "root_cause",
                ticket.problem.root_cause.as_deref(),
                value.as_deref(),
            );
            ticket.problem.root_cause = value;
        }
        if let Some(workaround) = request.workaround {
            let value = non_empty(&workaround).map(str::to_owned);
            changes.record_opt(
                "workaround",
                ticket.problem.workaround.as_deref(),
                value.as_deref(),
            );
            ticket.problem.workaround = value;
        }
        if let Some(known_error) = request.known_error {
            changes.record("known_error", &ticket.problem.known_error, &known_error);
            ticket.problem.known_error = known_error;
        }
        if changes.is_empty() {
            return Ok(ticket);
        }
        let changes = changes.into_vec();
        let facts = vec![Fact::ProblemUpdated {
            changes: changes.clone(),
        }];
        self.save(
            &txn,
            actor,
            &mut ticket,
            request.expected_version,
            Change {
                action: "problem_updated",
                changes,
                note: None,
                facts,
            },
        )
        .await?;
        self.store.commit(txn).await?;
        Ok(ticket)
    }

    pub async fn rate(
        &self,
        actor: &Actor,
        request: pb::RateTicketRequest,
    ) -> TicketResult<Ticket> {
        let mut violations = Violations::new();
        validate::multi_line("comment", &request.comment, 0, NOTE_MAX, &mut violations);
        violations.into_result()?;

        let txn = self.store.begin().await?;
        let mut ticket = self.load_for_write(&txn, actor, &request.id, None).await?;
        access::can_rate(actor, &ticket.access_facts())?;
        lifecycle::check_rating(ticket.status, request.rating, ticket.satisfaction.is_some())?;
        ticket.satisfaction = Some(Satisfaction {
            rating: request.rating,
            comment: non_empty(&request.comment).map(str::to_owned),
            rated_at: self.now(),
        });
        let changes = vec![crate::domain::FieldChange {
            field: "satisfaction".into(),
            old: None,
            new: Some(request.rating.to_string()),
        }];
        let expected = ticket.version;
        self.save(
            &txn,
            actor,
            &mut ticket,
            expected,
            Change {
                action: "rated",
                changes,
                note: None,
                facts: vec![Fact::Rated],
            },
        )
        .await?;
        self.store.commit(txn).await?;
        Ok(ticket)
    }

    pub async fn history(&self, actor: &Actor, id: &str) -> TicketResult<Vec<common::AuditEntry>> {
        let conn = self.store.db().connection();
        let ticket = self.find_readable(conn, actor, id).await?;
        Self::require_staff(actor, "only staff read a ticket's history")?;
        Ok(self
            .store
            .history(conn, &actor.tenant, ticket.id)
            .await?
            .iter()
            .map(convert::history_to_pb)
            .collect())
    }

    // ---- settings ----

    pub async fn settings(&self, actor: &Actor) -> TicketResult<pb::TicketSettings> {
        Self::require_staff(actor, "only staff read ticket settings")?;
        Ok(convert::settings_to_pb(
            &self
                .store
                .settings(self.store.db().connection(), &actor.tenant)
                .await?,
        ))
    }

    pub async fn update_settings(
        &self,
        actor: &Actor,
        request: pb::UpdateTicketSettingsRequest,
    ) -> TicketResult<pb::TicketSettings> {
        if !access::can_manage_settings(actor) {
            return Err(TicketError::Forbidden(
                "only managers and admins change ticket settings",
            ));
        }
        let mut violations = Violations::new();
        let parsed = match &request.settings {
            Some(settings) => convert::settings_from_pb(settings, &mut violations),
            None => {
                violations.push("settings", "required");
                None
            }
        };
        violations.into_result()?;
        let settings = parsed.ok_or(TicketError::NotFound)?;
        let txn = self.store.begin().await?;
        self.store
            .save_settings(&txn, &actor.tenant, &settings, self.now())
            .await?;
        self.store.commit(txn).await?;
        self.store.forget_settings(&actor.tenant);
        Ok(convert::settings_to_pb(&settings))
    }
}

fn non_empty(value: &str) -> Option<&str> {
    if value.trim().is_empty() {
        None
    } else {
        Some(value)
    }
}

fn expected_version(value: i64, violations: &mut Violations) {
    if value < 1 {
        violations.push(
            "expected_version",
            "required: the version of the ticket you read",
        );
    }
}

/// An enum field that may be left unspecified (`None`), but not set to an unknown value.
fn optional_enum<T>(
    field: &str,
    raw: i32,
    parse: fn(i32) -> Option<T>,
    violations: &mut Violations,
) -> Option<T> {
    if raw == 0 {
        return None;
    }
    let parsed = parse(raw);
    if parsed.is_none() {
        violations.push(field, format!("unknown value {raw}"));
    }
    parsed
}

/// The caller as the domain sees them. Unknown roles are ignored, not errors: a token may carry
/// roles of services this one does not know.
fn actor_of<T>(request: &Request<T>) -> Result<Actor, Status> {
    // The kit's verifier refused any token whose tenant is not a tenant id.
    let principal = desk_kit::auth::principal(request)?;
    Ok(Actor {
        roles: principal
            .roles
            .iter()
            .filter_map(|r| Role::parse(r))
            .collect(),
        subject: principal.subject,
        tenant: principal.tenant,
        groups: principal.groups,
        name: principal.name,
    })
}

fn reply<T>(result: TicketResult<T>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(Classify::into_status)
}

#[tonic::async_trait]
impl pb::ticket_service_server::TicketService for TicketApi {
    async fn create_ticket(
        &self,
        request: Request<pb::CreateTicketRequest>,
    ) -> Result<Response<pb::CreateTicketResponse>, Status> {
        let actor = actor_of(&request)?;
        reply(
            self.create(&actor, request.into_inner())
                .await
                .map(|t| pb::CreateTicketResponse {
                    ticket: Some(self.to_pb(&t)),
                }),
        )
    }

    async fn get_ticket(
        &self,
        request: Request<pb::GetTicketRequest>,
    ) -> Result<Response<pb::GetTicketResponse>, Status> {
        let actor = actor_of(&request)?;
        reply(
            self.get(&actor, &request.get_ref().id)
                .await
                .map(|t| pb::GetTicketResponse {
                    ticket: Some(self.to_pb(&t)),
                }),
        )
    }

    async fn list_tickets(
        &self,
        request: Request<pb::ListTicketsRequest>,
    ) -> Result<Response<pb::ListTicketsResponse>, Status> {
        let actor = actor_of(&request)?;
        reply(self.list(&actor, request.into_inner()).await)
    }

    async fn update_ticket(
        &self,
        request: Request<pb::UpdateTicketRequest>,
    ) -> Result<Response<pb::UpdateTicketResponse>, Status> {
        let actor = actor_of(&request)?;
        reply(
            self.update(&actor, request.into_inner())
                .await
                .map(|t| pb::UpdateTicketResponse {
                    ticket: Some(self.to_pb(&t)),
                }),
        )
    }

    async fn assign_ticket(
        &self,
        request: Request<pb::AssignTicketRequest>,
    ) -> Result<Response<pb::AssignTicketResponse>, Status> {
        let actor = actor_of(&request)?;
        reply(
            self.assign(&actor, request.into_inner())
                .await
                .map(|t| pb::AssignTicketResponse {
                    ticket: Some(self.to_pb(&t)),
                }),
        )
    }

    async fn transition_ticket(
        &self,
        request: Request<pb::TransitionTicketRequest>,
    ) -> Result<Response<pb::TransitionTicketResponse>, Status> {
        let actor = actor_of(&request)?;
        reply(
            self.transition(&actor, request.into_inner())
                .await
                .map(|t| pb::TransitionTicketResponse {
                    ticket: Some(self.to_pb(&t)),
                }),
        )
    }

    async fn resolve_ticket(
        &self,
        request: Request<pb::ResolveTicketRequest>,
    ) -> Result<Response<pb::ResolveTicketResponse>, Status> {
        let actor = actor_of(&request)?;
        reply(
            self.resolve(&actor, request.into_inner())
                .await
                .map(|t| pb::ResolveTicketResponse {
                    ticket: Some(self.to_pb(&t)),
                }),
        )
    }

    async fn reopen_ticket(
        &self,
        request: Request<pb::ReopenTicketRequest>,
    ) -> Result<Response<pb::ReopenTicketResponse>, Status> {
        let actor = actor_of(&request)?;
        reply(
            self.reopen(&actor, request.into_inner())
                .await
                .map(|t| pb::ReopenTicketResponse {
                    ticket: Some(self.to_pb(&t)),
                }),
        )
    }

    async fn add_comment(
        &self,
        request: Request<pb::AddCommentRequest>,
    ) -> Result<Response<pb::AddCommentResponse>, Status> {
        let actor = actor_of(&request)?;
        reply(
            TicketApi::add_comment(self, &actor, request.into_inner())
                .await
                .map(|(c, v)| pb::AddCommentResponse {
                    comment: Some(c),
                    ticket_version: v,
                }),
        )
    }

    async fn list_comments(
        &self,
        request: Request<pb::ListCommentsRequest>,
    ) -> Result<Response<pb::ListCommentsResponse>, Status> {
        let actor = actor_of(&request)?;
        reply(
            self.comments(&actor, &request.get_ref().ticket_id)
                .await
                .map(|comments| pb::ListCommentsResponse { comments }),
        )
    }

    async fn add_worklog(
        &self,
        request: Request<pb::AddWorklogRequest>,
    ) -> Result<Response<pb::AddWorklogResponse>, Status> {
        let actor = actor_of(&request)?;
        reply(
            TicketApi::add_worklog(self, &actor, request.into_inner())
                .await
                .map(|(e, v)| pb::AddWorklogResponse {
                    entry: Some(e),
                    ticket_version: v,
                }),
        )
    }

    async fn list_worklog(
        &self,
        request: Request<pb::ListWorklogRequest>,
    ) -> Result<Response<pb::ListWorklogResponse>, Status> {
        let actor = actor_of(&request)?;
        reply(self.worklog(&actor, &request.get_ref().ticket_id).await)
    }

    async fn add_link(
        &self,
        request: Request<pb::AddLinkRequest>,
    ) -> Result<Response<pb::AddLinkResponse>, Status> {
        let actor = actor_of(&request)?;
        reply(
            TicketApi::add_link(self, &actor, request.into_inner())
                .await
                .map(|(l, v)| pb::AddLinkResponse {
                    link: Some(l),
                    ticket_version: v,
                }),
        )
    }

    async fn list_links(
        &self,
        request: Request<pb::ListLinksRequest>,
    ) -> Result<Response<pb::ListLinksResponse>, Status> {
        let actor = actor_of(&request)?;
        reply(
            self.links(&actor, &request.get_ref().ticket_id)
                .await
                .map(|links| pb::ListLinksResponse { links }),
        )
    }

    async fn update_problem(
        &self,
        request: Request<pb::UpdateProblemRequest>,
    ) -> Result<Response<pb::UpdateProblemResponse>, Status> {
        let actor = actor_of(&request)?;
        reply(
            TicketApi::update_problem(self, &actor, request.into_inner())
                .await
                .map(|t| pb::UpdateProblemResponse {
                    ticket: Some(self.to_pb(&t)),
                }),
        )
    }

    async fn rate_ticket(
        &self,
        request: Request<pb::RateTicketRequest>,
    ) -> Result<Response<pb::RateTicketResponse>, Status> {
        let actor = actor_of(&request)?;
        reply(
            self.rate(&actor, request.into_inner())
                .await
                .map(|t| pb::RateTicketResponse {
                    ticket: Some(self.to_pb(&t)),
                }),
        )
    }

    async fn get_ticket_history(
        &self,
        request: Request<pb::GetTicketHistoryRequest>,
    ) -> Result<Response<pb::GetTicketHistoryResponse>, Status> {
        let actor = actor_of(&request)?;
        reply(
            self.history(&actor, &request.get_ref().id)
                .await
                .map(|entries| pb::GetTicketHistoryResponse { entries }),
        )
    }

    async fn get_ticket_settings(
        &self,
        request: Request<pb::GetTicketSettingsRequest>,
    ) -> Result<Response<pb::GetTicketSettingsResponse>, Status> {
        let actor = actor_of(&request)?;
        reply(
            self.settings(&actor)
                .await
                .map(|s| pb::GetTicketSettingsResponse { settings: Some(s) }),
        )
    }

    async fn update_ticket_settings(
        &self,
        request: Request<pb::UpdateTicketSettingsRequest>,
    ) -> Result<Response<pb::UpdateTicketSettingsResponse>, Status> {
        let actor = actor_of(&request)?;
        reply(
            TicketApi::update_settings(self, &actor, request.into_inner())
                .await
                .map(|s| pb::UpdateTicketSettingsResponse { settings: Some(s) }),
        )
    }
}
