//! What the rotation job does on each run, at the portal's clock: start a rotation of each
//! secret past its maximum age (once per secret: a failed start is listed as overdue and
//! left to an approver's "Rotate now"), remind contractors who have not collected a new
//! pair (3 days and 1 day before the deadline, the nearest threshold only, each once), and
//! retire the old pair of each rotation at its deadline — or, for a rotation by a second
//! app, as soon as usage shows calls on the second app.

use serde_json::json;
use shared::rotation::{RotationMethod, RotationState};

use super::{DAY_MS, ROTATABLE, ROTATION_COLUMNS, RotationReason, RotationRow};
use crate::Portal;
use crate::audit::{self, Actor, AuditAction, Outcome, Target};
use crate::clock::rfc3339;
use crate::mail::Mail;

/// How long a rotation may stay `staging` (asking the org) before the job takes it for
/// interrupted.
pub const STAGING_TIMEOUT_MS: i64 = 15 * 60 * 1000;

/// Days before a rotation's deadline at which an uncollected new pair is reminded of.
pub const REMINDER_DAYS: [i64; 2] = [3, 1];

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationRun {
    /// Grants whose rotation the run started.
    pub started: Vec<String>,
    /// Grants whose max-age rotation could not start (the error is audited).
    pub start_failed: Vec<String>,
    /// (grant, days before the deadline) of each reminder sent.
    pub reminded: Vec<(String, i64)>,
    /// Grants whose old secret was retired.
    pub completed: Vec<String>,
    /// Grants whose rotation failed at the switch (the staged pair expired or was deleted).
    pub failed: Vec<String>,
}

impl RotationRun {
    pub fn is_idle(&self) -> bool {
        self.started.is_empty()
            && self.start_failed.is_empty()
            && self.reminded.is_empty()
            && self.completed.is_empty()
            && self.failed.is_empty()
    }
}

/// How a switch went.
pub(crate) enum Completion {
    Done,
    /// The staged pair cannot be rotated in any more (expired, deleted): the rotation failed.
    Failed(String),
    /// The org did not answer as expected: tried again on the next run.
    Later(String),
}

/// The reminder threshold due with `ms_left` before the deadline: the smallest one reached.
pub fn due_threshold(ms_left: i64) -> Option<i64> {
    if ms_left <= 0 {
        return None;
    }
    REMINDER_DAYS
        .iter()
        .rev()
        .copied()
        .find(|days| ms_left <= days * DAY_MS)
}

impl Portal {
    /// One run of the rotation policy (see the module).
    pub async fn run_rotation_policy(&self) -> Result<RotationRun, sqlx::Error> {
        let mut run = RotationRun::default();
        let system = Actor::system();
        for grant_id in self.abandon_interrupted_stagings().await? {
            run.failed.push(grant_id);
        }
        for grant_id in self.secrets_due_for_rotation().await? {
            match self
                .start_rotation(&grant_id, &system, RotationReason::MaxAge)
                .await
            {
                Ok(_) => run.started.push(grant_id),
                Err(super::RotationError::Database(e)) => return Err(e),
                Err(e) => {
                    tracing::warn!(grant = %grant_id, error = %e, "a secret past its maximum age could not be rotated");
                    run.start_failed.push(grant_id);
                }
            }
        }
        let now = self.clock().now_ms();
        let staged: Vec<RotationRow> = sqlx::query_as(&format!(
            "SELECT {ROTATION_COLUMNS} FROM secret_rotations r WHERE r.state = $1 ORDER BY r.deadline_at, r.id"
        ))
        .bind(RotationState::Staged.as_str())
        .fetch_all(self.db.pool())
        .await?;
        for rotation in staged {
            // A second app's calls show the contractor switched: the old app goes now.
            let why = if rotation.deadline_at <= now {
                Some("deadline")
            } else if rotation.rotation_method() == RotationMethod::SecondApp
                && self.second_app_called(&rotation).await?
            {
                Some("usage")
            } else {
                None
            };
            if let Some(why) = why {
                match self.complete_rotation(&rotation, &system, why).await? {
                    Completion::Done => run.completed.push(rotation.grant_id.clone()),
                    Completion::Failed(_) => run.failed.push(rotation.grant_id.clone()),
                    Completion::Later(error) => {
                        tracing::warn!(grant = %rotation.grant_id, %error, "the old secret could not be retired yet");
                    }
                }
            } else if rotation.collected == 0
                && let Some(days) = due_threshold(rotation.deadline_at - now)
                && self.send_rotation_reminder(&rotation, days).await?
            {
                run.reminded.push((rotation.grant_id.clone(), days));
            }
        }
        if !run.reminded.is_empty() || !run.completed.is_empty() {
            self.mail.wake();
        }
        Ok(run)
    }

