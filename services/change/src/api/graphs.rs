//! Every tenant's projection of the CMDB in memory ([`TenantProjection`]), shared by the API
//! (risk, conflicts, unknown CIs), the incident consumer and the follower that keeps it current.
//!
//! A tenant's projection sits behind its own lock: a conflict check holds the read lock for one
//! walk (milliseconds on 100,000 CIs), the follower the write lock for one batch of events.

use std::{
    collections::HashMap,
    sync::{Arc, PoisonError, RwLock},
};

use crate::domain::projection::{CmdbFact, TenantProjection};

#[derive(Default)]
pub struct Graphs {
    tenants: RwLock<HashMap<String, Arc<RwLock<TenantProjection>>>>,
}

impl Graphs {
    pub fn new(loaded: HashMap<String, Vec<CmdbFact>>) -> Graphs {
        let graphs = Graphs::default();
        for (tenant, facts) in loaded {
            graphs.apply(&tenant, facts);
        }
        graphs
    }

    fn tenant(&self, tenant: &str) -> Arc<RwLock<TenantProjection>> {
        if let Some(found) = self
            .tenants
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tenant)
        {
            return found.clone();
        }
        self.tenants
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(tenant.to_owned())
            .or_default()
            .clone()
    }

    /// Applies facts of `tenant`, in order.
    pub fn apply(&self, tenant: &str, facts: Vec<CmdbFact>) {
        let projection = self.tenant(tenant);
        let mut projection = projection.write().unwrap_or_else(PoisonError::into_inner);
        for fact in facts {
            projection.apply(fact);
        }
    }

    /// Runs `read` on `tenant`'s projection (an empty one for a tenant the CMDB never told of).
    pub fn read<T>(&self, tenant: &str, read: impl FnOnce(&TenantProjection) -> T) -> T {
        let projection = self.tenant(tenant);
        let projection = projection.read().unwrap_or_else(PoisonError::into_inner);
        read(&projection)
    }
}
