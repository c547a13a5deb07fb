//! Drift detection (issue 18, must-show 1), on SQLite and PostgreSQL against the in-process
//! sandbox org: each change an admin could make by hand in the org (a field permission, a
//! second permission set, a share, a group membership) raises exactly one
//! `grant.drift_detected` with the right expected/observed line, one mail and one signed
//! webhook; the next run raises nothing new; with re-apply the proof passes again and the
//! extra access is gone, as the contractor sees it.

use crate::common;

use common::*;
use salesforce::{Cond, Soql};
use serde_json::{Value, json};
use services::usage::webhook::Webhook;
use shared::assurance::DriftPolicy;
use shared::grant::GrantId;
use shared::scope::VisibilityRule;

const SECRET: &str = "a-webhook-signing-secret-for-tests";

/// A portal with the sandbox org and a webhook, and one ready grant whose chosen record is
/// the org's first case; the grant id and its integration user.
async fn ready_grant(t: &mut TestPortal, company: &str) -> (String, String) {
    t.portal = t.portal.clone().with_webhook(
        Webhook::new(
            "http://127.0.0.1:9/hook",
            secrecy::SecretString::from(SECRET),
        )
        .unwrap(),
    );
    // An approver who has signed in: the drift mail goes to the approvers the portal knows.
    let (alice, actor) = approver("alice@acme.example");
    let roles = shared::auth::Roles {
        approver: true,
        security_reviewer: false,
        owner: false,
    };
    t.record_sign_in(&alice, &roles, &actor).await.unwrap();
    let cases = first_case_ids(t, 1).await;
    let grant = approved_grant(
        t,
        company,
        case_scope_visible(VisibilityRule::Shared, cases, None),
    )
    .await;
    worker(t).run_until_idle().await.unwrap();
    assert_eq!(grant_state(t, &grant).await.0, "ready");
    let user = output_of(t, &grant, "user").await["user_id"]
        .as_str()
        .unwrap()
        .to_string();
    (grant, user)
}

async fn drift_entries(t: &TestPortal, grant: &str) -> usize {
    audit_actions(t, grant)
        .await
        .iter()
        .filter(|a| *a == "grant.drift_detected")
        .count()
}

async fn drift_webhooks(t: &TestPortal) -> Vec<Value> {
    let bodies: Vec<String> = sqlx::query_scalar("SELECT body FROM webhook_outbox")
        .fetch_all(t.db.db.pool())
        .await
        .unwrap();
    bodies
        .iter()
        .map(|b| serde_json::from_str::<Value>(b).unwrap())
        .filter(|b| b["event"] == "grant.drift_detected")
        .collect()
}

async fn drift_mails(t: &TestPortal) -> usize {
    services::mail::outbox(&t.db.db, None, 200)
        .await
        .unwrap()
        .iter()
        .filter(|m| m.subject.contains("drifted from what was approved"))
        .count()
}

/// The drift table of the grant's newest `grant.drift_detected`.
async fn drift_table(t: &TestPortal, grant: &str) -> Vec<Value> {
    audit_details(t, "grant.drift_detected", grant).await["drift"]
        .as_array()
        .cloned()
        .unwrap()
}

fn line<'a>(table: &'a [Value], check: &str) -> &'a Value {
    table
        .iter()
        .find(|l| l["check"].as_str().unwrap().contains(check))
        .unwrap_or_else(|| panic!("no line '{check}' in {table:#?}"))
}

