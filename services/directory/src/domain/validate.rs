//! Field checks that collect every violation of a request instead of stopping at the first, and
//! the value rules of the directory: e-mail addresses, phone numbers, BCP 47 locales and language
//! tags, IANA time zones, regions and skill names.
//!
//! Each checker takes the field name as the API spells it (`email`, `people[3].time_zone`) and
//! pushes onto a shared [`Violations`]; values that pass come back in the form the directory
//! keeps (a locale in canonical form, a time zone by its IANA name), so what is stored and
//! compared is always one spelling of a value.

use std::fmt;

/// Longest display name, department, location, team name, in characters.
pub const NAME_MAX: usize = 200;
/// Longest team description, in characters.
pub const DESCRIPTION_MAX: usize = 2_000;
/// Longest subject or external id, in characters (IdPs use GUIDs, e-mails or URLs).
pub const IDENTIFIER_MAX: usize = 255;
/// Longest e-mail address (RFC 5321's path limit less the angle brackets).
pub const EMAIL_MAX: usize = 254;
/// Longest local part of an e-mail address (RFC 5321).
const EMAIL_LOCAL_MAX: usize = 64;
/// Longest skill name, in characters.
pub const SKILL_NAME_MAX: usize = 63;

/// One invalid field, named as the API names it (`people[2].email`).
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

    /// Whether some violation names `field`.
    pub fn names(&self, field: &str) -> bool {
        self.0.iter().any(|v| v.field == field)
    }

    /// `Ok` when nothing was found, so a check can end with `?`.
    pub fn into_result(self) -> Result<(), Violations> {
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

/// A required line of text (a name): not blank, at most `max_chars`, no control characters.
/// Returns it trimmed, as it is kept.
pub fn required_line(
    field: &str,
    value: &str,
    max_chars: usize,
    violations: &mut Violations,
) -> Option<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        violations.push(field, "must not be empty");
        return None;
    }
    optional_line(field, trimmed, max_chars, violations)
}

/// An optional line of text: `None` when blank; else as [`required_line`].
pub fn optional_line(
    field: &str,
    value: &str,
    max_chars: usize,
    violations: &mut Violations,
) -> Option<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return None;
    }
    if trimmed.chars().count() > max_chars {
        violations.push(field, format!("at most {max_chars} characters"));
        return None;
    }
    if trimmed.chars().any(char::is_control) {
        violations.push(field, "must not contain control characters");
        return None;
    }
    Some(trimmed.to_owned())
}

/// Optional free text (a description): may span lines, no other control characters.
pub fn optional_text(
    field: &str,
    value: &str,
    max_chars: usize,
    violations: &mut Violations,
) -> Option<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return None;
    }
    if trimmed.chars().count() > max_chars {
        violations.push(field, format!("at most {max_chars} characters"));
        return None;
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        violations.push(field, "must not contain control characters");
        return None;
    }
    Some(trimmed.to_owned())
}

/// An identifier from another system (subject, external id): as given, no white space or
/// control characters, at most [`IDENTIFIER_MAX`].
pub fn identifier(field: &str, value: &str, violations: &mut Violations) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    if value.chars().count() > IDENTIFIER_MAX {
        violations.push(field, format!("at most {IDENTIFIER_MAX} characters"));
        return None;
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        violations.push(field, "must not contain white space or control characters");
        return None;
    }
    Some(value.to_owned())
}

/// An e-mail address as people write one: `local@domain`, the local part dot-separated atoms
/// of RFC 5322's `atext`, the domain at least two DNS labels (letters, digits, hyphens; none
/// starting or ending with a hyphen; the last not all digits). Quoted local parts, comments and
/// address literals are refused: no mail system a desk notifies needs them, and they are how
/// header injection gets in. The domain is kept in lower case.
pub fn email(field: &str, value: &str, violations: &mut Violations) -> Option<String> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    match email_problem(value) {
        None => {
            let (local, domain) = value.rsplit_once('@')?;
            Some(format!("{local}@{}", domain.to_ascii_lowercase()))
        }
        Some(problem) => {
            violations.push(field, format!("not an e-mail address: {problem}"));
            None
        }
    }
}

