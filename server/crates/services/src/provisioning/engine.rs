//! The engine: a worker leases the next runnable step (forward for a grant being
//! provisioned, backward for one being cancelled, backward too for one being torn down:
//! revoked or past its end date), runs it with an API-call counting client, and records the
//! outcome only while it still holds the lease. One lease, run and record path serves the
//! three directions; what differs (the grants and step states, the audit actions, what the
//! grant becomes) is in [`Direction`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;
use salesforce::Client;
use serde_json::{Value, json};
use shared::grant::{GrantState, StepState};
use sqlx::{Any, Transaction};
use tracing::Instrument;

use super::outputs::StepOutput;
use super::{Step, StepFailure, run_step, undo};
use crate::audit::{self, Actor, AuditAction, Outcome, Target};
use crate::clock::SharedClock;
use crate::db::{Database, DatabaseKind, QueryBuilder, WriteTx};
use crate::eca::{self, DeployPoll};

/// Backoff for transient failures: `base * 2^(attempt-1)`, capped, with full jitter on the
/// upper half so workers that failed together do not retry together.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max: Duration,
    /// Attempts before a transient failure counts as permanent.
    pub max_attempts: i64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            max: Duration::from_secs(300),
            max_attempts: 12,
        }
    }
}

impl RetryPolicy {
    pub fn delay(&self, attempt: i64, rng: &mut impl Rng) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << (attempt.clamp(1, 20) - 1) as u32)
            .min(self.max);
        let half = exp / 2;
        half + Duration::from_millis(rng.random_range(0..=half.as_millis() as u64))
    }
}

/// A step leased by this worker.
#[derive(Debug, Clone)]
pub struct Leased {
    pub grant_id: String,
    pub step: Step,
    pub attempt: i64,
    /// No attempt of this step ever started before (an admin's retry resets `attempt`
    /// but not this).
    pub first_attempt: bool,
    /// Leased to undo the step (its grant is being cancelled or torn down), not to run it.
    pub undo: bool,
    /// Leased to undo the step as part of a teardown (the grant is revoking or expiring).
    pub teardown: bool,
}

/// What a worker did with one `run_once`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    /// Nothing was runnable.
    Idle,
    Succeeded {
        grant_id: String,
        step: Step,
    },
    Retrying {
        grant_id: String,
        step: Step,
    },
    Failed {
        grant_id: String,
        step: Step,
    },
    /// Another worker took the step over (our lease expired) before we recorded it.
    LeaseLost {
        grant_id: String,
        step: Step,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// A worker of the provisioning engine.
#[derive(Clone)]
pub struct Engine {
    pub(super) db: Database,
    pub(super) salesforce: Client,
    /// This worker's identity in leases.
    pub(super) owner: String,
    lease: Duration,
    retry: RetryPolicy,
    pub(super) contact_email: String,
    pub(super) deploy_poll: DeployPoll,
    /// Sends the contractor their reveal link when the grant becomes ready.
    pub(super) handover: crate::reveal::Handover,
    /// Leases, due times and what the steps stamp (the portal's: see [`Engine::with_clock`]).
    pub(super) clock: SharedClock,
    /// Where step runs are counted and timed (the portal's: see [`Engine::with_metrics`]).
    metrics: Arc<crate::metrics::Metrics>,
}

/// The ways a step is run: forward (provisioning), backward (undoing it, the grant being
/// cancelled) and teardown (undoing it, the grant being revoked or past its end date).
/// Which steps each leases, and the step states and audit actions of each.
struct Direction {
    /// Grants whose steps are leased in this direction.
    grants: &'static [GrantState],
    /// Steps leased as they are, and steps leased when no worker holds them (no lease, or
    /// an expired one: its worker died).
    free: &'static [StepState],
    reclaimed: &'static [StepState],
    /// Which steps a step waits for, and what the grant becomes when one is leased.
    order: Order,
    starts_grant: Option<(GrantState, GrantState)>,
    /// The state of a step leased in this direction.
    leased: StepState,
    /// After success; after a transient failure (tried again later); after a permanent one.
    done: StepState,
    retry: StepState,
    stopped: StepState,
    started_action: AuditAction,
    done_action: AuditAction,
    retry_action: AuditAction,
    stopped_action: AuditAction,
    /// Undoes steps to end a grant's access (what the grant becomes, the cut-off and the
    /// credential check: see [`super::teardown`]).
    teardown: bool,
}

/// The order steps are leased in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    /// By position: a step once every earlier one is done (succeeded).
    Forward,
    /// Newest first, of the steps that ever started (what never ran has nothing to undo):
    /// a step once every later started one is done (undone).
    Backward,
}

