//! The per-tenant priority matrix: priority as a function of impact × urgency.
//!
//! ITIL derives priority from how much harm an issue does (impact) and how soon it bites
//! (urgency). Tenants may tune the table, so it is stored as JSON in their settings; a matrix can
//! only be built complete and monotonic — raising impact or urgency never lowers priority — so
//! the rest of the service can look priorities up without re-checking.

use serde::{Deserialize, Serialize};

use super::ticket::{Level, Priority};

/// Number of [`Level`]s along each axis of the matrix.
const LEVELS: usize = 3;

/// A complete, monotonic impact × urgency → priority table.
///
/// Serialized as `{"cells":[["high","high","p1"],["high","medium","p2"],...]}` — impact, urgency,
/// priority — and validated again when deserialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "StoredMatrix", into = "StoredMatrix")]
pub struct PriorityMatrix {
    /// `table[impact][urgency]`, both indexed by [`index`] (high first).
    table: [[Priority; LEVELS]; LEVELS],
}

/// Why a set of cells is not a valid [`PriorityMatrix`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatrixError {
    #[error("impact {impact}, urgency {urgency} is given more than once")]
    DuplicateCell { impact: Level, urgency: Level },

    #[error(
        "impact {impact}, urgency {urgency} has no priority; the matrix needs all 9 combinations"
    )]
    MissingCell { impact: Level, urgency: Level },

    #[error(
        "impact {impact}, urgency {urgency} is {priority}, lower than {below} at impact \
         {below_impact}, urgency {below_urgency}; raising impact or urgency must never lower \
         priority"
    )]
    NotMonotonic {
        impact: Level,
        urgency: Level,
        priority: Priority,
        /// The less severe neighbour that got the higher priority.
        below_impact: Level,
        below_urgency: Level,
        below: Priority,
    },
}

impl PriorityMatrix {
    /// The ITIL textbook matrix: P1 for high × high down to P5 for low × low, each diagonal one
    /// step apart.
    pub const fn itil_default() -> Self {
        use Priority::{P1, P2, P3, P4, P5};
        Self {
            table: [
                // urgency:  high, medium, low
                /* high   */ [P1, P2, P3],
                /* medium */ [P2, P3, P4],
                /* low    */ [P3, P4, P5],
            ],
        }
    }

    /// The priority for this impact and urgency.
    pub const fn priority(&self, impact: Level, urgency: Level) -> Priority {
        self.table[index(impact)][index(urgency)]
    }

    /// Builds a matrix from `(impact, urgency, priority)` cells in any order. Every combination
    /// must appear exactly once, and raising impact or urgency must never lower priority.
    pub fn from_cells(cells: &[(Level, Level, Priority)]) -> Result<Self, MatrixError> {
        let mut slots: [[Option<Priority>; LEVELS]; LEVELS] = [[None; LEVELS]; LEVELS];
        for &(impact, urgency, priority) in cells {
            let slot = &mut slots[index(impact)][index(urgency)];
            if slot.is_some() {
                return Err(MatrixError::DuplicateCell { impact, urgency });
            }
            *slot = Some(priority);
        }

        let mut table = [[Priority::P5; LEVELS]; LEVELS];
        for &impact in Level::ALL {
            for &urgency in Level::ALL {
                table[index(impact)][index(urgency)] = slots[index(impact)][index(urgency)]
                    .ok_or(MatrixError::MissingCell { impact, urgency })?;
            }
        }

        let matrix = Self { table };
        matrix.check_monotonic()?;
        Ok(matrix)
    }

