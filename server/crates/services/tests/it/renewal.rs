//! Renewal (issue 17): reminders of a grant's end date, each sent once at 14, 3 and 1 days
//! (the clock moved across each, a fresh portal in between as a restart, two portals at
//! once); "Ask for more time" and the approvers' decision on it under a decision's rules;
//! an approved extension moves the assignments' `ExpirationDate` in the sandbox org and the
//! grant's end date, and the same credential keeps working.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use salesforce::Cond;
use services::clock::{Clock, TestClock};
use services::decisions::DecisionOutcome;
use services::renewal::{ExtensionError, ExtensionInput, ExtensionOutcome};
use services::{Mailer, Portal, PortalSettings};
use shared::auth::Roles;

const DAY_MS: i64 = 86_400_000;
const CONTACT: &str = "ops@vendor.example";

/// Another portal over `t`'s database, org and clock: a restarted process, or a second
/// instance.
fn fresh_instance(t: &TestPortal, clock: &TestClock, settings: PortalSettings) -> Portal {
    Portal::new(
        t.db.db.clone(),
        Mailer::outbox(),
        Arc::new(settings),
        t.salesforce().clone(),
    )
    .with_clock(clock.shared())
}

/// Noon UTC, `days` days before `end_date`.
fn noon_before(end_date: &str, days: i64) -> i64 {
    let end = chrono::NaiveDate::parse_from_str(end_date, "%Y-%m-%d").unwrap();
    let midnight = end
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis();
    midnight - days * DAY_MS + DAY_MS / 2
}

/// An approver who has signed in (so the portal mails them).
async fn signed_in_approver(t: &TestPortal, username: &str) -> shared::auth::SignedInUser {
    let (user, actor) = approver(username);
    t.record_sign_in(
        &user,
        &Roles {
            approver: true,
            ..Roles::default()
        },
        &actor,
    )
    .await
    .unwrap();
    user
}

async fn end_date_of(t: &TestPortal, grant: &str) -> String {
    sqlx::query_scalar("SELECT end_date FROM grants WHERE id = $1")
        .bind(grant)
        .fetch_one(t.db.db.pool())
        .await
        .unwrap()
}

