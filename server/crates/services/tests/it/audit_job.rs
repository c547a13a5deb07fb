//! "Verify chain" over the whole log in the background (issue 20), on SQLite and
//! PostgreSQL: progress while it runs, one at a time across instances, the first problem
//! shown while it carries on, the result an inline verify would give, and a run whose
//! instance died carried on by another.

use std::sync::Arc;
use std::time::Duration;

use services::audit::anchor::{Anchorer, verify_anchored};
use services::audit::job::{self, Ran, Verifier};
use services::audit::view::view_of;
use services::clock::{Clock, TestClock};
use shared::audit::{VerifyStatus, VerifyView};
use test_kit::both_databases;
use test_kit::{Engine, TestDb, audit_fill};
use tokio::sync::Semaphore;

const START: i64 = 1_790_000_000_000;

async fn status(db: &TestDb) -> VerifyStatus {
    job::status(&db.db).await.unwrap()
}

/// Waits until the running verification has checked `at_least` entries.
async fn until_checked(db: &TestDb, at_least: i64) -> VerifyStatus {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let s = status(db).await;
            if s.running.as_ref().is_some_and(|r| r.checked >= at_least) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the verification makes progress")
}

async fn drop_triggers(db: &TestDb) {
    let statements: &[&str] = match db.engine {
        Engine::Sqlite => &[
            "DROP TRIGGER audit_log_no_update",
            "DROP TRIGGER audit_log_no_delete",
        ],
        Engine::Postgres => &[
            "DROP TRIGGER audit_log_no_update ON audit_log",
            "DROP TRIGGER audit_log_no_delete ON audit_log",
        ],
    };
    for sql in statements {
        sqlx::query(sql).execute(db.db.pool()).await.unwrap();
    }
}

both_databases!(
    a_whole_log_verification_runs_in_the_background_one_at_a_time,
    |engine| {
        let db = TestDb::new(engine).await.unwrap();
        audit_fill(&db.db, 3_000, START, 1_000).await;
        let clock = TestClock::at(START + 10_000_000);
        let anchorer = Arc::new(Anchorer::ephemeral(1_000));
        assert_eq!(status(&db).await, VerifyStatus::default());

        assert!(
            job::start(&db.db, clock.now_ms(), "sam@acme", None, None)
                .await
                .unwrap()
        );
        // A second press while it waits or runs starts nothing.
        assert!(
            !job::start(&db.db, clock.now_ms(), "alex@acme", None, None)
                .await
                .unwrap()
        );
        let gate = Arc::new(Semaphore::new(0));
        let one = Verifier::new(db.db.clone(), anchorer.clone(), clock.shared())
            .with_page(500)
            .with_gate(gate.clone());
        let running = tokio::spawn(async move { one.run_once().await });

        // Progress while it runs: entries checked of the whole log, no problem.
        let s = until_checked(&db, 500).await;
        let job_now = s.running.unwrap();
        assert_eq!(job_now.state, "running");
        assert_eq!(job_now.requested_by, "sam@acme");
        assert_eq!(job_now.total, Some(3_000));
        assert_eq!(job_now.checked, 500);
        assert!(job_now.started_at.is_some());
        assert_eq!(job_now.first_problem, None);
        assert!(s.last.is_none());
        // Still one at a time: not pressed again, not run by another instance.
        assert!(
            !job::start(&db.db, clock.now_ms(), "alex@acme", None, None)
                .await
                .unwrap()
        );
        let other = Verifier::new(db.db.clone(), anchorer.clone(), clock.shared());
        assert_eq!(other.run_once().await.unwrap(), Ran::Idle);

        gate.add_permits(1_000);
        assert_eq!(
            running.await.unwrap().unwrap(),
            Ran::Finished("intact".into())
        );
        let s = status(&db).await;
        assert!(s.running.is_none());
        let last = s.last.unwrap();
        assert_eq!(last.state, "intact");
        assert_eq!(last.checked, 3_000);
        assert!(last.rate > 0);
        assert_eq!(last.problems, 0);
        assert!(last.finished_at.is_some());
        let inline = view_of(
            verify_anchored(&db.db, &anchorer, None, None)
                .await
                .unwrap(),
        );
        assert_eq!(last.result, Some(inline));
        assert!(matches!(
            last.result,
            Some(VerifyView::Intact {
                entries: 3_000,
                first_seq: 1,
                last_seq: 3_000,
                ..
            })
        ));
        // Once it finished, another can start.
        clock.advance(Duration::from_secs(5));
        assert!(
            job::start(&db.db, clock.now_ms(), "alex@acme", None, None)
                .await
                .unwrap()
        );
        assert_eq!(
            other.run_once().await.unwrap(),
            Ran::Finished("intact".into())
        );
        assert_eq!(status(&db).await.last.unwrap().requested_by, "alex@acme");
    }
);

