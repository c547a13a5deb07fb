//! Canonical SOQL text for the syntax tree: `parse(&q.to_string())` gives back `q` (spans
//! aside) for every tree the parser can produce.
//!
//! Canonical form: keywords upper case, names as written, `!=` for `<>`, `ASC` and
//! `NULLS FIRST` omitted (they are the defaults), dateTimes with `Z` for UTC and milliseconds
//! only when non-zero, strings single-quoted with `\\ \' \n \r \t \b \f` escapes.
//!
//! Trees built by hand print faithfully as long as they stay within what SOQL can express:
//! years 0000-9999, offsets in whole minutes, numbers in the parser's `[+-]digits[.digits]`
//! form, names of `[A-Za-z][A-Za-z0-9_]*` that are not reserved words.

use std::fmt::{self, Display, Formatter, Write};

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Timelike};

use crate::ast::{
    CompareOp, Condition, FieldPath, ForClause, OrderItem, Query, SelectItem, Value, WithClause,
};
use crate::date_literal::DateLiteral;

impl Display for Query {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("SELECT ")?;
        write_list(f, &self.select)?;
        write!(f, " FROM {}", self.from.name)?;
        if let Some(condition) = &self.where_clause {
            write!(f, " WHERE {condition}")?;
        }
        if let Some(with) = self.with {
            write!(f, " WITH {with}")?;
        }
        if !self.order_by.is_empty() {
            f.write_str(" ORDER BY ")?;
            write_list(f, &self.order_by)?;
        }
        if let Some(limit) = self.limit {
            write!(f, " LIMIT {limit}")?;
        }
        if let Some(offset) = self.offset {
            write!(f, " OFFSET {offset}")?;
        }
        if let Some(for_clause) = self.for_clause {
            write!(f, " FOR {for_clause}")?;
        }
        Ok(())
    }
}

fn write_list<T: Display>(f: &mut Formatter<'_>, items: &[T]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        item.fmt(f)?;
    }
    Ok(())
}

impl Display for FieldPath {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                f.write_char('.')?;
            }
            f.write_str(part)?;
        }
        Ok(())
    }
}

impl Display for SelectItem {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            SelectItem::Field(field) => field.fmt(f),
            SelectItem::Count { field: None, .. } => f.write_str("COUNT()"),
            SelectItem::Count {
                field: Some(field), ..
            } => write!(f, "COUNT({field})"),
        }
    }
}

impl Display for OrderItem {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        self.field.fmt(f)?;
        if self.descending {
            f.write_str(" DESC")?;
        }
        if self.nulls_last {
            f.write_str(" NULLS LAST")?;
        }
        Ok(())
    }
}

impl Display for WithClause {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Display for ForClause {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Display for CompareOp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Display for Condition {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            // Chains parse left-nested, so a left operand of the same operator needs no
            // parentheses; anything else that is itself AND/OR does.
            Condition::And(left, right) => {
                write_operand(f, left, |c| matches!(c, Condition::Or(..)))?;
                f.write_str(" AND ")?;
                write_operand(f, right, is_binary)
            }
            Condition::Or(left, right) => {
                write_operand(f, left, |c| matches!(c, Condition::And(..)))?;
                f.write_str(" OR ")?;
                write_operand(f, right, is_binary)
            }
            Condition::Not(inner) => {
                f.write_str("NOT ")?;
                write_operand(f, inner, is_binary)
            }
            Condition::Compare { field, op, value } => write!(f, "{field} {op} {value}"),
            Condition::In {
                field,
                negated,
                values,
            } => {
                write!(f, "{field} {}IN (", if *negated { "NOT " } else { "" })?;
                write_list(f, values)?;
                f.write_char(')')
            }
            Condition::Like { field, pattern } => {
                write!(f, "{field} LIKE ")?;
                write_like(f, pattern)
            }
        }
    }
}

fn is_binary(c: &Condition) -> bool {
    matches!(c, Condition::And(..) | Condition::Or(..))
}

fn write_operand(
    f: &mut Formatter<'_>,
    operand: &Condition,
    needs_parens: impl Fn(&Condition) -> bool,
) -> fmt::Result {
    if needs_parens(operand) {
        write!(f, "({operand})")
    } else {
        operand.fmt(f)
    }
}

impl Display for Value {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) => f.write_str(n),
            Value::String(s) => write_string(f, s),
            Value::Date(d) => write_date(f, *d),
            Value::DateTime(dt) => write_datetime(f, dt),
            Value::DateLiteral(literal) => literal.fmt(f),
        }
    }
}

impl Display for DateLiteral {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        if let Some(n) = self.n() {
            write!(f, ":{n}")?;
        }
        Ok(())
    }
}

/// A single-quoted SOQL string literal whose unescaped content is `s`.
fn write_string(f: &mut Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('\'')?;
    for c in s.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '\'' => f.write_str("\\'")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\u{08}' => f.write_str("\\b")?,
            '\u{0C}' => f.write_str("\\f")?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('\'')
}

/// A LIKE pattern as the parser keeps it (`\%`, `\_`, `\\` escaped), written back as the
/// literal it was read from.
fn write_like(f: &mut Formatter<'_>, pattern: &str) -> fmt::Result {
    f.write_char('\'')?;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(&e @ ('%' | '_' | '\\'))) => {
                chars.next();
                f.write_char('\\')?;
                f.write_char(e)?;
            }
            ('\\', _) => f.write_str("\\\\")?,
            ('\'', _) => f.write_str("\\'")?,
            ('\n', _) => f.write_str("\\n")?,
            ('\r', _) => f.write_str("\\r")?,
            ('\t', _) => f.write_str("\\t")?,
            ('\u{08}', _) => f.write_str("\\b")?,
            ('\u{0C}', _) => f.write_str("\\f")?,
            (c, _) => f.write_char(c)?,
        }
    }
    f.write_char('\'')
}

fn write_date(f: &mut Formatter<'_>, d: NaiveDate) -> fmt::Result {
    write!(f, "{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
}

fn write_datetime(f: &mut Formatter<'_>, dt: &DateTime<FixedOffset>) -> fmt::Result {
    let local = dt.naive_local();
    write_date(f, local.date())?;
    write!(
        f,
        "T{:02}:{:02}:{:02}",
        local.hour(),
        local.minute(),
        local.second()
    )?;
    let nanos = local.nanosecond();
    if nanos.is_multiple_of(1_000_000) {
        if nanos != 0 {
            write!(f, ".{:03}", nanos / 1_000_000)?;
        }
    } else {
        write!(f, ".{nanos:09}")?;
    }
    let offset = dt.offset().local_minus_utc();
    if offset == 0 {
        f.write_char('Z')
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let minutes = offset.unsigned_abs() / 60;
        write!(f, "{sign}{:02}:{:02}", minutes / 60, minutes % 60)
    }
}
