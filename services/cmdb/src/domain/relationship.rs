//! Typed, directed relationships between CIs, and the rules a new one must satisfy.
//!
//! Each relationship is stored once, as `(source, type, target)`, and read from either end: from
//! the target it goes by its reverse name (`hosts` for `runs_on`).
//!
//! | type          | reads as                          | reverse       | a failure of … impacts … | outgoing per source | class rule                        |
//! |---------------|-----------------------------------|---------------|--------------------------|---------------------|-----------------------------------|
//! | `depends_on`  | A depends on B                    | `used_by`     | the target → the source  | any                 | —                                 |
//! | `runs_on`     | A runs on host B                  | `hosts`       | the target → the source  | at most 1           | neither end a business service    |
//! | `provides`    | A provides business service B     | `provided_by` | the source → the target  | any                 | the target is a business service  |
//! | `connects_to` | A and B are connected             | `connects_to` | either → the other       | any                 | —                                 |
//! | `member_of`   | A belongs to group B              | `has_member`  | nothing                  | any                 | —                                 |
//!
//! Why `provides` flows the other way: it is written from the supplier's side
//! (`checkout-api provides online-shop`), so the failing supplier is the *source* and the
//! business service it provides is hit. Writing it as the business service depending on its
//! application service would read backwards in every list, so the type carries its own
//! [`ImpactFlow`] instead. `member_of` is organisational (a CI in a support group, a cluster
//! catalogue entry): membership alone does not propagate failure; model the real dependency
//! with `depends_on` where there is one.
//!
//! No relationship joins a CI to itself, and a retired CI takes no new relationships (retired
//! CIs stay for history; see [`super::ci::CiStatus`]).

use std::fmt;

use uuid::Uuid;

use super::ci::{Ci, CiStatus};
use super::class::{BUSINESS_SERVICE, ClassCatalog};
use super::string_enum::string_enum;
use super::validate::Violations;

string_enum! {
    /// What a relationship says about its source and target; see the module table.
    pub enum RelationshipType {
        /// The source needs the target to work.
        DependsOn => "depends_on",
        /// The source runs on the target, its host (a VM on a hypervisor host, a database on a
        /// server, an application on a VM).
        RunsOn => "runs_on",
        /// The two are linked at the network level; symmetric.
        ConnectsTo => "connects_to",
        /// The source belongs to the target, a group or a cluster.
        MemberOf => "member_of",
        /// The source (an application service) delivers the target, a business service.
        Provides => "provides",
    }
}

/// How a failure travels along one relationship.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImpactFlow {
    /// A failure of the target impacts the source (`depends_on`, `runs_on`): impact travels
    /// against the edge, upstream.
    TargetImpactsSource,
    /// A failure of the source impacts the target (`provides`).
    SourceImpactsTarget,
    /// A failure of either impacts the other (`connects_to`).
    Both,
    /// Failure does not travel along it (`member_of`).
    None,
}

/// Which way a relationship is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Orientation {
    /// From the source, by the type's name (`runs_on`).
    Forward,
    /// From the target, by the reverse name (`hosts`).
    Reverse,
}