const FORWARD: Direction = Direction {
    grants: &[GrantState::Approved, GrantState::Provisioning],
    free: &[StepState::Pending],
    reclaimed: &[StepState::Running],
    order: Order::Forward,
    starts_grant: Some((GrantState::Approved, GrantState::Provisioning)),
    leased: StepState::Running,
    done: StepState::Succeeded,
    retry: StepState::Pending,
    stopped: StepState::Failed,
    started_action: AuditAction::ProvisioningStepStarted,
    done_action: AuditAction::ProvisioningStepSucceeded,
    retry_action: AuditAction::ProvisioningStepRetry,
    stopped_action: AuditAction::ProvisioningStepFailed,
    teardown: false,
};

const BACKWARD: Direction = Direction {
    grants: &[GrantState::Cancelling],
    free: &[StepState::Succeeded, StepState::Failed, StepState::Pending],
    reclaimed: &[StepState::Running, StepState::Undoing],
    order: Order::Backward,
    starts_grant: None,
    leased: StepState::Undoing,
    done: StepState::Undone,
    retry: StepState::Undoing,
    // A failed undo keeps the step undoing: cancelling again carries on from it.
    stopped: StepState::Undoing,
    started_action: AuditAction::ProvisioningUndoStarted,
    done_action: AuditAction::ProvisioningStepUndone,
    retry_action: AuditAction::ProvisioningUndoRetry,
    stopped_action: AuditAction::ProvisioningUndoFailed,
    teardown: false,
};

/// A teardown undoes what the run made as a cancel does (newest first, every step that ever
/// started), for grants that are revoking or expiring; the grant ends revoked or expired.
const TEARDOWN: Direction = Direction {
    grants: &[GrantState::Revoking, GrantState::Expiring],
    free: &[StepState::Succeeded, StepState::Failed, StepState::Pending],
    reclaimed: &[StepState::Running, StepState::Undoing],
    order: Order::Backward,
    starts_grant: None,
    leased: StepState::Undoing,
    done: StepState::Undone,
    retry: StepState::Undoing,
    // A failed step keeps undoing: revoking again carries on from it.
    stopped: StepState::Undoing,
    started_action: AuditAction::TeardownStepStarted,
    done_action: AuditAction::TeardownStepDone,
    retry_action: AuditAction::TeardownStepRetry,
    stopped_action: AuditAction::TeardownStepFailed,
    teardown: true,
};

impl Direction {
    /// The next step to lease in this direction, due at `now`.
    fn candidate(&self, now: i64, lock: &str) -> QueryBuilder {
        let states = |states: &[StepState]| states.iter().map(|s| s.as_str()).collect::<Vec<_>>();
        let mut query = QueryBuilder::new(
            "SELECT s.grant_id, s.step, s.state, s.attempts, s.started_at, s.updated_at \
             FROM provisioning_steps s JOIN grants g ON g.id = s.grant_id",
        );
        query
            .and_where()
            .push("g.state IN (")
            .push_binds(self.grants.iter().map(|g| g.as_str()))
            .push(")");
        if self.order == Order::Backward {
            query.and_where().push("s.started_at IS NOT NULL");
        }
        query
            .and_where()
            .push("(s.state IN (")
            .push_binds(states(self.free))
            .push(") OR (s.state IN (")
            .push_binds(states(self.reclaimed))
            .push(") AND (s.lease_expires_at IS NULL OR s.lease_expires_at < ")
            .push_bind(now)
            .push(")))");
        query
            .and_where()
            .push("s.next_attempt_at <= ")
            .push_bind(now);
        let waits_for = match self.order {
            Order::Forward => "p.position < s.position",
            Order::Backward => "p.position > s.position AND p.started_at IS NOT NULL",
        };
        query
            .and_where()
            .push(format_args!(
                "NOT EXISTS (SELECT 1 FROM provisioning_steps p \
                 WHERE p.grant_id = s.grant_id AND {waits_for} AND p.state <> "
            ))
            .push_bind(self.done.as_str())
            .push(format_args!(
                ") ORDER BY s.next_attempt_at, s.grant_id LIMIT 1{lock}"
            ));
        query
    }

