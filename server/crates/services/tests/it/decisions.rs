//! Approve and reject with separation of duties: required approvals, one decision per
//! person (also under a double click), the grant, scope changes, mail and audit.

use crate::common;

use common::*;
use services::decisions::{ApprovalInput, DecisionError, DecisionOutcome};
use shared::budget::{Budget, HardAction};
use shared::request::RequestState;
use shared::scope::{Level, Scope};

fn input(scope: Scope) -> ApprovalInput {
    ApprovalInput {
        scope,
        budget: Budget {
            calls_per_day: 400,
            calls_per_7_days: 2000,
            warn_percent: 75,
            hard_action: HardAction::Freeze,
        },
        end_date: future_date(45),
        // Inside the request's 203.0.113.0/24: anything else is wider than asked.
        ip_ranges: "203.0.113.0/25\n203.0.113.128/28".into(),
        reason: "Scope matches the triage work described.".into(),
    }
}

fn risky_scope() -> Scope {
    let mut scope = case_scope();
    scope.objects[0]
        .fields
        .insert("Description".into(), Level::Edit);
    scope
}

async fn state_of(t: &TestPortal, id: &str) -> RequestState {
    t.request_detail(id).await.unwrap().unwrap().state
}

test_kit::both_databases!(one_approval_approves_and_creates_the_grant, |engine| {
    let Some(t) = portal(engine).await else {
        return;
    };
    let id = submit_verified(&t, "Kinetic Ltd", "ops@kinetic.example", case_scope()).await;
    let (alice, actor) = approver("Alice@Acme.example");
    let outcome = t
        .approve(&id, &alice, input(case_scope()), &actor)
        .await
        .unwrap();
    let DecisionOutcome::Approved { grant_id } = outcome else {
        panic!("expected an approval, got {outcome:?}");
    };

    let detail = t.request_detail(&id).await.unwrap().unwrap();
    assert_eq!(detail.state, RequestState::Approved);
    assert_eq!(detail.grant_id.as_deref(), Some(grant_id.as_str()));
    // What the contractor asked for is all there.
    assert_eq!(detail.company, "Kinetic Ltd");
    assert_eq!(detail.scope, case_scope());
    assert_eq!(detail.ip_ranges, vec!["203.0.113.0/24"]);
    assert_eq!(detail.calls_per_day, 500);
    assert_eq!(detail.end_date, future_date(60));
    assert!(detail.justification.contains("case triage"));
    assert!(detail.verified_at.is_some_and(|v| v >= detail.created_at));
    assert!(!detail.risky && detail.risks.is_empty());
    assert!(detail.events.iter().any(|e| e.kind == "submitted"));
    assert_eq!(detail.decisions.len(), 1);
    let decision = &detail.decisions[0];
    assert_eq!(decision.approver, "alice@acme.example");
    assert_eq!(decision.decision, "approved");
    assert_eq!(decision.reason, "Scope matches the triage work described.");
    assert!(decision.scope_changes.is_empty());
    assert_eq!(decision.scope.as_ref(), Some(&case_scope()));
    assert_eq!(decision.budget.as_ref().map(|b| b.calls_per_day), Some(400));
    assert_eq!(decision.end_date.as_deref(), Some(future_date(45).as_str()));
    assert_eq!(
        decision.ip_ranges,
        vec!["203.0.113.0/25", "203.0.113.128/28"]
    );
    // The contractor sees the approval; the internal note names the approver.
    assert!(
        detail
            .events
            .iter()
            .any(|e| e.kind == "approved" && e.visible_to_contractor)
    );
    assert!(detail.events.iter().any(|e| e.kind == "decision"
        && !e.visible_to_contractor
        && e.message.contains("alice@acme.example")));

    // The grant carries the approved scope, budget, end date and IP ranges.
    let row = sqlx::query(
        "SELECT request_id, state, company, contact_email, scope, budget, end_date, ip_ranges FROM grants WHERE id = $1",
    )
    .bind(&grant_id)
    .fetch_one(t.db.db.pool())
    .await
    .unwrap();
    use sqlx::Row;
    assert_eq!(row.get::<String, _>("request_id"), id);
    assert_eq!(row.get::<String, _>("state"), "approved");
    assert_eq!(row.get::<String, _>("contact_email"), "ops@kinetic.example");
    let scope: Scope = serde_json::from_str(&row.get::<String, _>("scope")).unwrap();
    assert_eq!(scope, case_scope());
    let budget: Budget = serde_json::from_str(&row.get::<String, _>("budget")).unwrap();
    assert_eq!(budget.hard_action, HardAction::Freeze);
    assert_eq!(budget.calls_per_7_days, 2000);
    assert_eq!(row.get::<String, _>("end_date"), future_date(45));
    let ranges: Vec<String> = serde_json::from_str(&row.get::<String, _>("ip_ranges")).unwrap();
    assert_eq!(ranges, vec!["203.0.113.0/25", "203.0.113.128/28"]);

    // Mail to the contact, audit entries for the request and the grant.
    let mails = services::mail::outbox(&t.db.db, Some("ops@kinetic.example"), 10)
        .await
        .unwrap();
    let mail = mails
        .iter()
        .find(|m| m.subject.contains("approved"))
        .expect("an approval mail");
    assert!(mail.body.contains("Case.Subject: edit"), "{}", mail.body);
    assert!(mail.body.contains("400 calls per day"));
    assert_eq!(
        audit_actions(&t, &id).await,
        vec!["request.submitted", "request.verified", "request.approved"]
    );
    assert_eq!(audit_actions(&t, &grant_id).await, vec!["grant.created"]);
    let details = audit_details(&t, "request.approved", &id).await;
    assert_eq!(details["approver"], "alice@acme.example");
    assert_eq!(details["widened"], false);
    assert_eq!(details["budget"]["calls_per_day"], 400);
    assert_eq!(details["grant_id"], grant_id.as_str());
    let grant = audit_details(&t, "grant.created", &grant_id).await;
    assert_eq!(grant["request_id"], id.as_str());
    assert_eq!(grant["end_date"], future_date(45).as_str());

    // Decided requests cannot be decided again, by anyone.
    let (bob, bob_actor) = approver("bob@acme.example");
    assert!(matches!(
        t.approve(&id, &bob, input(case_scope()), &bob_actor).await,
        Err(DecisionError::NotAwaitingDecision(RequestState::Approved))
    ));
    assert!(matches!(
        t.reject(&id, &bob, "Changed my mind.", &bob_actor).await,
        Err(DecisionError::NotAwaitingDecision(RequestState::Approved))
    ));
    assert!(matches!(
        t.approve(&id, &alice, input(case_scope()), &actor).await,
        Err(DecisionError::AlreadyDecided)
    ));
    assert_eq!(
        count(&t, "SELECT COUNT(*) FROM grants WHERE request_id = $1", &id).await,
        1
    );
    assert_audit_intact(&t).await;
});

