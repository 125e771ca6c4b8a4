//! Rules: which events notify whom on which channels. A rule names event types (any service's
//! `ce-type`), conditions on the event's variables, recipient roles and channels; every tenant
//! starts with [`default_rules`], which work without any set-up.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a notification goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    InApp,
    Sms,
    Webhook,
}

impl Channel {
    pub const ALL: [Channel; 4] = [
        Channel::Email,
        Channel::InApp,
        Channel::Sms,
        Channel::Webhook,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::InApp => "in_app",
            Channel::Sms => "sms",
            Channel::Webhook => "webhook",
        }
    }

    pub fn parse(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Channels that reach a person (webhooks reach endpoints).
    pub fn reaches_people(self) -> bool {
        self != Channel::Webhook
    }
}

/// Who a rule reaches; resolved from the event and the directory's projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipientRole {
    Requester,
    Assignee,
    AssignmentGroup,
    Watchers,
    GroupManager,
    Approvers,
    CabMembers,
    Subscribers,
}

impl RecipientRole {
    pub const ALL: [RecipientRole; 8] = [
        RecipientRole::Requester,
        RecipientRole::Assignee,
        RecipientRole::AssignmentGroup,
        RecipientRole::Watchers,
        RecipientRole::GroupManager,
        RecipientRole::Approvers,
        RecipientRole::CabMembers,
        RecipientRole::Subscribers,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecipientRole::Requester => "requester",
            RecipientRole::Assignee => "assignee",
            RecipientRole::AssignmentGroup => "assignment_group",
            RecipientRole::Watchers => "watchers",
            RecipientRole::GroupManager => "group_manager",
            RecipientRole::Approvers => "approvers",
            RecipientRole::CabMembers => "cab_members",
            RecipientRole::Subscribers => "subscribers",
        }
    }

    pub fn parse(name: &str) -> Option<RecipientRole> {
        RecipientRole::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    Equals,
    NotEquals,
    LessOrEqual,
    GreaterOrEqual,
}

impl Operator {
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Equals => "eq",
            Operator::NotEquals => "ne",
            Operator::LessOrEqual => "le",
            Operator::GreaterOrEqual => "ge",
        }
    }

    pub fn parse(name: &str) -> Option<Operator> {
        [
            Operator::Equals,
            Operator::NotEquals,
            Operator::LessOrEqual,
            Operator::GreaterOrEqual,
        ]
        .into_iter()
        .find(|o| o.as_str() == name)
    }
}

/// A test on one variable of the event, e.g. `ticket.priority le 2`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    /// Dotted path into the event's variables.
    pub field: String,
    pub operator: Operator,
    pub value: String,
}

