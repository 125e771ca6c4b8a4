//! The change service's rules, pure: no I/O, no async, no clock reads (the caller passes `now`).
//!
//! # Layout
//! - [`access`]: who may read, raise and manage changes.
//! - [`lifecycle`]: the types of change and the state machine each follows.
//! - [`change`]: the change record, the commands that create and edit it, the event of each step.
//! - [`risk`]: the transparent risk score and its factors.
//! - [`cab`]: the change policy, CAB rules, quorum, delegation and the expiry of approvals.
//! - [`schedule`]: windows, freeze periods and weekly maintenance windows in their time zones.
//! - [`graph`]: the projection of the CMDB's dependency graph, and walks over it.
//! - [`projection`]: one tenant's projection of the CMDB (graph and class tree) from its events.
//! - [`conflicts`]: conflicts of a proposed window across the graph, and the next free slot.
//! - [`metrics`]: success rate, emergency share and lead time by group and period.
//! - [`validate`]: field violations.

pub mod access;
pub mod cab;
pub mod change;
pub mod conflicts;
pub mod graph;
pub mod lifecycle;
pub mod metrics;
pub mod projection;
pub mod risk;
pub mod schedule;
pub mod validate;

pub use access::{AccessDenied, Permission, authorize};
pub use cab::{
    Approval, CabRule, ChangePolicy, Decision, DecisionRefused, Delegation, Tally, Verdict,
};
pub use change::{
    Assessment, AttributeValue, Change, ChangeEdit, ChangeError, CiUpdate, Creation, NewChange,
    Outcome, SuspectedIncident, Template,
};
pub use conflicts::{Booked, Conflict, ConflictKind, Proposal, find_conflicts, next_free_slot};
pub use graph::{CiNode, Criticality, DependencyGraph, Direction, Edge, Relation};
pub use lifecycle::{ChangeState, ChangeType, Step, TransitionRefused};
pub use risk::{PastChanges, Risk, RiskFactor, RiskInputs, RiskLevel};
pub use schedule::{FreezeWindow, MaintenanceWindow, TimeRange, Window, WindowError};
pub use validate::Violations;
