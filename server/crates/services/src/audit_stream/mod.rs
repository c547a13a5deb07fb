//! The audit log streamed to a SIEM (issue 20): every entry, in seq order, exactly as it is
//! hashed (its JSON line, `audit::Entry::json_line`), to each configured sink — syslog over
//! TCP or TLS ([`syslog`]), Splunk's HTTP Event Collector ([`hec`]), a signed webhook
//! ([`webhook`]).
//!
//! Delivery is at least once, with the entry's `seq` as its id: each sink has a cursor in
//! `audit_stream_cursors` ([`cursor`]), the last entry it acknowledged. The [`Streamer`]
//! sends the entries after it a batch at a time, in order, and moves the cursor only when
//! the sink acknowledged the whole batch; a failed batch is sent again (from the cursor)
//! after a backoff that doubles with each failure, so after a restart, an outage or a
//! receiver that died mid-batch nothing is missing, and some entries may come twice
//! (receivers de-duplicate by `seq`). A new sink starts from the first entry.
//!
//! One instance streams a sink at a time, however many share the database: the sink's row
//! holds a lease, renewed with every batch, that another instance takes over only once it
//! lapses. A backfill ([`Streamer::backfill`], `portcullis audit-stream --from SEQ`) sends
//! again from any seq to the head and leaves the cursors alone: the live stream neither goes
//! back (it would send everything since again) nor forward (the backfill's batches are not
//! a promise about what the live stream sent).
//!
//! Secrets — the HEC token, the webhook's key — are in the sinks only: never in a
//! message, an error, the cursor rows, the page or the metrics.

pub mod cursor;
pub mod hec;
pub mod syslog;
pub mod webhook;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use shared::audit::StreamSinkView;

use crate::audit::{self, Entry};
use crate::clock::{SharedClock, rfc3339};
use crate::db::Database;
use crate::metrics::{Metrics, StreamSinkState};

/// The kinds of sink, each configured at most once; their names label the cursor rows, the
/// metrics and the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SinkKind {
    Syslog,
    Hec,
    Webhook,
}

impl SinkKind {
    pub const ALL: [SinkKind; 3] = [SinkKind::Syslog, SinkKind::Hec, SinkKind::Webhook];

    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::Syslog => "syslog",
            SinkKind::Hec => "hec",
            SinkKind::Webhook => "webhook",
        }
    }

    pub fn parse(name: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == name.trim())
            .ok_or_else(|| format!("'{name}' is not a sink: syslog, hec or webhook"))
    }
}

/// A configured sink, before it is built.
#[derive(Debug, Clone)]
pub enum SinkConfig {
    Syslog(syslog::SyslogTarget),
    Hec(hec::HecTarget),
    Webhook(webhook::WebhookTarget),
}

/// How the audit log is streamed (the `AUDIT_*` settings).
#[derive(Debug, Clone)]
pub struct StreamSettings {
    pub sinks: Vec<SinkConfig>,
    /// An extra trusted CA (PEM) for tls:// syslog and https collectors and webhooks,
    /// besides the system's roots.
    pub ca_file: Option<PathBuf>,
    /// The HOSTNAME of syslog messages and the `host` of HEC events.
    pub hostname: String,
    /// Entries sent at most in one batch.
    pub batch: i64,
    /// How often the job looks for new entries.
    pub interval: Duration,
    /// The wait after a first failure, doubling with each further one up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            sinks: Vec::new(),
            ca_file: None,
            hostname: "portcullis".into(),
            batch: 500,
            interval: Duration::from_secs(1),
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
        }
    }
}

/// A sink, built and ready to send.
#[derive(Debug, Clone)]
pub enum Sink {
    Syslog(syslog::Syslog),
    Hec(hec::Hec),
    Webhook(webhook::AuditWebhook),
}

impl Sink {
    /// Builds `config` (reads the CA file, sets up TLS and HTTP clients).
    pub fn build(
        config: &SinkConfig,
        settings: &StreamSettings,
        clock: SharedClock,
    ) -> Result<Self, String> {
        let ca = settings.ca_file.as_deref();
        Ok(match config {
            SinkConfig::Syslog(target) => {
                Sink::Syslog(syslog::Syslog::new(target.clone(), &settings.hostname, ca)?)
            }
            SinkConfig::Hec(target) => {
                Sink::Hec(hec::Hec::new(target.clone(), &settings.hostname, ca)?)
            }
            SinkConfig::Webhook(target) => {
                Sink::Webhook(webhook::AuditWebhook::new(target.clone(), ca, clock)?)
            }
        })
    }

