//! A change's risk: a transparent score, the sum of named factors with their weights, mapped to
//! low, medium or high (which decides the CAB that must approve it).
//!
//! | factor               | weight                                                                 |
//! |----------------------|------------------------------------------------------------------------|
//! | `business_services`  | per business service the affected CIs' failure reaches: critical 15, high 10, medium 5, low 2; at most 30 |
//! | `ci_criticality`     | the most critical affected CI: critical 20, high 12, medium 5, low 0    |
//! | `change_type`        | emergency 15, normal 5, standard 0                                      |
//! | `freeze`             | 25 when the window overlaps a freeze covering an affected CI            |
//! | `maintenance_window` | 10 when the window is outside a CI's maintenance windows                |
//! | `backout_plan`       | 15 when there is none                                                   |
//! | `test_plan`          | 10 when there is none                                                   |
//! | `failure_history`    | up to 20: the failure rate of past changes on the same CIs × 20         |
//!
//! The score is capped at 100; below [`MEDIUM_FROM`] it is low, from [`HIGH_FROM`] high.
//! Factors that add nothing are still listed (with weight 0) when they were considered, so the
//! answer says what was looked at, not only what counted.

use serde::{Deserialize, Serialize};

use super::graph::Criticality;
use super::lifecycle::ChangeType;

desk_kit::string_enum! {
    pub enum RiskLevel {
        Low => "low",
        Medium => "medium",
        High => "high",
    }
}

pub const MEDIUM_FROM: i32 = 30;
pub const HIGH_FROM: i32 = 60;
const BUSINESS_SERVICES_CAP: i32 = 30;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskFactor {
    pub name: String,
    pub weight: i32,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Risk {
    pub score: i32,
    pub level: RiskLevel,
    pub factors: Vec<RiskFactor>,
}

/// How past changes on the same CIs ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PastChanges {
    pub completed: u32,
    pub failed: u32,
}

/// What the score is computed from.
#[derive(Debug, Clone)]
pub struct RiskInputs {
    pub change_type: ChangeType,
    /// The business services the affected CIs' failure reaches (name, criticality).
    pub business_services: Vec<(String, Criticality)>,
    /// The affected CIs (name, criticality).
    pub affected: Vec<(String, Criticality)>,
    /// The freezes the window overlaps, by name.
    pub freezes: Vec<String>,
    /// The CIs whose maintenance windows do not hold the window, by name.
    pub outside_maintenance: Vec<String>,
    pub has_backout_plan: bool,
    pub has_test_plan: bool,
    pub past: PastChanges,
}

fn criticality_rank(criticality: Criticality) -> u8 {
    match criticality {
        Criticality::Critical => 3,
        Criticality::High => 2,
        Criticality::Medium => 1,
        Criticality::Low => 0,
    }
}

