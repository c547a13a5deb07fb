//! How a record's body is checked and coerced as Salesforce does: unknown and read-only
//! fields, field-level security, JSON types, lengths, restricted picklists, ids and
//! references; duplicate values; shares above the org-wide default.

use super::*;

pub(super) fn cannot_write(fields: &[String]) -> SfError {
    SfError::bad_request(
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        format!(
            "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
            fields.join(", ")
        ),
    )
    .with_fields(fields.iter().cloned())
}

pub(super) fn no_object_access(def: &ObjectDef, verb: &str) -> SfError {
    SfError::bad_request(
        "INSUFFICIENT_ACCESS_OR_READONLY",
        format!(
            "You do not have permission to {verb} {} records.",
            def.label
        ),
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Create,
    Update,
}

/// Checks and converts the body's fields: returns the typed values to store.
pub(super) fn validate_body(
    data: &OrgData,
    actor: &Actor<'_>,
    def: &ObjectDef,
    body: &Map<String, Value>,
    op: Op,
) -> SfResult<Vec<(&'static str, Value)>> {
    let mut values = Vec::new();
    let mut not_writable = Vec::new();
    for (key, value) in body {
        if key == "attributes" {
            continue;
        }
        if key.eq_ignore_ascii_case("Id") {
            if op == Op::Create {
                return Err(SfError::bad_request(
                    "INVALID_FIELD",
                    "The Id field should not be specified in the sobject data.",
                ));
            }
            // PATCH bodies may repeat the record's Id (collections do); it is not a change.
            continue;
        }
        let Some(field) = def.field(key) else {
            return Err(SfError::bad_request(
                "INVALID_FIELD",
                format!("No such column '{key}' on sobject of type {}", def.name),
            )
            .with_fields([key.clone()]));
        };
        let allowed = matches!(
            (field.access, op),
            (FieldAccess::ReadWrite, _) | (FieldAccess::CreateOnly, Op::Create)
        );
        if !allowed || !actor.access.field_editable(def, field) {
            not_writable.push(field.name.to_string());
            continue;
        }
        values.push((field.name, coerce(data, def, field, value)?));
    }
    if !not_writable.is_empty() {
        return Err(cannot_write(&not_writable));
    }
    Ok(values)
}

pub(super) fn too_long(field: &FieldDef, value: &str, max: u32) -> SfError {
    let shown: String = value.chars().take(40).collect();
    SfError::bad_request(
        "STRING_TOO_LONG",
        format!(
            "{}: data value too large: {shown} (max length={max})",
            field.label
        ),
    )
    .with_fields([field.name])
}

pub(super) fn wrong_json_type(field: &FieldDef, value: &Value, expected: &str) -> SfError {
    SfError::json_parse(format!(
        "Cannot deserialize instance of {expected} from {} value {} or request may be missing a required field",
        match value {
            Value::String(_) => "VALUE_STRING",
            Value::Number(_) => "VALUE_NUMBER",
            Value::Bool(_) => "VALUE_TRUE_OR_FALSE",
            Value::Array(_) => "START_ARRAY",
            Value::Object(_) => "START_OBJECT",
            Value::Null => "VALUE_NULL",
        },
        truncate(&value.to_string(), 40)
    ))
    .with_fields([field.name])
}

pub(super) fn truncate(text: &str, n: usize) -> String {
    text.chars().take(n).collect()
}

pub fn valid_email(raw: &str) -> bool {
    let Some((local, domain)) = raw.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !raw
            .chars()
            .any(|c| c.is_whitespace() || c == ',' || c == ';' || c == '<' || c == '>')
        && !domain.contains('@')
}

/// Converts a JSON value to what the field stores, or the error Salesforce would give.
pub(super) fn coerce(
    data: &OrgData,
    def: &ObjectDef,
    field: &FieldDef,
    value: &Value,
) -> SfResult<Value> {
    if value.is_null() {
        if !field.nillable && !matches!(field.field_type, FieldType::Boolean { .. }) {
            return Err(SfError::bad_request(
                "REQUIRED_FIELD_MISSING",
                format!("Required fields are missing: [{}]", field.name),
            )
            .with_fields([field.name]));
        }
        if let FieldType::Boolean { .. } = field.field_type {
            return Err(wrong_json_type(field, value, "boolean"));
        }
        return Ok(Value::Null);
    }
    match &field.field_type {
        FieldType::Boolean { .. } => match value {
            Value::Bool(_) => Ok(value.clone()),
            Value::String(s)
                if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
            {
                Ok(Value::Bool(s.eq_ignore_ascii_case("true")))
            }
            _ => Err(wrong_json_type(field, value, "boolean")),
        },
        FieldType::Int => match value {
            Value::Number(n) if n.is_i64() => Ok(value.clone()),
            Value::Number(n) => match n.as_f64() {
                Some(f) if f.fract() == 0.0 => Ok(json!(f as i64)),
                _ => Err(wrong_json_type(field, value, "int")),
            },
            Value::String(s) => s
                .trim()
                .parse::<i64>()
                .map(|n| json!(n))
                .map_err(|_| wrong_json_type(field, value, "int")),
            _ => Err(wrong_json_type(field, value, "int")),
        },
        FieldType::Double | FieldType::Currency => match value {
            Value::Number(_) => Ok(value.clone()),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(|f| json!(f))
                .ok_or_else(|| wrong_json_type(field, value, "double")),
            _ => Err(wrong_json_type(field, value, "double")),
        },
        FieldType::Date => {
            let Value::String(s) = value else {
                return Err(wrong_json_type(field, value, "date"));
            };
            chrono::NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d")
                .map(|d| json!(d.format("%Y-%m-%d").to_string()))
                .map_err(|_| {
                    SfError::json_parse(format!(
                        "Cannot deserialize value of type `java.util.Date` from String \"{}\": expected format \"yyyy-MM-dd\"",
                        truncate(s, 40)
                    ))
                    .with_fields([field.name])
                })
        }
        FieldType::DateTime => {
            let Value::String(s) = value else {
                return Err(wrong_json_type(field, value, "datetime"));
            };
            let parsed = parse_sf_datetime(s).or_else(|| {
                chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .map(|d| d.and_utc())
            });
            parsed.map(|at| json!(sf_datetime(at))).ok_or_else(|| {
                SfError::json_parse(format!(
                    "Cannot deserialize value of type `java.util.Date` from String \"{}\": not a valid representation",
                    truncate(s, 40)
                ))
                .with_fields([field.name])
            })
        }
        FieldType::Id | FieldType::Reference { .. } => {
            let Value::String(s) = value else {
                return Err(wrong_json_type(field, value, "id"));
            };
            let targets: &[&str] = match &field.field_type {
                FieldType::Reference { to, .. } => to,
                _ => &[],
            };
            let id = SalesforceId::parse(s).map_err(|_| {
                SfError::bad_request(
                    "MALFORMED_ID",
                    format!(
                        "{}: id value of incorrect type: {}",
                        field.label,
                        truncate(s, 40)
                    ),
                )
                .with_fields([field.name])
            })?;
            let target =
                schema::object_by_prefix(id.key_prefix()).filter(|t| targets.contains(&t.name));
            let Some(target) = target else {
                return Err(SfError::bad_request(
                    "FIELD_INTEGRITY_EXCEPTION",
                    format!("{}: id value of incorrect type: {s}", field.label),
                )
                .with_fields([field.name]));
            };
            match data.get(target.name, id.as_str()) {
                Some(r) if !bool_of(r, "IsDeleted") => Ok(json!(id.as_str())),
                _ => Err(SfError::bad_request(
                    "INVALID_CROSS_REFERENCE_KEY",
                    "invalid cross reference id".to_string(),
                )
                .with_fields([field.name])),
            }
        }
        FieldType::Picklist {
            values, restricted, ..
        } => {
            let Value::String(s) = value else {
                return Err(wrong_json_type(field, value, "String"));
            };
            match values.iter().find(|v| v.eq_ignore_ascii_case(s)) {
                Some(v) => Ok(json!(v)),
                None if *restricted => Err(SfError::bad_request(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    format!(
                        "{}: bad value for restricted picklist field: {}",
                        field.label,
                        truncate(s, 80)
                    ),
                )
                .with_fields([field.name])),
                None => Ok(json!(s)),
            }
        }
        FieldType::Email => {
            let Value::String(s) = value else {
                return Err(wrong_json_type(field, value, "String"));
            };
            if s.len() > 80 {
                return Err(too_long(field, s, 80));
            }
            if !valid_email(s) {
                return Err(SfError::bad_request(
                    "INVALID_EMAIL_ADDRESS",
                    format!(
                        "{}: invalid email address: {}",
                        field.label,
                        truncate(s, 80)
                    ),
                )
                .with_fields([field.name]));
            }
            Ok(json!(s))
        }
        _ => {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return Err(wrong_json_type(field, value, "String")),
            };
            if let Some(max) = field.field_type.max_length()
                && text.chars().count() > max as usize
            {
                return Err(too_long(field, &text, max));
            }
            let _ = def;
            Ok(Value::String(text))
        }
    }
}

