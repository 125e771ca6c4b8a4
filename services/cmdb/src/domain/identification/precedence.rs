//! Which source's value wins, per field.

use super::*;

/// Which source's value wins, per field.
///
/// An order lists sources from highest to lowest rank. [`API_SOURCE`] — people and
/// integrations writing through the API — ranks above every source unless an order lists it
/// explicitly; any other source an order does not list ranks below all listed ones. A source
/// may always overwrite its own values, and a field without provenance (a default) is open to
/// all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourcePrecedence {
    /// For every field without an order of its own.
    pub default_order: Vec<String>,
    /// Keyed by `<field>` (`fqdn`, `name`) or `<class>.<field>` (`server.fqdn`); the
    /// class-qualified order wins. Fields are attribute names or core field names.
    pub by_field: BTreeMap<String, Vec<String>>,
}

/// Most fields one precedence may order on their own.
pub const MAX_ORDERED_FIELDS: usize = 500;

impl SourcePrecedence {
    /// `SetSourcePrecedence`: the orders as given, checked — every source a valid name listed
    /// once per order, at most [`MAX_ORDERED_FIELDS`] fields, each a field (`os`) or a class and
    /// a field (`server.os`) — with every problem named by its request path. `default_order` is
    /// `None` when the request gives none (every source then ranks by the built-in rule alone).
    pub fn checked(
        default_order: Option<Vec<String>>,
        by_field: BTreeMap<String, Vec<String>>,
    ) -> Result<Self, Violations> {
        let mut violations = Violations::new();
        let mut check_order = |field: &str, order: &[String]| {
            for (index, source) in order.iter().enumerate() {
                validate::opaque(
                    &format!("{field}.sources[{index}]"),
                    source,
                    SOURCE_MAX,
                    &mut violations,
                );
            }
            let mut seen = BTreeSet::new();
            if order.iter().any(|source| !seen.insert(source)) {
                violations.push(format!("{field}.sources"), "a source is listed twice");
            }
        };
        if let Some(order) = &default_order {
            check_order("precedence.default_order", order);
        }
        for (key, order) in &by_field {
            check_order(&format!("precedence.by_field[{key}]"), order);
        }
        if by_field.len() > MAX_ORDERED_FIELDS {
            violations.push(
                "precedence.by_field",
                format!("at most {MAX_ORDERED_FIELDS} fields"),
            );
        }
        for key in by_field.keys() {
            if key.is_empty()
                || key.split('.').count() > 2
                || !key.split('.').all(validate::is_identifier)
            {
                violations.push(
                    format!("precedence.by_field[{key}]"),
                    "a field (`os`) or a class and a field (`server.os`), snake_case",
                );
            }
        }
        violations.into_result()?;
        Ok(Self {
            default_order: default_order.unwrap_or_default(),
            by_field,
        })
    }

    /// The order that governs `field` of a CI of `class`.
    pub fn order_for(&self, class: &str, field: &str) -> &[String] {
        self.by_field
            .get(&format!("{class}.{field}"))
            .or_else(|| self.by_field.get(field))
            .unwrap_or(&self.default_order)
    }

    /// The rank of `source` for `field` of a CI of `class`: 0 is the highest.
    pub fn rank(&self, class: &str, field: &str, source: &str) -> usize {
        let order = self.order_for(class, field);
        match order.iter().position(|listed| listed == source) {
            Some(position) => position + 1,
            None if source == API_SOURCE => 0,
            None => order.len() + 1,
        }
    }

    /// Whether a value from `incoming` may replace the current value set with `current`.
    pub fn may_overwrite(
        &self,
        class: &str,
        field: &str,
        incoming: &str,
        current: Option<&Provenance>,
    ) -> bool {
        match current {
            None => true,
            Some(current) if current.source == incoming => true,
            Some(current) => {
                self.rank(class, field, incoming) <= self.rank(class, field, &current.source)
            }
        }
    }
}
