//! The end of access (issue 17) against an in-process sandbox org: a revoke tears the grant
//! down (the credential refused first, then everything provisioning made, newest first),
//! an expiry does the same when the portal's and the org's clocks pass the end date, a
//! teardown step run twice does nothing twice, faults are retried, and the freed
//! Integration licence lets a waiting grant through.

use crate::common;

use std::time::Duration;

use common::*;
use salesforce::Cond;
use serde_json::{Value, json};

use services::provisioning::{Names, Ran, RevokeError, Step};
use shared::grant::GrantState;
use shared::scope::VisibilityRule;

async fn user_active(t: &TestPortal, grant: &str, company: &str) -> bool {
    let names = Names::for_grant(grant, company);
    let user = records(
        t,
        "User",
        &["IsActive"],
        Cond::eq("Username", names.username.as_str()),
    )
    .await;
    assert_eq!(user.len(), 1, "Salesforce never deletes a user");
    user[0]["IsActive"] == true
}

/// What the teardown's `step` undid, from its `teardown.step_done` audit entry.
async fn step_evidence(t: &TestPortal, grant: &str, step: &str) -> Value {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'teardown.step_done' AND target_id = $1",
    )
    .bind(grant)
    .fetch_all(t.db.db.pool())
    .await
    .unwrap();
    rows.iter()
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .find(|d| d["step"] == step)
        .map(|d| d["salesforce"].clone())
        .unwrap_or_else(|| panic!("no teardown.step_done for {step}"))
}

fn count_of(actions: &[String], action: &str) -> usize {
    actions.iter().filter(|a| *a == action).count()
}

/// The steps a ready grant's teardown undoes: every provisioning step, newest first.
fn newest_first(grant: &str) -> Vec<Ran> {
    Step::ALL
        .iter()
        .rev()
        .map(|step| Ran::Succeeded {
            grant_id: grant.to_string(),
            step: *step,
        })
        .collect()
}

