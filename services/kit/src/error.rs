//! The platform's one table from error classes to gRPC status codes (ARCHITECTURE §11).
//!
//! Each service keeps its own `thiserror` enum and classifies every variant into an [`ApiError`];
//! only this file turns those into `tonic::Status`. Internal causes are logged here with their chain
//! and never sent to the client.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// One invalid field of a request, as `google.rpc.BadRequest.FieldViolation` carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The request field's name as the client sent it (`title`, `watcher_ids[2]`).
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// An error as a client sees it: a class with a safe message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// Bad input; every violation is listed, not only the first.
    InvalidArgument(Vec<FieldViolation>),
    NotFound(String),
    /// A create with a reused idempotency key and another body, or a duplicate that must stay unique.
    AlreadyExists(String),
    /// Optimistic concurrency: the write named a version that is no longer current.
    Aborted(String),
    /// The object is in a state that forbids the call (a forbidden lifecycle transition).
    FailedPrecondition(String),
    Unauthenticated(String),
    PermissionDenied(String),
    ResourceExhausted(String),
    /// A dependency (database, NATS) is not reachable right now; the client may retry.
    Unavailable(String),
    /// Anything else; the message is generic, the cause is only logged.
    Internal,
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        ApiError::InvalidArgument(vec![FieldViolation::new(field, description)])
    }

    pub fn code(&self) -> Code {
        match self {
            ApiError::InvalidArgument(_) => Code::InvalidArgument,
            ApiError::NotFound(_) => Code::NotFound,
            ApiError::AlreadyExists(_) => Code::AlreadyExists,
            ApiError::Aborted(_) => Code::Aborted,
            ApiError::FailedPrecondition(_) => Code::FailedPrecondition,
            ApiError::Unauthenticated(_) => Code::Unauthenticated,
            ApiError::PermissionDenied(_) => Code::PermissionDenied,
            ApiError::ResourceExhausted(_) => Code::ResourceExhausted,
            ApiError::Unavailable(_) => Code::Unavailable,
            ApiError::Internal => Code::Internal,
        }
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Status {
        match error {
            ApiError::InvalidArgument(violations) => {
                let summary = violations
                    .iter()
                    .map(|v| format!("{}: {}", v.field, v.description))
                    .collect::<Vec<_>>()
                    .join("; ");
                let details = ErrorDetails::with_bad_request(
                    violations
                        .into_iter()
                        .map(|v| tonic_types::FieldViolation::new(v.field, v.description))
                        .collect::<Vec<_>>(),
                );
                Status::with_error_details(
                    Code::InvalidArgument,
                    format!("invalid request: {summary}"),
                    details,
                )
            }
            ApiError::NotFound(m) => Status::not_found(m),
            ApiError::AlreadyExists(m) => Status::already_exists(m),
            ApiError::Aborted(m) => Status::aborted(m),
            ApiError::FailedPrecondition(m) => Status::failed_precondition(m),
            ApiError::Unauthenticated(m) => Status::unauthenticated(m),
            ApiError::PermissionDenied(m) => Status::permission_denied(m),
            ApiError::ResourceExhausted(m) => Status::resource_exhausted(m),
            ApiError::Unavailable(m) => Status::unavailable(m),
            ApiError::Internal => Status::internal("internal error; it has been logged"),
        }
    }
}

/// How a service error classifies itself. Implement it on each service's error enum; `into_status`
/// logs internal causes with their chain and returns what the client may see.
pub trait Classify: std::error::Error {
    fn classify(&self) -> ApiError;

    fn into_status(self) -> Status
    where
        Self: Sized,
    {
        let api = self.classify();
        if matches!(api, ApiError::Internal | ApiError::Unavailable(_)) {
            tracing::error!(error = %error_chain(&self), "request failed");
        }
        api.into()
    }
}

/// `outer: inner: innermost`, for logs.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Classifies a database error: connection trouble is retryable, the rest is internal.
pub fn classify_db_error(error: &sea_orm::DbErr) -> ApiError {
    use sea_orm::DbErr;
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => {
            ApiError::Unavailable("the database is not reachable; retry shortly".into())
        }
        _ => ApiError::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_every_field_violation_in_bad_request_details() {
        let status: Status = ApiError::InvalidArgument(vec![
            FieldViolation::new("title", "must not be empty"),
            FieldViolation::new("impact", "unknown level"),
        ])
        .into();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let bad_request = details.bad_request().expect("bad request details");
        let fields: Vec<_> = bad_request
            .field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, ["title", "impact"]);
    }

    /// A service error as a handler returns it: the database's own text is its cause.
    #[derive(Debug, thiserror::Error)]
    enum StoreFailure {
        #[error("cannot save the ticket")]
        Save(#[source] sea_orm::DbErr),
    }

    impl Classify for StoreFailure {
        fn classify(&self) -> ApiError {
            match self {
                StoreFailure::Save(db) => classify_db_error(db),
            }
        }
    }

    /// What `into_status` logs, for the assertions about what it writes.
    #[derive(Clone, Default)]
    struct CapturedLog(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl CapturedLog {
        fn text(&self) -> String {
            let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        }
    }

    impl std::io::Write for CapturedLog {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut buffer) = self.0.lock() {
                buffer.extend_from_slice(bytes);
            }
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Runs `work` with every log line it writes captured.
    fn capturing_logs<T>(work: impl FnOnce() -> T) -> (T, String) {
        let log = CapturedLog::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let result = tracing::subscriber::with_default(subscriber, work);
        (result, log.text())
    }

    #[test]
    fn internal_errors_say_nothing_about_their_cause_and_log_it_whole() {
        // Given a store failure whose cause carries the database's own words.
        let cause = "relation \"tickets\" does not exist on host 10.1.2.3";
        let failure = StoreFailure::Save(sea_orm::DbErr::Custom(cause.to_owned()));

        // When it becomes the client's status.
        let (status, log) = capturing_logs(|| failure.into_status());

        // Then the client learns only that it failed, and the log holds the whole chain.
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error; it has been logged");
        assert!(
            status.details().is_empty(),
            "no details: {:?}",
            status.details()
        );
        assert!(log.contains("request failed"), "log: {log}");
        assert!(log.contains("cannot save the ticket: "), "log: {log}");
        assert!(log.contains(cause), "log: {log}");
    }

    #[test]
    fn a_database_that_cannot_be_reached_is_unavailable_to_retry_and_logged() {
        // Given a store failure because no connection could be had.
        let failure = StoreFailure::Save(sea_orm::DbErr::ConnectionAcquire(
            sea_orm::ConnAcquireErr::Timeout,
        ));

        // When it becomes the client's status.
        let (status, log) = capturing_logs(|| failure.into_status());

        // Then the client may retry, reads a generic message, and the cause is logged.
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            status.message(),
            "the database is not reachable; retry shortly"
        );
        assert!(log.contains("cannot save the ticket: "), "log: {log}");
    }

    #[test]
    fn errors_the_client_caused_are_not_logged_as_failures() {
        // Given an error of the client's making.
        #[derive(Debug, thiserror::Error)]
        #[error("no ticket 42")]
        struct Missing;
        impl Classify for Missing {
            fn classify(&self) -> ApiError {
                ApiError::NotFound("ticket 42 not found".into())
            }
        }

        // When it becomes the client's status.
        let (status, log) = capturing_logs(|| Missing.into_status());

        // Then the client reads its message and nothing is logged.
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(status.message(), "ticket 42 not found");
        assert!(log.is_empty(), "log: {log}");
    }
}
