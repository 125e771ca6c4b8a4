//! People: `WhoAmI`, create, read, update, deactivate, reactivate, lists, manager chains and
//! agent profiles.

use std::collections::HashSet;

use desk_kit::{
    auth::Caller,
    db::is_unique_violation,
    idempotency::{Fingerprint, IdempotentCreate, Recorded},
    ids,
};
use desk_proto::directory::v1 as pb;
use uuid::Uuid;

use super::{
    DirectoryApi, DirectoryError, DirectoryResult, convert, next_page, page, refuse_first,
};
use crate::{
    domain::{
        AgentProfileInput, DeactivationReport, Fact, Membership, NewPerson, Permission, Person,
        PersonPatch, PersonView, Presence, TokenClaims, Violations, access, authorize,
        check_version, hierarchy,
        person::{
            self, API_SOURCE, FromClaims, PersonFieldsInput, TOKEN_SOURCE, checked_identifier,
            stamped,
        },
        validate::{self, NAME_MAX},
    },
    store::{IDEMPOTENCY_KEYS, PeopleFilter, PersonCursor, PersonKey, StoreError},
};

/// Longest manager chain walked: deeper is a data problem, not an organisation.
const MANAGER_CHAIN_MAX: usize = 64;
/// Longest deactivation reason, in characters.
const REASON_MAX: usize = 1_000;

/// A person with what their reader may see of their teams and presence.
pub struct PersonDetails {
    pub person: pb::Person,
    pub memberships: Vec<pb::Membership>,
    pub presence: Option<pb::Presence>,
}

impl DirectoryApi {
    // ---- WhoAmI ----

    pub async fn who_am_i(&self, caller: &Caller) -> DirectoryResult<(PersonDetails, bool)> {
        let conn = self.store.db().connection();
        let claims = TokenClaims {
            subject: caller.subject.clone(),
            name: caller.name.clone(),
            email: caller.email.clone(),
            locale: caller.locale.clone(),
        };
        let checked = claims.checked();
        if !checked.ignored.is_empty() {
            tracing::warn!(
                claims = ?checked.ignored,
                tenant = %caller.tenant,
                "token claims the directory cannot keep are ignored"
            );
        }
        let existing = self
            .store
            .person_by_subject(conn, &caller.tenant, &caller.subject)
            .await?;
        let now = self.now();
        let (person, created) =
            match person::from_claims(existing.as_ref(), &claims, &checked, now, &self.region) {
                FromClaims::Unchanged => {
                    (existing.ok_or(DirectoryError::NotFound("person"))?, false)
                }
                FromClaims::Create(new) => {
                    let person = new.create(ids::new_uuid(), &caller.tenant, now);
                    let txn = self.store.begin().await?;
                    match self
                        .store
                        .insert_people(&txn, std::slice::from_ref(&person))
                        .await
                    {
                        Ok(()) => {}
                        Err(StoreError::Db(error)) if is_unique_violation(&error) => {
                            // Their first two calls raced: the other one made the person.
                            drop(txn);
                            let made = self
                                .store
                                .person_by_subject(conn, &caller.tenant, &caller.subject)
                                .await?
                                .ok_or(DirectoryError::NotFound("person"))?;
                            return Ok((
                                self.details(caller, made, PersonView::Full).await?,
                                false,
                            ));
                        }
                        Err(error) => return Err(error.into()),
                    }
                    let fact = Fact::PersonCreated {
                        person: person.clone(),
                        source: TOKEN_SOURCE.to_owned(),
                    };
                    self.publish(&txn, caller, &[fact], now).await?;
                    self.store.commit(txn).await?;
                    (person, true)
                }
                FromClaims::Update(change) => {
                    let expected = change.person.version - 1;
                    let txn = self.store.begin().await?;
                    if !self
                        .store
                        .update_person(&txn, &change.person, expected)
                        .await?
                    {
                        // Changed meanwhile (an admin, a sync): answer with what it is now; the
                        // next call brings the claims in.
                        drop(txn);
                        let current = self
                            .store
                            .person_by_subject(conn, &caller.tenant, &caller.subject)
                            .await?
                            .ok_or(DirectoryError::NotFound("person"))?;
                        return Ok((
                            self.details(caller, current, PersonView::Full).await?,
                            false,
                        ));
                    }
                    let fact = Fact::PersonUpdated {
                        person: change.person.clone(),
                        changes: change.changes,
                        source: TOKEN_SOURCE.to_owned(),
                    };
                    self.publish(&txn, caller, &[fact], now).await?;
                    self.store.commit(txn).await?;
                    (change.person, false)
                }
            };
        Ok((
            self.details(caller, person, PersonView::Full).await?,
            created,
        ))
    }