pub(super) fn duplicate_value(field: &str, existing_id: &str) -> SfError {
    SfError::bad_request(
        "DUPLICATE_VALUE",
        format!("duplicate value found: {field} duplicates value on record with id: {existing_id}"),
    )
    .with_fields([field.to_string()])
}

/// The org-wide default of `object` (the Organization's `Default<Object>Access`; for a
/// custom object its EntityDefinition `InternalSharingModel`, in the Organization's words).
pub fn org_wide_default(data: &OrgData, object: &str) -> String {
    if object.ends_with("__c") {
        let model = data
            .find_by("EntityDefinition", "QualifiedApiName", object)
            .and_then(|(_, r)| str_of(r, "InternalSharingModel").map(str::to_string))
            .unwrap_or_else(|| "Private".into());
        return match model.as_str() {
            "Private" => "None",
            "ReadWrite" => "Edit",
            "ReadWriteTransfer" => "ReadEditTransfer",
            "FullAccess" => "All",
            other => other,
        }
        .to_string();
    }
    data.get("Organization", &data.org_id)
        .and_then(|org| str_of(org, &format!("Default{object}Access")).map(str::to_string))
        .unwrap_or_else(|| "None".into())
}

/// A manual share must give more than the object's org-wide default. A real org refuses
/// an equal or lower level with INVALID_ACCESS_LEVEL ("... are below organization levels").
/// With Contact sharing Controlled by Parent there is no manual ContactShare at all.
/// UNCONFIRMED: the code for a ContactShare under Controlled by Parent (the stricter
/// reading: refused, with the same code) and the exact message texts.
pub(super) fn check_share_above_default(
    data: &OrgData,
    object: &str,
    level: &str,
) -> Result<(), SfError> {
    let default = org_wide_default(data, object);
    let rank = |l: &str| match l {
        "Read" => 1,
        "Edit" => 2,
        "ReadEditTransfer" | "All" => 3,
        _ => 0,
    };
    let field = format!("{object}AccessLevel");
    if default == "ControlledByParent" {
        return Err(SfError::bad_request(
            "INVALID_ACCESS_LEVEL",
            format!(
                "{object} sharing is Controlled by Parent: {object} records cannot be shared manually ({object} level {level} is below organization level ControlledByParent)"
            ),
        )
        .with_fields([field.as_str()]));
    }
    if rank(level) <= rank(&default) {
        return Err(SfError::bad_request(
            "INVALID_ACCESS_LEVEL",
            format!("{object} level ({level}) is below organization level ({default})"),
        )
        .with_fields([field.as_str()]));
    }
    Ok(())
}

pub(super) fn integrity(message: impl Into<String>) -> SfError {
    SfError::bad_request("FIELD_INTEGRITY_EXCEPTION", message)
}
