//! Builders the domain's unit tests share.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    person::{NewPerson, Person, PersonFields},
    team::{NewTeam, Team, TeamFields},
};

/// `seconds` after the epoch.
pub fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(seconds)
}

/// An active person of tenant `acme` whose subject is `subject`, with an id derived from it.
pub fn person(subject: &str) -> Person {
    NewPerson {
        subject: subject.to_owned(),
        external_id: None,
        fields: PersonFields {
            display_name: format!("{subject} (display)"),
            ..PersonFields::default()
        },
        manager_id: None,
        source: "api".to_owned(),
    }
    .create(id_of(subject), "acme", at(0))
}

/// An active team of tenant `acme` in region `emea`, with an id derived from its name.
pub fn team(name: &str) -> Team {
    NewTeam {
        fields: TeamFields {
            name: name.to_owned(),
            region: "emea".to_owned(),
            ..TeamFields::default()
        },
        manager_id: None,
        parent_id: None,
    }
    .create(id_of(name), "acme", at(0))
}

/// A stable id for a name.
pub fn id_of(name: &str) -> Uuid {
    Uuid::from_u64_pair(desk_kit::ids::stable_hash(name.as_bytes()), 1)
}
