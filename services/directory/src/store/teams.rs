//! Teams with their skills (`directory_team_skills`, rewritten with the team), and memberships.

use std::collections::HashMap;

use desk_kit::db::WriteTxn;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, ExprTrait, Query},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    DirectoryStore, LOOKUP_CHUNK, StoreResult, WRITE_CHUNK, corrupt,
    entities::{membership, person, team, team_skill},
};
use crate::domain::{Membership, MembershipRole, SupportTier, Team, TeamFields, TeamStatus};

/// Filters of a team list, checked.
#[derive(Debug, Clone, Default)]
pub struct TeamFilter {
    pub region: Option<String>,
    pub tier: Option<SupportTier>,
    /// `None`: any status.
    pub status: Option<TeamStatus>,
    pub parent_id: Option<Uuid>,
}

/// Where a page of teams ends: lists are ordered by name, then id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamCursor {
    pub name: String,
    pub id: Uuid,
}

impl DirectoryStore {
    pub async fn team<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        id: Uuid,
    ) -> StoreResult<Option<Team>> {
        team::Entity::find_by_id(id)
            .filter(team::Column::TenantId.eq(tenant))
            .one(conn)
            .await?
            .map(team_from_model)
            .transpose()
    }

    /// The team named `name` (without regard to case), if any.
    pub async fn team_by_name<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        name: &str,
    ) -> StoreResult<Option<Team>> {
        team::Entity::find()
            .filter(team::Column::TenantId.eq(tenant))
            .filter(team::Column::NameKey.eq(name.to_lowercase()))
            .one(conn)
            .await?
            .map(team_from_model)
            .transpose()
    }

    /// Every team of the tenant (tenants have hundreds, not millions).
    pub async fn teams<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
    ) -> StoreResult<Vec<Team>> {
        team::Entity::find()
            .filter(team::Column::TenantId.eq(tenant))
            .order_by_asc(team::Column::Id)
            .all(conn)
            .await?
            .into_iter()
            .map(team_from_model)
            .collect()
    }

    /// Every team's parent in the tenant (team → parent), for cycle checks.
    pub async fn team_links<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
    ) -> StoreResult<HashMap<Uuid, Uuid>> {
        let rows: Vec<(Uuid, Option<Uuid>)> = team::Entity::find()
            .select_only()
            .column(team::Column::Id)
            .column(team::Column::ParentId)
            .filter(team::Column::TenantId.eq(tenant))
            .filter(team::Column::ParentId.is_not_null())
            .into_tuple()
            .all(conn)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, parent)| Some((id, parent?)))
            .collect())
    }

    pub async fn active_children<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        parent: Uuid,
    ) -> StoreResult<u64> {
        Ok(team::Entity::find()
            .filter(team::Column::TenantId.eq(tenant))
            .filter(team::Column::ParentId.eq(parent))
            .filter(team::Column::Status.eq(TeamStatus::Active.as_str()))
            .count(conn)
            .await?)
    }

    /// The active teams managed by `person`.
    pub async fn teams_managed_by<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        person: Uuid,
    ) -> StoreResult<Vec<Uuid>> {
        Ok(team::Entity::find()
            .select_only()
            .column(team::Column::Id)
            .filter(team::Column::TenantId.eq(tenant))
            .filter(team::Column::ManagerId.eq(person))
            .filter(team::Column::Status.eq(TeamStatus::Active.as_str()))
            .order_by_asc(team::Column::Id)
            .into_tuple()
            .all(conn)
            .await?)
    }

    pub async fn list_teams<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        filter: &TeamFilter,
        after: Option<&TeamCursor>,
        limit: u64,
    ) -> StoreResult<Vec<Team>> {
        let mut query = team::Entity::find().filter(team::Column::TenantId.eq(tenant));
        if let Some(region) = &filter.region {
            query = query.filter(team::Column::Region.eq(region.as_str()));
        }
        if let Some(tier) = filter.tier {
            query = query.filter(team::Column::Tier.eq(tier.as_str()));
        }
        if let Some(status) = filter.status {
            query = query.filter(team::Column::Status.eq(status.as_str()));
        }
        if let Some(parent) = filter.parent_id {
            query = query.filter(team::Column::ParentId.eq(parent));
        }
        if let Some(after) = after {
            query = query.filter(
                Condition::any()
                    .add(team::Column::Name.gt(after.name.as_str()))
                    .add(
                        Condition::all()
                            .add(team::Column::Name.eq(after.name.as_str()))
                            .add(team::Column::Id.gt(after.id)),
                    ),
            );
        }
        query
            .order_by_asc(team::Column::Name)
            .order_by_asc(team::Column::Id)
            .limit(limit)
            .all(conn)
            .await?
            .into_iter()
            .map(team_from_model)
            .collect()
    }

    /// Every team of every tenant, for the replica's in-memory index (`api::TeamIndex`).
    pub async fn all_teams<C: ConnectionTrait>(&self, conn: &C) -> StoreResult<Vec<Team>> {
        team::Entity::find()
            .all(conn)
            .await?
            .into_iter()
            .map(team_from_model)
            .collect()
    }

    pub async fn insert_team(&self, txn: &WriteTxn, team: &Team) -> StoreResult<()> {
        team::Entity::insert(team_to_active(team)?)
            .exec_without_returning(&**txn)
            .await?;
        self.write_team_skills(txn, team).await
    }

    /// Writes `team` (already at its new version) if the stored row is still at `expected`.
    pub async fn update_team(
        &self,
        txn: &WriteTxn,
        team: &Team,
        expected: i64,
    ) -> StoreResult<bool> {
        let mut row = team_to_active(team)?;
        row.id = NotSet;
        row.tenant_id = NotSet;
        row.created_at = NotSet;
        let result = team::Entity::update_many()
            .set(row)
            .filter(team::Column::TenantId.eq(team.tenant_id.as_str()))
            .filter(team::Column::Id.eq(team.id))
            .filter(team::Column::Version.eq(expected))
            .exec(&**txn)
            .await?;
        if result.rows_affected != 1 {
            return Ok(false);
        }
        team_skill::Entity::delete_many()
            .filter(team_skill::Column::TeamId.eq(team.id))
            .exec(&**txn)
            .await?;
        self.write_team_skills(txn, team).await?;
        Ok(true)
    }

    async fn write_team_skills(&self, txn: &WriteTxn, team: &Team) -> StoreResult<()> {
        if team.fields.skills.is_empty() {
            return Ok(());
        }
        let rows = team
            .fields
            .skills
            .iter()
            .map(|skill| team_skill::ActiveModel {
                tenant_id: Set(team.tenant_id.clone()),
                skill: Set(skill.clone()),
                team_id: Set(team.id),
                region: Set(team.fields.region.clone()),
                active: Set(team.is_active()),
            });
        team_skill::Entity::insert_many(rows)
            .exec_without_returning(&**txn)
            .await?;
        Ok(())
    }

    // ---- memberships ----

    /// The membership of `person` in `team`, active or not, with its labels.
    pub async fn membership<C: ConnectionTrait>(
        &self,
        conn: &C,
        team: &Team,
        person: Uuid,
    ) -> StoreResult<Option<Membership>> {
        let row = membership::Entity::find()
            .filter(membership::Column::TenantId.eq(team.tenant_id.as_str()))
            .filter(membership::Column::TeamId.eq(team.id))
            .filter(membership::Column::PersonId.eq(person))
            .one(conn)
            .await?;
        row.map(|row| membership_from_model(row, &team.fields.name, ""))
            .transpose()
    }

    /// A person's active memberships with team names, by team name: one statement, since every
    /// `GetPerson` asks for it.
    pub async fn memberships_of<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        person_id: Uuid,
        display_name: &str,
    ) -> StoreResult<Vec<Membership>> {
        let statement = Query::select()
            .columns([
                (membership::Entity, membership::Column::Id),
                (membership::Entity, membership::Column::TeamId),
                (membership::Entity, membership::Column::Role),
                (membership::Entity, membership::Column::Version),
                (membership::Entity, membership::Column::CreatedAt),
                (membership::Entity, membership::Column::UpdatedAt),
            ])
            .expr_as(Expr::col((team::Entity, team::Column::Name)), "team_name")
            .from(membership::Entity)
            .inner_join(
                team::Entity,
                Expr::col((team::Entity, team::Column::Id))
                    .equals((membership::Entity, membership::Column::TeamId)),
            )
            .and_where(Expr::col((membership::Entity, membership::Column::TenantId)).eq(tenant))
            .and_where(Expr::col((membership::Entity, membership::Column::PersonId)).eq(person_id))
            .and_where(Expr::col((membership::Entity, membership::Column::Active)).eq(true))
            .to_owned();
        let mut memberships = conn
            .query_all(&statement)
            .await?
            .into_iter()
            .map(|row| {
                let role: String = row.try_get("", "role")?;
                Ok(membership::Model {
                    id: row.try_get("", "id")?,
                    tenant_id: tenant.to_owned(),
                    team_id: row.try_get("", "team_id")?,
                    person_id,
                    role,
                    active: true,
                    version: row.try_get("", "version")?,
                    created_at: row.try_get("", "created_at")?,
                    updated_at: row.try_get("", "updated_at")?,
                })
                .and_then(|model| {
                    let team_name: String = row.try_get("", "team_name")?;
                    Ok((model, team_name))
                })
            })
            .collect::<Result<Vec<_>, sea_orm::DbErr>>()?
            .into_iter()
            .map(|(model, team_name)| membership_from_model(model, &team_name, display_name))
            .collect::<StoreResult<Vec<_>>>()?;
        memberships.sort_by(|a, b| a.team_name.cmp(&b.team_name).then(a.id.cmp(&b.id)));
        Ok(memberships)
    }

    /// Memberships, active or not, of many people, by person (labels left empty).
    pub async fn memberships_of_people<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        people: &[Uuid],
    ) -> StoreResult<HashMap<Uuid, Vec<Membership>>> {
        let mut found: HashMap<Uuid, Vec<Membership>> = HashMap::new();
        for chunk in people.chunks(LOOKUP_CHUNK) {
            let rows = membership::Entity::find()
                .filter(membership::Column::TenantId.eq(tenant))
                .filter(membership::Column::PersonId.is_in(chunk.iter().copied()))
                .all(conn)
                .await?;
            for row in rows {
                let membership = membership_from_model(row, "", "")?;
                found
                    .entry(membership.person_id)
                    .or_default()
                    .push(membership);
            }
        }
        Ok(found)
    }

    /// The roles of `people` in `team` (active memberships only).
    pub async fn roles_in_team<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        team: Uuid,
        people: &[Uuid],
    ) -> StoreResult<HashMap<Uuid, MembershipRole>> {
        let rows: Vec<(Uuid, String)> = membership::Entity::find()
            .select_only()
            .column(membership::Column::PersonId)
            .column(membership::Column::Role)
            .filter(membership::Column::TenantId.eq(tenant))
            .filter(membership::Column::TeamId.eq(team))
            .filter(membership::Column::Active.eq(true))
            .filter(membership::Column::PersonId.is_in(people.iter().copied()))
            .into_tuple()
            .all(conn)
            .await?;
        rows.into_iter()
            .map(|(person, role)| {
                MembershipRole::parse(&role)
                    .map(|role| (person, role))
                    .ok_or_else(|| corrupt(format!("membership role {role:?}")))
            })
            .collect()
    }

    /// The display name of a person, for a membership's label.
    pub async fn display_name<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        person_id: Uuid,
    ) -> StoreResult<String> {
        let name: Option<String> = person::Entity::find()
            .select_only()
            .column(person::Column::DisplayName)
            .filter(person::Column::TenantId.eq(tenant))
            .filter(person::Column::Id.eq(person_id))
            .into_tuple()
            .one(conn)
            .await?;
        Ok(name.unwrap_or_default())
    }

    pub async fn insert_memberships(
        &self,
        txn: &WriteTxn,
        memberships: &[Membership],
    ) -> StoreResult<()> {
        for chunk in memberships.chunks(WRITE_CHUNK) {
            membership::Entity::insert_many(chunk.iter().map(membership_to_active))
                .exec_without_returning(&**txn)
                .await?;
        }
        Ok(())
    }

    /// Writes `membership` (already at its new version) if the stored row is still at `expected`.
    pub async fn update_membership(
        &self,
        txn: &WriteTxn,
        membership: &Membership,
        expected: i64,
    ) -> StoreResult<bool> {
        let result = membership::Entity::update_many()
            .col_expr(membership::Column::Role, membership.role.as_str().into())
            .col_expr(membership::Column::Active, membership.active.into())
            .col_expr(membership::Column::Version, membership.version.into())
            .col_expr(membership::Column::UpdatedAt, membership.updated_at.into())
            .filter(membership::Column::TenantId.eq(membership.tenant_id.as_str()))
            .filter(membership::Column::Id.eq(membership.id))
            .filter(membership::Column::Version.eq(expected))
            .exec(&**txn)
            .await?;
        Ok(result.rows_affected == 1)
    }
}

