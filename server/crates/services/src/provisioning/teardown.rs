//! The end of access (issue 17): a grant that is revoked by an approver or owner, or that
//! passed its end date, is torn down.
//!
//! Starting a teardown is one transaction: the grant becomes `revoking` (or `expiring`), who
//! asked and why are recorded on it and in the audit log, the contractor is mailed (a
//! revoke) and the workers are woken. The teardown itself is the undo machinery's third
//! direction ([`super::engine`]): each step that ever started is undone newest first under
//! a lease, durable and idempotent; the first undone is the last step's, which cuts the
//! credential off (the app's tokens revoked, the user frozen) before anything else; the
//! last is the user's, which deactivates it (freeing its Integration licence) and then
//! tries the contractor's credential once more, recording that it is refused. When every
//! started step is undone, the grant is `revoked` (or `expired`).

use salesforce::Client;
use secrecy::SecretString;
use serde_json::{Value, json};
use shared::grant::{GrantState, StepState};
use sqlx::{Any, Transaction};

use super::context::Context;
use super::{Step, StepFailure, undo};
use crate::audit::{self, Actor, AuditAction, Target};
use crate::clock::Clock;
use crate::db::Database;
use crate::mail::{Mail, Mailer};

/// The longest reason for revoking that is kept (characters).
pub const MAX_REASON_CHARS: usize = 1_000;

/// How a grant's access ended (`grants.end_kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndKind {
    /// An approver or owner revoked it.
    Revoked,
    /// It passed its end date.
    Expired,
}

impl EndKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "revoked" => Some(Self::Revoked),
            "expired" => Some(Self::Expired),
            _ => None,
        }
    }

    /// The grant's state while it is torn down.
    pub fn ending(self) -> GrantState {
        match self {
            Self::Revoked => GrantState::Revoking,
            Self::Expired => GrantState::Expiring,
        }
    }

    /// The grant's state once it is torn down.
    pub fn ended(self) -> GrantState {
        match self {
            Self::Revoked => GrantState::Revoked,
            Self::Expired => GrantState::Expired,
        }
    }
}

/// Why a revoke was refused.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error("There is no grant {0}.")]
    NotFound(String),
    #[error(
        "This grant is {}: only a ready, active or suspended grant can be revoked.",
        .0.label()
    )]
    NotRevocable(GrantState),
    /// The reason is missing or too long; the message names the field.
    #[error("{0}")]
    Reason(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl RevokeError {
    /// The form field a [`RevokeError::Reason`] belongs to.
    pub const REASON_FIELD: &'static str = "reason";
}

/// What a revoke did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokeOutcome {
    pub grant_id: String,
    /// `revoking`: workers are taking the access away.
    pub state: GrantState,
    /// How many provisioning steps the teardown undoes.
    pub steps_to_undo: i64,
}

/// The reason, trimmed, or the error naming the field.
pub fn check_reason(reason: &str) -> Result<String, RevokeError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(RevokeError::Reason(
            "Reason for revoking: say why access is revoked (the contractor is told).".into(),
        ));
    }
    let chars = reason.chars().count();
    if chars > MAX_REASON_CHARS {
        return Err(RevokeError::Reason(format!(
            "Reason for revoking: at most {MAX_REASON_CHARS} characters ({chars} given)."
        )));
    }
    Ok(reason.to_string())
}

#[derive(sqlx::FromRow)]
struct GrantRow {
    state: String,
    request_id: String,
    contact_email: String,
    company: String,
    end_kind: Option<String>,
}

