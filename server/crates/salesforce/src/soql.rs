//! A SOQL builder that cannot be talked into injection.
//!
//! Object and field names are checked against
//! `^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$`, so a name can never carry quotes,
//! spaces or operators. Values are typed ([`SoqlValue`]) and strings are always quoted and
//! backslash-escaped per SOQL (`\\ \' \" \n \r \t \b \f`); `LIKE` patterns also escape `%` and
//! `_` in the caller's text. There is no way to add raw text except [`Soql::trusted`], which
//! takes only `&'static str` (a literal in our source, never user input).
//!
//! ```
//! use salesforce::soql::{Cond, Order, Soql};
//! let q = Soql::select(&["Id", "Subject"])
//!     .from("Case")
//!     .filter(Cond::eq("Status", "New"))
//!     .filter(Cond::like_starts_with("Subject", "50%_off"))
//!     .order_by("CreatedDate", Order::Desc)
//!     .limit(10)
//!     .build()
//!     .unwrap();
//! assert_eq!(
//!     q.as_str(),
//!     r"SELECT Id, Subject FROM Case WHERE Status = 'New' AND Subject LIKE '50\%\_off%' ORDER BY CreatedDate DESC LIMIT 10"
//! );
//! ```

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};

use crate::id::SalesforceId;

/// Salesforce refuses `OFFSET` above this.
pub const MAX_OFFSET: u32 = 2000;

/// Why a query could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SoqlError {
    #[error("{0:?} is not a valid object or field name")]
    InvalidIdentifier(String),
    #[error("a query needs FROM")]
    MissingFrom,
    #[error("a query needs at least one field")]
    NoFields,
    #[error("field {0} is selected twice")]
    DuplicateField(String),
    #[error("IN/NOT IN on {0} needs at least one value")]
    EmptyList(String),
    #[error("a list is only allowed with IN/NOT IN (field {0})")]
    ListNotAllowed(String),
    #[error("an AND/OR group needs at least one condition")]
    EmptyGroup,
    #[error("{0} cannot be written in SOQL")]
    InvalidValue(String),
    #[error("OFFSET {0} is above Salesforce's maximum of {MAX_OFFSET}")]
    OffsetTooLarge(u32),
    #[error("COUNT() queries cannot be ordered")]
    CountWithOrder,
}

/// Checks an object or field name (`Case`, `Custom__c`, `PermissionSet.Name`).
pub fn validate_identifier(name: &str) -> Result<(), SoqlError> {
    let valid = !name.is_empty()
        && name.split('.').all(|part| {
            let mut chars = part.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    if valid {
        Ok(())
    } else {
        Err(SoqlError::InvalidIdentifier(name.to_string()))
    }
}

/// Escapes text for use inside a SOQL string literal (without the surrounding quotes).
pub fn escape_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    push_escaped(&mut out, text, false);
    out
}

/// A complete SOQL string literal: `'...'` with the content escaped.
pub fn quote(text: &str) -> String {
    format!("'{}'", escape_string(text))
}

/// Escapes text for a `LIKE` pattern: string escapes plus `\%` and `\_`, so the caller's
/// text matches literally.
pub fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    push_escaped(&mut out, text, true);
    out
}

fn push_escaped(out: &mut String, text: &str, like: bool) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '\'' => out.push_str(r"\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str(r"\n"),
            '\r' => out.push_str(r"\r"),
            '\t' => out.push_str(r"\t"),
            '\u{8}' => out.push_str(r"\b"),
            '\u{c}' => out.push_str(r"\f"),
            '%' if like => out.push_str(r"\%"),
            '_' if like => out.push_str(r"\_"),
            other => out.push(other),
        }
    }
}

/// A SOQL date literal (relative dates are evaluated by Salesforce in the org's time zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateLiteral {
    Yesterday,
    Today,
    Tomorrow,
    LastNDays(u32),
    NextNDays(u32),
}

