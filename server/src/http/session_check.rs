//! Signed-in people stay what the org says they are. A session carries the permission sets
//! read at sign-in; every `SESSION_RECHECK_MINUTES` (on the person's next request) the org
//! is asked again, in one composite call, whether the user is still active, not frozen, and
//! which permission sets they hold. A deactivated or frozen person is signed out (audited
//! as `auth.session_ended`); a removed permission set takes its role away at once.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use salesforce::composite::{CompositeRequest, ReferenceId, Subrequest};
use salesforce::{Cond, SalesforceId, Soql};
use serde_json::{Value, json};
use services::audit::{self, Actor, AuditAction, Target};
use shared::auth::SignedInUser;
use tower_sessions::Session;

use super::AppState;
use super::auth::USER_KEY;

/// The session key of when the person's standing was last read from the org (Unix ms).
pub const CHECKED_KEY: &str = "auth.checked_at";

/// When the org cannot be asked, the session carries on with what it had, for at least
/// this long after the last answer (an org outage does not sign everyone out at once).
const GRACE_MS: i64 = 15 * 60 * 1000;

/// A person's standing in the org, now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub active: bool,
    pub frozen: bool,
    /// Names of the permission sets held (assignments not yet expired).
    pub permission_sets: Vec<String>,
}

/// Reads `user_id`'s standing with the portal's own connection: one API call.
pub async fn standing(state: &AppState, user_id: &str) -> Result<Standing, String> {
    let id = SalesforceId::parse(user_id).map_err(|e| e.to_string())?;
    let query = |fields: &[&str], object: &str, field: &str| {
        Soql::select(fields)
            .from(object)
            .filter(Cond::eq(field, &id))
            .build()
            .map_err(|e| e.to_string())
    };
    let refs = ["user", "login", "sets"].map(|r| ReferenceId::new(r).map_err(|e| e.to_string()));
    let [user_ref, login_ref, sets_ref] = refs;
    let (user_ref, login_ref, sets_ref) = (user_ref?, login_ref?, sets_ref?);
    let user_query = query(&["IsActive"], "User", "Id")?;
    let login_query = query(&["IsFrozen"], "UserLogin", "UserId")?;
    let sets_query = query(
        &["PermissionSet.Name", "ExpirationDate"],
        "PermissionSetAssignment",
        "AssigneeId",
    )?;
    let mut request = CompositeRequest::new(false);
    request
        .push(Subrequest::query(user_ref.clone(), &user_query))
        .and_then(|r| r.push(Subrequest::query(login_ref.clone(), &login_query)))
        .and_then(|r| r.push(Subrequest::query(sets_ref.clone(), &sets_query)))
        .map_err(|e| e.to_string())?;
    let response = state
        .org
        .client
        .composite(&request)
        .await
        .map_err(|e| e.to_string())?;
    let records = |reference: &ReferenceId| -> Result<Vec<Value>, String> {
        let body = response
            .get(reference)
            .cloned()
            .ok_or("a subrequest has no result")?
            .into_result()
            .map_err(|e| e.to_string())?;
        Ok(body["records"].as_array().cloned().unwrap_or_default())
    };
    let user = records(&user_ref)?;
    Ok(Standing {
        // A user the org no longer shows is not active.
        active: user
            .first()
            .is_some_and(|u| u["IsActive"].as_bool().unwrap_or(false)),
        frozen: records(&login_ref)?
            .iter()
            .any(|l| l["IsFrozen"].as_bool().unwrap_or(false)),
        permission_sets: unexpired_names(&records(&sets_ref)?),
    })
}

