//! How much the portal takes on at once, and for how long: beyond
//! `HTTP_MAX_CONCURRENT_REQUESTS` in flight a request is turned away at once with 503 and
//! `Retry-After` (queued, it would only wait behind the others and time out), and a request
//! whose answer has not begun after `HTTP_REQUEST_TIMEOUT_SECONDS` gets a 503 page rather
//! than holding the browser (and a worker) for ever. A streamed answer that has begun is
//! not cut off (exports stream for as long as they need), but counts as in flight until
//! its last byte. The health endpoints are exempt: an orchestrator must not restart a
//! portal for being busy.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use services::metrics::{Metrics, Refused};

#[derive(Clone, Debug)]
pub struct Capacity {
    in_flight: Arc<Semaphore>,
    timeout: Duration,
    metrics: Arc<Metrics>,
}

impl Capacity {
    pub fn new(max_in_flight: usize, timeout: Duration, metrics: Arc<Metrics>) -> Self {
        Self {
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            timeout,
            metrics,
        }
    }
}

fn exempt(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
}

/// Middleware: at most so many requests in flight; the rest get 503 at once.
pub async fn limit_in_flight(
    State(capacity): State<Capacity>,
    request: Request,
    next: Next,
) -> Response {
    if exempt(request.uri().path()) {
        return next.run(request).await;
    }
    let Ok(permit) = capacity.in_flight.clone().try_acquire_owned() else {
        capacity.metrics.http_refused(Refused::Busy);
        tracing::warn!("turned a request away: HTTP_MAX_CONCURRENT_REQUESTS are in flight");
        return unavailable(
            "The portal is busy",
            "It is answering as many requests as it takes at once. Try again in a moment.",
            Some(1),
        );
    };
    let (parts, body) = next.run(request).await.into_parts();
    Response::from_parts(
        parts,
        Body::new(Permitted {
            body,
            _permit: permit,
        }),
    )
}

/// Middleware: a 503 page when the answer has not begun in time.
pub async fn deadline(State(capacity): State<Capacity>, request: Request, next: Next) -> Response {
    if exempt(request.uri().path()) {
        return next.run(request).await;
    }
    let path = super::trace::loggable_path(request.uri().path());
    match tokio::time::timeout(capacity.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            capacity.metrics.http_refused(Refused::Timeout);
            tracing::warn!(%path, seconds = capacity.timeout.as_secs(), "a request took longer than HTTP_REQUEST_TIMEOUT_SECONDS");
            unavailable(
                "That took too long",
                "The portal took too long to answer this request (it may be waiting for Salesforce). Nothing was lost; try again in a moment.",
                None,
            )
        }
    }
}

fn unavailable(title: &str, message: &str, retry_after: Option<u64>) -> Response {
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Portcullis</title>\
         <link rel=\"stylesheet\" href=\"/pkg/portcullis.css\"></head><body><main id=\"main\">\
         <h1>{title}</h1><p>{message}</p><p><a href=\"/\">Go to the start page</a></p>\
         </main></body></html>"
    );
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    if let Some(seconds) = retry_after
        && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// A response body that holds its request's place until the last byte is sent.
struct Permitted {
    body: Body,
    _permit: OwnedSemaphorePermit,
}

impl http_body::Body for Permitted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
