//! Service tests of the change service (ARCHITECTURE §13): the real service, booted the way
//! production boots it on a manual clock, beside a real CMDB (and, for incidents, a real tickets
//! service) on one real nats-server, against PostgreSQL and again SQLite. Every test runs as
//! `<module>::<test>::on_postgres` and `<module>::<test>::on_sqlite`.
//!
//! # Layout
//! - [`support`]: `spawn_desk` and the calls the tests share.
//! - one module per topic in tests/service/: `lifecycle` (each type's path, forbidden steps),
//!   `risk` (a score with its factors), `cab` (quorum, refusals, expiry), `conflicts` (three hops
//!   away with the path, freezes), `bad_input`, `implementation` (CI updates in the CMDB with
//!   the change as provenance, none after a failure), `incidents` (a change-caused incident).

mod support;

/// `<name>::on_postgres` and `<name>::on_sqlite`, each running `async fn <name>(TestDesk)` on a
/// fresh desk; `with tickets` also starts the tickets service.
macro_rules! on_both_backends {
    (@one $name:ident, $tickets:expr) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() -> anyhow::Result<()> {
                let desk = crate::support::spawn_desk(desk_testkit::postgres_database().await?, $tickets).await?;
                super::$name(desk).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() -> anyhow::Result<()> {
                let desk = crate::support::spawn_desk(desk_testkit::sqlite_database()?, $tickets).await?;
                super::$name(desk).await
            }
        }
    };
    (with tickets: $($name:ident),* $(,)?) => {$( on_both_backends!(@one $name, true); )*};
    ($($name:ident),* $(,)?) => {$( on_both_backends!(@one $name, false); )*};
}

#[path = "service/bad_input.rs"]
mod bad_input;
#[path = "service/cab.rs"]
mod cab;
#[path = "service/conflicts.rs"]
mod conflicts;
#[path = "service/implementation.rs"]
mod implementation;
#[path = "service/incidents.rs"]
mod incidents;
#[path = "service/lifecycle.rs"]
mod lifecycle;
#[path = "service/risk.rs"]
mod risk;