test_kit::both_databases!(two_configured_approvals_need_two_people, |engine| {
    let Some(t) = portal(engine).await else {
        return;
    };
    let (_, owner_actor) = approver("owner@acme.example");
    t.update_settings(2, 365, &owner_actor).await.unwrap();
    let id = submit_verified(&t, "Kinetic Ltd", "ops@kinetic.example", case_scope()).await;
    assert_eq!(
        t.request_detail(&id)
            .await
            .unwrap()
            .unwrap()
            .approvals_required,
        2
    );
    let (alice, alice_actor) = approver("alice@acme.example");
    let (bob, bob_actor) = approver("bob@acme.example");

    let first = t
        .approve(&id, &alice, input(case_scope()), &alice_actor)
        .await
        .unwrap();
    assert_eq!(
        first,
        DecisionOutcome::Recorded {
            approvals: 1,
            required: 2
        }
    );
    assert_eq!(state_of(&t, &id).await, RequestState::Submitted);
    let detail = t.request_detail(&id).await.unwrap().unwrap();
    assert!(detail.events.iter().any(|e| e.kind == "approval_recorded"
        && e.visible_to_contractor
        && e.message.contains("waiting for a second approver")));
    assert!(detail.grant_id.is_none());

    // The same person cannot give the second approval (in any letter case).
    let (alice_again, _) = approver("ALICE@acme.example");
    assert!(matches!(
        t.approve(&id, &alice_again, input(case_scope()), &alice_actor)
            .await,
        Err(DecisionError::AlreadyDecided)
    ));
    assert!(matches!(
        t.reject(&id, &alice, "On second thoughts, no.", &alice_actor)
            .await,
        Err(DecisionError::AlreadyDecided)
    ));

    // Bob narrows every field (drops Priority, fewer calls, an earlier end, one range) and
    // completes it: the grant takes his scope, budget, end date and ranges.
    let narrowed = scope("Case", Level::Edit, &[("Subject", Level::Edit)]);
    let narrower_budget = Budget {
        calls_per_day: 100,
        calls_per_7_days: 700,
        warn_percent: 75,
        hard_action: HardAction::Freeze,
    };
    let mut second = input(narrowed.clone());
    second.budget = narrower_budget.clone();
    second.end_date = future_date(20);
    second.ip_ranges = "203.0.113.0/26".into();
    let outcome = t.approve(&id, &bob, second, &bob_actor).await.unwrap();
    let DecisionOutcome::Approved { grant_id } = outcome else {
        panic!("expected an approval, got {outcome:?}");
    };
    let (scope_json, budget_json, end_date, ranges): (String, String, String, String) =
        sqlx::query_as("SELECT scope, budget, end_date, ip_ranges FROM grants WHERE id = $1")
            .bind(&grant_id)
            .fetch_one(t.db.db.pool())
            .await
            .unwrap();
    assert_eq!(
        serde_json::from_str::<Scope>(&scope_json).unwrap(),
        narrowed
    );
    assert_eq!(
        serde_json::from_str::<Budget>(&budget_json).unwrap(),
        narrower_budget
    );
    assert_eq!(end_date, future_date(20));
    assert_eq!(ranges, "[\"203.0.113.0/26\"]");
    assert_eq!(
        audit_actions(&t, &id).await,
        vec![
            "request.submitted",
            "request.verified",
            "request.approval_recorded",
            "request.approved"
        ]
    );
    let recorded = audit_details(&t, "request.approval_recorded", &id).await;
    assert_eq!(recorded["approver"], "alice@acme.example");
    assert_eq!(recorded["approvals"], 1);
    assert_eq!(recorded["required"], 2);
    let approved = audit_details(&t, "request.approved", &id).await;
    assert_eq!(approved["approver"], "bob@acme.example");
    assert_eq!(approved["scope_changes"][0]["item"], "Case.Priority");
    assert_eq!(approved["widened"], false);
    let detail = t.request_detail(&id).await.unwrap().unwrap();
    assert_eq!(detail.decisions.len(), 2);
    assert!(
        detail.decisions[1]
            .scope_changes
            .iter()
            .any(|c| c.item == "Case.Priority" && c.is_narrowing())
    );

    // The setting applies to requests verified later, and is audited.
    t.update_settings(1, 365, &owner_actor).await.unwrap();
    let later = submit_verified(&t, "Kinetic Ltd", "two@kinetic.example", case_scope()).await;
    assert_eq!(
        t.request_detail(&later)
            .await
            .unwrap()
            .unwrap()
            .approvals_required,
        1
    );
    assert_eq!(
        audit_actions(&t, "portal").await,
        vec!["settings.changed", "settings.changed"]
    );
    let changed = audit_details(&t, "settings.changed", "portal").await;
    assert_eq!(changed["approvals_required"]["from"], 2);
    assert_eq!(changed["approvals_required"]["to"], 1);
    assert_audit_intact(&t).await;
});

