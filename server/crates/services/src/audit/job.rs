//! "Verify chain" in the background (issue 20): a verification of the whole log (or of a
//! range of more than `shared::audit::VERIFY_INLINE_MAX` entries) is a row of `audit_verifications`,
//! run by the server's `audit_verification` job, with its progress — entries checked, the
//! rate, the problems found and the first of them — written as it goes and read by the
//! audit page.
//!
//! One at a time, however many instances share the database: the row's `active` column is
//! unique while it waits or runs, so a second press finds it ([`start`] answers `false`).
//! The instance running it holds a lease, renewed with every progress write; its place in
//! the chain (`checked_through`, `expected_prev`) is in the row, so when an instance dies
//! mid-run another one (or the next start) takes the lease over once it lapses and carries
//! on from there. A run carries on after a problem (counting them); its result is what an
//! inline verify of the same entries answers (the first problem, then the anchors).

use std::sync::Arc;
use std::time::{Duration, Instant};

use shared::audit::{VerifyJobView, VerifyProblem, VerifyStatus, VerifyView};

use super::anchor::{Anchorer, with_anchors};
use super::{ChainCheck, Found, Head, Problem, Verification, end_problem, entries_after};
use crate::clock::{SharedClock, rfc3339};
use crate::db::Database;

/// Asks for a verification of `from..=to` (each optional: the whole log when both are
/// `None`) by `by`. `false` when one is waiting or running already (nothing is started).
pub async fn start(
    db: &Database,
    now: i64,
    by: &str,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<bool, sqlx::Error> {
    let started = sqlx::query(
        "INSERT INTO audit_verifications (id, active, state, requested_by, requested_at, from_seq, to_seq) \
         VALUES ($1, 1, 'running', $2, $3, $4, $5) ON CONFLICT (active) DO NOTHING",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(by)
    .bind(now)
    .bind(from)
    .bind(to)
    .execute(db.pool())
    .await?;
    Ok(started.rows_affected() == 1)
}

/// A row of `audit_verifications`.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Row {
    id: String,
    state: String,
    requested_by: String,
    requested_at: i64,
    from_seq: Option<i64>,
    to_seq: Option<i64>,
    through_seq: Option<i64>,
    head_hash: Option<String>,
    head_max_seq: Option<i64>,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    checked: i64,
    checked_through: i64,
    expected_prev: Option<String>,
    rate: i64,
    problems: i64,
    first_problem_seq: Option<i64>,
    first_problem: Option<String>,
    first_problem_detail: Option<String>,
    result: Option<String>,
    error: Option<String>,
}

const ROW: &str = "id, state, requested_by, requested_at, from_seq, to_seq, through_seq, head_hash, \
    head_max_seq, started_at, finished_at, checked, checked_through, expected_prev, rate, problems, \
    first_problem_seq, first_problem, first_problem_detail, result, error";

impl Row {
    fn first(&self) -> Option<Found> {
        let seq = self.first_problem_seq?;
        let problem = Problem::parse(self.first_problem.as_deref()?)?;
        Some((
            seq,
            problem,
            self.first_problem_detail.clone().unwrap_or_default(),
        ))
    }

    fn view(self) -> VerifyJobView {
        let total = self
            .through_seq
            .map(|through| (through - self.from_seq.unwrap_or(1).max(1) + 1).max(0));
        VerifyJobView {
            first_problem: self.first_problem_seq.map(|seq| VerifyProblem {
                seq,
                problem: self.first_problem.clone().unwrap_or_default(),
                detail: self.first_problem_detail.clone().unwrap_or_default(),
            }),
            result: self
                .result
                .as_deref()
                .and_then(|r| serde_json::from_str::<VerifyView>(r).ok()),
            id: self.id,
            state: self.state,
            requested_by: self.requested_by,
            requested_at: rfc3339(self.requested_at),
            from_seq: self.from_seq,
            to_seq: self.to_seq,
            total,
            checked: self.checked,
            rate: self.rate,
            problems: self.problems,
            started_at: self.started_at.map(rfc3339),
            finished_at: self.finished_at.map(rfc3339),
            error: self.error,
        }
    }
}

/// The verification waiting or running, and the last one finished.
pub async fn status(db: &Database) -> Result<VerifyStatus, sqlx::Error> {
    let running: Option<Row> = sqlx::query_as(&format!(
        "SELECT {ROW} FROM audit_verifications WHERE active = 1"
    ))
    .fetch_optional(db.pool())
    .await?;
    let last: Option<Row> = sqlx::query_as(&format!(
        "SELECT {ROW} FROM audit_verifications WHERE active IS NULL \
         ORDER BY finished_at DESC, requested_at DESC LIMIT 1"
    ))
    .fetch_optional(db.pool())
    .await?;
    Ok(VerifyStatus {
        running: running.map(Row::view),
        last: last.map(Row::view),
    })
}

/// What one look for work did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    /// Nothing was asked for, or another instance holds the run.
    Idle,
    /// Ran a verification to its end: its state (`intact`, `broken` or `failed`).
    Finished(String),
    /// Another instance took the run over (this one's lease lapsed).
    LeaseLost,
}

