//! Comments and history: internal comments are hidden from the requester, and the history records
//! every change with its version, actor and field changes.

use std::collections::HashMap;

use desk_proto::tickets::v1 as pb;
use tonic::Code;

use crate::support::{TestDesk, expect_code, incident, with_token};

on_both_backends!(
    internal_comments_are_hidden_from_the_requester_and_history_records_who_changed_what,
);

async fn internal_comments_are_hidden_from_the_requester_and_history_records_who_changed_what(
    desk: TestDesk,
) -> anyhow::Result<()> {
    let (alice, agent) = (desk.requester("alice"), desk.agent());
    // given alice's ticket, assigned to an agent
    let ticket = desk
        .create(&alice, incident("Docking station drops the monitors"))
        .await?;
    let ticket = desk
        .assign(&agent, &ticket, "team-desktop", "agent-7")
        .await?;

    // when the agent writes an internal note and a public answer, and alice replies
    desk.comment(
        &agent,
        &ticket,
        "Probably the firmware; check the vendor bulletin",
        pb::Visibility::Internal,
    )
    .await?;
    desk.comment(&agent, &ticket, "We are on it", pb::Visibility::Public)
        .await?;
    let reply = desk
        .comment(&alice, &ticket, "Thanks!", pb::Visibility::Unspecified)
        .await?;
    assert_eq!(
        reply.visibility,
        pb::Visibility::Public as i32,
        "unspecified means public"
    );

    // then alice may not write an internal comment
    expect_code(
        desk.comment(&alice, &ticket, "psst", pb::Visibility::Internal)
            .await,
        Code::PermissionDenied,
    )?;

    // and alice sees only the public comments, oldest first, while the agent sees all of them
    let list = |token: String| {
        let mut api = desk.api();
        let ticket_id = ticket.id.clone();
        async move {
            api.list_comments(with_token(pb::ListCommentsRequest { ticket_id }, &token))
                .await
                .map(|r| r.into_inner().comments)
        }
    };
    let seen_by_alice: Vec<String> = list(alice.clone())
        .await?
        .into_iter()
        .map(|c| c.body)
        .collect();
    assert_eq!(seen_by_alice, ["We are on it", "Thanks!"]);
    let seen_by_agent = list(agent.clone()).await?;
    assert_eq!(seen_by_agent.len(), 3);
    assert_eq!(seen_by_agent[0].visibility, pb::Visibility::Internal as i32);

    // and the history lists every change with its version, actor and field changes
    let history = desk
        .api()
        .get_ticket_history(with_token(
            pb::GetTicketHistoryRequest {
                id: ticket.id.clone(),
            },
            &agent,
        ))
        .await?
        .into_inner()
        .entries;
    let actions: Vec<&str> = history.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "created",
            "assigned",
            "commented_internally",
            "commented",
            "commented"
        ]
    );
    assert_eq!(
        history.iter().map(|e| e.version).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    let actor = |index: usize| {
        history[index]
            .actor
            .clone()
            .map(|a| (a.subject, a.roles))
            .unwrap_or_default()
    };
    assert_eq!(actor(0), ("alice".to_owned(), vec!["requester".to_owned()]));
    assert_eq!(actor(1), ("agent-7".to_owned(), vec!["agent".to_owned()]));
    assert_eq!(actor(4).0, "alice");
    let assigned: HashMap<&str, &desk_proto::common::v1::FieldChange> = history[1]
        .changes
        .iter()
        .map(|c| (c.field.as_str(), c))
        .collect();
    let change = |field: &str| {
        assigned.get(field).map(|c| {
            (
                c.old_present,
                c.old_value.as_str(),
                c.new_present,
                c.new_value.as_str(),
            )
        })
    };
    assert_eq!(
        change("assignment_group_id"),
        Some((false, "", true, "team-desktop"))
    );
    assert_eq!(change("assignee_id"), Some((false, "", true, "agent-7")));
    assert_eq!(change("status"), Some((true, "new", true, "assigned")));
    assert!(history.iter().all(|e| e.time.is_some()));
    Ok(())
}
