//! What the CMDB publishes: `ci.created/updated/retired`, `relationship.added/removed`,
//! `import.committed`, `class.created` and `source_precedence.updated` on
//! `desk.<region>.cmdb.<tenant>.<aggregate>.<event>`, bodies from
//! `proto/desk/cmdb/v1/events.proto`, each carrying the aggregate after the change; and what it
//! follows of its own events to keep every replica's memory current ([`replica`]).

pub mod replica;

use desk_kit::events::OutgoingEvent;
use desk_proto::{cmdb::v1 as pb, common::v1 as common};
use prost::Message as _;

use crate::{api::convert, domain::CiFact};

#[derive(Debug, Clone)]
pub enum Fact {
    /// A CI was created, updated or retired (the domain says which: [`CiFact`]).
    Ci(CiFact),
    RelationshipAdded {
        relationship: pb::Relationship,
    },
    RelationshipRemoved {
        relationship: pb::Relationship,
    },
    ImportCommitted {
        batch: pb::ImportBatch,
    },
    ClassCreated {
        class: pb::CiClass,
    },
    SourcePrecedenceUpdated {
        precedence: pb::SourcePrecedence,
    },
}

impl Fact {
    /// The event for this fact; `ci` is the CI after the change (unused by relationship and import facts).
    pub fn into_event(
        self,
        tenant: &str,
        aggregate_id: &str,
        ci: &pb::ConfigurationItem,
        actor: &common::Actor,
    ) -> OutgoingEvent {
        let actor = Some(actor.clone());
        let ci = Some(ci.clone());
        let (aggregate, event, payload) = match self {
            Fact::Ci(CiFact::Created { source }) => (
                "ci",
                "created",
                pb::CiCreated { ci, actor, source }.encode_to_vec(),
            ),
            Fact::Ci(CiFact::Updated { changes, source }) => (
                "ci",
                "updated",
                pb::CiUpdated {
                    ci,
                    actor,
                    changes: convert::field_changes_to_pb(&changes),
                    source,
                }
                .encode_to_vec(),
            ),
            Fact::Ci(CiFact::Retired { reason }) => (
                "ci",
                "retired",
                pb::CiRetired {
                    ci,
                    actor,
                    reason: reason.unwrap_or_default(),
                }
                .encode_to_vec(),
            ),
            Fact::RelationshipAdded { relationship } => (
                "relationship",
                "added",
                pb::RelationshipAdded {
                    relationship: Some(relationship),
                    actor,
                }
                .encode_to_vec(),
            ),
            Fact::RelationshipRemoved { relationship } => (
                "relationship",
                "removed",
                pb::RelationshipRemoved {
                    relationship: Some(relationship),
                    actor,
                }
                .encode_to_vec(),
            ),
            Fact::ImportCommitted { batch } => (
                "import",
                "committed",
                pb::ImportCommitted {
                    batch: Some(batch),
                    actor,
                }
                .encode_to_vec(),
            ),
            Fact::ClassCreated { class } => (
                "class",
                "created",
                pb::ClassCreated {
                    class: Some(class),
                    actor,
                }
                .encode_to_vec(),
            ),
            Fact::SourcePrecedenceUpdated { precedence } => (
                "source_precedence",
                "updated",
                pb::SourcePrecedenceUpdated {
                    precedence: Some(precedence),
                    actor,
                }
                .encode_to_vec(),
            ),
        };
        OutgoingEvent {
            aggregate,
            event,
            aggregate_id: aggregate_id.to_owned(),
            tenant: tenant.to_owned(),
            payload,
        }
    }
}