/// An approver's or owner's revoke of a ready, active or suspended grant (also a revoke of
/// one whose teardown stopped and needs attention, which carries on). The caller checks the
/// role. Call [`Mailer::wake`] and wake the workers after it (the `Portal` method does).
pub async fn revoke(
    db: &Database,
    mail: &Mailer,
    grant_id: &str,
    actor: &Actor,
    reason: &str,
    clock: &dyn Clock,
) -> Result<RevokeOutcome, RevokeError> {
    let reason = check_reason(reason)?;
    let now = clock.now_ms();
    let mut tx = db.begin_write().await?;
    let grant = sqlx::query_as::<_, GrantRow>(
        "SELECT state, request_id, contact_email, company, end_kind FROM grants WHERE id = $1",
    )
    .bind(grant_id)
    .fetch_optional(&mut *tx.tx)
    .await?
    .ok_or_else(|| RevokeError::NotFound(grant_id.to_string()))?;
    let state =
        GrantState::parse(&grant.state).map_err(|_| RevokeError::NotFound(grant_id.to_string()))?;
    let stopped_teardown = state == GrantState::NeedsAttention && grant.end_kind.is_some();
    if !state.is_revocable() && !stopped_teardown {
        return Err(RevokeError::NotRevocable(state));
    }
    let Some(steps) = start(
        &mut tx.tx,
        grant_id,
        AsRead {
            state,
            end_date: None,
        },
        EndKind::Revoked,
        &actor.name,
        &reason,
        now,
    )
    .await?
    else {
        // Moved by someone else since it was read: say what it is now.
        let now_state: Option<String> =
            sqlx::query_scalar("SELECT state FROM grants WHERE id = $1")
                .bind(grant_id)
                .fetch_optional(&mut *tx.tx)
                .await?;
        let now_state = now_state
            .and_then(|s| GrantState::parse(&s).ok())
            .unwrap_or(state);
        return Err(RevokeError::NotRevocable(now_state));
    };
    audit::record(
        &mut tx.tx,
        actor,
        AuditAction::GrantRevokeRequested,
        Target::Grant,
        grant_id,
        json!({ "reason": reason, "was": state.as_str(), "steps_to_undo": steps }),
    )
    .await?;
    crate::requests::add_event(
        &mut tx.tx,
        now,
        &grant.request_id,
        "revoked",
        &format!("Access revoked: {reason}"),
        true,
    )
    .await?;
    mail.queue(
        &mut tx.tx,
        &Mail {
            to: grant.contact_email.clone(),
            subject: "Your Salesforce API access was revoked".into(),
            body: format!(
                "Hello,\n\nThe Salesforce API access granted to {company} was revoked by an \
                 approver, effective now. The credential you were given no longer works.\n\n\
                 The reason given:\n\n{reason}\n\nIf you still need access, submit a new \
                 request.\n",
                company = grant.company,
            ),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(RevokeOutcome {
        grant_id: grant_id.to_string(),
        state: GrantState::Revoking,
        steps_to_undo: steps,
    })
}

/// The grant as the caller read it: its teardown starts only if it is still so.
struct AsRead<'a> {
    state: GrantState,
    /// An expiry's end date (an extension approved meanwhile moved it); None for a revoke.
    end_date: Option<&'a str>,
}

/// Moves grant `grant_id` to `kind`'s ending state with who and why, and makes every started
/// step that is not undone yet due now. How many steps are left to undo.
async fn start(
    tx: &mut Transaction<'static, Any>,
    grant_id: &str,
    from: AsRead<'_>,
    kind: EndKind,
    by: &str,
    reason: &str,
    now: i64,
) -> Result<Option<i64>, sqlx::Error> {
    // Only from the state the caller read: another instance (or a revoke and an expiry at
    // once) that moved the grant first wins, and this one does nothing. An expiry also
    // only from the end date it read: an extension approved meanwhile moved it.
    let mut sql = String::from(
        "UPDATE grants SET state = $1, attention = NULL, end_kind = $2, end_reason = $3, \
             ended_by = $4, end_requested_at = COALESCE(end_requested_at, $5), updated_at = $5 \
         WHERE id = $6 AND state = $7",
    );
    if from.end_date.is_some() {
        sql.push_str(" AND end_date = $8");
    }
    let mut update = sqlx::query(&sql)
        .bind(kind.ending().as_str())
        .bind(kind.as_str())
        .bind(reason)
        .bind(by)
        .bind(now)
        .bind(grant_id)
        .bind(from.state.as_str());
    if let Some(end_date) = from.end_date {
        update = update.bind(end_date);
    }
    let moved = update.execute(&mut **tx).await?;
    if moved.rows_affected() != 1 {
        return Ok(None);
    }
    sqlx::query(
        "UPDATE provisioning_steps SET next_attempt_at = $1, updated_at = $1 \
         WHERE grant_id = $2 AND started_at IS NOT NULL AND state <> $3",
    )
    .bind(now)
    .bind(grant_id)
    .bind(StepState::Undone.as_str())
    .execute(&mut **tx)
    .await?;
    let left = undo::steps_left_to_undo(tx, grant_id).await?;
    Ok(Some(left))
}

/// Whether grant `grant_id`'s access began to end (a revoke or an expiry started its
/// teardown): such a grant is neither retried nor cancelled, only revoked again.
pub(super) async fn is_ending(
    tx: &mut Transaction<'static, Any>,
    grant_id: &str,
) -> Result<bool, sqlx::Error> {
    let kind: Option<Option<String>> =
        sqlx::query_scalar("SELECT end_kind FROM grants WHERE id = $1")
            .bind(grant_id)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(kind.flatten().is_some())
}

/// The first instant a grant ending on `end_date` (`YYYY-MM-DD`) has no access: its
/// assignment's `ExpirationDate` is that day's 23:59:59 UTC, so the next second.
pub fn access_ends_at_ms(end_date: &str) -> Option<i64> {
    let day = chrono::NaiveDate::parse_from_str(end_date, "%Y-%m-%d").ok()?;
    let end = day.and_hms_opt(23, 59, 59)?.and_utc().timestamp_millis();
    Some(end + 1_000)
}

#[derive(sqlx::FromRow)]
struct LiveGrant {
    id: String,
    state: String,
    end_date: String,
    request_id: String,
}

/// Starts the teardown of every ready, active or suspended grant past its end date (read
/// from `clock`): each becomes `expiring`, audited (`grant.expiry_started`). The ids of the
/// grants it started.
pub async fn expire_due(db: &Database, clock: &dyn Clock) -> Result<Vec<String>, sqlx::Error> {
    let now = clock.now_ms();
    let live = sqlx::query_as::<_, LiveGrant>(
        "SELECT id, state, end_date, request_id FROM grants WHERE state IN ($1, $2, $3) ORDER BY id",
    )
    .bind(GrantState::Ready.as_str())
    .bind(GrantState::Active.as_str())
    .bind(GrantState::Suspended.as_str())
    .fetch_all(db.pool())
    .await?;
    let mut started = Vec::new();
    for grant in live {
        let Some(ends) = access_ends_at_ms(&grant.end_date) else {
            tracing::warn!(grant = %grant.id, end_date = %grant.end_date, "a grant's end date is not a date");
            continue;
        };
        if now < ends {
            continue;
        }
        let Ok(from) = GrantState::parse(&grant.state) else {
            continue;
        };
        let mut tx = db.begin_write().await?;
        let reason = format!("the end date {} passed", grant.end_date);
        // None: live no more (another instance, or a revoke, moved it meanwhile), or an
        // extension moved its end date.
        let Some(steps) = start(
            &mut tx.tx,
            &grant.id,
            AsRead {
                state: from,
                end_date: Some(&grant.end_date),
            },
            EndKind::Expired,
            "system",
            &reason,
            now,
        )
        .await?
        else {
            tx.commit().await?;
            continue;
        };
        audit::record(
            &mut tx.tx,
            &Actor::system(),
            AuditAction::GrantExpiryStarted,
            Target::Grant,
            &grant.id,
            json!({ "end_date": grant.end_date, "was": grant.state, "steps_to_undo": steps }),
        )
        .await?;
        crate::requests::add_event(
            &mut tx.tx,
            now,
            &grant.request_id,
            "expired",
            &format!(
                "Access ended: the end date {} passed. It is being taken away.",
                grant.end_date
            ),
            true,
        )
        .await?;
        tx.commit().await?;
        started.push(grant.id);
    }
    Ok(started)
}

/// Undoes one step of a teardown; what it removed, gave back or checked, as evidence.
/// The last step's undo (the first a teardown leases) cuts the credential off; the user's
/// (the last) deactivates it and checks the credential once more; the rest are the cancel's.
pub(super) async fn run(client: &Client, step: Step, cx: &Context) -> Result<Value, StepFailure> {
    match step {
        Step::Restrict => cut_off(client, cx).await,
        Step::User => {
            let mut evidence = undo::run(client, step, cx).await?;
            evidence["credential_check"] = final_check(client, cx).await?;
            Ok(evidence)
        }
        Step::App => {
            let mut evidence = undo::run(client, step, cx).await?;
            if let Some(second) = remove_rotation_app(client, cx).await? {
                evidence["rotation_app"] = second;
            }
            Ok(evidence)
        }
        _ => undo::run(client, step, cx).await,
    }
}

/// During a rotation by a second app both apps work: the teardown deletes the second one
/// with the grant's (after the grant's own app), then ends the rotation. A rotation of
/// staged credentials needs nothing more (they go with the app) and is ended too.
async fn remove_rotation_app(client: &Client, cx: &Context) -> Result<Option<Value>, StepFailure> {
    let database = |e: sqlx::Error| StepFailure {
        message: format!("the portal's database: {e}"),
        transient: true,
    };
    let mut removed = None;
    if let Some(second) = &cx.rotation_app {
        let mut app = cx.app();
        app.names.app = second.name.clone();
        let (deleted, salesforce::metadata::DeployId(id)) =
            crate::eca::delete(client, &app, &cx.deploy_poll).await?;
        removed = Some(json!({ "app": second.name, "deleted": deleted, "deploy_id": id.as_str() }));
    }
    let ended = crate::eca::end_open_rotations(
        &cx.saver.db,
        &cx.grant_id,
        "the grant's access ended (revoked or expired) during the rotation; its apps were removed",
        cx.clock.now_ms(),
    )
    .await
    .map_err(database)?;
    if let Some(removed) = &mut removed {
        removed["rotations_ended"] = json!(ended);
    }
    Ok(removed)
}

/// The consumer the grant's credential belongs to: (app id, consumer id, consumer key).
fn consumer(cx: &Context) -> Option<(String, String, String)> {
    let made = cx.outputs.consumer()?;
    [&made.app_id, &made.consumer_id, &made.consumer_key]
        .iter()
        .all(|v| !v.is_empty())
        .then(|| {
            (
                made.app_id.clone(),
                made.consumer_id.clone(),
                made.consumer_key.clone(),
            )
        })
}

/// Cuts the credential off before anything else is undone: the app's tokens for the
/// integration user are revoked and the user is frozen (no new token), then the credential
/// itself (the consumer key and secret, as the contractor would) is tried once: it must be
/// refused, or the step is tried again.
async fn cut_off(client: &Client, cx: &Context) -> Result<Value, StepFailure> {
    let Some(user) = undo::user_id(client, cx).await? else {
        return Ok(json!({ "nothing": true, "why": "no integration user was made" }));
    };
    let consumer = consumer(cx);
    let mut evidence = json!({ "integration_user": user.as_str() });
    if let Some((app_id, _, _)) = &consumer {
        match client.revoke_user_app_tokens(app_id, user.as_str()).await {
            Ok(()) => evidence["tokens_revoked"] = json!(true),
            // The app (or the user's tokens) already gone: nothing to revoke.
            Err(e) if e.status() == Some(404) => evidence["tokens_revoked"] = json!("none"),
            Err(e) => return Err(e.into()),
        }
    }
    super::user::set_frozen(client, &user, true).await?;
    evidence["user_frozen"] = json!(true);
    evidence["credential_check"] = match &consumer {
        Some((app_id, consumer_id, key)) => match secret(client, cx, app_id, consumer_id).await? {
            Some(secret) => check_credential(client, key, &secret).await?,
            None => json!({
                "checked": false,
                "why": "the portal cannot read the app's secret (the org's credentials API returns none and the sealed copy is gone); the check after the teardown tries the consumer key",
            }),
        },
        None => json!({ "checked": false, "why": "no consumer was recorded" }),
    };
    // A rotation's second app, during the overlap: its pair is cut off too.
    if let Some(second) = &cx.rotation_app
        && let (Some(app_id), Some(consumer_id), Some(key)) =
            (&second.app_id, &second.consumer_id, &second.consumer_key)
    {
        let revoked = match client.revoke_user_app_tokens(app_id, user.as_str()).await {
            Ok(()) => json!(true),
            Err(e) if e.status() == Some(404) => json!("none"),
            Err(e) => return Err(e.into()),
        };
        let check = match secret(client, cx, app_id, consumer_id).await? {
            Some(secret) => check_credential(client, key, &secret).await?,
            None => {
                json!({ "checked": false, "why": "the portal cannot read the second app's secret" })
            }
        };
        evidence["rotation_app"] = json!({
            "app": second.name,
            "tokens_revoked": revoked,
            "credential_check": check,
        });
    }
    Ok(evidence)
}

/// The app's secret, to try the credential as the contractor would: read from the org, or
/// the sealed copy where the org's credentials API returns none. Held in memory only.
pub(super) async fn secret(
    client: &Client,
    cx: &Context,
    app_id: &str,
    consumer_id: &str,
) -> Result<Option<SecretString>, StepFailure> {
    use salesforce::connect::CredentialPart;
    match client
        .consumer_credential(app_id, consumer_id, CredentialPart::Secret)
        .await
    {
        Ok(credential) => Ok(credential.secret),
        Err(e) if salesforce::connect::is_secret_access_disabled(&e) => {
            let Some(vault) = cx.vault.as_ref() else {
                return Ok(None);
            };
            let sealed: Option<String> =
                sqlx::query_scalar("SELECT sealed FROM sealed_secrets WHERE grant_id = $1")
                    .bind(&cx.grant_id)
                    .fetch_optional(cx.saver.db.pool())
                    .await
                    .map_err(|e| StepFailure {
                        message: format!("the portal's database: {e}"),
                        transient: true,
                    })?;
            Ok(sealed.and_then(|sealed| vault.open(&cx.grant_id, &sealed).ok()))
        }
        // The app is gone already (a teardown that crashed after deleting it).
        Err(e) if e.status() == Some(404) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// One client-credentials token exchange with `key` and `secret`: refused is the evidence;
/// a token means the credential still works, and the step is tried again.
async fn check_credential(
    client: &Client,
    key: &str,
    secret: &SecretString,
) -> Result<Value, StepFailure> {
    let answer = salesforce::oauth_web::OAuthEndpoints::new(client.http().clone())
        .client_credentials_token(client.instance_url(), key, secret)
        .await;
    match answer {
        Ok(_) => Err(StepFailure {
            message: "the contractor's credential still obtained a token after its tokens were revoked and its user frozen".into(),
            transient: true,
        }),
        Err(e) if e.is_transient() => Err(e.into()),
        Err(e) => Ok(json!({
            "checked": true,
            "refused": true,
            "error": e.error_code().unwrap_or_default(),
            "status": e.status(),
        })),
    }
}

/// After the teardown (the app deleted, the user deactivated): the consumer key is tried
/// once more. Salesforce knows no app with it, so no secret can obtain a token with it.
async fn final_check(client: &Client, cx: &Context) -> Result<Value, StepFailure> {
    let Some((_, _, key)) = consumer(cx) else {
        return Ok(json!({ "checked": false, "why": "no consumer was recorded" }));
    };
    // Not the app's secret (that is gone with the app): the answer must refuse the key.
    let probe = crate::vault::new_secret();
    check_credential(client, &key, &probe).await
}

/// What a teardown step's success adds to the log: the cut-off's credential check
/// (`grant.credential_dead`, when the credential was tried and refused).
pub(super) async fn recorded(
    tx: &mut Transaction<'static, Any>,
    grant_id: &str,
    step: Step,
    evidence: Option<&Value>,
) -> Result<(), sqlx::Error> {
    let Some(check) = evidence.map(|e| &e["credential_check"]) else {
        return Ok(());
    };
    if check["refused"] != json!(true) {
        return Ok(());
    }
    let when = match step {
        Step::Restrict => "after the cut-off (tokens revoked, user frozen)",
        _ => "after the teardown (app deleted, user deactivated)",
    };
    audit::record(
        tx,
        &Actor::system(),
        AuditAction::GrantCredentialDead,
        Target::Grant,
        grant_id,
        json!({ "step": step.as_str(), "when": when, "check": check }),
    )
    .await?;
    Ok(())
}

/// Once every started step is undone, the grant is revoked (or expired), audited.
pub(super) async fn ended_if_undone(
    tx: &mut Transaction<'static, Any>,
    grant_id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let left = undo::steps_left_to_undo(tx, grant_id).await?;
    if left > 0 {
        return Ok(());
    }
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT state, request_id FROM grants WHERE id = $1")
            .bind(grant_id)
            .fetch_optional(&mut **tx)
            .await?;
    let Some((state, request_id)) = row else {
        return Ok(());
    };
    let kind = match GrantState::parse(&state) {
        Ok(GrantState::Revoking) => EndKind::Revoked,
        Ok(GrantState::Expiring) => EndKind::Expired,
        _ => return Ok(()),
    };
    let done = sqlx::query(
        "UPDATE grants SET state = $1, end_kind = $2, access_ended_at = $3, updated_at = $3 \
         WHERE id = $4 AND state = $5",
    )
    .bind(kind.ended().as_str())
    .bind(kind.as_str())
    .bind(now)
    .bind(grant_id)
    .bind(state.as_str())
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(());
    }
    let action = match kind {
        EndKind::Revoked => AuditAction::GrantRevoked,
        EndKind::Expired => AuditAction::GrantExpired,
    };
    audit::record(
        tx,
        &Actor::system(),
        action,
        Target::Grant,
        grant_id,
        json!({ "torn_down": true }),
    )
    .await?;
    // A secret the portal chose and sealed (orgs whose credentials API returns none)
    // belonged to the deleted app: nothing is kept of it.
    let sealed = sqlx::query("DELETE FROM sealed_secrets WHERE grant_id = $1")
        .bind(grant_id)
        .execute(&mut **tx)
        .await?;
    if sealed.rows_affected() > 0 {
        audit::record(
            tx,
            &Actor::system(),
            AuditAction::SecretSealedDestroyed,
            Target::Grant,
            grant_id,
            json!({ "reason": "the grant's access ended" }),
        )
        .await?;
    }
    crate::requests::add_event(
        tx,
        now,
        &request_id,
        kind.as_str(),
        "Access ended: the integration user is deactivated and the app is deleted. The credential no longer works.",
        true,
    )
    .await?;
    Ok(())
}

impl crate::Portal {
    /// An approver or owner revokes grant `grant_id` ([`revoke`]): it becomes `revoking`,
    /// the contractor is mailed, and the workers are woken to tear it down (the credential
    /// is cut off first). The caller checks the role (approver or owner).
    pub async fn revoke_access(
        &self,
        grant_id: &str,
        actor: &Actor,
        reason: &str,
    ) -> Result<RevokeOutcome, RevokeError> {
        let outcome = revoke(
            &self.db,
            &self.mail,
            grant_id,
            actor,
            reason,
            self.clock.as_ref(),
        )
        .await?;
        self.mail.wake();
        self.wake_provisioning();
        Ok(outcome)
    }

    /// Starts the teardown of every live grant past its end date ([`expire_due`]); their
    /// ids. Wakes the workers when there are any.
    pub async fn expire_ended_grants(&self) -> Result<Vec<String>, sqlx::Error> {
        let started = expire_due(&self.db, self.clock.as_ref()).await?;
        if !started.is_empty() {
            self.wake_provisioning();
        }
        Ok(started)
    }

    /// How grant `grant_id`'s access ended, if it began to end ([`access_end`]).
    pub async fn access_end(
        &self,
        grant_id: &str,
    ) -> Result<Option<crate::ending::EndRecord>, sqlx::Error> {
        crate::ending::end_record(&self.db, crate::ending::Of::Grant(grant_id)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_required_and_bounded() {
        assert_eq!(
            check_reason("  left the company \n").unwrap(),
            "left the company"
        );
        let empty = check_reason("   ").unwrap_err().to_string();
        assert!(empty.starts_with("Reason for revoking"), "{empty}");
        let long = check_reason(&"x".repeat(MAX_REASON_CHARS + 1))
            .unwrap_err()
            .to_string();
        assert!(long.contains("at most 1000"), "{long}");
    }

    #[test]
    fn access_ends_the_second_after_the_end_date() {
        let ends = access_ends_at_ms("2026-12-31").unwrap();
        assert_eq!(crate::clock::rfc3339(ends - 1_000), "2026-12-31T23:59:59Z");
        assert_eq!(access_ends_at_ms("31/12/2026"), None);
    }
}