    pub fn kind(&self) -> SinkKind {
        match self {
            Sink::Syslog(_) => SinkKind::Syslog,
            Sink::Hec(_) => SinkKind::Hec,
            Sink::Webhook(_) => SinkKind::Webhook,
        }
    }

    /// Where it sends, in words, without secrets.
    pub fn describe(&self) -> String {
        match self {
            Sink::Syslog(s) => s.target().describe(),
            Sink::Hec(s) => s.target().describe(),
            Sink::Webhook(s) => s.target().describe(),
        }
    }

    /// Sends `entries` (in seq order) as one batch; `Ok` when the sink acknowledged it.
    pub async fn send(&self, entries: &[Entry]) -> Result<(), String> {
        match self {
            Sink::Syslog(s) => s.send(entries).await,
            Sink::Hec(s) => s.send(entries).await,
            Sink::Webhook(s) => s.send(entries).await,
        }
    }
}

/// A sink that could not be built (its CA file, its TLS set-up).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the {} sink: {message}", kind.as_str())]
pub struct SinkError {
    pub kind: SinkKind,
    pub message: String,
}

/// The configured sinks, built, and how they are streamed to: what a portal holds.
#[derive(Debug, Clone)]
pub struct AuditStream {
    settings: StreamSettings,
    sinks: Vec<Sink>,
}

impl AuditStream {
    /// Builds every sink of `settings`; the error names the sink.
    pub fn new(settings: StreamSettings, clock: SharedClock) -> Result<Self, SinkError> {
        let mut sinks: Vec<Sink> = Vec::new();
        for config in &settings.sinks {
            let kind = match config {
                SinkConfig::Syslog(_) => SinkKind::Syslog,
                SinkConfig::Hec(_) => SinkKind::Hec,
                SinkConfig::Webhook(_) => SinkKind::Webhook,
            };
            let sink = Sink::build(config, &settings, clock.clone())
                .map_err(|message| SinkError { kind, message })?;
            if sinks.iter().any(|s| s.kind() == kind) {
                return Err(SinkError {
                    kind,
                    message: "is configured twice".into(),
                });
            }
            sinks.push(sink);
        }
        Ok(Self { settings, sinks })
    }

    pub fn settings(&self) -> &StreamSettings {
        &self.settings
    }

    pub fn sinks(&self) -> &[Sink] {
        &self.sinks
    }
}

/// What one look did, over every sink.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Streamed {
    /// Entries the sinks acknowledged.
    pub sent: i64,
    /// Batches that failed (each is sent again after its backoff).
    pub failed: usize,
    /// A sink took a full batch: more may be waiting.
    pub more: bool,
}

/// Streams the log to the sinks: the server's `audit_streaming` job (and tests). Clones
/// share the lease owner: one streamer is one instance.
#[derive(Clone)]
pub struct Streamer {
    db: Database,
    stream: Arc<AuditStream>,
    clock: SharedClock,
    metrics: Arc<Metrics>,
    owner: String,
    lease: Duration,
}

impl std::fmt::Debug for Streamer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streamer")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// Why a backfill stopped.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("the database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    NoSink(String),
    #[error("the {sink} sink failed at entry {seq}: {error}")]
    Sink {
        sink: &'static str,
        seq: i64,
        error: String,
    },
}

