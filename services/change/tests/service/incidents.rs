//! A change-caused incident: an incident on a CI the implemented change's CIs reach is flagged.

use crate::support::{TestDesk, incident, window, with_token};

on_both_backends!(with tickets: an_incident_on_a_ci_that_needs_the_changed_host_soon_after_is_flagged_with_its_path);

async fn an_incident_on_a_ci_that_needs_the_changed_host_soon_after_is_flagged_with_its_path(
    desk: TestDesk,
) -> anyhow::Result<()> {
    // Given a change on the host, implemented
    let [_, web, _, host] = desk.shop_estate().await?;
    let change = desk
        .authorized_normal("host firmware", &[&host], window(1, 2))
        .await?;
    let change = desk.schedule(&change, None).await?;
    desk.advance(1)?;
    let change = desk.start(&change).await?;
    let change = desk.complete(&change, true).await?;
    // When an incident is raised on web, which needs the host through app, shortly after
    let agent = desk
        .tickets
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no tickets service"))?
        .token("agent-7", crate::support::TENANT, &["agent"]);
    let ticket = desk
        .tickets_api()?
        .create_ticket(with_token(incident("checkout is slow", &[&web]), &agent))
        .await?
        .into_inner()
        .ticket
        .ok_or_else(|| anyhow::anyhow!("no ticket"))?;
    // Then the change names the incident, with the path from the host to web
    let flagged = desk
        .wait_for_change(&change.id, |c| !c.suspected_incidents.is_empty())
        .await?;
    let suspected = &flagged.suspected_incidents[0];
    assert_eq!(suspected.ticket_id, ticket.id);
    assert_eq!(suspected.ci_id, web);
    assert_eq!(suspected.path.len(), 2);
    desk.events("incident_suspected", 1).await?;
    Ok(())
}