test_kit::both_databases!(
    revoking_cuts_the_credential_off_first_then_tears_everything_down,
    |engine| {
        let Some(t) = portal_with_org(engine).await else {
            return;
        };
        let cases = first_case_ids(&t, 2).await;
        let before = org_snapshot(&t).await;
        let grant = approved_grant(
            &t,
            "Revokeco",
            case_scope_visible(VisibilityRule::Shared, cases, None),
        )
        .await;
        worker(&t).run_until_idle().await.unwrap();
        assert_eq!(grant_state(&t, &grant).await.0, "ready");
        assert!(credential_works(&t, &grant).await, "the credential works");
        assert_ne!(org_snapshot(&t).await, before);

        let (_, alice) = approver("alice@acme.example");
        // A reason is required, and bounded; the message names the field.
        for reason in ["", "   \n", &"x".repeat(1_001)] {
            match t.revoke_access(&grant, &alice, reason).await {
                Err(RevokeError::Reason(message)) => {
                    assert!(message.starts_with("Reason for revoking"), "{message}")
                }
                other => panic!("expected a reason error, got {other:?}"),
            }
        }
        assert!(matches!(
            t.revoke_access("no-such-grant", &alice, "why").await,
            Err(RevokeError::NotFound(_))
        ));
        assert_eq!(grant_state(&t, &grant).await.0, "ready", "nothing changed");

        let outcome = t
            .revoke_access(&grant, &alice, "  The contract ended early.  ")
            .await
            .unwrap();
        assert_eq!(outcome.state, GrantState::Revoking);
        assert_eq!(outcome.steps_to_undo, Step::ALL.len() as i64);
        assert_eq!(grant_state(&t, &grant).await.0, "revoking");
        let end = t.access_end(&grant).await.unwrap().unwrap();
        assert_eq!(end.kind, "revoked");
        assert_eq!(end.reason.as_deref(), Some("The contract ended early."));
        assert_eq!(end.by.as_deref(), Some("alice@acme.example"));
        assert_eq!(end.ended_at, None);
        // The contractor is told, with the reason (and no secret).
        let mails = services::mail::outbox(&t.db.db, Some("ops@vendor.example"), 10)
            .await
            .unwrap();
        let mail = mails
            .iter()
            .find(|m| m.subject.contains("revoked"))
            .expect("a mail saying the access was revoked");
        assert!(
            mail.body.contains("The contract ended early."),
            "{}",
            mail.body
        );
        assert!(!mail.body.contains(&*contractor_secret(&t, &grant).await));
        let revoked = audit_details(&t, "grant.revoke_requested", &grant).await;
        assert_eq!(revoked["reason"], "The contract ended early.");
        // Revoking twice is refused while the first runs.
        assert!(matches!(
            t.revoke_access(&grant, &alice, "again").await,
            Err(RevokeError::NotRevocable(GrantState::Revoking))
        ));

        // The first step cuts the credential off: it no longer works, though nothing else
        // is undone yet.
        let w = worker(&t);
        assert_eq!(
            w.run_once().await.unwrap(),
            Ran::Succeeded {
                grant_id: grant.clone(),
                step: Step::Restrict
            }
        );
        assert!(!credential_works(&t, &grant).await, "refused at once");
        assert!(
            audit_actions(&t, &grant)
                .await
                .contains(&"grant.credential_dead".to_string())
        );
        let cut = audit_details(&t, "teardown.step_done", &grant).await;
        assert_eq!(cut["salesforce"]["tokens_revoked"], true, "{cut}");
        assert_eq!(cut["salesforce"]["user_frozen"], true, "{cut}");
        assert_eq!(
            cut["salesforce"]["credential_check"]["refused"], true,
            "{cut}"
        );

        let mut ran = vec![Ran::Succeeded {
            grant_id: grant.clone(),
            step: Step::Restrict,
        }];
        ran.extend(w.run_until_idle().await.unwrap());
        assert_eq!(ran, newest_first(&grant), "every step undone, newest first");
        assert_eq!(grant_state(&t, &grant).await.0, "revoked");
        assert!(
            step_states(&t, &grant)
                .await
                .iter()
                .all(|(_, s)| s == "undone")
        );
        assert!(
            t.access_end(&grant)
                .await
                .unwrap()
                .unwrap()
                .ended_at
                .is_some()
        );
        assert!(!user_active(&t, &grant, "Revokeco").await);
        assert_same_org(&before, &org_snapshot(&t).await);
        assert!(!credential_works(&t, &grant).await);

        let actions = audit_actions(&t, &grant).await;
        assert_eq!(count_of(&actions, "teardown.step_done"), Step::ALL.len());
        assert_eq!(count_of(&actions, "grant.revoked"), 1);
        assert_eq!(
            count_of(&actions, "grant.credential_dead"),
            2,
            "after the cut-off and after the teardown: {actions:?}"
        );
        assert_eq!(count_of(&actions, "provisioning.step_undone"), 0);
        // The evidence pack shows the teardown.
        let pack = t.evidence_pack(&grant).await.unwrap().unwrap();
        let teardown = &pack["teardown"];
        assert_eq!(teardown["how"], "revoked");
        assert_eq!(teardown["reason"], "The contract ended early.");
        assert_eq!(
            teardown["steps"].as_array().unwrap().len(),
            Step::ALL.len(),
            "{teardown}"
        );
        assert_eq!(teardown["credential_checks"].as_array().unwrap().len(), 2);
        let shares = teardown["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["details"]["step"] == "visibility")
            .unwrap();
        assert_eq!(
            shares["details"]["salesforce"]["shares_deleted"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        // Done is done.
        assert_eq!(worker(&t).run_once().await.unwrap(), Ran::Idle);
        assert!(matches!(
            t.revoke_access(&grant, &alice, "again").await,
            Err(RevokeError::NotRevocable(GrantState::Revoked))
        ));
        assert_audit_intact(&t).await;
    }
);

test_kit::both_databases!(
    a_grant_past_its_end_date_is_torn_down_and_the_org_is_as_before,
    |engine| {
        let Some(mut t) = portal_with_org(engine).await else {
            return;
        };
        let clock = with_test_clock(&mut t);
        let cases = first_case_ids(&t, 2).await;
        let before = org_snapshot(&t).await;
        let grant = approved_grant(
            &t,
            "Lapsing",
            case_scope_visible(VisibilityRule::Owned, cases.clone(), None),
        )
        .await;
        let w = worker(&t).with_clock(clock.shared());
        w.run_until_idle().await.unwrap();
        assert_eq!(grant_state(&t, &grant).await.0, "ready");
        let end_date: String = sqlx::query_scalar("SELECT end_date FROM grants WHERE id = $1")
            .bind(&grant)
            .fetch_one(t.db.db.pool())
            .await
            .unwrap();
        let ends = services::provisioning::teardown::access_ends_at_ms(&end_date).unwrap();

        // Just before the end (both clocks): nothing expires, and the credential works.
        clock.set(ends - 5_000);
        set_org_clock_to(&t, ends - 5_000).await;
        assert!(t.expire_ended_grants().await.unwrap().is_empty());
        assert!(
            credential_works(&t, &grant).await,
            "works until the end date"
        );

        // Past the end: Salesforce's own ExpirationDate takes the assignment away (the
        // second lock), and the portal's expiry tears the grant down.
        clock.set(ends + 60_000);
        set_org_clock_to(&t, ends + 60_000).await;
        let names = Names::for_grant(&grant, "Lapsing");
        let ps = records(
            &t,
            "PermissionSet",
            &["Id"],
            Cond::eq("Name", names.permission_set.as_str()),
        )
        .await;
        let ps_id = ps[0]["Id"].as_str().unwrap();
        assert!(
            records(
                &t,
                "PermissionSetAssignment",
                &["Id"],
                Cond::eq("PermissionSetId", ps_id)
            )
            .await
            .is_empty(),
            "the org removed the expired assignment"
        );
        assert_eq!(t.expire_ended_grants().await.unwrap(), vec![grant.clone()]);
        assert!(
            t.expire_ended_grants().await.unwrap().is_empty(),
            "started once"
        );
        assert_eq!(grant_state(&t, &grant).await.0, "expiring");
        let ran = w.run_until_idle().await.unwrap();
        assert_eq!(ran, newest_first(&grant));
        assert_eq!(grant_state(&t, &grant).await.0, "expired");
        let end = t.access_end(&grant).await.unwrap().unwrap();
        assert_eq!(end.kind, "expired");
        assert_eq!(end.by.as_deref(), Some("system"));

        // The org is as it was before the grant, but for the deactivated user.
        assert!(!user_active(&t, &grant, "Lapsing").await);
        assert_same_org(&before, &org_snapshot(&t).await);
        assert!(!credential_works(&t, &grant).await);
        let actions = audit_actions(&t, &grant).await;
        for action in [
            "grant.expiry_started",
            "grant.expired",
            "grant.credential_dead",
        ] {
            assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
        }
        // The records went back to their previous owners (the snapshot's case owners too).
        let visibility = step_evidence(&t, &grant, "visibility").await;
        assert_eq!(
            visibility["given_back"].as_array().unwrap().len(),
            2,
            "{visibility}"
        );
        assert_eq!(visibility["not_given_back"], json!([]), "{visibility}");
        assert_audit_intact(&t).await;
    }
);

test_kit::both_databases!(a_teardown_step_run_twice_does_nothing_twice, |engine| {
    let Some(t) = portal_with_org(engine).await else {
        return;
    };
    let cases = first_case_ids(&t, 2).await;
    let before = org_snapshot(&t).await;
    let grant = approved_grant(
        &t,
        "Twice",
        case_scope_visible(VisibilityRule::Owned, cases, None),
    )
    .await;
    worker(&t).run_until_idle().await.unwrap();
    let (_, alice) = approver("alice@acme.example");
    t.revoke_access(&grant, &alice, "Twice over").await.unwrap();
    // Each step is leased and run by a worker that dies before recording it (its lease is
    // gone: what it did in Salesforce is not recorded), then run again by the next worker.
    let crashed = worker(&t);
    let mut undone = Vec::new();
    while let Some(leased) = crashed.lease_next().await.unwrap() {
        assert!(leased.teardown, "{leased:?}");
        sqlx::query(
            "UPDATE provisioning_steps SET lease_owner = 'dead', lease_expires_at = 0 \
             WHERE grant_id = $1 AND step = $2",
        )
        .bind(&grant)
        .bind(leased.step.as_str())
        .execute(t.db.db.pool())
        .await
        .unwrap();
        assert!(matches!(
            crashed.run_leased(&leased).await.unwrap(),
            Ran::LeaseLost { .. }
        ));
        assert_eq!(
            worker(&t).run_once().await.unwrap(),
            Ran::Succeeded {
                grant_id: grant.clone(),
                step: leased.step
            },
            "the step runs again and succeeds"
        );
        undone.push(Ran::Succeeded {
            grant_id: grant.clone(),
            step: leased.step,
        });
    }
    assert_eq!(undone, newest_first(&grant));
    assert_eq!(grant_state(&t, &grant).await.0, "revoked");
    assert_same_org(&before, &org_snapshot(&t).await);
    let effects: Vec<String> = t
        .call_log()
        .await
        .iter()
        .flat_map(|c| c["effects"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e.as_str().map(str::to_string))
        .collect();
    // Each deletion happened once: the second run found it done.
    for (kind, times) in [
        ("delete PermissionSet ", 2),
        ("delete PermissionSetAssignment ", 2),
        ("delete PermissionSetLicenseAssign ", 1),
    ] {
        assert_eq!(
            effects.iter().filter(|e| e.starts_with(kind)).count(),
            times,
            "{kind}: {effects:?}"
        );
    }
    assert_eq!(
        count_of(&audit_actions(&t, &grant).await, "grant.revoked"),
        1
    );
    assert_audit_intact(&t).await;
});

test_kit::both_databases!(a_teardown_with_faults_retries_and_completes, |engine| {
    let Some(t) = portal_with_org(engine).await else {
        return;
    };
    let before = org_snapshot(&t).await;
    let grant = approved_grant(&t, "Bumpy", case_scope()).await;
    worker(&t).run_until_idle().await.unwrap();
    let (_, alice) = approver("alice@acme.example");
    t.revoke_access(&grant, &alice, "Faults ahead")
        .await
        .unwrap();
    t.set_faults(json!([
        { "path": "/services/data/*", "errorRate": 0.3, "errorStatus": 503, "delayMs": 10 },
        { "path": "/services/data/*", "dropRate": 0.05 }
    ]))
    .await;
    let patient = worker(&t).with_retry(services::provisioning::RetryPolicy {
        base: Duration::from_millis(10),
        max: Duration::from_millis(100),
        max_attempts: 40,
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while grant_state(&t, &grant).await.0 == "revoking" && tokio::time::Instant::now() < deadline {
        patient.run_until_idle().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    t.clear_faults().await;
    let refused = t
        .call_log()
        .await
        .iter()
        .filter(|c| c["status"] == 503)
        .count();
    assert!(refused > 0, "the faults were injected");
    assert_eq!(grant_state(&t, &grant).await.0, "revoked");
    assert_same_org(&before, &org_snapshot(&t).await);
    assert!(!user_active(&t, &grant, "Bumpy").await);
    assert_audit_intact(&t).await;
});

test_kit::both_databases!(
    a_sixth_grant_goes_through_once_one_of_five_has_ended,
    |engine| {
        let Some(t) = portal_with_org(engine).await else {
            return;
        };
        t.org_settings(json!({ "integrationLicenses": 5 })).await;
        let mut grants = Vec::new();
        for i in 0..5 {
            grants.push(approved_grant(&t, &format!("Seat {i}"), case_scope()).await);
        }
        worker(&t).run_until_idle().await.unwrap();
        for grant in &grants {
            assert_eq!(grant_state(&t, grant).await.0, "ready");
        }
        let sixth = approved_grant(&t, "Seat 5", case_scope()).await;
        worker(&t).run_until_idle().await.unwrap();
        let (state, attention) = grant_state(&t, &sixth).await;
        assert_eq!(state, "needs_attention");
        assert!(
            attention
                .as_deref()
                .unwrap_or_default()
                .contains("no free Salesforce Integration licence"),
            "{attention:?}"
        );
        // One of the five ends: its user is deactivated, which frees its licence.
        let (_, alice) = approver("alice@acme.example");
        t.revoke_access(&grants[2], &alice, "Seat needed elsewhere")
            .await
            .unwrap();
        worker(&t).run_until_idle().await.unwrap();
        assert_eq!(grant_state(&t, &grants[2]).await.0, "revoked");
        t.retry_grant(&sixth, &alice).await.unwrap();
        worker(&t).run_until_idle().await.unwrap();
        assert_eq!(grant_state(&t, &sixth).await.0, "ready");
        assert!(credential_works(&t, &sixth).await);
        assert_audit_intact(&t).await;
    }
);

test_kit::both_databases!(
    once_five_grants_expire_a_sixth_goes_through_with_five_licences,
    |engine| {
        let Some(mut t) = portal_with_org(engine).await else {
            return;
        };
        let clock = with_test_clock(&mut t);
        t.org_settings(json!({ "integrationLicenses": 5 })).await;
        let mut grants = Vec::new();
        for i in 0..5 {
            grants.push(approved_grant(&t, &format!("Term {i}"), case_scope()).await);
        }
        let w = worker(&t).with_clock(clock.shared());
        w.run_until_idle().await.unwrap();
        // The sixth is asked for later and runs longer; it finds no free licence.
        let request = submit_verified(&t, "Term 5", "ops@vendor.example", case_scope()).await;
        let (alice_user, alice) = approver("alice@acme.example");
        let sixth = match t
            .approve(
                &request,
                &alice_user,
                services::decisions::ApprovalInput {
                    scope: case_scope(),
                    budget: shared::budget::Budget::default_for(500),
                    end_date: future_date(90),
                    ip_ranges: String::new(),
                    reason: "The next phase.".into(),
                },
                &alice,
            )
            .await
            .unwrap()
        {
            services::decisions::DecisionOutcome::Approved { grant_id, .. } => grant_id,
            other => panic!("expected an approval, got {other:?}"),
        };
        w.run_until_idle().await.unwrap();
        assert_eq!(grant_state(&t, &sixth).await.0, "needs_attention");

        // The five end on their end date (both clocks past it): the expiry tears them down.
        let end_date: String = sqlx::query_scalar("SELECT end_date FROM grants WHERE id = $1")
            .bind(&grants[0])
            .fetch_one(t.db.db.pool())
            .await
            .unwrap();
        let ends = services::provisioning::teardown::access_ends_at_ms(&end_date).unwrap();
        clock.set(ends + 60_000);
        set_org_clock_to(&t, ends + 60_000).await;
        let mut expired = t.expire_ended_grants().await.unwrap();
        expired.sort();
        let mut five = grants.clone();
        five.sort();
        assert_eq!(
            expired, five,
            "the five, not the sixth (it needs attention)"
        );
        w.run_until_idle().await.unwrap();
        for grant in &grants {
            assert_eq!(grant_state(&t, grant).await.0, "expired");
        }

        // Their users are inactive, so their licences are free: the sixth goes through.
        t.retry_grant(&sixth, &alice).await.unwrap();
        w.run_until_idle().await.unwrap();
        assert_eq!(grant_state(&t, &sixth).await.0, "ready");
        assert!(credential_works(&t, &sixth).await);
        assert_audit_intact(&t).await;
    }
);

test_kit::both_databases!(only_a_live_grant_can_be_revoked, |engine| {
    let Some(t) = portal_with_org(engine).await else {
        return;
    };
    let grant = approved_grant(&t, "Early", case_scope()).await;
    let (_, alice) = approver("alice@acme.example");
    // Approved, not provisioned yet: cancel it instead.
    match t.revoke_access(&grant, &alice, "too soon").await {
        Err(e @ RevokeError::NotRevocable(GrantState::Approved)) => {
            assert!(e.to_string().contains("waiting for a worker"), "{e}")
        }
        other => panic!("expected NotRevocable, got {other:?}"),
    }
    assert_eq!(grant_state(&t, &grant).await.0, "approved");
});

test_kit::both_databases!(
    a_teardown_that_stops_needs_attention_and_revoking_again_finishes_it,
    |engine| {
        let Some(t) = portal_with_org(engine).await else {
            return;
        };
        let before = org_snapshot(&t).await;
        let grant = approved_grant(&t, "Stubborn", case_scope()).await;
        worker(&t).run_until_idle().await.unwrap();
        let (_, alice) = approver("alice@acme.example");
        t.revoke_access(&grant, &alice, "Stop now").await.unwrap();
        // The org refuses to delete the permission sets (a permanent error).
        t.set_faults(json!([{
            "path": "/services/data/*/sobjects/PermissionSet/*",
            "methods": ["DELETE"],
            "errorRate": 1.0,
            "errorStatus": 400,
            "errorCode": "DELETE_FAILED",
            "errorMessage": "Cannot delete this permission set"
        }]))
        .await;
        worker(&t).run_until_idle().await.unwrap();
        let (state, attention) = grant_state(&t, &grant).await;
        assert_eq!(state, "needs_attention");
        let attention = attention.unwrap();
        assert!(
            attention.starts_with("Taking access away stopped at")
                && attention.contains("revoke again"),
            "{attention}"
        );
        assert!(!credential_works(&t, &grant).await, "cut off all the same");
        assert!(
            audit_actions(&t, &grant)
                .await
                .contains(&"teardown.step_failed".to_string())
        );
        // Neither retried nor cancelled: only revoked again.
        assert!(matches!(
            t.retry_grant(&grant, &alice).await,
            Err(services::provisioning::RetryError::Ending)
        ));
        assert!(matches!(
            t.cancel_grant(&grant, &alice).await,
            Err(services::provisioning::CancelError::Ending)
        ));
        t.clear_faults().await;
        let again = t
            .revoke_access(&grant, &alice, "Fixed in the org")
            .await
            .unwrap();
        assert!(again.steps_to_undo < Step::ALL.len() as i64, "{again:?}");
        worker(&t).run_until_idle().await.unwrap();
        assert_eq!(grant_state(&t, &grant).await.0, "revoked");
        assert_same_org(&before, &org_snapshot(&t).await);
        assert_audit_intact(&t).await;
    }
);

test_kit::both_databases!(
    where_the_org_returns_no_secrets_the_sealed_one_checks_the_cut_off_and_is_destroyed,
    |engine| {
        let Some(mut t) = portal_with_org(engine).await else {
            return;
        };
        t.portal = t
            .portal
            .clone()
            .with_vault(services::vault::Vault::ephemeral());
        t.org_settings(json!({ "enableClientSecretInRestApiAccess": false }))
            .await;
        let grant = approved_grant(&t, "Sealed", case_scope()).await;
        let engine = t
            .provisioning_engine()
            .with_deploy_poll(services::provisioning::DeployPoll {
                first_check: Duration::from_millis(450),
                interval: Duration::from_millis(100),
                timeout: Duration::from_secs(30),
            });
        engine.run_until_idle().await.unwrap();
        assert_eq!(grant_state(&t, &grant).await.0, "ready");
        let sealed = "SELECT COUNT(*) FROM sealed_secrets WHERE grant_id = $1";
        assert_eq!(count(&t, sealed, &grant).await, 1);
        let (_, alice) = approver("alice@acme.example");
        t.revoke_access(&grant, &alice, "Done").await.unwrap();
        engine.run_until_idle().await.unwrap();
        assert_eq!(grant_state(&t, &grant).await.0, "revoked");
        // The cut-off tried the sealed secret (refused), and the end destroyed it.
        let cut = step_evidence(&t, &grant, "restrict").await;
        assert_eq!(cut["credential_check"]["refused"], true, "{cut}");
        assert_eq!(count(&t, sealed, &grant).await, 0);
        let actions = audit_actions(&t, &grant).await;
        assert_eq!(
            count_of(&actions, "secret.sealed_destroyed"),
            1,
            "{actions:?}"
        );
        assert_eq!(
            count_of(&actions, "grant.credential_dead"),
            2,
            "{actions:?}"
        );
        assert_audit_intact(&t).await;
    }
);
