//! Connect REST for OAuth apps (`/apps/oauth/...`, reference §5): the apps with usage,
//! their users and tokens, consumer credentials (the secret only when the org allows it),
//! staged credentials and rotation.

use std::collections::HashMap;

use axum::http::{Method, StatusCode};
use chrono::Duration;
use serde_json::{Value, json};

use crate::apps::{App, StagedCredentials, StagedState, new_consumer_key, new_consumer_secret};
use crate::error::{SfError, SfResult};
use crate::rest::{Call, Reply};

fn forbidden() -> SfError {
    SfError::new(
        StatusCode::FORBIDDEN,
        "INSUFFICIENT_ACCESS",
        "You don't have permission to view or manage external client apps",
    )
}

fn app_not_found(id: &str) -> SfError {
    SfError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("No external client app found with the identifier {id}"),
    )
}

fn consumer_json(app: &App, version: &str, secret: bool, key: bool) -> Value {
    let base = format!(
        "/services/data/v{version}/apps/oauth/credentials/{}/{}",
        app.id, app.consumer.id
    );
    let mut out = json!({
        "id": app.consumer.id,
        "name": app.developer_name,
        "url": base,
        "stagedCredentialsUrl": format!("{base}/staged"),
    });
    if key {
        out["key"] = json!(app.consumer.key);
    }
    if secret {
        out["secret"] = json!(app.consumer.secret);
    }
    out
}

fn staged_json(app: &App, staged: &StagedCredentials, version: &str) -> Value {
    let base = format!(
        "/services/data/v{version}/apps/oauth/credentials/{}/{}/staged",
        app.id, app.consumer.id
    );
    json!({
        "createdBy": staged.created_by,
        "createdDate": crate::store::sf_datetime(staged.created_date),
        "expirationDate": crate::store::sf_datetime(staged.expiration_date),
        "id": staged.id,
        "key": staged.key,
        "secret": staged.secret,
        "stagedCredentialsUrl": base,
        "state": staged.state.as_str(),
        "url": format!("{base}/{}", staged.id),
    })
}

fn find_app<'a>(apps: &'a std::collections::BTreeMap<String, App>, id: &str) -> SfResult<&'a App> {
    apps.values()
        .find(|a| a.id == id || a.id.get(..15) == id.get(..15).filter(|_| id.len() == 15))
        .ok_or_else(|| app_not_found(id))
}

