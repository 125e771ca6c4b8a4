//! The gateway's rules, pure: no I/O, no async, no clock reads (time is passed in).
//!
//! - [`methods`]: every public method from the descriptor set: owner, class, idempotency,
//!   streaming, the field naming its object.
//! - [`routes`]: where a call goes (owner's upstream, this process, a peer region), and reading
//!   the id's region from a request without its message type.
//! - [`frames`]: gRPC's length-prefixed messages: size limits, the one message of a unary call.
//! - [`limits`]: token buckets per class, per tenant and per person; what a caller is told.
//! - [`retry`]: which calls are retried, the back-off, and the per-upstream retry budget.
//! - [`breaker`]: the per-upstream circuit breaker's state machine.
//! - [`deadline`]: capping `grpc-timeout`.
//! - [`cors`]: which browser origins may call.

pub mod breaker;
pub mod cors;
pub mod deadline;
pub mod frames;
pub mod limits;
pub mod methods;
pub mod retry;
pub mod routes;
