//! The server's own limits: a client that never finishes its headers is cut off, a request
//! the portal cannot answer in time gets a clear 503 instead of hanging, and beyond a set
//! number of requests in flight new ones are turned away at once rather than queued.

use crate::common;

use std::time::Duration;

use common::portal::{self, SignIn, browser};
use common::{Db, TestApp};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Makes the sandbox org's token endpoint answer only after `ms`.
async fn slow_token_endpoint(app: &TestApp, ms: u64) {
    let base = app.sandbox_url.clone().unwrap();
    let response = common::sandbox_http()
        .put(format!("{base}/__sandbox/faults"))
        .json(&serde_json::json!({
            "rules": [{ "path": "/services/oauth2/token", "delayMs": ms }]
        }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
}

/// A callback URL whose code exchange (at the slowed token endpoint) keeps the portal busy.
async fn pending_callback(app: &TestApp, client: &reqwest::Client) -> String {
    let flow = SignIn::start(app, client).await;
    flow.log_in(client, portal::BLAKE, &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let app = TestApp::spawn_env(Db::Sqlite, &[("HTTP_HEADER_TIMEOUT_SECONDS", "1")], |_| {})
        .await
        .unwrap();
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .unwrap();
    let mut buffer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut buffer)).await;
    assert!(
        read.is_ok(),
        "the connection was still open 15 s after the headers began"
    );
    let text = String::from_utf8_lossy(&buffer);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "answered: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_takes_too_long_gets_a_503() {
    let app = TestApp::spawn_env(Db::Sqlite, &[("HTTP_REQUEST_TIMEOUT_SECONDS", "1")], |_| {})
        .await
        .unwrap();
    let client = browser();
    let callback = pending_callback(&app, &client).await;
    slow_token_endpoint(&app, 6000).await;
    let response = client.get(&callback).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        response
            .headers()
            .contains_key(reqwest::header::CONTENT_SECURITY_POLICY),
        "the answer carries the security headers"
    );
    let body = response.text().await.unwrap();
    assert!(body.contains("took too long"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_concurrency_limit_requests_are_turned_away() {
    let app = TestApp::spawn_env(
        Db::Sqlite,
        &[
            ("HTTP_MAX_CONCURRENT_REQUESTS", "2"),
            ("HTTP_REQUEST_TIMEOUT_SECONDS", "30"),
        ],
        |_| {},
    )
    .await
    .unwrap();
    let (a, b) = (browser(), browser());
    let (first, second) = (
        pending_callback(&app, &a).await,
        pending_callback(&app, &b).await,
    );
    slow_token_endpoint(&app, 4000).await;
    let busy = tokio::spawn(async move {
        let (x, y) = tokio::join!(a.get(&first).send(), b.get(&second).send());
        (x.unwrap().status(), y.unwrap().status())
    });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let response = browser().get(app.at("/")).send().await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "a third request while two are in flight"
    );
    assert!(
        response
            .headers()
            .contains_key(reqwest::header::RETRY_AFTER)
    );
    // Liveness is still answered: an orchestrator must not restart a busy portal.
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    let (x, y) = busy.await.unwrap();
    assert!(x.is_redirection() && y.is_redirection(), "{x} {y}");
    assert_eq!(
        browser().get(app.at("/")).send().await.unwrap().status(),
        StatusCode::OK,
        "served again once they finished"
    );
}
