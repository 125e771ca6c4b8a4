//! Notifications: the right people hear about the right things on the channel they chose, in
//! their language — rules over every service's events, localized templates, threaded e-mail,
//! signed webhooks, SMS and a live in-app feed — behind `desk.notifications.v1.NotificationService`.
//!
//! # Layout
//! - [`domain`]: pure rules, preferences and quiet hours, templates and their locales, e-mail
//!   threading, webhook signatures, retry schedule, SSRF ranges, coalescing.

pub mod domain;

pub const SERVICE: &str = "notifications";
pub const GRPC_SERVICE: &str = "desk.notifications.v1.NotificationService";