both_databases!(the_first_problem_shows_while_the_run_carries_on, |engine| {
    let db = TestDb::new(engine).await.unwrap();
    audit_fill(&db.db, 3_000, START, 1_000).await;
    drop_triggers(&db).await;
    sqlx::query("UPDATE audit_log SET details = '{\"changed\":true}' WHERE seq = 700")
        .execute(db.db.pool())
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_log WHERE seq = 1800")
        .execute(db.db.pool())
        .await
        .unwrap();
    let clock = TestClock::at(START + 10_000_000);
    let anchorer = Arc::new(Anchorer::ephemeral(1_000));
    assert!(
        job::start(&db.db, clock.now_ms(), "sam@acme", None, None)
            .await
            .unwrap()
    );
    let gate = Arc::new(Semaphore::new(0));
    let verifier = Verifier::new(db.db.clone(), anchorer.clone(), clock.shared())
        .with_page(500)
        .with_gate(gate.clone());
    let running = tokio::spawn(async move { verifier.run_once().await });
    gate.add_permits(1);
    let s = until_checked(&db, 1_000).await;
    let now = s.running.unwrap();
    let first = now.first_problem.unwrap();
    assert_eq!((first.seq, first.problem.as_str()), (700, "changed"));
    assert_eq!(now.problems, 1);

    gate.add_permits(1_000);
    assert_eq!(
        running.await.unwrap().unwrap(),
        Ran::Finished("broken".into())
    );
    let last = status(&db).await.last.unwrap();
    assert_eq!(last.state, "broken");
    assert_eq!(last.problems, 2, "entry 700 changed, entry 1800 missing");
    assert_eq!(last.checked, 2_999);
    // The result is what verifying inline says: the first problem, with the anchors.
    let inline = view_of(
        verify_anchored(&db.db, &anchorer, None, None)
            .await
            .unwrap(),
    );
    assert_eq!(last.result, Some(inline));
    assert!(matches!(
        last.result,
        Some(VerifyView::Broken { seq: 700, ref problem, .. }) if problem == "changed"
    ));
});

both_databases!(
    a_run_whose_instance_died_is_carried_on_by_another,
    |engine| {
        let db = TestDb::new(engine).await.unwrap();
        audit_fill(&db.db, 3_000, START, 1_000).await;
        let clock = TestClock::at(START + 10_000_000);
        let anchorer = Arc::new(Anchorer::ephemeral(1_000));
        assert!(
            job::start(&db.db, clock.now_ms(), "sam@acme", None, None)
                .await
                .unwrap()
        );
        let gate = Arc::new(Semaphore::new(0));
        let dying = Verifier::new(db.db.clone(), anchorer.clone(), clock.shared())
            .with_page(500)
            .with_gate(gate.clone());
        let running = tokio::spawn(async move { dying.run_once().await });
        gate.add_permits(2);
        until_checked(&db, 1_500).await;
        // The instance dies mid-run.
        running.abort();
        let _ = running.await;
        // Its lease holds for a while: nobody else takes over yet.
        let other = Verifier::new(db.db.clone(), anchorer.clone(), clock.shared()).with_page(500);
        assert_eq!(other.run_once().await.unwrap(), Ran::Idle);
        clock.advance(Duration::from_secs(61));
        assert_eq!(
            other.run_once().await.unwrap(),
            Ran::Finished("intact".into())
        );
        let last = status(&db).await.last.unwrap();
        assert_eq!(last.checked, 3_000, "carried on from where it was");
        assert!(matches!(
            last.result,
            Some(VerifyView::Intact { entries: 3_000, .. })
        ));
    }
);

both_databases!(a_range_verification_checks_only_its_range, |engine| {
    let db = TestDb::new(engine).await.unwrap();
    audit_fill(&db.db, 3_000, START, 1_000).await;
    let clock = TestClock::at(START + 10_000_000);
    let anchorer = Arc::new(Anchorer::ephemeral(1_000));
    assert!(
        job::start(&db.db, clock.now_ms(), "sam@acme", Some(1_001), Some(2_500))
            .await
            .unwrap()
    );
    let verifier = Verifier::new(db.db.clone(), anchorer.clone(), clock.shared());
    assert_eq!(
        verifier.run_once().await.unwrap(),
        Ran::Finished("intact".into())
    );
    let last = status(&db).await.last.unwrap();
    assert_eq!(last.total, Some(1_500));
    assert_eq!(last.checked, 1_500);
    let inline = view_of(
        verify_anchored(&db.db, &anchorer, Some(1_001), Some(2_500))
            .await
            .unwrap(),
    );
    assert_eq!(last.result, Some(inline));
});
