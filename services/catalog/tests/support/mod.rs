//! The catalog's side of the shared harness (`desk_testkit::service`): the catalog booted through
//! the binary's own start-up with its `ENTRY` on a manual clock — and, when a test needs managers
//! and teams, beside a real directory process on the same nats-server, so the projection is fed
//! by the directory's real events. Typed clients, offering builders and the calls tests share.

#![allow(dead_code)] // Each helper is used by some tests, not necessarily by every one.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{DateTime, TimeZone as _, Utc};
use desk_kit::auth::{dev_claims, mint_dev_token};
use desk_proto::{
    catalog::v1::{self as pb, catalog_service_client::CatalogServiceClient},
    directory::v1::{self as directory, directory_service_client::DirectoryServiceClient},
};
use desk_testkit::{Backend, TestDatabase, service::Harness};
use tonic::{Status, transport::Channel};

pub use desk_testkit::service::{
    EVENTUALLY, Event, SECRET, ServiceUnderTest, TENANT, expect_code, expect_violations, with_token,
};

/// The catalog's clock starts here and moves only when told.
pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 3, 4, 8, 0, 0)
        .single()
        .unwrap_or_else(|| panic!("a valid start time"))
}

pub struct TestDesk {
    pub catalog: ServiceUnderTest,
    pub directory: Option<ServiceUnderTest>,
}

async fn database(backend: Backend) -> anyhow::Result<TestDatabase> {
    match backend {
        Backend::Postgres => desk_testkit::postgres_database().await,
        Backend::Sqlite => desk_testkit::sqlite_database(),
    }
}

/// The catalog alone, or (with `with_directory`) the directory first and the catalog on its
/// nats-server.
pub async fn spawn_desk(
    catalog_database: TestDatabase,
    with_directory: bool,
) -> anyhow::Result<TestDesk> {
    let backend = catalog_database.backend;
    let directory = if with_directory {
        Some(
            Harness::new(desk_directory::ENTRY)
                .start(database(backend).await?)
                .await
                .context("starting the directory")?,
        )
    } else {
        None
    };
    let mut harness = Harness::new(desk_catalog::ENTRY).manual_clock(start_time());
    if let Some(directory) = &directory {
        let url = directory.nats.url();
        harness = harness.settings(move |settings| settings.nats.url = url);
    }
    let mut catalog = harness
        .start(catalog_database)
        .await
        .context("starting the catalog")?;
    if let Some(directory) = &directory {
        // The harness's own view of NATS is of a server the catalog does not use.
        catalog.jetstream = directory.jetstream.clone();
    }
    Ok(TestDesk { catalog, directory })
}

pub fn text(value: &str) -> pb::Value {
    pb::Value {
        kind: Some(pb::value::Kind::Text(value.into())),
    }
}

pub fn number(value: f64) -> pb::Value {
    pb::Value {
        kind: Some(pb::value::Kind::Number(value)),
    }
}

pub fn answer(field: &str, value: pb::Value) -> pb::Answer {
    pb::Answer {
        field: field.into(),
        value: Some(value),
    }
}

pub fn en(text: &str) -> Vec<pb::LocalizedText> {
    vec![pb::LocalizedText {
        locale: "en".into(),
        text: text.into(),
    }]
}

pub fn field(key: &str, kind: pb::FieldType) -> pb::FormField {
    pb::FormField {
        key: key.into(),
        label: en(key),
        r#type: kind as i32,
        ..Default::default()
    }
}

/// A laptop: a model (standard or pro), a justification shown and required only for "pro",
/// and a cost (default 900, at most 5000).
pub fn laptop_form() -> pb::FormSchema {
    let mut model = field("model", pb::FieldType::Choice);
    model.required = true;
    model.choices = vec!["standard".into(), "pro".into()];
    let mut justification = field("justification", pb::FieldType::Text);
    justification.required = true;
    justification.visible_when = Some(pb::Condition {
        field: "model".into(),
        test: Some(pb::condition::Test::AnyOf(pb::Texts {
            values: vec!["pro".into()],
        })),
    });
    let mut cost = field("cost", pb::FieldType::Number);
    cost.min = Some(0.0);
    cost.max = Some(5000.0);
    cost.default_value = Some(number(900.0));
    pb::FormSchema {
        fields: vec![model, justification, cost],
    }
}

pub fn people(subjects: &[&str]) -> pb::Approvers {
    pb::Approvers {
        kind: pb::ApproverKind::People as i32,
        group_id: String::new(),
        subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
    }
}

