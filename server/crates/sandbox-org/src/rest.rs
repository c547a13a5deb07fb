//! The REST API (`/services/data/...`): versions, the resource map, sObject describe and
//! CRUD, upsert, query/queryAll with paging, composite and sObject collections, limits,
//! event log file downloads, Metadata deploy and Connect REST credentials.
//!
//! Every request is authenticated by its bearer token and checked against the org's daily
//! API limit; every counted call is recorded for ApiTotalUsage and carries
//! `Sforce-Limit-Info`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use serde_json::{Map, Value, json};

use crate::error::{SfError, SfResult};
use crate::oauth::ClientAddr;
use crate::records::{self, Actor, UpsertOutcome};
use crate::schema;
use crate::session::{Session, authenticate};
use crate::state::{CallRecord, Org, QueryCursor};
use crate::usage::UsageEvent;

/// The newest API version the sandbox org serves (Summer '26).
pub const LATEST_VERSION: &str = "67.0";
/// The oldest version still served; 21.0–30.0 answer 410 Gone.
const OLDEST_VERSION: u32 = 31;
const OLDEST_RETIRED: u32 = 21;
/// Request bodies larger than this are refused (deploy zips have their own, larger bound).
pub const MAX_BODY: usize = 10 * 1024 * 1024;
pub const MAX_DEPLOY_BODY: usize = 40 * 1024 * 1024;

fn version_label(major: u32) -> String {
    let i = major.saturating_sub(31);
    let season = ["Summer", "Winter", "Spring"][(i % 3) as usize];
    let year = 14 + i.div_ceil(3);
    format!("{season} '{year:02}")
}

fn latest_major() -> u32 {
    LATEST_VERSION
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(67)
}

/// `GET /services/data`: the versions list (not counted, no limit header).
pub async fn versions(State(org): State<Arc<Org>>) -> Response {
    let _ = org;
    let list: Vec<Value> = (OLDEST_VERSION..=latest_major())
        .map(|v| json!({ "label": version_label(v), "url": format!("/services/data/v{v}.0"), "version": format!("{v}.0") }))
        .collect();
    axum::Json(list).into_response()
}

/// Checks a `vXX.X` path segment: Ok(version) / 410 for retired / 404 for unknown.
pub fn check_version(raw: &str) -> SfResult<String> {
    let parsed = raw
        .strip_prefix('v')
        .and_then(|v| v.strip_suffix(".0"))
        .and_then(|m| m.parse::<u32>().ok());
    match parsed {
        Some(major) if (OLDEST_VERSION..=latest_major()).contains(&major) => {
            Ok(format!("{major}.0"))
        }
        Some(major) if (OLDEST_RETIRED..OLDEST_VERSION).contains(&major) => Err(SfError::new(
            StatusCode::GONE,
            "API_VERSION_RETIRED",
            format!(
                "The requested API version {major}.0 has been retired and is no longer supported."
            ),
        )),
        _ => Err(SfError::not_found()),
    }
}

/// A request body with its content type.
pub struct Body<'a> {
    pub bytes: &'a Bytes,
    pub content_type: &'a str,
}

impl Body<'_> {
    /// The body as a JSON object, with Salesforce's errors for wrong content types and
    /// malformed JSON.
    pub fn json_object(&self) -> SfResult<Map<String, Value>> {
        match self.json()? {
            Value::Object(map) => Ok(map),
            other => Err(SfError::json_parse(format!(
                "Cannot deserialize instance of sobject from {} value",
                json_kind(&other)
            ))),
        }
    }

    pub fn json(&self) -> SfResult<Value> {
        let media = self
            .content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !media.is_empty() && media != "application/json" && !media.ends_with("+json") {
            return Err(SfError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                format!("Content-Type header specified in HTTP request is not supported: {media}"),
            ));
        }
        if self.bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(SfError::json_parse("No content to map due to end-of-input"));
        }
        serde_json::from_slice(self.bytes).map_err(|e| {
            SfError::json_parse(format!(
                "Unexpected character or end of input: {} at [line:{}, column:{}]",
                e.classify_name(),
                e.line(),
                e.column()
            ))
        })
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Eof => "unexpected end-of-input",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "invalid data",
            serde_json::error::Category::Io => "read error",
        }
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Array(_) => "START_ARRAY",
        Value::String(_) => "VALUE_STRING",
        Value::Number(_) => "VALUE_NUMBER",
        Value::Bool(_) => "VALUE_TRUE_OR_FALSE",
        Value::Null => "VALUE_NULL",
        Value::Object(_) => "START_OBJECT",
    }
}

