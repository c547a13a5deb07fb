//! The SOQL engine: resolves a parsed query against the schema and the caller's access
//! (selecting a field hidden by field-level security is INVALID_FIELD, an object the caller
//! cannot read is INVALID_TYPE, as in Salesforce), filters the records the caller may see,
//! sorts, pages and renders them with relationship fields nested.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, Utc};
use salesforce::SalesforceId;
use serde_json::{Map, Value, json};
use soql::{CompareOp, Condition, DateLiteral, FieldPath, OrderItem, Query, SelectItem, Span};

use crate::access::{Access, Level, RecordSharing};
use crate::error::{SfError, SfResult};
use crate::schema::{self, FieldDef, FieldType, ObjectDef};
use crate::store::{OrgData, Record, parse_sf_datetime};

/// The result of running a query: every matching record, rendered.
pub struct QueryOutput {
    pub total_size: usize,
    pub records: Vec<Value>,
}

/// A resolved field path: relationship hops, then the final field.
#[derive(Debug, Clone)]
struct Resolved {
    /// (reference field on the current object, relationship name as canonical, targets)
    hops: Vec<(&'static FieldDef, &'static str)>,
    field: &'static FieldDef,
}

fn malformed(query: &str, span: Span, detail: &str) -> SfError {
    SfError::bad_request("MALFORMED_QUERY", soql::render_message(query, span, detail))
}

fn invalid_field(query: &str, span: Span, detail: String) -> SfError {
    SfError::bad_request("INVALID_FIELD", soql::render_message(query, span, &detail))
}

fn invalid_type(query: &str, span: Span, name: &str) -> SfError {
    SfError::bad_request(
        "INVALID_TYPE",
        soql::render_message(
            query,
            span,
            &format!(
                "sObject type '{name}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."
            ),
        ),
    )
}

fn filter_error(query: &str, span: Span, detail: String) -> SfError {
    SfError::bad_request(
        "INVALID_QUERY_FILTER_OPERATOR",
        soql::render_message(query, span, &detail),
    )
}

struct Resolver<'a> {
    text: &'a str,
    access: &'a Access,
    root: &'static ObjectDef,
}

impl Resolver<'_> {
    fn resolve(&self, path: &FieldPath) -> SfResult<Resolved> {
        let mut object = self.root;
        let mut hops = Vec::new();
        let parts = &path.parts;
        let Some((last, relationships)) = parts.split_last() else {
            return Err(malformed(self.text, path.span, "unexpected token: <EOF>"));
        };
        // A path may start with the object's own name: `Case.Subject`.
        let relationships = match relationships.first() {
            Some(first)
                if first.eq_ignore_ascii_case(self.root.name)
                    && !relationships.is_empty()
                    && parts.len() >= 2 =>
            {
                &relationships[1..]
            }
            _ => relationships,
        };
        for relationship in relationships {
            let Some(reference) = object.relationship(relationship) else {
                return Err(invalid_field(
                    self.text,
                    path.span,
                    format!(
                        "Didn't understand relationship '{relationship}' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names."
                    ),
                ));
            };
            if !self.access.field_readable(object, reference) {
                return Err(self.no_such_column(path, relationship, object));
            }
            let FieldType::Reference {
                to,
                relationship: canonical,
            } = &reference.field_type
            else {
                return Err(self.no_such_column(path, relationship, object));
            };
            let Some(target) = to.first().and_then(|t| schema::object_def(t)) else {
                return Err(self.no_such_column(path, relationship, object));
            };
            if !self.access.can_read_object(target) {
                return Err(invalid_field(
                    self.text,
                    path.span,
                    format!(
                        "Didn't understand relationship '{relationship}' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names."
                    ),
                ));
            }
            hops.push((reference, *canonical));
            object = target;
        }
        let field = object
            .field(last)
            .filter(|f| self.access.field_readable(object, f))
            .ok_or_else(|| self.no_such_column(path, last, object))?;
        Ok(Resolved { hops, field })
    }

    fn no_such_column(&self, path: &FieldPath, name: &str, object: &ObjectDef) -> SfError {
        invalid_field(
            self.text,
            path.span,
            format!(
                "No such column '{name}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
                object.name
            ),
        )
    }
}

