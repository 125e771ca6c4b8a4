//! The tickets domain: pure types and rules, with no I/O, no async and no clock reads.
//!
//! Everything the store and API layers decide about a ticket is decided here, from values they
//! pass in (the current time included), so it can be tested exhaustively without a database.
//!
//! # Layout
//!
//! - [`ticket`]: the value types — type and number, status, priority inputs, channels, links.
//! - [`priority`]: the per-tenant impact × urgency matrix.
//! - [`lifecycle`]: the status machine, resolution, reopening, assignment, rating, link rules.
//! - [`access`]: who may read, comment, work, reopen, close and rate; staff-only fields.
//! - [`validate`]: field checks that collect every violation of a request.
//! - [`history`]: the field-by-field record of what an update changed.
//! - [`record`]: a ticket and its comments, worklog and links as the rules see them, typed,
//!   without storage or wire concerns.
//! - [`facts`]: what a change establishes, to be published as events.

mod string_enum;

pub mod access;
pub mod facts;
pub mod history;
pub mod lifecycle;
pub mod priority;
pub mod record;
pub mod ticket;
pub mod validate;

pub use access::{AccessError, Actor, RequestedFields, Role, TicketAccessFacts};
pub use facts::Fact;
pub use history::{Changes, FieldChange};
pub use lifecycle::{LifecycleError, Resolution, ResolutionCode};
pub use priority::{MatrixError, PriorityMatrix};
pub use ticket::{
    Channel, Level, LinkKind, PendingReason, Priority, Status, SupportTier, TicketType, Visibility,
};
pub use validate::{FieldViolation, Violations};
