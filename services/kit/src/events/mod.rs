//! The event backbone (ARCHITECTURE §5, contract): CloudEvents on NATS JetStream, written through a
//! transactional outbox and consumed through an idempotent inbox.
//!
//! # Layout
//! - [`envelope`]: subjects, `ce-*` headers, parsing them back.
//! - [`streams`]: one stream per publishing service and region, created or updated at start.
//! - [`outbox`]: stage an event in the writer's transaction; the relay publishes it after commit.
//! - [`publisher`]: a service's write path: transaction, staged events, commit that wakes the relay.
//! - [`inbox`]: durable pull consumers whose effects and event ids commit together.
//! - [`migrations`]: the outbox and inbox tables, which every service includes in its migrator.

pub mod envelope;
pub mod inbox;
pub mod migrations;
pub mod outbox;
pub mod publisher;
pub mod streams;

pub use envelope::{EventSource, IncomingEvent, OutgoingEvent};
pub use outbox::{Outbox, OutboxRelay, RelayHandle};
pub use publisher::Publisher;