    /// All nine cells as `(impact, urgency, priority)`, high impact and high urgency first.
    pub fn cells(&self) -> impl Iterator<Item = (Level, Level, Priority)> + '_ {
        Level::ALL.iter().flat_map(move |&impact| {
            Level::ALL
                .iter()
                .map(move |&urgency| (impact, urgency, self.priority(impact, urgency)))
        })
    }

    /// Compares each cell with its one-step-less-severe neighbours; checking adjacent cells is
    /// enough, because "never lower" is transitive.
    fn check_monotonic(&self) -> Result<(), MatrixError> {
        for (impact, urgency, priority) in self.cells() {
            let neighbours = [
                less_severe(impact).map(|below| (below, urgency)),
                less_severe(urgency).map(|below| (impact, below)),
            ];
            for (below_impact, below_urgency) in neighbours.into_iter().flatten() {
                let below = self.priority(below_impact, below_urgency);
                if priority.rank() > below.rank() {
                    return Err(MatrixError::NotMonotonic {
                        impact,
                        urgency,
                        priority,
                        below_impact,
                        below_urgency,
                        below,
                    });
                }
            }
        }
        Ok(())
    }
}

impl Default for PriorityMatrix {
    fn default() -> Self {
        Self::itil_default()
    }
}

/// Row or column of a level: high is 0.
const fn index(level: Level) -> usize {
    level.rank() as usize - 1
}

/// The next level down, if any.
const fn less_severe(level: Level) -> Option<Level> {
    match level {
        Level::High => Some(Level::Medium),
        Level::Medium => Some(Level::Low),
        Level::Low => None,
    }
}

/// The JSON shape of a matrix in tenant settings.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredMatrix {
    cells: Vec<(Level, Level, Priority)>,
}

impl From<PriorityMatrix> for StoredMatrix {
    fn from(matrix: PriorityMatrix) -> Self {
        Self {
            cells: matrix.cells().collect(),
        }
    }
}

impl TryFrom<StoredMatrix> for PriorityMatrix {
    type Error = MatrixError;

