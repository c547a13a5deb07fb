//! The approval page offers record sharing only where the objects' sharing models (read
//! from the org) allow a share, and says why not elsewhere (issue 14 item 5). Each test
//! runs on SQLite and on PostgreSQL.

use crate::common;

use common::TestApp;
use common::portal::{BLAKE, browser, sign_in, spawn_portal, submit};
use reqwest::StatusCode;
use serde_json::{Value, json};
use test_kit::both_databases;

/// Sends `body` to the embedded sandbox org's control API.
async fn control(app: &TestApp, method: reqwest::Method, path: &str, body: Value) {
    let base = app.sandbox_url.clone().expect("the embedded sandbox org");
    test_kit::sandbox::control(&app.client, &base, method, path, body).await;
}

/// The review page of `request_id`, as the approver sees it.
async fn review_page(app: &TestApp, client: &reqwest::Client, request_id: &str) -> String {
    let response = client
        .get(app.at(&format!("/admin/requests/{request_id}")))
        .send()
        .await
        .expect("GET the review page");
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.expect("the page")
}

/// The `<ul aria-label="…">` list's text, or None when the page has no such list.
fn list<'a>(page: &'a str, label: &str) -> Option<&'a str> {
    let start = page.find(&format!("<ul aria-label=\"{label}\">"))?;
    let rest = &page[start..];
    Some(&rest[..rest.find("</ul>")?])
}

async fn offered_where_the_model_allows(app: TestApp) {
    let contractor = submit(&app, "Sharemodel Ltd", true).await;
    let approver = browser();
    sign_in(&app, &approver, BLAKE).await;

    // The seeded org: Account and Case Private (shareable), Contact Controlled by Parent,
    // Task without a share object.
    let page = review_page(&app, &approver, &contractor.request_id).await;
    let offered = page
        .split("id=\"record-sharing-offered\">")
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .unwrap_or_else(|| panic!("no offered objects on the page"));
    assert!(
        offered.contains("Account") && offered.contains("Case"),
        "{offered}"
    );
    let refused = list(&page, "Records that cannot be shared").expect("the refused list");
    assert!(
        refused.contains("Contact: org-wide default Controlled by Parent"),
        "{refused}"
    );
    assert!(refused.contains("Task: no sharing of its own"), "{refused}");
    assert!(!refused.contains("Case"), "{refused}");

    // Case made Public Read/Write in Sharing Settings: its records are no longer offered,
    // and the page says why, naming object and model.
    control(
        &app,
        reqwest::Method::PATCH,
        "/__sandbox/settings",
        json!({ "orgWideDefaults": { "Case": "Edit" } }),
    )
    .await;
    let page = review_page(&app, &approver, &contractor.request_id).await;
    let offered = page
        .split("id=\"record-sharing-offered\">")
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .unwrap_or_default();
    assert!(!offered.contains("Case"), "{offered}");
    let refused = list(&page, "Records that cannot be shared").expect("the refused list");
    assert!(
        refused.contains(
            "Case: org-wide default Public Read/Write — every user sees and edits all Case records; no sharing needed"
        ),
        "{refused}"
    );

    // Every object closed: no record ids are asked for at all under the sharing rule.
    control(
        &app,
        reqwest::Method::PATCH,
        "/__sandbox/settings",
        json!({ "orgWideDefaults": { "Account": "Edit" } }),
    )
    .await;
    let page = review_page(&app, &approver, &contractor.request_id).await;
    assert!(
        !page.contains("id=\"record_ids\""),
        "a record id box is offered"
    );

    // The org cannot be asked: the page still works and says the models are unknown.
    control(
        &app,
        reqwest::Method::PUT,
        "/__sandbox/faults",
        json!({ "rules": [{ "path": "/services/data/*/query*", "dropRate": 1.0 }] }),
    )
    .await;
    let page = review_page(&app, &approver, &contractor.request_id).await;
    assert!(
        page.contains("sharing models could not be read"),
        "no word on the unread models"
    );
    assert!(
        page.contains("id=\"record_ids\""),
        "record ids not asked for"
    );
    control(
        &app,
        reqwest::Method::PUT,
        "/__sandbox/faults",
        json!({ "rules": [] }),
    )
    .await;
    app.stop().await.expect("clean stop");
}

both_databases!(
    record_sharing_is_offered_only_where_the_sharing_model_allows_it,
    with spawn_portal,
    offered_where_the_model_allows
);
