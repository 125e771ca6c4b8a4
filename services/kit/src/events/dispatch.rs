//! Typed dispatch of consumed events: a consumer names, per `ce-type`, the protobuf message its body
//! holds and the handler that applies it. Decoding, unknown types and the handler's transaction are
//! the kit's business, so no service writes its own boxing and string matching.
//!
//! ```ignore
//! let dispatcher = Dispatcher::new()
//!     .on::<pb::TicketCreated>("desk.tickets.ticket.created.v1", clocks.clone())
//!     .on::<pb::TicketStatusChanged>("desk.tickets.ticket.status_changed.v1", clocks);
//! ```
//!
//! A handler receives an [`Effect`]: the consumer's transaction (its writes commit together with the
//! event's inbox row) and a way to publish events in that same transaction, through the outbox of
//! the consuming service.

use std::{collections::HashMap, marker::PhantomData, sync::Arc};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sea_orm::{DatabaseTransaction, DbErr};

use super::{IncomingEvent, Outbox, OutgoingEvent};

/// Why a handler did not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Might work later (a dependency is down, a write conflicted): retried with back-off, then
    /// dead-lettered after the last delivery.
    #[error("retryable: {0}")]
    Retry(String),
    /// Will never work (contradicts the model, refers to what cannot exist): dead-lettered at once.
    #[error("rejected: {0}")]
    Reject(String),
}

impl From<DbErr> for HandlerError {
    fn from(error: DbErr) -> Self {
        HandlerError::Retry(error.to_string())
    }
}

/// What a handler may do while it applies an event: write in the consumer's transaction and
/// publish events that commit with it.
pub struct Effect<'a> {
    txn: &'a DatabaseTransaction,
    outbox: &'a Outbox,
    now: DateTime<Utc>,
}

impl<'a> Effect<'a> {
    pub(crate) fn new(
        txn: &'a DatabaseTransaction,
        outbox: &'a Outbox,
        now: DateTime<Utc>,
    ) -> Self {
        Self { txn, outbox, now }
    }

    /// The transaction the effect is written in; the consumer commits it (never the handler).
    pub fn txn(&self) -> &'a DatabaseTransaction {
        self.txn
    }

    /// The consumer's clock at the start of the batch: one instant for all of its effects.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Stages `event` in the effect's transaction: it is published if and only if the effect
    /// commits, and the relay is woken when it does.
    pub async fn publish(&self, event: OutgoingEvent) -> Result<(), DbErr> {
        self.outbox
            .stage(self.txn, event, self.now)
            .await
            .map(|_| ())
    }

    /// [`Effect::publish`] for several events, in order.
    pub async fn publish_many(&self, events: Vec<OutgoingEvent>) -> Result<(), DbErr> {
        self.outbox
            .stage_many(self.txn, events, self.now)
            .await
            .map(|_| ())
    }
}

/// Applies one kind of event, already decoded into `M`.
#[async_trait::async_trait]
pub trait Handle<M>: Send + Sync + 'static {
    async fn handle(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        message: M,
    ) -> Result<(), HandlerError>;
}

/// One handler object often applies several event types: register clones of one `Arc`.
#[async_trait::async_trait]
impl<M: Send + 'static, H: Handle<M>> Handle<M> for Arc<H> {
    async fn handle(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        message: M,
    ) -> Result<(), HandlerError> {
        H::handle(self, effect, event, message).await
    }
}

/// What to do with an event whose `ce-type` has no handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownType {
    /// Acknowledge it and go on: a publisher adding a new event type must not stall its consumers.
    Skip,
    /// Park it on the dead-letter subject: for consumers that must see every event they filter on.
    DeadLetter,
}

/// The outcome of dispatching one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatched {
    Applied,
    /// No handler for its type, and the rule is [`UnknownType::Skip`].
    Skipped,
}

/// Routes events by `ce-type` to typed handlers.
pub struct Dispatcher {
    routes: HashMap<String, Box<dyn Route>>,
    unknown: UnknownType,
}

impl Default for Dispatcher {
    fn default() -> Self {
        Self::new()
    }
}

impl Dispatcher {
    /// No routes yet; unknown types are skipped.
    pub fn new() -> Self {
        Self {
            routes: HashMap::new(),
            unknown: UnknownType::Skip,
        }
    }

    /// Events of `ce_type` carry an `M`; `handler` applies them. A later `on` for the same type
    /// replaces the earlier one.
    pub fn on<M>(mut self, ce_type: impl Into<String>, handler: impl Handle<M>) -> Self
    where
        M: prost::Message + Default + Send + 'static,
    {
        self.routes.insert(
            ce_type.into(),
            Box::new(Typed {
                handler,
                message: PhantomData,
            }),
        );
        self
    }

    pub fn on_unknown(mut self, rule: UnknownType) -> Self {
        self.unknown = rule;
        self
    }

    /// The types that have a handler, for logs and tests.
    pub fn types(&self) -> impl Iterator<Item = &str> {
        self.routes.keys().map(String::as_str)
    }

    /// Decodes `event` as its type says and applies it. A body that does not decode as that type
    /// is rejected (it will not decode on the next delivery either).
    pub async fn dispatch(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
    ) -> Result<Dispatched, HandlerError> {
        match self.routes.get(event.attributes.ce_type.as_str()) {
            Some(route) => route
                .apply(effect, event)
                .await
                .map(|()| Dispatched::Applied),
            None => match self.unknown {
                UnknownType::Skip => Ok(Dispatched::Skipped),
                UnknownType::DeadLetter => Err(HandlerError::Reject(format!(
                    "no handler for event type {}",
                    event.attributes.ce_type
                ))),
            },
        }
    }
}

/// A route with its message type erased, so routes of many types share one map.
trait Route: Send + Sync {
    fn apply<'a>(
        &'a self,
        effect: &'a Effect<'a>,
        event: &'a IncomingEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;
}

struct Typed<M, H> {
    handler: H,
    /// `fn() -> M`: the route makes `M`s, it holds none (and so is `Send + Sync` for any `M`).
    message: PhantomData<fn() -> M>,
}

impl<M, H> Route for Typed<M, H>
where
    M: prost::Message + Default + Send + 'static,
    H: Handle<M>,
{
    fn apply<'a>(
        &'a self,
        effect: &'a Effect<'a>,
        event: &'a IncomingEvent,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let message = event.decode::<M>().map_err(|error| {
                HandlerError::Reject(format!(
                    "body of {} does not decode as {}: {error}",
                    event.attributes.ce_type,
                    std::any::type_name::<M>()
                ))
            })?;
            self.handler.handle(effect, event, message).await
        })
    }
}
