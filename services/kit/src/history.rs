//! What an update changed, field by field, for an aggregate's history and its `*.updated` event.
//!
//! Every change to a ticket, CI, change or article is kept and readable through the API, so an
//! update compares the old and new value of each field it may touch and records only real
//! differences. Values are
//! kept as text: history is for people and for integrators, not for recomputing state.

use serde::{Deserialize, Serialize};

/// One field's value before and after; `None` when the field was (or became) unset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// The changes of one update, in the order the fields were first recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes(Vec<FieldChange>);

impl Changes {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `field` going from `old` to `new`, if they differ.
    pub fn record<T: ToString + PartialEq + ?Sized>(&mut self, field: &str, old: &T, new: &T) {
        if old != new {
            self.push(field, Some(old.to_string()), Some(new.to_string()));
        }
    }

    /// Records an optional `field` going from `old` to `new`, if they differ.
    pub fn record_opt<T: ToString + PartialEq + ?Sized>(
        &mut self,
        field: &str,
        old: Option<&T>,
        new: Option<&T>,
    ) {
        if old != new {
            self.push(
                field,
                old.map(ToString::to_string),
                new.map(ToString::to_string),
            );
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The names of the changed fields, for the event's field mask.
    pub fn field_names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|change| change.field.as_str())
    }

    pub fn iter(&self) -> std::slice::Iter<'_, FieldChange> {
        self.0.iter()
    }

    pub fn into_vec(self) -> Vec<FieldChange> {
        self.0
    }

    /// Adds a difference. A field recorded twice in one update keeps its first old value and its
    /// last new value, and disappears if those turn out equal — an update that sets a field and
    /// sets it back changed nothing.
    fn push(&mut self, field: &str, old: Option<String>, new: Option<String>) {
        match self.0.iter().position(|change| change.field == field) {
            Some(index) if self.0[index].old == new => {
                self.0.remove(index);
            }
            Some(index) => self.0[index].new = new,
            None => self.0.push(FieldChange {
                field: field.to_owned(),
                old,
                new,
            }),
        }
    }
}

impl IntoIterator for Changes {
    type Item = FieldChange;
    type IntoIter = std::vec::IntoIter<FieldChange>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Changes {
    type Item = &'a FieldChange;
    type IntoIter = std::slice::Iter<'a, FieldChange>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn change(field: &str, old: Option<&str>, new: Option<&str>) -> FieldChange {
        FieldChange {
            field: field.into(),
            old: old.map(Into::into),
            new: new.map(Into::into),
        }
    }

    #[test]
    fn a_new_changes_is_empty() {
        let changes = Changes::new();
        assert!(changes.is_empty());
        assert_eq!(changes.len(), 0);
        assert_eq!(changes.into_vec(), []);
    }

    #[test]
    fn equal_values_are_not_recorded() {
        let mut changes = Changes::new();
        changes.record("title", "VPN down", "VPN down");
        changes.record("impact", &"high", &"high");
        changes.record_opt::<str>("assignee_id", None, None);
        changes.record_opt("category", Some("network"), Some("network"));
        assert!(changes.is_empty());
    }

    #[test]
    fn different_values_are_recorded_as_text() {
        let mut changes = Changes::new();
        changes.record("status", &"new", &"assigned");
        changes.record("title", "VPN down", "VPN drops hourly");
        assert_eq!(
            changes.into_vec(),
            [
                change("status", Some("new"), Some("assigned")),
                change("title", Some("VPN down"), Some("VPN drops hourly"))
            ]
        );
    }

    #[test]
    fn setting_and_clearing_optional_fields_are_recorded_with_none() {
        let mut changes = Changes::new();
        changes.record_opt("assignee_id", None, Some("agent-7"));
        changes.record_opt("category", Some("network"), None);
        assert_eq!(
            changes.into_vec(),
            [
                change("assignee_id", None, Some("agent-7")),
                change("category", Some("network"), None)
            ]
        );
    }

    #[test]
    fn field_names_follow_the_recording_order() {
        let mut changes = Changes::new();
        changes.record("urgency", &"low", &"high");
        changes.record("impact", &"medium", &"high");
        changes.record("title", "a", "a");
        assert_eq!(
            changes.field_names().collect::<Vec<_>>(),
            ["urgency", "impact"]
        );
    }

    #[test]
    fn a_field_recorded_twice_keeps_its_first_old_and_last_new_value() {
        let mut changes = Changes::new();
        changes.record("status", &"new", &"assigned");
        changes.record("status", &"assigned", &"in_progress");
        assert_eq!(
            changes.into_vec(),
            [change("status", Some("new"), Some("in_progress"))]
        );
    }

    #[test]
    fn a_field_set_and_set_back_is_not_a_change() {
        let mut changes = Changes::new();
        changes.record_opt("assignee_id", None, Some("agent-7"));
        changes.record("title", "a", "b");
        changes.record_opt("assignee_id", Some("agent-7"), None);
        assert_eq!(changes.field_names().collect::<Vec<_>>(), ["title"]);
    }

    #[test]
    fn changes_iterate_by_reference_and_by_value() {
        let mut changes = Changes::new();
        changes.record("title", "a", "b");
        assert_eq!((&changes).into_iter().count(), 1);
        assert_eq!(changes.iter().count(), 1);
        assert_eq!(
            changes.into_iter().map(|c| c.field).collect::<Vec<_>>(),
            ["title"]
        );
    }

    #[test]
    fn a_field_change_round_trips_through_json() {
        let original = change("assignee_id", None, Some("agent-7"));
        let json = serde_json::to_string(&original).expect("serialize");
        assert_eq!(
            json,
            r#"{"field":"assignee_id","old":null,"new":"agent-7"}"#
        );
        assert_eq!(
            serde_json::from_str::<FieldChange>(&json).expect("deserialize"),
            original
        );
    }

    proptest! {
        #[test]
        fn a_field_is_recorded_exactly_when_its_value_changed(old in 0_u8..4, new in 0_u8..4) {
            let mut changes = Changes::new();
            changes.record("tier", &old, &new);
            prop_assert_eq!(changes.is_empty(), old == new);
        }

        #[test]
        fn successive_values_of_one_field_collapse_to_first_and_last(
            values in prop::collection::vec(prop::option::of(0_u8..3), 2..8),
        ) {
            let mut changes = Changes::new();
            for pair in values.windows(2) {
                changes.record_opt("assignee_id", pair[0].as_ref(), pair[1].as_ref());
            }
            let first = values[0].map(|v| v.to_string());
            let last = values[values.len() - 1].map(|v| v.to_string());
            let expected = if first == last {
                vec![]
            } else {
                vec![FieldChange { field: "assignee_id".into(), old: first, new: last }]
            };
            prop_assert_eq!(changes.into_vec(), expected);
        }
    }
}
