//! The audit log streamed to SIEM sinks (issue 20): a real syslog receiver (Python, RFC 5424
//! over TCP and TLS) and a Splunk-HEC-shaped receiver get every entry of an onboarding in
//! order, at least once, through a receiver killed mid-stream and an outage; the chain
//! verifies from the received lines alone; the cursor survives a new portal over the same
//! database; one instance streams a sink at a time; a backfill sends again from a seq
//! without moving the cursor. On SQLite and PostgreSQL.

use crate::common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::*;
use secrecy::SecretString;
use serde_json::{Value, json};
use services::audit::{self, ChainCheck, Entry, GENESIS};
use services::audit_stream::hec::HecTarget;
use services::audit_stream::syslog::SyslogTarget;
use services::audit_stream::{SinkConfig, SinkKind, StreamSettings, Streamer, cursor};
use test_kit::syslog::{SyslogReceiver, Tls};

const HEC_TOKEN: &str = "hec-token-0123456789abcdef";

/// A Splunk-HEC-shaped receiver: `POST /services/collector/event` with `Authorization:
/// Splunk <token>`, stacked event objects in the body, `{"text":"Success","code":0}` when
/// it took them. While `down`, it answers 503 `{"text":"Server is busy","code":9}` (Splunk's
/// documented busy answer) and keeps nothing.
#[derive(Clone, Default)]
struct Hec {
    events: Arc<Mutex<Vec<Value>>>,
    down: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
    tokens_seen: Arc<Mutex<Vec<String>>>,
}

impl Hec {
    async fn start() -> (Self, String) {
        let hec = Hec::default();
        let app = axum::Router::new()
            .route("/services/collector/event", post(take))
            .with_state(hec.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (hec, url)
    }

    fn entries(&self) -> Vec<Entry> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| {
                assert_eq!(e["source"], "portcullis");
                assert_eq!(e["sourcetype"], "portcullis:audit");
                let entry: Entry = serde_json::from_value(e["event"].clone()).unwrap();
                assert_eq!(
                    e["fields"]["seq"],
                    entry.seq.to_string(),
                    "the seq is a field"
                );
                entry
            })
            .collect()
    }
}

async fn take(State(hec): State<Hec>, headers: HeaderMap, body: String) -> (StatusCode, String) {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    hec.tokens_seen.lock().unwrap().push(auth.clone());
    if auth != format!("Splunk {HEC_TOKEN}") {
        return (
            StatusCode::UNAUTHORIZED,
            json!({"text": "Invalid authorization", "code": 3}).to_string(),
        );
    }
    if hec.down.load(Ordering::SeqCst) {
        hec.refused.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"text": "Server is busy", "code": 9}).to_string(),
        );
    }
    let events: Vec<Value> = serde_json::Deserializer::from_str(&body)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap();
    hec.events.lock().unwrap().extend(events);
    (
        StatusCode::OK,
        json!({"text": "Success", "code": 0}).to_string(),
    )
}

fn settings(sinks: Vec<SinkConfig>, batch: i64) -> StreamSettings {
    StreamSettings {
        sinks,
        hostname: "portal.test".into(),
        batch,
        first_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(400),
        ..StreamSettings::default()
    }
}

fn syslog_sink(receiver: &SyslogReceiver) -> SinkConfig {
    SinkConfig::Syslog(SyslogTarget::parse(&receiver.url()).unwrap())
}

fn hec_sink(url: &str) -> SinkConfig {
    SinkConfig::Hec(HecTarget {
        url: HecTarget::parse_url(url).unwrap(),
        token: SecretString::from(HEC_TOKEN),
    })
}

/// Runs `streamer` in the background, every 20 ms, until the handle is aborted.
fn stream_in_background(streamer: Streamer) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let _ = streamer.run_once().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

