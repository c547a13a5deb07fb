//! Two portal processes on one PostgreSQL database share the provisioning work: 50 grants
//! approved at once all become ready, and the sandbox org's call log shows that no step
//! ran twice (each grant's user, licence, permission set, assignment, shares and app deploy
//! made exactly once). Then all 50 are revoked and the two tear them down, again with no
//! step twice (issue 17, must-show 3).

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::binary::{self, PortalProcess, approve_grants, case_scope, open_database};
use common::sandbox::{StandaloneOrg, first_cases};
use common::{PgDatabase, postgres_available};
use serde_json::{Value, json};

const GRANTS: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_provision_fifty_grants_with_no_step_twice() {
    if !postgres_available("two_instances_provision_fifty_grants_with_no_step_twice").await {
        return;
    }
    let pg = PgDatabase::create().await;
    let org = StandaloneOrg::start();
    let admin = org.admin_client();
    // Enough Salesforce Integration licences for every grant.
    let bought = org
        .http()
        .patch(format!("{}/__sandbox/settings", org.base_url))
        .json(&json!({ "integrationLicenses": GRANTS + 5 }))
        .send()
        .await
        .unwrap();
    assert!(bought.status().is_success());
    let db = open_database(&pg.url).await;
    let cases: Vec<String> = first_cases(&admin, 2)
        .await
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    let companies: Vec<String> = (0..GRANTS).map(|i| format!("Vendor {i}")).collect();
    let grants = approve_grants(&db, &org, &companies, &case_scope(cases.clone()), "").await;
    let since = binary::call_log(&org)
        .await
        .last()
        .and_then(|c| c["seq"].as_u64())
        .unwrap_or(0);

    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let a = PortalProcess::start(&org, &pg.url, dir_a.path(), 2);
    let b = PortalProcess::start(&org, &pg.url, dir_b.path(), 2);
    let started = std::time::Instant::now();
    binary::wait_for(
        Duration::from_secs(300),
        "every grant to finish",
        || async {
            let open: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM grants WHERE state IN ('approved', 'provisioning')",
            )
            .fetch_one(db.pool())
            .await
            .unwrap();
            open == 0
        },
    )
    .await;
    eprintln!(
        "{GRANTS} grants provisioned by two instances in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    a.kill9();
    b.kill9();

    let states: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT id, state, attention FROM grants")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(states.len(), grants.len());
    for (id, state, attention) in &states {
        assert!(grants.contains(id));
        assert_eq!(state, "ready", "grant {id}: {attention:?}");
    }
    // Both instances did some of the work.
    let workers = workers_of(&db, "provisioning.step_started").await;
    assert!(workers.len() >= 2, "the work was shared: {workers:?}");

    let (calls, made) = effects_since(&org, since).await;
    // Two permission sets per grant, each made and assigned once: its permissions, and the
    // licence-less one that pre-authorises its app (issue 14, item 3).
    for (kind, per_grant) in [
        ("create User", 1),
        ("create PermissionSetLicenseAssign", 1),
        ("create PermissionSet", 2),
        ("create PermissionSetAssignment", 2),
    ] {
        assert_eq!(
            made.get(kind).copied().unwrap_or(0),
            GRANTS * per_grant,
            "{kind}: once per grant (and set), never twice: {made:?}"
        );
    }
    assert_eq!(
        made.get("create CaseShare").copied().unwrap_or(0),
        GRANTS * cases.len(),
        "each share made once: {made:?}"
    );
    let deploys = calls
        .iter()
        .filter(|c| {
            c["method"] == "POST"
                && c["path"]
                    .as_str()
                    .unwrap_or("")
                    .contains("/metadata/deployRequest")
                && c["status"].as_u64().is_some_and(|s| s < 300)
        })
        .count();
    assert_eq!(deploys, GRANTS, "one app deploy per grant");
    let attempts: i64 =
        sqlx::query_scalar("SELECT CAST(SUM(attempts) AS BIGINT) FROM provisioning_steps")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(
        attempts,
        (GRANTS * services::provisioning::Step::ALL.len()) as i64,
        "every step ran exactly once"
    );

    // All 50 revoked at once: the two instances tear them down, no step twice.
    let actor = services::audit::Actor {
        name: "alice@acme.example".into(),
        ip: "127.0.0.1".into(),
        user_agent: "test".into(),
    };
    for grant in &grants {
        services::provisioning::revoke(
            &db,
            &services::Mailer::outbox(),
            grant,
            &actor,
            "The project is over",
            &services::clock::SystemClock,
        )
        .await
        .unwrap();
    }
    let since = binary::call_log(&org)
        .await
        .last()
        .and_then(|c| c["seq"].as_u64())
        .unwrap_or(0);
    let a = PortalProcess::start(&org, &pg.url, dir_a.path(), 2);
    let b = PortalProcess::start(&org, &pg.url, dir_b.path(), 2);
    let started = std::time::Instant::now();
    binary::wait_for(
        Duration::from_secs(300),
        "every grant to be torn down",
        || async {
            let open: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM grants WHERE state = 'revoking'")
                    .fetch_one(db.pool())
                    .await
                    .unwrap();
            open == 0
        },
    )
    .await;
    eprintln!(
        "{GRANTS} grants torn down by two instances in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    a.kill9();
    b.kill9();
    let states: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT id, state, attention FROM grants")
            .fetch_all(db.pool())
            .await
            .unwrap();
    for (id, state, attention) in &states {
        assert_eq!(state, "revoked", "grant {id}: {attention:?}");
    }
    let workers = workers_of(&db, "teardown.step_started").await;
    assert!(workers.len() >= 2, "the teardown was shared: {workers:?}");
    let (calls, removed) = effects_since(&org, since).await;
    for (kind, per_grant) in [
        ("delete PermissionSetLicenseAssign", 1),
        ("delete PermissionSet", 2),
        ("delete PermissionSetAssignment", 2),
        ("delete CaseShare", cases.len()),
    ] {
        assert_eq!(
            removed.get(kind).copied().unwrap_or(0),
            GRANTS * per_grant,
            "{kind}: once per grant (and set), never twice: {removed:?}"
        );
    }
    let destructive = calls
        .iter()
        .filter(|c| {
            c["method"] == "POST"
                && c["path"]
                    .as_str()
                    .unwrap_or("")
                    .contains("/metadata/deployRequest")
                && c["status"].as_u64().is_some_and(|s| s < 300)
        })
        .count();
    assert_eq!(destructive, GRANTS, "one destructive deploy per grant");
    let attempts: i64 =
        sqlx::query_scalar("SELECT CAST(SUM(attempts) AS BIGINT) FROM provisioning_steps")
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(
        attempts,
        (GRANTS * services::provisioning::Step::ALL.len()) as i64,
        "every teardown step ran exactly once"
    );
    db.close().await;
}

/// The workers (instance ids) that wrote audit `action` (a step started).
async fn workers_of(db: &services::Database, action: &str) -> std::collections::BTreeSet<String> {
    let details: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT details FROM audit_log WHERE action = $1")
            .bind(action)
            .fetch_all(db.pool())
            .await
            .unwrap();
    details
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|d| d["worker"].as_str().map(str::to_string))
        .collect()
}

/// The org's calls after `since` in its call log, and how many of each effect they had
/// ("create User", "delete PermissionSet", ...).
async fn effects_since(org: &StandaloneOrg, since: u64) -> (Vec<Value>, BTreeMap<String, usize>) {
    let calls: Vec<Value> = binary::call_log(org)
        .await
        .into_iter()
        .filter(|c| c["seq"].as_u64().unwrap_or(0) > since)
        .collect();
    let mut effects: BTreeMap<String, usize> = BTreeMap::new();
    for effect in calls
        .iter()
        .flat_map(|c| c["effects"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e.as_str().map(str::to_string))
    {
        let kind = effect
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        *effects.entry(kind).or_default() += 1;
    }
    (calls, effects)
}
