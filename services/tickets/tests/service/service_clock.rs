//! Time is the service's clock, not the machine's (ARCHITECTURE §10): on a manual clock every
//! time a ticket shows — its create and update times, its comments, its events' `ce-time` — is
//! the clock's, and moves only when the clock does. This is what the shared harness's manual
//! clock lets later services (SLA timers, presence expiry) test without sleeping.

use chrono::{DateTime, Duration, TimeZone as _, Utc};
use desk_proto::tickets::v1 as pb;
use desk_testkit::service::Harness;

use crate::support::{TestDesk, incident, spawn_with, with_token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_shows_the_service_clock_s_times_on_postgres() -> anyhow::Result<()> {
    let start = start();
    let harness = Harness::new(desk_tickets::ENTRY).manual_clock(start);
    let desk = spawn_with(harness, desk_testkit::postgres_database().await?).await?;
    a_ticket_s_times_are_the_service_clock_s(desk, start).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_shows_the_service_clock_s_times_on_sqlite() -> anyhow::Result<()> {
    let start = start();
    let harness = Harness::new(desk_tickets::ENTRY).manual_clock(start);
    let desk = spawn_with(harness, desk_testkit::sqlite_database()?).await?;
    a_ticket_s_times_are_the_service_clock_s(desk, start).await
}

/// A moment far from the machine's own time, so a wall-clock read cannot pass for it.
fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 3, 30, 8, 0, 0)
        .single()
        .unwrap_or_default()
}

fn instant(timestamp: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    timestamp.and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?))
}

async fn a_ticket_s_times_are_the_service_clock_s(
    desk: TestDesk,
    start: DateTime<Utc>,
) -> anyhow::Result<()> {
    let clock = desk
        .clock()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no manual clock"))?;

    // given a tickets service whose clock stands at `start`
    // when a requester raises a ticket
    let ticket = desk
        .create(&desk.requester("alice"), incident("Printer jams"))
        .await?;

    // then it was created and last updated at `start`
    assert_eq!(instant(ticket.create_time.as_ref()), Some(start));
    assert_eq!(instant(ticket.update_time.as_ref()), Some(start));

    // when three hours pass on the clock and an agent comments
    clock.advance(Duration::hours(3));
    let comment = desk
        .api()
        .add_comment(with_token(
            pb::AddCommentRequest {
                ticket_id: ticket.id.clone(),
                body: "Swapped the fuser".into(),
                visibility: pb::Visibility::Public as i32,
            },
            &desk.agent(),
        ))
        .await?
        .into_inner()
        .comment
        .ok_or_else(|| anyhow::anyhow!("the response carries no comment"))?;

    // then the comment is three hours later, and the ticket's creation has not moved
    assert_eq!(
        instant(comment.create_time.as_ref()),
        Some(start + Duration::hours(3))
    );
    let read = desk.get(&desk.agent(), &ticket.id).await?;
    assert_eq!(instant(read.create_time.as_ref()), Some(start));

    // and the ticket.created event says it happened at `start`
    let events = desk.settled_events().await?;
    let created = events
        .iter()
        .find(|e| e.subject == desk.subject("ticket", "created"))
        .ok_or_else(|| anyhow::anyhow!("no ticket.created event"))?;
    let time = created
        .header("ce-time")
        .ok_or_else(|| anyhow::anyhow!("no ce-time"))?;
    assert_eq!(
        DateTime::parse_from_rfc3339(&time)?.with_timezone(&Utc),
        start
    );
    Ok(())
}
