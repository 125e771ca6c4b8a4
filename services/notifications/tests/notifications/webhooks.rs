//! Webhooks: signed and verified by the receiver's own implementation, retried with back-off,
//! dead-lettered after the last attempt and replayed; the loop filter; SSRF refusals.

use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use desk_proto::notifications::v1 as pb;
use desk_testkit::{
    postgres::postgres_database,
    service::{OTHER_TENANT, expect_violations, with_token},
    sqlite_database,
};

use super::support::{Desk, Options, WAIT, start, ticket};

async fn endpoint(
    desk: &Desk,
    url: String,
    exclude: &[&str],
) -> anyhow::Result<pb::WebhookEndpoint> {
    let created = desk
        .client()
        .create_webhook_endpoint(with_token(
            pb::CreateWebhookEndpointRequest {
                endpoint: Some(pb::WebhookEndpoint {
                    url,
                    event_types: vec!["desk.tickets.*".into()],
                    exclude_actor_subjects: exclude.iter().map(|s| (*s).to_owned()).collect(),
                    enabled: true,
                    ..Default::default()
                }),
            },
            &desk.admin(),
        ))
        .await?
        .into_inner()
        .endpoint
        .expect("the endpoint");
    assert!(created.secret.starts_with("whsec_"));
    desk.hooks.trust(&[&created.secret]);
    Ok(created)
}

#[tokio::test]
async fn a_webhook_is_signed_retried_with_back_off_dead_lettered_and_replayed() -> anyhow::Result<()>
{
    let desk = start(
        postgres_database().await?,
        Options {
            clock: Some(Utc::now()),
            max_attempts: 3,
            ..Options::default()
        },
    )
    .await?;
    let clock = desk.service.clock().expect("a manual clock").clone();
    let e = endpoint(&desk, desk.hooks.url("/desk"), &[]).await?;
    desk.hooks.fail_next(3);
    desk.ticket_event("created", &ticket("INC-000070", "anna"), "agent-budi")
        .await?;

    let first = desk.hooks.wait_for(1, WAIT).await;
    assert_eq!(first.len(), 1);
    assert!(first[0].verified, "signed with the endpoint's secret");
    assert_eq!(first[0].status, 503);
    // Not again before the back-off (30 s ± 20 %) has passed.
    clock.advance(Duration::seconds(20));
    assert_eq!(
        desk.hooks
            .wait_for(2, StdDuration::from_millis(400))
            .await
            .len(),
        1
    );
    clock.advance(Duration::seconds(20));
    assert_eq!(desk.hooks.wait_for(2, WAIT).await.len(), 2);
    // The second retry waits about a minute.
    clock.advance(Duration::seconds(45));
    assert_eq!(
        desk.hooks
            .wait_for(3, StdDuration::from_millis(400))
            .await
            .len(),
        2
    );
    clock.advance(Duration::seconds(30));
    let all = desk.hooks.wait_for(3, WAIT).await;
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|r| r.verified));
    assert!(
        all.iter().all(|r| r.id == all[0].id),
        "one webhook-id across retries"
    );

    // After the last attempt: on the dead-letter list with its log, and `notification.failed`.
    let admin = desk.admin();
    let mut dead = Vec::new();
    for _ in 0..100 {
        dead = desk
            .client()
            .list_dead_letters(with_token(pb::ListDeadLettersRequest::default(), &admin))
            .await?
            .into_inner()
            .deliveries;
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].endpoint_id, e.id);
    assert_eq!(dead[0].log.len(), 3);
    assert!(dead[0].log.iter().all(|a| a.response_code == 503));
    let gaps: Vec<i64> = dead[0]
        .log
        .windows(2)
        .map(|w| {
            w[1].time.as_ref().map_or(0, |t| t.seconds)
                - w[0].time.as_ref().map_or(0, |t| t.seconds)
        })
        .collect();
    assert!(
        gaps[0] >= 24 && gaps[1] > gaps[0],
        "exponential back-off: {gaps:?}"
    );
    let events = desk
        .service
        .wait_for_events(&desk.service.subject("notification", "failed"), 1, WAIT)
        .await?;
    assert_eq!(events.len(), 1);

    // Replayed: the receiver takes it now.
    desk.client()
        .replay_dead_letter(with_token(
            pb::ReplayDeadLetterRequest {
                delivery_id: dead[0].id.clone(),
            },
            &admin,
        ))
        .await?;
    let all = desk.hooks.wait_for(4, WAIT).await;
    assert_eq!(all.len(), 4);
    assert_eq!(all[3].status, 200);
    assert!(all[3].verified);
    desk.service
        .wait_for_events(&desk.service.subject("notification", "delivered"), 1, WAIT)
        .await?;
    Ok(())
}

