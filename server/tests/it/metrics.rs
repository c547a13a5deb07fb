//! `/metrics` during an onboarding: the portal is scraped through HTTP (with the bearer
//! token it was started with) before anything happens, after a contractor submits and
//! confirms a request, after the approval, and after the provisioning engine has made the
//! grant ready; the provisioning-step, grant-state, queue, outbox, audit and HTTP series
//! must move exactly as the onboarding did. Without the token (or with a wrong one) the
//! scrape is refused. On SQLite and PostgreSQL.

use crate::common;

use std::collections::BTreeMap;

use common::portal::{self, browser, call, pairs, sign_in, submit};
use common::{Db, TestApp};
use reqwest::StatusCode;
use services::provisioning::{Ran, Step};

const TOKEN: &str = "metrics-test-token-0123456789";

/// One scrape: every sample, its name and labels parsed.
struct Scrape {
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Scrape {
    fn parse(text: &str) -> Self {
        let mut samples = Vec::new();
        for line in text.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("a number: {line}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').expect("labels end with }");
                    let mut labels = BTreeMap::new();
                    // Label values here never hold `",` (route templates, states, actions).
                    for pair in body.split("\",").filter(|p| !p.is_empty()) {
                        let (key, value) = pair.split_once("=\"").expect("label=\"value\"");
                        labels.insert(key.to_string(), value.trim_end_matches('"').to_string());
                    }
                    (name.to_string(), labels)
                }
                None => (series.to_string(), BTreeMap::new()),
            };
            samples.push((name, labels, value));
        }
        assert!(!samples.is_empty(), "no samples in:\n{text}");
        Self { samples }
    }

    /// The sum of the samples of `name` whose labels include `labels` (0 when none).
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| v)
            .sum()
    }

    fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|(n, _, _)| n == name)
    }
}