impl Streamer {
    pub fn new(
        db: Database,
        stream: Arc<AuditStream>,
        clock: SharedClock,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            db,
            stream,
            clock,
            metrics,
            owner: format!("streamer-{}", uuid::Uuid::new_v4()),
            lease: Duration::from_secs(60),
        }
    }

    /// How long a sink stays this streamer's without a batch before another instance may
    /// take it over (longer than a batch's timeouts).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How often the job looks for new entries.
    pub fn interval(&self) -> Duration {
        self.stream.settings.interval
    }

    pub fn sinks(&self) -> &[Sink] {
        &self.stream.sinks
    }

    /// One look: every sink (side by side) takes the next batch after its cursor, if it
    /// holds or can take its lease and is not backing off.
    pub async fn run_once(&self) -> Result<Streamed, sqlx::Error> {
        let runs = futures::future::join_all(self.stream.sinks.iter().map(|s| self.step(s))).await;
        let mut streamed = Streamed::default();
        for run in runs {
            match run? {
                Step::Idle => {}
                Step::Sent(n) => {
                    streamed.sent += n;
                    streamed.more |= n >= self.stream.settings.batch;
                }
                Step::Failed => streamed.failed += 1,
            }
        }
        Ok(streamed)
    }

    async fn step(&self, sink: &Sink) -> Result<Step, sqlx::Error> {
        let name = sink.kind().as_str();
        cursor::ensure(&self.db, name).await?;
        let now = self.clock.now_ms();
        let until = now + self.lease.as_millis() as i64;
        let Some(acked) = cursor::lease(&self.db, name, &self.owner, now, until).await? else {
            return Ok(Step::Idle);
        };
        let entries =
            audit::entries_after(&self.db, acked, i64::MAX, self.stream.settings.batch).await?;
        let Some(last) = entries.last().map(|e| e.seq) else {
            return Ok(Step::Idle);
        };
        match sink.send(&entries).await {
            Ok(()) => {
                let now = self.clock.now_ms();
                if !cursor::acknowledge(&self.db, name, &self.owner, last, now).await? {
                    tracing::warn!(
                        sink = name,
                        "the audit stream's lease was taken over during a batch"
                    );
                }
                self.metrics.audit_stream_sent(name, entries.len() as u64);
                Ok(Step::Sent(entries.len() as i64))
            }
            Err(error) => {
                let error: String = error.chars().take(500).collect();
                let failures = cursor::get(&self.db, name).await?.map_or(0, |c| c.failures) + 1;
                let now = self.clock.now_ms();
                let retry_at = now + self.backoff(failures).as_millis() as i64;
                cursor::failed(&self.db, name, &self.owner, &error, now, retry_at).await?;
                self.metrics.audit_stream_failed(name);
                tracing::warn!(
                    sink = name,
                    from_seq = entries.first().map_or(0, |e| e.seq),
                    failures,
                    %error,
                    "the audit stream's sink did not take a batch; it is sent again after a backoff"
                );
                Ok(Step::Failed)
            }
        }
    }

    /// The wait after the `failures`-th failure in a row.
    fn backoff(&self, failures: i64) -> Duration {
        let settings = &self.stream.settings;
        let doublings = (failures - 1).clamp(0, 20) as u32;
        settings
            .first_backoff
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(settings.max_backoff)
    }

    /// Gives up this streamer's leases (at shutdown: another instance, or the next start,
    /// carries on at once instead of when they lapse).
    pub async fn release(&self) -> Result<(), sqlx::Error> {
        for sink in &self.stream.sinks {
            cursor::release(&self.db, sink.kind().as_str(), &self.owner).await?;
        }
        Ok(())
    }

    /// Sends the entries from `from` to the log's head (as it is now) again to `only` (or
    /// every sink), a batch at a time, trying a failed batch up to five times; the cursors
    /// stay as they are. Returns the entries each sink took.
    pub async fn backfill(
        &self,
        from: i64,
        only: Option<SinkKind>,
    ) -> Result<Vec<(SinkKind, i64)>, BackfillError> {
        let sinks: Vec<&Sink> = self
            .stream
            .sinks
            .iter()
            .filter(|s| only.is_none_or(|k| s.kind() == k))
            .collect();
        if sinks.is_empty() {
            return Err(BackfillError::NoSink(match only {
                Some(kind) => format!(
                    "the {} sink is not configured (its AUDIT_* settings are not set)",
                    kind.as_str()
                ),
                None => "no sink is configured: set AUDIT_SYSLOG_URL, AUDIT_HEC_URL or AUDIT_WEBHOOK_URL".into(),
            }));
        }
        let head = audit::head(&self.db).await?.last_seq;
        let mut sent = Vec::new();
        for sink in sinks {
            let name = sink.kind().as_str();
            let mut after = from.max(1) - 1;
            let mut count = 0;
            loop {
                let entries =
                    audit::entries_after(&self.db, after, head, self.stream.settings.batch).await?;
                let Some(last) = entries.last().map(|e| e.seq) else {
                    break;
                };
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    match sink.send(&entries).await {
                        Ok(()) => break,
                        Err(error) if attempt >= 5 => {
                            return Err(BackfillError::Sink {
                                sink: name,
                                seq: after + 1,
                                error,
                            });
                        }
                        Err(error) => {
                            tracing::warn!(sink = name, attempt, %error, "backfill batch failed; trying again");
                            tokio::time::sleep(self.backoff(attempt)).await;
                        }
                    }
                }
                self.metrics.audit_stream_sent(name, entries.len() as u64);
                count += entries.len() as i64;
                after = last;
            }
            tracing::info!(
                sink = name,
                from,
                through = head,
                entries = count,
                "audit backfill sent"
            );
            sent.push((sink.kind(), count));
        }
        Ok(sent)
    }
}

