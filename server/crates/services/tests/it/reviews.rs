//! Access reviews (issue 18) against an in-process sandbox org, on SQLite and PostgreSQL:
//! a campaign over four live grants where one is kept, one narrowed (the dropped field is
//! no longer readable with the same credential, and the proof passes with the narrower
//! scope), one revoked (its token refused) and one left unanswered takes the default at
//! the due date once the portal's and the org's clocks pass it; and the objects a
//! contractor used, from a usage file placed through the sandbox's control API.

use crate::common;

use chrono::{DateTime, Utc};
use common::*;
use salesforce::{Client, Soql};
use serde_json::{Value, json};
use services::reviews::{CampaignInput, Decided, DecisionInput, ReviewError};
use shared::access_review::{CampaignState, ReviewDecision};
use shared::scope::VisibilityRule;

const DAY_MS: i64 = 86_400_000;
const OWNER: &str = "olive@acme.example";
const REVIEWER: &str = "alice@acme.example";

fn campaign_input(due_date: &str, default: &str) -> CampaignInput {
    CampaignInput {
        name: "Q4 contractors".into(),
        selection: "all".into(),
        selection_value: String::new(),
        due_date: due_date.into(),
        reviewers: REVIEWER.into(),
        default_decision: default.into(),
    }
}

fn decision(decision: &str, comment: &str, drop: &[&str]) -> DecisionInput {
    DecisionInput {
        decision: decision.into(),
        comment: comment.into(),
        drop: drop.iter().map(|d| d.to_string()).collect(),
    }
}

/// A ready grant for `company` over the org's first two cases.
async fn ready_grant(t: &TestPortal, company: &str) -> String {
    let cases = first_case_ids(t, 2).await;
    let grant = approved_grant(
        t,
        company,
        case_scope_visible(VisibilityRule::Shared, cases, None),
    )
    .await;
    worker(t).run_until_idle().await.unwrap();
    assert_eq!(grant_state(t, &grant).await.0, "ready", "{company}");
    grant
}

/// Whether `client` (the contractor's) can query `fields` of Case.
async fn can_query(client: &Client, fields: &[&str]) -> Result<usize, String> {
    let soql = Soql::select(fields).from("Case").limit(5).build().unwrap();
    client
        .query_all::<Value>(&soql)
        .await
        .map(|rows| rows.len())
        .map_err(|e| e.to_string())
}

fn day_string(ms: i64) -> String {
    services::clock::to_datetime(ms).date_naive().to_string()
}

