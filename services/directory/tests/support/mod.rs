//! The directory's side of the shared harness (`desk_testkit::service`): the directory booted
//! through the binary's own start-up with its `ENTRY` (on the wall clock, or on a manual clock
//! for presence expiry), its typed client, tokens with identity claims, and the calls and request
//! builders its tests share. Everything that is the same for every service — servers, row
//! counts, the events published, replicas, status checks — is the testkit's and re-exported.

#![allow(dead_code)] // Each helper is used by some tests, not necessarily by every test.

use std::ops::{Deref, DerefMut};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use desk_kit::auth::{dev_claims, mint_dev_token};
use desk_proto::directory::v1::{self as pb, directory_service_client::DirectoryServiceClient};
use desk_testkit::{TestDatabase, service::Harness};
use tonic::{Status, transport::Channel};

pub use desk_testkit::service::{
    EVENTUALLY, Event, OTHER_TENANT, SECRET, ServiceUnderTest, TENANT, expect_code,
    expect_violations, with_token,
};

/// One running directory with its own nats-server and database; the harness's helpers through
/// `Deref`.
pub struct TestDesk {
    service: ServiceUnderTest,
}

impl Deref for TestDesk {
    type Target = ServiceUnderTest;
    fn deref(&self) -> &ServiceUnderTest {
        &self.service
    }
}

impl DerefMut for TestDesk {
    fn deref_mut(&mut self) -> &mut ServiceUnderTest {
        &mut self.service
    }
}

/// The directory on `database`, as production boots it, on the wall clock.
pub async fn spawn_desk(database: TestDatabase) -> anyhow::Result<TestDesk> {
    let service = Harness::new(desk_directory::ENTRY)
        .start(database)
        .await
        .context("starting the directory")?;
    Ok(TestDesk { service })
}

/// The directory on `database`, reading time from a manual clock that starts at `start`.
pub async fn spawn_desk_with_clock(
    database: TestDatabase,
    start: DateTime<Utc>,
) -> anyhow::Result<TestDesk> {
    let service = Harness::new(desk_directory::ENTRY)
        .manual_clock(start)
        .start(database)
        .await
        .context("starting the directory on a manual clock")?;
    Ok(TestDesk { service })
}

/// The claims a token carries about its subject.
#[derive(Debug, Clone, Default)]
pub struct Claims<'a> {
    pub name: Option<&'a str>,
    pub email: Option<&'a str>,
    pub locale: Option<&'a str>,
}

impl TestDesk {
    /// A token for `subject` of `tenant` with `roles` and the identity `claims`.
    pub fn token_with(
        &self,
        subject: &str,
        tenant: &str,
        roles: &[&str],
        claims: Claims<'_>,
    ) -> String {
        let mut token = dev_claims(&self.settings.auth, subject, tenant, roles, 3600);
        token.name = claims.name.map(str::to_owned);
        token.email = claims.email.map(str::to_owned);
        token.locale = claims.locale.map(str::to_owned);
        mint_dev_token(SECRET, &token).expect("minting a development token")
    }

    pub fn admin(&self) -> String {
        self.token("ada", TENANT, &["admin"])
    }

    /// The identity provider's sync robot.
    pub fn integrator(&self) -> String {
        self.token("entra-sync", TENANT, &["integrator"])
    }

    pub fn agent(&self) -> String {
        self.token("alex", TENANT, &["agent"])
    }

    pub fn requester(&self) -> String {
        self.token("rita", TENANT, &["requester"])
    }

    /// A client on the service (cheap: channels multiplex).
    pub fn api(&self) -> DirectoryServiceClient<Channel> {
        DirectoryServiceClient::new(self.channel())
            .max_decoding_message_size(64 * 1024 * 1024)
            .max_encoding_message_size(64 * 1024 * 1024)
    }

    /// The events on the directory's stream of `aggregate.event` in the test tenant, once the
    /// relay has published everything committed.
    pub async fn settled(&self, aggregate: &str, event: &str) -> anyhow::Result<Vec<Event>> {
        let subject = self.subject(aggregate, event);
        Ok(self
            .settled_events()
            .await?
            .into_iter()
            .filter(|e| e.subject == subject)
            .collect())
    }

    // ---- calls ----

    pub async fn who_am_i(&self, token: &str) -> Result<pb::WhoAmIResponse, Status> {
        Ok(self
            .api()
            .who_am_i(with_token(pb::WhoAmIRequest {}, token))
            .await?
            .into_inner())
    }

    pub async fn create_person(
        &self,
        token: &str,
        request: pb::CreatePersonRequest,
    ) -> Result<pb::Person, Status> {
        self.api()
            .create_person(with_token(request, token))
            .await?
            .into_inner()
            .person
            .ok_or_else(|| Status::internal("the response carries no person"))
    }

    pub async fn get_person(&self, token: &str, id: &str) -> Result<pb::GetPersonResponse, Status> {
        let request = pb::GetPersonRequest {
            key: Some(pb::get_person_request::Key::Id(id.into())),
        };
        Ok(self
            .api()
            .get_person(with_token(request, token))
            .await?
            .into_inner())
    }

    pub async fn get_person_by(
        &self,
        token: &str,
        key: pb::get_person_request::Key,
    ) -> Result<pb::GetPersonResponse, Status> {
        let request = pb::GetPersonRequest { key: Some(key) };
        Ok(self
            .api()
            .get_person(with_token(request, token))
            .await?
            .into_inner())
    }

    pub async fn update_person(
        &self,
        token: &str,
        request: pb::UpdatePersonRequest,
    ) -> Result<pb::Person, Status> {
        self.api()
            .update_person(with_token(request, token))
            .await?
            .into_inner()
            .person
            .ok_or_else(|| Status::internal("the response carries no person"))
    }

