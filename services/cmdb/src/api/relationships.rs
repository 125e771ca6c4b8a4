//! Relationships between CIs: add, remove, list.

use super::CmdbError;
use super::convert;
use super::{Caller, CmdbApi, CmdbResult};
use crate::domain::Violations;
use crate::domain::check_relationship;
use crate::domain::impact::ImpactEdge;
use crate::events::Fact;
use crate::store::StoredRelationship;
use desk_kit::ids;
use desk_proto::cmdb::v1 as pb;
use std::collections::HashMap;
use uuid::Uuid;

impl CmdbApi {
    pub(super) fn relationship_to_pb(
        &self,
        rel: &StoredRelationship,
        names: &HashMap<Uuid, String>,
    ) -> pb::Relationship {
        pb::Relationship {
            id: ids::format_id(&self.region, rel.id),
            source_id: ids::format_id(&self.region, rel.source_id),
            r#type: convert::relationship_type_to_pb(rel.rel_type) as i32,
            target_id: ids::format_id(&self.region, rel.target_id),
            source_name: names.get(&rel.source_id).cloned().unwrap_or_default(),
            target_name: names.get(&rel.target_id).cloned().unwrap_or_default(),
            create_time: convert::timestamp(rel.created_at),
            created_by: rel.created_by.clone(),
        }
    }

    pub async fn add_relationship(
        &self,
        caller: &Caller,
        request: pb::AddRelationshipRequest,
    ) -> CmdbResult<pb::Relationship> {
        Self::require_write(caller)?;
        let catalog = self.catalog(&caller.tenant).await?;
        let mut violations = Violations::new();
        let source = self.parse_ci_id("source_id", &request.source_id, &mut violations);
        let target = self.parse_ci_id("target_id", &request.target_id, &mut violations);
        let rel_type = convert::relationship_type(request.r#type);
        if rel_type.is_none() {
            violations.push("type", "required: one of the relationship types");
        }
        violations.into_result()?;
        let (Some(source), Some(target), Some(rel_type)) = (source, target, rel_type) else {
            return Err(CmdbError::NotFound("CI"));
        };
        let txn = self.store.begin().await?;
        let found = self
            .store
            .find_many(&*txn, &catalog, &caller.tenant, &[source, target])
            .await?;
        let get = |id: Uuid| found.iter().find(|ci| ci.id == id).cloned();
        let mut violations = Violations::new();
        let source_ci = get(source);
        let target_ci = get(target);
        if source_ci.is_none() {
            violations.push("source_id", "no such CI");
        }
        if target_ci.is_none() {
            violations.push("target_id", "no such CI");
        }
        violations.into_result()?;
        let (Some(source_ci), Some(target_ci)) = (source_ci, target_ci) else {
            return Err(CmdbError::NotFound("CI"));
        };
        // Checks and insert must not interleave with another add from the same source (cardinality,
        // duplicates): on PostgreSQL a transaction-scoped lock per source CI serializes them;
        // SQLite's single writer already does.
        self.store.lock_source(&txn, &caller.tenant, source).await?;
        let exists = self
            .store
            .find_relationship(&*txn, &caller.tenant, source, rel_type, target)
            .await?
            .is_some()
            || (rel_type.is_symmetric()
                && self
                    .store
                    .find_relationship(&*txn, &caller.tenant, target, rel_type, source)
                    .await?
                    .is_some());
        if exists {
            return Err(CmdbError::Precondition(
                "this relationship already exists".into(),
            ));
        }
        let outgoing = self
            .store
            .outgoing_count(&*txn, &caller.tenant, source, rel_type)
            .await?;
        check_relationship(
            &catalog,
            rel_type,
            &source_ci.facts(),
            &target_ci.facts(),
            outgoing,
        )?;
        let rel = StoredRelationship {
            id: ids::new_uuid(),
            source_id: source,
            rel_type,
            target_id: target,
            created_by: caller.subject.clone(),
            created_at: self.now(),
        };
        self.store
            .insert_relationship(&txn, &caller.tenant, &rel)
            .await?;
        let names = HashMap::from([
            (source, source_ci.name.clone()),
            (target, target_ci.name.clone()),
        ]);
        let wire = self.relationship_to_pb(&rel, &names);
        self.store
            .stage(
                &txn,
                Fact::RelationshipAdded {
                    relationship: wire.clone(),
                }
                .into_event(
                    &caller.tenant,
                    &wire.id,
                    &pb::ConfigurationItem::default(),
                    &caller.actor_pb(),
                ),
                self.now(),
            )
            .await?;
        self.store.commit(txn).await?;
        self.update_graph(
            &caller.tenant,
            &catalog,
            &[],
            &[ImpactEdge {
                source,
                relationship: rel_type,
                target,
            }],
            &[],
        );
        Ok(wire)
    }

    pub async fn remove_relationship(&self, caller: &Caller, id: &str) -> CmdbResult<()> {
        Self::require_write(caller)?;
        let id = ids::parse_id(id)
            .filter(|p| p.region == self.region)
            .map(|p| p.uuid)
            .ok_or(CmdbError::NotFound("relationship"))?;
        let txn = self.store.begin().await?;
        let rel = self
            .store
            .relationship(&*txn, &caller.tenant, id)
            .await?
            .ok_or(CmdbError::NotFound("relationship"))?;
        if !self
            .store
            .end_relationship(&txn, &caller.tenant, id, self.now())
            .await?
        {
            return Err(CmdbError::NotFound("relationship"));
        }
        let wire = self.relationship_to_pb(&rel, &HashMap::new());
        self.store
            .stage(
                &txn,
                Fact::RelationshipRemoved {
                    relationship: wire.clone(),
                }
                .into_event(
                    &caller.tenant,
                    &wire.id,
                    &pb::ConfigurationItem::default(),
                    &caller.actor_pb(),
                ),
                self.now(),
            )
            .await?;
        self.store.commit(txn).await?;
        let catalog = self.catalog(&caller.tenant).await?;
        self.update_graph(
            &caller.tenant,
            &catalog,
            &[],
            &[],
            &[ImpactEdge {
                source: rel.source_id,
                relationship: rel.rel_type,
                target: rel.target_id,
            }],
        );
        Ok(())
    }

    pub async fn list_relationships(
        &self,
        caller: &Caller,
        ci_id: &str,
    ) -> CmdbResult<Vec<pb::Relationship>> {
        let ci = self.get_ci(caller, ci_id).await?;
        let conn = self.store.db().connection();
        let rels = self
            .store
            .relationships_of(conn, &caller.tenant, ci.id)
            .await?;
        let catalog = self.catalog(&caller.tenant).await?;
        let mut others: Vec<Uuid> = rels
            .iter()
            .flat_map(|r| [r.source_id, r.target_id])
            .collect();
        others.sort();
        others.dedup();
        let names: HashMap<Uuid, String> = self
            .store
            .find_many(conn, &catalog, &caller.tenant, &others)
            .await?
            .into_iter()
            .map(|c| (c.id, c.name))
            .collect();
        Ok(rels
            .iter()
            .map(|r| self.relationship_to_pb(r, &names))
            .collect())
    }
}