pub fn step(name: &str, approvers: pb::Approvers, rule: pb::ApprovalRule) -> pb::ApprovalStep {
    pb::ApprovalStep {
        name: name.into(),
        approvers: Some(approvers),
        rule: rule as i32,
        ..Default::default()
    }
}

pub fn manual(key: &str, group: &str) -> pb::TaskTemplate {
    pb::TaskTemplate {
        key: key.into(),
        name: key.replace('_', " "),
        group_id: group.into(),
        automated: false,
        automation: String::new(),
    }
}

pub fn automated(key: &str, automation: &str) -> pb::TaskTemplate {
    pb::TaskTemplate {
        key: key.into(),
        name: key.replace('_', " "),
        group_id: String::new(),
        automated: true,
        automation: automation.into(),
    }
}

/// A laptop offering with `steps` and `stages` (each a list of parallel tasks).
pub fn laptop(
    steps: Vec<pb::ApprovalStep>,
    stages: Vec<Vec<pb::TaskTemplate>>,
) -> pb::OfferingDefinition {
    pb::OfferingDefinition {
        name: vec![
            pb::LocalizedText {
                locale: "en".into(),
                text: "New laptop".into(),
            },
            pb::LocalizedText {
                locale: "sv".into(),
                text: "Ny bärbar dator".into(),
            },
        ],
        description: en("A laptop for work"),
        service: "End-user computing".into(),
        category: "hardware".into(),
        form: Some(laptop_form()),
        approval: Some(pb::ApprovalPolicy { steps }),
        fulfillment: Some(pb::FulfillmentPlan {
            stages: stages
                .into_iter()
                .map(|tasks| pb::FulfillmentStage { tasks })
                .collect(),
        }),
        target_fulfillment_minutes: 480,
        visibility: None,
        knowledge_article_ids: Vec::new(),
        active: true,
    }
}

pub fn state(request: &pb::Request) -> pb::RequestState {
    pb::RequestState::try_from(request.state).unwrap_or(pb::RequestState::Unspecified)
}

impl TestDesk {
    pub fn api(&self) -> CatalogServiceClient<Channel> {
        CatalogServiceClient::new(self.catalog.channel())
    }

    pub fn admin(&self) -> String {
        self.catalog.token("cat", TENANT, &["catalog_admin"])
    }

    pub fn requester(&self, subject: &str) -> String {
        self.catalog.token(subject, TENANT, &["requester"])
    }

    /// A token with `groups` (teams) besides `roles`.
    pub fn member_of(&self, subject: &str, roles: &[&str], groups: &[&str]) -> String {
        let mut claims = dev_claims(&self.catalog.settings.auth, subject, TENANT, roles, 3600);
        claims.groups = groups.iter().map(|g| (*g).to_owned()).collect();
        mint_dev_token(SECRET, &claims).unwrap_or_else(|e| panic!("minting a token: {e}"))
    }

    pub async fn create(&self, definition: pb::OfferingDefinition) -> Result<pb::Offering, Status> {
        self.api()
            .create_offering(with_token(
                pb::CreateOfferingRequest {
                    definition: Some(definition),
                },
                &self.admin(),
            ))
            .await?
            .into_inner()
            .offering
            .ok_or_else(|| Status::internal("no offering answered"))
    }

    pub async fn submit_as(
        &self,
        token: &str,
        offering: &str,
        answers: Vec<pb::Answer>,
    ) -> Result<pb::Request, Status> {
        self.api()
            .submit_request(with_token(
                pb::SubmitRequestRequest {
                    offering_id: offering.into(),
                    offering_version: 0,
                    answers,
                    idempotency_key: String::new(),
                },
                token,
            ))
            .await?
            .into_inner()
            .request
            .ok_or_else(|| Status::internal("no request answered"))
    }

    pub async fn get(&self, token: &str, id: &str) -> Result<pb::Request, Status> {
        self.api()
            .get_request(with_token(pb::GetRequestRequest { id: id.into() }, token))
            .await?
            .into_inner()
            .request
            .ok_or_else(|| Status::internal("no request answered"))
    }

