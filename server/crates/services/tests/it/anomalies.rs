//! Anomaly rules (issue 18, must-show 4), on SQLite and PostgreSQL: a grant provisioned in
//! the in-process sandbox org, then crafted ApiTotalUsage files placed through the sandbox's
//! control API (`POST /__sandbox/event-log-files`, the documented columns) and read by the
//! collector. Each kind — many 4xx answers, an object outside the grant, an address outside
//! the approved ranges, volume far above the grant's own baseline — raises exactly one
//! `usage.anomaly` of that kind; collecting again, or the same file delivered again, raises
//! nothing new; a clean file raises none. With `ANOMALY_ACTION=freeze` (and always for the
//! IP ranges) the grant is suspended and its user frozen.

use crate::common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use services::PortalSettings;
use services::usage::anomaly::AnomalyAction;
use services::usage::budgets::Alerts;
use services::usage::collector::Collector;
use services::usage::webhook::Webhook;
use test_kit::usage_files::{HEADER, at};

/// Places an hourly file for the hour starting `hour`.
async fn place(t: &TestPortal, hour: i64, csv: String) -> String {
    test_kit::usage_files::place(t.org.as_ref().unwrap().base_url(), "Hourly", hour, csv).await
}

const HOUR_MS: i64 = 3_600_000;
const RANGES: &str = "203.0.113.0/24";
const INSIDE: &str = "203.0.113.7";
const APPROVER: &str = "alice@acme.example";

/// A provisioned grant: its id, its integration user's 15-character id, and the start of
/// the first whole hour after it was set up (the crafted files' calls start there).
struct Grant {
    id: String,
    user: String,
    first_hour: i64,
}

/// One call, as ApiTotalUsage lists it.
struct Call<'a> {
    at: i64,
    status: u16,
    entity: &'a str,
    ip: &'a str,
}

