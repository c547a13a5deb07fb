//! The sandbox-only control API under `/__sandbox`: what the org was seeded with, fault
//! rules, org settings, the call log, and placing unusual event log files. A real org has
//! none of this; the portal never calls it when pointed at one.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::faults::FaultRule;
use crate::state::Org;
use crate::usage::Interval;

/// What `/__sandbox/credentials` returns; set when the org is seeded or loaded.
#[derive(Clone)]
pub struct ControlState {
    pub org: Arc<Org>,
    pub credentials: Arc<std::sync::RwLock<Value>>,
}

fn bad(message: impl Into<String>) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": message.into() })),
    )
        .into_response()
}

pub fn router(state: ControlState) -> Router {
    Router::new()
        .route("/__sandbox", get(info))
        .route("/__sandbox/credentials", get(credentials))
        .route(
            "/__sandbox/faults",
            get(get_faults).put(put_faults).delete(clear_faults),
        )
        .route(
            "/__sandbox/settings",
            get(get_settings).patch(patch_settings),
        )
        .route(
            "/__sandbox/users/{username}/permissions",
            axum::routing::patch(patch_user_permissions),
        )
        .route("/__sandbox/calls", get(calls))
        .route("/__sandbox/apps", get(apps))
        .route(
            "/__sandbox/event-log-files",
            axum::routing::post(place_log_file),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            only_local_json,
        ))
        .with_state(state)
}

/// The control API changes what the org does and shows its credentials, so it answers only
/// requests meant for it: addressed to this machine by name (a page that rebinds its own
/// DNS name to 127.0.0.1 still sends its own name as Host), and with writes in JSON (a
/// form on another site can send only form or plain-text bodies, and a cross-site `fetch`
/// with JSON needs a CORS preflight this org never grants).
async fn only_local_json(
    State(state): State<ControlState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    // HTTP/2 carries the host in the :authority pseudo-header (the URI), not in Host.
    let host = request
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.as_str().to_string()))
        .unwrap_or_default();
    if !is_local_host(&host, &state.org.base_url()) {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({
                "error": "the sandbox control API answers only to localhost, 127.0.0.1, [::1] or the org's own address"
            })),
        )
            .into_response();
    }
    let has_body = matches!(
        *request.method(),
        axum::http::Method::POST | axum::http::Method::PUT | axum::http::Method::PATCH
    );
    let json = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    if has_body && !json {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Json(
                json!({ "error": "the sandbox control API takes Content-Type: application/json" }),
            ),
        )
            .into_response();
    }
    next.run(request).await
}

/// Whether `host` (a Host header: name, optional port) names this machine or the org's
/// own listen address (the host of `base_url`).
fn is_local_host(host: &str, base_url: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    if name.is_empty() {
        return false;
    }
    let own = url::Url::parse(base_url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_string()));
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
        || own.is_some_and(|own| own.eq_ignore_ascii_case(name))
}

async fn info(State(state): State<ControlState>) -> Json<Value> {
    let data = state.org.read();
    Json(json!({
        "sandboxOrg": true,
        "name": data.name,
        "orgId": data.org_id,
        "baseUrl": state.org.base_url(),
        "settings": data.settings,
    }))
}

/// The org's apps (External Client Apps and connected apps), as Setup's App Manager lists
/// them: for tests and demos that check what was made or removed.
async fn apps(State(state): State<ControlState>) -> Json<Value> {
    let data = state.org.read();
    let mut apps: Vec<Value> = data
        .apps
        .values()
        .map(|a| {
            json!({
                "id": a.id,
                "developerName": a.developer_name,
                "label": a.label,
                "kind": match a.kind {
                    crate::apps::AppKind::ExternalClientApp => "ExternalClientApplication",
                    crate::apps::AppKind::ConnectedApp => "ConnectedApp",
                },
            })
        })
        .collect();
    apps.sort_by(|a, b| {
        a["developerName"]
            .as_str()
            .cmp(&b["developerName"].as_str())
    });
    Json(json!({ "apps": apps }))
}