test_kit::both_databases!(
    an_earlier_approval_counts_only_for_what_it_approved,
    |engine| {
        let Some(t) = portal(engine).await else {
            return;
        };
        let (_, owner_actor) = approver("owner@acme.example");
        t.update_settings(2, 365, &owner_actor).await.unwrap();
        let id = submit_verified(&t, "Kinetic Ltd", "ops@kinetic.example", case_scope()).await;
        let (alice, alice_actor) = approver("alice@acme.example");
        let (bob, bob_actor) = approver("bob@acme.example");
        let (carol, carol_actor) = approver("carol@acme.example");

        // Alice removes Priority; Bob grants what was asked, Priority included. Alice never
        // agreed to Priority, so hers does not count for Bob's grant.
        let narrowed = scope("Case", Level::Edit, &[("Subject", Level::Edit)]);
        let outcome = t
            .approve(&id, &alice, input(narrowed.clone()), &alice_actor)
            .await
            .unwrap();
        assert_eq!(
            outcome,
            DecisionOutcome::Recorded {
                approvals: 1,
                required: 2
            }
        );
        let outcome = t
            .approve(&id, &bob, input(case_scope()), &bob_actor)
            .await
            .unwrap();
        assert_eq!(
            outcome,
            DecisionOutcome::Recorded {
                approvals: 1,
                required: 2
            }
        );
        assert_eq!(state_of(&t, &id).await, RequestState::Submitted);

        // Carol grants the narrowed scope: within what both approved, so it is approved,
        // with the narrowed scope.
        let DecisionOutcome::Approved { grant_id } = t
            .approve(&id, &carol, input(narrowed.clone()), &carol_actor)
            .await
            .unwrap()
        else {
            panic!("the narrowed scope had two approvals");
        };
        let scope_json: String = sqlx::query_scalar("SELECT scope FROM grants WHERE id = $1")
            .bind(&grant_id)
            .fetch_one(t.db.db.pool())
            .await
            .unwrap();
        assert_eq!(
            serde_json::from_str::<Scope>(&scope_json).unwrap(),
            narrowed
        );
        assert_audit_intact(&t).await;
    }
);

