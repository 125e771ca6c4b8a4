//! Field validation that collects every violation instead of stopping at the first.
//!
//! A client fixing a form wants all of its mistakes at once, so each helper pushes onto a shared
//! [`Violations`] and the API answers `INVALID_ARGUMENT` with all of them as
//! `google.rpc.BadRequest` field violations. Lengths are counted in characters, not bytes,
//! because that is what people type and what the limits are documented in.

use std::collections::HashSet;
use std::fmt;
use std::hash::Hash;

use desk_kit::ids::is_tenant_id;

/// Longest ticket title, in characters.
pub const TITLE_MAX: usize = 200;
/// Longest ticket description, in characters.
pub const DESCRIPTION_MAX: usize = 20_000;
/// Longest comment, in characters.
pub const COMMENT_MAX: usize = 20_000;
/// Longest resolution note, in characters.
pub const RESOLUTION_NOTES_MAX: usize = 10_000;
/// Longest category, in characters.
pub const CATEGORY_MAX: usize = 100;
/// Longest opaque id (user, group, CI, article), in characters.
pub const ID_MAX: usize = 200;
/// Longest idempotency key, in characters.
pub const IDEMPOTENCY_KEY_MAX: usize = 128;
/// Most watchers on one ticket.
pub const MAX_WATCHERS: usize = 50;
/// Most affected services or CIs on one ticket.
pub const MAX_AFFECTED: usize = 100;
/// Longest single worklog entry: one day.
pub const WORKLOG_MAX_MINUTES: i64 = 24 * 60;
/// Longest free-text note on an assignment, transition, reopen, worklog entry or rating.
pub const NOTE_MAX: usize = 2_000;
/// Longest search text in a list call.
pub const SEARCH_TEXT_MAX: usize = 200;

/// One invalid field, named as the API names it (`title`, `watcher_ids[3]`).
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

/// Text on one line (a title, a category): no control characters at all, newlines included.
///
/// `min_chars` applies to the trimmed value, so whitespace alone never counts as content; with
/// `min_chars == 0` the field may be empty. `max_chars` applies to the value as given, because
/// that is what gets stored.
pub fn single_line(
    field: &str,
    value: &str,
    min_chars: usize,
    max_chars: usize,
    violations: &mut Violations,
) {
    text(
        field,
        value,
        min_chars,
        max_chars,
        LineBreaks::Rejected,
        violations,
    );
}

/// A ticket title: one line of 1 to [`TITLE_MAX`] characters, some of them visible.
///
/// A title is what people scan a queue by, so one that shows as nothing is refused like a blank
/// one: only whitespace and [invisible](is_invisible) characters (zero-width spaces and joiners,
/// byte-order marks, bidi controls, fillers) is no title. Invisible characters among visible
/// ones stay: joiners are part of how some scripts and emoji are written.
pub fn title(field: &str, value: &str, violations: &mut Violations) {
    single_line(field, value, 1, TITLE_MAX, violations);
    let first_invisible = value.chars().enumerate().find(|&(_, c)| is_invisible(c));
    if let Some((position, character)) = first_invisible
        && value.chars().all(|c| c.is_whitespace() || is_invisible(c))
    {
        violations.push(
            field,
            format!(
                "must have visible characters, not only invisible ones (found {})",
                describe_character(position, character)
            ),
        );
    }
}

/// Whether `c` shows as nothing: a format character (Unicode general category `Cf`: U+200B..
/// U+200F, U+2060.., U+FEFF, bidi controls, tags, …) or another default-ignorable code point
/// (variation selectors, the combining grapheme joiner, Hangul fillers), or the blank braille
/// pattern, which renders as an empty cell and is the usual way to fake an empty name. The
/// ranges are those of Unicode 15.1, written out because no crate of the workspace carries the
/// character database.
pub fn is_invisible(c: char) -> bool {
    let code = u32::from(c);
    INVISIBLE_RANGES
        .iter()
        .any(|&(first, last)| (first..=last).contains(&code))
}

