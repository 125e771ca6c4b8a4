//! The ticket lifecycle: which status moves are allowed, and what a ticket's status permits.
//!
//! ```text
//! from          may move to
//! new           assigned, in_progress, pending, resolved (first-contact resolution)
//! assigned      in_progress, pending, resolved
//! in_progress   assigned (back to the queue), pending, resolved
//! pending       assigned, in_progress, resolved
//! resolved      closed (accepted); back to work only by reopening, within the tenant's window
//! closed        nothing: final
//! ```
//!
//! Every rule is a pure function of the facts passed in (time included), and every rejection is a
//! [`LifecycleError`] whose text can be shown to users as it is.

use chrono::{DateTime, Duration, SecondsFormat, Utc};

use super::string_enum::string_enum;
use super::ticket::{LinkKind, Status, TicketType, WithArticle};
use super::validate::{self, LineBreaks, RESOLUTION_NOTES_MAX};

/// Lowest CSAT rating.
pub const RATING_MIN: i32 = 1;
/// Highest CSAT rating.
pub const RATING_MAX: i32 = 5;

string_enum! {
    /// How a ticket was resolved; reported on by problem and service-level management.
    pub enum ResolutionCode {
        SolvedPermanently => "solved_permanently",
        SolvedWorkaround => "solved_workaround",
        NotSolvedNotReproducible => "not_solved_not_reproducible",
        NotSolvedTooCostly => "not_solved_too_costly",
        ClosedByCaller => "closed_by_caller",
        Duplicate => "duplicate",
        /// A service request was delivered.
        Fulfilled => "fulfilled",
        /// A service request was turned down.
        Rejected => "rejected",
    }
}

/// The wire names of every [`ResolutionCode`].
pub const RESOLUTION_CODES: &[&str] = ResolutionCode::NAMES;

/// A checked resolution: a known code and non-blank notes, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub code: ResolutionCode,
    pub notes: String,
}

/// Why a lifecycle rule refused. The texts are user-facing.
///
/// Most variants are about the ticket's current state (`FAILED_PRECONDITION`); those about a
/// request value name the field in [`LifecycleError::field`] (`INVALID_ARGUMENT`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("the ticket is already {status}")]
    AlreadyInStatus { status: Status },

    #[error(
        "{} ticket cannot move to {to}; allowed: {}",
        WithArticle(.from),
        status_list(allowed_targets(*.from))
    )]
    TransitionNotAllowed { from: Status, to: Status },

    #[error("a resolved ticket goes back to {to} only by being reopened")]
    ReopenRequired { to: Status },

    #[error("a closed ticket is final and cannot move to {to}")]
    ClosedIsFinal { to: Status },

    #[error(
        "unknown resolution code \"{code}\"; expected one of: {}",
        ResolutionCode::NAMES.join(", ")
    )]
    UnknownResolutionCode { code: String },

    #[error("resolution notes are required")]
    ResolutionNotesMissing,

    #[error(
        "resolution notes are {chars} characters long; at most {RESOLUTION_NOTES_MAX} are allowed"
    )]
    ResolutionNotesTooLong { chars: usize },

    #[error(
        "resolution notes must not contain control characters (found {})",
        validate::describe_character(*.position, *.character)
    )]
    ResolutionNotesControlCharacter { position: usize, character: char },

    #[error("closed tickets cannot be reopened")]
    ClosedCannotReopen,

    #[error("only resolved tickets can be reopened; this one is {status}")]
    ReopenNotResolved { status: Status },

    #[error(
        "the reopen window of {} ended at {}",
        describe_duration(*.window),
        .ended_at.to_rfc3339_opts(SecondsFormat::Secs, true)
    )]
    ReopenWindowEnded {
        window: Duration,
        ended_at: DateTime<Utc>,
    },

    #[error("{} ticket cannot be assigned{}", WithArticle(.status), reopen_hint(*.status))]
    NotAssignable { status: Status },

    #[error(
        "the fields of {} ticket cannot be edited{}",
        WithArticle(.status),
        reopen_hint(*.status)
    )]
    NotEditable { status: Status },

    #[error("a closed ticket cannot be commented on")]
    ClosedToComments,

    #[error("a rating must be between {RATING_MIN} and {RATING_MAX}, not {rating}")]
    RatingOutOfRange { rating: i32 },

    #[error("only resolved or closed tickets can be rated; this one is {status}")]
    NotRatable { status: Status },

    #[error("the ticket has already been rated")]
    AlreadyRated,

    #[error(
        "root cause, workaround and known error apply only to problems, not to {}",
        WithArticle(.ticket_type)
    )]
    ProblemFieldsOnly { ticket_type: TicketType },

    #[error("a ticket cannot be linked to itself")]
    SelfLink,

    #[error("{} link must point to a ticket", WithArticle(.kind))]
    LinkNeedsTicket { kind: LinkKind },

    #[error("{} link points outside the ticket service, not to a ticket", WithArticle(.kind))]
    LinkNeedsExternalTarget { kind: LinkKind },

    #[error(
        "{} link must start from {}, not {}",
        WithArticle(.kind),
        WithArticle(.expected),
        WithArticle(.actual)
    )]
    LinkSourceType {
        kind: LinkKind,
        expected: TicketType,
        actual: TicketType,
    },

    #[error(
        "{} link must point to {}, not {}",
        WithArticle(.kind),
        WithArticle(.expected),
        WithArticle(.actual)
    )]
    LinkTargetType {
        kind: LinkKind,
        expected: TicketType,
        actual: TicketType,
    },

    #[error(
        "a ticket can only duplicate one of its own type; {} cannot duplicate {}",
        WithArticle(.from),
        WithArticle(.to)
    )]
    DuplicateTypeMismatch { from: TicketType, to: TicketType },
}

