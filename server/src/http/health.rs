//! Liveness and readiness for load balancers and orchestrators.
//!
//! `/healthz` says the process is up and serving HTTP. `/readyz` says it can do its work:
//! it fails (503) while the database does not answer, and says "degraded" (still 200: pages,
//! sign-in sessions and the audit log work) while the Salesforce org does not answer.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Whether the org answers `GET /services/data/` (the API version list: no token, and not
/// an API call that counts against the org's limit) within 3 seconds.
async fn org_answers(state: &AppState) -> bool {
    let Ok(url) = state.org.url.join("/services/data/") else {
        return false;
    };
    let request = state
        .org
        .client
        .http()
        .reqwest()
        .get(url)
        .timeout(Duration::from_secs(3))
        .send();
    matches!(
        tokio::time::timeout(Duration::from_secs(3), request).await,
        Ok(Ok(response)) if response.status().is_success()
    )
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let (database, org) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(3), state.db.ping()),
        org_answers(&state)
    );
    let database = match database {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 3 s".to_string()),
    };
    let salesforce = if org { "ok" } else { "unreachable" };
    match database {
        Ok(()) if org => (
            StatusCode::OK,
            Json(
                json!({ "status": "ready", "checks": { "database": "ok", "salesforce": salesforce } }),
            ),
        ),
        Ok(()) => {
            tracing::warn!("readiness: the Salesforce org does not answer (degraded)");
            (
                StatusCode::OK,
                Json(
                    json!({ "status": "degraded", "checks": { "database": "ok", "salesforce": salesforce } }),
                ),
            )
        }
        Err(reason) => {
            tracing::warn!(%reason, "readiness check failed: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "unavailable",
                    "checks": { "database": "unreachable", "salesforce": salesforce }
                })),
            )
        }
    }
}
