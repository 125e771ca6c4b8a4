//! The gRPC service: each handler parses its request, authorizes, lets the domain decide, writes
//! the offering or request with its events in one transaction, and replies.
//!
//! # Layout
//! - [`service`]: the tonic trait, one thin method per RPC.
//! - `offerings`: create, update (a new version), get, list what the caller may see.
//! - `requests`: submit, read, list, cancel, approvals, delegation and tasks.
//! - [`convert`]: domain values to and from protobuf.
//!
//! [`CatalogApi::modify`] is the one way a request changes after submission — the API, the
//! timer worker and the ticket consumer all go through it: the request and the offering version
//! it was made against are read, the approvers of its policy resolved from the directory
//! projection, the domain applied, and the request written with a version check.

pub mod convert;
mod offerings;
mod requests;
pub mod service;

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use desk_kit::{
    clock::SharedClock,
    error::{ApiError, Classify, FieldViolation, classify_db_error},
    events::OutgoingEvent,
};
use desk_proto::common::v1 as common;
use sea_orm::DatabaseTransaction;
use uuid::Uuid;

use crate::{
    domain::{
        AccessDenied, Offering, Violations,
        approval::{ApprovalPolicy, Approvers},
        request::{Fact, Request, RequestError},
    },
    events,
    store::{CatalogStore, StoreError},
};

#[derive(Debug, thiserror::Error)]
pub enum ApiFailure {
    #[error("invalid request: {0}")]
    Invalid(Violations),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Forbidden(String),
    #[error("the {0} changed meanwhile: reload it and try again")]
    Stale(&'static str),
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

impl From<RequestError> for ApiFailure {
    fn from(error: RequestError) -> Self {
        use crate::domain::{approval::DecisionRefused, fulfillment::TaskRefused};
        match error {
            RequestError::Decision(DecisionRefused::NotApprover) => {
                ApiFailure::Forbidden(error.to_string())
            }
            RequestError::Task(TaskRefused::Unknown) => ApiFailure::NotFound("task"),
            RequestError::Task(TaskRefused::ClaimedByAnother) => {
                ApiFailure::Forbidden(error.to_string())
            }
            _ => ApiFailure::Precondition(error.to_string()),
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
            ApiFailure::Stale(_) => ApiError::Aborted(self.to_string()),
            ApiFailure::Precondition(message) => ApiError::FailedPrecondition(message.clone()),
            ApiFailure::Idempotency(error) => error.classify(),
            ApiFailure::Store(StoreError::Db(error)) => classify_db_error(error),
            ApiFailure::Store(StoreError::Corrupt(_)) => ApiError::Internal,
        }
    }
}

/// Approvers of every step (and escalation) of a policy, resolved for one requester.
pub struct Resolved(HashMap<Approvers, Vec<String>>);

impl Resolved {
    pub fn get(&self, approvers: &Approvers) -> Vec<String> {
        self.0.get(approvers).cloned().unwrap_or_default()
    }
}

/// The service's state, shared by every handler (cheap to clone).
#[derive(Clone)]
pub struct CatalogApi {
    pub(crate) store: Arc<CatalogStore>,
    pub(crate) region: String,
    pub(crate) clock: SharedClock,
}

impl CatalogApi {
    pub fn new(store: Arc<CatalogStore>, region: String, clock: SharedClock) -> Self {
        Self {
            store,
            region,
            clock,
        }
    }

    pub fn store(&self) -> &Arc<CatalogStore> {
        &self.store
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The service's clock (the manual one in tests).
    pub fn clock_now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Resolves who approves each step of `policy` for `requester`, from the directory projection.
    pub async fn resolve(
        &self,
        conn: &DatabaseTransaction,
        tenant: &str,
        requester: &str,
        policy: &ApprovalPolicy,
    ) -> ApiResult<Resolved> {
        let mut resolved = HashMap::new();
        // Collected first: an iterator of closures held across an await makes the future !Send.
        let mut wanted: Vec<&Approvers> = Vec::new();
        for step in &policy.steps {
            wanted.push(&step.approvers);
            wanted.extend(step.escalate_to.as_ref());
        }
        for approvers in wanted {
            if resolved.contains_key(approvers) {
                continue;
            }
            let subjects = match approvers {
                Approvers::Manager => self
                    .store
                    .manager_of(conn, tenant, requester)
                    .await?
                    .into_iter()
                    .collect(),
                Approvers::Group(team) => self.store.members_of(conn, tenant, team).await?,
                Approvers::People(people) => people.clone(),
            };
            resolved.insert(approvers.clone(), subjects);
        }
        Ok(Resolved(resolved))
    }

    /// Changes request `id` in `txn` through `change` (see the module's docs) and returns it with
    /// its events, which the caller stages in the same transaction.
    pub async fn modify<F>(
        &self,
        txn: &DatabaseTransaction,
        tenant: &str,
        id: Uuid,
        actor: &common::Actor,
        now: DateTime<Utc>,
        change: F,
    ) -> ApiResult<(Request, Vec<OutgoingEvent>)>
    where
        F: FnOnce(&mut Request, &Offering, &Resolved) -> ApiResult<Vec<Fact>> + Send,
    {
        let mut request = self
            .store
            .request(txn, tenant, id)
            .await?
            .ok_or(ApiFailure::NotFound("request"))?;
        let offering = self
            .store
            .offering_version(txn, tenant, request.offering_id, request.offering_version)
            .await?
            .ok_or_else(|| {
                ApiFailure::Store(StoreError::Corrupt(format!(
                    "request {id} names offering version {} that is not kept",
                    request.offering_version
                )))
            })?;
        let resolved = self
            .resolve(
                txn,
                tenant,
                &request.requester,
                &offering.definition.approval,
            )
            .await?;
        let read_version = request.version;
        let facts = change(&mut request, &offering, &resolved)?;
        if request.version == read_version {
            return Ok((request, Vec::new()));
        }
        request.updated_at = now;
        if !self
            .store
            .update_request(txn, &request, read_version)
            .await?
        {
            return Err(ApiFailure::Stale("request"));
        }
        let events = events::of_facts(&self.region, &request, &offering, &facts, actor);
        Ok((request, events))
    }

    /// [`CatalogApi::modify`] in a transaction of its own, committed with the events; a write
    /// that lost a race against another is tried again (twice) on the request as it is then.
    pub async fn modify_and_commit<F>(
        &self,
        tenant: &str,
        id: Uuid,
        actor: &common::Actor,
        change: F,
    ) -> ApiResult<Request>
    where
        F: Fn(&mut Request, &Offering, &Resolved) -> ApiResult<Vec<Fact>> + Send + Sync,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let now = self.now();
            let txn = self.store.begin().await?;
            match self.modify(&txn, tenant, id, actor, now, &change).await {
                Ok((request, events)) => {
                    if !events.is_empty() {
                        self.store.stage_many(&txn, events, now).await?;
                        self.store.commit(txn).await?;
                    }
                    return Ok(request);
                }
                Err(ApiFailure::Stale(_)) if attempt < 3 => {}
                Err(error) => return Err(error),
            }
        }
    }
}