fn csv(user: &str, calls: &[Call<'_>]) -> String {
    let rows: Vec<Vec<String>> = calls
        .iter()
        .map(|call| {
            let when = at(call.at);
            vec![
                "ApiTotalUsage".to_string(),
                when.format("%Y%m%d%H%M%S%.3f").to_string(),
                uuid::Uuid::new_v4().simple().to_string()[..22].to_string(),
                "00D5g000000AbCd".into(),
                user.into(),
                "contractor@vendor.example".into(),
                "REST".into(),
                "66.0".into(),
                format!("/v66.0/sobjects/{}", call.entity),
                "GET".into(),
                call.status.to_string(),
                call.entity.into(),
                String::new(),
                call.ip.into(),
                "0H45g000000AbCd".into(),
                "Portcullis Vendor".into(),
                "true".into(),
                "EXTERNAL_APPLICATION".into(),
                when.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            ]
        })
        .collect();
    test_kit::usage_files::csv(HEADER, &rows)
}

/// `n` calls in the hour starting `hour`, a few seconds apart, answered `status`.
fn calls<'a>(hour: i64, n: u64, status: u16, entity: &'a str, ip: &'a str) -> Vec<Call<'a>> {
    (0..n as i64)
        .map(|i| Call {
            at: hour + 60_000 + i * 2_000,
            status,
            entity,
            ip,
        })
        .collect()
}

/// A grant for Case with the approved ranges, provisioned in the sandbox org until ready;
/// the portal's clock then stands a day later, so the crafted hours are in its past.
async fn ready_grant(t: &mut TestPortal, company: &str) -> Grant {
    // An approver who has signed in: alerts are mailed to them.
    let (alice, actor) = approver(APPROVER);
    let roles = shared::auth::Roles {
        approver: true,
        ..Default::default()
    };
    t.record_sign_in(&alice, &roles, &actor).await.unwrap();
    let id = approved_grant_with(t, company, case_scope(), RANGES).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        worker(t).run_until_idle().await.unwrap();
        let (state, attention) = grant_state(t, &id).await;
        if state == "ready" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the grant was not set up: {state} {attention:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let user = output_of(t, &id, "user").await["user_id"].as_str().unwrap()[..15].to_string();
    let setup: i64 =
        sqlx::query_scalar("SELECT MAX(finished_at) FROM provisioning_steps WHERE grant_id = $1")
            .bind(&id)
            .fetch_one(t.db.db.pool())
            .await
            .unwrap();
    let first_hour = setup.div_euclid(HOUR_MS) * HOUR_MS + HOUR_MS;
    let clock = with_test_clock(t);
    clock.set(first_hour + 24 * HOUR_MS);
    Grant {
        id,
        user,
        first_hour,
    }
}

/// The collector, with a webhook (nothing listens: deliveries stay in the outbox).
fn collector(t: &TestPortal) -> Collector {
    let alerts = Alerts {
        webhook: Some(
            Webhook::new(
                "http://127.0.0.1:9/hook",
                secrecy::SecretString::from("a-webhook-signing-secret-for-tests"),
            )
            .unwrap(),
        ),
        ..t.usage_alerts()
    };
    Collector::new(t.db.db.clone(), t.salesforce().clone(), alerts).with_clock(t.clock().clone())
}

/// Runs the collector once; returns the kinds it raised for `grant`.
async fn collect(t: &TestPortal, grant: &Grant) -> Vec<String> {
    let report = collector(t).run_once().await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    report
        .budgets
        .anomalies
        .iter()
        .filter(|a| a.grant_id == grant.id)
        .map(|a| a.kind.as_str().to_string())
        .collect()
}

/// The grant's `usage.anomaly` audit entries' details.
async fn anomaly_entries(t: &TestPortal, grant: &Grant) -> Vec<Value> {
    let details: Vec<String> = sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'usage.anomaly' AND target_id = $1 ORDER BY seq",
    )
    .bind(&grant.id)
    .fetch_all(t.db.db.pool())
    .await
    .unwrap();
    details
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

async fn webhook_events(t: &TestPortal) -> Vec<String> {
    let bodies: Vec<String> = sqlx::query_scalar("SELECT body FROM webhook_outbox")
        .fetch_all(t.db.db.pool())
        .await
        .unwrap();
    bodies
        .iter()
        .map(|b| serde_json::from_str::<Value>(b).unwrap()["payload"]["event"].to_string())
        .collect()
}

/// Places `file`, collects: exactly one `usage.anomaly` of `kind`, in the hour `window`.
/// Then a run with nothing new, and the same file delivered again, raise nothing more.
async fn raises_once(t: &TestPortal, grant: &Grant, hour: i64, file: String, kind: &str) -> Value {
    place(t, hour, file.clone()).await;
    assert_eq!(collect(t, grant).await, [kind]);
    let entries = anomaly_entries(t, grant).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = entries[0].clone();
    assert_eq!(entry["kind"], kind);
    assert_eq!(entry["window"], services::clock::rfc3339(hour));
    assert_eq!(
        webhook_events(t)
            .await
            .iter()
            .filter(|e| e.contains("usage.anomaly"))
            .count(),
        1
    );
    let mails = services::mail::outbox(&t.db.db, None, 50).await.unwrap();
    let alerts: Vec<_> = mails
        .iter()
        .filter(|m| m.subject.contains("unusual API usage"))
        .collect();
    assert_eq!(alerts.len(), 1, "one mail to the approver");
    assert_eq!(alerts[0].recipient, APPROVER);
    assert!(alerts[0].body.contains(&grant.id) || alerts[0].body.contains("/admin/requests/"));

    assert!(collect(t, grant).await.is_empty(), "collected again");
    place(t, hour, file).await;
    assert!(collect(t, grant).await.is_empty(), "the same file again");
    assert_eq!(anomaly_entries(t, grant).await.len(), 1);
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM usage_anomalies WHERE grant_id = $1")
        .bind(&grant.id)
        .fetch_one(t.db.db.pool())
        .await
        .unwrap();
    assert_eq!(rows, 1);
    assert_audit_intact(t).await;
    entry
}

/// A usual hour of the grant: `n` calls on Case from inside the ranges, all answered 200.
fn usual(hour: i64, n: u64) -> Vec<Call<'static>> {
    calls(hour, n, 200, "Case", INSIDE)
}

test_kit::both_databases!(many_4xx_answers_raise_one_anomaly, |engine| {
    let Some(mut t) = portal_with_org(engine).await else {
        return;
    };
    let grant = ready_grant(&mut t, "Kinetic Ltd").await;
    let hour = grant.first_hour + 2 * HOUR_MS;
    let mut hour_calls = usual(hour, 10);
    hour_calls.extend(calls(hour + 600_000, 20, 403, "Case", INSIDE));
    let entry = raises_once(
        &t,
        &grant,
        hour,
        csv(&grant.user, &hour_calls),
        "client_errors",
    )
    .await;
    assert_eq!(entry["figures"]["calls"], 30);
    assert_eq!(entry["figures"]["client_errors"], 20);
    assert_eq!(entry["figures"]["share_percent"], 66);
    assert_eq!(entry["action"], "alert");
    assert_eq!(grant_state(&t, &grant.id).await.0, "ready", "alert only");
});

test_kit::both_databases!(an_object_outside_the_grant_raises_one_anomaly, |engine| {
    let Some(mut t) = portal_with_org(engine).await else {
        return;
    };
    let grant = ready_grant(&mut t, "Kinetic Ltd").await;
    let hour = grant.first_hour + 3 * HOUR_MS;
    let mut hour_calls = usual(hour, 10);
    hour_calls.extend(calls(hour + 900_000, 3, 200, "Account", INSIDE));
    let entry = raises_once(
        &t,
        &grant,
        hour,
        csv(&grant.user, &hour_calls),
        "outside_scope",
    )
    .await;
    assert_eq!(entry["figures"]["calls"], 3);
    assert_eq!(entry["figures"]["objects"][0]["object"], "Account");
    assert_eq!(grant_state(&t, &grant.id).await.0, "ready");
});

test_kit::both_databases!(
    a_call_from_outside_the_ip_ranges_raises_one_anomaly_and_freezes,
    |engine| {
        let Some(mut t) = portal_with_org(engine).await else {
            return;
        };
        let grant = ready_grant(&mut t, "Kinetic Ltd").await;
        let hour = grant.first_hour + HOUR_MS;
        let mut hour_calls = usual(hour, 5);
        hour_calls.extend(calls(hour + 1_200_000, 2, 200, "Case", "198.51.100.23"));
        let entry = raises_once(
            &t,
            &grant,
            hour,
            csv(&grant.user, &hour_calls),
            "outside_ip_ranges",
        )
        .await;
        assert_eq!(entry["figures"]["addresses"][0]["address"], "198.51.100.23");
        assert_eq!(entry["action"], "freeze", "the ranges always freeze");
        assert_frozen(&t, &grant).await;
    }
);

test_kit::both_databases!(volume_far_above_the_baseline_raises_one_anomaly, |engine| {
    let Some(mut t) = portal_with_org(engine).await else {
        return;
    };
    let grant = ready_grant(&mut t, "Kinetic Ltd").await;
    // Six usual hours of 10 to 20 calls (median 15), then 120 calls: over 5 × 15.
    for (i, n) in [10, 20, 15, 12, 18, 15].into_iter().enumerate() {
        let hour = grant.first_hour + i as i64 * HOUR_MS;
        place(&t, hour, csv(&grant.user, &usual(hour, n))).await;
    }
    assert!(collect(&t, &grant).await.is_empty(), "usual hours");
    let hour = grant.first_hour + 6 * HOUR_MS;
    let entry = raises_once(
        &t,
        &grant,
        hour,
        csv(&grant.user, &usual(hour, 120)),
        "above_baseline",
    )
    .await;
    assert_eq!(entry["figures"]["calls"], 120);
    assert_eq!(entry["figures"]["baseline_median"], 15);
    assert_eq!(entry["figures"]["baseline_hours"], 6);
});

test_kit::both_databases!(a_clean_file_raises_none, |engine| {
    let Some(mut t) = portal_with_org(engine).await else {
        return;
    };
    let grant = ready_grant(&mut t, "Kinetic Ltd").await;
    for i in 0..8 {
        let hour = grant.first_hour + i * HOUR_MS;
        let mut hour_calls = usual(hour, 15);
        // A few refused calls (under half), entity names that are not objects, and
        // Salesforce's own address for internal calls.
        hour_calls.extend(calls(hour + 1_800_000, 4, 404, "Case", INSIDE));
        hour_calls.extend(calls(hour + 1_900_000, 1, 200, "", INSIDE));
        hour_calls.extend(calls(hour + 2_000_000, 1, 200, "null", "Salesforce.com IP"));
        place(&t, hour, csv(&grant.user, &hour_calls)).await;
    }
    assert!(collect(&t, &grant).await.is_empty());
    assert!(anomaly_entries(&t, &grant).await.is_empty());
    let windows: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM usage_windows_effective WHERE user_key = $1 AND hour_start >= $2",
    )
    .bind(&grant.user)
    .bind(grant.first_hour)
    .fetch_one(t.db.db.pool())
    .await
    .unwrap();
    assert!(windows >= 1, "the file was read into windows");
    assert_eq!(grant_state(&t, &grant.id).await.0, "ready");
});

