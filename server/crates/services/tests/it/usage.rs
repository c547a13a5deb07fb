//! The usage collector against an in-process sandbox org, on SQLite and PostgreSQL, with
//! ApiTotalUsage files placed through the sandbox's control API: a re-delivered daily file
//! replaces the one before it, hourly and daily files of the same hours are counted once,
//! composite calls are one row each, quoted values with commas, line breaks and tripled
//! quotes, unknown columns, rows outside the file's period, calls that do not count, a
//! download cut off part-way (retried within the run, or failing the run without counting
//! anything and read on the next), and a collector killed between download and commit.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::*;
use serde_json::json;
use services::usage::collector::{Checkpoint, Collector};
use test_kit::usage_files::{HEADER, at, csv};

/// Places a file in the org; returns its id.
async fn place(t: &TestPortal, interval: &str, log_date: i64, csv: String) -> String {
    test_kit::usage_files::place(t.org.as_ref().unwrap().base_url(), interval, log_date, csv).await
}

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// Crafted users (15 characters, as the files carry them).
const KIM: &str = "005KIM000000001";
const LEE: &str = "005LEE000000002";
const MAY: &str = "005MAY000000003";

/// One call of `user` at `at`, with `client` as CLIENT_NAME.
fn row(user: &str, at: DateTime<Utc>, resource: &str, client: &str, counts: bool) -> Vec<String> {
    [
        "ApiTotalUsage".to_string(),
        at.format("%Y%m%d%H%M%S%.3f").to_string(),
        uuid::Uuid::new_v4().simple().to_string()[..22].to_string(),
        "00D5g000000AbCd".into(),
        user.into(),
        format!("{}@contractor.example", user.to_ascii_lowercase()),
        "REST".into(),
        "66.0".into(),
        resource.into(),
        "GET".into(),
        "200".into(),
        "Case".into(),
        client.into(),
        "203.0.113.7".into(),
        "0H45g000000AbCd".into(),
        "Contractor App".into(),
        if counts { "true" } else { "false" }.into(),
        "EXTERNAL_APPLICATION".into(),
        at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    ]
    .to_vec()
}

/// `n` counted queries by `user`, one a second from `start_ms`.
fn queries(user: &str, start_ms: i64, n: i64, client: &str) -> Vec<Vec<String>> {
    (0..n)
        .map(|i| row(user, at(start_ms + i * 1000), "/v66.0/query", client, true))
        .collect()
}

/// The start of the UTC day `days` ago.
fn day(days: i64) -> i64 {
    let now = services::clock::now_ms();
    now.div_euclid(DAY_MS) * DAY_MS - days * DAY_MS
}

/// Counted calls of `user` in hours starting in `[from, to)`, as the budgets see them.
async fn counted(t: &TestPortal, user: &str, from: i64, to: i64) -> u64 {
    services::usage::budgets::counted(&t.db.db, user, from, to)
        .await
        .unwrap()
}

fn collector(t: &TestPortal) -> Collector {
    t.usage_collector()
}

