//! CI classes: the tenant's catalog, and the classes it adds.

use std::sync::Arc;

use base64::{Engine as _, engine::general_purpose::STANDARD as B64};
use desk_kit::auth::Caller;
use desk_proto::cmdb::v1 as pb;
use prost::Message as _;

use super::{CmdbApi, CmdbResult, convert};
use crate::{
    domain::{CiClass, ClassCatalog, Permission, Violations, authorize},
    events::Fact,
};

impl CmdbApi {
    pub async fn list_classes(&self, caller: &Caller) -> CmdbResult<Vec<pb::CiClass>> {
        authorize(&caller.roles, Permission::Read)?;
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
        let parsed = parse_class(request);
        authorize(&caller.roles, Permission::Write)?;
        let (wire, class) = parsed?;

        let extended = self
            .catalog(&caller.tenant)
            .await?
            .with_class_added(class.clone())?;

        let stored = convert::class_to_pb(&extended, &class, false);
        let txn = self.store.begin().await?;
        let now = self.now();
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
        let event = Fact::ClassCreated {
            class: stored.clone(),
        }
        .into_event(
            &caller.tenant,
            &class.name,
            &pb::ConfigurationItem::default(),
            &caller.actor(),
        );
        self.store.stage(&txn, event, now).await?;
        self.store.commit(txn).await?;
        self.catalogs.replace(&caller.tenant, Arc::new(extended));
        Ok(stored)
    }
}

/// The class a request defines, as given (it is stored so) and typed.
fn parse_class(request: pb::CreateClassRequest) -> Result<(pb::CiClass, CiClass), Violations> {
    let mut violations = Violations::new();
    let Some(wire) = request.class else {
        violations.push("class", "required");
        return Err(violations);
    };
    let class = convert::class_from_pb(&wire, &mut violations);
    violations.into_result()?;
    Ok((wire, class))
}
