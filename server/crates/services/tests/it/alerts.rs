//! Budget alerts as the webhook receiver gets them, on SQLite and PostgreSQL: what the
//! contractor typed (the company name) reaches a Slack-compatible `text` field escaped, so it
//! cannot mention channels or make links; and the webhook outbox takes up deliveries a
//! crashed sender left claimed, oldest-due first.

use crate::common;

use std::sync::{Arc, Mutex};

use common::*;
use serde_json::Value;
use services::decisions::{ApprovalInput, DecisionOutcome};
use services::usage::webhook::Webhook;
use shared::budget::Budget;

const SECRET: &str = "a-webhook-signing-secret-for-tests";
const USER_ID: &str = "005KIM000000001";

/// An approved grant for `company` with 10 calls a day whose integration user exists (as
/// provisioning records it), active, and 12 counted calls this hour: over its budget.
async fn over_budget_grant(t: &TestPortal, company: &str) -> String {
    let id = submit_verified(t, company, "ops@kinetic.example", case_scope()).await;
    let (alice, actor) = approver("alice@acme.example");
    let input = ApprovalInput {
        scope: case_scope(),
        budget: Budget::default_for(10),
        end_date: future_date(30),
        ip_ranges: "203.0.113.0/24".into(),
        reason: "Small nightly sync.".into(),
    };
    let DecisionOutcome::Approved { grant_id } =
        t.approve(&id, &alice, input, &actor).await.unwrap()
    else {
        panic!("one approval approves");
    };
    let pool = t.db.db.pool();
    sqlx::query(
        "UPDATE provisioning_steps SET state = 'succeeded', output = $1 WHERE grant_id = $2 AND step = 'user'",
    )
    .bind(serde_json::json!({ "user_id": USER_ID }).to_string())
    .bind(&grant_id)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("UPDATE grants SET state = 'active' WHERE id = $1")
        .bind(&grant_id)
        .execute(pool)
        .await
        .unwrap();
    let hour = services::usage::budgets::hour_start(services::clock::now_ms());
    sqlx::query(
        "INSERT INTO usage_hours (log_interval, period_start, user_key, hour_start, calls, counted) \
         VALUES ('Hourly', $1, $2, $1, 12, 12)",
    )
    .bind(hour)
    .bind(&USER_ID[..15])
    .execute(pool)
    .await
    .unwrap();
    grant_id
}

fn webhook(url: &str) -> Webhook {
    Webhook::new(url, secrecy::SecretString::from(SECRET)).unwrap()
}

test_kit::both_databases!(company_names_are_escaped_in_slack_text, |engine| {
    let Some(t) = portal(engine).await else {
        return;
    };
    let company = "Evil <!channel> & <https://evil.example/phish|Click to re-verify>";
    let grant_id = over_budget_grant(&t, company).await;
    let alerts = services::usage::budgets::Alerts {
        webhook: Some(webhook("http://127.0.0.1:9/hook")),
        ..t.usage_alerts()
    };
    let evaluation = alerts
        .evaluate(&t.db.db, t.salesforce(), services::clock::now_ms())
        .await
        .unwrap();
    assert_eq!(evaluation.raised.len(), 1, "{evaluation:?}");

    let body: String = sqlx::query_scalar("SELECT body FROM webhook_outbox")
        .fetch_one(t.db.db.pool())
        .await
        .unwrap();
    let stored: Value = serde_json::from_str(&body).unwrap();
    let payload = &stored["payload"];
    let text = payload["text"].as_str().unwrap();
    // Slack reads <…> as mentions and links, and & as the start of an escape.
    assert!(!text.contains('<') && !text.contains('>'), "{text}");
    assert!(
        text.contains(
            "Evil &lt;!channel&gt; &amp; &lt;https://evil.example/phish|Click to re-verify&gt;"
        ),
        "{text}"
    );
    // The structured fields carry the name as it is, for receivers that are not Slack.
    assert_eq!(payload["company"], company);
    assert_eq!(payload["grant_id"], grant_id.as_str());
    // The approvers' mail is plain text: the name as it is.
    let mails = services::mail::outbox(&t.db.db, None, 50).await.unwrap();
    assert!(mails.iter().any(|m| m.subject.contains(company)));
    assert_audit_intact(&t).await;
});