    /// A person as `view` lets the caller see them, with teams and presence for the full view.
    async fn details(
        &self,
        _caller: &Caller,
        person: Person,
        view: PersonView,
    ) -> DirectoryResult<PersonDetails> {
        if view == PersonView::DisplayNameOnly {
            return Ok(self.details_of(person, view, Vec::new(), None));
        }
        let conn = self.store.db().connection();
        let memberships = self
            .store
            .memberships_of(
                conn,
                &person.tenant_id,
                person.id,
                &person.fields.display_name,
            )
            .await?;
        let stored = if person.is_active() {
            self.store
                .presence(conn, &person.tenant_id, person.id)
                .await?
        } else {
            None
        };
        Ok(self.details_of(person, view, memberships, stored))
    }

    /// What `view` shows of a person, their active memberships and their stored presence (read
    /// as offline when they are deactivated).
    fn details_of(
        &self,
        person: Person,
        view: PersonView,
        memberships: Vec<Membership>,
        stored: Option<Presence>,
    ) -> PersonDetails {
        if view == PersonView::DisplayNameOnly {
            return PersonDetails {
                person: convert::person_to_pb(&self.region, &person, view),
                memberships: Vec::new(),
                presence: None,
            };
        }
        let stored = stored.filter(|_| person.is_active());
        PersonDetails {
            person: convert::person_to_pb(&self.region, &person, view),
            memberships: memberships
                .iter()
                .map(|m| convert::membership_to_pb(&self.region, m))
                .collect(),
            presence: Some(convert::presence_to_pb(
                &self.region,
                person.id,
                stored.as_ref(),
                self.now(),
            )),
        }
    }

    // ---- create ----

