//! Crash safety of provisioning, with the real binary: SIGKILLed at every step boundary,
//! and also while each step's Salesforce call has acted but its answer has not arrived (so
//! the step cannot have been recorded), the portal restarts and the run completes, with no
//! duplicate and no orphan in the org. The org is a standalone sandbox org process, which
//! outlives every kill.

use crate::common;

use std::time::Duration;

use common::binary::{self, PortalProcess, approve_grants, case_scope, open_database};
use common::sandbox::{StandaloneOrg, first_cases};
use salesforce::{Cond, Soql};
use serde_json::{Value, json};
use services::provisioning::{Names, Step};

async fn step_state(db: &services::Database, grant: &str, step: Step) -> String {
    sqlx::query_scalar("SELECT state FROM provisioning_steps WHERE grant_id = $1 AND step = $2")
        .bind(grant)
        .bind(step.as_str())
        .fetch_one(db.pool())
        .await
        .expect("the step")
}

async fn grant_state(db: &services::Database, grant: &str) -> String {
    sqlx::query_scalar("SELECT state FROM grants WHERE id = $1")
        .bind(grant)
        .fetch_one(db.pool())
        .await
        .expect("the grant")
}

async fn count(client: &salesforce::Client, object: &str, cond: Cond) -> usize {
    client
        .query_all::<Value>(
            &Soql::select(&["Id"])
                .from(object)
                .filter(cond)
                .build()
                .unwrap(),
        )
        .await
        .expect("count query")
        .len()
}

/// A standalone sandbox org, a SQLite database in a temporary directory, and one grant
/// approved there (not yet provisioned) for `company`, sharing the org's first two cases.
struct Approved {
    org: StandaloneOrg,
    admin: salesforce::Client,
    dir: tempfile::TempDir,
    url: String,
    db: services::Database,
    cases: Vec<String>,
    company: String,
    grant: String,
}