impl fmt::Display for DateLiteral {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DateLiteral::Yesterday => f.write_str("YESTERDAY"),
            DateLiteral::Today => f.write_str("TODAY"),
            DateLiteral::Tomorrow => f.write_str("TOMORROW"),
            DateLiteral::LastNDays(n) => write!(f, "LAST_N_DAYS:{n}"),
            DateLiteral::NextNDays(n) => write!(f, "NEXT_N_DAYS:{n}"),
        }
    }
}

/// A typed value on the right of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum SoqlValue {
    Null,
    Str(String),
    Id(SalesforceId),
    Bool(bool),
    Int(i64),
    /// Must be finite.
    Decimal(f64),
    Date(NaiveDate),
    /// Written to the second, in UTC (`2026-03-01T10:15:00Z`); SOQL documents no fractional
    /// seconds, so sub-second precision is dropped.
    DateTime(DateTime<Utc>),
    DateLiteral(DateLiteral),
    /// Only for IN / NOT IN.
    List(Vec<SoqlValue>),
}

impl SoqlValue {
    fn render(&self, out: &mut String) -> Result<(), SoqlError> {
        match self {
            SoqlValue::Null => out.push_str("null"),
            SoqlValue::Str(s) => {
                out.push('\'');
                push_escaped(out, s, false);
                out.push('\'');
            }
            SoqlValue::Id(id) => {
                // Ids are alphanumeric by construction; no escaping needed.
                out.push('\'');
                out.push_str(id.as_str());
                out.push('\'');
            }
            SoqlValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            SoqlValue::Int(i) => out.push_str(&i.to_string()),
            SoqlValue::Decimal(d) if d.is_finite() => out.push_str(&d.to_string()),
            SoqlValue::Decimal(d) => return Err(SoqlError::InvalidValue(d.to_string())),
            SoqlValue::Date(d) => out.push_str(&d.format("%Y-%m-%d").to_string()),
            SoqlValue::DateTime(dt) => out.push_str(&dt.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            SoqlValue::DateLiteral(l) => out.push_str(&l.to_string()),
            SoqlValue::List(_) => return Err(SoqlError::ListNotAllowed(String::new())),
        }
        Ok(())
    }
}

impl From<&str> for SoqlValue {
    fn from(v: &str) -> Self {
        SoqlValue::Str(v.to_string())
    }
}
impl From<String> for SoqlValue {
    fn from(v: String) -> Self {
        SoqlValue::Str(v)
    }
}
impl From<&String> for SoqlValue {
    fn from(v: &String) -> Self {
        SoqlValue::Str(v.clone())
    }
}
impl From<SalesforceId> for SoqlValue {
    fn from(v: SalesforceId) -> Self {
        SoqlValue::Id(v)
    }
}
impl From<&SalesforceId> for SoqlValue {
    fn from(v: &SalesforceId) -> Self {
        SoqlValue::Id(v.clone())
    }
}
impl From<bool> for SoqlValue {
    fn from(v: bool) -> Self {
        SoqlValue::Bool(v)
    }
}
impl From<i64> for SoqlValue {
    fn from(v: i64) -> Self {
        SoqlValue::Int(v)
    }
}
impl From<i32> for SoqlValue {
    fn from(v: i32) -> Self {
        SoqlValue::Int(v.into())
    }
}
impl From<u32> for SoqlValue {
    fn from(v: u32) -> Self {
        SoqlValue::Int(v.into())
    }
}
impl From<f64> for SoqlValue {
    fn from(v: f64) -> Self {
        SoqlValue::Decimal(v)
    }
}
impl From<NaiveDate> for SoqlValue {
    fn from(v: NaiveDate) -> Self {
        SoqlValue::Date(v)
    }
}
impl From<DateTime<Utc>> for SoqlValue {
    fn from(v: DateTime<Utc>) -> Self {
        SoqlValue::DateTime(v)
    }
}
impl From<DateLiteral> for SoqlValue {
    fn from(v: DateLiteral) -> Self {
        SoqlValue::DateLiteral(v)
    }
}
impl<T: Into<SoqlValue>> From<Vec<T>> for SoqlValue {
    fn from(v: Vec<T>) -> Self {
        SoqlValue::List(v.into_iter().map(Into::into).collect())
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// A `LIKE` pattern whose literal parts are escaped; only [`LikePattern::any`] and
/// [`LikePattern::one`] add wildcards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LikePattern(String);

impl LikePattern {
    pub fn new() -> Self {
        Self::default()
    }
    /// Literal text (its `%` and `_` match themselves).
    pub fn text(mut self, text: &str) -> Self {
        push_escaped(&mut self.0, text, true);
        self
    }
    /// `%`: any run of characters.
    pub fn any(mut self) -> Self {
        self.0.push('%');
        self
    }
    /// `_`: exactly one character.
    pub fn one(mut self) -> Self {
        self.0.push('_');
        self
    }
    pub fn starts_with(text: &str) -> Self {
        Self::new().text(text).any()
    }
    pub fn ends_with(text: &str) -> Self {
        Self::new().any().text(text)
    }
    pub fn contains(text: &str) -> Self {
        Self::new().any().text(text).any()
    }
    /// The pattern as it appears between the quotes.
    pub fn as_escaped(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq)]
enum CondKind {
    Compare {
        field: String,
        op: CmpOp,
        value: SoqlValue,
    },
    In {
        field: String,
        values: Vec<SoqlValue>,
        negated: bool,
    },
    Like {
        field: String,
        pattern: LikePattern,
    },
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
}

/// A WHERE condition. Build with the constructors; names are checked when the query is built.
#[derive(Debug, Clone, PartialEq)]
pub struct Cond(CondKind);

impl Cond {
    pub fn compare(field: &str, op: CmpOp, value: impl Into<SoqlValue>) -> Self {
        Cond(CondKind::Compare {
            field: field.to_string(),
            op,
            value: value.into(),
        })
    }
    pub fn eq(field: &str, value: impl Into<SoqlValue>) -> Self {
        Self::compare(field, CmpOp::Eq, value)
    }
    pub fn ne(field: &str, value: impl Into<SoqlValue>) -> Self {
        Self::compare(field, CmpOp::Ne, value)
    }
    pub fn lt(field: &str, value: impl Into<SoqlValue>) -> Self {
        Self::compare(field, CmpOp::Lt, value)
    }
    pub fn le(field: &str, value: impl Into<SoqlValue>) -> Self {
        Self::compare(field, CmpOp::Le, value)
    }
    pub fn gt(field: &str, value: impl Into<SoqlValue>) -> Self {
        Self::compare(field, CmpOp::Gt, value)
    }
    pub fn ge(field: &str, value: impl Into<SoqlValue>) -> Self {
        Self::compare(field, CmpOp::Ge, value)
    }
    pub fn is_null(field: &str) -> Self {
        Self::eq(field, SoqlValue::Null)
    }
    pub fn is_not_null(field: &str) -> Self {
        Self::ne(field, SoqlValue::Null)
    }
    /// `field IN (...)`; an empty list is refused when the query is built.
    pub fn in_list<V: Into<SoqlValue>>(field: &str, values: impl IntoIterator<Item = V>) -> Self {
        Cond(CondKind::In {
            field: field.to_string(),
            values: values.into_iter().map(Into::into).collect(),
            negated: false,
        })
    }
    pub fn not_in_list<V: Into<SoqlValue>>(
        field: &str,
        values: impl IntoIterator<Item = V>,
    ) -> Self {
        Cond(CondKind::In {
            field: field.to_string(),
            values: values.into_iter().map(Into::into).collect(),
            negated: true,
        })
    }
    pub fn like(field: &str, pattern: LikePattern) -> Self {
        Cond(CondKind::Like {
            field: field.to_string(),
            pattern,
        })
    }
    /// `field LIKE 'text%'` with `text` matched literally.
    pub fn like_starts_with(field: &str, text: &str) -> Self {
        Self::like(field, LikePattern::starts_with(text))
    }
    /// `field LIKE '%text%'` with `text` matched literally.
    pub fn like_contains(field: &str, text: &str) -> Self {
        Self::like(field, LikePattern::contains(text))
    }
    pub fn and(conds: impl IntoIterator<Item = Cond>) -> Self {
        Cond(CondKind::And(conds.into_iter().collect()))
    }
    pub fn or(conds: impl IntoIterator<Item = Cond>) -> Self {
        Cond(CondKind::Or(conds.into_iter().collect()))
    }
    #[allow(clippy::should_implement_trait)]
    pub fn not(cond: Cond) -> Self {
        Cond(CondKind::Not(Box::new(cond)))
    }

    /// Writes the condition; `nested` wraps groups in parentheses.
    fn render(&self, out: &mut String, nested: bool) -> Result<(), SoqlError> {
        match &self.0 {
            CondKind::Compare { field, op, value } => {
                validate_identifier(field)?;
                if matches!(value, SoqlValue::List(_)) {
                    return Err(SoqlError::ListNotAllowed(field.clone()));
                }
                out.push_str(field);
                out.push(' ');
                out.push_str(op.as_str());
                out.push(' ');
                value.render(out)
            }
            CondKind::In {
                field,
                values,
                negated,
            } => {
                validate_identifier(field)?;
                // `IN ('a', 'b')` written as `In(List)` flattens to its members.
                let flat: Vec<&SoqlValue> = values
                    .iter()
                    .flat_map(|v| match v {
                        SoqlValue::List(inner) => inner.iter().collect::<Vec<_>>(),
                        other => vec![other],
                    })
                    .collect();
                if flat.is_empty() {
                    return Err(SoqlError::EmptyList(field.clone()));
                }
                out.push_str(field);
                out.push_str(if *negated { " NOT IN (" } else { " IN (" });
                for (i, value) in flat.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    if matches!(value, SoqlValue::List(_)) {
                        return Err(SoqlError::ListNotAllowed(field.clone()));
                    }
                    value.render(out)?;
                }
                out.push(')');
                Ok(())
            }
            CondKind::Like { field, pattern } => {
                validate_identifier(field)?;
                out.push_str(field);
                out.push_str(" LIKE '");
                out.push_str(pattern.as_escaped());
                out.push('\'');
                Ok(())
            }
            CondKind::And(conds) | CondKind::Or(conds) => {
                let joiner = if matches!(self.0, CondKind::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                match conds.as_slice() {
                    [] => Err(SoqlError::EmptyGroup),
                    [single] => single.render(out, nested),
                    many => {
                        if nested {
                            out.push('(');
                        }
                        for (i, cond) in many.iter().enumerate() {
                            if i > 0 {
                                out.push_str(joiner);
                            }
                            cond.render(out, true)?;
                        }
                        if nested {
                            out.push(')');
                        }
                        Ok(())
                    }
                }
            }
            CondKind::Not(inner) => {
                if nested {
                    out.push('(');
                }
                out.push_str("NOT ");
                inner.render(out, true)?;
                if nested {
                    out.push(')');
                }
                Ok(())
            }
        }
    }
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

/// Where nulls sort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nulls {
    First,
    Last,
}

#[derive(Debug, Clone, PartialEq)]
enum Projection {
    Fields(Vec<String>),
    Count,
}

/// A query under construction; [`SelectBuilder::build`] checks it.
#[derive(Debug, Clone, PartialEq)]
#[must_use = "call .build() to get the query"]
pub struct SelectBuilder {
    projection: Projection,
    from: Option<String>,
    filters: Vec<Cond>,
    order: Vec<(String, Order, Option<Nulls>)>,
    limit: Option<u32>,
    offset: Option<u32>,
}

impl SelectBuilder {
    /// The object to query.
    pub fn from(mut self, sobject: &str) -> Self {
        self.from = Some(sobject.to_string());
        self
    }
    /// Adds a condition; several are joined with AND.
    pub fn filter(mut self, cond: Cond) -> Self {
        self.filters.push(cond);
        self
    }
    pub fn order_by(mut self, field: &str, order: Order) -> Self {
        self.order.push((field.to_string(), order, None));
        self
    }
    pub fn order_by_nulls(mut self, field: &str, order: Order, nulls: Nulls) -> Self {
        self.order.push((field.to_string(), order, Some(nulls)));
        self
    }
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }
    pub fn offset(mut self, offset: u32) -> Self {
        self.offset = Some(offset);
        self
    }

    /// Checks every name and value and writes the query.
    pub fn build(self) -> Result<Soql, SoqlError> {
        let mut out = String::from("SELECT ");
        match &self.projection {
            Projection::Count => {
                if !self.order.is_empty() {
                    return Err(SoqlError::CountWithOrder);
                }
                out.push_str("COUNT()");
            }
            Projection::Fields(fields) => {
                if fields.is_empty() {
                    return Err(SoqlError::NoFields);
                }
                let mut seen: Vec<String> = Vec::with_capacity(fields.len());
                for (i, field) in fields.iter().enumerate() {
                    validate_identifier(field)?;
                    // Salesforce refuses a field selected twice, in any case.
                    let folded = field.to_ascii_lowercase();
                    if seen.contains(&folded) {
                        return Err(SoqlError::DuplicateField(field.clone()));
                    }
                    seen.push(folded);
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(field);
                }
            }
        }
        let from = self.from.as_deref().ok_or(SoqlError::MissingFrom)?;
        validate_identifier(from)?;
        out.push_str(" FROM ");
        out.push_str(from);
        if !self.filters.is_empty() {
            out.push_str(" WHERE ");
            Cond::and(self.filters).render(&mut out, false)?;
        }
        if !self.order.is_empty() {
            out.push_str(" ORDER BY ");
            for (i, (field, order, nulls)) in self.order.iter().enumerate() {
                validate_identifier(field)?;
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(field);
                out.push_str(match order {
                    Order::Asc => " ASC",
                    Order::Desc => " DESC",
                });
                match nulls {
                    Some(Nulls::First) => out.push_str(" NULLS FIRST"),
                    Some(Nulls::Last) => out.push_str(" NULLS LAST"),
                    None => {}
                }
            }
        }
        if let Some(limit) = self.limit {
            out.push_str(&format!(" LIMIT {limit}"));
        }
        if let Some(offset) = self.offset {
            if offset > MAX_OFFSET {
                return Err(SoqlError::OffsetTooLarge(offset));
            }
            out.push_str(&format!(" OFFSET {offset}"));
        }
        Ok(Soql(out))
    }
}

/// A complete SOQL query, safe to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Soql(String);

impl Soql {
    /// `SELECT field, ... FROM ...`.
    pub fn select(fields: &[&str]) -> SelectBuilder {
        SelectBuilder {
            projection: Projection::Fields(fields.iter().map(|f| f.to_string()).collect()),
            from: None,
            filters: Vec::new(),
            order: Vec::new(),
            limit: None,
            offset: None,
        }
    }

    /// `SELECT COUNT() FROM ...`: the answer is the page's `totalSize`.
    pub fn count() -> SelectBuilder {
        SelectBuilder {
            projection: Projection::Count,
            ..Self::select(&[])
        }
    }

    /// A fixed query written in our source. Only `&'static str` is accepted so that no
    /// runtime input can reach it.
    pub fn trusted(text: &'static str) -> Self {
        Soql(text.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Soql {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<SelectBuilder> for Soql {
    type Error = SoqlError;
    fn try_from(builder: SelectBuilder) -> Result<Self, Self::Error> {
        builder.build()
    }
}

#[cfg(test)]
mod tests;