    pub async fn create_person(
        &self,
        caller: &Caller,
        request: pb::CreatePersonRequest,
    ) -> DirectoryResult<Person> {
        let mut violations = Violations::new();
        let subject = checked_identifier("subject", &request.subject, true, &mut violations);
        let external_id =
            checked_identifier("external_id", &request.external_id, false, &mut violations);
        let fields = PersonFieldsInput {
            display_name: &request.display_name,
            email: &request.email,
            phone: &request.phone,
            locale: &request.locale,
            time_zone: &request.time_zone,
            department: &request.department,
            location: &request.location,
            vip: request.vip,
        }
        .check("", &mut violations);
        let manager_id = self.reference("manager_id", &request.manager_id, &mut violations);
        refuse_first(authorize(&caller.roles, Permission::Write), violations)?;
        let (Some(subject), Some(fields)) = (subject, fields) else {
            return Err(DirectoryError::Invalid(Violations::new()));
        };
        let idempotent = IdempotentCreate::new(
            &caller.tenant,
            &caller.subject,
            &request.idempotency_key,
            || {
                let mut body = request.clone();
                body.idempotency_key.clear();
                Fingerprint::of_message(&body)
            },
        );
        let conn = self.store.db().connection();
        if let Some(create) = &idempotent
            && let Some(earlier) = IDEMPOTENCY_KEYS.earlier_result(conn, create).await?
        {
            return self
                .store
                .person(conn, &caller.tenant, earlier)
                .await?
                .ok_or(DirectoryError::NotFound("person"));
        }
        let txn = self.store.begin().await?;
        if let Some(manager) = manager_id
            && self
                .store
                .person(&*txn, &caller.tenant, manager)
                .await?
                .is_none()
        {
            let mut violations = Violations::new();
            violations.push("manager_id", "no such person");
            return Err(violations.into());
        }
        self.refuse_taken(&txn, caller, Some(&subject), external_id.as_deref(), None)
            .await?;
        let now = self.now();
        let person = NewPerson {
            subject,
            external_id,
            fields,
            manager_id,
            source: API_SOURCE.to_owned(),
        }
        .create(ids::new_uuid(), &caller.tenant, now);
        if let Some(create) = &idempotent
            && IDEMPOTENCY_KEYS
                .record(&txn, create, person.id, now)
                .await?
                == Recorded::TakenConcurrently
        {
            drop(txn);
            let earlier = IDEMPOTENCY_KEYS
                .earlier_result(conn, create)
                .await?
                .ok_or(DirectoryError::NotFound("person"))?;
            return self
                .store
                .person(conn, &caller.tenant, earlier)
                .await?
                .ok_or(DirectoryError::NotFound("person"));
        }
        match self
            .store
            .insert_people(&txn, std::slice::from_ref(&person))
            .await
        {
            Ok(()) => {}
            Err(StoreError::Db(error)) if is_unique_violation(&error) => {
                return Err(DirectoryError::AlreadyExists(
                    "a person with this subject or external id was created meanwhile".into(),
                ));
            }
            Err(error) => return Err(error.into()),
        }
        let fact = Fact::PersonCreated {
            person: person.clone(),
            source: API_SOURCE.to_owned(),
        };
        self.publish(&txn, caller, &[fact], now).await?;
        self.store.commit(txn).await?;
        Ok(person)
    }

    /// `ALREADY_EXISTS` when `subject` or `external_id` is another person's (not `except`).
    async fn refuse_taken(
        &self,
        txn: &desk_kit::db::WriteTxn,
        caller: &Caller,
        subject: Option<&str>,
        external_id: Option<&str>,
        except: Option<Uuid>,
    ) -> DirectoryResult<()> {
        if let Some(subject) = subject
            && let Some(other) = self
                .store
                .person_by_subject(&**txn, &caller.tenant, subject)
                .await?
                .filter(|p| Some(p.id) != except)
        {
            return Err(DirectoryError::AlreadyExists(format!(
                "person {} already has subject {subject}",
                self.format(other.id)
            )));
        }
        if let Some(external_id) = external_id
            && let Some(other) = self
                .store
                .person_by_external_id(&**txn, &caller.tenant, external_id)
                .await?
                .filter(|p| Some(p.id) != except)
        {
            return Err(DirectoryError::AlreadyExists(format!(
                "person {} already has external id {external_id}",
                self.format(other.id)
            )));
        }
        Ok(())
    }

    // ---- read ----

    pub async fn get_person(
        &self,
        caller: &Caller,
        request: pb::GetPersonRequest,
    ) -> DirectoryResult<PersonDetails> {
        use pb::get_person_request::Key;
        let key = match &request.key {
            Some(Key::Id(id)) => PersonKey::Id(self.target(id, "person")?),
            Some(Key::Subject(subject)) => PersonKey::Subject(subject),
            Some(Key::ExternalId(external)) => PersonKey::ExternalId(external),
            None => {
                let mut violations = Violations::new();
                violations.push("key", "name the person by id, subject or external_id");
                return Err(violations.into());
            }
        };
        // The person, their teams and presence in one round trip: what a reader may not see of
        // them is dropped after the access check, which needs the person first.
        let (person, memberships, presence) = self
            .store
            .person_with_details(self.store.db().connection(), &caller.tenant, key)
            .await?
            .ok_or(DirectoryError::NotFound("person"))?;
        let view = self.view_of(caller, &person).await?;
        Ok(self.details_of(person, view, memberships, presence))
    }