/// `/apps/oauth/...`
pub fn apps_oauth(
    call: &mut Call<'_>,
    method: &Method,
    rest: &[&str],
    query: &HashMap<String, String>,
    body: &crate::rest::Body<'_>,
) -> SfResult<Reply> {
    let access = &call.session.access;
    if !(access.modify_all_data() || access.has("CustomizeApplication")) {
        return Err(forbidden());
    }
    let version = call.version.clone();
    match (method, rest) {
        (&Method::GET, ["usage"]) => {
            let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(0);
            let size: usize = query
                .get("pageSize")
                .and_then(|p| p.parse().ok())
                .unwrap_or(100)
                .clamp(1, 1000);
            let data = call.org.read();
            let apps: Vec<Value> = data
                .apps
                .values()
                .skip(page * size)
                .take(size)
                .map(|app| {
                    json!({
                        "accessTokenFormat": "Opaque",
                        "availableActions": ["RevokeTokens"],
                        "description": app.description,
                        "developerName": app.developer_name,
                        "identifier": app.id,
                        "isFromPackage": false,
                        "usageDetailsUrl": format!("/services/data/v{version}/apps/oauth/usage/{}/users", app.id),
                    })
                })
                .collect();
            let more = data.apps.len() > (page + 1) * size;
            Ok(Reply::Json(
                StatusCode::OK,
                json!({
                    "apps": apps,
                    "currentPageUrl": format!("/services/data/v{version}/apps/oauth/usage?page={page}&pageSize={size}"),
                    "nextPageUrl": if more { json!(format!("/services/data/v{version}/apps/oauth/usage?page={}&pageSize={size}", page + 1)) } else { Value::Null },
                }),
            ))
        }
        (&Method::GET, ["usage", app_id, "users"]) => {
            let data = call.org.read();
            let app = find_app(&data.apps, app_id)?.clone();
            let tokens = call.org.tokens();
            let mut per_user: HashMap<String, (usize, chrono::DateTime<chrono::Utc>)> =
                HashMap::new();
            for token in tokens
                .access
                .values()
                .filter(|t| t.app_id.as_deref() == Some(app.id.as_str()))
            {
                let entry = per_user
                    .entry(token.user_id.clone())
                    .or_insert((0, token.issued_at));
                entry.0 += 1;
                entry.1 = entry.1.max(token.issued_at);
            }
            let users: Vec<Value> = per_user
                .iter()
                .map(|(user_id, (count, last))| {
                    let username = data
                        .get("User", user_id)
                        .and_then(|u| u.get("Username"))
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    json!({
                        "accessTokenFormat": "Opaque",
                        "appDeveloperName": app.developer_name,
                        "appIdentifier": app.id,
                        "lastUsedAt": crate::store::sf_datetime(*last),
                        "useCount": count,
                        "userIdentifier": user_id,
                        "username": username,
                    })
                })
                .collect();
            Ok(Reply::Json(StatusCode::OK, json!({ "users": users })))
        }
        (&Method::DELETE, ["usage", app_id, "tokens"]) => {
            let app_id = find_app(&call.org.read().apps, app_id)?.id.clone();
            let mut tokens = call.org.tokens_mut();
            tokens
                .access
                .retain(|_, t| t.app_id.as_deref() != Some(app_id.as_str()));
            tokens.refresh.retain(|_, t| t.app_id != app_id);
            call.effects.push(format!("revoke tokens of app {app_id}"));
            Ok(Reply::Empty(StatusCode::NO_CONTENT))
        }
        (&Method::DELETE, ["usage", app_id, user_id, "tokens"]) => {
            let app_id = find_app(&call.org.read().apps, app_id)?.id.clone();
            let user = salesforce::SalesforceId::parse(user_id).map_err(|_| {
                SfError::bad_request("MALFORMED_ID", format!("malformed id {user_id}"))
            })?;
            let mut tokens = call.org.tokens_mut();
            tokens.access.retain(|_, t| {
                !(t.app_id.as_deref() == Some(app_id.as_str()) && t.user_id == user.as_str())
            });
            tokens
                .refresh
                .retain(|_, t| !(t.app_id == app_id && t.user_id == user.as_str()));
            call.effects
                .push(format!("revoke tokens of app {app_id} for {user}"));
            Ok(Reply::Empty(StatusCode::NO_CONTENT))
        }
        (&Method::GET, ["credentials", app_id]) => {
            let data = call.org.read();
            let app = find_app(&data.apps, app_id)?;
            Ok(Reply::Json(
                StatusCode::OK,
                json!({
                    "consumers": [consumer_json(app, &version, false, true)],
                    "currentPageUrl": format!("/services/data/v{version}/apps/oauth/credentials/{}", app.id),
                }),
            ))
        }
        (&Method::GET, ["credentials", app_id, consumer_id]) => {
            let data = call.org.read();
            let app = find_app(&data.apps, app_id)?;
            if app.consumer.id != *consumer_id {
                return Err(SfError::new(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    format!("No OAuth consumer {consumer_id} on this app"),
                ));
            }
            let part = query.get("part").map(|p| p.to_ascii_lowercase());
            let (key, secret) = match part.as_deref() {
                None | Some("key") => (true, false),
                Some("secret") => (false, true),
                Some("keyandsecret") => (true, true),
                Some(other) => {
                    return Err(SfError::bad_request(
                        "INVALID_INPUT",
                        format!("part must be key, secret or keyandsecret, not {other}"),
                    ));
                }
            };
            if secret && !data.settings.enable_client_secret_in_rest_api_access {
                return Err(SfError::new(
                    StatusCode::FORBIDDEN,
                    "FUNCTIONALITY_NOT_ENABLED",
                    "Access to consumer secrets through the REST API is not currently enabled for this org",
                ));
            }
            if secret {
                call.effects.push(format!("read secret of app {}", app.id));
            }
            Ok(Reply::Json(
                StatusCode::OK,
                consumer_json(app, &version, secret, key),
            ))
        }
        (_, ["credentials", app_id, consumer_id, "staged", rest @ ..]) => {
            // Staged credentials are resources of API 65.0 and later (reference §5): an
            // older version does not know them.
            let major = version
                .split('.')
                .next()
                .and_then(|m| m.parse::<u16>().ok())
                .unwrap_or(0);
            if major < salesforce::connect::STAGED_CREDENTIALS_SINCE {
                return Err(SfError::not_found());
            }
            if *method == Method::PATCH {
                let request = body.json_object()?;
                if request.get("command").and_then(Value::as_str) != Some("rotate") {
                    return Err(SfError::bad_request(
                        "INVALID_INPUT",
                        "The only available command is rotate: send {\"command\":\"rotate\"}",
                    ));
                }
            }
            staged(call, method, app_id, consumer_id, rest, &version)
        }
        _ => Err(SfError::not_found()),
    }
}

