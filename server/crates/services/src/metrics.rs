//! The portal's Prometheus metrics (`GET /metrics`): one [`prometheus_client`] registry per
//! [`crate::Portal`] holding every metric the portal exposes, and the handles the rooms
//! record into where things happen.
//!
//! Two kinds of metric live here:
//! - **This process's events** (counters and histograms): HTTP requests (recorded by the
//!   server's middleware), provisioning steps (the engine), usage collector runs (the
//!   collector), outbox deliveries (the outbox sender), refused sign-ins and shed requests
//!   (the server). Each instance counts its own.
//! - **The database's state** (gauges): grants by state, the provisioning queue, the
//!   outboxes, the newest usage data, the org's daily API calls, the audit log's length.
//!   [`crate::Portal::metrics_text`] reads them at scrape time with small indexed queries
//!   (each owned by the room of its table) and sets them here before encoding: every
//!   instance shows the same values.
//!
//! Audit entries and alerts are counted in [`audit_entry_appended`], which `audit::append`
//! calls with no portal at hand: those two counters belong to the process (one portal per
//! process in production; tests that run several portals in one process share them).
//!
//! Labels carry only bounded vocabularies (route templates, step names, states, outcomes),
//! never a raw path, an id or a token. This module is on the bottom layer: it knows no
//! other room; the rooms call it.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, LazyLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use shared::audit::AuditAction;

