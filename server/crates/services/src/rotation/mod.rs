//! The rotation policy: a grant's secret has a maximum age (`SECRET_MAX_AGE_DAYS`, 90 days by
//! default, 0 = never; an approver may set the grant's own), and is replaced without a
//! moment in which the contractor holds no working credential.
//!
//! A rotation ([`Portal::start_rotation`], by "Rotate now" or by the job for a secret past
//! its maximum age) stages a new pair beside the app's current one with Connect REST
//! (`POST …/credentials/{appId}/{consumerId}/staged`): both pairs work from then on. The new
//! secret is sealed in the [`crate::vault`] and handed over through a reveal link of its own
//! ([`crate::reveal::issue_staged_link`]: the same link, code and one-time reveal as the
//! first credential). The old pair is retired ([`Portal::run_rotation_policy`]) by rotating
//! the staged pair in (`PATCH …/staged/{id}` `{"command":"rotate"}`): at the deadline
//! (`SECRET_OVERLAP_DAYS`, 7 by default, after the start), or earlier when an approver
//! retires it ([`Portal::retire_old_secret`]) once the contractor has collected the new
//! pair. Before the deadline a contractor who has not collected the new pair is reminded
//! (3 days and 1 day before, each once).
//!
//! Why not "when usage shows calls on the new one" for a staged pair: the ApiTotalUsage log
//! names the app (`CONNECTED_APP_ID`, `CONNECTED_APP_NAME`), the user and the client
//! (`CLIENT_NAME`, what the caller sends in `Sforce-Call-Options`), never the consumer key,
//! and both pairs belong to the same app and the same run-as user; the OAuth usage
//! resources list tokens per app and user, not per key. Nothing documented tells a call made
//! with the new pair from one made with the old (UNCONFIRMED that nothing undocumented
//! does). So for a staged pair the portal uses what it can observe honestly: the contractor
//! collected the new pair (its reveal link), and an approver's word that the integration
//! switched; otherwise the deadline.
//!
//! A rotation interrupted between asking the org for staged credentials and recording them
//! (the portal stopped) fails after [`STAGING_TIMEOUT_MS`]: the job deletes the active staged
//! pairs the org made for the app since it started (never handed over to anyone) — or the
//! second app whose deploy was under way —, so a new rotation may start.
//!
//! Where the org cannot stage — the portal speaks an API older than 65.0 (known before any
//! call), or the org answers the staging with its credentials API closed
//! (`FUNCTIONALITY_NOT_ENABLED`, [`salesforce::connect::staging_refused`]) — the rotation
//! deploys a second app instead (`second_app.rs`): an External Client App for the same
//! integration user and permission set, with the same policies (permitted users, scopes,
//! trusted IP ranges, session and refresh policies: the grant's app spec under the name
//! `<app>_R<n>`), its secret read from the org or chosen, sealed and deployed as provisioning
//! does, handed over through the same staged reveal link. Both apps work during the overlap.
//! Here usage can tell the pairs apart (each call names its app), so the old app is retired
//! at the first policy run after the collected usage files show the integration user's calls
//! on the second app, at the deadline, or by an approver's "retire" once the contractor
//! collected the new pair — whichever comes first. Retiring revokes the old app's tokens for
//! the user and deletes the old app (its undo, as a teardown does), so the old pair is
//! refused; the grant then records the second app as its app (`app_name`, `app_id`,
//! `consumer_id`, `app_consumer_key`; [`crate::eca::current_app`]), which the teardown, drift
//! detection, the reveal and "I did not do this" use from then on. A revoke or an expiry
//! during the overlap removes both apps (the teardown's cut-off revokes the second app's
//! tokens and tries its pair too; its app step deletes the second app after the grant's
//! own) and ends the rotation.
//!
//! Above `reveal` (its link and hand-over) and `vault`, beside `renewal`; nothing below uses
//! this room.

use serde_json::json;
use shared::GrantState;
use shared::rotation::{OverdueReason, OverdueSecret, RotationMethod, RotationState};

