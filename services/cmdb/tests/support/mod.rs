//! The CMDB's side of the shared harness (`desk_testkit::service`): the CMDB booted through the
//! binary's own start-up with its `ENTRY`, its typed client, and the calls and request builders
//! (attribute values, CIs, import items) its tests share. Everything that is the same for every
//! service — servers, tokens, row counts, the events published, replicas and restarts, status
//! checks — is the testkit's and re-exported here.

#![allow(dead_code)] // Each helper is used by some tests, not necessarily by every test binary.

use std::{
    collections::HashMap,
    ops::{Deref, DerefMut},
};

use anyhow::Context as _;
use desk_proto::cmdb::v1::{
    self as pb, attribute_value::Kind, cmdb_service_client::CmdbServiceClient,
};
use desk_testkit::{TestDatabase, service::Harness};
use tonic::{Status, transport::Channel};

pub use desk_testkit::service::{
    EVENTUALLY, OTHER_TENANT, ServiceUnderTest, TENANT, anonymous, expect_code, expect_violations,
    violated_fields, with_token,
};

/// One running CMDB with its own nats-server and database; the harness's helpers through
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

/// The CMDB on `database`, as production boots it, on the wall clock.
pub async fn spawn_desk(database: TestDatabase) -> anyhow::Result<TestDesk> {
    let service = Harness::new(desk_cmdb::ENTRY)
        .start(database)
        .await
        .context("starting the CMDB")?;
    Ok(TestDesk { service })
}

/// A second CMDB process on the same database and nats-server ([`TestDesk::start_replica`]).
pub struct Replica {
    /// A connected client with no token.
    pub client: CmdbServiceClient<Channel>,
    /// Stops the process when dropped.
    _process: desk_testkit::service::Replica,
}

impl TestDesk {
    pub fn admin(&self) -> String {
        self.token("ada", TENANT, &["admin"])
    }

    /// The discovery robot: an integrator.
    pub fn integrator(&self) -> String {
        self.token("sccm-robot", TENANT, &["integrator"])
    }

    pub fn agent(&self) -> String {
        self.token("agent-7", TENANT, &["agent"])
    }

    pub fn requester(&self) -> String {
        self.token("rita", TENANT, &["requester"])
    }

    /// A client on the service (cheap: channels multiplex).
    pub fn api(&self) -> CmdbServiceClient<Channel> {
        CmdbServiceClient::new(self.channel())
    }

    /// Starts another replica of the CMDB on the same database and nats-server, as a Helm HPA
    /// would; it stops when dropped.
    pub async fn start_replica(&self) -> anyhow::Result<Replica> {
        let process = self.service.start_replica().await?;
        Ok(Replica {
            client: CmdbServiceClient::new(process.channel.clone()),
            _process: process,
        })
    }

    /// Stops the CMDB (the shutdown signal, then waits for it to drain) and boots a new one on
    /// the same database and nats-server.
    pub async fn restart_service(&mut self) -> anyhow::Result<()> {
        self.service.restart().await
    }

    // ---- calls ----

    pub async fn create_ci(
        &self,
        token: &str,
        request: pb::CreateCiRequest,
    ) -> Result<pb::ConfigurationItem, Status> {
        let response = self
            .api()
            .create_ci(with_token(request, token))
            .await?
            .into_inner();
        response
            .ci
            .ok_or_else(|| Status::internal("the response carries no CI"))
    }

    pub async fn get_ci(&self, token: &str, id: &str) -> Result<pb::ConfigurationItem, Status> {
        let response = self
            .api()
            .get_ci(with_token(pb::GetCiRequest { id: id.into() }, token))
            .await?
            .into_inner();
        response
            .ci
            .ok_or_else(|| Status::internal("the response carries no CI"))
    }

    pub async fn update_ci(
        &self,
        token: &str,
        request: pb::UpdateCiRequest,
    ) -> Result<pb::ConfigurationItem, Status> {
        let response = self
            .api()
            .update_ci(with_token(request, token))
            .await?
            .into_inner();
        response
            .ci
            .ok_or_else(|| Status::internal("the response carries no CI"))
    }

    pub async fn retire_ci(
        &self,
        token: &str,
        ci: &pb::ConfigurationItem,
        reason: &str,
    ) -> Result<pb::ConfigurationItem, Status> {
        let request = pb::RetireCiRequest {
            id: ci.id.clone(),
            expected_version: ci.version,
            reason: reason.into(),
        };
        let response = self
            .api()
            .retire_ci(with_token(request, token))
            .await?
            .into_inner();
        response
            .ci
            .ok_or_else(|| Status::internal("the response carries no CI"))
    }

    pub async fn list_cis(
        &self,
        token: &str,
        request: pb::ListCisRequest,
    ) -> Result<pb::ListCisResponse, Status> {
        Ok(self
            .api()
            .list_cis(with_token(request, token))
            .await?
            .into_inner())
    }

    /// How many CIs the tenant of `token` has.
    pub async fn total(&self, token: &str) -> anyhow::Result<i64> {
        Ok(self
            .list_cis(token, pb::ListCisRequest::default())
            .await?
            .total_size)
    }

