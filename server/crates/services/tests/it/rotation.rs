//! The rotation policy (issue 18, must-show 3): a new pair staged beside the old one and
//! collected through its reveal link; the old pair works until the switch and is refused
//! after it; a token loop running through the rotation always holds a working pair; the
//! job starts a rotation of a secret past its maximum age once, reminds once per threshold
//! and retires the old secret at the deadline (the portal's and the org's clocks moved).

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;

use salesforce::{ExposeSecret, SecretString};
use services::clock::Clock;
use services::decisions::{ApprovalInput, DecisionOutcome};
use services::provisioning::{DeployPoll, Engine as Worker};
use services::rotation::{RotationError, RotationReason};
use services::vault::Vault;
use shared::budget::Budget;
use shared::rotation::{OverdueReason, RotationState};

const EMAIL: &str = "ops@vendor.example";
const DAY_MS: i64 = 86_400_000;

/// A consumer key and secret as the contractor holds them.
#[derive(Clone)]
struct Pair {
    key: String,
    secret: SecretString,
}

/// A grant provisioned in the sandbox org with `t`'s handover (its link at `t`'s clock).
async fn ready_grant(t: &TestPortal) -> String {
    let id = submit_verified(t, "Kinetic Ltd", EMAIL, case_scope()).await;
    let (alice, actor) = approver("alice@acme.example");
    let grant = match t
        .approve(
            &id,
            &alice,
            ApprovalInput {
                scope: case_scope(),
                budget: Budget::default_for(500),
                end_date: future_date(200),
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
        if grant_state(t, &grant).await.0 == "ready" {
            return grant;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the grant was not set up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A portal over a sandbox org, with a credential key (rotations seal the new secret) and
/// a test clock.
async fn rotation_portal(
    engine: test_kit::Engine,
) -> Option<(TestPortal, services::clock::TestClock)> {
    let mut t = portal_with_org(engine).await?;
    t.portal = t.portal.clone().with_vault(Vault::ephemeral());
    let clock = with_test_clock(&mut t);
    Some((t, clock))
}

/// Collects the credential from the newest reveal link as the contractor does: asks for a
/// code, reads it from the mail, reveals.
async fn collect(t: &TestPortal) -> Pair {
    let token = link_token_for(t, EMAIL, "/reveal/").await;
    t.send_reveal_code(&token, &contractor()).await.unwrap();
    let mails = services::mail::outbox(&t.db.db, Some(EMAIL), 50)
        .await
        .unwrap();
    let code = mails
        .iter()
        .filter(|m| m.subject.to_lowercase().contains("code"))
        .find_map(|m| {
            m.body
                .split_whitespace()
                .find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
                .map(str::to_string)
        })
        .expect("a reveal code in the outbox");
    let revealed = t.reveal(&token, &code, &contractor()).await.unwrap();
    Pair {
        key: revealed.consumer_key,
        secret: revealed.consumer_secret,
    }
}

/// Whether a fresh client-credentials token exchange with `pair` succeeds and the token
/// reads a case (loopback: the in-process sandbox org).
async fn works(t: &TestPortal, pair: &Pair) -> bool {
    let config = salesforce::ClientConfig::new(
        t.salesforce().instance_url().clone(),
        salesforce::PortalAuth::ClientCredentials {
            client_id: pair.key.clone(),
            client_secret: pair.secret.clone(),
        },
    );
    let client = salesforce::Client::new(config).unwrap();
    let soql = salesforce::Soql::select(&["Id"])
        .from("Case")
        .limit(1)
        .build()
        .unwrap();
    client.query_all::<serde_json::Value>(&soql).await.is_ok()
}

/// Every audit entry's details as text, for "no secret in the audit log".
async fn audit_text(t: &TestPortal) -> String {
    let rows: Vec<String> = sqlx::query_scalar("SELECT details FROM audit_log")
        .fetch_all(t.db.db.pool())
        .await
        .unwrap();
    rows.join("\n")
}

test_kit::both_databases!(
    a_rotation_never_leaves_the_contractor_without_a_working_pair,
    |engine| {
        let Some((t, clock)) = rotation_portal(engine).await else {
            return;
        };
        let t = Arc::new(t);
        let grant = ready_grant(&t).await;
        let old = collect(&t).await;
        assert!(works(&t, &old).await, "the first pair works");
        clock.advance(Duration::from_secs(60));

        // The contractor's integration: a bounded token loop (at most 2,000 exchanges or
        // 120 s) using the pair it holds, switching to the new pair once it has it (and
        // only after the old one is refused, as an integration that is slow to switch).
        let new_pair: Arc<tokio::sync::Mutex<Option<Pair>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let looper = {
            let (t, old, new_pair, stop) = (t.clone(), old.clone(), new_pair.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut tries, mut old_ok, mut new_ok, mut none_ok) = (0u32, 0u32, 0u32, 0u32);
                let started = std::time::Instant::now();
                while !stop.load(Ordering::SeqCst)
                    && tries < 2_000
                    && started.elapsed() < Duration::from_secs(120)
                {
                    tries += 1;
                    if works(&t, &old).await {
                        old_ok += 1;
                    } else {
                        let new = new_pair.lock().await.clone();
                        match new {
                            Some(new) if works(&t, &new).await => new_ok += 1,
                            _ => none_ok += 1,
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                (tries, old_ok, new_ok, none_ok)
            })
        };

        // "Rotate now": a new pair staged, its link mailed; the old pair keeps working.
        let (_, alice) = approver("alice@acme.example");
        t.start_rotation(&grant, &alice, RotationReason::Manual)
            .await
            .unwrap();
        assert!(matches!(
            t.start_rotation(&grant, &alice, RotationReason::Manual)
                .await,
            Err(RotationError::InProgress)
        ));
        assert!(
            matches!(
                t.retire_old_secret(&grant, &alice).await,
                Err(RotationError::NotCollected)
            ),
            "not retired before the contractor has the new pair"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            works(&t, &old).await,
            "the old pair works while both are staged"
        );

        // The contractor collects the new pair through its reveal link; it works at once.
        let new = collect(&t).await;
        assert_ne!(new.key, old.key, "staged credentials have their own key");
        assert_ne!(new.secret.expose_secret(), old.secret.expose_secret());
        assert!(works(&t, &new).await, "the new pair works from its reveal");
        assert!(works(&t, &old).await, "and the old one still does");
        *new_pair.lock().await = Some(new.clone());
        tokio::time::sleep(Duration::from_millis(300)).await;

        // The switch: the old pair is refused from now on, the new one keeps working.
        t.retire_old_secret(&grant, &alice).await.unwrap();
        assert!(
            !works(&t, &old).await,
            "the old pair is refused after the switch"
        );
        assert!(works(&t, &new).await, "the new pair works after the switch");
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, Ordering::SeqCst);
        let (tries, old_ok, new_ok, none_ok) = looper.await.unwrap();
        eprintln!(
            "token loop: {tries} exchanges, {old_ok} on the old pair, {new_ok} on the new, {none_ok} with none"
        );
        assert_eq!(
            none_ok, 0,
            "{none_ok} of {tries} exchanges had no working pair (old {old_ok}, new {new_ok})"
        );
        assert!(
            old_ok > 0 && new_ok > 0,
            "the loop ran on both pairs: old {old_ok}, new {new_ok} of {tries}"
        );

        let view = t.rotation_view(&grant).await.unwrap().unwrap();
        assert_eq!(view.rotations.len(), 1);
        assert_eq!(view.rotations[0].state, RotationState::Completed);
        assert!(view.rotations[0].collected);
        assert!(view.can_rotate, "a new rotation may start");
        let actions = audit_actions(&t, &grant).await;
        for action in [
            "secret.rotation_started",
            "secret.revealed",
            "secret.rotation_completed",
        ] {
            assert!(
                actions.iter().any(|a| a == action),
                "{action} in {actions:?}"
            );
        }
        let audit = audit_text(&t).await;
        for secret in [&old.secret, &new.secret] {
            assert!(
                !audit.contains(secret.expose_secret()),
                "no secret in the audit log"
            );
        }
        assert_eq!(
            count(
                &t,
                "SELECT COUNT(*) FROM sealed_secrets WHERE grant_id = $1",
                &grant
            )
            .await,
            0,
            "the sealed copy is gone once collected"
        );
        assert_audit_intact(&t).await;
    }
);

test_kit::both_databases!(
    the_job_rotates_a_secret_past_its_maximum_age_once_reminds_once_and_retires_it_at_the_deadline,
    |engine| {
        let Some((t, clock)) = rotation_portal(engine).await else {
            return;
        };
        let grant = ready_grant(&t).await;
        let old = collect(&t).await;
        let (_, alice) = approver("alice@acme.example");
        let max_age = t.settings().secret_max_age_days;
        let overlap = t.settings().secret_overlap_days;
        assert_eq!((max_age, overlap), (90, 7), "the defaults");

        // Just before its maximum age nothing is due; a grant's own age of 0 means never.
        clock.advance(Duration::from_millis((max_age * DAY_MS - 60_000) as u64));
        set_org_clock_to(&t, clock.now_ms()).await;
        assert!(t.overdue_secrets().await.unwrap().is_empty());
        assert!(t.run_rotation_policy().await.unwrap().is_idle());
        clock.advance(Duration::from_secs(120));
        t.set_secret_max_age(&grant, Some(0), &alice).await.unwrap();
        assert!(t.overdue_secrets().await.unwrap().is_empty(), "0: never");
        assert!(t.run_rotation_policy().await.unwrap().started.is_empty());
        assert!(matches!(
            t.set_secret_max_age(&grant, Some(-1), &alice).await,
            Err(RotationError::InvalidMaxAge)
        ));
        t.set_secret_max_age(&grant, None, &alice).await.unwrap();
        let overdue = t.overdue_secrets().await.unwrap();
        assert_eq!(overdue.len(), 1);
        assert_eq!(
            (overdue[0].grant_id.as_str(), overdue[0].reason),
            (grant.as_str(), OverdueReason::PastMaxAge)
        );

        // The job starts one rotation, once.
        let run = t.run_rotation_policy().await.unwrap();
        assert_eq!(run.started, vec![grant.clone()]);
        assert!(
            t.overdue_secrets().await.unwrap().is_empty(),
            "a rotation is under way"
        );
        assert!(
            t.run_rotation_policy().await.unwrap().is_idle(),
            "started once"
        );
        let started = clock.now_ms();
        let deadline = started + overlap * DAY_MS;
        assert!(
            works(&t, &old).await,
            "the old pair works during the overlap"
        );

        // Reminders: 3 days and 1 day before the deadline, each once.
        clock.set(deadline - 3 * DAY_MS - 1);
        assert!(t.run_rotation_policy().await.unwrap().reminded.is_empty());
        clock.set(deadline - 3 * DAY_MS);
        assert_eq!(
            t.run_rotation_policy().await.unwrap().reminded,
            vec![(grant.clone(), 3)]
        );
        assert!(
            t.run_rotation_policy().await.unwrap().reminded.is_empty(),
            "once"
        );
        clock.set(deadline - DAY_MS);
        assert_eq!(
            t.run_rotation_policy().await.unwrap().reminded,
            vec![(grant.clone(), 1)]
        );
        assert!(t.run_rotation_policy().await.unwrap().is_idle(), "once");
        let reminders = services::mail::outbox(&t.db.db, Some(EMAIL), 200)
            .await
            .unwrap()
            .iter()
            .filter(|m| {
                m.subject
                    .starts_with("Reminder: collect your new API credential")
            })
            .count();
        assert_eq!(reminders, 2);

        // Just before the deadline the old pair still works; at it, it is retired.
        clock.set(deadline - 1);
        set_org_clock_to(&t, clock.now_ms()).await;
        assert!(t.run_rotation_policy().await.unwrap().completed.is_empty());
        assert!(
            works(&t, &old).await,
            "the old pair works until the deadline"
        );
        clock.set(deadline);
        let overdue = t.overdue_secrets().await.unwrap();
        assert_eq!(overdue.len(), 1);
        assert_eq!(overdue[0].reason, OverdueReason::PastDeadline);
        let run = t.run_rotation_policy().await.unwrap();
        assert_eq!(run.completed, vec![grant.clone()]);
        assert!(
            !works(&t, &old).await,
            "the old pair is refused after the deadline"
        );
        assert!(t.overdue_secrets().await.unwrap().is_empty());

        // The new secret's age counts from the switch: the job starts nothing more.
        assert!(t.run_rotation_policy().await.unwrap().is_idle());
        let view = t.rotation_view(&grant).await.unwrap().unwrap();
        assert_eq!(view.rotations[0].state, RotationState::Completed);
        assert!(!view.rotations[0].collected);
        assert_eq!(view.rotations[0].reason, "max_age");
        let actions = audit_actions(&t, &grant).await;
        assert_eq!(
            actions
                .iter()
                .filter(|a| *a == "secret.rotation_reminder_sent")
                .count(),
            2
        );
        assert_eq!(
            actions
                .iter()
                .filter(|a| *a == "secret.rotation_started")
                .count(),
            1
        );
        assert!(actions.iter().any(|a| a == "secret.max_age_changed"));
        assert!(actions.iter().any(|a| a == "secret.rotation_completed"));
        assert!(!audit_text(&t).await.contains(old.secret.expose_secret()));
        assert_audit_intact(&t).await;
    }
);

test_kit::both_databases!(
    a_rotation_interrupted_while_staging_is_cleaned_up_and_may_start_again,
    |engine| {
        let Some((t, clock)) = rotation_portal(engine).await else {
            return;
        };
        let grant = ready_grant(&t).await;
        let (app_id, consumer_id): (String, String) =
            sqlx::query_as("SELECT app_id, consumer_id FROM grants WHERE id = $1")
                .bind(&grant)
                .fetch_one(t.db.db.pool())
                .await
                .unwrap();
        // A portal that stopped after the org staged a pair and before it recorded it.
        sqlx::query(
            "INSERT INTO secret_rotations (id, grant_id, state, reason, started_by, started_at, deadline_at) \
             VALUES ('crashed', $1, 'staging', 'manual', 'alice@acme.example', $2, $3)",
        )
        .bind(&grant)
        .bind(clock.now_ms())
        .bind(clock.now_ms() + 7 * DAY_MS)
        .execute(t.db.db.pool())
        .await
        .unwrap();
        let orphan = t
            .salesforce()
            .create_staged(&app_id, &consumer_id)
            .await
            .unwrap();
        let (_, alice) = approver("alice@acme.example");
        assert!(matches!(
            t.start_rotation(&grant, &alice, RotationReason::Manual)
                .await,
            Err(RotationError::InProgress)
        ));

        clock.advance(Duration::from_millis(
            services::rotation::STAGING_TIMEOUT_MS as u64 - 1,
        ));
        assert!(t.run_rotation_policy().await.unwrap().failed.is_empty());
        clock.advance(Duration::from_millis(1));
        assert_eq!(
            t.run_rotation_policy().await.unwrap().failed,
            vec![grant.clone()]
        );
        let staged = t
            .salesforce()
            .staged_credentials(&app_id, &consumer_id)
            .await
            .unwrap();
        assert!(
            staged.iter().all(|s| s.id != orphan.id),
            "the orphaned staged pair was deleted"
        );
        let orphan_pair = Pair {
            key: orphan.key.unwrap(),
            secret: orphan.secret.unwrap(),
        };
        assert!(!works(&t, &orphan_pair).await, "and is refused");
        t.start_rotation(&grant, &alice, RotationReason::Manual)
            .await
            .unwrap();
    }
);
