//! Service tests of the catalog (ARCHITECTURE §13): the real service, booted the way production
//! boots it on a manual clock — beside a real directory when managers and teams matter — on one
//! real nats-server, against PostgreSQL and again SQLite. Every test runs as
//! `<module>::<test>::on_postgres` and `<module>::<test>::on_sqlite`.
//!
//! # Layout
//! - [`support`]: `spawn_desk`, offering builders and the calls the tests share.
//! - one module per topic in tests/service/: `forms` (schemas refused when saved, answers
//!   refused one violation per field, nothing written), `catalog` (versions, visibility),
//!   `approvals` (quorum, conditional finance step, refusals, delegation, cancel), `directory`
//!   (the manager and a team from the directory's events), `expiry` (reminder, escalation and
//!   rejection on a controlled clock), `fulfillment` (pre-approved, parallel tasks in any order,
//!   an automated task taken from the events by an integrator).

mod support;

/// `<name>::on_postgres` and `<name>::on_sqlite`, each running `async fn <name>(TestDesk)` on a
/// fresh desk; `with directory` also starts the directory.
macro_rules! on_both_backends {
    (@one $name:ident, $directory:expr) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() -> anyhow::Result<()> {
                let desk = crate::support::spawn_desk(desk_testkit::postgres_database().await?, $directory).await?;
                super::$name(desk).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() -> anyhow::Result<()> {
                let desk = crate::support::spawn_desk(desk_testkit::sqlite_database()?, $directory).await?;
                super::$name(desk).await
            }
        }
    };
    (with directory: $($name:ident),* $(,)?) => {$( on_both_backends!(@one $name, true); )*};
    ($($name:ident),* $(,)?) => {$( on_both_backends!(@one $name, false); )*};
}

#[path = "service/approvals.rs"]
mod approvals;
#[path = "service/catalog.rs"]
mod catalog;
#[path = "service/directory.rs"]
mod directory;
#[path = "service/expiry.rs"]
mod expiry;
#[path = "service/forms.rs"]
mod forms;
#[path = "service/fulfillment.rs"]
mod fulfillment;
