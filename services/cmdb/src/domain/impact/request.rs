//! The bounds of what a caller may ask: an `AnalyzeImpact` request becomes an [`ImpactQuery`]
//! within the service's limits, which the answer reports as used.

use uuid::Uuid;

use super::{Direction, ImpactQuery};
use crate::domain::relationship::RelationshipType;
use crate::domain::validate::Violations;

/// Deepest walk the service answers; a caller may ask for less.
pub const MAX_DEPTH: u32 = 32;
/// Most CIs one answer reports; a caller may ask for fewer.
pub const MAX_NODES: u32 = 200_000;
/// Most start CIs one query names.
pub const MAX_START_CIS: usize = 100;

/// `AnalyzeImpact`, parsed: a limit of 0 asks for the service's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImpactRequest {
    pub start: Vec<Uuid>,
    pub direction: Direction,
    pub max_depth: u32,
    pub max_nodes: u32,
    /// Empty walks every type.
    pub relationship_types: Vec<RelationshipType>,
    pub include_paths: bool,
    pub include_via: bool,
}

impl ImpactRequest {
    /// The query to walk, with limits above the service's lowered to them; `given_starts` is how
    /// many start ids the request named (some may not have parsed, which `found` holds).
    pub fn query(
        self,
        given_starts: usize,
        mut found: Violations,
    ) -> Result<ImpactQuery, Violations> {
        if given_starts == 0 || given_starts > MAX_START_CIS {
            found.push("ci_ids", format!("between 1 and {MAX_START_CIS} CI ids"));
        }
        found.into_result()?;
        let bounded = |asked: u32, most: u32| if asked == 0 { most } else { asked.min(most) };
        Ok(ImpactQuery {
            start: self.start,
            direction: self.direction,
            max_depth: bounded(self.max_depth, MAX_DEPTH),
            max_nodes: bounded(self.max_nodes, MAX_NODES),
            relationship_types: (!self.relationship_types.is_empty())
                .then_some(self.relationship_types),
            include_paths: self.include_paths,
            include_via: self.include_via,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(start: usize, max_depth: u32, max_nodes: u32) -> ImpactRequest {
        ImpactRequest {
            start: (0..start).map(|n| Uuid::from_u128(n as u128 + 1)).collect(),
            direction: Direction::Upstream,
            max_depth,
            max_nodes,
            relationship_types: Vec::new(),
            include_paths: false,
            include_via: false,
        }
    }

    #[test]
    fn no_limit_asks_for_the_services_and_a_higher_one_is_lowered_to_it() {
        let query = request(1, 0, 0)
            .query(1, Violations::new())
            .expect("a query");
        assert_eq!((query.max_depth, query.max_nodes), (MAX_DEPTH, MAX_NODES));
        let query = request(1, 1000, 10_000_000)
            .query(1, Violations::new())
            .expect("a query");
        assert_eq!((query.max_depth, query.max_nodes), (MAX_DEPTH, MAX_NODES));
        let query = request(1, 3, 50)
            .query(1, Violations::new())
            .expect("a query");
        assert_eq!((query.max_depth, query.max_nodes), (3, 50));
        assert_eq!(query.relationship_types, None, "no types walks every type");
    }

    #[test]
    fn a_query_names_between_one_and_a_hundred_start_cis() {
        for starts in [0, MAX_START_CIS + 1] {
            let refused = request(starts, 0, 0)
                .query(starts, Violations::new())
                .expect_err("refused");
            assert_eq!(
                refused.iter().map(|v| v.field.as_str()).collect::<Vec<_>>(),
                ["ci_ids"]
            );
        }
        assert!(
            request(MAX_START_CIS, 0, 0)
                .query(MAX_START_CIS, Violations::new())
                .is_ok()
        );
    }
}
