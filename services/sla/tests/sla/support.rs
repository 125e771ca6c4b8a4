//! The SLA service's side of the shared harness (`desk_testkit::service`): the service booted
//! through the binary's own start-up with its `ENTRY` on a manual clock, fed the tickets and
//! directory services' CloudEvents straight into their JetStream streams (exactly as those
//! services publish them), so each test controls every event's time to the second.

#![allow(dead_code)] // Each helper is used by some tests, not necessarily by every one.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{DateTime, TimeDelta, TimeZone as _, Utc};
use desk_kit::events::{EventSource, envelope::CloudEventAttributes, streams};
use desk_proto::{
    common::v1 as common,
    directory::v1 as directory,
    sla::v1::{self as pb, sla_service_client::SlaServiceClient},
    tickets::v1 as tickets,
};
use desk_testkit::{TestDatabase, service::Harness};
use prost::Message as _;
use tonic::transport::Channel;

#[allow(unused_imports)] // Re-exported for the test modules; not every one uses all.
pub use desk_testkit::service::{
    EVENTUALLY, Event, REGION, ServiceUnderTest, TENANT, expect_code, expect_violations, with_token,
};

/// Monday 7 January 2030, 07:00 UTC: 08:00 in Stockholm, 14:00 in Jakarta.
pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 7, 7, 0, 0)
        .single()
        .unwrap_or_else(|| panic!("a valid start time"))
}

/// `minutes` after the start.
pub fn at(minutes: i64) -> DateTime<Utc> {
    start_time() + TimeDelta::minutes(minutes)
}

pub fn ts(time: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: time.timestamp(),
        nanos: 0,
    })
}

pub struct TestDesk {
    pub sla: ServiceUnderTest,
}

pub async fn spawn_desk(database: TestDatabase) -> anyhow::Result<TestDesk> {
    let sla = Harness::new(desk_sla::ENTRY)
        .manual_clock(start_time())
        .start(database)
        .await
        .context("starting the SLA service")?;
    // The streams the SLA service consumes from, as their owners would create them.
    for service in ["tickets", "directory"] {
        streams::ensure_stream(
            &sla.jetstream,
            &EventSource::new(REGION, service),
            &sla.settings.nats,
        )
        .await?;
    }
    Ok(TestDesk { sla })
}

/// A ticket as the tickets service would publish it, moved step by step.
#[derive(Clone)]
pub struct Ticket {
    pub ticket: tickets::Ticket,
}

impl Ticket {
    pub fn new(number: u32, created: DateTime<Utc>) -> Ticket {
        Ticket {
            ticket: tickets::Ticket {
                id: format!("{REGION}-0190{number:028}"),
                number: format!("INC-{number:06}"),
                r#type: tickets::TicketType::Incident as i32,
                title: "mail is down".into(),
                requester_id: "rita".into(),
                priority: tickets::Priority::P3Moderate as i32,
                status: tickets::TicketStatus::New as i32,
                assignment_group_id: "emea-l1".into(),
                tenant_id: TENANT.into(),
                region: REGION.into(),
                version: 1,
                create_time: ts(created),
                update_time: ts(created),
                ..Default::default()
            },
        }
    }

    pub fn id(&self) -> String {
        self.ticket.id.clone()
    }

    /// The next version of the ticket at `time`, changed by `change`.
    pub fn next(
        &mut self,
        time: DateTime<Utc>,
        change: impl FnOnce(&mut tickets::Ticket),
    ) -> tickets::Ticket {
        change(&mut self.ticket);
        self.ticket.version += 1;
        self.ticket.update_time = ts(time);
        self.ticket.clone()
    }
}

pub fn actor() -> Option<common::Actor> {
    Some(common::Actor {
        subject: "andy".into(),
        name: "Andy Agent".into(),
        roles: vec!["agent".into()],
    })
}

impl TestDesk {
    pub fn admin(&self) -> String {
        self.sla.token("ada", TENANT, &["admin"])
    }

    pub fn agent(&self, groups: &[&str]) -> String {
        let _ = groups;
        self.sla.token("andy", TENANT, &["agent"])
    }

    pub fn api(&self) -> SlaServiceClient<Channel> {
        SlaServiceClient::new(self.sla.channel())
    }

    pub fn set_clock(&self, time: DateTime<Utc>) -> anyhow::Result<()> {
        self.sla
            .clock()
            .context("the SLA service has a manual clock")?
            .set(time);
        Ok(())
    }