/// A local webhook receiver that answers 200 and remembers the delivery ids it got.
struct Receiver {
    url: String,
    deliveries: Arc<Mutex<Vec<String>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Self {
        use axum::http::HeaderMap;
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let seen = deliveries.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap| {
                let seen = seen.clone();
                async move {
                    let id = headers
                        .get("x-portcullis-delivery")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    seen.lock().unwrap().push(id);
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            deliveries,
            _task: task,
        }
    }

    fn deliveries(&self) -> Vec<String> {
        self.deliveries.lock().unwrap().clone()
    }
}

async fn queue(t: &TestPortal, hook: &Webhook, n: i64) -> String {
    let mut tx = t.db.db.begin_write().await.unwrap();
    hook.queue(
        &mut tx.tx,
        "usage.limit_warning",
        &serde_json::json!({ "n": n }),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    sqlx::query_scalar("SELECT id FROM webhook_outbox ORDER BY created_at DESC, id DESC LIMIT 1")
        .fetch_one(t.db.db.pool())
        .await
        .unwrap()
}

test_kit::both_databases!(webhook_deliveries_a_crash_left_claimed_are_sent, |engine| {
    let Some(t) = portal(engine).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let hook = webhook(&receiver.url);
    // A sender claimed this delivery and died before posting it (its claim is an hour old).
    let stuck = queue(&t, &hook, 1).await;
    sqlx::query(
        "UPDATE webhook_outbox SET delivery = 'sending', attempts = 1, created_at = created_at - 3600000, \
         next_attempt_at = next_attempt_at - 3600000 WHERE id = $1",
    )
    .bind(&stuck)
    .execute(t.db.db.pool())
    .await
    .unwrap();
    let fresh = queue(&t, &hook, 2).await;
    let sent = hook.deliver_pending(&t.db.db).await.unwrap();
    assert_eq!(sent, 2, "the stuck delivery is taken up again");
    assert_eq!(receiver.deliveries(), vec![stuck.clone(), fresh.clone()]);
    let states: Vec<String> =
        sqlx::query_scalar("SELECT delivery FROM webhook_outbox ORDER BY created_at")
            .fetch_all(t.db.db.pool())
            .await
            .unwrap();
    assert_eq!(states, ["sent", "sent"]);
    // Nothing is sent twice.
    assert_eq!(hook.deliver_pending(&t.db.db).await.unwrap(), 0);
    assert_eq!(receiver.deliveries().len(), 2);

    // A claim that has not run out is another sender's: left alone; one that ran out is
    // taken up. Due deliveries go oldest-due first, not in the order they were written.
    let claimed = queue(&t, &hook, 3).await;
    sqlx::query("UPDATE webhook_outbox SET delivery = 'sending', claimed_until = $1 WHERE id = $2")
        .bind(services::clock::now_ms() + 60_000)
        .bind(&claimed)
        .execute(t.db.db.pool())
        .await
        .unwrap();
    let later = queue(&t, &hook, 4).await;
    let earlier = queue(&t, &hook, 5).await;
    sqlx::query(
        "UPDATE webhook_outbox SET next_attempt_at = next_attempt_at - 60000 WHERE id = $1",
    )
    .bind(&earlier)
    .execute(t.db.db.pool())
    .await
    .unwrap();
    assert_eq!(hook.deliver_pending(&t.db.db).await.unwrap(), 2);
    assert_eq!(receiver.deliveries()[2..], [earlier.clone(), later.clone()]);
    sqlx::query("UPDATE webhook_outbox SET claimed_until = $1 WHERE id = $2")
        .bind(services::clock::now_ms() - 1)
        .bind(&claimed)
        .execute(t.db.db.pool())
        .await
        .unwrap();
    assert_eq!(hook.deliver_pending(&t.db.db).await.unwrap(), 1);
    assert_eq!(receiver.deliveries().last(), Some(&claimed));
    assert_eq!(hook.deliver_pending(&t.db.db).await.unwrap(), 0);
});
