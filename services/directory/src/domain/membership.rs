//! Memberships: a person in a team with a role. A membership is never deleted: removing one
//! marks it inactive, and adding the person again brings the same membership back at its next
//! version, so its history stays one line.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{person::Person, string_enum::string_enum, team::Team};

string_enum! {
    pub enum MembershipRole {
        Member => "member",
        Lead => "lead",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub id: Uuid,
    pub tenant_id: String,
    pub team_id: Uuid,
    pub person_id: Uuid,
    pub role: MembershipRole,
    pub active: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Labels for answers and events, read with the membership; not stored with it.
    pub team_name: String,
    pub person_display_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    #[error("the team is retired: it takes no new members")]
    TeamRetired,
    #[error("the person is deactivated")]
    PersonDeactivated,
    #[error("the person is not a member of the team")]
    NotAMember,
}

/// A membership after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipChange {
    /// New, back after a removal, or with another role (`previous_role` is the role it had
    /// while active).
    Added {
        membership: Membership,
        previous_role: Option<MembershipRole>,
    },
    Removed {
        membership: Membership,
    },
}

impl MembershipChange {
    pub fn membership(&self) -> &Membership {
        match self {
            MembershipChange::Added { membership, .. }
            | MembershipChange::Removed { membership } => membership,
        }
    }
}

/// Puts `person` in `team` with `role`: a new membership (id `new_id`) when they never were,
/// the existing one back or with the new role, and nothing when it is already so.
pub fn add(
    existing: Option<&Membership>,
    team: &Team,
    person: &Person,
    role: MembershipRole,
    new_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<MembershipChange>, MembershipError> {
    if !team.is_active() {
        return Err(MembershipError::TeamRetired);
    }
    if !person.is_active() {
        return Err(MembershipError::PersonDeactivated);
    }
    let labelled = |mut membership: Membership| {
        membership.team_name.clone_from(&team.fields.name);
        membership
            .person_display_name
            .clone_from(&person.fields.display_name);
        membership
    };
    match existing {
        Some(current) if current.active && current.role == role => Ok(None),
        Some(current) => {
            let previous_role = current.active.then_some(current.role);
            let mut next = current.clone();
            next.role = role;
            next.active = true;
            next.version += 1;
            next.updated_at = now;
            Ok(Some(MembershipChange::Added {
                membership: labelled(next),
                previous_role,
            }))
        }
        None => Ok(Some(MembershipChange::Added {
            membership: labelled(Membership {
                id: new_id,
                tenant_id: team.tenant_id.clone(),
                team_id: team.id,
                person_id: person.id,
                role,
                active: true,
                version: 1,
                created_at: now,
                updated_at: now,
                team_name: String::new(),
                person_display_name: String::new(),
            }),
            previous_role: None,
        })),
    }
}

/// Takes a person out of a team; a team or person in any state may lose a member.
pub fn remove(
    existing: Option<&Membership>,
    now: DateTime<Utc>,
) -> Result<MembershipChange, MembershipError> {
    match existing {
        Some(current) if current.active => {
            let mut next = current.clone();
            next.active = false;
            next.version += 1;
            next.updated_at = now;
            Ok(MembershipChange::Removed { membership: next })
        }
        _ => Err(MembershipError::NotAMember),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        person::deactivate,
        team::retire,
        testing::{at, person, team},
    };

    #[test]
    fn joining_makes_a_new_membership_and_joining_again_changes_nothing() {
        let (network, alex) = (team("Network"), person("alex"));
        let id = Uuid::from_u128(42);
        let Some(MembershipChange::Added {
            membership,
            previous_role,
        }) = add(None, &network, &alex, MembershipRole::Member, id, at(1)).expect("allowed")
        else {
            panic!("expected an addition")
        };
        assert_eq!((membership.id, membership.version), (id, 1));
        assert_eq!(membership.team_name, "Network");
        assert_eq!(previous_role, None);
        assert_eq!(
            add(
                Some(&membership),
                &network,
                &alex,
                MembershipRole::Member,
                id,
                at(2)
            ),
            Ok(None)
        );
    }

    #[test]
    fn a_new_role_is_an_addition_that_names_the_previous_one() {
        let (network, alex) = (team("Network"), person("alex"));
        let id = Uuid::from_u128(42);
        let Ok(Some(first)) = add(None, &network, &alex, MembershipRole::Member, id, at(1)) else {
            panic!("expected an addition")
        };
        let promoted = add(
            Some(first.membership()),
            &network,
            &alex,
            MembershipRole::Lead,
            id,
            at(2),
        );
        match promoted {
            Ok(Some(MembershipChange::Added {
                membership,
                previous_role,
            })) => {
                assert_eq!(membership.role, MembershipRole::Lead);
                assert_eq!(membership.version, 2);
                assert_eq!(previous_role, Some(MembershipRole::Member));
            }
            other => panic!("expected a promotion, got {other:?}"),
        }
    }

    #[test]
    fn a_removed_member_comes_back_as_the_same_membership() {
        let (network, alex) = (team("Network"), person("alex"));
        let id = Uuid::from_u128(42);
        let Ok(Some(first)) = add(None, &network, &alex, MembershipRole::Member, id, at(1)) else {
            panic!("expected an addition")
        };
        let removed = remove(Some(first.membership()), at(2)).expect("removed");
        assert!(!removed.membership().active);
        assert_eq!(
            remove(Some(removed.membership()), at(3)),
            Err(MembershipError::NotAMember)
        );
        let Ok(Some(MembershipChange::Added {
            membership,
            previous_role,
        })) = add(
            Some(removed.membership()),
            &network,
            &alex,
            MembershipRole::Member,
            Uuid::from_u128(99),
            at(4),
        )
        else {
            panic!("expected the membership back")
        };
        assert_eq!((membership.id, membership.version), (id, 3));
        assert!(membership.active);
        assert_eq!(previous_role, None);
    }

    #[test]
    fn retired_teams_and_deactivated_people_take_no_new_memberships() {
        let (network, alex) = (team("Network"), person("alex"));
        let retired = retire(&network, 0, at(1)).expect("retired").team;
        assert_eq!(
            add(
                None,
                &retired,
                &alex,
                MembershipRole::Member,
                Uuid::nil(),
                at(2)
            ),
            Err(MembershipError::TeamRetired)
        );
        let gone = deactivate(&alex, at(1)).expect("deactivated").person;
        assert_eq!(
            add(
                None,
                &network,
                &gone,
                MembershipRole::Member,
                Uuid::nil(),
                at(2)
            ),
            Err(MembershipError::PersonDeactivated)
        );
    }
}
