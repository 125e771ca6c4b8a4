//! Health per upstream and overall, and the circuit breaker of an upstream that is down.

use desk_proto::cmdb::v1 as cmdb_pb;
use desk_testkit::NatsServer;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::support::{Region, TENANT, health_of, token, wait_for_health, with_token};

const TICKETS: &str = "desk.tickets.v1.TicketService";
const CMDB: &str = "desk.cmdb.v1.CmdbService";

#[tokio::test]
async fn the_gateway_reports_its_own_health_and_each_upstreams() -> anyhow::Result<()> {
    // given a region whose gateway forwards to tickets and the CMDB
    let nats = NatsServer::start().await?;
    let region = Region::start("emea", &nats, |_| {}).await?;

    // then the gateway serves, and says each upstream does once it has checked them
    assert_eq!(
        health_of(region.gateway_channel(), "").await?,
        Some(ServingStatus::Serving)
    );
    for service in [TICKETS, CMDB] {
        wait_for_health(region.gateway_channel(), service, ServingStatus::Serving).await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_down_upstream_trips_its_breaker_and_health_says_so() -> anyhow::Result<()> {
    // given a region whose gateway checks its upstreams' health only at start, so that what
    // changes later is the breaker's doing
    let nats = NatsServer::start().await?;
    let mut region = Region::start("emea", &nats, |settings| {
        settings.gateway.health_interval_ms = 3_600_000;
        settings.gateway.breaker.failure_threshold = 3;
        settings.gateway.breaker.open_ms = 3_600_000;
    })
    .await?;
    wait_for_health(region.gateway_channel(), CMDB, ServingStatus::Serving).await?;
    let keeper = token("cara", TENANT, &["configuration_manager"]);

    // when the CMDB stops and calls to it keep coming
    region.cmdb.stop().await?;
    let mut refused_by_the_breaker = None;
    for _ in 0..20 {
        let outcome = region
            .cmdb()
            .list_classes(with_token(cmdb_pb::ListClassesRequest {}, &keeper))
            .await;
        let status = crate::support::expect_code(outcome, Code::Unavailable)?;
        if status.message().contains("paused after repeated failures") {
            refused_by_the_breaker = Some(status);
            break;
        }
    }

    // then the gateway stops calling it: the call is refused at once, with when to retry
    let status =
        refused_by_the_breaker.ok_or_else(|| anyhow::anyhow!("the breaker never opened"))?;
    let details = tonic_types::StatusExt::get_error_details(&status);
    assert!(details.retry_info().is_some(), "{status:?}");
    // and health says the CMDB is not serving, while the gateway and tickets are
    wait_for_health(region.gateway_channel(), CMDB, ServingStatus::NotServing).await?;
    assert_eq!(
        health_of(region.gateway_channel(), TICKETS).await?,
        Some(ServingStatus::Serving)
    );
    assert_eq!(
        health_of(region.gateway_channel(), "").await?,
        Some(ServingStatus::Serving)
    );
    Ok(())
}
