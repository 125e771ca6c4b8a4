//! Directory: the people of a tenant (profile, locale, time zone, manager), its teams (region,
//! calendar, tier, skills, hierarchy), who is in which team, what agents can take (skills,
//! languages, capacity) and whether they are there (presence), and provisioning batches from an
//! identity provider's sync, behind `desk.directory.v1.DirectoryService`.
//!
//! # Layout
//! - [`domain`]: pure types and rules (access, validation, commands, hierarchies, presence,
//!   provisioning plans). No I/O, no async, no clock reads.

pub mod domain;
