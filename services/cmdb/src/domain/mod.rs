//! The CMDB domain: pure types and rules, with no I/O, no async and no clock reads.
//!
//! Everything the store and API layers decide about classes, CIs, relationships, imports and
//! impact is decided here, from values they pass in (the current time included), so it can be
//! tested exhaustively without a database.
//!
//! # Layout
//!
//! - [`access`]: which roles may read the CMDB, change it, and rank discovery sources.
//! - [`class`]: the class hierarchy, typed attribute schemas, the tenant's catalog and attribute
//!   validation (JSON in, typed values out, and back).
//! - [`ci`]: a CI's value types, lifecycle, patches and per-field provenance.
//! - [`ci_commands`]: create, update and retire as typed commands, and what each one writes
//!   and publishes (a create identified as an existing CI is refused or merged).
//! - [`relationship`]: relationship types, their impact flow and the rules a new one must meet
//!   (`AddRelationship`).
//! - [`identification`]: identification rules, source precedence, reconciliation of import
//!   batches into a deterministic plan and what committing it writes, an import's lifecycle, and
//!   the identification of one CI created through the API.
//! - [`impact`]: the in-memory relationship graph, impact analysis over it and the limits of a
//!   query.
//! - [`validate`]: field checks that collect every violation of a request.
//! - [`history`]: the field-by-field record of what an update changed.

mod string_enum;

pub mod access;
pub mod ci;
pub mod ci_commands;
pub mod class;
pub mod history;
pub mod identification;
pub mod impact;
pub mod relationship;
pub mod validate;

pub use access::{AccessDenied, Permission, authorize};
pub use ci::{
    API_SOURCE, Ci, CiError, CiPatch, CiStatus, Criticality, Environment, NewCi, Provenance,
};
pub use ci_commands::{
    CiFact, CiWrite, CiWriteError, CreateCi, CreateOutcome, CreateRefused, RetireCi, UpdateCi,
};
pub use class::{
    AttrValue, AttrValueError, AttributeDef, AttributeType, CiClass, ClassCatalog, ClassError,
    ValidatedAttributes, ValidationMode, validate_attributes,
};
pub use history::{Changes, FieldChange};
pub use identification::{
    DependentKey, ExistingCis, IdentKey, IdentificationRule, ImportBatch, ImportFinished,
    ImportItem, ImportRef, ImportRelationship, ImportState, InvalidItems, ItemAction, ItemConflict,
    PlannedItem, PlannedRelationship, ReconciliationPlan, RelationshipAction, SourcePrecedence,
    StageImport, reconcile,
};
pub use identification::{Identification, identify_new_ci, keys_of_new_ci};
pub use impact::{Direction, ImpactGraph, ImpactQuery, ImpactResult, ImpactedNode};
pub use relationship::{
    AddRelationship, CiFacts, ImpactFlow, RelationshipError, RelationshipType, StoredAround,
    check_relationship,
};
pub use validate::{FieldViolation, Violations};
