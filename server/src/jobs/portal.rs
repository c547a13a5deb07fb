//! The portal's jobs. Each is a thin call into `services` (or the session store) with its
//! schedule; what the runs do is tested where the work lives.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::{AtShutdown, Job, JobError, Ran};
use crate::session_store::DbSessionStore;

/// Deletes sessions that expired or outlived their lifetime, every 15 minutes.
pub struct SessionCleanup(pub DbSessionStore);

impl Job for SessionCleanup {
    const NAME: &'static str = "session_cleanup";
    fn interval(&self) -> Duration {
        Duration::from_secs(15 * 60)
    }
    async fn run_once(&self) -> Result<Ran, JobError> {
        match self.0.delete_expired().await {
            Ok(0) => Ok(Ran::Idle),
            Ok(n) => Ok(Ran::Did(format!("deleted {n} expired sessions"))),
            Err(e) => Err(JobError::new("could not delete expired sessions", e)),
        }
    }
}

/// Delivers queued mail over SMTP when woken, and retries every 30 seconds. (With mail kept
/// in the local outbox there is nothing to deliver, and the job is not run.)
pub struct MailSender {
    pub mailer: services::Mailer,
    pub db: services::Database,
}

impl Job for MailSender {
    const NAME: &'static str = "mail_sender";
    fn interval(&self) -> Duration {
        Duration::from_secs(30)
    }
    fn wake(&self) -> Option<Arc<Notify>> {
        Some(self.mailer.wake_handle())
    }
    async fn run_once(&self) -> Result<Ran, JobError> {
        match self.mailer.deliver_pending(&self.db).await {
            Ok(0) => Ok(Ran::Idle),
            Ok(n) => Ok(Ran::Did(format!("sent {n} messages"))),
            Err(e) => Err(JobError::new("mail sender: database error", e)),
        }
    }
}

/// Posts queued alert webhooks when woken, and looks for due retries every 10 seconds.
pub struct WebhookSender {
    pub webhook: services::usage::webhook::Webhook,
    pub db: services::Database,
}

impl Job for WebhookSender {
    const NAME: &'static str = "webhook_sender";
    fn interval(&self) -> Duration {
        Duration::from_secs(10)
    }
    fn wake(&self) -> Option<Arc<Notify>> {
        Some(self.webhook.wake_handle())
    }
    async fn run_once(&self) -> Result<Ran, JobError> {
        match self.webhook.deliver_pending(&self.db).await {
            Ok(0) => Ok(Ran::Idle),
            Ok(n) => Ok(Ran::Did(format!("posted {n} alerts"))),
            Err(e) => Err(JobError::new("webhook sender: database error", e)),
        }
    }
}

/// Expires requests whose email was never confirmed, once a minute.
pub struct RequestExpiry(pub services::Portal);

impl Job for RequestExpiry {
    const NAME: &'static str = "request_expiry";
    fn interval(&self) -> Duration {
        Duration::from_secs(60)
    }
    async fn run_once(&self) -> Result<Ran, JobError> {
        match self.0.expire_unverified().await {
            Ok(0) => Ok(Ran::Idle),
            Ok(n) => {
                tracing::info!(expired = n, "expired unverified requests");
                Ok(Ran::Did(format!("expired {n} requests")))
            }
            Err(e) => Err(JobError::new("could not expire unverified requests", e)),
        }
    }
}

/// Starts the teardown of every grant past its end date (it becomes `expiring`; the
/// provisioning workers tear it down), every `every` (`GRANT_EXPIRY_EVERY`).
pub struct GrantExpiry {
    pub portal: services::Portal,
    pub every: Duration,
}

impl Job for GrantExpiry {
    const NAME: &'static str = "grant_expiry";
    fn interval(&self) -> Duration {
        self.every
    }
    async fn run_once(&self) -> Result<Ran, JobError> {
        match self.portal.expire_ended_grants().await {
            Ok(started) if started.is_empty() => Ok(Ran::Idle),
            Ok(started) => {
                tracing::info!(grants = ?started, "grants past their end date: teardown started");
                Ok(Ran::Did(format!("{} grants expiring", started.len())))
            }
            Err(e) => Err(JobError::new(
                "could not expire grants past their end date",
                e,
            )),
        }
    }
}