/// `Cf` ∪ `Default_Ignorable_Code_Point` ∪ {U+2800}, as inclusive ranges in code point order.
const INVISIBLE_RANGES: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),   // soft hyphen
    (0x034F, 0x034F),   // combining grapheme joiner
    (0x0600, 0x0605),   // Arabic number signs
    (0x061C, 0x061C),   // Arabic letter mark
    (0x06DD, 0x06DD),   // Arabic end of ayah
    (0x070F, 0x070F),   // Syriac abbreviation mark
    (0x0890, 0x0891),   // Arabic pound and piastre marks above
    (0x08E2, 0x08E2),   // Arabic disputed end of ayah
    (0x115F, 0x1160),   // Hangul choseong and jungseong fillers
    (0x17B4, 0x17B5),   // Khmer inherent vowels
    (0x180B, 0x180F),   // Mongolian variation selectors and vowel separator
    (0x200B, 0x200F), // zero-width space, non-joiner, joiner; left-to-right and right-to-left marks
    (0x202A, 0x202E), // bidi embeddings and overrides
    (0x2060, 0x206F), // word joiner, invisible operators, bidi isolates, deprecated format characters
    (0x2800, 0x2800), // braille pattern blank
    (0x3164, 0x3164), // Hangul filler
    (0xFE00, 0xFE0F), // variation selectors
    (0xFEFF, 0xFEFF), // zero-width no-break space (byte-order mark)
    (0xFFA0, 0xFFA0), // halfwidth Hangul filler
    (0xFFF0, 0xFFFB), // reserved default-ignorables, interlinear annotation controls
    (0x110BD, 0x110BD), // Kaithi number sign
    (0x110CD, 0x110CD), // Kaithi number sign above
    (0x13430, 0x1343F), // Egyptian hieroglyph format controls
    (0x1BCA0, 0x1BCA3), // shorthand format controls
    (0x1D173, 0x1D17A), // musical symbol beam and phrase controls
    (0xE0000, 0xE0FFF), // language tag, tag characters, variation selectors supplement
];

/// Text that may span lines (a description, a comment): control characters are rejected except
/// line feed, carriage return and tab. Lengths as in [`single_line`].
pub fn multi_line(
    field: &str,
    value: &str,
    min_chars: usize,
    max_chars: usize,
    violations: &mut Violations,
) {
    text(
        field,
        value,
        min_chars,
        max_chars,
        LineBreaks::Allowed,
        violations,
    );
}

/// An optional category: absent is fine; present, it is one non-blank line of at most
/// [`CATEGORY_MAX`] characters.
pub fn category(field: &str, value: Option<&str>, violations: &mut Violations) {
    if let Some(value) = value {
        single_line(field, value, 1, CATEGORY_MAX, violations);
    }
}

/// An opaque id issued elsewhere (a user's `sub`, a group, a CI): 1 to [`ID_MAX`] characters
/// without whitespace or control characters.
pub fn id(field: &str, value: &str, violations: &mut Violations) {
    opaque(field, value, ID_MAX, violations);
}

/// A client-chosen idempotency key: 1 to [`IDEMPOTENCY_KEY_MAX`] characters without whitespace
/// or control characters.
pub fn idempotency_key(field: &str, value: &str, violations: &mut Violations) {
    opaque(field, value, IDEMPOTENCY_KEY_MAX, violations);
}

/// A tenant id, `[a-z0-9][a-z0-9_-]{0,62}`: it appears in database keys, stream names and
/// subjects, so it is kept to characters that are safe in all of them.
pub fn tenant_id(field: &str, value: &str, violations: &mut Violations) {
    if !is_tenant_id(value) {
        violations.push(field, TENANT_ID_RULE);
    }
}

/// The tenant id pattern in words, for clients.
const TENANT_ID_RULE: &str =
    "must be 1 to 63 characters of a-z, 0-9, '_' and '-', starting with a letter or digit";

/// Time spent in one worklog entry: 1 to [`WORKLOG_MAX_MINUTES`] minutes.
pub fn worklog_minutes(field: &str, minutes: i64, violations: &mut Violations) {
    if !(1..=WORKLOG_MAX_MINUTES).contains(&minutes) {
        violations.push(
            field,
            format!("must be between 1 and {WORKLOG_MAX_MINUTES} minutes, not {minutes}"),
        );
    }
}

