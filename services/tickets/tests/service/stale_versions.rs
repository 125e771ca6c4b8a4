//! Optimistic concurrency: a write with a stale `expected_version` is ABORTED and changes nothing,
//! in the ticket, its history or the stream.

use desk_proto::tickets::v1::{self as pb, Level, TicketStatus};
use tonic::Code;

use super::{events_on, ticket_of};
use crate::support::{TestDesk, expect_code, incident, with_token};

on_both_backends!(a_stale_expected_version_is_refused_and_changes_nothing,);

async fn a_stale_expected_version_is_refused_and_changes_nothing(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let agent = desk.agent();
    // given a ticket that someone already edited (version 2)
    let ticket = desk.create(&agent, incident("Slow wifi in B2")).await?;
    let edit = |expected_version: i64, title: &str| pb::UpdateTicketRequest {
        id: ticket.id.clone(),
        expected_version,
        title: Some(title.into()),
        ..Default::default()
    };
    let edited = ticket_of(
        desk.api()
            .update_ticket(with_token(edit(1, "Slow wifi in building 2"), &agent))
            .await,
        |r| r.ticket,
    )?;
    assert_eq!(edited.version, 2);

    // when another agent writes with the version they read earlier (1)
    let stale_edit = pb::UpdateTicketRequest {
        impact: Level::High as i32,
        ..edit(1, "Wifi is down")
    };
    let stale = desk
        .api()
        .update_ticket(with_token(stale_edit, &agent))
        .await;
    expect_code(stale, Code::Aborted)?;
    // (and a stale assignment likewise)
    expect_code(
        desk.assign(&agent, &ticket, "team-net", "").await,
        Code::Aborted,
    )?;

    // then the ticket is as the first edit left it
    let current = desk.get(&agent, &ticket.id).await?;
    assert_eq!(current.version, 2);
    assert_eq!(current.title, "Slow wifi in building 2");
    assert_eq!(current.impact, Level::Medium as i32);
    assert_eq!(current.status, TicketStatus::New as i32);
    assert_eq!(current.assignment_group_id, "");

    // and only the real change is in the history and on the stream
    let history = desk
        .api()
        .get_ticket_history(with_token(
            pb::GetTicketHistoryRequest {
                id: ticket.id.clone(),
            },
            &agent,
        ))
        .await?
        .into_inner();
    assert_eq!(
        history
            .entries
            .iter()
            .map(|e| e.action.as_str())
            .collect::<Vec<_>>(),
        ["created", "updated"]
    );
    let events = desk.settled_events().await?;
    assert_eq!(
        events_on(&events, &desk.subject("ticket", "updated")).len(),
        1
    );
    assert!(events_on(&events, &desk.subject("ticket", "assigned")).is_empty());
    Ok(())
}
