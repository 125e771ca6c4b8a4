//! The change service's side of the shared harness (`desk_testkit::service`): the change service
//! booted through the binary's own start-up with its `ENTRY` on a manual clock, beside a real
//! CMDB process (and, when a test needs ticket events, a real tickets process) on the same
//! nats-server, so the projection is fed by the CMDB's real events and CI updates reach the
//! real CMDB. Typed clients and the calls the tests share.

#![allow(dead_code)] // Each helper is used by some tests, not necessarily by every one.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{DateTime, TimeZone as _, Utc};
use desk_kit::settings::ServiceAddress;
use desk_proto::{
    change::v1::{self as pb, change_service_client::ChangeServiceClient},
    cmdb::v1::{self as cmdb, cmdb_service_client::CmdbServiceClient},
    tickets::v1::{self as tickets, ticket_service_client::TicketServiceClient},
};
use desk_testkit::{Backend, TestDatabase, service::Harness};
use prost_types::Timestamp;
use tonic::{Code, Status, transport::Channel};

pub use desk_testkit::service::{
    EVENTUALLY, Event, REGION, ServiceUnderTest, TENANT, expect_code, expect_violations, with_token,
};

/// The change service's clock starts here (a Monday, 08:00 UTC) and moves only when told.
pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 7, 8, 0, 0)
        .single()
        .unwrap_or_else(|| panic!("a valid start time"))
}

/// `hours` after the start of the clock, as a protobuf time.
pub fn at(hours: i64) -> Option<Timestamp> {
    let time = start_time() + chrono::Duration::hours(hours);
    Some(Timestamp {
        seconds: time.timestamp(),
        nanos: 0,
    })
}

/// A window from `start` to `end` hours after the clock's start.
pub fn window(start: i64, end: i64) -> pb::Window {
    pb::Window {
        start_time: at(start),
        end_time: at(end),
        time_zone: "Europe/Paris".into(),
    }
}

/// The change service, the CMDB it reads, and perhaps the tickets service.
pub struct TestDesk {
    pub change: ServiceUnderTest,
    pub cmdb: ServiceUnderTest,
    pub tickets: Option<ServiceUnderTest>,
}

/// A fresh database of `backend` (one per service: each owns its tables).
async fn database(backend: Backend) -> anyhow::Result<TestDatabase> {
    match backend {
        Backend::Postgres => desk_testkit::postgres_database().await,
        Backend::Sqlite => desk_testkit::sqlite_database(),
    }
}

/// The CMDB, then (with `with_tickets`) the tickets service, then the change service, all on
/// the CMDB's nats-server; the change service calls the CMDB at its address.
pub async fn spawn_desk(
    change_database: TestDatabase,
    with_tickets: bool,
) -> anyhow::Result<TestDesk> {
    let backend = change_database.backend;
    let cmdb = Harness::new(desk_cmdb::ENTRY)
        .start(database(backend).await?)
        .await
        .context("starting the CMDB")?;
    let nats_url = cmdb.nats.url();
    let tickets = if with_tickets {
        let url = nats_url.clone();
        Some(
            Harness::new(desk_tickets::ENTRY)
                .settings(move |settings| settings.nats.url = url)
                .start(database(backend).await?)
                .await
                .context("starting the tickets service")?,
        )
    } else {
        None
    };
    let cmdb_url = format!("http://{}", cmdb.addr());
    let url = nats_url.clone();
    let mut change = Harness::new(desk_change::ENTRY)
        .manual_clock(start_time())
        .settings(move |settings| {
            settings.nats.url = url;
            settings
                .services
                .insert("cmdb".into(), ServiceAddress { url: cmdb_url });
        })
        .start(change_database)
        .await
        .context("starting the change service")?;
    // The harness's own view of NATS is of a server the change service does not use: read its
    // events where it publishes them.
    change.jetstream = cmdb.jetstream.clone();
    Ok(TestDesk {
        change,
        cmdb,
        tickets,
    })
}