/// A list may hold at most `max` items.
pub fn max_items(field: &str, count: usize, max: usize, violations: &mut Violations) {
    if count > max {
        violations.push(field, format!("must have at most {max} items, not {count}"));
    }
}

/// A list may not repeat an item; each repeated value is reported once.
pub fn unique<T: Eq + Hash + fmt::Display>(field: &str, items: &[T], violations: &mut Violations) {
    let mut seen = HashSet::new();
    let mut reported = HashSet::new();
    for item in items {
        if !seen.insert(item) && reported.insert(item) {
            violations.push(field, format!("contains \"{item}\" more than once"));
        }
    }
}

/// A list of ids (watchers, affected CIs): at most `max` of them, each a valid [`id`] (reported
/// as `field[index]`), none repeated.
pub fn id_list<S: AsRef<str>>(field: &str, values: &[S], max: usize, violations: &mut Violations) {
    max_items(field, values.len(), max, violations);
    for (index, value) in values.iter().enumerate() {
        id(&format!("{field}[{index}]"), value.as_ref(), violations);
    }
    let values: Vec<&str> = values.iter().map(AsRef::as_ref).collect();
    unique(field, &values, violations);
}

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

fn text(
    field: &str,
    value: &str,
    min_chars: usize,
    max_chars: usize,
    line_breaks: LineBreaks,
    violations: &mut Violations,
) {
    let content_chars = value.trim().chars().count();
    if content_chars < min_chars {
        if content_chars == 0 {
            violations.push(field, "must not be blank");
        } else {
            violations.push(field, format!("must be at least {min_chars} characters"));
        }
    }
    let chars = value.chars().count();
    if chars > max_chars {
        violations.push(
            field,
            format!("must be at most {max_chars} characters, not {chars}"),
        );
    }
    if let Some((position, character)) = first_forbidden_control(value, line_breaks) {
        let rule = match line_breaks {
            LineBreaks::Allowed => "must not contain control characters",
            LineBreaks::Rejected => "must be a single line without control characters",
        };
        violations.push(
            field,
            format!("{rule} (found {})", describe_character(position, character)),
        );
    }
}

