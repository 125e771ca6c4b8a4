//! The reconciler asks its questions synchronously (it is pure domain code); this answers them
//! from the store. Lookups block the current worker thread through `block_in_place`, which the
//! multi-threaded runtime the desk runs on allows; reconciliation runs there, not on a hot path.
//!
//! A batch of thousands of items would ask a few questions per item, each a round trip, so the
//! answers are mostly [`Prefetched`]: the existing CIs the batch names and the relationships
//! leaving them, and the identification keys a dry run of the plan looks up, are each loaded
//! with a few set-based queries; anything else is asked of the store one at a time.

use std::{
    cell::RefCell,
    collections::{BTreeSet, HashMap},
    sync::Arc,
};

use uuid::Uuid;

use crate::{
    domain::{
        self as d, Ci, ClassCatalog, ExistingCis, IdentKey, ImportBatch, ImportRef, InvalidItems,
        RelationshipType, SourcePrecedence, identification::KeyPart,
    },
    store::{CmdbStore, StoreResult},
};

/// Answers to a batch's questions, loaded in bulk before it is planned, in the same connection or
/// transaction the plan then reads: each answer is what the single query would have said.
#[derive(Debug, Default)]
pub struct Prefetched {
    /// CIs by id; `None` when the id names no CI of the tenant.
    cis: HashMap<Uuid, Option<Ci>>,
    /// Every active relationship leaving each of these CIs (complete per CI).
    outgoing: HashMap<Uuid, Vec<(RelationshipType, Uuid)>>,
    /// Identification keys without a parent, by [`key_id`]: every CI matching the key's fields.
    keys: HashMap<String, Vec<Ci>>,
}

/// Identifies a key without a parent for the prefetch map.
fn key_id(key: &IdentKey) -> String {
    format!("{:?}|{:?}", key.classes, key.parts)
}

/// The part of a key whose values are looked up in bulk: an attribute (indexed by name and
/// value), else the name.
enum Driver<'k> {
    Attribute { name: &'k str, value: String },
    Name(&'k str),
}

fn driver(key: &IdentKey) -> Option<Driver<'_>> {
    key.parts
        .iter()
        .find_map(|part| match part {
            KeyPart::Attribute { name, value } => Some(Driver::Attribute {
                name,
                value: value.to_string(),
            }),
            _ => None,
        })
        .or_else(|| {
            key.parts.iter().find_map(|part| match part {
                KeyPart::Name(name) => Some(Driver::Name(name)),
                _ => None,
            })
        })
}

impl Prefetched {
    /// The CI with `id`, when it was loaded: `Some(None)` says there is no such CI.
    fn ci(&self, id: Uuid) -> Option<Option<Ci>> {
        self.cis.get(&id).cloned()
    }

    /// Whether `source --relationship--> target` is stored, when `source`'s relationships were loaded.
    fn relationship_exists(
        &self,
        source: Uuid,
        relationship: RelationshipType,
        target: Uuid,
    ) -> Option<bool> {
        self.outgoing
            .get(&source)
            .map(|out| out.contains(&(relationship, target)))
    }

    /// How many `relationship`s leave `source`, when its relationships were loaded.
    fn outgoing_count(&self, source: Uuid, relationship: RelationshipType) -> Option<usize> {
        self.outgoing
            .get(&source)
            .map(|out| out.iter().filter(|(kind, _)| *kind == relationship).count())
    }

