//! "Ask for more time": the contractor asks for a later end date with a reason; approvers
//! approve or refuse it under the rules of a decision; an approved one is applied to the
//! org (the permission set assignments' `ExpirationDate`) and then to the grant.
//!
//! The rules, as for a request ([`crate::decisions`]):
//! - each approver decides an extension once (`extension_decisions (extension_id,
//!   approver)` is the last guard), so two approvals come from two people;
//! - an extension needs as many approvals as its request needed, and two when the grant's
//!   access is risky;
//! - nobody decides on an extension of their own access (an approver whose username or
//!   email is the grant's contact address is refused);
//! - one refusal refuses it; the reason is required and goes to the contractor.
//!
//! An extension changes the end date only: the scope, records, budget and IP ranges stay
//! as approved, so it never widens access. The new date is checked as a request's is
//! (after today and at most the portal's `max_end_days` ahead) and must be after the
//! current end date.
//!
//! Applying it: the approval is committed first (state `approved`, `applied_at` NULL),
//! then both assignments of the integration user (the permission set's and the app
//! permission set's) get the new `ExpirationDate`, then the grant its new end date, the
//! extension `applied_at`, the contractor the mail. When Salesforce refuses, the error is
//! kept on the extension (and audited when it changes) and the renewal job tries again;
//! the update sets the same value each time, so trying twice (or on two instances) is
//! harmless and only one of them records it.

use chrono::NaiveDate;
use serde_json::json;
use shared::FieldErrors;
use shared::GrantState;
use shared::auth::SignedInUser;
use shared::fields;
use shared::renewal::ExtensionState;

use crate::Portal;
use crate::audit::{self, Actor, AuditAction, Target};
use crate::db::DatabaseKind;
use crate::mail::Mail;
use crate::provisioning::outputs::AssignmentMade;

use super::{GrantRow, grant_in, history};

/// What the contractor sends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtensionInput {
    /// `YYYY-MM-DD`.
    pub new_end_date: String,
    pub reason: String,
}

/// What a decision on an extension came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtensionOutcome {
    /// An approval was recorded; more are needed.
    Recorded {
        approvals: i64,
        required: i64,
    },
    /// Approved; `applied` says whether Salesforce and the grant already have the new date
    /// (if not, the renewal job tries again).
    Approved {
        applied: bool,
    },
    Refused,
}

#[derive(Debug, thiserror::Error)]
pub enum ExtensionError {
    #[error("there is no such request for more time")]
    NotFound,
    #[error("{0}")]
    Invalid(FieldErrors),
    #[error("this access is {}; it can no longer be extended", .0.label())]
    NotRenewable(GrantState),
    #[error("the request has not become access yet; more time can be asked for once it is ready")]
    NoGrant,
    #[error("a request for more time is already waiting for the approvers")]
    AlreadyWaiting,
    #[error("this request for more time is {}; it can no longer be decided", .0.label())]
    NotPending(ExtensionState),
    #[error(
        "you have already decided on this request for more time; another approval must come from a different approver"
    )]
    AlreadyDecided,
    #[error("you cannot decide on more time for access you hold yourself")]
    OwnAccess,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// The assignments' expiry for an end date: the end of its last day, as provisioning sets
/// it.
pub(crate) fn expiration_of(end_date: &str) -> String {
    format!("{end_date}T23:59:59.000Z")
}

fn invalid(field: &str, message: impl Into<String>) -> ExtensionError {
    let mut errors = FieldErrors::default();
    errors.add(field, message);
    ExtensionError::Invalid(errors)
}