    /// The attempt a lease of a step found in state `was` starts: the next one when the
    /// step was already in this direction (leased, or waiting for a retry), else the first.
    fn attempt(&self, was: &str, attempts: i64) -> i64 {
        if was == self.leased.as_str() || was == self.retry.as_str() {
            attempts + 1
        } else {
            1
        }
    }
}

/// A step that may be leased, as [`Direction::candidate`] finds it.
#[derive(sqlx::FromRow)]
struct Candidate {
    grant_id: String,
    step: String,
    state: String,
    attempts: i64,
    started_at: Option<i64>,
    updated_at: i64,
}

impl Leased {
    fn direction(&self) -> &'static Direction {
        match (self.undo, self.teardown) {
            (_, true) => &TEARDOWN,
            (true, false) => &BACKWARD,
            (false, false) => &FORWARD,
        }
    }
}

/// What running a leased step produced.
pub(super) enum Done {
    /// What a step found or made.
    Forward(StepOutput),
    /// What an undo removed or gave back (evidence only).
    Backward(Value),
}

impl Engine {
    pub fn new(db: Database, salesforce: Client) -> Self {
        Self {
            db,
            salesforce,
            owner: format!("worker-{}", uuid::Uuid::new_v4()),
            // Longer than any step takes (the deploy poll waits up to two minutes).
            lease: Duration::from_secs(300),
            retry: RetryPolicy::default(),
            contact_email: "salesforce-admins@integrations.portcullis.invalid".into(),
            deploy_poll: DeployPoll::default(),
            handover: crate::reveal::Handover::default(),
            clock: crate::clock::system(),
            metrics: crate::metrics::detached(),
        }
    }

    /// Reads the time from `clock` (the portal's, [`crate::Portal::clock`]).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Counts and times step runs in `metrics` (the portal's, [`crate::Portal::metrics`]).
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// How the contractor is sent their reveal link (mail, the portal's URL, link expiry).
    pub fn with_handover(mut self, handover: crate::reveal::Handover) -> Self {
        self.handover = handover;
        self
    }

    /// Who Salesforce lists as the External Client Apps' contact.
    pub fn with_contact_email(mut self, email: impl Into<String>) -> Self {
        self.contact_email = email.into();
        self
    }

    pub fn with_deploy_poll(mut self, poll: DeployPoll) -> Self {
        self.deploy_poll = poll;
        self
    }

    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Leases the next runnable step: the first unfinished step of a grant still being
    /// provisioned whose earlier steps all succeeded, which is pending (or running under an
    /// expired lease) and due; else the next step to undo of a grant being cancelled (the
    /// newest started step not undone yet, once no later step is left and no worker is
    /// running it).
    ///
    /// A teardown's steps come first: a revoked credential must stop working within
    /// seconds, whatever else is waiting.
    pub async fn lease_next(&self) -> Result<Option<Leased>, EngineError> {
        for direction in [&TEARDOWN, &FORWARD, &BACKWARD] {
            if let Some(leased) = self.lease(direction).await? {
                return Ok(Some(leased));
            }
        }
        Ok(None)
    }

