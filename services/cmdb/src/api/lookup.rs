//! The reconciler asks its questions synchronously (it is pure domain code); this answers them
//! from the store. Lookups block the current worker thread through `block_in_place`, which the
//! multi-threaded runtime the desk runs on allows; reconciliation runs there, not on a hot path.

use std::sync::Arc;

use uuid::Uuid;

use crate::{
    domain::{Ci, ClassCatalog, ExistingCis, IdentKey, RelationshipType, identification::KeyPart},
    store::CmdbStore,
};

pub struct StoreLookup<'a, C> {
    store: Arc<CmdbStore>,
    /// The pool for a preview, the commit's own transaction for a commit: a commit plans inside
    /// the transaction that applies the plan, so nothing can change in between.
    conn: &'a C,
    catalog: &'a ClassCatalog,
    tenant: &'a str,
    runtime: tokio::runtime::Handle,
    /// The first store error: a failed lookup must fail the plan, never read as "no such CI"
    /// (which would plan a duplicate create).
    failed: std::cell::RefCell<Option<crate::store::StoreError>>,
}

impl<'a, C: sea_orm::ConnectionTrait> StoreLookup<'a, C> {
    pub fn new(
        store: Arc<CmdbStore>,
        conn: &'a C,
        catalog: &'a ClassCatalog,
        tenant: &'a str,
    ) -> Self {
        Self {
            store,
            conn,
            catalog,
            tenant,
            runtime: tokio::runtime::Handle::current(),
            failed: std::cell::RefCell::new(None),
        }
    }

    /// The first error a lookup hit, if any.
    pub fn take_error(&self) -> Option<crate::store::StoreError> {
        self.failed.borrow_mut().take()
    }

    fn remember<T: Default>(&self, result: Result<T, crate::store::StoreError>) -> T {
        match result {
            Ok(value) => value,
            Err(error) => {
                self.failed.borrow_mut().get_or_insert(error);
                T::default()
            }
        }
    }

    fn block<T>(&self, future: impl std::future::Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }
}

impl<C: sea_orm::ConnectionTrait> ExistingCis for StoreLookup<'_, C> {
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
        let conn = self.conn;
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
        self.remember(result)
    }

    fn get(&self, id: Uuid) -> Option<Ci> {
        let conn = self.conn;
        self.remember(self.block(self.store.find(conn, self.catalog, self.tenant, id)))
    }

    fn relationship_exists(
        &self,
        source: Uuid,
        relationship: RelationshipType,
        target: Uuid,
    ) -> bool {
        let conn = self.conn;
        self.remember(self.block(self.store.find_relationship(
            conn,
            self.tenant,
            source,
            relationship,
            target,
        )))
        .is_some()
    }

    fn outgoing_count(&self, source: Uuid, relationship: RelationshipType) -> usize {
        let conn = self.conn;
        self.remember(
            self.block(
                self.store
                    .outgoing_count(conn, self.tenant, source, relationship),
            ),
        )
    }
}
