//! Problems: an incident linked to its problem, root cause analysis making a known error, and
//! `problem.resolved` naming the incidents; problem fields refused on an incident.

use anyhow::Context as _;
use desk_proto::tickets::v1::{self as pb, TicketStatus};
use tonic::Code;

use super::ticket_of;
use crate::support::{EVENTUALLY, TestDesk, expect_code, incident, problem, with_token};

on_both_backends!(problems_link_their_incidents_and_name_them_when_resolved,);

async fn problems_link_their_incidents_and_name_them_when_resolved(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let agent = desk.agent();
    // given an incident and the problem behind it
    let incident_ticket = desk
        .create(&agent, incident("Checkout page times out"))
        .await?;
    let problem_ticket = desk
        .create(
            &agent,
            problem("Connection pool exhaustion in the shop backend"),
        )
        .await?;
    assert_eq!(problem_ticket.number, "PRB-000001");

    // when the incident is linked to the problem
    let link = pb::AddLinkRequest {
        ticket_id: incident_ticket.id.clone(),
        kind: pb::LinkKind::Problem as i32,
        target_id: problem_ticket.id.clone(),
    };
    let added = desk
        .api()
        .add_link(with_token(link, &agent))
        .await?
        .into_inner();
    assert_eq!(
        added.link.map(|l| l.target_id),
        Some(problem_ticket.id.clone())
    );

    // then the problem lists the incident through the inverse link
    let links = desk
        .api()
        .list_links(with_token(
            pb::ListLinksRequest {
                ticket_id: problem_ticket.id.clone(),
            },
            &agent,
        ))
        .await?
        .into_inner()
        .links;
    let inverse: Vec<(i32, &str, &str)> = links
        .iter()
        .map(|l| (l.kind, l.target_id.as_str(), l.target_number.as_str()))
        .collect();
    assert_eq!(
        inverse,
        [(
            pb::LinkKind::Incident as i32,
            incident_ticket.id.as_str(),
            incident_ticket.number.as_str()
        )]
    );

    // and root cause analysis makes it a known error
    let analysis = pb::UpdateProblemRequest {
        id: problem_ticket.id.clone(),
        expected_version: problem_ticket.version,
        root_cause: Some("The pool is sized for 10 connections; peak load needs 40".into()),
        workaround: Some("Restart the backend pods".into()),
        known_error: Some(true),
    };
    let analysed = ticket_of(
        desk.api()
            .update_problem(with_token(analysis, &agent))
            .await,
        |r| r.ticket,
    )?;
    let details = analysed
        .problem
        .clone()
        .context("a problem carries its details")?;
    assert_eq!(
        details.root_cause,
        "The pool is sized for 10 connections; peak load needs 40"
    );
    assert!(details.known_error);
    assert_eq!(analysed.version, problem_ticket.version + 1);

    // and resolving the problem publishes problem.resolved naming the incident
    let resolved = desk
        .resolve(
            &agent,
            &analysed,
            "solved_permanently",
            "Pool resized to 50",
        )
        .await?;
    assert_eq!(resolved.status, TicketStatus::Resolved as i32);
    let events = desk
        .wait_for_events(&desk.subject("problem", "resolved"), 1, EVENTUALLY)
        .await?;
    let body: pb::ProblemResolved = events[0].decode()?;
    assert_eq!(body.problem.map(|p| p.id), Some(problem_ticket.id.clone()));
    assert!(
        body.incident_ids.contains(&incident_ticket.id),
        "incident_ids {:?} lack {}",
        body.incident_ids,
        incident_ticket.id
    );
    assert_eq!(
        events[0].header("ce-type").as_deref(),
        Some("desk.tickets.problem.resolved.v1")
    );

    // and problem fields cannot be set on an incident
    let current_incident = desk.get(&agent, &incident_ticket.id).await?;
    let on_incident = pb::UpdateProblemRequest {
        id: current_incident.id.clone(),
        expected_version: current_incident.version,
        root_cause: Some("n/a".into()),
        ..Default::default()
    };
    expect_code(
        desk.api()
            .update_problem(with_token(on_incident, &agent))
            .await,
        Code::FailedPrecondition,
    )?;
    Ok(())
}
