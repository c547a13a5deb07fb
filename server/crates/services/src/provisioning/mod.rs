//! The provisioning workflow: an approved grant becomes Salesforce configuration, one
//! durable step at a time.
//!
//! Every step of a grant's run is a row in `provisioning_steps` (state, attempts, last
//! error, what it found or made). A worker *leases* the next runnable step (a compare-and-set
//! on the row, and `FOR UPDATE SKIP LOCKED` on PostgreSQL so concurrent workers do not queue
//! on one row), runs it, and records the outcome only while it still holds the lease. A
//! worker that dies leaves an expired lease, and the step is run again by whoever comes next.
//!
//! So a step may run twice (the first run acted in Salesforce, then the process died before
//! recording it): every step is idempotent. Names are deterministic (from the grant id and
//! the company), and each step looks up what it would create before creating it.
//!
//! Transient failures (network, 5xx, `REQUEST_LIMIT_EXCEEDED`, an unknown outcome) are
//! retried with exponential backoff and jitter; anything else stops the run and puts the
//! grant in `needs_attention` with the Salesforce error in words an admin can act on.
//!
//! The steps: the integration user (with its API integration licence, in one composite
//! request), the licence step recording it, the permission set with exactly the approved
//! object and field permissions and its assignment (expiring with the grant; one composite),
//! the assignment step recording it, record visibility (manual shares, ownership, or group
//! membership), the External Client App (Metadata deploy, then polling the deploy as its own
//! step so a restart resumes the poll rather than deploying again), its OAuth consumer, the
//! least-privilege proof ([`proof`]): the contractor's own credential is used to check that
//! it reaches exactly what was approved (a proof that finds anything wider stops the run,
//! and the grant is not released), and last the grant's trusted IP ranges on the app.
//!
//! Cancelling undoes a run in reverse order ([`cancel`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::Rng;
use salesforce::composite::{CompositeRequest, CompositeResponse, ReferenceId, Subrequest};
use salesforce::{Client, Cond, SalesforceId, Soql};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shared::scope::{Level, Scope, VisibilityRule};
use sqlx::{Any, Row, Transaction};

use crate::audit::{self, Actor, Event, Outcome};
use crate::clock::now_ms;
use crate::db::{Database, DatabaseKind};

/// The integration user's profile (DESIGN.md, "What provisioning creates"), by name only in
/// messages: it is found by what it is (API only, on the Salesforce Integration licence),
/// because a standard profile's name comes back translated in the querying user's language.
const PROFILE: &str = "Minimum Access - API Only Integrations";

/// How the Salesforce Integration user licence is found without its (translatable) label:
/// its `LicenseDefinitionKey`, whose value is not in Salesforce's list (UNCONFIRMED), or
/// else its `Name` (the licence's internal name).
pub fn integration_licence() -> Cond {
    Cond::or([
        Cond::eq(
            "LicenseDefinitionKey",
            crate::usage::collector::INTEGRATION_LICENCE_KEY,
        ),
        Cond::eq("Name", crate::usage::collector::INTEGRATION_LICENCE),
    ])
}

/// The API-only profile of the integration licence, by its attributes.
fn api_only_profile() -> Cond {
    Cond::and([
        Cond::eq("PermissionsApiUserOnly", true),
        Cond::or([
            Cond::eq(
                "UserLicense.LicenseDefinitionKey",
                crate::usage::collector::INTEGRATION_LICENCE_KEY,
            ),
            Cond::eq(
                "UserLicense.Name",
                crate::usage::collector::INTEGRATION_LICENCE,
            ),
        ]),
    ])
}
/// The permission set licence every integration user gets.
const LICENCE: &str = "SalesforceAPIIntegrationPsl";

/// One step of a run, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    User,
    Licence,
    PermissionSet,
    Assignment,
    Visibility,
    App,
    AppDeployed,
    Consumer,
    Proof,
    Restrict,
}

impl Step {
    pub const ALL: [Step; 10] = [
        Step::User,
        Step::Licence,
        Step::PermissionSet,
        Step::Assignment,
        Step::Visibility,
        Step::App,
        Step::AppDeployed,
        Step::Consumer,
        Step::Proof,
        Step::Restrict,
    ];

    /// The step whose success makes the grant ready.
    pub const LAST: Step = Step::Restrict;

    pub fn as_str(self) -> &'static str {
        match self {
            Step::User => "user",
            Step::Licence => "licence",
            Step::PermissionSet => "permission_set",
            Step::Assignment => "assignment",
            Step::Visibility => "visibility",
            Step::App => "app",
            Step::AppDeployed => "app_deployed",
            Step::Consumer => "consumer",
            Step::Proof => "proof",
            Step::Restrict => "restrict",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    pub fn label(self) -> &'static str {
        match self {
            Step::User => "Integration user",
            Step::Licence => "API integration licence",
            Step::PermissionSet => "Permission set and its permissions",
            Step::Assignment => "Permission set assignment (expires with the grant)",
            Step::Visibility => "Record visibility",
            Step::App => "External Client App (deploy started)",
            Step::AppDeployed => "External Client App (deployed)",
            Step::Consumer => "The app's OAuth consumer",
            Step::Proof => "Least-privilege proof",
            Step::Restrict => "IP ranges recorded on the app (checked in the usage files)",
        }
    }

    fn position(self) -> i64 {
        Self::ALL.iter().position(|s| *s == self).unwrap_or(0) as i64
    }
}