async fn one(t: &TestPortal, object: &str, cond: Cond) -> String {
    records(t, object, &["Id"], cond).await[0]["Id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The hand-made changes of the must-show.
#[derive(Clone, Copy, Debug)]
enum Change {
    FieldPermission,
    SecondPermissionSet,
    Share,
    GroupMember,
    PermittedUsers,
}

/// Makes `change` in the org as an admin would (REST, the portal's admin connection).
async fn make(t: &TestPortal, grant: &str, company: &str, user: &str, change: Change) {
    let sf = t.salesforce();
    let names = services::provisioning::Names::for_grant(grant, company);
    match change {
        Change::FieldPermission => {
            let ps = one(
                t,
                "PermissionSet",
                Cond::eq("Name", names.permission_set.as_str()),
            )
            .await;
            sf.create(
                "FieldPermissions",
                &json!({ "ParentId": ps, "SobjectType": "Case", "Field": "Case.Description",
                         "PermissionsRead": true, "PermissionsEdit": false }),
            )
            .await
            .unwrap();
        }
        Change::SecondPermissionSet => {
            let ps = sf
                .create(
                    "PermissionSet",
                    &json!({ "Name": "Handy_Extra", "Label": "Handy extra" }),
                )
                .await
                .unwrap();
            sf.create(
                "PermissionSetAssignment",
                &json!({ "AssigneeId": user, "PermissionSetId": ps.as_str() }),
            )
            .await
            .unwrap();
        }
        Change::Share => {
            let other = first_case_ids(t, 2).await[1].clone();
            sf.create(
                "CaseShare",
                &json!({ "CaseId": other, "UserOrGroupId": user, "CaseAccessLevel": "Read" }),
            )
            .await
            .unwrap();
        }
        Change::GroupMember => {
            let group = one(t, "Group", Cond::eq("DeveloperName", "Tier_2_Support")).await;
            sf.create(
                "GroupMember",
                &json!({ "GroupId": group, "UserOrGroupId": user }),
            )
            .await
            .unwrap();
        }
        Change::PermittedUsers => {
            // An admin opens the app to all self-authorised users (a Metadata deploy of
            // its policies, as Setup's "Edit Policies" saves them).
            use salesforce::metadata::{
                DeployOptions, ExternalClientAppSpec as Eca, PackageBuilder,
            };
            let app = services::eca::GrantApp::load(&t.db.db, grant, t.app_contact_email())
                .await
                .unwrap()
                .unwrap();
            let spec = app.spec(false).unwrap();
            let name = spec.name.as_str();
            let mut package = PackageBuilder::new(sf.api_version());
            package
                .add(
                    Eca::ECA_TYPE,
                    "externalClientApps",
                    "eca",
                    name,
                    spec.eca_xml().unwrap(),
                )
                .add(
                    Eca::OAUTH_SETTINGS_TYPE,
                    "extlClntAppOauthSettings",
                    "ecaOauth",
                    &Eca::member(name, Eca::OAUTH_SETTINGS_TYPE),
                    spec.oauth_settings_xml().unwrap(),
                )
                .add(
                    Eca::GLOBAL_OAUTH_TYPE,
                    "extlClntAppGlobalOauthSets",
                    "ecaGlblOauth",
                    &Eca::member(name, Eca::GLOBAL_OAUTH_TYPE),
                    spec.global_oauth_xml().unwrap(),
                )
                .add(
                    Eca::OAUTH_POLICIES_TYPE,
                    "extlClntAppOauthPolicies",
                    "ecaOauthPlcy",
                    &Eca::member(name, Eca::OAUTH_POLICIES_TYPE),
                    spec.oauth_policies_xml()
                        .unwrap()
                        .replace("AdminApprovedPreAuthorized", "AllSelfAuthorized"),
                );
            let id = sf
                .deploy(&package.build().unwrap(), &DeployOptions::default())
                .await
                .unwrap();
            let done = sf
                .wait_for_deploy(
                    &id,
                    std::time::Duration::from_millis(100),
                    std::time::Duration::from_secs(30),
                )
                .await
                .unwrap();
            assert!(done.succeeded(), "{done:?}");
        }
    }
}

/// The app's permitted users policy as the org has it (readMetadata, as the admin).
async fn permitted_users(t: &TestPortal, grant: &str, company: &str) -> String {
    let names = services::provisioning::Names::for_grant(grant, company);
    let member = salesforce::metadata::ExternalClientAppSpec::member(
        &names.app,
        salesforce::metadata::ExternalClientAppSpec::OAUTH_POLICIES_TYPE,
    );
    let read = t
        .salesforce()
        .read_metadata("ExtlClntAppOauthConfigurablePolicies", &[member.as_str()])
        .await
        .unwrap();
    read[0]["permittedUsersPolicyType"].clone()
}

/// The line a change must show: (check, expected contains, observed contains).
fn expected_line(change: Change, user_cases: &[String]) -> (&'static str, String, String) {
    match change {
        Change::FieldPermission => (
            "Field permissions",
            "Case.Priority (read), Case.Subject (edit)".into(),
            "Case.Description (read)".into(),
        ),
        Change::SecondPermissionSet => (
            "Permission sets assigned",
            "Portcullis".into(),
            "Handy_Extra".into(),
        ),
        Change::Share => (
            "Case: records shared",
            user_cases[0].clone(),
            user_cases[1].clone(),
        ),
        Change::GroupMember => ("Public groups", "none".into(), "00G".into()),
        Change::PermittedUsers => (
            "App: permitted users",
            "AdminApprovedPreAuthorized".into(),
            "AllSelfAuthorized".into(),
        ),
    }
}

/// Whether the extra access is gone, as the contractor (and, for what the contractor cannot
/// see itself, as the admin).
async fn extra_gone(
    t: &TestPortal,
    grant: &str,
    company: &str,
    user: &str,
    change: Change,
) -> bool {
    if let Change::PermittedUsers = change {
        return permitted_users(t, grant, company).await == "AdminApprovedPreAuthorized";
    }
    let contractor = contractor_client(t, grant).await;
    match change {
        Change::FieldPermission => {
            let soql = Soql::select(&["Id", "Description"])
                .from("Case")
                .limit(1)
                .build()
                .unwrap();
            contractor.query_all::<Value>(&soql).await.is_err()
        }
        Change::SecondPermissionSet => {
            records(
                t,
                "PermissionSetAssignment",
                &["Id", "PermissionSetId"],
                Cond::eq("AssigneeId", user),
            )
            .await
            .len()
                == 2
        }
        Change::Share => {
            let other = first_case_ids(t, 2).await[1].clone();
            let soql = Soql::select(&["Id"])
                .from("Case")
                .filter(Cond::eq("Id", other.as_str()))
                .build()
                .unwrap();
            contractor
                .query_all::<Value>(&soql)
                .await
                .unwrap()
                .is_empty()
        }
        Change::GroupMember => records(t, "GroupMember", &["Id"], Cond::eq("UserOrGroupId", user))
            .await
            .is_empty(),
        Change::PermittedUsers => unreachable!("answered above"),
    }
}

async fn drift_is_raised_once_and_reapplied(engine: test_kit::Engine, change: Change) {
    let Some(mut t) = portal_with_org(engine).await else {
        return;
    };
    let company = format!("Drift {change:?}");
    let (grant, user) = ready_grant(&mut t, &company).await;
    let (_, admin) = approver("alice@acme.example");
    t.set_drift_policy(&GrantId::new(grant.clone()), DriftPolicy::Reapply, &admin)
        .await
        .unwrap();

    // As approved: nothing drifts.
    let clean = t.reprove_all().await.unwrap();
    assert_eq!(
        (clean.proved, clean.drifted, clean.failed),
        (1, 0, 0),
        "{clean:?}: {:#?}",
        services::assurance::last_proof(&t.db.db, &grant)
            .await
            .unwrap()
    );
    let mails_before = drift_mails(&t).await;

    make(&t, &grant, &company, &user, change).await;
    let run = t.reprove_all().await.unwrap();
    assert_eq!((run.drifted, run.raised), (1, 1), "{run:?}");
    assert_eq!(drift_entries(&t, &grant).await, 1);
    let table = drift_table(&t, &grant).await;
    let (check, expected, observed) = expected_line(change, &first_case_ids(&t, 2).await);
    let row = line(&table, check);
    assert!(
        row["expected"].as_str().unwrap().contains(&expected),
        "{row}"
    );
    assert!(
        row["observed"].as_str().unwrap().contains(&observed),
        "{row}"
    );
    assert_eq!(
        drift_mails(&t).await,
        mails_before + 1,
        "one mail (one approver)"
    );
    let hooks = drift_webhooks(&t).await;
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0]["payload"]["grant_id"], grant.as_str());

    // Re-applied: the proof passes again and the access is gone.
    assert!(
        audit_actions(&t, &grant)
            .await
            .contains(&"grant.reapplied".to_string())
    );
    let last = services::assurance::last_proof(&t.db.db, &grant)
        .await
        .unwrap()
        .unwrap();
    assert!(last.passed, "{last:#?}");
    assert!(
        extra_gone(&t, &grant, &company, &user, change).await,
        "{change:?} still there"
    );

    // The next run: nothing new.
    let again = t.reprove_all().await.unwrap();
    assert_eq!((again.drifted, again.raised), (0, 0), "{again:?}");
    assert_eq!(drift_entries(&t, &grant).await, 1);
    assert_eq!(drift_webhooks(&t).await.len(), 1);
    assert_eq!(drift_mails(&t).await, mails_before + 1);
    assert_audit_intact(&t).await;
}