/// Waits (up to 60 s) until `sink` acknowledged the whole log.
async fn until_caught_up(t: &TestPortal, sink: SinkKind) {
    for _ in 0..600 {
        let head = audit::length(t.db()).await.unwrap();
        let acked = cursor::get(t.db(), sink.as_str())
            .await
            .unwrap()
            .map_or(0, |c| c.acked_seq);
        if head > 0 && acked == head {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the {} sink did not catch up", sink.as_str());
}

/// What a SIEM can check from what it received alone: every entry of the log came, each
/// delivery run in seq order (a run after a failure starts again at or before where the
/// last one stopped: at least once), and the chain recomputed over the received entries —
/// with no help from the database — verifies from the genesis hash to the head's hash.
async fn assert_received_the_log(t: &TestPortal, received: &[Entry], who: &str) {
    let head = audit::head(t.db()).await.unwrap();
    assert!(!received.is_empty(), "{who}: nothing received");
    let mut next = 1;
    let mut unique: Vec<&Entry> = Vec::new();
    for (i, entry) in received.iter().enumerate() {
        if i > 0 {
            let before = received[i - 1].seq;
            assert!(
                entry.seq == before + 1 || entry.seq <= before,
                "{who}: entry {} came after {before}: a gap",
                entry.seq
            );
        }
        if entry.seq == next {
            unique.push(entry);
            next += 1;
        } else {
            assert!(entry.seq < next, "{who}: {} before {next}", entry.seq);
            // A repeat is the same entry, byte for byte.
            assert_eq!(
                entry,
                unique[(entry.seq - 1) as usize],
                "{who}: a repeat differs"
            );
        }
    }
    assert_eq!(next - 1, head.last_seq, "{who}: entries missing at the end");
    let mut check = ChainCheck::resume(0, GENESIS.to_string(), 0);
    for entry in &unique {
        assert_eq!(
            check.feed(entry),
            None,
            "{who}: the chain breaks at {}",
            entry.seq
        );
    }
    assert_eq!(
        check.expected_prev, head.last_hash,
        "{who}: ends at the head's hash"
    );
    assert_eq!(check.checked, head.last_seq);
}

async fn one_sink_row(t: &TestPortal, sink: SinkKind) -> cursor::Cursor {
    cursor::get(t.db(), sink.as_str()).await.unwrap().unwrap()
}

test_kit::both_databases!(
    syslog_and_hec_receive_an_onboarding_through_a_kill_and_an_outage,
    portal_with_org,
    |t| {
        // Slow reads (256 bytes each 2 ms), so the kill lands with a batch in flight.
        let mut syslog = SyslogReceiver::start(None, 2);
        let (hec, hec_url) = Hec::start().await;
        let portal = t
            .portal
            .clone()
            .with_audit_stream(settings(vec![syslog_sink(&syslog), hec_sink(&hec_url)], 4))
            .unwrap();
        let streaming = stream_in_background(portal.audit_streamer().unwrap());

        // The onboarding's first half: a request submitted, confirmed and approved.
        let grant = approved_grant(&t, "Streamed Ltd", case_scope()).await;
        // Mid-stream: the syslog receiver has some entries but not all; kill it, and take
        // the collector down.
        for _ in 0..300 {
            if !syslog.lines().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        syslog.kill();
        hec.down.store(true, Ordering::SeqCst);
        let received_before = syslog.lines().len() as i64;
        assert!(received_before > 0);

        // The second half while they are down: the grant is provisioned.
        let ran = worker(&t).run_until_idle().await.unwrap();
        assert!(!ran.is_empty());
        assert_eq!(grant_state(&t, &grant).await.0, "ready");
        for _ in 0..100 {
            if one_sink_row(&t, SinkKind::Syslog).await.failures > 0
                && hec.refused.load(Ordering::SeqCst) > 0
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let syslog_row = one_sink_row(&t, SinkKind::Syslog).await;
        assert!(syslog_row.failures > 0, "{syslog_row:?}");
        assert!(syslog_row.last_error.is_some());
        let head = audit::length(t.db()).await.unwrap();
        assert!(
            syslog_row.acked_seq < head,
            "the outage left entries to send"
        );
        let hec_row = one_sink_row(&t, SinkKind::Hec).await;
        assert!(hec_row.failures > 0, "{hec_row:?}");
        assert!(
            hec_row
                .last_error
                .as_deref()
                .unwrap()
                .contains("Server is busy (code 9)"),
            "{hec_row:?}"
        );
        // The lag and failures show in the metrics.
        let text = portal.metrics_text().await.unwrap();
        assert!(
            text.lines().any(|l| l
                .starts_with("portcullis_audit_stream_lag_entries{sink=\"syslog\"}")
                && !l.ends_with(" 0")),
            "{text}"
        );
        assert!(
            text.contains("portcullis_audit_stream_failures_total{sink=\"hec\"}"),
            "{text}"
        );

        // Back up: everything arrives.
        syslog.restart();
        hec.down.store(false, Ordering::SeqCst);
        until_caught_up(&t, SinkKind::Syslog).await;
        until_caught_up(&t, SinkKind::Hec).await;
        streaming.abort();

        assert_received_the_log(&t, &syslog.entries(), "syslog").await;
        assert_received_the_log(&t, &hec.entries(), "hec").await;
        assert!(
            hec.tokens_seen
                .lock()
                .unwrap()
                .iter()
                .all(|a| a == &format!("Splunk {HEC_TOKEN}"))
        );
        // Recovered: no failures in a row, lag 0, a success time; the token is nowhere.
        let status = portal.audit_stream_status().await.unwrap();
        assert_eq!(status.len(), 2);
        for sink in &status {
            assert_eq!(sink.lag, 0, "{sink:?}");
            assert_eq!(sink.failures, 0, "{sink:?}");
            assert!(sink.failures_total > 0, "{sink:?}");
            assert!(sink.last_success_at.is_some());
            assert!(!format!("{sink:?}").contains(HEC_TOKEN));
        }
        assert_eq!(
            status[0].target,
            format!("syslog over TCP to 127.0.0.1:{}", syslog.port)
        );
        let text = portal.metrics_text().await.unwrap();
        assert!(
            text.contains("portcullis_audit_stream_lag_entries{sink=\"syslog\"} 0"),
            "{text}"
        );
        assert!(!text.contains(HEC_TOKEN));
        let rows = sqlx::query_scalar::<_, String>(
            "SELECT COALESCE(last_error, '') FROM audit_stream_cursors",
        )
        .fetch_all(t.db().pool())
        .await
        .unwrap();
        assert!(rows.iter().all(|e| !e.contains(HEC_TOKEN)));
        assert_audit_intact(&t).await;
    }
);

/// The test CA (`cert.pem`) and a server certificate for localhost it signed.
fn tls_identity() -> (tempfile::TempDir, Tls, std::path::PathBuf) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    sandbox_org::tls::server_tls(Some(dir.path()), &[]).unwrap();
    let chain = dir.path().join("chain.pem");
    let leaf = std::fs::read_to_string(dir.path().join("server-cert.pem")).unwrap();
    let ca = std::fs::read_to_string(dir.path().join("cert.pem")).unwrap();
    std::fs::write(&chain, format!("{leaf}{ca}")).unwrap();
    let tls = Tls {
        cert: chain,
        key: dir.path().join("key.pem"),
    };
    let ca_file = dir.path().join("cert.pem");
    (dir, tls, ca_file)
}

test_kit::both_databases!(
    tls_syslog_trusts_a_self_signed_ca_given_as_ca_file,
    portal,
    |t| {
        let (_dir, tls, ca_file) = tls_identity();
        let receiver = SyslogReceiver::start(Some(tls), 0);
        submit_verified(&t, "Tls Ltd", "ops@tls.example", case_scope()).await;

        // Without the CA the receiver's certificate is refused, and that is the error shown.
        let untrusted = t
            .portal
            .clone()
            .with_audit_stream(settings(vec![syslog_sink(&receiver)], 100))
            .unwrap();
        let refused = untrusted.audit_streamer().unwrap();
        let streamed = refused.run_once().await.unwrap();
        assert_eq!(streamed.failed, 1);
        let row = one_sink_row(&t, SinkKind::Syslog).await;
        assert_eq!(row.acked_seq, 0);
        assert!(
            row.last_error
                .as_deref()
                .unwrap()
                .contains("TLS handshake failed"),
            "{row:?}"
        );
        assert!(receiver.lines().is_empty());
        // (That instance stops: its lease is given up, and the backoff is skipped.)
        refused.release().await.unwrap();
        sqlx::query("UPDATE audit_stream_cursors SET next_attempt_at = 0")
            .execute(t.db().pool())
            .await
            .unwrap();

        // With it, every entry arrives over TLS.
        let trusted = t
            .portal
            .clone()
            .with_audit_stream(StreamSettings {
                ca_file: Some(ca_file),
                ..settings(vec![syslog_sink(&receiver)], 100)
            })
            .unwrap();
        let streamer = trusted.audit_streamer().unwrap();
        let streamed = streamer.run_once().await.unwrap();
        assert_eq!(
            streamed.failed,
            0,
            "{:?}",
            one_sink_row(&t, SinkKind::Syslog).await
        );
        let head = audit::length(t.db()).await.unwrap();
        assert_eq!(streamed.sent, head);
        assert_eq!(one_sink_row(&t, SinkKind::Syslog).await.acked_seq, head);
        assert_received_the_log(&t, &receiver.entries(), "tls syslog").await;
        assert!(
            trusted.audit_stream_status().await.unwrap()[0]
                .target
                .starts_with("syslog over TLS")
        );
    }
);

test_kit::both_databases!(
    the_cursor_survives_a_new_portal_over_the_same_database,
    portal,
    |t| {
        let (hec, hec_url) = Hec::start().await;
        submit_verified(&t, "First Ltd", "ops@first.example", case_scope()).await;
        let first = t
            .portal
            .clone()
            .with_audit_stream(settings(vec![hec_sink(&hec_url)], 3))
            .unwrap();
        let streamer = first.audit_streamer().unwrap();
        while streamer.run_once().await.unwrap().sent > 0 {}
        let acked = one_sink_row(&t, SinkKind::Hec).await.acked_seq;
        let head = audit::length(t.db()).await.unwrap();
        assert_eq!(acked, head);
        let sent_first = hec.entries().len();
        assert_eq!(
            sent_first as i64, head,
            "each entry once while nothing failed"
        );

        // A second instance over the same database waits while the first holds the lease.
        submit_verified(&t, "Second Ltd", "ops@second.example", case_scope()).await;
        let other = first.audit_streamer().unwrap();
        assert_eq!(other.run_once().await.unwrap().sent, 0, "the lease is held");
        assert_eq!(hec.entries().len(), sent_first);

        // The first stops (its leases given up); a new portal over the same database resumes
        // from the acknowledged seq: nothing is sent twice.
        streamer.release().await.unwrap();
        drop(first);
        let restarted = services::Portal::new(
            t.db.db.clone(),
            services::Mailer::outbox(),
            Arc::new(test_kit::portal::settings()),
            offline_client(),
        )
        .with_audit_stream(settings(vec![hec_sink(&hec_url)], 3))
        .unwrap();
        let resumed = restarted.audit_streamer().unwrap();
        while resumed.run_once().await.unwrap().sent > 0 {}
        let received = hec.entries();
        assert_eq!(
            received[sent_first].seq,
            acked + 1,
            "resumed after the acknowledged seq"
        );
        assert_received_the_log(&t, &received, "hec").await;
        assert_eq!(received.len() as i64, audit::length(t.db()).await.unwrap());
    }
);

test_kit::both_databases!(
    a_backfill_sends_again_from_a_seq_and_leaves_the_cursor,
    portal,
    |t| {
        let (hec, hec_url) = Hec::start().await;
        submit_verified(&t, "Backfill Ltd", "ops@backfill.example", case_scope()).await;
        submit_verified(&t, "Backfill Two", "ops@two.example", case_scope()).await;
        let portal = t
            .portal
            .clone()
            .with_audit_stream(settings(vec![hec_sink(&hec_url)], 2))
            .unwrap();
        let streamer = portal.audit_streamer().unwrap();
        while streamer.run_once().await.unwrap().sent > 0 {}
        let head = audit::length(t.db()).await.unwrap();
        assert!(head >= 3, "{head}");
        assert_eq!(hec.entries().len() as i64, head);

        let sent = streamer.backfill(3, Some(SinkKind::Hec)).await.unwrap();
        assert_eq!(sent, vec![(SinkKind::Hec, head - 2)]);
        let received = hec.entries();
        let again: Vec<i64> = received[head as usize..].iter().map(|e| e.seq).collect();
        assert_eq!(
            again,
            (3..=head).collect::<Vec<_>>(),
            "from 3 to the head, in order"
        );
        assert_eq!(
            one_sink_row(&t, SinkKind::Hec).await.acked_seq,
            head,
            "the cursor stays"
        );
        assert_received_the_log(&t, &received, "hec").await;

        // A sink that is not configured is named.
        let error = streamer
            .backfill(1, Some(SinkKind::Syslog))
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("syslog sink is not configured"),
            "{error}"
        );
        // The live stream carries on from its own cursor.
        assert_eq!(streamer.run_once().await.unwrap().sent, 0);
    }
);
