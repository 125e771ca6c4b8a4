//! The reconciler asks its questions synchronously (it is pure domain code); this answers them
//! from the store. Lookups block the current worker thread through `block_in_place`, which the
//! multi-threaded runtime the desk runs on allows; reconciliation runs there, not on a hot path.

use std::sync::Arc;

use uuid::Uuid;

use crate::{
    domain::{Ci, ClassCatalog, ExistingCis, IdentKey, RelationshipType, identification::KeyPart},
    store::CmdbStore,
};

pub struct StoreLookup<'a> {
    store: Arc<CmdbStore>,
    catalog: &'a ClassCatalog,
    tenant: &'a str,
    runtime: tokio::runtime::Handle,
}

impl<'a> StoreLookup<'a> {
    pub fn new(store: Arc<CmdbStore>, catalog: &'a ClassCatalog, tenant: &'a str) -> Self {
        Self {
            store,
            catalog,
            tenant,
            runtime: tokio::runtime::Handle::current(),
        }
    }

    fn block<T>(&self, future: impl std::future::Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }
}

impl ExistingCis for StoreLookup<'_> {
    fn find_by_key(&self, key: &IdentKey) -> Vec<Ci> {
        let values: Vec<(String, String)> = key
            .parts
            .iter()
            .map(|part| match part {
                KeyPart::Name(name) => ("name".to_owned(), name.clone()),
                KeyPart::Environment(environment) => {
                    ("environment".to_owned(), environment.as_str().to_owned())
                }
                KeyPart::Attribute { name, value } => (name.clone(), value.to_string()),
            })
            .collect();
        let conn = self.store.db().connection();
        let result = self.block(async {
            let ids = self
                .store
                .find_by_values(conn, self.tenant, &key.classes, &values)
                .await?;
            let mut found = Vec::new();
            for ci in self
                .store
                .find_many(conn, self.catalog, self.tenant, &ids)
                .await?
            {
                if let Some(parent) = &key.parent {
                    let linked = self
                        .store
                        .find_relationship(
                            conn,
                            self.tenant,
                            ci.id,
                            parent.relationship,
                            parent.parent_id,
                        )
                        .await?;
                    if linked.is_none() {
                        continue;
                    }
                }
                found.push(ci);
            }
            Ok::<_, crate::store::StoreError>(found)
        });
        result.unwrap_or_else(|error| {
            tracing::error!(error = %error, "identification lookup failed");
            Vec::new()
        })
    }

    fn get(&self, id: Uuid) -> Option<Ci> {
        let conn = self.store.db().connection();
        self.block(self.store.find(conn, self.catalog, self.tenant, id))
            .ok()
            .flatten()
    }

    fn relationship_exists(
        &self,
        source: Uuid,
        relationship: RelationshipType,
        target: Uuid,
    ) -> bool {
        let conn = self.store.db().connection();
        self.block(
            self.store
                .find_relationship(conn, self.tenant, source, relationship, target),
        )
        .ok()
        .flatten()
        .is_some()
    }

    fn outgoing_count(&self, source: Uuid, relationship: RelationshipType) -> usize {
        let conn = self.store.db().connection();
        self.block(
            self.store
                .outgoing_count(conn, self.tenant, source, relationship),
        )
        .unwrap_or(0)
    }
}