use crate::Portal;
use crate::audit::{self, Actor, AuditAction, Outcome, Target};
use crate::clock::rfc3339;
use crate::db::Database;
use crate::reveal::StagedHandover;

mod job;
mod second_app;
mod view;

pub use job::{REMINDER_DAYS, RotationRun, STAGING_TIMEOUT_MS};

/// The grant states whose secret can be rotated.
pub const ROTATABLE: [GrantState; 2] = [GrantState::Ready, GrantState::Active];

pub(crate) const DAY_MS: i64 = 86_400_000;

/// The largest maximum age an approver may set (ten years).
pub const MAX_AGE_LIMIT_DAYS: i64 = 3_650;

/// Why a rotation began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationReason {
    /// The secret passed its maximum age (the job).
    MaxAge,
    /// "Rotate now".
    Manual,
}

impl RotationReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RotationReason::MaxAge => "max_age",
            RotationReason::Manual => "manual",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("There is no such grant.")]
    NoSuchGrant,
    #[error("Only a ready or active grant's secret can be rotated; this grant is {0}.")]
    NotRotatable(String),
    #[error("A rotation of this grant's secret is already under way.")]
    InProgress,
    #[error("This grant's app is not recorded, so its secret cannot be rotated.")]
    NoApp,
    #[error(
        "No credential key is configured (CREDENTIAL_KEY_FILE), so the new secret could not be kept until the contractor collects it."
    )]
    NoVault,
    #[error("The org did not stage new credentials for the app: {0}")]
    Salesforce(String),
    #[error("The org cannot stage credentials ({0}), and the second app could not be made: {1}")]
    SecondApp(&'static str, String),
    #[error(
        "The maximum secret age is a whole number of days, from 0 (never) to {MAX_AGE_LIMIT_DAYS}."
    )]
    InvalidMaxAge,
    #[error("There is no rotation under way for this grant.")]
    NothingToRetire,
    #[error(
        "The contractor has not collected the new secret yet: retiring the old one now would leave them without a working credential. It is retired at the deadline."
    )]
    NotCollected,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// A rotation row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct RotationRow {
    pub id: String,
    pub grant_id: String,
    pub state: String,
    pub reason: String,
    pub started_by: String,
    pub started_at: i64,
    pub deadline_at: i64,
    pub staged_id: Option<String>,
    pub new_key: Option<String>,
    pub completed_at: Option<i64>,
    pub error: Option<String>,
    /// 1 when the contractor collected the new pair (its link was revealed).
    pub collected: i64,
    /// `staged` or `second_app` ([`RotationMethod`]).
    pub method: String,
    pub new_app_name: Option<String>,
    pub new_app_id: Option<String>,
    pub new_consumer_id: Option<String>,
    pub old_app_name: Option<String>,
    pub old_app_id: Option<String>,
}

pub(crate) const ROTATION_COLUMNS: &str = "r.id, r.grant_id, r.state, r.reason, r.started_by, \
     r.started_at, r.deadline_at, r.staged_id, r.new_key, r.completed_at, r.error, \
     r.method, r.new_app_name, r.new_app_id, r.new_consumer_id, r.old_app_name, r.old_app_id, \
     CASE WHEN EXISTS (SELECT 1 FROM reveal_links l WHERE l.grant_id = r.grant_id \
         AND l.staged_key = r.new_key AND l.state = 'revealed') THEN 1 ELSE 0 END AS collected";

impl RotationRow {
    pub fn rotation_state(&self) -> RotationState {
        RotationState::parse(&self.state).unwrap_or(RotationState::Failed)
    }

    pub fn rotation_method(&self) -> RotationMethod {
        RotationMethod::parse(&self.method).unwrap_or(RotationMethod::Staged)
    }
}

/// A rotation that started: its id, and how it replaces the pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedRotation {
    pub id: String,
    pub method: RotationMethod,
}

