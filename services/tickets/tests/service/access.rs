//! Who may read and write what: requesters see only their own tickets, no one crosses tenants, a
//! call without a valid token is UNAUTHENTICATED, and a requester may not set staff-only fields.

use desk_proto::tickets::v1::{self as pb, Level, Priority};
use tonic::Code;

use super::a_random_ticket_id;
use crate::support::{self, TENANT, TestDesk, anonymous, expect_code, incident};

on_both_backends!(requesters_see_only_their_own_tickets_and_no_one_crosses_tenants,);

async fn requesters_see_only_their_own_tickets_and_no_one_crosses_tenants(
    desk: TestDesk,
) -> anyhow::Result<()> {
    // given two requesters of one tenant, each with a ticket
    let (alice, bob) = (desk.requester("alice"), desk.requester("bob"));
    let alices = desk.create(&alice, incident("My screen flickers")).await?;
    let bobs = desk.create(&bob, incident("My mouse is dead")).await?;
    assert_eq!(
        alices.priority,
        Priority::P3Moderate as i32,
        "requesters' tickets start at medium × medium"
    );

    // when bob reads alice's ticket, by id or by number, it is NOT_FOUND — exactly like one that does not exist
    let denied = expect_code(desk.get(&bob, &alices.id).await, Code::NotFound)?;
    let missing = expect_code(desk.get(&bob, &a_random_ticket_id()).await, Code::NotFound)?;
    assert_eq!(
        denied.message(),
        missing.message(),
        "a denied read must not be told apart from a missing ticket"
    );
    let denied_by_number = expect_code(desk.get(&bob, &alices.number).await, Code::NotFound)?;
    let missing_number = expect_code(desk.get(&bob, "INC-999999").await, Code::NotFound)?;
    assert_eq!(denied_by_number.message(), missing_number.message());
    // and he cannot comment on it either
    expect_code(
        desk.comment(&bob, &alices, "me too", pb::Visibility::Public)
            .await,
        Code::NotFound,
    )?;

    // and bob's list holds only his own ticket, even when he asks for alice's
    let listed = desk.list(&bob, pb::ListTicketsRequest::default()).await?;
    assert_eq!(
        listed
            .tickets
            .iter()
            .map(|t| t.id.as_str())
            .collect::<Vec<_>>(),
        [bobs.id.as_str()]
    );
    assert_eq!(listed.total_size, 1);
    let asking_for_alices = desk
        .list(
            &bob,
            pb::ListTicketsRequest {
                requester_id: "alice".into(),
                ..Default::default()
            },
        )
        .await?;
    assert!(
        asking_for_alices
            .tickets
            .iter()
            .all(|t| t.requester_id == "bob"),
        "bob listed someone else's ticket"
    );

    // and an agent of another tenant sees nothing of this one
    let globex_agent = desk.token("agent-9", "globex", &["agent"]);
    let other_tenant = expect_code(desk.get(&globex_agent, &alices.id).await, Code::NotFound)?;
    assert_eq!(other_tenant.message(), missing.message());
    expect_code(
        desk.get(&globex_agent, &alices.number).await,
        Code::NotFound,
    )?;
    assert_eq!(desk.total(&globex_agent).await?, 0);

    // and an agent of this tenant sees both
    assert_eq!(desk.total(&desk.agent()).await?, 2);

    // and a call without a token, or with a token signed by someone else, is UNAUTHENTICATED
    let no_token = desk
        .api()
        .get_ticket(anonymous(pb::GetTicketRequest {
            id: alices.id.clone(),
        }))
        .await;
    expect_code(no_token, Code::Unauthenticated)?;
    let foreign =
        desk_kit::auth::dev_claims(&desk.settings.auth, "mallory", TENANT, &["admin"], 3600);
    let forged =
        desk_kit::auth::mint_dev_token("a-different-secret-of-at-least-32-bytes!", &foreign)?;
    expect_code(desk.get(&forged, &alices.id).await, Code::Unauthenticated)?;
    let expired = desk_kit::auth::mint_dev_token(
        support::SECRET,
        &desk_kit::auth::dev_claims(&desk.settings.auth, "alice", TENANT, &["requester"], -3600),
    )?;
    expect_code(desk.get(&expired, &alices.id).await, Code::Unauthenticated)?;

    // and a requester setting a staff-only field is PERMISSION_DENIED, and nothing is created
    let raising_own_priority = pb::CreateTicketRequest {
        impact: Level::High as i32,
        ..incident("Everything is on fire")
    };
    expect_code(
        desk.create(&alice, raising_own_priority).await,
        Code::PermissionDenied,
    )?;
    assert_eq!(desk.total(&alice).await?, 1);
    Ok(())
}
