//! Errors in Salesforce's shape: an error code, a detail, and a span that `message` turns into
//! Salesforce's "ERROR at Row:R:Column:C" rendering.

use crate::ast::Span;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    MalformedQuery,
    InvalidField,
    InvalidType,
}

impl ErrorCode {
    /// Salesforce's `errorCode` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedQuery => "MALFORMED_QUERY",
            ErrorCode::InvalidField => "INVALID_FIELD",
            ErrorCode::InvalidType => "INVALID_TYPE",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct SoqlError {
    pub code: ErrorCode,
    /// The last line of Salesforce's message, e.g. `unexpected token: FORM`.
    pub detail: String,
    /// Where in the query the error is (byte offsets).
    pub span: Span,
}

impl SoqlError {
    pub fn new(code: ErrorCode, detail: impl Into<String>, span: Span) -> Self {
        SoqlError {
            code,
            detail: detail.into(),
            span,
        }
    }

    pub(crate) fn malformed(detail: impl Into<String>, span: Span) -> Self {
        SoqlError::new(ErrorCode::MalformedQuery, detail, span)
    }

    /// `"MALFORMED_QUERY"`, `"INVALID_FIELD"` or `"INVALID_TYPE"`.
    pub fn error_code(&self) -> &'static str {
        self.code.as_str()
    }

    /// Salesforce's message text for this error in `query`; see [`render_message`].
    pub fn message(&self, query: &str) -> String {
        render_message(query, self.span, &self.detail)
    }
}

/// Salesforce's rendering of a query error: a newline, the query line holding `span.start`, a
/// newline, spaces and a `^` under the error's column, a newline, `ERROR at Row:R:Column:C`, a
/// newline, and `detail`. Rows and columns are 1-based; columns count characters, not bytes.
///
/// ```
/// let msg = soql::render_message("SELECT Id FORM Case", soql::Span { start: 10, end: 14 },
///     "unexpected token: FORM");
/// assert_eq!(msg, "\nSELECT Id FORM Case\n          ^\nERROR at Row:1:Column:11\nunexpected token: FORM");
/// ```
///
/// Never panics: a span past the end of `query` points just after its last character, and an
/// offset inside a multi-byte character points at that character.
pub fn render_message(query: &str, span: Span, detail: &str) -> String {
    let mut at = span.start.min(query.len());
    while at > 0 && !query.is_char_boundary(at) {
        at -= 1;
    }
    let before = query.get(..at).unwrap_or("");
    let after = query.get(at..).unwrap_or("");
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let row = before.matches('\n').count() + 1;
    let line_head = before.get(line_start..).unwrap_or("");
    let line_tail = after.split('\n').next().unwrap_or("");
    let column = line_head.chars().count() + 1;
    let mut line = String::with_capacity(line_head.len() + line_tail.len());
    line.push_str(line_head);
    line.push_str(line_tail);
    // A CRLF query's line ends in '\r', which would send the cursor back on a terminal.
    if line.ends_with('\r') {
        line.pop();
    }
    format!(
        "\n{line}\n{caret:>width$}\nERROR at Row:{row}:Column:{column}\n{detail}",
        caret = "^",
        width = column,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_salesforce_example() {
        let q = "SELECT Id FORM Case";
        assert_eq!(
            render_message(q, Span::new(10, 14), "unexpected token: FORM"),
            "\nSELECT Id FORM Case\n          ^\nERROR at Row:1:Column:11\nunexpected token: FORM"
        );
    }

    #[test]
    fn renders_second_line_and_counts_characters() {
        let q = "SELECT Id\r\nFROM Café WHERE x = 'é' AND";
        let at = q.find("AND").unwrap();
        let msg = render_message(q, Span::new(at, at + 3), "boom");
        assert_eq!(
            msg,
            "\nFROM Café WHERE x = 'é' AND\n                        ^\nERROR at Row:2:Column:25\nboom"
        );
    }

    #[test]
    fn out_of_range_and_mid_char_spans_do_not_panic() {
        let q = "é\nab";
        assert!(render_message(q, Span::new(100, 200), "x").contains("Row:2:Column:3"));
        assert!(render_message(q, Span::new(1, 2), "x").contains("Row:1:Column:1"));
        assert!(render_message("", Span::new(0, 0), "x").contains("Row:1:Column:1"));
        assert!(render_message("a\n", Span::new(2, 2), "x").contains("Row:2:Column:1"));
    }

    #[test]
    fn codes() {
        let e = SoqlError::new(
            ErrorCode::InvalidField,
            "No such column 'Foo'",
            Span::new(7, 10),
        );
        assert_eq!(e.error_code(), "INVALID_FIELD");
        assert_eq!(e.to_string(), "INVALID_FIELD: No such column 'Foo'");
        assert_eq!(ErrorCode::InvalidType.as_str(), "INVALID_TYPE");
        assert_eq!(ErrorCode::MalformedQuery.as_str(), "MALFORMED_QUERY");
    }
}
