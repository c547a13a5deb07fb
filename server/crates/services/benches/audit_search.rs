//! The audit log's text search and its whole-log verification at 1,000,000 entries (issue
//! 20, must-show 3), on SQLite and PostgreSQL.
//!
//! Appends `BENCH_AUDIT_ENTRIES` (default 1,000,000) chained entries whose details look like
//! the portal's (companies, contractors' emails, Salesforce ids, request ids, steps, reasons;
//! indexed as they are written, by the same triggers as the portal's), then:
//!
//! - runs a fixed set of realistic text searches — part of a company name, an email, an
//!   email's domain, a Salesforce id and its start, a request id, a step, a common word, a
//!   word found nowhere — `BENCH_ROUNDS` (default 30) times each, a page of 50 as the audit
//!   page asks (`audit::search::search`), and the next page of each, and prints p50, p90,
//!   p99 and the slowest per query and over all of them;
//! - runs the background verification of the whole log (`audit::job::Verifier`, as the
//!   server's job does) and prints its time and rate, and the inline `audit::verify` for
//!   comparison.
//!
//! The page over HTTP under `wrk` is `cargo bench -p server --bench audit_page`. Figures
//! only: nothing here asserts a time.
//!
//! ```sh
//! cargo bench -p services --bench audit_search
//! BENCH_AUDIT_ENTRIES=100000 cargo bench -p services --bench audit_search
//! BENCH_SQLITE=0 cargo bench -p services --bench audit_search   # PostgreSQL only
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use services::audit::anchor::Anchorer;
use services::audit::job::{self, Ran, Verifier};
use services::audit::search::{self, Filter};
use services::db::DatabaseKind;
use test_kit::{Engine, TestDb};

const COMPANIES: &[&str] = &[
    "Acme",
    "Kinetic",
    "Northwind",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Hooli",
    "Vandelay",
    "Wonka",
    "Gringotts",
    "Monarch",
    "Oscorp",
    "Massive",
    "Dunder",
    "Pied",
];
const KINDS: &[&str] = &[
    "Traders",
    "Logistics",
    "Consulting",
    "Analytics",
    "Systems",
    "Labs",
    "Partners",
    "Digital",
    "Health",
    "Energy",
];
const SUFFIXES: &[&str] = &["Ltd", "GmbH", "Inc", "LLC", "SA"];
const PEOPLE: &[&str] = &[
    "dev",
    "ops",
    "jane.doe",
    "j.smith",
    "integration",
    "etl",
    "reporting",
    "sync",
    "m.garcia",
    "a.khan",
];
const STEPS: &[&str] = &[
    "create_user",
    "permission_set",
    "assign_permission_set",
    "sharing_rules",
    "external_client_app",
    "least_privilege_proof",
];
const REASONS: &[&str] = &[
    "nightly export for the finance warehouse",
    "support ticket sync",
    "marketing attribution pipeline",
    "quarterly audit sample",
    "order fulfilment integration",
];

/// A Salesforce-style 18-character id for `n`.
fn sf_id(prefix: &str, n: i64) -> String {
    const B62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut x = (n as u64).wrapping_mul(2_654_435_761) % 62u64.pow(9);
    let mut body = Vec::new();
    for _ in 0..9 {
        body.push(B62[(x % 62) as usize]);
        x /= 62;
    }
    format!("{prefix}5g000{}AAC", String::from_utf8_lossy(&body))
}

/// The company of a request (2,000 of them: 20 names, 10 kinds, 5 suffixes... 1,000, twice).
fn company(request: i64) -> (String, String) {
    let c = COMPANIES[(request % 20) as usize];
    let k = KINDS[((request / 20) % 10) as usize];
    let s = SUFFIXES[((request / 200) % 5) as usize];
    let domain = format!("{}-{}.example", c.to_lowercase(), k.to_lowercase());
    (format!("{c} {k} {s}"), domain)
}

/// Details like the portal's: a request (one in every 40 entries is about a new one, the
/// rest about one of the 25,000 requests), its company and contact, a step or a decision.
fn details(seq: i64) -> serde_json::Value {
    let request = (seq * 7_919) % 25_000;
    let (company, domain) = company(request);
    let person = PEOPLE[(request % 10) as usize];
    let email = format!("{person}@{domain}");
    let request_id = format!(
        "r-{:08x}",
        (request as u64).wrapping_mul(0x9E37_79B9) as u32
    );
    match seq % 8 {
        0 => json!({
            "company": company,
            "contact_email": email,
            "request": request_id,
            "justification": REASONS[(seq % 5) as usize],
            "calls_per_day": 1_000 + (seq % 50) * 100,
        }),
        1..=3 => json!({
            "request": request_id,
            "step": STEPS[(seq % 6) as usize],
            "salesforce_id": sf_id("005", seq),
            "attempt": 1 + seq % 3,
        }),
        4 => json!({
            "request": request_id,
            "decision": if seq % 3 == 0 { "rejected" } else { "approved" },
            "reason": REASONS[(seq % 5) as usize],
            "company": company,
        }),
        5 => json!({
            "grant": format!("g-{:08x}", (request as u64).wrapping_mul(0x85EB_CA6B) as u32),
            "permission_set": sf_id("0PS", request),
            "objects": ["Account", "Contact", "Opportunity"],
        }),
        6 => json!({
            "contractor": email,
            "ip": format!("203.0.113.{}", seq % 250),
            "reveal": "collected",
        }),
        _ => json!({
            "note": format!("usage for {company}"),
            "api_calls": seq % 9_000,
            "budget": "daily",
        }),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1_000.0)
}

