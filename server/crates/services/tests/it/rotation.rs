//! The rotation policy (issue 18, must-show 3): a new pair staged beside the old one and
//! collected through its reveal link; the old pair works until the switch and is refused
//! after it; a token loop running through the rotation always holds a working pair; the
//! job starts a rotation of a secret past its maximum age once, reminds once per threshold
//! and retires the old secret at the deadline (the portal's and the org's clocks moved).
//! Where the org cannot stage (its credentials API closed, or API 64.0), a second app for
//! the same user and permission set takes the staged pair's place: usage showing calls on
//! it retires the old app, a re-proof after the switch passes against it, and a revoke
//! during the overlap removes both apps.

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
use shared::grant::GrantId;
use shared::rotation::{OverdueReason, RotationMethod, RotationState};

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
    rotation_portal_at(engine, salesforce::ApiVersion::DEFAULT).await
}

/// Like [`rotation_portal`], the portal speaking API `version` to its org.
async fn rotation_portal_at(
    engine: test_kit::Engine,
    version: salesforce::ApiVersion,
) -> Option<(TestPortal, services::clock::TestClock)> {
    let mut t = portal_with_org_at(engine, version).await?;
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

const HOUR_MS: i64 = 3_600_000;

/// The org's apps' developer names and ids.
async fn org_apps(t: &TestPortal) -> Vec<(String, String)> {
    t.salesforce()
        .oauth_usage_apps()
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.developer_name, a.identifier))
        .collect()
}

/// The rotation's second app's name, from the grant's page, and the grant's first app's.
async fn second_and_first_app(t: &TestPortal, grant: &str) -> (String, String) {
    let view = t.rotation_view(grant).await.unwrap().unwrap();
    assert_eq!(view.rotations[0].method, RotationMethod::SecondApp);
    let second = view.rotations[0]
        .new_app
        .clone()
        .expect("the second app's name");
    let first = second
        .strip_suffix("_R1")
        .expect("the second app is the first's name with _R1")
        .to_string();
    (second, first)
}

/// An hourly ApiTotalUsage file: `n` calls by `user` (15 characters) through app `app_id`
/// in the hour starting `hour`.
fn usage_file(user: &str, app_id: &str, hour: i64, n: i64) -> String {
    let rows: Vec<Vec<String>> = (0..n)
        .map(|i| {
            let when = test_kit::usage_files::at(hour + 60_000 + i * 5_000);
            vec![
                "ApiTotalUsage".to_string(),
                when.format("%Y%m%d%H%M%S%.3f").to_string(),
                format!("4abcdEFGH{i:013}"),
                "00D5g000000AbCd".into(),
                user.into(),
                "integration@vendor.example".into(),
                "REST".into(),
                "66.0".into(),
                "/v66.0/query".into(),
                "GET".into(),
                "200".into(),
                "Case".into(),
                String::new(),
                "203.0.113.7".into(),
                app_id.into(),
                "Portcullis second app".into(),
                "true".into(),
                "EXTERNAL_APPLICATION".into(),
                when.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            ]
        })
        .collect();
    test_kit::usage_files::csv(test_kit::usage_files::HEADER, &rows)
}

