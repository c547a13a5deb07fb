//! Signing in with Salesforce: the OAuth 2.0 web-server flow with PKCE and `state`
//! against the portal's org, a session id rotated at sign-in, and sign-out.

use std::collections::BTreeMap;
use std::net::IpAddr;

use axum::Extension;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use salesforce::oauth_web::{AuthorizeOptions, CsrfState, PkceVerifier, WebServerFlow};
use salesforce::soql::Soql;
use salesforce::{Cond, ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use services::audit::{self, Actor, Event, Outcome};
use shared::auth::SignedInUser;
use tower_sessions::Session;

use super::client::ClientAddr;

use super::AppState;

/// The session key of the signed-in user.
pub const USER_KEY: &str = "auth.user";
const PENDING_KEY: &str = "auth.pending";

/// A sign-in in progress (kept server-side, in the session store).
#[derive(Serialize, Deserialize)]
struct Pending {
    state: String,
    verifier: String,
    return_to: String,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", get(login))
        .route("/auth/callback", get(callback))
        .route("/auth/logout", post(logout))
}

/// Where a completed sign-in sends the browser when it asked for nowhere usable.
const DEFAULT_RETURN_TO: &str = "/admin";

/// Only paths of this portal are places to return to after signing in. Browsers drop tabs
/// and line breaks from URLs and read a backslash as `/`, so "/<tab>/evil.example" would be
/// `//evil.example`: anything with a control or whitespace character, or a backslash, is
/// refused outright; the rest is resolved against the portal's URL as a browser would,
/// must keep its origin, and is re-serialised (so what is sent is what was checked).
fn safe_return_to(raw: Option<&str>, portal_url: &str) -> String {
    let fallback = || DEFAULT_RETURN_TO.to_string();
    let Some(raw) = raw else {
        return fallback();
    };
    if raw.len() > 512
        || !raw.starts_with('/')
        || raw.starts_with("//")
        || raw.contains('\\')
        || raw.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return fallback();
    }
    let Ok(base) = url::Url::parse(portal_url) else {
        return fallback();
    };
    let Ok(target) = base.join(raw) else {
        return fallback();
    };
    if target.origin() != base.origin() || !target.path().starts_with('/') {
        return fallback();
    }
    let mut path = target.path().to_string();
    if let Some(query) = target.query() {
        path.push('?');
        path.push_str(query);
    }
    if let Some(fragment) = target.fragment() {
        path.push('#');
        path.push_str(fragment);
    }
    if path.starts_with("//") {
        return fallback();
    }
    path
}

/// Who is asking, for the audit log: `client` is the address [`super::client`] decided.
pub fn actor_from(headers: &HeaderMap, client: Option<IpAddr>, name: &str) -> Actor {
    let ip = client.map(|ip| ip.to_string()).unwrap_or_default();
    let user_agent = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(300)
        .collect();
    Actor {
        name: name.to_string(),
        ip,
        user_agent,
    }
}

#[derive(Deserialize)]
struct LoginQuery {
    return_to: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<LoginQuery>,
) -> Response {
    let pending = state.org.sign_in.authorize(&AuthorizeOptions::default());
    let record = Pending {
        state: pending.state.as_str().to_string(),
        verifier: pending.pkce_verifier.secret().expose_secret().to_string(),
        return_to: safe_return_to(
            query.return_to.as_deref(),
            &state.portal.settings.public_url,
        ),
    };
    if session.insert(PENDING_KEY, record).await.is_err() {
        return failed("session");
    }
    Redirect::to(pending.url.as_str()).into_response()
}

fn failed(reason: &str) -> Response {
    Redirect::to(&format!("/auth/failed?reason={reason}")).into_response()
}

