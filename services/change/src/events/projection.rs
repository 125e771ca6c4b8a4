//! The CMDB as the change service sees it, kept from the CMDB's own events
//! (`DESK_<REGION>_CMDB`): `ci.created/updated/retired`, `relationship.added/removed` and
//! `class.created`.
//!
//! Two readers of the same events, for two purposes:
//! - the durable consumer `change-cmdb-projection` writes them to the projection tables (with
//!   the inbox, once each, by one replica), so the graph survives restarts and outlives the
//!   stream's retention;
//! - every replica follows the stream ([`desk_kit::events::follow::Follow`]) to keep its own
//!   in-memory graph current. At start a replica reads the consumer's acknowledged floor, then
//!   the tables, then follows from that floor: everything acknowledged is in the tables, and
//!   what came after is applied again on top — harmless, since each fact overwrites one key (a
//!   CI by version, a relationship by id), so a replayed suffix ends in the same state.
//!
//! The CMDB being down stops neither: checks read memory, and both readers resume where they
//! were once the stream has news.

use std::sync::Arc;

use desk_kit::{
    events::{Effect, Handle, HandlerError, IncomingEvent},
    ids,
};
use desk_proto::cmdb::v1 as pb;
use uuid::Uuid;

use crate::{
    api::{Graphs, convert},
    domain::{Criticality, Edge, projection::CmdbFact},
    store::ChangeStore,
};

/// The durable consumer's name (also its inbox rows' and dead letters').
pub const DURABLE: &str = "change-cmdb-projection";

/// What both readers take from the CMDB's stream.
pub fn subjects(region: &str) -> Vec<String> {
    ["ci", "relationship", "class"]
        .iter()
        .map(|aggregate| format!("desk.{region}.cmdb.*.{aggregate}.>"))
        .collect()
}

fn id_of(region: &str, text: &str) -> Result<Uuid, String> {
    ids::parse_id(text)
        .filter(|parsed| parsed.region == region)
        .map(|parsed| parsed.uuid)
        .ok_or_else(|| format!("{text:?} is not an id of region {region}"))
}

fn ci_fact(region: &str, ci: Option<pb::ConfigurationItem>) -> Result<CmdbFact, String> {
    let ci = ci.ok_or("no CI in the event")?;
    let criticality = match pb::Criticality::try_from(ci.criticality) {
        Ok(pb::Criticality::Critical) => Criticality::Critical,
        Ok(pb::Criticality::High) => Criticality::High,
        Ok(pb::Criticality::Low) => Criticality::Low,
        _ => Criticality::Medium,
    };
    Ok(CmdbFact::Ci {
        id: id_of(region, &ci.id)?,
        name: ci.name,
        class: ci.class,
        criticality,
        retired: ci.status == pb::CiStatus::Retired as i32,
        version: ci.version,
    })
}

fn edge_of(region: &str, relationship: Option<pb::Relationship>) -> Result<(Uuid, Edge), String> {
    let relationship = relationship.ok_or("no relationship in the event")?;
    Ok((
        id_of(region, &relationship.id)?,
        Edge {
            source: id_of(region, &relationship.source_id)?,
            relation: convert::relation_of(relationship.r#type)
                .ok_or("an unknown relationship type")?,
            target: id_of(region, &relationship.target_id)?,
        },
    ))
}

/// The fact an event tells, if it tells one the change service keeps.
pub fn fact_of(region: &str, event: &IncomingEvent) -> Result<Option<CmdbFact>, String> {
    let decode_error = |e: prost::DecodeError| e.to_string();
    let fact = match event.attributes.ce_type.as_str() {
        "desk.cmdb.ci.created.v1" => ci_fact(
            region,
            event.decode::<pb::CiCreated>().map_err(decode_error)?.ci,
        )?,
        "desk.cmdb.ci.updated.v1" => ci_fact(
            region,
            event.decode::<pb::CiUpdated>().map_err(decode_error)?.ci,
        )?,
        "desk.cmdb.ci.retired.v1" => ci_fact(
            region,
            event.decode::<pb::CiRetired>().map_err(decode_error)?.ci,
        )?,
        "desk.cmdb.relationship.added.v1" => {
            let message = event
                .decode::<pb::RelationshipAdded>()
                .map_err(decode_error)?;
            let (id, edge) = edge_of(region, message.relationship)?;
            CmdbFact::RelationshipAdded { id, edge }
        }
        "desk.cmdb.relationship.removed.v1" => {
            let message = event
                .decode::<pb::RelationshipRemoved>()
                .map_err(decode_error)?;
            let (id, _) = edge_of(region, message.relationship)?;
            CmdbFact::RelationshipRemoved { id }
        }
        "desk.cmdb.class.created.v1" => {
            let class = event
                .decode::<pb::ClassCreated>()
                .map_err(decode_error)?
                .class
                .ok_or("no class in the event")?;
            CmdbFact::ClassCreated {
                name: class.name,
                parent: class.parent,
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(fact))
}

/// The follower's step: a batch of events into this replica's memory, in order.
pub fn apply_followed(graphs: &Graphs, region: &str, events: Vec<IncomingEvent>) {
    let mut by_tenant: Vec<(String, Vec<CmdbFact>)> = Vec::new();
    for event in events {
        match fact_of(region, &event) {
            Ok(Some(fact)) => {
                let tenant = &event.attributes.tenant;
                match by_tenant.last_mut() {
                    Some((last, facts)) if last == tenant => facts.push(fact),
                    _ => by_tenant.push((tenant.clone(), vec![fact])),
                }
            }
            Ok(None) => {}
            Err(reason) => {
                tracing::warn!(event.id = %event.attributes.id, event.type = %event.attributes.ce_type, reason = %reason, "projection skipped a CMDB event it cannot read")
            }
        }
    }
    for (tenant, facts) in by_tenant {
        graphs.apply(&tenant, facts);
    }
}

/// The durable consumer's handler: every kept fact into the projection tables.
pub struct ProjectionHandler {
    pub store: Arc<ChangeStore>,
    pub region: String,
}

macro_rules! project_each {
    ($($message:ty),*) => {$(
        #[async_trait::async_trait]
        impl Handle<$message> for ProjectionHandler {
            async fn handle(&self, effect: &Effect<'_>, event: &IncomingEvent, _message: $message) -> Result<(), HandlerError> {
                match fact_of(&self.region, event).map_err(HandlerError::Reject)? {
                    Some(fact) => self
                        .store
                        .project(effect.txn(), &event.attributes.tenant, &fact)
                        .await
                        .map_err(|e| HandlerError::Retry(e.to_string())),
                    None => Ok(()),
                }
            }
        }
    )*};
}

project_each!(
    pb::CiCreated,
    pb::CiUpdated,
    pb::CiRetired,
    pb::RelationshipAdded,
    pb::RelationshipRemoved,
    pb::ClassCreated
);