    /// Publishes one event of `service` as its CloudEvent, straight into its stream.
    pub async fn publish(
        &self,
        service: &'static str,
        aggregate: &str,
        event: &str,
        subject_id: &str,
        time: DateTime<Utc>,
        payload: Vec<u8>,
    ) -> anyhow::Result<()> {
        let source = EventSource::new(REGION, service);
        let attributes = CloudEventAttributes {
            id: desk_kit::ids::new_uuid(),
            source: source.ce_source(),
            ce_type: source.ce_type(aggregate, event),
            subject: subject_id.to_owned(),
            tenant: TENANT.to_owned(),
            time,
            traceparent: None,
        };
        let mut headers = attributes.to_headers();
        headers.insert("Nats-Msg-Id", attributes.id.to_string().as_str());
        self.sla
            .jetstream
            .publish_with_headers(
                source.subject(TENANT, aggregate, event),
                headers,
                payload.into(),
            )
            .await?
            .await?;
        Ok(())
    }

    pub async fn ticket_event(
        &self,
        event: &str,
        ticket: tickets::Ticket,
        payload: Vec<u8>,
    ) -> anyhow::Result<()> {
        let time =
            desk_sla::api::convert::time_of(ticket.update_time.as_ref()).unwrap_or_else(start_time);
        self.publish("tickets", "ticket", event, &ticket.id, time, payload)
            .await
    }

    pub async fn created(&self, ticket: &Ticket) -> anyhow::Result<()> {
        let message = tickets::TicketCreated {
            ticket: Some(ticket.ticket.clone()),
            actor: actor(),
        };
        self.ticket_event("created", ticket.ticket.clone(), message.encode_to_vec())
            .await
    }

    pub async fn status(
        &self,
        ticket: &mut Ticket,
        time: DateTime<Utc>,
        status: tickets::TicketStatus,
        reason: tickets::PendingReason,
        note: &str,
    ) -> anyhow::Result<()> {
        let previous = ticket.ticket.status;
        let snapshot = ticket.next(time, |t| {
            t.status = status as i32;
            t.pending_reason = reason as i32;
        });
        let message = tickets::TicketStatusChanged {
            ticket: Some(snapshot.clone()),
            actor: actor(),
            previous_status: previous,
            note: note.into(),
        };
        self.ticket_event("status_changed", snapshot, message.encode_to_vec())
            .await
    }

    pub async fn updated(
        &self,
        ticket: &mut Ticket,
        time: DateTime<Utc>,
        change: impl FnOnce(&mut tickets::Ticket),
    ) -> anyhow::Result<()> {
        let snapshot = ticket.next(time, change);
        let message = tickets::TicketUpdated {
            ticket: Some(snapshot.clone()),
            actor: actor(),
            changes: vec![],
        };
        self.ticket_event("updated", snapshot, message.encode_to_vec())
            .await
    }

    pub async fn assigned(
        &self,
        ticket: &mut Ticket,
        time: DateTime<Utc>,
        team: &str,
    ) -> anyhow::Result<()> {
        let previous = ticket.ticket.assignment_group_id.clone();
        let snapshot = ticket.next(time, |t| {
            t.assignment_group_id = team.into();
            t.status = tickets::TicketStatus::Assigned as i32;
        });
        let message = tickets::TicketAssigned {
            ticket: Some(snapshot.clone()),
            actor: actor(),
            previous_assignment_group_id: previous,
            previous_assignee_id: String::new(),
            note: "handed over".into(),
        };
        self.ticket_event("assigned", snapshot, message.encode_to_vec())
            .await
    }

    /// A directory team naming `calendar_id`.
    pub async fn team(&self, team_id: &str, region: &str, calendar_id: &str) -> anyhow::Result<()> {
        let team = directory::Team {
            id: team_id.into(),
            tenant_id: TENANT.into(),
            name: team_id.into(),
            region: region.into(),
            calendar_id: calendar_id.into(),
            version: 1,
            ..Default::default()
        };
        let message = directory::TeamCreated {
            team: Some(team),
            actor: actor(),
        };
        self.publish(
            "directory",
            "team",
            "created",
            team_id,
            start_time(),
            message.encode_to_vec(),
        )
        .await
    }

