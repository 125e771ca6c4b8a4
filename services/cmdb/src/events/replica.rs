//! Every CMDB replica follows the CMDB's own events to keep what it holds in memory — the impact
//! index, the class catalogs, the source precedences — as current as the replica that wrote the
//! change (`desk_kit::events::follow`). Without this, replica B would answer impact from a stale
//! graph, call a class created on A unknown, and plan an import with another precedence than A.
//!
//! A replica sees its own writes again this way, later than it applied them: CI changes carry
//! versions and older ones are skipped; relationship changes are recognised by their id as its
//! own and skipped (see `api::index`), so a late one cannot undo a later change made here; cache
//! invalidations are idempotent.

use std::collections::HashMap;

use desk_kit::{events::IncomingEvent, ids};
use desk_proto::cmdb::v1 as pb;

use crate::{
    api::{CmdbApi, IndexChange, Origin, convert, impact_node},
    domain::impact::ImpactEdge,
};

/// What a replica follows: everything the CMDB publishes except import summaries.
pub fn followed_subjects(region: &str) -> Vec<String> {
    ["ci", "relationship", "class", "source_precedence"]
        .iter()
        .map(|aggregate| format!("desk.{region}.{}.*.{aggregate}.>", crate::SERVICE))
        .collect()
}

/// Applies followed events, in order, to this replica's memory.
pub async fn apply(api: &CmdbApi, events: Vec<IncomingEvent>) {
    // Index changes are gathered per tenant and applied in one write each; a catalog change
    // first applies what came before it, since it decides how later CIs are indexed.
    let mut pending: HashMap<String, Vec<IndexChange>> = HashMap::new();
    for event in events {
        let tenant = event.attributes.tenant.clone();
        let kind = event
            .attributes
            .ce_type
            .strip_prefix("desk.cmdb.")
            .and_then(|rest| rest.strip_suffix(".v1"))
            .unwrap_or_default()
            .to_owned();
        let result = match kind.as_str() {
            "ci.created" => ci_change(api, &event, |m: pb::CiCreated| m.ci).await,
            "ci.updated" => ci_change(api, &event, |m: pb::CiUpdated| m.ci).await,
            "ci.retired" => ci_change(api, &event, |m: pb::CiRetired| m.ci).await,
            "relationship.added" => edge(api, &event, |m: pb::RelationshipAdded| m.relationship)
                .map(|(relationship, edge)| Some(IndexChange::EdgeAdded { relationship, edge })),
            "relationship.removed" => {
                edge(api, &event, |m: pb::RelationshipRemoved| m.relationship).map(
                    |(relationship, edge)| Some(IndexChange::EdgeRemoved { relationship, edge }),
                )
            }
            "class.created" => {
                if let Some(changes) = pending.remove(&tenant) {
                    api.index().apply(&tenant, Origin::Followed, changes);
                }
                api.forget_catalog(&tenant);
                Ok(None)
            }
            "source_precedence.updated" => {
                api.forget_precedence(&tenant);
                Ok(None)
            }
            _ => Ok(None),
        };
        match result {
            Ok(Some(change)) => pending.entry(tenant).or_default().push(change),
            Ok(None) => {}
            Err(reason) => {
                tracing::warn!(event.id = %event.attributes.id, event.type = %event.attributes.ce_type, reason = %reason, "replica skipped an event it cannot read")
            }
        }
    }
    for (tenant, changes) in pending {
        api.index().apply(&tenant, Origin::Followed, changes);
    }
}

async fn ci_change<M: prost::Message + Default>(
    api: &CmdbApi,
    event: &IncomingEvent,
    ci_of: impl FnOnce(M) -> Option<pb::ConfigurationItem>,
) -> Result<Option<IndexChange>, String> {
    let message = M::decode(event.payload.as_ref()).map_err(|e| e.to_string())?;
    let ci = ci_of(message).ok_or("no CI in the event")?;
    let id = parse_id(api, &ci.id)?;
    let status = convert::status(ci.status).ok_or("an unknown CI status")?;
    let catalog = api
        .catalog(&event.attributes.tenant)
        .await
        .map_err(|e| format!("the tenant's classes: {e}"))?;
    Ok(Some(IndexChange::Ci {
        node: impact_node(&catalog, id, &ci.class, &ci.name, status),
        version: ci.version,
    }))
}

/// The relationship an event is about: its id and its edge.
fn edge<M: prost::Message + Default>(
    api: &CmdbApi,
    event: &IncomingEvent,
    relationship_of: impl FnOnce(M) -> Option<pb::Relationship>,
) -> Result<(uuid::Uuid, ImpactEdge), String> {
    let message = M::decode(event.payload.as_ref()).map_err(|e| e.to_string())?;
    let relationship = relationship_of(message).ok_or("no relationship in the event")?;
    let edge = ImpactEdge {
        source: parse_id(api, &relationship.source_id)?,
        relationship: convert::relationship_type(relationship.r#type)
            .ok_or("an unknown relationship type")?,
        target: parse_id(api, &relationship.target_id)?,
    };
    Ok((parse_id(api, &relationship.id)?, edge))
}

fn parse_id(api: &CmdbApi, id: &str) -> Result<uuid::Uuid, String> {
    ids::parse_id(id)
        .filter(|parsed| parsed.region == api.region())
        .map(|parsed| parsed.uuid)
        .ok_or_else(|| format!("{id:?} is not an id of this region"))
}