fn staged(
    call: &mut Call<'_>,
    method: &Method,
    app_id: &str,
    consumer_id: &str,
    rest: &[&str],
    version: &str,
) -> SfResult<Reply> {
    let now = call.now;
    let user_id = call.session.user_id.clone();
    let mut data = call.org.write();
    if !data.settings.enable_client_secret_in_rest_api_access
        && *method != Method::PATCH
        && *method != Method::DELETE
    {
        return Err(SfError::new(
            StatusCode::FORBIDDEN,
            "FUNCTIONALITY_NOT_ENABLED",
            "Access to consumer secrets through the REST API is not currently enabled for this org",
        ));
    }
    let app_key = data
        .apps
        .iter()
        .find(|(_, a)| a.id == app_id)
        .map(|(k, _)| k.clone())
        .ok_or_else(|| app_not_found(app_id))?;
    let staged_prefix = "0Sx";
    let new_staged_id = data.new_id(staged_prefix).as_str().to_string();
    let app = data
        .apps
        .get_mut(&app_key)
        .ok_or_else(|| app_not_found(app_id))?;
    if app.consumer.id != consumer_id {
        return Err(SfError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("No OAuth consumer {consumer_id} on this app"),
        ));
    }
    for staged in &mut app.staged {
        if staged.state == StagedState::Active && staged.expiration_date <= now {
            staged.state = StagedState::Expired;
        }
    }
    match (method, rest) {
        (&Method::GET, []) => {
            let list: Vec<Value> = app
                .staged
                .iter()
                .map(|s| staged_json(app, s, version))
                .collect();
            Ok(Reply::Json(
                StatusCode::OK,
                json!({ "stagedCredentials": list, "url": format!("/services/data/v{version}/apps/oauth/credentials/{}/{}/staged", app.id, app.consumer.id) }),
            ))
        }
        (&Method::POST, []) => {
            let staged = StagedCredentials {
                id: new_staged_id,
                key: new_consumer_key(),
                secret: new_consumer_secret(),
                created_by: user_id,
                created_date: now,
                expiration_date: now + Duration::days(30),
                state: StagedState::Active,
            };
            let body = staged_json(app, &staged, version);
            app.staged.push(staged);
            call.effects
                .push(format!("stage credentials of app {}", app.id));
            Ok(Reply::Json(StatusCode::CREATED, body))
        }
        (&Method::GET, [staged_id]) => {
            let staged = app
                .staged
                .iter()
                .find(|s| s.id == *staged_id)
                .ok_or_else(SfError::not_found)?;
            Ok(Reply::Json(
                StatusCode::OK,
                staged_json(app, staged, version),
            ))
        }
        (&Method::DELETE, [staged_id]) => {
            let before = app.staged.len();
            app.staged.retain(|s| s.id != *staged_id);
            if app.staged.len() == before {
                return Err(SfError::not_found());
            }
            Ok(Reply::Empty(StatusCode::NO_CONTENT))
        }
        (&Method::PATCH, [staged_id]) => {
            let staged = app
                .staged
                .iter_mut()
                .find(|s| s.id == *staged_id)
                .ok_or_else(SfError::not_found)?;
            if staged.state != StagedState::Active {
                return Err(SfError::bad_request(
                    "INVALID_STATE",
                    format!(
                        "Staged credentials {staged_id} are {} and can't be rotated",
                        staged.state.as_str()
                    ),
                ));
            }
            staged.state = StagedState::Rotated;
            let (key, secret) = (staged.key.clone(), staged.secret.clone());
            app.consumer.key = key;
            app.consumer.secret = secret;
            let body = json!({ "id": staged_id, "state": "Rotated" });
            call.effects
                .push(format!("rotate credentials of app {}", app.id));
            Ok(Reply::Json(StatusCode::OK, body))
        }
        _ => Err(SfError::not_found()),
    }
}
