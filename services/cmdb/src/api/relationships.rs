//! Relationships between CIs: add, remove, list.

use std::collections::HashMap;

use desk_kit::{auth::Caller, db::WriteTxn, ids};
use desk_proto::cmdb::v1 as pb;
use uuid::Uuid;

use super::{CmdbApi, CmdbError, CmdbResult, IndexChange, convert};
use crate::{
    domain::{
        AddRelationship, Permission, StoredAround, Violations, authorize, impact::ImpactEdge,
    },
    events::Fact,
    store::StoredRelationship,
};

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
        let parsed = self.parse_add_relationship(&request);
        authorize(&caller.roles, Permission::Write)?;
        let command = parsed?;
        let catalog = self.catalog(&caller.tenant).await?;

        let txn = self.store.begin().await?;
        let found = self
            .store
            .find_many(
                &*txn,
                &catalog,
                &caller.tenant,
                &[command.source, command.target],
            )
            .await?;
        let ends = command.ends(&found)?;
        // Checks and insert must not interleave with another add from the same source (cardinality,
        // duplicates): on PostgreSQL a transaction-scoped lock per source CI serializes them;
        // SQLite's single writer already does.
        self.store
            .lock_source(&txn, &caller.tenant, command.source)
            .await?;
        let stored = self.stored_around(&txn, &caller.tenant, &command).await?;
        command.check(&catalog, ends, stored)?;

        let rel = StoredRelationship {
            id: ids::new_uuid(),
            source_id: command.source,
            rel_type: command.relationship,
            target_id: command.target,
            created_by: caller.subject.clone(),
            created_at: self.now(),
        };
        self.store
            .insert_relationship(&txn, &caller.tenant, &rel)
            .await?;
        let names = HashMap::from([
            (ends.0.id, ends.0.name.clone()),
            (ends.1.id, ends.1.name.clone()),
        ]);
        let wire = self.relationship_to_pb(&rel, &names);
        let event = Fact::RelationshipAdded {
            relationship: wire.clone(),
        }
        .into_event(
            &caller.tenant,
            &wire.id,
            &pb::ConfigurationItem::default(),
            &caller.actor(),
        );
        self.store.stage(&txn, event, self.now()).await?;
        self.store.commit(txn).await?;
        self.update_graph(
            &caller.tenant,
            &catalog,
            &[],
            vec![IndexChange::EdgeAdded {
                relationship: rel.id,
                edge: ImpactEdge {
                    source: command.source,
                    relationship: command.relationship,
                    target: command.target,
                },
            }],
        );
        Ok(wire)
    }

    /// An `AddRelationship` request as a command, or what is wrong with it.
    fn parse_add_relationship(
        &self,
        request: &pb::AddRelationshipRequest,
    ) -> Result<AddRelationship, Violations> {
        let mut violations = Violations::new();
        let source = self.parse_ci_id("source_id", &request.source_id, &mut violations);
        let target = self.parse_ci_id("target_id", &request.target_id, &mut violations);
        let relationship = convert::relationship_type(request.r#type);
        if relationship.is_none() {
            violations.push("type", "required: one of the relationship types");
        }
        match (source, target, relationship) {
            (Some(source), Some(target), Some(relationship)) if violations.is_empty() => {
                Ok(AddRelationship {
                    source,
                    relationship,
                    target,
                })
            }
            _ => Err(violations),
        }
    }

    /// What the store holds around a relationship about to be added: the same one (either way
    /// round for a symmetric type), and how many of its type leave its source.
    async fn stored_around(
        &self,
        txn: &WriteTxn,
        tenant: &str,
        command: &AddRelationship,
    ) -> CmdbResult<StoredAround> {
        let AddRelationship {
            source,
            relationship,
            target,
        } = *command;
        let already_stored = self
            .store
            .find_relationship(&**txn, tenant, source, relationship, target)
            .await?
            .is_some()
            || (relationship.is_symmetric()
                && self
                    .store
                    .find_relationship(&**txn, tenant, target, relationship, source)
                    .await?
                    .is_some());
        let outgoing_of_type = self
            .store
            .outgoing_count(&**txn, tenant, source, relationship)
            .await?;
        Ok(StoredAround {
            already_stored,
            outgoing_of_type,
        })
    }

    pub async fn remove_relationship(&self, caller: &Caller, id: &str) -> CmdbResult<()> {
        authorize(&caller.roles, Permission::Write)?;
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
                    &caller.actor(),
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
            vec![IndexChange::EdgeRemoved {
                relationship: rel.id,
                edge: ImpactEdge {
                    source: rel.source_id,
                    relationship: rel.rel_type,
                    target: rel.target_id,
                },
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