/// A resolved WHERE clause.
enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Compare(Resolved, CompareOp, Operand),
    In(Resolved, bool, Vec<Operand>),
    Like(Resolved, String),
}

/// A literal converted to the field's domain.
#[derive(Debug, Clone)]
enum Operand {
    Null,
    Bool(bool),
    Number(f64),
    Text(String),
    Id(String),
    Instant(DateTime<Utc>),
    Day(NaiveDate),
    Range(DateTime<Utc>, DateTime<Utc>),
}

fn value_type_name(field: &FieldDef) -> &'static str {
    match field.field_type {
        FieldType::Boolean { .. } => "boolean",
        FieldType::DateTime => "dateTime",
        FieldType::Date => "date",
        FieldType::Int | FieldType::Double | FieldType::Currency => "number",
        FieldType::Id | FieldType::Reference { .. } => "id",
        _ => "string",
    }
}

fn operand(
    text: &str,
    span: Span,
    field: &FieldDef,
    value: &soql::Value,
    now: DateTime<Utc>,
) -> SfResult<Operand> {
    use soql::Value as V;
    let mismatch = || {
        filter_error(
            text,
            span,
            format!(
                "value of filter criterion for field '{}' must be of type {} and should not be enclosed in quotes",
                field.name,
                value_type_name(field)
            ),
        )
    };
    if let V::Null = value {
        return Ok(Operand::Null);
    }
    Ok(match &field.field_type {
        FieldType::Boolean { .. } => match value {
            V::Bool(b) => Operand::Bool(*b),
            _ => return Err(mismatch()),
        },
        FieldType::Int | FieldType::Double | FieldType::Currency => match value {
            V::Number(n) => Operand::Number(n.parse().map_err(|_| mismatch())?),
            _ => return Err(mismatch()),
        },
        FieldType::DateTime => match value {
            V::DateTime(at) => Operand::Instant(at.with_timezone(&Utc)),
            V::DateLiteral(literal) => {
                let (start, end) = literal.range(now);
                Operand::Range(start, end)
            }
            V::Date(_) => {
                return Err(filter_error(
                    text,
                    span,
                    format!(
                        "value of filter criterion for field '{}' must be of type dateTime and should not be enclosed in quotes",
                        field.name
                    ),
                ));
            }
            _ => return Err(mismatch()),
        },
        FieldType::Date => match value {
            V::Date(day) => Operand::Day(*day),
            V::DateLiteral(literal) => {
                let (start, end) = date_literal_days(*literal, now);
                Operand::Range(start, end)
            }
            _ => return Err(mismatch()),
        },
        FieldType::Id | FieldType::Reference { .. } => match value {
            V::String(s) => match SalesforceId::parse(s) {
                Ok(id) => Operand::Id(id.as_str().to_string()),
                Err(_) => {
                    return Err(filter_error(text, span, format!("invalid ID field: {s}")));
                }
            },
            _ => return Err(mismatch()),
        },
        _ => match value {
            V::String(s) => Operand::Text(s.clone()),
            _ => return Err(mismatch()),
        },
    })
}

fn date_literal_days(literal: DateLiteral, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    literal.range(now)
}

struct Builder<'a> {
    resolver: Resolver<'a>,
    now: DateTime<Utc>,
}