impl LifecycleError {
    /// The request field at fault when the error is about a value the caller sent rather than the
    /// ticket's state; the API reports these as field violations.
    pub const fn field(&self) -> Option<&'static str> {
        match self {
            Self::UnknownResolutionCode { .. } => Some("resolution_code"),
            Self::ResolutionNotesMissing
            | Self::ResolutionNotesTooLong { .. }
            | Self::ResolutionNotesControlCharacter { .. } => Some("resolution_notes"),
            Self::RatingOutOfRange { .. } => Some("rating"),
            Self::SelfLink
            | Self::LinkNeedsTicket { .. }
            | Self::LinkNeedsExternalTarget { .. }
            | Self::LinkTargetType { .. }
            | Self::DuplicateTypeMismatch { .. } => Some("target_id"),
            Self::LinkSourceType { .. } => Some("kind"),
            Self::AlreadyInStatus { .. }
            | Self::TransitionNotAllowed { .. }
            | Self::ReopenRequired { .. }
            | Self::ClosedIsFinal { .. }
            | Self::ClosedCannotReopen
            | Self::ReopenNotResolved { .. }
            | Self::ReopenWindowEnded { .. }
            | Self::NotAssignable { .. }
            | Self::NotEditable { .. }
            | Self::ClosedToComments
            | Self::NotRatable { .. }
            | Self::AlreadyRated
            | Self::ProblemFieldsOnly { .. } => None,
        }
    }
}

/// The statuses a ticket in `from` may move to with an ordinary transition. Reopening a resolved
/// ticket is not one of them: it goes through [`check_reopen`].
pub const fn allowed_targets(from: Status) -> &'static [Status] {
    use Status::{Assigned, Closed, InProgress, New, Pending, Resolved};
    match from {
        New => &[Assigned, InProgress, Pending, Resolved],
        Assigned => &[InProgress, Pending, Resolved],
        InProgress => &[Assigned, Pending, Resolved],
        Pending => &[Assigned, InProgress, Resolved],
        Resolved => &[Closed],
        Closed => &[],
    }
}

/// Whether a ticket may move from `from` to `to`.
///
/// A new ticket may be resolved at once (first-contact resolution) but not closed unresolved; a
/// ticket with a group cannot drop back to `new`. Changing only the pending reason is not a
/// transition and is rejected here as `AlreadyInStatus`.
pub fn check_transition(from: Status, to: Status) -> Result<(), LifecycleError> {
    if from == to {
        return Err(LifecycleError::AlreadyInStatus { status: from });
    }
    if allowed_targets(from).contains(&to) {
        return Ok(());
    }
    Err(match from {
        Status::Closed => LifecycleError::ClosedIsFinal { to },
        Status::Resolved if to.is_open() => LifecycleError::ReopenRequired { to },
        _ => LifecycleError::TransitionNotAllowed { from, to },
    })
}

/// Parses a resolution: `code` must be one of [`RESOLUTION_CODES`]; `notes` must say something,
/// within [`RESOLUTION_NOTES_MAX`] characters, on as many lines as needed. The notes are returned
/// trimmed.
pub fn check_resolution(code: &str, notes: &str) -> Result<Resolution, LifecycleError> {
    let code =
        ResolutionCode::parse(code).ok_or_else(|| LifecycleError::UnknownResolutionCode {
            code: code.to_owned(),
        })?;
    let notes = notes.trim();
    if notes.is_empty() {
        return Err(LifecycleError::ResolutionNotesMissing);
    }
    let chars = notes.chars().count();
    if chars > RESOLUTION_NOTES_MAX {
        return Err(LifecycleError::ResolutionNotesTooLong { chars });
    }
    if let Some((position, character)) =
        validate::first_forbidden_control(notes, LineBreaks::Allowed)
    {
        return Err(LifecycleError::ResolutionNotesControlCharacter {
            position,
            character,
        });
    }
    Ok(Resolution {
        code,
        notes: notes.to_owned(),
    })
}

