//! The audit log page and its downloads over HTTP, as a security reviewer uses them, on
//! SQLite and PostgreSQL: who may read it, filters that name a bad field, the entry page,
//! "Verify chain", and the CSV and JSON Lines exports (streamed across many pages: every
//! matching entry exactly once, each JSON line still matching its hash).

mod common;

use common::portal::{self, browser, call, sign_in, submit};
use common::{Db, TestApp};
use reqwest::StatusCode;
use serde_json::Value;
use services::audit::Entry;

macro_rules! on_both_databases {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::Db::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(super::Db::Postgres).await;
            }
        }
    };
}

async fn get(client: &reqwest::Client, app: &TestApp, path: &str) -> (StatusCode, String) {
    let response = client.get(app.at(path)).send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

async fn reviewers_read_filter_verify_and_export(kind: Db) {
    let Some(app) =
        TestApp::spawn_with(kind, |config| config.roles = portal::one_role_each()).await
    else {
        return;
    };
    let kinetic = submit(&app, "Kinetic Ltd", true).await;
    submit(&app, "Northwind", false).await;
    // Enough entries that an export spans several pages of the cursor.
    services::testing::audit_fill(&app.db, 2_600, services::clock::now_ms(), 1).await;
    let reviewer = browser();
    sign_in(&app, &reviewer, portal::SAM).await;
    let approver = browser();
    sign_in(&app, &approver, portal::BLAKE).await;
    let anonymous = browser();
    // (Signing in is audited too; nothing writes to the log from here on.)
    let total = count(&app, "SELECT COUNT(*) FROM audit_log").await;
    assert!(total > 2_600);

    // The page, filtered to one request.
    let path = format!(
        "/audit?target_type=request&target_id={}",
        kinetic.request_id
    );
    let (status, html) = get(&reviewer, &app, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Audit entries"), "{html}");
    assert!(html.contains("Kinetic Ltd"), "the request's entries");
    assert_eq!(
        html.matches("href=\"/audit/entries/").count(),
        2,
        "submitted, verified"
    );
    assert!(!html.contains("Northwind"), "only the filtered request");
    assert!(html.contains(&format!("{total} entries in the log")));
    assert!(html.contains("/audit/export.csv?target_type=request&amp;target_id="));

    // Paging: 50 a page, "Older entries" carries the cursor.
    let (_, html) = get(&reviewer, &app, "/audit").await;
    assert!(
        html.contains(&format!("before={}", total - 49)),
        "the next cursor"
    );
    let (_, older) = get(&reviewer, &app, &format!("/audit?before={}", total - 49)).await;
    assert!(older.contains(&format!("/audit/entries/{}", total - 50)));
    assert!(!older.contains(&format!("/audit/entries/{}\"", total - 49)));

    // A bad filter is a clear refusal naming the field.
    let (status, body) = call(&app, &reviewer, "audit_search", &[("outcome", "maybe")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("outcome"), "{body}");
    let (status, body) = call(&app, &reviewer, "audit_search", &[("from", "last tuesday")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("from"), "{body}");
    let (status, body) = call(&app, &reviewer, "audit_search", &[("before", "x")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = get(&reviewer, &app, "/audit?outcome=maybe").await;
    // (400 or 200: the page's status is sent before or after the streamed data refused.)
    assert!(
        status.is_success() || status == StatusCode::BAD_REQUEST,
        "{status}"
    );
    assert!(body.contains("is not an outcome"), "{body}");

    // One entry in full.
    let submitted: i64 = sqlx::query_scalar(
        "SELECT seq FROM audit_log WHERE action = 'request.submitted' AND target_id = $1",
    )
    .bind(&kinetic.request_id)
    .fetch_one(app.db.pool())
    .await
    .unwrap();
    let (status, html) = get(&reviewer, &app, &format!("/audit/entries/{submitted}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("request.submitted") && html.contains("Previous hash"));
    let (_, html) = get(&reviewer, &app, "/audit/entries/99999999").await;
    assert!(html.contains("There is no entry with that number"));

    // Verify: intact, over the whole log and over a range.
    let (status, body) = call(&app, &reviewer, "audit_verify", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Intact"]["entries"], total);
    let (_, body) = call(
        &app,
        &reviewer,
        "audit_verify",
        &[("from_seq", "10"), ("to_seq", "20")],
    )
    .await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Intact"]["first_seq"], 10);
    assert_eq!(v["Intact"]["last_seq"], 20);
    let (status, _) = call(&app, &reviewer, "audit_verify", &[("from_seq", "-3")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // CSV of everything: a header and one line per entry, newest first.
    let response = reviewer
        .get(app.at("/audit/export.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"audit-")
    );
    let csv = response.text().await.unwrap();
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines[0],
        "seq,at,actor,actor_ip,user_agent,action,target_type,target_id,outcome,details,prev_hash,hash"
    );
    assert_eq!(lines.len() as i64, total + 1);
    let seqs: Vec<i64> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    let expected: Vec<i64> = (1..=total).rev().collect();
    assert_eq!(seqs, expected, "every entry once, newest first");

    // JSON Lines, filtered: exactly the matching entries, each still matching its hash.
    let response = reviewer
        .get(app.at("/audit/export.jsonl?actor=system&outcome=failure"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.text().await.unwrap();
    let want = count(
        &app,
        "SELECT COUNT(*) FROM audit_log WHERE actor = 'system' AND outcome = 'failure'",
    )
    .await;
    assert!(want > 0);
    let mut n = 0;
    for line in body.lines() {
        let entry: Entry = serde_json::from_str(line).unwrap();
        assert_eq!(entry.actor, "system");
        assert_eq!(entry.outcome, "failure");
        assert_eq!(
            Entry::compute_hash(&entry.prev_hash, &entry.canonical()),
            entry.hash
        );
        n += 1;
    }
    assert_eq!(n, want);

    // A bad export filter is refused before anything is sent.
    let (status, body) = get(&reviewer, &app, "/audit/export.csv?to=soon").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("to:"), "{body}");

    // Only security reviewers and owners: no one else gets the page's data or downloads.
    for path in [
        "/audit/export.csv",
        "/audit/export.jsonl",
        "/audit/evidence/some-grant.json",
    ] {
        let (status, body) = get(&anonymous, &app, path).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(!body.contains("request."), "{path}");
        let (status, body) = get(&approver, &app, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(!body.contains("request."), "{path}");
    }
    let (status, html) = get(&approver, &app, "/audit").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Not authorised") && !html.contains("request.submitted"));
    app.stop().await.unwrap();
}
on_both_databases!(reviewers_read_filter_verify_and_export);