    pub async fn calendar(
        &self,
        name: &str,
        zone: &str,
        from_hour: u32,
        to_hour: u32,
        holidays: &[(&str, &str)],
    ) -> anyhow::Result<pb::Calendar> {
        let weekdays = [
            pb::Weekday::Monday,
            pb::Weekday::Tuesday,
            pb::Weekday::Wednesday,
            pb::Weekday::Thursday,
            pb::Weekday::Friday,
        ];
        let calendar = pb::Calendar {
            name: name.into(),
            time_zone: zone.into(),
            weekly_hours: weekdays
                .iter()
                .map(|day| pb::WorkingSpan {
                    weekday: *day as i32,
                    start_minute: from_hour * 60,
                    end_minute: to_hour * 60,
                    ends_next_day: false,
                })
                .collect(),
            holidays: holidays
                .iter()
                .map(|(date, name)| pb::Holiday {
                    date: (*date).into(),
                    name: (*name).into(),
                })
                .collect(),
            ..Default::default()
        };
        self.api()
            .create_calendar(with_token(
                pb::CreateCalendarRequest {
                    calendar: Some(calendar),
                    idempotency_key: String::new(),
                },
                &self.admin(),
            ))
            .await?
            .into_inner()
            .calendar
            .context("no calendar answered")
    }

    /// A policy with first response 1 h, resolution 8 h (P1: 2 h), pausing on the customer,
    /// warning at 75 and 90 %.
    pub fn policy(kind: pb::PolicyKind, calendar_id: &str) -> pb::Policy {
        pb::Policy {
            name: format!("{kind:?} gold"),
            kind: kind as i32,
            targets: vec![
                pb::Target {
                    metric: pb::Metric::FirstResponse as i32,
                    priority: 0,
                    business_minutes: 60,
                },
                pb::Target {
                    metric: pb::Metric::Resolution as i32,
                    priority: 0,
                    business_minutes: 8 * 60,
                },
                pb::Target {
                    metric: pb::Metric::Resolution as i32,
                    priority: tickets::Priority::P1Critical as i32,
                    business_minutes: 120,
                },
            ],
            conditions: Some(pb::ClockConditions {
                pause_pending_reasons: vec![tickets::PendingReason::Customer as i32],
                pause_statuses: vec![],
                reset_on_reopen: false,
            }),
            warning_thresholds_percent: vec![75, 90],
            calendar_id: calendar_id.into(),
            ..Default::default()
        }
    }

    pub async fn create_policy(&self, policy: pb::Policy) -> anyhow::Result<pb::Policy> {
        self.api()
            .create_policy(with_token(
                pb::CreatePolicyRequest {
                    policy: Some(policy),
                    idempotency_key: String::new(),
                },
                &self.admin(),
            ))
            .await?
            .into_inner()
            .policy
            .context("no policy answered")
    }

    pub async fn ticket_sla(&self, ticket_id: &str) -> anyhow::Result<pb::GetTicketSlaResponse> {
        Ok(self
            .api()
            .get_ticket_sla(with_token(
                pb::GetTicketSlaRequest {
                    ticket_id: ticket_id.into(),
                },
                &self.admin(),
            ))
            .await?
            .into_inner())
    }

    /// The ticket's clocks once `ready` holds for them (events are consumed asynchronously).
    pub async fn clocks_when(
        &self,
        ticket_id: &str,
        ready: impl Fn(&[pb::Clock]) -> bool,
    ) -> anyhow::Result<Vec<pb::Clock>> {
        let deadline = Instant::now() + EVENTUALLY;
        loop {
            let last = match self.ticket_sla(ticket_id).await {
                Ok(response) => {
                    if ready(&response.clocks) {
                        return Ok(response.clocks);
                    }
                    format!(
                        "{:?}",
                        response
                            .clocks
                            .iter()
                            .map(|c| (c.metric, c.state, c.elapsed_seconds))
                            .collect::<Vec<_>>()
                    )
                }
                Err(error) => error.to_string(),
            };
            if Instant::now() >= deadline {
                bail!("the clocks of {ticket_id} never got ready; last: {last}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The SLA service's events of `event` once there are `count` (bounded wait).
    pub async fn sla_events(&self, event: &str, count: usize) -> anyhow::Result<Vec<Event>> {
        self.sla
            .wait_for_events(&self.sla.subject("sla", event), count, EVENTUALLY)
            .await
    }
}

pub fn clock(
    clocks: &[pb::Clock],
    kind: pb::PolicyKind,
    metric: pb::Metric,
) -> anyhow::Result<pb::Clock> {
    clocks
        .iter()
        .find(|c| c.kind == kind as i32 && c.metric == metric as i32)
        .cloned()
        .with_context(|| format!("no {kind:?} {metric:?} clock"))
}
