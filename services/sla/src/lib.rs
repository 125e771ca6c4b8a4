//! Service levels: business calendars, SLA (customer-facing) and OLA (per team) policies, and
//! the clocks they keep on every ticket — each a pure fold over the ticket's events, so it can
//! be explained and recomputed — with durable warning and breach timers and KPIs, behind
//! `desk.sla.v1.SlaService`.
//!
//! # Layout
//! - [`domain`]: pure types and rules — tickets as their events show them, policies and their
//!   validation, the clock fold and its timeline, KPIs. Calendar arithmetic is
//!   `desk_business_time`.

pub mod domain;

pub const SERVICE: &str = "sla";
pub const GRPC_SERVICE: &str = "desk.sla.v1.SlaService";