    fn lock(&self) -> &'static str {
        match self.db.kind() {
            DatabaseKind::Postgres => " FOR UPDATE OF s SKIP LOCKED",
            DatabaseKind::Sqlite => "",
        }
    }

    fn lease_expires_at(&self, now: i64) -> i64 {
        now + self.lease.as_millis() as i64
    }

    /// Leases the next step to run in `direction`, if one is due.
    async fn lease(&self, direction: &'static Direction) -> Result<Option<Leased>, EngineError> {
        let now = self.clock.now_ms();
        let mut tx = self.db.begin_write().await?;
        let candidate = direction
            .candidate(now, self.lock())
            .build_query_as::<Candidate>()
            .fetch_optional(&mut *tx.tx)
            .await?;
        let Some(candidate) = candidate else {
            tx.commit().await?;
            return Ok(None);
        };
        let Some(step) = Step::parse(&candidate.step).ok() else {
            tracing::error!(
                grant_id = candidate.grant_id,
                step = candidate.step,
                "unknown provisioning step"
            );
            tx.commit().await?;
            return Ok(None);
        };
        let attempt = direction.attempt(&candidate.state, candidate.attempts);
        // The row is the one just read (it is locked on PostgreSQL; SQLite's write
        // transaction excludes other writers), so this takes it unless it changed.
        let taken = sqlx::query(
            "UPDATE provisioning_steps SET state = $1, lease_owner = $2, lease_expires_at = $3, \
                 attempts = $4, started_at = COALESCE(started_at, $5), updated_at = $5 \
             WHERE grant_id = $6 AND step = $7 AND state = $8 AND updated_at = $9",
        )
        .bind(direction.leased.as_str())
        .bind(&self.owner)
        .bind(self.lease_expires_at(now))
        .bind(attempt)
        .bind(now)
        .bind(&candidate.grant_id)
        .bind(step.as_str())
        .bind(&candidate.state)
        .bind(candidate.updated_at)
        .execute(&mut *tx.tx)
        .await?;
        if taken.rows_affected() != 1 {
            tx.commit().await?;
            return Ok(None);
        }
        if let Some((from, to)) = direction.starts_grant {
            sqlx::query(
                "UPDATE grants SET state = $1, updated_at = $2 WHERE id = $3 AND state = $4",
            )
            .bind(to.as_str())
            .bind(now)
            .bind(&candidate.grant_id)
            .bind(from.as_str())
            .execute(&mut *tx.tx)
            .await?;
        }
        let leased = Leased {
            grant_id: candidate.grant_id,
            step,
            attempt,
            first_attempt: candidate.started_at.is_none(),
            undo: direction.order == Order::Backward,
            teardown: direction.teardown,
        };
        self.started(tx, leased).await.map(Some)
    }

    /// Audits that this worker took `leased`, and commits the lease.
    async fn started(&self, mut tx: WriteTx, leased: Leased) -> Result<Leased, EngineError> {
        let step = leased.step.as_str();
        audit::record(
            &mut tx.tx,
            &Actor::system(),
            leased.direction().started_action,
            Target::Grant,
            &leased.grant_id,
            json!({ "step": step, "attempt": leased.attempt, "worker": self.owner }),
        )
        .await?;
        tx.commit().await?;
        Ok(leased)
    }

    /// Leases one step and runs it.
    pub async fn run_once(&self) -> Result<Ran, EngineError> {
        let Some(leased) = self.lease_next().await? else {
            return Ok(Ran::Idle);
        };
        self.run_leased(&leased).await
    }

    /// Runs steps until nothing is runnable now; returns what was done.
    pub async fn run_until_idle(&self) -> Result<Vec<Ran>, EngineError> {
        let mut done = Vec::new();
        loop {
            match self.run_once().await? {
                Ran::Idle => return Ok(done),
                ran => done.push(ran),
            }
        }
    }

    /// Runs (or undoes) a step this worker holds the lease on, and records the outcome.
    pub async fn run_leased(&self, leased: &Leased) -> Result<Ran, EngineError> {
        // Elapsed real time, not the portal's clock (a test clock does not move by itself).
        let started = tokio::time::Instant::now();
        let direction = match (leased.teardown, leased.undo) {
            (true, _) => "teardown",
            (false, true) => "undo",
            (false, false) => "forward",
        };
        // The span a trace shows for this attempt (and, with an OTLP exporter, sends):
        // everything the step logs and every Salesforce call it makes happens inside it.
        let span = tracing::info_span!(
            "provisioning_step",
            grant = %leased.grant_id,
            step = leased.step.as_str(),
            attempt = leased.attempt,
            direction,
            outcome = tracing::field::Empty,
        );
        let ran = self.run_and_record(leased).instrument(span.clone()).await?;
        let outcome = match &ran {
            Ran::Idle => "idle",
            Ran::Succeeded { .. } => "succeeded",
            Ran::Retrying { .. } => "retrying",
            Ran::Failed { .. } => "failed",
            Ran::LeaseLost { .. } => "lease_lost",
        };
        span.record("outcome", outcome);
        self.metrics.provisioning_step(
            leased.step.as_str(),
            direction,
            outcome,
            started.elapsed().as_secs_f64(),
        );
        Ok(ran)
    }

    async fn run_and_record(&self, leased: &Leased) -> Result<Ran, EngineError> {
        let calls = Arc::new(AtomicU64::new(0));
        let client = self.salesforce.counting(calls.clone());
        let outcome = match self.context(leased).await? {
            Some(context) if leased.teardown => {
                super::teardown::run(&client, leased.step, &context)
                    .await
                    .map(Done::Backward)
            }
            Some(context) if leased.undo => undo::run(&client, leased.step, &context)
                .await
                .map(Done::Backward),
            Some(context) => run_step(&client, leased.step, &context)
                .await
                .map(Done::Forward),
            None => Err(StepFailure {
                message: "the grant no longer exists".into(),
                transient: false,
            }),
        };
        let calls = calls.load(Ordering::Relaxed) as i64;
        self.record(leased, outcome, calls).await
    }

    /// Records a run's (or an undo's) outcome, if this worker still holds the lease, with
    /// what it means for the grant, in one transaction.
    async fn record(
        &self,
        leased: &Leased,
        outcome: Result<Done, StepFailure>,
        calls: i64,
    ) -> Result<Ran, EngineError> {
        let now = self.clock.now_ms();
        let direction = leased.direction();
        let (grant_id, step) = (leased.grant_id.clone(), leased.step);
        if !leased.undo && step == super::LAST_STEP {
            // The reveal link's mail names the org: read its name (once per process) before
            // the transaction, not inside it.
            self.handover.org_name.get(&self.salesforce).await;
        }
        let mut tx = self.db.begin_write().await?;
        add_calls(&mut tx.tx, &grant_id, calls).await?;
        let output = match &outcome {
            Ok(Done::Forward(output)) => Some(output.to_value()),
            Ok(Done::Backward(evidence)) => Some(evidence.clone()),
            Err(_) => None,
        };
        let (state, next_attempt_at, error, action, audit_outcome, ran) = match &outcome {
            Ok(_) => (
                direction.done,
                now,
                None,
                direction.done_action,
                Outcome::Success,
                Ran::Succeeded {
                    grant_id: grant_id.clone(),
                    step,
                },
            ),
            Err(failure) if failure.transient && leased.attempt < self.retry.max_attempts => (
                direction.retry,
                now + self
                    .retry
                    .delay(leased.attempt, &mut rand::rng())
                    .as_millis() as i64,
                Some(failure.message.clone()),
                direction.retry_action,
                Outcome::Failure,
                Ran::Retrying {
                    grant_id: grant_id.clone(),
                    step,
                },
            ),
            Err(failure) => (
                direction.stopped,
                now,
                Some(failure.message.clone()),
                direction.stopped_action,
                Outcome::Failure,
                Ran::Failed {
                    grant_id: grant_id.clone(),
                    step,
                },
            ),
        };
        // A run keeps what its step made (the undo's evidence goes to the audit log only);
        // a run's step is finished unless it waits for a retry, an undo's once it is undone.
        let stored = match &outcome {
            Ok(Done::Forward(_)) => output.as_ref().map(Value::to_string),
            _ => None,
        };
        let finished = match (leased.undo, state == direction.done, state == FORWARD.retry) {
            (false, _, true) => "clear",
            (false, _, false) | (true, true, _) => "set",
            (true, false, _) => "keep",
        };
        let updated = sqlx::query(
            "UPDATE provisioning_steps SET state = $1, next_attempt_at = $2, last_error = $3, \
                 output = COALESCE($4, output), lease_owner = NULL, lease_expires_at = NULL, \
                 finished_at = CASE $5 WHEN 'set' THEN $6 WHEN 'clear' THEN NULL ELSE finished_at END, \
                 updated_at = $6 \
             WHERE grant_id = $7 AND step = $8 AND state = $9 AND lease_owner = $10",
        )
        .bind(state.as_str())
        .bind(next_attempt_at)
        .bind(&error)
        .bind(&stored)
        .bind(finished)
        .bind(now)
        .bind(&grant_id)
        .bind(step.as_str())
        .bind(direction.leased.as_str())
        .bind(&self.owner)
        .execute(&mut *tx.tx)
        .await?;
        if updated.rows_affected() != 1 {
            tx.commit().await?;
            tracing::warn!(
                grant_id,
                step = step.as_str(),
                undo = leased.undo,
                "lease lost before the step was recorded"
            );
            return Ok(Ran::LeaseLost { grant_id, step });
        }
        let stopped = matches!(ran, Ran::Failed { .. });
        let mut link_sent = false;
        if stopped {
            stop(
                &mut tx.tx,
                direction,
                &grant_id,
                step,
                error.as_deref(),
                now,
            )
            .await?;
        }
        if leased.undo {
            if state == BACKWARD.done && step == Step::Consumer {
                eca::record_consumer(&mut tx.tx, &grant_id, None).await?;
            }
        } else {
            if let Ok(Done::Forward(StepOutput::Consumer(made))) = &outcome {
                let ids = (made.app_id.as_str(), made.consumer_id.as_str());
                eca::record_consumer(&mut tx.tx, &grant_id, Some(ids)).await?;
            }
            // A grant cancelled while this step ran stays cancelling.
            if state == FORWARD.done && step == super::LAST_STEP {
                link_sent = became_ready(&mut tx.tx, &grant_id, now).await?;
            }
        }
        audit_outcome_of(
            &mut tx.tx,
            leased,
            action,
            audit_outcome,
            calls,
            error.as_deref(),
            output.as_ref(),
        )
        .await?;
        if leased.teardown && state == TEARDOWN.done {
            super::teardown::recorded(&mut tx.tx, &grant_id, step, output.as_ref()).await?;
            super::teardown::ended_if_undone(&mut tx.tx, &grant_id, now).await?;
        } else if leased.undo && state == BACKWARD.done {
            cancelled_if_undone(&mut tx.tx, &grant_id, now).await?;
        }
        // The link goes out in the same transaction that makes the grant ready: never a
        // ready grant without one, never two.
        if link_sent {
            crate::reveal::issue_link(
                &mut tx.tx,
                &self.handover,
                &grant_id,
                &Actor::system(),
                "provisioned",
            )
            .await?;
        }
        tx.commit().await?;
        if link_sent {
            self.handover.mail.wake();
        }
        Ok(ran)
    }
}

