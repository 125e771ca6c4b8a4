//! Committing a plan: what a commit writes, decided from the plan and the CIs it updates as
//! read in the commit's own transaction — the new CIs with their ids, the updates at the versions
//! the plan was made on, the relationships whose ends now all exist, and the facts each write
//! publishes. The store writes exactly this; ids come from the caller, so the decision reads no
//! clock.

use super::*;
use crate::domain::ci_commands::{CiWrite, CiWriteError, check_version, patch_ci};

/// A relationship a commit adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddedRelationship {
    pub id: Uuid,
    pub source: Uuid,
    pub relationship: RelationshipType,
    pub target: Uuid,
}

/// Everything a committed plan writes, in plan order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommittedPlan {
    /// Every CI created or updated; a created one has no `read_version`.
    pub cis: Vec<CiWrite>,
    pub relationships: Vec<AddedRelationship>,
    /// The id of each new CI, by the local id of the item that made it.
    pub created: HashMap<String, Uuid>,
}

/// What an import's history entries say besides the source.
pub const IMPORT_NOTE: &str = "import";

impl ReconciliationPlan {
    /// What committing this plan writes for `tenant`, by `actor` at `now`. `current` holds the
    /// CIs the plan updates, as read in the commit's transaction: each must still be at the
    /// version the plan was made on. `new_id` names each new CI and relationship.
    pub fn commit(
        &self,
        current: &HashMap<Uuid, Ci>,
        tenant: &str,
        actor: &str,
        now: DateTime<Utc>,
        new_id: &mut dyn FnMut() -> Uuid,
    ) -> Result<CommittedPlan, CiWriteError> {
        let mut committed = CommittedPlan::default();
        for item in &self.items {
            let provenance = Provenance {
                source: item.source.clone(),
                actor: actor.to_owned(),
                set_at: now,
            };
            let write = match &item.action {
                ItemAction::Create { ci } => {
                    let write = ci.clone().create(new_id(), tenant.to_owned(), &provenance);
                    committed.created.insert(item.local_id.clone(), write.ci.id);
                    Some(write)
                }
                ItemAction::Update {
                    ci_id,
                    expected_version,
                    patch,
                    ..
                } => {
                    let ci = current
                        .get(ci_id)
                        .ok_or(CiWriteError::Gone { ci_id: *ci_id })?;
                    check_version(ci, *expected_version)?;
                    patch_ci(ci.clone(), patch, &provenance)?
                }
                ItemAction::Unchanged { .. } | ItemAction::Conflict { .. } => None,
            };
            if let Some(mut write) = write {
                write.note = Some(IMPORT_NOTE.to_owned());
                committed.cis.push(write);
            }
        }
        for relationship in &self.relationships {
            if relationship.action != RelationshipAction::Add {
                continue;
            }
            let resolve = |end: &PlannedEnd| match end {
                PlannedEnd::Existing(id) => Some(*id),
                PlannedEnd::New { local_id } => committed.created.get(local_id).copied(),
                PlannedEnd::Unresolved { .. } => None,
            };
            let (Some(source), Some(target)) =
                (resolve(&relationship.source), resolve(&relationship.target))
            else {
                continue;
            };
            committed.relationships.push(AddedRelationship {
                id: new_id(),
                source,
                relationship: relationship.relationship,
                target,
            });
        }
        Ok(committed)
    }

    /// The CIs this plan updates, to read before [`ReconciliationPlan::commit`].
    pub fn updated_cis(&self) -> Vec<Uuid> {
        self.items
            .iter()
            .filter_map(|item| match &item.action {
                ItemAction::Update { ci_id, .. } => Some(*ci_id),
                _ => None,
            })
            .collect()
    }
}
