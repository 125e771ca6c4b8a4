//! Teams and memberships: create, read, update, retire, lists, "teams with skill X in region Y",
//! adding and removing members, and the members of a team with their presence.

use desk_kit::{
    auth::Caller,
    db::{WriteTxn, is_unique_violation},
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
        Fact, MembershipChange, MembershipError, MembershipRole, NewTeam, Permission, Person,
        PersonStatus, PersonView, Team, TeamPatch, TeamStatus, Violations, authorize,
        check_version, membership,
        team::{self, TeamInput, checked_team_skills},
        validate::{self, DESCRIPTION_MAX, IDENTIFIER_MAX, NAME_MAX},
    },
    store::{IDEMPOTENCY_KEYS, PeopleFilter, PersonCursor, StoreError, TeamCursor, TeamFilter},
};

/// Teams `FindTeams` answers at most.
const FIND_TEAMS_MAX: usize = 500;

impl DirectoryApi {
    pub async fn create_team(
        &self,
        caller: &Caller,
        request: pb::CreateTeamRequest,
    ) -> DirectoryResult<Team> {
        let catalog = self.catalog(&caller.tenant).await?;
        let mut violations = Violations::new();
        let tier = convert::tier(request.tier).unwrap_or_else(|| {
            violations.push("tier", format!("unknown value {}", request.tier));
            None
        });
        let fields = TeamInput {
            name: &request.name,
            description: &request.description,
            region: &request.region,
            time_zone: &request.time_zone,
            calendar_id: &request.calendar_id,
            tier,
            skills: &request.skills,
            follow_the_sun: request.follow_the_sun,
        }
        .check(&self.region, &catalog, &mut violations);
        let manager_id = self.reference("manager_id", &request.manager_id, &mut violations);
        let parent_id = self.reference("parent_id", &request.parent_id, &mut violations);
        refuse_first(authorize(&caller.roles, Permission::Write), violations)?;
        let fields = fields.ok_or_else(|| DirectoryError::Invalid(Violations::new()))?;
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
                .team(conn, &caller.tenant, earlier)
                .await?
                .ok_or(DirectoryError::NotFound("team"));
        }
        let txn = self.store.begin().await?;
        self.check_team_references(&txn, caller, manager_id, parent_id)
            .await?;
        if let Some(other) = self
            .store
            .team_by_name(&*txn, &caller.tenant, &fields.name)
            .await?
        {
            return Err(self.name_taken(&other));
        }
        let now = self.now();
        let team = NewTeam {
            fields,
            manager_id,
            parent_id,
        }
        .create(ids::new_uuid(), &caller.tenant, now);
        if let Some(create) = &idempotent
            && IDEMPOTENCY_KEYS.record(&txn, create, team.id, now).await?
                == Recorded::TakenConcurrently
        {
            drop(txn);
            let earlier = IDEMPOTENCY_KEYS
                .earlier_result(conn, create)
                .await?
                .ok_or(DirectoryError::NotFound("team"))?;
            return self
                .store
                .team(conn, &caller.tenant, earlier)
                .await?
                .ok_or(DirectoryError::NotFound("team"));
        }
        match self.store.insert_team(&txn, &team).await {
            Ok(()) => {}
            Err(StoreError::Db(error)) if is_unique_violation(&error) => {
                return Err(DirectoryError::AlreadyExists(format!(
                    "a team named {} was created meanwhile",
                    team.fields.name
                )));
            }
            Err(error) => return Err(error.into()),
        }
        let fact = Fact::TeamCreated { team: team.clone() };
        self.publish(&txn, caller, &[fact], now).await?;
        self.store.commit(txn).await?;
        self.teams.apply(team.clone());
        Ok(team)
    }

    fn name_taken(&self, other: &Team) -> DirectoryError {
        DirectoryError::AlreadyExists(format!(
            "team {} is already named {}",
            self.format(other.id),
            other.fields.name
        ))
    }

    /// A team's manager must be a person and its parent an active team of the tenant.
    async fn check_team_references(
        &self,
        txn: &WriteTxn,
        caller: &Caller,
        manager_id: Option<Uuid>,
        parent_id: Option<Uuid>,
    ) -> DirectoryResult<()> {
        let mut violations = Violations::new();
        if let Some(manager) = manager_id
            && self
                .store
                .person(&**txn, &caller.tenant, manager)
                .await?
                .is_none()
        {
            violations.push("manager_id", "no such person");
        }
        if let Some(parent) = parent_id {
            match self.store.team(&**txn, &caller.tenant, parent).await? {
                None => violations.push("parent_id", "no such team"),
                Some(parent) if !parent.is_active() => {
                    violations.push("parent_id", "the parent team is retired")
                }
                Some(_) => {}
            }
        }
        Ok(violations.into_result()?)
    }

    pub async fn get_team(&self, caller: &Caller, id: &str) -> DirectoryResult<Team> {
        let id = self.target(id, "team");
        authorize(&caller.roles, Permission::ReadDirectory)?;
        self.store
            .team(self.store.db().connection(), &caller.tenant, id?)
            .await?
            .ok_or(DirectoryError::NotFound("team"))
    }

    pub async fn update_team(
        &self,
        caller: &Caller,
        request: pb::UpdateTeamRequest,
    ) -> DirectoryResult<Team> {
        let catalog = self.catalog(&caller.tenant).await?;
        let mut violations = Violations::new();
        let patch = TeamPatch {
            name: request
                .name
                .as_deref()
                .and_then(|name| validate::required_line("name", name, NAME_MAX, &mut violations)),
            description: request.description.as_deref().map(|text| {
                validate::optional_text("description", text, DESCRIPTION_MAX, &mut violations)
            }),
            region: request.region.as_deref().and_then(|region| {
                if region.trim().is_empty() {
                    violations.push("region", "must not be empty");
                    None
                } else {
                    validate::region("region", region, &mut violations)
                }
            }),
            time_zone: request
                .time_zone
                .as_deref()
                .map(|zone| validate::time_zone("time_zone", zone, &mut violations)),
            calendar_id: request.calendar_id.as_deref().map(|calendar| {
                validate::optional_line("calendar_id", calendar, IDENTIFIER_MAX, &mut violations)
            }),
            tier: convert::tier(request.tier).unwrap_or_else(|| {
                violations.push("tier", format!("unknown value {}", request.tier));
                None
            }),
            skills: request.skills.as_ref().map(|skills| {
                checked_team_skills("skills.names", &skills.names, &catalog, &mut violations)
            }),
            manager_id: request
                .manager_id
                .as_deref()
                .map(|m| self.reference("manager_id", m, &mut violations)),
            parent_id: request
                .parent_id
                .as_deref()
                .map(|p| self.reference("parent_id", p, &mut violations)),
            follow_the_sun: request.follow_the_sun,
        };
        let id = self.target(&request.id, "team");
        refuse_first(authorize(&caller.roles, Permission::Write), violations)?;
        let id = id?;
        let now = self.now();
        let txn = self.store.begin().await?;
        if patch.parent_id.is_some() {
            self.lock_hierarchy(&txn, &caller.tenant).await?;
        }
        let team = self
            .team_at(&txn, caller, id, request.expected_version)
            .await?;
        self.check_team_references(
            &txn,
            caller,
            patch.manager_id.flatten(),
            patch.parent_id.flatten(),
        )
        .await?;
        if let Some(name) = &patch.name
            && let Some(other) = self.store.team_by_name(&*txn, &caller.tenant, name).await?
            && other.id != team.id
        {
            return Err(self.name_taken(&other));
        }
        let links = if patch.parent_id.is_some() {
            self.store.team_links(&*txn, &caller.tenant).await?
        } else {
            Default::default()
        };
        let Some(change) = patch.apply(&team, &links, &self.region, now)? else {
            return Ok(team);
        };
        match self
            .store
            .update_team(&txn, &change.team, team.version)
            .await
        {
            Ok(true) => {}
            Ok(false) => return Err(DirectoryError::Concurrent("team")),
            Err(StoreError::Db(error)) if is_unique_violation(&error) => {
                return Err(DirectoryError::AlreadyExists(format!(
                    "another team was named {} meanwhile",
                    change.team.fields.name
                )));
            }
            Err(error) => return Err(error.into()),
        }
        let fact = Fact::TeamUpdated {
            team: change.team.clone(),
            changes: change.changes,
        };
        self.publish(&txn, caller, &[fact], now).await?;
        self.store.commit(txn).await?;
        self.teams.apply(change.team.clone());
        Ok(change.team)
    }

    async fn team_at(
        &self,
        txn: &WriteTxn,
        caller: &Caller,
        id: Uuid,
        expected_version: i64,
    ) -> DirectoryResult<Team> {
        let team = self
            .store
            .team(&**txn, &caller.tenant, id)
            .await?
            .ok_or(DirectoryError::NotFound("team"))?;
        check_version(expected_version, team.version).map_err(|stale| DirectoryError::Stale {
            what: "team",
            stale,
        })?;
        Ok(team)
    }

    pub async fn retire_team(
        &self,
        caller: &Caller,
        request: pb::RetireTeamRequest,
    ) -> DirectoryResult<Team> {
        let mut violations = Violations::new();
        let reason = validate::optional_text("reason", &request.reason, 1_000, &mut violations);
        let id = self.target(&request.id, "team");
        refuse_first(authorize(&caller.roles, Permission::Write), violations)?;
        let id = id?;
        let now = self.now();
        let txn = self.store.begin().await?;
        self.lock_hierarchy(&txn, &caller.tenant).await?;
        let team = self
            .team_at(&txn, caller, id, request.expected_version)
            .await?;
        let children = self
            .store
            .active_children(&*txn, &caller.tenant, id)
            .await?;
        let change = team::retire(&team, usize::try_from(children).unwrap_or(usize::MAX), now)?;
        if !self
            .store
            .update_team(&txn, &change.team, team.version)
            .await?
        {
            return Err(DirectoryError::Concurrent("team"));
        }
        let fact = Fact::TeamRetired {
            team: change.team.clone(),
            reason,
        };
        self.publish(&txn, caller, &[fact], now).await?;
        self.store.commit(txn).await?;
        self.teams.apply(change.team.clone());
        Ok(change.team)
    }

    pub async fn list_teams(
        &self,
        caller: &Caller,
        request: pb::ListTeamsRequest,
    ) -> DirectoryResult<pb::ListTeamsResponse> {
        let mut violations = Violations::new();
        let region = validate::region("region", &request.region, &mut violations);
        let tier = convert::tier(request.tier).unwrap_or_else(|| {
            violations.push("tier", format!("unknown value {}", request.tier));
            None
        });
        let status = match convert::team_status(request.status) {
            Some(status) => Some(status.unwrap_or(TeamStatus::Active)),
            None => {
                violations.push("status", format!("unknown value {}", request.status));
                None
            }
        };
        let parent_id = self.reference("parent_id", &request.parent_id, &mut violations);
        let (size, cursor) =
            page::<TeamCursor>(request.page_size, &request.page_token, &mut violations);
        refuse_first(
            authorize(&caller.roles, Permission::ReadDirectory),
            violations,
        )?;
        let filter = TeamFilter {
            region,
            tier,
            status,
            parent_id,
        };
        let rows = self
            .store
            .list_teams(
                self.store.db().connection(),
                &caller.tenant,
                &filter,
                cursor.as_ref(),
                size + 1,
            )
            .await?;
        let (teams, next_page_token) = next_page(rows, size, |t: &Team| TeamCursor {
            name: t.fields.name.clone(),
            id: t.id,
        });
        Ok(pb::ListTeamsResponse {
            teams: teams
                .iter()
                .map(|t| convert::team_to_pb(&self.region, t))
                .collect(),
            next_page_token,
        })
    }

    /// The active teams with a skill (in a region, of a tier, in follow-the-sun when asked).
    pub async fn find_teams(
        &self,
        caller: &Caller,
        request: pb::FindTeamsRequest,
    ) -> DirectoryResult<Vec<Team>> {
        let mut violations = Violations::new();
        let skill = validate::skill_name("skill", &request.skill, &mut violations);
        let region = validate::region("region", &request.region, &mut violations);
        let tier = convert::tier(request.tier).unwrap_or_else(|| {
            violations.push("tier", format!("unknown value {}", request.tier));
            None
        });
        refuse_first(
            authorize(&caller.roles, Permission::ReadDirectory),
            violations,
        )?;
        let skill = skill.ok_or_else(|| DirectoryError::Invalid(Violations::new()))?;
        let mut teams = self
            .teams
            .with_skill(&caller.tenant, &skill, region.as_deref());
        teams.retain(|team| {
            tier.is_none_or(|tier| team.fields.tier == Some(tier))
                && (!request.follow_the_sun_only || team.fields.follow_the_sun)
        });
        teams.truncate(FIND_TEAMS_MAX);
        Ok(teams)
    }

    // ---- memberships ----

    /// The team and person a membership call names: `NOT_FOUND` for either missing.
    async fn pair(
        &self,
        txn: &WriteTxn,
        caller: &Caller,
        team_id: Uuid,
        person_id: Uuid,
    ) -> DirectoryResult<(Team, Person)> {
        let team = self
            .store
            .team(&**txn, &caller.tenant, team_id)
            .await?
            .ok_or(DirectoryError::NotFound("team"))?;
        let person = self
            .store
            .person(&**txn, &caller.tenant, person_id)
            .await?
            .ok_or(DirectoryError::NotFound("person"))?;
        Ok((team, person))
    }

    pub async fn add_membership(
        &self,
        caller: &Caller,
        request: pb::AddMembershipRequest,
    ) -> DirectoryResult<crate::domain::Membership> {
        let mut violations = Violations::new();
        let role = convert::role(request.role).unwrap_or_else(|| {
            violations.push("role", format!("unknown value {}", request.role));
            None
        });
        let team_id = self.target(&request.team_id, "team");
        let person_id = self.target(&request.person_id, "person");
        refuse_first(authorize(&caller.roles, Permission::Write), violations)?;
        let (team_id, person_id) = (team_id?, person_id?);
        let now = self.now();
        let txn = self.store.begin().await?;
        let (team, person) = self.pair(&txn, caller, team_id, person_id).await?;
        let existing = self.store.membership(&*txn, &team, person.id).await?;
        let change = membership::add(
            existing.as_ref(),
            &team,
            &person,
            role.unwrap_or(MembershipRole::Member),
            ids::new_uuid(),
            now,
        )?;
        let Some(MembershipChange::Added {
            membership,
            previous_role,
        }) = change
        else {
            let mut current = existing.ok_or(DirectoryError::NotFound("membership"))?;
            current.person_display_name = person.fields.display_name;
            return Ok(current);
        };
        match &existing {
            None => match self
                .store
                .insert_memberships(&txn, std::slice::from_ref(&membership))
                .await
            {
                Ok(()) => {}
                Err(StoreError::Db(error)) if is_unique_violation(&error) => {
                    return Err(DirectoryError::Concurrent("membership"));
                }
                Err(error) => return Err(error.into()),
            },
            Some(before) => {
                if !self
                    .store
                    .update_membership(&txn, &membership, before.version)
                    .await?
                {
                    return Err(DirectoryError::Concurrent("membership"));
                }
            }
        }
        let fact = Fact::MembershipAdded {
            membership: membership.clone(),
            previous_role,
            source: crate::domain::person::API_SOURCE.to_owned(),
        };
        self.publish(&txn, caller, &[fact], now).await?;
        self.store.commit(txn).await?;
        Ok(membership)
    }

    pub async fn remove_membership(
        &self,
        caller: &Caller,
        request: pb::RemoveMembershipRequest,
    ) -> DirectoryResult<crate::domain::Membership> {
        let team_id = self.target(&request.team_id, "team");
        let person_id = self.target(&request.person_id, "person");
        authorize(&caller.roles, Permission::Write)?;
        let (team_id, person_id) = (team_id?, person_id?);
        let now = self.now();
        let txn = self.store.begin().await?;
        let (team, person) = self.pair(&txn, caller, team_id, person_id).await?;
        let existing = self.store.membership(&*txn, &team, person.id).await?;
        let change = membership::remove(existing.as_ref(), now).map_err(|error| match error {
            MembershipError::NotAMember => DirectoryError::NotFound("membership"),
            other => other.into(),
        })?;
        let (MembershipChange::Removed { mut membership }
        | MembershipChange::Added { mut membership, .. }) = change;
        membership.person_display_name = person.fields.display_name.clone();
        let expected = existing.map_or(0, |m| m.version);
        if !self
            .store
            .update_membership(&txn, &membership, expected)
            .await?
        {
            return Err(DirectoryError::Concurrent("membership"));
        }
        let fact = Fact::MembershipRemoved {
            membership: membership.clone(),
            source: crate::domain::person::API_SOURCE.to_owned(),
        };
        self.publish(&txn, caller, &[fact], now).await?;
        self.store.commit(txn).await?;
        Ok(membership)
    }

    pub async fn list_team_members(
        &self,
        caller: &Caller,
        request: pb::ListTeamMembersRequest,
    ) -> DirectoryResult<pb::ListTeamMembersResponse> {
        let mut violations = Violations::new();
        let (size, cursor) =
            page::<PersonCursor>(request.page_size, &request.page_token, &mut violations);
        let team_id = self.target(&request.team_id, "team");
        refuse_first(
            authorize(&caller.roles, Permission::ReadDirectory),
            violations,
        )?;
        let team_id = team_id?;
        let conn = self.store.db().connection();
        self.store
            .team(conn, &caller.tenant, team_id)
            .await?
            .ok_or(DirectoryError::NotFound("team"))?;
        let filter = PeopleFilter {
            team_id: Some(team_id),
            status: (!request.include_deactivated).then_some(PersonStatus::Active),
            ..PeopleFilter::default()
        };
        let rows = self
            .store
            .list_people(conn, &caller.tenant, &filter, cursor.as_ref(), size + 1)
            .await?;
        let (people, next_page_token) = next_page(rows, size, |p: &Person| PersonCursor {
            display_name: p.fields.display_name.clone(),
            id: p.id,
        });
        let ids: Vec<Uuid> = people.iter().map(|p| p.id).collect();
        let roles = self
            .store
            .roles_in_team(conn, &caller.tenant, team_id, &ids)
            .await?;
        let presences = self.store.presences(conn, &caller.tenant, &ids).await?;
        let now = self.now();
        let members = people
            .iter()
            .map(|person| {
                let stored = presences.get(&person.id).filter(|_| person.is_active());
                pb::TeamMember {
                    person: Some(convert::person_to_pb(
                        &self.region,
                        person,
                        PersonView::Full,
                    )),
                    role: convert::role_to_pb(roles.get(&person.id).copied()) as i32,
                    presence: Some(convert::presence_to_pb(
                        &self.region,
                        person.id,
                        stored,
                        now,
                    )),
                }
            })
            .collect();
        Ok(pb::ListTeamMembersResponse {
            members,
            next_page_token,
        })
    }
}
