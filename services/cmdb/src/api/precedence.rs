//! Source precedence: which discovery source's value wins, per field, for the tenant.

use super::CmdbError;
use super::{Caller, CmdbApi, CmdbResult};
use crate::domain as d;
use crate::domain::SourcePrecedence;
use crate::domain::Violations;
use crate::events::Fact;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use desk_proto::cmdb::v1 as pb;
use prost::Message as _;
use std::sync::Arc;

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
                    .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
                pb::SourcePrecedence::decode(bytes.as_slice())
                    .map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?
            }
        };
        let precedence = Arc::new(precedence_from_pb(&wire));
        self.precedences
            .keep(tenant, generation, precedence.clone());
        Ok(precedence)
    }

    pub async fn get_source_precedence(&self, caller: &Caller) -> CmdbResult<pb::SourcePrecedence> {
        Self::require_read(caller)?;
        Ok(precedence_to_pb(&*self.precedence(&caller.tenant).await?))
    }

    pub async fn set_source_precedence(
        &self,
        caller: &Caller,
        request: pb::SetSourcePrecedenceRequest,
    ) -> CmdbResult<pb::SourcePrecedence> {
        // Discovery sources (integrators) must not rank themselves: owners of the CMDB decide.
        if !caller
            .roles
            .iter()
            .any(|r| r == "admin" || r == "configuration_manager")
        {
            return Err(CmdbError::Forbidden(
                "only admins and configuration managers set source precedence",
            ));
        }
        let wire = request.precedence.unwrap_or_default();
        let mut violations = Violations::new();
        let mut check_order = |field: &str, order: &pb::SourceOrder| {
            for (index, source) in order.sources.iter().enumerate() {
                d::validate::opaque(
                    &format!("{field}.sources[{index}]"),
                    source,
                    d::validate::SOURCE_MAX,
                    &mut violations,
                );
            }
            let mut seen = std::collections::BTreeSet::new();
            if order.sources.iter().any(|source| !seen.insert(source)) {
                violations.push(format!("{field}.sources"), "a source is listed twice");
            }
        };
        if let Some(order) = &wire.default_order {
            check_order("precedence.default_order", order);
        }
        for (key, order) in &wire.by_field {
            check_order(&format!("precedence.by_field[{key}]"), order);
        }
        if wire.by_field.len() > 500 {
            violations.push("precedence.by_field", "at most 500 fields");
        }
        for key in wire.by_field.keys() {
            if key.is_empty()
                || key.split('.').count() > 2
                || !key.split('.').all(d::validate::is_identifier)
            {
                violations.push(
                    format!("precedence.by_field[{key}]"),
                    "a field (`os`) or a class and a field (`server.os`), snake_case",
                );
            }
        }
        violations.into_result()?;
        let txn = self.store.begin().await?;
        let now = self.now();
        self.store
            .save_source_precedence(&txn, &caller.tenant, B64.encode(wire.encode_to_vec()), now)
            .await?;
        // Every replica caches the precedence: the event tells the others to read it again.
        self.store
            .stage(
                &txn,
                Fact::SourcePrecedenceUpdated {
                    precedence: wire.clone(),
                }
                .into_event(
                    &caller.tenant,
                    &caller.tenant,
                    &pb::ConfigurationItem::default(),
                    &caller.actor_pb(),
                ),
                now,
            )
            .await?;
        self.store.commit(txn).await?;
        self.precedences
            .replace(&caller.tenant, Arc::new(precedence_from_pb(&wire)));
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