impl TestDesk {
    pub fn manager(&self) -> String {
        self.change.token("carla", TENANT, &["change_manager"])
    }

    pub fn agent(&self) -> String {
        self.change.token("andy", TENANT, &["agent"])
    }

    pub fn member(&self, subject: &str) -> String {
        self.change.token(subject, TENANT, &["cab_member"])
    }

    pub fn cmdb_admin(&self) -> String {
        self.cmdb.token("ada", TENANT, &["admin"])
    }

    pub fn api(&self) -> ChangeServiceClient<Channel> {
        ChangeServiceClient::new(self.change.channel())
    }

    pub fn cmdb_api(&self) -> CmdbServiceClient<Channel> {
        CmdbServiceClient::new(self.cmdb.channel())
    }

    pub fn tickets_api(&self) -> anyhow::Result<TicketServiceClient<Channel>> {
        let tickets = self
            .tickets
            .as_ref()
            .context("no tickets service in this desk")?;
        Ok(TicketServiceClient::new(tickets.channel()))
    }

    /// Moves the change service's clock.
    pub fn advance(&self, hours: i64) -> anyhow::Result<()> {
        self.change
            .clock()
            .context("the change service has a manual clock")?
            .advance(chrono::Duration::hours(hours));
        Ok(())
    }

    /// Sets the change service's clock to `hours` after its start.
    pub fn advance_to(&self, hours: i64) -> anyhow::Result<()> {
        self.change
            .clock()
            .context("the change service has a manual clock")?
            .set(start_time() + chrono::Duration::hours(hours));
        Ok(())
    }

    // ---- the CMDB ----

    pub async fn ci(
        &self,
        name: &str,
        class: &str,
        criticality: cmdb::Criticality,
    ) -> anyhow::Result<String> {
        let ci = self
            .cmdb_api()
            .create_ci(with_token(
                cmdb::CreateCiRequest {
                    name: name.into(),
                    class: class.into(),
                    status: cmdb::CiStatus::InUse as i32,
                    criticality: criticality as i32,
                    ..Default::default()
                },
                &self.cmdb_admin(),
            ))
            .await?
            .into_inner()
            .ci
            .context("no CI answered")?;
        Ok(ci.id)
    }

    pub async fn relate(
        &self,
        source: &str,
        kind: cmdb::RelationshipType,
        target: &str,
    ) -> anyhow::Result<()> {
        self.cmdb_api()
            .add_relationship(with_token(
                cmdb::AddRelationshipRequest {
                    source_id: source.into(),
                    r#type: kind as i32,
                    target_id: target.into(),
                },
                &self.cmdb_admin(),
            ))
            .await?;
        Ok(())
    }

    pub async fn get_ci(&self, id: &str) -> anyhow::Result<cmdb::ConfigurationItem> {
        self.cmdb_api()
            .get_ci(with_token(
                cmdb::GetCiRequest { id: id.into() },
                &self.cmdb_admin(),
            ))
            .await?
            .into_inner()
            .ci
            .context("no CI answered")
    }

    /// `shop` (a business service) ← provides ← `web` → depends_on → `app` → runs_on → `host`:
    /// returns their ids in that order, once the change service has projected them all.
    pub async fn shop_estate(&self) -> anyhow::Result<[String; 4]> {
        let shop = self
            .ci("shop", "business_service", cmdb::Criticality::Critical)
            .await?;
        let web = self
            .ci("web", "application", cmdb::Criticality::High)
            .await?;
        let app = self.ci("app", "server", cmdb::Criticality::Medium).await?;
        let host = self.ci("host", "server", cmdb::Criticality::Medium).await?;
        self.relate(&web, cmdb::RelationshipType::Provides, &shop)
            .await?;
        self.relate(&web, cmdb::RelationshipType::DependsOn, &app)
            .await?;
        self.relate(&app, cmdb::RelationshipType::RunsOn, &host)
            .await?;
        self.settle_projection().await?;
        Ok([shop, web, app, host])
    }

