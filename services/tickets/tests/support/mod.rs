//! The tickets service's side of the shared harness (`desk_testkit::service`): the service booted
//! through the binary's own start-up with its `ENTRY`, its typed client, and the request builders
//! its tests share. Everything that is the same for every service — servers, tokens, row counts,
//! the events published, status checks — is the testkit's and re-exported here.

#![allow(dead_code)] // Each helper is used by some tests, not necessarily by every test binary.

use std::ops::{Deref, DerefMut};

use anyhow::Context as _;
use desk_proto::tickets::v1::{self as pb, ticket_service_client::TicketServiceClient};
use desk_testkit::{TestDatabase, service::Harness};
use tonic::{Status, transport::Channel};

pub use desk_testkit::service::{
    EVENTUALLY, Event, REGION, SECRET, ServiceUnderTest, TENANT, anonymous, expect_code,
    expect_violations, with_token,
};

/// The stream the tickets service publishes to in region `test`.
pub const STREAM: &str = "DESK_TEST_TICKETS";

/// One running tickets service with its own nats-server and database; the harness's helpers
/// through `Deref`.
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

/// The tickets service on `database`, as production boots it, on the wall clock.
pub async fn spawn_desk(database: TestDatabase) -> anyhow::Result<TestDesk> {
    spawn_with(Harness::new(desk_tickets::ENTRY), database).await
}

/// The tickets service started by `harness` (a manual clock, other settings).
pub async fn spawn_with(harness: Harness, database: TestDatabase) -> anyhow::Result<TestDesk> {
    let service = harness
        .start(database)
        .await
        .context("starting the tickets service")?;
    Ok(TestDesk { service })
}

impl TestDesk {
    pub fn agent(&self) -> String {
        self.token("agent-7", TENANT, &["agent"])
    }

    pub fn admin(&self) -> String {
        self.token("ada", TENANT, &["admin"])
    }

    pub fn requester(&self, subject: &str) -> String {
        self.token(subject, TENANT, &["requester"])
    }

    /// A client on the service (cheap: channels multiplex).
    pub fn api(&self) -> TicketServiceClient<Channel> {
        TicketServiceClient::new(self.channel())
    }

    // ---- common calls ----

    pub async fn create(
        &self,
        token: &str,
        request: pb::CreateTicketRequest,
    ) -> Result<pb::Ticket, Status> {
        let response = self.api().create_ticket(with_token(request, token)).await?;
        response
            .into_inner()
            .ticket
            .ok_or_else(|| Status::internal("the response carries no ticket"))
    }

    pub async fn get(&self, token: &str, id: &str) -> Result<pb::Ticket, Status> {
        let response = self
            .api()
            .get_ticket(with_token(pb::GetTicketRequest { id: id.into() }, token))
            .await?;
        response
            .into_inner()
            .ticket
            .ok_or_else(|| Status::internal("the response carries no ticket"))
    }

    pub async fn list(
        &self,
        token: &str,
        request: pb::ListTicketsRequest,
    ) -> Result<pb::ListTicketsResponse, Status> {
        Ok(self
            .api()
            .list_tickets(with_token(request, token))
            .await?
            .into_inner())
    }

    pub async fn total(&self, token: &str) -> anyhow::Result<i64> {
        Ok(self
            .list(token, pb::ListTicketsRequest::default())
            .await?
            .total_size)
    }
}

// ---- request builders ----

pub fn incident(title: &str) -> pb::CreateTicketRequest {
    pb::CreateTicketRequest {
        r#type: pb::TicketType::Incident as i32,
        title: title.into(),
        ..Default::default()
    }
}

pub fn service_request(title: &str) -> pb::CreateTicketRequest {
    pb::CreateTicketRequest {
        r#type: pb::TicketType::ServiceRequest as i32,
        title: title.into(),
        ..Default::default()
    }
}

pub fn problem(title: &str) -> pb::CreateTicketRequest {
    pb::CreateTicketRequest {
        r#type: pb::TicketType::Problem as i32,
        title: title.into(),
        ..Default::default()
    }
}