test_kit::both_databases!(risky_scopes_always_need_two, |engine| {
    let Some(t) = portal(engine).await else {
        return;
    };
    let (alice, alice_actor) = approver("alice@acme.example");
    let (bob, bob_actor) = approver("bob@acme.example");
    let (carol, carol_actor) = approver("carol@acme.example");

    // A risky request needs two, although one is configured.
    let id = submit_verified(&t, "Kinetic Ltd", "ops@kinetic.example", risky_scope()).await;
    let detail = t.request_detail(&id).await.unwrap().unwrap();
    assert!(detail.risky);
    assert_eq!(detail.approvals_required, 2);
    assert!(detail.risks.iter().any(|r| r.contains("Case.Description")));
    let first = t
        .approve(&id, &alice, input(risky_scope()), &alice_actor)
        .await
        .unwrap();
    assert_eq!(
        first,
        DecisionOutcome::Recorded {
            approvals: 1,
            required: 2
        }
    );
    let second = t
        .approve(&id, &bob, input(risky_scope()), &bob_actor)
        .await
        .unwrap();
    assert!(matches!(second, DecisionOutcome::Approved { .. }));

    // A plain request made risky by its approver (View All) needs a second approval too,
    // and the queue shows the higher requirement.
    let plain = submit_verified(&t, "Northwind", "it@northwind.example", case_scope()).await;
    let mut widened = case_scope();
    widened.objects[0].view_all = true;
    let outcome = t
        .approve(&plain, &alice, input(widened.clone()), &alice_actor)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        DecisionOutcome::Recorded {
            approvals: 1,
            required: 2
        }
    );
    assert_eq!(
        t.request_detail(&plain)
            .await
            .unwrap()
            .unwrap()
            .approvals_required,
        2
    );
    let details = audit_details(&t, "request.approval_recorded", &plain).await;
    assert_eq!(details["widened"], true);
    assert!(
        details["risks"][0]
            .as_str()
            .unwrap()
            .contains("View All on Case")
    );
    assert_eq!(details["scope_changes"][0]["item"], "Case: View All");
    // A second approver who grants the plain scope completes it.
    let outcome = t
        .approve(&plain, &bob, input(case_scope()), &bob_actor)
        .await
        .unwrap();
    assert!(matches!(outcome, DecisionOutcome::Approved { .. }));

    // A second approver who adds a risky permission the first never approved does not get
    // the first approval counted for it: a third person must agree.
    let third = submit_verified(&t, "Globex", "it@globex.example", case_scope()).await;
    let outcome = t
        .approve(&third, &alice, input(case_scope()), &alice_actor)
        .await
        .unwrap();
    assert!(
        matches!(outcome, DecisionOutcome::Approved { .. }),
        "one approval configured"
    );
    let (_, owner_actor) = approver("owner@acme.example");
    t.update_settings(2, 365, &owner_actor).await.unwrap();
    let fourth = submit_verified(&t, "Globex", "ops@globex.example", case_scope()).await;
    let outcome = t
        .approve(&fourth, &alice, input(case_scope()), &alice_actor)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        DecisionOutcome::Recorded {
            approvals: 1,
            required: 2
        }
    );
    let outcome = t
        .approve(&fourth, &bob, input(risky_scope()), &bob_actor)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        DecisionOutcome::Recorded {
            approvals: 1,
            required: 2
        }
    );
    let outcome = t
        .approve(&fourth, &carol, input(risky_scope()), &carol_actor)
        .await
        .unwrap();
    assert!(matches!(outcome, DecisionOutcome::Approved { .. }));
    assert_audit_intact(&t).await;
});

