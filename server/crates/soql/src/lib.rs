//! SOQL for the sandbox org: a lexer and recursive-descent parser for the subset of Salesforce's
//! query language the sandbox org executes, a printer producing canonical SOQL, Salesforce's
//! error rendering, LIKE matching, and date-literal ranges.
//!
//! ```
//! let q = soql::parse("SELECT Id, Owner.Name FROM Case WHERE Status != 'Closed' LIMIT 10")?;
//! assert_eq!(q.from.name, "Case");
//! assert_eq!(q.to_string(), "SELECT Id, Owner.Name FROM Case WHERE Status != 'Closed' LIMIT 10");
//!
//! let err = soql::parse("SELECT Id FORM Case").unwrap_err();
//! assert_eq!(err.error_code(), "MALFORMED_QUERY");
//! assert_eq!(
//!     err.message("SELECT Id FORM Case"),
//!     "\nSELECT Id FORM Case\n          ^\nERROR at Row:1:Column:11\nunexpected token: FORM",
//! );
//! # Ok::<(), soql::SoqlError>(())
//! ```
//!
//! # The subset
//!
//! ```text
//! query     := SELECT items FROM object [WHERE cond] [WITH (SECURITY_ENFORCED|USER_MODE|SYSTEM_MODE)]
//!              [ORDER BY order {, order}] [LIMIT int] [OFFSET int] [FOR (VIEW|REFERENCE|UPDATE)]
//! items     := COUNT() | item {, item}          item := path | COUNT(path)
//! path      := name {. name}                    name := [A-Za-z][A-Za-z0-9_]*, not reserved
//! cond      := unary {AND unary} | unary {OR unary}    (mixing AND and OR needs parentheses)
//! unary     := NOT unary | ( cond ) | path op value | path LIKE 'string'
//!            | path [NOT] IN ( value {, value} )
//! op        := = | != | <> | < | > | <= | >=
//! value     := 'string' | number | true | false | null | date | dateTime | date literal
//! order     := path [ASC|DESC] [NULLS (FIRST|LAST)]
//! ```
//!
//! Keywords are case-insensitive; names are kept as written. Constructs outside the subset
//! (subqueries, `FIELDS()`, `TYPEOF`, aggregates other than COUNT, `GROUP BY`, `HAVING`,
//! semi-/anti-joins, `USING SCOPE`, `INCLUDES`/`EXCLUDES`, `WITH DATA CATEGORY`,
//! `UPDATE TRACKING|VIEWSTAT`, fiscal date literals) are MALFORMED_QUERY errors that name the
//! construct: "the sandbox org does not support GROUP BY".

// The workspace denies unwrap, expect and panic; unit tests may use them.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
// The parser reads untrusted input: no indexing that could panic either (this crate only).
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

mod ast;
mod date_literal;
mod error;
mod lexer;
mod like;
mod parser;
mod printer;

pub use ast::{
    CompareOp, Condition, FieldPath, ForClause, Ident, OrderItem, Query, SelectItem, Span, Value,
    WithClause,
};
pub use date_literal::DateLiteral;
pub use error::{ErrorCode, SoqlError, render_message};
pub use like::like_matches;
pub use parser::{MAX_CONDITION_DEPTH, MAX_NESTING, MAX_OFFSET, parse};
