//! The pure part of notifications: no I/O, no clock reads (times come in as arguments), no
//! randomness (jitter comes in as a number).
//!
//! - [`rules`]: event types and conditions → recipient roles → channels; tenant defaults.
//! - [`preferences`]: channels per kind, quiet hours in the person's zone, the daily digest.
//! - [`templates`]: variables, validation on save, rendering, locale fallback, built-ins.
//! - [`email`]: threading headers and address checks.
//! - [`webhook`]: Standard Webhooks signatures, secret rotation, retry schedule, SSRF ranges.
//! - [`coalesce`]: bursts to one recipient folded into one message.
//! - [`plan`]: matching rules resolved into people and channels.
//! - [`model`]: what is stored: aggregates, projections, deliveries and their payloads.

pub mod coalesce;
pub mod email;
pub mod model;
pub mod plan;
pub mod preferences;
pub mod rules;
pub mod templates;
pub mod webhook;
