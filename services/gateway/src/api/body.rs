//! Request bodies on their way through: their messages held to the size limit, and the one
//! message of a unary call read whole (for its id, and to send it again on a retry).

use std::{
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt as _;
use tonic::{Status, body::Body};

use crate::domain::frames::{FrameScanner, PREFIX_BYTES, TooLarge};

fn too_large(error: TooLarge) -> Status {
    Status::resource_exhausted(format!(
        "a request message of {} bytes is over the gateway's limit of {} bytes",
        error.announced, error.limit
    ))
}

/// Where a [`FrameLimited`] body leaves the status it failed with, for whoever sent it on: an
/// HTTP/2 client reports a body that failed only as a reset stream.
pub type Refusal = Arc<OnceLock<Status>>;

/// A body that fails with `RESOURCE_EXHAUSTED` as soon as a message prefix announces more than
/// the limit, before the message itself is read or forwarded. The error is a [`Status`], which
/// tonic (in this process) answers as it is; the proxy reads it from the [`Refusal`].
pub struct FrameLimited {
    inner: Body,
    scanner: FrameScanner,
    refusal: Refusal,
}

impl FrameLimited {
    pub fn new(inner: Body, limit: usize) -> FrameLimited {
        FrameLimited {
            inner,
            scanner: FrameScanner::new(u64::try_from(limit).unwrap_or(u64::MAX)),
            refusal: Refusal::default(),
        }
    }

    /// The status this body will have failed with, if it does.
    pub fn refusal(&self) -> Refusal {
        self.refusal.clone()
    }
}

impl http_body::Body for FrameLimited {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(context);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
            && let Err(error) = self.scanner.scan(data)
        {
            let status = too_large(error);
            let _ = self.refusal.set(status.clone());
            return Poll::Ready(Some(Err(status)));
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    /// Unknown, whatever the inner body says: a gRPC-Web text body reports the size of its
    /// base64 text, not of the messages decoded from it, and an HTTP/2 client that believed it
    /// would send a `content-length` the stream then breaks (`PROTOCOL_ERROR`).
    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::default()
    }
}

/// The whole body of a unary request, at most one message of `limit` bytes (and its prefix).
/// Errors are statuses to answer: `RESOURCE_EXHAUSTED` over the limit, `CANCELLED` when the
/// client went away.
pub async fn collect_unary(body: Body, limit: usize) -> Result<Bytes, Status> {
    let bounded = http_body_util::Limited::new(
        FrameLimited::new(body, limit),
        limit.saturating_add(PREFIX_BYTES),
    );
    match bounded.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) => Err(match error.downcast::<Status>() {
            Ok(status) => *status,
            Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                Status::resource_exhausted(format!(
                    "a unary request of more than {limit} bytes is over the gateway's limit"
                ))
            }
            Err(error) => {
                tracing::debug!(error = %error, "request body ended early");
                Status::cancelled("the request body ended early")
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(message: &[u8]) -> Body {
        let mut bytes = vec![0];
        bytes.extend_from_slice(&u32::try_from(message.len()).expect("small").to_be_bytes());
        bytes.extend_from_slice(message);
        Body::new(http_body_util::Full::new(Bytes::from(bytes)))
    }

    #[tokio::test]
    async fn a_unary_body_within_the_limit_is_read_whole() {
        let bytes = collect_unary(framed(b"0123456789"), 10)
            .await
            .expect("fits");
        assert_eq!(bytes.len(), 15);
    }

    #[tokio::test]
    async fn a_message_over_the_limit_is_resource_exhausted() {
        let status = collect_unary(framed(b"0123456789!"), 10)
            .await
            .expect_err("too large");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(
            status.message().contains("11 bytes"),
            "{}",
            status.message()
        );
    }
}