/// The grants whose secret is overdue at `now`: older than its maximum age (the grant's
/// own, else `default_max_age_days`; 0 = never) with no rotation under way, or with a
/// rotation under way past its deadline. Oldest first.
pub async fn overdue_secrets(
    db: &Database,
    now: i64,
    default_max_age_days: i64,
) -> Result<Vec<OverdueSecret>, sqlx::Error> {
    let aged: Vec<(String, String, String, i64)> = sqlx::query_as(&format!(
        "SELECT g.id, g.request_id, g.company, \
         COALESCE(g.secret_issued_at, g.created_at) + COALESCE(g.secret_max_age_days, $1) * {DAY_MS} AS due \
         FROM grants g WHERE g.state IN ($3, $4) AND COALESCE(g.secret_max_age_days, $1) > 0 \
         AND COALESCE(g.secret_issued_at, g.created_at) + COALESCE(g.secret_max_age_days, $1) * {DAY_MS} <= $2 \
         AND NOT EXISTS (SELECT 1 FROM secret_rotations r WHERE r.grant_id = g.id \
             AND r.state IN ('staging', 'staged'))"
    ))
    .bind(default_max_age_days)
    .bind(now)
    .bind(ROTATABLE[0].as_str())
    .bind(ROTATABLE[1].as_str())
    .fetch_all(db.pool())
    .await?;
    let late: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT g.id, g.request_id, g.company, r.deadline_at FROM secret_rotations r \
         JOIN grants g ON g.id = r.grant_id \
         WHERE r.state IN ('staging', 'staged') AND r.deadline_at <= $1",
    )
    .bind(now)
    .fetch_all(db.pool())
    .await?;
    let mut overdue: Vec<(i64, OverdueSecret)> = aged
        .into_iter()
        .map(|row| (row, OverdueReason::PastMaxAge))
        .chain(
            late.into_iter()
                .map(|row| (row, OverdueReason::PastDeadline)),
        )
        .map(|((grant_id, request_id, company, since), reason)| {
            (
                since,
                OverdueSecret {
                    grant_id,
                    request_id,
                    company,
                    reason,
                    since: rfc3339(since),
                },
            )
        })
        .collect();
    overdue.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.grant_id.cmp(&b.1.grant_id)));
    Ok(overdue.into_iter().map(|(_, o)| o).collect())
}

impl Portal {
    /// [`overdue_secrets`] at the portal's clock, with its default maximum age.
    pub async fn overdue_secrets(&self) -> Result<Vec<OverdueSecret>, sqlx::Error> {
        overdue_secrets(
            &self.db,
            self.clock().now_ms(),
            self.settings.secret_max_age_days,
        )
        .await
    }