test_kit::both_databases!(
    a_campaign_keeps_narrows_and_revokes_and_the_due_date_applies_the_default,
    |engine| {
        let Some(mut t) = portal_with_org(engine).await else {
            return;
        };
        let clock = with_test_clock(&mut t);
        let kept = ready_grant(&t, "Keepco").await;
        let narrowed = ready_grant(&t, "Narrowco").await;
        let revoked = ready_grant(&t, "Revokeco").await;
        let unanswered = ready_grant(&t, "Quietco").await;
        let (_, owner) = approver(OWNER);
        let (_, alice) = approver(REVIEWER);
        let now = services::clock::Clock::now_ms(&clock);
        let due = day_string(now + 7 * DAY_MS);

        // Bad input names its field; nothing is started.
        match t
            .start_review(&campaign_input(&day_string(now), "maybe"), OWNER, &owner)
            .await
        {
            Err(ReviewError::Invalid(errors)) => {
                assert!(errors.get("due_date").is_some(), "{errors:?}");
                assert!(errors.get("default_decision").is_some(), "{errors:?}");
            }
            other => panic!("expected field errors, got {other:?}"),
        }
        let mut by_object = campaign_input(&due, "keep");
        by_object.selection = "object".into();
        by_object.selection_value = "Opportunity".into();
        assert!(matches!(
            t.start_review(&by_object, OWNER, &owner).await,
            Err(ReviewError::Invalid(_))
        ));

        // The reviewer and another approver have signed in: only the reviewer named is
        // invited, with the campaign's link.
        let approver_roles = shared::auth::Roles {
            approver: true,
            security_reviewer: false,
            owner: false,
        };
        for name in [REVIEWER, "bob@acme.example"] {
            let (user, actor) = approver(name);
            t.record_sign_in(&user, &approver_roles, &actor)
                .await
                .unwrap();
        }
        let id = t
            .start_review(&campaign_input(&due, "revoke"), OWNER, &owner)
            .await
            .unwrap();
        let invitations: Vec<_> = services::mail::outbox(&t.db.db, None, 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.subject.starts_with("Access review to do"))
            .collect();
        assert_eq!(invitations.len(), 1, "{invitations:?}");
        assert_eq!(invitations[0].recipient, REVIEWER);
        assert!(
            invitations[0]
                .body
                .contains(&format!("/admin/reviews/{id}")),
            "{}",
            invitations[0].body
        );
        assert!(invitations[0].body.contains("4 grants"));
        let view = t.review_campaign(&id, REVIEWER).await.unwrap().unwrap();
        assert_eq!(view.items.len(), 4);
        assert!(view.items.iter().all(|i| i.can_decide));
        // Each item shows the last proof's expected/observed table.
        let item = view.items.iter().find(|i| i.grant_id == narrowed).unwrap();
        let fields = item
            .proof
            .iter()
            .find(|l| l.check == "Case: visible fields")
            .expect("the proof's visible fields line");
        assert_eq!(fields.expected, "priority, subject");
        assert!(item.proof.iter().all(|l| l.pass));
        // Somebody who is not a reviewer of this campaign sees it but cannot decide.
        let other = t
            .review_campaign(&id, "bob@acme.example")
            .await
            .unwrap()
            .unwrap();
        assert!(other.items.iter().all(|i| !i.can_decide));
        let (_, bob) = approver("bob@acme.example");
        assert!(matches!(
            t.decide_review_item(
                &id,
                &kept,
                "bob@acme.example",
                &decision("keep", "", &[]),
                &bob
            )
            .await,
            Err(ReviewError::Forbidden(_))
        ));

        // Keep.
        assert_eq!(
            t.decide_review_item(&id, &kept, REVIEWER, &decision("keep", "", &[]), &alice)
                .await
                .unwrap(),
            Decided::Kept
        );
        assert!(matches!(
            t.decide_review_item(&id, &kept, REVIEWER, &decision("keep", "", &[]), &alice)
                .await,
            Err(ReviewError::Conflict(_))
        ));

        // Narrow: drop Case.Priority. The same credential reads Subject, not Priority.
        let contractor = contractor_client(&t, &narrowed).await;
        assert!(
            can_query(&contractor, &["Id", "Subject", "Priority"])
                .await
                .is_ok()
        );
        for (input, field) in [
            (decision("narrow", "", &["Case.Priority"]), "comment"),
            (decision("narrow", "Too wide", &[]), "drop"),
            (decision("narrow", "Too wide", &["Case.Status"]), "drop"),
            (decision("narrow", "Too wide", &["Case"]), "drop"),
        ] {
            match t
                .decide_review_item(&id, &narrowed, REVIEWER, &input, &alice)
                .await
            {
                Err(ReviewError::Invalid(errors)) => {
                    assert!(errors.get(field).is_some(), "{field}: {errors:?}")
                }
                other => panic!("expected a {field} error, got {other:?}"),
            }
        }
        assert_eq!(
            t.decide_review_item(
                &id,
                &narrowed,
                REVIEWER,
                &decision("narrow", "Priority is not used", &["Case.Priority"]),
                &alice,
            )
            .await
            .unwrap(),
            Decided::Narrowing
        );
        let view = t.review_campaign(&id, REVIEWER).await.unwrap().unwrap();
        let item = view.items.iter().find(|i| i.grant_id == narrowed).unwrap();
        assert_eq!(
            item.narrow_state.as_deref(),
            Some("done"),
            "{:?}",
            item.narrow_error
        );
        assert_eq!(item.decision, Some(ReviewDecision::Narrow));
        let fields = item
            .proof
            .iter()
            .find(|l| l.check == "Case: visible fields")
            .unwrap();
        assert_eq!(
            fields.expected, "subject",
            "the proof expects the narrower scope"
        );
        assert_eq!(fields.observed, "subject");
        assert!(item.proof.iter().all(|l| l.pass), "{:?}", item.proof);
        assert!(can_query(&contractor, &["Id", "Subject"]).await.unwrap() > 0);
        let refused = can_query(&contractor, &["Id", "Priority"]).await;
        assert!(
            refused.is_err(),
            "Priority is no longer readable: {refused:?}"
        );
        let scope: String = sqlx::query_scalar("SELECT scope FROM grants WHERE id = $1")
            .bind(&narrowed)
            .fetch_one(t.db.db.pool())
            .await
            .unwrap();
        assert!(
            !scope.contains("Priority"),
            "the grant records the narrower scope"
        );
        assert_eq!(grant_state(&t, &narrowed).await.0, "ready");

        // Revoke: the teardown runs and the token is refused.
        assert!(credential_works(&t, &revoked).await);
        assert_eq!(
            t.decide_review_item(
                &id,
                &revoked,
                REVIEWER,
                &decision("revoke", "Contract over", &[]),
                &alice
            )
            .await
            .unwrap(),
            Decided::Revoking
        );
        worker(&t)
            .with_clock(clock.shared())
            .run_until_idle()
            .await
            .unwrap();
        assert_eq!(grant_state(&t, &revoked).await.0, "revoked");
        assert!(
            !credential_works(&t, &revoked).await,
            "the token is refused"
        );
        let end = t.access_end(&revoked).await.unwrap().unwrap();
        assert_eq!(
            end.reason.as_deref(),
            Some("access review Q4 contractors: Contract over")
        );

        // Before the due date nothing defaults.
        let run = t.run_reviews().await.unwrap();
        assert_eq!(run.defaulted, 0);
        assert_eq!(grant_state(&t, &unanswered).await.0, "ready");

        // The due date passes on both clocks: the unanswered item takes the default (revoke).
        let after_due = services::provisioning::teardown::access_ends_at_ms(&due).unwrap() + 60_000;
        clock.set(after_due);
        set_org_clock_to(&t, after_due).await;
        let run = t.run_reviews().await.unwrap();
        assert_eq!(run.defaulted, 1);
        assert_eq!(run.revoked, 1);
        assert_eq!(grant_state(&t, &unanswered).await.0, "revoking");
        worker(&t)
            .with_clock(clock.shared())
            .run_until_idle()
            .await
            .unwrap();
        assert_eq!(grant_state(&t, &unanswered).await.0, "revoked");
        assert!(!credential_works(&t, &unanswered).await);
        // Once only.
        assert_eq!(t.run_reviews().await.unwrap(), Default::default());

        let view = t.review_campaign(&id, REVIEWER).await.unwrap().unwrap();
        assert_eq!(view.campaign.state, CampaignState::Closed);
        assert_eq!(view.campaign.decided, 4);
        let item = view
            .items
            .iter()
            .find(|i| i.grant_id == unanswered)
            .unwrap();
        assert_eq!(item.decided_by.as_deref(), Some("default"));
        assert_eq!(item.decision, Some(ReviewDecision::Revoke));
        assert_eq!(grant_state(&t, &kept).await.0, "ready");

        // Audited, in the CSV and in the evidence pack.
        for (grant, action) in [
            (&kept, "review.item_kept"),
            (&narrowed, "review.item_narrowed"),
            (&narrowed, "review.narrow_applied"),
            (&revoked, "review.item_revoked"),
            (&unanswered, "review.item_defaulted"),
        ] {
            let actions = audit_actions(&t, grant).await;
            assert_eq!(
                actions.iter().filter(|a| *a == action).count(),
                1,
                "{action}: {actions:?}"
            );
        }
        let campaign_actions = audit_actions(&t, &id).await;
        assert!(campaign_actions.contains(&"review.started".to_string()));
        assert!(campaign_actions.contains(&"review.closed".to_string()));
        let csv = t.review_decisions_csv(&id).await.unwrap().unwrap();
        assert_eq!(csv.lines().count(), 5, "{csv}");
        assert!(csv.contains(",narrow,alice@acme.example,"), "{csv}");
        assert!(csv.contains(",revoke,default,"), "{csv}");
        assert!(csv.contains("Case.Subject: edit"), "{csv}");
        let pack = t.evidence_pack(&narrowed).await.unwrap().unwrap();
        assert_eq!(pack["reviews"][0]["decision"], "narrow");
        assert_eq!(pack["reviews"][0]["narrow_state"], "done");
        assert!(t.review_decisions_csv("nope").await.unwrap().is_none());
        assert_audit_intact(&t).await;
    }
);

