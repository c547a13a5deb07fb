//! Security headers on every response, and the per-response CSP nonce that lets Leptos's
//! inline hydration script run while every other inline script is refused.

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use rand::RngCore;

use crate::config::Config;

/// The nonce for this response's inline scripts, placed in the request's extensions.
#[derive(Clone, Debug)]
pub struct CspNonce(pub String);

impl CspNonce {
    fn generate() -> Self {
        let mut bytes = [0u8; 18];
        rand::rng().fill_bytes(&mut bytes);
        Self(base64::engine::general_purpose::STANDARD.encode(bytes))
    }
}

/// Static parts of the policy, decided once at start-up.
#[derive(Clone, Debug)]
pub struct Policy {
    hsts: bool,
    /// `scheme://host[:port]` of PUBLIC_URL, when configured.
    public_origin: Option<String>,
    /// `cargo leptos watch` reloads the page over a websocket on this port.
    reload_port: Option<u32>,
}

impl Policy {
    pub fn new(config: &Config) -> Self {
        Self {
            hsts: config.serves_https(),
            public_origin: config
                .public_url
                .as_ref()
                .map(|u| u.origin().ascii_serialization()),
            reload_port: std::env::var("LEPTOS_WATCH")
                .ok()
                .and_then(|_| std::env::var("LEPTOS_RELOAD_PORT").ok())
                .and_then(|p| p.parse().ok()),
        }
    }
}

/// Middleware: adds the security headers a response does not set itself.
pub async fn add_headers(
    State(policy): State<Policy>,
    mut request: Request,
    next: Next,
) -> Response {
    let nonce = CspNonce::generate();
    request.extensions_mut().insert(nonce.clone());
    let carries_secrets = carries_secrets(request.uri().path());
    let mut response = next.run(request).await;

    let connect_src = match policy.reload_port {
        Some(port) => format!("'self' ws://127.0.0.1:{port} ws://localhost:{port}"),
        None => "'self'".to_string(),
    };
    let csp = format!(
        "default-src 'self'; script-src 'self' 'nonce-{}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src {connect_src}; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        nonce.0
    );

    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));

    let headers = response.headers_mut();
    // The reveal page and its calls: never stored by any cache (the browser's included),
    // never named in a Referer, never framed (the CSP's frame-ancestors and X-Frame-Options).
    if carries_secrets {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    let mut set_default = |name: HeaderName, value: &str| {
        if !headers.contains_key(&name)
            && let Ok(value) = HeaderValue::from_str(value)
        {
            headers.insert(name, value);
        }
    };
    set_default(header::CONTENT_SECURITY_POLICY, &csp);
    set_default(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set_default(header::X_FRAME_OPTIONS, "DENY");
    set_default(header::REFERRER_POLICY, "strict-origin-when-cross-origin");
    set_default(
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    );
    set_default(
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set_default(
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    if policy.hsts {
        set_default(
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=63072000; includeSubDomains",
        );
    }
    // Pages can show who is signed in and what they may do: never keep them in shared caches.
    if is_html {
        set_default(header::CACHE_CONTROL, "no-store");
    }
    response
}

/// Paths whose responses may carry a reveal token or the credential itself.
pub fn carries_secrets(path: &str) -> bool {
    path.starts_with("/reveal/")
        || [
            "/api/reveal_link",
            "/api/send_reveal_code",
            "/api/reveal_now",
            "/api/disown_reveal",
        ]
        .contains(&path)
}

/// Context every server-rendered page gets: the CSP nonce for Leptos's inline scripts.
pub fn provide_page_context() {
    use leptos::prelude::{provide_context, use_context};
    if let Some(parts) = use_context::<axum::http::request::Parts>()
        && let Some(nonce) = parts.extensions.get::<CspNonce>()
    {
        provide_context(leptos::nonce::Nonce::from_value(nonce.0.as_str()));
    }
}

/// Middleware: refuses state-changing requests (POST, PUT, PATCH, DELETE) that a browser
/// sent from another site. Browsers always send `Origin` on such requests (and
/// `Sec-Fetch-Site`); requests without either do not come from a browser page and carry
/// no ambient session to abuse. Together with SameSite cookies this is the portal's CSRF
/// defence, for server functions and plain routes alike.
pub async fn refuse_cross_origin(
    State(policy): State<Policy>,
    request: Request,
    next: Next,
) -> Response {
    use axum::http::Method;
    let changes_state = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if changes_state && is_cross_origin(&policy, request.headers()) {
        tracing::warn!(path = %super::trace::loggable_path(request.uri().path()), "refused a cross-origin request");
        return (
            axum::http::StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Refused: this request came from another site.",
        )
            .into_response();
    }
    next.run(request).await
}

fn is_cross_origin(policy: &Policy, headers: &axum::http::HeaderMap) -> bool {
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        if origin == "null" {
            return true;
        }
        if policy.public_origin.as_deref() == Some(origin) {
            return false;
        }
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let origin_host = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .unwrap_or("");
        return host.is_empty() || !origin_host.eq_ignore_ascii_case(host);
    }
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| site == "cross-site")
}

/// A server function's error answer carries its status in the [`app::api::ApiError`] it
/// sends (decided in `app/src/api/error.rs`); Leptos answers every error with 500, so the
/// status is set from the body here. This is how a call whose arguments do not decode (a
/// field missing, a body that is not a form) gets 400: the caller's mistake, named in the
/// message. The body stays as it is, so the browser side can still decode it.
pub async fn malformed_calls_are_client_errors(request: Request, next: Next) -> Response {
    if !request.uri().path().starts_with("/api/") {
        return next.run(request).await;
    }
    let response = next.run(request).await;
    if response.status() != axum::http::StatusCode::INTERNAL_SERVER_ERROR
        || !response.headers().contains_key("serverfnerror")
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if let Ok(error) = serde_json::from_slice::<app::api::ApiError>(&bytes)
        && let Ok(status) = axum::http::StatusCode::from_u16(error.status())
        && (status.is_client_error() || status.is_server_error())
    {
        parts.status = status;
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}
