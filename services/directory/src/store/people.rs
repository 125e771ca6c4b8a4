//! People: lookups by id, subject and external id (one or thousands at a time), the manager
//! links of a tenant, lists, and writes at an expected version.

use std::collections::HashMap;

use desk_kit::db::WriteTxn;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, FromQueryResult, IdenStatic, Iterable,
    QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Alias, Expr, ExprTrait, LikeExpr, Query},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    DirectoryStore, LOOKUP_CHUNK, StoreResult, WRITE_CHUNK, corrupt,
    entities::{membership, person, presence, team},
    like_pattern,
    presence::presence_from_model,
    teams::membership_from_model,
};
use crate::domain::{
    AgentProfile, Membership, Person, PersonFields, PersonStatus, Presence, Skill,
};

/// How a lookup names one person: each is unique in a tenant.
#[derive(Debug, Clone, Copy)]
pub enum PersonKey<'a> {
    Id(Uuid),
    Subject(&'a str),
    ExternalId(&'a str),
}

/// A person with their active memberships (team names filled in, by team name) and their
/// presence row, if any.
pub type PersonWithDetails = (Person, Vec<Membership>, Option<Presence>);

/// Filters of a people list, checked.
#[derive(Debug, Clone, Default)]
pub struct PeopleFilter {
    pub text: Option<String>,
    /// `None`: any status.
    pub status: Option<PersonStatus>,
    pub team_id: Option<Uuid>,
    pub manager_id: Option<Uuid>,
    pub agents_only: bool,
}

/// Where a page of people ends: lists are ordered by display name, then id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonCursor {
    pub display_name: String,
    pub id: Uuid,
}

/// An agent profile as the `agent_profile` column keeps it.
#[derive(Serialize, Deserialize)]
struct StoredAgent {
    skills: Vec<(String, u8)>,
    languages: Vec<String>,
    capacity: u32,
}