impl RelationshipType {
    /// The name seen from the target: `used_by`, `hosts`, `connects_to`, `has_member`,
    /// `provided_by`.
    pub const fn reverse_name(self) -> &'static str {
        match self {
            Self::DependsOn => "used_by",
            Self::RunsOn => "hosts",
            Self::ConnectsTo => "connects_to",
            Self::MemberOf => "has_member",
            Self::Provides => "provided_by",
        }
    }

    /// The type and reading direction for a forward or reverse name, so the API can accept
    /// `hosts` as well as `runs_on`. A symmetric type reads [`Orientation::Forward`].
    pub fn parse_either(text: &str) -> Option<(Self, Orientation)> {
        if let Some(found) = Self::parse(text) {
            return Some((found, Orientation::Forward));
        }
        Self::ALL
            .iter()
            .find(|candidate| candidate.reverse_name() == text)
            .map(|found| (*found, Orientation::Reverse))
    }

    /// How a failure travels along this type; see the module table.
    pub const fn impact_flow(self) -> ImpactFlow {
        match self {
            Self::DependsOn | Self::RunsOn => ImpactFlow::TargetImpactsSource,
            Self::Provides => ImpactFlow::SourceImpactsTarget,
            Self::ConnectsTo => ImpactFlow::Both,
            Self::MemberOf => ImpactFlow::None,
        }
    }

    /// Whether `A type B` also says `B type A`; such a pair is one relationship.
    pub const fn is_symmetric(self) -> bool {
        matches!(self, Self::ConnectsTo)
    }

    /// The most relationships of this type one CI may have as source: a CI runs on one host.
    pub const fn max_outgoing(self) -> Option<u32> {
        match self {
            Self::RunsOn => Some(1),
            Self::DependsOn | Self::ConnectsTo | Self::MemberOf | Self::Provides => None,
        }
    }

    /// A bit of its own, for sets of types kept in a `u8`.
    pub(crate) const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// Which end of a relationship a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum End {
    Source,
    Target,
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Source => "source",
            Self::Target => "target",
        })
    }
}

/// What the rules need to know about one end of a relationship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiFacts {
    pub id: Uuid,
    pub class: String,
    pub status: CiStatus,
}

/// Why a relationship may not be added. The texts are user-facing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelationshipError {
    #[error("a CI cannot be related to itself")]
    SelfLoop,

    #[error("the {end} CI is retired; retired CIs take no new relationships")]
    Retired { end: End },

    #[error("a {class} cannot be the {end} of a {relationship} relationship")]
    ClassNotAllowed {
        relationship: RelationshipType,
        end: End,
        class: String,
    },

    #[error("a {relationship} relationship must point to a {required}, not a {class}")]
    TargetClassRequired {
        relationship: RelationshipType,
        required: &'static str,
        class: String,
    },

    #[error("this relationship already exists")]
    AlreadyExists,

    #[error(
        "a CI may be the source of at most {max} {relationship} relationship{}, and this one \
         already has {existing}",
        if *.max == 1 { "" } else { "s" }
    )]
    TooMany {
        relationship: RelationshipType,
        max: u32,
        existing: usize,
    },
}

impl RelationshipError {
    /// The request field at fault when the request itself is wrong (`INVALID_ARGUMENT`); `None`
    /// when the CIs' current state forbids it (`FAILED_PRECONDITION`).
    pub const fn field(&self) -> Option<&'static str> {
        match self {
            Self::SelfLoop | Self::TargetClassRequired { .. } => Some("target_id"),
            Self::ClassNotAllowed { end, .. } => Some(match end {
                End::Source => "source_id",
                End::Target => "target_id",
            }),
            Self::Retired { .. } | Self::AlreadyExists | Self::TooMany { .. } => None,
        }
    }
}

/// `AddRelationship`: `source --relationship--> target`, both CIs of the caller's tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddRelationship {
    pub source: Uuid,
    pub relationship: RelationshipType,
    pub target: Uuid,
}

/// What the store says about a relationship about to be added, read under the source's lock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoredAround {
    /// The same relationship is stored (for a symmetric type, in either direction).
    pub already_stored: bool,
    /// How many relationships of its type leave the source.
    pub outgoing_of_type: usize,
}