test_kit::both_databases!(a_hand_added_field_permission_is_drift, |engine| {
    drift_is_raised_once_and_reapplied(engine, Change::FieldPermission).await;
});

test_kit::both_databases!(a_second_permission_set_is_drift, |engine| {
    drift_is_raised_once_and_reapplied(engine, Change::SecondPermissionSet).await;
});

test_kit::both_databases!(a_hand_added_share_is_drift, |engine| {
    drift_is_raised_once_and_reapplied(engine, Change::Share).await;
});

test_kit::both_databases!(a_hand_added_group_membership_is_drift, |engine| {
    drift_is_raised_once_and_reapplied(engine, Change::GroupMember).await;
});

test_kit::both_databases!(an_app_opened_to_all_users_is_drift, |engine| {
    drift_is_raised_once_and_reapplied(engine, Change::PermittedUsers).await;
});

// Alert only: the same drift is raised once however many runs find it; a changed drift
// is raised again; drift that cleared and comes back is raised again. Freeze suspends.
test_kit::both_databases!(
    the_same_drift_is_raised_once_and_a_new_one_again,
    |engine| {
        let Some(mut t) = portal_with_org(engine).await else {
            return;
        };
        let company = "Persistent";
        let (grant, user) = ready_grant(&mut t, company).await;
        make(&t, &grant, company, &user, Change::FieldPermission).await;
        for _ in 0..2 {
            t.reprove_all().await.unwrap();
        }
        assert_eq!(drift_entries(&t, &grant).await, 1);
        assert_eq!(drift_webhooks(&t).await.len(), 1);
        let last = services::assurance::last_proof(&t.db.db, &grant)
            .await
            .unwrap()
            .unwrap();
        assert!(!last.passed && !last.drift.is_empty());
        assert_eq!(
            grant_state(&t, &grant).await.0,
            "ready",
            "alert changes nothing"
        );

        // A second change: a new drift, raised again; freeze suspends the grant.
        let (_, admin) = approver("alice@acme.example");
        t.set_drift_policy(&GrantId::new(grant.clone()), DriftPolicy::Freeze, &admin)
            .await
            .unwrap();
        make(&t, &grant, company, &user, Change::Share).await;
        let run = t.reprove_all().await.unwrap();
        assert_eq!(run.raised, 1, "{run:?}");
        assert_eq!(drift_entries(&t, &grant).await, 2);
        assert_eq!(grant_state(&t, &grant).await.0, "suspended");
        let actions = audit_actions(&t, &grant).await;
        assert!(actions.contains(&"grant.frozen".to_string()), "{actions:?}");
        assert!(actions.contains(&"grant.drift_policy_changed".to_string()));
        assert!(!credential_works(&t, &grant).await, "frozen: no token");
        assert_audit_intact(&t).await;
    }
);