test_kit::both_databases!(with_freeze_an_anomaly_suspends_and_freezes, |engine| {
    let settings = PortalSettings {
        anomaly_action: AnomalyAction::Freeze,
        ..settings()
    };
    let Some(mut t) = portal_with(engine, settings, true).await else {
        return;
    };
    let grant = ready_grant(&mut t, "Kinetic Ltd").await;
    let hour = grant.first_hour + 2 * HOUR_MS;
    let file = csv(&grant.user, &calls(hour, 25, 401, "Case", INSIDE));
    let entry = raises_once(&t, &grant, hour, file, "client_errors").await;
    assert_eq!(entry["action"], "freeze");
    assert_frozen(&t, &grant).await;
});

/// The grant is suspended, its user frozen, and its credential refused.
async fn assert_frozen(t: &TestPortal, grant: &Grant) {
    let (state, _) = grant_state(t, &grant.id).await;
    assert_eq!(state, "suspended");
    let frozen_at: Option<i64> = sqlx::query_scalar("SELECT frozen_at FROM grants WHERE id = $1")
        .bind(&grant.id)
        .fetch_one(t.db.db.pool())
        .await
        .unwrap();
    assert!(frozen_at.is_some(), "the user was frozen");
    let actions = audit_actions(t, &grant.id).await;
    assert!(
        actions.contains(&"grant.suspended".to_string())
            && actions.contains(&"grant.frozen".to_string()),
        "{actions:?}"
    );
    assert!(
        !credential_works(t, &grant.id).await,
        "the frozen user's credential is refused"
    );
}