/// Anchors the audit chain every `AUDIT_ANCHOR_EVERY` entries: looks every 5 seconds
/// whether the log has reached the next anchor. (The head is anchored once more at
/// shutdown, after every job has stopped: see `startup`.)
pub struct AuditAnchoring(pub services::Portal);

impl Job for AuditAnchoring {
    const NAME: &'static str = "audit_anchoring";
    fn interval(&self) -> Duration {
        Duration::from_secs(5)
    }
    async fn run_once(&self) -> Result<Ran, JobError> {
        match self.0.anchor_audit_chain().await {
            Ok(0) => Ok(Ran::Idle),
            Ok(n) => Ok(Ran::Did(format!("{n} anchors"))),
            Err(e) => Err(JobError::new("could not anchor the audit chain", e)),
        }
    }
}

/// Runs the audit chain's background verification ("Verify chain" over the whole log) when
/// one is asked for (woken by the press), and looks every 30 seconds for one whose instance
/// died (its lease lapsed), to carry it on. One at a time across instances: see
/// `services::audit::job`.
pub struct AuditVerification {
    pub verifier: services::audit::job::Verifier,
    pub wake: Arc<Notify>,
}

impl Job for AuditVerification {
    const NAME: &'static str = "audit_verification";
    fn interval(&self) -> Duration {
        Duration::from_secs(30)
    }
    fn wake(&self) -> Option<Arc<Notify>> {
        Some(self.wake.clone())
    }
    fn at_shutdown(&self) -> AtShutdown {
        // Its place is in the database: the next start (or another instance) carries on.
        AtShutdown::Drop
    }
    async fn run_once(&self) -> Result<Ran, JobError> {
        use services::audit::job::Ran as Verified;
        match self.verifier.run_once().await {
            Ok(Verified::Idle) => Ok(Ran::Idle),
            Ok(Verified::Finished(state)) => Ok(Ran::More(format!("audit verification {state}"))),
            Ok(Verified::LeaseLost) => Ok(Ran::Did(
                "audit verification taken over by another instance".into(),
            )),
            Err(e) => Err(JobError::new("could not run the audit verification", e)),
        }
    }
}

/// Streams the audit log to its sinks (syslog, Splunk HEC, a signed webhook): looks for
/// entries after each sink's cursor every `AUDIT_STREAM_INTERVAL_MS` (a look is one
/// indexed read per sink; entries other instances wrote are seen too, which a wake-up from
/// this process's appends would miss), and at once again while a sink takes full batches.
/// A batch in flight at shutdown is dropped: unacknowledged, it is sent again by the next
/// start. One instance streams a sink at a time: see `services::audit_stream`.
pub struct AuditStreaming(pub services::audit_stream::Streamer);

impl Job for AuditStreaming {
    const NAME: &'static str = "audit_streaming";
    fn interval(&self) -> Duration {
        self.0.interval()
    }
    fn at_shutdown(&self) -> AtShutdown {
        AtShutdown::Drop
    }
    async fn run_once(&self) -> Result<Ran, JobError> {
        match self.0.run_once().await {
            Ok(streamed) if streamed.more => Ok(Ran::More(format!(
                "streamed {} audit entries",
                streamed.sent
            ))),
            Ok(streamed) if streamed.sent == 0 && streamed.failed == 0 => Ok(Ran::Idle),
            Ok(streamed) => Ok(Ran::Did(format!(
                "streamed {} audit entries, {} batches failed",
                streamed.sent, streamed.failed
            ))),
            Err(e) => Err(JobError::new("could not stream the audit log", e)),
        }
    }
}

/// Destroys sealed secrets no link can reveal any more, every minute (orgs whose
/// credentials API returns no secrets only; elsewhere there are none).
pub struct SealedSecretSweeper(pub services::Portal);

impl Job for SealedSecretSweeper {
    const NAME: &'static str = "sealed_secret_sweeper";
    fn interval(&self) -> Duration {
        Duration::from_secs(60)
    }
    async fn run_once(&self) -> Result<Ran, JobError> {
        match services::reveal::destroy_uncollectable(self.0.db(), self.0.clock().as_ref()).await {
            Ok(0) => Ok(Ran::Idle),
            Ok(n) => Ok(Ran::Did(format!("destroyed {n} sealed secrets"))),
            Err(e) => Err(JobError::new(
                "could not destroy uncollectable sealed secrets",
                e,
            )),
        }
    }
}