/// The `Content-Type` of the text exposition format the registry is encoded in.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Latency buckets of HTTP requests, in seconds.
const HTTP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Duration buckets of provisioning steps, in seconds (a deploy waits up to two minutes).
const STEP_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// The audit actions that are alerts (counted as `portcullis_alerts_total` too): the API
/// budgets' warnings and overruns, usage anomalies, drift.
const ALERT_ACTIONS: &[AuditAction] = &[
    AuditAction::UsageLimitWarning,
    AuditAction::UsageLimitExceeded,
    AuditAction::UsageAnomaly,
    AuditAction::GrantDriftDetected,
];

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;
type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    step: &'static str,
    direction: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepDurationLabels {
    step: &'static str,
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutboxOutcome {
    outbox: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutboxDelivery {
    outbox: &'static str,
    delivery: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabel {
    action: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabel {
    limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabel {
    sink: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// Audit entries appended by this process, by action ([`audit_entry_appended`]).
static AUDIT_ENTRIES: LazyLock<Family<ActionLabel, Counter>> = LazyLock::new(Family::default);
/// Alerts raised by this process, by kind.
static ALERTS: LazyLock<Family<KindLabel, Counter>> = LazyLock::new(Family::default);

/// Counts an audit entry appended with `action` (and an alert, when the action is one).
/// Called by `audit::append`, inside the entry's transaction: an entry whose transaction is
/// rolled back afterwards was still counted (`portcullis_audit_log_entries` is the log's
/// committed length).
pub fn audit_entry_appended(action: AuditAction) {
    AUDIT_ENTRIES
        .get_or_create(&ActionLabel {
            action: action.as_str(),
        })
        .inc();
    if ALERT_ACTIONS.contains(&action) {
        ALERTS
            .get_or_create(&KindLabel {
                kind: action.as_str(),
            })
            .inc();
    }
}

/// Why the server refused a request before it reached a handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// `HTTP_MAX_CONCURRENT_REQUESTS` were in flight.
    Busy,
    /// No answer within `HTTP_REQUEST_TIMEOUT_SECONDS`.
    Timeout,
}

impl Refused {
    fn label(self) -> &'static str {
        match self {
            Refused::Busy => "busy",
            Refused::Timeout => "timeout",
        }
    }
}

/// Which sign-in rate limit refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthLimit {
    /// `AUTH_RATE_LIMIT_PER_MINUTE` (per client address).
    Client,
    /// `AUTH_GLOBAL_RATE_LIMIT_PER_MINUTE`.
    Global,
}

impl AuthLimit {
    fn label(self) -> &'static str {
        match self {
            AuthLimit::Client => "client",
            AuthLimit::Global => "global",
        }
    }
}

/// The database's state as a scrape reads it ([`Metrics::set_state`]).
#[derive(Debug, Clone, Default)]
pub struct DatabaseState {
    /// Grants per state (every state of the vocabulary, zeros included).
    pub grants: Vec<(String, i64)>,
    /// Unfinished steps of grants being provisioned, cancelled or torn down, per step state.
    pub queue: Vec<(String, i64)>,
    /// Seconds since the longest-waiting due step became due (0 when none waits).
    pub oldest_waiting_step_seconds: f64,
    /// Mail and webhook messages not sent yet, per `delivery` (`pending`, `sending`,
    /// `failed`, and the sandbox outbox's `outbox`).
    pub mail_outbox: Vec<(String, i64)>,
    pub webhook_outbox: Vec<(String, i64)>,
    /// Seconds since the end of the newest hour the usage data covers (`None`: none read).
    pub usage_newest_data_age_seconds: Option<f64>,
    /// Seconds since the collector's last successful run (`None`: never).
    pub usage_last_success_age_seconds: Option<f64>,
    /// The org's DailyApiRequests as the collector last read them (`/limits`).
    pub daily_api_remaining: Option<i64>,
    pub daily_api_max: Option<i64>,
    /// Entries in the audit log (its head's sequence number).
    pub audit_log_entries: i64,
    /// Each configured audit stream sink's cursor.
    pub audit_stream: Vec<StreamSinkState>,
}

/// An audit stream sink's cursor as a scrape reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamSinkState {
    /// `syslog`, `hec` or `webhook`.
    pub sink: &'static str,
    /// The last entry it acknowledged.
    pub acked_seq: i64,
    /// Entries written after it.
    pub lag: i64,
    /// Failed batches since its last success.
    pub consecutive_failures: i64,
}

/// The portal's metrics. Shared (`Arc`) by the portal's parts and the server.
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily<RouteLabels>,
    http_refused: Family<ReasonLabel, Counter>,
    auth_refused: Family<LimitLabel, Counter>,
    callbacks_without_sign_in: Counter,
    steps: Family<StepLabels, Counter>,
    step_duration: HistogramFamily<StepDurationLabels>,
    collector_runs: Family<OutcomeLabel, Counter>,
    usage_files_read: Counter,
    usage_rows_read: Counter,
    outbox_deliveries: Family<OutboxOutcome, Counter>,
    grants: Family<StateLabel, Gauge>,
    queue: Family<StateLabel, Gauge>,
    oldest_waiting_step: FloatGauge,
    outbox_messages: Family<OutboxDelivery, Gauge>,
    usage_newest_data_age: FloatGauge,
    usage_last_success_age: FloatGauge,
    daily_api_remaining: Gauge,
    daily_api_max: Gauge,
    audit_log_entries: Gauge,
    stream_sent: Family<SinkLabel, Counter>,
    stream_failures: Family<SinkLabel, Counter>,
    stream_acked: Family<SinkLabel, Gauge>,
    stream_lag: Family<SinkLabel, Gauge>,
    stream_consecutive_failures: Family<SinkLabel, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn http_histogram() -> Histogram {
    Histogram::new(HTTP_BUCKETS.iter().copied())
}

fn step_histogram() -> Histogram {
    Histogram::new(STEP_BUCKETS.iter().copied())
}

impl Metrics {
    /// A registry with every metric registered (at zero).
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("portcullis");
        let metrics = Self {
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(http_histogram as fn() -> Histogram),
            http_refused: Family::default(),
            auth_refused: Family::default(),
            callbacks_without_sign_in: Counter::default(),
            steps: Family::default(),
            step_duration: Family::new_with_constructor(step_histogram as fn() -> Histogram),
            collector_runs: Family::default(),
            usage_files_read: Counter::default(),
            usage_rows_read: Counter::default(),
            outbox_deliveries: Family::default(),
            grants: Family::default(),
            queue: Family::default(),
            oldest_waiting_step: FloatGauge::default(),
            outbox_messages: Family::default(),
            usage_newest_data_age: FloatGauge::default(),
            usage_last_success_age: FloatGauge::default(),
            daily_api_remaining: Gauge::default(),
            daily_api_max: Gauge::default(),
            audit_log_entries: Gauge::default(),
            stream_sent: Family::default(),
            stream_failures: Family::default(),
            stream_acked: Family::default(),
            stream_lag: Family::default(),
            stream_consecutive_failures: Family::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        // Counters get `_total` appended by the encoder.
        r.register(
            "http_requests",
            "HTTP requests answered, by method, route template (never the raw path) and status",
            metrics.http_requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its answer's headers, by method and route template",
            metrics.http_duration.clone(),
        );
        r.register(
            "http_requests_refused",
            "Requests answered 503 before a handler: too many in flight (busy, HTTP_MAX_CONCURRENT_REQUESTS) or no answer in time (timeout, HTTP_REQUEST_TIMEOUT_SECONDS)",
            metrics.http_refused.clone(),
        );
        r.register(
            "auth_requests_refused",
            "Requests to /auth/login and /auth/callback refused by a rate limit (client or global)",
            metrics.auth_refused.clone(),
        );
        r.register(
            "auth_callbacks_without_sign_in",
            "Sign-in callbacks with no sign-in in progress in the browser (replayed, expired or unsolicited); not audited",
            metrics.callbacks_without_sign_in.clone(),
        );
        r.register(
            "provisioning_steps",
            "Provisioning step runs by step, direction (forward, undo, teardown) and outcome (succeeded, retrying, failed, lease_lost)",
            metrics.steps.clone(),
        );
        r.register(
            "provisioning_step_duration_seconds",
            "How long a provisioning step run took (the Salesforce calls and the recording), by step and direction",
            metrics.step_duration.clone(),
        );
        r.register(
            "usage_collector_runs",
            "Usage collector runs by outcome (ok, partial: some files could not be read, failed, busy: another instance was collecting)",
            metrics.collector_runs.clone(),
        );
        r.register(
            "usage_files_read",
            "ApiTotalUsage event log files read and counted",
            metrics.usage_files_read.clone(),
        );
        r.register(
            "usage_rows_read",
            "Rows of the event log files read",
            metrics.usage_rows_read.clone(),
        );
        r.register(
            "outbox_deliveries",
            "Delivery attempts of the mail and webhook outboxes by outcome (sent, retry: failed and tried again later, failed: given up)",
            metrics.outbox_deliveries.clone(),
        );
        r.register(
            "audit_entries_written",
            "Audit entries appended by this process, by action",
            AUDIT_ENTRIES.clone(),
        );
        r.register(
            "alerts",
            "Alerts raised by this process (API budget warnings and overruns, usage anomalies, drift), by kind",
            ALERTS.clone(),
        );
        r.register(
            "grants",
            "Grants by state (read from the database at scrape time)",
            metrics.grants.clone(),
        );
        r.register(
            "provisioning_queue_steps",
            "Unfinished steps of grants being provisioned, cancelled or torn down, by step state (database)",
            metrics.queue.clone(),
        );
        r.register(
            "provisioning_oldest_waiting_step_age_seconds",
            "Seconds the longest-waiting due step has waited for a worker (0 when none waits; database)",
            metrics.oldest_waiting_step.clone(),
        );
        r.register(
            "outbox_messages",
            "Mail and webhook messages not sent, by delivery state (pending, sending, failed; outbox: kept in the sandbox outbox; database)",
            metrics.outbox_messages.clone(),
        );
        r.register(
            "usage_newest_data_age_seconds",
            "Seconds since the end of the newest hour the usage data covers, the usage page's \"data through\" (-1 before any; database)",
            metrics.usage_newest_data_age.clone(),
        );
        r.register(
            "usage_collector_last_success_age_seconds",
            "Seconds since the usage collector's last successful run (-1 before any; database)",
            metrics.usage_last_success_age.clone(),
        );
        r.register(
            "org_daily_api_requests_remaining",
            "The org's remaining daily API calls (DailyApiRequests) as the usage collector last read them (-1 before any; database)",
            metrics.daily_api_remaining.clone(),
        );
        r.register(
            "org_daily_api_requests_max",
            "The org's daily API call allocation (DailyApiRequests) as last read (-1 before any; database)",
            metrics.daily_api_max.clone(),
        );
        r.register(
            "audit_log_entries",
            "Entries in the audit log (its head's sequence number; database)",
            metrics.audit_log_entries.clone(),
        );
        r.register(
            "audit_stream_entries_sent",
            "Audit entries a stream sink (syslog, hec, webhook) acknowledged from this process, backfills included (at least once: a batch sent again counts again)",
            metrics.stream_sent.clone(),
        );
        r.register(
            "audit_stream_failures",
            "Batches of audit entries a stream sink did not take (sent again after a backoff), by sink",
            metrics.stream_failures.clone(),
        );
        r.register(
            "audit_stream_acked_seq",
            "The last audit entry each configured stream sink acknowledged (database)",
            metrics.stream_acked.clone(),
        );
        r.register(
            "audit_stream_lag_entries",
            "Audit entries written after the last one each configured stream sink acknowledged (database)",
            metrics.stream_lag.clone(),
        );
        r.register(
            "audit_stream_consecutive_failures",
            "Failed batches since each configured stream sink's last success (database)",
            metrics.stream_consecutive_failures.clone(),
        );
        // Series that should read 0 rather than be missing before their first event.
        for reason in [Refused::Busy, Refused::Timeout] {
            metrics.http_refused.get_or_create_owned(&ReasonLabel {
                reason: reason.label(),
            });
        }
        for limit in [AuthLimit::Client, AuthLimit::Global] {
            metrics.auth_refused.get_or_create_owned(&LimitLabel {
                limit: limit.label(),
            });
        }
        for outcome in ["ok", "partial", "failed", "busy"] {
            metrics
                .collector_runs
                .get_or_create_owned(&OutcomeLabel { outcome });
        }
        for outbox in ["mail", "webhook"] {
            for outcome in ["sent", "retry", "failed"] {
                metrics
                    .outbox_deliveries
                    .get_or_create_owned(&OutboxOutcome { outbox, outcome });
            }
        }
        Self {
            registry,
            ..metrics
        }
    }

    /// An HTTP request answered with `status` after `seconds`. `route` is the matched
    /// route's template (or a fixed word for an unmatched path), never the raw path.
    pub fn http_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let method = known_method(method);
        self.http_requests
            .get_or_create(&HttpLabels {
                method,
                route: route.to_string(),
                status,
            })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabels {
                method,
                route: route.to_string(),
            })
            .observe(seconds);
    }

    /// A request refused before its handler.
    pub fn http_refused(&self, why: Refused) {
        self.http_refused
            .get_or_create(&ReasonLabel {
                reason: why.label(),
            })
            .inc();
    }

    /// A sign-in request refused by a rate limit.
    pub fn auth_refused(&self, limit: AuthLimit) {
        self.auth_refused
            .get_or_create(&LimitLabel {
                limit: limit.label(),
            })
            .inc();
    }

    /// A sign-in callback that matched no sign-in in progress.
    pub fn callback_without_sign_in(&self) {
        self.callbacks_without_sign_in.inc();
    }

    /// A provisioning step run (`direction`: forward, undo, teardown) that ended with
    /// `outcome` (succeeded, retrying, failed, lease_lost) after `seconds`.
    pub fn provisioning_step(
        &self,
        step: &'static str,
        direction: &'static str,
        outcome: &'static str,
        seconds: f64,
    ) {
        self.steps
            .get_or_create(&StepLabels {
                step,
                direction,
                outcome,
            })
            .inc();
        self.step_duration
            .get_or_create(&StepDurationLabels { step, direction })
            .observe(seconds);
    }

    /// A usage collector run (`outcome`: ok, partial, failed, busy) that read `files`
    /// files with `rows` rows.
    pub fn collector_run(&self, outcome: &'static str, files: u64, rows: u64) {
        self.collector_runs
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
        self.usage_files_read.inc_by(files);
        self.usage_rows_read.inc_by(rows);
    }

    /// An outbox delivery attempt (`outbox`: mail, webhook; `outcome`: sent, retry, failed).
    pub fn outbox_delivery(&self, outbox: &'static str, outcome: &'static str) {
        self.outbox_deliveries
            .get_or_create(&OutboxOutcome { outbox, outcome })
            .inc();
    }

    /// A stream sink acknowledged `entries` entries.
    pub fn audit_stream_sent(&self, sink: &'static str, entries: u64) {
        self.stream_sent
            .get_or_create(&SinkLabel { sink })
            .inc_by(entries);
    }

    /// A stream sink did not take a batch.
    pub fn audit_stream_failed(&self, sink: &'static str) {
        self.stream_failures
            .get_or_create(&SinkLabel { sink })
            .inc();
    }

    /// Sets the gauges read from the database.
    pub fn set_state(&self, state: &DatabaseState) {
        for (name, count) in &state.grants {
            self.grants
                .get_or_create(&StateLabel {
                    state: name.clone(),
                })
                .set(*count);
        }
        for (name, count) in &state.queue {
            self.queue
                .get_or_create(&StateLabel {
                    state: name.clone(),
                })
                .set(*count);
        }
        self.oldest_waiting_step
            .set(state.oldest_waiting_step_seconds);
        // States with no message any more are dropped rather than left at their last count.
        self.outbox_messages.clear();
        for (outbox, rows) in [
            ("mail", &state.mail_outbox),
            ("webhook", &state.webhook_outbox),
        ] {
            for (delivery, count) in rows {
                self.outbox_messages
                    .get_or_create(&OutboxDelivery {
                        outbox,
                        delivery: delivery.clone(),
                    })
                    .set(*count);
            }
        }
        self.usage_newest_data_age
            .set(state.usage_newest_data_age_seconds.unwrap_or(-1.0));
        self.usage_last_success_age
            .set(state.usage_last_success_age_seconds.unwrap_or(-1.0));
        self.daily_api_remaining
            .set(state.daily_api_remaining.unwrap_or(-1));
        self.daily_api_max.set(state.daily_api_max.unwrap_or(-1));
        self.audit_log_entries.set(state.audit_log_entries);
        for sink in &state.audit_stream {
            let label = SinkLabel { sink: sink.sink };
            self.stream_acked.get_or_create(&label).set(sink.acked_seq);
            self.stream_lag.get_or_create(&label).set(sink.lag);
            self.stream_consecutive_failures
                .get_or_create(&label)
                .set(sink.consecutive_failures);
            // A configured sink reads 0 failures and 0 sent before its first.
            self.stream_failures.get_or_create_owned(&label);
            self.stream_sent.get_or_create_owned(&label);
        }
    }

    /// The registry in Prometheus's text exposition format (version 0.0.4).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// The method as a label: the standard ones by name, anything else as `other` (a client
