//! The gateway's service tests: real tickets and CMDB processes behind real gateways, on
//! loopback. One test binary; a module per area.

#[path = "gateway/support.rs"]
mod support;

#[path = "gateway/discovery.rs"]
mod discovery;
#[path = "gateway/grpc_web.rs"]
mod grpc_web;
#[path = "gateway/limits.rs"]
mod limits;
#[path = "gateway/one_process.rs"]
mod one_process;
#[path = "gateway/regions.rs"]
mod regions;
#[path = "gateway/routing.rs"]
mod routing;
#[path = "gateway/streaming.rs"]
mod streaming;
#[path = "gateway/upstream_health.rs"]
mod upstream_health;