    /// Waits (bounded) until the change service has projected everything the CMDB published so
    /// far: the follower applies the CMDB's events in order, so once a CI created now is known,
    /// every CI and relationship before it is too.
    pub async fn settle_projection(&self) -> anyhow::Result<()> {
        let sentinel = self
            .ci(
                &format!("sentinel-{}", uuid::Uuid::new_v4()),
                "server",
                cmdb::Criticality::Low,
            )
            .await?;
        let deadline = Instant::now() + EVENTUALLY;
        loop {
            let probe = self
                .api()
                .check_conflicts(with_token(
                    pb::CheckConflictsRequest {
                        affected_ci_ids: vec![sentinel.clone()],
                        window: Some(window(1, 2)),
                        ..Default::default()
                    },
                    &self.manager(),
                ))
                .await;
            match probe {
                Ok(_) => return Ok(()),
                Err(status)
                    if status.code() == Code::InvalidArgument && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(status) => {
                    bail!("the change service did not project the CMDB in time: {status}")
                }
            }
        }
    }

    // ---- changes ----

    pub async fn create(&self, request: pb::CreateChangeRequest) -> Result<pb::Change, Status> {
        self.api()
            .create_change(with_token(request, &self.agent()))
            .await?
            .into_inner()
            .change
            .ok_or_else(|| Status::internal("no change answered"))
    }

    pub async fn get(&self, id: &str) -> anyhow::Result<pb::Change> {
        self.api()
            .get_change(with_token(
                pb::GetChangeRequest { id: id.into() },
                &self.manager(),
            ))
            .await?
            .into_inner()
            .change
            .context("no change answered")
    }

    pub async fn cancel(&self, change: &pb::Change) -> anyhow::Result<pb::Change> {
        change_of(
            self.api()
                .cancel_change(with_token(
                    pb::CancelChangeRequest {
                        id: change.id.clone(),
                        expected_version: change.version,
                        reason: "probe".into(),
                    },
                    &self.manager(),
                ))
                .await
                .map(|r| r.into_inner().change),
        )
    }

    pub async fn submit(&self, change: &pb::Change) -> Result<pb::Change, Status> {
        status_change_of(
            self.api()
                .submit_change(with_token(
                    pb::SubmitChangeRequest {
                        id: change.id.clone(),
                        expected_version: change.version,
                    },
                    &self.agent(),
                ))
                .await
                .map(|r| r.into_inner().change),
        )
    }

    pub async fn assess(&self, change: &pb::Change) -> Result<pb::Change, Status> {
        status_change_of(
            self.api()
                .assess_change(with_token(
                    pb::AssessChangeRequest {
                        id: change.id.clone(),
                        expected_version: change.version,
                    },
                    &self.manager(),
                ))
                .await
                .map(|r| r.into_inner().change),
        )
    }

    pub async fn decide(
        &self,
        change: &pb::Change,
        member: &str,
        verdict: pb::Verdict,
    ) -> Result<pb::Change, Status> {
        status_change_of(
            self.api()
                .decide_change(with_token(
                    pb::DecideChangeRequest {
                        id: change.id.clone(),
                        verdict: verdict as i32,
                        comment: format!("{member} says {verdict:?}"),
                        on_behalf_of: String::new(),
                    },
                    &self.member(member),
                ))
                .await
                .map(|r| r.into_inner().change),
        )
    }

    pub async fn schedule(
        &self,
        change: &pb::Change,
        window: Option<pb::Window>,
    ) -> Result<pb::Change, Status> {
        status_change_of(
            self.api()
                .schedule_change(with_token(
                    pb::ScheduleChangeRequest {
                        id: change.id.clone(),
                        expected_version: change.version,
                        window,
                    },
                    &self.manager(),
                ))
                .await
                .map(|r| r.into_inner().change),
        )
    }

    pub async fn start(&self, change: &pb::Change) -> Result<pb::Change, Status> {
        status_change_of(
            self.api()
                .start_implementation(with_token(
                    pb::StartImplementationRequest {
                        id: change.id.clone(),
                        expected_version: change.version,
                    },
                    &self.manager(),
                ))
                .await
                .map(|r| r.into_inner().change),
        )
    }