    pub async fn set_manager(
        &self,
        token: &str,
        person: &pb::Person,
        manager: &pb::Person,
    ) -> Result<pb::Person, Status> {
        self.update_person(
            token,
            pb::UpdatePersonRequest {
                id: person.id.clone(),
                expected_version: person.version,
                manager_id: Some(manager.id.clone()),
                ..Default::default()
            },
        )
        .await
    }

    pub async fn set_agent_profile(
        &self,
        token: &str,
        person: &pb::Person,
        agent: Option<pb::AgentProfile>,
    ) -> Result<pb::Person, Status> {
        let request = pb::SetAgentProfileRequest {
            person_id: person.id.clone(),
            expected_version: person.version,
            agent,
        };
        self.api()
            .set_agent_profile(with_token(request, token))
            .await?
            .into_inner()
            .person
            .ok_or_else(|| Status::internal("the response carries no person"))
    }

    pub async fn create_team(
        &self,
        token: &str,
        request: pb::CreateTeamRequest,
    ) -> Result<pb::Team, Status> {
        self.api()
            .create_team(with_token(request, token))
            .await?
            .into_inner()
            .team
            .ok_or_else(|| Status::internal("the response carries no team"))
    }

    pub async fn update_team(
        &self,
        token: &str,
        request: pb::UpdateTeamRequest,
    ) -> Result<pb::Team, Status> {
        self.api()
            .update_team(with_token(request, token))
            .await?
            .into_inner()
            .team
            .ok_or_else(|| Status::internal("the response carries no team"))
    }

    pub async fn add_member(
        &self,
        token: &str,
        team: &pb::Team,
        person: &pb::Person,
        role: pb::MembershipRole,
    ) -> Result<pb::Membership, Status> {
        let request = pb::AddMembershipRequest {
            team_id: team.id.clone(),
            person_id: person.id.clone(),
            role: role as i32,
        };
        self.api()
            .add_membership(with_token(request, token))
            .await?
            .into_inner()
            .membership
            .ok_or_else(|| Status::internal("the response carries no membership"))
    }

    pub async fn set_presence(
        &self,
        token: &str,
        status: pb::PresenceStatus,
        ttl_seconds: i32,
    ) -> Result<pb::Presence, Status> {
        let request = pb::SetPresenceRequest {
            person_id: String::new(),
            status: status as i32,
            ttl_seconds,
        };
        self.api()
            .set_presence(with_token(request, token))
            .await?
            .into_inner()
            .presence
            .ok_or_else(|| Status::internal("the response carries no presence"))
    }

    pub async fn stage(
        &self,
        token: &str,
        request: pb::StageProvisioningRequest,
    ) -> Result<pb::ProvisioningBatch, Status> {
        self.api()
            .stage_provisioning(with_token(request, token))
            .await?
            .into_inner()
            .batch
            .ok_or_else(|| Status::internal("the response carries no batch"))
    }

    pub async fn commit(&self, token: &str, id: &str) -> Result<pb::ProvisioningBatch, Status> {
        let request = pb::CommitProvisioningRequest { id: id.into() };
        self.api()
            .commit_provisioning(with_token(request, token))
            .await?
            .into_inner()
            .batch
            .ok_or_else(|| Status::internal("the response carries no batch"))
    }

    /// An agent of the test tenant made by the admin: a person with an agent profile.
    pub async fn agent_person(
        &self,
        subject: &str,
        name: &str,
        skills: &[(&str, i32)],
        languages: &[&str],
    ) -> anyhow::Result<pb::Person> {
        let admin = self.admin();
        let person = self.create_person(&admin, person(subject, name)).await?;
        Ok(self
            .set_agent_profile(
                &admin,
                &person,
                Some(pb::AgentProfile {
                    skills: skills
                        .iter()
                        .map(|(name, level)| pb::Skill {
                            name: (*name).to_owned(),
                            level: *level,
                        })
                        .collect(),
                    languages: languages.iter().map(|l| (*l).to_owned()).collect(),
                    capacity: 5,
                }),
            )
            .await?)
    }
}

// ---- builders ----

/// A CreatePerson request for `subject` named `name`.
pub fn person(subject: &str, name: &str) -> pb::CreatePersonRequest {
    pb::CreatePersonRequest {
        subject: subject.into(),
        display_name: name.into(),
        ..Default::default()
    }
}

/// A CreateTeam request for `name` in `region`, with `skills`.
pub fn team(name: &str, region: &str, skills: &[&str]) -> pb::CreateTeamRequest {
    pb::CreateTeamRequest {
        name: name.into(),
        region: region.into(),
        skills: skills.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    }
}

/// A person of a provisioning batch.
pub fn provisioned(external_id: &str, name: &str) -> pb::ProvisionedPerson {
    pb::ProvisionedPerson {
        external_id: external_id.into(),
        display_name: name.into(),
        ..Default::default()
    }
}

/// `person` in `teams` (by id or name) as members.
pub fn in_teams(mut person: pb::ProvisionedPerson, teams: &[&str]) -> pb::ProvisionedPerson {
    person.teams = teams
        .iter()
        .map(|team| pb::ProvisionedMembership {
            team: (*team).to_owned(),
            role: pb::MembershipRole::Member as i32,
        })
        .collect();
    person
}

/// A batch of source `entra-id`.
pub fn batch(
    people: Vec<pb::ProvisionedPerson>,
    deactivate_missing: bool,
) -> pb::StageProvisioningRequest {
    pb::StageProvisioningRequest {
        source: "entra-id".into(),
        people,
        deactivate_missing,
        replace_memberships: false,
    }
}

/// The `ce-type`s of `events`, in order.
pub fn types_of(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| e.header("ce-type").unwrap_or_default())
        .collect()
}
