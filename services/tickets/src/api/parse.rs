//! The edge: each request is parsed once into the typed command of `domain/`, collecting every
//! field violation of the request (`INVALID_ARGUMENT` lists them all). Past this module no code
//! meets an unspecified enum, a blank title or a version of 0.

use desk_kit::{idempotency::Fingerprint, paging};
use desk_proto::tickets::v1 as pb;
use uuid::Uuid;

use super::{TicketError, convert};
use crate::{
    domain::{
        ClearableEdit, ExpectedVersion, LinkKind, PriorityMatrix, Status, TicketReference,
        TicketSettings, Title, Violations, Visibility,
        commands::non_blank,
        conversation::{AddComment, AddLink, AddWorklog, LinkTargetReference},
        creation::CreateTicket,
        edits::{AffectedItems, UpdateProblem, UpdateTicket},
        lifecycle,
        moves::{
            AssignTicket, AssignTo, RateTicket, ReopenTicket, ResolveTicket, TransitionTarget,
            TransitionTicket,
        },
        validate::{self, NOTE_MAX, SEARCH_TEXT_MAX},
    },
    store::TicketFilter,
};

/// Tickets on one page of a list when the caller does not say, and at most.
const DEFAULT_PAGE_SIZE: u64 = 50;
const MAX_PAGE_SIZE: u64 = 200;

/// The idempotency key of a create and the fingerprint of the body it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateKey {
    pub key: String,
    pub fingerprint: Fingerprint,
}