/// Reads the org's API usage every `every` (the first time a minute after start, or sooner
/// with a shorter interval), then checks the budgets. A run in flight at shutdown is
/// dropped: what it had not committed is read again next time.
pub struct UsageCollector {
    pub collector: services::usage::collector::Collector,
    pub every: Duration,
}

impl Job for UsageCollector {
    const NAME: &'static str = "usage_collector";
    fn interval(&self) -> Duration {
        self.every
    }
    fn first_run_after(&self) -> Duration {
        self.every.min(Duration::from_secs(60))
    }
    fn at_shutdown(&self) -> AtShutdown {
        AtShutdown::Drop
    }
    async fn run_once(&self) -> Result<Ran, JobError> {
        use services::usage::collector::CollectError;
        match self.collector.run_once().await {
            Ok(report) => {
                tracing::info!(
                    listed = report.listed,
                    read = report.read.len(),
                    failed = report.failed.len(),
                    alerts = report.budgets.raised.len(),
                    "usage collected"
                );
                Ok(Ran::Did(format!("read {} log files", report.read.len())))
            }
            Err(CollectError::Busy) => {
                tracing::debug!("another instance is collecting usage");
                Ok(Ran::Idle)
            }
            Err(e) => Err(JobError::new("usage collection failed; will try again", e)),
        }
    }
}

/// A provisioning worker (the runner runs `PROVISIONING_WORKERS` of them): runs steps while
/// there are any, then looks again every 250 ms (a new approval is picked up within that).
/// At shutdown a step in flight is dropped: its lease expires and the step runs again (it
/// is idempotent) on the next start or on another instance.
pub struct ProvisioningWorker {
    pub engine: services::provisioning::Engine,
    pub db: services::Database,
    /// Woken by a revoke or an expiry (`Portal::wake_provisioning`), so a teardown does not
    /// wait for the next look.
    pub wake: Arc<Notify>,
}

impl ProvisioningWorker {
    /// The attempt a step is at, for the span (read after the run: the engine keeps it).
    async fn attempts(&self, grant: &str, step: &str) -> Option<i64> {
        sqlx::query_scalar(
            "SELECT attempts FROM provisioning_steps WHERE grant_id = $1 AND step = $2",
        )
        .bind(grant)
        .bind(step)
        .fetch_optional(self.db.pool())
        .await
        .ok()
        .flatten()
    }
}

impl Job for ProvisioningWorker {
    const NAME: &'static str = "provisioning";
    fn interval(&self) -> Duration {
        Duration::from_millis(250)
    }
    fn wake(&self) -> Option<Arc<Notify>> {
        Some(self.wake.clone())
    }
    fn at_shutdown(&self) -> AtShutdown {
        AtShutdown::Drop
    }
    #[tracing::instrument(
        name = "provisioning_run",
        skip_all,
        fields(grant = tracing::field::Empty, step = tracing::field::Empty, attempt = tracing::field::Empty)
    )]
    async fn run_once(&self) -> Result<Ran, JobError> {
        use services::provisioning::Ran as Step;
        let ran = self
            .engine
            .run_once()
            .await
            .map_err(|e| JobError::new("provisioning worker: database error", e))?;
        let (grant, step) = match &ran {
            Step::Idle => return Ok(Ran::Idle),
            Step::Succeeded { grant_id, step }
            | Step::Retrying { grant_id, step }
            | Step::Failed { grant_id, step }
            | Step::LeaseLost { grant_id, step } => (grant_id.as_str(), step.as_str()),
        };
        let span = tracing::Span::current();
        span.record("grant", grant);
        span.record("step", step);
        if let Some(attempt) = self.attempts(grant, step).await {
            span.record("attempt", attempt);
        }
        tracing::debug!(?ran, "provisioning step done");
        Ok(Ran::More(format!("{ran:?}")))
    }
}

/// Renewal, every 10 minutes: mails the reminders of grants' end dates that are due (14, 3
/// and 1 days before, each once however many instances run) and applies approved
/// extensions Salesforce has not taken yet.
pub struct RenewalReminders(pub services::Portal);

