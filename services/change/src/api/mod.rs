//! The gRPC service: each handler parses its request, authorizes, lets the domain decide, writes
//! the change with its history and events in one transaction, and replies.
//!
//! # Layout
//! - [`service`]: the tonic trait, one thin method per RPC.
//! - `changes`: create, read, edit, list, history and the lifecycle steps.
//! - `calendar`: templates, freezes, maintenance windows, the schedule, conflicts, the next free
//!   slot, the policy and metrics.
//! - [`convert`]: domain values to and from protobuf.
//! - [`graphs`]: every tenant's in-memory projection of the CMDB.

mod calendar;
mod changes;
pub mod convert;
pub mod graphs;
pub mod service;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use desk_kit::{
    auth::Caller,
    clock::SharedClock,
    error::{ApiError, Classify, FieldViolation, classify_db_error},
    events::OutgoingEvent,
    history::FieldChange,
};
use uuid::Uuid;

use crate::{
    domain::{AccessDenied, Change, ChangeError, DecisionRefused, TransitionRefused, Violations},
    store::{ChangeStore, HistoryActor, StoreError},
};
pub use graphs::Graphs;

#[derive(Debug, thiserror::Error)]
pub enum ApiFailure {
    #[error("invalid request: {0}")]
    Invalid(Violations),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Forbidden(String),
    #[error("the change is at version {current}, not {expected}: reload it and try again")]
    Stale { expected: i64, current: i64 },
    #[error("{0}")]
    Precondition(String),
    #[error(transparent)]
    Idempotency(#[from] desk_kit::idempotency::IdempotencyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type ApiResult<T> = Result<T, ApiFailure>;

impl From<Violations> for ApiFailure {
    fn from(violations: Violations) -> Self {
        ApiFailure::Invalid(violations)
    }
}

impl From<AccessDenied> for ApiFailure {
    fn from(denied: AccessDenied) -> Self {
        ApiFailure::Forbidden(denied.to_string())
    }
}

impl From<TransitionRefused> for ApiFailure {
    fn from(refused: TransitionRefused) -> Self {
        ApiFailure::Precondition(refused.to_string())
    }
}

impl From<DecisionRefused> for ApiFailure {
    fn from(refused: DecisionRefused) -> Self {
        match refused {
            DecisionRefused::AlreadyDecided(_) => ApiFailure::Precondition(refused.to_string()),
            DecisionRefused::NotOnCab(_) | DecisionRefused::NoDelegation { .. } => {
                ApiFailure::Forbidden(refused.to_string())
            }
        }
    }
}

impl From<ChangeError> for ApiFailure {
    fn from(error: ChangeError) -> Self {
        match error {
            ChangeError::Invalid(violations) => ApiFailure::Invalid(violations),
            ChangeError::Stale { expected, current } => ApiFailure::Stale { expected, current },
            ChangeError::Transition(refused) => refused.into(),
            ChangeError::Precondition(message) => ApiFailure::Precondition(message),
        }
    }
}

impl From<sea_orm::DbErr> for ApiFailure {
    fn from(error: sea_orm::DbErr) -> Self {
        ApiFailure::Store(StoreError::Db(error))
    }
}

impl Classify for ApiFailure {
    fn classify(&self) -> ApiError {
        match self {
            ApiFailure::Invalid(violations) => ApiError::InvalidArgument(
                violations
                    .iter()
                    .map(|(field, description)| {
                        FieldViolation::new(field.clone(), description.clone())
                    })
                    .collect(),
            ),
            ApiFailure::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            ApiFailure::Forbidden(reason) => ApiError::PermissionDenied(reason.clone()),
            ApiFailure::Stale { .. } => ApiError::Aborted(self.to_string()),
            ApiFailure::Precondition(message) => ApiError::FailedPrecondition(message.clone()),
            ApiFailure::Idempotency(error) => error.classify(),
            ApiFailure::Store(StoreError::Db(error)) => classify_db_error(error),
            ApiFailure::Store(StoreError::Corrupt(_)) => ApiError::Internal,
        }
    }
}

/// The service's state, shared by every handler (cheap to clone).
#[derive(Clone)]
pub struct ChangeApi {
    pub(crate) store: Arc<ChangeStore>,
    pub(crate) region: String,
    pub(crate) clock: SharedClock,
    pub(crate) graphs: Arc<Graphs>,
}

impl ChangeApi {
    pub fn new(
        store: Arc<ChangeStore>,
        region: String,
        clock: SharedClock,
        graphs: Arc<Graphs>,
    ) -> Self {
        Self {
            store,
            region,
            clock,
            graphs,
        }
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn graphs(&self) -> &Arc<Graphs> {
        &self.graphs
    }

    pub fn store(&self) -> &Arc<ChangeStore> {
        &self.store
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// A change's id from a request: not found when it is not an id of this region (so ids
    /// cannot be probed, a malformed id answers as an unknown one).
    fn change_id(&self, text: &str) -> ApiResult<Uuid> {
        let mut ignored = Violations::new();
        convert::id_of(&self.region, "id", text, &mut ignored).ok_or(ApiFailure::NotFound("change"))
    }

    async fn load(&self, caller: &Caller, text: &str) -> ApiResult<Change> {
        let id = self.change_id(text)?;
        self.store
            .find_change(self.store.db().connection(), &caller.tenant, id)
            .await?
            .ok_or(ApiFailure::NotFound("change"))
    }

    /// Writes `change` (read at `read_version`) with its history entry and events, in one
    /// transaction.
    #[allow(clippy::too_many_arguments)]
    async fn write(
        &self,
        caller: &Caller,
        change: &Change,
        read_version: i64,
        action: &str,
        changes: &[FieldChange],
        note: &str,
        events: Vec<OutgoingEvent>,
    ) -> ApiResult<()> {
        let now = self.now();
        let txn = self.store.begin().await?;
        if !self
            .store
            .update_change(&*txn, change, read_version)
            .await?
        {
            return Err(ApiFailure::Stale {
                expected: read_version,
                current: read_version + 1,
            });
        }
        self.store.replace_affected(&*txn, change).await?;
        self.store
            .append_history(
                &*txn,
                change,
                &history_actor(caller),
                action,
                changes,
                note,
                now,
            )
            .await?;
        self.store.stage_many(&txn, events, now).await?;
        self.store.commit(txn).await?;
        Ok(())
    }
}

pub fn history_actor(caller: &Caller) -> HistoryActor {
    HistoryActor {
        subject: caller.subject.clone(),
        name: caller.name.clone().unwrap_or_default(),
        roles: caller.roles.iter().map(|r| r.as_str().to_owned()).collect(),
    }
}
