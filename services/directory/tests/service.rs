//! Service tests of the directory (ARCHITECTURE §13): the real service, booted the way production
//! boots it, against a real nats-server and a real PostgreSQL — and again against SQLite. Every
//! test runs on both backends as `<area>::<test>::on_postgres` and `::on_sqlite`.
//!
//! # Layout
//! - [`support`]: the directory on the shared harness, tokens with claims, calls, builders;
//!   this file: the backend macros.
//! - [`who_am_i`]: a person made from their token's claims on the first call, updated when they
//!   change.
//! - [`provisioning`]: a batch previewed, committed and repeated as unchanged; the missing of a
//!   complete sync deactivated and kept; stale previews; bad batches.
//! - [`hierarchies`]: manager chains and team hierarchies that would form a cycle.
//! - [`presence`]: presence expiring to offline on the service clock, published once by two
//!   replicas.
//! - [`access`]: requesters, staff, writers, provisioners and tenants.
//! - [`bad_input`]: e-mail, locale, time zone, capacity, unknown skills: nothing written.
//! - [`events`]: every change as one CloudEvent.
//! - [`lookups`]: a person with their teams, a team's members with presence, teams with a skill
//!   in a region, a manager chain.

mod support;

use anyhow::{Context as _, ensure};
use desk_proto::directory::v1 as pb;
use support::{
    Claims, EVENTUALLY, OTHER_TENANT, TENANT, TestDesk, batch, expect_code, expect_violations,
    in_teams, person, provisioned, team, types_of,
};
use tonic::Code;

/// Generates `<name>::on_postgres` and `<name>::on_sqlite`, each running `async fn <name>(TestDesk)`
/// against a fresh directory on that backend, on a multi-threaded runtime (provisioning plans run
/// in `block_in_place`, which a current-thread runtime refuses).
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

/// As [`on_both_backends`], with the directory on a manual clock starting at [`clock_start`].
macro_rules! on_both_backends_with_a_manual_clock {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() -> anyhow::Result<()> {
                let desk = crate::support::spawn_desk_with_clock(
                    desk_testkit::postgres_database().await?,
                    crate::clock_start(),
                ).await?;
                super::$name(desk).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() -> anyhow::Result<()> {
                let desk = crate::support::spawn_desk_with_clock(
                    desk_testkit::sqlite_database()?,
                    crate::clock_start(),
                ).await?;
                super::$name(desk).await
            }
        }
    )*};
}

/// Where the manual clock starts: the wall clock's now, so tokens (checked against the real time)
/// and the service's time agree at the start.
fn clock_start() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound as _;
    chrono::Utc::now().trunc_subsecs(6)
}

#[path = "service/access.rs"]
mod access;
#[path = "service/bad_input.rs"]
mod bad_input;
#[path = "service/events.rs"]
mod events;
#[path = "service/hierarchies.rs"]
mod hierarchies;
#[path = "service/lookups.rs"]
mod lookups;
#[path = "service/presence.rs"]
mod presence;
#[path = "service/provisioning.rs"]
mod provisioning;
#[path = "service/who_am_i.rs"]
mod who_am_i;
