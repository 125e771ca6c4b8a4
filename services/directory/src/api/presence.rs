//! Presence (an agent's own, or anyone's for an admin) and the tenant's skill catalog.

use desk_kit::auth::Caller;
use desk_proto::directory::v1 as pb;

use super::{DirectoryApi, DirectoryError, DirectoryResult, convert, refuse_first};
use crate::{
    domain::{
        Fact, Permission, SkillCatalog, Violations, authorize,
        presence::{self, checked_ttl},
    },
    events::{directory_actor, event_for},
};

impl DirectoryApi {
    pub async fn set_presence(
        &self,
        caller: &Caller,
        request: pb::SetPresenceRequest,
    ) -> DirectoryResult<pb::Presence> {
        let mut violations = Violations::new();
        let status = match convert::presence_status(request.status) {
            Some(Some(status)) => Some(status),
            Some(None) => {
                violations.push("status", "must be given: available, busy, away or offline");
                None
            }
            None => {
                violations.push("status", format!("unknown value {}", request.status));
                None
            }
        };
        let ttl = checked_ttl(request.ttl_seconds, &mut violations);
        let conn = self.store.db().connection();
        let person = if request.person_id.is_empty() {
            authorize(&caller.roles, Permission::SetOwnPresence)?;
            self.store
                .person_by_subject(conn, &caller.tenant, &caller.subject)
                .await?
                .ok_or_else(|| {
                    DirectoryError::Precondition(
                        "the caller has no person yet: call WhoAmI first".into(),
                    )
                })?
        } else {
            let id = self.target(&request.person_id, "person");
            authorize(&caller.roles, Permission::SetOwnPresence)
                .or_else(|_| authorize(&caller.roles, Permission::SetAnyPresence))?;
            let person = self
                .store
                .person(conn, &caller.tenant, id?)
                .await?
                .ok_or(DirectoryError::NotFound("person"))?;
            if person.subject != caller.subject {
                authorize(&caller.roles, Permission::SetAnyPresence)?;
            }
            person
        };
        refuse_first(Ok(()), violations)?;
        let (Some(status), Some(ttl)) = (status, ttl) else {
            return Err(DirectoryError::Invalid(Violations::new()));
        };
        if !person.is_active() {
            return Err(DirectoryError::Precondition(
                "the person is deactivated: they have no presence".into(),
            ));
        }
        let now = self.now();
        let txn = self.store.begin().await?;
        let current = self
            .store
            .presence(&*txn, &caller.tenant, person.id)
            .await?;
        let set = presence::set(
            current.as_ref(),
            &caller.tenant,
            person.id,
            status,
            ttl,
            now,
        );
        if !self
            .store
            .write_presence(&txn, &set.presence, set.expected_version)
            .await?
        {
            return Err(DirectoryError::Concurrent("presence"));
        }
        let events = set
            .changes
            .iter()
            .map(|change| {
                // An expiry recorded on the way is the directory's doing, not the caller's.
                let actor = if change.expired {
                    directory_actor()
                } else {
                    caller.actor()
                };
                event_for(
                    &self.region,
                    &caller.tenant,
                    &Fact::PresenceChanged {
                        change: change.clone(),
                    },
                    &actor,
                )
            })
            .collect();
        self.store.stage_many(&txn, events, now).await?;
        self.store.commit(txn).await?;
        Ok(convert::presence_to_pb(
            &self.region,
            person.id,
            Some(&set.presence),
            now,
        ))
    }

    pub async fn get_skill_catalog(&self, caller: &Caller) -> DirectoryResult<SkillCatalog> {
        authorize(&caller.roles, Permission::ReadDirectory)?;
        self.catalog(&caller.tenant).await
    }

    /// Replaces the catalog. Skills agents and teams already have stay as they are: the
    /// catalog decides what may be given from now on.
    pub async fn set_skill_catalog(
        &self,
        caller: &Caller,
        request: pb::SetSkillCatalogRequest,
    ) -> DirectoryResult<SkillCatalog> {
        authorize(&caller.roles, Permission::Write)?;
        let skills: Vec<(String, String)> = request
            .skills
            .iter()
            .map(|s| (s.name.clone(), s.description.clone()))
            .collect();
        let txn = self.store.begin().await?;
        let current = self.store.skill_catalog(&*txn, &caller.tenant).await?;
        let next = current.replaced(&skills, request.expected_version, self.now())?;
        if !self
            .store
            .write_skill_catalog(&txn, &caller.tenant, &next, current.version)
            .await?
        {
            return Err(DirectoryError::Concurrent("skill catalog"));
        }
        self.store.commit(txn).await?;
        Ok(next)
    }
}