/// The last step succeeded: the grant is ready (unless it is being cancelled). Whether it
/// became ready now.
async fn became_ready(
    tx: &mut Transaction<'static, Any>,
    grant_id: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let became = sqlx::query(
        "UPDATE grants SET state = $3, attention = NULL, updated_at = $1 \
         WHERE id = $2 AND state IN ($4, $5)",
    )
    .bind(now)
    .bind(grant_id)
    .bind(GrantState::Ready.as_str())
    .bind(GrantState::Approved.as_str())
    .bind(GrantState::Provisioning.as_str())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(became == 1)
}

/// A step failed for good in `direction`: the run (or the cancel) stops and the grant needs
/// an admin, unless it has left the direction's states meanwhile (a grant cancelled while
/// its step ran stays cancelling).
async fn stop(
    tx: &mut Transaction<'static, Any>,
    direction: &Direction,
    grant_id: &str,
    step: Step,
    error: Option<&str>,
    now: i64,
) -> Result<(), sqlx::Error> {
    let error = error.unwrap_or_default();
    let attention = match direction.order {
        Order::Forward => format!("{}: {error}", step.label()),
        Order::Backward if direction.teardown => format!(
            "Taking access away stopped at \"{}\": {error} Fix it in the org, then revoke again.",
            step.label()
        ),
        Order::Backward => format!(
            "Cancelling stopped at \"{}\": {error} Fix it in the org, then cancel again.",
            step.label()
        ),
    };
    let mut query = QueryBuilder::new("UPDATE grants SET state = ");
    query
        .push_bind(GrantState::NeedsAttention.as_str())
        .push(", attention = ")
        .push_bind(attention)
        .push(", updated_at = ")
        .push_bind(now)
        .push(" WHERE id = ")
        .push_bind(grant_id)
        .push(" AND state IN (")
        .push_binds(direction.grants.iter().map(|g| g.as_str()))
        .push(")");
    query.build().execute(&mut **tx).await?;
    Ok(())
}

