//! Composite (`/composite`: up to 25 subrequests, `@{ref.field}` references, allOrNone with
//! rollback) and sObject Collections (`/composite/sobjects`: up to 200 records).

use std::collections::HashMap;

use axum::http::{HeaderMap, Method, StatusCode};
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::error::{SfError, SfResult};
use crate::records;
use crate::rest::{Body, Call, Reply, dispatch};
use crate::schema;

const MAX_SUBREQUESTS: usize = 25;
const MAX_COLLECTION: usize = 200;

/// A subrequest's status, body and response headers.
type SubResult = (u16, Value, Map<String, Value>);

/// Objects whose DML Salesforce treats as "setup" for MIXED_DML_OPERATION.
pub fn is_setup_dml(object: &str) -> bool {
    matches!(
        object,
        "User"
            | "UserLogin"
            | "PermissionSet"
            | "ObjectPermissions"
            | "FieldPermissions"
            | "PermissionSetAssignment"
            | "PermissionSetLicenseAssign"
            | "Group"
            | "GroupMember"
    )
}

fn batch_error(message: impl Into<String>) -> SfError {
    SfError::bad_request("INVALID_BATCH_REQUEST", message)
}

fn processing_halted(message: &str) -> Value {
    json!([{ "errorCode": "PROCESSING_HALTED", "message": message }])
}

/// Resolves `@{ref.path}` against earlier results. `Err` names the reference that failed.
fn resolve_references(
    text: &str,
    results: &HashMap<String, (u16, Value)>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("@{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let expression = &after[..end];
        let (reference, path) = expression.split_once('.').unwrap_or((expression, ""));
        let Some((status, body)) = results.get(reference) else {
            return Err(format!(
                "Invalid reference specified. No value for {expression} found in {reference}. Provided referenceId ('{reference}') refers to a subrequest that doesn't exist or hasn't run yet."
            ));
        };
        if *status >= 400 {
            return Err(format!(
                "Invalid reference specified. No value for {expression} found in {reference}. Provided referenceId ('{reference}') refers to a failed subrequest."
            ));
        }
        let value = walk(body, path).ok_or_else(|| {
            format!("Invalid reference specified. No value for {expression} found in {reference}.")
        })?;
        match value {
            Value::String(s) => out.push_str(s),
            Value::Null => {}
            other => out.push_str(&other.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Follows `a.b[0].c` through a JSON value.
fn walk<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    let mut current = value;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, index) = match part.split_once('[') {
            Some((name, rest)) => (
                name,
                rest.strip_suffix(']').and_then(|i| i.parse::<usize>().ok()),
            ),
            None => (part, None),
        };
        if !name.is_empty() {
            current = current.get(name)?;
        }
        if let Some(i) = index {
            current = current.get(i)?;
        }
    }
    Some(current)
}

/// Replaces references inside every string of a JSON body.
fn resolve_in_value(
    value: &Value,
    results: &HashMap<String, (u16, Value)>,
) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => Value::String(resolve_references(s, results)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| resolve_in_value(v, results))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), resolve_in_value(v, results)?)))
                .collect::<Result<Map<_, _>, String>>()?,
        ),
        other => other.clone(),
    })
}

/// The DML target of a subrequest, for MIXED_DML_OPERATION.
fn dml_object(method: &Method, segments: &[&str]) -> Option<&'static str> {
    if *method == Method::GET {
        return None;
    }
    match segments {
        ["sobjects", object, ..] => schema::object_def(object).map(|d| d.name),
        _ => None,
    }
}

