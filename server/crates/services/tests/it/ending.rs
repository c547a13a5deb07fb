//! The end of access as the pages show it (issue 17): a revoked grant on the approvers'
//! request page (state, when, by whom, why) and on the contractor's status page (when and
//! why, not who); the licences teardowns gave back on the usage page; and, for a run stopped
//! for lack of a Salesforce Integration licence, the grants that end soonest.

use crate::common;

use common::*;
use serde_json::json;
use services::decisions::{ApprovalInput, DecisionOutcome};
use shared::GrantState;
use shared::budget::Budget;

/// A verified request from `company` (mail to `email`) for Case, approved as asked with an
/// end date `end_days` from now; returns the request's and the grant's ids.
async fn approved(t: &TestPortal, company: &str, email: &str, end_days: i64) -> (String, String) {
    let id = submit_verified(t, company, email, case_scope()).await;
    let (alice, actor) = approver("alice@acme.example");
    let outcome = t
        .approve(
            &id,
            &alice,
            ApprovalInput {
                scope: case_scope(),
                budget: Budget::default_for(500),
                end_date: future_date(end_days),
                ip_ranges: String::new(),
                reason: "Needed for the triage project.".into(),
            },
            &actor,
        )
        .await
        .unwrap();
    match outcome {
        DecisionOutcome::Approved { grant_id, .. } => (id, grant_id),
        other => panic!("expected an approval, got {other:?}"),
    }
}

