//! The audit stream in the running application: its `audit_streaming` job sends what an
//! onboarding writes to a real syslog receiver (Python, RFC 5424 over TCP) on its own, the
//! cursor carries across a restart of the application over the same database, and
//! `portcullis audit-stream --from SEQ` (its library half, `backfill::run`) sends again from
//! a seq without moving the cursor. On SQLite and PostgreSQL.

use crate::common;

use std::time::Duration;

use common::portal::submit;
use common::{Db, TestApp};
use services::audit::{self, ChainCheck, GENESIS};
use services::audit_stream::{SinkKind, cursor};
use test_kit::syslog::SyslogReceiver;

async fn acked(db: &services::Database) -> i64 {
    cursor::get(db, "syslog")
        .await
        .unwrap()
        .map_or(0, |c| c.acked_seq)
}

/// Waits (up to 30 s) until the syslog sink acknowledged the whole log.
async fn until_caught_up(db: &services::Database) -> i64 {
    for _ in 0..300 {
        let head = audit::length(db).await.unwrap();
        if head > 0 && acked(db).await == head {
            return head;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the syslog sink did not catch up");
}

fn database_url(app: &TestApp) -> String {
    match &app.pg {
        Some(pg) => pg.url.clone(),
        None => format!(
            "sqlite://{}/portcullis.db?mode=rwc",
            app.dir.path().display()
        ),
    }
}

async fn streams_resumes_and_backfills(kind: Db) {
    let receiver = SyslogReceiver::start(None, 0);
    let url = receiver.url();
    let env = [
        ("AUDIT_SYSLOG_URL", url.as_str()),
        ("AUDIT_STREAM_INTERVAL_MS", "100"),
        ("AUDIT_STREAM_BATCH", "7"),
    ];
    let Some(app) = TestApp::spawn_env(kind, &env, |_| {}).await else {
        return;
    };
    // The job streams a contractor's request (submitted and confirmed) on its own.
    submit(&app, "Streamed Ltd", true).await;
    let head = until_caught_up(&app.db).await;
    let first_run = receiver.entries();
    assert!(first_run.last().unwrap().seq >= head);

    // Stopped, with an entry written while no portal runs, and started again over the same
    // database (its directory and PostgreSQL database kept): it resumes after the
    // acknowledged seq.
    let db_url = database_url(&app);
    let kept = stop_keeping(app).await;
    let dir = kept.dir.path().to_path_buf();
    // (The stopped application closed its pool.)
    let db = portcullis::db::open(&common::test_config(&dir, &db_url).database_url, 2)
        .await
        .unwrap();
    let offline = {
        let mut tx = db.pool().begin().await.unwrap();
        audit::record(
            &mut tx,
            &audit::Actor::system(),
            audit::AuditAction::SettingsChanged,
            audit::Target::Settings,
            "approvals",
            serde_json::json!({"while": "stopped"}),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        audit::length(&db).await.unwrap()
    };
    let acked_at_stop = acked(&db).await;
    assert!(acked_at_stop < offline);
    // (A batch the stop cut short may have reached the receiver unacknowledged.)
    let before_restart = receiver.lines().len();
    let config = common::test_config_with(
        &dir,
        &db_url,
        &[
            ("AUDIT_SYSLOG_URL", url.as_str()),
            ("AUDIT_STREAM_INTERVAL_MS", "100"),
        ],
    );
    let app = portcullis::Application::build(config).await.unwrap();
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run_until_stopped());
    until_caught_up(&db).await;
    shutdown.cancel();
    server.await.unwrap().unwrap();
    // (What the restarted portal acknowledged, up to its stop.)
    let acked_final = acked(&db).await;
    let all = receiver.entries();
    let resumed = &all[before_restart..];
    assert_eq!(
        resumed.first().map(|e| e.seq),
        Some(acked_at_stop + 1),
        "the restarted portal went on after the acknowledged entry"
    );
    assert!(acked_final >= offline);
    // Every entry arrived (repeats aside), and the received entries alone chain up to the
    // head's hash.
    let mut unique: Vec<&services::audit::Entry> = Vec::new();
    for entry in &all {
        if entry.seq == unique.len() as i64 + 1 {
            unique.push(entry);
        } else {
            assert!(
                entry.seq <= unique.len() as i64,
                "entry {} skipped ahead",
                entry.seq
            );
        }
    }
    assert!(unique.len() as i64 >= acked_final);
    let mut check = ChainCheck::resume(0, GENESIS.to_string(), 0);
    for entry in unique {
        assert_eq!(check.feed(entry), None, "chained");
    }

    // Backfill from entry 2: entries 2 to the head again, in order; the cursor stays.
    let before = receiver.lines().len();
    let config = common::test_config_with(&dir, &db_url, &[("AUDIT_SYSLOG_URL", url.as_str())]);
    let head = audit::length(&db).await.unwrap();
    let sent = portcullis::backfill::run(config, 2, Some(SinkKind::Syslog))
        .await
        .unwrap();
    assert_eq!(sent, vec![(SinkKind::Syslog, head - 1)]);
    let again: Vec<i64> = receiver.entries()[before..].iter().map(|e| e.seq).collect();
    assert_eq!(again, (2..=head).collect::<Vec<_>>());
    assert_eq!(
        acked(&db).await,
        acked_final,
        "the backfill leaves the cursor"
    );

    // A sink that is not configured is named, and nothing is sent.
    let config = common::test_config_with(&dir, &db_url, &[("AUDIT_SYSLOG_URL", url.as_str())]);
    let error = portcullis::backfill::run(config, 1, Some(SinkKind::Hec))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("hec sink is not configured"),
        "{error}"
    );
    drop(kept);
}

/// What a stopped test app leaves behind for the test to reuse.
struct TestAppParts {
    dir: tempfile::TempDir,
    /// Kept alive: dropping it drops the PostgreSQL database.
    _pg: Option<common::PgDatabase>,
}

/// Stops `app`'s server and keeps its directory and database.
async fn stop_keeping(mut app: TestApp) -> TestAppParts {
    let dir = std::mem::replace(&mut app.dir, tempfile::tempdir().unwrap());
    let pg = app.pg.take();
    app.stop().await.unwrap();
    TestAppParts { dir, _pg: pg }
}

test_kit::both_databases!(streams_resumes_and_backfills);