test_kit::both_databases!(
    where_the_org_cannot_stage_a_second_app_takes_over_once_usage_shows_calls_on_it,
    |engine| {
        let Some((t, clock)) = rotation_portal(engine).await else {
            return;
        };
        let grant = ready_grant(&t).await;
        let old = collect(&t).await;
        assert!(works(&t, &old).await, "the first pair works");
        let (old_app_id,): (String,) = sqlx::query_as("SELECT app_id FROM grants WHERE id = $1")
            .bind(&grant)
            .fetch_one(t.db.db.pool())
            .await
            .unwrap();
        clock.advance(Duration::from_secs(60));

        // The org's credentials API is closed: it cannot stage, so a second app is made.
        t.org_settings(serde_json::json!({ "enableClientSecretInRestApiAccess": false }))
            .await;
        let (_, alice) = approver("alice@acme.example");
        let started = t
            .start_rotation(&grant, &alice, RotationReason::Manual)
            .await
            .unwrap();
        assert_eq!(started.method, RotationMethod::SecondApp);
        let rotation_started = clock.now_ms();
        let (second, first) = second_and_first_app(&t, &grant).await;
        let apps = org_apps(&t).await;
        assert!(
            apps.iter().any(|(n, _)| *n == first) && apps.iter().any(|(n, _)| *n == second),
            "two apps for one user: {apps:?}"
        );
        let second_id = apps.iter().find(|(n, _)| *n == second).unwrap().1.clone();
        assert_ne!(second_id, old_app_id);
        assert!(
            works(&t, &old).await,
            "the old pair works beside the second app"
        );
        assert!(matches!(
            t.retire_old_secret(&grant, &alice).await,
            Err(RotationError::NotCollected)
        ));

        // The contractor collects the second app's pair from its reveal link.
        let new = collect(&t).await;
        assert_ne!(new.key, old.key);
        assert!(works(&t, &new).await, "the new pair works from its reveal");
        assert!(works(&t, &old).await, "and the old one still does");

        // No usage on the second app yet: the policy keeps both pairs.
        let run = t.run_rotation_policy().await.unwrap();
        assert!(run.completed.is_empty(), "{run:?}");
        assert!(works(&t, &old).await, "the old pair works until the switch");

        // A usage file shows the integration user's calls on the second app: the next run
        // of the policy retires the old app.
        let user = output_of(&t, &grant, "user").await["user_id"]
            .as_str()
            .unwrap()[..15]
            .to_string();
        let hour = rotation_started.div_euclid(HOUR_MS) * HOUR_MS + HOUR_MS;
        clock.set(hour + 2 * HOUR_MS);
        test_kit::usage_files::place(
            &t.org_url(),
            "Hourly",
            hour,
            usage_file(&user, &second_id[..15], hour, 12),
        )
        .await;
        let report = t.usage_collector().run_once().await.unwrap();
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        let run = t.run_rotation_policy().await.unwrap();
        assert_eq!(run.completed, vec![grant.clone()], "{run:?}");
        assert!(
            !works(&t, &old).await,
            "the old pair is refused after the switch"
        );
        assert!(works(&t, &new).await, "the new pair works after the switch");
        let apps = org_apps(&t).await;
        assert!(
            !apps.iter().any(|(n, _)| *n == first),
            "the old app is gone: {apps:?}"
        );
        assert!(apps.iter().any(|(n, _)| *n == second));
        let (app_id, app_name): (String, String) =
            sqlx::query_as("SELECT app_id, app_name FROM grants WHERE id = $1")
                .bind(&grant)
                .fetch_one(t.db.db.pool())
                .await
                .unwrap();
        assert_eq!((app_id, app_name), (second_id.clone(), second.clone()));
        let view = t.rotation_view(&grant).await.unwrap().unwrap();
        assert_eq!(view.rotations[0].state, RotationState::Completed);
        assert!(view.can_rotate);
        let completed: String = sqlx::query_scalar(
            "SELECT details FROM audit_log WHERE action = 'secret.rotation_completed' AND target_id = $1",
        )
        .bind(&grant)
        .fetch_one(t.db.db.pool())
        .await
        .unwrap();
        let completed: serde_json::Value = serde_json::from_str(&completed).unwrap();
        assert_eq!(completed["why"], "usage", "{completed}");
        assert_eq!(completed["method"], "second_app");
        assert_eq!(completed["old_app_deleted"], first.as_str());

        // Drift detection reads the grant's current app: a re-proof passes against it (the
        // credentials API open again, so the contractor's secret can be tried).
        t.org_settings(serde_json::json!({ "enableClientSecretInRestApiAccess": true }))
            .await;
        let record = t.reprove_grant(&GrantId::new(grant.clone())).await.unwrap();
        assert!(record.passed, "{record:#?}");
        assert!(record.drift.is_empty(), "{:#?}", record.drift);
        assert!(
            record
                .checks
                .iter()
                .any(|c| c.check == "App: permitted users" && c.pass),
            "the second app's policies were read: {:#?}",
            record.checks
        );

        let audit = audit_text(&t).await;
        for secret in [&old.secret, &new.secret] {
            assert!(
                !audit.contains(secret.expose_secret()),
                "no secret in the audit log"
            );
        }
        assert_audit_intact(&t).await;
    }
);

test_kit::both_databases!(
    a_revoke_during_a_rotation_by_a_second_app_removes_both_apps,
    |engine| {
        // An org reached at API 64.0 has no staged credentials.
        let version = salesforce::ApiVersion::parse("64.0").unwrap();
        let Some((t, _clock)) = rotation_portal_at(engine, version).await else {
            return;
        };
        let grant = ready_grant(&t).await;
        let old = collect(&t).await;
        let (_, alice) = approver("alice@acme.example");
        let started = t
            .start_rotation(&grant, &alice, RotationReason::Manual)
            .await
            .unwrap();
        assert_eq!(started.method, RotationMethod::SecondApp);
        let (second, first) = second_and_first_app(&t, &grant).await;
        let new = collect(&t).await;
        assert!(
            works(&t, &old).await && works(&t, &new).await,
            "both pairs work"
        );

        t.revoke_access(&grant, &alice, "The contract ended")
            .await
            .unwrap();
        let engine = t.provisioning_engine().with_deploy_poll(DeployPoll {
            first_check: Duration::from_millis(450),
            interval: Duration::from_millis(100),
            timeout: Duration::from_secs(30),
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            engine.run_until_idle().await.unwrap();
            if grant_state(&t, &grant).await.0 == "revoked" {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "not revoked");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(!works(&t, &old).await, "the old pair is refused");
        assert!(!works(&t, &new).await, "the second app's pair is refused");
        let apps = org_apps(&t).await;
        assert!(
            !apps.iter().any(|(n, _)| *n == first || *n == second),
            "both apps are gone: {apps:?}"
        );
        let view = t.rotation_view(&grant).await.unwrap().unwrap();
        assert_eq!(view.rotations[0].state, RotationState::Failed);
        assert!(
            view.rotations[0]
                .error
                .as_deref()
                .is_some_and(|e| e.contains("access ended")),
            "{:?}",
            view.rotations[0].error
        );
        let steps: Vec<String> = sqlx::query_scalar(
            "SELECT details FROM audit_log WHERE action = 'teardown.step_done' AND target_id = $1",
        )
        .bind(&grant)
        .fetch_all(t.db.db.pool())
        .await
        .unwrap();
        let evidence = |step: &str| {
            steps
                .iter()
                .map(|d| serde_json::from_str::<serde_json::Value>(d).unwrap())
                .find(|d| d["step"] == step)
                .map(|d| d["salesforce"].clone())
                .unwrap_or_else(|| panic!("no teardown.step_done for {step}"))
        };
        let cut = evidence("restrict");
        assert_eq!(
            cut["rotation_app"]["credential_check"]["refused"], true,
            "{cut}"
        );
        let app = evidence("app");
        assert_eq!(app["rotation_app"]["app"], second.as_str(), "{app}");
        assert_eq!(app["rotation_app"]["deleted"], true, "{app}");
        assert_audit_intact(&t).await;
    }
);
