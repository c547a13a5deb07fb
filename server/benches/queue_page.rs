//! The approvers' queue under load, with 10,000 requests in the database.
//!
//! Starts the real portal (embedded sandbox org) on SQLite and on PostgreSQL, copies one
//! genuinely submitted and verified request into `BENCH_ROWS` (default 10,000) requests,
//! signs in as an approver through the sandbox org's login page, and has `wrk` (Debian's
//! package) load two things with that session cookie:
//!
//! - `GET /admin`: the server-rendered dashboard, whose first page of the queue is rendered
//!   on the server (what a browser gets on a full page load);
//! - `POST /api/admin_queue`: the server function the dashboard calls when filtering or
//!   paging after hydration.
//!
//! It prints p50, p90 and p99 latency and requests per second for each, and fails if any
//! response was not 2xx (a signed-out or broken page would otherwise look fast).
//!
//! ```sh
//! cargo bench -p server --bench queue_page
//! BENCH_ROWS=50000 BENCH_SECONDS=20 BENCH_CONNECTIONS=16 cargo bench -p server --bench queue_page
//! ```
//!
//! PostgreSQL is used when `PORTCULLIS_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) answers; otherwise that half prints SKIPPED.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/wrk.rs"]
mod wrk;

use std::time::Instant;

use common::portal::{self, spawn_portal};
use common::{Db, TestApp};

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    let rows = test_kit::bench::setting("BENCH_ROWS", 10_000);
    let seconds = test_kit::bench::setting("BENCH_SECONDS", 10);
    let connections = test_kit::bench::setting("BENCH_CONNECTIONS", 8);
    wrk::require_wrk("queue_page");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!(
        "queue page: {rows} requests in the database, wrk {connections} connections, {seconds} s per target"
    );
    for db in [Db::Sqlite, Db::Postgres] {
        runtime.block_on(run(db, rows, seconds, connections));
    }
}

async fn run(db: Db, rows: u64, seconds: u64, connections: u64) {
    let Some(app) = spawn_portal(db).await else {
        println!("{db:?}: SKIPPED (PostgreSQL does not answer)");
        return;
    };
    let started = Instant::now();
    seed(&app, rows).await;
    println!(
        "{db:?}: seeded {rows} requests in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let (client, cookie) = wrk::signed_in(&app, portal::BLAKE).await;

    // Both targets answer with the queue before they are measured.
    let page = client
        .get(app.at("/admin"))
        .send()
        .await
        .expect("GET /admin");
    assert!(page.status().is_success(), "/admin: {}", page.status());
    let html = page.text().await.expect("page body");
    assert!(
        html.contains("Bench Vendor"),
        "the dashboard lists the seeded requests"
    );
    let (status, body) = portal::call(&app, &client, "admin_queue", &[]).await;
    assert!(status.is_success(), "admin_queue: {status} {body}");
    let queue: serde_json::Value = serde_json::from_str(&body).expect("queue JSON");
    let shown = queue["rows"].as_array().map_or(0, Vec::len);
    assert!(shown > 0, "admin_queue returns a page of requests");
    println!(
        "{db:?}: one page = {shown} requests, /admin = {} KiB of HTML",
        html.len() / 1024
    );

    let script = tempfile::NamedTempFile::new().expect("wrk script");
    std::fs::write(
        script.path(),
        format!(
            "wrk.method = \"POST\"\nwrk.body = \"\"\nwrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\nwrk.headers[\"Origin\"] = \"{}\"\n",
            app.url
        ),
    )
    .expect("write wrk script");
    let page_url = app.at("/admin");
    let api_url = app.at("/api/admin_queue");
    for (name, url, lua) in [
        ("GET /admin", page_url.as_str(), None),
        (
            "POST /api/admin_queue",
            api_url.as_str(),
            Some(script.path()),
        ),
    ] {
        let report = wrk::load(name, url, &cookie, connections, seconds, lua).await;
        println!(
            "{db:?}: {name:<24} p50 {:>9}  p90 {:>9}  p99 {:>9}  {:>8} req/s  ({} requests)",
            report.p50, report.p90, report.p99, report.rate, report.requests
        );
    }
    app.stop().await.expect("portal stops");
}

/// Copies the one request `portal::submit` made into `rows` requests: same shape as a real
/// one (scope JSON, verified, submitted), spread over 500 companies and over time.
async fn seed(app: &TestApp, rows: u64) {
    let contractor = portal::submit(app, "Bench Vendor 0", true).await;
    let copies = rows.saturating_sub(1);
    if copies == 0 {
        return;
    }
    let sql = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {copies})
         INSERT INTO access_requests (id, submission_key, state, company, contact_name,
             contact_email, justification, scope, calls_per_day, ip_ranges, end_date,
             submitter_ip, created_at, updated_at, verification_code_hash,
             verification_token_hash, verification_expires_at, verification_attempts,
             verified_at, status_token_hash, risky, approvals_required)
         SELECT r.id || '-' || n.i, r.submission_key || '-' || n.i, r.state,
             'Bench Vendor ' || (n.i % 500), r.contact_name, r.contact_email, r.justification,
             r.scope, r.calls_per_day, r.ip_ranges, r.end_date, r.submitter_ip,
             r.created_at - n.i * 60000, r.updated_at - n.i * 60000, r.verification_code_hash,
             r.verification_token_hash || '-' || n.i, r.verification_expires_at,
             r.verification_attempts, r.verified_at, r.status_token_hash || '-' || n.i,
             r.risky, r.approvals_required
         FROM access_requests r, n WHERE r.id = $1"
    );
    let done = sqlx::query(&sql)
        .bind(&contractor.request_id)
        .execute(app.db.pool())
        .await
        .expect("seed the requests");
    assert_eq!(done.rows_affected(), copies, "seeded rows");
    if app.kind == Db::Postgres {
        sqlx::query("ANALYZE access_requests")
            .execute(app.db.pool())
            .await
            .expect("ANALYZE");
    }
}