async fn scrape(app: &TestApp) -> Scrape {
    let response = browser()
        .get(app.at("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[reqwest::header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    Scrape::parse(&response.text().await.expect("the metrics"))
}

/// Mail kept in the sandbox outbox, as the database holds it.
async fn kept_mail(app: &TestApp) -> f64 {
    let count: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM mail_outbox WHERE delivery = 'outbox'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    count as f64
}

async fn onboarding_moves_the_series(kind: Db) {
    let Some(app) = TestApp::spawn_env(kind, &[("METRICS_TOKEN", TOKEN)], |config| {
        config.roles = portal::one_role_each();
        // The test runs the engine itself, so the queue can be seen before it moves.
        config.provisioning_workers = 0;
    })
    .await
    else {
        return;
    };

    // Refused without the token, with another one, or with another scheme; the refusals
    // are counted under the route like any request.
    for authorization in [
        None,
        Some("Bearer not-the-token-0123456789"),
        Some("Basic eDp5"),
    ] {
        let mut request = browser().get(app.at("/metrics"));
        if let Some(value) = authorization {
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        let response = request.send().await.expect("GET /metrics");
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{authorization:?}"
        );
        let body = response.text().await.unwrap();
        assert!(
            !body.contains(TOKEN) && !body.contains("portcullis_"),
            "{body}"
        );
    }

    let start = scrape(&app).await;
    let steps = Step::ALL.len() as f64;
    assert_eq!(start.sum("portcullis_grants", &[]), 0.0);
    assert_eq!(
        start.sum("portcullis_grants", &[("state", "ready")]),
        0.0,
        "every state is listed, at zero"
    );
    assert!(start.has("portcullis_grants"));
    assert_eq!(start.sum("portcullis_provisioning_steps_total", &[]), 0.0);
    assert_eq!(
        start.sum(
            "portcullis_http_requests_total",
            &[("route", "/metrics"), ("status", "401")]
        ),
        3.0
    );

    // Submit and confirm: two server functions, two mails kept in the sandbox outbox.
    let contractor = submit(&app, "Metered Ltd", true).await;
    let submitted = scrape(&app).await;
    for function in ["/api/submit_request", "/api/verify_code"] {
        assert_eq!(
            submitted.sum(
                "portcullis_http_requests_total",
                &[("method", "POST"), ("route", function), ("status", "200")]
            ) - start.sum(
                "portcullis_http_requests_total",
                &[("method", "POST"), ("route", function), ("status", "200")]
            ),
            1.0,
            "{function}"
        );
        assert_eq!(
            submitted.sum(
                "portcullis_http_request_duration_seconds_count",
                &[("route", function)]
            ),
            1.0,
            "{function}"
        );
    }
    // The raw path never becomes a label: no request id or token anywhere.
    assert!(
        !submitted
            .samples
            .iter()
            .any(|(_, labels, _)| labels.values().any(|v| v.contains(&contractor.request_id))),
        "a request id in a label"
    );
    let outbox = |s: &Scrape| {
        s.sum(
            "portcullis_outbox_messages",
            &[("outbox", "mail"), ("delivery", "outbox")],
        )
    };
    // The confirmation and the "received" mail at least (and whatever else the portal
    // mailed meanwhile): exactly what the table holds.
    assert!(outbox(&submitted) - outbox(&start) >= 2.0);
    assert_eq!(outbox(&submitted), kept_mail(&app).await);
    assert!(
        submitted.sum("portcullis_audit_log_entries", &[])
            > start.sum("portcullis_audit_log_entries", &[])
    );
    assert!(
        submitted.sum(
            "portcullis_audit_entries_written_total",
            &[("action", "request.submitted")]
        ) >= 1.0
    );

    // Approve: the grant waits for a worker with all its steps queued.
    let approver = browser();
    sign_in(&app, &approver, portal::BLAKE).await;
    let form = portal::approval_form(&contractor.request_id, "");
    let (status, body) = call(&app, &approver, "decide", &pairs(&form)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let approved = scrape(&app).await;
    assert_eq!(
        approved.sum("portcullis_grants", &[("state", "approved")]),
        1.0
    );
    assert_eq!(
        approved.sum("portcullis_grants", &[("state", "ready")]),
        0.0
    );
    assert_eq!(
        approved.sum(
            "portcullis_provisioning_queue_steps",
            &[("state", "pending")]
        ),
        steps
    );
    assert!(
        approved.sum(
            "portcullis_provisioning_oldest_waiting_step_age_seconds",
            &[]
        ) >= 0.0
    );
    assert_eq!(
        approved.sum(
            "portcullis_http_requests_total",
            &[("route", "/api/decide"), ("status", "200")]
        ),
        1.0
    );

    // The engine runs every step forward: the grant is ready, the queue empty, and each
    // step counted once as succeeded, with one duration observed.
    let ran = app
        .portal
        .provisioning_engine()
        .run_until_idle()
        .await
        .expect("the engine runs");
    assert!(
        ran.iter().all(|r| matches!(r, Ran::Succeeded { .. })),
        "{ran:?}"
    );
    let ready = scrape(&app).await;
    assert_eq!(
        ready.sum("portcullis_grants", &[("state", "approved")]),
        0.0
    );
    assert_eq!(ready.sum("portcullis_grants", &[("state", "ready")]), 1.0);
    assert_eq!(ready.sum("portcullis_provisioning_queue_steps", &[]), 0.0);
    assert_eq!(
        ready.sum(
            "portcullis_provisioning_oldest_waiting_step_age_seconds",
            &[]
        ),
        0.0
    );
    for step in Step::ALL {
        let labels = [
            ("step", step.as_str()),
            ("direction", "forward"),
            ("outcome", "succeeded"),
        ];
        assert_eq!(
            ready.sum("portcullis_provisioning_steps_total", &labels),
            1.0,
            "{step:?}"
        );
        assert_eq!(
            ready.sum(
                "portcullis_provisioning_step_duration_seconds_count",
                &[("step", step.as_str()), ("direction", "forward")]
            ),
            1.0,
            "{step:?}"
        );
        assert!(
            ready.sum(
                "portcullis_provisioning_step_duration_seconds_sum",
                &[("step", step.as_str())]
            ) > 0.0
        );
    }
    assert_eq!(
        ready.sum("portcullis_provisioning_steps_total", &[]),
        steps,
        "nothing failed or was retried"
    );
    // The reveal link's mail joined the outbox.
    assert!(outbox(&ready) > outbox(&approved), "the reveal link's mail");
    assert_eq!(outbox(&ready), kept_mail(&app).await);
    assert!(
        ready.sum("portcullis_audit_log_entries", &[])
            > approved.sum("portcullis_audit_log_entries", &[])
    );
    // No usage was collected yet: the data's age and the org's daily calls are unknown.
    assert_eq!(
        ready.sum("portcullis_usage_newest_data_age_seconds", &[]),
        -1.0
    );
    assert_eq!(
        ready.sum("portcullis_org_daily_api_requests_remaining", &[]),
        -1.0
    );

    // The scrapes before this one are counted under /metrics with 200 (a request is
    // counted once it is answered).
    assert_eq!(
        ready.sum(
            "portcullis_http_requests_total",
            &[("route", "/metrics"), ("status", "200")]
        ),
        3.0
    );
    app.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_an_onboarding_sqlite() {
    onboarding_moves_the_series(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_an_onboarding_postgres() {
    onboarding_moves_the_series(Db::Postgres).await;
}

/// A usage collector run moves the collector's series and gives the org's daily API calls
/// and the data's age (the sandbox org answers `/limits`).
async fn collection_moves_the_usage_series(kind: Db) {
    let Some(app) = TestApp::spawn_env(kind, &[("METRICS_TOKEN", TOKEN)], |_| {}).await else {
        return;
    };
    let before = scrape(&app).await;
    assert_eq!(
        before.sum("portcullis_usage_collector_runs_total", &[]),
        0.0
    );
    app.portal
        .usage_collector()
        .run_once()
        .await
        .expect("the collector runs");
    let after = scrape(&app).await;
    assert_eq!(
        after.sum(
            "portcullis_usage_collector_runs_total",
            &[("outcome", "ok")]
        ),
        1.0
    );
    assert!(after.sum("portcullis_org_daily_api_requests_max", &[]) > 0.0);
    assert!(after.sum("portcullis_org_daily_api_requests_remaining", &[]) >= 0.0);
    assert!(after.sum("portcullis_usage_collector_last_success_age_seconds", &[]) >= 0.0);
    app.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_a_collector_run_sqlite() {
    collection_moves_the_usage_series(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_a_collector_run_postgres() {
    collection_moves_the_usage_series(Db::Postgres).await;
}
