//! Monolithic mode: the gateway in the same process as the services it fronts (`desk up`
//! runs every entry in one process). Nothing is forwarded; the same layer wraps the process's
//! own services on the one address.

use desk_kit::settings::Settings;
use desk_proto::tickets::v1::ticket_service_client::TicketServiceClient;
use desk_testkit::NatsServer;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::support::{Process, agent, channel, expect_code, new_incident, settings, with_token};

#[tokio::test]
async fn in_one_process_the_gateways_limits_wrap_the_services_themselves() -> anyhow::Result<()> {
    // given tickets and the gateway in one process, which lets a tenant make two writes
    let nats = NatsServer::start().await?;
    let mut process_settings: Settings = settings("emea", &nats);
    process_settings.gateway.limits.writes.tenant_per_minute = 1;
    process_settings.gateway.limits.writes.tenant_burst = 2;
    let process = Process::start_all(
        vec![desk_tickets::ENTRY, desk_gateway::ENTRY],
        process_settings,
    )
    .await?;
    let mut tickets = TicketServiceClient::new(channel(process.addr));

    // when three tickets are created in a burst, and one without a token
    tickets
        .create_ticket(with_token(new_incident("one"), &agent()))
        .await?;
    let second = tickets
        .create_ticket(with_token(new_incident("two"), &agent()))
        .await?;
    let third = tickets
        .create_ticket(with_token(new_incident("three"), &agent()))
        .await;
    let anonymous = tickets
        .create_ticket(tonic::Request::new(new_incident("anonymous")))
        .await;

    // then the in-process service's answers carry the gateway's quota, and the third call is
    // refused by the gateway's limit before the service sees it
    assert_eq!(
        second
            .metadata()
            .get("ratelimit-remaining")
            .map(|v| v.as_bytes()),
        Some(&b"0"[..])
    );
    let status = expect_code(third, Code::ResourceExhausted)?;
    assert!(
        status.get_error_details().retry_info().is_some(),
        "{status:?}"
    );
    expect_code(anonymous, Code::Unauthenticated)?;
    Ok(())
}
