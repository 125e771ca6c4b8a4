//! The directory's domain: pure types and rules, with no I/O, no async and no clock reads.
//!
//! Everything the store and API decide about people, teams, memberships, agents, presence and
//! provisioning is decided here, from values they pass in (the current time included), so it can
//! be tested without a database.
//!
//! # Layout
//!
//! - [`access`]: who reads and writes what, and how much of a person a caller sees.
//! - [`validate`]: field checks collecting every violation: e-mail, phone, BCP 47 locale, IANA
//!   time zone, region, skill names.
//! - [`person`]: people, their checks, and create / update / deactivate / reactivate / agent
//!   profile / from a token's claims.
//! - [`agent`]: agent profiles (skills with a level, languages, capacity) and the tenant's skill
//!   catalog.
//! - [`team`]: teams, their checks, create / update / retire, the team hierarchy.
//! - [`hierarchy`]: cycle checks of manager chains and team hierarchies.
//! - [`membership`]: people in teams with a role.
//! - [`presence`]: presence with a time to live, how it reads as time passes, its expiry.
//! - [`provisioning`]: identity-provider batches: checks, plan, what a commit writes.
//! - [`facts`]: what each change publishes.

mod string_enum;

pub mod access;
pub mod agent;
pub mod facts;
pub mod hierarchy;
pub mod membership;
pub mod person;
pub mod presence;
pub mod provisioning;
pub mod team;
pub mod validate;

#[cfg(test)]
pub(crate) mod testing;

pub use access::{AccessDenied, Permission, PersonView, authorize, person_view};
pub use agent::{AgentProfile, AgentProfileInput, CatalogError, Skill, SkillCatalog};
pub use facts::{DeactivationReport, Fact};
pub use membership::{Membership, MembershipChange, MembershipError, MembershipRole};
pub use person::{
    NewPerson, Person, PersonChange, PersonError, PersonFields, PersonFieldsInput, PersonPatch,
    PersonStatus, Stale, TokenClaims, check_version,
};
pub use presence::{Presence, PresenceChange, PresenceReading, PresenceStatus};
pub use provisioning::{
    CheckedBatch, Directory, PlannedPerson, ProvisionedPersonInput, ProvisioningAction,
    ProvisioningFinished, ProvisioningPlan, ProvisioningState, ProvisioningWrites,
};
pub use team::{
    NewTeam, SupportTier, Team, TeamChange, TeamError, TeamFields, TeamPatch, TeamStatus,
};
pub use validate::{FieldViolation, Violations};
