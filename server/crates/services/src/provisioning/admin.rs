//! What an admin sees of a grant's provisioning (its steps, their attempts and errors, the
//! proof's evidence) and their retry of a run that needs attention.

use serde_json::json;
use shared::grant::{GrantState, StepState};

use super::Step;
use super::outputs::StepOutput;
use super::proof;
use crate::audit::{self, Actor, AuditAction, Target};
use crate::clock::Clock;
use crate::db::Database;

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

#[derive(sqlx::FromRow)]
struct GrantRow {
    id: String,
    state: String,
    attention: Option<String>,
    api_calls: i64,
}

#[derive(sqlx::FromRow)]
struct StepRow {
    step: String,
    state: String,
    attempts: i64,
    last_error: Option<String>,
    output: Option<String>,
}

/// The provisioning of the grant made from request `request_id`, if it was approved.
pub async fn progress(db: &Database, request_id: &str) -> Result<Option<Progress>, sqlx::Error> {
    let Some(grant) = sqlx::query_as::<_, GrantRow>(
        "SELECT id, state, attention, api_calls FROM grants WHERE request_id = $1",
    )
    .bind(request_id)
    .fetch_optional(db.pool())
    .await?
    else {
        return Ok(None);
    };
    let rows = sqlx::query_as::<_, StepRow>(
        "SELECT step, state, attempts, last_error, output FROM provisioning_steps \
         WHERE grant_id = $1 ORDER BY position",
    )
    .bind(&grant.id)
    .fetch_all(db.pool())
    .await?;
    let mut steps = Vec::new();
    let mut evidence = Vec::new();
    for row in rows {
        let step = row.step;
        let label = Step::parse(&step)
            .ok()
            .map_or(step.clone(), |s| s.label().to_string());
        if step == Step::Proof.as_str()
            && let Some(output) = row.output
            && let Some(StepOutput::Proof(made)) = StepOutput::parse(Step::Proof, &output)
        {
            evidence = made.checks;
        }
        steps.push(StepProgress {
            step,
            label,
            state: row.state,
            attempts: row.attempts,
            last_error: row.last_error,
        });
    }
    Ok(Some(Progress {
        grant_id: grant.id,
        state: grant.state,
        attention: grant.attention,
        api_calls: grant.api_calls,
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
    #[error(
        "taking the grant's access away stopped part-way: revoke it again to finish the teardown"
    )]
    Ending,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// An admin's retry of a grant that needs attention (after fixing the cause in the org):
/// the failed step runs again from a fresh attempt count, and the run carries on.
pub async fn retry(
    db: &Database,
    grant_id: &str,
    actor: &Actor,
    clock: &dyn Clock,
) -> Result<(), RetryError> {
    let now = clock.now_ms();
    let mut tx = db.begin_write().await?;
    let state: Option<String> = sqlx::query_scalar("SELECT state FROM grants WHERE id = $1")
        .bind(grant_id)
        .fetch_optional(&mut *tx.tx)
        .await?;
    match state.as_deref() {
        None => return Err(RetryError::NotFound(grant_id.to_string())),
        Some(stopped) if stopped == GrantState::NeedsAttention.as_str() => {}
        Some(other) => return Err(RetryError::NotStopped(other.to_string())),
    }
    if super::teardown::is_ending(&mut tx.tx, grant_id).await? {
        return Err(RetryError::Ending);
    }
    let undoing: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM provisioning_steps WHERE grant_id = $1 AND state IN ($2, $3, $4)",
    )
    .bind(grant_id)
    .bind(StepState::Undoing.as_str())
    .bind(StepState::Undone.as_str())
    .bind(StepState::Cancelled.as_str())
    .fetch_one(&mut *tx.tx)
    .await?;
    if undoing > 0 {
        return Err(RetryError::Cancelling);
    }
    let steps = sqlx::query(
        "UPDATE provisioning_steps SET state = $3, attempts = 0, next_attempt_at = $1, \
             last_error = NULL, updated_at = $1 WHERE grant_id = $2 AND state = $4",
    )
    .bind(now)
    .bind(grant_id)
    .bind(StepState::Pending.as_str())
    .bind(StepState::Failed.as_str())
    .execute(&mut *tx.tx)
    .await?;
    sqlx::query("UPDATE grants SET state = $3, attention = NULL, updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(grant_id)
        .bind(GrantState::Provisioning.as_str())
        .execute(&mut *tx.tx)
        .await?;
    audit::record(
        &mut tx.tx,
        actor,
        AuditAction::ProvisioningRetried,
        Target::Grant,
        grant_id,
        json!({ "steps": steps.rows_affected() }),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

impl crate::Portal {
    /// The id of the grant made from request `request_id`, if it was approved.
    pub async fn grant_of_request(&self, request_id: &str) -> Result<Option<String>, sqlx::Error> {
        grant_of_request(&self.db, request_id).await
    }

    /// An admin runs the failed step of grant `grant_id` again ([`retry`]).
    pub async fn retry_grant(&self, grant_id: &str, actor: &Actor) -> Result<(), RetryError> {
        retry(&self.db, grant_id, actor, self.clock.as_ref()).await
    }

    /// An admin cancels grant `grant_id` while it is provisioned ([`super::cancel`]).
    pub async fn cancel_grant(
        &self,
        grant_id: &str,
        actor: &Actor,
    ) -> Result<super::Cancelled, super::CancelError> {
        super::cancel(&self.db, grant_id, actor, self.clock.as_ref()).await
    }
}

/// Grants by state, every state of the vocabulary (zeros included), for `/metrics`: a
/// count over the `grants (state)` index.
pub async fn grants_by_state(db: &Database) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let counted: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, COUNT(*) FROM grants GROUP BY state")
            .fetch_all(db.pool())
            .await?;
    Ok(GrantState::ALL
        .iter()
        .map(|state| {
            let count = counted
                .iter()
                .find(|(s, _)| s == state.as_str())
                .map_or(0, |(_, n)| *n);
            (state.as_str().to_string(), count)
        })
        .collect())
}

/// The grant states whose steps a worker still has to run or undo.
const MOVING: [GrantState; 5] = [
    GrantState::Approved,
    GrantState::Provisioning,
    GrantState::Cancelling,
    GrantState::Revoking,
    GrantState::Expiring,
];

/// The step states that are waiting for a worker or held by one.
const UNFINISHED: [StepState; 3] = [StepState::Pending, StepState::Running, StepState::Undoing];

/// The provisioning queue for `/metrics`: unfinished steps of grants being provisioned,
/// cancelled or torn down, per step state (zeros included), and the earliest due time of
/// those waiting (`pending` or `undoing`, due by `now`). Bounded by the grants in motion:
/// the `provisioning_steps (state, next_attempt_at)` and `grants (state)` indexes.
pub async fn queue(
    db: &Database,
    now: i64,
) -> Result<(Vec<(String, i64)>, Option<i64>), sqlx::Error> {
    let moving = || MOVING.iter().map(|g| g.as_str());
    let mut counts = crate::db::QueryBuilder::new(
        "SELECT s.state, COUNT(*) FROM provisioning_steps s JOIN grants g ON g.id = s.grant_id \
         WHERE s.state IN (",
    );
    counts.push_binds(UNFINISHED.iter().map(|s| s.as_str()));
    counts.push(") AND g.state IN (");
    counts.push_binds(moving());
    counts.push(") GROUP BY s.state");
    let counted: Vec<(String, i64)> = counts.build_query_as().fetch_all(db.pool()).await?;
    let depth = UNFINISHED
        .iter()
        .map(|state| {
            let count = counted
                .iter()
                .find(|(s, _)| s == state.as_str())
                .map_or(0, |(_, n)| *n);
            (state.as_str().to_string(), count)
        })
        .collect();
    let mut oldest = crate::db::QueryBuilder::new(
        "SELECT MIN(s.next_attempt_at) FROM provisioning_steps s JOIN grants g ON g.id = s.grant_id \
         WHERE s.state IN (",
    );
    oldest.push_binds([StepState::Pending.as_str(), StepState::Undoing.as_str()]);
    oldest.push(") AND s.next_attempt_at <= ");
    oldest.push_bind(now);
    oldest.push(" AND g.state IN (");
    oldest.push_binds(moving());
    oldest.push(")");
    let oldest_due: Option<i64> = oldest.build_query_scalar().fetch_one(db.pool()).await?;
    Ok((depth, oldest_due))
}
