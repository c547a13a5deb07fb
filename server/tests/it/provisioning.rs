//! The running portal provisions what is approved: an approval through the HTTP API is
//! picked up by the server's own provisioning workers, which set the grant up in the
//! embedded sandbox org and prove it, making the grant ready. On SQLite and PostgreSQL.

use crate::common;

use std::time::Duration;

use common::portal::{self, browser, call, pairs, sign_in, submit};
use common::{Db, TestApp};
use reqwest::StatusCode;
use sqlx::Row;

async fn approved_grant_becomes_ready(kind: Db) {
    let Some(app) = TestApp::spawn_with(kind, |config| {
        config.roles = portal::one_role_each();
        config.provisioning_workers = 2;
    })
    .await
    else {
        return;
    };
    let contractor = submit(&app, "Worker Ltd", true).await;
    let approver = browser();
    sign_in(&app, &approver, portal::BLAKE).await;
    let form = portal::approval_form(&contractor.request_id, "");
    let (status, body) = call(&app, &approver, "decide", &pairs(&form)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The workers take it from here.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let (state, calls, attention) = loop {
        let row = sqlx::query("SELECT state, api_calls, attention FROM grants")
            .fetch_one(app.db.pool())
            .await
            .expect("the grant");
        let state: String = row.get("state");
        if state == "ready" || state == "needs_attention" || tokio::time::Instant::now() > deadline
        {
            break (
                state,
                row.get::<i64, _>("api_calls"),
                row.get::<Option<String>, _>("attention"),
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(state, "ready", "attention: {attention:?}");
    assert!(calls > 0);
    let steps: Vec<(String, String)> =
        sqlx::query("SELECT step, state FROM provisioning_steps ORDER BY position")
            .fetch_all(app.db.pool())
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.get("step"), r.get("state")))
            .collect();
    assert_eq!(steps.len(), services::provisioning::Step::ALL.len());
    assert!(steps.iter().all(|(_, s)| s == "succeeded"), "{steps:?}");
    app.stop().await.expect("stops with workers running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_grant_becomes_ready_sqlite() {
    approved_grant_becomes_ready(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_grant_becomes_ready_postgres() {
    approved_grant_becomes_ready(Db::Postgres).await;
}
