//! Who may read and change what in the directory (ARCHITECTURE §7; issue 24's access rules).
//!
//! | permission           | roles                                                               |
//! |----------------------|---------------------------------------------------------------------|
//! | read the directory   | agent, manager, change_manager, cab_member, catalog_admin, admin, integrator, service |
//! | write                | admin                                                               |
//! | provision            | admin, integrator                                                   |
//! | set one's presence   | the staff roles above but service                                   |
//!
//! Requesters read their own profile, and of other people only the display name of staff (the
//! agents on their tickets: the directory cannot see tickets, so it lets a requester name any
//! agent, and nothing more of them). Everyone else is `NOT_FOUND` to them, exactly like a person
//! who does not exist, so ids cannot be probed. E-mail and phone are visible to staff and to the
//! person: a requester's view of an agent carries neither.

use desk_kit::auth::Role;

/// Roles that read their tenant's whole directory.
pub const STAFF_ROLES: &[Role] = &[
    Role::Agent,
    Role::Manager,
    Role::ChangeManager,
    Role::CabMember,
    Role::CatalogAdmin,
    Role::Admin,
    Role::Integrator,
    Role::Service,
];

/// What a call needs to be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// List and read people, teams, memberships, presence and the skill catalog.
    ReadDirectory,
    /// Create and change people, teams, memberships, agent profiles and the skill catalog.
    Write,
    /// Stage, commit and discard provisioning batches.
    Provision,
    /// Set one's own presence.
    SetOwnPresence,
    /// Set another person's presence.
    SetAnyPresence,
}

impl Permission {
    /// The roles that have this permission; any one of them is enough.
    pub fn roles(self) -> &'static [Role] {
        match self {
            Permission::ReadDirectory => STAFF_ROLES,
            Permission::Write | Permission::SetAnyPresence => &[Role::Admin],
            Permission::Provision => &[Role::Admin, Role::Integrator],
            Permission::SetOwnPresence => &[
                Role::Agent,
                Role::Manager,
                Role::ChangeManager,
                Role::CabMember,
                Role::CatalogAdmin,
                Role::Admin,
                Role::Integrator,
            ],
        }
    }

    const fn refusal(self) -> &'static str {
        match self {
            Permission::ReadDirectory => {
                "reading the directory needs a staff role; requesters read their own profile (WhoAmI)"
            }
            Permission::Write => "changing the directory needs the admin role",
            Permission::Provision => "provisioning needs the admin or integrator role",
            Permission::SetOwnPresence => "only staff set a presence",
            Permission::SetAnyPresence => "only admins set another person's presence",
        }
    }
}

/// A call the caller's roles do not allow; the text is user-facing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.refusal())]
pub struct AccessDenied(pub Permission);

/// Whether a caller with `roles` has `permission`.
pub fn authorize(roles: &[Role], permission: Permission) -> Result<(), AccessDenied> {
    if roles.iter().any(|role| permission.roles().contains(role)) {
        Ok(())
    } else {
        Err(AccessDenied(permission))
    }
}

/// Whether the caller reads the whole directory.
pub fn is_staff(roles: &[Role]) -> bool {
    authorize(roles, Permission::ReadDirectory).is_ok()
}

/// How much of a person a caller sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonView {
    /// Every field, teams and presence.
    Full,
    /// The id and display name only.
    DisplayNameOnly,
}

/// What the caller (`roles`, `subject`) sees of a person with `person_subject`, who is staff
/// (an agent or a team member) when `person_is_staff`; `None`: the person does not exist for them.
pub fn person_view(
    roles: &[Role],
    subject: &str,
    person_subject: &str,
    person_is_staff: bool,
) -> Option<PersonView> {
    if is_staff(roles) || subject == person_subject {
        Some(PersonView::Full)
    } else if person_is_staff {
        Some(PersonView::DisplayNameOnly)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_staff_role_reads_the_directory_and_a_requester_does_not() {
        for role in STAFF_ROLES {
            assert!(
                authorize(&[*role], Permission::ReadDirectory).is_ok(),
                "{role}"
            );
        }
        assert!(authorize(&[Role::Requester], Permission::ReadDirectory).is_err());
        assert!(authorize(&[], Permission::ReadDirectory).is_err());
    }

    #[test]
    fn only_admins_write_and_integrators_also_provision() {
        for role in Role::ALL {
            let writes = authorize(&[*role], Permission::Write).is_ok();
            let provisions = authorize(&[*role], Permission::Provision).is_ok();
            assert_eq!(writes, *role == Role::Admin, "{role} writes");
            assert_eq!(
                provisions,
                matches!(role, Role::Admin | Role::Integrator),
                "{role} provisions"
            );
        }
        assert_eq!(
            AccessDenied(Permission::Provision).to_string(),
            "provisioning needs the admin or integrator role"
        );
    }

    #[test]
    fn a_requester_sees_themselves_whole_an_agent_by_name_and_no_one_else() {
        let requester = [Role::Requester];
        assert_eq!(
            person_view(&requester, "rita", "rita", false),
            Some(PersonView::Full)
        );
        assert_eq!(
            person_view(&requester, "rita", "alex", true),
            Some(PersonView::DisplayNameOnly)
        );
        assert_eq!(person_view(&requester, "rita", "rob", false), None);
    }

    #[test]
    fn staff_see_everyone_whole() {
        assert_eq!(
            person_view(&[Role::Agent], "alex", "rob", false),
            Some(PersonView::Full)
        );
        assert_eq!(
            person_view(&[Role::Requester, Role::Integrator], "robot", "rob", false),
            Some(PersonView::Full)
        );
    }

    #[test]
    fn presence_is_set_by_staff_for_themselves_and_by_admins_for_anyone() {
        assert!(authorize(&[Role::Agent], Permission::SetOwnPresence).is_ok());
        assert!(authorize(&[Role::Requester], Permission::SetOwnPresence).is_err());
        assert!(authorize(&[Role::Service], Permission::SetOwnPresence).is_err());
        assert!(authorize(&[Role::Agent], Permission::SetAnyPresence).is_err());
        assert!(authorize(&[Role::Admin], Permission::SetAnyPresence).is_ok());
    }
}
