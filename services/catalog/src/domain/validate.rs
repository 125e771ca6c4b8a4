//! Field violations of a request, gathered before anything is written (ARCHITECTURE §11).

/// Every violation found, not only the first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations(Vec<(String, String)>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push((field.into(), description.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &(String, String)> {
        self.0.iter()
    }

    pub fn into_result(self) -> Result<(), Violations> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }

    /// A single-line text of at most `max` characters; `required` refuses a blank one.
    pub fn line(&mut self, field: &str, value: &str, max: usize, required: bool) {
        if required && value.trim().is_empty() {
            self.push(field, "required");
        } else if value.chars().count() > max || value.chars().any(char::is_control) {
            self.push(field, format!("one line of at most {max} characters"));
        }
    }

    /// A text of at most `max` characters; line breaks and tabs allowed.
    pub fn text(&mut self, field: &str, value: &str, max: usize) {
        if value.chars().count() > max
            || value
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            self.push(
                field,
                format!("at most {max} characters, no control characters but line breaks and tabs"),
            );
        }
    }
}

impl std::fmt::Display for Violations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(f, d)| format!("{f}: {d}")).collect();
        f.write_str(&parts.join("; "))
    }
}
