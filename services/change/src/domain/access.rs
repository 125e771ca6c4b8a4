//! Who may do what with changes, by the roles of the caller's token (ARCHITECTURE §7).
//!
//! | permission | roles                                                         |
//! |------------|---------------------------------------------------------------|
//! | read       | agent, manager, change_manager, cab_member, admin, integrator |
//! | raise      | agent, manager, change_manager, admin, integrator             |
//! | manage     | change_manager, admin                                         |
//!
//! `raise` creates, edits, submits and cancels changes; `manage` assesses, schedules, runs the
//! review and keeps templates, freezes, maintenance windows and the policy. A change's
//! implementer may start and complete its implementation without `manage`. CAB decisions are not
//! a role: the CAB rule's member list (or a member's delegation) decides who votes (see
//! [`super::cab`]). Requesters see nothing of changes.

use desk_kit::auth::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Read,
    Raise,
    Manage,
}

impl Permission {
    pub const fn roles(self) -> &'static [Role] {
        match self {
            Self::Read => &[
                Role::Agent,
                Role::Manager,
                Role::ChangeManager,
                Role::CabMember,
                Role::Admin,
                Role::Integrator,
            ],
            Self::Raise => &[
                Role::Agent,
                Role::Manager,
                Role::ChangeManager,
                Role::Admin,
                Role::Integrator,
            ],
            Self::Manage => &[Role::ChangeManager, Role::Admin],
        }
    }

    pub const fn refusal(self) -> &'static str {
        match self {
            Self::Read => "reading changes needs a staff role",
            Self::Raise => {
                "raising changes needs an agent, manager, change manager, admin or integrator role"
            }
            Self::Manage => "only change managers and admins do this",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.refusal())]
pub struct AccessDenied(pub Permission);

pub fn authorize(roles: &[Role], permission: Permission) -> Result<(), AccessDenied> {
    if roles.iter().any(|role| permission.roles().contains(role)) {
        Ok(())
    } else {
        Err(AccessDenied(permission))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requesters_and_services_have_no_permission_and_change_managers_have_all() {
        for permission in [Permission::Read, Permission::Raise, Permission::Manage] {
            assert!(authorize(&[Role::Requester], permission).is_err());
            assert!(authorize(&[Role::Service], permission).is_err());
            assert!(authorize(&[Role::ChangeManager], permission).is_ok());
        }
    }

    #[test]
    fn a_cab_member_reads_but_neither_raises_nor_manages() {
        assert!(authorize(&[Role::CabMember], Permission::Read).is_ok());
        assert!(authorize(&[Role::CabMember], Permission::Raise).is_err());
        assert!(authorize(&[Role::Agent], Permission::Manage).is_err());
    }
}
