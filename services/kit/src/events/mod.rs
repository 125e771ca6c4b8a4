//! The event backbone (ARCHITECTURE §5, contract): CloudEvents on NATS JetStream, written through a
//! transactional outbox and consumed through an idempotent inbox.
//!
//! # Layout
//! - [`envelope`]: subjects, `ce-*` headers, parsing them back.
//! - [`streams`]: one stream per publishing service and region, created or updated at start.
//! - [`outbox`]: stage an event in the writer's transaction; the relay publishes it after commit.
//! - [`publisher`]: a service's write path: transaction, staged events, commit that wakes the relay.
//! - [`consumer`]: supervised durable pull consumers that apply batches of events in one
//!   transaction with their inbox rows and the events they publish.
//! - [`dispatch`]: typed dispatch by `ce-type` to handlers of decoded protobuf messages.
//! - [`follow`]: every event of a stream in one process, for in-memory read models of replicas.
//! - [`inbox`]: the ids of applied events, so a redelivery has no second effect.
//! - [`migrations`]: the outbox and inbox tables, which every service includes in its migrator.

pub mod consumer;
pub mod dispatch;
pub mod envelope;
pub mod follow;
pub mod inbox;
pub mod migrations;
pub mod outbox;
pub mod publisher;
pub mod streams;

pub use consumer::{Consumer, ConsumerSpec, Disposition, SpawnedConsumer};
pub use dispatch::{Dispatcher, Effect, Handle, HandlerError, UnknownType};
pub use envelope::{EventSource, IncomingEvent, OutgoingEvent};
pub use outbox::{Outbox, OutboxRelay, RelayHandle};
pub use publisher::Publisher;

/// 100 ms, 200 ms, ... up to 3.2 s between attempts while NATS, the database or a source stream is
/// unreachable: the one back-off of the relay, consumers and followers.
pub(crate) fn backoff(failures: u32) -> std::time::Duration {
    std::time::Duration::from_millis(50u64.saturating_mul(1 << Ord::min(failures, 6)))
}