impl AddRelationship {
    /// The two ends among the CIs the store found for them, or a violation for each one that is
    /// not there (`source_id`, `target_id`).
    pub fn ends<'a>(&self, found: &'a [Ci]) -> Result<(&'a Ci, &'a Ci), Violations> {
        let get = |id: Uuid| found.iter().find(|ci| ci.id == id);
        let mut violations = Violations::new();
        let (source, target) = (get(self.source), get(self.target));
        if source.is_none() {
            violations.push("source_id", "no such CI");
        }
        if target.is_none() {
            violations.push("target_id", "no such CI");
        }
        match (source, target) {
            (Some(source), Some(target)) => Ok((source, target)),
            _ => Err(violations),
        }
    }

    /// Whether it may be added between `source` and `target` as stored: not a repeat, then the
    /// rules of [`check_relationship`].
    pub fn check(
        &self,
        catalog: &ClassCatalog,
        (source, target): (&Ci, &Ci),
        stored: StoredAround,
    ) -> Result<(), RelationshipError> {
        if stored.already_stored {
            return Err(RelationshipError::AlreadyExists);
        }
        check_relationship(
            catalog,
            self.relationship,
            &source.facts(),
            &target.facts(),
            stored.outgoing_of_type,
        )
    }
}

/// Whether `source relationship target` may be added, given how many relationships of that type
/// the source already has. Checked in this order: self-loop, retired ends, class rules,
/// cardinality.
pub fn check_relationship(
    catalog: &ClassCatalog,
    relationship: RelationshipType,
    source: &CiFacts,
    target: &CiFacts,
    existing_outgoing_of_type: usize,
) -> Result<(), RelationshipError> {
    if source.id == target.id {
        return Err(RelationshipError::SelfLoop);
    }
    check_ends(
        catalog,
        relationship,
        (&source.class, source.status),
        (&target.class, target.status),
    )?;
    check_cardinality(relationship, existing_outgoing_of_type)
}

/// The rules about each end's class and status, for ends that may not have an id yet (CIs an
/// import batch is about to create).
pub(crate) fn check_ends(
    catalog: &ClassCatalog,
    relationship: RelationshipType,
    (source_class, source_status): (&str, CiStatus),
    (target_class, target_status): (&str, CiStatus),
) -> Result<(), RelationshipError> {
    if source_status == CiStatus::Retired {
        return Err(RelationshipError::Retired { end: End::Source });
    }
    if target_status == CiStatus::Retired {
        return Err(RelationshipError::Retired { end: End::Target });
    }
    check_classes(catalog, relationship, source_class, target_class)
}

/// The class rules of the module table.
pub(crate) fn check_classes(
    catalog: &ClassCatalog,
    relationship: RelationshipType,
    source_class: &str,
    target_class: &str,
) -> Result<(), RelationshipError> {
    match relationship {
        RelationshipType::RunsOn => {
            // A business service is an idea made of other CIs; it runs nowhere and hosts nothing.
            for (end, class) in [(End::Source, source_class), (End::Target, target_class)] {
                if catalog.is_subclass_of(class, BUSINESS_SERVICE) {
                    return Err(RelationshipError::ClassNotAllowed {
                        relationship,
                        end,
                        class: class.to_owned(),
                    });
                }
            }
            Ok(())
        }
        RelationshipType::Provides if !catalog.is_subclass_of(target_class, BUSINESS_SERVICE) => {
            Err(RelationshipError::TargetClassRequired {
                relationship,
                required: BUSINESS_SERVICE,
                class: target_class.to_owned(),
            })
        }
        RelationshipType::Provides
        | RelationshipType::DependsOn
        | RelationshipType::ConnectsTo
        | RelationshipType::MemberOf => Ok(()),
    }
}

