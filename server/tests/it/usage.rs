//! API usage end to end, on SQLite and PostgreSQL, against the running portal, its
//! embedded sandbox org, a real SMTP server (aiosmtpd) and a local webhook receiver: a
//! contractor with a budget of 100 calls a day and the freeze action makes 120 calls; one
//! collector run shows it over budget, sends one email and one signed webhook (and another
//! run sends neither again), and freezes the integration user, so the contractor's next
//! token request is refused; an approver lifts the suspension and the credential works.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::portal::{self, browser, call, link_path, pairs, sign_in, six_digits};
use common::smtp::{self, SmtpSink};
use common::{Db, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;

const SECRET: &str = "a-webhook-signing-secret-for-tests";

/// A local HTTP server that records every alert posted to it.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>>,
    _server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Self {
        let received: Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>> = Arc::default();
        let store = received.clone();
        let app = axum::Router::new().route(
            "/hooks/portcullis",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let store = store.clone();
                async move {
                    store.lock().unwrap().push((headers, body));
                    StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/portcullis", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            received,
            _server: server,
        }
    }

    fn deliveries(&self) -> Vec<(axum::http::HeaderMap, String)> {
        self.received.lock().unwrap().clone()
    }
}

/// Recomputes the signature as a receiver would: HMAC-SHA256 over `<t>.<body>`.
fn signature_is_valid(header: &str, body: &str) -> bool {
    let Some((t, v1)) = header
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
    else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    let Ok(tag) = hex::decode(v1) else {
        return false;
    };
    ring::hmac::verify(&key, format!("{t}.{body}").as_bytes(), &tag).is_ok()
}

/// The six-digit code in the mail to `email` about `subject`, as it reached the SMTP sink.
async fn code_mailed(sink: &SmtpSink, email: &str, subject: &str) -> String {
    let mail = sink
        .wait_for(|m| m.contains(email) && m.contains(subject))
        .await
        .unwrap_or_else(|| panic!("a mail about '{subject}'"));
    six_digits(smtp::body(&mail)).expect("a six-digit code in the body")
}

/// `client_credentials` with the contractor's key and secret: the access token and the
/// instance URL, or the refusal's status and body.
async fn token(credential: &Value) -> Result<(String, String), (StatusCode, String)> {
    let (status, body) = portal::client_credentials(credential).await;
    if status != StatusCode::OK {
        return Err((status, body));
    }
    let json: Value = serde_json::from_str(&body).unwrap();
    Ok((
        json["access_token"].as_str().unwrap().to_string(),
        json["instance_url"].as_str().unwrap().to_string(),
    ))
}

async fn grant_of(app: &TestApp, request_id: &str) -> (String, String) {
    let row = sqlx::query("SELECT id, state FROM grants WHERE request_id = $1")
        .bind(request_id)
        .fetch_one(app.db.pool())
        .await
        .expect("the grant");
    (row.get("id"), row.get("state"))
}

async fn over_budget_end_to_end(kind: Db) {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let receiver = Receiver::start().await;
    let hook_url = receiver.url.clone();
    let smtp_url = format!("smtp://127.0.0.1:{}", sink.port);
    let Some(app) = TestApp::spawn_with(kind, |config| {
        config.roles = portal::one_role_each();
        config.provisioning_workers = 2;
        config.smtp_url = Some(smtp_url.clone().into());
        config.alert_webhook = Some(portcullis::config::AlertWebhook {
            url: url::Url::parse(&hook_url).unwrap(),
            secret: secrecy::SecretString::from(SECRET),
        });
    })
    .await
    else {
        return;
    };
    let approver = browser();
    sign_in(&app, &approver, portal::BLAKE).await;

    // The contractor asks, confirms with the code mailed to them, and is approved with a
    // budget of 100 calls a day that freezes the integration user when used up.
    let contractor = browser();
    let email = format!("{}@overrun.example", uuid::Uuid::new_v4().simple());
    let form = portal::request_form("Overrun Ltd", &email, &uuid::Uuid::new_v4().to_string());
    let (status, body) = call(&app, &contractor, "submit_request", &pairs(&form)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let request_id = serde_json::from_str::<Value>(&body).unwrap()["Submitted"]["request_id"]
        .as_str()
        .unwrap()
        .to_string();
    let code = code_mailed(&sink, &email, "Confirm your email").await;
    let (status, body) = call(
        &app,
        &contractor,
        "verify_code",
        &[("request_id", &request_id), ("code", &code)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let received = sink
        .wait_for(|m| m.contains(&email) && m.contains("was received"))
        .await
        .expect("the 'received' mail");
    let status_path = link_path(&received, "/status/").expect("a status link");

    let mut decision = portal::approval_form(&request_id, "");
    for (key, value) in decision.iter_mut() {
        match key.as_str() {
            "calls_per_day" => *value = "100".into(),
            "calls_per_7_days" => *value = "700".into(),
            "hard_action" => *value = "freeze".into(),
            _ => {}
        }
    }
    let (status, body) = call(&app, &approver, "decide", &pairs(&decision)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let grant_id = loop {
        let (id, state) = grant_of(&app, &request_id).await;
        if state == "ready" {
            break id;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the grant is {state}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // The contractor collects the credential.
    let mail = sink
        .wait_for(|m| m.contains(&email) && m.contains("Your API credential"))
        .await
        .expect("the reveal link");
    let reveal = link_path(&mail, "/reveal/").unwrap();
    let token_arg = reveal.trim_start_matches("/reveal/").to_string();
    let (status, body) = call(
        &app,
        &contractor,
        "send_reveal_code",
        &[("token", &token_arg)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let code = code_mailed(&sink, &email, "Your code to reveal").await;
    let (status, body) = call(
        &app,
        &contractor,
        "reveal_now",
        &[("token", &token_arg), ("code", &code)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let credential: Value = serde_json::from_str(&body).unwrap();

    // 120 calls: 119 queries and one composite request of three (which counts as one).
    let (access, instance) = token(&credential).await.expect("the credential works");
    let http = common::sandbox_http();
    for _ in 0..119 {
        let response = http
            .get(format!("{instance}/services/data/v66.0/query"))
            .query(&[("q", "SELECT Id, Subject FROM Case LIMIT 1")])
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let sub = |r: &str| json!({"method": "GET", "url": "/services/data/v66.0/query?q=SELECT+Id+FROM+Case+LIMIT+1", "referenceId": r});
    let response = http
        .post(format!("{instance}/services/data/v66.0/composite"))
        .bearer_auth(&access)
        .json(&json!({"allOrNone": false, "compositeRequest": [sub("a"), sub("b"), sub("c")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // One collector run: over budget, suspended and frozen.
    let (status, body) = call(&app, &approver, "collect_usage_now", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("1 budget alert sent"), "{body}");
    let (status, body) = call(&app, &approver, "usage_dashboard", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let dashboard: Value = serde_json::from_str(&body).unwrap();
    let overrun = dashboard["contractors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["company"] == "Overrun Ltd")
        .unwrap_or_else(|| panic!("Overrun Ltd on the dashboard: {body}"));
    assert_eq!(overrun["day_status"], "Over", "{overrun}");
    let today = overrun["today"].as_u64().unwrap();
    // The 120 calls, and the least-privilege proof's few made with the same credential.
    assert!((120..=130).contains(&today), "counted today: {today}");
    assert_eq!(overrun["suspended"], true);
    assert_eq!(overrun["frozen"], true);
    let page = approver
        .get(app.at("/admin/usage"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Over budget"), "the dashboard marks it");
    assert!(page.contains("<svg"), "with a chart");
    let own = contractor
        .get(app.at(&format!("{status_path}/usage")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        own.contains("Over budget"),
        "the contractor's page marks it"
    );
    assert!(
        own.contains("your calls are refused"),
        "and says it is throttled"
    );

    // One email to the approver and one webhook, signed.
    let subject = "Overrun Ltd has used up its API budget";
    let alert = sink
        .wait_for(|m| m.contains(subject))
        .await
        .expect("the alert reached the SMTP server");
    assert!(
        alert.contains("To: approver@acme-sandbox.example"),
        "{alert}"
    );
    assert!(alert.contains("frozen its integration user"), "{alert}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while receiver.deliveries().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no webhook arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (headers, body) = receiver.deliveries()[0].clone();
    let signature = headers["x-portcullis-signature"].to_str().unwrap();
    assert!(signature_is_valid(signature, &body), "{signature}");
    assert!(!signature_is_valid(
        signature,
        &body.replace("Overrun", "Overran")
    ));
    assert_eq!(headers["x-portcullis-event"], "usage.limit_exceeded");
    let payload: Value = serde_json::from_str(&body).unwrap();
    assert!(
        payload["text"].as_str().unwrap().contains(subject),
        "{payload}"
    );
    assert_eq!(payload["grant_id"], grant_id.as_str());
    assert_eq!(payload["action"], "freeze");
    assert!(!body.contains(credential["consumer_secret"].as_str().unwrap()));

    // Frozen, and the token issued before the freeze is revoked (freezing alone may not
    // end it: issue 14, item 10).
    let response = http
        .get(format!("{instance}/services/data/v66.0/limits"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "the token issued before the freeze still works"
    );

    // Frozen: the org refuses the contractor's next token.
    let (status, refusal) = token(&credential)
        .await
        .expect_err("a frozen user gets no token");
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refusal}");
    assert!(refusal.contains("invalid_grant"), "{refusal}");

    // Another run alerts nobody again.
    let (status, body) = call(&app, &approver, "collect_usage_now", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body.contains("alert"), "{body}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sink.decoded(|m| m.contains(subject)).len(), 1, "one email");
    assert_eq!(receiver.deliveries().len(), 1, "one webhook");

    // An approver lifts the suspension (a reason is needed), and the credential works.
    let (status, body) = call(
        &app,
        &approver,
        "lift_suspension",
        &[("id", &request_id), ("reason", " ")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = call(
        &app,
        &approver,
        "lift_suspension",
        &[
            ("id", &request_id),
            ("reason", "The backfill is a one-off; raising the budget."),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("Lifted"), "{body}");
    let (access, instance) = token(&credential)
        .await
        .expect("works again after the lift");
    let response = http
        .get(format!("{instance}/services/data/v66.0/query"))
        .query(&[("q", "SELECT Id FROM Case LIMIT 1")])
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(grant_of(&app, &request_id).await.1, "active");
    // The same day's budget does not freeze it again.
    let (status, body) = call(&app, &approver, "collect_usage_now", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(grant_of(&app, &request_id).await.1, "active");

    // Each step is in the audit log, in order.
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE target_id = $1 AND (action LIKE 'usage.%' OR action LIKE 'grant.%') ORDER BY seq",
    )
    .bind(&grant_id)
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    assert_eq!(
        actions,
        [
            "grant.created",
            "usage.limit_warning",
            "usage.limit_exceeded",
            "grant.suspended",
            "grant.frozen",
            "grant.unfrozen"
        ],
        "{actions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contractor_over_budget_is_alerted_once_frozen_and_lifted_sqlite() {
    over_budget_end_to_end(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contractor_over_budget_is_alerted_once_frozen_and_lifted_postgres() {
    over_budget_end_to_end(Db::Postgres).await;
}
