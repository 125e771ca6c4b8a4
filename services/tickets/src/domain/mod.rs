//! The tickets domain: pure types and rules, with no I/O, no async and no clock reads.
//!
//! Everything the store and API layers decide about a ticket is decided here, from values they
//! pass in (the current time, new ids and numbers included), so it can be tested exhaustively
//! without a database. The API parses each request into a typed command once; a rule takes the
//! command and the ticket as loaded and returns the ticket after the change with what to record
//! and publish ([`change`]); the store writes that in one transaction.
//!
//! # Layout
//!
//! - [`commands`]: what commands are made of — ticket references, versions, titles.
//! - [`creation`], [`edits`], [`moves`], [`conversation`]: the commands and the rules that apply
//!   them: creating; editing fields and a problem's analysis; assigning, moving, resolving,
//!   reopening, rating; comments, worklog and links.
//! - [`change`]: what a rule returns — the changed ticket, its history entry, its facts.
//! - [`ticket`]: the value types — type and number, status, priority inputs, channels, links.
//! - [`priority`]: the per-tenant impact × urgency matrix; [`settings`]: a tenant's settings.
//! - [`lifecycle`]: the status machine, resolution, reopening, assignment, rating, link rules.
//! - [`access`]: who may read, comment, work, reopen, close and rate; staff-only fields.
//! - [`validate`]: field checks that collect every violation of a request.
//! - [`history`]: the field-by-field record of what an update changed.
//! - [`record`]: a ticket and its comments, worklog and links as the rules see them, typed,
//!   without storage or wire concerns.
//! - [`facts`]: what a change establishes, to be published as events.

mod string_enum;
#[cfg(test)]
mod testing;

pub mod access;
pub mod change;
pub mod commands;
pub mod conversation;
pub mod creation;
pub mod edits;
pub mod facts;
pub mod history;
pub mod lifecycle;
pub mod moves;
pub mod priority;
pub mod record;
pub mod settings;
pub mod ticket;
pub mod validate;

pub use access::{AccessError, ListScope, RequestedFields, StaffWork, TicketAccessFacts};
pub use change::{ChangedTicket, Edit, HistoryAction, RuleError, TicketChange};
pub use commands::{ClearableEdit, ExpectedVersion, TicketReference, Title};
pub use facts::Fact;
pub use history::{Changes, FieldChange};
pub use lifecycle::{LifecycleError, Resolution, ResolutionCode};
pub use priority::{MatrixError, PriorityMatrix};
pub use settings::TicketSettings;
pub use ticket::{
    Channel, Level, LinkKind, PendingReason, Priority, Status, SupportTier, TicketType, Visibility,
};
pub use validate::{FieldViolation, Violations};
