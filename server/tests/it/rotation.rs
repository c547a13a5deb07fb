//! "Rotate now" over HTTP as an approver's browser does it (issue 18), against the running
//! portal and its embedded sandbox org: only approvers and owners rotate; a second rotation
//! while one is under way is a conflict; a bad maximum age is refused on its field; the
//! grant's page and the overdue list read back what happened; no secret in the answers.

use crate::common;

use std::time::Duration;

use common::portal::{self, browser, call, pairs, sign_in, submit};
use common::{Db, TestApp};
use reqwest::StatusCode;
use serde_json::Value;
use test_kit::both_databases;

async fn ready(app: &TestApp, request_id: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM grants WHERE request_id = $1")
                .bind(request_id)
                .fetch_optional(app.db.pool())
                .await
                .expect("read grants");
        if state.as_deref() == Some("ready") {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "grant is {state:?}, not ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn rotate_now(app: TestApp) {
    let contractor = submit(&app, "Rotate Ltd", true).await;
    let approver = browser();
    sign_in(&app, &approver, portal::BLAKE).await;
    let form = portal::approval_form(&contractor.request_id, "");
    let (status, body) = call(&app, &approver, "decide", &pairs(&form)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    ready(&app, &contractor.request_id).await;
    let id = contractor.request_id.as_str();
    let rotate = [("id", id), ("action", "rotate")];

    // Nobody but an approver or owner rotates.
    let (status, _) = call(&app, &browser(), "rotate_secret", &rotate).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let reviewer = browser();
    sign_in(&app, &reviewer, portal::SAM).await;
    let (status, _) = call(&app, &reviewer, "rotate_secret", &rotate).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = call(&app, &reviewer, "secrets_overdue", &[]).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "security reviewers see the list: {body}"
    );
    assert_eq!(body.trim(), "[]", "a new secret is not overdue");

    // "Rotate now", then again while it is under way.
    let (status, body) = call(&app, &approver, "rotate_secret", &rotate).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("Both work"), "{body}");
    let (status, body) = call(&app, &approver, "rotate_secret", &rotate).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("already under way"), "{body}");
    let (status, body) = call(
        &app,
        &approver,
        "rotate_secret",
        &[("id", id), ("action", "retire")],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("has not collected"), "{body}");
    let (status, body) = call(
        &app,
        &approver,
        "rotate_secret",
        &[("id", id), ("action", "spin")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // The grant's page reads the rotation back.
    let (status, body) = call(&app, &approver, "secret_rotation", &[("id", id)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let view: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(view["rotations"][0]["state"], "staged", "{body}");
    assert_eq!(view["rotations"][0]["reason"], "manual", "{body}");
    assert_eq!(view["can_rotate"], false, "{body}");
    assert_eq!(view["max_age_days"], 90, "{body}");

    // The grant's own maximum age: a bad one on its field, a good one read back.
    for bad in ["ninety", "-1", "4000"] {
        let (status, body) = call(
            &app,
            &approver,
            "set_secret_max_age",
            &[("id", id), ("max_age_days", bad)],
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert!(body.contains("max_age_days"), "{body}");
    }
    let (status, body) = call(
        &app,
        &approver,
        "set_secret_max_age",
        &[("id", id), ("max_age_days", "30")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = call(&app, &approver, "secret_rotation", &[("id", id)]).await;
    let view: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(view["max_age_days"], 30, "{body}");
    assert_eq!(view["max_age_is_override"], true, "{body}");

    // The new secret was sealed, never answered or logged.
    let sealed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sealed_secrets")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(sealed, 1, "the new secret waits sealed for the contractor");
    let mails: Vec<String> =
        sqlx::query_scalar("SELECT subject FROM mail_outbox WHERE recipient = $1")
            .bind(&contractor.email)
            .fetch_all(app.db.pool())
            .await
            .unwrap();
    assert!(
        mails.iter().any(|s| s.starts_with("A new API credential")),
        "{mails:?}"
    );
}

/// The portal with one role each and provisioning workers.
async fn spawn(kind: Db) -> Option<TestApp> {
    TestApp::spawn_with(kind, |config| {
        config.roles = portal::one_role_each();
        config.provisioning_workers = 2;
    })
    .await
}

both_databases!(rotate_now_over_http, with spawn, rotate_now);