    /// What the caller sees of `person`; `NOT_FOUND` when nothing.
    async fn view_of(&self, caller: &Caller, person: &Person) -> DirectoryResult<PersonView> {
        let staff_person = if access::is_staff(&caller.roles) || caller.subject == person.subject {
            false
        } else {
            self.store
                .is_staff(self.store.db().connection(), person)
                .await?
        };
        access::person_view(
            &caller.roles,
            &caller.subject,
            &person.subject,
            staff_person,
        )
        .ok_or(DirectoryError::NotFound("person"))
    }

    pub async fn list_people(
        &self,
        caller: &Caller,
        request: pb::ListPeopleRequest,
    ) -> DirectoryResult<pb::ListPeopleResponse> {
        let mut violations = Violations::new();
        let text = validate::optional_line("text", &request.text, NAME_MAX, &mut violations);
        let status = match convert::person_status(request.status) {
            Some(status) => Some(status.unwrap_or(crate::domain::PersonStatus::Active)),
            None => {
                violations.push("status", format!("unknown value {}", request.status));
                None
            }
        };
        let team_id = self.reference("team_id", &request.team_id, &mut violations);
        let manager_id = self.reference("manager_id", &request.manager_id, &mut violations);
        let (size, cursor) =
            page::<PersonCursor>(request.page_size, &request.page_token, &mut violations);
        refuse_first(
            authorize(&caller.roles, Permission::ReadDirectory),
            violations,
        )?;
        let filter = PeopleFilter {
            text,
            status,
            team_id,
            manager_id,
            agents_only: request.agents_only,
        };
        let rows = self
            .store
            .list_people(
                self.store.db().connection(),
                &caller.tenant,
                &filter,
                cursor.as_ref(),
                size + 1,
            )
            .await?;
        let (people, next_page_token) = next_page(rows, size, |p: &Person| PersonCursor {
            display_name: p.fields.display_name.clone(),
            id: p.id,
        });
        Ok(pb::ListPeopleResponse {
            people: people
                .iter()
                .map(|p| convert::person_to_pb(&self.region, p, PersonView::Full))
                .collect(),
            next_page_token,
        })
    }

    /// The person's managers, nearest first. A requester may ask for their own and sees the
    /// managers by name only.
    pub async fn manager_chain(
        &self,
        caller: &Caller,
        person_id: &str,
    ) -> DirectoryResult<Vec<pb::Person>> {
        let id = self.target(person_id, "person")?;
        let conn = self.store.db().connection();
        let person = self
            .store
            .person(conn, &caller.tenant, id)
            .await?
            .ok_or(DirectoryError::NotFound("person"))?;
        if self.view_of(caller, &person).await? != PersonView::Full {
            return Err(DirectoryError::NotFound("person"));
        }
        let view = if access::is_staff(&caller.roles) {
            PersonView::Full
        } else {
            PersonView::DisplayNameOnly
        };
        let mut chain = Vec::new();
        let mut seen = HashSet::from([person.id]);
        let mut next = person.manager_id;
        while let Some(manager_id) = next {
            if chain.len() >= MANAGER_CHAIN_MAX || !seen.insert(manager_id) {
                break;
            }
            let Some(manager) = self.store.person(conn, &caller.tenant, manager_id).await? else {
                break;
            };
            next = manager.manager_id;
            chain.push(convert::person_to_pb(&self.region, &manager, view));
        }
        Ok(chain)
    }

    // ---- update ----