/// What a handler answers.
pub enum Reply {
    Json(StatusCode, Value),
    Csv(String),
    Empty(StatusCode),
    JsonWithLocation(StatusCode, Value, String),
}

/// The context of one API call.
pub struct Call<'a> {
    pub org: &'a Org,
    pub session: &'a Session,
    pub version: String,
    pub now: DateTime<Utc>,
    /// What the call changed (for the sandbox call log).
    pub effects: Vec<String>,
    /// The object the call was about (ENTITY_NAME in event logs).
    pub entity: String,
}

impl Call<'_> {
    pub fn actor(&self) -> Actor<'_> {
        Actor {
            access: &self.session.access,
            now: self.now,
        }
    }
}

fn query_map(uri: &axum::http::Uri) -> HashMap<String, String> {
    uri.query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

/// `/services/data/{version}` and everything below it.
pub async fn entry(
    State(org): State<Arc<Org>>,
    Path(params): Path<HashMap<String, String>>,
    request: Request,
) -> Response {
    let now = org.now();
    let version_raw = params.get("version").cloned().unwrap_or_default();
    let rest = params.get("rest").cloned().unwrap_or_default();
    let (parts, body) = request.into_parts();
    let version = match check_version(&version_raw) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let session = match authenticate(&org, &parts.headers, now) {
        Ok(s) => s,
        Err(e) => {
            log_call(
                &org,
                &parts.method,
                parts.uri.path(),
                e.status.as_u16(),
                None,
                Vec::new(),
                false,
            );
            return e.into_response();
        }
    };
    // The org's daily limit (refused calls are not counted).
    let (used, max) = {
        let limit = org.read().settings.daily_api_limit;
        (org.usage().used_last_24h(now), limit)
    };
    if used >= max {
        log_call(
            &org,
            &parts.method,
            parts.uri.path(),
            403,
            Some(&session),
            Vec::new(),
            false,
        );
        return SfError::new(
            StatusCode::FORBIDDEN,
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded.",
        )
        .into_response();
    }
    let is_deploy = rest.starts_with("metadata/deployRequest");
    let limit = if is_deploy { MAX_DEPLOY_BODY } else { MAX_BODY };
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return SfError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "REQUEST_ENTITY_TOO_LARGE",
                format!(
                    "The request body is larger than the maximum of {} bytes",
                    limit
                ),
            )
            .into_response();
        }
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let query = query_map(&parts.uri);
    let mut method = parts.method.clone();
    if method == Method::POST
        && let Some(overridden) = query.get("_HttpMethod")
        && let Ok(m) = Method::from_bytes(overridden.to_ascii_uppercase().as_bytes())
    {
        method = m;
    }
    let mut call = Call {
        org: &org,
        session: &session,
        version: version.clone(),
        now,
        effects: Vec::new(),
        entity: String::new(),
    };
    let body = Body {
        bytes: &bytes,
        content_type: &content_type,
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let result = dispatch(&mut call, &method, &segments, &query, &parts.headers, &body);
    let (status, mut response) = match result {
        Ok(reply) => reply_response(reply),
        Err(e) => (e.status, e.into_response()),
    };
    let effects = std::mem::take(&mut call.effects);
    let entity = std::mem::take(&mut call.entity);
    // Record the call, then report usage including it.
    let client_ip = parts
        .extensions
        .get::<ClientAddr>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "127.0.0.1".into());
    let client_name = parts
        .headers
        .get("sforce-call-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').find_map(|p| p.trim().strip_prefix("client=")))
        .unwrap_or("")
        .to_string();
    let used_now = {
        let mut usage = org.usage();
        usage.record(UsageEvent {
            at: now,
            request_id: request_id(),
            user_id: session.user_id.clone(),
            username: session.username.clone(),
            app_id: session.connected_app_id.clone(),
            app_name: session.app_name.clone(),
            api_version: version.clone(),
            resource: format!("/v{version}/{}", rest.trim_end_matches('/')),
            method: parts.method.to_string(),
            status: status.as_u16(),
            entity,
            client_name,
            client_ip,
            counts: true,
        });
        usage.used_last_24h(now)
    };
    org.mark_dirty();
    log_call(
        &org,
        &parts.method,
        parts.uri.path(),
        status.as_u16(),
        Some(&session),
        effects,
        true,
    );
    if let Ok(value) = HeaderValue::from_str(&format!("api-usage={used_now}/{max}")) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("sforce-limit-info"), value);
    }
    response
}