/// Runs the verifications asked for: the server's `audit_verification` job (and tests).
#[derive(Clone)]
pub struct Verifier {
    db: Database,
    anchorer: Arc<Anchorer>,
    clock: SharedClock,
    owner: String,
    lease: Duration,
    page: i64,
    progress_every: Duration,
    gate: Option<Arc<tokio::sync::Semaphore>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    pub fn new(db: Database, anchorer: Arc<Anchorer>, clock: SharedClock) -> Self {
        Self {
            db,
            anchorer,
            clock,
            owner: format!("verifier-{}", uuid::Uuid::new_v4()),
            lease: Duration::from_secs(60),
            page: super::VERIFY_PAGE,
            progress_every: Duration::from_millis(500),
            gate: None,
        }
    }

    /// How long a run holds the verification without writing progress before another
    /// instance may take it over.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Reads `page` entries at a time and writes progress after every page (tests).
    pub fn with_page(mut self, page: i64) -> Self {
        self.page = page.max(1);
        self.progress_every = Duration::ZERO;
        self
    }

    /// Takes a permit of `gate` after each progress write, so a test can hold a run in the
    /// middle.
    pub fn with_gate(mut self, gate: Arc<tokio::sync::Semaphore>) -> Self {
        self.gate = Some(gate);
        self
    }

    fn lease_until(&self, now: i64) -> i64 {
        now + self.lease.as_millis() as i64
    }

    /// Takes the verification asked for, if there is one and nobody else holds it, and runs
    /// it to its end.
    pub async fn run_once(&self) -> Result<Ran, sqlx::Error> {
        let now = self.clock.now_ms();
        let taken = sqlx::query(
            "UPDATE audit_verifications SET lease_owner = $1, lease_expires_at = $2, \
             started_at = COALESCE(started_at, $3) \
             WHERE active = 1 AND (lease_owner IS NULL OR lease_expires_at < $3 OR lease_owner = $1)",
        )
        .bind(&self.owner)
        .bind(self.lease_until(now))
        .bind(now)
        .execute(self.db.pool())
        .await?;
        if taken.rows_affected() == 0 {
            return Ok(Ran::Idle);
        }
        let Some(row): Option<Row> = sqlx::query_as(&format!(
            "SELECT {ROW} FROM audit_verifications WHERE active = 1 AND lease_owner = $1"
        ))
        .bind(&self.owner)
        .fetch_optional(self.db.pool())
        .await?
        else {
            return Ok(Ran::Idle);
        };
        let id = row.id.clone();
        match self.run(row).await {
            Ok(ran) => Ok(ran),
            Err(e) => {
                tracing::warn!(error = %e, "the audit verification could not finish");
                let message: String = e.to_string().chars().take(500).collect();
                self.finish(&id, "failed", None, Some(message.as_str()))
                    .await?;
                Ok(Ran::Finished("failed".into()))
            }
        }
    }

    async fn run(&self, row: Row) -> Result<Ran, sqlx::Error> {
        let whole_log = row.from_seq.is_none() && row.to_seq.is_none();
        let from = row.from_seq.unwrap_or(1).max(1);
        // The first look: what to check, and where the chain starts.
        let (through, head, mut check) = match (row.through_seq, row.expected_prev.clone()) {
            (Some(through), Some(prev)) => {
                let head = whole_log.then(|| Head {
                    last_seq: through,
                    last_hash: row.head_hash.clone().unwrap_or_default(),
                    max_seq: row.head_max_seq.unwrap_or(through),
                });
                (
                    through,
                    head,
                    ChainCheck::resume(row.checked_through, prev, row.checked),
                )
            }
            _ => {
                let head = super::head(&self.db).await?;
                let through = match row.to_seq {
                    Some(to) => to,
                    None => head.last_seq,
                };
                let check = ChainCheck::starting_at(&self.db, from).await?;
                let saved = sqlx::query(
                    "UPDATE audit_verifications SET through_seq = $1, head_hash = $2, head_max_seq = $3, \
                     checked_through = $4, expected_prev = $5 WHERE id = $6 AND lease_owner = $7",
                )
                .bind(through)
                .bind(&head.last_hash)
                .bind(head.max_seq)
                .bind(check.last_seq)
                .bind(&check.expected_prev)
                .bind(&row.id)
                .bind(&self.owner)
                .execute(self.db.pool())
                .await?;
                if saved.rows_affected() == 0 {
                    return Ok(Ran::LeaseLost);
                }
                (through, whole_log.then_some(head), check)
            }
        };
        let mut first = row.first();
        let mut problems = row.problems;
        let began = Instant::now();
        let checked_before = check.checked;
        let mut written = Instant::now();
        loop {
            let rows = entries_after(&self.db, check.last_seq, through, self.page).await?;
            for entry in &rows {
                if let Some(found) = check.feed(entry) {
                    problems += 1;
                    if first.is_none() {
                        first = Some(found);
                    }
                }
            }
            let done = (rows.len() as i64) < self.page;
            if done {
                break;
            }
            if written.elapsed() >= self.progress_every {
                let rate = rate(check.checked - checked_before, began.elapsed());
                if !self
                    .progress(&row.id, &check, rate, problems, &first)
                    .await?
                {
                    return Ok(Ran::LeaseLost);
                }
                written = Instant::now();
                if let Some(gate) = &self.gate {
                    match gate.acquire().await {
                        Ok(permit) => permit.forget(),
                        Err(_) => return Ok(Ran::LeaseLost),
                    }
                }
            }
        }
        if let Some(head) = &head
            && let Some(found) = end_problem(head, &check)
        {
            problems += 1;
            if first.is_none() {
                first = Some(found);
            }
        }
        let rate = rate(check.checked - checked_before, began.elapsed());
        if !self
            .progress(&row.id, &check, rate, problems, &first)
            .await?
        {
            return Ok(Ran::LeaseLost);
        }
        let chain = match first {
            Some((seq, problem, detail)) => Verification::Broken {
                seq,
                problem,
                detail,
            },
            None => Verification::Intact {
                entries: check.checked,
                last_seq: check.last_seq,
            },
        };
        let to = if whole_log { None } else { Some(through) };
        let checked = with_anchors(&self.db, &self.anchorer, Some(from), to, chain).await?;
        let view = super::view::view_of(checked);
        let state = match &view {
            VerifyView::Intact { .. } => "intact",
            VerifyView::Broken { .. } => "broken",
        };
        let result = serde_json::to_string(&view).ok();
        if !self.finish(&row.id, state, result.as_deref(), None).await? {
            return Ok(Ran::LeaseLost);
        }
        tracing::info!(
            entries = check.checked,
            problems,
            state,
            "audit verification finished"
        );
        Ok(Ran::Finished(state.into()))
    }

