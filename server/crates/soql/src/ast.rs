//! The syntax tree `parse` produces and `Display` prints back.

use crate::date_literal::DateLiteral;

/// Byte offsets into the original query text: `start` inclusive, `end` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub const fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The span covering both `self` and `other`.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub select: Vec<SelectItem>,
    pub from: Ident,
    pub where_clause: Option<Condition>,
    pub order_by: Vec<OrderItem>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
    /// `WITH SECURITY_ENFORCED` / `WITH USER_MODE` / `WITH SYSTEM_MODE`, parsed and kept.
    pub with: Option<WithClause>,
    /// `FOR VIEW` / `FOR REFERENCE` / `FOR UPDATE`, parsed and kept.
    pub for_clause: Option<ForClause>,
}

/// An object name, exactly as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A field or relationship path, as written: `Owner.Name` is `["Owner", "Name"]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldPath {
    pub parts: Vec<String>,
    pub span: Span,
}

impl FieldPath {
    /// The path as written, parts joined with `.`.
    pub fn dotted(&self) -> String {
        self.parts.join(".")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    Field(FieldPath),
    /// COUNT() (field None) or COUNT(field)
    Count {
        field: Option<FieldPath>,
        span: Span,
    },
}

impl SelectItem {
    pub fn span(&self) -> Span {
        match self {
            SelectItem::Field(f) => f.span,
            SelectItem::Count { span, .. } => *span,
        }
    }
}

/// A WHERE condition. `a AND b AND c` is left-nested: `And(And(a, b), c)`.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    Not(Box<Condition>),
    Compare {
        field: FieldPath,
        op: CompareOp,
        value: Value,
    },
    In {
        field: FieldPath,
        negated: bool,
        values: Vec<Value>,
    },
    /// `pattern` is the unescaped string, with `\%`, `\_` and `\\` kept escaped, so that
    /// a literal `%`, `_` or backslash differs from a wildcard (see [`crate::like_matches`]).
    Like {
        field: FieldPath,
        pattern: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    /// `!=` or `<>`
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

impl CompareOp {
    /// The operator as SOQL writes it (`<>` prints as `!=`).
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Gt => ">",
            CompareOp::Le => "<=",
            CompareOp::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// The number as written (e.g. "-12.50"), so no precision is lost; see [`Value::as_f64`].
    Number(String),
    /// Unescaped content; `\%` and `\_` keep their backslash.
    String(String),
    /// 2026-11-22
    Date(chrono::NaiveDate),
    /// 2026-11-22T10:00:00Z, ...+01:00, with optional fraction of a second. Note that chrono
    /// compares these by instant: `10:00:00+01:00 == 09:00:00Z`.
    DateTime(chrono::DateTime<chrono::FixedOffset>),
    DateLiteral(DateLiteral),
}

impl Value {
    /// The number's value, for `Value::Number` only. Every number the parser accepts converts
    /// (possibly rounding, e.g. for more than ~17 significant digits).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(text) => text.parse::<f64>().ok(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderItem {
    pub field: FieldPath,
    /// `DESC`; ascending is the default.
    pub descending: bool,
    /// `NULLS LAST`; Salesforce's default is `NULLS FIRST` in either direction.
    pub nulls_last: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithClause {
    SecurityEnforced,
    UserMode,
    SystemMode,
}

impl WithClause {
    pub fn as_str(self) -> &'static str {
        match self {
            WithClause::SecurityEnforced => "SECURITY_ENFORCED",
            WithClause::UserMode => "USER_MODE",
            WithClause::SystemMode => "SYSTEM_MODE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForClause {
    View,
    Reference,
    Update,
}

impl ForClause {
    pub fn as_str(self) -> &'static str {
        match self {
            ForClause::View => "VIEW",
            ForClause::Reference => "REFERENCE",
            ForClause::Update => "UPDATE",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Span-insensitive comparison: a copy with every span set to `Span::default()`.

impl Query {
    /// A copy with every span zeroed, so that two queries that differ only in layout compare
    /// equal (used by the printer's round-trip tests).
    pub fn without_spans(&self) -> Query {
        Query {
            select: self.select.iter().map(SelectItem::without_spans).collect(),
            from: self.from.without_spans(),
            where_clause: self.where_clause.as_ref().map(Condition::without_spans),
            order_by: self.order_by.iter().map(OrderItem::without_spans).collect(),
            limit: self.limit,
            offset: self.offset,
            with: self.with,
            for_clause: self.for_clause,
        }
    }
}

impl Ident {
    pub fn without_spans(&self) -> Ident {
        Ident {
            name: self.name.clone(),
            span: Span::default(),
        }
    }
}

impl FieldPath {
    pub fn without_spans(&self) -> FieldPath {
        FieldPath {
            parts: self.parts.clone(),
            span: Span::default(),
        }
    }
}

impl SelectItem {
    pub fn without_spans(&self) -> SelectItem {
        match self {
            SelectItem::Field(f) => SelectItem::Field(f.without_spans()),
            SelectItem::Count { field, .. } => SelectItem::Count {
                field: field.as_ref().map(FieldPath::without_spans),
                span: Span::default(),
            },
        }
    }
}

impl OrderItem {
    pub fn without_spans(&self) -> OrderItem {
        OrderItem {
            field: self.field.without_spans(),
            descending: self.descending,
            nulls_last: self.nulls_last,
        }
    }
}

impl Condition {
    pub fn without_spans(&self) -> Condition {
        match self {
            Condition::And(a, b) => {
                Condition::And(Box::new(a.without_spans()), Box::new(b.without_spans()))
            }
            Condition::Or(a, b) => {
                Condition::Or(Box::new(a.without_spans()), Box::new(b.without_spans()))
            }
            Condition::Not(c) => Condition::Not(Box::new(c.without_spans())),
            Condition::Compare { field, op, value } => Condition::Compare {
                field: field.without_spans(),
                op: *op,
                value: value.clone(),
            },
            Condition::In {
                field,
                negated,
                values,
            } => Condition::In {
                field: field.without_spans(),
                negated: *negated,
                values: values.clone(),
            },
            Condition::Like { field, pattern } => Condition::Like {
                field: field.without_spans(),
                pattern: pattern.clone(),
            },
        }
    }
}
