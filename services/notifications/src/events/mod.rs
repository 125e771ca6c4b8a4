//! What the service publishes — `notification.delivered` and `notification.failed` on
//! `desk.<region>.notifications.<tenant>.notification.<event>` — and its consumers:
//! - [`tickets`]: every ticket event into notifications (durable consumer `notifications-tickets`);
//! - [`directory`]: people, teams and memberships into the projection recipients are resolved
//!   from (`notifications-directory`);
//! - [`sender`] over [`transport`]: the worker that sends due deliveries, retries and
//!   dead-letters them.
//!
//! Both run in the kit's consumer: an event's deliveries, feed items and inbox row commit in one
//! transaction, so a redelivered event finds its inbox row and sends nothing twice.

pub mod directory;
pub mod notify;
pub mod sender;
pub mod tickets;
pub mod transport;

use desk_kit::events::OutgoingEvent;
use desk_proto::notifications::v1 as pb;

use crate::{api::convert, domain::model::Delivery};

pub const AGGREGATE: &str = "notification";

pub fn delivered(delivery: &Delivery) -> OutgoingEvent {
    OutgoingEvent::new(
        AGGREGATE,
        "delivered",
        delivery.id.to_string(),
        delivery.tenant.clone(),
        &pb::NotificationDelivered {
            delivery: Some(convert::delivery_pb(delivery)),
        },
    )
}

pub fn failed(delivery: &Delivery, error: &str) -> OutgoingEvent {
    OutgoingEvent::new(
        AGGREGATE,
        "failed",
        delivery.id.to_string(),
        delivery.tenant.clone(),
        &pb::NotificationFailed {
            delivery: Some(convert::delivery_pb(delivery)),
            error: error.to_owned(),
        },
    )
}