/// The token of the status link mailed to `email`.
async fn status_token(t: &TestPortal, email: &str) -> String {
    services::mail::outbox(t.db(), Some(email), 20)
        .await
        .unwrap()
        .iter()
        .find_map(|m| {
            let at = m.body.find("/status/")?;
            Some(
                m.body[at + "/status/".len()..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect::<String>(),
            )
        })
        .expect("a status link in the mail")
}

test_kit::both_databases!(
    a_revoked_grant_shows_its_end_to_approvers_and_the_contractor,
    |engine| {
        let Some(t) = portal_with_org(engine).await else {
            return;
        };
        let email = "kim@kinetic.example";
        let (request, grant) = approved(&t, "Kinetic Ltd", email, 30).await;
        let (kept_request, _) = approved(&t, "Keepco", "ops@keepco.example", 30).await;
        worker(&t).run_until_idle().await.unwrap();
        let token = status_token(&t, email).await;

        let view = t.provisioning_view(&request).await.unwrap().unwrap();
        assert_eq!(view.state, GrantState::Ready);
        assert_eq!(view.access_end, None, "access has not begun to end");
        assert!(view.ending_soonest.is_empty(), "nothing needs a licence");
        assert_eq!(t.status(&token).await.unwrap().unwrap().access_end, None);
        assert_eq!(t.usage_overview().await.unwrap().licences.freed_total, 0);

        // Blake revokes it: the page shows it ending at once, with who and why.
        let (_, blake) = approver("blake@acme.example");
        t.revoke_access(&grant, &blake, "The contract ended early")
            .await
            .unwrap();
        let view = t.provisioning_view(&request).await.unwrap().unwrap();
        assert_eq!(view.state, GrantState::Revoking);
        let end = view.access_end.expect("the end is shown");
        assert_eq!(end.state, GrantState::Revoking);
        assert!(end.revoked && !end.done() && !end.stopped());
        assert_eq!(end.headline(), "Being revoked");
        assert_eq!(end.reason.as_deref(), Some("The contract ended early"));
        assert_eq!(end.by.as_deref(), Some("blake@acme.example"));
        assert_eq!(end.ended_at, None, "the teardown has not finished");

        // The workers tear it down: revoked, on both pages.
        worker(&t).run_until_idle().await.unwrap();
        let view = t.provisioning_view(&request).await.unwrap().unwrap();
        assert_eq!(view.state, GrantState::Revoked);
        let end = view.access_end.expect("the end is shown");
        assert!(end.done());
        assert_eq!(end.headline(), "Revoked");
        assert!(end.ended_at.is_some(), "when the teardown finished");
        assert_eq!(end.by.as_deref(), Some("blake@acme.example"));
        assert_eq!(view.credential, None, "no credential to hand over any more");

        let status = t.status(&token).await.unwrap().unwrap();
        let seen = status.access_end.expect("the contractor sees the end");
        assert_eq!(seen.headline(), "Revoked");
        assert_eq!(seen.reason.as_deref(), Some("The contract ended early"));
        assert_eq!(seen.by, None, "the contractor is not told who");
        assert_eq!(seen.day(), end.day());

        // The other grant goes on; the usage page names the one that gave its licence back.
        let kept = t.provisioning_view(&kept_request).await.unwrap().unwrap();
        assert_eq!(kept.access_end, None);
        let licences = t.usage_overview().await.unwrap().licences;
        assert_eq!(licences.freed_total, 1);
        assert_eq!(licences.freed.len(), 1);
        assert_eq!(licences.freed[0].request_id, request);
        assert_eq!(licences.freed[0].company, "Kinetic Ltd");
        assert_eq!(licences.freed[0].state, GrantState::Revoked);
        assert_eq!(licences.freed[0].at, end.ended_at.unwrap());
        assert_eq!(
            licences.by_portcullis, 1,
            "only Keepco's user holds a licence"
        );
    }
);

test_kit::both_databases!(
    a_run_stopped_for_lack_of_a_licence_names_the_grants_that_end_soonest,
    |engine| {
        let Some(t) = portal_with_org(engine).await else {
            return;
        };
        let (_, late) = approved(&t, "Lateco", "ops@late.example", 50).await;
        let (_, _soon) = approved(&t, "Soonco", "ops@soon.example", 20).await;
        let (_, _middle) = approved(&t, "Middleco", "ops@middle.example", 35).await;
        worker(&t).run_until_idle().await.unwrap();
        // The org has exactly the three licences they hold.
        t.org_settings(json!({ "integrationLicenses": 3 })).await;
        let (waiting, waiting_grant) = approved(&t, "Waitco", "ops@wait.example", 40).await;
        worker(&t).run_until_idle().await.unwrap();
        let view = t.provisioning_view(&waiting).await.unwrap().unwrap();
        assert_eq!(view.state, GrantState::NeedsAttention);
        assert!(
            view.attention
                .as_deref()
                .is_some_and(services::org_failure::is_licence_shortage),
            "{:?}",
            view.attention
        );
        let names = |view: &shared::review::ProvisioningView| {
            view.ending_soonest
                .iter()
                .map(|g| (g.company.clone(), g.end_date.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(&view),
            vec![
                ("Soonco".to_string(), future_date(20)),
                ("Middleco".to_string(), future_date(35)),
                ("Lateco".to_string(), future_date(50)),
            ],
            "soonest first"
        );

        // One of them is revoked and torn down: it holds no licence, so it is no longer listed,
        // and the waiting grant goes through on a retry with the licence it gave back.
        let (_, alice) = approver("alice@acme.example");
        t.revoke_access(&late, &alice, "Finished early")
            .await
            .unwrap();
        worker(&t).run_until_idle().await.unwrap();
        let view = t.provisioning_view(&waiting).await.unwrap().unwrap();
        assert_eq!(
            names(&view).into_iter().map(|(c, _)| c).collect::<Vec<_>>(),
            ["Soonco", "Middleco"]
        );
        t.retry_grant(&waiting_grant, &alice).await.unwrap();
        worker(&t).run_until_idle().await.unwrap();
        let view = t.provisioning_view(&waiting).await.unwrap().unwrap();
        assert_eq!(view.state, GrantState::Ready, "{:?}", view.attention);
        assert!(
            view.ending_soonest.is_empty(),
            "no longer short of a licence"
        );
    }
);

test_kit::both_databases!(an_expired_grant_shows_expired_with_its_date, |engine| {
    let Some(mut t) = portal_with_org(engine).await else {
        return;
    };
    let clock = services::clock::TestClock::starting_now();
    t.portal = t.portal.clone().with_clock(clock.shared());
    let email = "ops@lapsing.example";
    let (request, _) = approved(&t, "Lapsing Ltd", email, 30).await;
    let w = worker(&t).with_clock(clock.shared());
    w.run_until_idle().await.unwrap();
    let token = status_token(&t, email).await;

    // The end date passes: the expiry job starts the teardown, the workers finish it.
    clock.advance(std::time::Duration::from_secs(31 * 86_400));
    assert_eq!(t.expire_ended_grants().await.unwrap().len(), 1);
    let ending = t.status(&token).await.unwrap().unwrap().access_end.unwrap();
    assert_eq!(ending.headline(), "Expiring");
    w.run_until_idle().await.unwrap();

    let today = services::clock::rfc3339(services::clock::Clock::now_ms(&clock))[..10].to_string();
    let seen = t.status(&token).await.unwrap().unwrap().access_end.unwrap();
    assert_eq!(seen.state, GrantState::Expired);
    assert_eq!(seen.headline(), "Expired");
    assert!(!seen.revoked && seen.done());
    assert_eq!(seen.day(), today, "the day of the moved clock");
    assert_eq!(seen.by, None);
    let staff = t
        .provisioning_view(&request)
        .await
        .unwrap()
        .unwrap()
        .access_end
        .unwrap();
    assert_eq!(staff.by.as_deref(), Some("system"));
    let licences = t.usage_overview().await.unwrap().licences;
    assert_eq!(licences.freed_total, 1);
    assert_eq!(licences.freed[0].state, GrantState::Expired);
    assert_eq!(licences.freed[0].company, "Lapsing Ltd");
});

test_kit::both_databases!(
    a_stopped_teardown_shows_as_being_revoked_until_revoked_again,
    |engine| {
        let Some(t) = portal_with_org(engine).await else {
            return;
        };
        let (request, grant) = approved(&t, "Stubborn Ltd", "ops@stubborn.example", 30).await;
        worker(&t).run_until_idle().await.unwrap();
        let (_, alice) = approver("alice@acme.example");
        t.revoke_access(&grant, &alice, "Stop now").await.unwrap();
        // The org refuses to delete the permission sets: the teardown stops.
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
        let view = t.provisioning_view(&request).await.unwrap().unwrap();
        assert_eq!(view.state, GrantState::NeedsAttention);
        let end = view.access_end.expect("the end is still shown");
        assert!(end.stopped() && end.revoked && !end.done());
        assert_eq!(end.headline(), "Being revoked");
        assert_eq!(end.reason.as_deref(), Some("Stop now"));
        assert!(view.ending_soonest.is_empty(), "not short of a licence");

        // Revoked again once the org is fixed: the new reason, and revoked.
        t.clear_faults().await;
        t.revoke_access(&grant, &alice, "Fixed in the org")
            .await
            .unwrap();
        worker(&t).run_until_idle().await.unwrap();
        let end = t
            .provisioning_view(&request)
            .await
            .unwrap()
            .unwrap()
            .access_end
            .unwrap();
        assert_eq!(end.headline(), "Revoked");
        assert_eq!(end.reason.as_deref(), Some("Fixed in the org"));
    }
);