    /// Writes where the run is and renews the lease; `false` when the lease is lost.
    async fn progress(
        &self,
        id: &str,
        check: &ChainCheck,
        rate: i64,
        problems: i64,
        first: &Option<Found>,
    ) -> Result<bool, sqlx::Error> {
        let now = self.clock.now_ms();
        let written = sqlx::query(
            "UPDATE audit_verifications SET checked = $1, checked_through = $2, expected_prev = $3, \
             rate = $4, problems = $5, first_problem_seq = $6, first_problem = $7, \
             first_problem_detail = $8, lease_expires_at = $9 WHERE id = $10 AND lease_owner = $11",
        )
        .bind(check.checked)
        .bind(check.last_seq)
        .bind(&check.expected_prev)
        .bind(rate)
        .bind(problems)
        .bind(first.as_ref().map(|f| f.0))
        .bind(first.as_ref().map(|f| f.1.as_str()))
        .bind(first.as_ref().map(|f| f.2.clone()))
        .bind(self.lease_until(now))
        .bind(id)
        .bind(&self.owner)
        .execute(self.db.pool())
        .await?;
        Ok(written.rows_affected() == 1)
    }

    async fn finish(
        &self,
        id: &str,
        state: &str,
        result: Option<&str>,
        error: Option<&str>,
    ) -> Result<bool, sqlx::Error> {
        let finished = sqlx::query(
            "UPDATE audit_verifications SET active = NULL, state = $1, result = $2, error = $3, \
             finished_at = $4, lease_owner = NULL, lease_expires_at = NULL \
             WHERE id = $5 AND lease_owner = $6",
        )
        .bind(state)
        .bind(result)
        .bind(error)
        .bind(self.clock.now_ms())
        .bind(id)
        .bind(&self.owner)
        .execute(self.db.pool())
        .await?;
        Ok(finished.rows_affected() == 1)
    }
}

/// Entries a second.
fn rate(entries: i64, elapsed: Duration) -> i64 {
    let seconds = elapsed.as_secs_f64();
    if seconds <= 0.0 {
        0
    } else {
        (entries as f64 / seconds).round() as i64
    }
}

impl crate::Portal {
    /// Starts the background verification of `from..=to` (the whole log when both are
    /// `None`), asked for by `by`, and wakes the job; `false` when one is running already.
    pub async fn start_audit_verification(
        &self,
        by: &str,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<bool, sqlx::Error> {
        let started = start(&self.db, self.clock.now_ms(), by, from, to).await?;
        if started {
            self.audit_verify_wake.notify_one();
        }
        Ok(started)
    }

    /// The verification running and the last one finished, for the audit page.
    pub async fn audit_verification(&self) -> Result<VerifyStatus, sqlx::Error> {
        status(&self.db).await
    }

    /// What runs the verifications (the server's job).
    pub fn audit_verifier(&self) -> Verifier {
        Verifier::new(
            self.db.clone(),
            self.audit_anchor.clone(),
            self.clock.clone(),
        )
    }

    /// What the verification job waits on between looks.
    pub fn audit_verify_wake_handle(&self) -> Arc<tokio::sync::Notify> {
        self.audit_verify_wake.clone()
    }
}
