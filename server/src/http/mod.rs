//! The HTTP surface: the Leptos pages and server functions, health endpoints, and the
//! middleware every response passes through.

pub mod audit;
pub mod auth;
pub mod capacity;
pub mod client;
pub mod clock;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod reviews;
pub mod security;
pub mod serve;
pub mod session_check;
pub mod trace;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::config::Config;
use crate::db::Database;

/// What request handlers share.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Database,
    pub portal: services::Portal,
    pub org: crate::org::Org,
    pub leptos_options: LeptosOptions,
    /// The portal's metrics (`/metrics`; [`services::Portal::metrics`]).
    pub metrics: Arc<metrics::Metrics>,
    /// This process's sign-in rate limits.
    pub auth_limits: Arc<limits::AuthLimits>,
}

/// The app's routes, found once per process.
///
/// `generate_route_list` renders the app to find its routes, and while it does it holds
/// Leptos's `SuppressResourceLoad`: a process-wide flag (a static in leptos_server 0.8), not
/// one of this render's. A `Resource` first polled while the flag is set awaits forever
/// instead of loading, in whichever portal of the process it belongs to: its page answers
/// 200, streams the shell, and never sends the rest of its body. Building a router while
/// another portal of the same process renders pages (every test binary does: one portal per
/// test, tests in parallel; see leptos-rs/leptos#4773) stalled `/admin`, `/verify/…` and
/// `/admin/requests/…` in CI about one run in four. The routes come from `app::App` alone,
/// so they are found once, before the first router of the process exists; no page can be
/// rendering while the flag is set. (The `portcullis` binary builds one router before it
/// serves, so it did not meet this.)
fn routes() -> Vec<leptos_axum::AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> =
        std::sync::OnceLock::new();
    ROUTES
        .get_or_init(|| leptos_axum::generate_route_list(app::App))
        .clone()
}

/// The complete router: pages, static files, health, with all middleware.
pub fn router(state: AppState) -> Router {
    use leptos_axum::LeptosRoutes;

    let routes = routes();
    let leptos_options = state.leptos_options.clone();
    // What pages and server functions get: the CSP nonce, and the portal's services.
    let page_context = {
        let portal = state.portal.clone();
        move || {
            security::provide_page_context();
            leptos::prelude::provide_context(portal.clone());
        }
    };

    let pages = Router::new()
        .leptos_routes_with_context(&state, routes, page_context.clone(), {
            let options = leptos_options.clone();
            move || app::shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(page_context, app::shell));

    let app = Router::new()
        .merge(health::router())
        .merge(metrics::router())
        .merge(auth::router(state.auth_limits.clone()))
        .merge(audit::router())
        .merge(reviews::router())
        .merge(clock::router())
        .merge(pages)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session_check::recheck,
        ))
        .with_state(state.clone());
    with_middleware(app, &state.config, state.metrics.clone())
}

/// The middleware every response passes through (the last layer is the outermost). A
/// panic becomes the 500 page inside `add_headers`, so that page carries the same security
/// headers as every other response; so do the 503s of the capacity limits.
fn with_middleware(app: Router, config: &Config, metrics: Arc<metrics::Metrics>) -> Router {
    let metrics_for_requests = metrics.clone();
    let capacity = capacity::Capacity::new(
        config.http_max_concurrent_requests,
        config.http_request_timeout,
        metrics,
    );
    app.layer(axum::middleware::from_fn(
        security::malformed_calls_are_client_errors,
    ))
    .layer(axum::middleware::from_fn_with_state(
        security::Policy::new(config),
        security::refuse_cross_origin,
    ))
    .layer(axum::middleware::from_fn_with_state(
        capacity.clone(),
        capacity::deadline,
    ))
    .layer(tower_http::catch_panic::CatchPanicLayer::custom(
        internal_error_page,
    ))
    .layer(axum::middleware::from_fn_with_state(
        capacity,
        capacity::limit_in_flight,
    ))
    .layer(axum::middleware::from_fn_with_state(
        security::Policy::new(config),
        security::add_headers,
    ))
    .layer(axum::middleware::from_fn_with_state(
        client::TrustedProxies::new(config.trusted_proxies.clone()),
        client::resolve,
    ))
    .layer(axum::middleware::from_fn_with_state(
        metrics_for_requests,
        metrics::record,
    ))
    .layer(trace::layer())
}

/// The response for a request whose handler panicked: a plain page that says what the user
/// can do, and a reference that matches the log entry. Never the panic message itself.
fn internal_error_page(panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    let reference = uuid::Uuid::new_v4().simple().to_string();
    let reference = &reference[..12];
    tracing::error!(%reference, %detail, "request handler panicked");
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Something went wrong · Portcullis</title>\
         <link rel=\"stylesheet\" href=\"/pkg/portcullis.css\"></head><body><main id=\"main\">\
         <h1>Something went wrong</h1><p>The portal hit an internal error. Nothing you sent \
         was lost; please try again in a moment.</p><p class=\"muted\">Reference: \
         <code>{reference}</code></p><p><a href=\"/\">Go to the start page</a></p>\
         </main></body></html>"
    );
    (
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use tower::ServiceExt;

    /// A handler that panics gets the plain 500 page, with the same security headers as
    /// every other response (the CSP, framing and caching rules).
    #[tokio::test]
    async fn the_panic_page_carries_the_security_headers() {
        let config = crate::config::Config::load(|_| None).unwrap();
        let app = axum::Router::new().route(
            "/boom",
            axum::routing::get(|| async {
                panic!("the handler failed");
                #[allow(unreachable_code)]
                ""
            }),
        );
        let response = super::with_middleware(app, &config, Default::default())
            .oneshot(
                axum::http::Request::get("/boom")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), 500);
        let headers = response.headers();
        for name in [
            "content-security-policy",
            "x-frame-options",
            "x-content-type-options",
            "referrer-policy",
            "cross-origin-opener-policy",
        ] {
            assert!(
                headers.contains_key(name),
                "{name} on the panic page: {headers:?}"
            );
        }
        assert_eq!(headers["cache-control"], "no-store");
    }

    #[tokio::test]
    async fn a_panic_becomes_a_plain_500_page_without_the_panic_message() {
        let response = super::internal_error_page(Box::new(String::from("db password is xyzzy")));
        assert_eq!(response.status(), 500);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("<h1>Something went wrong</h1>"));
        assert!(body.contains("Reference:"));
        assert!(!body.contains("xyzzy"));
    }
}
