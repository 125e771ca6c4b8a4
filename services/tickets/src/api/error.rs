//! The tickets service's errors, and how each classifies into the platform's code table.

use desk_kit::error::{ApiError, Classify, FieldViolation, classify_db_error};

use crate::{
    domain::{AccessError, LifecycleError, RuleError, Violations},
    store::StoreError,
};

#[derive(Debug, thiserror::Error)]
pub enum TicketError {
    #[error("invalid request: {0}")]
    Invalid(Violations),
    /// Missing, or not the caller's to see: both answer alike so ids cannot be probed.
    #[error("ticket not found")]
    NotFound,
    #[error("the ticket is at version {current}, not {expected}: reload it and try again")]
    Stale { expected: i64, current: i64 },
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error(transparent)]
    Idempotency(#[from] desk_kit::idempotency::IdempotencyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Violations> for TicketError {
    fn from(violations: Violations) -> Self {
        TicketError::Invalid(violations)
    }
}

impl From<RuleError> for TicketError {
    fn from(error: RuleError) -> Self {
        match error {
            RuleError::Lifecycle(error) => TicketError::Lifecycle(error),
            RuleError::Access(error) => TicketError::Access(error),
            RuleError::Invalid(violations) => TicketError::Invalid(violations),
        }
    }
}

impl From<sea_orm::DbErr> for TicketError {
    fn from(error: sea_orm::DbErr) -> Self {
        TicketError::Store(StoreError::Db(error))
    }
}

impl Classify for TicketError {
    fn classify(&self) -> ApiError {
        match self {
            TicketError::Invalid(violations) => ApiError::InvalidArgument(
                violations
                    .iter()
                    .map(|v| FieldViolation::new(v.field.clone(), v.description.clone()))
                    .collect(),
            ),
            TicketError::NotFound | TicketError::Access(AccessError::NotFound) => {
                ApiError::NotFound("ticket not found".into())
            }
            TicketError::Stale { .. } => ApiError::Aborted(self.to_string()),
            TicketError::Lifecycle(error) => match error.field() {
                Some(field) => ApiError::invalid(field, error.to_string()),
                None => ApiError::FailedPrecondition(error.to_string()),
            },
            TicketError::Access(error) => ApiError::PermissionDenied(error.to_string()),
            TicketError::Idempotency(error) => error.classify(),
            TicketError::Store(StoreError::Db(error)) => classify_db_error(error),
            TicketError::Store(StoreError::Corrupt(_)) => ApiError::Internal,
        }
    }
}
