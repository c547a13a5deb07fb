//! The audit page under load with 1,000,000 entries, and the streamed exports of all of them.
//!
//! Starts the real portal (embedded sandbox org) on SQLite and on PostgreSQL, appends
//! `BENCH_AUDIT_ENTRIES` (default 1,000,000) chained entries, signs in as the security
//! reviewer through the sandbox org's login page, and has `wrk` (Debian's package) load the
//! server-rendered page (what a browser gets on a full page load):
//!
//! - the first page (newest 50 entries);
//! - a filtered page (one actor and one outcome);
//! - a page deep in the log (the cursor half-way down);
//! - text searches in the details (the full-text index): a rare word, a common phrase, a
//!   word's start, one entry's number;
//! - the first page again while "Verify chain" runs over the whole log in the background
//!   (the portal's own job), then the verification's time.
//!
//! Then it downloads the CSV and the JSON Lines export of the whole log, counting lines as
//! they stream in (nothing is kept), and prints rows per second and the process's peak
//! memory during the export (the peak is reset just before; the portal runs in this process,
//! so the figure covers server and client together).
//!
//! ```sh
//! cargo bench -p server --bench audit_page
//! BENCH_AUDIT_ENTRIES=200000 BENCH_SECONDS=5 cargo bench -p server --bench audit_page
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/wrk.rs"]
mod wrk;

use std::time::Instant;

use common::Db;
use common::portal::{self, spawn_portal};
use futures::StreamExt;
use test_kit::bench::{peak_rss_mib, reset_peak_rss};

fn main() {
    let entries = test_kit::bench::setting("BENCH_AUDIT_ENTRIES", 1_000_000) as i64;
    let seconds = test_kit::bench::setting("BENCH_SECONDS", 10);
    let connections = test_kit::bench::setting("BENCH_CONNECTIONS", 8);
    wrk::require_wrk("audit_page");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!(
        "audit page: {entries} entries, wrk {connections} connections, {seconds} s per target"
    );
    for db in [Db::Sqlite, Db::Postgres] {
        runtime.block_on(run(db, entries, seconds, connections));
    }
}

async fn run(db: Db, entries: i64, seconds: u64, connections: u64) {
    let Some(app) = spawn_portal(db).await else {
        println!("{db:?}: SKIPPED (PostgreSQL does not answer)");
        return;
    };
    let started = Instant::now();
    // A year of entries, about 30 s apart, ending now.
    let step = (365 * 86_400_000 / entries.max(1)).max(1);
    let start = services::clock::now_ms() - step * entries;
    test_kit::audit_fill(&app.db, entries, start, step).await;
    if app.kind == Db::Postgres {
        sqlx::query("ANALYZE audit_log")
            .execute(app.db.pool())
            .await
            .expect("ANALYZE");
    }
    println!(
        "{db:?}: appended {entries} entries in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let (client, cookie) = wrk::signed_in(&app, portal::SAM).await;

    let targets = [
        ("first page", "/audit".to_string()),
        (
            "actor + outcome",
            "/audit?actor=system&outcome=failure".to_string(),
        ),
        ("deep cursor", format!("/audit?before={}", entries / 2)),
        ("text search", "/audit?q=needle".to_string()),
        // Every entry's details hold "generated entry <seq>": a common phrase, and a prefix.
        ("common phrase", "/audit?q=generated+entry".to_string()),
        ("word prefix", "/audit?q=gener".to_string()),
        // One entry's number: the newest entries hold none of it.
        ("one entry", format!("/audit?q=entry+{}", entries / 3)),
    ];
    for (name, path) in &targets {
        // Each target answers with entries before it is measured.
        let html = client
            .get(app.at(path))
            .send()
            .await
            .expect("GET the audit page")
            .text()
            .await
            .expect("page body");
        assert!(
            html.contains("Audit entries"),
            "{name}: the page lists entries"
        );
        let report = wrk::load(name, &app.at(path), &cookie, connections, seconds, None).await;
        println!(
            "{db:?}: {name:<16} p50 {:>9}  p90 {:>9}  p99 {:>9}  {:>8} req/s  ({} requests)",
            report.p50, report.p90, report.p99, report.rate, report.requests
        );
    }

    for (name, path) in [
        ("CSV export", "/audit/export.csv"),
        ("JSONL export", "/audit/export.jsonl"),
    ] {
        reset_peak_rss();
        let started = Instant::now();
        let response = client
            .get(app.at(path))
            .send()
            .await
            .expect("GET the export");
        assert!(
            response.status().is_success(),
            "{name}: {}",
            response.status()
        );
        let mut stream = response.bytes_stream();
        let (mut lines, mut bytes) = (0u64, 0u64);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.expect("the export streams to the end");
            bytes += chunk.len() as u64;
            lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let rows = if name.starts_with("CSV") {
            lines - 1
        } else {
            lines
        };
        assert!(
            rows >= entries as u64,
            "{name}: {rows} rows for {entries} entries"
        );
        println!(
            "{db:?}: {name:<16} {rows} rows, {:.0} MiB in {elapsed:.1} s: {:.0} rows/s, peak RSS {:.0} MiB",
            bytes as f64 / 1_048_576.0,
            rows as f64 / elapsed,
            peak_rss_mib()
        );
    }

    // "Verify chain" over the whole log, as the page's button starts it: the portal's own
    // job runs it in the background while wrk loads the first page; the page must stay
    // responsive meanwhile (its p99 printed beside the idle one above).
    let started = Instant::now();
    assert!(
        app.portal
            .start_audit_verification("bench", None, None)
            .await
            .expect("start the verification"),
        "no verification was running"
    );
    let report = wrk::load(
        "during verify",
        &app.at("/audit"),
        &cookie,
        connections,
        seconds,
        None,
    )
    .await;
    let running = app
        .portal
        .audit_verification()
        .await
        .expect("status")
        .running
        .is_some();
    println!(
        "{db:?}: {:<16} p50 {:>9}  p90 {:>9}  p99 {:>9}  {:>8} req/s  ({} requests; verify {} at the end of the load)",
        "/audit, verifying",
        report.p50,
        report.p90,
        report.p99,
        report.rate,
        report.requests,
        if running {
            "still running"
        } else {
            "already finished"
        }
    );
    let last = loop {
        let status = app.portal.audit_verification().await.expect("status");
        if status.running.is_none()
            && let Some(last) = status.last
        {
            break last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    println!(
        "{db:?}: background verify of the whole log: {} ({} entries checked) in {:.1} s",
        last.state,
        last.checked,
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let verified = services::audit::verify(&app.db, None, None)
        .await
        .expect("verify");
    println!(
        "{db:?}: verify whole log: {:?} in {:.1} s",
        verified,
        started.elapsed().as_secs_f64()
    );
    app.stop().await.expect("portal stops");
}