fn team_to_active(team: &Team) -> StoreResult<team::ActiveModel> {
    let fields = &team.fields;
    Ok(team::ActiveModel {
        id: Set(team.id),
        tenant_id: Set(team.tenant_id.clone()),
        name: Set(fields.name.clone()),
        name_key: Set(fields.name.to_lowercase()),
        description: Set(fields.description.clone()),
        region: Set(fields.region.clone()),
        time_zone: Set(fields.time_zone.clone()),
        calendar_id: Set(fields.calendar_id.clone()),
        tier: Set(fields.tier.map(|t| t.as_str().to_owned())),
        skills: Set(serde_json::to_string(&fields.skills).map_err(corrupt)?),
        manager_id: Set(team.manager_id),
        parent_id: Set(team.parent_id),
        follow_the_sun: Set(fields.follow_the_sun),
        status: Set(team.status.as_str().to_owned()),
        version: Set(team.version),
        created_at: Set(team.created_at),
        updated_at: Set(team.updated_at),
        retired_at: Set(team.retired_at),
    })
}

fn team_from_model(row: team::Model) -> StoreResult<Team> {
    let status = TeamStatus::parse(&row.status)
        .ok_or_else(|| corrupt(format!("team status {:?}", row.status)))?;
    let tier = row
        .tier
        .as_deref()
        .map(|tier| SupportTier::parse(tier).ok_or_else(|| corrupt(format!("team tier {tier:?}"))))
        .transpose()?;
    Ok(Team {
        id: row.id,
        tenant_id: row.tenant_id,
        fields: TeamFields {
            name: row.name,
            description: row.description,
            region: row.region,
            time_zone: row.time_zone,
            calendar_id: row.calendar_id,
            tier,
            skills: serde_json::from_str(&row.skills).map_err(corrupt)?,
            follow_the_sun: row.follow_the_sun,
        },
        manager_id: row.manager_id,
        parent_id: row.parent_id,
        status,
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
        retired_at: row.retired_at,
    })
}

fn membership_to_active(membership: &Membership) -> membership::ActiveModel {
    membership::ActiveModel {
        id: Set(membership.id),
        tenant_id: Set(membership.tenant_id.clone()),
        team_id: Set(membership.team_id),
        person_id: Set(membership.person_id),
        role: Set(membership.role.as_str().to_owned()),
        active: Set(membership.active),
        version: Set(membership.version),
        created_at: Set(membership.created_at),
        updated_at: Set(membership.updated_at),
    }
}

pub(super) fn membership_from_model(
    row: membership::Model,
    team_name: &str,
    person_display_name: &str,
) -> StoreResult<Membership> {
    let role = MembershipRole::parse(&row.role)
        .ok_or_else(|| corrupt(format!("membership role {:?}", row.role)))?;
    Ok(Membership {
        id: row.id,
        tenant_id: row.tenant_id,
        team_id: row.team_id,
        person_id: row.person_id,
        role,
        active: row.active,
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
        team_name: team_name.to_owned(),
        person_display_name: person_display_name.to_owned(),
    })
}