fn usage_row(user: &str, at: DateTime<Utc>, entity: &str) -> String {
    format!(
        "\"ApiTotalUsage\",\"{}\",\"{}\",\"00D5g000000AbCd\",\"{user}\",\"int@vendor.example\",\"REST\",\"66.0\",\"/v66.0/query\",\"GET\",\"200\",\"{entity}\",\"sync\",\"203.0.113.7\",\"0H45g000000AbCd\",\"Contractor App\",\"true\",\"EXTERNAL_APPLICATION\",\"{}\"",
        at.format("%Y%m%d%H%M%S%.3f"),
        &uuid::Uuid::new_v4().simple().to_string()[..22],
        at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
}

test_kit::both_databases!(
    the_objects_a_contractor_used_come_from_the_usage_files,
    |engine| {
        let Some(t) = portal_with_org(engine).await else {
            return;
        };
        let grant = ready_grant(&t, "Usedco").await;
        let user = output_of(&t, &grant, "user").await["user_id"]
            .as_str()
            .unwrap()
            .to_string();
        let user15 = &user[..15];
        let yesterday = services::clock::now_ms().div_euclid(DAY_MS) * DAY_MS - DAY_MS;
        let at = |h: i64| services::clock::to_datetime(yesterday + h * 3_600_000);
        let mut csv = test_kit::usage_files::csv(test_kit::usage_files::HEADER, &[]);
        for h in 1..=3 {
            csv.push_str(&usage_row(user15, at(h), "Case"));
            csv.push('\n');
        }
        csv.push_str(&usage_row(user15, at(5), "Account"));
        csv.push('\n');
        csv.push_str(&usage_row(user15, at(6), ""));
        csv.push('\n');
        csv.push_str(&usage_row("005OTHER0000001", at(6), "Contact"));
        csv.push('\n');
        test_kit::usage_files::place(t.org.as_ref().unwrap().base_url(), "Daily", yesterday, csv)
            .await;
        t.usage_collector().run_once().await.unwrap();

        let used = services::usage::entities::used_between(
            &t.db.db,
            user15,
            yesterday,
            yesterday + DAY_MS,
        )
        .await
        .unwrap();
        let names: Vec<(&str, i64, i64)> = used
            .iter()
            .map(|u| (u.entity.as_str(), u.calls, u.days))
            .collect();
        let all: Vec<(String, i64, String, i64, i64)> = sqlx::query_as(
        "SELECT log_interval, period_start, entity, day_start, calls FROM usage_entities WHERE user_key = $1",
    )
    .bind(user15)
    .fetch_all(t.db.db.pool())
    .await
    .unwrap();
        assert_eq!(
            names,
            [("Case", 3, 1), ("Account", 1, 1)],
            "{all:?} yesterday {yesterday}"
        );

        let (_, owner) = approver(OWNER);
        let id = t
            .start_review(&campaign_input(&future_date(10), "keep"), OWNER, &owner)
            .await
            .unwrap();
        let view = t.review_campaign(&id, REVIEWER).await.unwrap().unwrap();
        let item = view.items.iter().find(|i| i.grant_id == grant).unwrap();
        let case = item.used.iter().find(|u| u.object == "Case").unwrap();
        assert!(case.granted);
        // Yesterday's file, and today's calls the proof made with the credential (the sandbox
        // org's own hourly file, read by the same collector run).
        assert!(case.calls >= 3, "{case:?}");
        assert_eq!(
            case.granted_fields,
            ["Case.Priority (read)", "Case.Subject (edit)"]
        );
        let account = item.used.iter().find(|u| u.object == "Account").unwrap();
        assert!(
            !account.granted,
            "an object outside the grant is shown as such"
        );
        assert!(
            item.droppable
                .iter()
                .any(|d| d.key == "Case.Priority" && d.used)
        );
    }
);

test_kit::both_databases!(
    a_narrowing_cut_off_by_the_org_is_finished_by_the_job,
    |engine| {
        let Some(t) = portal_with_org(engine).await else {
            return;
        };
        let grant = ready_grant(&t, "Bumpyco").await;
        let (_, owner) = approver(OWNER);
        let (_, alice) = approver(REVIEWER);
        let id = t
            .start_review(&campaign_input(&future_date(10), "keep"), OWNER, &owner)
            .await
            .unwrap();
        let contractor = contractor_client(&t, &grant).await;
        // The org fails every collection delete: the narrowing cannot finish now.
        t.set_faults(json!([{
            "path": "/services/data/*/composite/sobjects",
            "methods": ["DELETE"],
            "errorRate": 1.0,
            "errorStatus": 503,
        }]))
        .await;
        assert_eq!(
            t.decide_review_item(
                &id,
                &grant,
                REVIEWER,
                &decision("narrow", "Priority is not used", &["Case.Priority"]),
                &alice,
            )
            .await
            .unwrap(),
            Decided::Narrowing
        );
        let view = t.review_campaign(&id, REVIEWER).await.unwrap().unwrap();
        let item = &view.items[0];
        assert_eq!(item.narrow_state.as_deref(), Some("pending"));
        assert!(item.narrow_error.is_some(), "the page says why it waits");
        assert_eq!(t.run_reviews().await.unwrap().narrowed, 0, "still refused");

        // The org answers again: the job finishes the narrowing and proves it.
        t.clear_faults().await;
        assert_eq!(t.run_reviews().await.unwrap().narrowed, 1);
        let view = t.review_campaign(&id, REVIEWER).await.unwrap().unwrap();
        assert_eq!(view.items[0].narrow_state.as_deref(), Some("done"));
        assert!(can_query(&contractor, &["Id", "Priority"]).await.is_err());
        assert!(can_query(&contractor, &["Id", "Subject"]).await.is_ok());
        let actions = audit_actions(&t, &grant).await;
        assert_eq!(
            actions
                .iter()
                .filter(|a| *a == "review.narrow_applied")
                .count(),
            1,
            "{actions:?}"
        );
        assert_eq!(t.run_reviews().await.unwrap(), Default::default());
    }
);