    /// Starts a rotation of the grant's secret: stages a new pair beside the current one
    /// (or, where the org cannot stage, deploys a second app), seals its secret and mails
    /// the contractor a link to it. The old pair keeps working until the rotation completes.
    pub async fn start_rotation(
        &self,
        grant_id: &str,
        actor: &Actor,
        reason: RotationReason,
    ) -> Result<StartedRotation, RotationError> {
        let vault = self.vault.clone().ok_or(RotationError::NoVault)?;
        let now = self.clock().now_ms();
        // 1. Claim: one rotation under way per grant (the unique index decides a race).
        let id = uuid::Uuid::now_v7().to_string();
        let deadline = now + self.settings.secret_overlap_days.max(1) * DAY_MS;
        let (app_id, consumer_id) = {
            let mut tx = self.db.begin_write().await?;
            let grant: Option<(String, Option<String>, Option<String>)> =
                sqlx::query_as("SELECT state, app_id, consumer_id FROM grants WHERE id = $1")
                    .bind(grant_id)
                    .fetch_optional(&mut *tx.tx)
                    .await?;
            let (state, app_id, consumer_id) = grant.ok_or(RotationError::NoSuchGrant)?;
            if !ROTATABLE.iter().any(|s| s.as_str() == state) {
                return Err(RotationError::NotRotatable(state));
            }
            let (Some(app_id), Some(consumer_id)) = (app_id, consumer_id) else {
                return Err(RotationError::NoApp);
            };
            let open: Option<String> = sqlx::query_scalar(
                "SELECT id FROM secret_rotations WHERE grant_id = $1 AND state IN ('staging', 'staged')",
            )
            .bind(grant_id)
            .fetch_optional(&mut *tx.tx)
            .await?;
            if open.is_some() {
                return Err(RotationError::InProgress);
            }
            let inserted = sqlx::query(
                "INSERT INTO secret_rotations (id, grant_id, state, reason, started_by, started_at, deadline_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&id)
            .bind(grant_id)
            .bind(RotationState::Staging.as_str())
            .bind(reason.as_str())
            .bind(&actor.name)
            .bind(now)
            .bind(deadline)
            .execute(&mut *tx.tx)
            .await;
            match inserted {
                Ok(_) => {}
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    return Err(RotationError::InProgress);
                }
                Err(e) => return Err(e.into()),
            }
            tx.commit().await?;
            (app_id, consumer_id)
        };

        // 2. Stage the new pair in the org (both pairs work from here on). Where the org
        //    cannot stage (an API older than 65.0, known before any call, or its
        //    credentials API closed), a second app takes the staged pair's place.
        let version = self.salesforce.api_version();
        let refused = match salesforce::connect::staging_refused(version, None) {
            Some(why) => Err(why),
            None => match self.salesforce.create_staged(&app_id, &consumer_id).await {
                Ok(staged) => Ok(staged),
                Err(e) => match salesforce::connect::staging_refused(version, Some(&e)) {
                    Some(why) => Err(why),
                    None => {
                        let error = RotationError::Salesforce(e.to_string());
                        self.rotation_failed(&id, grant_id, actor, &error).await?;
                        return Err(error);
                    }
                },
            },
        };
        let staged = match refused {
            Ok(staged) => staged,
            Err(why) => {
                return self
                    .start_second_app(&id, grant_id, actor, reason, deadline, why)
                    .await;
            }
        };
        let (Some(key), Some(secret)) = (staged.key.clone(), staged.secret.clone()) else {
            let _ = self
                .salesforce
                .delete_staged(&app_id, &consumer_id, &staged.id)
                .await;
            let error = RotationError::Salesforce(
                "the staged credentials came back without a key or a secret".into(),
            );
            self.rotation_failed(&id, grant_id, actor, &error).await?;
            return Err(error);
        };
        // The staged pair expires (30 days): the old one is retired before that.
        let deadline = match staged.expiration_date {
            Some(expires) => deadline.min(expires.timestamp_millis() - 3_600_000),
            None => deadline,
        };

        // 3. Seal the new secret until the contractor collects it.
        if let Err(e) =
            crate::vault::store_sealed(&self.db, &vault, grant_id, &secret, &**self.clock()).await
        {
            let _ = self
                .salesforce
                .delete_staged(&app_id, &consumer_id, &staged.id)
                .await;
            let error = RotationError::Database(e);
            self.rotation_failed(&id, grant_id, actor, &error).await?;
            return Err(error);
        }
        drop(secret);

        // 4. Record it, and mail the link to the new pair.
        let mut tx = self.db.begin_write().await?;
        sqlx::query(
            "UPDATE secret_rotations SET state = $1, staged_id = $2, new_key = $3, deadline_at = $4 \
             WHERE id = $5 AND state = $6",
        )
        .bind(RotationState::Staged.as_str())
        .bind(&staged.id)
        .bind(&key)
        .bind(deadline)
        .bind(&id)
        .bind(RotationState::Staging.as_str())
        .execute(&mut *tx.tx)
        .await?;
        let handover = self.handover();
        crate::reveal::issue_staged_link(
            &mut tx.tx,
            &handover,
            grant_id,
            actor,
            "rotation",
            &StagedHandover {
                consumer_key: key.clone(),
                old_pair_until_ms: deadline,
            },
        )
        .await?;
        audit::record(
            &mut tx.tx,
            actor,
            AuditAction::SecretRotationStarted,
            Target::Grant,
            grant_id,
            json!({
                "rotation": id,
                "reason": reason.as_str(),
                "staged_id": staged.id,
                "new_consumer_key": key,
                "old_secret_works_until": rfc3339(deadline),
                "staged_expires": staged.expiration_date.map(|d| d.to_rfc3339()),
                "method": RotationMethod::Staged.as_str(),
            }),
        )
        .await?;
        tx.commit().await?;
        self.mail.wake();
        Ok(StartedRotation {
            id,
            method: RotationMethod::Staged,
        })
    }

