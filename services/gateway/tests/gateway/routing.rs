//! Calls forwarded by their gRPC service name to the service that owns them.

use desk_proto::{cmdb::v1 as cmdb_pb, tickets::v1 as tickets_pb};
use desk_testkit::NatsServer;
use tonic::Code;

use crate::support::{Region, TENANT, agent, expect_code, new_incident, token, with_token};

#[tokio::test]
async fn a_ticket_created_through_the_gateway_is_read_back_through_it() -> anyhow::Result<()> {
    // given a region whose gateway forwards to tickets and the CMDB
    let nats = NatsServer::start().await?;
    let region = Region::start("emea", &nats, |_| {}).await?;

    // when an agent creates a ticket and reads it back, both through the gateway
    let created = region
        .tickets()
        .create_ticket(with_token(new_incident("printer on fire"), &agent()))
        .await?
        .into_inner()
        .ticket
        .unwrap_or_default();
    let read = region
        .tickets()
        .get_ticket(with_token(
            tickets_pb::GetTicketRequest {
                id: created.id.clone(),
            },
            &agent(),
        ))
        .await?
        .into_inner()
        .ticket
        .unwrap_or_default();

    // then the ticket was made by the tickets service of the region, and read back as made
    assert!(created.id.starts_with("emea-"), "{}", created.id);
    assert_eq!(read.id, created.id);
    assert_eq!(read.title, "printer on fire");
    Ok(())
}

#[tokio::test]
async fn each_call_goes_to_the_service_that_owns_its_package() -> anyhow::Result<()> {
    // given a region whose gateway forwards to tickets and the CMDB
    let nats = NatsServer::start().await?;
    let region = Region::start("emea", &nats, |_| {}).await?;
    let keeper = token("cara", TENANT, &["configuration_manager"]);

    // when a CI is created and listed through the same gateway address
    let created = region
        .cmdb()
        .create_ci(with_token(
            cmdb_pb::CreateCiRequest {
                name: "mail-01".into(),
                class: "server".into(),
                ..Default::default()
            },
            &keeper,
        ))
        .await?
        .into_inner()
        .ci
        .unwrap_or_default();
    let listed = region
        .cmdb()
        .list_cis(with_token(cmdb_pb::ListCisRequest::default(), &keeper))
        .await?
        .into_inner();

    // then the CMDB answered both
    assert!(created.id.starts_with("emea-"), "{}", created.id);
    assert!(
        listed.cis.iter().any(|ci| ci.id == created.id),
        "{listed:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_call_without_a_valid_token_is_refused_at_the_gateway() -> anyhow::Result<()> {
    // given a region
    let nats = NatsServer::start().await?;
    let region = Region::start("emea", &nats, |_| {}).await?;

    // when calls come without a token, with a malformed one and with a forged one
    let missing = region
        .tickets()
        .create_ticket(tonic::Request::new(new_incident("anonymous")))
        .await;
    let malformed = region
        .tickets()
        .create_ticket(with_token(new_incident("malformed"), "not-a-jwt"))
        .await;
    let forged = desk_kit::auth::mint_dev_token(
        "another-secret-that-is-also-32-bytes-long",
        &desk_kit::auth::dev_claims(
            &desk_kit::settings::Settings::defaults().auth,
            "eve",
            TENANT,
            &["admin"],
            60,
        ),
    )?;
    let forged = region
        .tickets()
        .create_ticket(with_token(new_incident("forged"), &forged))
        .await;

    // then each is UNAUTHENTICATED, and nothing was created
    for outcome in [missing, malformed, forged] {
        expect_code(outcome, Code::Unauthenticated)?;
    }
    let listed = region
        .tickets()
        .list_tickets(with_token(
            tickets_pb::ListTicketsRequest::default(),
            &agent(),
        ))
        .await?
        .into_inner();
    assert_eq!(listed.total_size, 0);
    Ok(())
}
