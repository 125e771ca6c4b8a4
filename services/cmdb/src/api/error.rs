//! The CMDB's errors, and how each classifies into the platform's code table.

use desk_kit::error::{ApiError, Classify, FieldViolation, classify_db_error};

use crate::{
    domain::{
        AccessDenied, CiError, CiWriteError, ClassError, ImportFinished, RelationshipError,
        Violations,
    },
    store::StoreError,
};

#[derive(Debug, thiserror::Error)]
pub enum CmdbError {
    #[error("invalid request: {0}")]
    Invalid(Violations),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("the CI is at version {current}, not {expected}: reload it and try again")]
    Stale { expected: i64, current: i64 },
    #[error(transparent)]
    Ci(#[from] CiError),
    #[error(transparent)]
    Class(#[from] ClassError),
    #[error(transparent)]
    Relationship(#[from] RelationshipError),
    #[error("{0}")]
    Precondition(String),
    #[error("{0}")]
    Forbidden(&'static str),
    /// The object asked for is one that exists: the message names it.
    #[error("{0}")]
    AlreadyExists(String),
    #[error(transparent)]
    Idempotency(#[from] desk_kit::idempotency::IdempotencyError),
    #[error(
        "the answer would be {bytes} bytes, over the {limit}-byte message limit: ask for the SUMMARY view, lower max_nodes or max_depth, or use include_via instead of include_paths"
    )]
    AnswerTooLarge { bytes: usize, limit: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Violations> for CmdbError {
    fn from(violations: Violations) -> Self {
        CmdbError::Invalid(violations)
    }
}

impl From<AccessDenied> for CmdbError {
    fn from(denied: AccessDenied) -> Self {
        CmdbError::Forbidden(denied.reason())
    }
}

impl From<ImportFinished> for CmdbError {
    fn from(finished: ImportFinished) -> Self {
        CmdbError::Precondition(finished.to_string())
    }
}

impl From<CiWriteError> for CmdbError {
    fn from(error: CiWriteError) -> Self {
        match error {
            CiWriteError::Stale { expected, current } => CmdbError::Stale { expected, current },
            CiWriteError::Invalid(violations) => CmdbError::Invalid(violations),
            CiWriteError::Ci(error) => CmdbError::Ci(error),
            CiWriteError::Gone { .. } => CmdbError::NotFound("CI"),
        }
    }
}

impl From<sea_orm::DbErr> for CmdbError {
    fn from(error: sea_orm::DbErr) -> Self {
        CmdbError::Store(StoreError::Db(error))
    }
}

impl Classify for CmdbError {
    fn classify(&self) -> ApiError {
        match self {
            CmdbError::Invalid(violations) => ApiError::InvalidArgument(
                violations
                    .iter()
                    .map(|v| FieldViolation::new(v.field.clone(), v.description.clone()))
                    .collect(),
            ),
            CmdbError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            CmdbError::Stale { .. } => ApiError::Aborted(self.to_string()),
            CmdbError::Ci(error) => ApiError::FailedPrecondition(error.to_string()),
            CmdbError::Class(error) => ApiError::invalid(
                error
                    .class()
                    .map_or_else(|| "class".to_owned(), |c| format!("class ({c})")),
                error.to_string(),
            ),
            CmdbError::Relationship(error) => match error.field() {
                Some(field) => ApiError::invalid(field, error.to_string()),
                None => ApiError::FailedPrecondition(error.to_string()),
            },
            CmdbError::Precondition(message) => ApiError::FailedPrecondition(message.clone()),
            CmdbError::Forbidden(reason) => ApiError::PermissionDenied((*reason).to_owned()),
            CmdbError::AlreadyExists(message) => ApiError::AlreadyExists(message.clone()),
            CmdbError::Idempotency(error) => error.classify(),
            CmdbError::AnswerTooLarge { .. } => ApiError::ResourceExhausted(self.to_string()),
            CmdbError::Store(StoreError::Db(error)) => classify_db_error(error),
            CmdbError::Store(StoreError::Corrupt(_)) => ApiError::Internal,
        }
    }
}
