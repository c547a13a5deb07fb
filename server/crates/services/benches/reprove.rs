//! Re-proving every grant (drift detection, issue 18, must-show 5): `BENCH_GRANTS` (default
//! 500) ready grants over an in-process sandbox org, then every Salesforce call gets
//! `BENCH_LATENCY_MS` (default 100) added (the sandbox org's `delayMs` fault on
//! `/services/*`: REST, SOAP, Connect and the contractor's token exchanges) and
//! `Portal::reprove_all` runs with `BENCH_CONCURRENCY` (default 4) grants at a time. It prints
//! the total time, grants per second, and the Salesforce calls per grant: the org's call log
//! (API calls; OAuth token requests are not in it) and the portal's own count, by kind.
//! The grants are provisioned first, without latency (not timed). SQLite, and PostgreSQL
//! with `BENCH_POSTGRES=1`. Figures only: nothing here asserts a time.
//!
//! ```sh
//! cargo bench -p services --bench reprove
//! BENCH_GRANTS=50 BENCH_LATENCY_MS=100 cargo bench -p services --bench reprove
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;
use services::assurance::AssuranceSettings;
use test_kit::Engine;
use test_kit::portal::{TestPortal, approved_grant, case_scope_visible, first_case_ids, worker};

fn main() {
    let grants = test_kit::bench::setting("BENCH_GRANTS", 500) as usize;
    let latency = test_kit::bench::setting("BENCH_LATENCY_MS", 100);
    let concurrency = test_kit::bench::setting("BENCH_CONCURRENCY", 4) as usize;
    let postgres = test_kit::bench::setting("BENCH_POSTGRES", 0) == 1;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!(
        "reprove: {grants} grants, {latency} ms added to every Salesforce call, {concurrency} grants at a time"
    );
    runtime.block_on(async {
        let mut engines = vec![("SQLite", Engine::Sqlite)];
        if postgres {
            engines.push(("PostgreSQL", Engine::Postgres));
        }
        for (label, engine) in engines {
            match test_kit::portal::portal_with_org(engine).await {
                Some(mut t) => run(label, &mut t, grants, latency, concurrency).await,
                None => println!("{label}: SKIPPED (it does not answer)"),
            }
        }
    });
}

fn kind(call: &serde_json::Value) -> String {
    let path = call["path"]
        .as_str()
        .unwrap_or_default()
        .split('/')
        .map(|part| {
            let id_like = part.len() >= 15
                && part.chars().all(|c| c.is_ascii_alphanumeric())
                && part.chars().any(|c| c.is_ascii_digit());
            if id_like {
                "{id}"
            } else if part.starts_with('v') && part.contains('.') || part.ends_with(".0") {
                "{version}"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    format!("{} {path}", call["method"].as_str().unwrap_or("?"))
}

async fn run(label: &str, t: &mut TestPortal, grants: usize, latency: u64, concurrency: usize) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    t.org_settings(json!({ "integrationLicenses": grants + 10, "dailyApiLimit": 10_000_000 }))
        .await;
    t.portal = t.portal.clone().with_assurance(AssuranceSettings {
        concurrency,
        ..AssuranceSettings::default()
    });
    let cases = first_case_ids(t, 1).await;
    let setup = Instant::now();
    let mut ids = Vec::with_capacity(grants);
    for i in 0..grants {
        ids.push(
            approved_grant(
                t,
                &format!("Bench {label} {i}"),
                case_scope_visible(shared::scope::VisibilityRule::Shared, cases.clone(), None),
            )
            .await,
        );
    }
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let w = worker(t);
            tokio::spawn(async move { w.run_until_idle().await.unwrap() })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    worker(t).run_until_idle().await.unwrap();
    let ready: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM grants WHERE state = 'ready'")
        .fetch_one(t.db().pool())
        .await
        .unwrap();
    println!(
        "{label}: {ready} of {grants} grants ready after {:.1} s of provisioning (not timed below)",
        setup.elapsed().as_secs_f64()
    );

    t.set_faults(json!([{ "path": "/services/*", "delayMs": latency }]))
        .await;
    let before = t
        .call_log()
        .await
        .last()
        .and_then(|c| c["seq"].as_u64())
        .unwrap_or(0);
    let started = Instant::now();
    let summary = t.reprove_all().await.unwrap();
    let took = started.elapsed();
    t.clear_faults().await;
    let calls: Vec<_> = t
        .call_log()
        .await
        .into_iter()
        .filter(|c| c["seq"].as_u64().unwrap_or(0) > before)
        .collect();
    let mut counted = 0u64;
    for id in &ids {
        if let Some(p) = services::assurance::last_proof(t.db(), id).await.unwrap() {
            counted += u64::from(p.calls.unwrap_or(0));
        }
    }
    let proved = summary.proved.max(1) as f64;
    println!(
        "{label}: re-proved {} grants in {:.1} s ({:.1} grants/s; {} passed, {} drifted, {} failed)",
        summary.proved,
        took.as_secs_f64(),
        summary.proved as f64 / took.as_secs_f64().max(f64::EPSILON),
        summary.passed,
        summary.drifted,
        summary.failed
    );
    println!(
        "{label}: Salesforce API calls per grant: {:.2} (the org's call log: {} calls), {:.2} (the portal's count); OAuth token requests (one per grant, the contractor's) come on top",
        calls.len() as f64 / proved,
        calls.len(),
        counted as f64 / proved,
    );
    let mut kinds = BTreeMap::<String, usize>::new();
    for call in &calls {
        *kinds.entry(kind(call)).or_default() += 1;
    }
    for (kind, n) in &kinds {
        println!("    {:.2} × {kind} per grant", *n as f64 / proved);
    }
    let _ = Duration::ZERO;
}
