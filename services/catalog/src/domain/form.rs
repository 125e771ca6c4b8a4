//! Form schemas and the answers given to them.
//!
//! One schema serves both sides: a front-end renders the form from it, the server validates the
//! answers against the version the request was made on. A schema is checked when saved (keys,
//! bounds, patterns, defaults, and conditions that name known fields without a cycle), so
//! answer validation can rely on it.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{Localized, Violations};

/// The most fields one form holds (the benchmark's form has 30).
pub const MAX_FIELDS: usize = 200;
/// The longest text answer.
pub const MAX_TEXT: usize = 4000;
/// The most choices a choice field lists.
pub const MAX_CHOICES: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    Number,
    Bool,
    Choice,
    MultiChoice,
    Date,
    Person,
    CiReference,
    AttachmentReference,
}

impl FieldType {
    /// Whether the field's answers are texts (`Value::Text`).
    fn takes_text(self) -> bool {
        matches!(
            self,
            FieldType::Text
                | FieldType::Choice
                | FieldType::Date
                | FieldType::Person
                | FieldType::CiReference
                | FieldType::AttachmentReference
        )
    }

    fn expected(self) -> &'static str {
        match self {
            FieldType::Number => "a number",
            FieldType::Bool => "true or false",
            FieldType::MultiChoice => "a list of choices",
            FieldType::Date => "a date (YYYY-MM-DD)",
            _ => "a text",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    Text(String),
    Number(f64),
    Flag(bool),
    Choices(Vec<String>),
}

impl Value {
    /// The value as the texts an `any_of` test compares.
    fn texts(&self) -> Vec<String> {
        match self {
            Value::Text(text) => vec![text.clone()],
            Value::Number(number) => vec![number.to_string()],
            Value::Flag(flag) => vec![flag.to_string()],
            Value::Choices(choices) => choices.clone(),
        }
    }