    pub async fn decide(
        &self,
        approver: &str,
        request: &pb::Request,
        step: i32,
        verdict: pb::Verdict,
    ) -> Result<pb::Request, Status> {
        self.api()
            .decide_approval(with_token(
                pb::DecideApprovalRequest {
                    request_id: request.id.clone(),
                    step,
                    verdict: verdict as i32,
                    comment: format!("{approver} decided"),
                },
                &self.requester(approver),
            ))
            .await?
            .into_inner()
            .request
            .ok_or_else(|| Status::internal("no request answered"))
    }

    /// Moves the catalog's clock.
    pub fn advance_minutes(&self, minutes: i64) -> anyhow::Result<()> {
        self.catalog
            .clock()
            .context("the catalog has a manual clock")?
            .advance(chrono::Duration::minutes(minutes));
        Ok(())
    }

    /// The request once `done` holds of it (the timer worker and consumers act asynchronously).
    pub async fn eventually(
        &self,
        token: &str,
        id: &str,
        done: impl Fn(&pb::Request) -> bool,
    ) -> anyhow::Result<pb::Request> {
        let deadline = Instant::now() + EVENTUALLY;
        loop {
            let request = self.get(token, id).await?;
            if done(&request) {
                return Ok(request);
            }
            if Instant::now() >= deadline {
                bail!("the request never got there: {request:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The catalog's events of `aggregate.event` about request `id`, decoded.
    pub async fn events_of<M: prost::Message + Default>(
        &self,
        aggregate: &str,
        event: &str,
        id: &str,
        count: usize,
    ) -> anyhow::Result<Vec<M>> {
        let subject = self.catalog.subject(aggregate, event);
        let deadline = Instant::now() + EVENTUALLY;
        loop {
            let events: Vec<Event> = self
                .catalog
                .settled_events()
                .await?
                .into_iter()
                .filter(|e| e.subject == subject && e.header("ce-subject").as_deref() == Some(id))
                .collect();
            if events.len() >= count {
                return events.iter().map(|e| e.decode::<M>()).collect();
            }
            if Instant::now() >= deadline {
                bail!("{} of {count} {subject} events about {id}", events.len());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // ---- the directory ----

    fn directory_api(&self) -> anyhow::Result<DirectoryServiceClient<Channel>> {
        let directory = self
            .directory
            .as_ref()
            .context("no directory in this desk")?;
        Ok(DirectoryServiceClient::new(directory.channel()))
    }

    fn directory_admin(&self) -> anyhow::Result<String> {
        let directory = self
            .directory
            .as_ref()
            .context("no directory in this desk")?;
        Ok(directory.token("dora", TENANT, &["admin"]))
    }

    /// A person with token subject `subject` (and a manager's person id); returns their id.
    pub async fn person(&self, subject: &str, manager_id: &str) -> anyhow::Result<String> {
        let person = self
            .directory_api()?
            .create_person(with_token(
                directory::CreatePersonRequest {
                    subject: subject.into(),
                    display_name: subject.into(),
                    email: format!("{subject}@example.com"),
                    locale: "en".into(),
                    time_zone: "Europe/Stockholm".into(),
                    manager_id: manager_id.into(),
                    ..Default::default()
                },
                &self.directory_admin()?,
            ))
            .await?
            .into_inner()
            .person
            .context("no person answered")?;
        Ok(person.id)
    }

    /// A team with `members` (person ids); returns its id.
    pub async fn team(&self, name: &str, members: &[&str]) -> anyhow::Result<String> {
        let token = self.directory_admin()?;
        let team = self
            .directory_api()?
            .create_team(with_token(
                directory::CreateTeamRequest {
                    name: name.into(),
                    region: "emea".into(),
                    ..Default::default()
                },
                &token,
            ))
            .await?
            .into_inner()
            .team
            .context("no team answered")?;
        for member in members {
            self.directory_api()?
                .add_membership(with_token(
                    directory::AddMembershipRequest {
                        team_id: team.id.clone(),
                        person_id: (*member).into(),
                        role: directory::MembershipRole::Member as i32,
                    },
                    &token,
                ))
                .await?;
        }
        Ok(team.id)
    }

    /// Waits until the catalog's projection holds `people` people and `memberships` memberships.
    pub async fn projected(&self, people: i64, memberships: i64) -> anyhow::Result<()> {
        let deadline = Instant::now() + EVENTUALLY;
        loop {
            let have = (
                self.catalog.rows_in("catalog_people").await?,
                self.catalog.rows_in("catalog_memberships").await?,
            );
            if have.0 >= people && have.1 >= memberships {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("the directory projection has {have:?}, not ({people}, {memberships})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
