//! The value types a ticket is made of: its type, status, priority inputs and the kinds of links
//! it can have.
//!
//! Each is a closed enum with a snake_case wire name (`as_str` / `parse`), because the same names
//! are database column values, event subject parts and JSON; see [`super::string_enum`].

use std::fmt;

use super::string_enum::string_enum;

string_enum! {
    /// The three ITIL 4 practices a ticket belongs to.
    pub enum TicketType {
        /// An unplanned interruption or reduction in quality of a service.
        Incident => "incident",
        /// A user's request for something that is part of normal service delivery.
        ServiceRequest => "service_request",
        /// The cause, or potential cause, of one or more incidents.
        Problem => "problem",
    }
}

impl TicketType {
    /// The prefix of the human ticket number: `INC`, `REQ` or `PRB`.
    pub const fn number_prefix(self) -> &'static str {
        match self {
            Self::Incident => "INC",
            Self::ServiceRequest => "REQ",
            Self::Problem => "PRB",
        }
    }

    /// The human number for a per-tenant sequence value: `INC-000123`, zero-padded to six digits
    /// and longer when the sequence outgrows them. Sequences start at 1.
    pub fn format_number(self, seq: i64) -> String {
        format!("{}-{seq:06}", self.number_prefix())
    }

    /// The type and sequence of a human number, accepting exactly what [`Self::format_number`]
    /// produces (so `INC-123`, `INC-+00123` and `inc-000123` are not numbers).
    pub fn parse_number(number: &str) -> Option<(Self, i64)> {
        let (prefix, digits) = number.split_once('-')?;
        let ticket_type = Self::ALL
            .iter()
            .copied()
            .find(|ticket_type| ticket_type.number_prefix() == prefix)?;
        // Digits only: `i64::from_str` would also take a sign.
        if !digits.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        let seq = digits.parse().ok()?;
        // Formatting back rejects too few digits and extra leading zeros.
        (ticket_type.format_number(seq) == number).then_some((ticket_type, seq))
    }
}

string_enum! {
    /// Where a ticket is in its lifecycle; the moves between them live in
    /// [`super::lifecycle`].
    pub enum Status {
        /// Logged, not yet with a group or an agent.
        New => "new",
        /// With a group or an agent, not yet being worked.
        Assigned => "assigned",
        /// Being worked.
        InProgress => "in_progress",
        /// Waiting on someone outside the desk; see [`PendingReason`].
        Pending => "pending",
        /// A resolution was given; the requester may accept it or reopen the ticket.
        Resolved => "resolved",
        /// Final.
        Closed => "closed",
    }
}

impl Status {
    /// Whether the ticket still needs work: anything but resolved or closed.
    pub const fn is_open(self) -> bool {
        !matches!(self, Self::Resolved | Self::Closed)
    }
}

string_enum! {
    /// Who a pending ticket waits on; SLA clocks may pause for some of these.
    pub enum PendingReason {
        Customer => "customer",
        Vendor => "vendor",
        /// A change must be implemented first.
        Change => "change",
    }
}

string_enum! {
    /// How the ticket reached the desk.
    pub enum Channel {
        Portal => "portal",
        Email => "email",
        Phone => "phone",
        Chat => "chat",
        Mobile => "mobile",
        Api => "api",
        /// Opened by a monitoring tool rather than a person.
        Monitoring => "monitoring",
    }
}

string_enum! {
    /// A three-step scale, used for both impact and urgency.
    pub enum Level {
        High => "high",
        Medium => "medium",
        Low => "low",
    }
}

impl Level {
    /// 1 for high, 2 for medium, 3 for low: smaller is more severe.
    pub const fn rank(self) -> u8 {
        match self {
            Self::High => 1,
            Self::Medium => 2,
            Self::Low => 3,
        }
    }
}

string_enum! {
    /// How soon the desk must act, derived from impact and urgency by a
    /// [`super::priority::PriorityMatrix`]. `P1` is the most pressing.
    pub enum Priority {
        P1 => "p1",
        P2 => "p2",
        P3 => "p3",
        P4 => "p4",
        P5 => "p5",
    }
}

