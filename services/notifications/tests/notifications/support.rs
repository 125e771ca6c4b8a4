//! The service under test with its transports, and the events other services would publish.

use std::time::Duration;

use chrono::{DateTime, Utc};
use desk_kit::events::{EventSource, envelope::CloudEventAttributes, streams};
use desk_notifications::ENTRY;
use desk_proto::{
    common::v1 as common, directory::v1 as directory,
    notifications::v1::notification_service_client::NotificationServiceClient,
    tickets::v1 as tickets,
};
use desk_testkit::{
    TestDatabase,
    service::{Harness, REGION, ServiceUnderTest, TENANT},
    smtp::SmtpSink,
    webhook::WebhookReceiver,
};
use prost::Message;
use tonic::transport::Channel;
use uuid::Uuid;

pub const WAIT: Duration = Duration::from_secs(20);

pub struct Desk {
    pub service: ServiceUnderTest,
    pub sink: SmtpSink,
    pub hooks: WebhookReceiver,
}

/// Options of one test's service.
#[derive(Default)]
pub struct Options {
    pub clock: Option<DateTime<Utc>>,
    pub coalesce_seconds: u64,
    pub max_attempts: u32,
}

pub async fn start(database: TestDatabase, options: Options) -> anyhow::Result<Desk> {
    let sink = SmtpSink::start().await?;
    let hooks = WebhookReceiver::start().await?;
    let smtp = sink.url();
    let mut harness = Harness::new(ENTRY).settings(move |s| {
        s.notifications.smtp_url = desk_kit::settings::Secret::new(smtp);
        s.notifications.from_address = "desk@desk.example".into();
        s.notifications.message_id_domain = "desk.example".into();
        // The receiver listens on loopback: the test tenant may use private addresses.
        s.notifications.private_webhook_tenants = vec![TENANT.into()];
        s.notifications.poll_interval_ms = 25;
        s.notifications.coalesce_seconds = options.coalesce_seconds;
        s.notifications.max_attempts = if options.max_attempts == 0 {
            12
        } else {
            options.max_attempts
        };
        s.consumer.backoff_ms = vec![50, 100];
    });
    if let Some(t) = options.clock {
        harness = harness.manual_clock(t);
    }
    let service = harness.start(database).await?;
    for source in ["tickets", "directory"] {
        streams::ensure_stream(
            &service.jetstream,
            &EventSource::new(REGION, source),
            &service.settings.nats,
        )
        .await?;
    }
    Ok(Desk {
        service,
        sink,
        hooks,
    })
}

impl Desk {
    pub fn client(&self) -> NotificationServiceClient<Channel> {
        NotificationServiceClient::new(self.service.channel())
    }

    pub fn admin(&self) -> String {
        self.service.token("admin", TENANT, &["admin"])
    }

    /// Publishes an event as its service would; `msg_id` other than the event id makes
    /// JetStream keep a redelivery it would otherwise drop as a duplicate.
    #[allow(clippy::too_many_arguments)]
    pub async fn publish_as(
        &self,
        service: &str,
        aggregate: &str,
        event: &str,
        id: Uuid,
        msg_id: Uuid,
        subject_id: &str,
        payload: &impl Message,
    ) -> anyhow::Result<()> {
        let attributes = CloudEventAttributes {
            id,
            source: format!("/desk/{REGION}/{service}"),
            ce_type: format!("desk.{service}.{aggregate}.{event}.v1"),
            subject: subject_id.to_owned(),
            tenant: TENANT.to_owned(),
            time: Utc::now(),
            traceparent: None,
        };
        let mut headers = attributes.to_headers();
        headers.insert("Nats-Msg-Id", msg_id.to_string().as_str());
        let subject = format!("desk.{REGION}.{service}.{TENANT}.{aggregate}.{event}");
        self.service
            .jetstream
            .publish_with_headers(subject, headers, payload.encode_to_vec().into())
            .await?
            .await?;
        Ok(())
    }

    pub async fn publish(
        &self,
        service: &str,
        aggregate: &str,
        event: &str,
        subject_id: &str,
        payload: &impl Message,
    ) -> anyhow::Result<Uuid> {
        let id = Uuid::now_v7();
        self.publish_as(service, aggregate, event, id, id, subject_id, payload)
            .await?;
        Ok(id)
    }

    /// A person in the directory, known by the token subject `subject`.
    pub async fn person(
        &self,
        subject: &str,
        name: &str,
        email: &str,
        locale: &str,
        zone: &str,
    ) -> anyhow::Result<()> {
        let person = directory::Person {
            id: format!("{REGION}-{}", Uuid::now_v7()),
            tenant_id: TENANT.into(),
            subject: subject.into(),
            display_name: name.into(),
            email: email.into(),
            locale: locale.into(),
            time_zone: zone.into(),
            status: directory::PersonStatus::Active as i32,
            version: 1,
            ..Default::default()
        };
        let id = person.id.clone();
        self.publish(
            "directory",
            "person",
            "created",
            &id,
            &directory::PersonCreated {
                person: Some(person),
                ..Default::default()
            },
        )
        .await?;
        Ok(())
    }

    /// Publishes `ticket.<event>` for `ticket` with `actor`.
    pub async fn ticket_event(
        &self,
        event: &str,
        ticket: &tickets::Ticket,
        actor: &str,
    ) -> anyhow::Result<Uuid> {
        let actor = Some(common::Actor {
            subject: actor.into(),
            name: actor.into(),
            roles: vec!["agent".into()],
        });
        let ticket = Some(ticket.clone());
        match event {
            "created" => {
                self.publish(
                    "tickets",
                    "ticket",
                    event,
                    "t",
                    &tickets::TicketCreated { ticket, actor },
                )
                .await
            }
            "status_changed" => {
                self.publish(
                    "tickets",
                    "ticket",
                    event,
                    "t",
                    &tickets::TicketStatusChanged {
                        ticket,
                        actor,
                        ..Default::default()
                    },
                )
                .await
            }
            "updated" => {
                self.publish(
                    "tickets",
                    "ticket",
                    event,
                    "t",
                    &tickets::TicketUpdated {
                        ticket,
                        actor,
                        ..Default::default()
                    },
                )
                .await
            }
            other => anyhow::bail!("no helper for ticket.{other}"),
        }
    }

    /// Waits until the directory's people are projected (the tickets consumer then finds them).
    pub async fn wait_for_people(&self, count: i64) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.service.rows_in("notifications_people").await? < count {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "people were not projected"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Waits until `table` has at least `count` rows.
    pub async fn wait_for_rows(&self, table: &str, count: i64) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.service.rows_in(table).await? < count {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "{table} has fewer than {count} rows"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

pub fn ticket(number: &str, requester: &str) -> tickets::Ticket {
    tickets::Ticket {
        id: format!("{REGION}-{}", Uuid::now_v7()),
        number: number.into(),
        r#type: tickets::TicketType::Incident as i32,
        title: "Skrivaren på plan 3 har papperstrassel".into(),
        requester_id: requester.into(),
        priority: tickets::Priority::P3Moderate as i32,
        status: tickets::TicketStatus::New as i32,
        tenant_id: TENANT.into(),
        region: REGION.into(),
        version: 1,
        ..Default::default()
    }
}