#[tokio::test]
async fn during_a_rotation_both_secrets_verify() -> anyhow::Result<()> {
    let desk = start(sqlite_database()?, Options::default()).await?;
    let e = endpoint(&desk, desk.hooks.url("/desk"), &[]).await?;
    let rotated = desk
        .client()
        .rotate_webhook_secret(with_token(
            pb::RotateWebhookSecretRequest {
                id: e.id.clone(),
                overlap_seconds: 3600,
            },
            &desk.admin(),
        ))
        .await?
        .into_inner()
        .endpoint
        .expect("the endpoint");
    assert_ne!(rotated.secret, e.secret);
    assert!(rotated.previous_secret_expire_time.is_some());
    // A receiver that still holds only the old secret verifies.
    desk.hooks.trust(&[&e.secret]);
    desk.ticket_event("created", &ticket("INC-000071", "anna"), "agent-budi")
        .await?;
    let got = desk.hooks.wait_for(1, WAIT).await;
    assert!(got[0].verified);
    assert_eq!(got[0].signature.split(' ').count(), 2);
    // And one that holds only the new one.
    desk.hooks.trust(&[&rotated.secret]);
    desk.ticket_event("created", &ticket("INC-000072", "anna"), "agent-budi")
        .await?;
    let got = desk.hooks.wait_for(2, WAIT).await;
    assert!(got[1].verified);
    Ok(())
}

#[tokio::test]
async fn the_loop_filter_suppresses_the_integrators_own_changes() -> anyhow::Result<()> {
    let desk = start(sqlite_database()?, Options::default()).await?;
    endpoint(&desk, desk.hooks.url("/itsm"), &["itsm-bot"]).await?;
    let own = ticket("INC-000080", "anna");
    desk.ticket_event("created", &own, "itsm-bot").await?;
    let other = ticket("INC-000081", "anna");
    desk.ticket_event("created", &other, "agent-budi").await?;
    let got = desk.hooks.wait_for(1, WAIT).await;
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    let got_after = desk.hooks.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got_after.len(), 1, "the bot's own change did not come back");
    assert!(got_after[0].body.contains("INC-000081"));
    assert!(!got_after[0].body.contains("INC-000080"));
    Ok(())
}

#[tokio::test]
async fn webhook_urls_to_private_ranges_or_not_http_are_refused() -> anyhow::Result<()> {
    let desk = start(sqlite_database()?, Options::default()).await?;
    // Another tenant: not allowed private addresses.
    let token = desk.service.token("admin", OTHER_TENANT, &["admin"]);
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://10.0.0.8/hook",
        "http://localhost:9/hook",
        "ftp://example.com/hook",
        "not a url",
    ] {
        let result = desk
            .client()
            .create_webhook_endpoint(with_token(
                pb::CreateWebhookEndpointRequest {
                    endpoint: Some(pb::WebhookEndpoint {
                        url: url.into(),
                        enabled: true,
                        ..Default::default()
                    }),
                },
                &token,
            ))
            .await;
        expect_violations(result, &["endpoint.url"])?;
    }
    assert_eq!(desk.service.rows_in("notifications_endpoints").await?, 0);
    Ok(())
}