async fn credentials(State(state): State<ControlState>) -> Json<Value> {
    let mut value = state
        .credentials
        .read()
        .map(|v| v.clone())
        .unwrap_or(Value::Null);
    value["baseUrl"] = json!(state.org.base_url());
    value["portalPrivateKeyPem"] = json!(state.org.portal_key());
    Json(value)
}

async fn get_faults(State(state): State<ControlState>) -> Json<Value> {
    Json(json!({ "rules": *state.org.faults() }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultsBody {
    rules: Vec<FaultRule>,
}

async fn put_faults(State(state): State<ControlState>, body: axum::body::Bytes) -> Response {
    let parsed: FaultsBody = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return bad(format!("expected {{\"rules\": [...]}}: {e}")),
    };
    for (i, rule) in parsed.rules.iter().enumerate() {
        if let Err(e) = rule.validate() {
            return bad(format!("rule {i}: {e}"));
        }
    }
    state.org.set_faults(parsed.rules.clone());
    Json(json!({ "rules": parsed.rules })).into_response()
}

async fn clear_faults(State(state): State<ControlState>) -> StatusCode {
    state.org.set_faults(Vec::new());
    StatusCode::NO_CONTENT
}

async fn get_settings(State(state): State<ControlState>) -> Json<Value> {
    Json(json!(state.org.read().settings))
}

async fn patch_settings(State(state): State<ControlState>, body: axum::body::Bytes) -> Response {
    let patch: Value = match serde_json::from_slice(&body) {
        Ok(Value::Object(map)) => Value::Object(map),
        _ => return bad("expected a JSON object of settings"),
    };
    let mut data = state.org.write();
    let mut current = json!(data.settings);
    for (key, value) in patch.as_object().into_iter().flatten() {
        // Buying licences: the Salesforce Integration user licence and its permission set
        // licence get this many seats.
        if key == "integrationLicenses" {
            let Some(seats) = value.as_i64().filter(|n| (0..=10_000).contains(n)) else {
                return bad("integrationLicenses must be a number from 0 to 10000");
            };
            for (object, field, name) in [
                (
                    "UserLicense",
                    "LicenseDefinitionKey",
                    crate::seed::INTEGRATION_LICENSE_KEY,
                ),
                (
                    "PermissionSetLicense",
                    "DeveloperName",
                    "SalesforceAPIIntegrationPsl",
                ),
            ] {
                let id = data.find_by(object, field, name).map(|(id, _)| id.clone());
                if let Some(record) = id.and_then(|id| data.get_mut(object, &id)) {
                    record.insert("TotalLicenses".into(), json!(seats));
                }
            }
            continue;
        }
        // Org-wide defaults (Setup > Sharing Settings): {"Case": "Edit"} sets the
        // Organization record's DefaultCaseAccess (and Case's EntityDefinition row);
        // {"Project__c": "ReadWrite"} a custom object's EntityDefinition
        // InternalSharingModel (custom objects have no Organization field).
        if key == "orgWideDefaults" {
            let Some(defaults) = value.as_object() else {
                return bad("orgWideDefaults must be an object such as {\"Case\": \"Edit\"}");
            };
            for (object, level) in defaults {
                if object.ends_with("__c") {
                    // Controlled by Parent needs a master-detail field, which the
                    // sandbox org's custom object does not have.
                    let allowed = ["Private", "Read", "ReadWrite"];
                    let Some(model) = level.as_str().filter(|l| allowed.contains(l)) else {
                        return bad(format!(
                            "orgWideDefaults.{object} must be one of {}",
                            allowed.join(", ")
                        ));
                    };
                    if !set_entity_sharing_model(&mut data, object, model) {
                        return bad(format!(
                            "orgWideDefaults: there is no custom object {object} here (Project__c)"
                        ));
                    }
                    continue;
                }
                let allowed: &[&str] = match object.as_str() {
                    "Account" => &["None", "Read", "Edit"],
                    "Case" => &["None", "Read", "Edit", "ReadEditTransfer"],
                    "Contact" => &["None", "Read", "Edit", "ControlledByParent"],
                    _ => {
                        return bad(format!(
                            "orgWideDefaults: {object} has no org-wide default here (Account, Case, Contact, Project__c)"
                        ));
                    }
                };
                let Some(level) = level.as_str().filter(|l| allowed.contains(l)) else {
                    return bad(format!(
                        "orgWideDefaults.{object} must be one of {}",
                        allowed.join(", ")
                    ));
                };
                let org_id = data.org_id.clone();
                if let Some(record) = data.get_mut("Organization", &org_id) {
                    record.insert(format!("Default{object}Access"), json!(level));
                }
                let model = match level {
                    "None" => "Private",
                    "Edit" => "ReadWrite",
                    "ReadEditTransfer" => "ReadWriteTransfer",
                    other => other,
                };
                set_entity_sharing_model(&mut data, object, model);
            }
            continue;
        }
        // The org's name (Setup > Company Information > Organization Name): the
        // Organization record's Name, what `SELECT Name FROM Organization` answers. Salesforce
        // documents Name as a string of up to 80 characters (its describe here says so);
        // that a blank name is refused is UNCONFIRMED (the Setup form requires one).
        if key == "orgName" {
            let Some(name) = value
                .as_str()
                .map(str::trim)
                .filter(|n| !n.is_empty() && n.chars().count() <= 80)
            else {
                return bad("orgName must be a name of 1 to 80 characters");
            };
            let org_id = data.org_id.clone();
            if let Some(record) = data.get_mut("Organization", &org_id) {
                record.insert("Name".into(), json!(name));
            }
            data.name = name.to_string();
            continue;
        }
        // The language the org answers in: standard profile names and licence labels
        // come back translated, as a real org returns them in the user's language.
        if key == "language" {
            let Some(language) = value.as_str().and_then(crate::seed::Language::parse) else {
                return bad("language must be en_US or de");
            };
            crate::seed::translate(&mut data, language);
            continue;
        }
        // The org's clock, moved by N seconds from the machine's (tests of expiry).
        if key == "clockOffsetSeconds"
            && value
                .as_i64()
                .filter(|n| n.unsigned_abs() <= 20 * 366 * 86_400)
                .is_none()
        {
            return bad("clockOffsetSeconds must be a whole number of seconds within 20 years");
        }
        if current.get(key).is_none() {
            return bad(format!("unknown setting {key}"));
        }
        current[key] = value.clone();
    }
    match serde_json::from_value(current) {
        Ok(settings) => {
            data.settings = settings;
            Json(json!(data.settings)).into_response()
        }
        Err(e) => bad(format!("invalid setting value: {e}")),
    }
}

/// `PATCH /__sandbox/users/{username}/permissions` with `{"ViewEventLogFiles": false}`:
/// sets user permissions of the user's profile (`true`) or takes them away from the profile
/// and every permission set assigned to the user (`false`), as an admin would in Setup.
/// The profile is shared: its other users change too.
async fn patch_user_permissions(
    State(state): State<ControlState>,
    axum::extract::Path(username): axum::extract::Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let Ok(Value::Object(patch)) = serde_json::from_slice::<Value>(&body) else {
        return bad("expected a JSON object such as {\"ViewEventLogFiles\": false}");
    };
    let mut data = state.org.write();
    let Some((user_id, user)) = data.find_by("User", "Username", &username) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("no user {username}") })),
        )
            .into_response();
    };
    let (user_id, profile_id) = (
        user_id.clone(),
        user.get("ProfileId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    );
    let sets: Vec<String> = data
        .table("PermissionSetAssignment")
        .filter(|(_, a)| a.get("AssigneeId").and_then(Value::as_str) == Some(user_id.as_str()))
        .filter_map(|(_, a)| {
            a.get("PermissionSetId")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    for (name, value) in &patch {
        if !crate::schema::USER_PERMISSIONS.contains(&name.as_str()) {
            return bad(format!("unknown user permission {name}"));
        }
        let Some(on) = value.as_bool() else {
            return bad(format!("{name} must be true or false"));
        };
        let field = format!("Permissions{name}");
        let profile_sets: Vec<String> = data
            .table("PermissionSet")
            .filter(|(_, ps)| {
                ps.get("ProfileId").and_then(Value::as_str) == Some(profile_id.as_str())
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut targets = vec![("Profile", profile_id.clone())];
        targets.extend(profile_sets.into_iter().map(|id| ("PermissionSet", id)));
        if !on {
            targets.extend(sets.iter().map(|id| ("PermissionSet", id.clone())));
        }
        for (object, id) in targets {
            if let Some(record) = data.get_mut(object, &id) {
                record.insert(field.clone(), json!(on));
            }
        }
    }
    Json(json!({ "username": username, "changed": patch })).into_response()
}

#[derive(Deserialize)]
struct CallsQuery {
    #[serde(default)]
    since: u64,
}

async fn calls(State(state): State<ControlState>, Query(query): Query<CallsQuery>) -> Json<Value> {
    let log = state.org.calls();
    let entries: Vec<&crate::state::CallRecord> =
        log.entries.iter().filter(|c| c.seq > query.since).collect();
    Json(json!({ "calls": entries, "last": log.next_seq }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LogFileBody {
    interval: String,
    log_date: DateTime<Utc>,
    csv: String,
}

async fn place_log_file(State(state): State<ControlState>, body: axum::body::Bytes) -> Response {
    let parsed: LogFileBody = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return bad(format!(
                "expected {{\"interval\", \"logDate\", \"csv\"}}: {e}"
            ));
        }
    };
    let interval = match parsed.interval.as_str() {
        "Daily" => Interval::Daily,
        "Hourly" => Interval::Hourly,
        other => return bad(format!("interval must be Daily or Hourly, not {other}")),
    };
    let id = {
        let mut usage = state.org.usage();
        let mut data = state.org.write();
        let now = data.now();
        usage.place_literal(&mut data, interval, parsed.log_date, parsed.csv, now)
    };
    (StatusCode::CREATED, Json(json!({ "id": id }))).into_response()
}

/// `/`: a page saying what this is and who can sign in.
pub async fn home(State(state): State<ControlState>) -> Html<String> {
    let credentials = state
        .credentials
        .read()
        .map(|v| v.clone())
        .unwrap_or(Value::Null);
    let people: String = credentials["people"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            format!(
                "<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
                escape(p["name"].as_str().unwrap_or("")),
                escape(p["username"].as_str().unwrap_or("")),
                escape(p["password"].as_str().unwrap_or("")),
                escape(p["role"].as_str().unwrap_or(""))
            )
        })
        .collect();
    let name = state.org.read().name.clone();
    Html(format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{name}</title></head><body style=\"font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto\">\
<h1>{name}</h1><p>A local stand-in for a Salesforce org, speaking Salesforce's HTTP API at <code>{base}</code>. It is not Salesforce.</p>\
<h2>People who can sign in</h2><table><thead><tr><th>Name</th><th>Username</th><th>Password</th><th>Role</th></tr></thead><tbody>{people}</tbody></table></body></html>",
        name = escape(&name),
        base = escape(&state.org.base_url()),
    ))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Sets `object`'s EntityDefinition `InternalSharingModel`; false when it has no row.
fn set_entity_sharing_model(data: &mut crate::store::OrgData, object: &str, model: &str) -> bool {
    let id = data
        .find_by("EntityDefinition", "QualifiedApiName", object)
        .map(|(id, _)| id.clone());
    match id.and_then(|id| data.get_mut("EntityDefinition", &id)) {
        Some(record) => {
            record.insert("InternalSharingModel".into(), json!(model));
            true
        }
        None => false,
    }
}
