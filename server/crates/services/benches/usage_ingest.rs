//! Ingesting a large ApiTotalUsage file: throughput and peak memory of the usage reader,
//! against `xsv count` (or `qsv count`) on the same file on the same machine.
//!
//! Generates `BENCH_INGEST_MB` (default 1024) megabytes of ApiTotalUsage CSV in the
//! reference's column order and quoting style (every value quoted; a tenth of the client
//! names hold commas, doubled quotes or line breaks; 500 users over 24 hours), streams it
//! through the reader in 64 KiB chunks as a download would arrive, and prints MB/s and the
//! process's peak resident memory during the read. Then it times `xsv count` (or `qsv
//! count`, whichever is on PATH; `cargo install xsv` provides it) on the same file.
//!
//! ```sh
//! cargo bench -p services --bench usage_ingest
//! BENCH_INGEST_MB=256 cargo bench -p services --bench usage_ingest
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufWriter, Read, Write};
use std::process::Command;
use std::time::Instant;

use services::usage::ingest::Ingest;
use test_kit::bench::{peak_rss_mib, reset_peak_rss, setting};

/// Writes about `bytes` of CSV; returns the number of data rows.
fn generate(path: &std::path::Path, bytes: u64) -> u64 {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).expect("create"));
    let header = "\"EVENT_TYPE\",\"TIMESTAMP\",\"REQUEST_ID\",\"ORGANIZATION_ID\",\"USER_ID\",\"USER_NAME\",\"API_FAMILY\",\"API_VERSION\",\"API_RESOURCE\",\"HTTP_METHOD\",\"STATUS_CODE\",\"ENTITY_NAME\",\"CLIENT_NAME\",\"CLIENT_IP\",\"CONNECTED_APP_ID\",\"CONNECTED_APP_NAME\",\"COUNTS_AGAINST_API_LIMIT\",\"API_CLIENT_CATEGORY\",\"TIMESTAMP_DERIVED\"\n";
    out.write_all(header.as_bytes()).expect("write");
    let mut written = header.len() as u64;
    let mut rows = 0u64;
    let mut line = String::with_capacity(512);
    while written < bytes {
        let user = rows % 500;
        let hour = (rows / 7) % 24;
        let minute = rows % 60;
        let client = match rows % 30 {
            0 => "sync, nightly".to_string(),
            1 => "the \"\"fast\"\" one".to_string(),
            2 => "two\nlines".to_string(),
            _ => format!("client-{}", rows % 13),
        };
        line.clear();
        use std::fmt::Write as _;
        let _ = writeln!(
            line,
            "\"ApiTotalUsage\",\"20260301{hour:02}{minute:02}00.123\",\"4xYz0abcdEFGhijk{rows:06}\",\"00D5g000000AbCd\",\"005{user:012}\",\"user{user}@contractor.example\",\"REST\",\"66.0\",\"/v66.0/query\",\"GET\",\"200\",\"Case\",\"{client}\",\"203.0.113.7\",\"0H45g000000AbCd\",\"Contractor App\",\"{}\",\"EXTERNAL_APPLICATION\",\"2026-03-01T{hour:02}:{minute:02}:00.123Z\"",
            if rows.is_multiple_of(11) {
                "false"
            } else {
                "true"
            }
        );
        out.write_all(line.as_bytes()).expect("write");
        written += line.len() as u64;
        rows += 1;
    }
    out.flush().expect("flush");
    rows
}

fn main() {
    let megabytes = setting("BENCH_INGEST_MB", 1024);
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("ApiTotalUsage.csv");
    let started = Instant::now();
    let rows = generate(&path, megabytes * 1_048_576);
    let size = std::fs::metadata(&path).expect("metadata").len();
    let mb = size as f64 / 1_048_576.0;
    println!(
        "usage ingest: generated {mb:.0} MB, {rows} rows in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Read once to warm the page cache, as xsv will find it.
    let mut file = std::fs::File::open(&path).expect("open");
    let mut buffer = vec![0u8; 64 * 1024];
    while file.read(&mut buffer).expect("read") > 0 {}

    let baseline = peak_rss_mib();
    reset_peak_rss();
    let started = Instant::now();
    let mut file = std::fs::File::open(&path).expect("open");
    let mut ingest = Ingest::new();
    loop {
        let n = file.read(&mut buffer).expect("read");
        if n == 0 {
            break;
        }
        ingest.feed(&buffer[..n]).expect("a well-formed file");
    }
    let totals = ingest.finish().expect("a well-formed file");
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(totals.rows, rows, "every row read");
    let counted: u64 = totals.hours.iter().map(|h| h.totals.counted).sum();
    let ours = mb / elapsed;
    println!(
        "usage ingest: {rows} rows ({counted} counted, {} user-hours) in {elapsed:.2} s: {ours:.0} MB/s, peak RSS {:.1} MiB (process before the read: {baseline:.1} MiB)",
        totals.hours.len(),
        peak_rss_mib()
    );

    for tool in ["xsv", "qsv"] {
        let started = Instant::now();
        let Ok(output) = Command::new(tool).arg("count").arg(&path).output() else {
            continue;
        };
        let elapsed = started.elapsed().as_secs_f64();
        assert!(output.status.success(), "{tool} count failed");
        let counted = String::from_utf8_lossy(&output.stdout).trim().to_string();
        assert_eq!(counted, rows.to_string(), "{tool} counts the same rows");
        let theirs = mb / elapsed;
        println!(
            "usage ingest: {tool} count: {elapsed:.2} s, {theirs:.0} MB/s; ours is {:.0}% of its throughput",
            100.0 * ours / theirs
        );
        return;
    }
    println!("usage ingest: neither xsv nor qsv is installed (cargo install xsv) — no comparison");
}