    pub async fn update_person(
        &self,
        caller: &Caller,
        request: pb::UpdatePersonRequest,
    ) -> DirectoryResult<Person> {
        let mut violations = Violations::new();
        let patch = self.parse_patch(&request, &mut violations);
        let id = self.target(&request.id, "person");
        refuse_first(authorize(&caller.roles, Permission::Write), violations)?;
        let id = id?;
        let now = self.now();
        let txn = self.store.begin().await?;
        if patch.manager_id.is_some() {
            self.lock_hierarchy(&txn, &caller.tenant).await?;
        }
        let person = self
            .store
            .person(&*txn, &caller.tenant, id)
            .await?
            .ok_or(DirectoryError::NotFound("person"))?;
        check_version(request.expected_version, person.version).map_err(|stale| {
            DirectoryError::Stale {
                what: "person",
                stale,
            }
        })?;
        if let Some(Some(manager)) = patch.manager_id {
            let mut violations = Violations::new();
            if self
                .store
                .person(&*txn, &caller.tenant, manager)
                .await?
                .is_none()
            {
                violations.push("manager_id", "no such person");
            } else {
                let links = self.store.manager_links(&*txn, &caller.tenant).await?;
                if let Some(cycle) = hierarchy::cycle_through(&links, &person.id, &manager) {
                    violations.push(
                        "manager_id",
                        format!(
                            "would make a cycle in the manager chain: {}",
                            self.path(&cycle)
                        ),
                    );
                }
            }
            violations.into_result()?;
        }
        if let Some(Some(external_id)) = &patch.external_id {
            self.refuse_taken(&txn, caller, None, Some(external_id), Some(person.id))
                .await?;
        }
        let Some(change) = patch.apply(&person, &self.region) else {
            return Ok(person);
        };
        let change = stamped(change, now);
        if !self
            .store
            .update_person(&txn, &change.person, person.version)
            .await?
        {
            return Err(DirectoryError::Concurrent("person"));
        }
        let fact = Fact::PersonUpdated {
            person: change.person.clone(),
            changes: change.changes,
            source: API_SOURCE.to_owned(),
        };
        self.publish(&txn, caller, &[fact], now).await?;
        self.store.commit(txn).await?;
        Ok(change.person)
    }

    /// `a → b → a` in regional ids.
    pub(super) fn path(&self, cycle: &[Uuid]) -> String {
        cycle
            .iter()
            .map(|id| self.format(*id))
            .collect::<Vec<_>>()
            .join(" → ")
    }

    fn parse_patch(
        &self,
        request: &pb::UpdatePersonRequest,
        violations: &mut Violations,
    ) -> PersonPatch {
        let optional = |field: &str,
                        value: &Option<String>,
                        check: fn(&str, &str, &mut Violations) -> Option<String>,
                        violations: &mut Violations| {
            value
                .as_deref()
                .map(|value| check(field, value, violations))
        };
        let line = |field: &str, value: &str, violations: &mut Violations| {
            validate::optional_line(field, value, NAME_MAX, violations)
        };
        PersonPatch {
            display_name: request.display_name.as_deref().and_then(|name| {
                validate::required_line("display_name", name, NAME_MAX, violations)
            }),
            email: optional("email", &request.email, validate::email, violations),
            phone: optional("phone", &request.phone, validate::phone, violations),
            locale: optional("locale", &request.locale, validate::locale, violations),
            time_zone: optional(
                "time_zone",
                &request.time_zone,
                validate::time_zone,
                violations,
            ),
            department: request
                .department
                .as_deref()
                .map(|v| line("department", v, violations)),
            location: request
                .location
                .as_deref()
                .map(|v| line("location", v, violations)),
            vip: request.vip,
            manager_id: request
                .manager_id
                .as_deref()
                .map(|m| self.reference("manager_id", m, violations)),
            external_id: request
                .external_id
                .as_deref()
                .map(|e| checked_identifier("external_id", e, false, violations)),
            subject: None,
            source: None,
        }
    }

    // ---- lifecycle ----