impl DirectoryStore {
    pub async fn person<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        id: Uuid,
    ) -> StoreResult<Option<Person>> {
        person::Entity::find_by_id(id)
            .filter(person::Column::TenantId.eq(tenant))
            .one(conn)
            .await?
            .map(person_from_model)
            .transpose()
    }

    pub async fn person_by_subject<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        subject: &str,
    ) -> StoreResult<Option<Person>> {
        person::Entity::find()
            .filter(person::Column::TenantId.eq(tenant))
            .filter(person::Column::Subject.eq(subject))
            .one(conn)
            .await?
            .map(person_from_model)
            .transpose()
    }

    pub async fn person_by_external_id<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        external_id: &str,
    ) -> StoreResult<Option<Person>> {
        person::Entity::find()
            .filter(person::Column::TenantId.eq(tenant))
            .filter(person::Column::ExternalId.eq(external_id))
            .one(conn)
            .await?
            .map(person_from_model)
            .transpose()
    }

    /// The person `key` names, with their active memberships and presence, in one statement
    /// (one round trip): every `GetPerson` asks for all three. One row per active membership,
    /// or one with the membership columns null.
    pub async fn person_with_details<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        key: PersonKey<'_>,
    ) -> StoreResult<Option<PersonWithDetails>> {
        let mut query = Query::select();
        for column in person::Column::iter() {
            query.expr_as(
                Expr::col((person::Entity, column)),
                Alias::new(format!("p_{}", column.as_str())),
            );
        }
        for column in presence::Column::iter() {
            query.expr_as(
                Expr::col((presence::Entity, column)),
                Alias::new(format!("r_{}", column.as_str())),
            );
        }
        for column in membership::Column::iter() {
            query.expr_as(
                Expr::col((membership::Entity, column)),
                Alias::new(format!("m_{}", column.as_str())),
            );
        }
        query
            .expr_as(Expr::col((team::Entity, team::Column::Name)), "t_name")
            .from(person::Entity)
            .left_join(
                presence::Entity,
                Condition::all()
                    .add(
                        Expr::col((presence::Entity, presence::Column::TenantId))
                            .equals((person::Entity, person::Column::TenantId)),
                    )
                    .add(
                        Expr::col((presence::Entity, presence::Column::PersonId))
                            .equals((person::Entity, person::Column::Id)),
                    ),
            )
            .left_join(
                membership::Entity,
                Condition::all()
                    .add(
                        Expr::col((membership::Entity, membership::Column::TenantId))
                            .equals((person::Entity, person::Column::TenantId)),
                    )
                    .add(
                        Expr::col((membership::Entity, membership::Column::PersonId))
                            .equals((person::Entity, person::Column::Id)),
                    )
                    .add(Expr::col((membership::Entity, membership::Column::Active)).eq(true)),
            )
            .left_join(
                team::Entity,
                Expr::col((team::Entity, team::Column::Id))
                    .equals((membership::Entity, membership::Column::TeamId)),
            )
            .and_where(Expr::col((person::Entity, person::Column::TenantId)).eq(tenant));
        match key {
            PersonKey::Id(id) => {
                query.and_where(Expr::col((person::Entity, person::Column::Id)).eq(id));
            }
            PersonKey::Subject(subject) => {
                query.and_where(Expr::col((person::Entity, person::Column::Subject)).eq(subject));
            }
            PersonKey::ExternalId(external) => {
                query.and_where(
                    Expr::col((person::Entity, person::Column::ExternalId)).eq(external),
                );
            }
        }
        let rows = conn.query_all(&query).await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let person = person_from_model(person::Model::from_query_result(first, "p_")?)?;
        let presence = match first.try_get::<Option<Uuid>>("r_", "person_id")? {
            Some(_) => Some(presence_from_model(presence::Model::from_query_result(
                first, "r_",
            )?)?),
            None => None,
        };
        let mut memberships = Vec::with_capacity(rows.len());
        for row in &rows {
            let team_name: Option<String> = row.try_get("t_", "name")?;
            let (Some(_), Some(team_name)) = (row.try_get::<Option<Uuid>>("m_", "id")?, team_name)
            else {
                continue;
            };
            memberships.push(membership_from_model(
                membership::Model::from_query_result(row, "m_")?,
                &team_name,
                &person.fields.display_name,
            )?);
        }
        memberships.sort_by(|a, b| a.team_name.cmp(&b.team_name).then(a.id.cmp(&b.id)));
        Ok(Some((person, memberships, presence)))
    }

    pub async fn people_by_ids<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        ids: &[Uuid],
    ) -> StoreResult<Vec<Person>> {
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(LOOKUP_CHUNK) {
            let rows = person::Entity::find()
                .filter(person::Column::TenantId.eq(tenant))
                .filter(person::Column::Id.is_in(chunk.iter().copied()))
                .all(conn)
                .await?;
            for row in rows {
                found.push(person_from_model(row)?);
            }
        }
        Ok(found)
    }

    /// The people with these external ids, by external id.
    pub async fn people_by_external_ids<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        external_ids: &[String],
    ) -> StoreResult<HashMap<String, Person>> {
        let mut found = HashMap::with_capacity(external_ids.len());
        for chunk in external_ids.chunks(LOOKUP_CHUNK) {
            let rows = person::Entity::find()
                .filter(person::Column::TenantId.eq(tenant))
                .filter(person::Column::ExternalId.is_in(chunk.iter().map(String::as_str)))
                .all(conn)
                .await?;
            for row in rows {
                let person = person_from_model(row)?;
                if let Some(external) = person.external_id.clone() {
                    found.insert(external, person);
                }
            }
        }
        Ok(found)
    }

    /// The people with these subjects, by subject.
    pub async fn people_by_subjects<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        subjects: &[String],
    ) -> StoreResult<HashMap<String, Person>> {
        let mut found = HashMap::with_capacity(subjects.len());
        for chunk in subjects.chunks(LOOKUP_CHUNK) {
            let rows = person::Entity::find()
                .filter(person::Column::TenantId.eq(tenant))
                .filter(person::Column::Subject.is_in(chunk.iter().map(String::as_str)))
                .all(conn)
                .await?;
            for row in rows {
                let person = person_from_model(row)?;
                found.insert(person.subject.clone(), person);
            }
        }
        Ok(found)
    }

    /// Every person's manager in the tenant (person → manager), for cycle checks.
    pub async fn manager_links<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
    ) -> StoreResult<HashMap<Uuid, Uuid>> {
        let rows: Vec<(Uuid, Option<Uuid>)> = person::Entity::find()
            .select_only()
            .column(person::Column::Id)
            .column(person::Column::ManagerId)
            .filter(person::Column::TenantId.eq(tenant))
            .filter(person::Column::ManagerId.is_not_null())
            .into_tuple()
            .all(conn)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, manager)| Some((id, manager?)))
            .collect())
    }

    /// The active people naming `manager` as their manager.
    pub async fn direct_reports<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        manager: Uuid,
    ) -> StoreResult<Vec<Uuid>> {
        Ok(person::Entity::find()
            .select_only()
            .column(person::Column::Id)
            .filter(person::Column::TenantId.eq(tenant))
            .filter(person::Column::ManagerId.eq(manager))
            .filter(person::Column::Status.eq(PersonStatus::Active.as_str()))
            .order_by_asc(person::Column::Id)
            .into_tuple()
            .all(conn)
            .await?)
    }

    /// The active people a provisioning source manages: `(id, external id)`.
    pub async fn people_of_source<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        source: &str,
    ) -> StoreResult<Vec<(Uuid, Option<String>)>> {
        Ok(person::Entity::find()
            .select_only()
            .column(person::Column::Id)
            .column(person::Column::ExternalId)
            .filter(person::Column::TenantId.eq(tenant))
            .filter(person::Column::Source.eq(source))
            .filter(person::Column::Status.eq(PersonStatus::Active.as_str()))
            .into_tuple()
            .all(conn)
            .await?)
    }

    /// Whether a person works tickets: an agent, or a member of some team.
    pub async fn is_staff<C: ConnectionTrait>(
        &self,
        conn: &C,
        person: &Person,
    ) -> StoreResult<bool> {
        if person.agent.is_some() {
            return Ok(true);
        }
        let membership = membership::Entity::find()
            .select_only()
            .column(membership::Column::Id)
            .filter(membership::Column::TenantId.eq(person.tenant_id.as_str()))
            .filter(membership::Column::PersonId.eq(person.id))
            .filter(membership::Column::Active.eq(true))
            .into_tuple::<Uuid>()
            .one(conn)
            .await?;
        Ok(membership.is_some())
    }

    /// A page of people after `after`, ordered by display name then id.
    pub async fn list_people<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        filter: &PeopleFilter,
        after: Option<&PersonCursor>,
        limit: u64,
    ) -> StoreResult<Vec<Person>> {
        let mut query = person::Entity::find().filter(person::Column::TenantId.eq(tenant));
        if let Some(status) = filter.status {
            query = query.filter(person::Column::Status.eq(status.as_str()));
        }
        if let Some(text) = &filter.text {
            query = query.filter(
                Expr::col(person::Column::SearchKey)
                    .like(LikeExpr::new(like_pattern(text)).escape('\\')),
            );
        }
        if let Some(team) = filter.team_id {
            query = query.filter(
                person::Column::Id.in_subquery(
                    Query::select()
                        .column(membership::Column::PersonId)
                        .from(membership::Entity)
                        .and_where(Expr::col(membership::Column::TenantId).eq(tenant))
                        .and_where(Expr::col(membership::Column::TeamId).eq(team))
                        .and_where(Expr::col(membership::Column::Active).eq(true))
                        .to_owned(),
                ),
            );
        }
        if let Some(manager) = filter.manager_id {
            query = query.filter(person::Column::ManagerId.eq(manager));
        }
        if filter.agents_only {
            query = query.filter(person::Column::AgentProfile.is_not_null());
        }
        if let Some(after) = after {
            query = query.filter(
                Condition::any()
                    .add(person::Column::DisplayName.gt(after.display_name.as_str()))
                    .add(
                        Condition::all()
                            .add(person::Column::DisplayName.eq(after.display_name.as_str()))
                            .add(person::Column::Id.gt(after.id)),
                    ),
            );
        }
        query
            .order_by_asc(person::Column::DisplayName)
            .order_by_asc(person::Column::Id)
            .limit(limit)
            .all(conn)
            .await?
            .into_iter()
            .map(person_from_model)
            .collect()
    }

    /// Inserts new people, a few hundred per statement.
    pub async fn insert_people(&self, txn: &WriteTxn, people: &[Person]) -> StoreResult<()> {
        for chunk in people.chunks(WRITE_CHUNK) {
            let rows = chunk
                .iter()
                .map(person_to_active)
                .collect::<StoreResult<Vec<_>>>()?;
            person::Entity::insert_many(rows)
                .exec_without_returning(&**txn)
                .await?;
        }
        Ok(())
    }

    /// Writes `person` (already at its new version) if the stored row is still at `expected`.
    pub async fn update_person(
        &self,
        txn: &WriteTxn,
        person: &Person,
        expected: i64,
    ) -> StoreResult<bool> {
        let mut row = person_to_active(person)?;
        row.id = NotSet;
        row.tenant_id = NotSet;
        row.created_at = NotSet;
        let result = person::Entity::update_many()
            .set(row)
            .filter(person::Column::TenantId.eq(person.tenant_id.as_str()))
            .filter(person::Column::Id.eq(person.id))
            .filter(person::Column::Version.eq(expected))
            .exec(&**txn)
            .await?;
        Ok(result.rows_affected == 1)
    }
}

