//! Background jobs: the work the portal does besides answering requests (delivering mail,
//! expiring requests, anchoring the audit chain, provisioning, ...). A job says what it is
//! and does one run ([`Job`]); the [`Runner`] owns the rest: intervals, wake-ups, worker
//! counts, a span per run, shutdown and joining.
//!
//! The jobs live here, in the server, rather than in `services`: they are the process's
//! schedule, and some of them (the session cleanup) work on the server's own stores. Each
//! job's run is a call into `services`, where the work itself is tested.
//!
//! A new job: a type implementing [`Job`] in `portal.rs`, registered in
//! `startup::register_jobs` (which also says what shutdown waits for, and in which order).

mod portal;
mod runner;

pub use portal::{
    AccessReviews, Assurance, AuditAnchoring, AuditStreaming, AuditVerification, GrantExpiry,
    MailSender, ProvisioningWorker, RenewalReminders, RequestExpiry, SealedSecretSweeper,
    SecretRotation, SessionCleanup, UsageCollector, WebhookSender,
};
pub use runner::Runner;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// What one run of a job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    /// Nothing was due.
    Idle,
    /// Did what it describes; the next run comes after the interval.
    Did(String),
    /// Did what it describes, and more may be waiting: run again at once.
    More(String),
}

/// A run that failed; the job is tried again after its interval.
#[derive(Debug)]
pub struct JobError {
    /// What the job could not do ("could not expire unverified requests").
    pub context: &'static str,
    pub error: String,
}

impl JobError {
    pub fn new(context: &'static str, error: impl std::fmt::Display) -> Self {
        Self {
            context,
            error: error.to_string(),
        }
    }
}

/// What becomes of a run in flight when the portal shuts down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtShutdown {
    /// It finishes (a delivery half-recorded would be sent twice).
    Finish,
    /// It is dropped: its work is durable and idempotent, and is taken up again by the next
    /// start or another instance (a provisioning step whose lease runs out).
    Drop,
}

/// A background job: a name, how often it runs and one run.
pub trait Job: Send + Sync + 'static {
    /// Its name in logs and spans (`job = ...`).
    const NAME: &'static str;

    /// The wait between runs (after a run that found nothing more to do).
    fn interval(&self) -> Duration;

    /// The wait before the first run; none by default.
    fn first_run_after(&self) -> Duration {
        Duration::ZERO
    }

    /// Notified when there is work for the job (mail queued), so it runs before its
    /// interval is up.
    fn wake(&self) -> Option<Arc<Notify>> {
        None
    }

    fn at_shutdown(&self) -> AtShutdown {
        AtShutdown::Finish
    }

    /// One run.
    fn run_once(&self) -> impl Future<Output = Result<Ran, JobError>> + Send;
}