fn request_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..22)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

pub fn log_call(
    org: &Org,
    method: &Method,
    path: &str,
    status: u16,
    session: Option<&Session>,
    effects: Vec<String>,
    counted: bool,
) {
    org.calls().push(CallRecord {
        seq: 0,
        at: Utc::now(),
        method: method.to_string(),
        path: path.to_string(),
        status,
        user_id: session.map(|s| s.user_id.clone()),
        app_id: session.and_then(|s| s.app_id.clone()),
        effects,
        counted,
    });
}

fn reply_response(reply: Reply) -> (StatusCode, Response) {
    match reply {
        Reply::Json(status, body) => (status, (status, axum::Json(body)).into_response()),
        Reply::JsonWithLocation(status, body, location) => (
            status,
            (status, [(header::LOCATION, location)], axum::Json(body)).into_response(),
        ),
        Reply::Csv(text) => (
            StatusCode::OK,
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/octetstream")],
                text,
            )
                .into_response(),
        ),
        Reply::Empty(status) => (status, status.into_response()),
    }
}

/// Routes one REST request (also used for composite subrequests).
pub fn dispatch(
    call: &mut Call<'_>,
    method: &Method,
    segments: &[&str],
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &Body<'_>,
) -> SfResult<Reply> {
    let version = call.version.clone();
    match (method, segments) {
        (&Method::GET, []) => Ok(Reply::Json(StatusCode::OK, resources(call, &version))),
        (&Method::GET, ["sobjects"]) => Ok(Reply::Json(
            StatusCode::OK,
            crate::describe::global(&call.session.access, &version),
        )),
        (_, ["sobjects", object, rest @ ..]) => sobject(call, method, object, rest, query, body),
        (&Method::GET, ["query"]) => query_first(call, query, headers, false),
        (&Method::GET, ["queryAll"]) => query_first(call, query, headers, true),
        (&Method::GET, ["query" | "queryAll", locator]) => query_more(call, locator),
        (&Method::GET, ["limits"]) => Ok(Reply::Json(StatusCode::OK, limits(call))),
        (&Method::POST, ["composite"]) => crate::composite::composite(call, headers, body),
        (_, ["composite", "sobjects", rest @ ..]) => {
            crate::composite::collections(call, method, rest, query, body)
        }
        (_, ["metadata", "deployRequest", rest @ ..]) => {
            crate::metadata::deploy_request(call, method, rest, query, body)
        }
        (_, ["apps", "oauth", rest @ ..]) => {
            crate::connect::apps_oauth(call, method, rest, query, body)
        }
        (_, ["sobjects"] | ["query"] | ["queryAll"] | ["limits"] | ["composite"]) => {
            Err(SfError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                format!("HTTP Method '{method}' not allowed. Allowed are GET"),
            ))
        }
        _ => Err(SfError::not_found()),
    }
}

fn resources(call: &Call<'_>, version: &str) -> Value {
    let base = format!("/services/data/v{version}");
    let org_id = call.org.read().org_id.clone();
    json!({
        "tooling": format!("{base}/tooling"),
        "metadata": format!("{base}/metadata"),
        "eclair": format!("{base}/eclair"),
        "folders": format!("{base}/folders"),
        "prechatForms": format!("{base}/prechatForms"),
        "connect": format!("{base}/connect"),
        "apps": format!("{base}/apps"),
        "limits": format!("{base}/limits"),
        "query": format!("{base}/query"),
        "queryAll": format!("{base}/queryAll"),
        "sobjects": format!("{base}/sobjects"),
        "composite": format!("{base}/composite"),
        "identity": format!("{}/id/{org_id}/{}", call.org.base_url(), call.session.user_id),
    })
}

