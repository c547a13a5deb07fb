//! "Ask for more time" over HTTP as the contractor's browser and an approver's do it,
//! against the running portal and its embedded sandbox org: bad input gets a message on its
//! field and changes nothing; the request waits in the queue as an extension; only an
//! approver decides it; the approval moves the grant's end date.

use crate::common;

use std::time::Duration;

use common::portal::{self, browser, call, pairs, sign_in, submit};
use common::{Db, TestApp};
use reqwest::StatusCode;
use serde_json::Value;
use test_kit::both_databases;

async fn grant_of(app: &TestApp, request_id: &str, want: &str) -> (String, String) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let row: Option<(String, String, String)> =
            sqlx::query_as("SELECT id, state, end_date FROM grants WHERE request_id = $1")
                .bind(request_id)
                .fetch_optional(app.db.pool())
                .await
                .expect("read grants");
        if let Some((id, state, end_date)) = row {
            if state == want {
                return (id, end_date);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "grant is {state}, not {want}"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn days_after(date: &str, days: i64) -> String {
    (chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap() + chrono::Duration::days(days))
        .to_string()
}

async fn more_time(app: TestApp) {
    let contractor = submit(&app, "Renew Ltd", true).await;
    let approver = browser();
    sign_in(&app, &approver, portal::BLAKE).await;
    let form = portal::approval_form(&contractor.request_id, "");
    let (status, body) = call(&app, &approver, "decide", &pairs(&form)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_grant, end) = grant_of(&app, &contractor.request_id, "ready").await;
    let token = contractor.status_path.trim_start_matches("/status/");
    let anonymous = browser();

    // The form's problems, each on its field, and nothing stored.
    let later = days_after(&end, 20);
    for (date, reason, field) in [
        (end.as_str(), "More work.", "new_end_date"),
        ("next week", "More work.", "new_end_date"),
        (later.as_str(), "", "reason"),
    ] {
        let (status, body) = call(
            &app,
            &anonymous,
            "ask_for_more_time",
            &[("token", token), ("new_end_date", date), ("reason", reason)],
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let answer: Value = serde_json::from_str(&body).unwrap();
        assert!(
            answer["Invalid"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "{body}"
        );
    }
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM extension_requests")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(stored, 0);
    let (status, _) = call(
        &app,
        &anonymous,
        "ask_for_more_time",
        &[
            ("token", "not-a-status-link"),
            ("new_end_date", &later),
            ("reason", "More."),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = call(
        &app,
        &anonymous,
        "ask_for_more_time",
        &[
            ("token", token),
            ("new_end_date", &later),
            ("reason", "The migration runs longer."),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(
        &app,
        &anonymous,
        "ask_for_more_time",
        &[
            ("token", token),
            ("new_end_date", &later),
            ("reason", "Again."),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("already waiting"), "{body}");

    // In the approvers' queue as an extension.
    let (status, body) = call(&app, &approver, "admin_queue", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let queue: Value = serde_json::from_str(&body).unwrap();
    let extension = &queue["extensions"][0];
    assert_eq!(extension["new_end_date"], later.as_str(), "{body}");
    let id = extension["id"].as_str().unwrap().to_string();

    // Nobody but an approver decides it.
    let decision = [
        ("id", id.as_str()),
        ("action", "approve"),
        ("reason", "Fine."),
    ];
    let (status, _) = call(&app, &anonymous, "decide_extension", &decision).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let reviewer = browser();
    sign_in(&app, &reviewer, portal::SAM).await;
    let (status, _) = call(&app, &reviewer, "decide_extension", &decision).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = call(
        &app,
        &approver,
        "decide_extension",
        &[("id", id.as_str()), ("action", "approve"), ("reason", "")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    let (status, body) = call(&app, &approver, "decide_extension", &decision).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("\"applied\":true"), "{body}");
    let (_, now_ends) = grant_of(&app, &contractor.request_id, "ready").await;
    assert_eq!(now_ends, later);
    let (status, body) = call(&app, &anonymous, "renewal_status", &[("token", token)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let view: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(view["end_date"], later.as_str(), "{body}");
    assert_eq!(view["extensions"][0]["state"], "approved", "{body}");
}
/// The portal with one role each and provisioning workers.
async fn spawn(kind: Db) -> Option<TestApp> {
    TestApp::spawn_with(kind, |config| {
        config.roles = portal::one_role_each();
        config.provisioning_workers = 2;
    })
    .await
}

both_databases!(asking_for_more_time_over_http, with spawn, more_time);
