//! Per-tenant values read from the database once and kept (a tenant's class catalog, its source
//! precedence), dropped when an event says another replica changed them.
//!
//! A load that started before an invalidation must not put back what it read: each tenant's
//! entry has a generation, bumped by [`TenantCache::invalidate`], and a load keeps its result only
//! if the generation it started under is still current.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

pub struct TenantCache<T> {
    entries: RwLock<HashMap<String, Entry<T>>>,
}

struct Entry<T> {
    generation: u64,
    value: Option<Arc<T>>,
}

impl<T> Default for TenantCache<T> {
    fn default() -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
        }
    }
}

/// Where a load started: hand it back to [`TenantCache::keep`].
#[derive(Debug, Clone, Copy)]
pub struct Generation(u64);

impl<T> TenantCache<T> {
    /// The cached value, or the generation a load of it starts under.
    pub fn get(&self, tenant: &str) -> Result<Arc<T>, Generation> {
        let entries = self
            .entries
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match entries.get(tenant) {
            Some(Entry {
                value: Some(value), ..
            }) => Ok(value.clone()),
            Some(entry) => Err(Generation(entry.generation)),
            None => Err(Generation(0)),
        }
    }

    /// Keeps `value`, loaded under `generation`, unless the tenant was invalidated meanwhile.
    pub fn keep(&self, tenant: &str, generation: Generation, value: Arc<T>) {
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = entries.entry(tenant.to_owned()).or_insert(Entry {
            generation: 0,
            value: None,
        });
        if entry.generation == generation.0 {
            entry.value = Some(value);
        }
    }

    /// Replaces the value after this replica changed it (and committed the change).
    pub fn replace(&self, tenant: &str, value: Arc<T>) {
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = entries.entry(tenant.to_owned()).or_insert(Entry {
            generation: 0,
            value: None,
        });
        entry.generation += 1;
        entry.value = Some(value);
    }

    /// Forgets the value: the next read loads it again.
    pub fn invalidate(&self, tenant: &str) {
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let entry = entries.entry(tenant.to_owned()).or_insert(Entry {
            generation: 0,
            value: None,
        });
        entry.generation += 1;
        entry.value = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_that_raced_an_invalidation_is_not_kept() {
        let cache = TenantCache::<u32>::default();
        let Err(started) = cache.get("acme") else {
            panic!("nothing cached yet")
        };
        cache.invalidate("acme");
        cache.keep("acme", started, Arc::new(1));
        let Err(again) = cache.get("acme") else {
            panic!("the stale load was kept")
        };
        cache.keep("acme", again, Arc::new(2));
        assert_eq!(cache.get("acme").ok().as_deref(), Some(&2));
    }

    #[test]
    fn a_replaced_value_is_read_until_invalidated() {
        let cache = TenantCache::<u32>::default();
        cache.replace("acme", Arc::new(7));
        assert_eq!(cache.get("acme").ok().as_deref(), Some(&7));
        assert!(cache.get("globex").is_err());
        cache.invalidate("acme");
        assert!(cache.get("acme").is_err());
    }
}