test_kit::both_databases!(
    a_grants_own_freeze_action_wins_and_the_dashboard_lists_it,
    |engine| {
        let Some(mut t) = portal_with_org(engine).await else {
            return;
        };
        let grant = ready_grant(&mut t, "Kinetic Ltd").await;
        let (_, actor) = approver(APPROVER);
        assert!(
            t.set_anomaly_action(&grant.id, Some(AnomalyAction::Freeze), &actor)
                .await
                .unwrap()
        );
        assert!(
            !t.set_anomaly_action("no-such-grant", None, &actor)
                .await
                .unwrap()
        );
        let hour = grant.first_hour + 4 * HOUR_MS;
        let mut hour_calls = usual(hour, 4);
        hour_calls.extend(calls(hour + 600_000, 1, 200, "Opportunity", INSIDE));
        let entry = raises_once(
            &t,
            &grant,
            hour,
            csv(&grant.user, &hour_calls),
            "outside_scope",
        )
        .await;
        assert_eq!(entry["action"], "freeze", "the grant's own action");
        assert_frozen(&t, &grant).await;

        let listed = t.usage_overview().await.unwrap().anomalies;
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].grant_id, grant.id);
        assert_eq!(listed[0].kind, "outside_scope");
        assert_eq!(listed[0].window, services::clock::rfc3339(hour));
        assert!(listed[0].summary.contains("Opportunity"), "{listed:?}");
        assert_eq!(listed[0].action, "freeze");
    }
);