    /// Rotations left in `staging` for over [`STAGING_TIMEOUT_MS`] (the portal stopped
    /// between asking the org for staged credentials and recording them): the staged pair,
    /// if the org made one, was never handed over, so every active staged pair the org made
    /// for the app since the rotation started is deleted, and the rotation fails (the old
    /// pair still works; a new rotation may start). Returns their grants.
    async fn abandon_interrupted_stagings(&self) -> Result<Vec<String>, sqlx::Error> {
        let now = self.clock().now_ms();
        #[derive(sqlx::FromRow)]
        struct Stuck {
            id: String,
            grant_id: String,
            started_at: i64,
            app_id: Option<String>,
            consumer_id: Option<String>,
            new_app_name: Option<String>,
        }
        let stuck: Vec<Stuck> = sqlx::query_as(
            "SELECT r.id, r.grant_id, r.started_at, g.app_id, g.consumer_id, r.new_app_name FROM secret_rotations r \
             JOIN grants g ON g.id = r.grant_id WHERE r.state = $1 AND r.started_at <= $2",
        )
        .bind(RotationState::Staging.as_str())
        .bind(now - STAGING_TIMEOUT_MS)
        .fetch_all(self.db.pool())
        .await?;
        let mut abandoned = Vec::new();
        for Stuck {
            id,
            grant_id,
            started_at,
            app_id,
            consumer_id,
            new_app_name,
        } in stuck
        {
            if let Some(name) = new_app_name {
                // A second app whose deploy was under way: it was never handed over.
                let Some(mut app) =
                    crate::eca::GrantApp::load(&self.db, &grant_id, &self.app_contact_email)
                        .await?
                else {
                    continue;
                };
                app.names.app = name;
                if crate::eca::delete(&self.salesforce, &app, &Default::default())
                    .await
                    .is_err()
                {
                    continue; // looked at again next run
                }
            } else if let (Some(app_id), Some(consumer_id)) = (app_id, consumer_id) {
                let Ok(staged) = self
                    .salesforce
                    .staged_credentials(&app_id, &consumer_id)
                    .await
                else {
                    continue; // the org did not answer: looked at again next run
                };
                let since = crate::clock::to_datetime(started_at - 60_000);
                let mut deleted = true;
                for s in staged.iter().filter(|s| {
                    s.state == Some(salesforce::connect::StagedState::Active)
                        && s.created_date.is_none_or(|d| d >= since)
                }) {
                    deleted &= self
                        .salesforce
                        .delete_staged(&app_id, &consumer_id, &s.id)
                        .await
                        .is_ok();
                }
                if !deleted {
                    continue;
                }
            }
            let row = RotationRow {
                id,
                grant_id: grant_id.clone(),
                state: RotationState::Staging.as_str().into(),
                reason: String::new(),
                started_by: String::new(),
                started_at,
                deadline_at: 0,
                staged_id: None,
                new_key: None,
                completed_at: None,
                error: None,
                collected: 0,
                method: RotationMethod::Staged.as_str().into(),
                new_app_name: None,
                new_app_id: None,
                new_consumer_id: None,
                old_app_name: None,
                old_app_id: None,
            };
            self.fail_rotation_in(
                &row,
                RotationState::Staging,
                &Actor::system(),
                "interrupted while staging; any staged credentials it made were deleted",
            )
            .await?;
            abandoned.push(grant_id);
        }
        Ok(abandoned)
    }

