//! Counters for the operator, at `GET /metrics` in Prometheus's text format: things the
//! portal refuses or drops without writing them anywhere permanent (an anonymous flood of
//! sign-in callbacks must not grow the audit log, but should still be seen).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::AppState;

/// This process's counters (each instance counts its own).
#[derive(Debug, Default)]
pub struct Metrics {
    pub callbacks_without_sign_in: AtomicU64,
    pub auth_refused_per_client: AtomicU64,
    pub auth_refused_global: AtomicU64,
    pub requests_shed: AtomicU64,
    pub requests_timed_out: AtomicU64,
}

impl Metrics {
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters as Prometheus text.
    pub fn render(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        counter(
            "portcullis_auth_callbacks_without_sign_in_total",
            "Sign-in callbacks with no sign-in in progress in the browser (replayed, expired or unsolicited); not audited.",
            &[("", get(&self.callbacks_without_sign_in))],
        );
        counter(
            "portcullis_auth_requests_refused_total",
            "Requests to /auth/login and /auth/callback refused by a rate limit.",
            &[
                ("{limit=\"client\"}", get(&self.auth_refused_per_client)),
                ("{limit=\"global\"}", get(&self.auth_refused_global)),
            ],
        );
        counter(
            "portcullis_http_requests_refused_total",
            "Requests answered 503: too many in flight (HTTP_MAX_CONCURRENT_REQUESTS), or no answer in time (HTTP_REQUEST_TIMEOUT_SECONDS).",
            &[
                ("{reason=\"busy\"}", get(&self.requests_shed)),
                ("{reason=\"timeout\"}", get(&self.requests_timed_out)),
            ],
        );
        out
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
