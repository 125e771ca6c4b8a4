//! The SLA engine's rules, pure: no I/O, no async, no clock reads (every "now" is an argument).
//!
//! - [`ticket`]: a ticket as the tickets service's events show it, and its history in version
//!   order — what clocks are folded from.
//! - [`policy`]: SLA and OLA policies (match, targets, conditions, warnings), their validation
//!   and which one covers a ticket.
//! - [`clock`]: a clock as a fold over a ticket's history, with its explaining timeline.
//! - [`kpi`]: service-level KPIs from histories and clocks.

//!
//! Calendars are `desk_business_time` calendars: validated there, stored here.

pub mod clock;
pub mod kpi;

pub mod policy;
pub mod ticket;

pub use clock::{CalendarBook, ClockState, ClockView, EntryKind, TimelineEntry, fold};
pub use policy::{
    Conditions, Metric, Policy, PolicyKind, PolicyMatch, PolicyRules, Target, select,
};
pub use ticket::{
    FactKind, PendingReason, Priority, Recorded, TicketFact, TicketHistory, TicketSnapshot,
    TicketStatus, TicketType,
};

/// One invalid field: becomes a `google.rpc.BadRequest` field violation in `api/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub description: String,
}

impl Violation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}