    fn try_from(stored: StoredMatrix) -> Result<Self, Self::Error> {
        Self::from_cells(&stored.cells)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use Level::{High, Low, Medium};
    use Priority::{P1, P2, P3, P4, P5};

    fn default_cells() -> Vec<(Level, Level, Priority)> {
        PriorityMatrix::itil_default().cells().collect()
    }

    fn with_cell(
        impact: Level,
        urgency: Level,
        priority: Priority,
    ) -> Vec<(Level, Level, Priority)> {
        default_cells()
            .into_iter()
            .map(|cell| {
                if (cell.0, cell.1) == (impact, urgency) {
                    (impact, urgency, priority)
                } else {
                    cell
                }
            })
            .collect()
    }

    #[test]
    fn the_itil_default_follows_the_textbook_table() {
        let matrix = PriorityMatrix::itil_default();
        let expected = [
            (High, High, P1),
            (High, Medium, P2),
            (Medium, High, P2),
            (High, Low, P3),
            (Medium, Medium, P3),
            (Low, High, P3),
            (Medium, Low, P4),
            (Low, Medium, P4),
            (Low, Low, P5),
        ];
        for (impact, urgency, priority) in expected {
            assert_eq!(
                matrix.priority(impact, urgency),
                priority,
                "{impact} × {urgency}"
            );
        }
    }

    #[test]
    fn the_default_matrix_is_the_itil_default() {
        assert_eq!(PriorityMatrix::default(), PriorityMatrix::itil_default());
    }

    #[test]
    fn the_itil_default_is_itself_a_valid_matrix() {
        assert_eq!(
            PriorityMatrix::from_cells(&default_cells()),
            Ok(PriorityMatrix::itil_default())
        );
    }

    #[test]
    fn cells_list_all_nine_combinations_once() {
        let cells = default_cells();
        assert_eq!(cells.len(), 9);
        assert_eq!(cells[0], (High, High, P1));
        assert_eq!(cells[8], (Low, Low, P5));
    }

    #[test]
    fn cell_order_does_not_matter() {
        let mut cells = default_cells();
        cells.reverse();
        assert_eq!(
            PriorityMatrix::from_cells(&cells),
            Ok(PriorityMatrix::itil_default())
        );
    }

    #[test]
    fn a_tenant_may_flatten_the_matrix() {
        let cells: Vec<_> = default_cells()
            .into_iter()
            .map(|(i, u, _)| (i, u, P3))
            .collect();
        let matrix = PriorityMatrix::from_cells(&cells).expect("a flat matrix is monotonic");
        assert_eq!(matrix.priority(High, High), P3);
    }

    #[test]
    fn a_tenant_may_raise_a_cell_that_stays_monotonic() {
        let matrix =
            PriorityMatrix::from_cells(&with_cell(High, Medium, P1)).expect("still monotonic");
        assert_eq!(matrix.priority(High, Medium), P1);
    }

    #[test]
    fn a_missing_cell_is_named() {
        let cells: Vec<_> = default_cells()
            .into_iter()
            .filter(|c| (c.0, c.1) != (Medium, Low))
            .collect();
        let error = PriorityMatrix::from_cells(&cells).expect_err("incomplete");
        assert_eq!(
            error,
            MatrixError::MissingCell {
                impact: Medium,
                urgency: Low
            }
        );
        assert_eq!(
            error.to_string(),
            "impact medium, urgency low has no priority; the matrix needs all 9 combinations"
        );
    }

    #[test]
    fn an_empty_matrix_is_missing_its_first_cell() {
        assert_eq!(
            PriorityMatrix::from_cells(&[]),
            Err(MatrixError::MissingCell {
                impact: High,
                urgency: High
            })
        );
    }

    #[test]
    fn a_duplicate_cell_is_named_even_with_the_same_priority() {
        let mut cells = default_cells();
        cells.push((Low, High, P3));
        let error = PriorityMatrix::from_cells(&cells).expect_err("duplicate");
        assert_eq!(
            error,
            MatrixError::DuplicateCell {
                impact: Low,
                urgency: High
            }
        );
        assert_eq!(
            error.to_string(),
            "impact low, urgency high is given more than once"
        );
    }

    #[test]
    fn raising_impact_may_not_lower_priority() {
        // high × low below medium × low (P4) is fine; P5 is not.
        let error =
            PriorityMatrix::from_cells(&with_cell(High, Low, P5)).expect_err("not monotonic");
        assert_eq!(
            error,
            MatrixError::NotMonotonic {
                impact: High,
                urgency: Low,
                priority: P5,
                below_impact: Medium,
                below_urgency: Low,
                below: P4,
            }
        );
        assert_eq!(
            error.to_string(),
            "impact high, urgency low is p5, lower than p4 at impact medium, urgency low; \
             raising impact or urgency must never lower priority"
        );
    }

    #[test]
    fn raising_urgency_may_not_lower_priority() {
        let error =
            PriorityMatrix::from_cells(&with_cell(Low, High, P5)).expect_err("not monotonic");
        assert_eq!(
            error,
            MatrixError::NotMonotonic {
                impact: Low,
                urgency: High,
                priority: P5,
                below_impact: Low,
                below_urgency: Medium,
                below: P4,
            }
        );
    }

    #[test]
    fn a_less_severe_cell_may_not_outrank_its_neighbours() {
        let error =
            PriorityMatrix::from_cells(&with_cell(Low, Low, P1)).expect_err("not monotonic");
        assert!(matches!(
            error,
            MatrixError::NotMonotonic {
                below: P1,
                below_impact: Low,
                below_urgency: Low,
                ..
            }
        ));
    }

    #[test]
    fn the_matrix_round_trips_through_json() {
        let matrix = PriorityMatrix::from_cells(&with_cell(High, Medium, P1)).expect("valid");
        let json = serde_json::to_string(&matrix).expect("serialize");
        assert_eq!(
            serde_json::from_str::<PriorityMatrix>(&json).expect("deserialize"),
            matrix
        );
    }

    #[test]
    fn the_json_form_lists_cells_as_impact_urgency_priority() {
        let json = serde_json::to_value(PriorityMatrix::itil_default()).expect("serialize");
        let cells = json["cells"].as_array().expect("cells array");
        assert_eq!(cells.len(), 9);
        assert_eq!(json["cells"][0], serde_json::json!(["high", "high", "p1"]));
        assert_eq!(json["cells"][5], serde_json::json!(["medium", "low", "p4"]));
    }

    #[test]
    fn stored_json_that_is_not_monotonic_is_rejected() {
        let mut json = serde_json::to_value(PriorityMatrix::itil_default()).expect("serialize");
        json["cells"][8] = serde_json::json!(["low", "low", "p1"]);
        let error = serde_json::from_value::<PriorityMatrix>(json).expect_err("invalid");
        assert!(
            error.to_string().contains("must never lower priority"),
            "{error}"
        );
    }

    #[test]
    fn stored_json_with_an_unknown_level_is_rejected() {
        let json = r#"{"cells":[["severe","high","p1"]]}"#;
        assert!(serde_json::from_str::<PriorityMatrix>(json).is_err());
    }

    #[test]
    fn stored_json_with_unknown_fields_is_rejected() {
        let mut json = serde_json::to_value(PriorityMatrix::itil_default()).expect("serialize");
        json["rows"] = serde_json::json!([]);
        assert!(serde_json::from_value::<PriorityMatrix>(json).is_err());
    }

    fn any_priority() -> impl Strategy<Value = Priority> {
        prop::sample::select(Priority::ALL)
    }

    /// Nine cells in the default order with arbitrary priorities: mostly invalid matrices.
    fn any_cells() -> impl Strategy<Value = Vec<(Level, Level, Priority)>> {
        prop::collection::vec(any_priority(), 9).prop_map(|priorities| {
            default_cells()
                .into_iter()
                .zip(priorities)
                .map(|((impact, urgency, _), priority)| (impact, urgency, priority))
                .collect()
        })
    }

    /// Valid matrices only: each cell takes the most pressing priority among itself and every
    /// less severe cell, which makes the table monotonic by construction.
    fn any_monotonic_cells() -> impl Strategy<Value = Vec<(Level, Level, Priority)>> {
        any_cells().prop_map(|cells| {
            cells
                .iter()
                .map(|&(impact, urgency, _)| {
                    let most_pressing = cells
                        .iter()
                        .filter(|(i, u, _)| i.rank() >= impact.rank() && u.rank() >= urgency.rank())
                        .map(|&(_, _, priority)| priority)
                        .min_by_key(|priority| priority.rank())
                        .unwrap_or(P5);
                    (impact, urgency, most_pressing)
                })
                .collect()
        })
    }

    /// The definition of monotonic, checked over every pair of cells rather than neighbours.
    fn is_monotonic(cells: &[(Level, Level, Priority)]) -> bool {
        cells.iter().all(|&(impact, urgency, priority)| {
            cells.iter().all(|&(other_impact, other_urgency, other)| {
                let at_least_as_severe =
                    impact.rank() <= other_impact.rank() && urgency.rank() <= other_urgency.rank();
                !at_least_as_severe || priority.rank() <= other.rank()
            })
        })
    }

    proptest! {
        #[test]
        fn from_cells_accepts_exactly_the_monotonic_tables(cells in any_cells()) {
            let built = PriorityMatrix::from_cells(&cells);
            prop_assert_eq!(built.is_ok(), is_monotonic(&cells));
            if let Ok(matrix) = built {
                prop_assert_eq!(matrix.cells().collect::<Vec<_>>(), cells);
            }
        }

        #[test]
        fn every_monotonic_table_is_accepted_and_looks_up_its_cells(
            cells in any_monotonic_cells(),
        ) {
            let matrix = PriorityMatrix::from_cells(&cells).expect("monotonic by construction");
            for (impact, urgency, priority) in cells {
                prop_assert_eq!(matrix.priority(impact, urgency), priority);
            }
        }

        #[test]
        fn every_matrix_round_trips_through_json(cells in any_monotonic_cells()) {
            let matrix = PriorityMatrix::from_cells(&cells).expect("monotonic by construction");
            let json = serde_json::to_string(&matrix).expect("serialize");
            let read_back: PriorityMatrix = serde_json::from_str(&json).expect("deserialize");
            prop_assert_eq!(read_back, matrix);
        }

        #[test]
        fn shuffling_the_cells_builds_the_same_matrix(
            cells in Just(default_cells()).prop_shuffle(),
        ) {
            prop_assert_eq!(PriorityMatrix::from_cells(&cells), Ok(PriorityMatrix::itil_default()));
        }
    }
}
