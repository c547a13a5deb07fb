//! Signing in with Salesforce: the OAuth 2.0 web-server flow with PKCE and `state`
//! against the portal's org, a session id rotated at sign-in, and sign-out.
//!
//! Nothing is stored for a sign-in that has not completed: its state, PKCE verifier and
//! place to return to travel in a short-lived cookie sealed with AES-256-GCM (readable and
//! changeable by nobody but the portal), so anonymous requests to `/auth/login` create no
//! session row, and callbacks that arrive with no sign-in in progress are counted
//! (`/metrics`) and logged, never audited.

use std::collections::BTreeMap;
use std::net::IpAddr;

use axum::Extension;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use salesforce::oauth_web::{AuthorizeOptions, CsrfState, PkceVerifier, WebServerFlow};
use salesforce::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;
use services::audit::{self, Actor, AuditAction, Outcome, Target};
use services::vault::Vault;
use shared::auth::SignedInUser;
use tower_sessions::Session;

use super::client::ClientAddr;

use super::AppState;

/// The session key of the signed-in user.
pub const USER_KEY: &str = "auth.user";

/// A sign-in in progress, sealed into the browser's sign-in cookie.
#[derive(Serialize, Deserialize)]
struct Pending {
    state: String,
    verifier: String,
    return_to: String,
    /// When the sign-in began (Unix seconds).
    began: i64,
}

/// How long a sign-in may take from "Log in with Salesforce" to the callback.
const PENDING_SECONDS: i64 = 600;
/// Binds a sealed sign-in to its purpose: nothing else the key seals opens as one.
const PENDING_PURPOSE: &str = "portcullis:sign-in:v1";
/// Audited reasons are cut to this many characters: they can carry the caller's text.
const REASON_CHARS: usize = 200;

pub fn router(limits: std::sync::Arc<super::limits::AuthLimits>) -> Router<AppState> {
    Router::new()
        .route("/auth/login", get(login))
        .route("/auth/callback", get(callback))
        .route_layer(axum::middleware::from_fn_with_state(
            limits,
            super::limits::limit_sign_in,
        ))
        .route("/auth/logout", post(logout))
}

/// The sign-in cookie's name: `__Host-` under https, so no other site (a sibling
/// subdomain included) can set or shadow it.
fn pending_cookie(state: &AppState) -> &'static str {
    if state.config.serves_https() {
        "__Host-portcullis_sign_in"
    } else {
        "portcullis_sign_in"
    }
}

/// A `Set-Cookie` for the sign-in cookie (an empty value with `max_age` 0 removes it).
/// `SameSite=Lax` so the browser sends it on the top-level redirect back from Salesforce.
fn pending_set_cookie(state: &AppState, value: &str, max_age: i64) -> Option<HeaderValue> {
    let secure = if state.config.serves_https() {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}",
        pending_cookie(state)
    ))
    .ok()
}

fn seal_pending(vault: &Vault, pending: &Pending) -> Option<String> {
    let json = serde_json::to_string(pending).ok()?;
    Some(vault.seal(PENDING_PURPOSE, &SecretString::from(json)))
}

/// The sign-in in progress in this request's cookie, if it opens and is recent.
fn open_pending(state: &AppState, headers: &HeaderMap) -> Option<Pending> {
    let vault = state.portal.vault()?;
    let name = pending_cookie(state);
    let value = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"'))?;
    let json = vault.open(PENDING_PURPOSE, value).ok()?;
    let pending: Pending = serde_json::from_str(json.expose_secret()).ok()?;
    let age = chrono::Utc::now().timestamp() - pending.began;
    (-60..=PENDING_SECONDS).contains(&age).then_some(pending)
}