    fn is_blank(&self) -> bool {
        match self {
            Value::Text(text) => text.trim().is_empty(),
            Value::Choices(choices) => choices.is_empty(),
            Value::Number(_) | Value::Flag(_) => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Test {
    Present(bool),
    AnyOf(Vec<String>),
    GreaterThan(f64),
    LessThan(f64),
}

/// A test on one field's effective value: a hidden field has none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub field: String,
    pub test: Test,
}

impl Condition {
    pub fn holds(&self, value: Option<&Value>) -> bool {
        match (&self.test, value) {
            (Test::Present(wanted), value) => value.is_some() == *wanted,
            (_, None) => false,
            (Test::AnyOf(accepted), Some(value)) => {
                value.texts().iter().any(|text| accepted.contains(text))
            }
            (Test::GreaterThan(bound), Some(Value::Number(n))) => n > bound,
            (Test::LessThan(bound), Some(Value::Number(n))) => n < bound,
            (Test::GreaterThan(_) | Test::LessThan(_), Some(_)) => false,
        }
    }

    /// Whether the test fits the field it names (a bound on a number, choices on a choice).
    fn fits(&self, field: &Field) -> Result<(), String> {
        match &self.test {
            Test::Present(_) => Ok(()),
            Test::GreaterThan(_) | Test::LessThan(_) if field.field_type != FieldType::Number => {
                Err(format!("{:?} is not a number field", field.key))
            }
            Test::AnyOf(values) if values.is_empty() => Err("any_of lists no value".into()),
            Test::AnyOf(values)
                if matches!(field.field_type, FieldType::Choice | FieldType::MultiChoice)
                    && values.iter().any(|v| !field.choices.contains(v)) =>
            {
                Err(format!("a value is not one of {:?}'s choices", field.key))
            }
            _ => Ok(()),
        }
    }

    /// Checks a condition against a form's fields (conditional approval steps use it too).
    pub fn check_against(&self, fields: &[Field], path: &str, found: &mut Violations) {
        match fields.iter().find(|f| f.key == self.field) {
            None => found.push(path, format!("no field {:?} in the form", self.field)),
            Some(field) => {
                if let Err(problem) = self.fits(field) {
                    found.push(path, problem);
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    pub key: String,
    pub label: Vec<Localized>,
    pub help: Vec<Localized>,
    pub field_type: FieldType,
    pub required: bool,
    pub default: Option<Value>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub pattern: Option<String>,
    pub choices: Vec<String>,
    pub visible_when: Option<Condition>,
}

impl Field {
    pub fn new(key: &str, field_type: FieldType) -> Self {
        Self {
            key: key.to_owned(),
            label: vec![Localized::new("en", key)],
            help: Vec::new(),
            field_type,
            required: false,
            default: None,
            min: None,
            max: None,
            pattern: None,
            choices: Vec::new(),
            visible_when: None,
        }
    }

    /// What is wrong with `value` as this field's answer (the first problem: one per field).
    fn problem(&self, value: &Value, pattern: Option<&regex::Regex>) -> Option<String> {
        let bounds = |n: f64| {
            if let Some(min) = self.min
                && n < min
            {
                return Some(format!("at least {min}"));
            }
            if let Some(max) = self.max
                && n > max
            {
                return Some(format!("at most {max}"));
            }
            None
        };
        match (self.field_type, value) {
            (FieldType::Number, Value::Number(n)) => {
                if !n.is_finite() {
                    Some("a finite number".into())
                } else {
                    bounds(*n).map(|p| format!("must be {p}"))
                }
            }
            (FieldType::Bool, Value::Flag(_)) => None,
            (FieldType::MultiChoice, Value::Choices(choices)) => {
                let mut seen = std::collections::HashSet::new();
                if let Some(bad) = choices.iter().find(|c| !self.choices.contains(c)) {
                    Some(format!("{bad:?} is not one of the choices"))
                } else if !choices.iter().all(|c| seen.insert(c)) {
                    Some("a choice is given twice".into())
                } else {
                    bounds(choices.len() as f64).map(|p| format!("must pick {p} choices"))
                }
            }
            (field_type, Value::Text(text)) if field_type.takes_text() => {
                let length = text.chars().count();
                if length > MAX_TEXT || text.chars().any(|c| c.is_control() && c != '\n') {
                    return Some(format!(
                        "at most {MAX_TEXT} characters, no control characters but line breaks"
                    ));
                }
                match field_type {
                    FieldType::Choice if !self.choices.contains(text) => {
                        Some(format!("{text:?} is not one of the choices"))
                    }
                    FieldType::Date if NaiveDate::parse_from_str(text, "%Y-%m-%d").is_err() => {
                        Some(FieldType::Date.expected().into())
                    }
                    FieldType::Text => {
                        if let Some(p) = bounds(length as f64) {
                            return Some(format!("must have {p} characters"));
                        }
                        match pattern {
                            Some(pattern) if !pattern.is_match(text) => {
                                Some("does not match the field's pattern".into())
                            }
                            _ => None,
                        }
                    }
                    _ => None,
                }
            }
            (field_type, _) => Some(format!("{} expected", field_type.expected())),
        }
    }
}

fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    key.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Compiles a field pattern anchored to the whole text.
fn compile(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(1 << 20)
        .build()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FormSchema {
    pub fields: Vec<Field>,
}

/// Answers that fit a schema: every shown field's value (given or default), no hidden one.
pub type Answers = BTreeMap<String, Value>;

impl FormSchema {
    /// Checks the schema as saved: violations under `path` (`definition.form`).
    pub fn check(&self, path: &str, found: &mut Violations) {
        if self.fields.len() > MAX_FIELDS {
            found.push(
                format!("{path}.fields"),
                format!("at most {MAX_FIELDS} fields"),
            );
        }
        let mut keys: HashMap<&str, usize> = HashMap::new();
        for (i, field) in self.fields.iter().enumerate() {
            let at = format!("{path}.fields[{i}]");
            if !valid_key(&field.key) {
                found.push(
                    format!("{at}.key"),
                    "a key of [a-z][a-z0-9_]*, at most 64 characters",
                );
            } else if keys.insert(&field.key, i).is_some() {
                found.push(format!("{at}.key"), "another field has this key");
            }
            Localized::check(&field.label, &format!("{at}.label"), 200, true, found);
            Localized::check(&field.help, &format!("{at}.help"), 2000, false, found);
            if let (Some(min), Some(max)) = (field.min, field.max)
                && (min > max || !min.is_finite() || !max.is_finite())
            {
                found.push(format!("{at}.min"), "min must not exceed max");
            }
            let choice = matches!(field.field_type, FieldType::Choice | FieldType::MultiChoice);
            if choice && (field.choices.is_empty() || field.choices.len() > MAX_CHOICES) {
                found.push(
                    format!("{at}.choices"),
                    format!("between 1 and {MAX_CHOICES} choices"),
                );
            } else if !choice && !field.choices.is_empty() {
                found.push(format!("{at}.choices"), "only choice fields list choices");
            }
            let mut pattern = None;
            if let Some(text) = &field.pattern {
                if field.field_type != FieldType::Text {
                    found.push(format!("{at}.pattern"), "only text fields have a pattern");
                } else {
                    match compile(text) {
                        Ok(compiled) => pattern = Some(compiled),
                        Err(_) => found.push(format!("{at}.pattern"), "not a regular expression"),
                    }
                }
            }
            if let Some(default) = &field.default
                && let Some(problem) = field.problem(default, pattern.as_ref())
            {
                found.push(format!("{at}.default_value"), problem);
            }
        }
        for (i, field) in self.fields.iter().enumerate() {
            let Some(condition) = &field.visible_when else {
                continue;
            };
            let at = format!("{path}.fields[{i}].visible_when");
            if condition.field == field.key {
                found.push(at, "a field's visibility cannot depend on itself");
            } else {
                condition.check_against(&self.fields, &at, found);
            }
        }
        if let Some(cycle) = self.cycle() {
            found.push(
                format!("{path}.fields"),
                format!("visibility conditions form a cycle: {}", cycle.join(" → ")),
            );
        }
    }

    /// A cycle of visibility conditions (field → the field its visibility depends on), if any.
    fn cycle(&self) -> Option<Vec<String>> {
        let depends: HashMap<&str, &str> = self
            .fields
            .iter()
            .filter_map(|f| {
                f.visible_when
                    .as_ref()
                    .map(|c| (f.key.as_str(), c.field.as_str()))
            })
            .collect();
        // Each field depends on at most one: following the chain from every start finds any cycle.
        for start in self.fields.iter().map(|f| f.key.as_str()) {
            let mut path = vec![start];
            let mut at = start;
            while let Some(next) = depends.get(at) {
                if let Some(i) = path.iter().position(|k| k == next) {
                    let mut cycle: Vec<String> =
                        path[i..].iter().map(|k| (*k).to_owned()).collect();
                    cycle.push((*next).to_owned());
                    return Some(cycle);
                }
                path.push(next);
                at = next;
            }
        }
        None
    }

    pub fn field(&self, key: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.key == key)
    }

    /// Validates answers, one violation per field (`answers.<key>`), and resolves them: defaults
    /// filled in for shown fields, hidden fields left out. The schema must have passed
    /// [`FormSchema::check`] (a pattern that does not compile is then skipped, not trusted).
    pub fn validate(&self, given: &[(String, Value)]) -> Result<Answers, Violations> {
        let mut found = Violations::new();
        let mut answers: HashMap<&str, &Value> = HashMap::new();
        for (key, value) in given {
            let at = format!("answers.{key}");
            if self.field(key).is_none() {
                found.push(at, "no such field in the form");
            } else if answers.contains_key(key.as_str()) {
                found.push(at, "answered twice");
            } else {
                answers.insert(key.as_str(), value);
            }
        }
        // Effective values in dependency order: a condition reads the value its field ends with.
        let mut resolved: HashMap<&str, Option<Value>> = HashMap::new();
        for field in &self.fields {
            self.resolve(field, &answers, &mut resolved, 0);
        }
        for field in &self.fields {
            let at = format!("answers.{}", field.key);
            let shown = self.shown(field, &resolved);
            match answers.get(field.key.as_str()) {
                Some(_) if !shown => found.push(at, "this field is hidden by its condition"),
                Some(value) if value.is_blank() && field.required => found.push(at, "required"),
                Some(value) if value.is_blank() => {}
                Some(value) => {
                    let pattern = field.pattern.as_deref().and_then(|p| compile(p).ok());
                    if let Some(problem) = field.problem(value, pattern.as_ref()) {
                        found.push(at, problem);
                    }
                }
                None if shown && field.required && field.default.is_none() => {
                    found.push(at, "required")
                }
                None => {}
            }
        }
        found.into_result()?;
        Ok(resolved
            .into_iter()
            .filter_map(|(key, value)| value.map(|v| (key.to_owned(), v)))
            .collect())
    }

    fn shown(&self, field: &Field, resolved: &HashMap<&str, Option<Value>>) -> bool {
        field
            .visible_when
            .as_ref()
            .is_none_or(|c| c.holds(resolved.get(c.field.as_str()).and_then(Option::as_ref)))
    }

    /// The field's effective value: none when hidden, else the non-blank answer or the default.
    fn resolve<'a>(
        &'a self,
        field: &'a Field,
        answers: &HashMap<&str, &Value>,
        resolved: &mut HashMap<&'a str, Option<Value>>,
        depth: usize,
    ) -> Option<Value> {
        if let Some(value) = resolved.get(field.key.as_str()) {
            return value.clone();
        }
        // A checked schema has no cycle; the depth bound keeps an unchecked one from looping.
        let shown = match &field.visible_when {
            None => true,
            Some(_) if depth > self.fields.len() => false,
            Some(condition) => {
                let source = self
                    .field(&condition.field)
                    .and_then(|f| self.resolve(f, answers, resolved, depth + 1));
                condition.holds(source.as_ref())
            }
        };
        let value = shown
            .then(|| {
                answers
                    .get(field.key.as_str())
                    .filter(|v| !v.is_blank())
                    .map(|v| (*v).clone())
                    .or_else(|| field.default.clone())
            })
            .flatten();
        resolved.insert(&field.key, value.clone());
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    fn answers(pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    /// A laptop form: model (choice), a justification shown only for the "pro" model, a cost
    /// with bounds, an optional delivery date.
    fn laptop() -> FormSchema {
        let mut model = Field::new("model", FieldType::Choice);
        model.required = true;
        model.choices = vec!["standard".into(), "pro".into()];
        let mut justification = Field::new("justification", FieldType::Text);
        justification.required = true;
        justification.min = Some(10.0);
        justification.visible_when = Some(Condition {
            field: "model".into(),
            test: Test::AnyOf(vec!["pro".into()]),
        });
        let mut cost = Field::new("cost", FieldType::Number);
        cost.min = Some(0.0);
        cost.max = Some(5000.0);
        cost.default = Some(Value::Number(1200.0));
        let mut code = Field::new("cost_centre", FieldType::Text);
        code.pattern = Some("CC-[0-9]{4}".into());
        let delivery = Field::new("delivery", FieldType::Date);
        FormSchema {
            fields: vec![model, justification, cost, code, delivery],
        }
    }

    fn checked(schema: &FormSchema) -> Violations {
        let mut found = Violations::new();
        schema.check("form", &mut found);
        found
    }

    fn fields_of(violations: &Violations) -> Vec<String> {
        violations.iter().map(|(f, _)| f.clone()).collect()
    }

    #[test]
    fn a_sound_schema_passes_its_check() {
        assert!(checked(&laptop()).is_empty(), "{}", checked(&laptop()));
    }

    #[test]
    fn a_condition_naming_an_unknown_field_is_refused() {
        let mut schema = laptop();
        schema.fields[1].visible_when = Some(Condition {
            field: "colour".into(),
            test: Test::Present(true),
        });
        assert_eq!(
            fields_of(&checked(&schema)),
            ["form.fields[1].visible_when"]
        );
    }

    #[test]
    fn conditions_forming_a_cycle_are_refused() {
        let mut schema = laptop();
        schema.fields[0].visible_when = Some(Condition {
            field: "cost".into(),
            test: Test::Present(true),
        });
        schema.fields[2].visible_when = Some(Condition {
            field: "justification".into(),
            test: Test::Present(true),
        });
        let found = checked(&schema);
        assert_eq!(fields_of(&found), ["form.fields"]);
        assert!(found.to_string().contains("cycle"), "{found}");
    }

    #[test]
    fn a_field_depending_on_itself_is_refused() {
        let mut schema = laptop();
        schema.fields[2].visible_when = Some(Condition {
            field: "cost".into(),
            test: Test::GreaterThan(1.0),
        });
        assert!(fields_of(&checked(&schema)).contains(&"form.fields[2].visible_when".to_owned()));
    }

    #[test]
    fn bad_keys_bounds_patterns_defaults_and_choices_are_each_refused() {
        let mut schema = laptop();
        schema.fields[0].choices.clear();
        schema.fields[2].key = "model".into();
        schema.fields[2].default = None;
        schema.fields[2].min = Some(10.0);
        schema.fields[2].max = Some(1.0);
        schema.fields[3].pattern = Some("(".into());
        schema.fields[4].default = Some(text("next week"));
        schema.fields.push(Field::new("Bad Key", FieldType::Bool));
        assert_eq!(
            fields_of(&checked(&schema)),
            [
                "form.fields[0].choices",
                "form.fields[2].key",
                "form.fields[2].min",
                "form.fields[3].pattern",
                "form.fields[4].default_value",
                "form.fields[5].key",
                // "pro" is no longer one of the model's (now empty) choices.
                "form.fields[1].visible_when",
            ]
        );
    }

    #[test]
    fn a_number_bound_on_a_text_field_condition_is_refused() {
        let mut schema = laptop();
        schema.fields[4].visible_when = Some(Condition {
            field: "model".into(),
            test: Test::GreaterThan(3.0),
        });
        assert_eq!(
            fields_of(&checked(&schema)),
            ["form.fields[4].visible_when"]
        );
    }

    #[test]
    fn valid_answers_resolve_with_defaults_and_without_hidden_fields() {
        let resolved = laptop()
            .validate(&answers(&[("model", text("standard"))]))
            .expect("accepted");
        assert_eq!(resolved.get("model"), Some(&text("standard")));
        assert_eq!(resolved.get("cost"), Some(&Value::Number(1200.0)));
        assert!(!resolved.contains_key("justification"));
        assert!(!resolved.contains_key("delivery"));
    }

    #[test]
    fn a_field_shown_by_its_condition_becomes_required() {
        let found = laptop()
            .validate(&answers(&[("model", text("pro"))]))
            .expect_err("refused");
        assert_eq!(fields_of(&found), ["answers.justification"]);
        let resolved = laptop()
            .validate(&answers(&[
                ("model", text("pro")),
                ("justification", text("I render video all day")),
            ]))
            .expect("accepted");
        assert!(resolved.contains_key("justification"));
    }

    #[test]
    fn every_bad_answer_gets_one_violation_of_its_own() {
        let found = laptop()
            .validate(&answers(&[
                ("justification", text("answered while hidden")),
                ("cost", Value::Number(9000.0)),
                ("cost_centre", text("CC-12")),
                ("delivery", Value::Flag(true)),
                ("colour", text("red")),
            ]))
            .expect_err("refused");
        assert_eq!(
            fields_of(&found),
            [
                "answers.colour",
                "answers.model",
                "answers.justification",
                "answers.cost",
                "answers.cost_centre",
                "answers.delivery",
            ]
        );
    }

    #[test]
    fn wrong_types_and_unknown_choices_are_refused() {
        let found = laptop()
            .validate(&answers(&[
                ("model", text("gold")),
                ("cost", text("cheap")),
                ("delivery", text("2026-02-30")),
            ]))
            .expect_err("refused");
        assert_eq!(
            fields_of(&found),
            ["answers.model", "answers.cost", "answers.delivery"]
        );
    }

    #[test]
    fn an_answer_given_twice_is_refused() {
        let found = laptop()
            .validate(&answers(&[
                ("model", text("standard")),
                ("model", text("pro")),
            ]))
            .expect_err("refused");
        assert_eq!(fields_of(&found), ["answers.model"]);
    }

    #[test]
    fn a_chain_of_conditions_hides_what_depends_on_a_hidden_field() {
        let mut schema = laptop();
        // Delivery only when a justification is present (itself only for "pro").
        schema.fields[4].visible_when = Some(Condition {
            field: "justification".into(),
            test: Test::Present(true),
        });
        assert!(checked(&schema).is_empty());
        let found = schema
            .validate(&answers(&[
                ("model", text("standard")),
                ("delivery", text("2026-01-10")),
            ]))
            .expect_err("refused");
        assert_eq!(fields_of(&found), ["answers.delivery"]);
        assert!(
            schema
                .validate(&answers(&[
                    ("model", text("pro")),
                    ("justification", text("ten chars or more")),
                    ("delivery", text("2026-01-10")),
                ]))
                .is_ok()
        );
    }

    #[test]
    fn multi_choice_answers_pick_known_choices_once_within_bounds() {
        let mut apps = Field::new("apps", FieldType::MultiChoice);
        apps.choices = vec!["crm".into(), "erp".into(), "wiki".into()];
        apps.max = Some(2.0);
        let schema = FormSchema { fields: vec![apps] };
        assert!(checked(&schema).is_empty());
        let pick = |c: &[&str]| {
            schema.validate(&answers(&[(
                "apps",
                Value::Choices(c.iter().map(|s| (*s).to_owned()).collect()),
            )]))
        };
        assert!(pick(&["crm", "wiki"]).is_ok());
        assert!(pick(&["crm", "crm"]).is_err());
        assert!(pick(&["crm", "hr"]).is_err());
        assert!(pick(&["crm", "erp", "wiki"]).is_err());
    }

    #[test]
    fn conditions_compare_numbers_flags_and_presence() {
        let over = Condition {
            field: "cost".into(),
            test: Test::GreaterThan(1000.0),
        };
        assert!(over.holds(Some(&Value::Number(1000.5))));
        assert!(!over.holds(Some(&Value::Number(1000.0))));
        assert!(!over.holds(None));
        let flag = Condition {
            field: "remote".into(),
            test: Test::AnyOf(vec!["true".into()]),
        };
        assert!(flag.holds(Some(&Value::Flag(true))));
        assert!(!flag.holds(Some(&Value::Flag(false))));
        let absent = Condition {
            field: "x".into(),
            test: Test::Present(false),
        };
        assert!(absent.holds(None));
        assert!(!absent.holds(Some(&text("y"))));
    }
}
