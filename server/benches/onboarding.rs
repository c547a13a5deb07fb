//! Approval to a proven credential, with latency on every Salesforce call.
//!
//! Starts a standalone sandbox org (its own process, over HTTPS) that holds every request
//! for `BENCH_LATENCY_MS` (default 100) before handling it, and the real portal binary
//! (two provisioning workers) on SQLite and on PostgreSQL. Then, one grant at a time
//! (`BENCH_RUNS`, default 5): a request is submitted, confirmed and approved, and the clock
//! runs from the approval until the grant is `ready` (its least-privilege proof passed).
//! It prints each run's wall time, and the API calls each onboarding made: as Portcullis
//! counted them, and as the org counted them against its daily limit.
//!
//! ```sh
//! cargo bench -p server --bench onboarding
//! BENCH_RUNS=10 BENCH_LATENCY_MS=200 cargo bench -p server --bench onboarding
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::binary::{self, PortalProcess, approve_grants, case_scope, open_database};
use common::sandbox::{StandaloneOrg, first_cases};
use common::{PgDatabase, postgres_available};
use serde_json::json;

fn main() {
    let runs = test_kit::bench::setting("BENCH_RUNS", 5) as usize;
    let latency = test_kit::bench::setting("BENCH_LATENCY_MS", 100);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!("onboarding: {latency} ms added to every Salesforce call, {runs} runs per database");
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = format!("sqlite://{}/bench.db?mode=rwc", dir.path().display());
        run("SQLite", &sqlite, runs, latency).await;
        if postgres_available("onboarding bench").await {
            let pg = PgDatabase::create().await;
            run("PostgreSQL", &pg.url, runs, latency).await;
        } else {
            println!("PostgreSQL: SKIPPED (it does not answer)");
        }
    });
}

async fn run(label: &str, url: &str, runs: usize, latency: u64) {
    let org = StandaloneOrg::start();
    let cases: Vec<String> = first_cases(&org.admin_client(), 2)
        .await
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    let db = open_database(url).await;
    let dir = tempfile::tempdir().unwrap();
    let portal = PortalProcess::start(&org, url, dir.path(), 2);
    // Let the portal's start-up calls (its access catalog) finish before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;
    binary::set_faults(&org, json!([{ "path": "/services/*", "delayMs": latency }])).await;
    let mut times = Vec::new();
    for run in 0..runs {
        let scope = case_scope(cases.clone());
        let before = binary::call_log(&org)
            .await
            .last()
            .and_then(|c| c["seq"].as_u64())
            .unwrap_or(0);
        let grant = approve_grants(&db, &org, &[format!("Bench {label} {run}")], &scope, "")
            .await
            .remove(0);
        let started = Instant::now();
        let state = loop {
            let state: String = sqlx::query_scalar("SELECT state FROM grants WHERE id = $1")
                .bind(&grant)
                .fetch_one(db.pool())
                .await
                .unwrap();
            if !matches!(state.as_str(), "approved" | "provisioning") {
                break state;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "run {run} did not finish"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let elapsed = started.elapsed();
        assert_eq!(state, "ready", "run {run}");
        let ours: i64 = sqlx::query_scalar("SELECT api_calls FROM grants WHERE id = $1")
            .bind(&grant)
            .fetch_one(db.pool())
            .await
            .unwrap();
        // The org's count: calls in the window that counted against its daily limit (the
        // approval itself makes none; the portal does nothing else meanwhile).
        let counted = binary::call_log(&org)
            .await
            .iter()
            .filter(|c| c["seq"].as_u64().unwrap_or(0) > before && c["counted"] == true)
            .count();
        println!(
            "{label} run {run}: approval to proven credential {:.2} s, API calls {ours} (org counted {counted})",
            elapsed.as_secs_f64()
        );
        times.push(elapsed);
    }
    times.sort();
    println!(
        "{label}: median {:.2} s, worst {:.2} s",
        times[times.len() / 2].as_secs_f64(),
        times[times.len() - 1].as_secs_f64()
    );
    portal.kill9();
    db.close().await;
}