/// `POST /composite`.
pub fn composite(call: &mut Call<'_>, _headers: &HeaderMap, body: &Body<'_>) -> SfResult<Reply> {
    let request = body.json_object()?;
    let all_or_none = request
        .get("allOrNone")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let subrequests = request
        .get("compositeRequest")
        .and_then(Value::as_array)
        .ok_or_else(|| batch_error("The compositeRequest array is missing"))?;
    if subrequests.is_empty() {
        return Err(batch_error("The compositeRequest array is empty"));
    }
    if subrequests.len() > MAX_SUBREQUESTS {
        return Err(batch_error(format!(
            "A composite request can contain up to {MAX_SUBREQUESTS} subrequests; this one has {}",
            subrequests.len()
        )));
    }
    // Validate every subrequest before running any.
    let mut seen = std::collections::HashSet::new();
    let mut parsed = Vec::new();
    for sub in subrequests {
        let method = sub.get("method").and_then(Value::as_str).unwrap_or("");
        let method = match method {
            "GET" => Method::GET,
            "POST" => Method::POST,
            "PATCH" => Method::PATCH,
            "PUT" => Method::PUT,
            "DELETE" => Method::DELETE,
            other => {
                return Err(batch_error(format!(
                    "Invalid HTTP method '{other}' in a subrequest: use GET, POST, PATCH, PUT or DELETE"
                )));
            }
        };
        let url = sub.get("url").and_then(Value::as_str).unwrap_or("");
        if !url.starts_with("/services/data/v") {
            return Err(batch_error(format!(
                "The subrequest url must start with /services/data/vXX.X/: {url}"
            )));
        }
        let reference = sub.get("referenceId").and_then(Value::as_str).unwrap_or("");
        let valid_reference = reference
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
            && reference
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_reference {
            return Err(batch_error(format!(
                "Invalid referenceId '{reference}': use letters, numbers and underscores, starting with a letter or number"
            )));
        }
        if !seen.insert(reference.to_string()) {
            return Err(batch_error(format!("Duplicate referenceId '{reference}'")));
        }
        if let Some(Value::Object(h)) = sub.get("httpHeaders") {
            for name in h.keys() {
                if ["accept", "authorization", "content-type"]
                    .contains(&name.to_ascii_lowercase().as_str())
                {
                    return Err(batch_error(format!(
                        "The {name} header can't be set on a subrequest; it is inherited from the composite request"
                    )));
                }
            }
        }
        parsed.push((
            method,
            url.to_string(),
            reference.to_string(),
            sub.get("body").cloned(),
        ));
    }

    let snapshot = all_or_none.then(|| call.org.read().clone());
    let mut results: HashMap<String, (u16, Value)> = HashMap::new();
    let mut responses: Vec<Value> = Vec::new();
    let mut failed = false;
    let mut dml_kinds: Vec<(&'static str, bool)> = Vec::new();
    for (method, url, reference, sub_body) in &parsed {
        if failed && all_or_none {
            responses.push(json!({
                "body": processing_halted("The transaction was rolled back since another operation in the same transaction failed."),
                "httpHeaders": {}, "httpStatusCode": 400, "referenceId": reference,
            }));
            continue;
        }
        let outcome = (|| -> Result<SubResult, (u16, Value)> {
            let url =
                resolve_references(url, &results).map_err(|m| (400, processing_halted(&m)))?;
            let body_value = match sub_body {
                Some(b) => {
                    Some(resolve_in_value(b, &results).map_err(|m| (400, processing_halted(&m)))?)
                }
                None => None,
            };
            let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
            let rest = path.trim_start_matches("/services/data/");
            let mut segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
            let version_segment = if segments.is_empty() {
                ""
            } else {
                segments.remove(0)
            };
            let version = crate::rest::check_version(version_segment)
                .map_err(|e| (e.status.as_u16(), e.body()))?;
            if let Some(object) = dml_object(method, &segments) {
                let setup = is_setup_dml(object);
                if all_or_none {
                    if let Some((other, _)) = dml_kinds.iter().find(|(_, s)| *s != setup) {
                        let message = format!(
                            "DML operation on setup object is not permitted after you have updated a non-setup object (or vice versa): {object}, original object: {other}"
                        );
                        return Err((
                            400,
                            json!([{ "errorCode": "MIXED_DML_OPERATION", "message": message }]),
                        ));
                    }
                    dml_kinds.push((object, setup));
                }
            }
            let query: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
            let bytes = body_value
                .as_ref()
                .map(|b| Bytes::from(b.to_string()))
                .unwrap_or_default();
            let sub = Body {
                bytes: &bytes,
                content_type: "application/json",
            };
            let saved_version = std::mem::replace(&mut call.version, version);
            let result = dispatch(call, method, &segments, &query, &HeaderMap::new(), &sub);
            call.version = saved_version;
            match result {
                Ok(Reply::Json(status, body)) => Ok((status.as_u16(), body, Map::new())),
                Ok(Reply::JsonWithLocation(status, body, location)) => {
                    let mut headers = Map::new();
                    headers.insert("Location".into(), json!(location));
                    Ok((status.as_u16(), body, headers))
                }
                Ok(Reply::Empty(status)) => Ok((status.as_u16(), Value::Null, Map::new())),
                Ok(Reply::Csv(text)) => Ok((200, Value::String(text), Map::new())),
                Err(e) => Err((e.status.as_u16(), e.body())),
            }
        })();
        match outcome {
            Ok((status, body, headers)) => {
                results.insert(reference.clone(), (status, body.clone()));
                responses.push(json!({ "body": body, "httpHeaders": headers, "httpStatusCode": status, "referenceId": reference }));
            }
            Err((status, body)) => {
                failed = true;
                results.insert(reference.clone(), (status, body.clone()));
                responses.push(json!({ "body": body, "httpHeaders": {}, "httpStatusCode": status, "referenceId": reference }));
            }
        }
    }
    if failed && let Some(snapshot) = snapshot {
        *call.org.write() = snapshot;
        call.effects.clear();
        // Every subrequest that had succeeded is reported as rolled back.
        for response in &mut responses {
            if response["httpStatusCode"].as_u64().is_some_and(|s| s < 400) {
                *response = json!({
                    "body": processing_halted("The transaction was rolled back since another operation in the same transaction failed."),
                    "httpHeaders": {}, "httpStatusCode": 400, "referenceId": response["referenceId"].clone(),
                });
            }
        }
    }
    Ok(Reply::Json(
        StatusCode::OK,
        json!({ "compositeResponse": responses }),
    ))
}

fn record_type(record: &Map<String, Value>) -> Option<&str> {
    record.get("attributes")?.get("type")?.as_str()
}

/// `/composite/sobjects` (POST create, PATCH update, DELETE, GET by ids).
pub fn collections(
    call: &mut Call<'_>,
    method: &Method,
    rest: &[&str],
    query: &HashMap<String, String>,
    body: &Body<'_>,
) -> SfResult<Reply> {
    match (method, rest) {
        (&Method::POST, []) | (&Method::PATCH, []) => {
            save_collection(call, method == Method::POST, body)
        }
        (&Method::DELETE, []) => {
            let ids: Vec<String> = query
                .get("ids")
                .map(|s| {
                    s.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            if ids.is_empty() || ids.len() > MAX_COLLECTION {
                return Err(batch_error(format!(
                    "ids must list 1 to {MAX_COLLECTION} record ids"
                )));
            }
            let all_or_none = query
                .get("allOrNone")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
            let items: Vec<Result<String, SfError>> = ids
                .iter()
                .map(|id| {
                    let def = salesforce::SalesforceId::parse(id)
                        .ok()
                        .and_then(|p| schema::object_by_prefix(p.key_prefix()))
                        .ok_or_else(|| {
                            SfError::bad_request("MALFORMED_ID", format!("malformed id {id}"))
                        })?;
                    let actor = call.actor();
                    let deleted = records::delete(&mut call.org.write(), &actor, def, id)?;
                    Ok(format!("delete {} {deleted}", def.name))
                })
                .collect();
            Ok(Reply::Json(
                StatusCode::OK,
                finish_collection(call, items, all_or_none, None),
            ))
        }
        (&Method::GET, [object]) => {
            let def = records::object_for_rest(object)?;
            call.entity = def.name.to_string();
            let ids: Vec<&str> = query
                .get("ids")
                .map(|s| {
                    s.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            if ids.is_empty() || ids.len() > 2000 {
                return Err(batch_error("ids must list 1 to 2000 record ids"));
            }
            let access = call.session.access.clone();
            let fields = match query.get("fields") {
                Some(list) => Some(records::select_fields(def, &access, list)?),
                None => None,
            };
            let data = call.org.read();
            let actor = call.actor();
            let out: Vec<Value> = ids
                .iter()
                .map(|id| match records::retrieve(&data, &actor, def, id) {
                    Ok((id, record)) => records::render(
                        def,
                        id.as_str(),
                        record,
                        &access,
                        fields.as_deref(),
                        &call.version,
                    ),
                    Err(_) => Value::Null,
                })
                .collect();
            Ok(Reply::Json(StatusCode::OK, json!(out)))
        }
        _ => Err(SfError::not_found()),
    }
}

fn save_collection(call: &mut Call<'_>, create: bool, body: &Body<'_>) -> SfResult<Reply> {
    let request = body.json_object()?;
    let all_or_none = request
        .get("allOrNone")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let records_in = request
        .get("records")
        .and_then(Value::as_array)
        .ok_or_else(|| batch_error("The records array is missing"))?;
    if records_in.is_empty() || records_in.len() > MAX_COLLECTION {
        return Err(batch_error(format!(
            "records must contain 1 to {MAX_COLLECTION} records"
        )));
    }
    let mut types: Vec<&str> = Vec::new();
    for record in records_in {
        let Some(t) = record.as_object().and_then(record_type) else {
            return Err(batch_error("Each record needs attributes.type"));
        };
        if !types.contains(&t) {
            types.push(t);
        }
    }
    let setup: Vec<bool> = types
        .iter()
        .filter_map(|t| schema::object_def(t))
        .map(|d| is_setup_dml(d.name))
        .collect();
    if setup.contains(&true) && types.len() > 1 {
        return Err(SfError::bad_request(
            "MIXED_DML_OPERATION",
            "You can't create records for multiple object types in one call when one of the types is related to a feature in the Salesforce Setup area",
        ));
    }
    if types.len() > 10 {
        return Err(batch_error(
            "Records of more than 10 object types (chunks) in one request",
        ));
    }
    let snapshot = all_or_none.then(|| call.org.read().clone());
    let mut items = Vec::new();
    for record in records_in {
        let Some(map) = record.as_object() else {
            continue;
        };
        let result = (|| -> SfResult<String> {
            let def = records::object_for_rest(record_type(map).unwrap_or("")).map_err(|_| {
                SfError::bad_request("INVALID_TYPE", "sObject type is not supported")
            })?;
            let actor = call.actor();
            if create {
                if map.keys().any(|k| k.eq_ignore_ascii_case("id")) {
                    return Err(SfError::bad_request(
                        "INVALID_FIELD",
                        "The Id field should not be specified in the sobject data.",
                    ));
                }
                let id = records::create(&mut call.org.write(), &actor, def, map)?;
                Ok(format!("create {} {id}", def.name))
            } else {
                let id = map
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("id"))
                    .and_then(|(_, v)| v.as_str())
                    .ok_or_else(|| {
                        SfError::bad_request(
                            "MISSING_ARGUMENT",
                            "Id not specified in an update call",
                        )
                    })?
                    .to_string();
                let id = records::update(&mut call.org.write(), &actor, def, &id, map)?;
                Ok(format!("update {} {id}", def.name))
            }
        })();
        let failed = result.is_err();
        items.push(result);
        if failed && all_or_none {
            break;
        }
    }
    // Items not attempted after an allOrNone failure are reported as rolled back too.
    while items.len() < records_in.len() {
        items.push(Err(SfError::bad_request(
            "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "Record rolled back because not all records were valid and the request was using AllOrNone header",
        )));
    }
    Ok(Reply::Json(
        StatusCode::OK,
        finish_collection(call, items, all_or_none, snapshot),
    ))
}

fn finish_collection(
    call: &mut Call<'_>,
    items: Vec<Result<String, SfError>>,
    all_or_none: bool,
    snapshot: Option<crate::store::OrgData>,
) -> Value {
    let any_failed = items.iter().any(Result::is_err);
    if any_failed
        && all_or_none
        && let Some(snapshot) = snapshot
    {
        *call.org.write() = snapshot;
    }
    let rolled_back = SfError::bad_request(
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "Record rolled back because not all records were valid and the request was using AllOrNone header",
    );
    let out: Vec<Value> = items
        .into_iter()
        .map(|item| match item {
            Ok(effect) if any_failed && all_or_none => {
                let _ = effect;
                json!({ "success": false, "errors": [rolled_back.save_result_error()] })
            }
            Ok(effect) => {
                let id = effect.rsplit(' ').next().unwrap_or("").to_string();
                call.effects.push(effect);
                json!({ "id": id, "success": true, "errors": [] })
            }
            Err(e) => json!({ "success": false, "errors": [e.save_result_error()] }),
        })
        .collect();
    json!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_from_earlier_results() {
        let mut results = HashMap::new();
        results.insert(
            "refUser".to_string(),
            (201, json!({ "id": "005000000000001AAA" })),
        );
        results.insert(
            "refQuery".to_string(),
            (200, json!({ "records": [{ "Id": "0PS000000000001AAA" }] })),
        );
        assert_eq!(
            resolve_references("/sobjects/User/@{refUser.id}", &results).unwrap(),
            "/sobjects/User/005000000000001AAA"
        );
        assert_eq!(
            resolve_references("@{refQuery.records[0].Id}", &results).unwrap(),
            "0PS000000000001AAA"
        );
        assert!(
            resolve_references("@{missing.id}", &results)
                .unwrap_err()
                .contains("missing")
        );
        results.insert("bad".to_string(), (400, json!([])));
        assert!(
            resolve_references("@{bad.id}", &results)
                .unwrap_err()
                .contains("failed")
        );
    }
}