fn email_problem(value: &str) -> Option<&'static str> {
    if value.len() > EMAIL_MAX {
        return Some("longer than 254 characters");
    }
    let Some((local, domain)) = value.split_once('@') else {
        return Some("no @");
    };
    if domain.contains('@') {
        return Some("more than one @");
    }
    if local.is_empty() || local.len() > EMAIL_LOCAL_MAX {
        return Some("the part before @ must have 1 to 64 characters");
    }
    const ATEXT_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~";
    let atom_char = |c: char| c.is_ascii_alphanumeric() || ATEXT_SPECIALS.contains(c);
    if local
        .split('.')
        .any(|atom| atom.is_empty() || !atom.chars().all(atom_char))
    {
        return Some("the part before @ has a character or a dot that is not allowed");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Some("the domain needs a dot");
    }
    let label_ok = |label: &&str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if !labels.iter().all(label_ok) {
        return Some("the domain is not a host name");
    }
    if labels
        .last()
        .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
    {
        return Some("the domain is not a host name");
    }
    None
}

/// A phone number as people write one: an optional leading `+`, then 3 to 20 digits, with
/// spaces, hyphens, dots and parentheses between them. Kept as written, trimmed.
pub fn phone(field: &str, value: &str, violations: &mut Violations) -> Option<String> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    let body = value.strip_prefix('+').unwrap_or(value);
    let digits = body.chars().filter(char::is_ascii_digit).count();
    let allowed = body
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')'));
    if !allowed || !(3..=20).contains(&digits) || value.chars().count() > 32 {
        violations.push(
            field,
            "not a phone number: digits with an optional leading +, spaces, hyphens, dots or parentheses",
        );
        return None;
    }
    Some(value.to_owned())
}

/// A BCP 47 locale or language tag (`sv-SE`, `zh-Hant-TW`, `en`), kept in canonical form.
/// POSIX-style underscores (`en_US`, which some identity providers put in the `locale` claim)
/// are read as hyphens. Tags that do not parse are refused, and so is the undetermined language
/// `und`, which names no language a person reads.
pub fn locale(field: &str, value: &str, violations: &mut Violations) -> Option<String> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    match icu_locale_core::Locale::try_from_str(&value.replace('_', "-")) {
        Ok(parsed) if known_language(parsed.id.language.as_str()) => Some(parsed.to_string()),
        Ok(parsed) => {
            violations.push(
                field,
                format!(
                    "{:?} is not a language people read",
                    parsed.id.language.as_str()
                ),
            );
            None
        }
        Err(_) => {
            violations.push(field, format!("not a BCP 47 locale: {value:?}"));
            None
        }
    }
}

/// ISO 639-1: every two-letter language code.
const ISO_639_1: &[&str] = &[
    "aa", "ab", "ae", "af", "ak", "am", "an", "ar", "as", "av", "ay", "az", "ba", "be", "bg", "bh",
    "bi", "bm", "bn", "bo", "br", "bs", "ca", "ce", "ch", "co", "cr", "cs", "cu", "cv", "cy", "da",
    "de", "dv", "dz", "ee", "el", "en", "eo", "es", "et", "eu", "fa", "ff", "fi", "fj", "fo", "fr",
    "fy", "ga", "gd", "gl", "gn", "gu", "gv", "ha", "he", "hi", "ho", "hr", "ht", "hu", "hy", "hz",
    "ia", "id", "ie", "ig", "ii", "ik", "io", "is", "it", "iu", "ja", "jv", "ka", "kg", "ki", "kj",
    "kk", "kl", "km", "kn", "ko", "kr", "ks", "ku", "kv", "kw", "ky", "la", "lb", "lg", "li", "ln",
    "lo", "lt", "lu", "lv", "mg", "mh", "mi", "mk", "ml", "mn", "mr", "ms", "mt", "my", "na", "nb",
    "nd", "ne", "ng", "nl", "nn", "no", "nr", "nv", "ny", "oc", "oj", "om", "or", "os", "pa", "pi",
    "pl", "ps", "pt", "qu", "rm", "rn", "ro", "ru", "rw", "sa", "sc", "sd", "se", "sg", "si", "sk",
    "sl", "sm", "sn", "so", "sq", "sr", "ss", "st", "su", "sv", "sw", "ta", "te", "tg", "th", "ti",
    "tk", "tl", "tn", "to", "tr", "ts", "tt", "tw", "ty", "ug", "uk", "ur", "uz", "ve", "vi", "vo",
    "wa", "wo", "xh", "yi", "yo", "za", "zh", "zu",
];

