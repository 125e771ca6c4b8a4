//! Who may do what in the CMDB, by the roles of the caller's token (ARCHITECTURE §7).
//!
//! The platform's roles decide (the kit's [`Role`], which every service reads alike), among them
//! `configuration_manager`, the role of the CMDB's owners. `integrator` covers discovery sources:
//! they write CIs and imports, but may not rank themselves against each other — which source wins
//! a field is for the CMDB's owners to say.
//!
//! | permission      | roles                                                                       |
//! |-----------------|-----------------------------------------------------------------------------|
//! | read            | agent, manager, change_manager, cab_member, admin, integrator, configuration_manager |
//! | write           | admin, integrator, configuration_manager                                    |
//! | rank sources    | admin, configuration_manager                                                |
//!
//! Requesters read nothing: a CMDB describes the estate, and the portal shows them only what a
//! ticket says about it.

use desk_kit::auth::Role;

/// What a call needs to be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read CIs, classes, relationships, history, impact, imports and source precedence.
    Read,
    /// Create and change CIs, relationships, classes and imports.
    Write,
    /// Set source precedence: which discovery source's value wins a field.
    RankSources,
}

impl Permission {
    /// The roles that have this permission; any one of them is enough.
    pub const fn roles(self) -> &'static [Role] {
        match self {
            Self::Read => &[
                Role::Agent,
                Role::Manager,
                Role::ChangeManager,
                Role::CabMember,
                Role::Admin,
                Role::Integrator,
                Role::ConfigurationManager,
            ],
            Self::Write => &[Role::Admin, Role::Integrator, Role::ConfigurationManager],
            Self::RankSources => &[Role::Admin, Role::ConfigurationManager],
        }
    }

    /// What the caller is told when they lack it.
    const fn refusal(self) -> &'static str {
        match self {
            Self::Read => {
                "reading the CMDB needs an agent, manager, change, admin, integrator or configuration manager role"
            }
            Self::Write => {
                "changing the CMDB needs an admin, integrator or configuration_manager role"
            }
            Self::RankSources => "only admins and configuration managers set source precedence",
        }
    }
}

/// A call the caller's roles do not allow; the text is user-facing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.refusal())]
pub struct AccessDenied(pub Permission);

impl AccessDenied {
    /// The user-facing reason.
    pub const fn reason(self) -> &'static str {
        self.0.refusal()
    }
}

/// The methods another desk service may call with its service token (ARCHITECTURE §7): read a
/// CI, and update one for a record of its own (the change service applying an implemented
/// change, named as the values' provenance). A service token has no permission above; these two
/// methods let it through themselves, and every other method refuses it before any handler runs.
pub const SERVICE_METHODS: &[&str] = &[
    "/desk.cmdb.v1.CmdbService/GetCi",
    "/desk.cmdb.v1.CmdbService/UpdateCi",
];

/// Whether a caller with `roles` (the caller's `roles`) has `permission`.
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

    /// The roles of a token whose `roles` claim names `names`, all of them known.
    fn roles(names: &[&str]) -> Vec<Role> {
        names
            .iter()
            .map(|name| Role::parse(name).expect("a role the kit knows"))
            .collect()
    }

    fn allowed(names: &[&str], permission: Permission) -> bool {
        authorize(&roles(names), permission).is_ok()
    }

    #[test]
    fn every_staff_role_reads_and_a_requester_does_not() {
        for role in [
            "agent",
            "manager",
            "change_manager",
            "cab_member",
            "admin",
            "integrator",
            "configuration_manager",
        ] {
            assert!(allowed(&[role], Permission::Read), "{role} reads");
        }
        assert!(!allowed(&["requester"], Permission::Read));
        assert!(!allowed(&[], Permission::Read));
    }

    #[test]
    fn only_owners_and_discovery_sources_write() {
        for role in ["admin", "integrator", "configuration_manager"] {
            assert!(allowed(&[role], Permission::Write), "{role} writes");
        }
        for role in [
            "agent",
            "manager",
            "change_manager",
            "cab_member",
            "requester",
        ] {
            assert!(
                !allowed(&[role], Permission::Write),
                "{role} does not write"
            );
        }
    }

    #[test]
    fn a_discovery_source_may_not_rank_the_sources() {
        assert!(allowed(&["admin"], Permission::RankSources));
        assert!(allowed(&["configuration_manager"], Permission::RankSources));
        assert!(!allowed(&["integrator"], Permission::RankSources));
        assert_eq!(
            authorize(&roles(&["integrator"]), Permission::RankSources)
                .map_err(|denied| denied.to_string()),
            Err("only admins and configuration managers set source precedence".to_owned())
        );
    }

    #[test]
    fn a_service_token_has_no_cmdb_permission() {
        for permission in [Permission::Read, Permission::Write, Permission::RankSources] {
            assert!(!allowed(&["service"], permission), "{permission:?}");
        }
    }

    #[test]
    fn one_fitting_role_among_others_is_enough() {
        assert!(allowed(&["requester", "integrator"], Permission::Write));
    }
}