/// The permission sets `user_id` holds now, in one plain query (at sign-in: the standing's
/// other parts are Salesforce's own business then, since it issued the person a token).
pub async fn permission_sets(state: &AppState, user_id: &str) -> Result<Vec<String>, String> {
    let id = SalesforceId::parse(user_id).map_err(|e| e.to_string())?;
    let soql = Soql::select(&["PermissionSet.Name", "ExpirationDate"])
        .from("PermissionSetAssignment")
        .filter(Cond::eq("AssigneeId", &id))
        .build()
        .map_err(|e| e.to_string())?;
    let rows = state
        .org
        .client
        .query_all::<Value>(&soql)
        .await
        .map_err(|e| e.to_string())?;
    Ok(unexpired_names(&rows))
}

/// Names of the permission sets in assignment rows whose ExpirationDate has not passed.
fn unexpired_names(rows: &[Value]) -> Vec<String> {
    let now = chrono::Utc::now();
    rows.iter()
        .filter(|r| {
            r["ExpirationDate"]
                .as_str()
                .and_then(|d| chrono::DateTime::parse_from_str(d, "%Y-%m-%dT%H:%M:%S%.f%z").ok())
                .is_none_or(|d| d > now)
        })
        .filter_map(|r| r["PermissionSet"]["Name"].as_str().map(String::from))
        .collect()
}

/// Paths that never need to know who is signed in.
fn skips(path: &str) -> bool {
    path.starts_with("/pkg/")
        || path.starts_with("/auth/")
        || matches!(path, "/healthz" | "/readyz" | "/metrics" | "/favicon.ico")
}

/// Middleware: re-reads the signed-in person's standing when it is due.
pub async fn recheck(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !skips(request.uri().path())
        && let Some(session) = request.extensions().get::<Session>().cloned()
    {
        check(&state, &session).await;
    }
    next.run(request).await
}

async fn check(state: &AppState, session: &Session) {
    let Ok(Some(mut user)) = session.get::<SignedInUser>(USER_KEY).await else {
        return;
    };
    let checked: i64 = session.get(CHECKED_KEY).await.ok().flatten().unwrap_or(0);
    let now = chrono::Utc::now().timestamp_millis();
    let every = state.config.session_recheck.as_millis() as i64;
    if now - checked < every {
        return;
    }
    match standing(state, &user.user_id).await {
        Ok(standing) if !standing.active || standing.frozen => {
            let reason = if standing.active {
                "the user is frozen in Salesforce"
            } else {
                "the user is no longer active in Salesforce"
            };
            end(state, session, &user, reason).await;
        }
        Ok(standing) => {
            if standing.permission_sets != user.permission_sets {
                user.permission_sets = standing.permission_sets;
                if session.insert(USER_KEY, &user).await.is_err() {
                    return;
                }
                match state.portal.roles_of(&user).await {
                    Ok(roles) => {
                        tracing::info!(user = %user.username, roles = ?roles.names(), "a signed-in person's roles changed in the org");
                        if let Err(e) = state.portal.refresh_roles(&user.username, &roles).await {
                            tracing::warn!(error = %e, "could not record a person's new roles");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "could not work out a person's roles"),
                }
            }
            let _ = session.insert(CHECKED_KEY, now).await;
        }
        Err(e) => {
            tracing::warn!(error = %e, user = %user.username, "could not re-read a signed-in person's standing in the org");
            if now - checked > GRACE_MS.max(3 * every) {
                end(
                    state,
                    session,
                    &user,
                    "the person's standing could not be confirmed with Salesforce",
                )
                .await;
            }
        }
    }
}

/// Signs the person out, audited.
async fn end(state: &AppState, session: &Session, user: &SignedInUser, reason: &str) {
    if let Err(e) = session.flush().await {
        tracing::error!(error = %e, "could not end a session");
        return;
    }
    tracing::info!(user = %user.username, %reason, "session ended");
    let result = async {
        let mut tx = state.db.begin_write().await?;
        audit::record(
            &mut tx.tx,
            &Actor::system(),
            AuditAction::AuthSessionEnded,
            Target::User,
            &user.username,
            json!({ "reason": reason, "user_id": user.user_id }),
        )
        .await?;
        tx.commit().await
    }
    .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "could not audit an ended session");
    }
}
