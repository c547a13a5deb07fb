//! Time moved with a test clock instead of rewritten rows (issue 16): the portal reads the
//! time from the clock it holds, so each expiry is checked just before and just at its
//! boundary by moving the clock.

use crate::common;

use std::time::Duration;

use common::*;

use services::decisions::{ApprovalInput, DecisionOutcome};
use services::provisioning::{DeployPoll, Engine as Worker};
use services::requests::{IntakeError, SubmitInput};
use services::reveal::{LinkState, Report, RevealError};
use shared::budget::Budget;

const HOUR: Duration = Duration::from_secs(3_600);
const MS: Duration = Duration::from_millis(1);

async fn request_state(t: &TestPortal, id: &str) -> String {
    sqlx::query_scalar("SELECT state FROM access_requests WHERE id = $1")
        .bind(id)
        .fetch_one(t.db.db.pool())
        .await
        .unwrap()
}

test_kit::both_databases!(the_confirmation_link_works_until_its_ttl, |engine| {
    let Some(mut t) = portal(engine).await else {
        return;
    };
    let clock = with_test_clock(&mut t);
    let ttl = HOUR * t.settings().verification_ttl_hours as u32;

    let early = submit(&t, "Early Ltd", "early@vendor.example", case_scope()).await;
    let late = submit(&t, "Late Ltd", "late@vendor.example", case_scope()).await;
    let early_token = link_token_for(&t, "early@vendor.example", "/verify/").await;
    let late_token = link_token_for(&t, "late@vendor.example", "/verify/").await;

    clock.advance(ttl - MS);
    assert_eq!(
        t.verify_link(&early_token, &contractor()).await.unwrap(),
        early
    );
    assert_eq!(request_state(&t, &early).await, "submitted");

    clock.advance(MS);
    assert!(matches!(
        t.verify_link(&late_token, &contractor()).await,
        Err(IntakeError::NotAllowed(_))
    ));
    assert_eq!(request_state(&t, &late).await, "pending_verification");
});

test_kit::both_databases!(the_confirmation_code_works_for_thirty_minutes, |engine| {
    let Some(mut t) = portal(engine).await else {
        return;
    };
    let clock = with_test_clock(&mut t);
    let ttl = Duration::from_millis(services::requests::CODE_TTL_MS as u64);

    let early = submit(&t, "Early Ltd", "early@vendor.example", case_scope()).await;
    let late = submit(&t, "Late Ltd", "late@vendor.example", case_scope()).await;
    let early_code = code_for(&t, "early@vendor.example").await;
    let late_code = code_for(&t, "late@vendor.example").await;

    clock.advance(ttl - MS);
    t.verify_code(&early, &early_code, &contractor())
        .await
        .unwrap();
    assert_eq!(request_state(&t, &early).await, "submitted");

    clock.advance(MS);
    match t.verify_code(&late, &late_code, &contractor()).await {
        Err(IntakeError::NotAllowed(message)) => {
            assert!(message.contains("30 minutes"), "{message}")
        }
        other => panic!("expected the code to have expired, got {other:?}"),
    }
    assert_eq!(request_state(&t, &late).await, "pending_verification");
});

test_kit::both_databases!(unconfirmed_requests_expire_at_their_ttl, |engine| {
    let Some(mut t) = portal(engine).await else {
        return;
    };
    let clock = with_test_clock(&mut t);
    let ttl = HOUR * t.settings().verification_ttl_hours as u32;
    let id = submit(&t, "Idle Ltd", "idle@vendor.example", case_scope()).await;

    clock.advance(ttl - MS);
    assert_eq!(t.expire_unverified().await.unwrap(), 0);
    assert_eq!(request_state(&t, &id).await, "pending_verification");

    clock.advance(MS);
    assert_eq!(t.expire_unverified().await.unwrap(), 1);
    assert_eq!(request_state(&t, &id).await, "expired");
    assert_eq!(t.expire_unverified().await.unwrap(), 0);
});

test_kit::both_databases!(an_end_date_must_be_after_the_clocks_today, |engine| {
    let Some(mut t) = portal(engine).await else {
        return;
    };
    let clock = with_test_clock(&mut t);
    // Midnight UTC at the start of a day, so the next day is one clock step away.
    let day_ms = 86_400_000;
    let midnight = services::clock::now_ms() / day_ms * day_ms;
    clock.set(midnight + day_ms - 1);
    let tomorrow = (services::clock::to_datetime(midnight).date_naive()
        + chrono::Duration::days(1))
    .to_string();
    let input = |key: &str| SubmitInput {
        company: "Dated Ltd".into(),
        contact_name: "Dana Contractor".into(),
        contact_email: "dated@vendor.example".into(),
        justification: "Automating case triage for the support team.".into(),
        scope: Some(case_scope()),
        scope_error: None,
        calls_per_day: "500".into(),
        ip_ranges: "203.0.113.0/24".into(),
        end_date: tomorrow.clone(),
        submission_key: key.into(),
    };

    // The last millisecond of today: tomorrow is in the future.
    t.submit(input("first-submission-key"), &contractor())
        .await
        .unwrap();

    // Tomorrow has come: it is no longer.
    clock.advance(MS);
    match t
        .submit(input("second-submission-key"), &contractor())
        .await
    {
        Err(IntakeError::Invalid(errors)) => {
            assert!(
                format!("{errors:?}").contains("must be in the future"),
                "{errors:?}"
            )
        }
        other => panic!("expected the end date to be refused, got {other:?}"),
    }
});