pub fn assess(inputs: &RiskInputs) -> Risk {
    let mut factors = Vec::new();
    let mut add = |name: &str, weight: i32, detail: String| {
        factors.push(RiskFactor {
            name: name.to_owned(),
            weight,
            detail,
        });
    };

    let services: i32 = inputs
        .business_services
        .iter()
        .map(|(_, criticality)| match criticality {
            Criticality::Critical => 15,
            Criticality::High => 10,
            Criticality::Medium => 5,
            Criticality::Low => 2,
        })
        .sum();
    add(
        "business_services",
        services.min(BUSINESS_SERVICES_CAP),
        if inputs.business_services.is_empty() {
            "no business service is reached".to_owned()
        } else {
            format!(
                "reaches {}",
                inputs
                    .business_services
                    .iter()
                    .map(|(name, criticality)| format!("{name} ({criticality})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
    );

    let most_critical = inputs
        .affected
        .iter()
        .max_by_key(|(_, criticality)| criticality_rank(*criticality));
    let (weight, detail) = match most_critical {
        Some((name, criticality)) => (
            match criticality {
                Criticality::Critical => 20,
                Criticality::High => 12,
                Criticality::Medium => 5,
                Criticality::Low => 0,
            },
            format!("the most critical affected CI is {name} ({criticality})"),
        ),
        None => (0, "no CI is affected".to_owned()),
    };
    add("ci_criticality", weight, detail);

    let (weight, detail) = match inputs.change_type {
        ChangeType::Emergency => (15, "an emergency change is expedited"),
        ChangeType::Normal => (5, "a normal change"),
        ChangeType::Standard => (0, "a pre-approved standard change"),
    };
    add("change_type", weight, detail.to_owned());

    if inputs.freezes.is_empty() {
        add("freeze", 0, "the window overlaps no freeze".to_owned());
    } else {
        add(
            "freeze",
            25,
            format!(
                "the window overlaps the freeze {}",
                inputs.freezes.join(", ")
            ),
        );
    }

    if inputs.outside_maintenance.is_empty() {
        add(
            "maintenance_window",
            0,
            "the window fits the CIs' maintenance windows".to_owned(),
        );
    } else {
        add(
            "maintenance_window",
            10,
            format!(
                "the window is outside the maintenance windows of {}",
                inputs.outside_maintenance.join(", ")
            ),
        );
    }

    if inputs.has_backout_plan {
        add("backout_plan", 0, "a backout plan is given".to_owned());
    } else {
        add("backout_plan", 15, "no backout plan".to_owned());
    }
    if inputs.has_test_plan {
        add("test_plan", 0, "a test plan is given".to_owned());
    } else {
        add("test_plan", 10, "no test plan".to_owned());
    }

    let past = inputs.past;
    if past.completed == 0 {
        add(
            "failure_history",
            0,
            "no earlier change on these CIs".to_owned(),
        );
    } else {
        let failed = past.failed.min(past.completed);
        // Rounded to the nearest point.
        let weight = ((failed * 20 + past.completed / 2) / past.completed) as i32;
        add(
            "failure_history",
            weight,
            format!(
                "{failed} of {} earlier changes on these CIs failed",
                past.completed
            ),
        );
    }

    let score = factors.iter().map(|f| f.weight).sum::<i32>().clamp(0, 100);
    Risk {
        score,
        level: level_of(score),
        factors,
    }
}

pub fn level_of(score: i32) -> RiskLevel {
    if score >= HIGH_FROM {
        RiskLevel::High
    } else if score >= MEDIUM_FROM {
        RiskLevel::Medium
    } else {
        RiskLevel::Low
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet_standard_change() -> RiskInputs {
        RiskInputs {
            change_type: ChangeType::Standard,
            business_services: Vec::new(),
            affected: vec![("printer".into(), Criticality::Low)],
            freezes: Vec::new(),
            outside_maintenance: Vec::new(),
            has_backout_plan: true,
            has_test_plan: true,
            past: PastChanges::default(),
        }
    }

    fn weight(risk: &Risk, name: &str) -> i32 {
        risk.factors
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.weight)
            .unwrap_or_else(|| panic!("no factor {name}"))
    }

    #[test]
    fn a_quiet_standard_change_is_low_and_lists_every_factor_considered() {
        let risk = assess(&quiet_standard_change());
        assert_eq!(risk.score, 0);
        assert_eq!(risk.level, RiskLevel::Low);
        assert_eq!(risk.factors.len(), 8);
    }

    #[test]
    fn each_factor_adds_its_weight_and_says_why() {
        let risk = assess(&RiskInputs {
            change_type: ChangeType::Emergency,
            business_services: vec![
                ("payments".into(), Criticality::Critical),
                ("shop".into(), Criticality::High),
                ("intranet".into(), Criticality::Medium),
            ],
            affected: vec![
                ("db-01".into(), Criticality::High),
                ("core-switch".into(), Criticality::Critical),
            ],
            freezes: vec!["year end".into()],
            outside_maintenance: vec!["db-01".into()],
            has_backout_plan: false,
            has_test_plan: false,
            past: PastChanges {
                completed: 4,
                failed: 1,
            },
        });
        assert_eq!(weight(&risk, "business_services"), 30);
        assert_eq!(weight(&risk, "ci_criticality"), 20);
        assert_eq!(weight(&risk, "change_type"), 15);
        assert_eq!(weight(&risk, "freeze"), 25);
        assert_eq!(weight(&risk, "maintenance_window"), 10);
        assert_eq!(weight(&risk, "backout_plan"), 15);
        assert_eq!(weight(&risk, "test_plan"), 10);
        assert_eq!(weight(&risk, "failure_history"), 5);
        assert_eq!(risk.score, 100, "capped");
        assert_eq!(risk.level, RiskLevel::High);
        let detail = |name: &str| {
            risk.factors
                .iter()
                .find(|f| f.name == name)
                .map(|f| f.detail.clone())
                .unwrap_or_default()
        };
        assert_eq!(
            detail("ci_criticality"),
            "the most critical affected CI is core-switch (critical)"
        );
        assert_eq!(
            detail("failure_history"),
            "1 of 4 earlier changes on these CIs failed"
        );
    }

    #[test]
    fn levels_split_at_thirty_and_sixty() {
        assert_eq!(level_of(29), RiskLevel::Low);
        assert_eq!(level_of(30), RiskLevel::Medium);
        assert_eq!(level_of(59), RiskLevel::Medium);
        assert_eq!(level_of(60), RiskLevel::High);
    }

    proptest::proptest! {
        /// The score is always the capped sum of the factors it lists.
        #[test]
        fn the_score_is_the_capped_sum_of_its_factors(
            services in proptest::collection::vec(0usize..4, 0..6),
            type_index in 0usize..3,
            backout in proptest::bool::ANY,
            test in proptest::bool::ANY,
            completed in 0u32..20,
            failed in 0u32..25,
        ) {
            let criticalities = Criticality::ALL;
            let risk = assess(&RiskInputs {
                change_type: ChangeType::ALL[type_index],
                business_services: services.iter().map(|c| ("s".to_owned(), criticalities[*c])).collect(),
                affected: Vec::new(),
                freezes: Vec::new(),
                outside_maintenance: Vec::new(),
                has_backout_plan: backout,
                has_test_plan: test,
                past: PastChanges { completed, failed },
            });
            let sum: i32 = risk.factors.iter().map(|f| f.weight).sum();
            proptest::prop_assert_eq!(risk.score, sum.clamp(0, 100));
            proptest::prop_assert_eq!(risk.level, level_of(risk.score));
            proptest::prop_assert!(risk.factors.iter().all(|f| f.weight >= 0));
        }
    }
}