impl Priority {
    /// 1 for `P1` through 5 for `P5`: smaller is more pressing. Compare priorities by rank; the
    /// enum deliberately has no `Ord`, because "P1 < P2" reads backwards.
    pub const fn rank(self) -> u8 {
        match self {
            Self::P1 => 1,
            Self::P2 => 2,
            Self::P3 => 3,
            Self::P4 => 4,
            Self::P5 => 5,
        }
    }

    /// The name people use for the priority.
    pub const fn label(self) -> &'static str {
        match self {
            Self::P1 => "critical",
            Self::P2 => "high",
            Self::P3 => "moderate",
            Self::P4 => "low",
            Self::P5 => "planning",
        }
    }
}

string_enum! {
    /// The support line working the ticket; escalation moves it up.
    pub enum SupportTier {
        Tier1 => "tier1",
        Tier2 => "tier2",
        Tier3 => "tier3",
    }
}

impl SupportTier {
    /// 1 for first line through 3 for third line.
    pub const fn rank(self) -> u8 {
        match self {
            Self::Tier1 => 1,
            Self::Tier2 => 2,
            Self::Tier3 => 3,
        }
    }
}

string_enum! {
    /// Who may see a comment: everyone who can read the ticket, or staff only.
    pub enum Visibility {
        Public => "public",
        Internal => "internal",
    }
}

string_enum! {
    /// How a ticket relates to something else. Read a link as "this ticket has a `kind`":
    /// an incident with a `problem` link points at the problem that causes it.
    pub enum LinkKind {
        /// The target is this ticket's parent (e.g. the major incident).
        Parent => "parent",
        /// The target is one of this ticket's children.
        Child => "child",
        /// This ticket repeats the target, which carries on.
        DuplicateOf => "duplicate_of",
        /// The target is a change (by id or `CHG-` number) that caused this ticket.
        CausedByChange => "caused_by_change",
        /// From an incident: the target is the problem behind it.
        Problem => "problem",
        /// From a problem: the target is one of the incidents it causes.
        Incident => "incident",
        /// The target is a knowledge article (by id) that helps with this ticket.
        KnowledgeArticle => "knowledge_article",
        /// A loose, symmetric relation.
        Related => "related",
    }
}

impl LinkKind {
    /// The kind the target holds back towards the source, for links that are kept on both
    /// tickets. `None` for one-way links and for links whose target lives outside this service.
    pub const fn inverse(self) -> Option<Self> {
        match self {
            Self::Parent => Some(Self::Child),
            Self::Child => Some(Self::Parent),
            Self::Problem => Some(Self::Incident),
            Self::Incident => Some(Self::Problem),
            Self::Related => Some(Self::Related),
            Self::DuplicateOf | Self::CausedByChange | Self::KnowledgeArticle => None,
        }
    }

    /// Whether the target is a ticket of this service; otherwise it is an external id or number.
    pub const fn targets_ticket(self) -> bool {
        !matches!(self, Self::CausedByChange | Self::KnowledgeArticle)
    }
}

/// Writes a value with its indefinite article — "an in_progress", "a problem" — for error texts.
pub(crate) struct WithArticle<T>(pub T);