/// Whether a language subtag names a language: a two-letter one must be an ISO 639-1 code
/// (BCP 47 prefers those where they exist, so `xx` is unknown, not obscure); three letters are
/// ISO 639-2/3 codes, of which there are thousands, taken as given. The 4- to 8-letter forms
/// the grammar reserves, and `und`, name no language anyone reads.
fn known_language(language: &str) -> bool {
    match language.len() {
        2 => ISO_639_1.contains(&language),
        3 => language != "und",
        _ => false,
    }
}

/// An IANA time zone (`Europe/Stockholm`), kept by its IANA name. Abbreviations such as `CET`
/// that the database also knows are kept as given; Windows names are refused.
pub fn time_zone(field: &str, value: &str, violations: &mut Violations) -> Option<String> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    match value.parse::<chrono_tz::Tz>() {
        Ok(zone) => Some(zone.name().to_owned()),
        Err(_) => {
            violations.push(field, format!("not an IANA time zone: {value:?}"));
            None
        }
    }
}

/// A desk region (`emea`): lower-case letters and digits, at most 16, as ids and subjects carry them.
pub fn region(field: &str, value: &str, violations: &mut Violations) -> Option<String> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if desk_kit::ids::is_region(value) {
        Some(value.to_owned())
    } else {
        violations.push(
            field,
            "not a region: lower-case letters and digits, at most 16",
        );
        None
    }
}