fn search_key(person: &Person) -> String {
    format!(
        "{} {} {}",
        person.fields.display_name.to_lowercase(),
        person
            .fields
            .email
            .as_deref()
            .unwrap_or_default()
            .to_lowercase(),
        person.subject.to_lowercase()
    )
}

fn person_to_active(person: &Person) -> StoreResult<person::ActiveModel> {
    let agent = person
        .agent
        .as_ref()
        .map(|agent| {
            serde_json::to_string(&StoredAgent {
                skills: agent
                    .skills
                    .iter()
                    .map(|s| (s.name.clone(), s.level))
                    .collect(),
                languages: agent.languages.clone(),
                capacity: agent.capacity,
            })
        })
        .transpose()
        .map_err(corrupt)?;
    let fields = &person.fields;
    Ok(person::ActiveModel {
        id: Set(person.id),
        tenant_id: Set(person.tenant_id.clone()),
        subject: Set(person.subject.clone()),
        external_id: Set(person.external_id.clone()),
        display_name: Set(fields.display_name.clone()),
        email: Set(fields.email.clone()),
        phone: Set(fields.phone.clone()),
        locale: Set(fields.locale.clone()),
        time_zone: Set(fields.time_zone.clone()),
        manager_id: Set(person.manager_id),
        department: Set(fields.department.clone()),
        location: Set(fields.location.clone()),
        vip: Set(fields.vip),
        status: Set(person.status.as_str().to_owned()),
        agent_profile: Set(agent),
        source: Set(person.source.clone()),
        search_key: Set(search_key(person)),
        version: Set(person.version),
        created_at: Set(person.created_at),
        updated_at: Set(person.updated_at),
        deactivated_at: Set(person.deactivated_at),
    })
}

pub(super) fn person_from_model(row: person::Model) -> StoreResult<Person> {
    let status = PersonStatus::parse(&row.status)
        .ok_or_else(|| corrupt(format!("person status {:?}", row.status)))?;
    let agent = row
        .agent_profile
        .as_deref()
        .map(serde_json::from_str::<StoredAgent>)
        .transpose()
        .map_err(corrupt)?
        .map(|stored| AgentProfile {
            skills: stored
                .skills
                .into_iter()
                .map(|(name, level)| Skill { name, level })
                .collect(),
            languages: stored.languages,
            capacity: stored.capacity,
        });
    Ok(Person {
        id: row.id,
        tenant_id: row.tenant_id,
        subject: row.subject,
        external_id: row.external_id,
        fields: PersonFields {
            display_name: row.display_name,
            email: row.email,
            phone: row.phone,
            locale: row.locale,
            time_zone: row.time_zone,
            department: row.department,
            location: row.location,
            vip: row.vip,
        },
        manager_id: row.manager_id,
        status,
        agent,
        source: row.source,
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
        deactivated_at: row.deactivated_at,
    })
}
