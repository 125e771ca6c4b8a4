use anyhow::{Context as _, ensure};
use desk_proto::{
    sla::v1::PolicyKind,
    tickets::v1::{self as tickets, ticket_service_client::TicketServiceClient},
};

use crate::support::*;

macro_rules! with_tickets {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() -> anyhow::Result<()> {
                let desk = crate::support::spawn_desk_with_tickets(desk_testkit::postgres_database().await?).await?;
                super::$name(desk).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() -> anyhow::Result<()> {
                let desk = crate::support::spawn_desk_with_tickets(desk_testkit::sqlite_database()?).await?;
                super::$name(desk).await
            }
        }
    )*};
}

with_tickets!(a_breached_sla_is_consumed_by_tickets_which_escalates_the_ticket);

async fn a_breached_sla_is_consumed_by_tickets_which_escalates_the_ticket(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let tickets_service = desk.tickets.as_ref().context("a tickets service")?;
    desk.create_policy(TestDesk::policy(PolicyKind::Sla, ""))
        .await?;
    // An agent opens an incident for first line through the real tickets service.
    let agent = tickets_service.token("andy", TENANT, &["agent"]);
    let mut api = TicketServiceClient::new(tickets_service.channel());
    let created = api
        .create_ticket(with_token(
            tickets::CreateTicketRequest {
                r#type: tickets::TicketType::Incident as i32,
                title: "VPN drops every ten minutes".into(),
                impact: tickets::Level::High as i32,
                urgency: tickets::Level::Medium as i32,
                assignment_group_id: "emea-l1".into(),
                tier: tickets::SupportTier::FirstLine as i32,
                ..Default::default()
            },
            &agent,
        ))
        .await?
        .into_inner()
        .ticket
        .context("no ticket")?;
    // The SLA service folds its clocks from the tickets service's own events.
    desk.clocks_when(&created.id, |clocks| clocks.len() == 2)
        .await?;

    // When the first response (1 h) runs out on the SLA service's clock ...
    desk.set_clock(at(61))?;
    desk.sla_events("breached", 1).await?;
    // ... the tickets service escalates the ticket to second line and says so.
    let deadline = std::time::Instant::now() + EVENTUALLY;
    loop {
        let ticket = api
            .get_ticket(with_token(
                tickets::GetTicketRequest {
                    id: created.id.clone(),
                },
                &agent,
            ))
            .await?
            .into_inner()
            .ticket
            .context("no ticket")?;
        if ticket.tier == tickets::SupportTier::SecondLine as i32 {
            break;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "never escalated: {ticket:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let escalated = tickets_service
        .wait_for_events(
            &tickets_service.subject("ticket", "escalated"),
            1,
            EVENTUALLY,
        )
        .await?;
    let message: tickets::TicketEscalated = escalated[0].decode()?;
    ensure!(
        message.previous_tier == tickets::SupportTier::FirstLine as i32,
        "{message:?}"
    );
    ensure!(message.note.contains("first response"), "{message:?}");
    ensure!(message.actor.map(|a| a.subject).as_deref() == Some("sla"));
    // Once: the resolution breach later escalates again (to third line), nothing more.
    Ok(())
}
