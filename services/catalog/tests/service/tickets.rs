//! The service request ticket: made by the tickets service for each request (its requester's,
//! typed service request), linked on the request, and resolved `fulfilled` when the request is.

use desk_proto::{catalog::v1 as pb, tickets::v1 as tickets};

use crate::support::{TestDesk, answer, laptop, manual, state, text, with_token};

on_both_backends!(with tickets: the_request_gets_its_ticket_which_resolves_when_the_request_is_fulfilled);

async fn the_request_gets_its_ticket_which_resolves_when_the_request_is_fulfilled(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let offering = desk
        .create(laptop(vec![], vec![vec![manual("order", "team-desktop")]]))
        .await?;
    let requester = desk.requester("rita");
    let request = desk
        .submit_as(
            &requester,
            &offering.id,
            vec![answer("model", text("standard"))],
        )
        .await?;
    let linked = desk
        .eventually(&requester, &request.id, |r| !r.ticket_id.is_empty())
        .await?;
    let ticket = desk.ticket(&linked.ticket_id).await?;
    assert_eq!(ticket.number, linked.ticket_number);
    assert_eq!(ticket.r#type, tickets::TicketType::ServiceRequest as i32);
    assert_eq!(ticket.requester_id, "rita");
    assert!(
        ticket.description.contains(&request.number),
        "{}",
        ticket.description
    );

    let agent = desk.member_of("dave", &["agent"], &["team-desktop"]);
    desk.api()
        .complete_task(with_token(
            pb::CompleteTaskRequest {
                task_id: format!("{}/order", request.id),
                result: "delivered to desk 42".into(),
            },
            &agent,
        ))
        .await?;
    assert_eq!(
        state(&desk.get(&requester, &request.id).await?),
        pb::RequestState::Fulfilled
    );
    let deadline = std::time::Instant::now() + crate::support::EVENTUALLY;
    loop {
        let ticket = desk.ticket(&linked.ticket_id).await?;
        if ticket.status == tickets::TicketStatus::Resolved as i32 {
            let resolution = ticket.resolution.unwrap_or_default();
            assert_eq!(resolution.code, "fulfilled");
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the ticket was not resolved: {ticket:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(())
}
