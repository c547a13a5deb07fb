//! Who the client is, behind a reverse proxy: `X-Forwarded-For` is believed only from
//! `TRUSTED_PROXIES` (the right-most address that is not a trusted proxy is the client),
//! and IPv6 clients are counted per /64. Rate limits and the audit log use that address.

use crate::common;

use common::portal::{browser, request_form};
use common::{Db, TestApp};
use reqwest::StatusCode;

/// Submits a request as the browser does, through a proxy that says the client is `xff`.
async fn submit_via(app: &TestApp, xff: Option<&str>) -> (StatusCode, String) {
    let email = format!("{}@kinetic.example", uuid::Uuid::new_v4().simple());
    let key = uuid::Uuid::new_v4().to_string();
    let form = request_form("Kinetic Ltd", &email, &key);
    let mut request = browser()
        .post(app.at("/api/submit_request"))
        .header(reqwest::header::ORIGIN, app.url.as_str())
        .form(&form);
    if let Some(xff) = xff {
        request = request.header("x-forwarded-for", xff);
    }
    let response = request.send().await.expect("POST /api/submit_request");
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

async fn last_submitter_ip(app: &TestApp) -> String {
    sqlx::query_scalar(
        "SELECT actor_ip FROM audit_log WHERE action = 'request.submitted' ORDER BY seq DESC LIMIT 1",
    )
    .fetch_one(app.db.pool())
    .await
    .expect("an audited submission")
}

/// The portal allows 10 submissions an hour per client address.
const PER_HOUR: usize = 10;

async fn behind_a_trusted_proxy(app: TestApp) {
    for _ in 0..PER_HOUR {
        let (status, body) = submit_via(&app, Some("203.0.113.5")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(last_submitter_ip(&app).await, "203.0.113.5");
    let (status, _) = submit_via(&app, Some("203.0.113.5")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "one client's limit");
    // Another contractor behind the same proxy has a budget of its own.
    let (status, body) = submit_via(&app, Some("203.0.113.6")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "another client behind the proxy: {body}"
    );
    assert_eq!(last_submitter_ip(&app).await, "203.0.113.6");
    // A client cannot escape its limit by sending its own X-Forwarded-For: the proxy
    // appends the address it saw, and that right-most untrusted address is the client.
    let (status, _) = submit_via(&app, Some("198.51.100.77, 203.0.113.5")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "a forged hop");
    // Hops that are trusted proxies themselves are skipped.
    let (status, body) = submit_via(&app, Some("203.0.113.7, 127.0.0.1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(last_submitter_ip(&app).await, "203.0.113.7");
    // IPv6 clients are counted per /64: one household, one budget.
    for i in 0..PER_HOUR {
        let (status, body) = submit_via(&app, Some(&format!("2001:db8:1:2::{:x}", i + 1))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, _) = submit_via(&app, Some("2001:db8:1:2:ffff:ffff:ffff:fffe")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "the same /64");
    let (status, body) = submit_via(&app, Some("2001:db8:1:3::1")).await;
    assert_eq!(status, StatusCode::OK, "another /64: {body}");
    // The audit log keeps the full address.
    assert_eq!(last_submitter_ip(&app).await, "2001:db8:1:3::1");
    // Garbage in the header is not an address: the proxy itself is the client then.
    let (status, body) = submit_via(&app, Some("not-an-address")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(last_submitter_ip(&app).await, "127.0.0.1");
}

mod trusted_proxy {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        let app = TestApp::spawn_env(Db::Sqlite, &[("TRUSTED_PROXIES", "127.0.0.1/32")], |_| {})
            .await
            .unwrap();
        behind_a_trusted_proxy(app).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(app) =
            TestApp::spawn_env(Db::Postgres, &[("TRUSTED_PROXIES", "127.0.0.1/32")], |_| {}).await
        {
            behind_a_trusted_proxy(app).await;
        }
    }
}

/// Without TRUSTED_PROXIES the header is not believed: anyone could send it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_for_from_anyone_else_is_ignored() {
    let app = TestApp::spawn(Db::Sqlite).await.unwrap();
    let (status, body) = submit_via(&app, Some("203.0.113.9")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(last_submitter_ip(&app).await, "127.0.0.1");
    for _ in 1..PER_HOUR {
        submit_via(&app, Some(&format!("203.0.113.{}", rand_octet()))).await;
    }
    let (status, _) = submit_via(&app, Some("192.0.2.200")).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "a made-up X-Forwarded-For escaped the limit"
    );
}

fn rand_octet() -> u8 {
    (uuid::Uuid::new_v4().as_u128() % 250) as u8
}

/// A proxy list that cannot be read stops the portal with a message naming the setting.
#[tokio::test]
async fn a_bad_trusted_proxy_list_names_the_setting() {
    for bad in ["10.0.0.0/33", "proxy.internal", "10.0.0.1/8, nope"] {
        let err = portcullis::Config::load(|k| (k == "TRUSTED_PROXIES").then(|| bad.to_string()))
            .expect_err(bad);
        assert_eq!(err.setting, "TRUSTED_PROXIES", "{bad}: {err}");
    }
}