    pub async fn complete(
        &self,
        change: &pb::Change,
        successful: bool,
    ) -> Result<pb::Change, Status> {
        status_change_of(
            self.api()
                .complete_implementation(with_token(
                    pb::CompleteImplementationRequest {
                        id: change.id.clone(),
                        expected_version: change.version,
                        successful,
                        notes: if successful {
                            "done".into()
                        } else {
                            "broke; backed out".into()
                        },
                    },
                    &self.manager(),
                ))
                .await
                .map(|r| r.into_inner().change),
        )
    }

    pub async fn close(&self, change: &pb::Change) -> Result<pb::Change, Status> {
        status_change_of(
            self.api()
                .close_change(with_token(
                    pb::CloseChangeRequest {
                        id: change.id.clone(),
                        expected_version: change.version,
                        review_notes: "reviewed".into(),
                    },
                    &self.manager(),
                ))
                .await
                .map(|r| r.into_inner().change),
        )
    }

    /// A normal change on `cis` in `window`, submitted and assessed: authorized when the
    /// policy has no CAB for its risk.
    pub async fn authorized_normal(
        &self,
        summary: &str,
        cis: &[&str],
        window: pb::Window,
    ) -> anyhow::Result<pb::Change> {
        let change = self.create(normal(summary, cis, window)).await?;
        let change = self.submit(&change).await?;
        Ok(self.assess(&change).await?)
    }

    pub async fn set_policy(&self, policy: pb::ChangePolicy) -> anyhow::Result<pb::ChangePolicy> {
        self.api()
            .set_change_policy(with_token(
                pb::SetChangePolicyRequest {
                    policy: Some(policy),
                },
                &self.manager(),
            ))
            .await?
            .into_inner()
            .policy
            .context("no policy answered")
    }

    /// The change's events of one kind once at least `count` were published (bounded wait).
    pub async fn events(&self, event: &str, count: usize) -> anyhow::Result<Vec<Event>> {
        self.change
            .wait_for_events(&self.change.subject("change", event), count, EVENTUALLY)
            .await
    }

    /// Reads the change until `done` says it is as expected (bounded wait).
    pub async fn wait_for_change(
        &self,
        id: &str,
        done: impl Fn(&pb::Change) -> bool,
    ) -> anyhow::Result<pb::Change> {
        let deadline = Instant::now() + EVENTUALLY;
        loop {
            let change = self.get(id).await?;
            if done(&change) {
                return Ok(change);
            }
            if Instant::now() >= deadline {
                bail!("the change did not get there within {EVENTUALLY:?}: {change:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub fn normal(summary: &str, cis: &[&str], window: pb::Window) -> pb::CreateChangeRequest {
    pb::CreateChangeRequest {
        r#type: pb::ChangeType::Normal as i32,
        summary: summary.into(),
        implementation_plan: "do it".into(),
        backout_plan: "undo it".into(),
        test_plan: "check it".into(),
        affected_ci_ids: cis.iter().map(|c| (*c).to_owned()).collect(),
        planned_window: Some(window),
        ..Default::default()
    }
}

fn change_of(result: Result<Option<pb::Change>, Status>) -> anyhow::Result<pb::Change> {
    result?.context("no change answered")
}

fn status_change_of(result: Result<Option<pb::Change>, Status>) -> Result<pb::Change, Status> {
    result?.ok_or_else(|| Status::internal("no change answered"))
}

/// A status of code `code`, or the test fails.
pub fn refused<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: Code,
) -> anyhow::Result<Status> {
    expect_code(result, code)
}

pub fn incident(title: &str, cis: &[&str]) -> tickets::CreateTicketRequest {
    tickets::CreateTicketRequest {
        r#type: tickets::TicketType::Incident as i32,
        title: title.into(),
        affected_ci_ids: cis.iter().map(|c| (*c).to_owned()).collect(),
        ..Default::default()
    }
}
