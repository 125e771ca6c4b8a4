//! One tenant's projection of the CMDB as its events tell it: the dependency graph and the class
//! tree (a tenant class may derive from `business_service`, and its CIs are business services
//! too). Applying the same change twice leaves it as applied once, so a follower may re-read.

use std::collections::HashMap;

use uuid::Uuid;

use super::graph::{CiNode, Criticality, DependencyGraph, Edge};

/// The CMDB's built-in class whose CIs (and subclasses' CIs) are business services.
pub const BUSINESS_SERVICE: &str = "business_service";

/// One fact of the CMDB, as the change service keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdbFact {
    Ci {
        id: Uuid,
        name: String,
        class: String,
        criticality: Criticality,
        retired: bool,
        version: i64,
    },
    RelationshipAdded {
        id: Uuid,
        edge: Edge,
    },
    RelationshipRemoved {
        id: Uuid,
    },
    ClassCreated {
        name: String,
        parent: String,
    },
}

#[derive(Debug, Clone, Default)]
pub struct TenantProjection {
    pub graph: DependencyGraph,
    /// Tenant classes and their parents.
    classes: HashMap<String, String>,
}

impl TenantProjection {
    /// Whether `class` is `business_service` or derives from it.
    pub fn is_business_service(&self, class: &str) -> bool {
        let mut current = class;
        // The class tree is shallow; the bound stops a cycle a corrupt feed could make.
        for _ in 0..32 {
            if current == BUSINESS_SERVICE {
                return true;
            }
            match self.classes.get(current) {
                Some(parent) => current = parent,
                None => return false,
            }
        }
        false
    }

    pub fn apply(&mut self, fact: CmdbFact) {
        match fact {
            CmdbFact::Ci {
                id,
                name,
                class,
                criticality,
                retired,
                version,
            } => {
                let business_service = self.is_business_service(&class);
                self.graph.upsert_ci(CiNode {
                    id,
                    name,
                    class,
                    criticality,
                    business_service,
                    retired,
                    version,
                });
            }
            CmdbFact::RelationshipAdded { id, edge } => self.graph.add_relationship(id, edge),
            CmdbFact::RelationshipRemoved { id } => self.graph.remove_relationship(id),
            CmdbFact::ClassCreated { name, parent } => {
                self.classes.insert(name, parent);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_subclass_of_business_service_makes_business_services() {
        let mut projection = TenantProjection::default();
        projection.apply(CmdbFact::ClassCreated {
            name: "digital_product".into(),
            parent: BUSINESS_SERVICE.into(),
        });
        let ci = CmdbFact::Ci {
            id: Uuid::from_u128(1),
            name: "app store".into(),
            class: "digital_product".into(),
            criticality: Criticality::High,
            retired: false,
            version: 1,
        };
        projection.apply(ci.clone());
        projection.apply(ci);
        let node = projection.graph.ci(Uuid::from_u128(1)).expect("projected");
        assert!(node.business_service);
        assert!(!projection.is_business_service("server"));
        assert_eq!(projection.graph.len(), 1);
    }
}
