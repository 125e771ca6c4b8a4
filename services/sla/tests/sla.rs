//! Service tests of the SLA service (ARCHITECTURE §13): the real service, booted the way
//! production boots it on a manual clock, fed the tickets and directory services' CloudEvents
//! on a real nats-server, against PostgreSQL and again SQLite. Every test runs as
//! `<module>::<test>::on_postgres` and `<module>::<test>::on_sqlite`.
//!
//! # Layout
//! - [`support`]: `spawn_desk`, tickets as their events, and the calls the tests share.
//! - `clocks`: pause/resume, paused time kept through a priority change, a breach explained,
//!   the OLA on another region's team calendar, warning then breach on NATS.
//! - `changes`: preview and recomputation after a calendar change, bad input, malformed events.
//! - `durability`: a restart in the middle of a burst loses no clock and fires no timer twice.

#[path = "sla/support.rs"]
mod support;

/// `<name>::on_postgres` and `<name>::on_sqlite`, each running `async fn <name>(TestDesk)`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() -> anyhow::Result<()> {
                let desk = crate::support::spawn_desk(desk_testkit::postgres_database().await?).await?;
                super::$name(desk).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() -> anyhow::Result<()> {
                let desk = crate::support::spawn_desk(desk_testkit::sqlite_database()?).await?;
                super::$name(desk).await
            }
        }
    )*};
}

#[path = "sla/changes.rs"]
mod changes;
#[path = "sla/clocks.rs"]
mod clocks;
#[path = "sla/durability.rs"]
mod durability;
