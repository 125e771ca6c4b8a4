//! A ticket's lifecycle through the API: assigned, in progress, pending with a reason, resolved
//! with a code and notes, reopened, closed and rated, and the events each move publishes.

use anyhow::Context as _;
use desk_proto::tickets::v1::{self as pb, TicketStatus};
use tonic::Code;

use super::{events_on, ticket_of};
use crate::support::{EVENTUALLY, TestDesk, expect_code, expect_violations, incident, with_token};

on_both_backends!(a_ticket_goes_through_its_lifecycle_through_the_api,);

async fn a_ticket_goes_through_its_lifecycle_through_the_api(desk: TestDesk) -> anyhow::Result<()> {
    use pb::PendingReason as Reason;
    let (alice, agent) = (desk.requester("alice"), desk.agent());

    // given alice's new incident
    let ticket = desk
        .create(&alice, incident("Laptop will not boot"))
        .await?;
    assert_eq!(ticket.status, TicketStatus::New as i32);

    // when an agent takes it, it becomes assigned and a ticket.assigned event says so
    let ticket = desk
        .assign(&agent, &ticket, "team-desktop", "agent-7")
        .await?;
    assert_eq!(
        (ticket.status, ticket.version),
        (TicketStatus::Assigned as i32, 2)
    );
    assert_eq!(
        (
            ticket.assignment_group_id.as_str(),
            ticket.assignee_id.as_str()
        ),
        ("team-desktop", "agent-7")
    );
    let assigned = desk
        .wait_for_events(&desk.subject("ticket", "assigned"), 1, EVENTUALLY)
        .await?;
    let body: pb::TicketAssigned = assigned[0].decode()?;
    let snapshot = body.ticket.context("TicketAssigned without a ticket")?;
    assert_eq!(
        (
            snapshot.id.as_str(),
            snapshot.version,
            snapshot.assignee_id.as_str()
        ),
        (ticket.id.as_str(), 2, "agent-7")
    );
    assert_eq!(body.previous_assignee_id, "");

    // and work starts
    let ticket = desk
        .transition(
            &agent,
            &ticket,
            TicketStatus::InProgress,
            Reason::Unspecified,
        )
        .await?;
    assert_eq!(
        (ticket.status, ticket.version),
        (TicketStatus::InProgress as i32, 3)
    );

    // and pending needs a reason
    expect_violations(
        desk.transition(&agent, &ticket, TicketStatus::Pending, Reason::Unspecified)
            .await,
        &["pending_reason"],
    )?;
    let ticket = desk
        .transition(&agent, &ticket, TicketStatus::Pending, Reason::Customer)
        .await?;
    assert_eq!(
        (ticket.status, ticket.pending_reason),
        (TicketStatus::Pending as i32, Reason::Customer as i32)
    );
    let ticket = desk
        .transition(
            &agent,
            &ticket,
            TicketStatus::InProgress,
            Reason::Unspecified,
        )
        .await?;
    assert_eq!(
        ticket.pending_reason,
        Reason::Unspecified as i32,
        "leaving pending clears the reason"
    );

    // and resolving needs a known code and notes
    expect_violations(
        desk.resolve(&agent, &ticket, "", "Replaced the SSD").await,
        &["resolution_code"],
    )?;
    expect_violations(
        desk.resolve(&agent, &ticket, "fixed_it", "Replaced the SSD")
            .await,
        &["resolution_code"],
    )?;
    expect_violations(
        desk.resolve(&agent, &ticket, "solved_permanently", "  ")
            .await,
        &["resolution_notes"],
    )?;
    let ticket = desk
        .resolve(&agent, &ticket, "solved_permanently", "Replaced the SSD")
        .await?;
    assert_eq!(ticket.status, TicketStatus::Resolved as i32);
    let resolution = ticket
        .resolution
        .clone()
        .context("a resolved ticket has a resolution")?;
    assert_eq!(
        (
            resolution.code.as_str(),
            resolution.notes.as_str(),
            resolution.resolved_by.as_str()
        ),
        ("solved_permanently", "Replaced the SSD", "agent-7")
    );

    // and alice reopens it within the window: back to in_progress, since it has an assignee
    let reopen = pb::ReopenTicketRequest {
        id: ticket.id.clone(),
        expected_version: ticket.version,
        reason: "Still does not boot".into(),
    };
    let ticket = ticket_of(
        desk.api().reopen_ticket(with_token(reopen, &alice)).await,
        |r| r.ticket,
    )?;
    assert_eq!(ticket.status, TicketStatus::InProgress as i32);
    assert_eq!(ticket.assignee_id, "agent-7");
    assert!(
        ticket.resolution.is_none(),
        "reopening clears the resolution"
    );

    // and after a second resolution alice accepts it: resolved → closed
    let ticket = desk
        .resolve(
            &agent,
            &ticket,
            "solved_permanently",
            "Replaced the mainboard too",
        )
        .await?;
    let ticket = desk
        .transition(&alice, &ticket, TicketStatus::Closed, Reason::Unspecified)
        .await?;
    assert_eq!(ticket.status, TicketStatus::Closed as i32);
    let closed_version = ticket.version;
    assert_eq!(
        closed_version, 9,
        "one version per change: created, assigned, 3 moves, resolved, reopened, resolved, closed"
    );

    // and a closed ticket is final
    let reopen_closed = pb::ReopenTicketRequest {
        id: ticket.id.clone(),
        expected_version: ticket.version,
        reason: "again".into(),
    };
    expect_code(
        desk.api()
            .reopen_ticket(with_token(reopen_closed, &alice))
            .await,
        Code::FailedPrecondition,
    )?;

    // and alice rates it once, from 1 to 5
    expect_violations(desk.rate(&alice, &ticket, 6).await, &["rating"])?;
    let rated = desk.rate(&alice, &ticket, 5).await?;
    assert_eq!(rated.satisfaction.map(|s| s.rating), Some(5));
    expect_code(
        desk.rate(&alice, &ticket, 4).await,
        Code::FailedPrecondition,
    )?;

    // and a new ticket cannot be closed without being resolved
    let fresh = desk
        .create(&alice, incident("Keyboard is missing keys"))
        .await?;
    expect_code(
        desk.transition(&agent, &fresh, TicketStatus::Closed, Reason::Unspecified)
            .await,
        Code::FailedPrecondition,
    )?;
    assert_eq!(
        desk.get(&agent, &fresh.id).await?.status,
        TicketStatus::New as i32
    );

    // and every move was published
    let events = desk.settled_events().await?;
    let count = |event: &str| events_on(&events, &desk.subject("ticket", event)).len();
    assert_eq!(count("resolved"), 2);
    assert_eq!(count("reopened"), 1);
    assert_eq!(count("closed"), 1);
    assert_eq!(count("rated"), 1);
    // new → assigned, → in_progress, → pending, → in_progress, → resolved, → in_progress (reopen), → resolved, → closed
    assert_eq!(count("status_changed"), 8);
    Ok(())
}
