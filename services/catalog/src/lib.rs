//! The service catalog, request fulfillment and approvals behind `desk.catalog.v1.CatalogService`:
//! offerings (request items) with a localized name, a form schema, an approval policy, a
//! fulfillment plan, a target time and visibility, versioned on every save; requests made
//! against one version, approved by the requester's manager, teams or named people (any, all,
//! quorum; conditional steps; reminders, expiry and escalation; delegation), fulfilled by
//! sequential stages of parallel tasks that teams or provisioning robots complete.
//!
//! # Layout
//! - [`domain`]: pure types and rules — forms and answers, approval steps, fulfillment plans,
//!   the request lifecycle and the facts it produces.

pub mod domain;

pub const SERVICE: &str = "catalog";
pub const GRPC_SERVICE: &str = "desk.catalog.v1.CatalogService";