test_kit::both_databases!(crafted_files_are_each_counted_once, |engine| {
    let Some(t) = portal_with_org(engine).await else {
        return;
    };
    // A daily file two days ago, with awkward values, unknown columns and a new order.
    let d2 = day(2);
    let mut header: Vec<&str> = HEADER.to_vec();
    header.reverse();
    header.insert(3, "SOMETHING_NEW");
    let reorder = |row: Vec<String>| -> Vec<String> {
        let mut row = row;
        row.reverse();
        row.insert(3, "x, \"y\"\nz".into());
        row
    };
    let first = csv(
        &header,
        &[
            reorder(row(
                KIM,
                at(d2 + 10 * HOUR_MS),
                "/v66.0/query",
                "sync, nightly",
                true,
            )),
            reorder(row(
                KIM,
                at(d2 + 10 * HOUR_MS + 60_000),
                "/v66.0/composite",
                "the \"fast\" one",
                true,
            )),
            reorder(row(
                KIM,
                at(d2 + 11 * HOUR_MS),
                "/v66.0/sobjects/Case/500",
                "two\nlines",
                true,
            )),
            // Does not count against the org's limit.
            reorder(row(
                KIM,
                at(d2 + 11 * HOUR_MS),
                "/v66.0/limits",
                "\"\"\"quoted\"\"\"",
                false,
            )),
        ],
    );
    let first_id = place(&t, "Daily", d2, first).await;
    let report = collector(&t).run_once().await.unwrap();
    assert!(report.read.contains(&first_id), "{report:?}");
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(counted(&t, KIM, d2, d2 + DAY_MS).await, 3);

    // Re-delivered: the same day, more calls, a newer file. It replaces the first.
    let rows = queries(KIM, d2 + 12 * HOUR_MS, 5, "sync");
    let second_id = place(&t, "Daily", d2, csv(HEADER, &rows)).await;
    assert_ne!(first_id, second_id);
    let report = collector(&t).run_once().await.unwrap();
    assert!(report.read.contains(&second_id), "{report:?}");
    assert_eq!(
        counted(&t, KIM, d2, d2 + DAY_MS).await,
        5,
        "the re-delivered file replaced the first (not 3 + 5)"
    );

    // Hourly and daily files of the same day: each hour from one file only. The daily
    // file has 10 calls at 09:00 and 4 at 10:00 (18-character ids: the files carry 15, but
    // either must match); the hourly file of 09:00 has the same 10, and a latent row of
    // 10:00 that belongs to another hour's file.
    let d3 = day(3);
    let lee18 = format!("{LEE}AAA");
    let nine = queries(&lee18, d3 + 9 * HOUR_MS, 10, "etl");
    let ten = queries(LEE, d3 + 10 * HOUR_MS, 4, "etl");
    place(
        &t,
        "Daily",
        d3,
        csv(HEADER, &[nine.clone(), ten.clone()].concat()),
    )
    .await;
    let mut hourly = nine.clone();
    hourly.push(row(
        LEE,
        at(d3 + 10 * HOUR_MS + 5000),
        "/v66.0/query",
        "late",
        true,
    ));
    place(&t, "Hourly", d3 + 9 * HOUR_MS, csv(HEADER, &hourly)).await;
    let report = collector(&t).run_once().await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(
        counted(&t, LEE, d3, d3 + DAY_MS).await,
        14,
        "not 24, nor 25"
    );
    assert_eq!(
        counted(&t, LEE, d3 + 9 * HOUR_MS, d3 + 10 * HOUR_MS).await,
        10
    );
    // The hour of 10:00 gets its own hourly file later, and is then counted from it.
    place(&t, "Hourly", d3 + 10 * HOUR_MS, csv(HEADER, &ten[..3])).await;
    collector(&t).run_once().await.unwrap();
    assert_eq!(
        counted(&t, LEE, d3 + 10 * HOUR_MS, d3 + 11 * HOUR_MS).await,
        3
    );
    assert_eq!(counted(&t, LEE, d3, d3 + DAY_MS).await, 13);
    let outside: i64 = sqlx::query_scalar(
        "SELECT CAST(SUM(rows_outside) AS BIGINT) FROM usage_files WHERE log_interval = 'Hourly'",
    )
    .fetch_one(t.db.db.pool())
    .await
    .unwrap();
    assert_eq!(outside, 1, "the latent row was recorded, not counted");

    // Nothing is read twice: a run with nothing new reads nothing of these days.
    let report = collector(&t).run_once().await.unwrap();
    assert!(report.already_read >= 4, "{report:?}");
    assert_eq!(counted(&t, KIM, d2, d2 + DAY_MS).await, 5);
    assert_eq!(counted(&t, LEE, d3, d3 + DAY_MS).await, 13);

    // The org's allocation and licences were recorded.
    let org = services::usage::report::latest_org(&t.db.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(org.daily_api_max, Some(15_000));
    assert!(org.daily_api_remaining.unwrap() < 15_000);
    assert_eq!(org.integration_licences_total, Some(5));
});

test_kit::both_databases!(
    a_cut_off_download_is_retried_and_never_half_counted,
    |engine| {
        let Some(t) = portal_with_org(engine).await else {
            return;
        };
        let d1 = day(1);
        let rows = queries(MAY, d1 + 8 * HOUR_MS, 40, "bulk, sync");
        let id = place(&t, "Daily", d1, csv(HEADER, &rows)).await;

        // The first download stops half-way: the run downloads the file again and counts it once.
        t.set_faults(
        json!([{ "path": "/services/data/*/sobjects/EventLogFile/*/LogFile", "truncateRate": 1, "times": 1 }]),
    )
    .await;
        let report = collector(&t).run_once().await.unwrap();
        assert!(report.read.contains(&id), "{report:?}");
        assert_eq!(counted(&t, MAY, d1, d1 + DAY_MS).await, 40);

        // Every download of a re-delivered file breaks off: the run fails that file, counts
        // none of it (the earlier version still stands) and leaves the cursor before it.
        let more = queries(MAY, d1 + 9 * HOUR_MS, 60, "bulk");
        let again = place(&t, "Daily", d1, csv(HEADER, &[rows.clone(), more].concat())).await;
        t.set_faults(
        json!([{ "path": "/services/data/*/sobjects/EventLogFile/*/LogFile", "truncateRate": 1 }]),
    )
    .await;
        let cursor_before: Option<i64> =
            sqlx::query_scalar("SELECT created_cursor FROM usage_collector WHERE id = 1")
                .fetch_one(t.db.db.pool())
                .await
                .unwrap();
        let report = collector(&t).run_once().await.unwrap();
        let failure = report
            .failed
            .iter()
            .find(|f| f.file_id == again)
            .unwrap_or_else(|| panic!("{report:?}"));
        assert!(
            failure.error.contains("failed 3 times"),
            "{}",
            failure.error
        );
        assert_eq!(
            counted(&t, MAY, d1, d1 + DAY_MS).await,
            40,
            "nothing half-counted"
        );
        let cursor_after: Option<i64> =
            sqlx::query_scalar("SELECT created_cursor FROM usage_collector WHERE id = 1")
                .fetch_one(t.db.db.pool())
                .await
                .unwrap();
        let created: i64 = {
            // The broken file's CreatedDate, as the org lists it.
            let files = t
                .salesforce()
                .event_log_files(&salesforce::eventlog::EventLogQuery {
                    event_type: "ApiTotalUsage".into(),
                    interval: None,
                    log_date_from: None,
                    created_after: None,
                })
                .await
                .unwrap();
            files
                .iter()
                .find(|f| f.id.as_str() == again)
                .and_then(|f| f.created_date)
                .unwrap()
                .timestamp_millis()
        };
        assert!(
            cursor_after.unwrap_or(0) < created,
            "the cursor stays before the unread file ({cursor_before:?} -> {cursor_after:?}, file {created})"
        );
        let last_error: Option<String> =
            sqlx::query_scalar("SELECT last_error FROM usage_collector WHERE id = 1")
                .fetch_one(t.db.db.pool())
                .await
                .unwrap();
        assert!(last_error.unwrap_or_default().contains(&again));

        // The network heals: the next run reads it, once.
        t.set_faults(json!([])).await;
        let report = collector(&t).run_once().await.unwrap();
        assert!(report.read.contains(&again), "{report:?}");
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        assert_eq!(counted(&t, MAY, d1, d1 + DAY_MS).await, 100);
    }
);

test_kit::both_databases!(
    the_collector_resumes_after_a_kill_between_download_and_commit,
    |engine| {
        let Some(t) = portal_with_org(engine).await else {
            return;
        };
        let (d4, d5) = (day(4), day(5));
        let kim = queries(KIM, d5 + 8 * HOUR_MS, 7, "a");
        let lee = queries(LEE, d4 + 8 * HOUR_MS, 11, "b");
        let first = place(&t, "Daily", d5, csv(HEADER, &kim)).await;
        let second = place(&t, "Daily", d4, csv(HEADER, &lee)).await;

        // The first run commits the first file and is killed with the second downloaded and
        // written but not committed (the task is dropped there, as a killed process stops).
        let (reached, mut at_commit) = tokio::sync::mpsc::unbounded_channel::<String>();
        let killed_at = second.clone();
        let hook: services::usage::collector::Hook = Arc::new(move |point| {
            let reached = reached.clone();
            let killed_at = killed_at.clone();
            Box::pin(async move {
                let Checkpoint::BeforeCommit { file_id } = point;
                if file_id == killed_at {
                    let _ = reached.send(file_id);
                    std::future::pending::<()>().await;
                }
            })
        });
        let lease = Duration::from_secs(5);
        let doomed = collector(&t).with_hook(hook).with_lease(lease);
        let started = std::time::Instant::now();
        let run = tokio::spawn(async move { doomed.run_once().await });
        let stopped_at = tokio::time::timeout(Duration::from_secs(30), at_commit.recv())
            .await
            .expect("the run reached the second file's commit")
            .unwrap();
        assert_eq!(stopped_at, second);
        run.abort();
        let _ = run.await;

        let read: Vec<String> = sqlx::query_scalar(
            "SELECT file_id FROM usage_files WHERE outcome = 'read' ORDER BY file_id",
        )
        .fetch_all(t.db.db.pool())
        .await
        .unwrap();
        assert!(read.contains(&first), "the first file was committed");
        assert!(!read.contains(&second), "the second one left no trace");
        assert_eq!(counted(&t, KIM, d5, d5 + DAY_MS).await, 7);
        assert_eq!(counted(&t, LEE, d4, d4 + DAY_MS).await, 0);

        // A new collector (another process) waits for the dead one's lease, then goes on.
        let restarted = collector(&t);
        if started.elapsed() < lease - Duration::from_secs(1) {
            assert!(matches!(
                restarted.run_once().await,
                Err(services::usage::collector::CollectError::Busy)
            ));
        }
        tokio::time::sleep((lease + Duration::from_millis(100)).saturating_sub(started.elapsed()))
            .await;
        let report = restarted.run_once().await.unwrap();
        assert!(report.read.contains(&second), "{report:?}");
        assert!(!report.read.contains(&first), "not read again: {report:?}");
        assert_eq!(
            counted(&t, KIM, d5, d5 + DAY_MS).await,
            7,
            "no double count"
        );
        assert_eq!(
            counted(&t, LEE, d4, d4 + DAY_MS).await,
            11,
            "nothing skipped"
        );
        let copies: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM usage_files WHERE file_id IN ($1, $2)")
                .bind(&first)
                .bind(&second)
                .fetch_one(t.db.db.pool())
                .await
                .unwrap();
        assert_eq!(copies, 2);
    }
);

test_kit::both_databases!(
    a_malformed_file_is_named_and_blocks_nothing_else,
    |engine| {
        let Some(t) = portal_with_org(engine).await else {
            return;
        };
        let d6 = day(6);
        let broken = place(
            &t,
            "Daily",
            d6,
            "\"USER_ID\",\"TIMESTAMP_DERIVED\"\n\"005KIM000000001\",\"2026-01-01T00:00:00Z\"\n"
                .into(),
        )
        .await;
        let d7 = day(7);
        let fine = place(
            &t,
            "Daily",
            d7,
            csv(
                HEADER,
                &[row(KIM, at(d7 + HOUR_MS), "/v66.0/query", "ok", true)],
            ),
        )
        .await;
        let report = collector(&t).run_once().await.unwrap();
        let failure = report.failed.iter().find(|f| f.file_id == broken).unwrap();
        assert!(
            failure.error.contains("COUNTS_AGAINST_API_LIMIT"),
            "the problem is named: {}",
            failure.error
        );
        assert!(report.read.contains(&fine), "{report:?}");
        assert_eq!(counted(&t, KIM, d7, d7 + DAY_MS).await, 1);
        let status = services::usage::collector::status(&t.db.db).await.unwrap();
        assert!(status.last_error.unwrap().contains(&broken));
    }
);

test_kit::both_databases!(
    a_late_hourly_file_adds_to_its_hour_and_a_malformed_row_is_skipped,
    |engine| {
        let Some(t) = portal_with_org(engine).await else {
            return;
        };
        let d = day(8);
        let nine = d + 9 * HOUR_MS;
        place(
            &t,
            "Hourly",
            nine,
            csv(HEADER, &queries(MAY, nine, 4, "etl")),
        )
        .await;
        let report = collector(&t).run_once().await.unwrap();
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        assert_eq!(counted(&t, MAY, nine, nine + HOUR_MS).await, 4);

        // Salesforce: a late hourly file "lists only the new events". Two new calls, and a
        // malformed row between them (too few values): the row is skipped and counted.
        let mut late = queries(MAY, nine + 60_000, 2, "etl");
        late.insert(1, vec!["ApiTotalUsage".into(), "broken".into()]);
        place(&t, "Hourly", nine, csv(HEADER, &late)).await;
        let report = collector(&t).run_once().await.unwrap();
        assert!(
            report.failed.is_empty(),
            "one malformed row refused the whole file: {:?}",
            report.failed
        );
        assert_eq!(
            counted(&t, MAY, nine, nine + HOUR_MS).await,
            6,
            "the late file is added to the hour (4 + 2), not put in its place"
        );

        let skipped: i64 =
            sqlx::query_scalar("SELECT CAST(SUM(rows_skipped) AS BIGINT) FROM usage_files")
                .fetch_one(t.db.db.pool())
                .await
                .unwrap();
        assert_eq!(skipped, 1, "the skipped row is counted");
        // The dashboard counts the skipped row and says how old the newest data is.
        let now = services::clock::now_ms();
        let overview = services::usage::report::overview(
            &t.db.db,
            services::usage::report::LicencePricing::default(),
            now,
        )
        .await
        .unwrap();
        assert_eq!(overview.rows_skipped, 1);
        // The newest file covers up to the end of its hour (the org's own calls today
        // count too).
        let through = overview.data_through.expect("a data age");
        assert!(
            through >= nine + HOUR_MS && through <= now + HOUR_MS,
            "{through}"
        );
    }
);