fn validate(
    input: &ExtensionInput,
    current_end: &str,
    today: NaiveDate,
    max_end_days: i64,
) -> Result<(NaiveDate, String), FieldErrors> {
    let mut errors = FieldErrors::default();
    let date = errors.check(
        "new_end_date",
        fields::end_date(&input.new_end_date, today, max_end_days).and_then(|date| {
            match NaiveDate::parse_from_str(current_end, "%Y-%m-%d") {
                Ok(current) if date <= current => Err(format!(
                    "The new end date must be after the current end date ({current})."
                )),
                _ => Ok(date),
            }
        }),
    );
    let reason = errors.check(
        "reason",
        if input.reason.trim().is_empty() {
            Err("Say why the access is needed for longer.".to_string())
        } else {
            fields::paragraph(&input.reason, "reason", 3, 1000)
        },
    );
    match (date, reason) {
        (Some(date), Some(reason)) if errors.is_empty() => Ok((date, reason)),
        _ => Err(errors),
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ExtensionRow {
    pub id: String,
    pub grant_id: String,
    pub request_id: String,
    pub state: String,
    pub current_end_date: String,
    pub new_end_date: String,
    pub reason: String,
    pub approvals_required: i64,
    pub created_at: i64,
    pub applied_at: Option<i64>,
    pub apply_error: Option<String>,
}

impl ExtensionRow {
    pub fn extension_state(&self) -> ExtensionState {
        // Only written from ExtensionState::as_str; an unknown one is treated as decided.
        ExtensionState::parse(&self.state).unwrap_or(ExtensionState::Refused)
    }
}

pub(crate) const EXTENSION_COLUMNS: &str = "id, grant_id, request_id, state, current_end_date, \
     new_end_date, reason, approvals_required, created_at, applied_at, apply_error";

async fn extension_in(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    kind: DatabaseKind,
    id: &str,
) -> Result<Option<ExtensionRow>, sqlx::Error> {
    let lock = match kind {
        DatabaseKind::Postgres => " FOR UPDATE",
        DatabaseKind::Sqlite => "",
    };
    sqlx::query_as::<_, ExtensionRow>(&format!(
        "SELECT {EXTENSION_COLUMNS} FROM extension_requests WHERE id = $1{lock}"
    ))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await
}

/// Whether `approver` is the person the access is for.
fn is_own_access(approver: &SignedInUser, grant: &GrantRow) -> bool {
    let contact = grant.contact_email.trim().to_ascii_lowercase();
    [&approver.username, &approver.email]
        .iter()
        .any(|name| name.trim().to_ascii_lowercase() == contact)
}

fn outcome_mail(grant: &GrantRow, subject: String, body: String) -> Mail {
    Mail {
        to: grant.contact_email.clone(),
        subject,
        body,
    }
}

impl Portal {
    /// The contractor behind status link `token` asks for more time; returns the
    /// extension's id (it waits for approvers).
    pub async fn ask_for_more_time(
        &self,
        token: &str,
        input: ExtensionInput,
        actor: &Actor,
    ) -> Result<String, ExtensionError> {
        let Some((request_id, _)) = self.request_of_status_token(token).await? else {
            return Err(ExtensionError::NotFound);
        };
        let max_end_days = self.max_end_days().await?;
        let today = self.clock().today();
        let mut tx = self.db.begin_write().await?;
        let grant_id: Option<String> =
            sqlx::query_scalar("SELECT id FROM grants WHERE request_id = $1")
                .bind(&request_id)
                .fetch_optional(&mut *tx.tx)
                .await?;
        let Some(grant_id) = grant_id else {
            return Err(ExtensionError::NoGrant);
        };
        let Some(grant) = grant_in(&mut tx.tx, self.db.kind(), &grant_id).await? else {
            return Err(ExtensionError::NoGrant);
        };
        let state = grant.grant_state().ok_or(ExtensionError::NoGrant)?;
        if !grant.renewable() {
            return Err(ExtensionError::NotRenewable(state));
        }
        let (new_end, reason) = validate(&input, &grant.end_date, today, max_end_days)
            .map_err(ExtensionError::Invalid)?;
        let waiting: Option<String> = sqlx::query_scalar(
            "SELECT id FROM extension_requests WHERE grant_id = $1 AND state = $2",
        )
        .bind(&grant.id)
        .bind(ExtensionState::Pending.as_str())
        .fetch_optional(&mut *tx.tx)
        .await?;
        if waiting.is_some() {
            return Err(ExtensionError::AlreadyWaiting);
        }
        let id = uuid::Uuid::now_v7().to_string();
        let required = grant.approvals_for_extension();
        let now = self.clock().now_ms();
        let inserted = sqlx::query(
            "INSERT INTO extension_requests (id, grant_id, request_id, state, current_end_date, \
             new_end_date, reason, approvals_required, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&id)
        .bind(&grant.id)
        .bind(&grant.request_id)
        .bind(ExtensionState::Pending.as_str())
        .bind(&grant.end_date)
        .bind(new_end.to_string())
        .bind(&reason)
        .bind(required)
        .bind(now)
        .execute(&mut *tx.tx)
        .await;
        match inserted {
            Ok(_) => {}
            // The one-pending index: another submission won the race.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(ExtensionError::AlreadyWaiting);
            }
            Err(e) => return Err(e.into()),
        }
        history(
            &mut tx.tx,
            now,
            &grant.request_id,
            "extension_requested",
            &format!(
                "You asked for more time: access until {new_end} instead of {}. Waiting for the approvers.",
                grant.end_date
            ),
            true,
        )
        .await?;
        audit::record(
            &mut tx.tx,
            actor,
            AuditAction::GrantExtensionRequested,
            Target::Grant,
            &grant.id,
            json!({
                "extension_id": id,
                "request_id": grant.request_id,
                "company": grant.company,
                "current_end_date": grant.end_date,
                "new_end_date": new_end.to_string(),
                "reason": reason,
                "approvals_required": required,
            }),
        )
        .await?;
        for to in crate::roles::approver_emails(&mut tx.tx).await? {
            self.mail
                .queue(
                    &mut tx.tx,
                    &Mail {
                        to,
                        subject: format!("{} asks for more time", grant.company),
                        body: format!(
                            "Hello,\n\n{} asks for API access until {new_end} instead of {}.\n\n\
                             Their reason:\n\n    {}\n\nDecide in the review queue:\n\n    {}/admin/extensions/{id}\n",
                            grant.company,
                            grant.end_date,
                            reason.replace('\n', "\n    "),
                            self.settings.public_url
                        ),
                    },
                )
                .await?;
        }
        tx.commit().await?;
        self.mail.wake();
        Ok(id)
    }

    /// The checks a decision on an extension starts with: it exists, this approver has not
    /// decided it, it is pending, the grant can still be extended, and it is not the
    /// approver's own access.
    async fn begin_extension_decision(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        id: &str,
        approver: &SignedInUser,
        approver_name: &str,
    ) -> Result<(ExtensionRow, GrantRow), ExtensionError> {
        let extension = extension_in(tx, self.db.kind(), id)
            .await?
            .ok_or(ExtensionError::NotFound)?;
        let decided: Option<String> = sqlx::query_scalar(
            "SELECT id FROM extension_decisions WHERE extension_id = $1 AND approver = $2",
        )
        .bind(id)
        .bind(approver_name)
        .fetch_optional(&mut **tx)
        .await?;
        if decided.is_some() {
            return Err(ExtensionError::AlreadyDecided);
        }
        let state = extension.extension_state();
        if state != ExtensionState::Pending {
            return Err(ExtensionError::NotPending(state));
        }
        let grant = grant_in(tx, self.db.kind(), &extension.grant_id)
            .await?
            .ok_or(ExtensionError::NotFound)?;
        if !grant.renewable() {
            return Err(ExtensionError::NotRenewable(
                grant.grant_state().unwrap_or(GrantState::Cancelled),
            ));
        }
        if is_own_access(approver, &grant) {
            return Err(ExtensionError::OwnAccess);
        }
        Ok((extension, grant))
    }

    async fn record_extension_decision(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        id: &str,
        approver_name: &str,
        decision: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), ExtensionError> {
        let inserted = sqlx::query(
            "INSERT INTO extension_decisions (id, extension_id, approver, decision, reason, at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(id)
        .bind(approver_name)
        .bind(decision)
        .bind(reason)
        .bind(now)
        .execute(&mut **tx)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(ExtensionError::AlreadyDecided)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Approves an extension (or records one of the approvals it needs); the final
    /// approval then applies it (see the module's documentation).
    pub async fn approve_extension(
        &self,
        id: &str,
        approver: &SignedInUser,
        reason_text: &str,
        actor: &Actor,
    ) -> Result<ExtensionOutcome, ExtensionError> {
        let approver_name = approver_name(approver)?;
        let reason = checked_reason(reason_text)?;
        let mut tx = self.db.begin_write().await?;
        let (extension, grant) = self
            .begin_extension_decision(&mut tx.tx, id, approver, &approver_name)
            .await?;
        let earlier: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM extension_decisions WHERE extension_id = $1 AND decision = 'approved'",
        )
        .bind(id)
        .fetch_one(&mut *tx.tx)
        .await?;
        let now = self.clock().now_ms();
        Self::record_extension_decision(&mut tx.tx, id, &approver_name, "approved", &reason, now)
            .await?;
        let approvals = earlier + 1;
        let required = extension.approvals_required;
        let details = json!({
            "extension_id": id,
            "request_id": grant.request_id,
            "approver": approver_name,
            "reason": reason,
            "current_end_date": extension.current_end_date,
            "new_end_date": extension.new_end_date,
            "approvals": approvals,
            "required": required,
            "widened": false,
        });
        let who = crate::decisions::approver_display(approver, &approver_name);
        if approvals < required {
            history(
                &mut tx.tx,
                now,
                &grant.request_id,
                "extension_decision",
                &format!(
                    "More time until {} approved by {who} ({approvals} of {required} approvals): {reason}",
                    extension.new_end_date
                ),
                false,
            )
            .await?;
            audit::record(
                &mut tx.tx,
                actor,
                AuditAction::GrantExtensionApprovalRecorded,
                Target::Grant,
                &grant.id,
                details,
            )
            .await?;
            tx.commit().await?;
            return Ok(ExtensionOutcome::Recorded {
                approvals,
                required,
            });
        }
        settle(&mut tx.tx, id, ExtensionState::Approved, now).await?;
        history(
            &mut tx.tx,
            now,
            &grant.request_id,
            "extension_decision",
            &format!(
                "More time until {} approved by {who}: {reason}",
                extension.new_end_date
            ),
            false,
        )
        .await?;
        audit::record(
            &mut tx.tx,
            actor,
            AuditAction::GrantExtensionApproved,
            Target::Grant,
            &grant.id,
            details,
        )
        .await?;
        tx.commit().await?;
        let applied = self.apply_extension(id).await?;
        Ok(ExtensionOutcome::Approved { applied })
    }

    /// Refuses an extension: access ends on the old date. The reason goes to the
    /// contractor.
    pub async fn refuse_extension(
        &self,
        id: &str,
        approver: &SignedInUser,
        reason_text: &str,
        actor: &Actor,
    ) -> Result<ExtensionOutcome, ExtensionError> {
        let approver_name = approver_name(approver)?;
        let reason = checked_reason(reason_text)?;
        let org = self.org_name().await;
        let mut tx = self.db.begin_write().await?;
        let (extension, grant) = self
            .begin_extension_decision(&mut tx.tx, id, approver, &approver_name)
            .await?;
        let now = self.clock().now_ms();
        Self::record_extension_decision(&mut tx.tx, id, &approver_name, "refused", &reason, now)
            .await?;
        settle(&mut tx.tx, id, ExtensionState::Refused, now).await?;
        history(
            &mut tx.tx,
            now,
            &grant.request_id,
            "extension_refused",
            &format!(
                "More time was not approved: access ends on {} as before. Reason: {reason}",
                extension.current_end_date
            ),
            true,
        )
        .await?;
        audit::record(
            &mut tx.tx,
            actor,
            AuditAction::GrantExtensionRefused,
            Target::Grant,
            &grant.id,
            json!({
                "extension_id": id,
                "request_id": grant.request_id,
                "approver": approver_name,
                "reason": reason,
                "current_end_date": extension.current_end_date,
                "new_end_date": extension.new_end_date,
            }),
        )
        .await?;
        self.mail
            .queue(
                &mut tx.tx,
                &outcome_mail(
                    &grant,
                    format!("{}'s request for more time was not approved", grant.company),
                    format!(
                        "Hello,\n\n{}'s approvers did not approve {}'s request for API access until {}.\n\n\
                         Their reason:\n\n    {}\n\nAccess ends on {} as before.\n",
                        org,
                        grant.company,
                        extension.new_end_date,
                        reason.replace('\n', "\n    "),
                        extension.current_end_date
                    ),
                ),
            )
            .await?;
        tx.commit().await?;
        self.mail.wake();
        Ok(ExtensionOutcome::Refused)
    }

    /// Applies approved extensions Salesforce has not taken yet (the renewal job's
    /// retry); returns how many were applied now.
    pub async fn apply_approved_extensions(&self) -> Result<usize, sqlx::Error> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM extension_requests WHERE state = $1 AND applied_at IS NULL ORDER BY created_at",
        )
        .bind(ExtensionState::Approved.as_str())
        .fetch_all(self.db.pool())
        .await?;
        let mut applied = 0;
        for id in ids {
            if self.apply_extension(&id).await? {
                applied += 1;
            }
        }
        Ok(applied)
    }

    /// Sets an approved extension's date on the assignments in Salesforce, then on the
    /// grant; whether it is applied now (false: not approved, applied before, or
    /// Salesforce refused — the error is kept on the extension).
    pub async fn apply_extension(&self, id: &str) -> Result<bool, sqlx::Error> {
        let Some(extension) = sqlx::query_as::<_, ExtensionRow>(&format!(
            "SELECT {EXTENSION_COLUMNS} FROM extension_requests WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?
        else {
            return Ok(false);
        };
        if extension.extension_state() != ExtensionState::Approved || extension.applied_at.is_some()
        {
            return Ok(false);
        }
        let grant = self.grant_of_request_row(&extension.request_id).await?;
        let Some(grant) = grant.filter(|g| g.id == extension.grant_id) else {
            return Ok(false);
        };
        if !grant.renewable() {
            let state = grant.grant_state().map_or("gone", GrantState::label);
            self.extension_not_applied(
                &extension,
                &format!("The access is {state}; the new end date was not set."),
            )
            .await?;
            return Ok(false);
        }
        let assignments = match self.assignments_of(&grant.id).await? {
            Ok(ids) => ids,
            Err(problem) => {
                self.extension_not_applied(&extension, &problem).await?;
                return Ok(false);
            }
        };
        let expires = expiration_of(&extension.new_end_date);
        for assignment in &assignments {
            if let Err(e) = self
                .salesforce
                .update(
                    "PermissionSetAssignment",
                    assignment,
                    &json!({ "ExpirationDate": expires }),
                )
                .await
            {
                tracing::warn!(extension = %id, error = %e, "Salesforce did not take the new end date");
                self.extension_not_applied(
                    &extension,
                    &format!("Salesforce did not take the new ExpirationDate: {e}"),
                )
                .await?;
                return Ok(false);
            }
        }

        let org = self.org_name().await;
        let mut tx = self.db.begin_write().await?;
        let now = self.clock().now_ms();
        let marked = sqlx::query(
            "UPDATE extension_requests SET applied_at = $1, apply_error = NULL \
             WHERE id = $2 AND state = $3 AND applied_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .bind(ExtensionState::Approved.as_str())
        .execute(&mut *tx.tx)
        .await?;
        if marked.rows_affected() != 1 {
            // Another instance applied it in the meantime (to the same date).
            return Ok(false);
        }
        sqlx::query("UPDATE grants SET end_date = $1, updated_at = $2 WHERE id = $3")
            .bind(&extension.new_end_date)
            .bind(now)
            .bind(&grant.id)
            .execute(&mut *tx.tx)
            .await?;
        history(
            &mut tx.tx,
            now,
            &grant.request_id,
            "extended",
            &format!(
                "More time approved: access now ends on {} (instead of {}). Your credential stays the same.",
                extension.new_end_date, extension.current_end_date
            ),
            true,
        )
        .await?;
        audit::record(
            &mut tx.tx,
            &Actor::system(),
            AuditAction::GrantExtended,
            Target::Grant,
            &grant.id,
            json!({
                "extension_id": id,
                "request_id": grant.request_id,
                "old_end_date": extension.current_end_date,
                "new_end_date": extension.new_end_date,
                "expiration_date": expires,
                "assignments": assignments.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
            }),
        )
        .await?;
        self.mail
            .queue(
                &mut tx.tx,
                &outcome_mail(
                    &grant,
                    format!(
                        "{}'s access now ends on {}",
                        grant.company, extension.new_end_date
                    ),
                    format!(
                        "Hello,\n\n{}'s approvers approved {}'s request for more time. API access \
                         now ends at the end of {} (UTC) instead of {}.\n\n\
                         Nothing changes otherwise: the same credential keeps working, with the \
                         same access.\n",
                        org, grant.company, extension.new_end_date, extension.current_end_date
                    ),
                ),
            )
            .await?;
        tx.commit().await?;
        self.mail.wake();
        Ok(true)
    }

    /// Keeps why an approved extension could not be applied (audited when it changes).
    async fn extension_not_applied(
        &self,
        extension: &ExtensionRow,
        problem: &str,
    ) -> Result<(), sqlx::Error> {
        if extension.apply_error.as_deref() == Some(problem) {
            return Ok(());
        }
        let mut tx = self.db.begin_write().await?;
        sqlx::query(
            "UPDATE extension_requests SET apply_error = $1 WHERE id = $2 AND applied_at IS NULL",
        )
        .bind(problem)
        .bind(&extension.id)
        .execute(&mut *tx.tx)
        .await?;
        audit::record(
            &mut tx.tx,
            &Actor::system(),
            AuditAction::GrantExtensionApplyFailed,
            Target::Grant,
            &extension.grant_id,
            json!({
                "extension_id": extension.id,
                "new_end_date": extension.new_end_date,
                "error": problem,
            }),
        )
        .await?;
        tx.commit().await
    }

    /// The ids of the grant's two permission set assignments (the permission set's and the
    /// app permission set's), from its assignment step; or what is missing.
    async fn assignments_of(
        &self,
        grant_id: &str,
    ) -> Result<Result<Vec<salesforce::SalesforceId>, String>, sqlx::Error> {
        let output: Option<Option<String>> = sqlx::query_scalar(
            "SELECT output FROM provisioning_steps WHERE grant_id = $1 AND step = $2 AND state = $3",
        )
        .bind(grant_id)
        .bind(shared::StepName::Assignment.as_str())
        .bind(shared::StepState::Succeeded.as_str())
        .fetch_optional(self.db.pool())
        .await?;
        let made: Option<AssignmentMade> = output
            .flatten()
            .and_then(|raw| serde_json::from_str(&raw).ok());
        let Some(made) = made else {
            return Ok(Err(
                "The grant's permission set assignments are not recorded.".to_string(),
            ));
        };
        let ids = [made.assignment_id, made.app_assignment_id]
            .iter()
            .map(|id| salesforce::SalesforceId::parse(id).map_err(|_| id.clone()))
            .collect::<Result<Vec<_>, _>>();
        Ok(ids.map_err(|bad| format!("'{bad}' is not a recorded assignment id.")))
    }
}

fn approver_name(approver: &SignedInUser) -> Result<String, ExtensionError> {
    crate::decisions::approver_key(approver).map_err(|e| match e {
        crate::decisions::DecisionError::Invalid(errors) => ExtensionError::Invalid(errors),
        other => invalid("approver", other.to_string()),
    })
}

fn checked_reason(raw: &str) -> Result<String, ExtensionError> {
    crate::decisions::reason(raw).map_err(|message| invalid("reason", message))
}

/// Settles a pending extension as `state` (approved or refused), only if it is still
/// pending: another approver who settled it first (two at once) wins, and this one is told.
async fn settle(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: &str,
    state: ExtensionState,
    now: i64,
) -> Result<(), ExtensionError> {
    let updated = sqlx::query(
        "UPDATE extension_requests SET state = $1, decided_at = $2 WHERE id = $3 AND state = $4",
    )
    .bind(state.as_str())
    .bind(now)
    .bind(id)
    .bind(ExtensionState::Pending.as_str())
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() != 1 {
        let now_state: Option<String> =
            sqlx::query_scalar("SELECT state FROM extension_requests WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?;
        let now_state = now_state
            .and_then(|s| ExtensionState::parse(&s).ok())
            .unwrap_or(state);
        return Err(ExtensionError::NotPending(now_state));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(date: &str, reason: &str) -> ExtensionInput {
        ExtensionInput {
            new_end_date: date.into(),
            reason: reason.into(),
        }
    }

    #[test]
    fn the_new_date_is_after_the_current_one_and_within_the_maximum() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let ok = validate(
            &input("2027-01-10", "The project runs on."),
            "2026-12-20",
            today,
            365,
        );
        assert_eq!(ok.unwrap().0.to_string(), "2027-01-10");

        let same =
            validate(&input("2026-12-20", "More work."), "2026-12-20", today, 365).unwrap_err();
        assert!(
            same.message_for("new_end_date")
                .unwrap()
                .contains("after the current end date (2026-12-20)"),
            "{same:?}"
        );
        let too_far =
            validate(&input("2028-01-01", "More work."), "2026-12-20", today, 365).unwrap_err();
        assert!(
            too_far
                .message_for("new_end_date")
                .unwrap()
                .contains("at most 365 days"),
            "{too_far:?}"
        );
        let not_a_date =
            validate(&input("soon", "More work."), "2026-12-20", today, 365).unwrap_err();
        assert!(
            not_a_date
                .message_for("new_end_date")
                .unwrap()
                .contains("not a date")
        );
    }

    #[test]
    fn a_reason_is_required() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let errors = validate(&input("2027-01-10", "  "), "2026-12-20", today, 365).unwrap_err();
        assert_eq!(
            errors.message_for("reason").as_deref(),
            Some("Say why the access is needed for longer.")
        );
        assert!(errors.message_for("new_end_date").is_none());
    }
}
