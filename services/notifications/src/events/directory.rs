//! The directory's people, teams and memberships into the projection recipients are resolved
//! from: addresses, locales and time zones of people, each team's manager and active members.
//! `version` orders: an older event never overwrites a newer row.

use std::sync::Arc;

use desk_kit::events::{Effect, Handle, HandlerError, IncomingEvent};
use desk_proto::directory::v1 as directory;

use crate::{domain::model::Person, store::NotificationStore};

pub const DURABLE: &str = "notifications-directory";

pub fn subjects(region: &str) -> Vec<String> {
    ["person", "team", "membership"]
        .iter()
        .map(|a| format!("desk.{region}.directory.*.{a}.>"))
        .collect()
}

pub struct DirectoryHandler {
    pub store: Arc<NotificationStore>,
}

fn retry(e: crate::store::StoreError) -> HandlerError {
    HandlerError::Retry(e.to_string())
}

impl DirectoryHandler {
    async fn person(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        person: Option<directory::Person>,
    ) -> Result<(), HandlerError> {
        let Some(p) = person else {
            return Err(HandlerError::Reject("no person in the event".into()));
        };
        let projected = Person {
            id: p.id.clone(),
            subject: p.subject.clone(),
            display_name: p.display_name.clone(),
            email: p.email.clone(),
            phone: p.phone.clone(),
            locale: p.locale.clone(),
            time_zone: p.time_zone.clone(),
            active: p.status != directory::PersonStatus::Deactivated as i32,
        };
        self.store
            .upsert_person(
                effect.txn(),
                &event.attributes.tenant,
                p.version,
                &projected,
            )
            .await
            .map_err(retry)
    }

    async fn team(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        team: Option<directory::Team>,
    ) -> Result<(), HandlerError> {
        let Some(t) = team else {
            return Err(HandlerError::Reject("no team in the event".into()));
        };
        let manager = (!t.manager_id.is_empty()).then_some(t.manager_id.as_str());
        self.store
            .upsert_team(
                effect.txn(),
                &event.attributes.tenant,
                &t.id,
                &t.name,
                manager,
                t.version,
            )
            .await
            .map_err(retry)
    }

    async fn membership(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        m: Option<directory::Membership>,
        active: bool,
    ) -> Result<(), HandlerError> {
        let Some(m) = m else {
            return Err(HandlerError::Reject("no membership in the event".into()));
        };
        self.store
            .upsert_member(
                effect.txn(),
                &event.attributes.tenant,
                &m.team_id,
                &m.person_id,
                active && m.active,
                m.version,
            )
            .await
            .map_err(retry)
    }
}

#[async_trait::async_trait]
impl Handle<directory::PersonCreated> for DirectoryHandler {
    async fn handle(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        m: directory::PersonCreated,
    ) -> Result<(), HandlerError> {
        self.person(effect, event, m.person).await
    }
}

#[async_trait::async_trait]
impl Handle<directory::PersonUpdated> for DirectoryHandler {
    async fn handle(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        m: directory::PersonUpdated,
    ) -> Result<(), HandlerError> {
        self.person(effect, event, m.person).await
    }
}

#[async_trait::async_trait]
impl Handle<directory::PersonDeactivated> for DirectoryHandler {
    async fn handle(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        m: directory::PersonDeactivated,
    ) -> Result<(), HandlerError> {
        self.person(effect, event, m.person).await
    }
}

#[async_trait::async_trait]
impl Handle<directory::TeamCreated> for DirectoryHandler {
    async fn handle(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        m: directory::TeamCreated,
    ) -> Result<(), HandlerError> {
        self.team(effect, event, m.team).await
    }
}

#[async_trait::async_trait]
impl Handle<directory::TeamUpdated> for DirectoryHandler {
    async fn handle(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        m: directory::TeamUpdated,
    ) -> Result<(), HandlerError> {
        self.team(effect, event, m.team).await
    }
}

#[async_trait::async_trait]
impl Handle<directory::MembershipAdded> for DirectoryHandler {
    async fn handle(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        m: directory::MembershipAdded,
    ) -> Result<(), HandlerError> {
        self.membership(effect, event, m.membership, true).await
    }
}

#[async_trait::async_trait]
impl Handle<directory::MembershipRemoved> for DirectoryHandler {
    async fn handle(
        &self,
        effect: &Effect<'_>,
        event: &IncomingEvent,
        m: directory::MembershipRemoved,
    ) -> Result<(), HandlerError> {
        self.membership(effect, event, m.membership, false).await
    }
}
