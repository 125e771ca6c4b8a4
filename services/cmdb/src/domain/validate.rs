//! Field validation that collects every violation instead of stopping at the first.
//!
//! A client fixing a form — or an integrator fixing an import batch — wants all of its mistakes
//! at once, so each helper pushes onto a shared [`Violations`] and the API answers
//! `INVALID_ARGUMENT` with all of them as `google.rpc.BadRequest` field violations. Field names
//! are paths as the API spells them: `name`, `attributes.fqdn`, `items[3].attributes.port`,
//! `relationships[0].target`. Lengths are counted in characters, not bytes, because that is what
//! people type and what the limits are documented in.

use std::fmt;

/// Longest CI name, in characters.
pub const NAME_MAX: usize = 200;
/// Longest class label, in characters.
pub const LABEL_MAX: usize = 100;
/// Longest opaque id (a batch-local id, a group, a CI reference), in characters.
pub const ID_MAX: usize = 200;
/// Longest data source name (`api`, `servicenow-discovery`), in characters.
pub const SOURCE_MAX: usize = 100;
/// Longest class, attribute or rule name, in characters.
pub const IDENTIFIER_MAX: usize = 63;

/// One invalid field, named as the API names it (`items[2].attributes.fqdn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

/// Every violation found in one request, in the order they were found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Appends every violation of `other`, with `prefix` put before each field name
    /// (`items[3].` + `attributes.port`).
    pub fn extend_prefixed(&mut self, prefix: &str, other: Self) {
        for violation in other {
            self.push(
                format!("{prefix}{}", violation.field),
                violation.description,
            );
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, FieldViolation> {
        self.0.iter()
    }

    pub fn into_vec(self) -> Vec<FieldViolation> {
        self.0
    }

    /// `Ok` when nothing was found, so a handler can end its checks with `?`.
    pub fn into_result(self) -> Result<(), Self> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, violation) in self.0.iter().enumerate() {
            if position > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{violation}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Violations {}

impl IntoIterator for Violations {
    type Item = FieldViolation;
    type IntoIter = std::vec::IntoIter<FieldViolation>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Violations {
    type Item = &'a FieldViolation;
    type IntoIter = std::slice::Iter<'a, FieldViolation>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Text on one line (a CI name, a label): not blank, at most `max_chars`, no control characters
/// at all. Blankness is judged on the trimmed value; the length on the value as given, because
/// that is what gets stored.
pub fn single_line(field: &str, value: &str, max_chars: usize, violations: &mut Violations) {
    if value.trim().is_empty() {
        violations.push(field, "must not be blank");
    }
    let chars = value.chars().count();
    if chars > max_chars {
        violations.push(
            field,
            format!("must be at most {max_chars} characters, not {chars}"),
        );
    }
    if let Some((position, character)) = first_forbidden_control(value, LineBreaks::Rejected) {
        violations.push(
            field,
            format!(
                "must be a single line without control characters (found {})",
                describe_character(position, character)
            ),
        );
    }
}

/// An opaque id chosen elsewhere (a batch-local id, a CI reference, a source name): 1 to
/// `max_chars` characters without whitespace or control characters, so it can be quoted in
/// messages and used as a key without escaping surprises.
pub fn opaque(field: &str, value: &str, max_chars: usize, violations: &mut Violations) {
    if let Some(problem) = opaque_problem(value, max_chars) {
        violations.push(field, problem);
    }
}

/// What is wrong with an opaque id, if anything; the first problem only, since an empty id has
/// no other.
pub(crate) fn opaque_problem(value: &str, max_chars: usize) -> Option<String> {
    if value.is_empty() {
        return Some("must not be empty".to_owned());
    }
    let chars = value.chars().count();
    if chars > max_chars {
        return Some(format!(
            "must be at most {max_chars} characters, not {chars}"
        ));
    }
    value
        .chars()
        .enumerate()
        .find(|&(_, c)| c.is_whitespace() || c.is_control())
        .map(|(position, character)| {
            format!(
                "must not contain whitespace or control characters (found {})",
                describe_character(position, character)
            )
        })
}

/// Whether `value` is a snake_case identifier — `[a-z][a-z0-9_]*`, at most
/// [`IDENTIFIER_MAX`] characters, no double or trailing underscore. Class, attribute and rule
/// names are identifiers because they become column values, JSON keys and field paths.
pub fn is_identifier(value: &str) -> bool {
    let mut bytes = value.bytes();
    let Some(first) = bytes.next() else {
        return false;
    };
    value.len() <= IDENTIFIER_MAX
        && first.is_ascii_lowercase()
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !value.ends_with('_')
        && !value.contains("__")
}

/// The identifier pattern in words, for clients.
pub const IDENTIFIER_RULE: &str = "must be snake_case: a lowercase letter, then lowercase letters, digits and single underscores, at most 63 characters";

/// Whether control characters other than the usual line breaks are acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineBreaks {
    /// `\n`, `\r` and `\t` are accepted.
    Allowed,
    /// Every control character is rejected.
    Rejected,
}

/// The first control character not allowed by `line_breaks`, with its character position.
pub(crate) fn first_forbidden_control(
    value: &str,
    line_breaks: LineBreaks,
) -> Option<(usize, char)> {
    value.chars().enumerate().find(|&(_, c)| {
        c.is_control() && (line_breaks == LineBreaks::Rejected || !matches!(c, '\n' | '\r' | '\t'))
    })
}

/// Describes a forbidden character so that invisible ones can be found: "U+0007 at character 5".
pub(crate) fn describe_character(position: usize, character: char) -> String {
    format!(
        "U+{:04X} at character {}",
        u32::from(character),
        position + 1
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn check(run: impl FnOnce(&mut Violations)) -> Vec<FieldViolation> {
        let mut violations = Violations::new();
        run(&mut violations);
        violations.into_vec()
    }

    fn descriptions(run: impl FnOnce(&mut Violations)) -> Vec<String> {
        check(run).into_iter().map(|v| v.description).collect()
    }

    #[test]
    fn no_violations_is_ok() {
        assert_eq!(Violations::new().into_result(), Ok(()));
    }

    #[test]
    fn any_violation_is_an_error_that_keeps_them_all_in_order() {
        let mut violations = Violations::new();
        violations.push("name", "must not be blank");
        violations.push("attributes.port", "must be an integer");
        let error = violations.into_result().expect_err("two violations");
        assert_eq!(
            error.to_string(),
            "name: must not be blank; attributes.port: must be an integer"
        );
    }

    #[test]
    fn prefixed_violations_name_their_place_in_a_batch() {
        let mut inner = Violations::new();
        inner.push("attributes.port", "must be an integer");
        let mut outer = Violations::new();
        outer.extend_prefixed("items[3].", inner);
        assert_eq!(
            outer.iter().map(|v| v.field.as_str()).collect::<Vec<_>>(),
            ["items[3].attributes.port"]
        );
    }

    #[test]
    fn a_single_line_must_be_visible_text_within_the_limit() {
        assert_eq!(check(|v| single_line("name", "web-01", NAME_MAX, v)), []);
        assert_eq!(
            descriptions(|v| single_line("name", "  ", NAME_MAX, v)),
            ["must not be blank"]
        );
        assert_eq!(
            descriptions(|v| single_line("name", "abcdef", 5, v)),
            ["must be at most 5 characters, not 6"]
        );
        assert_eq!(
            descriptions(|v| single_line("name", "a\nb", NAME_MAX, v)),
            ["must be a single line without control characters (found U+000A at character 2)"]
        );
    }

    #[test]
    fn an_opaque_id_has_no_whitespace_and_fits() {
        assert_eq!(check(|v| opaque("local_id", "srv-1", ID_MAX, v)), []);
        assert_eq!(
            descriptions(|v| opaque("local_id", "", ID_MAX, v)),
            ["must not be empty"]
        );
        assert_eq!(
            descriptions(|v| opaque("local_id", "a b", ID_MAX, v)),
            ["must not contain whitespace or control characters (found U+0020 at character 2)"]
        );
        assert_eq!(
            descriptions(|v| opaque("local_id", "abc", 2, v)),
            ["must be at most 2 characters, not 3"]
        );
    }

    #[test]
    fn identifiers_are_snake_case() {
        for valid in ["server", "business_service", "os2", &"a".repeat(63)] {
            assert!(is_identifier(valid), "{valid}");
        }
        for invalid in [
            "",
            "Server",
            "2fa",
            "_x",
            "x_",
            "a__b",
            "a-b",
            "a.b",
            &"a".repeat(64),
        ] {
            assert!(!is_identifier(invalid), "{invalid}");
        }
    }

    proptest! {
        #[test]
        fn single_line_text_is_accepted_exactly_when_it_is_visible_non_blank_and_fits(
            text in "\\PC{0,12}|.*[\\x00-\\x1f\\x7f].*",
        ) {
            let found = check(|v| single_line("name", &text, 10, v));
            let fits = text.chars().count() <= 10;
            let visible = !text.chars().any(char::is_control);
            let non_blank = !text.trim().is_empty();
            prop_assert_eq!(found.is_empty(), fits && visible && non_blank);
        }
    }
}