/// A skill name: lower-case ASCII letters, digits, `-`, `_` and `.`, starting with a letter or
/// digit, at most [`SKILL_NAME_MAX`]. One spelling per skill, so `FindTeams` matches exactly.
pub fn skill_name(field: &str, value: &str, violations: &mut Violations) -> Option<String> {
    let mut chars = value.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if first_ok && rest_ok && value.len() <= SKILL_NAME_MAX {
        Some(value.to_owned())
    } else {
        violations.push(
            field,
            "not a skill name: lower-case letters, digits, '-', '_' and '.', starting with a letter or digit, at most 63",
        );
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(
        checker: fn(&str, &str, &mut Violations) -> Option<String>,
        value: &str,
    ) -> Result<Option<String>, Violations> {
        let mut violations = Violations::new();
        let kept = checker("field", value, &mut violations);
        if violations.is_empty() {
            Ok(kept)
        } else {
            Err(violations)
        }
    }

    #[test]
    fn ordinary_email_addresses_pass_with_the_domain_in_lower_case() {
        for (given, kept) in [
            ("alice@example.com", "alice@example.com"),
            ("Alice.Smith@Example.COM", "Alice.Smith@example.com"),
            (
                "first+tag@mail.example.co.uk",
                "first+tag@mail.example.co.uk",
            ),
            ("o'brien@example.ie", "o'brien@example.ie"),
            ("  padded@example.org ", "padded@example.org"),
        ] {
            assert_eq!(check(email, given), Ok(Some(kept.to_owned())), "{given}");
        }
        assert_eq!(check(email, ""), Ok(None));
    }

    #[test]
    fn malformed_email_addresses_are_each_a_violation() {
        for given in [
            "plainaddress",
            "@example.com",
            "alice@",
            "alice@@example.com",
            "alice@localhost",
            "alice..smith@example.com",
            ".alice@example.com",
            "alice.@example.com",
            "alice smith@example.com",
            "alice@exa mple.com",
            "alice@-example.com",
            "alice@example..com",
            "alice@192.168.0.1",
            "\"quoted\"@example.com",
            "alice@example.com\r\nBcc: eve@example.com",
        ] {
            assert!(check(email, given).is_err(), "{given:?} passed");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(check(email, &long_local).is_err());
    }

    #[test]
    fn phone_numbers_take_the_usual_punctuation_and_nothing_else() {
        for given in [
            "+46 8 123 456 78",
            "(555) 010-9999",
            "+62.21.555.0101",
            "112",
        ] {
            assert_eq!(check(phone, given), Ok(Some(given.to_owned())), "{given}");
        }
        for given in [
            "call me",
            "+46 8 123 456 78 ext 5",
            "12",
            "++46123456",
            "1".repeat(21).as_str(),
        ] {
            assert!(check(phone, given).is_err(), "{given:?} passed");
        }
    }

    #[test]
    fn locales_are_kept_in_canonical_form_and_unknown_ones_refused() {
        assert_eq!(check(locale, "sv-se"), Ok(Some("sv-SE".to_owned())));
        assert_eq!(
            check(locale, "zh-hant-tw"),
            Ok(Some("zh-Hant-TW".to_owned()))
        );
        assert_eq!(check(locale, "en"), Ok(Some("en".to_owned())));
        assert_eq!(check(locale, "sv_SE"), Ok(Some("sv-SE".to_owned())));
        for given in [
            "english",
            "en-",
            "12-34",
            "und",
            "x",
            "xx",
            "xx-invalid-locale",
            "klingon",
        ] {
            assert!(check(locale, given).is_err(), "{given:?} passed");
        }
    }

    #[test]
    fn time_zones_must_be_iana_names() {
        for given in [
            "Europe/Stockholm",
            "Asia/Jakarta",
            "America/Sao_Paulo",
            "UTC",
        ] {
            assert_eq!(
                check(time_zone, given),
                Ok(Some(given.to_owned())),
                "{given}"
            );
        }
        for given in [
            "Mars/Olympus_Mons",
            "W. Europe Standard Time",
            "+02:00",
            "europe/stockholm",
        ] {
            assert!(check(time_zone, given).is_err(), "{given:?} passed");
        }
    }

    #[test]
    fn skill_names_have_one_spelling() {
        for given in ["networking", "sql", "sap-fi", "win.server_2022", "5g"] {
            assert_eq!(
                check(skill_name, given),
                Ok(Some(given.to_owned())),
                "{given}"
            );
        }
        for given in ["", "Networking", "-sql", "two words", "ü", &"a".repeat(64)] {
            assert!(check(skill_name, given).is_err(), "{given:?} passed");
        }
    }

    #[test]
    fn lines_are_trimmed_and_limited_in_characters() {
        let mut violations = Violations::new();
        assert_eq!(
            required_line("name", "  Åsa Öberg ", 10, &mut violations),
            Some("Åsa Öberg".to_owned())
        );
        assert_eq!(required_line("name", "   ", 10, &mut violations), None);
        assert_eq!(
            required_line("long", "abcdefghijk", 10, &mut violations),
            None
        );
        assert_eq!(optional_line("bell", "a\u{7}b", 10, &mut violations), None);
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["name", "long", "bell"]);
    }

    #[test]
    fn identifiers_refuse_white_space() {
        assert_eq!(check(identifier, "00u1abc"), Ok(Some("00u1abc".to_owned())));
        assert!(check(identifier, "two words").is_err());
        assert!(check(identifier, &"x".repeat(256)).is_err());
    }
}