async fn callback(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    session: Session,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let client_ip = client.map(|Extension(ClientAddr(ip))| ip);
    // A sign-in attempt is used once: taking it out of the session makes a replayed
    // callback fail.
    let pending: Option<Pending> = session.remove(PENDING_KEY).await.ok().flatten();
    let Some(pending) = pending else {
        record_failure(
            &state,
            &headers,
            client_ip,
            "no sign-in in progress (replayed or unexpected callback)",
        )
        .await;
        return failed("expired");
    };
    let code = match WebServerFlow::callback_code(&query, &CsrfState::from_session(pending.state)) {
        Ok(code) => code,
        Err(salesforce::oauth_web::CallbackError::Denied { error, .. }) => {
            record_failure(
                &state,
                &headers,
                client_ip,
                &format!("Salesforce refused: {error}"),
            )
            .await;
            return failed("denied");
        }
        Err(e) => {
            record_failure(&state, &headers, client_ip, &e.to_string()).await;
            return failed("state");
        }
    };
    let verifier = PkceVerifier::from_secret(SecretString::from(pending.verifier));
    let token = match state.org.sign_in.exchange_code(&code, verifier).await {
        Ok(token) => token,
        Err(e) => {
            tracing::warn!(error = %e, "sign-in: the code exchange failed");
            record_failure(&state, &headers, client_ip, "the code exchange was refused").await;
            return failed("exchange");
        }
    };
    let oauth = state.org.client.oauth();
    let instance = token.instance_url.clone();
    let info = match oauth.userinfo(&instance, &token.access_token).await {
        Ok(info) => info,
        Err(e) => {
            tracing::warn!(error = %e, "sign-in: userinfo failed");
            return failed("exchange");
        }
    };
    // The portal never acts as the person: their token is revoked straight away.
    let _ = oauth.revoke(&instance, &token.access_token).await;
    let username = info
        .preferred_username
        .clone()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let user = SignedInUser {
        permission_sets: permission_sets_of(&state, &info.user_id).await,
        username,
        user_id: info.user_id.clone(),
        name: info.name.clone().unwrap_or_default(),
        email: info.email.clone().unwrap_or_default(),
    };
    // A new session id at sign-in: a session fixed before it is worthless after.
    if session.cycle_id().await.is_err() || session.insert(USER_KEY, &user).await.is_err() {
        return failed("session");
    }
    let roles = state.portal.roles_of(&user).await.unwrap_or_default();
    let actor = actor_from(&headers, client_ip, &user.username);
    if let Err(e) = state.portal.record_sign_in(&user, &roles, &actor).await {
        tracing::error!(error = %e, "could not record a sign-in");
        return failed("session");
    }
    // Checked again on the way out: what is redirected to is always a path of this portal.
    Redirect::to(&safe_return_to(
        Some(&pending.return_to),
        &state.portal.settings.public_url,
    ))
    .into_response()
}

/// Permission sets the person holds now (unexpired assignments), read with the portal's
/// own connection.
async fn permission_sets_of(state: &AppState, user_id: &str) -> Vec<String> {
    let Ok(user) = salesforce::SalesforceId::parse(user_id) else {
        return Vec::new();
    };
    let soql = match Soql::select(&["PermissionSet.Name", "ExpirationDate"])
        .from("PermissionSetAssignment")
        .filter(Cond::eq("AssigneeId", user))
        .build()
    {
        Ok(soql) => soql,
        Err(_) => return Vec::new(),
    };
    let now = chrono::Utc::now();
    match state.org.client.query_all::<Value>(&soql).await {
        Ok(rows) => rows
            .iter()
            .filter(|r| {
                r["ExpirationDate"]
                    .as_str()
                    .and_then(|d| {
                        chrono::DateTime::parse_from_str(d, "%Y-%m-%dT%H:%M:%S%.f%z").ok()
                    })
                    .is_none_or(|d| d > now)
            })
            .filter_map(|r| r["PermissionSet"]["Name"].as_str().map(String::from))
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "sign-in: could not read the person's permission sets");
            Vec::new()
        }
    }
}

async fn record_failure(
    state: &AppState,
    headers: &HeaderMap,
    client: Option<IpAddr>,
    reason: &str,
) {
    let actor = actor_from(headers, client, "anonymous");
    let result = async {
        let mut tx = state.db.begin_write().await?;
        audit::append(
            &mut tx.tx,
            Event {
                actor: &actor,
                action: "auth.sign_in_failed",
                target_type: "user",
                target_id: "",
                outcome: Outcome::Failure,
                details: json!({ "reason": reason }),
            },
        )
        .await?;
        tx.commit().await
    }
    .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "could not audit a failed sign-in");
    }
}

async fn logout(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    session: Session,
    headers: HeaderMap,
) -> Response {
    let user: Option<SignedInUser> = session.get(USER_KEY).await.ok().flatten();
    let _ = session.flush().await;
    if let Some(user) = user {
        let client_ip = client.map(|Extension(ClientAddr(ip))| ip);
        let actor = actor_from(&headers, client_ip, &user.username);
        let result = async {
            let mut tx = state.db.begin_write().await?;
            audit::append(
                &mut tx.tx,
                Event {
                    actor: &actor,
                    action: "auth.signed_out",
                    target_type: "user",
                    target_id: &user.username,
                    outcome: Outcome::Success,
                    details: json!({}),
                },
            )
            .await?;
            tx.commit().await
        }
        .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "could not audit a sign-out");
        }
    }
    Redirect::to("/").into_response()
}