    /// Records a rotation that did not get its staged pair (the old pair still works).
    async fn rotation_failed(
        &self,
        id: &str,
        grant_id: &str,
        actor: &Actor,
        error: &RotationError,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.db.begin_write().await?;
        sqlx::query(
            "UPDATE secret_rotations SET state = $1, error = $2, completed_at = $3 WHERE id = $4",
        )
        .bind(RotationState::Failed.as_str())
        .bind(error.to_string())
        .bind(self.clock().now_ms())
        .bind(id)
        .execute(&mut *tx.tx)
        .await?;
        audit::record_outcome(
            &mut tx.tx,
            actor,
            AuditAction::SecretRotationFailed,
            Outcome::Failure,
            Target::Grant,
            grant_id,
            json!({ "rotation": id, "error": error.to_string() }),
        )
        .await?;
        tx.commit().await
    }

    /// Retires the old secret now (an approver, after the contractor collected the new pair
    /// and switched): the staged pair is rotated in.
    pub async fn retire_old_secret(
        &self,
        grant_id: &str,
        actor: &Actor,
    ) -> Result<(), RotationError> {
        let rotation = self
            .open_rotation(grant_id)
            .await?
            .filter(|r| r.state == RotationState::Staged.as_str())
            .ok_or(RotationError::NothingToRetire)?;
        if rotation.collected == 0 {
            return Err(RotationError::NotCollected);
        }
        match self.complete_rotation(&rotation, actor, "approver").await? {
            job::Completion::Done => Ok(()),
            job::Completion::Failed(error) | job::Completion::Later(error) => {
                Err(RotationError::Salesforce(error))
            }
        }
    }

    /// Sets the grant's own maximum secret age (`None`: the portal's default; 0: never).
    pub async fn set_secret_max_age(
        &self,
        grant_id: &str,
        days: Option<i64>,
        actor: &Actor,
    ) -> Result<(), RotationError> {
        if days.is_some_and(|d| !(0..=MAX_AGE_LIMIT_DAYS).contains(&d)) {
            return Err(RotationError::InvalidMaxAge);
        }
        let mut tx = self.db.begin_write().await?;
        let before: Option<Option<i64>> =
            sqlx::query_scalar("SELECT secret_max_age_days FROM grants WHERE id = $1")
                .bind(grant_id)
                .fetch_optional(&mut *tx.tx)
                .await?;
        let before = before.ok_or(RotationError::NoSuchGrant)?;
        sqlx::query("UPDATE grants SET secret_max_age_days = $1 WHERE id = $2")
            .bind(days)
            .bind(grant_id)
            .execute(&mut *tx.tx)
            .await?;
        audit::record(
            &mut tx.tx,
            actor,
            AuditAction::SecretMaxAgeChanged,
            Target::Grant,
            grant_id,
            json!({
                "before_days": before,
                "after_days": days,
                "default_days": self.settings.secret_max_age_days,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The grant's rotation under way (staging or staged), if any.
    pub(crate) async fn open_rotation(
        &self,
        grant_id: &str,
    ) -> Result<Option<RotationRow>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {ROTATION_COLUMNS} FROM secret_rotations r \
             WHERE r.grant_id = $1 AND r.state IN ('staging', 'staged')"
        ))
        .bind(grant_id)
        .fetch_optional(self.db.pool())
        .await
    }
}
