//! Rate limits for signing in (`/auth/login`, `/auth/callback`): per client (an IPv4
//! address or an IPv6 /64) and for the whole portal, counted in this process's memory.
//! Each sign-in costs the portal a sealed cookie, a call to Salesforce and, when something
//! is wrong, an audit entry; a flood of them must not cost more than a person signing in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::client::ClientAddr;
use services::metrics::{AuthLimit, Metrics};

/// Keys a window remembers at most; beyond that, only keys whose window is over are
/// forgotten, and new clients are refused until some are (the global limit holds anyway).
const MAX_KEYS: usize = 100_000;

/// A fixed window per key, starting at the key's first request: at most `limit` requests
/// per `span`.
#[derive(Debug)]
struct Window {
    limit: u32,
    span: Duration,
    counts: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Window {
    fn new(limit: u32, span: Duration) -> Self {
        Self {
            limit,
            span,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request for `key`; Err(time until its window ends) when over the limit.
    fn admit(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let Ok(mut counts) = self.counts.lock() else {
            return Err(self.span);
        };
        if !counts.contains_key(key) && counts.len() >= MAX_KEYS {
            counts.retain(|_, (start, _)| now.duration_since(*start) < self.span);
            if counts.len() >= MAX_KEYS {
                return Err(self.span);
            }
        }
        let entry = counts.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.span {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit {
            return Err(self.span.saturating_sub(now.duration_since(entry.0)));
        }
        entry.1 += 1;
        Ok(())
    }
}

/// The sign-in limits of this process.
#[derive(Debug)]
pub struct AuthLimits {
    per_client: Window,
    global: Window,
    metrics: Arc<Metrics>,
}

impl AuthLimits {
    pub fn new(per_client_per_minute: u32, global_per_minute: u32, metrics: Arc<Metrics>) -> Self {
        let minute = Duration::from_secs(60);
        Self {
            per_client: Window::new(per_client_per_minute, minute),
            global: Window::new(global_per_minute, minute),
            metrics,
        }
    }
}

/// Middleware for the sign-in routes: 429 with `Retry-After` beyond either limit.
pub async fn limit_sign_in(
    State(limits): State<Arc<AuthLimits>>,
    request: Request,
    next: Next,
) -> Response {
    let now = Instant::now();
    let client = request
        .extensions()
        .get::<ClientAddr>()
        .map(|ClientAddr(ip)| services::client::bucket_of(*ip))
        .unwrap_or_default();
    if let Err(wait) = limits.per_client.admit(&client, now) {
        limits.metrics.auth_refused(AuthLimit::Client);
        tracing::info!(client = %client, "sign-in request refused: too many from this client");
        return too_many(wait);
    }
    if let Err(wait) = limits.global.admit("", now) {
        limits.metrics.auth_refused(AuthLimit::Global);
        tracing::warn!("sign-in request refused: too many sign-in requests in total");
        return too_many(wait);
    }
    next.run(request).await
}

fn too_many(wait: Duration) -> Response {
    let seconds = wait.as_secs().max(1);
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Too many sign-in attempts · Portcullis</title>\
         <link rel=\"stylesheet\" href=\"/pkg/portcullis.css\"></head><body><main id=\"main\">\
         <h1>Too many sign-in attempts</h1><p>The portal is receiving more sign-in requests \
         than it accepts at once. Wait a minute, then start again.</p>\
         <p><a href=\"/\">Go to the start page</a></p></main></body></html>",
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_admits_its_limit_then_refuses_until_it_ends() {
        let window = Window::new(3, Duration::from_secs(60));
        let start = Instant::now();
        for _ in 0..3 {
            assert!(window.admit("a", start).is_ok());
        }
        let wait = window
            .admit("a", start + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(window.admit("b", start).is_ok(), "another key");
        assert!(window.admit("a", start + Duration::from_secs(60)).is_ok());
    }
}