pub fn create_ticket(
    request: pb::CreateTicketRequest,
) -> Result<(CreateTicket, Option<CreateKey>), Violations> {
    let mut violations = Violations::new();
    let ticket_type = required(
        "type",
        convert::ticket_type(request.r#type),
        &mut violations,
    );
    let title = Title::parse("title", &request.title, &mut violations);
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
    validate::category("category", non_blank(&request.category), &mut violations);
    let impact = optional_enum("impact", request.impact, convert::level, &mut violations);
    let urgency = optional_enum("urgency", request.urgency, convert::level, &mut violations);
    let tier = optional_enum("tier", request.tier, convert::tier, &mut violations);
    let requester_id = optional_id("requester_id", &request.requester_id, &mut violations);
    let assignment_group_id = optional_id(
        "assignment_group_id",
        &request.assignment_group_id,
        &mut violations,
    );
    let assignee_id = optional_id("assignee_id", &request.assignee_id, &mut violations);
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
    let (Some(ticket_type), Some(title)) = (ticket_type, title) else {
        return Err(violations);
    };
    violations.into_result()?;

    let key = (!request.idempotency_key.is_empty()).then(|| {
        // CreateTicketRequest has no map field: its encoding is deterministic.
        let mut body = request.clone();
        body.idempotency_key.clear();
        CreateKey {
            key: request.idempotency_key.clone(),
            fingerprint: Fingerprint::of_message(&body),
        }
    });
    let command = CreateTicket {
        ticket_type,
        title,
        category: non_blank(&request.category).map(|c| c.trim().to_owned()),
        description: request.description,
        channel,
        impact,
        urgency,
        tier,
        requester_id,
        assignment_group_id,
        assignee_id,
        affected_service_ids: request.affected_service_ids,
        affected_ci_ids: request.affected_ci_ids,
        major_incident: request.major_incident,
        watcher_ids: request.watcher_ids,
    };
    Ok((command, key))
}

/// `ListTickets`, parsed: the caller's filters, page and cursor. Which tickets the caller may
/// list at all is decided apart ([`crate::domain::access::list_scope`]).
#[derive(Debug, Clone, Default)]
pub struct ListTickets {
    pub filter: TicketFilter,
    /// Staff asking for the tickets assigned to them.
    pub mine: bool,
    pub page_size: u64,
    /// The last ticket of the previous page.
    pub after: Option<Uuid>,
}

pub fn list_tickets(request: pb::ListTicketsRequest) -> Result<ListTickets, Violations> {
    let mut violations = Violations::new();
    let mut filter = TicketFilter {
        open_only: request.open_only,
        ..TicketFilter::default()
    };
    for (index, value) in request.types.iter().enumerate() {
        if let Some(ticket_type) = required(
            &format!("types[{index}]"),
            convert::ticket_type(*value),
            &mut violations,
        ) {
            filter.types.push(ticket_type);
        }
    }
    for (index, value) in request.statuses.iter().enumerate() {
        if let Some(status) = required(
            &format!("statuses[{index}]"),
            convert::status(*value),
            &mut violations,
        ) {
            filter.statuses.push(status);
        }
    }
    for (index, value) in request.priorities.iter().enumerate() {
        if let Some(priority) = required(
            &format!("priorities[{index}]"),
            convert::priority(*value),
            &mut violations,
        ) {
            filter.priorities.push(priority);
        }
    }
    filter.assignment_group_id = optional_id(
        "assignment_group_id",
        &request.assignment_group_id,
        &mut violations,
    );
    filter.assignee_id = optional_id("assignee_id", &request.assignee_id, &mut violations);
    filter.requester_id = optional_id("requester_id", &request.requester_id, &mut violations);
    if !request.text.is_empty() {
        validate::single_line("text", &request.text, 1, SEARCH_TEXT_MAX, &mut violations);
        filter.text = Some(request.text.trim().to_owned());
    }
    if !(0..=MAX_PAGE_SIZE as i32).contains(&request.page_size) {
        violations.push(
            "page_size",
            format!(
                "must be between 1 and {MAX_PAGE_SIZE} (0 for the default of {DEFAULT_PAGE_SIZE})"
            ),
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
    Ok(ListTickets {
        filter,
        mine: request.mine,
        page_size: paging::page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
        after,
    })
}

pub fn update_ticket(
    request: pb::UpdateTicketRequest,
    region: &str,
) -> Result<UpdateTicket, Violations> {
    let mut violations = Violations::new();
    let expected_version = ExpectedVersion::parse(request.expected_version, &mut violations);
    let title = request
        .title
        .as_deref()
        .map(|title| Title::parse("title", title, &mut violations));
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
        validate::category("category", non_blank(category), &mut violations);
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
    let Some(expected_version) = expected_version else {
        return Err(violations);
    };
    // A title that did not parse left its violation behind.
    let title = match title {
        Some(None) => return Err(violations),
        Some(Some(title)) => Some(title),
        None => None,
    };
    violations.into_result()?;
    Ok(UpdateTicket {
        ticket: TicketReference::parse(&request.id, region),
        expected_version,
        title,
        description: request.description,
        category: request.category.as_deref().map(clearable_trimmed),
        impact,
        urgency,
        major_incident: request.major_incident,
        // The lists are checked even when not used: a client sending bad ids should hear of it.
        replace_affected: request.replace_affected.then_some(AffectedItems {
            service_ids: request.affected_service_ids,
            ci_ids: request.affected_ci_ids,
        }),
        add_watcher_ids: request.add_watcher_ids,
        remove_watcher_ids: request.remove_watcher_ids,
    })
}

pub fn update_problem(
    request: pb::UpdateProblemRequest,
    region: &str,
) -> Result<UpdateProblem, Violations> {
    let mut violations = Violations::new();
    let expected_version = ExpectedVersion::parse(request.expected_version, &mut violations);
    for (field, value) in [
        ("root_cause", &request.root_cause),
        ("workaround", &request.workaround),
    ] {
        if let Some(value) = value {
            validate::multi_line(field, value, 0, validate::DESCRIPTION_MAX, &mut violations);
        }
    }
    let Some(expected_version) = expected_version else {
        return Err(violations);
    };
    violations.into_result()?;
    Ok(UpdateProblem {
        ticket: TicketReference::parse(&request.id, region),
        expected_version,
        root_cause: request.root_cause.as_deref().map(clearable_as_written),
        workaround: request.workaround.as_deref().map(clearable_as_written),
        known_error: request.known_error,
    })
}

pub fn assign_ticket(
    request: pb::AssignTicketRequest,
    region: &str,
) -> Result<AssignTicket, Violations> {
    let mut violations = Violations::new();
    let expected_version = ExpectedVersion::parse(request.expected_version, &mut violations);
    if request.assignment_group_id.is_empty() && request.assignee_id.is_empty() {
        violations.push(
            "assignment_group_id",
            "a group, an assignee or both are required",
        );
    }
    let group = optional_id(
        "assignment_group_id",
        &request.assignment_group_id,
        &mut violations,
    );
    let assignee = optional_id("assignee_id", &request.assignee_id, &mut violations);
    let tier = optional_enum("tier", request.tier, convert::tier, &mut violations);
    validate::multi_line("note", &request.note, 0, NOTE_MAX, &mut violations);
    let to = match (group, assignee) {
        (Some(group), Some(assignee)) => Some(AssignTo::GroupAndAssignee { group, assignee }),
        (Some(group), None) => Some(AssignTo::Group(group)),
        (None, Some(assignee)) => Some(AssignTo::Assignee(assignee)),
        (None, None) => None,
    };
    let (Some(expected_version), Some(to)) = (expected_version, to) else {
        return Err(violations);
    };
    violations.into_result()?;
    Ok(AssignTicket {
        ticket: TicketReference::parse(&request.id, region),
        expected_version,
        to,
        tier,
        note: optional_note(&request.note),
    })
}

pub fn transition_ticket(
    request: pb::TransitionTicketRequest,
    region: &str,
) -> Result<TransitionTicket, Violations> {
    let mut violations = Violations::new();
    let expected_version = ExpectedVersion::parse(request.expected_version, &mut violations);
    let status = required(
        "target_status",
        convert::status(request.target_status),
        &mut violations,
    );
    if status == Some(Status::Resolved) {
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
    if status == Some(Status::Pending) && reason.is_none() {
        violations.push("pending_reason", "required when the target is pending");
    }
    validate::multi_line("note", &request.note, 0, NOTE_MAX, &mut violations);
    // A reason sent with any other target is ignored: it would have nothing to explain.
    let target = match (status, reason) {
        (Some(Status::New), _) => Some(TransitionTarget::New),
        (Some(Status::Assigned), _) => Some(TransitionTarget::Assigned),
        (Some(Status::InProgress), _) => Some(TransitionTarget::InProgress),
        (Some(Status::Pending), Some(reason)) => Some(TransitionTarget::Pending(reason)),
        (Some(Status::Closed), _) => Some(TransitionTarget::Closed),
        (Some(Status::Pending | Status::Resolved), _) | (None, _) => None,
    };
    let (Some(expected_version), Some(target)) = (expected_version, target) else {
        return Err(violations);
    };
    violations.into_result()?;
    Ok(TransitionTicket {
        ticket: TicketReference::parse(&request.id, region),
        expected_version,
        target,
        note: optional_note(&request.note),
    })
}

/// A resolution is parsed by the lifecycle's own rule, which names the field at fault; the
/// version is checked first, as in every write.
pub fn resolve_ticket(
    request: pb::ResolveTicketRequest,
    region: &str,
) -> Result<ResolveTicket, TicketError> {
    let mut violations = Violations::new();
    let expected_version = ExpectedVersion::parse(request.expected_version, &mut violations);
    let Some(expected_version) = expected_version else {
        return Err(violations.into());
    };
    let resolution =
        lifecycle::check_resolution(&request.resolution_code, &request.resolution_notes)?;
    Ok(ResolveTicket {
        ticket: TicketReference::parse(&request.id, region),
        expected_version,
        resolution,
    })
}

pub fn reopen_ticket(
    request: pb::ReopenTicketRequest,
    region: &str,
) -> Result<ReopenTicket, Violations> {
    let mut violations = Violations::new();
    let expected_version = ExpectedVersion::parse(request.expected_version, &mut violations);
    validate::multi_line("reason", &request.reason, 1, NOTE_MAX, &mut violations);
    let Some(expected_version) = expected_version else {
        return Err(violations);
    };
    violations.into_result()?;
    Ok(ReopenTicket {
        ticket: TicketReference::parse(&request.id, region),
        expected_version,
        reason: request.reason.trim().to_owned(),
    })
}

pub fn rate_ticket(request: pb::RateTicketRequest, region: &str) -> Result<RateTicket, Violations> {
    let mut violations = Violations::new();
    validate::multi_line("comment", &request.comment, 0, NOTE_MAX, &mut violations);
    violations.into_result()?;
    Ok(RateTicket {
        ticket: TicketReference::parse(&request.id, region),
        rating: request.rating,
        comment: optional_note(&request.comment),
    })
}

pub fn add_comment(request: pb::AddCommentRequest, region: &str) -> Result<AddComment, Violations> {
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
    Ok(AddComment {
        ticket: TicketReference::parse(&request.ticket_id, region),
        body: request.body,
        visibility,
    })
}

pub fn add_worklog(request: pb::AddWorklogRequest, region: &str) -> Result<AddWorklog, Violations> {
    let mut violations = Violations::new();
    validate::worklog_minutes("minutes", i64::from(request.minutes), &mut violations);
    validate::multi_line("note", &request.note, 0, NOTE_MAX, &mut violations);
    violations.into_result()?;
    Ok(AddWorklog {
        ticket: TicketReference::parse(&request.ticket_id, region),
        minutes: request.minutes,
        note: request.note,
    })
}

pub fn add_link(request: pb::AddLinkRequest, region: &str) -> Result<AddLink, Violations> {
    let mut violations = Violations::new();
    let kind = required("kind", convert::link_kind(request.kind), &mut violations);
    validate::id("target_id", &request.target_id, &mut violations);
    let Some(kind) = kind else {
        return Err(violations);
    };
    violations.into_result()?;
    Ok(AddLink {
        ticket: TicketReference::parse(&request.ticket_id, region),
        target: link_target(kind, &request.target_id, region),
        kind,
    })
}

/// A link's target names a ticket of this service or something outside it, by its kind.
fn link_target(kind: LinkKind, target_id: &str, region: &str) -> LinkTargetReference {
    if kind.targets_ticket() {
        LinkTargetReference::Ticket(TicketReference::parse(target_id, region))
    } else {
        LinkTargetReference::Elsewhere(target_id.to_owned())
    }
}

pub fn update_settings(
    request: pb::UpdateTicketSettingsRequest,
) -> Result<TicketSettings, Violations> {
    let mut violations = Violations::new();
    let Some(settings) = &request.settings else {
        violations.push("settings", "required");
        return Err(violations);
    };
    let mut cells = Vec::new();
    for (index, cell) in settings.priority_matrix.iter().enumerate() {
        let impact = required(
            &format!("settings.priority_matrix[{index}].impact"),
            convert::level(cell.impact),
            &mut violations,
        );
        let urgency = required(
            &format!("settings.priority_matrix[{index}].urgency"),
            convert::level(cell.urgency),
            &mut violations,
        );
        let priority = required(
            &format!("settings.priority_matrix[{index}].priority"),
            convert::priority(cell.priority),
            &mut violations,
        );
        if let (Some(impact), Some(urgency), Some(priority)) = (impact, urgency, priority) {
            cells.push((impact, urgency, priority));
        }
    }
    if let Some(rule) = TicketSettings::reopen_window_hours_rule(settings.reopen_window_hours) {
        violations.push("settings.reopen_window_hours", rule);
    }
    let priority_matrix = match PriorityMatrix::from_cells(&cells) {
        Ok(matrix) => Some(matrix),
        Err(error) => {
            violations.push("settings.priority_matrix", error.to_string());
            None
        }
    };
    let Some(priority_matrix) = priority_matrix else {
        return Err(violations);
    };
    violations.into_result()?;
    Ok(TicketSettings {
        priority_matrix,
        reopen_window_hours: settings.reopen_window_hours,
    })
}

/// A proto enum value that must be set: unspecified or unknown values are violations.
fn required<T>(field: &str, value: Option<T>, violations: &mut Violations) -> Option<T> {
    if value.is_none() {
        violations.push(field, "required: one of the enum's named values");
    }
    value
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

/// An opaque id that may be left empty; when sent, it must be one.
fn optional_id(field: &str, value: &str, violations: &mut Violations) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    validate::id(field, value, violations);
    Some(value.to_owned())
}

/// A free-text note as written, or none when blank.
fn optional_note(value: &str) -> Option<String> {
    non_blank(value).map(str::to_owned)
}

/// One line of text for an optional field, trimmed; blank clears the field.
fn clearable_trimmed(value: &str) -> ClearableEdit<String> {
    match non_blank(value) {
        Some(value) => ClearableEdit::Set(value.trim().to_owned()),
        None => ClearableEdit::Clear,
    }
}

/// Multi-line text for an optional field, as written; blank clears the field.
fn clearable_as_written(value: &str) -> ClearableEdit<String> {
    match non_blank(value) {
        Some(value) => ClearableEdit::Set(value.to_owned()),
        None => ClearableEdit::Clear,
    }
}

#[cfg(test)]
mod tests {
    use desk_kit::ids;

    use super::*;
    use crate::domain::{Level, PendingReason, ResolutionCode, SupportTier, TicketType};

    const REGION: &str = "test";

    fn ticket_id() -> String {
        ids::format_id(REGION, Uuid::from_u128(42))
    }

    fn fields(violations: &Violations) -> Vec<&str> {
        violations.iter().map(|v| v.field.as_str()).collect()
    }

    #[test]
    fn a_create_with_a_type_and_a_title_leaves_everything_else_to_the_defaults() {
        let (command, key) = create_ticket(pb::CreateTicketRequest {
            r#type: pb::TicketType::Incident as i32,
            title: "  Printer jams  ".into(),
            category: "   ".into(),
            ..Default::default()
        })
        .expect("valid");
        assert_eq!(command.ticket_type, TicketType::Incident);
        assert_eq!(command.title.as_str(), "Printer jams");
        assert_eq!(command.category, None, "blank text is no category");
        assert_eq!(
            (command.impact, command.tier, command.requester_id),
            (None, None, None)
        );
        assert_eq!(key, None);
    }

    #[test]
    fn a_create_key_fingerprints_the_body_without_the_key() {
        let request = |key: &str| pb::CreateTicketRequest {
            r#type: pb::TicketType::Incident as i32,
            title: "Printer jams".into(),
            idempotency_key: key.into(),
            ..Default::default()
        };
        let (_, first) = create_ticket(request("k-1")).expect("valid");
        let (_, second) = create_ticket(request("k-2")).expect("valid");
        let (first, second) = (first.expect("a key"), second.expect("a key"));
        assert_eq!(first.key, "k-1");
        assert_eq!(first.fingerprint, second.fingerprint);
    }

    #[test]
    fn a_create_reports_every_violation_at_once() {
        let violations = create_ticket(pb::CreateTicketRequest {
            title: " ".into(),
            impact: 42,
            assignee_id: "has space".into(),
            ..Default::default()
        })
        .expect_err("invalid");
        assert_eq!(
            fields(&violations),
            ["type", "title", "impact", "assignee_id"]
        );
    }

    #[test]
    fn an_update_names_its_ticket_and_version_and_blank_text_clears_the_category() {
        let command = update_ticket(
            pb::UpdateTicketRequest {
                id: ticket_id(),
                expected_version: 3,
                category: Some("  ".into()),
                impact: pb::Level::High as i32,
                affected_ci_ids: vec!["ci-1".into()],
                ..Default::default()
            },
            REGION,
        )
        .expect("valid");
        assert_eq!(command.ticket, TicketReference::Id(Uuid::from_u128(42)));
        assert_eq!(command.expected_version.get(), 3);
        assert_eq!(command.category, Some(ClearableEdit::Clear));
        assert_eq!(command.impact, Some(Level::High));
        assert_eq!(
            command.replace_affected, None,
            "lists replace only when asked"
        );
    }

    #[test]
    fn an_update_without_the_version_read_is_refused() {
        let violations = update_ticket(
            pb::UpdateTicketRequest {
                id: ticket_id(),
                title: Some("\u{200B}".into()),
                ..Default::default()
            },
            REGION,
        )
        .expect_err("no version");
        assert_eq!(fields(&violations), ["expected_version", "title"]);
    }

    #[test]
    fn an_assignment_goes_to_a_group_an_agent_or_both() {
        let assign = |group: &str, assignee: &str| {
            assign_ticket(
                pb::AssignTicketRequest {
                    id: ticket_id(),
                    expected_version: 1,
                    assignment_group_id: group.into(),
                    assignee_id: assignee.into(),
                    tier: pb::SupportTier::SecondLine as i32,
                    note: " ".into(),
                },
                REGION,
            )
        };
        let both = assign("team-net", "agent-7").expect("valid");
        assert_eq!(
            both.to,
            AssignTo::GroupAndAssignee {
                group: "team-net".into(),
                assignee: "agent-7".into()
            }
        );
        assert_eq!(both.tier, Some(SupportTier::Tier2));
        assert_eq!(both.note, None, "a blank note is no note");
        assert_eq!(
            assign("team-net", "").expect("valid").to,
            AssignTo::Group("team-net".into())
        );
        assert_eq!(
            assign("", "agent-7").expect("valid").to,
            AssignTo::Assignee("agent-7".into())
        );
        let nobody = assign("", "").expect_err("nobody");
        assert_eq!(fields(&nobody), ["assignment_group_id"]);
    }

    fn transition(
        target: pb::TicketStatus,
        reason: pb::PendingReason,
    ) -> pb::TransitionTicketRequest {
        pb::TransitionTicketRequest {
            id: ticket_id(),
            expected_version: 1,
            target_status: target as i32,
            pending_reason: reason as i32,
            note: String::new(),
        }
    }

    #[test]
    fn pending_carries_its_reason_and_other_targets_drop_one() {
        assert_eq!(
            transition_ticket(
                transition(pb::TicketStatus::Pending, pb::PendingReason::Vendor),
                REGION
            )
            .expect("valid")
            .target,
            TransitionTarget::Pending(PendingReason::Vendor)
        );
        assert_eq!(
            transition_ticket(
                transition(pb::TicketStatus::InProgress, pb::PendingReason::Vendor),
                REGION
            )
            .expect("valid")
            .target,
            TransitionTarget::InProgress
        );
        let without_reason = transition_ticket(
            transition(pb::TicketStatus::Pending, pb::PendingReason::Unspecified),
            REGION,
        )
        .expect_err("no reason");
        assert_eq!(fields(&without_reason), ["pending_reason"]);
    }

    #[test]
    fn resolving_is_no_transition() {
        let violations = transition_ticket(
            transition(pb::TicketStatus::Resolved, pb::PendingReason::Unspecified),
            REGION,
        )
        .expect_err("resolve has its own call");
        assert_eq!(fields(&violations), ["target_status"]);
    }

    #[test]
    fn a_resolution_is_read_after_the_version() {
        let request = |expected_version: i64| pb::ResolveTicketRequest {
            id: ticket_id(),
            expected_version,
            resolution_code: "fixed_it".into(),
            resolution_notes: String::new(),
        };
        assert!(matches!(
            resolve_ticket(request(0), REGION),
            Err(TicketError::Invalid(violations)) if fields(&violations) == ["expected_version"]
        ));
        assert!(matches!(
            resolve_ticket(request(1), REGION),
            Err(TicketError::Lifecycle(error)) if error.field() == Some("resolution_code")
        ));
        let resolved = resolve_ticket(
            pb::ResolveTicketRequest {
                resolution_code: "duplicate".into(),
                resolution_notes: " Same as INC-000001 ".into(),
                ..request(1)
            },
            REGION,
        )
        .expect("valid");
        assert_eq!(resolved.resolution.code, ResolutionCode::Duplicate);
        assert_eq!(resolved.resolution.notes, "Same as INC-000001");
    }

    #[test]
    fn a_link_target_is_a_ticket_or_something_elsewhere_by_the_links_kind() {
        let link = |kind: pb::LinkKind, target: &str| {
            add_link(
                pb::AddLinkRequest {
                    ticket_id: ticket_id(),
                    kind: kind as i32,
                    target_id: target.into(),
                },
                REGION,
            )
        };
        assert_eq!(
            link(pb::LinkKind::Related, "INC-000002")
                .expect("valid")
                .target,
            LinkTargetReference::Ticket(TicketReference::Number("INC-000002".into()))
        );
        assert_eq!(
            link(pb::LinkKind::CausedByChange, "CHG-000042")
                .expect("valid")
                .target,
            LinkTargetReference::Elsewhere("CHG-000042".into())
        );
        assert_eq!(
            link(
                pb::LinkKind::Related,
                "apac-0195c1f0-7a4e-7c3b-9a55-3f1d2e4b5c6d"
            )
            .expect("valid")
            .target,
            LinkTargetReference::Ticket(TicketReference::NoTicketHere),
            "another region's ticket is no ticket here"
        );
        let unspecified = link(pb::LinkKind::Unspecified, "").expect_err("invalid");
        assert_eq!(fields(&unspecified), ["kind", "target_id"]);
    }

    #[test]
    fn a_list_page_holds_fifty_by_default_and_at_most_two_hundred() {
        assert_eq!(
            list_tickets(pb::ListTicketsRequest::default())
                .expect("valid")
                .page_size,
            DEFAULT_PAGE_SIZE
        );
        let violations = list_tickets(pb::ListTicketsRequest {
            page_size: 201,
            page_token: "not-a-token".into(),
            ..Default::default()
        })
        .expect_err("invalid");
        assert_eq!(fields(&violations), ["page_size", "page_token"]);
    }

    #[test]
    fn settings_are_required_whole() {
        let violations = update_settings(pb::UpdateTicketSettingsRequest { settings: None })
            .expect_err("missing");
        assert_eq!(fields(&violations), ["settings"]);
        let violations = update_settings(pb::UpdateTicketSettingsRequest {
            settings: Some(pb::TicketSettings {
                priority_matrix: Vec::new(),
                reopen_window_hours: 0,
            }),
        })
        .expect_err("empty matrix, no window");
        assert_eq!(
            fields(&violations),
            ["settings.reopen_window_hours", "settings.priority_matrix"]
        );
    }
}