    /// Ready or active grants whose secret passed its maximum age and has had no rotation
    /// started since it became the grant's.
    async fn secrets_due_for_rotation(&self) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(&format!(
            "SELECT g.id FROM grants g WHERE g.state IN ($3, $4) \
             AND COALESCE(g.secret_max_age_days, $1) > 0 \
             AND COALESCE(g.secret_issued_at, g.created_at) + COALESCE(g.secret_max_age_days, $1) * {DAY_MS} <= $2 \
             AND NOT EXISTS (SELECT 1 FROM secret_rotations r WHERE r.grant_id = g.id \
                 AND r.started_at >= COALESCE(g.secret_issued_at, g.created_at)) \
             ORDER BY g.created_at, g.id"
        ))
        .bind(self.settings.secret_max_age_days)
        .bind(self.clock().now_ms())
        .bind(ROTATABLE[0].as_str())
        .bind(ROTATABLE[1].as_str())
        .fetch_all(self.db.pool())
        .await
    }

    /// Rotates the staged pair in, or deletes the old app of a rotation by a second app
    /// (the old pair is refused from then on), and records it.
    pub(crate) async fn complete_rotation(
        &self,
        rotation: &RotationRow,
        actor: &Actor,
        why: &str,
    ) -> Result<Completion, sqlx::Error> {
        let switched = match rotation.rotation_method() {
            RotationMethod::SecondApp => self.retire_old_app(rotation, actor).await?,
            RotationMethod::Staged => self.rotate_staged_in(rotation, actor).await?,
        };
        if let Some(completion) = switched {
            return Ok(completion);
        }
        self.record_completion(rotation, actor, why).await
    }

    /// The switch of a staged pair: rotated in. `None`: done.
    async fn rotate_staged_in(
        &self,
        rotation: &RotationRow,
        actor: &Actor,
    ) -> Result<Option<Completion>, sqlx::Error> {
        let (app_id, consumer_id): (Option<String>, Option<String>) =
            sqlx::query_as("SELECT app_id, consumer_id FROM grants WHERE id = $1")
                .bind(&rotation.grant_id)
                .fetch_one(self.db.pool())
                .await?;
        let (Some(app_id), Some(consumer_id), Some(staged_id)) =
            (app_id, consumer_id, rotation.staged_id.clone())
        else {
            return self
                .fail_switch(
                    rotation,
                    actor,
                    "the grant's app or the staged pair is not recorded",
                )
                .await
                .map(Some);
        };
        if let Err(e) = self
            .salesforce
            .rotate_staged(&app_id, &consumer_id, &staged_id)
            .await
        {
            // The PATCH is not repeated blindly: the staged pair's state says what happened.
            use salesforce::connect::StagedState;
            let state = self
                .salesforce
                .staged_credentials(&app_id, &consumer_id)
                .await
                .ok()
                .map(|list| {
                    list.into_iter()
                        .find(|s| s.id == staged_id)
                        .and_then(|s| s.state)
                });
            match state {
                Some(Some(StagedState::Rotated)) => {}
                Some(Some(StagedState::Active)) | None => {
                    return Ok(Some(Completion::Later(e.to_string())));
                }
                Some(other) => {
                    let what = match other {
                        Some(StagedState::Expired) => "expired",
                        Some(_) => "in an unknown state",
                        None => "gone (deleted)",
                    };
                    return self
                        .fail_switch(
                            rotation,
                            actor,
                            &format!("the staged credentials are {what}: {e}"),
                        )
                        .await
                        .map(Some);
                }
            }
        }
        Ok(None)
    }

    /// Records a switch that was made: the rotation completed, the grant's secret new (and,
    /// for a second app, the grant's app: its name, ids and key), the contractor mailed.
    async fn record_completion(
        &self,
        rotation: &RotationRow,
        actor: &Actor,
        why: &str,
    ) -> Result<Completion, sqlx::Error> {
        let now = self.clock().now_ms();
        let mut tx = self.db.begin_write().await?;
        let updated = sqlx::query(
            "UPDATE secret_rotations SET state = $1, completed_at = $2, completed_by = $3 \
             WHERE id = $4 AND state = $5",
        )
        .bind(RotationState::Completed.as_str())
        .bind(now)
        .bind(&actor.name)
        .bind(&rotation.id)
        .bind(RotationState::Staged.as_str())
        .execute(&mut *tx.tx)
        .await?
        .rows_affected();
        if updated != 1 {
            return Ok(Completion::Done);
        }
        sqlx::query("UPDATE grants SET secret_issued_at = $1, updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&rotation.grant_id)
            .execute(&mut *tx.tx)
            .await?;
        if rotation.rotation_method() == RotationMethod::SecondApp {
            // The second app is the grant's app from now on.
            sqlx::query(
                "UPDATE grants SET app_name = $1, app_id = $2, consumer_id = $3, app_consumer_key = $4 \
                 WHERE id = $5",
            )
            .bind(&rotation.new_app_name)
            .bind(&rotation.new_app_id)
            .bind(&rotation.new_consumer_id)
            .bind(&rotation.new_key)
            .bind(&rotation.grant_id)
            .execute(&mut *tx.tx)
            .await?;
        }
        let (company, contact_email): (String, String) =
            sqlx::query_as("SELECT company, contact_email FROM grants WHERE id = $1")
                .bind(&rotation.grant_id)
                .fetch_one(&mut *tx.tx)
                .await?;
        let org = self.org_name.current();
        self.mail
            .queue(
                &mut tx.tx,
                &Mail {
                    to: contact_email,
                    subject: format!("Your old API credential for {org}'s Salesforce org no longer works"),
                    body: format!(
                        "Hello,\n\nThe previous consumer key and secret of {company}'s access to \
                         {org}'s Salesforce org stopped working on {}. {}\n",
                        rfc3339(now),
                        if rotation.collected == 1 {
                            "The new credential you collected keeps working."
                        } else {
                            "You did not collect the new credential in time; ask the org's admin for a new link."
                        }
                    ),
                },
            )
            .await?;
        audit::record(
            &mut tx.tx,
            actor,
            AuditAction::SecretRotationCompleted,
            Target::Grant,
            &rotation.grant_id,
            json!({
                "rotation": rotation.id,
                "why": why,
                "method": rotation.method,
                "new_consumer_key": rotation.new_key,
                "new_secret_collected": rotation.collected == 1,
                "old_app_deleted": rotation.old_app_name,
                "app": rotation.new_app_name,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(Completion::Done)
    }

    pub(super) async fn fail_switch(
        &self,
        rotation: &RotationRow,
        actor: &Actor,
        error: &str,
    ) -> Result<Completion, sqlx::Error> {
        self.fail_rotation_in(rotation, RotationState::Staged, actor, error)
            .await?;
        Ok(Completion::Failed(error.to_string()))
    }

    /// Marks `rotation` failed if it is still `from`, and audits it.
    async fn fail_rotation_in(
        &self,
        rotation: &RotationRow,
        from: RotationState,
        actor: &Actor,
        error: &str,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.db.begin_write().await?;
        sqlx::query(
            "UPDATE secret_rotations SET state = $1, error = $2, completed_at = $3 WHERE id = $4 AND state = $5",
        )
        .bind(RotationState::Failed.as_str())
        .bind(error)
        .bind(self.clock().now_ms())
        .bind(&rotation.id)
        .bind(from.as_str())
        .execute(&mut *tx.tx)
        .await?;
        audit::record_outcome(
            &mut tx.tx,
            actor,
            AuditAction::SecretRotationFailed,
            Outcome::Failure,
            Target::Grant,
            &rotation.grant_id,
            json!({ "rotation": rotation.id, "error": error }),
        )
        .await?;
        tx.commit().await
    }

    /// Mails one reminder unless it was sent; whether it was sent now.
    async fn send_rotation_reminder(
        &self,
        rotation: &RotationRow,
        days: i64,
    ) -> Result<bool, sqlx::Error> {
        let now = self.clock().now_ms();
        let mut tx = self.db.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO secret_rotation_reminders (rotation_id, days_before, sent_at) VALUES ($1, $2, $3) \
             ON CONFLICT (rotation_id, days_before) DO NOTHING",
        )
        .bind(&rotation.id)
        .bind(days)
        .bind(now)
        .execute(&mut *tx.tx)
        .await?
        .rows_affected();
        if inserted != 1 {
            return Ok(false);
        }
        let (company, contact_email): (String, String) =
            sqlx::query_as("SELECT company, contact_email FROM grants WHERE id = $1")
                .bind(&rotation.grant_id)
                .fetch_one(&mut *tx.tx)
                .await?;
        let org = self.org_name.current();
        let deadline = rfc3339(rotation.deadline_at);
        self.mail
            .queue(
                &mut tx.tx,
                &Mail {
                    to: contact_email.clone(),
                    subject: format!(
                        "Reminder: collect your new API credential for {org}'s Salesforce org"
                    ),
                    body: format!(
                        "Hello,\n\nThe current consumer key and secret of {company}'s access to \
                         {org}'s Salesforce org stop working on {deadline}. Collect the new \
                         credential with the link we emailed on {} (subject \"A new API credential \
                         for {org}'s Salesforce org\"), and switch your integration to it before \
                         then. If you cannot find the email, ask the org's admin for a new link.\n",
                        rfc3339(rotation.started_at)
                    ),
                },
            )
            .await?;
        audit::record(
            &mut tx.tx,
            &Actor::system(),
            AuditAction::SecretRotationReminderSent,
            Target::Grant,
            &rotation.grant_id,
            json!({
                "rotation": rotation.id,
                "days_before": days,
                "deadline": deadline,
                "sent_to": contact_email,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_threshold_is_due() {
        assert_eq!(due_threshold(10 * DAY_MS), None);
        assert_eq!(due_threshold(3 * DAY_MS + 1), None);
        assert_eq!(due_threshold(3 * DAY_MS), Some(3));
        assert_eq!(due_threshold(2 * DAY_MS), Some(3));
        assert_eq!(due_threshold(DAY_MS), Some(1));
        assert_eq!(due_threshold(1), Some(1));
        assert_eq!(due_threshold(0), None);
    }
}