fn limits(call: &Call<'_>) -> Value {
    let max = call.org.read().settings.daily_api_limit;
    let used = call.org.usage().used_last_24h(call.now) + 1;
    json!({
        "DailyApiRequests": { "Max": max, "Remaining": max.saturating_sub(used) },
        "DailyAsyncApexExecutions": { "Max": 250000, "Remaining": 250000 },
        "DailyBulkApiBatches": { "Max": 15000, "Remaining": 15000 },
        "DailyBulkV2QueryJobs": { "Max": 10000, "Remaining": 10000 },
        "DataStorageMB": { "Max": 1024, "Remaining": 1020 },
        "FileStorageMB": { "Max": 1024, "Remaining": 1024 },
        "HourlyPublishedPlatformEvents": { "Max": 50000, "Remaining": 50000 },
        "SingleEmail": { "Max": 5000, "Remaining": 5000 },
    })
}

fn sobject(
    call: &mut Call<'_>,
    method: &Method,
    object: &str,
    rest: &[&str],
    query: &HashMap<String, String>,
    body: &Body<'_>,
) -> SfResult<Reply> {
    let def = records::object_for_rest(object)?;
    call.entity = def.name.to_string();
    let version = call.version.clone();
    let access = call.session.access.clone();
    if !access.can_read_object(def) {
        return Err(SfError::not_found());
    }
    match (method, rest) {
        (&Method::GET, []) => Ok(Reply::Json(
            StatusCode::OK,
            json!({ "objectDescribe": crate::describe::summary(def, &access, &version), "recentItems": [] }),
        )),
        (&Method::GET, ["describe"]) => {
            let mut describe = crate::describe::object(def, &access, &version);
            crate::describe::apply_org_settings(def, &mut describe, &call.org.read().settings);
            Ok(Reply::Json(StatusCode::OK, describe))
        }
        (&Method::POST, []) => {
            let fields = body.json_object()?;
            let actor = call.actor();
            let id = records::create(&mut call.org.write(), &actor, def, &fields)?;
            call.effects.push(format!("create {} {id}", def.name));
            Ok(Reply::JsonWithLocation(
                StatusCode::CREATED,
                json!({ "id": id.as_str(), "success": true, "errors": [] }),
                format!("/services/data/v{version}/sobjects/{}/{id}", def.name),
            ))
        }
        (&Method::GET, [id]) => {
            if def.name.ends_with("License") {
                refresh_license_usage(call.org);
            }
            let data = call.org.read();
            let actor = call.actor();
            let (id, record) = records::retrieve(&data, &actor, def, id)?;
            let selected = match query.get("fields") {
                Some(list) => Some(records::select_fields(def, &access, list)?),
                None => None,
            };
            Ok(Reply::Json(
                StatusCode::OK,
                records::render(
                    def,
                    id.as_str(),
                    record,
                    &access,
                    selected.as_deref(),
                    &version,
                ),
            ))
        }
        (&Method::PATCH, [id]) => {
            let fields = body.json_object()?;
            let actor = call.actor();
            let id = records::update(&mut call.org.write(), &actor, def, id, &fields)?;
            call.effects.push(format!("update {} {id}", def.name));
            Ok(Reply::Empty(StatusCode::NO_CONTENT))
        }
        (&Method::DELETE, [id]) => {
            let actor = call.actor();
            let id = records::delete(&mut call.org.write(), &actor, def, id)?;
            call.effects.push(format!("delete {} {id}", def.name));
            Ok(Reply::Empty(StatusCode::NO_CONTENT))
        }
        (&Method::GET, [id, "LogFile"]) if def.name == "EventLogFile" => {
            let data = call.org.read();
            let actor = call.actor();
            let (id, _) = records::retrieve(&data, &actor, def, id)?;
            let org_id = data.org_id.clone();
            drop(data);
            let csv = call
                .org
                .usage()
                .file_csv(&org_id, id.as_str())
                .ok_or_else(SfError::not_found)?;
            Ok(Reply::Csv(csv))
        }
        (&Method::PATCH, [field, value]) => {
            let fields = body.json_object()?;
            let actor = call.actor();
            let outcome =
                records::upsert(&mut call.org.write(), &actor, def, field, value, &fields)?;
            match outcome {
                UpsertOutcome::Created(id) => {
                    call.effects.push(format!("create {} {id}", def.name));
                    Ok(Reply::JsonWithLocation(
                        StatusCode::CREATED,
                        json!({ "id": id.as_str(), "success": true, "errors": [], "created": true }),
                        format!("/services/data/v{version}/sobjects/{}/{id}", def.name),
                    ))
                }
                UpsertOutcome::Updated(id) => {
                    call.effects.push(format!("update {} {id}", def.name));
                    Ok(Reply::Json(
                        StatusCode::OK,
                        json!({ "id": id.as_str(), "success": true, "errors": [], "created": false }),
                    ))
                }
            }
        }
        (&Method::GET, [field, value]) => {
            let field_def = def
                .field(field)
                .filter(|f| f.external_id || f.field_type == schema::FieldType::Id)
                .ok_or_else(|| {
                    SfError::new(
                        StatusCode::NOT_FOUND,
                        "NOT_FOUND",
                        format!("Provided external ID field does not exist or is not accessible: {field}"),
                    )
                })?;
            let data = call.org.read();
            let found: Vec<String> = data
                .table(def.name)
                .filter(|(_, r)| {
                    r.get(field_def.name)
                        .and_then(Value::as_str)
                        .is_some_and(|v| v.eq_ignore_ascii_case(value))
                })
                .map(|(id, _)| id.clone())
                .collect();
            let id = found.first().cloned().ok_or_else(SfError::not_found)?;
            let actor = call.actor();
            let (id, record) = records::retrieve(&data, &actor, def, &id)?;
            Ok(Reply::Json(
                StatusCode::OK,
                records::render(def, id.as_str(), record, &access, None, &version),
            ))
        }
        (_, [] | [_] | [_, _]) => Err(SfError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            format!("HTTP Method '{method}' not allowed. Allowed are GET,PATCH,DELETE"),
        )),
        _ => Err(SfError::not_found()),
    }
}

