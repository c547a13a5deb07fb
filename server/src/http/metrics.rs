//! `GET /metrics` for the operator, in Prometheus's text exposition format: the portal's one
//! registry ([`services::metrics`]), with the database's gauges read at scrape time
//! ([`services::Portal::metrics_text`]). With `METRICS_TOKEN` set, a scrape without
//! `Authorization: Bearer <token>` is refused with 401 (the token is compared in constant
//! time and never logged).
//!
//! Also here: the middleware that counts and times every HTTP request by its matched route's
//! template (`/status/{token}`, never the raw path: no ids or tokens in labels).

use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;

pub use services::metrics::Metrics;

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.config.metrics_token
        && !authorized(&headers, token)
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "/metrics needs Authorization: Bearer <METRICS_TOKEN>\n",
        )
            .into_response();
    }
    match state.portal.metrics_text().await {
        Ok(text) => (
            [(header::CONTENT_TYPE, services::metrics::CONTENT_TYPE)],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "/metrics could not be answered");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the metrics could not be read from the database; see the portal's log\n",
            )
                .into_response()
        }
    }
}

/// Whether the request carries `Authorization: Bearer <token>`. Both sides are hashed
/// first, so the comparison takes the same time whatever the length or content of the
/// guess.
fn authorized(headers: &HeaderMap, token: &SecretString) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
    else {
        return false;
    };
    let given = Sha256::digest(given.as_bytes());
    let expected = Sha256::digest(token.expose_secret().as_bytes());
    given.as_slice().ct_eq(expected.as_slice()).into()
}

/// The route a request is counted under: its matched route's template, `/pkg/{*file}` for
/// the static files the fallback serves, and `unmatched` for any other path (a 404 page).
fn route_of(request: &Request) -> String {
    if let Some(matched) = request.extensions().get::<MatchedPath>() {
        return matched.as_str().to_string();
    }
    if request.uri().path().starts_with("/pkg/") {
        "/pkg/{*file}".to_string()
    } else {
        "unmatched".to_string()
    }
}

/// Middleware: counts every request by method, route and status, and times it to its
/// answer's headers (a streamed body, such as an export, is not waited for).
pub async fn record(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = tokio::time::Instant::now();
    let method = request.method().clone();
    let route = route_of(&request);
    let response = next.run(request).await;
    metrics.http_request(
        method.as_str(),
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn only_the_right_bearer_token_is_accepted() {
        let token = SecretString::from("s3cret-metrics-token");
        assert!(authorized(&with("Bearer s3cret-metrics-token"), &token));
        assert!(authorized(&with("bearer  s3cret-metrics-token "), &token));
        assert!(!authorized(&with("Bearer s3cret-metrics-toke"), &token));
        assert!(!authorized(&with("Basic s3cret-metrics-token"), &token));
        assert!(!authorized(&with("s3cret-metrics-token"), &token));
        assert!(!authorized(&HeaderMap::new(), &token));
    }
}
