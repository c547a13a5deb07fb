//! `portcullis doctor` against the standalone sandbox org: all `ok` and exit 0 on a complete
//! org; with each prerequisite taken away through the sandbox's control API, exactly that
//! check fails (or warns, where the portal has a fallback), names the fix, and the exit code
//! says so. And the owners' page `/admin/org` shows the same checks.

use crate::common;

use std::process::Command;

use common::portal::{self, browser, call};
use common::sandbox::StandaloneOrg;
use common::{Db, TestApp};
use reqwest::StatusCode;
use serde_json::{Value, json};

const CALLBACK: &str = "http://127.0.0.1:3000/auth/callback";

/// Runs `portcullis doctor` in org mode (client credentials; the secret also serves
/// sign-in) against `org`: its exit code and its lines.
fn doctor(org: &StandaloneOrg) -> (i32, Vec<String>) {
    doctor_with(org, &[])
}

/// [`doctor`] with more settings (an empty value removes one).
fn doctor_with(org: &StandaloneOrg, settings: &[(&str, &str)]) -> (i32, Vec<String>) {
    let data = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    command.arg("doctor").env_clear();
    command
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", data.path())
        .env("LISTEN_ADDR", "127.0.0.1:3000")
        .env("SALESFORCE_MODE", "org")
        .env("SALESFORCE_URL", &org.base_url)
        .env("SALESFORCE_CLIENT_ID", &org.client_id)
        .env("SALESFORCE_CLIENT_SECRET", &org.client_secret)
        .env("SALESFORCE_CA_FILE", &org.ca_file)
        .envs(settings.iter().filter(|(_, v)| !v.is_empty()).copied());
    for (name, _) in settings.iter().filter(|(_, v)| v.is_empty()) {
        command.env_remove(name);
    }
    let output = command.output().expect("run portcullis doctor");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(
        !stdout.contains(&org.client_secret) && !stderr.contains(&org.client_secret),
        "the doctor printed the consumer secret"
    );
    (
        output.status.code().unwrap_or(-1),
        stdout
            .lines()
            .map(str::to_string)
            .chain(stderr.lines().map(|l| format!("stderr: {l}")))
            .collect(),
    )
}

/// The check lines (`ok`, `warn`, `FAIL` first), by check id.
fn checks(lines: &[String]) -> Vec<(String, String, String)> {
    lines
        .iter()
        .filter_map(|l| {
            let (status, rest) = l.split_once(' ')?;
            if !matches!(status, "ok" | "warn" | "FAIL") {
                return None;
            }
            let rest = rest.trim_start();
            let (id, detail) = rest.split_once(": ")?;
            Some((status.to_string(), id.to_string(), detail.to_string()))
        })
        .collect()
}