/// The batch size asked for with `Sforce-Query-Options: batchSize=N` (200–2000).
fn batch_size(headers: &HeaderMap) -> usize {
    headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split([',', ';'])
                .find_map(|p| p.trim().strip_prefix("batchSize="))
                .and_then(|n| n.trim().parse::<usize>().ok())
        })
        .map(|n| n.clamp(200, 2000))
        .unwrap_or(2000)
}

fn query_first(
    call: &mut Call<'_>,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    include_deleted: bool,
) -> SfResult<Reply> {
    let Some(text) = params.get("q") else {
        return Err(SfError::bad_request(
            "MALFORMED_QUERY",
            "SOQL statements cannot be empty or null",
        ));
    };
    // Event log files are published, and licence counts brought up to date, before they
    // are queried.
    let lower = text.to_ascii_lowercase();
    if lower.contains("eventlogfile") {
        publish_event_logs(call.org, call.now);
    }
    if lower.contains("license") {
        refresh_license_usage(call.org);
    }
    // ENTITY_NAME: the object queried, also when the query is refused (a user without
    // access to it). What Salesforce writes for a refused query is UNCONFIRMED; an object
    // the org does not have is not named.
    if let Some(def) = soql::parse(text)
        .ok()
        .and_then(|q| crate::schema::object_def(&q.from.name))
    {
        call.entity = def.name.to_string();
    }
    let output = {
        let data = call.org.read();
        crate::query::run(
            &data,
            &call.session.access,
            text,
            include_deleted,
            &call.version,
            call.now,
        )?
    };
    if let Some(kind) = output
        .records
        .first()
        .and_then(|r| r["attributes"]["type"].as_str())
    {
        call.entity = kind.to_string();
    }
    let batch = batch_size(headers);
    let total = output.total_size;
    if output.records.len() <= batch {
        return Ok(Reply::Json(
            StatusCode::OK,
            json!({ "totalSize": total, "done": true, "records": output.records }),
        ));
    }
    let locator = salesforce::SalesforceId::from_generated(&format!(
        "01g{}",
        request_id().chars().take(12).collect::<String>()
    ));
    let first: Vec<Value> = output.records[..batch].to_vec();
    {
        let mut cursors = call.org.cursors();
        cursors.retain(|_, c| c.created > call.now - Duration::minutes(15));
        cursors.insert(
            locator.as_str().to_string(),
            QueryCursor {
                user_id: call.session.user_id.clone(),
                records: output.records,
                total_size: total,
                position: batch,
                batch_size: batch,
                created: call.now,
            },
        );
    }
    Ok(Reply::Json(
        StatusCode::OK,
        json!({
            "totalSize": total,
            "done": false,
            "nextRecordsUrl": format!("/services/data/v{}/query/{}-{batch}", call.version, locator),
            "records": first,
        }),
    ))
}