impl Condition {
    /// Whether the event's variables satisfy the condition. A missing field satisfies only
    /// `NotEquals`; ordering compares numbers (and is false when either side is not one).
    pub fn holds(&self, variables: &Value) -> bool {
        let found = self
            .field
            .split('.')
            .try_fold(variables, |value, key| value.get(key));
        let Some(found) = found else {
            return self.operator == Operator::NotEquals;
        };
        let text = match found {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        match self.operator {
            Operator::Equals => text == self.value,
            Operator::NotEquals => text != self.value,
            Operator::LessOrEqual | Operator::GreaterOrEqual => {
                match (text.parse::<f64>(), self.value.parse::<f64>()) {
                    (Ok(a), Ok(b)) if self.operator == Operator::LessOrEqual => a <= b,
                    (Ok(a), Ok(b)) => a >= b,
                    _ => false,
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub name: String,
    pub event_types: Vec<String>,
    pub conditions: Vec<Condition>,
    pub recipients: Vec<RecipientRole>,
    pub subscriber_ids: Vec<String>,
    pub channels: Vec<Channel>,
    /// Urgent notifications pass quiet hours and digests.
    pub urgent: bool,
    pub enabled: bool,
    pub built_in: bool,
}

impl Rule {
    pub fn matches(&self, event_type: &str, variables: &Value) -> bool {
        self.enabled
            && self.event_types.iter().any(|t| type_matches(t, event_type))
            && self.conditions.iter().all(|c| c.holds(variables))
    }
}

/// `pattern` is a `ce-type` or a prefix ending in `*` (`desk.tickets.*`); `*` alone matches all.
pub fn type_matches(pattern: &str, event_type: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => event_type.starts_with(prefix),
        None => pattern == event_type,
    }
}

pub const TICKET_CREATED: &str = "desk.tickets.ticket.created.v1";
pub const TICKET_ASSIGNED: &str = "desk.tickets.ticket.assigned.v1";
pub const TICKET_STATUS_CHANGED: &str = "desk.tickets.ticket.status_changed.v1";
pub const TICKET_COMMENTED: &str = "desk.tickets.ticket.commented.v1";
pub const TICKET_RESOLVED: &str = "desk.tickets.ticket.resolved.v1";
pub const TICKET_ESCALATED: &str = "desk.tickets.ticket.escalated.v1";

/// The event types the built-in rules and templates cover.
pub const BUILT_IN_TYPES: &[&str] = &[
    TICKET_CREATED,
    TICKET_ASSIGNED,
    TICKET_STATUS_CHANGED,
    TICKET_COMMENTED,
    TICKET_RESOLVED,
    TICKET_ESCALATED,
];

/// What every tenant gets before it writes a rule: the requester hears about their ticket, the
/// assignee (or the whole group while nobody has it) about work arriving, the group manager
/// about escalations and major incidents at once.
pub fn default_rules() -> Vec<Rule> {
    let rule = |name: &str, types: &[&str], recipients: &[RecipientRole], urgent: bool| Rule {
        name: name.to_owned(),
        event_types: types.iter().map(|t| (*t).to_owned()).collect(),
        conditions: Vec::new(),
        recipients: recipients.to_vec(),
        subscriber_ids: Vec::new(),
        channels: vec![Channel::Email, Channel::InApp],
        urgent,
        enabled: true,
        built_in: true,
    };
    let mut major = rule(
        "major incident: group manager",
        &[TICKET_CREATED, TICKET_ESCALATED],
        &[RecipientRole::GroupManager],
        true,
    );
    major.conditions.push(Condition {
        field: "ticket.major_incident".into(),
        operator: Operator::Equals,
        value: "true".into(),
    });
    vec![
        rule(
            "requester: their ticket",
            &[
                TICKET_CREATED,
                TICKET_STATUS_CHANGED,
                TICKET_COMMENTED,
                TICKET_RESOLVED,
            ],
            &[RecipientRole::Requester],
            false,
        ),
        rule(
            "work arrives",
            &[TICKET_ASSIGNED],
            &[RecipientRole::Assignee, RecipientRole::AssignmentGroup],
            false,
        ),
        rule(
            "watchers: comments",
            &[TICKET_COMMENTED],
            &[RecipientRole::Watchers],
            false,
        ),
        rule(
            "escalation: group manager",
            &[TICKET_ESCALATED],
            &[RecipientRole::GroupManager],
            true,
        ),
        major,
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn condition(field: &str, operator: Operator, value: &str) -> Condition {
        Condition {
            field: field.into(),
            operator,
            value: value.into(),
        }
    }

    #[test]
    fn numeric_conditions_compare_numbers() {
        let vars = json!({"ticket": {"priority": 2}});
        assert!(condition("ticket.priority", Operator::LessOrEqual, "2").holds(&vars));
        assert!(!condition("ticket.priority", Operator::LessOrEqual, "1").holds(&vars));
        assert!(condition("ticket.priority", Operator::GreaterOrEqual, "2").holds(&vars));
        assert!(!condition("ticket.priority", Operator::GreaterOrEqual, "x").holds(&vars));
    }

    #[test]
    fn equality_reads_booleans_and_strings_as_text() {
        let vars = json!({"ticket": {"major_incident": true, "status": "new"}});
        assert!(condition("ticket.major_incident", Operator::Equals, "true").holds(&vars));
        assert!(condition("ticket.status", Operator::NotEquals, "closed").holds(&vars));
        assert!(!condition("ticket.status", Operator::Equals, "closed").holds(&vars));
    }

    #[test]
    fn a_missing_field_satisfies_only_not_equals() {
        let vars = json!({"ticket": {}});
        assert!(!condition("ticket.priority", Operator::Equals, "1").holds(&vars));
        assert!(!condition("ticket.priority", Operator::LessOrEqual, "1").holds(&vars));
        assert!(condition("ticket.priority", Operator::NotEquals, "1").holds(&vars));
    }

    #[test]
    fn types_match_exactly_or_by_prefix() {
        assert!(type_matches("*", TICKET_CREATED));
        assert!(type_matches("desk.tickets.*", TICKET_CREATED));
        assert!(!type_matches("desk.change.*", TICKET_CREATED));
        assert!(type_matches(TICKET_CREATED, TICKET_CREATED));
        assert!(!type_matches(TICKET_CREATED, TICKET_ASSIGNED));
    }

    #[test]
    fn a_disabled_rule_matches_nothing() {
        let mut rule = default_rules().remove(0);
        assert!(rule.matches(TICKET_CREATED, &json!({})));
        rule.enabled = false;
        assert!(!rule.matches(TICKET_CREATED, &json!({})));
    }

    #[test]
    fn the_major_incident_default_needs_the_flag() {
        let rules = default_rules();
        let major = rules
            .iter()
            .find(|r| r.name.starts_with("major"))
            .expect("the default exists");
        assert!(major.urgent);
        assert!(major.matches(TICKET_CREATED, &json!({"ticket": {"major_incident": true}})));
        assert!(!major.matches(
            TICKET_CREATED,
            &json!({"ticket": {"major_incident": false}})
        ));
    }

    #[test]
    fn names_round_trip() {
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()), Some(c));
        }
        for r in RecipientRole::ALL {
            assert_eq!(RecipientRole::parse(r.as_str()), Some(r));
        }
        assert_eq!(Operator::parse("le"), Some(Operator::LessOrEqual));
        assert_eq!(Channel::parse("pigeon"), None);
        assert!(!Channel::Webhook.reaches_people());
    }
}
