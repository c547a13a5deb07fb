//! The sandbox org's control API (`/__sandbox`), as tests drive it: fault rules, the call
//! log, settings. `org_url` is the org's base URL; `http` a client that trusts it.

use reqwest::{Client, Method};
use serde_json::{Value, json};

/// Sends `body` to the control API at `path` (say `/__sandbox/faults`); panics, with the
/// org's answer, unless it succeeds.
pub async fn control(http: &Client, org_url: &str, method: Method, path: &str, body: Value) {
    let response = http
        .request(method, format!("{}{path}", org_url.trim_end_matches('/')))
        .json(&body)
        .send()
        .await
        .expect("the sandbox org's control API");
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.text().await.unwrap_or_default()
    );
}

/// Replaces the org's fault rules with `rules` (a JSON array of rules).
pub async fn set_faults(http: &Client, org_url: &str, rules: Value) {
    control(
        http,
        org_url,
        Method::PUT,
        "/__sandbox/faults",
        json!({ "rules": rules }),
    )
    .await;
}

/// Removes every fault rule.
pub async fn clear_faults(http: &Client, org_url: &str) {
    let response = http
        .delete(format!(
            "{}/__sandbox/faults",
            org_url.trim_end_matches('/')
        ))
        .send()
        .await
        .expect("clear the sandbox org's faults");
    assert!(
        response.status().is_success(),
        "{:?}",
        response.text().await
    );
}

/// The org's call log: every call it answered, oldest first.
pub async fn call_log(http: &Client, org_url: &str) -> Vec<Value> {
    let log: Value = http
        .get(format!("{}/__sandbox/calls", org_url.trim_end_matches('/')))
        .send()
        .await
        .expect("call log")
        .json()
        .await
        .expect("call log JSON");
    log["calls"].as_array().cloned().unwrap_or_default()
}

/// Changes the org's settings (`PATCH /__sandbox/settings`).
pub async fn org_settings(http: &Client, org_url: &str, settings: Value) {
    control(
        http,
        org_url,
        Method::PATCH,
        "/__sandbox/settings",
        settings,
    )
    .await;
}

/// Moves the org's clock to the machine's plus `offset` (`{"clockOffsetSeconds": N}`):
/// what the org decides by time (tokens, `ExpirationDate`, app activation, usage) reads it.
/// Tests move it with the portal's `TestClock` so both agree.
pub async fn set_clock_offset(http: &Client, org_url: &str, offset: std::time::Duration) {
    set_clock_offset_seconds(http, org_url, offset.as_secs() as i64).await;
}

/// [`set_clock_offset`] in seconds, negative for behind.
pub async fn set_clock_offset_seconds(http: &Client, org_url: &str, seconds: i64) {
    org_settings(http, org_url, json!({ "clockOffsetSeconds": seconds })).await;
}