fn query_more(call: &mut Call<'_>, locator: &str) -> SfResult<Reply> {
    let invalid = || SfError::bad_request("INVALID_QUERY_LOCATOR", "invalid query locator");
    let (id, position) = locator.rsplit_once('-').ok_or_else(invalid)?;
    let position: usize = position.parse().map_err(|_| invalid())?;
    let mut cursors = call.org.cursors();
    let cursor = cursors.get_mut(id).ok_or_else(invalid)?;
    if cursor.user_id != call.session.user_id || cursor.position != position {
        return Err(invalid());
    }
    let end = (position + cursor.batch_size).min(cursor.records.len());
    let page: Vec<Value> = cursor.records[position..end].to_vec();
    cursor.position = end;
    cursor.created = call.now;
    let total = cursor.total_size;
    let done = end >= cursor.records.len();
    if done {
        cursors.remove(id);
        return Ok(Reply::Json(
            StatusCode::OK,
            json!({ "totalSize": total, "done": true, "records": page }),
        ));
    }
    Ok(Reply::Json(
        StatusCode::OK,
        json!({
            "totalSize": total,
            "done": false,
            "nextRecordsUrl": format!("/services/data/v{}/query/{id}-{end}", call.version),
            "records": page,
        }),
    ))
}

/// Publishes ApiTotalUsage files for calls not yet in one.
pub fn publish_event_logs(org: &Org, now: DateTime<Utc>) {
    let hourly = org.read().settings.hourly_event_logs;
    let mut usage = org.usage();
    let mut data = org.write();
    usage.publish(&mut data, hourly, now);
}

/// Sets UsedLicenses on user licences (active users whose profile uses them) and
/// permission set licences (assignments).
pub fn refresh_license_usage(org: &Org) {
    let mut data = org.write();
    let mut user_counts: HashMap<String, i64> = HashMap::new();
    for (_, user) in data.table("User") {
        if !user
            .get("IsActive")
            .and_then(Value::as_bool)
            .unwrap_or(false)
        {
            continue;
        }
        let license = user
            .get("ProfileId")
            .and_then(Value::as_str)
            .and_then(|p| data.get("Profile", p))
            .and_then(|p| p.get("UserLicenseId"))
            .and_then(Value::as_str);
        if let Some(license) = license {
            *user_counts.entry(license.to_string()).or_default() += 1;
        }
    }
    let mut psl_counts: HashMap<String, i64> = HashMap::new();
    for (_, assignment) in data.table("PermissionSetLicenseAssign") {
        if let Some(psl) = assignment
            .get("PermissionSetLicenseId")
            .and_then(Value::as_str)
        {
            *psl_counts.entry(psl.to_string()).or_default() += 1;
        }
    }
    for (object, counts) in [
        ("UserLicense", user_counts),
        ("PermissionSetLicense", psl_counts),
    ] {
        let ids: Vec<String> = data.table(object).map(|(id, _)| id.clone()).collect();
        for id in ids {
            if let Some(record) = data.get_mut(object, &id) {
                record.insert(
                    "UsedLicenses".into(),
                    json!(counts.get(&id).copied().unwrap_or(0)),
                );
            }
        }
    }
}