    /// Loads what planning `batch` will ask about.
    pub async fn load<C: sea_orm::ConnectionTrait>(
        store: &CmdbStore,
        conn: &C,
        catalog: &ClassCatalog,
        tenant: &str,
        precedence: &SourcePrecedence,
        batch: &ImportBatch,
        invalid: InvalidItems,
    ) -> StoreResult<Self> {
        let mut prefetched = Self::default();
        let named: BTreeSet<Uuid> = batch
            .relationships
            .iter()
            .flat_map(|r| [&r.source, &r.target])
            .filter_map(|end| match end {
                ImportRef::Existing(id) => Some(*id),
                ImportRef::Local(_) => None,
            })
            .collect();
        prefetched
            .add_cis(store, conn, catalog, tenant, named.into_iter().collect())
            .await?;

        // A dry run in which no key finds anything asks for every key the real plan can ask for
        // (the real one stops at the first rule that finds a CI).
        let recorder = KeyRecorder {
            prefetched: &prefetched,
            keys: RefCell::new(Vec::new()),
        };
        let _ = tokio::task::block_in_place(|| {
            d::reconcile(catalog, precedence, batch, &recorder, invalid)
        });
        let keys = recorder.keys.into_inner();
        prefetched
            .resolve_keys(store, conn, catalog, tenant, keys)
            .await?;
        Ok(prefetched)
    }

    async fn add_cis<C: sea_orm::ConnectionTrait>(
        &mut self,
        store: &CmdbStore,
        conn: &C,
        catalog: &ClassCatalog,
        tenant: &str,
        ids: Vec<Uuid>,
    ) -> StoreResult<()> {
        let ids: Vec<Uuid> = ids
            .into_iter()
            .filter(|id| !self.cis.contains_key(id))
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        for id in &ids {
            self.cis.insert(*id, None);
            self.outgoing.insert(*id, Vec::new());
        }
        for ci in store.find_many(conn, catalog, tenant, &ids).await? {
            self.cis.insert(ci.id, Some(ci));
        }
        for (source, relationship, target) in store.outgoing_of(conn, tenant, &ids).await? {
            self.outgoing
                .entry(source)
                .or_default()
                .push((relationship, target));
        }
        Ok(())
    }

    async fn resolve_keys<C: sea_orm::ConnectionTrait>(
        &mut self,
        store: &CmdbStore,
        conn: &C,
        catalog: &ClassCatalog,
        tenant: &str,
        keys: Vec<IdentKey>,
    ) -> StoreResult<()> {
        let mut by_attribute: HashMap<&str, BTreeSet<String>> = HashMap::new();
        let mut by_name: BTreeSet<String> = BTreeSet::new();
        for key in &keys {
            match driver(key) {
                Some(Driver::Attribute { name, value }) => {
                    by_attribute.entry(name).or_default().insert(value);
                }
                Some(Driver::Name(name)) => {
                    by_name.insert(name.to_owned());
                }
                None => {}
            }
        }
        // Candidates: CIs with the driving value; the key's other parts are checked in memory.
        let mut attribute_candidates: HashMap<(&str, String), Vec<Uuid>> = HashMap::new();
        for (name, values) in by_attribute {
            let values: Vec<String> = values.into_iter().collect();
            for (id, value) in store
                .with_attribute_values(conn, tenant, name, &values)
                .await?
            {
                attribute_candidates
                    .entry((name, value))
                    .or_default()
                    .push(id);
            }
        }
        let mut name_candidates: HashMap<String, Vec<Uuid>> = HashMap::new();
        let names: Vec<String> = by_name.into_iter().collect();
        for (id, name) in store.with_names(conn, tenant, &names).await? {
            name_candidates.entry(name).or_default().push(id);
        }
        let candidates: Vec<Uuid> = attribute_candidates
            .values()
            .chain(name_candidates.values())
            .flatten()
            .copied()
            .collect::<BTreeSet<Uuid>>()
            .into_iter()
            .collect();
        // Matched CIs are asked about next (their relationships, for cardinality): load them whole.
        self.add_cis(store, conn, catalog, tenant, candidates)
            .await?;
        for key in &keys {
            let ids = match driver(key) {
                Some(Driver::Attribute { name, value }) => attribute_candidates.get(&(name, value)),
                Some(Driver::Name(name)) => name_candidates.get(name),
                None => continue,
            };
            let found: Vec<Ci> = ids
                .into_iter()
                .flatten()
                .filter_map(|id| self.cis.get(id).cloned().flatten())
                .filter(|ci| key.matches_fields(ci))
                .collect();
            self.keys.insert(key_id(key), found);
        }
        Ok(())
    }
}

