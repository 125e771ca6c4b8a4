//! What the directory publishes, as domain values: one fact per change, each carrying the
//! aggregate after it. `events/` writes them on the wire.

use desk_kit::history::Changes;
use uuid::Uuid;

use super::{
    membership::{Membership, MembershipRole},
    person::Person,
    presence::PresenceChange,
    team::Team,
};

/// What a deactivated person leaves to others (the directory's share of "their open work").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeactivationReport {
    /// Teams they were an active member of.
    pub team_ids: Vec<Uuid>,
    /// Of those, the ones they led.
    pub led_team_ids: Vec<Uuid>,
    /// Teams naming them as manager.
    pub managed_team_ids: Vec<Uuid>,
    /// Active people naming them as manager.
    pub direct_report_ids: Vec<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    PersonCreated {
        person: Person,
        source: String,
    },
    PersonUpdated {
        person: Person,
        changes: Changes,
        source: String,
    },
    PersonDeactivated {
        person: Person,
        reason: Option<String>,
        report: DeactivationReport,
        source: String,
    },
    TeamCreated {
        team: Team,
    },
    TeamUpdated {
        team: Team,
        changes: Changes,
    },
    TeamRetired {
        team: Team,
        reason: Option<String>,
    },
    MembershipAdded {
        membership: Membership,
        previous_role: Option<MembershipRole>,
        source: String,
    },
    MembershipRemoved {
        membership: Membership,
        source: String,
    },
    PresenceChanged {
        change: PresenceChange,
    },
}

impl Fact {
    /// `(aggregate, event)` as subjects and `ce-type`s name them.
    pub fn name(&self) -> (&'static str, &'static str) {
        match self {
            Fact::PersonCreated { .. } => ("person", "created"),
            Fact::PersonUpdated { .. } => ("person", "updated"),
            Fact::PersonDeactivated { .. } => ("person", "deactivated"),
            Fact::TeamCreated { .. } => ("team", "created"),
            Fact::TeamUpdated { .. } => ("team", "updated"),
            Fact::TeamRetired { .. } => ("team", "retired"),
            Fact::MembershipAdded { .. } => ("membership", "added"),
            Fact::MembershipRemoved { .. } => ("membership", "removed"),
            Fact::PresenceChanged { .. } => ("presence", "changed"),
        }
    }
}