/// Runs the provisioning workers until `grant` is ready.
async fn provision(t: &TestPortal, grant: &str) {
    let worker = worker(t);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        worker.run_until_idle().await.unwrap();
        let (state, attention) = grant_state(t, grant).await;
        if state == "ready" {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the grant was not set up: {state} {attention:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A provisioned (ready) grant of Case access for `CONTACT`, ending in 30 days.
async fn ready_grant(t: &TestPortal) -> String {
    let grant = approved_grant(t, "Kinetic Ltd", case_scope()).await;
    provision(t, &grant).await;
    grant
}

/// Reminder mails (to anyone) in the outbox.
async fn reminder_mails(t: &TestPortal, to: &str) -> usize {
    services::mail::outbox(&t.db.db, Some(to), 200)
        .await
        .unwrap()
        .iter()
        .filter(|m| m.subject.contains("API access ends"))
        .count()
}

test_kit::both_databases!(reminders_go_out_once_at_14_3_and_1_days, |engine| {
    let Some(mut t) = portal_with_org(engine).await else {
        return;
    };
    let clock = with_test_clock(&mut t);
    signed_in_approver(&t, "alice@acme.example").await;
    let grant = ready_grant(&t).await;
    let end = end_date_of(&t, &grant).await;

    let mut sent = Vec::new();
    let steps: [(i64, Option<i64>); 9] = [
        (15, None),
        (14, Some(14)),
        (13, None),
        (4, None),
        (3, Some(3)),
        (2, None),
        (1, Some(1)),
        (0, None),
        (-1, None),
    ];
    for (days_before, expected) in steps {
        clock.set(noon_before(&end, days_before));
        let run = t.send_renewal_reminders().await.unwrap();
        let got: Vec<i64> = run.sent.iter().map(|(_, d)| *d).collect();
        assert_eq!(
            got,
            expected.into_iter().collect::<Vec<_>>(),
            "{days_before} days before the end"
        );
        // Run again, and as a restarted portal: nothing more.
        assert!(t.send_renewal_reminders().await.unwrap().sent.is_empty());
        let restarted = fresh_instance(&t, &clock, settings());
        assert!(
            restarted
                .send_renewal_reminders()
                .await
                .unwrap()
                .sent
                .is_empty(),
            "a restart sends nothing again {days_before} days before"
        );
        sent.extend(got);
    }
    assert_eq!(sent, [14, 3, 1]);
    assert_eq!(reminder_mails(&t, CONTACT).await, 3, "to the contractor");
    assert_eq!(
        reminder_mails(&t, "alice@acme.example").await,
        3,
        "to the approver"
    );
    let audited: Vec<i64> = sqlx::query_scalar::<_, String>(
        "SELECT details FROM audit_log WHERE action = 'grant.renewal_reminder_sent' AND target_id = $1 ORDER BY seq",
    )
    .bind(&grant)
    .fetch_all(t.db.db.pool())
    .await
    .unwrap()
    .iter()
    .map(|d| serde_json::from_str::<serde_json::Value>(d).unwrap()["days_before"].as_i64().unwrap())
    .collect();
    assert_eq!(audited, [14, 3, 1]);
    assert_audit_intact(&t).await;
});

test_kit::both_databases!(two_portals_at_once_send_a_reminder_once, |engine| {
    let Some(mut t) = portal_with_org(engine).await else {
        return;
    };
    let clock = with_test_clock(&mut t);
    let grant = ready_grant(&t).await;
    let end = end_date_of(&t, &grant).await;
    let a = fresh_instance(&t, &clock, settings());
    let b = fresh_instance(&t, &clock, settings());
    for days_before in [14, 3, 1] {
        clock.set(noon_before(&end, days_before));
        let (ra, rb) = tokio::join!(a.send_renewal_reminders(), b.send_renewal_reminders());
        let total = ra.unwrap().sent.len() + rb.unwrap().sent.len();
        assert_eq!(total, 1, "{days_before} days before: one of them sends it");
    }
    assert_eq!(reminder_mails(&t, CONTACT).await, 3);
});

test_kit::both_databases!(
    a_grant_first_seen_close_to_its_end_gets_only_the_nearest_reminder,
    |engine| {
        let Some(mut t) = portal_with_org(engine).await else {
            return;
        };
        let clock = with_test_clock(&mut t);
        let grant = ready_grant(&t).await;
        let end = end_date_of(&t, &grant).await;

        // First looked at 2 days before its end (created then, or the portal was down):
        // the 3-day reminder only, not the 14-day one as well.
        clock.set(noon_before(&end, 2));
        let run = t.send_renewal_reminders().await.unwrap();
        assert_eq!(run.sent, [(grant.clone(), 3)]);
        assert_eq!(reminder_mails(&t, CONTACT).await, 1);
        let mail = services::mail::outbox(&t.db.db, Some(CONTACT), 50)
            .await
            .unwrap()
            .into_iter()
            .find(|m| m.subject.contains("API access ends"))
            .unwrap();
        assert!(mail.subject.contains("in 2 days"), "{}", mail.subject);

        clock.set(noon_before(&end, 1));
        assert_eq!(
            t.send_renewal_reminders().await.unwrap().sent,
            [(grant.clone(), 1)]
        );
        clock.set(noon_before(&end, 0));
        assert!(t.send_renewal_reminders().await.unwrap().sent.is_empty());
        assert_eq!(reminder_mails(&t, CONTACT).await, 2);
    }
);

/// Whether both of the grant's assignments in the org expire at the end of `date` (the org
/// writes the time back in its own format).
async fn both_expire_on(t: &TestPortal, grant: &str, date: &str) -> bool {
    let expirations = expirations(t, grant).await;
    assert_eq!(expirations.len(), 2);
    expirations
        .iter()
        .all(|e| e.starts_with(&format!("{date}T23:59:59")))
}

/// The `ExpirationDate`s of the grant's two assignments in the org.
async fn expirations(t: &TestPortal, grant: &str) -> Vec<String> {
    let made = output_of(t, grant, "assignment").await;
    let mut out = Vec::new();
    for key in ["assignment_id", "app_assignment_id"] {
        let id = made[key].as_str().unwrap();
        let rows = records(
            t,
            "PermissionSetAssignment",
            &["Id", "ExpirationDate"],
            Cond::eq("Id", id),
        )
        .await;
        out.push(
            rows[0]["ExpirationDate"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    out
}

/// Moves the portal's clock and the sandbox org's to a minute after access ends on
/// `end_date` (the end of that day, UTC).
async fn past_the_end(t: &TestPortal, clock: &TestClock, end_date: &str) {
    let ends = services::provisioning::teardown::access_ends_at_ms(end_date).unwrap();
    let offset = Duration::from_millis((ends - clock.now_ms()) as u64) + Duration::from_secs(60);
    clock.advance(offset);
    test_kit::sandbox::set_clock_offset(&reqwest::Client::new(), &t.org_url(), offset).await;
}

fn more_time(date: &str, reason: &str) -> ExtensionInput {
    ExtensionInput {
        new_end_date: date.into(),
        reason: reason.into(),
    }
}

fn days_after(date: &str, days: i64) -> String {
    (chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap() + chrono::Duration::days(days))
        .to_string()
}

fn field_error(result: Result<String, ExtensionError>, field: &str) -> String {
    match result {
        Err(ExtensionError::Invalid(errors)) => errors
            .message_for(field)
            .unwrap_or_else(|| panic!("no error on {field}: {errors:?}")),
        other => panic!("expected a problem with {field}, got {other:?}"),
    }
}

test_kit::both_databases!(
    an_approved_extension_moves_the_expiration_date_and_the_credential_keeps_working,
    |engine| {
        let Some(mut t) = portal_with_org(engine).await else {
            return;
        };
        let clock = with_test_clock(&mut t);
        let alice = signed_in_approver(&t, "alice@acme.example").await;
        let grant = ready_grant(&t).await;
        let old_end = end_date_of(&t, &grant).await;
        assert!(both_expire_on(&t, &grant, &old_end).await);
        assert!(credential_works(&t, &grant).await);
        let token = link_token_for(&t, CONTACT, "/status/").await;

        // The form's problems, each on its field.
        assert!(
            field_error(
                t.ask_for_more_time(&token, more_time(&old_end, "More work."), &contractor())
                    .await,
                "new_end_date"
            )
            .contains("after the current end date")
        );
        assert!(
            field_error(
                t.ask_for_more_time(
                    &token,
                    more_time(&days_after(&old_end, 400), "More work."),
                    &contractor()
                )
                .await,
                "new_end_date"
            )
            .contains("at most 365 days")
        );
        assert_eq!(
            field_error(
                t.ask_for_more_time(
                    &token,
                    more_time(&days_after(&old_end, 30), " "),
                    &contractor()
                )
                .await,
                "reason"
            ),
            "Say why the access is needed for longer."
        );

        let new_end = days_after(&old_end, 30);
        let extension = t
            .ask_for_more_time(
                &token,
                more_time(&new_end, "The migration runs a month longer."),
                &contractor(),
            )
            .await
            .unwrap();
        assert!(matches!(
            t.ask_for_more_time(
                &token,
                more_time(&days_after(&old_end, 10), "Again."),
                &contractor()
            )
            .await,
            Err(ExtensionError::AlreadyWaiting)
        ));
        let queue = t.extension_queue().await.unwrap();
        assert_eq!(queue.len(), 1);
        assert_eq!(queue[0].id, extension);
        assert_eq!(queue[0].new_end_date, new_end);

        let (_, actor) = approver("alice@acme.example");
        let outcome = t
            .approve_extension(&extension, &alice, "The project was extended.", &actor)
            .await
            .unwrap();
        assert_eq!(outcome, ExtensionOutcome::Approved { applied: true });
        assert_eq!(end_date_of(&t, &grant).await, new_end);
        assert!(
            both_expire_on(&t, &grant, &new_end).await,
            "both assignments expire on the new date"
        );
        assert!(t.extension_queue().await.unwrap().is_empty());
        let status = t.renewal_view(&token).await.unwrap().unwrap();
        assert_eq!(status.end_date.as_deref(), Some(new_end.as_str()));
        assert_eq!(
            t.status(&token).await.unwrap().unwrap().end_date,
            new_end,
            "the status page's Access until"
        );
        assert!(status.can_ask);
        let mails = services::mail::outbox(&t.db.db, Some(CONTACT), 50)
            .await
            .unwrap();
        assert!(
            mails
                .iter()
                .any(|m| m.subject.contains(&format!("now ends on {new_end}"))),
            "the contractor is told"
        );
        let actions = audit_actions(&t, &grant).await;
        for action in [
            "grant.extension_requested",
            "grant.extension_approved",
            "grant.extended",
        ] {
            assert!(
                actions.iter().any(|a| a == action),
                "{action} in {actions:?}"
            );
        }
        // No new user, app or secret: the same credential works, with a new token exchange.
        assert!(credential_works(&t, &grant).await);

        // A minute past the old end, on the portal's clock and the org's: Salesforce keeps
        // the assignments (their ExpirationDate moved), the expiry leaves the grant alone,
        // and the same credential still gets a token.
        past_the_end(&t, &clock, &old_end).await;
        assert!(t.expire_ended_grants().await.unwrap().is_empty());
        assert_eq!(grant_state(&t, &grant).await.0, "ready");
        assert!(both_expire_on(&t, &grant, &new_end).await);
        assert!(
            credential_works(&t, &grant).await,
            "the credential works after the old end date"
        );
        assert_audit_intact(&t).await;
    }
);

test_kit::both_databases!(
    a_refused_extension_leaves_the_old_end_date_and_access_ends_on_it,
    |engine| {
        let Some(mut t) = portal_with_org(engine).await else {
            return;
        };
        let clock = with_test_clock(&mut t);
        let alice = signed_in_approver(&t, "alice@acme.example").await;
        let grant = ready_grant(&t).await;
        let old_end = end_date_of(&t, &grant).await;
        let token = link_token_for(&t, CONTACT, "/status/").await;
        let extension = t
            .ask_for_more_time(
                &token,
                more_time(&days_after(&old_end, 60), "More work."),
                &contractor(),
            )
            .await
            .unwrap();
        let (_, actor) = approver("alice@acme.example");
        assert_eq!(
            t.refuse_extension(&extension, &alice, "The project ends as planned.", &actor)
                .await
                .unwrap(),
            ExtensionOutcome::Refused
        );
        assert_eq!(end_date_of(&t, &grant).await, old_end);
        assert!(both_expire_on(&t, &grant, &old_end).await);
        assert!(matches!(
            t.approve_extension(
                &extension,
                &signed_in_approver(&t, "bob@acme.example").await,
                "Changed my mind.",
                &actor
            )
            .await,
            Err(ExtensionError::NotPending(_))
        ));
        let mails = services::mail::outbox(&t.db.db, Some(CONTACT), 50)
            .await
            .unwrap();
        assert!(mails.iter().any(|m| m.subject.contains("was not approved")
            && m.body.contains("The project ends as planned.")));
        assert!(
            audit_actions(&t, &grant)
                .await
                .iter()
                .any(|a| a == "grant.extension_refused")
        );
        // The contractor may ask again.
        assert!(t.renewal_view(&token).await.unwrap().unwrap().can_ask);
        assert!(credential_works(&t, &grant).await);

        // A minute past the old end, on the portal's clock and the org's: the org refuses the
        // credential (ExpirationDate), and the expiry tears the grant down.
        past_the_end(&t, &clock, &old_end).await;
        assert!(
            !credential_works(&t, &grant).await,
            "access ends on the old date"
        );
        assert_eq!(t.expire_ended_grants().await.unwrap(), vec![grant.clone()]);
        worker(&t)
            .with_clock(clock.shared())
            .run_until_idle()
            .await
            .unwrap();
        assert_eq!(grant_state(&t, &grant).await.0, "expired");
        assert_audit_intact(&t).await;
    }
);

test_kit::both_databases!(
    an_extension_needs_two_people_and_never_its_own_contractor,
    |engine| {
        let two = PortalSettings {
            approvals_required: 2,
            ..settings()
        };
        let Some(mut t) = portal_with(engine, two, true).await else {
            return;
        };
        let _clock = with_test_clock(&mut t);
        let alice = signed_in_approver(&t, "alice@acme.example").await;
        let bob = signed_in_approver(&t, "bob@acme.example").await;
        let (_, actor) = approver("alice@acme.example");
        // The request itself needs both.
        let grant = match approve_as_asked(&t, "Pair Ltd", case_scope(), "")
            .await
            .unwrap()
        {
            DecisionOutcome::Recorded { .. } => {
                let request: String =
                    sqlx::query_scalar("SELECT id FROM access_requests WHERE company = 'Pair Ltd'")
                        .fetch_one(t.db.db.pool())
                        .await
                        .unwrap();
                match t
                    .approve(
                        &request,
                        &bob,
                        services::decisions::ApprovalInput {
                            scope: case_scope(),
                            budget: shared::budget::Budget::default_for(500),
                            end_date: future_date(30),
                            ip_ranges: String::new(),
                            reason: "Needed for the triage project.".into(),
                        },
                        &actor,
                    )
                    .await
                    .unwrap()
                {
                    DecisionOutcome::Approved { grant_id } => grant_id,
                    other => panic!("expected the second approval to approve, got {other:?}"),
                }
            }
            other => panic!("expected one approval of two, got {other:?}"),
        };
        provision(&t, &grant).await;
        let old_end = end_date_of(&t, &grant).await;
        let token = link_token_for(&t, CONTACT, "/status/").await;
        let new_end = days_after(&old_end, 14);
        let extension = t
            .ask_for_more_time(
                &token,
                more_time(&new_end, "Two more weeks."),
                &contractor(),
            )
            .await
            .unwrap();

        // The contractor, were they an approver, may not decide on their own access.
        let own = signed_in_approver(&t, CONTACT).await;
        assert!(matches!(
            t.approve_extension(&extension, &own, "Looks fine to me.", &actor)
                .await,
            Err(ExtensionError::OwnAccess)
        ));
        let view = t.extension_view(&extension, &own).await.unwrap().unwrap();
        assert!(!view.can_decide);

        assert_eq!(
            t.approve_extension(&extension, &alice, "Fine.", &actor)
                .await
                .unwrap(),
            ExtensionOutcome::Recorded {
                approvals: 1,
                required: 2
            }
        );
        assert_eq!(
            end_date_of(&t, &grant).await,
            old_end,
            "one approval is not enough"
        );
        assert!(matches!(
            t.approve_extension(&extension, &alice, "Fine, again.", &actor)
                .await,
            Err(ExtensionError::AlreadyDecided)
        ));
        assert!(matches!(
            t.refuse_extension(&extension, &alice, "No after all.", &actor)
                .await,
            Err(ExtensionError::AlreadyDecided)
        ));
        assert!(
            !t.extension_view(&extension, &alice)
                .await
                .unwrap()
                .unwrap()
                .can_decide
        );
        assert!(
            t.extension_view(&extension, &bob)
                .await
                .unwrap()
                .unwrap()
                .can_decide
        );
        assert_eq!(
            t.approve_extension(&extension, &bob, "Agreed.", &actor)
                .await
                .unwrap(),
            ExtensionOutcome::Approved { applied: true }
        );
        assert_eq!(end_date_of(&t, &grant).await, new_end);
        assert!(
            audit_actions(&t, &grant)
                .await
                .iter()
                .any(|a| a == "grant.extension_approval_recorded")
        );
        assert_audit_intact(&t).await;
    }
);

test_kit::both_databases!(
    more_time_is_offered_only_for_a_grant_that_is_ready_active_or_suspended,
    |engine| {
        let Some(t) = portal(engine).await else {
            return;
        };
        // Approved, not yet provisioned.
        let grant = approved_grant(&t, "Early Ltd", case_scope()).await;
        let token = link_token_for(&t, CONTACT, "/status/").await;
        let view = t.renewal_view(&token).await.unwrap().unwrap();
        assert!(!view.can_ask);
        let old_end = end_date_of(&t, &grant).await;
        assert!(matches!(
            t.ask_for_more_time(
                &token,
                more_time(&days_after(&old_end, 5), "More work."),
                &contractor()
            )
            .await,
            Err(ExtensionError::NotRenewable(shared::GrantState::Approved))
        ));
        assert!(t.renewal_view("not-a-token").await.unwrap().is_none());
        assert!(matches!(
            t.ask_for_more_time(
                "not-a-token",
                more_time("2030-01-01", "More."),
                &contractor()
            )
            .await,
            Err(ExtensionError::NotFound)
        ));
    }
);

test_kit::both_databases!(
    a_waiting_extension_of_a_revoked_grant_leaves_the_queue,
    |engine| {
        let Some(mut t) = portal_with_org(engine).await else {
            return;
        };
        let _clock = with_test_clock(&mut t);
        let grant = ready_grant(&t).await;
        let old_end = end_date_of(&t, &grant).await;
        let token = link_token_for(&t, CONTACT, "/status/").await;
        let extension = t
            .ask_for_more_time(
                &token,
                more_time(&days_after(&old_end, 30), "More work."),
                &contractor(),
            )
            .await
            .unwrap();
        let queued = t.extension_queue().await.unwrap();
        assert_eq!(
            queued.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            vec![extension.as_str()]
        );
        let (_, actor) = approver("alice@acme.example");
        t.revoke_access(&grant, &actor, "The contract was cut short.")
            .await
            .unwrap();
        assert!(
            t.extension_queue().await.unwrap().is_empty(),
            "an ending grant has nothing left to extend"
        );
    }
);
