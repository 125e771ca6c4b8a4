//! The directory's errors, and how each classifies into the platform's code table.

use desk_kit::error::{ApiError, Classify, FieldViolation, classify_db_error};

use crate::{
    domain::{
        AccessDenied, CatalogError, MembershipError, PersonError, ProvisioningFinished, Stale,
        TeamError, Violations,
    },
    store::StoreError,
};

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("invalid request: {0}")]
    Invalid(Violations),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("the {what} {stale}")]
    Stale { what: &'static str, stale: Stale },
    /// Another write got there between this one's read and write.
    #[error("the {0} changed meanwhile: reload it and try again")]
    Concurrent(&'static str),
    #[error(transparent)]
    Forbidden(#[from] AccessDenied),
    #[error("{0}")]
    Precondition(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// A staged plan that the directory no longer matches.
    #[error("{0}")]
    PlanStale(String),
    #[error(transparent)]
    Idempotency(#[from] desk_kit::idempotency::IdempotencyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type DirectoryResult<T> = Result<T, DirectoryError>;

impl From<Violations> for DirectoryError {
    fn from(violations: Violations) -> Self {
        DirectoryError::Invalid(violations)
    }
}

impl From<sea_orm::DbErr> for DirectoryError {
    fn from(error: sea_orm::DbErr) -> Self {
        DirectoryError::Store(StoreError::Db(error))
    }
}

impl From<PersonError> for DirectoryError {
    fn from(error: PersonError) -> Self {
        DirectoryError::Precondition(error.to_string())
    }
}

impl From<MembershipError> for DirectoryError {
    fn from(error: MembershipError) -> Self {
        DirectoryError::Precondition(error.to_string())
    }
}

impl From<ProvisioningFinished> for DirectoryError {
    fn from(error: ProvisioningFinished) -> Self {
        DirectoryError::Precondition(error.to_string())
    }
}

impl From<TeamError> for DirectoryError {
    fn from(error: TeamError) -> Self {
        match error {
            TeamError::Invalid(violations) => DirectoryError::Invalid(violations),
            other => DirectoryError::Precondition(other.to_string()),
        }
    }
}

impl From<CatalogError> for DirectoryError {
    fn from(error: CatalogError) -> Self {
        match error {
            CatalogError::Invalid(violations) => DirectoryError::Invalid(violations),
            CatalogError::Stale { expected, current } => DirectoryError::Stale {
                what: "skill catalog",
                stale: Stale { expected, current },
            },
        }
    }
}

impl Classify for DirectoryError {
    fn classify(&self) -> ApiError {
        match self {
            DirectoryError::Invalid(violations) => ApiError::InvalidArgument(
                violations
                    .iter()
                    .map(|v| FieldViolation::new(v.field.clone(), v.description.clone()))
                    .collect(),
            ),
            DirectoryError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            DirectoryError::Stale { .. }
            | DirectoryError::Concurrent(_)
            | DirectoryError::PlanStale(_) => ApiError::Aborted(self.to_string()),
            DirectoryError::Forbidden(denied) => ApiError::PermissionDenied(denied.to_string()),
            DirectoryError::Precondition(message) => ApiError::FailedPrecondition(message.clone()),
            DirectoryError::AlreadyExists(message) => ApiError::AlreadyExists(message.clone()),
            DirectoryError::Idempotency(error) => error.classify(),
            DirectoryError::Store(StoreError::Db(error)) => classify_db_error(error),
            DirectoryError::Store(StoreError::Corrupt(_)) => ApiError::Internal,
        }
    }
}