/// Creates the run's steps for a new grant, in the approval's transaction.
pub(crate) async fn plan(
    tx: &mut Transaction<'static, Any>,
    grant_id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    for step in Step::ALL {
        sqlx::query(
            "INSERT INTO provisioning_steps (grant_id, step, position, state, next_attempt_at, updated_at) \
             VALUES ($1, $2, $3, 'pending', $4, $4)",
        )
        .bind(grant_id)
        .bind(step.as_str())
        .bind(step.position())
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The deterministic Salesforce names of a grant's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub username: String,
    pub alias: String,
    pub last_name: String,
    pub permission_set: String,
    pub permission_set_label: String,
    /// A second permission set, tied to no licence and holding nothing but the app's
    /// pre-authorisation: a permission set tied to the Salesforce API Integration licence
    /// reportedly cannot be assigned apps (issue 14, item 3).
    pub app_permission_set: String,
    /// The External Client App's API name.
    pub app: String,
}

impl Names {
    /// Derived from the grant id (unique) and the company (readable in Setup). The same
    /// grant always gets the same names, which is what makes look-up-before-create work.
    pub fn for_grant(grant_id: &str, company: &str) -> Self {
        let digest = hex::encode(Sha256::digest(grant_id.as_bytes()));
        let tag = &digest[..10];
        let words: Vec<String> = company
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(|w| {
                let mut chars = w.chars();
                let first = chars.next().map(|c| c.to_ascii_uppercase());
                first.into_iter().chain(chars).collect()
            })
            .collect();
        let mut slug: String = words.concat();
        slug.truncate(30);
        if slug.is_empty() || !slug.starts_with(|c: char| c.is_ascii_alphabetic()) {
            slug = format!("C{slug}");
        }
        let lower = slug.to_ascii_lowercase();
        Self {
            username: format!("{lower}.{tag}@integrations.portcullis.invalid"),
            alias: format!("pc{}", &tag[..6]),
            last_name: format!(
                "{} Integration",
                company.trim().chars().take(60).collect::<String>()
            ),
            permission_set: format!("Portcullis_{slug}_{tag}"),
            app_permission_set: format!("Portcullis_{slug}_{tag}_App"),
            app: format!("Portcullis_App_{slug}_{tag}"),
            permission_set_label: format!(
                "Portcullis {} {}",
                company.trim().chars().take(40).collect::<String>(),
                &tag[..6]
            ),
        }
    }
}

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
    /// Leased to undo the step (its grant is being cancelled), not to run it.
    pub undo: bool,
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

/// A failure of one step.
#[derive(Debug)]
struct StepFailure {
    /// For the admin: what went wrong and what to do.
    message: String,
    transient: bool,
}

impl From<salesforce::Error> for StepFailure {
    fn from(error: salesforce::Error) -> Self {
        let transient = error.is_transient();
        let message = match error.error_code() {
            Some("LICENSE_LIMIT_EXCEEDED") => format!(
                "The org has no free Salesforce Integration licence (or API integration permission set licence). Free one, or buy more, then retry. Salesforce said: {error}"
            ),
            Some("INVALID_FIELD") | Some("INVALID_FIELD_FOR_INSERT_UPDATE") => format!(
                "A field in the approved scope does not exist in the org (or cannot be permissioned). Check the scope against the org, then retry. Salesforce said: {error}"
            ),
            _ => format!("Salesforce refused the step: {error}"),
        };
        Self { message, transient }
    }
}

fn not_found(what: &str) -> StepFailure {
    StepFailure {
        message: format!("{what} was not found in the org"),
        transient: false,
    }
}

/// A worker of the provisioning engine.
#[derive(Clone)]
pub struct Engine {
    db: Database,
    salesforce: Client,
    /// This worker's identity in leases.
    owner: String,
    lease: Duration,
    retry: RetryPolicy,
    contact_email: String,
    deploy_poll: DeployPoll,
    /// Sends the contractor their reveal link when the grant becomes ready.
    handover: crate::reveal::Handover,
}

/// How the deploy step polls. Each status check is an API call, so the first waits about
/// as long as such a deploy takes (`first_check`), then every `interval`, for at most
/// `timeout` per attempt (then the step is retried later, still polling the same deploy).
#[derive(Debug, Clone, Copy)]
pub struct DeployPoll {
    pub first_check: Duration,
    pub interval: Duration,
    pub timeout: Duration,
}

impl Default for DeployPoll {
    fn default() -> Self {
        Self {
            first_check: Duration::from_secs(1),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(120),
        }
    }
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
        }
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
    /// expired lease) and due; else the next step to undo of a grant being cancelled.
    pub async fn lease_next(&self) -> Result<Option<Leased>, EngineError> {
        match self.lease_forward().await? {
            Some(leased) => Ok(Some(leased)),
            None => self.lease_undo().await,
        }
    }

    async fn lease_forward(&self) -> Result<Option<Leased>, EngineError> {
        let now = now_ms();
        let mut tx = self.db.begin_write().await?;
        let lock = match self.db.kind() {
            DatabaseKind::Postgres => " FOR UPDATE OF s SKIP LOCKED",
            DatabaseKind::Sqlite => "",
        };
        let candidate = sqlx::query(&format!(
            "SELECT s.grant_id, s.step, s.attempts, s.started_at FROM provisioning_steps s \
             JOIN grants g ON g.id = s.grant_id \
             WHERE g.state IN ('approved', 'provisioning') \
               AND (s.state = 'pending' OR (s.state = 'running' AND s.lease_expires_at < $1)) \
               AND s.next_attempt_at <= $1 \
               AND NOT EXISTS (SELECT 1 FROM provisioning_steps p \
                   WHERE p.grant_id = s.grant_id AND p.position < s.position AND p.state <> 'succeeded') \
             ORDER BY s.next_attempt_at, s.grant_id LIMIT 1{lock}"
        ))
        .bind(now)
        .fetch_optional(&mut *tx.tx)
        .await?;
        let Some(row) = candidate else {
            tx.commit().await?;
            return Ok(None);
        };
        let grant_id: String = row.try_get("grant_id")?;
        let step_name: String = row.try_get("step")?;
        let Some(step) = Step::parse(&step_name) else {
            tracing::error!(grant_id, step = step_name, "unknown provisioning step");
            tx.commit().await?;
            return Ok(None);
        };
        let attempt = row.try_get::<i64, _>("attempts")? + 1;
        let first_attempt = row.try_get::<Option<i64>, _>("started_at")?.is_none();
        let taken = sqlx::query(
            "UPDATE provisioning_steps SET state = 'running', lease_owner = $1, lease_expires_at = $2, \
                 attempts = $3, started_at = COALESCE(started_at, $4), updated_at = $4 \
             WHERE grant_id = $5 AND step = $6 \
               AND (state = 'pending' OR (state = 'running' AND lease_expires_at < $4))",
        )
        .bind(&self.owner)
        .bind(now + self.lease.as_millis() as i64)
        .bind(attempt)
        .bind(now)
        .bind(&grant_id)
        .bind(step.as_str())
        .execute(&mut *tx.tx)
        .await?;
        if taken.rows_affected() != 1 {
            tx.commit().await?;
            return Ok(None);
        }
        sqlx::query(
            "UPDATE grants SET state = 'provisioning', updated_at = $1 WHERE id = $2 AND state = 'approved'",
        )
        .bind(now)
        .bind(&grant_id)
        .execute(&mut *tx.tx)
        .await?;
        audit::append(
            &mut tx.tx,
            Event {
                actor: &Actor::system(),
                action: "provisioning.step_started",
                target_type: "grant",
                target_id: &grant_id,
                outcome: Outcome::Success,
                details: json!({ "step": step.as_str(), "attempt": attempt, "worker": self.owner }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Some(Leased {
            grant_id,
            step,
            attempt,
            first_attempt,
            undo: false,
        }))
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

    /// Runs a step this worker holds the lease on, and records the outcome.
    pub async fn run_leased(&self, leased: &Leased) -> Result<Ran, EngineError> {
        let calls = Arc::new(AtomicU64::new(0));
        let client = self.salesforce.counting(calls.clone());
        let outcome = match self.context(leased).await? {
            Some(context) if leased.undo => undo::run(&client, leased.step, &context).await,
            Some(context) => run_step(&client, leased.step, &context).await,
            None => Err(StepFailure {
                message: "the grant no longer exists".into(),
                transient: false,
            }),
        };
        let calls = calls.load(Ordering::Relaxed) as i64;
        if leased.undo {
            self.record_undo(leased, outcome, calls).await
        } else {
            self.record(leased, outcome, calls).await
        }
    }

    async fn context(&self, leased: &Leased) -> Result<Option<Context>, EngineError> {
        let grant_id = leased.grant_id.as_str();
        let Some(grant) =
            sqlx::query("SELECT company, scope, end_date, ip_ranges FROM grants WHERE id = $1")
                .bind(grant_id)
                .fetch_optional(self.db.pool())
                .await?
        else {
            return Ok(None);
        };
        let company: String = grant.try_get("company")?;
        let scope: Scope = serde_json::from_str(&grant.try_get::<String, _>("scope")?)
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        let end_date: String = grant.try_get("end_date")?;
        let ip_ranges: Vec<String> =
            serde_json::from_str(&grant.try_get::<String, _>("ip_ranges")?)
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        // Outputs of steps that succeeded (and, when undoing, of steps that did and were
        // undone since): what they found or made.
        let rows = sqlx::query(
            "SELECT step, output, checkpoint FROM provisioning_steps WHERE grant_id = $1",
        )
        .bind(grant_id)
        .fetch_all(self.db.pool())
        .await?;
        let mut outputs = BTreeMap::new();
        let mut checkpoint = None;
        for row in rows {
            let step: String = row.try_get("step")?;
            if step == leased.step.as_str() {
                checkpoint = row
                    .try_get::<Option<String>, _>("checkpoint")?
                    .and_then(|c| serde_json::from_str::<Value>(&c).ok());
            }
            let output: Option<String> = row.try_get("output")?;
            if let (Some(step), Some(output)) = (
                Step::parse(&step),
                output.and_then(|o| serde_json::from_str::<Value>(&o).ok()),
            ) {
                outputs.insert(step, output);
            }
        }
        Ok(Some(Context {
            names: Names::for_grant(grant_id, &company),
            scope,
            end_date,
            ip_ranges,
            company,
            contact_email: self.contact_email.clone(),
            deploy_poll: self.deploy_poll,
            outputs,
            first_attempt: leased.first_attempt && !leased.undo,
            checkpoint,
            saver: Checkpointer {
                db: self.db.clone(),
                grant_id: grant_id.to_string(),
                step: leased.step,
                owner: self.owner.clone(),
            },
            vault: self.handover.vault.clone(),
        }))
    }

    /// Deploys `secret` as the consumer secret of a set-up grant's app (with its trusted IP
    /// ranges), for orgs whose credentials API cannot rotate or return secrets. Waits for
    /// the deploy.
    pub async fn deploy_chosen_secret(
        &self,
        grant_id: &str,
        secret: &secrecy::SecretString,
    ) -> Result<(), String> {
        self.deploy_secret(grant_id, secret)
            .await
            .map_err(|f| f.message)
    }

    async fn deploy_secret(
        &self,
        grant_id: &str,
        secret: &secrecy::SecretString,
    ) -> Result<(), StepFailure> {
        let leased = Leased {
            grant_id: grant_id.to_string(),
            step: Step::Restrict,
            attempt: 1,
            first_attempt: false,
            undo: false,
        };
        let cx = self
            .context(&leased)
            .await
            .map_err(|e| StepFailure {
                message: e.to_string(),
                transient: true,
            })?
            .ok_or_else(|| StepFailure {
                message: "there is no such grant".into(),
                transient: false,
            })?;
        let id = deploy_app_with_secret(&self.salesforce, &cx, true, secret).await?;
        wait_for_deploy(&self.salesforce, &cx, &id, "the app's new secret").await?;
        Ok(())
    }

    async fn record(
        &self,
        leased: &Leased,
        outcome: Result<Value, StepFailure>,
        calls: i64,
    ) -> Result<Ran, EngineError> {
        let now = now_ms();
        let (grant_id, step) = (leased.grant_id.clone(), leased.step);
        let mut tx = self.db.begin_write().await?;
        add_calls(&mut tx.tx, &grant_id, calls).await?;
        let (state, next_attempt_at, error, output, action, audit_outcome, ran) = match &outcome {
            Ok(output) => (
                "succeeded",
                now,
                None,
                Some(output.to_string()),
                "provisioning.step_succeeded",
                Outcome::Success,
                Ran::Succeeded {
                    grant_id: grant_id.clone(),
                    step,
                },
            ),
            Err(failure) if failure.transient && leased.attempt < self.retry.max_attempts => (
                "pending",
                now + self
                    .retry
                    .delay(leased.attempt, &mut rand::rng())
                    .as_millis() as i64,
                Some(failure.message.clone()),
                None,
                "provisioning.step_retry",
                Outcome::Failure,
                Ran::Retrying {
                    grant_id: grant_id.clone(),
                    step,
                },
            ),
            Err(failure) => (
                "failed",
                now,
                Some(failure.message.clone()),
                None,
                "provisioning.step_failed",
                Outcome::Failure,
                Ran::Failed {
                    grant_id: grant_id.clone(),
                    step,
                },
            ),
        };
        let updated = sqlx::query(
            "UPDATE provisioning_steps SET state = $1, next_attempt_at = $2, last_error = $3, \
                 output = COALESCE($4, output), lease_owner = NULL, lease_expires_at = NULL, \
                 finished_at = CASE WHEN $1 = 'pending' THEN NULL ELSE $5 END, updated_at = $5 \
             WHERE grant_id = $6 AND step = $7 AND state = 'running' AND lease_owner = $8",
        )
        .bind(state)
        .bind(next_attempt_at)
        .bind(&error)
        .bind(&output)
        .bind(now)
        .bind(&grant_id)
        .bind(step.as_str())
        .bind(&self.owner)
        .execute(&mut *tx.tx)
        .await?;
        if updated.rows_affected() != 1 {
            tx.commit().await?;
            tracing::warn!(
                grant_id,
                step = step.as_str(),
                "lease lost before the step was recorded"
            );
            return Ok(Ran::LeaseLost { grant_id, step });
        }
        // A grant cancelled while this step ran stays cancelling.
        let mut link_sent = false;
        if state == "succeeded" && step == Step::LAST {
            let became_ready = sqlx::query(
                "UPDATE grants SET state = 'ready', attention = NULL, updated_at = $1 \
                 WHERE id = $2 AND state IN ('approved', 'provisioning')",
            )
            .bind(now)
            .bind(&grant_id)
            .execute(&mut *tx.tx)
            .await?
            .rows_affected();
            link_sent = became_ready == 1;
        }
        if state == "failed" {
            sqlx::query(
                "UPDATE grants SET state = 'needs_attention', attention = $1, updated_at = $2 \
                 WHERE id = $3 AND state IN ('approved', 'provisioning')",
            )
            .bind(format!(
                "{}: {}",
                step.label(),
                error.as_deref().unwrap_or_default()
            ))
            .bind(now)
            .bind(&grant_id)
            .execute(&mut *tx.tx)
            .await?;
        }
        audit_outcome_of(
            &mut tx.tx,
            leased,
            action,
            audit_outcome,
            calls,
            error.as_deref(),
            outcome.as_ref().ok(),
        )
        .await?;
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
    action: &str,
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
    audit::append(
        tx,
        Event {
            actor: &Actor::system(),
            action,
            target_type: "grant",
            target_id: &leased.grant_id,
            outcome,
            details,
        },
    )
    .await?;
    Ok(())
}

/// One step's view of its grant.
struct Context {
    names: Names,
    scope: Scope,
    end_date: String,
    /// CIDR ranges the app trusts (empty: no restriction beyond the org's).
    ip_ranges: Vec<String>,
    company: String,
    /// The External Client App's contact (the org's administrators).
    contact_email: String,
    deploy_poll: DeployPoll,
    /// What earlier steps recorded.
    outputs: BTreeMap<Step, Value>,
    /// No earlier attempt of this step ever started, so nothing it makes can exist yet and
    /// the look-ups are skipped (each costs an API call). Should a stalled earlier worker
    /// race a later one, Salesforce's own uniqueness (usernames, permission set names,
    /// one assignment per user and set) refuses the second create.
    first_attempt: bool,
    /// What an earlier attempt of this step saved before acting (see [`Checkpointer`]).
    checkpoint: Option<Value>,
    saver: Checkpointer,
    /// Seals a secret the portal chooses, for orgs whose credentials API returns none.
    vault: Option<crate::vault::Vault>,
}

/// Saves what a step needs kept *before* it acts in Salesforce (the records' previous
/// owners, say), so a crash between acting and recording cannot lose it.
struct Checkpointer {
    db: Database,
    grant_id: String,
    step: Step,
    owner: String,
}

impl Checkpointer {
    async fn save(&self, value: &Value) -> Result<(), StepFailure> {
        let lost = || StepFailure {
            message: "another worker took the step over".into(),
            transient: true,
        };
        let database = |e: sqlx::Error| StepFailure {
            message: format!("the portal's database: {e}"),
            transient: true,
        };
        let mut tx = self.db.begin_write().await.map_err(database)?;
        let saved = sqlx::query(
            "UPDATE provisioning_steps SET checkpoint = $1 \
             WHERE grant_id = $2 AND step = $3 AND lease_owner = $4",
        )
        .bind(value.to_string())
        .bind(&self.grant_id)
        .bind(self.step.as_str())
        .bind(&self.owner)
        .execute(&mut *tx.tx)
        .await
        .map_err(database)?;
        tx.commit().await.map_err(database)?;
        if saved.rows_affected() == 1 {
            Ok(())
        } else {
            Err(lost())
        }
    }
}

impl Context {
    fn id_from(&self, step: Step, key: &str) -> Result<SalesforceId, StepFailure> {
        self.outputs
            .get(&step)
            .and_then(|o| o[key].as_str())
            .and_then(|id| SalesforceId::parse(id).ok())
            .ok_or_else(|| StepFailure {
                message: format!("the {} step recorded no {key}", step.as_str()),
                transient: false,
            })
    }
}

#[derive(Deserialize)]
struct IdRow {
    #[serde(rename = "Id")]
    id: SalesforceId,
}

/// The id of the first `object` record matching `cond`, if any; on a first attempt,
/// `None` without asking (see [`Context::first_attempt`]).
async fn look_up(
    client: &Client,
    cx: &Context,
    object: &str,
    cond: Cond,
) -> Result<Option<SalesforceId>, StepFailure> {
    if cx.first_attempt {
        return Ok(None);
    }
    find(client, object, cond).await
}

/// The id of the first `object` record matching `cond`, if any.
async fn find(
    client: &Client,
    object: &str,
    cond: Cond,
) -> Result<Option<SalesforceId>, StepFailure> {
    let query = soql(Soql::select(&["Id"]).from(object).filter(cond).build())?;
    let page = client.query::<IdRow>(&query).await?;
    Ok(page.records.into_iter().next().map(|r| r.id))
}

/// The `object` record matching `cond` (looked up as [`look_up`] does), or one created
/// from `body`: its id, and whether it was found.
async fn find_or_create(
    client: &Client,
    cx: &Context,
    object: &str,
    cond: Cond,
    body: &Value,
) -> Result<(SalesforceId, bool), StepFailure> {
    match look_up(client, cx, object, cond).await? {
        Some(id) => Ok((id, true)),
        None => Ok((client.create(object, body).await?, false)),
    }
}

fn soql(result: Result<Soql, salesforce::soql::SoqlError>) -> Result<Soql, StepFailure> {
    result.map_err(|e| StepFailure {
        message: format!("could not build a query: {e}"),
        transient: false,
    })
}

async fn licence_id(client: &Client) -> Result<SalesforceId, StepFailure> {
    find(
        client,
        "PermissionSetLicense",
        Cond::eq("DeveloperName", LICENCE),
    )
    .await?
    .ok_or_else(|| not_found("The Salesforce API Integration permission set licence"))
}

async fn run_step(client: &Client, step: Step, cx: &Context) -> Result<Value, StepFailure> {
    match step {
        Step::User => user(client, cx).await,
        Step::Licence => licence(client, cx).await,
        Step::PermissionSet => permission_set(client, cx).await,
        Step::Assignment => assignment(client, cx).await,
        Step::Visibility => visibility(client, cx).await,
        Step::App => app(client, cx).await,
        Step::AppDeployed => app_deployed(client, cx).await,
        Step::Consumer => consumer(client, cx).await,
        Step::Proof => proof::run(client, cx).await,
        Step::Restrict => restrict(client, cx).await,
    }
}

async fn user(client: &Client, cx: &Context) -> Result<Value, StepFailure> {
    let username = &cx.names.username;
    let existing = look_up(client, cx, "User", Cond::eq("Username", username.as_str())).await?;
    if let Some(id) = existing {
        return Ok(json!({ "user_id": id.as_str(), "username": username, "found": true }));
    }
    // One API call: the profile's and the licence's look-ups, the user, and its licence
    // assignment, as one composite request (all setup objects). Not all-or-none: a user
    // whose licence is refused is kept, and the licence step explains the refusal.
    let profile = reference("profile")?;
    let licence = reference("licence")?;
    let user = reference("user")?;
    let assign = reference("assign")?;
    let mut request = CompositeRequest::new(false);
    let build = |request: &mut CompositeRequest| -> salesforce::Result<()> {
        request.push(Subrequest::query(
            profile.clone(),
            &Soql::select(&["Id"])
                .from("Profile")
                .filter(api_only_profile())
                .order_by("CreatedDate", salesforce::soql::Order::Asc)
                .limit(1)
                .build()
                .map_err(|e| salesforce::Error::InvalidRequest(e.to_string()))?,
        ))?;
        request.push(Subrequest::query(
            licence.clone(),
            &Soql::select(&["Id"])
                .from("PermissionSetLicense")
                .filter(Cond::eq("DeveloperName", LICENCE))
                .build()
                .map_err(|e| salesforce::Error::InvalidRequest(e.to_string()))?,
        ))?;
        request.push(Subrequest::create(
            user.clone(),
            "User",
            &json!({
                "Username": username,
                "Email": username,
                "LastName": cx.names.last_name,
                "Alias": cx.names.alias,
                "ProfileId": profile.field("records[0].Id")?.as_str(),
                "TimeZoneSidKey": "GMT",
                "LocaleSidKey": "en_US",
                "EmailEncodingKey": "UTF-8",
                "LanguageLocaleKey": "en_US",
            }),
        )?)?;
        request.push(Subrequest::create(
            assign.clone(),
            "PermissionSetLicenseAssign",
            &json!({
                "AssigneeId": user.id().as_str(),
                "PermissionSetLicenseId": licence.field("records[0].Id")?.as_str(),
            }),
        )?)?;
        Ok(())
    };
    build(&mut request).map_err(composite_failure)?;
    let response = client.composite(&request).await?;
    first_record(&response, &profile)?.ok_or_else(|| {
        not_found(&format!(
            "The API-only profile of the Salesforce Integration licence ('{PROFILE}')"
        ))
    })?;
    let id = response
        .get(&user)
        .and_then(|r| r.created_id())
        .ok_or_else(|| match response.get(&user).and_then(|r| r.error()) {
            Some(e) => StepFailure::from(e),
            None => StepFailure {
                message: "Salesforce returned no id for the new user".into(),
                transient: true,
            },
        })?;
    let mut output = json!({ "user_id": id.as_str(), "username": username, "found": false });
    if let (Ok(Some(psl)), Some(assigned)) = (
        first_record(&response, &licence),
        response.get(&assign).and_then(|r| r.created_id()),
    ) {
        output["licence_id"] = json!(psl.as_str());
        output["licence_assignment_id"] = json!(assigned.as_str());
    }
    Ok(output)
}

async fn licence(client: &Client, cx: &Context) -> Result<Value, StepFailure> {
    let user = cx.id_from(Step::User, "user_id")?;
    let made = cx.outputs.get(&Step::User);
    // The user step's composite assigned the licence: nothing to do but record it.
    if let Some(made) = made
        && let (Some(id), Some(psl)) = (
            made["licence_assignment_id"].as_str(),
            made["licence_id"].as_str(),
        )
    {
        return Ok(json!({ "licence_assignment_id": id, "licence_id": psl, "found": true }));
    }
    let psl = licence_id(client).await?;
    // Look before creating unless this is certainly the first try (the user is new and
    // its composite did not get as far as the licence).
    let fresh = cx.first_attempt && made.is_some_and(|m| m["found"] == false);
    let cond = Cond::and([
        Cond::eq("AssigneeId", &user),
        Cond::eq("PermissionSetLicenseId", &psl),
    ]);
    let existing = if fresh {
        None
    } else {
        find(client, "PermissionSetLicenseAssign", cond).await?
    };
    let (id, found) = match existing {
        Some(id) => (id, true),
        None => (
            client
                .create(
                    "PermissionSetLicenseAssign",
                    &json!({ "AssigneeId": user.as_str(), "PermissionSetLicenseId": psl.as_str() }),
                )
                .await?,
            false,
        ),
    };
    Ok(json!({ "licence_assignment_id": id.as_str(), "licence_id": psl.as_str(), "found": found }))
}

/// One ObjectPermissions row a scope asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ObjectPerm {
    read: bool,
    edit: bool,
    /// Only with Modify All, which Salesforce allows only with Read, Edit, Delete and View
    /// All ("Permission Modify All … depends on permission(s): Delete …").
    delete: bool,
    view_all: bool,
    modify_all: bool,
}

/// One FieldPermissions row a scope asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldPerm {
    object: String,
    read: bool,
    edit: bool,
}

/// The permissions a scope grants, as Salesforce rows: by object, and by `Object.Field`.
/// Tasks and events: no object permissions (ObjectPermissions refuses them) and no share
/// object; their access follows the parent record and the "Edit Tasks" user permission.
fn is_activity(object: &str) -> bool {
    object.eq_ignore_ascii_case("Task") || object.eq_ignore_ascii_case("Event")
}

/// Whether the scope edits activities (the permission set then gets "Edit Tasks").
fn edits_tasks(scope: &Scope) -> bool {
    scope
        .objects
        .iter()
        .any(|o| is_activity(&o.object) && (o.level == Level::Edit || o.modify_all))
}

fn wanted_permissions(
    scope: &Scope,
) -> (BTreeMap<String, ObjectPerm>, BTreeMap<String, FieldPerm>) {
    let mut objects = BTreeMap::new();
    let mut fields = BTreeMap::new();
    for o in &scope.objects {
        for (field, level) in &o.fields {
            fields.insert(
                format!("{}.{}", o.object, field),
                FieldPerm {
                    object: o.object.clone(),
                    read: true,
                    edit: *level == Level::Edit,
                },
            );
        }
        if is_activity(&o.object) {
            continue;
        }
        objects.insert(
            o.object.clone(),
            ObjectPerm {
                read: true,
                edit: o.level == Level::Edit || o.modify_all,
                delete: o.modify_all,
                view_all: o.view_all || o.modify_all,
                modify_all: o.modify_all,
            },
        );
    }
    (objects, fields)
}

/// The `key` values (lower case) of permission set `ps`'s `object` rows: which objects or
/// fields it already has permissions for.
async fn permission_keys(
    client: &Client,
    ps: &SalesforceId,
    object: &str,
    key: &str,
) -> Result<BTreeSet<String>, StepFailure> {
    let query = soql(
        Soql::select(&[key])
            .from(object)
            .filter(Cond::eq("ParentId", ps))
            .build(),
    )?;
    let rows: Vec<Value> = client.query_all(&query).await?;
    Ok(rows
        .iter()
        .filter_map(|r| r[key].as_str())
        .map(str::to_ascii_lowercase)
        .collect())
}

async fn permission_set(client: &Client, cx: &Context) -> Result<Value, StepFailure> {
    let psl = cx.id_from(Step::Licence, "licence_id")?;
    let name = &cx.names.permission_set;
    let mut body = json!({
        "Name": name,
        "Label": cx.names.permission_set_label,
        "Description": "Made by Portcullis for one contractor grant. Do not edit by hand.",
        "LicenseId": psl.as_str(),
    });
    if edits_tasks(&cx.scope) {
        body["PermissionsEditTask"] = json!(true);
    }
    let (objects, fields) = wanted_permissions(&cx.scope);
    if cx.first_attempt && objects.len() <= 200 && fields.len() <= 200 * 3 {
        return new_permission_set(client, cx, &body, &objects, &fields).await;
    }
    let (ps, found) = find_or_create(
        client,
        cx,
        "PermissionSet",
        Cond::eq("Name", name.as_str()),
        &body,
    )
    .await?;

    // Only what is missing is created, so a step that ran halfway adds the rest. A
    // permission set made just now has nothing yet.
    let have_objects = if found {
        permission_keys(client, &ps, "ObjectPermissions", "SobjectType").await?
    } else {
        BTreeSet::new()
    };
    let new_objects: Vec<Value> = objects
        .iter()
        .filter(|(object, _)| !have_objects.contains(&object.to_ascii_lowercase()))
        .map(|(object, p)| {
            json!({
                "ParentId": ps.as_str(), "SobjectType": object,
                "PermissionsRead": p.read, "PermissionsEdit": p.edit,
                "PermissionsCreate": false, "PermissionsDelete": p.delete,
                "PermissionsViewAllRecords": p.view_all, "PermissionsModifyAllRecords": p.modify_all,
            })
        })
        .collect();
    check_saved(
        client
            .create_collection("ObjectPermissions", &new_objects, true)
            .await?,
    )?;

    let have_fields = if found {
        permission_keys(client, &ps, "FieldPermissions", "Field").await?
    } else {
        BTreeSet::new()
    };
    let new_fields: Vec<Value> = fields
        .iter()
        .filter(|(field, _)| !have_fields.contains(&field.to_ascii_lowercase()))
        .map(|(field, p)| {
            json!({
                "ParentId": ps.as_str(), "SobjectType": p.object, "Field": field,
                "PermissionsRead": p.read, "PermissionsEdit": p.edit,
            })
        })
        .collect();
    for chunk in new_fields.chunks(200) {
        check_saved(
            client
                .create_collection("FieldPermissions", chunk, true)
                .await?,
        )?;
    }
    let (app_ps, _) = find_or_create(
        client,
        cx,
        "PermissionSet",
        Cond::eq("Name", cx.names.app_permission_set.as_str()),
        &app_permission_set_body(cx),
    )
    .await?;
    Ok(json!({
        "permission_set_id": ps.as_str(),
        "permission_set": name,
        "found": found,
        "objects": objects.len(),
        "fields": fields.len(),
        "app_permission_set_id": app_ps.as_str(),
    }))
}

/// The assignment's expiry: the end of the grant's last day.
fn assignment_expiry(cx: &Context) -> String {
    format!("{}T23:59:59.000Z", cx.end_date)
}

/// A first attempt's permission set: the set, its object permissions, its field
/// permissions and its assignment to the integration user in one composite request (one
/// API call; all setup objects, so no mixed DML; all or none).
/// The collections' results are checked one by one: a refused permission fails the step,
/// and the retry finds the set and adds what is missing.
async fn new_permission_set(
    client: &Client,
    cx: &Context,
    body: &Value,
    objects: &BTreeMap<String, ObjectPerm>,
    fields: &BTreeMap<String, FieldPerm>,
) -> Result<Value, StepFailure> {
    let set = reference("set")?;
    let parent = set.id();
    let mut request = CompositeRequest::new(true);
    request
        .push(Subrequest::create(set.clone(), "PermissionSet", body)?)
        .map_err(composite_failure)?;
    let object_rows: Vec<Value> = objects
        .iter()
        .map(|(object, p)| {
            json!({
                "ParentId": parent.as_str(), "SobjectType": object,
                "PermissionsRead": p.read, "PermissionsEdit": p.edit,
                "PermissionsCreate": false, "PermissionsDelete": p.delete,
                "PermissionsViewAllRecords": p.view_all, "PermissionsModifyAllRecords": p.modify_all,
            })
        })
        .collect();
    let field_rows: Vec<Value> = fields
        .iter()
        .map(|(field, p)| {
            json!({
                "ParentId": parent.as_str(), "SobjectType": p.object, "Field": field,
                "PermissionsRead": p.read, "PermissionsEdit": p.edit,
            })
        })
        .collect();
    let mut collections = Vec::new();
    for (i, chunk) in object_rows.chunks(200).enumerate() {
        let r = reference(&format!("objects{i}"))?;
        request
            .push(Subrequest::create_collection(
                r.clone(),
                "ObjectPermissions",
                chunk,
                true,
            )?)
            .map_err(composite_failure)?;
        collections.push(r);
    }
    for (i, chunk) in field_rows.chunks(200).enumerate() {
        let r = reference(&format!("fields{i}"))?;
        request
            .push(Subrequest::create_collection(
                r.clone(),
                "FieldPermissions",
                chunk,
                true,
            )?)
            .map_err(composite_failure)?;
        collections.push(r);
    }
    let assign = reference("assign")?;
    let user = cx.id_from(Step::User, "user_id")?;
    request
        .push(Subrequest::create(
            assign.clone(),
            "PermissionSetAssignment",
            &json!({
                "AssigneeId": user.as_str(),
                "PermissionSetId": parent.as_str(),
                "ExpirationDate": assignment_expiry(cx),
            }),
        )?)
        .map_err(composite_failure)?;
    let app_set = reference("appset")?;
    let app_assign = reference("appassign")?;
    request
        .push(Subrequest::create(
            app_set.clone(),
            "PermissionSet",
            &app_permission_set_body(cx),
        )?)
        .map_err(composite_failure)?;
    request
        .push(Subrequest::create(
            app_assign.clone(),
            "PermissionSetAssignment",
            &json!({
                "AssigneeId": user.as_str(),
                "PermissionSetId": app_set.id().as_str(),
                "ExpirationDate": assignment_expiry(cx),
            }),
        )?)
        .map_err(composite_failure)?;
    let response = client.composite(&request).await?;
    let ps = created(response.clone(), &set)?;
    let assignment = created(response.clone(), &assign)?;
    let app_ps = created(response.clone(), &app_set)?;
    let app_assignment = created(response.clone(), &app_assign)?;
    for r in &collections {
        let result = response
            .get(r)
            .cloned()
            .ok_or_else(|| StepFailure {
                message: format!("Salesforce did not answer the subrequest {}", r.as_str()),
                transient: true,
            })?
            .into_result()?;
        let saved: Vec<salesforce::rest::SaveResult> =
            serde_json::from_value(result).map_err(|e| StepFailure {
                message: format!(
                    "Salesforce's answer to {} was not understood: {e}",
                    r.as_str()
                ),
                transient: true,
            })?;
        check_saved(saved)?;
    }
    Ok(json!({
        "permission_set_id": ps.as_str(),
        "permission_set": cx.names.permission_set,
        "found": false,
        "objects": objects.len(),
        "fields": fields.len(),
        "assignment_id": assignment.as_str(),
        "app_permission_set_id": app_ps.as_str(),
        "app_assignment_id": app_assignment.as_str(),
    }))
}

/// The licence-less permission set that carries only the app's pre-authorisation.
fn app_permission_set_body(cx: &Context) -> Value {
    json!({
        "Name": cx.names.app_permission_set,
        "Label": format!("{} app", cx.names.permission_set_label),
        "Description": "Made by Portcullis: pre-authorises one contractor grant's External Client App. Holds no permissions. Do not edit by hand.",
    })
}

fn reference(name: &str) -> Result<ReferenceId, StepFailure> {
    ReferenceId::new(name).map_err(composite_failure)
}

fn composite_failure(e: salesforce::Error) -> StepFailure {
    StepFailure {
        message: format!("could not build a composite request: {e}"),
        transient: false,
    }
}

/// The first record id a query subrequest found (`None`: no record), or its error.
fn first_record(
    response: &CompositeResponse,
    query: &ReferenceId,
) -> Result<Option<SalesforceId>, StepFailure> {
    let result = response.get(query).ok_or_else(|| StepFailure {
        message: format!(
            "Salesforce did not answer the subrequest {}",
            query.as_str()
        ),
        transient: true,
    })?;
    if let Some(error) = result.error() {
        return Err(error.into());
    }
    Ok(result.body["records"][0]["Id"]
        .as_str()
        .and_then(|id| SalesforceId::parse(id).ok()))
}

/// The id a create subrequest made, or the composite's explaining failure.
fn created(response: CompositeResponse, create: &ReferenceId) -> Result<SalesforceId, StepFailure> {
    let response = response.ensure_success()?;
    response
        .get(create)
        .and_then(|r| r.created_id())
        .ok_or_else(|| StepFailure {
            message: format!("Salesforce returned no id for {}", create.as_str()),
            transient: true,
        })
}

/// The ids of a collection's saved records, or the first record's errors.
fn check_saved(
    results: Vec<salesforce::rest::SaveResult>,
) -> Result<Vec<SalesforceId>, StepFailure> {
    results
        .into_iter()
        .map(|result| result.into_result(400).map_err(StepFailure::from))
        .collect()
}

async fn assignment(client: &Client, cx: &Context) -> Result<Value, StepFailure> {
    let user = cx.id_from(Step::User, "user_id")?;
    let ps = cx.id_from(Step::PermissionSet, "permission_set_id")?;
    let expires = assignment_expiry(cx);
    let set = cx.outputs.get(&Step::PermissionSet);
    // The permission set step's composite assigned both sets: nothing to do but record it.
    if let Some(id) = set.and_then(|o| o["assignment_id"].as_str())
        && let Some(app) = set.and_then(|o| o["app_assignment_id"].as_str())
    {
        return Ok(
            json!({ "assignment_id": id, "app_assignment_id": app, "expires": expires, "found": true }),
        );
    }
    let app_assignment = app_assignment(client, cx, &user, &expires).await?;
    if let Some(id) = set.and_then(|o| o["assignment_id"].as_str()) {
        return Ok(
            json!({ "assignment_id": id, "app_assignment_id": app_assignment.as_str(), "expires": expires, "found": true }),
        );
    }
    // A permission set found (not made) by its step may come with an assignment an
    // earlier, unrecorded composite made: look first.
    let cond = Cond::and([
        Cond::eq("AssigneeId", &user),
        Cond::eq("PermissionSetId", &ps),
    ]);
    let fresh = cx.first_attempt && set.is_some_and(|o| o["found"] == false);
    let existing = if fresh {
        None
    } else {
        find(client, "PermissionSetAssignment", cond).await?
    };
    let (id, found) = match existing {
        Some(id) => (id, true),
        None => (
            client
                .create(
                    "PermissionSetAssignment",
                    &json!({
                        "AssigneeId": user.as_str(),
                        "PermissionSetId": ps.as_str(),
                        "ExpirationDate": expires,
                    }),
                )
                .await?,
            false,
        ),
    };
    Ok(
        json!({ "assignment_id": id.as_str(), "app_assignment_id": app_assignment.as_str(), "expires": expires, "found": found }),
    )
}

/// The app permission set's assignment to the integration user (found, or made).
async fn app_assignment(
    client: &Client,
    cx: &Context,
    user: &SalesforceId,
    expires: &str,
) -> Result<SalesforceId, StepFailure> {
    let app_ps = match cx
        .outputs
        .get(&Step::PermissionSet)
        .and_then(|o| o["app_permission_set_id"].as_str())
        .and_then(|id| SalesforceId::parse(id).ok())
    {
        Some(id) => id,
        None => find(
            client,
            "PermissionSet",
            Cond::eq("Name", cx.names.app_permission_set.as_str()),
        )
        .await?
        .ok_or_else(|| {
            not_found(&format!(
                "The permission set {}",
                cx.names.app_permission_set
            ))
        })?,
    };
    let existing = find(
        client,
        "PermissionSetAssignment",
        Cond::and([
            Cond::eq("AssigneeId", user),
            Cond::eq("PermissionSetId", &app_ps),
        ]),
    )
    .await?;
    match existing {
        Some(id) => Ok(id),
        None => Ok(client
            .create(
                "PermissionSetAssignment",
                &json!({
                    "AssigneeId": user.as_str(),
                    "PermissionSetId": app_ps.as_str(),
                    "ExpirationDate": expires,
                }),
            )
            .await?),
    }
}

/// A standard object's manual-share object and its fields: `(share object, record field,
/// access level field)`. Custom objects use `X__Share` with `ParentId` and `AccessLevel`.
fn share_object(object: &str) -> (String, String, String) {
    match object.strip_suffix("__c") {
        Some(base) => (
            format!("{base}__Share"),
            "ParentId".into(),
            "AccessLevel".into(),
        ),
        None => (
            format!("{object}Share"),
            format!("{object}Id"),
            format!("{object}AccessLevel"),
        ),
    }
}

/// Standard objects whose org-wide default the Organization record holds
/// (`Default<Object>Access`).
const ORG_WIDE_DEFAULTS: &[&str] = &["Account", "Contact", "Case", "Opportunity", "Lead"];

/// The Setup name of an org-wide default (`Organization.Default<Object>Access` value).
pub fn sharing_model_label(default: &str) -> &str {
    match default {
        "None" => "Private",
        "Read" => "Public Read Only",
        "Edit" => "Public Read/Write",
        "ReadEditTransfer" => "Public Read/Write/Transfer",
        "All" => "Public Full Access",
        "ControlledByParent" => "Controlled by Parent",
        other => other,
    }
}

/// Why sharing chosen `object` records at `level` is impossible under the object's
/// org-wide default `default`, or None when a manual share gives more than the default.
/// A real org has no manual share under Controlled by Parent, and refuses a share at or
/// below the default (INVALID_ACCESS_LEVEL).
pub fn share_refusal(object: &str, default: &str, level: Level) -> Option<String> {
    let model = sharing_model_label(default);
    match default {
        "ControlledByParent" => Some(format!(
            "{object} records cannot be shared: the org's {object} sharing model is {model}, so Salesforce has no manual {object}Share and a {object} follows its parent record. Share the parent record (the Account) instead, or choose another visibility rule."
        )),
        "Edit" | "ReadEditTransfer" | "All" => Some(format!(
            "{object} records cannot be shared: the org's {object} sharing model is {model}, so every user already sees and edits them and Salesforce refuses a share that adds nothing. Choose another visibility rule, or make {object} sharing Private in Setup > Sharing Settings."
        )),
        "Read" if level != Level::Edit => Some(format!(
            "{object} records cannot be shared at Read: the org's {object} sharing model is {model}, so every user already reads them and Salesforce refuses a share that adds nothing. Grant {object} Edit, choose another visibility rule, or make {object} sharing Private in Setup > Sharing Settings."
        )),
        _ => None,
    }
}

/// Why records of `objects` cannot be shared under `scope`, from the org-wide defaults read
/// from the org (one query of the Organization record); empty when every share is possible.
/// Objects without a default on the Organization record (custom objects) are not checked.
pub async fn sharing_refusals(
    client: &Client,
    scope: &Scope,
    objects: &[&str],
) -> Result<Vec<String>, salesforce::Error> {
    let objects: Vec<&str> = objects
        .iter()
        .copied()
        .filter(|o| ORG_WIDE_DEFAULTS.contains(o))
        .collect();
    if objects.is_empty() {
        return Ok(Vec::new());
    }
    let fields: Vec<String> = objects
        .iter()
        .map(|o| format!("Default{o}Access"))
        .collect();
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    let query = Soql::select(&fields).from("Organization").build()?;
    let rows: Vec<Value> = client.query_all(&query).await?;
    let Some(org) = rows.first() else {
        return Ok(Vec::new());
    };
    let mut refusals = Vec::new();
    for object in objects {
        let default = org[format!("Default{object}Access")]
            .as_str()
            .unwrap_or("None");
        let level = scope.object(object).map_or(Level::Read, |o| o.level);
        refusals.extend(share_refusal(object, default, level));
    }
    Ok(refusals)
}

/// The standard objects of chosen record ids, by their fixed key prefixes (others: None).
pub fn standard_object_of(id: &str) -> Option<&'static str> {
    let prefix = id.trim().get(..3)?;
    STANDARD_PREFIXES
        .iter()
        .find(|(p, _)| *p == prefix)
        .map(|(_, object)| *object)
}

/// Refuses, before any share is attempted, chosen records of objects whose sharing model
/// (the org-wide default, read from the org) makes a manual share impossible.
async fn check_sharing_models(
    client: &Client,
    cx: &Context,
    chosen: &BTreeMap<String, Vec<SalesforceId>>,
) -> Result<(), StepFailure> {
    let objects: Vec<&str> = chosen.keys().map(String::as_str).collect();
    let refusals = crate::sharing_model::refusals(client, &cx.scope, &objects).await?;
    if refusals.is_empty() {
        Ok(())
    } else {
        Err(StepFailure {
            message: refusals.join(" "),
            transient: false,
        })
    }
}

#[derive(Deserialize)]
struct OwnerRow {
    #[serde(rename = "Id")]
    id: SalesforceId,
    #[serde(rename = "OwnerId")]
    owner_id: SalesforceId,
}

/// Key prefixes of standard objects, fixed across all orgs.
const STANDARD_PREFIXES: &[(&str, &str)] = &[
    ("001", "Account"),
    ("003", "Contact"),
    ("006", "Opportunity"),
    ("00Q", "Lead"),
    ("500", "Case"),
    ("00T", "Task"),
    ("00U", "Event"),
    ("800", "Contract"),
];

/// The chosen records, by the scope object they belong to (found by key prefix). A record
/// of no granted object is a permanent failure: the approval did not grant its object.
async fn chosen_by_object(
    client: &Client,
    cx: &Context,
) -> Result<BTreeMap<String, Vec<SalesforceId>>, StepFailure> {
    let mut ids = Vec::new();
    for raw in &cx.scope.visibility.record_ids {
        let id = SalesforceId::parse(raw.trim()).map_err(|_| StepFailure {
            message: format!("'{raw}' is not a Salesforce record id"),
            transient: false,
        })?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let mut by_object: BTreeMap<String, Vec<SalesforceId>> = BTreeMap::new();
    if ids.is_empty() {
        return Ok(by_object);
    }
    // Standard objects' key prefixes are the same in every org; the org's object list
    // (an API call) is needed only for others.
    let known = |id: &SalesforceId| {
        STANDARD_PREFIXES
            .iter()
            .find(|(prefix, _)| *prefix == id.key_prefix())
            .map(|(_, object)| object.to_string())
    };
    let list = if ids.iter().all(|id| known(id).is_some()) {
        Vec::new()
    } else {
        client.sobjects().await?.sobjects
    };
    for id in ids {
        let object = known(&id)
            .or_else(|| {
                list.iter()
                    .find(|o| o.key_prefix.as_deref() == Some(id.key_prefix()))
                    .map(|o| o.name.clone())
            })
            .filter(|name| cx.scope.object(name).is_some())
            .ok_or_else(|| StepFailure {
                message: format!(
                    "record {} is not a record of any object the grant gives access to",
                    id.as_str()
                ),
                transient: false,
            })?;
        by_object.entry(object).or_default().push(id);
    }
    Ok(by_object)
}

async fn visibility(client: &Client, cx: &Context) -> Result<Value, StepFailure> {
    let user = cx.id_from(Step::User, "user_id")?;
    let rule = cx.scope.visibility.rule;
    match rule {
        VisibilityRule::Shared => {
            let chosen = chosen_by_object(client, cx).await?;
            if let Some((object, _)) = chosen.iter().find(|(o, _)| is_activity(o)) {
                // No TaskShare or EventShare: an activity's access follows its parent.
                return Err(StepFailure {
                    message: format!(
                        "{object} records cannot be shared: Salesforce has no {object}Share, and an activity is visible with the record it belongs to. Share the parent record (the Case or Account) instead, or choose another visibility rule."
                    ),
                    transient: false,
                });
            }
            check_sharing_models(client, cx, &chosen).await?;
            let mut shares = Vec::new();
            for (object, ids) in &chosen {
                let (share, record_field, level_field) = share_object(object);
                let level = match cx.scope.object(object).map(|o| o.level) {
                    Some(Level::Edit) => "Edit",
                    _ => "Read",
                };
                for chunk in ids.chunks(200) {
                    let mut missing: Vec<&SalesforceId> = chunk.iter().collect();
                    if !cx.first_attempt {
                        let existing: Vec<Value> = client
                            .query_all(&soql(
                                Soql::select(&["Id", record_field.as_str()])
                                    .from(&share)
                                    .filter(Cond::and([
                                        Cond::eq("UserOrGroupId", &user),
                                        Cond::eq("RowCause", "Manual"),
                                        Cond::in_list(&record_field, chunk.iter().cloned()),
                                    ]))
                                    .build(),
                            )?)
                            .await?;
                        for row in &existing {
                            shares.extend(row["Id"].as_str().map(str::to_string));
                        }
                        missing.retain(|id| {
                            !existing
                                .iter()
                                .any(|row| row[record_field.as_str()].as_str() == Some(id.as_str()))
                        });
                    }
                    let rows: Vec<Value> = missing
                        .iter()
                        .map(|id| {
                            json!({
                                record_field.as_str(): id.as_str(),
                                "UserOrGroupId": user.as_str(),
                                level_field.as_str(): level,
                            })
                        })
                        .collect();
                    let made = check_saved(client.create_collection(&share, &rows, true).await?)?;
                    shares.extend(made.iter().map(|id| id.as_str().to_string()));
                }
            }
            Ok(json!({ "rule": rule.as_str(), "shares": shares, "records": chosen }))
        }
        VisibilityRule::Owned => {
            // The previous owners are saved before the transfer (and kept in the output)
            // so that cancelling can give the records back, even after a crash mid-way.
            let chosen = chosen_by_object(client, cx).await?;
            let mut previous: BTreeMap<String, String> = cx
                .checkpoint
                .as_ref()
                .and_then(|c| serde_json::from_value(c["previous_owners"].clone()).ok())
                .unwrap_or_default();
            let mut current = Vec::new();
            for (object, ids) in &chosen {
                for chunk in ids.chunks(200) {
                    let rows: Vec<OwnerRow> = client
                        .query_all(&soql(
                            Soql::select(&["Id", "OwnerId"])
                                .from(object)
                                .filter(Cond::in_list("Id", chunk.iter().cloned()))
                                .build(),
                        )?)
                        .await?;
                    current.extend(rows.into_iter().map(|r| (object.clone(), r)));
                }
            }
            for (_, row) in &current {
                if row.owner_id != user {
                    previous.insert(
                        row.id.as_str().to_string(),
                        row.owner_id.as_str().to_string(),
                    );
                }
            }
            cx.saver
                .save(&json!({ "previous_owners": previous }))
                .await?;
            let mut owned = Vec::new();
            for (object, ids) in &chosen {
                let transfer: Vec<(SalesforceId, Value)> = current
                    .iter()
                    .filter(|(o, r)| o == object && r.owner_id != user)
                    .map(|(_, r)| (r.id.clone(), json!({ "OwnerId": user.as_str() })))
                    .collect();
                for chunk in transfer.chunks(200) {
                    check_saved(client.update_collection(object, chunk, true).await?)?;
                }
                for id in ids {
                    owned.push(json!({
                        "object": object,
                        "id": id.as_str(),
                        "previous_owner": previous.get(id.as_str()),
                    }));
                }
            }
            Ok(json!({ "rule": rule.as_str(), "owned": owned, "records": chosen }))
        }
        VisibilityRule::Group => {
            let name = cx
                .scope
                .visibility
                .group
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| StepFailure {
                    message: "the group visibility rule names no public group".into(),
                    transient: false,
                })?;
            let group = find(
                client,
                "Group",
                Cond::and([
                    Cond::eq("Type", "Regular"),
                    Cond::or([Cond::eq("DeveloperName", name), Cond::eq("Name", name)]),
                ]),
            )
            .await?
            .ok_or_else(|| not_found(&format!("The public group '{name}'")))?;
            let (member, _) = find_or_create(
                client,
                cx,
                "GroupMember",
                Cond::and([
                    Cond::eq("GroupId", &group),
                    Cond::eq("UserOrGroupId", &user),
                ]),
                &json!({ "GroupId": group.as_str(), "UserOrGroupId": user.as_str() }),
            )
            .await?;
            Ok(json!({
                "rule": rule.as_str(),
                "group_id": group.as_str(),
                "group_member_id": member.as_str(),
            }))
        }
    }
}

fn spec_failure(e: salesforce::metadata::SpecError) -> StepFailure {
    StepFailure {
        message: format!("the External Client App cannot be described to Salesforce: {e}"),
        transient: false,
    }
}

/// The app as the grant describes it: client credentials running as the integration user,
/// admin-approved for the grant's permission set only, trusted IP ranges when given.
fn app_spec(
    cx: &Context,
    with_ranges: bool,
) -> Result<salesforce::metadata::ExternalClientAppSpec, StepFailure> {
    use salesforce::metadata::{ApiName, ExternalClientAppSpec, TrustedIpRange};
    let mut trusted = Vec::new();
    for raw in cx.ip_ranges.iter().filter(|_| with_ranges) {
        let cidr = shared::fields::Cidr::parse(raw).map_err(|e| StepFailure {
            message: format!("the grant's IP range {e}"),
            transient: false,
        })?;
        trusted.push(TrustedIpRange::new(
            cidr.network(),
            cidr.last(),
            format!(
                "{} ({raw})",
                cx.company.chars().take(40).collect::<String>()
            ),
        ));
    }
    Ok(ExternalClientAppSpec {
        name: ApiName::parse(&cx.names.app).map_err(spec_failure)?,
        label: format!(
            "Portcullis: {}",
            cx.company.chars().take(60).collect::<String>()
        ),
        contact_email: cx.contact_email.clone(),
        description: format!(
            "API access for {}, made by Portcullis. Do not edit by hand.",
            cx.company.chars().take(100).collect::<String>()
        ),
        scopes: vec!["Api".into()],
        client_credentials_run_as: cx.names.username.clone(),
        // Pre-authorised through the licence-less app permission set (issue 14, item 3).
        permission_set_names: vec![
            ApiName::parse(&cx.names.app_permission_set).map_err(spec_failure)?,
        ],
        trusted_ip_ranges: trusted,
        callback_url: salesforce::Url::parse(
            "https://login.salesforce.com/services/oauth2/success",
        )
        .map_err(|e| StepFailure {
            message: format!("callback URL: {e}"),
            transient: false,
        })?,
        pkce_required: true,
    })
}

/// Starts the deploy. Deploying the same app again is an update of the same components,
/// so a repeated start makes no second app. The app trusts no IP ranges yet: the proof runs
/// from the portal's host, which the contractor's ranges need not include; the ranges are
/// applied after it ([`restrict`]), which can only narrow what the proof saw.
async fn app(client: &Client, cx: &Context) -> Result<Value, StepFailure> {
    let id = deploy_app(client, cx, false).await?;
    Ok(json!({ "deploy_id": id.0.as_str(), "app": cx.names.app }))
}

/// Starts a deploy of the grant's app, with or without its trusted IP ranges.
async fn deploy_app(
    client: &Client,
    cx: &Context,
    with_ranges: bool,
) -> Result<salesforce::metadata::DeployId, StepFailure> {
    let spec = app_spec(cx, with_ranges)?;
    spec.validate().map_err(spec_failure)?;
    let zip = spec
        .build_zip(client.api_version())
        .map_err(package_failure)?;
    Ok(client
        .deploy(&zip, &salesforce::metadata::DeployOptions::default())
        .await?)
}

/// Like [`deploy_app`], choosing the app's consumer secret.
async fn deploy_app_with_secret(
    client: &Client,
    cx: &Context,
    with_ranges: bool,
    secret: &secrecy::SecretString,
) -> Result<salesforce::metadata::DeployId, StepFailure> {
    let spec = app_spec(cx, with_ranges)?;
    let zip = spec
        .build_zip_with_secret(client.api_version(), secret)
        .map_err(package_failure)?;
    Ok(client
        .deploy(&zip, &salesforce::metadata::DeployOptions::default())
        .await?)
}

fn package_failure(e: salesforce::metadata::SpecError) -> StepFailure {
    StepFailure {
        message: format!("the External Client App package could not be built: {e}"),
        transient: false,
    }
}

/// The app's secret, for the proof: read from the org; or, where the org's credentials API
/// returns no secrets, one the portal chooses, seals (kept until the reveal) and deploys.
/// A retry reuses the secret an earlier attempt sealed.
async fn contractor_secret(
    client: &Client,
    cx: &Context,
    app_id: &str,
    consumer_id: &str,
) -> Result<secrecy::SecretString, StepFailure> {
    use salesforce::connect::CredentialPart;
    let error = match client
        .consumer_credential(app_id, consumer_id, CredentialPart::Secret)
        .await
    {
        Ok(credential) => {
            return credential.secret.ok_or_else(|| StepFailure {
                message: "Salesforce did not return the app's secret for the proof".into(),
                transient: true,
            });
        }
        Err(e) => e,
    };
    if !salesforce::connect::is_secret_access_disabled(&error) {
        return Err(error.into());
    }
    let vault = cx.vault.as_ref().ok_or_else(|| StepFailure {
        message: "the org does not let the credentials API return consumer secrets \
                  (enableClientSecretInRestApiAccess), and no credential key is configured \
                  to keep one the portal chooses"
            .into(),
        transient: false,
    })?;
    let secret = crate::reveal::sealed_or_new(&cx.saver.db, vault, &cx.saver.grant_id)
        .await
        .map_err(|message| StepFailure {
            message,
            transient: true,
        })?;
    let id = deploy_app_with_secret(client, cx, false, &secret).await?;
    wait_for_deploy(client, cx, &id, "the app's chosen secret").await?;
    Ok(secret)
}

/// Waits (as [`DeployPoll`] says) for deploy `id` of `what`: a deploy still running when the
/// wait ends is a transient failure (polled again later), a failed deploy a permanent one.
async fn wait_for_deploy(
    client: &Client,
    cx: &Context,
    id: &salesforce::metadata::DeployId,
    what: &str,
) -> Result<salesforce::metadata::DeployResult, StepFailure> {
    match client
        .wait_for_deploy(id, cx.deploy_poll.interval, cx.deploy_poll.timeout)
        .await
    {
        Ok(result) => Ok(result),
        Err(salesforce::Error::DeployTimedOut { waited, .. }) => Err(StepFailure {
            message: format!(
                "the deploy of {what} was still running after {} s",
                waited.as_secs()
            ),
            transient: true,
        }),
        Err(e) => Err(e.into()),
    }
}

/// Waits for the deploy the `app` step started (see [`wait_for_deploy`]).
async fn app_deployed(client: &Client, cx: &Context) -> Result<Value, StepFailure> {
    let id = salesforce::metadata::DeployId(cx.id_from(Step::App, "deploy_id")?);
    if cx.first_attempt {
        tokio::time::sleep(cx.deploy_poll.first_check).await;
    }
    let result = wait_for_deploy(client, cx, &id, "the External Client App").await?;
    let app_id = find_app_id(client, &cx.names.app).await?;
    Ok(json!({ "app_id": app_id, "deploy_id": result.id, "deployed_at": crate::clock::now_ms() }))
}

/// The id Connect REST knows the app `name` by, looked up after its deploy: which id a
/// deploy result reports for an External Client App (and whether it is this one) is not
/// documented, so it is not trusted. The app list (`GET /apps/oauth/usage`) names each
/// app's `developerName` and `identifier`. A new app not listed yet is retried (a real org
/// may take a while; that it lists apps nobody has used yet is UNCONFIRMED).
async fn find_app_id(client: &Client, name: &str) -> Result<String, StepFailure> {
    let apps = client.oauth_usage_apps().await?;
    apps.into_iter()
        .find(|a| a.developer_name.eq_ignore_ascii_case(name))
        .map(|a| a.identifier)
        .ok_or_else(|| StepFailure {
            message: format!(
                "Salesforce does not list the External Client App {name} yet (GET /apps/oauth/usage); trying again"
            ),
            transient: true,
        })
}

/// The app's OAuth consumer: its id, and the consumer key (not a secret). The secret is
/// never read here: it is read once, at reveal.
async fn consumer(client: &Client, cx: &Context) -> Result<Value, StepFailure> {
    let app_id = cx
        .outputs
        .get(&Step::AppDeployed)
        .and_then(|o| o["app_id"].as_str())
        .ok_or_else(|| StepFailure {
            message: "the app_deployed step recorded no app_id".into(),
            transient: false,
        })?;
    let consumers = client.app_credentials(app_id).await?;
    let consumer = consumers.into_iter().next().ok_or_else(|| StepFailure {
        // Salesforce creates the consumer with the app, a little later on a busy org.
        message: "the External Client App has no OAuth consumer yet".into(),
        transient: true,
    })?;
    let key = match consumer.key {
        Some(key) => key,
        None => client
            .consumer_credential(
                app_id,
                &consumer.id,
                salesforce::connect::CredentialPart::Key,
            )
            .await?
            .key
            .ok_or_else(|| StepFailure {
                message: "Salesforce returned no consumer key".into(),
                transient: true,
            })?,
    };
    Ok(json!({ "app_id": app_id, "consumer_id": consumer.id, "consumer_key": key }))
}

/// Makes every leased step (running or undoing) available again at once. Only for a
/// single instance at start-up (SQLite), where any lease is a dead process's.
pub async fn release_leases(db: &Database) -> Result<u64, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let released = sqlx::query(
        "UPDATE provisioning_steps SET lease_expires_at = 0 \
         WHERE state IN ('running', 'undoing') AND lease_owner IS NOT NULL",
    )
    .execute(&mut *tx.tx)
    .await?;
    tx.commit().await?;
    Ok(released.rows_affected())
}

