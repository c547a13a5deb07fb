//! The audit log page and its downloads over HTTP, as a security reviewer uses them, on
//! SQLite and PostgreSQL: who may read it, filters that name a bad field, the entry page,
//! "Verify chain", and the CSV and JSON Lines exports (streamed across many pages: every
//! matching entry exactly once, each JSON line still matching its hash).

use crate::common;

use common::portal::{self, browser, call, sign_in, submit};
use common::{Db, TestApp};
use reqwest::StatusCode;
use serde_json::Value;
use services::audit::{AuditAction, Entry};
use test_kit::both_databases;

async fn get(client: &reqwest::Client, app: &TestApp, path: &str) -> (StatusCode, String) {
    let response = client.get(app.at(path)).send().await.unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

/// "Verify chain" over the whole log as the page presses it: the background verification
/// starts (or one runs already), and its result is read from its status once it finishes.
async fn verify_whole_log(app: &TestApp, client: &reqwest::Client) -> Value {
    let (status, body) = call(app, client, "audit_verify", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains("Started") || body.contains("AlreadyRunning"),
        "{body}"
    );
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (status, body) = call(app, client, "audit_verify_status", &[]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        if v["running"].is_null() {
            assert_eq!(v["last"]["from_seq"], Value::Null, "{v}");
            return v["last"]["result"].clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the verification finishes: {v}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
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
    test_kit::audit_fill(&app.db, 2_600, services::clock::now_ms(), 1).await;
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

    // Verify: intact, over the whole log (in the background) and over a range (at once).
    let v = verify_whole_log(&app, &reviewer).await;
    assert_eq!(v["Intact"]["entries"], total, "{v}");
    let (_, body) = call(
        &app,
        &reviewer,
        "audit_verify",
        &[("from_seq", "10"), ("to_seq", "20")],
    )
    .await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Checked"]["Intact"]["first_seq"], 10, "{v}");
    assert_eq!(v["Checked"]["Intact"]["last_seq"], 20);
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
both_databases!(reviewers_read_filter_verify_and_export);

/// What someone who can write the database does to hide what they did: drop the triggers,
/// change an entry, recompute every hash after it and the chain head. The chain then agrees
/// with itself again.
async fn rewrite_consistently(app: &TestApp, seq: i64) {
    let drops: &[&str] = match app.kind {
        Db::Sqlite => &[
            "DROP TRIGGER audit_log_no_update",
            "DROP TRIGGER audit_log_no_delete",
        ],
        Db::Postgres => &[
            "DROP TRIGGER audit_log_no_update ON audit_log",
            "DROP TRIGGER audit_log_no_delete ON audit_log",
        ],
    };
    for sql in drops {
        sqlx::query(sql).execute(app.db.pool()).await.unwrap();
    }
    let rows = sqlx::query(&format!(
        "SELECT {} FROM audit_log WHERE seq >= $1 ORDER BY seq",
        services::audit::COLUMNS
    ))
    .bind(seq - 1)
    .fetch_all(app.db.pool())
    .await
    .unwrap();
    let mut entries: Vec<Entry> = rows.iter().map(|r| Entry::from_row(r).unwrap()).collect();
    let mut prev = entries.remove(0).hash;
    let mut tx = app.db.pool().begin().await.unwrap();
    for mut entry in entries {
        if entry.seq == seq {
            entry.details = r#"{"note":"nothing to see here"}"#.into();
        }
        entry.prev_hash = prev.clone();
        entry.hash = Entry::compute_hash(&entry.prev_hash, &entry.canonical());
        sqlx::query("UPDATE audit_log SET details = $1, prev_hash = $2, hash = $3 WHERE seq = $4")
            .bind(&entry.details)
            .bind(&entry.prev_hash)
            .bind(&entry.hash)
            .bind(entry.seq)
            .execute(&mut *tx)
            .await
            .unwrap();
        prev = entry.hash;
    }
    sqlx::query("UPDATE audit_head SET last_hash = $1 WHERE id = 1")
        .bind(&prev)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Issue 15, finding 12: a rewrite with every hash recomputed passes the chain check, but
/// not the anchors the portal made (every 1,000 entries, with a key outside the database):
/// "verify" names where the log stops being vouched for.
async fn a_consistent_rewrite_is_caught_by_the_anchors(kind: Db) {
    let Some(app) =
        TestApp::spawn_with(kind, |config| config.roles = portal::one_role_each()).await
    else {
        return;
    };
    test_kit::audit_fill(&app.db, 2_500, services::clock::now_ms(), 1).await;
    let reviewer = browser();
    sign_in(&app, &reviewer, portal::SAM).await;
    let verify = || verify_whole_log(&app, &reviewer);
    // The portal anchors in the background: wait (a while) for entries 1,000 and 2,000.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let v = verify().await;
        if v["Intact"]["anchors"]["anchored_through"].as_i64() == Some(2_000) {
            assert_eq!(v["Intact"]["anchors"]["self_consistent_from"], 2_001, "{v}");
            break;
        }
        if tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }

    rewrite_consistently(&app, 1_500).await;
    // The hash chain alone cannot tell.
    assert!(matches!(
        services::audit::verify(&app.db, None, None).await.unwrap(),
        services::audit::Verification::Intact { .. }
    ));
    let v = verify().await;
    assert!(
        v.get("Intact").is_none(),
        "verify must no longer say intact: {v}"
    );
    assert_eq!(v["Broken"]["problem"], "rewritten", "{v}");
    assert_eq!(v["Broken"]["seq"], 1_001, "{v}");
    let detail = v["Broken"]["detail"].as_str().unwrap();
    assert!(detail.contains("entry 2000"), "{detail}");
    assert!(
        detail.contains("only self-consistent from entry 1001"),
        "{detail}"
    );
    assert_eq!(v["Broken"]["anchors"]["anchored_through"], 1_000, "{v}");
    // Nothing more is anchored on top of the rewritten entries.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM audit_anchors")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(newest, Some(2_000));
    app.stop().await.unwrap();
}
both_databases!(a_consistent_rewrite_is_caught_by_the_anchors);

/// At shutdown the portal anchors the chain head, so after a clean stop every entry is
/// vouched for.
async fn the_head_is_anchored_at_shutdown(kind: Db) {
    // A database of the test's own, which outlives the application.
    let dir = tempfile::tempdir().unwrap();
    let (url, _pg) = match kind {
        Db::Sqlite => (
            format!("sqlite://{}/kept.db?mode=rwc", dir.path().display()),
            None,
        ),
        Db::Postgres => {
            if !common::postgres_available("the_head_is_anchored_at_shutdown").await {
                return;
            }
            let pg = common::PgDatabase::create().await;
            (pg.url.clone(), Some(pg))
        }
    };
    let Some(app) = TestApp::spawn_with(kind, |config| {
        config.roles = portal::one_role_each();
        config.database_url = portcullis::config::DatabaseUrl::parse(&url).unwrap();
    })
    .await
    else {
        return;
    };
    submit(&app, "Anchored Ltd", true).await;
    app.stop().await.unwrap();
    // The head as the stopped portal left it: start-up work (the example packages) may still
    // have been adding entries while the request was submitted.
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let head: i64 = sqlx::query_scalar("SELECT last_seq FROM audit_head WHERE id = 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(head >= 2);
    let (seq, reason): (i64, String) =
        sqlx::query_as("SELECT seq, reason FROM audit_anchors ORDER BY seq DESC LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((seq, reason.as_str()), (head, "shutdown"));
    pool.close().await;
}
both_databases!(the_head_is_anchored_at_shutdown);

/// Issue 16: the action filter is built from `AuditAction::ALL` (which writing an entry
/// takes), so it offers every action the portal writes — among them the five the
/// hand-kept list lacked, which a reviewer could not pick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_action_filter_offers_every_action_the_portal_writes() {
    let Some(app) =
        TestApp::spawn_with(Db::Sqlite, |config| config.roles = portal::one_role_each()).await
    else {
        return;
    };
    let reviewer = browser();
    sign_in(&app, &reviewer, portal::SAM).await;
    let (status, html) = get(&reviewer, &app, "/audit").await;
    assert_eq!(status, StatusCode::OK);
    let filter = html
        .split("id=\"audit-action\"")
        .nth(1)
        .and_then(|rest| rest.split("</select>").next())
        .unwrap_or_else(|| panic!("the page has an action filter: {html}"));
    let offered = |value: &str| filter.contains(&format!("value=\"{value}\""));
    for action in [
        "grant.suspended",
        "grant.frozen",
        "grant.unfrozen",
        "usage.limit_warning",
        "usage.limit_exceeded",
    ] {
        assert!(offered(action), "{action} is offered: {filter}");
    }
    for action in AuditAction::ALL {
        assert!(offered(action.as_str()), "{action} is offered: {filter}");
        assert!(
            offered(&format!("{}.*", action.family())),
            "{action}'s family"
        );
    }
    assert!(offered("usage.*"), "the usage family");

    // Picking one is a filter the search takes (nothing has used a budget yet).
    let (status, html) = get(&reviewer, &app, "/audit?action=usage.limit_warning").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("No entries match."), "{html}");
    assert!(!html.contains("is not an action"), "{html}");
}