/// Whether one more relationship of this type fits next to `existing` ones from the same source.
pub(crate) fn check_cardinality(
    relationship: RelationshipType,
    existing: usize,
) -> Result<(), RelationshipError> {
    match relationship.max_outgoing() {
        Some(max) if existing >= max as usize => Err(RelationshipError::TooMany {
            relationship,
            max,
            existing,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    fn facts(n: u128, class: &str, status: CiStatus) -> CiFacts {
        CiFacts {
            id: Uuid::from_u128(n),
            class: class.to_owned(),
            status,
        }
    }

    fn check(
        relationship: RelationshipType,
        source: &CiFacts,
        target: &CiFacts,
        existing: usize,
    ) -> Result<(), RelationshipError> {
        check_relationship(
            &ClassCatalog::builtin(),
            relationship,
            source,
            target,
            existing,
        )
    }

    #[test]
    fn wire_names_and_reverse_names_are_all_distinct() {
        let mut seen = HashSet::new();
        for relationship in RelationshipType::ALL {
            assert!(seen.insert(relationship.as_str()));
            if !relationship.is_symmetric() {
                assert!(seen.insert(relationship.reverse_name()));
            }
        }
        assert_eq!(
            RelationshipType::parse_either("hosts"),
            Some((RelationshipType::RunsOn, Orientation::Reverse))
        );
        assert_eq!(
            RelationshipType::parse_either("runs_on"),
            Some((RelationshipType::RunsOn, Orientation::Forward))
        );
        assert_eq!(
            RelationshipType::parse_either("connects_to"),
            Some((RelationshipType::ConnectsTo, Orientation::Forward))
        );
        assert_eq!(RelationshipType::parse_either("likes"), None);
    }

    #[test]
    fn each_type_has_its_own_bit() {
        let bits: u8 = RelationshipType::ALL.iter().fold(0, |all, relationship| {
            assert_eq!(all & relationship.bit(), 0);
            all | relationship.bit()
        });
        assert_eq!(bits.count_ones() as usize, RelationshipType::ALL.len());
    }

    #[test]
    fn impact_flows_as_the_module_table_says() {
        use ImpactFlow::{Both, SourceImpactsTarget, TargetImpactsSource};
        assert_eq!(
            RelationshipType::DependsOn.impact_flow(),
            TargetImpactsSource
        );
        assert_eq!(RelationshipType::RunsOn.impact_flow(), TargetImpactsSource);
        assert_eq!(
            RelationshipType::Provides.impact_flow(),
            SourceImpactsTarget
        );
        assert_eq!(RelationshipType::ConnectsTo.impact_flow(), Both);
        assert_eq!(RelationshipType::MemberOf.impact_flow(), ImpactFlow::None);
    }

    #[test]
    fn a_database_may_run_on_a_server() {
        let db = facts(1, "database", CiStatus::InUse);
        let host = facts(2, "virtual_machine", CiStatus::Planned);
        assert_eq!(check(RelationshipType::RunsOn, &db, &host, 0), Ok(()));
    }

    #[test]
    fn a_ci_cannot_be_related_to_itself() {
        let server = facts(1, "server", CiStatus::InUse);
        let error = check(RelationshipType::DependsOn, &server, &server, 0).expect_err("self");
        assert_eq!(error, RelationshipError::SelfLoop);
        assert_eq!(error.field(), Some("target_id"));
    }

    #[test]
    fn a_retired_ci_takes_no_new_relationships() {
        let live = facts(1, "server", CiStatus::InUse);
        let retired = facts(2, "server", CiStatus::Retired);
        let error = check(RelationshipType::ConnectsTo, &live, &retired, 0).expect_err("retired");
        assert_eq!(
            error.to_string(),
            "the target CI is retired; retired CIs take no new relationships"
        );
        assert_eq!(error.field(), None);
        assert_eq!(
            check(RelationshipType::ConnectsTo, &retired, &live, 0),
            Err(RelationshipError::Retired { end: End::Source })
        );
    }

    #[test]
    fn a_business_service_runs_nowhere_and_hosts_nothing() {
        let service = facts(1, BUSINESS_SERVICE, CiStatus::InUse);
        let server = facts(2, "server", CiStatus::InUse);
        let error = check(RelationshipType::RunsOn, &service, &server, 0).expect_err("source");
        assert_eq!(
            error.to_string(),
            "a business_service cannot be the source of a runs_on relationship"
        );
        assert_eq!(error.field(), Some("source_id"));
        assert!(check(RelationshipType::RunsOn, &server, &service, 0).is_err());
        assert_eq!(
            check(RelationshipType::DependsOn, &service, &server, 0),
            Ok(())
        );
    }

    #[test]
    fn provides_points_to_a_business_service() {
        let app = facts(1, "application_service", CiStatus::InUse);
        let service = facts(2, BUSINESS_SERVICE, CiStatus::InUse);
        let server = facts(3, "server", CiStatus::InUse);
        assert_eq!(check(RelationshipType::Provides, &app, &service, 0), Ok(()));
        assert_eq!(
            check(RelationshipType::Provides, &app, &server, 0)
                .expect_err("server")
                .to_string(),
            "a provides relationship must point to a business_service, not a server"
        );
    }

    #[test]
    fn a_ci_runs_on_at_most_one_host() {
        let vm = facts(1, "virtual_machine", CiStatus::InUse);
        let host = facts(2, "server", CiStatus::InUse);
        let error = check(RelationshipType::RunsOn, &vm, &host, 1).expect_err("second host");
        assert_eq!(
            error.to_string(),
            "a CI may be the source of at most 1 runs_on relationship, and this one already has 1"
        );
        assert_eq!(
            check(RelationshipType::DependsOn, &vm, &host, 1_000),
            Ok(())
        );
    }

    proptest! {
        #[test]
        fn every_type_parses_back_from_both_of_its_names(index in 0..RelationshipType::ALL.len()) {
            let relationship = RelationshipType::ALL[index];
            prop_assert_eq!(RelationshipType::parse_either(relationship.as_str()).map(|(t, _)| t), Some(relationship));
            prop_assert_eq!(RelationshipType::parse_either(relationship.reverse_name()).map(|(t, _)| t), Some(relationship));
        }
    }

    fn stored(n: u128, class: &str, status: CiStatus) -> Ci {
        crate::domain::NewCi {
            class: class.to_owned(),
            name: format!("ci-{n}"),
            environment: crate::domain::Environment::Production,
            status,
            criticality: crate::domain::Criticality::Medium,
            owner_group: None,
            location: None,
            region: None,
            attributes: Default::default(),
            defaulted: Default::default(),
        }
        .into_ci(
            Uuid::from_u128(n),
            "acme".into(),
            &crate::domain::Provenance {
                source: "api".into(),
                actor: "ada".into(),
                set_at: chrono::DateTime::UNIX_EPOCH,
            },
        )
    }

    #[test]
    fn a_new_relationship_needs_both_ends_stored_and_is_not_repeated() {
        let add = AddRelationship {
            source: Uuid::from_u128(1),
            relationship: RelationshipType::RunsOn,
            target: Uuid::from_u128(2),
        };
        let missing = add.ends(&[]).expect_err("no CIs");
        assert_eq!(
            missing.iter().map(|v| v.field.as_str()).collect::<Vec<_>>(),
            ["source_id", "target_id"]
        );
        let found = [
            stored(2, "server", CiStatus::InUse),
            stored(1, "database", CiStatus::InUse),
        ];
        let ends = add.ends(&found).expect("both stored");
        assert_eq!((ends.0.id, ends.1.id), (add.source, add.target));
        let catalog = ClassCatalog::builtin();
        assert_eq!(add.check(&catalog, ends, StoredAround::default()), Ok(()));
        assert_eq!(
            add.check(
                &catalog,
                ends,
                StoredAround {
                    already_stored: true,
                    outgoing_of_type: 0
                }
            ),
            Err(RelationshipError::AlreadyExists)
        );
        assert!(matches!(
            add.check(
                &catalog,
                ends,
                StoredAround {
                    already_stored: false,
                    outgoing_of_type: 1
                }
            ),
            Err(RelationshipError::TooMany { .. })
        ));
        assert_eq!(RelationshipError::AlreadyExists.field(), None);
    }
}
