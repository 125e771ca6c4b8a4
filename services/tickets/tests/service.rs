//! Service tests of the tickets service (ARCHITECTURE §13): the real service, booted the way
//! production boots it, against a real nats-server and a real PostgreSQL — and again against
//! SQLite. Every behavioural test runs on both backends as `<module>::<test>::on_postgres` and
//! `<module>::<test>::on_sqlite`.
//!
//! # Layout
//! - [`support`]: `spawn_desk` / `spawn_with` on the shared harness (`desk_testkit::service`),
//!   the typed client, request builders.
//! - this file: `on_both_backends!` and the small helpers the tests share (`ticket_of`,
//!   `events_on`, and `TestDesk` calls for assign, transition, resolve, comment, rate, settings).
//! - one module per topic in tests/service/: `creating` (numbering, publishing, bad input,
//!   idempotent creates), `access` (requesters, tenants, tokens, staff-only fields),
//!   `stale_versions`, `lifecycle`, `comments_and_history`, `problems`, `lists`,
//!   `concurrent_creates` (a tenant's first tickets, bursts larger than the database pool),
//!   `outbox_faults` (a nats-server kill and restart, a stream that lost events), `settings`
//!   (per-tenant), and the later points `invisible_titles`, `watched_tickets` and
//!   `service_clock` (a manual clock).

mod support;

use desk_proto::tickets::v1::{self as pb, TicketStatus};
use support::{TestDesk, with_token};
use tonic::Status;

/// Generates `<name>::on_postgres` and `<name>::on_sqlite`, each running `async fn <name>(TestDesk)`
/// against a fresh desk on that backend, so a failure names its backend.
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

// The tests, one module per topic (tests/service/<module>.rs), after the macro they use.
#[path = "service/access.rs"]
mod access;
#[path = "service/comments_and_history.rs"]
mod comments_and_history;
#[path = "service/concurrent_creates.rs"]
mod concurrent_creates;
#[path = "service/creating.rs"]
mod creating;
#[path = "service/invisible_titles.rs"]
mod invisible_titles;
#[path = "service/lifecycle.rs"]
mod lifecycle;
#[path = "service/lists.rs"]
mod lists;
#[path = "service/outbox_faults.rs"]
mod outbox_faults;
#[path = "service/problems.rs"]
mod problems;
#[path = "service/service_clock.rs"]
mod service_clock;
#[path = "service/settings.rs"]
mod settings;
#[path = "service/stale_versions.rs"]
mod stale_versions;
#[path = "service/watched_tickets.rs"]
mod watched_tickets;

// ---- small helpers the test modules share ----

fn ticket_of<T>(
    result: Result<tonic::Response<T>, Status>,
    take: impl FnOnce(T) -> Option<pb::Ticket>,
) -> Result<pb::Ticket, Status> {
    take(result?.into_inner()).ok_or_else(|| Status::internal("the response carries no ticket"))
}

fn events_on<'a>(events: &'a [support::Event], subject: &str) -> Vec<&'a support::Event> {
    events.iter().filter(|e| e.subject == subject).collect()
}

fn a_random_ticket_id() -> String {
    format!("test-{}", uuid::Uuid::now_v7())
}

impl TestDesk {
    async fn assign(
        &self,
        token: &str,
        ticket: &pb::Ticket,
        group: &str,
        assignee: &str,
    ) -> Result<pb::Ticket, Status> {
        let request = pb::AssignTicketRequest {
            id: ticket.id.clone(),
            expected_version: ticket.version,
            assignment_group_id: group.into(),
            assignee_id: assignee.into(),
            ..Default::default()
        };
        ticket_of(
            self.api().assign_ticket(with_token(request, token)).await,
            |r| r.ticket,
        )
    }

    async fn transition(
        &self,
        token: &str,
        ticket: &pb::Ticket,
        target: TicketStatus,
        reason: pb::PendingReason,
    ) -> Result<pb::Ticket, Status> {
        let request = pb::TransitionTicketRequest {
            id: ticket.id.clone(),
            expected_version: ticket.version,
            target_status: target as i32,
            pending_reason: reason as i32,
            note: String::new(),
        };
        ticket_of(
            self.api()
                .transition_ticket(with_token(request, token))
                .await,
            |r| r.ticket,
        )
    }

    async fn resolve(
        &self,
        token: &str,
        ticket: &pb::Ticket,
        code: &str,
        notes: &str,
    ) -> Result<pb::Ticket, Status> {
        let request = pb::ResolveTicketRequest {
            id: ticket.id.clone(),
            expected_version: ticket.version,
            resolution_code: code.into(),
            resolution_notes: notes.into(),
        };
        ticket_of(
            self.api().resolve_ticket(with_token(request, token)).await,
            |r| r.ticket,
        )
    }

    async fn comment(
        &self,
        token: &str,
        ticket: &pb::Ticket,
        body: &str,
        visibility: pb::Visibility,
    ) -> Result<pb::Comment, Status> {
        let request = pb::AddCommentRequest {
            ticket_id: ticket.id.clone(),
            body: body.into(),
            visibility: visibility as i32,
        };
        let response = self
            .api()
            .add_comment(with_token(request, token))
            .await?
            .into_inner();
        response
            .comment
            .ok_or_else(|| Status::internal("the response carries no comment"))
    }

    async fn rate(
        &self,
        token: &str,
        ticket: &pb::Ticket,
        rating: i32,
    ) -> Result<pb::Ticket, Status> {
        let request = pb::RateTicketRequest {
            id: ticket.id.clone(),
            rating,
            comment: String::new(),
        };
        ticket_of(
            self.api().rate_ticket(with_token(request, token)).await,
            |r| r.ticket,
        )
    }

    async fn update_settings(
        &self,
        token: &str,
        settings: pb::TicketSettings,
    ) -> Result<pb::TicketSettings, Status> {
        let request = pb::UpdateTicketSettingsRequest {
            settings: Some(settings),
        };
        let response = self
            .api()
            .update_ticket_settings(with_token(request, token))
            .await?
            .into_inner();
        response
            .settings
            .ok_or_else(|| Status::internal("the response carries no settings"))
    }
}
