//! The security suite (issue 26): the whole desk on loopback — every public service in its own
//! process behind a gateway — attacked the ways a stranger, a tenant's neighbour or a curious
//! requester would. One test binary; a module per area:
//!
//! - `tokens`: every kind of bad token refused with `UNAUTHENTICATED` by every public method,
//!   through the gateway and directly at each service.
//! - `matrix`: the authorization matrix over every RPC of the descriptor set, one table per
//!   service under `tests/security/matrix/` (see `matrix/mod.rs` for the row format).
//! - `fuzz`: arbitrary bytes as each public method's request: no panics, every answer a status.
//!
//! `cargo test -p desk-gateway --test security -- --nocapture` prints the tables.

// Shared with the gateway tests; not every helper is used here.
#[allow(unused_imports)]
#[path = "gateway/support.rs"]
mod support;

#[path = "security/desk.rs"]
mod desk;
#[path = "security/fuzz.rs"]
mod fuzz;
#[path = "security/matrix/mod.rs"]
mod matrix;
#[path = "security/tokens.rs"]
mod tokens;
