//! Budget alerts as the webhook receiver gets them, on SQLite and PostgreSQL: what the
//! contractor typed (the company name) reaches a Slack-compatible `text` field escaped, so it
//! cannot mention channels or make links.

mod common;

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

services::both_databases!(company_names_are_escaped_in_slack_text, |engine| {
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
        .evaluate(&t.db.db, &t.salesforce, services::clock::now_ms())
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
