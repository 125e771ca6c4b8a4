//! CI classes: the tenant's catalog, and the classes it adds.

use super::convert;
use super::{Caller, CmdbApi, CmdbResult};
use crate::domain as d;
use crate::domain::ClassCatalog;
use crate::domain::Violations;
use crate::events::Fact;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use desk_proto::cmdb::v1 as pb;
use prost::Message as _;
use std::sync::Arc;

impl CmdbApi {
    pub async fn list_classes(&self, caller: &Caller) -> CmdbResult<Vec<pb::CiClass>> {
        Self::require_read(caller)?;
        let catalog = self.catalog(&caller.tenant).await?;
        let builtin = ClassCatalog::builtin();
        Ok(catalog
            .classes()
            .map(|class| convert::class_to_pb(&catalog, class, builtin.contains(&class.name)))
            .collect())
    }

    pub async fn create_class(
        &self,
        caller: &Caller,
        request: pb::CreateClassRequest,
    ) -> CmdbResult<pb::CiClass> {
        Self::require_write(caller)?;
        let mut violations = Violations::new();
        let Some(wire) = request.class else {
            violations.push("class", "required");
            return Err(violations.into());
        };
        let class = convert::class_from_pb(&wire, &mut violations);
        violations.into_result()?;
        let catalog = self.catalog(&caller.tenant).await?;
        let mut tenant_classes: Vec<d::CiClass> = catalog
            .classes()
            .filter(|c| !ClassCatalog::builtin().contains(&c.name))
            .cloned()
            .collect();
        tenant_classes.push(class.clone());
        let extended = ClassCatalog::with_tenant_classes(tenant_classes)?;
        let txn = self.store.begin().await?;
        let now = self.now();
        let stored = convert::class_to_pb(&extended, &class, false);
        self.store
            .insert_class(
                &txn,
                &caller.tenant,
                &class.name,
                B64.encode(wire.encode_to_vec()),
                now,
            )
            .await?;
        // Every replica caches the catalog: the event tells the others to read it again.
        self.store
            .stage(
                &txn,
                Fact::ClassCreated {
                    class: stored.clone(),
                }
                .into_event(
                    &caller.tenant,
                    &class.name,
                    &pb::ConfigurationItem::default(),
                    &caller.actor_pb(),
                ),
                now,
            )
            .await?;
        self.store.commit(txn).await?;
        self.catalogs.replace(&caller.tenant, Arc::new(extended));
        Ok(stored)
    }
}