/// Applies the grant's trusted IP ranges to the proven app (a deploy of the same app with
/// them, waited for), or does nothing when the grant has none. Run again after a crash, it
/// deploys the same spec again: an update, not a second app.
async fn restrict(client: &Client, cx: &Context) -> Result<Value, StepFailure> {
    if cx.ip_ranges.is_empty() {
        return Ok(json!({ "ip_ranges": [], "deployed": false }));
    }
    let id = deploy_app(client, cx, true).await?;
    tokio::time::sleep(cx.deploy_poll.first_check).await;
    let result = wait_for_deploy(client, cx, &id, "the trusted IP ranges").await?;
    Ok(json!({ "ip_ranges": cx.ip_ranges, "deployed": true, "deploy_id": result.id }))
}

/// One step as the admin sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepProgress {
    pub step: String,
    pub label: String,
    pub state: String,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// A grant's provisioning, for the request's page.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub grant_id: String,
    pub state: String,
    pub attention: Option<String>,
    pub api_calls: i64,
    pub steps: Vec<StepProgress>,
    /// The proof's evidence table, once it ran.
    pub evidence: Vec<proof::Check>,
}

/// The id of the grant made from request `request_id`, if it was approved.
pub async fn grant_of_request(
    db: &Database,
    request_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM grants WHERE request_id = $1")
        .bind(request_id)
        .fetch_optional(db.pool())
        .await
}

