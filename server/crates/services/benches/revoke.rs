//! "Revoke access now" to a refused token, with latency on every Salesforce call, and the
//! Salesforce calls a teardown makes (issue 17, must-show 5).
//!
//! On SQLite and on PostgreSQL, over an in-process sandbox org: `BENCH_RUNS` (default 5)
//! times, a grant for Case is approved and provisioned (no latency), its credential is read
//! and shown to work (a client-credentials token exchange); then every Salesforce call gets
//! `BENCH_LATENCY_MS` (default 100) added (the sandbox org's `delayMs` fault on
//! `/services/*`, the contractor's token exchanges included), an approver revokes the grant,
//! two workers tear it down, and the clock runs from the revoke until the org first refuses
//! the credential's token exchange (tried again as soon as the previous answer arrives).
//! It prints each run's time to refusal and to the end of the teardown, the median and the
//! worst, and the API calls the teardown made (the org's call log, which holds API calls, not
//! OAuth token requests), by kind for the first run. Figures only: nothing here asserts a
//! time.
//!
//! ```sh
//! cargo bench -p services --bench revoke
//! BENCH_RUNS=10 BENCH_LATENCY_MS=200 cargo bench -p services --bench revoke
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use salesforce::ExposeSecret;
use serde_json::json;
use test_kit::Engine;
use test_kit::portal::{TestPortal, approved_grant, approver, case_scope, output_of, worker};

fn main() {
    let runs = test_kit::bench::setting("BENCH_RUNS", 5) as usize;
    let latency = test_kit::bench::setting("BENCH_LATENCY_MS", 100);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!(
        "revoke: {latency} ms added to every Salesforce call, {runs} runs per database, two teardown workers"
    );
    runtime.block_on(async {
        for (label, engine) in [("SQLite", Engine::Sqlite), ("PostgreSQL", Engine::Postgres)] {
            match test_kit::portal::portal_with_org(engine).await {
                Some(t) => run(label, &t, runs, latency).await,
                None => println!("{label}: SKIPPED (it does not answer)"),
            }
        }
    });
}

/// The grant's consumer key and secret, read through Connect REST as the portal (the
/// reveal hands the same pair over).
async fn credential(t: &TestPortal, grant: &str) -> (String, String) {
    let consumer = output_of(t, grant, "consumer").await;
    let credential = t
        .salesforce()
        .consumer_credential(
            consumer["app_id"].as_str().unwrap(),
            consumer["consumer_id"].as_str().unwrap(),
            salesforce::connect::CredentialPart::KeyAndSecret,
        )
        .await
        .unwrap();
    (
        credential.key.unwrap(),
        credential.secret.unwrap().expose_secret().to_string(),
    )
}

/// One client-credentials token exchange with the contractor's pair: whether the org
/// handed out a token.
async fn exchange(http: &reqwest::Client, org: &str, key: &str, secret: &str) -> bool {
    http.post(format!("{org}/services/oauth2/token"))
        .basic_auth(key, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .map(|r| r.status().is_success())
        .unwrap_or(false)
}

async fn state_of(t: &TestPortal, grant: &str) -> String {
    sqlx::query_scalar("SELECT state FROM grants WHERE id = $1")
        .bind(grant)
        .fetch_one(t.db().pool())
        .await
        .unwrap()
}

async fn last_seq(t: &TestPortal) -> u64 {
    t.call_log()
        .await
        .last()
        .and_then(|c| c["seq"].as_u64())
        .unwrap_or(0)
}

async fn run(label: &str, t: &TestPortal, runs: usize, latency: u64) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let org = t.org_url();
    // Every run needs a licence of its own (the org is seeded with five).
    t.org_settings(json!({ "integrationLicenses": runs + 10 }))
        .await;
    let (_, actor) = approver("alice@acme.example");
    let mut refused_after = Vec::new();
    let mut torn_down_after = Vec::new();
    for run in 0..runs {
        let grant = approved_grant(t, &format!("Bench {label} {run}"), case_scope()).await;
        worker(t).run_until_idle().await.unwrap();
        assert_eq!(state_of(t, &grant).await, "ready", "run {run}: provisioned");
        let (key, secret) = credential(t, &grant).await;
        assert!(
            exchange(&http, &org, &key, &secret).await,
            "run {run}: the credential works before the revoke"
        );

        t.set_faults(json!([{ "path": "/services/*", "delayMs": latency }]))
            .await;
        let before = last_seq(t).await;
        let started = Instant::now();
        t.revoke_access(&grant, &actor, "Benchmark: the contract ended")
            .await
            .unwrap();
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let engine = worker(t);
                let db = t.db().clone();
                let grant = grant.clone();
                tokio::spawn(async move {
                    loop {
                        engine.run_until_idle().await.unwrap();
                        let state: String =
                            sqlx::query_scalar("SELECT state FROM grants WHERE id = $1")
                                .bind(&grant)
                                .fetch_one(db.pool())
                                .await
                                .unwrap();
                        if state == "revoked" {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
            })
            .collect();
        let mut probes = 0u64;
        let refused = loop {
            probes += 1;
            if !exchange(&http, &org, &key, &secret).await {
                break started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "run {run}: the token was never refused"
            );
        };
        for w in workers {
            tokio::time::timeout(Duration::from_secs(300), w)
                .await
                .expect("the teardown finishes")
                .unwrap();
        }
        let torn_down = started.elapsed();
        let calls: Vec<_> = t
            .call_log()
            .await
            .into_iter()
            .filter(|c| c["seq"].as_u64().unwrap_or(0) > before)
            .collect();
        // The org's call log holds the API calls (REST, Metadata, Connect), not OAuth token
        // requests: the contractor's exchanges above are not in it (nor the teardown's own
        // last try of the credential), so every call in the window is the teardown's.
        let teardown_calls = calls.len();
        t.clear_faults().await;
        println!(
            "{label} run {run}: revoke → token refused {:.2} s, teardown done {:.2} s, {teardown_calls} Salesforce API calls (the contractor tried the token {probes} times)",
            refused.as_secs_f64(),
            torn_down.as_secs_f64(),
        );
        if run == 0 {
            // What the calls were: method and path, Salesforce ids and versions left out.
            let mut kinds = std::collections::BTreeMap::<String, i64>::new();
            for call in &calls {
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
                        } else if part.starts_with('v') && part.contains('.') {
                            "{version}"
                        } else {
                            part
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("/");
                *kinds
                    .entry(format!("{} {path}", call["method"].as_str().unwrap_or("?")))
                    .or_default() += 1;
            }
            for (kind, n) in &kinds {
                println!("    {n} × {kind}");
            }
        }
        refused_after.push(refused);
        torn_down_after.push(torn_down);
    }
    refused_after.sort();
    torn_down_after.sort();
    println!(
        "{label}: revoke → token refused: median {:.2} s, worst {:.2} s; teardown done: median {:.2} s, worst {:.2} s",
        refused_after[refused_after.len() / 2].as_secs_f64(),
        refused_after[refused_after.len() - 1].as_secs_f64(),
        torn_down_after[torn_down_after.len() / 2].as_secs_f64(),
        torn_down_after[torn_down_after.len() - 1].as_secs_f64(),
    );
}