/// Records the keys without a parent that planning asks for, finding nothing; answers the rest
/// from what is already prefetched.
struct KeyRecorder<'a> {
    prefetched: &'a Prefetched,
    keys: RefCell<Vec<IdentKey>>,
}

impl ExistingCis for KeyRecorder<'_> {
    fn find_by_key(&self, key: &IdentKey) -> Vec<Ci> {
        if key.parent.is_none() {
            self.keys.borrow_mut().push(key.clone());
        }
        Vec::new()
    }

    fn get(&self, id: Uuid) -> Option<Ci> {
        self.prefetched.ci(id).flatten()
    }

    fn relationship_exists(
        &self,
        source: Uuid,
        relationship: RelationshipType,
        target: Uuid,
    ) -> bool {
        self.prefetched
            .relationship_exists(source, relationship, target)
            .unwrap_or(false)
    }

    fn outgoing_count(&self, source: Uuid, relationship: RelationshipType) -> usize {
        self.prefetched
            .outgoing_count(source, relationship)
            .unwrap_or(0)
    }
}

/// Every CI of `tenant` matching `key`, as [`ExistingCis::find_by_key`] answers it: by the key's
/// fields, then, for a dependent key, with the relationship to its parent.
pub async fn find_by_key<C: sea_orm::ConnectionTrait>(
    store: &CmdbStore,
    conn: &C,
    catalog: &ClassCatalog,
    tenant: &str,
    key: &IdentKey,
) -> StoreResult<Vec<Ci>> {
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
    let ids = store
        .find_by_values(conn, tenant, &key.classes, &values)
        .await?;
    let mut found = Vec::new();
    for ci in store.find_many(conn, catalog, tenant, &ids).await? {
        if let Some(parent) = &key.parent {
            let linked = store
                .find_relationship(conn, tenant, ci.id, parent.relationship, parent.parent_id)
                .await?;
            if linked.is_none() {
                continue;
            }
        }
        found.push(ci);
    }
    Ok(found)
}

pub struct StoreLookup<'a, C> {
    store: Arc<CmdbStore>,
    /// The pool for a preview, the commit's own transaction for a commit: a commit plans inside
    /// the transaction that applies the plan, so nothing can change in between.
    conn: &'a C,
    catalog: &'a ClassCatalog,
    tenant: &'a str,
    /// Answers loaded in bulk; what is not there is asked of the store.
    prefetched: Prefetched,
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
        prefetched: Prefetched,
    ) -> Self {
        Self {
            store,
            conn,
            catalog,
            tenant,
            prefetched,
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
        if key.parent.is_none()
            && let Some(found) = self.prefetched.keys.get(&key_id(key))
        {
            return found.clone();
        }
        let conn = self.conn;
        let result = self.block(find_by_key(
            &self.store,
            conn,
            self.catalog,
            self.tenant,
            key,
        ));
        self.remember(result)
    }

    fn get(&self, id: Uuid) -> Option<Ci> {
        if let Some(known) = self.prefetched.ci(id) {
            return known;
        }
        let conn = self.conn;
        self.remember(self.block(self.store.find(conn, self.catalog, self.tenant, id)))
    }

    fn relationship_exists(
        &self,
        source: Uuid,
        relationship: RelationshipType,
        target: Uuid,
    ) -> bool {
        if let Some(known) = self
            .prefetched
            .relationship_exists(source, relationship, target)
        {
            return known;
        }
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
        if let Some(known) = self.prefetched.outgoing_count(source, relationship) {
            return known;
        }
        let conn = self.conn;
        self.remember(
            self.block(
                self.store
                    .outgoing_count(conn, self.tenant, source, relationship),
            ),
        )
    }
}