impl Builder<'_> {
    fn filter(&self, condition: &Condition) -> SfResult<Filter> {
        let text = self.resolver.text;
        Ok(match condition {
            Condition::And(a, b) => {
                Filter::And(Box::new(self.filter(a)?), Box::new(self.filter(b)?))
            }
            Condition::Or(a, b) => Filter::Or(Box::new(self.filter(a)?), Box::new(self.filter(b)?)),
            Condition::Not(c) => Filter::Not(Box::new(self.filter(c)?)),
            Condition::Compare { field, op, value } => {
                let resolved = self.resolver.resolve(field)?;
                let operand = operand(text, field.span, resolved.field, value, self.now)?;
                if matches!(operand, Operand::Null) && !matches!(op, CompareOp::Eq | CompareOp::Ne)
                {
                    return Err(filter_error(
                        text,
                        field.span,
                        "null can only be compared with = or !=".into(),
                    ));
                }
                if matches!(resolved.field.field_type, FieldType::Boolean { .. })
                    && !matches!(op, CompareOp::Eq | CompareOp::Ne)
                {
                    return Err(filter_error(
                        text,
                        field.span,
                        format!("invalid operator on field '{}'", resolved.field.name),
                    ));
                }
                Filter::Compare(resolved, *op, operand)
            }
            Condition::In {
                field,
                negated,
                values,
            } => {
                let resolved = self.resolver.resolve(field)?;
                let operands = values
                    .iter()
                    .map(|v| operand(text, field.span, resolved.field, v, self.now))
                    .collect::<SfResult<Vec<_>>>()?;
                Filter::In(resolved, *negated, operands)
            }
            Condition::Like { field, pattern } => {
                let resolved = self.resolver.resolve(field)?;
                let textual = matches!(
                    resolved.field.field_type,
                    FieldType::String { .. }
                        | FieldType::TextArea { .. }
                        | FieldType::Email
                        | FieldType::Phone
                        | FieldType::Url
                        | FieldType::Picklist { .. }
                        | FieldType::AutoNumber
                        | FieldType::Id
                        | FieldType::Reference { .. }
                );
                if !textual
                    || matches!(resolved.field.field_type, FieldType::TextArea { length } if length > 255)
                {
                    return Err(filter_error(
                        text,
                        field.span,
                        format!(
                            "invalid operator on field '{}': LIKE applies to text fields",
                            resolved.field.name
                        ),
                    ));
                }
                Filter::Like(resolved, pattern.clone())
            }
        })
    }
}

/// Reads a resolved path's value from a record, following relationships.
fn lookup<'d>(data: &'d OrgData, record: &'d Record, path: &Resolved) -> Option<&'d Value> {
    let mut current = record;
    for (reference, _) in &path.hops {
        let id = current.get(reference.name)?.as_str()?;
        let target = schema::object_by_prefix(id.get(..3)?)?;
        current = data.get(target.name, id)?;
    }
    current.get(path.field.name)
}

fn compare_values(field: &FieldDef, actual: &Value, operand: &Operand) -> Option<Ordering> {
    match operand {
        Operand::Null => None,
        Operand::Bool(b) => actual.as_bool().map(|a| a.cmp(b)),
        Operand::Number(n) => actual.as_f64().and_then(|a| a.partial_cmp(n)),
        Operand::Text(t) => actual
            .as_str()
            .map(|a| a.to_lowercase().cmp(&t.to_lowercase())),
        Operand::Id(id) => actual.as_str().map(|a| {
            let a18 = SalesforceId::parse(a)
                .map(|x| x.as_str().to_string())
                .unwrap_or_else(|_| a.to_string());
            a18.cmp(id)
        }),
        Operand::Instant(at) => actual
            .as_str()
            .and_then(parse_sf_datetime)
            .map(|a| a.cmp(at)),
        Operand::Day(day) => actual
            .as_str()
            .and_then(|a| NaiveDate::parse_from_str(a.get(..10)?, "%Y-%m-%d").ok())
            .map(|a| a.cmp(day)),
        Operand::Range(..) => {
            let _ = field;
            None
        }
    }
}

fn instant_of(field: &FieldDef, actual: &Value) -> Option<DateTime<Utc>> {
    let raw = actual.as_str()?;
    match field.field_type {
        FieldType::Date => NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc()),
        _ => parse_sf_datetime(raw),
    }
}

