//! Source precedence: which discovery source's value wins, per field, for the tenant.

use std::sync::Arc;

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
use desk_kit::auth::Caller;
use desk_proto::cmdb::v1 as pb;
use prost::Message as _;

use super::{CmdbApi, CmdbResult};
use crate::{
    domain::{Permission, SourcePrecedence, authorize},
    events::Fact,
    store::StoreError,
};

impl CmdbApi {
    /// The tenant's source precedence (cached; this process's writes refresh it).
    pub async fn precedence(&self, tenant: &str) -> CmdbResult<Arc<SourcePrecedence>> {
        let generation = match self.precedences.get(tenant) {
            Ok(found) => return Ok(found),
            Err(generation) => generation,
        };
        let stored = self
            .store
            .source_precedence(self.store.db().connection(), tenant)
            .await?;
        let wire = match stored {
            None => pb::SourcePrecedence::default(),
            Some(encoded) => {
                let bytes = B64
                    .decode(encoded)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                pb::SourcePrecedence::decode(bytes.as_slice())
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?
            }
        };
        let precedence = Arc::new(precedence_from_pb(&wire));
        self.precedences
            .keep(tenant, generation, precedence.clone());
        Ok(precedence)
    }

    pub async fn get_source_precedence(&self, caller: &Caller) -> CmdbResult<pb::SourcePrecedence> {
        authorize(&caller.roles, Permission::Read)?;
        Ok(precedence_to_pb(&*self.precedence(&caller.tenant).await?))
    }

    /// Keeps the precedence as the caller wrote it (and answers with it), once the domain has
    /// checked it.
    pub async fn set_source_precedence(
        &self,
        caller: &Caller,
        request: pb::SetSourcePrecedenceRequest,
    ) -> CmdbResult<pb::SourcePrecedence> {
        authorize(&caller.roles, Permission::RankSources)?;
        let wire = request.precedence.unwrap_or_default();
        let precedence = SourcePrecedence::checked(
            wire.default_order
                .as_ref()
                .map(|order| order.sources.clone()),
            wire.by_field
                .iter()
                .map(|(field, order)| (field.clone(), order.sources.clone()))
                .collect(),
        )?;

        let txn = self.store.begin().await?;
        let now = self.now();
        self.store
            .save_source_precedence(&txn, &caller.tenant, B64.encode(wire.encode_to_vec()), now)
            .await?;
        // Every replica caches the precedence: the event tells the others to read it again.
        let event = Fact::SourcePrecedenceUpdated {
            precedence: wire.clone(),
        }
        .into_event(
            &caller.tenant,
            &caller.tenant,
            &pb::ConfigurationItem::default(),
            &caller.actor(),
        );
        self.store.stage(&txn, event, now).await?;
        self.store.commit(txn).await?;
        self.precedences
            .replace(&caller.tenant, Arc::new(precedence));
        Ok(wire)
    }
}

fn precedence_from_pb(wire: &pb::SourcePrecedence) -> SourcePrecedence {
    SourcePrecedence {
        default_order: wire
            .default_order
            .as_ref()
            .map(|o| o.sources.clone())
            .unwrap_or_default(),
        by_field: wire
            .by_field
            .iter()
            .map(|(field, order)| (field.clone(), order.sources.clone()))
            .collect(),
    }
}

fn precedence_to_pb(precedence: &SourcePrecedence) -> pb::SourcePrecedence {
    pb::SourcePrecedence {
        default_order: Some(pb::SourceOrder {
            sources: precedence.default_order.clone(),
        }),
        by_field: precedence
            .by_field
            .iter()
            .map(|(field, sources)| {
                (
                    field.clone(),
                    pb::SourceOrder {
                        sources: sources.clone(),
                    },
                )
            })
            .collect(),
    }
}