/// The provisioning of the grant made from request `request_id`, if it was approved.
pub async fn progress(db: &Database, request_id: &str) -> Result<Option<Progress>, sqlx::Error> {
    let Some(grant) =
        sqlx::query("SELECT id, state, attention, api_calls FROM grants WHERE request_id = $1")
            .bind(request_id)
            .fetch_optional(db.pool())
            .await?
    else {
        return Ok(None);
    };
    let grant_id: String = grant.try_get("id")?;
    let rows = sqlx::query(
        "SELECT step, state, attempts, last_error, output FROM provisioning_steps \
         WHERE grant_id = $1 ORDER BY position",
    )
    .bind(&grant_id)
    .fetch_all(db.pool())
    .await?;
    let mut steps = Vec::new();
    let mut evidence = Vec::new();
    for row in rows {
        let step: String = row.try_get("step")?;
        let label = Step::parse(&step).map_or(step.clone(), |s| s.label().to_string());
        if step == Step::Proof.as_str()
            && let Some(output) = row.try_get::<Option<String>, _>("output")?
            && let Ok(value) = serde_json::from_str::<Value>(&output)
        {
            evidence = serde_json::from_value(value["checks"].clone()).unwrap_or_default();
        }
        steps.push(StepProgress {
            step,
            label,
            state: row.try_get("state")?,
            attempts: row.try_get("attempts")?,
            last_error: row.try_get("last_error")?,
        });
    }
    Ok(Some(Progress {
        grant_id,
        state: grant.try_get("state")?,
        attention: grant.try_get("attention")?,
        api_calls: grant.try_get("api_calls")?,
        steps,
        evidence,
    }))
}