enum Step {
    Idle,
    Sent(i64),
    Failed,
}

/// An HTTP client for the collectors and webhooks: the system's roots and `ca_file`.
pub(crate) fn http_client(ca_file: Option<&Path>) -> Result<reqwest::Client, String> {
    let client = salesforce::http::HttpClient::new(&salesforce::http::HttpOptions {
        ca_file: ca_file.map(Path::to_path_buf),
        request_timeout: Duration::from_secs(30),
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    Ok(client.reqwest().clone())
}

/// A URL for a message: scheme, host and port only (a user, password, path or query may
/// hold a secret).
pub fn redact(raw: &str) -> String {
    match url::Url::parse(raw.trim()) {
        Ok(url) => format!(
            "{}://{}{}",
            url.scheme(),
            url.host_str().unwrap_or_default(),
            url.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "(not shown)".into(),
    }
}

/// Each configured sink's cursor against the log's head, for the metrics.
pub async fn states(
    db: &Database,
    stream: &AuditStream,
) -> Result<Vec<StreamSinkState>, sqlx::Error> {
    let head = audit::length(db).await?;
    let cursors = cursor::all(db).await?;
    Ok(stream
        .sinks
        .iter()
        .map(|sink| {
            let name = sink.kind().as_str();
            let row = cursors.iter().find(|c| c.sink == name);
            let acked = row.map_or(0, |c| c.acked_seq);
            StreamSinkState {
                sink: name,
                acked_seq: acked,
                lag: (head - acked).max(0),
                consecutive_failures: row.map_or(0, |c| c.failures),
            }
        })
        .collect())
}

impl crate::Portal {
    /// Streams the audit log to the sinks of `settings` (built now: a CA file that cannot
    /// be read, say, is an error naming the sink).
    pub fn with_audit_stream(mut self, settings: StreamSettings) -> Result<Self, SinkError> {
        self.audit_stream = if settings.sinks.is_empty() {
            None
        } else {
            Some(Arc::new(AuditStream::new(settings, self.clock.clone())?))
        };
        Ok(self)
    }

    /// What streams the log to the sinks (`None`: no sink is configured). Each call is a
    /// new instance as far as the leases go.
    pub fn audit_streamer(&self) -> Option<Streamer> {
        let stream = self.audit_stream.clone()?;
        Some(Streamer::new(
            self.db.clone(),
            stream,
            self.clock.clone(),
            self.metrics.clone(),
        ))
    }

    /// Every configured sink as the audit page shows it.
    pub async fn audit_stream_status(&self) -> Result<Vec<StreamSinkView>, sqlx::Error> {
        let Some(stream) = &self.audit_stream else {
            return Ok(Vec::new());
        };
        let head = audit::length(&self.db).await?;
        let cursors = cursor::all(&self.db).await?;
        Ok(stream
            .sinks
            .iter()
            .map(|sink| {
                let name = sink.kind().as_str();
                let row = cursors
                    .iter()
                    .find(|c| c.sink == name)
                    .cloned()
                    .unwrap_or_default();
                StreamSinkView {
                    name: name.to_string(),
                    target: sink.describe(),
                    acked_seq: row.acked_seq,
                    lag: (head - row.acked_seq).max(0),
                    failures: row.failures,
                    failures_total: row.failures_total,
                    last_error: row.last_error,
                    last_error_at: row.last_error_at.map(rfc3339),
                    last_success_at: row.last_success_at.map(rfc3339),
                }
            })
            .collect())
    }

    /// Gives up every sink's lease, whoever holds it (a single instance on SQLite, at
    /// start-up: the leases are a previous process's).
    pub async fn release_audit_stream_leases(&self) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE audit_stream_cursors SET lease_owner = NULL, lease_expires_at = NULL")
            .execute(self.db.pool())
            .await?;
        Ok(())
    }
}