    pub async fn history(
        &self,
        token: &str,
        id: &str,
    ) -> Result<Vec<desk_proto::common::v1::AuditEntry>, Status> {
        let request = pb::GetCiHistoryRequest { id: id.into() };
        Ok(self
            .api()
            .get_ci_history(with_token(request, token))
            .await?
            .into_inner()
            .entries)
    }

    pub async fn relate(
        &self,
        token: &str,
        source: &str,
        kind: pb::RelationshipType,
        target: &str,
    ) -> Result<pb::Relationship, Status> {
        let request = pb::AddRelationshipRequest {
            source_id: source.into(),
            r#type: kind as i32,
            target_id: target.into(),
        };
        let response = self
            .api()
            .add_relationship(with_token(request, token))
            .await?
            .into_inner();
        response
            .relationship
            .ok_or_else(|| Status::internal("the response carries no relationship"))
    }

    pub async fn unrelate(&self, token: &str, id: &str) -> Result<(), Status> {
        let request = pb::RemoveRelationshipRequest { id: id.into() };
        self.api()
            .remove_relationship(with_token(request, token))
            .await?;
        Ok(())
    }

    pub async fn relationships_of(
        &self,
        token: &str,
        ci_id: &str,
    ) -> Result<Vec<pb::Relationship>, Status> {
        let request = pb::ListRelationshipsRequest {
            ci_id: ci_id.into(),
        };
        Ok(self
            .api()
            .list_relationships(with_token(request, token))
            .await?
            .into_inner()
            .relationships)
    }

    pub async fn impact(
        &self,
        token: &str,
        request: pb::AnalyzeImpactRequest,
    ) -> Result<pb::AnalyzeImpactResponse, Status> {
        Ok(self
            .api()
            .analyze_impact(with_token(request, token))
            .await?
            .into_inner())
    }

    pub async fn stage(
        &self,
        token: &str,
        request: pb::StageImportRequest,
    ) -> Result<pb::ImportBatch, Status> {
        let response = self
            .api()
            .stage_import(with_token(request, token))
            .await?
            .into_inner();
        response
            .batch
            .ok_or_else(|| Status::internal("the response carries no batch"))
    }

    pub async fn get_import(&self, token: &str, id: &str) -> Result<pb::ImportBatch, Status> {
        let response = self
            .api()
            .get_import(with_token(pb::GetImportRequest { id: id.into() }, token))
            .await?
            .into_inner();
        response
            .batch
            .ok_or_else(|| Status::internal("the response carries no batch"))
    }

    pub async fn commit(&self, token: &str, id: &str) -> Result<pb::ImportBatch, Status> {
        let response = self
            .api()
            .commit_import(with_token(pb::CommitImportRequest { id: id.into() }, token))
            .await?
            .into_inner();
        response
            .batch
            .ok_or_else(|| Status::internal("the response carries no batch"))
    }

    pub async fn discard(&self, token: &str, id: &str) -> Result<pb::ImportBatch, Status> {
        let response = self
            .api()
            .discard_import(with_token(
                pb::DiscardImportRequest { id: id.into() },
                token,
            ))
            .await?
            .into_inner();
        response
            .batch
            .ok_or_else(|| Status::internal("the response carries no batch"))
    }

    pub async fn list_imports(
        &self,
        token: &str,
        state: pb::ImportState,
    ) -> Result<Vec<pb::ImportBatch>, Status> {
        let request = pb::ListImportsRequest {
            state: state as i32,
            ..Default::default()
        };
        Ok(self
            .api()
            .list_imports(with_token(request, token))
            .await?
            .into_inner()
            .batches)
    }
}

pub fn text(value: &str) -> pb::AttributeValue {
    pb::AttributeValue {
        kind: Some(Kind::StringValue(value.into())),
    }
}

pub fn int(value: i64) -> pb::AttributeValue {
    pb::AttributeValue {
        kind: Some(Kind::IntValue(value)),
    }
}

pub fn clear() -> pb::AttributeValue {
    pb::AttributeValue {
        kind: Some(Kind::Clear(true)),
    }
}

/// An attribute map from pairs.
pub fn attrs<const N: usize>(
    pairs: [(&str, pb::AttributeValue); N],
) -> HashMap<String, pb::AttributeValue> {
    pairs
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

/// A CreateCi request for a CI of `class` named `name`.
pub fn new_ci<const N: usize>(
    class: &str,
    name: &str,
    attributes: [(&str, pb::AttributeValue); N],
) -> pb::CreateCiRequest {
    pb::CreateCiRequest {
        name: name.into(),
        class: class.into(),
        attributes: attrs(attributes),
        ..Default::default()
    }
}

/// An import item (production, no status).
pub fn item<const N: usize>(
    local_id: &str,
    class: &str,
    name: &str,
    attributes: [(&str, pb::AttributeValue); N],
) -> pb::ImportItem {
    pb::ImportItem {
        local_id: local_id.into(),
        class: class.into(),
        name: name.into(),
        attributes: attrs(attributes),
        ..Default::default()
    }
}

pub fn import_rel(
    source: &str,
    kind: pb::RelationshipType,
    target: &str,
) -> pb::ImportRelationship {
    pb::ImportRelationship {
        source: source.into(),
        r#type: kind as i32,
        target: target.into(),
    }
}

// ---- status checks ----