fn main() {
    let entries = test_kit::bench::setting("BENCH_AUDIT_ENTRIES", 1_000_000) as i64;
    let rounds = test_kit::bench::setting("BENCH_ROUNDS", 30) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!("audit search: {entries} entries, {rounds} rounds of each query");
    runtime.block_on(async {
        let mut engines = Vec::new();
        if test_kit::bench::setting("BENCH_SQLITE", 1) == 1 {
            engines.push(("SQLite", Engine::Sqlite));
        }
        if test_kit::bench::setting("BENCH_POSTGRES", 1) == 1 {
            engines.push(("PostgreSQL", Engine::Postgres));
        }
        for (label, engine) in engines {
            match TestDb::new(engine).await {
                Some(db) => run(label, &db, entries, rounds).await,
                None => println!("{label}: SKIPPED (it does not answer)"),
            }
        }
    });
}

async fn run(label: &str, db: &TestDb, entries: i64, rounds: usize) {
    let started = Instant::now();
    let step = (365 * 86_400_000 / entries.max(1)).max(1);
    let start = services::clock::now_ms() - step * entries;
    test_kit::audit_fill_with(&db.db, entries, start, step, details).await;
    if db.db.kind() == DatabaseKind::Postgres {
        sqlx::query("ANALYZE")
            .execute(db.db.pool())
            .await
            .expect("ANALYZE");
    }
    println!(
        "{label}: appended and indexed {entries} entries in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let (acme, acme_domain) = company(0);
    let (_, kinetic_domain) = company(21);
    // A request the log has: entry 8 × 777 is about it (a new request: company, contact).
    let seen = details(8 * 777);
    let queries: Vec<(&str, String)> = vec![
        ("company word", "Kinetic".into()),
        ("company start", acme[..8].to_string()),
        ("company name", acme.clone()),
        ("email", seen["contact_email"].as_str().unwrap().to_string()),
        ("email, none", format!("jane.doe@{kinetic_domain}")),
        ("email domain", acme_domain.clone()),
        ("email person", "m.garcia".into()),
        ("salesforce id", sf_id("005", 123_457)),
        ("id start", sf_id("005", 777_777)[..12].to_string()),
        ("request id", seen["request"].as_str().unwrap().to_string()),
        ("step", "assign_permission_set".into()),
        ("common word", "approved".into()),
        ("phrase", "support ticket sync".into()),
        ("nowhere", "zzyzx".into()),
    ];
    let mut all = Vec::new();
    for (name, text) in &queries {
        let filter = Filter {
            text: Some(text.clone()),
            ..Filter::default()
        };
        let mut times = Vec::with_capacity(rounds * 2);
        let mut found = 0;
        for _ in 0..rounds {
            let t = Instant::now();
            let page = search::search(&db.db, &filter, None, 50).await.unwrap();
            times.push(t.elapsed());
            found = page.entries.len();
            if let Some(before) = page.next_before {
                let t = Instant::now();
                search::search(&db.db, &filter, Some(before), 50)
                    .await
                    .unwrap();
                times.push(t.elapsed());
            }
        }
        times.sort();
        println!(
            "{label}: {name:<14} {text:<40} p50 {:>9}  p90 {:>9}  p99 {:>9}  max {:>9}  ({} on the first page)",
            ms(percentile(&times, 50.0)),
            ms(percentile(&times, 90.0)),
            ms(percentile(&times, 99.0)),
            ms(*times.last().unwrap()),
            found
        );
        all.extend(times);
    }
    all.sort();
    println!(
        "{label}: all text searches ({} pages)  p50 {}  p90 {}  p99 {}  max {}",
        all.len(),
        ms(percentile(&all, 50.0)),
        ms(percentile(&all, 90.0)),
        ms(percentile(&all, 99.0)),
        ms(*all.last().unwrap())
    );

    // The whole log, in the background as the server's job runs it.
    let anchorer = Arc::new(Anchorer::ephemeral(1_000));
    let clock = services::clock::system();
    assert!(
        job::start(&db.db, services::clock::now_ms(), "bench", None, None)
            .await
            .unwrap()
    );
    let verifier = Verifier::new(db.db.clone(), anchorer, clock);
    let t = Instant::now();
    let ran = verifier.run_once().await.unwrap();
    let took = t.elapsed();
    assert_eq!(ran, Ran::Finished("intact".into()));
    let last = job::status(&db.db).await.unwrap().last.unwrap();
    println!(
        "{label}: background verify of the whole log: {} entries in {:.1} s ({:.0} entries/s; the job's own rate {} /s)",
        last.checked,
        took.as_secs_f64(),
        last.checked as f64 / took.as_secs_f64(),
        last.rate
    );
    let t = Instant::now();
    let inline = services::audit::verify(&db.db, None, None).await.unwrap();
    println!(
        "{label}: inline audit::verify of the whole log: {:?} in {:.1} s",
        inline,
        t.elapsed().as_secs_f64()
    );
}
