//! Two regions on loopback, each with its services and its gateway, each gateway the other's
//! peer: a call for an object of the other region is answered there, transparently.

use desk_kit::settings::ServiceAddress;
use desk_proto::tickets::v1::{self as tickets_pb, ticket_service_client::TicketServiceClient};
use desk_testkit::NatsServer;
use tokio::net::TcpListener;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::support::{
    Region, agent, channel, expect_code, new_incident, wait_for_health, with_token,
};

/// `emea` and `amer`, whose gateways know each other.
async fn two_regions(nats: &NatsServer) -> anyhow::Result<(Region, Region)> {
    let emea_listener = TcpListener::bind("127.0.0.1:0").await?;
    let amer_listener = TcpListener::bind("127.0.0.1:0").await?;
    let emea_url = format!("http://{}", emea_listener.local_addr()?);
    let amer_url = format!("http://{}", amer_listener.local_addr()?);
    let emea = Region::start_on(emea_listener, "emea", nats, |settings| {
        settings
            .gateway
            .peers
            .insert("amer".into(), ServiceAddress { url: amer_url });
    })
    .await?;
    let amer = Region::start_on(amer_listener, "amer", nats, |settings| {
        settings
            .gateway
            .peers
            .insert("emea".into(), ServiceAddress { url: emea_url });
    })
    .await?;
    Ok((emea, amer))
}

#[tokio::test]
async fn a_call_for_an_object_of_another_region_is_answered_through_the_peer_gateway()
-> anyhow::Result<()> {
    // given two regions, and a ticket made in amer
    let nats = NatsServer::start().await?;
    let (emea, amer) = two_regions(&nats).await?;
    let made_in_amer = amer
        .tickets()
        .create_ticket(with_token(new_incident("vpn down in Chicago"), &agent()))
        .await?
        .into_inner()
        .ticket
        .unwrap_or_default();
    assert!(made_in_amer.id.starts_with("amer-"), "{}", made_in_amer.id);

    // when a client of emea's gateway reads it and comments on it
    let read = emea
        .tickets()
        .get_ticket(with_token(
            tickets_pb::GetTicketRequest {
                id: made_in_amer.id.clone(),
            },
            &agent(),
        ))
        .await?
        .into_inner()
        .ticket
        .unwrap_or_default();
    emea.tickets()
        .add_comment(with_token(
            tickets_pb::AddCommentRequest {
                ticket_id: made_in_amer.id.clone(),
                body: "EMEA sees it too".into(),
                ..Default::default()
            },
            &agent(),
        ))
        .await?;

    // then emea's gateway answered both from amer: the ticket as made, the comment on it there
    assert_eq!(read.title, "vpn down in Chicago");
    let comments = amer
        .tickets()
        .list_comments(with_token(
            tickets_pb::ListCommentsRequest {
                ticket_id: made_in_amer.id.clone(),
            },
            &agent(),
        ))
        .await?
        .into_inner()
        .comments;
    assert!(
        comments.iter().any(|c| c.body == "EMEA sees it too"),
        "{comments:?}"
    );
    // and emea's own tickets service never had it
    let direct = TicketServiceClient::new(channel(emea.tickets.addr))
        .get_ticket(with_token(
            tickets_pb::GetTicketRequest {
                id: made_in_amer.id,
            },
            &agent(),
        ))
        .await;
    expect_code(direct, Code::NotFound)?;
    Ok(())
}

#[tokio::test]
async fn calls_without_an_id_of_another_region_stay_in_their_region() -> anyhow::Result<()> {
    // given two regions
    let nats = NatsServer::start().await?;
    let (emea, amer) = two_regions(&nats).await?;

    // when a ticket is created through emea's gateway
    let made = emea
        .tickets()
        .create_ticket(with_token(new_incident("made in emea"), &agent()))
        .await?
        .into_inner()
        .ticket
        .unwrap_or_default();

    // then it is emea's, and each region lists only its own tickets
    assert!(made.id.starts_with("emea-"), "{}", made.id);
    let listed_in_amer = amer
        .tickets()
        .list_tickets(with_token(
            tickets_pb::ListTicketsRequest::default(),
            &agent(),
        ))
        .await?
        .into_inner();
    assert_eq!(listed_in_amer.total_size, 0);
    // and each gateway reports its peer's health
    wait_for_health(emea.gateway_channel(), "peer.amer", ServingStatus::Serving).await?;
    wait_for_health(amer.gateway_channel(), "peer.emea", ServingStatus::Serving).await?;
    Ok(())
}