impl<T: fmt::Display> fmt::Display for WithArticle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = self.0.to_string();
        let article = match word.chars().next() {
            Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
            _ => "a",
        };
        write!(f, "{article} {word}")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    /// Checks the contract every string enum shares, for one enum.
    fn assert_wire_names_round_trip<T>(all: &[T], names: &[&str], as_str: fn(T) -> &'static str)
    where
        T: Copy + PartialEq + fmt::Debug + fmt::Display + serde::Serialize,
        T: serde::de::DeserializeOwned,
    {
        assert_eq!(all.len(), names.len());
        let unique: HashSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len(), "wire names must be distinct");
        for (&value, &name) in all.iter().zip(names) {
            assert_eq!(as_str(value), name);
            assert_eq!(value.to_string(), name);
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name} is not snake_case"
            );
            let json = serde_json::to_string(&value).expect("serialize");
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(
                serde_json::from_str::<T>(&json).expect("deserialize"),
                value
            );
        }
    }

    #[test]
    fn every_enum_round_trips_through_its_wire_name() {
        assert_wire_names_round_trip(TicketType::ALL, TicketType::NAMES, TicketType::as_str);
        assert_wire_names_round_trip(Status::ALL, Status::NAMES, Status::as_str);
        assert_wire_names_round_trip(
            PendingReason::ALL,
            PendingReason::NAMES,
            PendingReason::as_str,
        );
        assert_wire_names_round_trip(Channel::ALL, Channel::NAMES, Channel::as_str);
        assert_wire_names_round_trip(Level::ALL, Level::NAMES, Level::as_str);
        assert_wire_names_round_trip(Priority::ALL, Priority::NAMES, Priority::as_str);
        assert_wire_names_round_trip(SupportTier::ALL, SupportTier::NAMES, SupportTier::as_str);
        assert_wire_names_round_trip(Visibility::ALL, Visibility::NAMES, Visibility::as_str);
        assert_wire_names_round_trip(LinkKind::ALL, LinkKind::NAMES, LinkKind::as_str);
    }

    #[test]
    fn parsing_finds_each_value_by_its_wire_name() {
        for &status in Status::ALL {
            assert_eq!(Status::parse(status.as_str()), Some(status));
        }
        assert_eq!(
            TicketType::parse("service_request"),
            Some(TicketType::ServiceRequest)
        );
        assert_eq!(LinkKind::parse("duplicate_of"), Some(LinkKind::DuplicateOf));
        assert_eq!(SupportTier::parse("tier2"), Some(SupportTier::Tier2));
    }

    #[test]
    fn parsing_is_exact_and_case_sensitive() {
        assert_eq!(Status::parse("In_Progress"), None);
        assert_eq!(Status::parse("inprogress"), None);
        assert_eq!(Status::parse(" new"), None);
        assert_eq!(Priority::parse("P1"), None);
        assert_eq!(Level::parse(""), None);
    }

    #[test]
    fn deserializing_an_unknown_name_fails_and_lists_the_known_ones() {
        let error = serde_json::from_str::<Status>("\"open\"").expect_err("unknown status");
        let message = error.to_string();
        assert!(message.contains("open"), "{message}");
        assert!(message.contains("in_progress"), "{message}");
    }

    #[test]
    fn display_honours_width_and_alignment() {
        assert_eq!(format!("{:<8}|", Status::New), "new     |");
    }

    #[test]
    fn ticket_numbers_are_prefixed_and_padded_to_six_digits() {
        assert_eq!(TicketType::Incident.format_number(123), "INC-000123");
        assert_eq!(TicketType::ServiceRequest.format_number(1), "REQ-000001");
        assert_eq!(TicketType::Problem.format_number(999_999), "PRB-999999");
    }

    #[test]
    fn ticket_numbers_grow_past_six_digits_when_needed() {
        assert_eq!(TicketType::Incident.format_number(1_234_567), "INC-1234567");
    }

    #[test]
    fn parsing_a_ticket_number_returns_its_type_and_sequence() {
        assert_eq!(
            TicketType::parse_number("INC-000123"),
            Some((TicketType::Incident, 123))
        );
        assert_eq!(
            TicketType::parse_number("REQ-1234567"),
            Some((TicketType::ServiceRequest, 1_234_567))
        );
        assert_eq!(
            TicketType::parse_number("PRB-000001"),
            Some((TicketType::Problem, 1))
        );
    }

    #[test]
    fn parsing_rejects_numbers_that_are_not_in_canonical_form() {
        for number in [
            "INC-123",
            "inc-000123",
            "INC000123",
            "INC-+00123",
            "INC--00123",
            "INC-00012a",
            "INC-0001234",
            "CHG-000123",
            "INC-",
            "",
            "INC-000123 ",
        ] {
            assert_eq!(TicketType::parse_number(number), None, "{number:?}");
        }
    }

    #[test]
    fn only_resolved_and_closed_tickets_are_not_open() {
        let open: Vec<Status> = Status::ALL
            .iter()
            .copied()
            .filter(|s| s.is_open())
            .collect();
        assert_eq!(
            open,
            [
                Status::New,
                Status::Assigned,
                Status::InProgress,
                Status::Pending
            ]
        );
    }

    #[test]
    fn levels_rank_from_high_to_low() {
        let ranks: Vec<u8> = Level::ALL.iter().map(|level| level.rank()).collect();
        assert_eq!(ranks, [1, 2, 3]);
    }

    #[test]
    fn priorities_rank_from_one_to_five_with_their_labels() {
        let ranked: Vec<(u8, &str)> = Priority::ALL
            .iter()
            .map(|p| (p.rank(), p.label()))
            .collect();
        assert_eq!(
            ranked,
            [
                (1, "critical"),
                (2, "high"),
                (3, "moderate"),
                (4, "low"),
                (5, "planning")
            ]
        );
    }

    #[test]
    fn support_tiers_rank_from_first_to_third_line() {
        let ranks: Vec<u8> = SupportTier::ALL.iter().map(|tier| tier.rank()).collect();
        assert_eq!(ranks, [1, 2, 3]);
    }

    #[test]
    fn two_way_links_have_inverses_and_the_rest_do_not() {
        use LinkKind::{
            CausedByChange, Child, DuplicateOf, Incident, KnowledgeArticle, Parent, Problem,
            Related,
        };
        assert_eq!(Parent.inverse(), Some(Child));
        assert_eq!(Child.inverse(), Some(Parent));
        assert_eq!(Problem.inverse(), Some(Incident));
        assert_eq!(Incident.inverse(), Some(Problem));
        assert_eq!(Related.inverse(), Some(Related));
        assert_eq!(DuplicateOf.inverse(), None);
        assert_eq!(CausedByChange.inverse(), None);
        assert_eq!(KnowledgeArticle.inverse(), None);
    }

    #[test]
    fn inverting_a_link_twice_gives_it_back() {
        for &kind in LinkKind::ALL {
            if let Some(inverse) = kind.inverse() {
                assert_eq!(inverse.inverse(), Some(kind), "{kind}");
            }
        }
    }

    #[test]
    fn only_changes_and_articles_are_targets_outside_the_service() {
        let external: Vec<LinkKind> = LinkKind::ALL
            .iter()
            .copied()
            .filter(|kind| !kind.targets_ticket())
            .collect();
        assert_eq!(
            external,
            [LinkKind::CausedByChange, LinkKind::KnowledgeArticle]
        );
    }

    #[test]
    fn links_with_an_inverse_always_target_a_ticket() {
        for &kind in LinkKind::ALL {
            if kind.inverse().is_some() {
                assert!(kind.targets_ticket(), "{kind}");
            }
        }
    }

    #[test]
    fn articles_follow_the_first_letter() {
        assert_eq!(
            WithArticle(Status::InProgress).to_string(),
            "an in_progress"
        );
        assert_eq!(WithArticle(Status::Assigned).to_string(), "an assigned");
        assert_eq!(WithArticle(Status::New).to_string(), "a new");
        assert_eq!(WithArticle(TicketType::Problem).to_string(), "a problem");
        assert_eq!(WithArticle(TicketType::Incident).to_string(), "an incident");
    }

    proptest! {
        #[test]
        fn every_formatted_number_parses_back(
            index in 0..TicketType::ALL.len(),
            seq in 0..=i64::MAX,
        ) {
            let ticket_type = TicketType::ALL[index];
            let number = ticket_type.format_number(seq);
            prop_assert!(number.len() >= ticket_type.number_prefix().len() + "-000000".len());
            prop_assert_eq!(TicketType::parse_number(&number), Some((ticket_type, seq)));
        }

        #[test]
        fn parsing_arbitrary_text_only_accepts_canonical_numbers(text in ".{0,16}") {
            if let Some((ticket_type, seq)) = TicketType::parse_number(&text) {
                prop_assert_eq!(ticket_type.format_number(seq), text);
            }
        }
    }
}