/// Once every started step is undone, the grant is cancelled.
async fn cancelled_if_undone(
    tx: &mut Transaction<'static, Any>,
    grant_id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let left = undo::steps_left_to_undo(tx, grant_id).await?;
    if left > 0 {
        return Ok(());
    }
    let done =
        sqlx::query("UPDATE grants SET state = $3, updated_at = $1 WHERE id = $2 AND state = $4")
            .bind(now)
            .bind(grant_id)
            .bind(GrantState::Cancelled.as_str())
            .bind(GrantState::Cancelling.as_str())
            .execute(&mut **tx)
            .await?;
    if done.rows_affected() == 1 {
        audit::record(
            tx,
            &Actor::system(),
            AuditAction::ProvisioningCancelled,
            Target::Grant,
            grant_id,
            json!({ "undone": true }),
        )
        .await?;
    }
    Ok(())
}

/// Adds a step's API calls to its grant's count. They count against the org whether or not
/// the worker still holds the lease, so this is done before the lease is checked.
async fn add_calls(
    tx: &mut Transaction<'static, Any>,
    grant_id: &str,
    calls: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE grants SET api_calls = api_calls + $1 WHERE id = $2")
        .bind(calls)
        .bind(grant_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The audit event for a step's (or an undo's) outcome: the step, attempt, API calls, and
/// the error or what Salesforce made.
async fn audit_outcome_of(
    tx: &mut Transaction<'static, Any>,
    leased: &Leased,
    action: AuditAction,
    outcome: Outcome,
    calls: i64,
    error: Option<&str>,
    output: Option<&Value>,
) -> Result<(), sqlx::Error> {
    let mut details =
        json!({ "step": leased.step.as_str(), "attempt": leased.attempt, "api_calls": calls });
    if let Some(error) = error {
        details["error"] = json!(error);
    }
    if let Some(output) = output {
        details["salesforce"] = output.clone();
    }
    audit::record_outcome(
        tx,
        &Actor::system(),
        action,
        outcome,
        Target::Grant,
        &leased.grant_id,
        details,
    )
    .await?;
    Ok(())
}

/// Makes every leased step (running or undoing) available again at once. Only for a
/// single instance at start-up (SQLite), where any lease is a dead process's.
pub async fn release_leases(db: &Database) -> Result<u64, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let released = sqlx::query(
        "UPDATE provisioning_steps SET lease_expires_at = 0 \
         WHERE state IN ($1, $2) AND lease_owner IS NOT NULL",
    )
    .bind(FORWARD.leased.as_str())
    .bind(BACKWARD.leased.as_str())
    .execute(&mut *tx.tx)
    .await?;
    tx.commit().await?;
    Ok(released.rows_affected())
}

impl crate::Portal {
    /// Frees the step leases a previous process left ([`release_leases`]); how many.
    pub async fn release_provisioning_leases(&self) -> Result<u64, sqlx::Error> {
        release_leases(&self.db).await
    }

    /// A provisioning engine over this portal's database and org, deploying apps with the
    /// portal's contact and handing credentials over as the portal does.
    pub fn provisioning_engine(&self) -> Engine {
        Engine::new(self.db.clone(), self.salesforce.clone())
            .with_contact_email(self.app_contact_email.clone())
            .with_handover(self.handover())
            .with_clock(self.clock.clone())
            .with_metrics(self.metrics.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
            max_attempts: 5,
        };
        let mut rng = rand::rng();
        for _ in 0..50 {
            let first = policy.delay(1, &mut rng);
            assert!((Duration::from_millis(50)..=Duration::from_millis(100)).contains(&first));
            let third = policy.delay(3, &mut rng);
            assert!((Duration::from_millis(200)..=Duration::from_millis(400)).contains(&third));
            assert!(policy.delay(30, &mut rng) <= Duration::from_secs(1));
        }
    }
}