fn eval_compare(
    field: &FieldDef,
    actual: Option<&Value>,
    op: CompareOp,
    operand: &Operand,
) -> bool {
    let actual = actual.filter(|v| !v.is_null());
    if let Operand::Null = operand {
        return match op {
            CompareOp::Eq => actual.is_none(),
            CompareOp::Ne => actual.is_some(),
            _ => false,
        };
    }
    let Some(actual) = actual else {
        return op == CompareOp::Ne;
    };
    if let Operand::Range(start, end) = operand {
        let Some(at) = instant_of(field, actual) else {
            return false;
        };
        return match op {
            CompareOp::Eq => at >= *start && at < *end,
            CompareOp::Ne => !(at >= *start && at < *end),
            CompareOp::Lt => at < *start,
            CompareOp::Le => at < *end,
            CompareOp::Gt => at >= *end,
            CompareOp::Ge => at >= *start,
        };
    }
    let Some(ordering) = compare_values(field, actual, operand) else {
        return op == CompareOp::Ne;
    };
    match op {
        CompareOp::Eq => ordering == Ordering::Equal,
        CompareOp::Ne => ordering != Ordering::Equal,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Le => ordering != Ordering::Greater,
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Ge => ordering != Ordering::Less,
    }
}

fn eval(data: &OrgData, record: &Record, filter: &Filter) -> bool {
    match filter {
        Filter::And(a, b) => eval(data, record, a) && eval(data, record, b),
        Filter::Or(a, b) => eval(data, record, a) || eval(data, record, b),
        Filter::Not(c) => !eval(data, record, c),
        Filter::Compare(path, op, operand) => {
            eval_compare(path.field, lookup(data, record, path), *op, operand)
        }
        Filter::In(path, negated, operands) => {
            let actual = lookup(data, record, path);
            let found = operands
                .iter()
                .any(|o| eval_compare(path.field, actual, CompareOp::Eq, o));
            found != *negated
        }
        Filter::Like(path, pattern) => lookup(data, record, path)
            .and_then(Value::as_str)
            .is_some_and(|text| soql::like_matches(pattern, text)),
    }
}

