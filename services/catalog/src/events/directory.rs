//! The directory as the catalog needs it: who a requester's manager is and who is in a team,
//! kept from the directory's own events (`DESK_<REGION>_DIRECTORY`): `person.created/updated/
//! deactivated` and `membership.added/removed`, into `catalog_people` and
//! `catalog_memberships`. Each row keeps the version of the event that wrote it, so a late,
//! older event never overwrites a newer one.

use std::sync::Arc;

use desk_kit::events::{Effect, Handle, HandlerError, IncomingEvent};
use desk_proto::directory::v1 as pb;

use crate::store::{CatalogStore, ProjectedPerson, StoreError};

/// The durable consumer's name (also its inbox rows' and dead letters').
pub const DURABLE: &str = "catalog-directory";

pub const PERSON_CREATED: &str = "desk.directory.person.created.v1";
pub const PERSON_UPDATED: &str = "desk.directory.person.updated.v1";
pub const PERSON_DEACTIVATED: &str = "desk.directory.person.deactivated.v1";
pub const MEMBERSHIP_ADDED: &str = "desk.directory.membership.added.v1";
pub const MEMBERSHIP_REMOVED: &str = "desk.directory.membership.removed.v1";

pub fn subjects(region: &str) -> Vec<String> {
    ["person", "membership"]
        .iter()
        .map(|aggregate| format!("desk.{region}.directory.*.{aggregate}.>"))
        .collect()
}

pub struct DirectoryHandler {
    pub store: Arc<CatalogStore>,
}

fn retry(error: StoreError) -> HandlerError {
    HandlerError::Retry(error.to_string())
}

impl DirectoryHandler {
    async fn person(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        person: Option<pb::Person>,
    ) -> Result<(), HandlerError> {
        let person = person.ok_or_else(|| HandlerError::Reject("no person in the event".into()))?;
        if person.id.is_empty() {
            return Err(HandlerError::Reject("a person without an id".into()));
        }
        let projected = ProjectedPerson {
            active: person.status != pb::PersonStatus::Deactivated as i32,
            person_id: person.id,
            subject: person.subject,
            manager_id: person.manager_id,
            version: person.version,
        };
        self.store
            .project_person(effect.txn(), &event.attributes.tenant, &projected)
            .await
            .map_err(retry)
    }

    async fn membership(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        membership: Option<pb::Membership>,
        active: bool,
    ) -> Result<(), HandlerError> {
        let membership =
            membership.ok_or_else(|| HandlerError::Reject("no membership in the event".into()))?;
        if membership.team_id.is_empty() || membership.person_id.is_empty() {
            return Err(HandlerError::Reject(
                "a membership without team or person".into(),
            ));
        }
        self.store
            .project_membership(
                effect.txn(),
                &event.attributes.tenant,
                &membership.team_id,
                &membership.person_id,
                active && membership.active,
                membership.version,
            )
            .await
            .map_err(retry)
    }
}

#[async_trait::async_trait]
impl Handle<pb::PersonCreated> for DirectoryHandler {
    async fn handle(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        message: pb::PersonCreated,
    ) -> Result<(), HandlerError> {
        self.person(effect, event, message.person).await
    }
}

#[async_trait::async_trait]
impl Handle<pb::PersonUpdated> for DirectoryHandler {
    async fn handle(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        message: pb::PersonUpdated,
    ) -> Result<(), HandlerError> {
        self.person(effect, event, message.person).await
    }
}

#[async_trait::async_trait]
impl Handle<pb::PersonDeactivated> for DirectoryHandler {
    async fn handle(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        message: pb::PersonDeactivated,
    ) -> Result<(), HandlerError> {
        self.person(effect, event, message.person).await
    }
}

#[async_trait::async_trait]
impl Handle<pb::MembershipAdded> for DirectoryHandler {
    async fn handle(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        message: pb::MembershipAdded,
    ) -> Result<(), HandlerError> {
        self.membership(effect, event, message.membership, true)
            .await
    }
}

#[async_trait::async_trait]
impl Handle<pb::MembershipRemoved> for DirectoryHandler {
    async fn handle(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        message: pb::MembershipRemoved,
    ) -> Result<(), HandlerError> {
        self.membership(effect, event, message.membership, false)
            .await
    }
}