/// A grant provisioned in the sandbox org with `t`'s handover (its reveal link issued at
/// `t`'s clock); returns the grant and the link's token. The engine itself keeps the wall
/// clock (its retries wait real time).
async fn ready_grant(t: &TestPortal) -> (String, String) {
    let email = "ops@vendor.example";
    let id = submit_verified(t, "Kinetic Ltd", email, case_scope()).await;
    let (alice, actor) = approver("alice@acme.example");
    let grant = match t
        .approve(
            &id,
            &alice,
            ApprovalInput {
                scope: case_scope(),
                budget: Budget::default_for(500),
                end_date: future_date(30),
                ip_ranges: String::new(),
                reason: "Needed for the triage project.".into(),
            },
            &actor,
        )
        .await
        .unwrap()
    {
        DecisionOutcome::Approved { grant_id, .. } => grant_id,
        other => panic!("expected an approval, got {other:?}"),
    };
    let worker = Worker::new(t.db.db.clone(), t.salesforce().clone())
        .with_handover(t.handover())
        .with_deploy_poll(DeployPoll {
            first_check: Duration::from_millis(450),
            interval: Duration::from_millis(100),
            timeout: Duration::from_secs(30),
        });
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        worker.run_until_idle().await.unwrap();
        let state: String = sqlx::query_scalar("SELECT state FROM grants WHERE id = $1")
            .bind(&grant)
            .fetch_one(t.db.db.pool())
            .await
            .unwrap();
        if state == "ready" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the grant was not set up: {state}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let token = link_token_for(t, email, "/reveal/").await;
    (grant, token)
}

async fn link_state(t: &TestPortal, token: &str) -> LinkState {
    t.reveal_link(token).await.unwrap().expect("the link").state
}

test_kit::both_databases!(a_reveal_link_works_until_reveal_link_hours, |engine| {
    let Some(mut t) = portal_with_org(engine).await else {
        return;
    };
    let clock = with_test_clock(&mut t);
    let (_grant, token) = ready_grant(&t).await;
    let ttl = HOUR * t.settings().reveal_link_hours as u32;

    clock.advance(ttl - MS);
    assert!(
        matches!(link_state(&t, &token).await, LinkState::Open { .. }),
        "open just before its hours are up"
    );
    t.send_reveal_code(&token, &contractor()).await.unwrap();

    clock.advance(MS);
    assert!(
        matches!(link_state(&t, &token).await, LinkState::Expired { .. }),
        "expired when its hours are up"
    );
    let code = code_for_reveal(&t).await;
    assert!(matches!(
        t.reveal(&token, &code, &contractor()).await,
        Err(RevealError::Expired(..))
    ));
});

/// The newest reveal code mailed to the contractor.
async fn code_for_reveal(t: &TestPortal) -> String {
    let mails = services::mail::outbox(&t.db.db, Some("ops@vendor.example"), 20)
        .await
        .unwrap();
    mails
        .iter()
        .filter(|m| m.subject.to_lowercase().contains("code"))
        .find_map(|m| {
            m.body
                .split_whitespace()
                .find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
                .map(str::to_string)
        })
        .expect("a reveal code in the outbox")
}

test_kit::both_databases!(
    a_reveal_can_be_reported_until_reveal_report_hours,
    |engine| {
        let Some(mut t) = portal_with_org(engine).await else {
            return;
        };
        let clock = with_test_clock(&mut t);
        let (_grant, token) = ready_grant(&t).await;
        t.send_reveal_code(&token, &contractor()).await.unwrap();
        let code = code_for_reveal(&t).await;
        t.reveal(&token, &code, &contractor()).await.unwrap();
        let window = HOUR * t.settings().reveal_report_hours as u32;

        clock.advance(window - MS);
        match link_state(&t, &token).await {
            LinkState::Revealed {
                report: Report::Open { .. },
                ..
            } => {}
            other => panic!("expected the report window open, got {other:?}"),
        }
        t.send_disown_code(&token, &contractor()).await.unwrap();

        clock.advance(MS);
        match link_state(&t, &token).await {
            LinkState::Revealed {
                report: Report::TooLate { .. },
                ..
            } => {}
            other => panic!("expected the report window closed, got {other:?}"),
        }
        assert!(matches!(
            t.send_disown_code(&token, &contractor()).await,
            Err(RevealError::ReportTooLate(..))
        ));
        assert!(matches!(
            t.disown_reveal(&token, Some("123456"), &contractor()).await,
            Err(RevealError::ReportTooLate(..))
        ));
    }
);