fn order(data: &OrgData, a: &Record, b: &Record, items: &[(Resolved, &OrderItem)]) -> Ordering {
    for (path, item) in items {
        let (x, y) = (
            lookup(data, a, path).filter(|v| !v.is_null()),
            lookup(data, b, path).filter(|v| !v.is_null()),
        );
        let ordering = match (x, y) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => {
                if item.nulls_last {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (Some(_), None) => {
                if item.nulls_last {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (Some(x), Some(y)) => {
                let o = match (x, y) {
                    (Value::Number(p), Value::Number(q)) => p
                        .as_f64()
                        .partial_cmp(&q.as_f64())
                        .unwrap_or(Ordering::Equal),
                    (Value::Bool(p), Value::Bool(q)) => p.cmp(q),
                    (Value::String(p), Value::String(q)) => p.to_lowercase().cmp(&q.to_lowercase()),
                    _ => Ordering::Equal,
                };
                if item.descending { o.reverse() } else { o }
            }
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}

/// Renders the selected fields of a record, relationships as nested objects.
fn project(
    data: &OrgData,
    def: &ObjectDef,
    id: &str,
    record: &Record,
    fields: &[Resolved],
    version: &str,
) -> Value {
    let mut out = Map::new();
    out.insert(
        "attributes".into(),
        json!({ "type": def.name, "url": format!("/services/data/v{version}/sobjects/{}/{id}", def.name) }),
    );
    for path in fields {
        insert_path(data, &mut out, record, &path.hops, path.field, version);
    }
    Value::Object(out)
}

fn insert_path(
    data: &OrgData,
    out: &mut Map<String, Value>,
    record: &Record,
    hops: &[(&'static FieldDef, &'static str)],
    field: &'static FieldDef,
    version: &str,
) {
    match hops.split_first() {
        None => {
            out.insert(
                field.name.into(),
                record.get(field.name).cloned().unwrap_or(Value::Null),
            );
        }
        Some(((reference, relationship), rest)) => {
            let target = record
                .get(reference.name)
                .and_then(Value::as_str)
                .and_then(|id| {
                    let def = schema::object_by_prefix(id.get(..3)?)?;
                    data.get(def.name, id).map(|r| (def, id, r))
                });
            match target {
                None => {
                    if !out.contains_key(*relationship) {
                        out.insert((*relationship).into(), Value::Null);
                    }
                }
                Some((target_def, target_id, target_record)) => {
                    let entry = out.entry(relationship.to_string()).or_insert_with(|| {
                        json!({ "attributes": { "type": target_def.name, "url": format!("/services/data/v{version}/sobjects/{}/{target_id}", target_def.name) } })
                    });
                    if let Value::Object(nested) = entry {
                        insert_path(data, nested, target_record, rest, field, version);
                    }
                }
            }
        }
    }
}

/// Runs a SOQL query as `access`.
pub fn run(
    data: &OrgData,
    access: &Access,
    text: &str,
    include_deleted: bool,
    version: &str,
    now: DateTime<Utc>,
) -> SfResult<QueryOutput> {
    if text.trim().is_empty() {
        return Err(SfError::bad_request(
            "MALFORMED_QUERY",
            "SOQL statements cannot be empty or null",
        ));
    }
    let query: Query =
        soql::parse(text).map_err(|e| SfError::bad_request(e.error_code(), e.message(text)))?;
    let root = schema::object_def(&query.from.name)
        .filter(|def| access.can_read_object(def))
        .ok_or_else(|| invalid_type(text, query.from.span, &query.from.name))?;
    let resolver = Resolver { text, access, root };

    let mut fields = Vec::new();
    let mut count: Option<Option<Span>> = None;
    for item in &query.select {
        match item {
            SelectItem::Field(path) => fields.push(resolver.resolve(path)?),
            SelectItem::Count { field, span } => {
                if let Some(path) = field {
                    resolver.resolve(path)?;
                    count = Some(Some(*span));
                } else {
                    count = Some(None);
                }
            }
        }
    }
    let builder = Builder { resolver, now };
    let filter = query
        .where_clause
        .as_ref()
        .map(|c| builder.filter(c))
        .transpose()?;
    let order_by = query
        .order_by
        .iter()
        .map(|item| builder.resolver.resolve(&item.field).map(|p| (p, item)))
        .collect::<SfResult<Vec<_>>>()?;

    let mut sharing = RecordSharing::new(data, access);
    let mut matches: Vec<(&String, &Record)> = data
        .table(root.name)
        .filter(|(_, r)| {
            include_deleted || !r.get("IsDeleted").and_then(Value::as_bool).unwrap_or(false)
        })
        .filter(|(_, r)| filter.as_ref().is_none_or(|f| eval(data, r, f)))
        .collect();
    matches.retain(|(id, r)| sharing.level(root, id, r) >= Level::Read);

    if !order_by.is_empty() {
        matches.sort_by(|(_, a), (_, b)| order(data, a, b, &order_by));
    }
    let offset = query.offset.unwrap_or(0) as usize;
    let matches: Vec<(&String, &Record)> = matches
        .into_iter()
        .skip(offset)
        .take(query.limit.map(|l| l as usize).unwrap_or(usize::MAX))
        .collect();

    match count {
        Some(None) => Ok(QueryOutput {
            total_size: matches.len(),
            records: Vec::new(),
        }),
        Some(Some(_)) => Ok(QueryOutput {
            total_size: 1,
            records: vec![
                json!({ "attributes": { "type": "AggregateResult" }, "expr0": matches.len() }),
            ],
        }),
        None => {
            let records: Vec<Value> = matches
                .iter()
                .map(|(id, r)| project(data, root, id, r, &fields, version))
                .collect();
            Ok(QueryOutput {
                total_size: records.len(),
                records,
            })
        }
    }
}