/// may send any token as a method).
fn known_method(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// A fresh, unshared set of metrics (the default of a part built outside a portal).
pub fn detached() -> Arc<Metrics> {
    Arc::new(Metrics::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_names_every_family_with_its_labels() {
        let metrics = Metrics::new();
        metrics.http_request("GET", "/status/{token}", 200, 0.02);
        metrics.http_request("BREW", "/", 404, 0.001);
        metrics.provisioning_step("user", "forward", "succeeded", 1.5);
        metrics.outbox_delivery("mail", "sent");
        metrics.set_state(&DatabaseState {
            grants: vec![("ready".into(), 2)],
            mail_outbox: vec![("pending".into(), 3)],
            ..Default::default()
        });
        let text = metrics.encode().unwrap();
        assert!(
            text.contains(
                r#"portcullis_http_requests_total{method="GET",route="/status/{token}",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"portcullis_http_requests_total{method="other",route="/",status="404"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"portcullis_http_request_duration_seconds_bucket{le="0.025",method="GET",route="/status/{token}"} 1"#
        ) || text.contains(
            r#"portcullis_http_request_duration_seconds_bucket{method="GET",route="/status/{token}",le="0.025"} 1"#
        ), "{text}");
        assert!(
            text.contains(r#"portcullis_provisioning_steps_total{step="user",direction="forward",outcome="succeeded"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"portcullis_grants{state="ready"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"portcullis_outbox_messages{outbox="mail",delivery="pending"} 3"#),
            "{text}"
        );
        assert!(
            text.contains("portcullis_org_daily_api_requests_remaining -1"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE portcullis_outbox_deliveries_total counter"),
            "{text}"
        );
    }

    #[test]
    fn audit_entries_and_alerts_are_counted_by_action() {
        let metrics = Metrics::new();
        audit_entry_appended(AuditAction::UsageAnomaly);
        let text = metrics.encode().unwrap();
        assert!(
            text.contains(r#"portcullis_audit_entries_written_total{action="usage.anomaly"}"#),
            "{text}"
        );
        assert!(
            text.contains(r#"portcullis_alerts_total{kind="usage.anomaly"}"#),
            "{text}"
        );
    }
}