fn opaque(field: &str, value: &str, max_chars: usize, violations: &mut Violations) {
    if value.is_empty() {
        violations.push(field, "must not be empty");
        return;
    }
    let chars = value.chars().count();
    if chars > max_chars {
        violations.push(
            field,
            format!("must be at most {max_chars} characters, not {chars}"),
        );
    }
    if let Some((position, character)) = value
        .chars()
        .enumerate()
        .find(|&(_, c)| c.is_whitespace() || c.is_control())
    {
        violations.push(
            field,
            format!(
                "must not contain whitespace or control characters (found {})",
                describe_character(position, character)
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Runs one helper on a fresh [`Violations`] and returns what it found.
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
        violations.push("title", "must not be blank");
        violations.push("impact", "is not a level");
        assert_eq!(violations.len(), 2);
        let error = violations.into_result().expect_err("two violations");
        let fields: Vec<&str> = error.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["title", "impact"]);
        assert_eq!(
            error.to_string(),
            "title: must not be blank; impact: is not a level"
        );
    }

    #[test]
    fn helpers_collect_violations_across_fields() {
        let mut violations = Violations::new();
        single_line("title", "", 1, TITLE_MAX, &mut violations);
        multi_line("description", "\u{7}", 0, DESCRIPTION_MAX, &mut violations);
        id("requester_id", "a b", &mut violations);
        let fields: Vec<String> = violations.into_iter().map(|v| v.field).collect();
        assert_eq!(fields, ["title", "description", "requester_id"]);
    }

    #[test]
    fn a_valid_title_passes() {
        assert_eq!(
            check(|v| single_line("title", "VPN drops every hour", 1, TITLE_MAX, v)),
            []
        );
    }

    #[test]
    fn a_blank_title_is_rejected() {
        for blank in ["", "   ", "\u{3000}"] {
            assert_eq!(
                check(|v| single_line("title", blank, 1, TITLE_MAX, v)),
                [FieldViolation {
                    field: "title".into(),
                    description: "must not be blank".into()
                }],
                "{blank:?}"
            );
        }
    }

    #[test]
    fn a_title_of_only_invisible_characters_is_refused() {
        for (invisible, found) in [
            ("\u{200B}", "U+200B at character 1"),
            ("\u{200C}\u{200D}", "U+200C at character 1"),
            ("\u{2060}", "U+2060 at character 1"),
            ("\u{FEFF}", "U+FEFF at character 1"),
            ("  \u{200B} \u{200B}  ", "U+200B at character 3"),
            ("\u{202E}\u{2066}", "U+202E at character 1"),
            ("\u{00AD}", "U+00AD at character 1"),
            ("\u{E0041}\u{E007F}", "U+E0041 at character 1"),
            ("\u{3164}", "U+3164 at character 1"),
            ("\u{2800}\u{2800}", "U+2800 at character 1"),
            ("\u{FE0F}", "U+FE0F at character 1"),
        ] {
            assert_eq!(
                check(|v| title("title", invisible, v)),
                [FieldViolation {
                    field: "title".into(),
                    description: format!(
                        "must have visible characters, not only invisible ones (found {found})"
                    ),
                }],
                "{invisible:?}"
            );
        }
    }

    #[test]
    fn invisible_characters_among_visible_ones_stay_in_a_title() {
        for visible in [
            "VPN\u{200B}drops",
            "\u{FEFF}Printer jams",
            "Family emoji \u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}",
            "\u{0645}\u{200C}\u{0649}",
        ] {
            assert_eq!(check(|v| title("title", visible, v)), [], "{visible:?}");
        }
    }

    #[test]
    fn a_blank_title_is_reported_once_as_blank() {
        assert_eq!(
            descriptions(|v| title("title", "   ", v)),
            ["must not be blank"]
        );
    }

    #[test]
    fn every_format_character_of_the_common_planes_is_invisible() {
        // The zero-width and bidi characters the desk has seen in pasted titles.
        for c in [
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{200E}',
            '\u{200F}',
            '\u{2060}',
            '\u{2061}',
            '\u{2064}',
            '\u{2066}',
            '\u{2069}',
            '\u{FEFF}',
            '\u{180E}',
            '\u{061C}',
            '\u{FFF9}',
            '\u{E0001}',
        ] {
            assert!(is_invisible(c), "U+{:04X}", u32::from(c));
        }
        for c in [
            'a',
            ' ',
            '\u{3000}',
            '\u{00A0}',
            'ß',
            '\u{1F600}',
            '\u{0645}',
            '\u{2801}',
        ] {
            assert!(!is_invisible(c), "U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn the_invisible_ranges_are_ordered_and_do_not_overlap() {
        for pair in INVISIBLE_RANGES.windows(2) {
            let ((first, last), (next_first, _)) = (pair[0], pair[1]);
            assert!(first <= last && last < next_first, "{pair:x?}");
        }
    }

    #[test]
    fn an_optional_field_may_be_empty() {
        assert_eq!(
            check(|v| multi_line("description", "", 0, DESCRIPTION_MAX, v)),
            []
        );
    }

    #[test]
    fn a_minimum_counts_content_without_surrounding_whitespace() {
        assert_eq!(
            descriptions(|v| single_line("title", "  ab  ", 3, TITLE_MAX, v)),
            ["must be at least 3 characters"]
        );
        assert_eq!(
            check(|v| single_line("title", "  abc  ", 3, TITLE_MAX, v)),
            []
        );
    }

    #[test]
    fn lengths_are_counted_in_characters_not_bytes() {
        let two_hundred_umlauts = "ä".repeat(TITLE_MAX);
        assert_eq!(two_hundred_umlauts.len(), 2 * TITLE_MAX);
        assert_eq!(
            check(|v| single_line("title", &two_hundred_umlauts, 1, TITLE_MAX, v)),
            []
        );
    }

    #[test]
    fn a_title_over_the_limit_is_rejected_with_its_length() {
        let long = "x".repeat(TITLE_MAX + 1);
        assert_eq!(
            descriptions(|v| single_line("title", &long, 1, TITLE_MAX, v)),
            ["must be at most 200 characters, not 201"]
        );
    }

    #[test]
    fn single_line_text_rejects_line_breaks_and_tabs() {
        for (text, found) in [
            ("a\nb", "U+000A at character 2"),
            ("\tab", "U+0009 at character 1"),
            ("ab\r", "U+000D at character 3"),
        ] {
            assert_eq!(
                descriptions(|v| single_line("title", text, 1, TITLE_MAX, v)),
                [format!(
                    "must be a single line without control characters (found {found})"
                )],
                "{text:?}"
            );
        }
    }

    #[test]
    fn multi_line_text_accepts_line_breaks_and_tabs() {
        assert_eq!(
            check(|v| multi_line(
                "description",
                "steps:\r\n\t1. log in\n",
                1,
                DESCRIPTION_MAX,
                v
            )),
            []
        );
    }

    #[test]
    fn multi_line_text_rejects_other_control_characters() {
        for (text, found) in [
            ("bell\u{7}", "U+0007 at character 5"),
            ("\u{0}", "U+0000 at character 1"),
            ("del\u{7f}", "U+007F at character 4"),
            ("c1\u{85}", "U+0085 at character 3"),
        ] {
            assert_eq!(
                descriptions(|v| multi_line("description", text, 0, DESCRIPTION_MAX, v)),
                [format!(
                    "must not contain control characters (found {found})"
                )],
                "{text:?}"
            );
        }
    }

    #[test]
    fn one_field_can_break_several_rules_at_once() {
        let long_with_bell = format!("{}\u{7}", "x".repeat(5));
        assert_eq!(
            descriptions(|v| single_line("title", &long_with_bell, 1, 5, v)),
            [
                "must be at most 5 characters, not 6",
                "must be a single line without control characters (found U+0007 at character 6)",
            ]
        );
    }

    #[test]
    fn an_absent_category_is_fine() {
        assert_eq!(check(|v| category("category", None, v)), []);
    }

    #[test]
    fn a_present_category_is_one_non_blank_line_within_the_limit() {
        assert_eq!(check(|v| category("category", Some("network/vpn"), v)), []);
        assert_eq!(
            descriptions(|v| category("category", Some(" "), v)),
            ["must not be blank"]
        );
        assert_eq!(
            descriptions(|v| category("category", Some(&"c".repeat(CATEGORY_MAX + 1)), v)),
            ["must be at most 100 characters, not 101"]
        );
        assert_eq!(
            descriptions(|v| category("category", Some("a\nb"), v)).len(),
            1
        );
    }

    #[test]
    fn an_opaque_id_accepts_anything_visible() {
        for value in [
            "u-1",
            "auth0|5f7c8ec7c33c6c004bbafe82",
            "grp:network",
            "0195c1f0-7a4e-7c3b-9a55-3f1d2e4b5c6d",
            "jürgen",
        ] {
            assert_eq!(check(|v| id("assignee_id", value, v)), [], "{value}");
        }
    }

    #[test]
    fn an_empty_id_is_rejected() {
        assert_eq!(
            descriptions(|v| id("assignee_id", "", v)),
            ["must not be empty"]
        );
    }

    #[test]
    fn an_id_with_whitespace_or_control_characters_is_rejected() {
        assert_eq!(
            descriptions(|v| id("assignee_id", "john doe", v)),
            ["must not contain whitespace or control characters (found U+0020 at character 5)"]
        );
        assert_eq!(descriptions(|v| id("assignee_id", "x\u{0}", v)).len(), 1);
        assert_eq!(descriptions(|v| id("assignee_id", "\u{a0}x", v)).len(), 1);
    }

    #[test]
    fn an_id_may_be_at_most_two_hundred_characters() {
        assert_eq!(check(|v| id("assignee_id", &"i".repeat(ID_MAX), v)), []);
        assert_eq!(
            descriptions(|v| id("assignee_id", &"i".repeat(ID_MAX + 1), v)),
            ["must be at most 200 characters, not 201"]
        );
    }

    #[test]
    fn an_idempotency_key_may_be_at_most_128_characters() {
        assert_eq!(
            check(|v| idempotency_key("idempotency_key", &"k".repeat(IDEMPOTENCY_KEY_MAX), v)),
            []
        );
        assert_eq!(
            check(|v| idempotency_key("idempotency_key", &"k".repeat(IDEMPOTENCY_KEY_MAX + 1), v))
                .len(),
            1
        );
        assert_eq!(
            check(|v| idempotency_key("idempotency_key", "", v)).len(),
            1
        );
    }

    #[test]
    fn tenant_ids_are_lowercase_alphanumerics_with_dashes_and_underscores() {
        for valid in ["acme", "a", "0", "acme-emea_2", &"t".repeat(63)] {
            assert_eq!(check(|v| tenant_id("tenant", valid, v)), [], "{valid}");
        }
    }

    #[test]
    fn tenant_ids_that_could_break_keys_or_subjects_are_rejected() {
        for invalid in [
            "",
            "Acme",
            "-acme",
            "_acme",
            "acme.emea",
            "acme emea",
            "acme*",
            "äcme",
            &"t".repeat(64),
        ] {
            assert_eq!(
                descriptions(|v| tenant_id("tenant", invalid, v)),
                [TENANT_ID_RULE],
                "{invalid:?}"
            );
        }
    }

    #[test]
    fn worklog_entries_last_between_a_minute_and_a_day() {
        assert_eq!(check(|v| worklog_minutes("minutes", 1, v)), []);
        assert_eq!(
            check(|v| worklog_minutes("minutes", WORKLOG_MAX_MINUTES, v)),
            []
        );
        for invalid in [0, -5, WORKLOG_MAX_MINUTES + 1] {
            assert_eq!(
                descriptions(|v| worklog_minutes("minutes", invalid, v)),
                [format!("must be between 1 and 1440 minutes, not {invalid}")]
            );
        }
    }

    #[test]
    fn a_list_over_its_maximum_is_rejected() {
        assert_eq!(
            check(|v| max_items("watcher_ids", MAX_WATCHERS, MAX_WATCHERS, v)),
            []
        );
        assert_eq!(
            descriptions(|v| max_items("watcher_ids", MAX_WATCHERS + 1, MAX_WATCHERS, v)),
            ["must have at most 50 items, not 51"]
        );
    }

    #[test]
    fn each_repeated_item_is_reported_once() {
        assert_eq!(
            descriptions(|v| unique("watcher_ids", &["a", "b", "a", "c", "b", "a"], v)),
            [
                "contains \"a\" more than once",
                "contains \"b\" more than once"
            ]
        );
        assert_eq!(check(|v| unique::<&str>("watcher_ids", &[], v)), []);
    }

    #[test]
    fn an_id_list_names_the_position_of_each_bad_id() {
        let violations = check(|v| id_list("watcher_ids", &["u1", "", "u 3"], MAX_WATCHERS, v));
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["watcher_ids[1]", "watcher_ids[2]"]);
    }

    #[test]
    fn an_id_list_checks_count_and_repeats_too() {
        let ids = vec!["u1".to_owned(), "u1".to_owned(), "u2".to_owned()];
        assert_eq!(
            descriptions(|v| id_list("affected_ci_ids", &ids, 2, v)),
            [
                "must have at most 2 items, not 3",
                "contains \"u1\" more than once"
            ]
        );
    }

    proptest! {
        #[test]
        fn single_line_text_is_accepted_exactly_when_it_is_visible_and_fits(
            text in "\\PC{0,12}|.*[\\x00-\\x1f\\x7f].*",
        ) {
            let found = check(|v| single_line("title", &text, 0, 10, v));
            let fits = text.chars().count() <= 10;
            let visible = !text.chars().any(char::is_control);
            prop_assert_eq!(found.is_empty(), fits && visible);
        }

        #[test]
        fn multi_line_text_accepts_any_printable_lines_within_the_limit(
            lines in prop::collection::vec("\\PC{0,20}", 1..5),
        ) {
            let text = lines.join("\r\n\t");
            let found = check(|v| multi_line("description", &text, 0, DESCRIPTION_MAX, v));
            prop_assert_eq!(found, []);
        }

        #[test]
        fn tenant_id_matches_its_documented_pattern(value in "[a-z0-9_.A-Z -]{0,70}") {
            let lower_or_digit = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
            let mut chars = value.chars();
            let expected = chars.next().is_some_and(lower_or_digit)
                && chars.all(|c| lower_or_digit(c) || c == '_' || c == '-')
                && value.len() <= 63;
            prop_assert_eq!(check(|v| tenant_id("tenant", &value, v)).is_empty(), expected);
        }
    }
}