test_kit::both_databases!(a_double_clicked_approve_approves_once, |engine| {
    let Some(t) = portal(engine).await else {
        return;
    };
    // Several rounds for each setting: the race must never let both clicks through.
    for (round, required) in [1, 1, 1, 2, 2, 2].into_iter().enumerate() {
        let (_, owner_actor) = approver("owner@acme.example");
        t.update_settings(required, 365, &owner_actor)
            .await
            .unwrap();
        let email = format!("ops{round}@kinetic.example");
        let id = submit_verified(&t, "Kinetic Ltd", &email, case_scope()).await;
        let (alice, actor) = approver("alice@acme.example");
        let calls: Vec<_> = (0..2)
            .map(|_| {
                let portal = t.portal.clone();
                let (id, alice, actor) = (id.clone(), alice.clone(), actor.clone());
                tokio::spawn(async move {
                    portal
                        .approve(&id, &alice, input(case_scope()), &actor)
                        .await
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for call in calls {
            outcomes.push(call.await.unwrap());
        }
        let decided = outcomes.iter().filter(|o| o.is_ok()).count();
        let refused = outcomes
            .iter()
            .filter(|o| matches!(o, Err(DecisionError::AlreadyDecided)))
            .count();
        assert_eq!((decided, refused), (1, 1), "{outcomes:?}");
        assert_eq!(
            count(
                &t,
                "SELECT COUNT(*) FROM decisions WHERE request_id = $1",
                &id
            )
            .await,
            1
        );
        let grants = count(&t, "SELECT COUNT(*) FROM grants WHERE request_id = $1", &id).await;
        let expected_state = if required == 1 {
            assert_eq!(grants, 1);
            RequestState::Approved
        } else {
            assert_eq!(grants, 0);
            RequestState::Submitted
        };
        assert_eq!(state_of(&t, &id).await, expected_state);
        let approvals = count(
            &t,
            "SELECT COUNT(*) FROM audit_log WHERE target_id = $1 AND action IN ('request.approved', 'request.approval_recorded')",
            &id,
        )
        .await;
        assert_eq!(approvals, 1);
    }
    assert_audit_intact(&t).await;
});

test_kit::both_databases!(
    rejection_needs_a_reason_and_tells_the_contractor,
    |engine| {
        let Some(t) = portal(engine).await else {
            return;
        };
        let id = submit_verified(&t, "Kinetic Ltd", "ops@kinetic.example", case_scope()).await;
        let (alice, actor) = approver("alice@acme.example");
        for bad in ["", "   ", "no"] {
            let Err(DecisionError::Invalid(errors)) = t.reject(&id, &alice, bad, &actor).await
            else {
                panic!("an empty reason must be refused");
            };
            assert!(errors.get("reason").is_some(), "{errors}");
        }
        assert_eq!(state_of(&t, &id).await, RequestState::Submitted);

        let outcome = t
            .reject(
                &id,
                &alice,
                "The work does not need edit access to cases.",
                &actor,
            )
            .await
            .unwrap();
        assert_eq!(outcome, DecisionOutcome::Rejected);
        let detail = t.request_detail(&id).await.unwrap().unwrap();
        assert_eq!(detail.state, RequestState::Rejected);
        assert!(detail.grant_id.is_none());
        assert_eq!(detail.decisions[0].decision, "rejected");
        assert!(detail.decisions[0].scope.is_none() && detail.decisions[0].budget.is_none());
        assert!(detail.events.iter().any(|e| e.kind == "rejected"
            && e.visible_to_contractor
            && e.message.contains("does not need edit access")));
        let mails = services::mail::outbox(&t.db.db, Some("ops@kinetic.example"), 10)
            .await
            .unwrap();
        let mail = mails
            .iter()
            .find(|m| m.subject.contains("not approved"))
            .expect("a rejection mail");
        assert!(mail.body.contains("does not need edit access to cases"));
        let details = audit_details(&t, "request.rejected", &id).await;
        assert_eq!(details["approver"], "alice@acme.example");
        assert_eq!(
            details["reason"],
            "The work does not need edit access to cases."
        );
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM grants WHERE request_id = $1", &id).await,
            0
        );

        // Rejected is final.
        let (bob, bob_actor) = approver("bob@acme.example");
        assert!(matches!(
            t.approve(&id, &bob, input(case_scope()), &bob_actor).await,
            Err(DecisionError::NotAwaitingDecision(RequestState::Rejected))
        ));
        assert!(matches!(
            t.reject(&id, &bob, "Again, no.", &bob_actor).await,
            Err(DecisionError::NotAwaitingDecision(RequestState::Rejected))
        ));

        // A request still waiting for email verification cannot be decided, nor can one
        // that does not exist.
        let unverified = submit(&t, "Kinetic Ltd", "new@kinetic.example", case_scope()).await;
        let refused = t
            .reject(&unverified, &bob, "Too early to tell.", &bob_actor)
            .await;
        assert!(matches!(
            refused,
            Err(DecisionError::NotAwaitingDecision(
                RequestState::PendingVerification
            ))
        ));
        assert!(
            refused
                .unwrap_err()
                .to_string()
                .contains("waiting for email verification")
        );
        assert!(matches!(
            t.approve("no-such-request", &bob, input(case_scope()), &bob_actor)
                .await,
            Err(DecisionError::NotFound)
        ));
        assert!(t.request_detail("no-such-request").await.unwrap().is_none());
        assert_audit_intact(&t).await;
    }
);

test_kit::both_databases!(approval_input_is_validated_field_by_field, |engine| {
    let Some(t) = portal(engine).await else {
        return;
    };
    let id = submit_verified(&t, "Kinetic Ltd", "ops@kinetic.example", case_scope()).await;
    let (alice, actor) = approver("alice@acme.example");
    let mut bad = input(scope("Case Object", Level::Read, &[]));
    bad.budget.calls_per_7_days = 10;
    bad.budget.warn_percent = 0;
    bad.end_date = "2001-01-01".into();
    bad.ip_ranges = "10.0.0.1/8".into();
    bad.reason = "x".into();
    let Err(DecisionError::Invalid(errors)) = t.approve(&id, &alice, bad, &actor).await else {
        panic!("bad input must be refused");
    };
    for field in [
        "scope",
        "calls_per_7_days",
        "warn_percent",
        "end_date",
        "ip_ranges",
        "reason",
    ] {
        assert!(errors.get(field).is_some(), "{field}: {errors}");
    }
    // The end date must fall within the owner's maximum.
    let (_, owner_actor) = approver("owner@acme.example");
    t.update_settings(1, 30, &owner_actor).await.unwrap();
    let mut late = input(case_scope());
    late.end_date = future_date(31);
    let Err(DecisionError::Invalid(errors)) = t.approve(&id, &alice, late, &actor).await else {
        panic!("an end date beyond the maximum must be refused");
    };
    assert!(errors.get("end_date").unwrap().contains("30 days"));
    let mut empty = input(case_scope());
    empty.scope.objects.clear();
    assert!(matches!(
        t.approve(&id, &alice, empty, &actor).await,
        Err(DecisionError::Invalid(_))
    ));
    // Nothing was recorded.
    assert_eq!(
        count(
            &t,
            "SELECT COUNT(*) FROM decisions WHERE request_id = $1",
            &id
        )
        .await,
        0
    );
    assert_eq!(state_of(&t, &id).await, RequestState::Submitted);

    // Settings are checked too.
    let Err(services::settings::SettingsError::Invalid(errors)) =
        t.update_settings(3, 0, &owner_actor).await
    else {
        panic!("bad settings must be refused");
    };
    assert!(errors.get("approvals_required").is_some());
    assert!(errors.get("max_end_days").is_some());
    assert_eq!(
        t.settings_view().await.unwrap(),
        services::settings::SettingsView {
            approvals_required: 1,
            max_end_days: 30
        }
    );
    assert_audit_intact(&t).await;
});

test_kit::both_databases!(widening_is_allowed_and_recorded, |engine| {
    let Some(t) = portal(engine).await else {
        return;
    };
    let id = submit_verified(&t, "Kinetic Ltd", "ops@kinetic.example", case_scope()).await;
    let (alice, actor) = approver("alice@acme.example");
    // Priority raised to edit, Origin added, Subject dropped; Task added.
    let mut wider = scope(
        "Case",
        Level::Edit,
        &[("Priority", Level::Edit), ("Origin", Level::Read)],
    );
    wider
        .objects
        .push(scope("Task", Level::Read, &[]).objects.remove(0));
    let outcome = t.approve(&id, &alice, input(wider), &actor).await.unwrap();
    assert!(matches!(outcome, DecisionOutcome::Approved { .. }));
    let detail = t.request_detail(&id).await.unwrap().unwrap();
    let changes = &detail.decisions[0].scope_changes;
    let find = |item: &str| changes.iter().find(|c| c.item == item).unwrap();
    assert!(find("Case.Priority").is_widening());
    assert!(find("Case.Origin").is_widening());
    assert!(find("Task").is_widening());
    assert!(find("Case.Subject").is_narrowing());
    let details = audit_details(&t, "request.approved", &id).await;
    assert_eq!(details["widened"], true);
    assert_eq!(details["scope_changes"].as_array().unwrap().len(), 4);
    assert!(
        detail
            .events
            .iter()
            .any(|e| e.kind == "decision" && e.message.contains("wider than requested"))
    );
    assert_audit_intact(&t).await;
});

// The live case from the security review (issue 15, finding 1): the second approver kept
// the scope but dropped the IP ranges, stretched the term to a year, raised the budget to
// the maximum and turned the freeze off. That is wider than the first approval on every
// other field, so the first approval must not count, and it is wider than the request.
test_kit::both_databases!(
    an_earlier_approval_does_not_count_for_wider_ranges_budget_term_or_action,
    |engine| {
        let Some(t) = portal(engine).await else {
            return;
        };
        let (_, owner_actor) = approver("owner@acme.example");
        t.update_settings(2, 365, &owner_actor).await.unwrap();
        let id = submit_verified(&t, "Kinetic Ltd", "ops@kinetic.example", case_scope()).await;
        let (alice, alice_actor) = approver("alice@acme.example");
        let (bob, bob_actor) = approver("bob@acme.example");

        let strict = ApprovalInput {
            scope: case_scope(),
            budget: Budget {
                calls_per_day: 100,
                calls_per_7_days: 700,
                warn_percent: 80,
                hard_action: HardAction::Freeze,
            },
            end_date: future_date(30),
            ip_ranges: "203.0.113.0/24".into(),
            reason: "Fine within the contractor's network.".into(),
        };
        let outcome = t
            .approve(&id, &alice, strict.clone(), &alice_actor)
            .await
            .unwrap();
        assert_eq!(
            outcome,
            DecisionOutcome::Recorded {
                approvals: 1,
                required: 2
            }
        );

        let wide = ApprovalInput {
            scope: case_scope(),
            budget: Budget {
                calls_per_day: 1_000_000,
                calls_per_7_days: 7_000_000,
                warn_percent: 80,
                hard_action: HardAction::None,
            },
            end_date: future_date(365),
            ip_ranges: String::new(),
            reason: "Looks fine to me as well.".into(),
        };
        let outcome = t.approve(&id, &bob, wide, &bob_actor).await.unwrap();
        assert_eq!(
            outcome,
            DecisionOutcome::Recorded {
                approvals: 1,
                required: 2
            },
            "Alice's approval must not count for a grant wider than hers"
        );
        assert_eq!(state_of(&t, &id).await, RequestState::Submitted);
        assert_eq!(
            count(&t, "SELECT COUNT(*) FROM grants WHERE request_id = $1", &id).await,
            0
        );
        let recorded = audit_details(&t, "request.approval_recorded", &id).await;
        assert_eq!(recorded["approver"], "bob@acme.example");
        assert_eq!(recorded["widened"], true, "{recorded}");
        let widenings = recorded["widenings"].to_string();
        // Against the request (500 a day, alerts only): more calls, later, any address.
        for what in ["IP ranges", "calls per day", "end date"] {
            assert!(widenings.contains(what), "{what}: {widenings}");
        }
        let uncounted = &recorded["not_counted"][0];
        assert_eq!(uncounted["approver"], "alice@acme.example");
        let why = uncounted["wider_in"].to_string();
        for what in [
            "IP ranges",
            "calls per day",
            "calls per 7 days",
            "end date",
            "over budget",
        ] {
            assert!(why.contains(what), "{what}: {why}");
        }

        // Carol confirms Alice's terms: both approvals cover the grant, which takes them.
        let (carol, carol_actor) = approver("carol@acme.example");
        let DecisionOutcome::Approved { grant_id } =
            t.approve(&id, &carol, strict, &carol_actor).await.unwrap()
        else {
            panic!("Carol's grant is within Alice's approval");
        };
        let (budget_json, end_date, ranges): (String, String, String) =
            sqlx::query_as("SELECT budget, end_date, ip_ranges FROM grants WHERE id = $1")
                .bind(&grant_id)
                .fetch_one(t.db.db.pool())
                .await
                .unwrap();
        let budget: Budget = serde_json::from_str(&budget_json).unwrap();
        assert_eq!(budget.calls_per_day, 100);
        assert_eq!(budget.hard_action, HardAction::Freeze);
        assert_eq!(end_date, future_date(30));
        assert_eq!(ranges, "[\"203.0.113.0/24\"]");
        // Bob's wider approval covers Carol's terms too: all three agreed to them.
        let approved = audit_details(&t, "request.approved", &id).await;
        assert_eq!(approved["approvals"], 3);
        assert_eq!(approved["not_counted"], serde_json::json!([]));
        assert_eq!(approved["widened"], false, "{approved}");
        assert_audit_intact(&t).await;
    }
);

// Each field on its own: a second approval wider than the first in just that field does
// not complete the request; narrower in every field does.
test_kit::both_databases!(
    each_field_of_an_earlier_approval_must_cover_the_grant,
    |engine| {
        let Some(t) = portal(engine).await else {
            return;
        };
        let (_, owner_actor) = approver("owner@acme.example");
        t.update_settings(2, 365, &owner_actor).await.unwrap();
        let first = || ApprovalInput {
            scope: case_scope(),
            budget: Budget {
                calls_per_day: 400,
                calls_per_7_days: 2000,
                warn_percent: 75,
                hard_action: HardAction::Freeze,
            },
            end_date: future_date(45),
            ip_ranges: "203.0.113.0/25\n203.0.113.128/25".into(),
            reason: "Scope matches the triage work described.".into(),
        };
        type Tweak = fn(&mut ApprovalInput);
        let wider: [(&str, Tweak); 7] = [
            ("calls per day", |i| i.budget.calls_per_day = 401),
            ("calls per 7 days", |i| i.budget.calls_per_7_days = 2001),
            ("warning", |i| i.budget.warn_percent = 76),
            ("over budget", |i| i.budget.hard_action = HardAction::None),
            ("end date", |i| i.end_date = future_date(46)),
            ("IP ranges", |i| {
                i.ip_ranges = "203.0.113.0/24\n198.51.100.0/28".into()
            }),
            ("IP ranges", |i| i.ip_ranges = String::new()),
        ];
        for (n, (what, tweak)) in wider.into_iter().enumerate() {
            let id = submit_verified(
                &t,
                "Kinetic Ltd",
                &format!("ops{n}@kinetic.example"),
                case_scope(),
            )
            .await;
            let (alice, alice_actor) = approver("alice@acme.example");
            let (bob, bob_actor) = approver("bob@acme.example");
            t.approve(&id, &alice, first(), &alice_actor).await.unwrap();
            let mut second = first();
            tweak(&mut second);
            let outcome = t.approve(&id, &bob, second, &bob_actor).await.unwrap();
            assert_eq!(
                outcome,
                DecisionOutcome::Recorded {
                    approvals: 1,
                    required: 2
                },
                "wider {what} must not complete the request"
            );
            let recorded = audit_details(&t, "request.approval_recorded", &id).await;
            let why = recorded["not_counted"][0]["wider_in"].to_string();
            assert!(why.contains(what), "{what}: {why}");
        }

        // Narrower in every field (two ranges merged into the /24 they make up still count
        // as inside: the union of the earlier ranges covers it).
        let id = submit_verified(&t, "Kinetic Ltd", "narrow@kinetic.example", case_scope()).await;
        let (alice, alice_actor) = approver("alice@acme.example");
        let (bob, bob_actor) = approver("bob@acme.example");
        t.approve(&id, &alice, first(), &alice_actor).await.unwrap();
        let narrower = ApprovalInput {
            scope: scope("Case", Level::Edit, &[("Subject", Level::Edit)]),
            budget: Budget {
                calls_per_day: 300,
                calls_per_7_days: 1500,
                warn_percent: 50,
                hard_action: HardAction::Freeze,
            },
            end_date: future_date(44),
            ip_ranges: "203.0.113.0/24".into(),
            reason: "Less is enough for this work.".into(),
        };
        let outcome = t.approve(&id, &bob, narrower, &bob_actor).await.unwrap();
        assert!(
            matches!(outcome, DecisionOutcome::Approved { .. }),
            "{outcome:?}"
        );
        let approved = audit_details(&t, "request.approved", &id).await;
        assert_eq!(approved["approvals"], 2);
        assert_eq!(approved["widened"], false, "{approved}");
        assert_audit_intact(&t).await;
    }
);

// `widened` compares every field with what the contractor asked for (500 calls a day,
// 203.0.113.0/24, 60 days; the form's default budget is 7 times the day with a warning
// at 80%), not only the scope.
test_kit::both_databases!(widened_compares_every_field_with_the_request, |engine| {
    let Some(t) = portal(engine).await else {
        return;
    };
    let asked = || ApprovalInput {
        scope: case_scope(),
        budget: Budget::default_for(500),
        end_date: future_date(60),
        ip_ranges: "203.0.113.0/24".into(),
        reason: "Exactly what was asked for.".into(),
    };
    type Tweak = fn(&mut ApprovalInput);
    let cases: [(&str, bool, Tweak); 6] = [
        ("as asked", false, |_| {}),
        ("more calls", true, |i| {
            i.budget = Budget::default_for(501);
        }),
        ("later end", true, |i| i.end_date = future_date(61)),
        ("any address", true, |i| i.ip_ranges = String::new()),
        ("other range", true, |i| {
            i.ip_ranges = "203.0.113.0/24\n198.51.100.0/28".into()
        }),
        ("narrower everywhere", false, |i| {
            i.budget = Budget {
                calls_per_day: 10,
                calls_per_7_days: 70,
                warn_percent: 50,
                hard_action: HardAction::Freeze,
            };
            i.end_date = future_date(10);
            i.ip_ranges = "203.0.113.64/26".into();
        }),
    ];
    let (alice, actor) = approver("alice@acme.example");
    for (n, (what, expect_widened, tweak)) in cases.into_iter().enumerate() {
        let id = submit_verified(
            &t,
            "Kinetic Ltd",
            &format!("w{n}@kinetic.example"),
            case_scope(),
        )
        .await;
        let mut input = asked();
        tweak(&mut input);
        t.approve(&id, &alice, input, &actor).await.unwrap();
        let details = audit_details(&t, "request.approved", &id).await;
        assert_eq!(details["widened"], expect_widened, "{what}: {details}");
    }
    assert_audit_intact(&t).await;
});