    pub async fn deactivate_person(
        &self,
        caller: &Caller,
        request: pb::DeactivatePersonRequest,
    ) -> DirectoryResult<(Person, DeactivationReport)> {
        let mut violations = Violations::new();
        let reason =
            validate::optional_text("reason", &request.reason, REASON_MAX, &mut violations);
        let id = self.target(&request.id, "person");
        refuse_first(authorize(&caller.roles, Permission::Write), violations)?;
        let id = id?;
        let now = self.now();
        let txn = self.store.begin().await?;
        let person = self
            .person_at(&txn, caller, id, request.expected_version)
            .await?;
        let change = person::deactivate(&person, now)?;
        let memberships = self
            .store
            .memberships_of(&*txn, &caller.tenant, id, &person.fields.display_name)
            .await?;
        let report = DeactivationReport {
            team_ids: memberships.iter().map(|m| m.team_id).collect(),
            led_team_ids: memberships
                .iter()
                .filter(|m| m.role == crate::domain::MembershipRole::Lead)
                .map(|m| m.team_id)
                .collect(),
            managed_team_ids: self
                .store
                .teams_managed_by(&*txn, &caller.tenant, id)
                .await?,
            direct_report_ids: self.store.direct_reports(&*txn, &caller.tenant, id).await?,
        };
        if !self
            .store
            .update_person(&txn, &change.person, person.version)
            .await?
        {
            return Err(DirectoryError::Concurrent("person"));
        }
        let fact = Fact::PersonDeactivated {
            person: change.person.clone(),
            reason,
            report: report.clone(),
            source: API_SOURCE.to_owned(),
        };
        self.publish(&txn, caller, &[fact], now).await?;
        self.store.commit(txn).await?;
        Ok((change.person, report))
    }

    pub async fn reactivate_person(
        &self,
        caller: &Caller,
        request: pb::ReactivatePersonRequest,
    ) -> DirectoryResult<Person> {
        let id = self.target(&request.id, "person");
        authorize(&caller.roles, Permission::Write)?;
        let id = id?;
        let now = self.now();
        let txn = self.store.begin().await?;
        let person = self
            .person_at(&txn, caller, id, request.expected_version)
            .await?;
        let change = person::reactivate(&person, now)?;
        if !self
            .store
            .update_person(&txn, &change.person, person.version)
            .await?
        {
            return Err(DirectoryError::Concurrent("person"));
        }
        let fact = Fact::PersonUpdated {
            person: change.person.clone(),
            changes: change.changes,
            source: API_SOURCE.to_owned(),
        };
        self.publish(&txn, caller, &[fact], now).await?;
        self.store.commit(txn).await?;
        Ok(change.person)
    }

    /// The person `id` of the caller's tenant, read in `txn`, at `expected_version`.
    async fn person_at(
        &self,
        txn: &desk_kit::db::WriteTxn,
        caller: &Caller,
        id: Uuid,
        expected_version: i64,
    ) -> DirectoryResult<Person> {
        let person = self
            .store
            .person(&**txn, &caller.tenant, id)
            .await?
            .ok_or(DirectoryError::NotFound("person"))?;
        check_version(expected_version, person.version).map_err(|stale| DirectoryError::Stale {
            what: "person",
            stale,
        })?;
        Ok(person)
    }

    pub async fn set_agent_profile(
        &self,
        caller: &Caller,
        request: pb::SetAgentProfileRequest,
    ) -> DirectoryResult<Person> {
        let id = self.target(&request.person_id, "person");
        authorize(&caller.roles, Permission::Write)?;
        let id = id?;
        let catalog = self.catalog(&caller.tenant).await?;
        let mut violations = Violations::new();
        let agent = request.agent.as_ref().and_then(|agent| {
            AgentProfileInput {
                skills: agent
                    .skills
                    .iter()
                    .map(|s| (s.name.clone(), s.level))
                    .collect(),
                languages: agent.languages.clone(),
                capacity: agent.capacity,
            }
            .check("agent.", &catalog, &mut violations)
        });
        violations.into_result()?;
        let now = self.now();
        let txn = self.store.begin().await?;
        let person = self
            .person_at(&txn, caller, id, request.expected_version)
            .await?;
        let Some(change) = person::set_agent_profile(&person, agent, now)? else {
            return Ok(person);
        };
        if !self
            .store
            .update_person(&txn, &change.person, person.version)
            .await?
        {
            return Err(DirectoryError::Concurrent("person"));
        }
        let fact = Fact::PersonUpdated {
            person: change.person.clone(),
            changes: change.changes,
            source: API_SOURCE.to_owned(),
        };
        self.publish(&txn, caller, &[fact], now).await?;
        self.store.commit(txn).await?;
        Ok(change.person)
    }
}