/// A reason as it may go into the audit log: at most [`REASON_CHARS`] characters.
fn short_reason(reason: &str) -> String {
    if reason.chars().count() <= REASON_CHARS {
        return reason.to_string();
    }
    let mut cut: String = reason.chars().take(REASON_CHARS).collect();
    cut.push('…');
    cut
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

async fn login(State(state): State<AppState>, Query(query): Query<LoginQuery>) -> Response {
    let pending = state.org.sign_in.authorize(&AuthorizeOptions::default());
    let record = Pending {
        state: pending.state.as_str().to_string(),
        verifier: pending.pkce_verifier.secret().expose_secret().to_string(),
        return_to: safe_return_to(
            query.return_to.as_deref(),
            &state.portal.settings().public_url,
        ),
        began: chrono::Utc::now().timestamp(),
    };
    let cookie = state
        .portal
        .vault()
        .and_then(|vault| seal_pending(vault, &record))
        .and_then(|sealed| pending_set_cookie(&state, &sealed, PENDING_SECONDS));
    let Some(cookie) = cookie else {
        tracing::error!("sign-in: the sign-in cookie could not be sealed");
        return failed("session");
    };
    let mut response = Redirect::to(pending.url.as_str()).into_response();
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
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
    let mut response = match open_pending(&state, &headers) {
        Some(pending) => {
            finish_sign_in(&state, &session, &headers, client_ip, &query, pending).await
        }
        None => {
            // Replayed, expired, tampered with, or never started here: no one to hold to
            // account, so it is counted and logged but leaves nothing permanent.
            state.metrics.callback_without_sign_in();
            tracing::info!(
                client = %client_ip.map(|ip| ip.to_string()).unwrap_or_default(),
                "sign-in callback with no sign-in in progress (replayed, expired or unsolicited)"
            );
            failed("expired")
        }
    };
    // A sign-in attempt is used once, however it ended: the cookie goes.
    if let Some(clear) = pending_set_cookie(&state, "", 0) {
        response.headers_mut().append(header::SET_COOKIE, clear);
    }
    response
}

async fn finish_sign_in(
    state: &AppState,
    session: &Session,
    headers: &HeaderMap,
    client_ip: Option<IpAddr>,
    query: &BTreeMap<String, String>,
    pending: Pending,
) -> Response {
    let code = match WebServerFlow::callback_code(query, &CsrfState::from_session(pending.state)) {
        Ok(code) => code,
        Err(salesforce::oauth_web::CallbackError::Denied { error, .. }) => {
            record_failure(
                state,
                headers,
                client_ip,
                &format!("Salesforce refused: {error}"),
            )
            .await;
            return failed("denied");
        }
        Err(e) => {
            record_failure(state, headers, client_ip, &e.to_string()).await;
            return failed("state");
        }
    };
    let verifier = PkceVerifier::from_secret(SecretString::from(pending.verifier));
    let token = match state.org.sign_in.exchange_code(&code, verifier).await {
        Ok(token) => token,
        Err(e) => {
            tracing::warn!(error = %e, "sign-in: the code exchange failed");
            record_failure(state, headers, client_ip, "the code exchange was refused").await;
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
    // Only people of the portal's own org sign in (a login endpoint such as
    // login.salesforce.com serves every org, and roles come from usernames).
    let expected = match &state.config.salesforce_org_id {
        Some(id) => Ok(id.clone()),
        None => state.org.id().await,
    };
    match expected {
        Ok(expected) if same_org(&info.organization_id, &expected) => {}
        Ok(expected) => {
            let theirs: String = info.organization_id.chars().take(18).collect();
            record_failure(
                state,
                headers,
                client_ip,
                &format!(
                    "signed in to another Salesforce organization ({theirs}), not this portal's ({expected})"
                ),
            )
            .await;
            return failed("org");
        }
        Err(e) => {
            tracing::warn!(error = %e, "sign-in: could not read the portal's own org id");
            record_failure(
                state,
                headers,
                client_ip,
                "the portal could not confirm its own org",
            )
            .await;
            return failed("exchange");
        }
    }
    let username = info
        .preferred_username
        .clone()
        .unwrap_or_default()
        .to_ascii_lowercase();
    // When the org does not answer, the person starts with no permission sets and the
    // next request asks again (as if the last check were one interval ago).
    let now = chrono::Utc::now().timestamp_millis();
    let (permission_sets, checked_at) =
        match super::session_check::permission_sets(state, &info.user_id).await {
            Ok(sets) => (sets, now),
            Err(e) => {
                tracing::warn!(error = %e, "sign-in: could not read the person's permission sets");
                let interval = state.config.session_recheck.as_millis() as i64;
                (Vec::new(), now - interval)
            }
        };
    let user = SignedInUser {
        permission_sets,
        username,
        user_id: info.user_id.clone(),
        name: info.name.clone().unwrap_or_default(),
        email: info.email.clone().unwrap_or_default(),
    };
    // A new session id at sign-in: a session fixed before it is worthless after.
    if session.cycle_id().await.is_err()
        || session.insert(USER_KEY, &user).await.is_err()
        || session
            .insert(super::session_check::CHECKED_KEY, checked_at)
            .await
            .is_err()
    {
        return failed("session");
    }
    let roles = state.portal.roles_of(&user).await.unwrap_or_default();
    let actor = actor_from(headers, client_ip, &user.username);
    if let Err(e) = state.portal.record_sign_in(&user, &roles, &actor).await {
        tracing::error!(error = %e, "could not record a sign-in");
        return failed("session");
    }
    // Checked again on the way out: what is redirected to is always a path of this portal.
    Redirect::to(&safe_return_to(
        Some(&pending.return_to),
        &state.portal.settings().public_url,
    ))
    .into_response()
}

/// Whether two org ids (15 or 18 characters; the first 15 are case-sensitive) are one org.
fn same_org(a: &str, b: &str) -> bool {
    a.len() >= 15
        && b.len() >= 15
        && a.is_char_boundary(15)
        && b.is_char_boundary(15)
        && a[..15] == b[..15]
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
        audit::record_outcome(
            &mut tx.tx,
            &actor,
            AuditAction::AuthSignInFailed,
            Outcome::Failure,
            Target::User,
            "",
            json!({ "reason": short_reason(reason) }),
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
            audit::record(
                &mut tx.tx,
                &actor,
                AuditAction::AuthSignedOut,
                Target::User,
                &user.username,
                json!({}),
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