/// Whether a ticket resolved at `resolved_at` may be reopened `now`: it must still be resolved
/// (not closed), and `now` must be no later than `resolved_at + window`.
pub fn check_reopen(
    status: Status,
    resolved_at: DateTime<Utc>,
    now: DateTime<Utc>,
    window: Duration,
) -> Result<(), LifecycleError> {
    match status {
        Status::Resolved => {}
        Status::Closed => return Err(LifecycleError::ClosedCannotReopen),
        status => return Err(LifecycleError::ReopenNotResolved { status }),
    }
    // A window too large to add is no limit at all.
    match resolved_at.checked_add_signed(window) {
        Some(ended_at) if now > ended_at => {
            Err(LifecycleError::ReopenWindowEnded { window, ended_at })
        }
        _ => Ok(()),
    }
}

/// Where a reopened ticket lands: back with its assignee if it has one, otherwise in its group's
/// queue, otherwise at the start.
pub const fn reopen_target(has_group: bool, has_assignee: bool) -> Status {
    if has_assignee {
        Status::InProgress
    } else if has_group {
        Status::Assigned
    } else {
        Status::New
    }
}

/// Whether a ticket in `status` may be given a group or an assignee: not once it is resolved.
pub fn check_assignable(status: Status) -> Result<(), LifecycleError> {
    if status.is_open() {
        Ok(())
    } else {
        Err(LifecycleError::NotAssignable { status })
    }
}

/// The status after an assignment: a new ticket that now has a group or assignee becomes
/// `assigned`; any other ticket keeps its status. Call [`check_assignable`] first.
pub const fn status_after_assignment(current: Status, has_group_or_assignee: bool) -> Status {
    match current {
        Status::New if has_group_or_assignee => Status::Assigned,
        status => status,
    }
}

/// Whether a ticket's fields (title, impact, category, …) may be edited: only while it is open.
pub fn check_field_edit(status: Status) -> Result<(), LifecycleError> {
    if status.is_open() {
        Ok(())
    } else {
        Err(LifecycleError::NotEditable { status })
    }
}

/// Whether a ticket may be commented on: always, until it is closed — a requester may still
/// answer a resolution.
pub fn check_comment(status: Status) -> Result<(), LifecycleError> {
    if status == Status::Closed {
        Err(LifecycleError::ClosedToComments)
    } else {
        Ok(())
    }
}

/// Whether a customer-satisfaction rating may be given: a value from [`RATING_MIN`] to
/// [`RATING_MAX`], on a resolved or closed ticket, once. The value is checked first, so a bad
/// request is reported as such whatever the ticket's state.
pub fn check_rating(
    status: Status,
    rating: i32,
    already_rated: bool,
) -> Result<(), LifecycleError> {
    if !(RATING_MIN..=RATING_MAX).contains(&rating) {
        return Err(LifecycleError::RatingOutOfRange { rating });
    }
    if status.is_open() {
        return Err(LifecycleError::NotRatable { status });
    }
    if already_rated {
        return Err(LifecycleError::AlreadyRated);
    }
    Ok(())
}

/// Whether problem-management fields (root cause, workaround, known error) may be set on a ticket
/// of this type: only on problems.
pub fn check_problem_fields(ticket_type: TicketType) -> Result<(), LifecycleError> {
    if ticket_type == TicketType::Problem {
        Ok(())
    } else {
        Err(LifecycleError::ProblemFieldsOnly { ticket_type })
    }
}

/// Whether a link of `kind` may go from a ticket of `from_type` to its target.
///
/// `to_type` is the target ticket's type, or `None` when the target is not a ticket (a change or
/// an article); `same_ticket` says the target is the source itself. An incident links to its
/// problem with `problem`, a problem to its incidents with `incident`, and a duplicate names a
/// ticket of its own type.
pub fn check_link(
    from_type: TicketType,
    kind: LinkKind,
    to_type: Option<TicketType>,
    same_ticket: bool,
) -> Result<(), LifecycleError> {
    if same_ticket {
        return Err(LifecycleError::SelfLink);
    }
    let to_type = match (kind.targets_ticket(), to_type) {
        (true, Some(to_type)) => to_type,
        (true, None) => return Err(LifecycleError::LinkNeedsTicket { kind }),
        (false, Some(_)) => return Err(LifecycleError::LinkNeedsExternalTarget { kind }),
        (false, None) => return Ok(()),
    };
    let expected = match kind {
        LinkKind::Problem => Some((TicketType::Incident, TicketType::Problem)),
        LinkKind::Incident => Some((TicketType::Problem, TicketType::Incident)),
        _ => None,
    };
    if let Some((expected_from, expected_to)) = expected {
        if from_type != expected_from {
            return Err(LifecycleError::LinkSourceType {
                kind,
                expected: expected_from,
                actual: from_type,
            });
        }
        if to_type != expected_to {
            return Err(LifecycleError::LinkTargetType {
                kind,
                expected: expected_to,
                actual: to_type,
            });
        }
    }
    if kind == LinkKind::DuplicateOf && from_type != to_type {
        return Err(LifecycleError::DuplicateTypeMismatch {
            from: from_type,
            to: to_type,
        });
    }
    Ok(())
}