/// Why a retry was refused.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error("there is no grant {0}")]
    NotFound(String),
    #[error(
        "the grant is {0}, not waiting for an admin: only a grant that needs attention can be retried"
    )]
    NotStopped(String),
    #[error("the grant's cancellation stopped part-way: cancel it again to finish undoing it")]
    Cancelling,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// An admin's retry of a grant that needs attention (after fixing the cause in the org):
/// the failed step runs again from a fresh attempt count, and the run carries on.
pub async fn retry(db: &Database, grant_id: &str, actor: &Actor) -> Result<(), RetryError> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let state: Option<String> = sqlx::query_scalar("SELECT state FROM grants WHERE id = $1")
        .bind(grant_id)
        .fetch_optional(&mut *tx.tx)
        .await?;
    match state.as_deref() {
        None => return Err(RetryError::NotFound(grant_id.to_string())),
        Some("needs_attention") => {}
        Some(other) => return Err(RetryError::NotStopped(other.to_string())),
    }
    let undoing: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM provisioning_steps WHERE grant_id = $1 AND state IN ('undoing', 'undone', 'cancelled')",
    )
    .bind(grant_id)
    .fetch_one(&mut *tx.tx)
    .await?;
    if undoing > 0 {
        return Err(RetryError::Cancelling);
    }
    let steps = sqlx::query(
        "UPDATE provisioning_steps SET state = 'pending', attempts = 0, next_attempt_at = $1, \
             last_error = NULL, updated_at = $1 WHERE grant_id = $2 AND state = 'failed'",
    )
    .bind(now)
    .bind(grant_id)
    .execute(&mut *tx.tx)
    .await?;
    sqlx::query(
        "UPDATE grants SET state = 'provisioning', attention = NULL, updated_at = $1 WHERE id = $2",
    )
    .bind(now)
    .bind(grant_id)
    .execute(&mut *tx.tx)
    .await?;
    audit::append(
        &mut tx.tx,
        Event {
            actor,
            action: "provisioning.retried",
            target_type: "grant",
            target_id: grant_id,
            outcome: Outcome::Success,
            details: json!({ "steps": steps.rows_affected() }),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub mod proof;
mod undo;

pub use undo::{CancelError, Cancelled, cancel};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_deterministic_and_valid() {
        let a = Names::for_grant("0193-grant-a", "Kinetic Ltd.");
        assert_eq!(a, Names::for_grant("0193-grant-a", "Kinetic Ltd."));
        let b = Names::for_grant("0193-grant-b", "Kinetic Ltd.");
        assert_ne!(a.username, b.username);
        assert_ne!(a.permission_set, b.permission_set);
        assert!(a.permission_set.starts_with("Portcullis_KineticLtd_"));
        assert!(a.username.starts_with("kineticltd."));
        assert_eq!(a.alias.len(), 8);
        for company in ["  ", "42 Widgets", "Ünïcode GmbH", "a__b", &"x".repeat(200)] {
            let n = Names::for_grant("g", company);
            assert!(
                crate::decisions::is_api_name(&n.permission_set),
                "{}",
                n.permission_set
            );
            assert!(n.permission_set.len() <= 80);
            assert!(n.username.len() <= 80);
        }
    }

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

    #[test]
    fn scope_becomes_exact_permission_rows() {
        let scope = Scope {
            objects: vec![shared::scope::ObjectAccess {
                object: "Case".into(),
                level: Level::Read,
                fields: [
                    ("Subject".to_string(), Level::Read),
                    ("Status".to_string(), Level::Edit),
                ]
                .into_iter()
                .collect(),
                view_all: false,
                modify_all: false,
            }],
            visibility: shared::scope::Visibility {
                rule: shared::scope::VisibilityRule::Shared,
                record_ids: vec![],
                group: None,
            },
            packages: vec![],
        };
        let (objects, fields) = wanted_permissions(&scope);
        assert_eq!(
            objects["Case"],
            ObjectPerm {
                read: true,
                edit: false,
                delete: false,
                view_all: false,
                modify_all: false
            }
        );
        let field = |read, edit| FieldPerm {
            object: "Case".into(),
            read,
            edit,
        };
        assert_eq!(fields["Case.Subject"], field(true, false));
        assert_eq!(fields["Case.Status"], field(true, true));
        assert_eq!(fields.len(), 2);
    }

    /// Issue 14, item 5: a task has no object permissions (ObjectPermissions refuses
    /// Task); editing tasks is the "Edit Tasks" user permission; its fields keep FLS.
    #[test]
    fn tasks_get_no_object_permissions_and_editing_them_is_edit_tasks() {
        let scope = Scope {
            objects: vec![shared::scope::ObjectAccess {
                object: "Task".into(),
                level: Level::Edit,
                fields: [("Subject".to_string(), Level::Edit)].into_iter().collect(),
                view_all: false,
                modify_all: false,
            }],
            visibility: shared::scope::Visibility {
                rule: shared::scope::VisibilityRule::Shared,
                record_ids: vec![],
                group: None,
            },
            packages: vec![],
        };
        let (objects, fields) = wanted_permissions(&scope);
        assert!(objects.is_empty(), "{objects:?}");
        assert!(fields.contains_key("Task.Subject"));
        assert!(edits_tasks(&scope));
    }
}
