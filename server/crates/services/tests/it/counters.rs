//! Counters that guard against guessing and flooding hold exactly under concurrency, on
//! both databases: the per-address submission limit and the five attempts a verification
//! code gets. (On PostgreSQL a read-then-write of the count let concurrent attempts through.)

use services::PortalSettings;
use services::audit::Actor;
use services::requests::{IntakeError, SubmitInput};
use shared::scope::{Level, ObjectAccess, Scope, Visibility, VisibilityRule};
use test_kit::both_databases;
use test_kit::portal::portal_and_db as portal;

const CONCURRENT: usize = 40;

fn input(key: &str) -> SubmitInput {
    SubmitInput {
        company: "Kinetic Ltd".into(),
        contact_name: "Kim Kinetic".into(),
        contact_email: "kim@kinetic.example".into(),
        justification: "Overnight sync of support cases into our CRM.".into(),
        scope: Some(Scope {
            objects: vec![ObjectAccess {
                object: "Case".into(),
                level: Level::Read,
                fields: [("Subject".to_string(), Level::Read)].into_iter().collect(),
                view_all: false,
                modify_all: false,
            }],
            visibility: Visibility {
                rule: VisibilityRule::Shared,
                record_ids: vec![],
                group: None,
            },
            packages: vec![],
        }),
        scope_error: None,
        calls_per_day: "500".into(),
        ip_ranges: String::new(),
        end_date: (chrono::Utc::now().date_naive() + chrono::Duration::days(30)).to_string(),
        submission_key: format!("key-{key}-0123456789abcdef"),
    }
}

fn actor() -> Actor {
    Actor {
        name: "contractor:kim@kinetic.example".into(),
        ip: "198.51.100.7".into(),
        user_agent: "test".into(),
    }
}

both_databases!(
    the_submission_limit_holds_exactly_under_concurrency,
    |engine| {
        let settings = PortalSettings {
            submissions_per_hour: 5,
            ..PortalSettings::default()
        };
        let (portal, _db) = portal(engine, settings).await;
        let tasks: Vec<_> = (0..CONCURRENT)
            .map(|i| {
                let portal = portal.clone();
                tokio::spawn(async move { portal.submit(input(&format!("c{i}")), &actor()).await })
            })
            .collect();
        let (mut accepted, mut limited) = (0, 0);
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => accepted += 1,
                Err(IntakeError::RateLimited { .. }) => limited += 1,
                Err(e) => panic!("unexpected: {e}"),
            }
        }
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM access_requests")
            .fetch_one(portal.db().pool())
            .await
            .unwrap();
        assert_eq!(
            (accepted, limited, stored),
            (5, CONCURRENT - 5, 5),
            "accepted, limited, stored"
        );
    }
);

both_databases!(
    a_verification_code_gets_exactly_five_attempts_under_concurrency,
    |engine| {
        let settings = PortalSettings {
            submissions_per_hour: 100,
            ..PortalSettings::default()
        };
        let (portal, _db) = portal(engine, settings).await;
        let request = portal.submit(input("guess"), &actor()).await.unwrap();
        let mail = &services::mail::outbox(portal.db(), Some("kim@kinetic.example"), 5)
            .await
            .unwrap()[0];
        let code = mail
            .body
            .lines()
            .map(str::trim)
            .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
            .expect("a code")
            .to_string();
        // Many wrong guesses at once, all different, none the right one.
        let tasks: Vec<_> = (0..CONCURRENT)
            .map(|i| {
                let portal = portal.clone();
                let id = request.request_id.clone();
                let code = code.clone();
                tokio::spawn(async move {
                    let mut guess = format!("{:06}", i * 7919 % 1_000_000);
                    if guess == code {
                        guess = format!("{:06}", (i * 7919 + 1) % 1_000_000);
                    }
                    portal.verify_code(&id, &guess, &actor()).await
                })
            })
            .collect();
        let (mut wrong, mut locked) = (0, 0);
        for task in tasks {
            match task.await.unwrap() {
                Err(IntakeError::Invalid(_)) => wrong += 1,
                Err(IntakeError::NotAllowed(m)) if m.contains("Too many") => locked += 1,
                other => panic!("unexpected: {other:?}"),
            }
        }
        assert_eq!(
            (wrong, locked),
            (5, CONCURRENT - 5),
            "guesses compared, guesses refused"
        );
        let attempts: i64 =
            sqlx::query_scalar("SELECT verification_attempts FROM access_requests WHERE id = $1")
                .bind(&request.request_id)
                .fetch_one(portal.db().pool())
                .await
                .unwrap();
        assert_eq!(attempts, 5);
        let audited: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'request.verification_failed'",
        )
        .fetch_one(portal.db().pool())
        .await
        .unwrap();
        assert_eq!(audited, 5);
        // The right code no longer helps.
        assert!(matches!(
            portal
                .verify_code(&request.request_id, &code, &actor())
                .await,
            Err(IntakeError::NotAllowed(_))
        ));
    }
);
