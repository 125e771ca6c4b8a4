//! The CMDB projection's rows: what the CMDB's events said about CIs, relationships and classes,
//! written by the projection consumer (`events::projection`) and read at start to rebuild the
//! in-memory graph without calling the CMDB.

use std::collections::HashMap;

use sea_orm::{
    ConnectionTrait,
    sea_query::{Alias, Expr, ExprTrait, OnConflict, Query},
};
use uuid::Uuid;

use super::{ChangeStore, StoreError, StoreResult, col};
use crate::domain::{Criticality, Edge, Relation, projection::CmdbFact};

impl ChangeStore {
    /// Records one CMDB fact of `tenant` (a CI only when newer than the one held).
    pub async fn project<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
        fact: &CmdbFact,
    ) -> StoreResult<()> {
        match fact {
            CmdbFact::Ci {
                id,
                name,
                class,
                criticality,
                retired,
                version,
            } => {
                let held = Query::select()
                    .column(Alias::new("version"))
                    .from(Alias::new("change_cmdb_cis"))
                    .and_where(col("tenant_id").eq(tenant))
                    .and_where(col("ci_id").eq(*id))
                    .to_owned();
                let held: Option<i64> = match conn.query_one(&held).await? {
                    Some(row) => Some(row.try_get("", "version")?),
                    None => None,
                };
                match held {
                    Some(held) if held >= *version => {}
                    Some(_) => {
                        let update = Query::update()
                            .table(Alias::new("change_cmdb_cis"))
                            .value(Alias::new("name"), name.as_str())
                            .value(Alias::new("class"), class.as_str())
                            .value(Alias::new("criticality"), criticality.as_str())
                            .value(Alias::new("retired"), *retired)
                            .value(Alias::new("version"), *version)
                            .and_where(col("tenant_id").eq(tenant))
                            .and_where(col("ci_id").eq(*id))
                            .to_owned();
                        conn.execute(&update).await?;
                    }
                    None => {
                        let mut insert = Query::insert();
                        insert
                            .into_table(Alias::new("change_cmdb_cis"))
                            .columns(
                                [
                                    "tenant_id",
                                    "ci_id",
                                    "name",
                                    "class",
                                    "criticality",
                                    "retired",
                                    "version",
                                ]
                                .map(Alias::new),
                            )
                            .values([
                                Expr::value(tenant),
                                Expr::value(*id),
                                Expr::value(name.as_str()),
                                Expr::value(class.as_str()),
                                Expr::value(criticality.as_str()),
                                Expr::value(*retired),
                                Expr::value(*version),
                            ])
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                        conn.execute(&insert).await?;
                    }
                }
            }
            CmdbFact::RelationshipAdded { id, edge } => {
                let mut insert = Query::insert();
                insert
                    .into_table(Alias::new("change_cmdb_relationships"))
                    .columns(
                        [
                            "tenant_id",
                            "relationship_id",
                            "source_id",
                            "relation",
                            "target_id",
                        ]
                        .map(Alias::new),
                    )
                    .values([
                        Expr::value(tenant),
                        Expr::value(*id),
                        Expr::value(edge.source),
                        Expr::value(edge.relation.as_str()),
                        Expr::value(edge.target),
                    ])
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?
                    .on_conflict(
                        OnConflict::columns(["tenant_id", "relationship_id"].map(Alias::new))
                            .do_nothing()
                            .to_owned(),
                    );
                conn.execute(&insert).await?;
            }
            CmdbFact::RelationshipRemoved { id } => {
                let delete = Query::delete()
                    .from_table(Alias::new("change_cmdb_relationships"))
                    .and_where(col("tenant_id").eq(tenant))
                    .and_where(col("relationship_id").eq(*id))
                    .to_owned();
                conn.execute(&delete).await?;
            }
            CmdbFact::ClassCreated { name, parent } => {
                let mut insert = Query::insert();
                insert
                    .into_table(Alias::new("change_cmdb_classes"))
                    .columns(["tenant_id", "name", "parent"].map(Alias::new))
                    .values([
                        Expr::value(tenant),
                        Expr::value(name.as_str()),
                        Expr::value(parent.as_str()),
                    ])
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?
                    .on_conflict(
                        OnConflict::columns(["tenant_id", "name"].map(Alias::new))
                            .do_nothing()
                            .to_owned(),
                    );
                conn.execute(&insert).await?;
            }
        }
        Ok(())
    }

    /// Every tenant's projected facts, classes first, then CIs, then relationships: the order
    /// in which applying them rebuilds the graph.
    pub async fn projected_facts(&self) -> StoreResult<HashMap<String, Vec<CmdbFact>>> {
        let conn = self.db().connection();
        let mut facts: HashMap<String, Vec<CmdbFact>> = HashMap::new();
        let classes = Query::select()
            .columns(["tenant_id", "name", "parent"].map(Alias::new))
            .from(Alias::new("change_cmdb_classes"))
            .to_owned();
        for row in conn.query_all(&classes).await? {
            let tenant: String = row.try_get("", "tenant_id")?;
            facts
                .entry(tenant)
                .or_default()
                .push(CmdbFact::ClassCreated {
                    name: row.try_get("", "name")?,
                    parent: row.try_get("", "parent")?,
                });
        }
        let cis = Query::select()
            .columns(
                [
                    "tenant_id",
                    "ci_id",
                    "name",
                    "class",
                    "criticality",
                    "retired",
                    "version",
                ]
                .map(Alias::new),
            )
            .from(Alias::new("change_cmdb_cis"))
            .to_owned();
        for row in conn.query_all(&cis).await? {
            let tenant: String = row.try_get("", "tenant_id")?;
            let criticality: String = row.try_get("", "criticality")?;
            facts.entry(tenant).or_default().push(CmdbFact::Ci {
                id: row.try_get("", "ci_id")?,
                name: row.try_get("", "name")?,
                class: row.try_get("", "class")?,
                criticality: Criticality::parse(&criticality)
                    .ok_or_else(|| StoreError::Corrupt(format!("criticality {criticality:?}")))?,
                retired: row.try_get("", "retired")?,
                version: row.try_get("", "version")?,
            });
        }
        let relationships = Query::select()
            .columns(
                [
                    "tenant_id",
                    "relationship_id",
                    "source_id",
                    "relation",
                    "target_id",
                ]
                .map(Alias::new),
            )
            .from(Alias::new("change_cmdb_relationships"))
            .to_owned();
        for row in conn.query_all(&relationships).await? {
            let tenant: String = row.try_get("", "tenant_id")?;
            let relation: String = row.try_get("", "relation")?;
            let source: Uuid = row.try_get("", "source_id")?;
            let target: Uuid = row.try_get("", "target_id")?;
            facts
                .entry(tenant)
                .or_default()
                .push(CmdbFact::RelationshipAdded {
                    id: row.try_get("", "relationship_id")?,
                    edge: Edge {
                        source,
                        relation: Relation::parse(&relation)
                            .ok_or_else(|| StoreError::Corrupt(format!("relation {relation:?}")))?,
                        target,
                    },
                });
        }
        Ok(facts)
    }
}
