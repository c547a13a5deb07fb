//! Throughput of the sandbox org over HTTPS on this machine: tokens issued per second
//! (client credentials) and authenticated queries of 200 records per second.
//!
//!     cargo bench -p sandbox-org --bench sandbox_org [-- SECONDS CONCURRENCY]
//!
//! Runs a standalone-configured org (HTTPS, state directory) in this process and drives it
//! with CONCURRENCY keep-alive clients for SECONDS per measurement. Figures, not assertions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sandbox_org::{SandboxConfig, SandboxOrg};

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().filter(|a| !a.starts_with("--")).collect();
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let concurrency: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(8);

    let dir = tempfile::tempdir().expect("temporary directory");
    let org = SandboxOrg::start(SandboxConfig {
        state_dir: Some(dir.path().to_path_buf()),
        https: true,
        daily_api_limit: 100_000_000,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox org starts");
    let certificate =
        reqwest::Certificate::from_pem(org.certificate_pem().unwrap_or_default().as_bytes())
            .expect("the org's certificate");
    let http = reqwest::Client::builder()
        .add_root_certificate(certificate)
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("HTTP client");
    let base = org.base_url().to_string();
    let credentials = org.credentials().clone();
    let id = credentials["portalClientId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let secret = credentials["portalClientSecret"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    println!(
        "sandbox org at {base}; {concurrency} concurrent clients, {seconds} s per measurement"
    );

    let token_url = format!("{base}/services/oauth2/token");
    let tokens = measure(seconds, concurrency, {
        let http = http.clone();
        move || {
            let http = http.clone();
            let url = token_url.clone();
            let (id, secret) = (id.clone(), secret.clone());
            async move {
                let response = http
                    .post(&url)
                    .basic_auth(&id, Some(&secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await
                    .ok()?;
                let ok = response.status().is_success();
                let _ = response.bytes().await;
                ok.then_some(())
            }
        }
    })
    .await;
    println!(
        "tokens issued (client credentials): {:.0}/s ({} in {seconds} s)",
        tokens.0, tokens.1
    );

    let token: serde_json::Value = http
        .post(format!("{base}/services/oauth2/token"))
        .basic_auth(
            credentials["portalClientId"].as_str().unwrap_or_default(),
            credentials["portalClientSecret"].as_str(),
        )
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token body");
    let access = token["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let query_url = format!(
        "{base}/services/data/v66.0/query?q=SELECT+Id,CaseNumber,Subject,Status,Priority,Owner.Name+FROM+Case+LIMIT+200"
    );
    let probe: serde_json::Value = http
        .get(&query_url)
        .bearer_auth(&access)
        .send()
        .await
        .expect("query")
        .json()
        .await
        .expect("query body");
    assert_eq!(
        probe["records"].as_array().map(Vec::len),
        Some(200),
        "the query returns 200 records"
    );
    let queries = measure(seconds, concurrency, {
        let http = http.clone();
        move || {
            let http = http.clone();
            let url = query_url.clone();
            let access = access.clone();
            async move {
                let response = http.get(&url).bearer_auth(&access).send().await.ok()?;
                let ok = response.status().is_success();
                let body = response.bytes().await.ok()?;
                (ok && body.len() > 10_000).then_some(())
            }
        }
    })
    .await;
    println!(
        "authenticated queries of 200 records: {:.0}/s ({} in {seconds} s)",
        queries.0, queries.1
    );
    org.stop().await;
}

/// Runs `task` from `concurrency` workers for `seconds`; returns (successes per second, total).
async fn measure<F, Fut>(seconds: u64, concurrency: usize, task: F) -> (f64, u64)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Option<()>> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let task = task.clone();
            let done = done.clone();
            let failed = failed.clone();
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    match task().await {
                        Some(()) => done.fetch_add(1, Ordering::Relaxed),
                        None => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let total = done.load(Ordering::Relaxed);
    let failures = failed.load(Ordering::Relaxed);
    if failures > 0 {
        println!("  ({failures} requests failed)");
    }
    (total as f64 / elapsed, total)
}