impl Job for RenewalReminders {
    const NAME: &'static str = "renewal_reminders";
    fn interval(&self) -> Duration {
        Duration::from_secs(10 * 60)
    }
    fn first_run_after(&self) -> Duration {
        Duration::from_secs(30)
    }
    async fn run_once(&self) -> Result<Ran, JobError> {
        let applied = self
            .0
            .apply_approved_extensions()
            .await
            .map_err(|e| JobError::new("could not apply approved extensions", e))?;
        let run = self
            .0
            .send_renewal_reminders()
            .await
            .map_err(|e| JobError::new("could not send renewal reminders", e))?;
        if applied == 0 && run.sent.is_empty() {
            return Ok(Ran::Idle);
        }
        tracing::info!(
            reminders = run.sent.len(),
            extensions_applied = applied,
            "renewal"
        );
        Ok(Ran::Did(format!(
            "sent {} reminders, applied {applied} extensions",
            run.sent.len()
        )))
    }
}

/// Access reviews (issue 18): unanswered items of campaigns past their due date take the
/// campaign's default (by the portal's clock), narrowings that did not finish are carried
/// on, and revoked items whose teardown did not start are started; every `REVIEWS_SECONDS`.
pub struct AccessReviews {
    pub portal: services::Portal,
    pub every: Duration,
}

impl Job for AccessReviews {
    const NAME: &'static str = "access_reviews";
    fn interval(&self) -> Duration {
        self.every
    }
    async fn run_once(&self) -> Result<Ran, JobError> {
        let run = self
            .portal
            .run_reviews()
            .await
            .map_err(|e| JobError::new("could not run the access reviews", e))?;
        if run == services::reviews::ReviewsRun::default() {
            return Ok(Ran::Idle);
        }
        tracing::info!(
            defaulted = run.defaulted,
            narrowed = run.narrowed,
            revoked = run.revoked,
            "access reviews"
        );
        Ok(Ran::Did(format!(
            "{} items defaulted, {} narrowings applied, {} revokes started",
            run.defaulted, run.narrowed, run.revoked
        )))
    }
}

/// The rotation policy, every 10 minutes: starts rotations of secrets past their maximum
/// age, reminds contractors to collect a new secret before the old one stops, and retires
/// old secrets at their deadline.
pub struct SecretRotation(pub services::Portal);

impl Job for SecretRotation {
    const NAME: &'static str = "secret_rotation";
    fn interval(&self) -> Duration {
        Duration::from_secs(10 * 60)
    }
    fn first_run_after(&self) -> Duration {
        Duration::from_secs(45)
    }
    async fn run_once(&self) -> Result<Ran, JobError> {
        let run = self
            .0
            .run_rotation_policy()
            .await
            .map_err(|e| JobError::new("could not run the rotation policy", e))?;
        if run.is_idle() {
            return Ok(Ran::Idle);
        }
        tracing::info!(
            started = run.started.len(),
            start_failed = run.start_failed.len(),
            reminders = run.reminded.len(),
            retired = run.completed.len(),
            failed = run.failed.len(),
            "rotation policy"
        );
        Ok(Ran::Did(format!(
            "started {} rotations, sent {} reminders, retired {} old secrets",
            run.started.len(),
            run.reminded.len(),
            run.completed.len()
        )))
    }
}

/// Drift detection, every `ASSURANCE_INTERVAL_HOURS`: every ready or active grant is proved
/// again; drift raises `grant.drift_detected` once and its policy applies.
pub struct Assurance {
    pub portal: services::Portal,
    pub every: Duration,
}

impl Job for Assurance {
    const NAME: &'static str = "assurance";
    fn interval(&self) -> Duration {
        self.every
    }
    fn first_run_after(&self) -> Duration {
        // Not at once: a restart should not re-prove everything each time.
        self.every.min(Duration::from_secs(3_600))
    }
    async fn run_once(&self) -> Result<Ran, JobError> {
        let summary = self
            .portal
            .reprove_all()
            .await
            .map_err(|e| JobError::new("could not re-prove the grants", e))?;
        if summary.proved == 0 {
            return Ok(Ran::Idle);
        }
        tracing::info!(
            proved = summary.proved,
            drifted = summary.drifted,
            raised = summary.raised,
            failed = summary.failed,
            "assurance"
        );
        Ok(Ran::Did(format!(
            "re-proved {} grants: {} drifted ({} new), {} could not be proved",
            summary.proved, summary.drifted, summary.raised, summary.failed
        )))
    }
}
