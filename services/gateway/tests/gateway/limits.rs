//! Rate limits per tenant and per person, and request limits, at the gateway.

use std::time::Duration;

use desk_proto::tickets::v1 as tickets_pb;
use desk_testkit::NatsServer;
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

use crate::support::{Region, TENANT, agent, expect_code, new_incident, token, with_token};

fn metadata(status: &Status, name: &str) -> Option<String> {
    status
        .metadata()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

#[tokio::test]
async fn a_burst_over_a_tenants_limit_is_answered_with_resource_exhausted_and_retry_info()
-> anyhow::Result<()> {
    // given a gateway that lets a tenant make three writes, then one a minute
    let nats = NatsServer::start().await?;
    let region = Region::start("emea", &nats, |settings| {
        settings.gateway.limits.writes.tenant_per_minute = 1;
        settings.gateway.limits.writes.tenant_burst = 3;
    })
    .await?;
    let ana = token("ana", TENANT, &["agent"]);
    let bob = token("bob", TENANT, &["agent"]);

    // when two agents of the tenant create five tickets in a burst
    let mut remaining = Vec::new();
    let mut refused = Vec::new();
    for (n, who) in [&ana, &bob, &ana, &bob, &ana].into_iter().enumerate() {
        match region
            .tickets()
            .create_ticket(with_token(new_incident(&format!("burst {n}")), who))
            .await
        {
            Ok(response) => remaining.push(
                response
                    .metadata()
                    .get("ratelimit-remaining")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            ),
            Err(status) => refused.push(status),
        }
    }

    // then three pass, counting down, and the rest are refused with when to retry
    assert_eq!(
        remaining,
        [
            Some("2".to_owned()),
            Some("1".to_owned()),
            Some("0".to_owned())
        ]
    );
    assert_eq!(refused.len(), 2);
    for status in &refused {
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        let details = status.get_error_details();
        let delay = details
            .retry_info()
            .and_then(|info| info.retry_delay)
            .ok_or_else(|| anyhow::anyhow!("no RetryInfo in {status:?}"))?;
        assert!(
            delay > Duration::ZERO && delay <= Duration::from_secs(60),
            "{delay:?}"
        );
        let quota = details
            .quota_failure()
            .ok_or_else(|| anyhow::anyhow!("no QuotaFailure in {status:?}"))?;
        assert_eq!(quota.violations[0].subject, "tenant:writes");
        assert_eq!(metadata(status, "ratelimit-limit").as_deref(), Some("3"));
        assert_eq!(
            metadata(status, "ratelimit-remaining").as_deref(),
            Some("0")
        );
        assert!(metadata(status, "ratelimit-reset").is_some(), "{status:?}");
    }
    // and only the calls that passed made tickets; reads and other tenants are not held up
    let listed = region
        .tickets()
        .list_tickets(with_token(
            tickets_pb::ListTicketsRequest::default(),
            &agent(),
        ))
        .await?
        .into_inner();
    assert_eq!(listed.total_size, 3);
    region
        .tickets()
        .create_ticket(with_token(
            new_incident("another tenant"),
            &token("gus", "globex", &["agent"]),
        ))
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_person_over_their_own_limit_does_not_hold_up_their_colleagues() -> anyhow::Result<()> {
    // given a gateway that lets each person make two reads, then one a minute
    let nats = NatsServer::start().await?;
    let region = Region::start("emea", &nats, |settings| {
        settings.gateway.limits.reads.person_per_minute = 1;
        settings.gateway.limits.reads.person_burst = 2;
    })
    .await?;
    let ana = token("ana", TENANT, &["agent"]);
    let list = || tickets_pb::ListTicketsRequest::default();

    // when one agent reads three times
    region
        .tickets()
        .list_tickets(with_token(list(), &ana))
        .await?;
    region
        .tickets()
        .list_tickets(with_token(list(), &ana))
        .await?;
    let third = region
        .tickets()
        .list_tickets(with_token(list(), &ana))
        .await;

    // then the third is refused for them, and a colleague still reads
    let status = expect_code(third, Code::ResourceExhausted)?;
    let details = status.get_error_details();
    assert_eq!(
        details
            .quota_failure()
            .map(|q| q.violations[0].subject.clone()),
        Some("person:reads".to_owned())
    );
    region
        .tickets()
        .list_tickets(with_token(list(), &token("bob", TENANT, &["agent"])))
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_request_message_over_the_size_limit_is_refused_before_it_is_forwarded()
-> anyhow::Result<()> {
    // given a gateway that takes request messages of up to 1 KiB
    let nats = NatsServer::start().await?;
    let region = Region::start("emea", &nats, |settings| {
        settings.gateway.max_message_bytes = 1024;
    })
    .await?;

    // when a ticket with a 4 KiB description is created, and a small one
    let mut large = new_incident("large");
    large.description = "x".repeat(4096);
    let refused = region
        .tickets()
        .create_ticket(with_token(large, &agent()))
        .await;
    region
        .tickets()
        .create_ticket(with_token(new_incident("small"), &agent()))
        .await?;

    // then the large one is refused, and only the small one was made
    let status = expect_code(refused, Code::ResourceExhausted)?;
    assert!(
        status.message().contains("limit of 1024 bytes"),
        "{status:?}"
    );
    let listed = region
        .tickets()
        .list_tickets(with_token(
            tickets_pb::ListTicketsRequest::default(),
            &agent(),
        ))
        .await?
        .into_inner();
    assert_eq!(listed.total_size, 1);
    Ok(())
}