// A wave: three grants re-proved together (their live configuration and app policies read
// in the same queries). The share made by hand on the middle one is its drift alone; the
// others pass; and each grant costs at most five Salesforce calls (its share of the wave's
// reads, the secret's read and the proof as the contractor).
test_kit::both_databases!(a_wave_attributes_drift_to_its_own_grant, |engine| {
    let Some(mut t) = portal_with_org(engine).await else {
        return;
    };
    let (first, _) = ready_grant(&mut t, "Wave One").await;
    let (second, user) = ready_grant(&mut t, "Wave Two").await;
    let (third, _) = ready_grant(&mut t, "Wave Three").await;
    make(&t, &second, "Wave Two", &user, Change::Share).await;

    let run = t.reprove_all().await.unwrap();
    assert_eq!(
        (run.proved, run.passed, run.drifted, run.raised, run.failed),
        (3, 2, 1, 1, 0),
        "{run:?}"
    );
    for grant in [&first, &third] {
        let last = services::assurance::last_proof(&t.db.db, grant)
            .await
            .unwrap()
            .unwrap();
        assert!(last.passed, "{last:#?}");
        assert_eq!(drift_entries(&t, grant).await, 0);
    }
    assert_eq!(drift_entries(&t, &second).await, 1);
    let table = drift_table(&t, &second).await;
    let (check, expected, observed) = expected_line(Change::Share, &first_case_ids(&t, 2).await);
    let row = line(&table, check);
    assert!(
        row["expected"].as_str().unwrap().contains(&expected),
        "{row}"
    );
    assert!(
        row["observed"].as_str().unwrap().contains(&observed),
        "{row}"
    );
    for grant in [&first, &second, &third] {
        let calls = services::assurance::last_proof(&t.db.db, grant)
            .await
            .unwrap()
            .unwrap()
            .calls
            .unwrap();
        assert!(calls <= 5, "{grant}: {calls} calls");
    }
    assert_audit_intact(&t).await;
});