/// `assigned, in_progress, pending` — statuses as they appear in error texts.
fn status_list(statuses: &[Status]) -> String {
    statuses
        .iter()
        .map(|status| status.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// "; reopen it first" when reopening would help, for errors about resolved tickets.
const fn reopen_hint(status: Status) -> &'static str {
    match status {
        Status::Resolved => "; reopen it first",
        _ => "",
    }
}

/// A window in the largest whole unit that fits: "7 days", "36 hours", "90 minutes".
fn describe_duration(duration: Duration) -> String {
    let seconds = duration.num_seconds();
    let (amount, unit) = [(86_400, "day"), (3_600, "hour"), (60, "minute")]
        .into_iter()
        .find(|&(size, _)| seconds != 0 && seconds % size == 0)
        .map_or((seconds, "second"), |(size, unit)| (seconds / size, unit));
    if amount == 1 {
        format!("1 {unit}")
    } else {
        format!("{amount} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;
    use Status::{Assigned, Closed, InProgress, New, Pending, Resolved};

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 3, hour, 0, 0)
            .single()
            .expect("a valid time")
    }

    const SEVEN_DAYS: Duration = Duration::days(7);

    // ── transitions ────────────────────────────────────────────────────────────────────────

    #[test]
    fn a_new_ticket_may_be_assigned_started_put_on_hold_or_resolved_at_first_contact() {
        for to in [Assigned, InProgress, Pending, Resolved] {
            assert_eq!(check_transition(New, to), Ok(()), "new → {to}");
        }
    }

    #[test]
    fn closing_a_new_ticket_is_rejected_with_the_allowed_moves() {
        let error = check_transition(New, Closed).expect_err("new → closed");
        assert_eq!(
            error,
            LifecycleError::TransitionNotAllowed {
                from: New,
                to: Closed
            }
        );
        assert_eq!(
            error.to_string(),
            "a new ticket cannot move to closed; allowed: assigned, in_progress, pending, resolved"
        );
    }

    #[test]
    fn an_assigned_ticket_may_be_started_put_on_hold_or_resolved() {
        for to in [InProgress, Pending, Resolved] {
            assert_eq!(check_transition(Assigned, to), Ok(()), "assigned → {to}");
        }
    }

    #[test]
    fn an_assigned_ticket_cannot_go_back_to_new() {
        assert_eq!(
            check_transition(Assigned, New).map_err(|e| e.to_string()),
            Err(
                "an assigned ticket cannot move to new; allowed: in_progress, pending, resolved"
                    .into()
            )
        );
    }

    #[test]
    fn a_ticket_in_progress_may_be_handed_back_put_on_hold_or_resolved() {
        for to in [Assigned, Pending, Resolved] {
            assert_eq!(
                check_transition(InProgress, to),
                Ok(()),
                "in_progress → {to}"
            );
        }
        assert_eq!(
            check_transition(InProgress, Closed).map_err(|e| e.to_string()),
            Err(
                "an in_progress ticket cannot move to closed; allowed: assigned, pending, resolved"
                    .into()
            )
        );
    }

    #[test]
    fn a_pending_ticket_may_resume_go_back_to_the_queue_or_be_resolved() {
        for to in [InProgress, Assigned, Resolved] {
            assert_eq!(check_transition(Pending, to), Ok(()), "pending → {to}");
        }
        assert!(check_transition(Pending, New).is_err());
        assert!(check_transition(Pending, Closed).is_err());
    }

    #[test]
    fn a_resolved_ticket_may_be_closed() {
        assert_eq!(check_transition(Resolved, Closed), Ok(()));
    }

    #[test]
    fn a_resolved_ticket_returns_to_work_only_through_reopen() {
        for to in [New, Assigned, InProgress, Pending] {
            assert_eq!(
                check_transition(Resolved, to),
                Err(LifecycleError::ReopenRequired { to })
            );
        }
        assert_eq!(
            LifecycleError::ReopenRequired { to: InProgress }.to_string(),
            "a resolved ticket goes back to in_progress only by being reopened"
        );
    }

    #[test]
    fn a_closed_ticket_cannot_move_anywhere() {
        assert!(allowed_targets(Closed).is_empty());
        for &to in Status::ALL.iter().filter(|&&s| s != Closed) {
            assert_eq!(
                check_transition(Closed, to),
                Err(LifecycleError::ClosedIsFinal { to })
            );
        }
        assert_eq!(
            LifecycleError::ClosedIsFinal { to: InProgress }.to_string(),
            "a closed ticket is final and cannot move to in_progress"
        );
    }

    #[test]
    fn moving_to_the_same_status_is_rejected() {
        for &status in Status::ALL {
            assert_eq!(
                check_transition(status, status),
                Err(LifecycleError::AlreadyInStatus { status })
            );
        }
        assert_eq!(
            LifecycleError::AlreadyInStatus { status: Pending }.to_string(),
            "the ticket is already pending"
        );
    }

    #[test]
    fn check_transition_agrees_with_allowed_targets_for_every_pair() {
        for &from in Status::ALL {
            for &to in Status::ALL {
                assert_eq!(
                    check_transition(from, to).is_ok(),
                    allowed_targets(from).contains(&to),
                    "{from} → {to}"
                );
            }
        }
    }

    #[test]
    fn no_transition_leads_back_to_new() {
        for &from in Status::ALL {
            assert!(!allowed_targets(from).contains(&New), "{from}");
        }
    }

    #[test]
    fn only_a_resolved_ticket_can_be_closed() {
        let sources: Vec<Status> = Status::ALL
            .iter()
            .copied()
            .filter(|&from| allowed_targets(from).contains(&Closed))
            .collect();
        assert_eq!(sources, [Resolved]);
    }

    // ── resolution ─────────────────────────────────────────────────────────────────────────

    #[test]
    fn every_resolution_code_is_accepted_with_notes() {
        for &code in RESOLUTION_CODES {
            let resolution = check_resolution(code, "replaced the faulty switch").expect("valid");
            assert_eq!(resolution.code.as_str(), code);
        }
        assert_eq!(RESOLUTION_CODES.len(), 8);
    }

    #[test]
    fn resolution_notes_are_trimmed_but_keep_their_lines() {
        let resolution = check_resolution(
            "solved_workaround",
            "  restart the agent\n\tthen log in  \n",
        )
        .expect("valid");
        assert_eq!(
            resolution,
            Resolution {
                code: ResolutionCode::SolvedWorkaround,
                notes: "restart the agent\n\tthen log in".into()
            }
        );
    }

    #[test]
    fn an_unknown_resolution_code_is_rejected_with_the_known_ones() {
        let error = check_resolution("fixed", "notes").expect_err("unknown code");
        assert_eq!(error.field(), Some("resolution_code"));
        assert_eq!(
            error.to_string(),
            "unknown resolution code \"fixed\"; expected one of: solved_permanently, \
             solved_workaround, not_solved_not_reproducible, not_solved_too_costly, \
             closed_by_caller, duplicate, fulfilled, rejected"
        );
    }

    #[test]
    fn resolving_without_notes_is_rejected() {
        for blank in ["", " \n\t "] {
            assert_eq!(
                check_resolution("duplicate", blank),
                Err(LifecycleError::ResolutionNotesMissing)
            );
        }
        assert_eq!(
            LifecycleError::ResolutionNotesMissing.field(),
            Some("resolution_notes")
        );
    }

    #[test]
    fn resolution_notes_may_be_ten_thousand_characters_long_but_no_longer() {
        let longest = "é".repeat(RESOLUTION_NOTES_MAX);
        assert!(check_resolution("fulfilled", &longest).is_ok());
        let error = check_resolution("fulfilled", &format!("{longest}é")).expect_err("too long");
        assert_eq!(
            error,
            LifecycleError::ResolutionNotesTooLong { chars: 10_001 }
        );
        assert_eq!(
            error.to_string(),
            "resolution notes are 10001 characters long; at most 10000 are allowed"
        );
    }

    #[test]
    fn resolution_notes_with_control_characters_are_rejected() {
        let error = check_resolution("fulfilled", "done\u{1b}[31m").expect_err("escape sequence");
        assert_eq!(
            error,
            LifecycleError::ResolutionNotesControlCharacter {
                position: 4,
                character: '\u{1b}'
            }
        );
        assert_eq!(
            error.to_string(),
            "resolution notes must not contain control characters (found U+001B at character 5)"
        );
    }

    // ── reopen ─────────────────────────────────────────────────────────────────────────────

    #[test]
    fn a_resolved_ticket_may_be_reopened_within_the_window() {
        assert_eq!(check_reopen(Resolved, at(9), at(10), SEVEN_DAYS), Ok(()));
    }

    #[test]
    fn the_last_moment_of_the_window_still_counts() {
        assert_eq!(
            check_reopen(Resolved, at(9), at(9) + SEVEN_DAYS, SEVEN_DAYS),
            Ok(())
        );
    }

    #[test]
    fn reopening_after_the_window_is_rejected_with_when_it_ended() {
        let now = at(9) + SEVEN_DAYS + Duration::seconds(1);
        let error = check_reopen(Resolved, at(9), now, SEVEN_DAYS).expect_err("too late");
        assert_eq!(
            error,
            LifecycleError::ReopenWindowEnded {
                window: SEVEN_DAYS,
                ended_at: at(9) + SEVEN_DAYS
            }
        );
        assert_eq!(
            error.to_string(),
            "the reopen window of 7 days ended at 2025-03-10T09:00:00Z"
        );
    }

    #[test]
    fn a_resolution_stamped_after_now_is_still_within_the_window() {
        // Clocks of different replicas disagree a little; that must not lock a requester out.
        assert_eq!(
            check_reopen(Resolved, at(10), at(9), Duration::hours(1)),
            Ok(())
        );
    }

    #[test]
    fn a_window_too_large_to_add_never_ends() {
        assert_eq!(check_reopen(Resolved, at(9), at(23), Duration::MAX), Ok(()));
    }

    #[test]
    fn a_zero_window_allows_no_reopening_later() {
        assert!(check_reopen(Resolved, at(9), at(10), Duration::zero()).is_err());
    }

    #[test]
    fn closed_tickets_cannot_be_reopened() {
        let error = check_reopen(Closed, at(9), at(10), SEVEN_DAYS).expect_err("closed");
        assert_eq!(error.to_string(), "closed tickets cannot be reopened");
    }

    #[test]
    fn open_tickets_cannot_be_reopened() {
        for status in [New, Assigned, InProgress, Pending] {
            assert_eq!(
                check_reopen(status, at(9), at(10), SEVEN_DAYS),
                Err(LifecycleError::ReopenNotResolved { status })
            );
        }
        assert_eq!(
            LifecycleError::ReopenNotResolved { status: Pending }.to_string(),
            "only resolved tickets can be reopened; this one is pending"
        );
    }

    #[test]
    fn a_reopened_ticket_goes_to_its_assignee_then_its_group_then_the_start() {
        assert_eq!(reopen_target(true, true), InProgress);
        assert_eq!(reopen_target(false, true), InProgress);
        assert_eq!(reopen_target(true, false), Assigned);
        assert_eq!(reopen_target(false, false), New);
    }

    #[test]
    fn windows_are_described_in_their_largest_whole_unit() {
        assert_eq!(describe_duration(Duration::days(1)), "1 day");
        assert_eq!(describe_duration(Duration::days(14)), "14 days");
        assert_eq!(describe_duration(Duration::hours(36)), "36 hours");
        assert_eq!(describe_duration(Duration::minutes(90)), "90 minutes");
        assert_eq!(describe_duration(Duration::seconds(61)), "61 seconds");
        assert_eq!(describe_duration(Duration::zero()), "0 seconds");
    }

    // ── assignment, edits, comments ────────────────────────────────────────────────────────

    #[test]
    fn a_new_ticket_becomes_assigned_when_it_gets_a_group_or_assignee() {
        assert_eq!(status_after_assignment(New, true), Assigned);
    }

    #[test]
    fn a_new_ticket_without_a_group_or_assignee_stays_new() {
        assert_eq!(status_after_assignment(New, false), New);
    }

    #[test]
    fn assignment_leaves_other_statuses_alone() {
        for status in [Assigned, InProgress, Pending] {
            assert_eq!(status_after_assignment(status, true), status);
            assert_eq!(status_after_assignment(status, false), status);
        }
    }

    #[test]
    fn open_tickets_can_be_assigned() {
        for status in [New, Assigned, InProgress, Pending] {
            assert_eq!(check_assignable(status), Ok(()));
        }
    }

    #[test]
    fn assigning_a_resolved_or_closed_ticket_is_rejected() {
        assert_eq!(
            check_assignable(Resolved).map_err(|e| e.to_string()),
            Err("a resolved ticket cannot be assigned; reopen it first".into())
        );
        assert_eq!(
            check_assignable(Closed).map_err(|e| e.to_string()),
            Err("a closed ticket cannot be assigned".into())
        );
    }

    #[test]
    fn fields_of_open_tickets_can_be_edited() {
        for status in [New, Assigned, InProgress, Pending] {
            assert_eq!(check_field_edit(status), Ok(()));
        }
    }

    #[test]
    fn editing_fields_of_a_resolved_or_closed_ticket_is_rejected() {
        assert_eq!(
            check_field_edit(Resolved).map_err(|e| e.to_string()),
            Err("the fields of a resolved ticket cannot be edited; reopen it first".into())
        );
        assert_eq!(
            check_field_edit(Closed).map_err(|e| e.to_string()),
            Err("the fields of a closed ticket cannot be edited".into())
        );
    }

    #[test]
    fn comments_are_allowed_until_the_ticket_is_closed() {
        for status in [New, Assigned, InProgress, Pending, Resolved] {
            assert_eq!(check_comment(status), Ok(()), "{status}");
        }
        assert_eq!(check_comment(Closed), Err(LifecycleError::ClosedToComments));
    }

    // ── rating ─────────────────────────────────────────────────────────────────────────────

    #[test]
    fn resolved_and_closed_tickets_can_be_rated_once_from_one_to_five() {
        for status in [Resolved, Closed] {
            for rating in RATING_MIN..=RATING_MAX {
                assert_eq!(check_rating(status, rating, false), Ok(()));
            }
        }
    }

    #[test]
    fn rating_an_open_ticket_is_rejected() {
        assert_eq!(
            check_rating(InProgress, 5, false).map_err(|e| e.to_string()),
            Err("only resolved or closed tickets can be rated; this one is in_progress".into())
        );
    }

    #[test]
    fn rating_twice_is_rejected() {
        assert_eq!(
            check_rating(Closed, 4, true),
            Err(LifecycleError::AlreadyRated)
        );
    }

    #[test]
    fn ratings_outside_one_to_five_are_rejected_before_the_state_is_considered() {
        for rating in [0, 6, -1, i32::MAX] {
            let error = check_rating(New, rating, true).expect_err("out of range");
            assert_eq!(error, LifecycleError::RatingOutOfRange { rating });
            assert_eq!(error.field(), Some("rating"));
        }
        assert_eq!(
            LifecycleError::RatingOutOfRange { rating: 6 }.to_string(),
            "a rating must be between 1 and 5, not 6"
        );
    }

    // ── problems and links ─────────────────────────────────────────────────────────────────

    #[test]
    fn problem_fields_are_allowed_on_problems() {
        assert_eq!(check_problem_fields(TicketType::Problem), Ok(()));
    }

    #[test]
    fn problem_fields_on_incidents_and_requests_are_rejected() {
        assert_eq!(
            check_problem_fields(TicketType::Incident).map_err(|e| e.to_string()),
            Err(
                "root cause, workaround and known error apply only to problems, not to an incident"
                    .into()
            )
        );
        assert!(check_problem_fields(TicketType::ServiceRequest).is_err());
    }

    #[test]
    fn linking_a_ticket_to_itself_is_rejected() {
        for &kind in LinkKind::ALL {
            let to_type = kind.targets_ticket().then_some(TicketType::Incident);
            assert_eq!(
                check_link(TicketType::Incident, kind, to_type, true),
                Err(LifecycleError::SelfLink)
            );
        }
    }

    #[test]
    fn an_incident_links_to_its_problem() {
        assert_eq!(
            check_link(
                TicketType::Incident,
                LinkKind::Problem,
                Some(TicketType::Problem),
                false
            ),
            Ok(())
        );
    }

    #[test]
    fn a_problem_link_from_anything_but_an_incident_is_rejected() {
        let error = check_link(
            TicketType::ServiceRequest,
            LinkKind::Problem,
            Some(TicketType::Problem),
            false,
        )
        .expect_err("wrong source");
        assert_eq!(
            error.to_string(),
            "a problem link must start from an incident, not a service_request"
        );
        assert_eq!(error.field(), Some("kind"));
    }

    #[test]
    fn a_problem_link_to_anything_but_a_problem_is_rejected() {
        let error = check_link(
            TicketType::Incident,
            LinkKind::Problem,
            Some(TicketType::Incident),
            false,
        )
        .expect_err("wrong target");
        assert_eq!(
            error.to_string(),
            "a problem link must point to a problem, not an incident"
        );
        assert_eq!(error.field(), Some("target_id"));
    }

    #[test]
    fn a_problem_links_to_its_incidents() {
        assert_eq!(
            check_link(
                TicketType::Problem,
                LinkKind::Incident,
                Some(TicketType::Incident),
                false
            ),
            Ok(())
        );
        assert_eq!(
            check_link(
                TicketType::Incident,
                LinkKind::Incident,
                Some(TicketType::Incident),
                false
            )
            .map_err(|e| e.to_string()),
            Err("an incident link must start from a problem, not an incident".into())
        );
        assert!(
            check_link(
                TicketType::Problem,
                LinkKind::Incident,
                Some(TicketType::Problem),
                false
            )
            .is_err()
        );
    }

    #[test]
    fn a_duplicate_must_be_of_the_same_type() {
        assert_eq!(
            check_link(
                TicketType::Incident,
                LinkKind::DuplicateOf,
                Some(TicketType::Incident),
                false
            ),
            Ok(())
        );
        let error = check_link(
            TicketType::Incident,
            LinkKind::DuplicateOf,
            Some(TicketType::ServiceRequest),
            false,
        )
        .expect_err("different types");
        assert_eq!(
            error.to_string(),
            "a ticket can only duplicate one of its own type; \
             an incident cannot duplicate a service_request"
        );
    }

    #[test]
    fn parent_child_and_related_links_join_any_types() {
        for kind in [LinkKind::Parent, LinkKind::Child, LinkKind::Related] {
            for &from in TicketType::ALL {
                for &to in TicketType::ALL {
                    assert_eq!(
                        check_link(from, kind, Some(to), false),
                        Ok(()),
                        "{from} {kind} {to}"
                    );
                }
            }
        }
    }

    #[test]
    fn changes_and_articles_are_linked_by_external_target() {
        for kind in [LinkKind::CausedByChange, LinkKind::KnowledgeArticle] {
            assert_eq!(check_link(TicketType::Incident, kind, None, false), Ok(()));
            assert_eq!(
                check_link(TicketType::Incident, kind, Some(TicketType::Problem), false),
                Err(LifecycleError::LinkNeedsExternalTarget { kind })
            );
        }
        assert_eq!(
            LifecycleError::LinkNeedsExternalTarget {
                kind: LinkKind::CausedByChange
            }
            .to_string(),
            "a caused_by_change link points outside the ticket service, not to a ticket"
        );
    }

    #[test]
    fn ticket_links_without_a_target_ticket_are_rejected() {
        assert_eq!(
            check_link(TicketType::Incident, LinkKind::Related, None, false)
                .map_err(|e| e.to_string()),
            Err("a related link must point to a ticket".into())
        );
    }

    #[test]
    fn state_errors_name_no_field() {
        for error in [
            LifecycleError::TransitionNotAllowed {
                from: New,
                to: Closed,
            },
            LifecycleError::ClosedCannotReopen,
            LifecycleError::AlreadyRated,
            LifecycleError::ProblemFieldsOnly {
                ticket_type: TicketType::Incident,
            },
        ] {
            assert_eq!(error.field(), None, "{error}");
        }
    }

    // ── properties ─────────────────────────────────────────────────────────────────────────

    fn any_status() -> impl Strategy<Value = Status> {
        prop::sample::select(Status::ALL)
    }

    proptest! {
        #[test]
        fn every_walk_of_allowed_moves_stays_closed_once_closed(
            choices in prop::collection::vec(any::<prop::sample::Index>(), 0..30),
        ) {
            let mut status = New;
            for choice in choices {
                let targets = allowed_targets(status);
                if targets.is_empty() {
                    prop_assert_eq!(status, Closed);
                    break;
                }
                let next = targets[choice.index(targets.len())];
                prop_assert_eq!(check_transition(status, next), Ok(()));
                status = next;
            }
        }

        #[test]
        fn every_rejected_transition_explains_itself(from in any_status(), to in any_status()) {
            if let Err(error) = check_transition(from, to) {
                let message = error.to_string();
                prop_assert!(message.contains(to.as_str()), "{}", message);
                prop_assert_eq!(error.field(), None);
            }
        }

        #[test]
        fn reopening_is_allowed_exactly_up_to_the_end_of_the_window(
            window_minutes in 0_i64..=60 * 24 * 30,
            elapsed_minutes in -60_i64..=60 * 24 * 31,
        ) {
            let resolved_at = at(9);
            let window = Duration::minutes(window_minutes);
            let now = resolved_at + Duration::minutes(elapsed_minutes);
            prop_assert_eq!(
                check_reopen(Resolved, resolved_at, now, window).is_ok(),
                elapsed_minutes <= window_minutes
            );
        }

        #[test]
        fn a_rating_is_accepted_exactly_when_all_three_rules_hold(
            status in any_status(),
            rating in -10_i32..=10,
            already_rated in any::<bool>(),
        ) {
            let expected = (1..=5).contains(&rating) && !status.is_open() && !already_rated;
            prop_assert_eq!(check_rating(status, rating, already_rated).is_ok(), expected);
        }

        #[test]
        fn a_reopened_ticket_always_lands_in_an_open_status_it_can_leave(
            has_group in any::<bool>(),
            has_assignee in any::<bool>(),
        ) {
            let target = reopen_target(has_group, has_assignee);
            prop_assert!(target.is_open());
            prop_assert!(!allowed_targets(target).is_empty());
        }
    }
}
