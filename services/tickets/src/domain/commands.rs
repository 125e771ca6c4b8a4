//! The values every typed command is made of: how a caller names a ticket, the version they read,
//! a title. Requests are parsed into these once, at the edge (`api/`), so the rules further in
//! never meet a blank title, a version of 0 or a ticket id of another region.
//!
//! The commands themselves sit next to the rules that apply them: [`super::creation`],
//! [`super::edits`], [`super::moves`] and [`super::conversation`].

use desk_kit::ids;
use uuid::Uuid;

use super::ticket::TicketType;
use super::validate::{self, Violations};

/// How a caller names a ticket: its public id (`emea-<uuid>`) or its number (`INC-000123`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketReference {
    /// A public id of this region.
    Id(Uuid),
    /// A number in exactly the form the service hands out.
    Number(String),
    /// An id of another region, or text that is neither an id nor a number. No ticket of this
    /// region answers to it, and the caller is told `NOT_FOUND` exactly as for a missing one:
    /// another region's ticket lives in another database, and the gateway routes such calls there.
    NoTicketHere,
}

impl TicketReference {
    /// Reads what a caller sent as a ticket id, for the service of `region`. Never fails: what
    /// names no ticket here is [`TicketReference::NoTicketHere`].
    pub fn parse(text: &str, region: &str) -> TicketReference {
        if let Some(parsed) = ids::parse_id(text) {
            return if parsed.region == region {
                TicketReference::Id(parsed.uuid)
            } else {
                TicketReference::NoTicketHere
            };
        }
        if TicketType::parse_number(text).is_some() {
            return TicketReference::Number(text.to_owned());
        }
        TicketReference::NoTicketHere
    }
}

/// The version of a ticket the caller read, for optimistic concurrency: at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedVersion(i64);

impl ExpectedVersion {
    /// The version, or a violation on `expected_version` when it is missing (0) or negative.
    pub fn parse(value: i64, violations: &mut Violations) -> Option<ExpectedVersion> {
        if value < 1 {
            violations.push(
                "expected_version",
                "required: the version of the ticket you read",
            );
            return None;
        }
        Some(ExpectedVersion(value))
    }

    pub const fn get(self) -> i64 {
        self.0
    }
}

/// A ticket title: one line of visible text, at most [`validate::TITLE_MAX`] characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    /// The trimmed title, or the violations of `field` that keep `value` from being one.
    pub fn parse(field: &str, value: &str, violations: &mut Violations) -> Option<Title> {
        let before = violations.len();
        validate::title(field, value, violations);
        (violations.len() == before).then(|| Title(value.trim().to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A new value for an optional field: set it, or clear it (the caller sent blank text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClearableEdit<T> {
    Set(T),
    Clear,
}

impl<T> ClearableEdit<T> {
    /// The field's value after the edit.
    pub fn into_option(self) -> Option<T> {
        match self {
            ClearableEdit::Set(value) => Some(value),
            ClearableEdit::Clear => None,
        }
    }
}

/// `value` when it holds more than whitespace: the wire sends "no value" as an empty string.
pub fn non_blank(value: &str) -> Option<&str> {
    if value.trim().is_empty() {
        None
    } else {
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::validate::TITLE_MAX;

    const UUID: &str = "0195c1f0-7a4e-7c3b-9a55-3f1d2e4b5c6d";

    #[test]
    fn a_public_id_of_this_region_names_a_ticket_by_its_uuid() {
        assert_eq!(
            TicketReference::parse(&format!("emea-{UUID}"), "emea"),
            TicketReference::Id(Uuid::parse_str(UUID).expect("a uuid"))
        );
    }

    #[test]
    fn a_public_id_of_another_region_names_no_ticket_here() {
        assert_eq!(
            TicketReference::parse(&format!("apac-{UUID}"), "emea"),
            TicketReference::NoTicketHere
        );
    }

    #[test]
    fn a_number_names_a_ticket_only_in_the_exact_form_the_service_hands_out() {
        assert_eq!(
            TicketReference::parse("INC-000123", "emea"),
            TicketReference::Number("INC-000123".into())
        );
        for not_a_number in ["INC-123", "inc-000123", "", "emea-not-a-uuid", "42"] {
            assert_eq!(
                TicketReference::parse(not_a_number, "emea"),
                TicketReference::NoTicketHere,
                "{not_a_number:?}"
            );
        }
    }

    #[test]
    fn an_expected_version_is_at_least_one() {
        let mut violations = Violations::new();
        assert_eq!(
            ExpectedVersion::parse(3, &mut violations).map(ExpectedVersion::get),
            Some(3)
        );
        assert!(violations.is_empty());
        for missing in [0, -1] {
            let mut violations = Violations::new();
            assert_eq!(ExpectedVersion::parse(missing, &mut violations), None);
            let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
            assert_eq!(fields, ["expected_version"]);
        }
    }

    #[test]
    fn a_title_is_kept_trimmed() {
        let mut violations = Violations::new();
        let title = Title::parse("title", "  VPN drops every hour ", &mut violations);
        assert_eq!(
            title.as_ref().map(Title::as_str),
            Some("VPN drops every hour")
        );
        assert!(violations.is_empty());
    }

    #[test]
    fn a_blank_or_too_long_title_is_no_title() {
        for bad in ["   ".to_owned(), "x".repeat(TITLE_MAX + 1)] {
            let mut violations = Violations::new();
            assert_eq!(Title::parse("title", &bad, &mut violations), None);
            assert_eq!(violations.len(), 1, "{bad:?}");
        }
    }

    #[test]
    fn blank_text_is_no_value() {
        assert_eq!(non_blank(""), None);
        assert_eq!(non_blank(" \t"), None);
        assert_eq!(non_blank(" a "), Some(" a "));
    }

    #[test]
    fn a_clearable_edit_is_the_value_after_it() {
        assert_eq!(ClearableEdit::Set(5).into_option(), Some(5));
        assert_eq!(ClearableEdit::<i32>::Clear.into_option(), None);
    }
}