async fn one_approved_grant(company: &str, ip_ranges: &str) -> Approved {
    let org = StandaloneOrg::start();
    let admin = org.admin_client();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/portcullis.db?mode=rwc", dir.path().display());
    let db = open_database(&url).await;
    let cases: Vec<String> = first_cases(&admin, 2)
        .await
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    let company = company.to_string();
    let grant = approve_grants(
        &db,
        &org,
        std::slice::from_ref(&company),
        &case_scope(cases.clone()),
        ip_ranges,
    )
    .await
    .remove(0);
    Approved {
        org,
        admin,
        dir,
        url,
        db,
        cases,
        company,
        grant,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_every_step_boundary_the_run_completes_without_duplicates() {
    // The app trusts the test host's range, applied (a deploy) after the proof.
    let Approved {
        org,
        admin,
        dir,
        url,
        db,
        cases,
        company,
        grant,
    } = one_approved_grant("Crashproof Ltd", "127.0.0.0/8").await;
    // Every Salesforce call is handled at once and its answer held for 400 ms: a kill in
    // that window comes after Salesforce acted and before the portal heard of it.
    binary::set_faults(
        &org,
        json!([{ "path": "/services/*", "responseDelayMs": 400 }]),
    )
    .await;

    let mut kills = 0;
    for &step in Step::ALL {
        // Killed mid-step: its first call acted in the org, the answer is still held.
        let portal = PortalProcess::start(&org, &url, dir.path(), 1);
        binary::wait_for(Duration::from_secs(60), "the step to start", || async {
            step_state(&db, &grant, step).await != "pending"
        })
        .await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        // The licence and the assignment are made by the composites of the steps before
        // them, so those two steps only record (no call, nothing to hold up).
        if !matches!(step, Step::Licence | Step::Assignment) {
            assert_ne!(
                step_state(&db, &grant, step).await,
                "succeeded",
                "{step:?} was recorded within 150 ms, though every answer takes 400"
            );
        }
        portal.kill9();
        kills += 1;

        // Killed at the boundary: just after the step was recorded.
        let portal = PortalProcess::start(&org, &url, dir.path(), 1);
        binary::wait_for(Duration::from_secs(60), "the step to succeed", || async {
            step_state(&db, &grant, step).await == "succeeded"
        })
        .await;
        portal.kill9();
        kills += 1;
    }
    assert_eq!(kills, 2 * Step::ALL.len());
    let portal = PortalProcess::start(&org, &url, dir.path(), 1);
    binary::wait_for(Duration::from_secs(60), "the grant to be ready", || async {
        grant_state(&db, &grant).await != "provisioning"
    })
    .await;
    assert_eq!(grant_state(&db, &grant).await, "ready");
    portal.kill9();
    binary::set_faults(&org, json!([])).await;

    // Exactly one of everything, and nothing else made by Portcullis.
    let names = Names::for_grant(&grant, &company);
    let users: Vec<Value> = admin
        .query_all(
            &Soql::select(&["Id"])
                .from("User")
                .filter(Cond::like_contains(
                    "Username",
                    "@integrations.portcullis.invalid",
                ))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(users.len(), 1, "one integration user: {users:?}");
    let user = users[0]["Id"].as_str().unwrap().to_string();
    assert_eq!(
        count(
            &admin,
            "PermissionSetLicenseAssign",
            Cond::eq("AssigneeId", user.as_str())
        )
        .await,
        1,
        "one licence assignment"
    );
    let sets: Vec<Value> = admin
        .query_all(
            &Soql::select(&["Id", "Name"])
                .from("PermissionSet")
                .filter(Cond::like_starts_with("Name", "Portcullis_CrashproofLtd_"))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    // Its permissions, and the licence-less set that pre-authorises its app (issue 14,
    // item 3): one of each.
    let (app_sets, sets): (Vec<Value>, Vec<Value>) = sets
        .into_iter()
        .partition(|s| s["Name"].as_str().is_some_and(|n| n.ends_with("_App")));
    assert_eq!(app_sets.len(), 1, "one app permission set: {app_sets:?}");
    assert_eq!(sets.len(), 1, "one permission set: {sets:?}");
    assert_eq!(sets[0]["Name"], names.permission_set.as_str());
    let ps = sets[0]["Id"].as_str().unwrap();
    assert_eq!(
        count(&admin, "ObjectPermissions", Cond::eq("ParentId", ps)).await,
        1
    );
    assert_eq!(
        count(&admin, "FieldPermissions", Cond::eq("ParentId", ps)).await,
        2
    );
    assert_eq!(
        count(
            &admin,
            "PermissionSetAssignment",
            Cond::eq("PermissionSetId", ps)
        )
        .await,
        1,
        "one assignment"
    );
    assert_eq!(
        count(
            &admin,
            "CaseShare",
            Cond::and([
                Cond::eq("UserOrGroupId", user.as_str()),
                Cond::eq("RowCause", "Manual")
            ])
        )
        .await,
        cases.len(),
        "one share per chosen case"
    );
    let apps: Value = org
        .http()
        .get(format!("{}/__sandbox/apps", org.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ours: Vec<&Value> = apps["apps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            a["developerName"]
                .as_str()
                .unwrap_or("")
                .starts_with("Portcullis_App_")
        })
        .collect();
    assert_eq!(ours.len(), 1, "one app: {ours:?}");
    assert_eq!(ours[0]["developerName"], names.app.as_str());
    let steps: Vec<(String, String)> =
        sqlx::query_as("SELECT step, state FROM provisioning_steps WHERE grant_id = $1")
            .bind(&grant)
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert!(steps.iter().all(|(_, s)| s == "succeeded"), "{steps:?}");
    let attempts: i64 = sqlx::query_scalar(
        "SELECT CAST(SUM(attempts) AS BIGINT) FROM provisioning_steps WHERE grant_id = $1",
    )
    .bind(&grant)
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert!(
        attempts > Step::ALL.len() as i64,
        "the killed steps ran again: {attempts} attempts"
    );
}

/// The teardown (issue 17, must-show 3): a provisioned grant is revoked, and the portal is
/// SIGKILLed while each teardown step's call has acted but its answer is held, and again
/// just after each step is recorded; it completes with nothing left behind in the org and
/// no deletion made twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teardown_killed_at_every_step_boundary_completes_once() {
    let Approved {
        org,
        admin,
        dir,
        url,
        db,
        cases,
        company,
        grant,
    } = one_approved_grant("Teardown Ltd", "").await;
    let portal = PortalProcess::start(&org, &url, dir.path(), 1);
    binary::wait_for(Duration::from_secs(90), "the grant to be ready", || async {
        grant_state(&db, &grant).await == "ready"
    })
    .await;
    portal.kill9();
    let deletes_before = deletions(&org).await;

    let revoked = services::provisioning::revoke(
        &db,
        &services::Mailer::outbox(),
        &grant,
        &services::audit::Actor {
            name: "alice@acme.example".into(),
            ip: "127.0.0.1".into(),
            user_agent: "test".into(),
        },
        "Killed on purpose",
        &services::clock::SystemClock,
    )
    .await
    .unwrap();
    assert_eq!(revoked.steps_to_undo, Step::ALL.len() as i64);
    binary::set_faults(
        &org,
        json!([{ "path": "/services/*", "responseDelayMs": 400 }]),
    )
    .await;
    let mut kills = 0;
    for &step in Step::ALL.iter().rev() {
        // Killed mid-step: its first call acted in the org, the answer is still held.
        let portal = PortalProcess::start(&org, &url, dir.path(), 1);
        binary::wait_for(Duration::from_secs(60), "the step to start", || async {
            step_state(&db, &grant, step).await != "succeeded"
        })
        .await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        // These undo nothing of their own (the app's undo deletes what they recorded), so
        // they make no call and are recorded at once.
        if !matches!(step, Step::Proof | Step::Consumer | Step::AppDeployed) {
            assert_ne!(
                step_state(&db, &grant, step).await,
                "undone",
                "{step:?} was recorded within 150 ms, though every answer takes 400"
            );
        }
        portal.kill9();
        kills += 1;

        // Killed at the boundary: just after the step was recorded.
        let portal = PortalProcess::start(&org, &url, dir.path(), 1);
        binary::wait_for(Duration::from_secs(60), "the step to be undone", || async {
            step_state(&db, &grant, step).await == "undone"
        })
        .await;
        portal.kill9();
        kills += 1;
    }
    assert_eq!(kills, 2 * Step::ALL.len());
    assert_eq!(grant_state(&db, &grant).await, "revoked");
    binary::set_faults(&org, json!([])).await;

    // Nothing left: the user inactive, no permission sets, assignments, licence
    // assignment, shares or app.
    let names = Names::for_grant(&grant, &company);
    let users: Vec<Value> = admin
        .query_all(
            &Soql::select(&["Id", "IsActive"])
                .from("User")
                .filter(Cond::eq("Username", names.username.as_str()))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["IsActive"], false);
    let user = users[0]["Id"].as_str().unwrap().to_string();
    for (object, cond) in [
        (
            "PermissionSet",
            Cond::like_starts_with("Name", "Portcullis_TeardownLtd_"),
        ),
        (
            "PermissionSetAssignment",
            Cond::eq("AssigneeId", user.as_str()),
        ),
        (
            "PermissionSetLicenseAssign",
            Cond::eq("AssigneeId", user.as_str()),
        ),
        ("CaseShare", Cond::eq("UserOrGroupId", user.as_str())),
    ] {
        assert_eq!(count(&admin, object, cond).await, 0, "{object} left behind");
    }
    let apps: Value = org
        .http()
        .get(format!("{}/__sandbox/apps", org.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !apps["apps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["developerName"] == names.app.as_str()),
        "the app is deleted"
    );
    // Each deletion once, though each step ran twice or more.
    let deletes = deletions(&org).await;
    let made = |kind: &str| {
        deletes.iter().filter(|e| e.starts_with(kind)).count()
            - deletes_before
                .iter()
                .filter(|e| e.starts_with(kind))
                .count()
    };
    assert_eq!(made("delete PermissionSet "), 2, "{deletes:?}");
    assert_eq!(made("delete PermissionSetAssignment "), 2, "{deletes:?}");
    assert_eq!(made("delete PermissionSetLicenseAssign "), 1, "{deletes:?}");
    assert_eq!(made("delete CaseShare "), cases.len(), "{deletes:?}");
    let revoked: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'grant.revoked' AND target_id = $1",
    )
    .bind(&grant)
    .fetch_one(db.pool())
    .await
    .unwrap();
    assert_eq!(revoked, 1);
}

/// The deletions the org's call log shows (`delete <object> <id>` effects).
async fn deletions(org: &StandaloneOrg) -> Vec<String> {
    binary::call_log(org)
        .await
        .iter()
        .flat_map(|c| c["effects"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e.as_str().map(str::to_string))
        .filter(|e| e.starts_with("delete "))
        .collect()
}