async fn control(org: &StandaloneOrg, path: &str, body: Value) {
    let response = org
        .http()
        .patch(format!("{}{path}", org.base_url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.text().await.unwrap()
    );
}

/// Asserts that every check is `ok` except `id`, which is `status` and names `fix`.
fn only(lines: &[String], code: i32, id: &str, status: &str, fix: &str) {
    let all = checks(lines);
    assert_eq!(all.len(), 15, "fifteen checks: {lines:#?}");
    for (s, i, detail) in &all {
        if i == id {
            assert_eq!(s, status, "{id}: {lines:#?}");
            assert!(detail.contains(fix), "{id} names the fix '{fix}': {detail}");
        } else {
            assert_eq!(s, "ok", "only {id} is not ok, but {i} is {s}: {lines:#?}");
        }
    }
    assert_eq!(code, if status == "FAIL" { 1 } else { 0 }, "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_a_complete_org_and_fails_exactly_what_was_taken_away() {
    let org = StandaloneOrg::start_with(&["--portal-callback", CALLBACK]);
    let provisioner = format!("/__sandbox/users/{}/permissions", org.provisioner);

    // Complete: every check ok, exit 0.
    let (code, lines) = doctor(&org);
    let all = checks(&lines);
    assert_eq!(all.len(), 15, "{lines:#?}");
    assert!(all.iter().all(|(s, _, _)| s == "ok"), "{lines:#?}");
    assert_eq!(code, 0, "{lines:#?}");

    // Licences used up.
    control(
        &org,
        "/__sandbox/settings",
        json!({ "integrationLicenses": 0 }),
    )
    .await;
    let (code, lines) = doctor(&org);
    only(
        &lines,
        code,
        "integration-licences",
        "FAIL",
        "Buy more Salesforce Integration licences",
    );
    control(
        &org,
        "/__sandbox/settings",
        json!({ "integrationLicenses": 5 }),
    )
    .await;

    // Assignment expiry off.
    control(
        &org,
        "/__sandbox/settings",
        json!({ "permsetAssignmentExpiration": false }),
    )
    .await;
    let (code, lines) = doctor(&org);
    only(
        &lines,
        code,
        "assignment-expiry",
        "FAIL",
        "User Management Settings",
    );
    control(
        &org,
        "/__sandbox/settings",
        json!({ "permsetAssignmentExpiration": true }),
    )
    .await;

    // A catalog object's default Public Read/Write.
    control(
        &org,
        "/__sandbox/settings",
        json!({ "orgWideDefaults": { "Case": "Edit" } }),
    )
    .await;
    let (code, lines) = doctor(&org);
    only(
        &lines,
        code,
        "org-wide-defaults",
        "FAIL",
        "Sharing Settings > Organization-Wide Defaults, set Case",
    );
    control(
        &org,
        "/__sandbox/settings",
        json!({ "orgWideDefaults": { "Case": "None" } }),
    )
    .await;

    // External Client Apps off: that check fails, the deploys that need them are not run.
    control(
        &org,
        "/__sandbox/settings",
        json!({ "externalClientApps": false }),
    )
    .await;
    let (code, lines) = doctor(&org);
    let all = checks(&lines);
    for (s, i, detail) in &all {
        match i.as_str() {
            "external-client-apps" => {
                assert_eq!(s, "FAIL", "{lines:#?}");
                assert!(detail.contains("External Client App Settings"), "{detail}");
            }
            "secrets-metadata" | "check-deploy" => {
                assert_eq!(s, "warn", "{lines:#?}");
                assert!(detail.contains("not checked"), "{detail}");
            }
            _ => assert_eq!(s, "ok", "{i}: {lines:#?}"),
        }
    }
    assert_eq!(code, 1);
    control(
        &org,
        "/__sandbox/settings",
        json!({ "externalClientApps": true }),
    )
    .await;

    // Secrets through the REST API off: the sealed fallback (a warning, not a failure).
    control(
        &org,
        "/__sandbox/settings",
        json!({ "enableClientSecretInRestApiAccess": false }),
    )
    .await;
    let (code, lines) = doctor(&org);
    only(&lines, code, "secrets-rest", "warn", "sealed");
    // ... and through the Metadata API too: no way to any secret.
    control(
        &org,
        "/__sandbox/settings",
        json!({ "consumerSecretsViaMetadata": false }),
    )
    .await;
    let (code, lines) = doctor(&org);
    let all = checks(&lines);
    let status = |id: &str| {
        all.iter()
            .find(|(_, i, _)| i == id)
            .map(|(s, _, _)| s.clone())
    };
    assert_eq!(
        status("secrets-rest").as_deref(),
        Some("warn"),
        "{lines:#?}"
    );
    assert_eq!(
        status("secrets-metadata").as_deref(),
        Some("FAIL"),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Allow access to OAuth consumer secrets via Metadata API"))
    );
    assert_eq!(
        all.iter().filter(|(s, _, _)| s != "ok").count(),
        2,
        "{lines:#?}"
    );
    assert_eq!(code, 1);
    control(
        &org,
        "/__sandbox/settings",
        json!({ "consumerSecretsViaMetadata": true, "enableClientSecretInRestApiAccess": true }),
    )
    .await;

    // No EventLogFile access (View Event Log Files, and nothing that implies it).
    control(
        &org,
        &provisioner,
        json!({ "ViewEventLogFiles": false, "ViewAllData": false, "ModifyAllData": false }),
    )
    .await;
    let (code, lines) = doctor(&org);
    only(
        &lines,
        code,
        "event-log-files",
        "FAIL",
        "View Event Log Files",
    );
    control(
        &org,
        &provisioner,
        json!({ "ViewEventLogFiles": true, "ViewAllData": true, "ModifyAllData": true }),
    )
    .await;

    // A permission of the service user's taken away: named.
    control(&org, &provisioner, json!({ "AssignPermissionSets": false })).await;
    let (code, lines) = doctor(&org);
    only(
        &lines,
        code,
        "service-user-permissions",
        "FAIL",
        "\"Assign Permission Sets\"",
    );
    control(&org, &provisioner, json!({ "AssignPermissionSets": true })).await;

    // API Access Control on, the portal working only through "Use Any API Client".
    control(
        &org,
        "/__sandbox/settings",
        json!({ "apiAccessControl": true }),
    )
    .await;
    let (code, lines) = doctor(&org);
    only(&lines, code, "api-access-control", "ok", "allow-listed");
    control(&org, &provisioner, json!({ "UseAnyApiClient": true })).await;
    let (code, lines) = doctor(&org);
    only(
        &lines,
        code,
        "api-access-control",
        "FAIL",
        "Use Any API Client",
    );
    control(&org, &provisioner, json!({ "UseAnyApiClient": false })).await;
    control(
        &org,
        "/__sandbox/settings",
        json!({ "apiAccessControl": false }),
    )
    .await;

    // JWT bearer without the consumer secret: the org requires it for staff sign-in.
    let key = org.dir.path().join("portal-app-key.pem");
    let key = key.to_str().unwrap();
    let jwt = [
        ("SALESFORCE_JWT_KEY_FILE", key),
        ("SALESFORCE_USERNAME", org.provisioner.as_str()),
    ];
    let (code, lines) = doctor_with(&org, &jwt);
    assert!(
        checks(&lines).iter().all(|(s, _, _)| s == "ok"),
        "{lines:#?}"
    );
    assert_eq!(
        code, 0,
        "JWT bearer with the secret for sign-in: {lines:#?}"
    );
    let mut without_secret = jwt.to_vec();
    without_secret.push(("SALESFORCE_CLIENT_SECRET", ""));
    let (code, lines) = doctor_with(&org, &without_secret);
    only(
        &lines,
        code,
        "sign-in-secret",
        "FAIL",
        "SALESFORCE_CLIENT_SECRET is not set",
    );

    // A callback URL the portal's app does not list.
    let other = StandaloneOrg::start();
    let (code, lines) = doctor(&other);
    only(&lines, code, "sign-in-callback", "FAIL", CALLBACK);

    // Everything restored: all ok again.
    let (code, lines) = doctor(&org);
    assert!(
        checks(&lines).iter().all(|(s, _, _)| s == "ok"),
        "{lines:#?}"
    );
    assert_eq!(code, 0);
}

/// An org that cannot be reached: the first check fails with what to check, the rest are
/// not run, exit 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_says_when_the_org_cannot_be_reached() {
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("doctor")
        .env_clear()
        .env("DATA_DIR", data.path())
        .env("SALESFORCE_MODE", "org")
        .env("SALESFORCE_URL", "https://127.0.0.1:9")
        .env("SALESFORCE_CLIENT_ID", "3MVGdoctor")
        .env("SALESFORCE_CLIENT_SECRET", "doctor-secret-value")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<String> = stdout.lines().map(str::to_string).collect();
    let all = checks(&lines);
    assert_eq!(all.len(), 15, "{stdout}");
    assert_eq!(all[0].0, "FAIL", "{stdout}");
    assert_eq!(all[0].1, "my-domain");
    assert!(all[0].2.contains("cannot be reached"), "{stdout}");
    assert!(
        all[1..]
            .iter()
            .all(|(s, _, d)| s == "warn" && d.contains("not checked")),
        "{stdout}"
    );
    assert_eq!(output.status.code(), Some(1));
}

/// `/admin/org` runs the same checks for owners: all ok on the embedded sandbox org, and
/// the one taken away fails with its fix; others may not run them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_org_page_shows_the_doctors_checks_to_owners() {
    let app = TestApp::spawn(Db::Sqlite).await.unwrap();
    let owner = browser();
    portal::sign_in(&app, &owner, portal::ALEX).await;
    let (status, body) = call(&app, &owner, "org_checks", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let checks: Vec<Value> = serde_json::from_str(&body).unwrap();
    let ids: Vec<&str> = checks.iter().filter_map(|c| c["id"].as_str()).collect();
    let expected: Vec<&str> = services::doctor::CHECKS.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, expected);
    assert!(checks.iter().all(|c| c["status"] == "Ok"), "{body}");

    // The page itself.
    let page = owner.get(app.at("/admin/org")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Org readiness") && html.contains("Check again"),
        "{html}"
    );
    assert!(
        html.contains("assignment-expiry"),
        "the checks are rendered: {html}"
    );

    // Take a prerequisite away in the embedded org: the page says so.
    let base = app.sandbox_url.clone().unwrap();
    let response = common::sandbox_http()
        .patch(format!("{base}/__sandbox/settings"))
        .json(&json!({ "permsetAssignmentExpiration": false }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let (_, body) = call(&app, &owner, "org_checks", &[]).await;
    let checks: Vec<Value> = serde_json::from_str(&body).unwrap();
    let failed: Vec<&Value> = checks.iter().filter(|c| c["status"] != "Ok").collect();
    assert_eq!(failed.len(), 1, "{body}");
    assert_eq!(failed[0]["id"], "assignment-expiry");
    assert_eq!(failed[0]["status"], "Fail");
    assert!(
        failed[0]["fix"]
            .as_str()
            .unwrap()
            .contains("User Management Settings")
    );

    // Not for approvers who are not owners, nor anonymous visitors.
    let anonymous = browser();
    let (status, _) = call(&app, &anonymous, "org_checks", &[]).await;
    assert!(
        status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN,
        "{status}"
    );
    let blake = browser();
    portal::sign_in(&app, &blake, portal::BLAKE).await;
    let (status, _) = call(&app, &blake, "org_checks", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// `/readyz` reports the org connection: ok while the org answers; "degraded" (still 200)
/// when it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_the_org_connection() {
    let app = TestApp::spawn(Db::Sqlite).await.unwrap();
    let ready: Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["checks"]["salesforce"], "ok", "{ready}");
    assert_eq!(ready["status"], "ready");
    let base = app.sandbox_url.clone().unwrap();
    let response = common::sandbox_http()
        .put(format!("{base}/__sandbox/faults"))
        .json(&json!({ "rules": [{ "path": "/services/data/", "dropRate": 1.0 }] }))
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{}",
        response.text().await.unwrap()
    );
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), StatusCode::OK);
    let ready: Value = response.json().await.unwrap();
    assert_eq!(ready["checks"]["salesforce"], "unreachable", "{ready}");
    assert_eq!(ready["checks"]["database"], "ok");
    assert_eq!(ready["status"], "degraded");
}
