//! What an admin sees of a grant's provisioning (its steps, their attempts and errors, the
//! proof's evidence) and their retry of a run that needs attention.

use serde_json::json;
use sqlx::Row;

use super::Step;
use super::outputs::StepOutput;
use super::proof;
use crate::audit::{self, Actor, AuditAction, Target};
use crate::clock::now_ms;
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
        let label = Step::parse(&step)
            .ok()
            .map_or(step.clone(), |s| s.label().to_string());
        if step == Step::Proof.as_str()
            && let Some(output) = row.try_get::<Option<String>, _>("output")?
            && let Some(StepOutput::Proof(made)) = StepOutput::parse(Step::Proof, &output)
        {
            evidence = made.checks;
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
        retry(&self.db, grant_id, actor).await
    }

    /// An admin cancels grant `grant_id` while it is provisioned ([`super::cancel`]).
    pub async fn cancel_grant(
        &self,
        grant_id: &str,
        actor: &Actor,
    ) -> Result<super::Cancelled, super::CancelError> {
        super::cancel(&self.db, grant_id, actor).await
    }
}
