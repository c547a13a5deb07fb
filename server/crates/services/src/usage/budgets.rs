//! Budgets: each grant's calls per UTC day and per rolling 7 days, against the budget the
//! approver set. Crossing the warning percentage or the budget itself raises an alert at
//! most once per window (a UTC day; for the 7-day budget, once in any 7 days): an email to
//! the approvers, a signed webhook and an audit entry, all in one transaction with the
//! alert's record. With the hard action "freeze", the grant is suspended in the same
//! transaction and its integration user frozen in Salesforce (`UserLogin.IsFrozen`) right
//! after; a freeze the org refused is tried again on the next run. An approver lifts it
//! ([`lift`]): the user is unfrozen and the grant returns to the state it had.
//!
//! Calls are those the files say count against the org's limit; a composite request is one.

use salesforce::{Client, SalesforceId};
use serde_json::{Value, json};
use shared::budget::{Budget, HardAction};
use shared::grant::{GrantId, GrantState, StepName, StepState};

use super::webhook::Webhook;
use crate::Mailer;
use crate::audit::{self, Actor, AuditAction, Target};
use crate::clock::{Clock, rfc3339};
use crate::db::Database;

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// How severe a crossing is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The warning percentage of the budget.
    Warn,
    /// The whole budget.
    Hard,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Warn => "warn",
            Level::Hard => "hard",
        }
    }

    /// What the audit log (and the webhook's `event`) calls a crossing of this level.
    fn action(self) -> AuditAction {
        match self {
            Level::Warn => AuditAction::UsageLimitWarning,
            Level::Hard => AuditAction::UsageLimitExceeded,
        }
    }
}

/// Which budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Day,
    Week,
}

impl Window {
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Day => "day",
            Window::Week => "week",
        }
    }

    fn words(self) -> &'static str {
        match self {
            Window::Day => "today (UTC)",
            Window::Week => "in the last 7 days",
        }
    }

    fn per(self) -> &'static str {
        match self {
            Window::Day => "per day",
            Window::Week => "per 7 days",
        }
    }
}

/// The start of the UTC day of `ms`.
pub fn day_start(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS) * DAY_MS
}

/// The start of the hour of `ms`.
pub fn hour_start(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

/// The calls at which the warning is due: `percent` of `limit`, rounded up.
pub fn warn_at(limit: u64, percent: u8) -> u64 {
    (limit * u64::from(percent)).div_ceil(100).max(1)
}

/// The level `calls` reached against `limit`.
pub fn level_of(calls: u64, limit: u64, warn_percent: u8) -> Option<Level> {
    if calls >= limit {
        Some(Level::Hard)
    } else if calls >= warn_at(limit, warn_percent) {
        Some(Level::Warn)
    } else {
        None
    }
}

/// A grant whose integration user exists, with what its budget needs.
#[derive(Debug, Clone)]
pub struct Monitored {
    pub grant_id: String,
    pub request_id: String,
    pub company: String,
    pub contact_email: String,
    pub state: GrantState,
    pub budget: Budget,
    pub user_id: SalesforceId,
    pub frozen_at: Option<i64>,
}

impl Monitored {
    /// The 15-character id the usage files carry.
    pub fn user_key(&self) -> &str {
        self.user_id.as_15()
    }
}

#[derive(sqlx::FromRow)]
struct MonitoredRow {
    id: String,
    request_id: String,
    company: String,
    contact_email: String,
    state: String,
    budget: String,
    frozen_at: Option<i64>,
    output: Option<String>,
}

/// The integration user's id in the User step's output.
fn user_id(output: Option<String>) -> Option<SalesforceId> {
    output
        .and_then(|o| serde_json::from_str::<Value>(&o).ok())
        .and_then(|o| o["user_id"].as_str().map(str::to_string))
        .and_then(|id| SalesforceId::parse(&id).ok())
}

/// Grants being used or about to be (ready, active, suspended) and their integration users.
pub async fn monitored(db: &Database) -> Result<Vec<Monitored>, sqlx::Error> {
    let rows = sqlx::query_as::<_, MonitoredRow>(
        "SELECT g.id, g.request_id, g.company, g.contact_email, g.state, g.budget, g.frozen_at, s.output \
         FROM grants g JOIN provisioning_steps s ON s.grant_id = g.id AND s.step = $1 AND s.state = $2 \
         WHERE g.state IN ($3, $4, $5) ORDER BY g.company, g.id",
    )
    .bind(StepName::User.as_str())
    .bind(StepState::Succeeded.as_str())
    .bind(GrantState::Ready.as_str())
    .bind(GrantState::Active.as_str())
    .bind(GrantState::Suspended.as_str())
    .fetch_all(db.pool())
    .await?;
    let mut grants = Vec::with_capacity(rows.len());
    for row in rows {
        let user_id = user_id(row.output);
        let budget: Option<Budget> = serde_json::from_str(&row.budget).ok();
        let (Some(user_id), Some(budget)) = (user_id, budget) else {
            continue;
        };
        grants.push(Monitored {
            grant_id: row.id,
            request_id: row.request_id,
            company: row.company,
            contact_email: row.contact_email,
            state: GrantState::parse(&row.state).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            budget,
            user_id,
            frozen_at: row.frozen_at,
        });
    }
    Ok(grants)
}

/// Counted calls of `user_key` in hours starting in `[from, to)`.
pub async fn counted(
    db: &Database,
    user_key: &str,
    from: i64,
    to: i64,
) -> Result<u64, sqlx::Error> {
    let sum: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(SUM(counted) AS BIGINT) FROM usage_effective WHERE user_key = $1 AND hour_start >= $2 AND hour_start < $3",
    )
    .bind(user_key)
    .bind(from)
    .bind(to)
    .fetch_one(db.pool())
    .await?;
    Ok(sum.unwrap_or(0).max(0) as u64)
}

/// A grant's calls in its two budget windows at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub today: u64,
    pub last_7_days: u64,
}

pub async fn standing(db: &Database, user_key: &str, now: i64) -> Result<Standing, sqlx::Error> {
    let today = day_start(now);
    let next_hour = hour_start(now) + HOUR_MS;
    Ok(Standing {
        today: counted(db, user_key, today, today + DAY_MS).await?,
        last_7_days: counted(db, user_key, next_hour - 7 * DAY_MS, next_hour).await?,
    })
}

/// Where alerts go.
#[derive(Debug, Clone)]
pub struct Alerts {
    pub mail: Mailer,
    pub webhook: Option<Webhook>,
    /// The portal's base URL, for links in alerts.
    pub public_url: String,
    /// What an anomaly does for grants without their own action (`ANOMALY_ACTION`).
    pub anomaly_action: super::anomaly::AnomalyAction,
}

/// One alert sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raised {
    pub grant_id: String,
    pub window: Window,
    pub level: Level,
    pub calls: u64,
    pub limit: u64,
}

/// What checking the budgets did.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    /// Alerts sent (the most severe new crossing of each grant, per window).
    pub raised: Vec<Raised>,
    /// Grants suspended now.
    pub suspended: Vec<String>,
    /// Grants whose integration user was frozen now.
    pub frozen: Vec<String>,
    /// Freezes the org refused (grant, why); tried again next run.
    pub freeze_failures: Vec<(String, String)>,
    /// Anomalies raised now ([`super::anomaly`]).
    pub anomalies: Vec<super::anomaly::Raised>,
}

impl Alerts {
    /// Checks every monitored grant's budget at `now`, alerts on new crossings, suspends
    /// grants whose hard action is freeze, and applies the freezes still to be applied.
    pub async fn evaluate(
        &self,
        db: &Database,
        salesforce: &Client,
        now: i64,
    ) -> Result<Evaluation, sqlx::Error> {
        let mut evaluation = Evaluation::default();
        for grant in monitored(db).await? {
            if grant.state == GrantState::Suspended {
                continue;
            }
            let standing = standing(db, grant.user_key(), now).await?;
            self.check(db, &grant, standing, now, &mut evaluation)
                .await?;
        }
        // The anomaly rules, among them the approved IP ranges (an External Client App's
        // trusted IP ranges relax the web-server flow; they do not restrict a
        // client-credentials token — ExtlClntAppOauthSettings; "IP restrictions are
        // enforced only when they're configured on a user's profile" —, so a call from
        // outside them in the usage files suspends the grant and freezes its user here).
        super::anomaly::evaluate(self, db, now, &mut evaluation).await?;
        apply_freezes(db, salesforce, now, &mut evaluation).await?;
        Ok(evaluation)
    }

    async fn check(
        &self,
        db: &Database,
        grant: &Monitored,
        standing: Standing,
        now: i64,
        evaluation: &mut Evaluation,
    ) -> Result<(), sqlx::Error> {
        let budget = &grant.budget;
        let today = day_start(now);
        let windows = [
            (Window::Day, standing.today, budget.calls_per_day),
            (Window::Week, standing.last_7_days, budget.calls_per_7_days),
        ];
        if windows
            .iter()
            .all(|(_, calls, limit)| level_of(*calls, *limit, budget.warn_percent).is_none())
        {
            return Ok(());
        }
        let mut tx = db.begin_write().await?;
        // New crossings: (window, level, calls, limit), lower levels included so that a
        // warning is not sent after the budget's own alert.
        let mut new = Vec::new();
        for (window, calls, limit) in windows {
            let Some(reached) = level_of(calls, limit, budget.warn_percent) else {
                continue;
            };
            for level in [Level::Warn, Level::Hard] {
                if level > reached {
                    continue;
                }
                // A day's alert once per UTC day; a 7-day alert once in any 7 days.
                let since = match window {
                    Window::Day => today,
                    Window::Week => today - 6 * DAY_MS,
                };
                let earlier: Option<i64> = sqlx::query_scalar(
                    "SELECT 1 FROM usage_alerts WHERE grant_id = $1 AND budget_window = $2 AND level = $3 AND window_start >= $4 LIMIT 1",
                )
                .bind(&grant.grant_id)
                .bind(window.as_str())
                .bind(level.as_str())
                .bind(since)
                .fetch_optional(&mut *tx.tx)
                .await?;
                if earlier.is_some() {
                    continue;
                }
                sqlx::query(
                    "INSERT INTO usage_alerts (grant_id, budget_window, window_start, level, calls, limit_calls, raised_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&grant.grant_id)
                .bind(window.as_str())
                .bind(today)
                .bind(level.as_str())
                .bind(calls as i64)
                .bind(limit as i64)
                .bind(now)
                .execute(&mut *tx.tx)
                .await?;
                new.push(Raised {
                    grant_id: grant.grant_id.clone(),
                    window,
                    level,
                    calls,
                    limit,
                });
            }
        }
        let Some(top) = new.iter().map(|r| r.level).max() else {
            return Ok(());
        };
        // One message per grant and run, about its most severe new crossings.
        let notify: Vec<&Raised> = new.iter().filter(|r| r.level == top).collect();
        let freeze = top == Level::Hard && budget.hard_action == HardAction::Freeze;
        let system = Actor::system();
        for raised in &new {
            audit::record(
                &mut tx.tx,
                &system,
                raised.level.action(),
                Target::Grant,
                &grant.grant_id,
                json!({
                    "company": grant.company,
                    "budget": raised.window.as_str(),
                    "calls": raised.calls,
                    "limit": raised.limit,
                    "warn_percent": budget.warn_percent,
                    "integration_user": grant.user_id.as_str(),
                    "notified": raised.level == top,
                    "hard_action": budget.hard_action.as_str(),
                }),
            )
            .await?;
        }
        if freeze {
            let suspended = sqlx::query(
                "UPDATE grants SET suspended_from = state, state = $1, frozen_at = NULL, updated_at = $2 \
                 WHERE id = $3 AND state IN ($4, $5)",
            )
            .bind(GrantState::Suspended.as_str())
            .bind(now)
            .bind(&grant.grant_id)
            .bind(GrantState::Ready.as_str())
            .bind(GrantState::Active.as_str())
            .execute(&mut *tx.tx)
            .await?;
            if suspended.rows_affected() == 1 {
                let reason = notify
                    .iter()
                    .map(|r| format!("{} of {} calls {}", r.calls, r.limit, r.window.words()))
                    .collect::<Vec<_>>()
                    .join("; ");
                audit::record(
                    &mut tx.tx,
                    &system,
                    AuditAction::GrantSuspended,
                    Target::Grant,
                    &grant.grant_id,
                    json!({
                        "reason": format!("API budget used up: {reason}"),
                        "previous_state": grant.state,
                        "integration_user": grant.user_id.as_str(),
                    }),
                )
                .await?;
                crate::requests::add_event(
                    &mut tx.tx,
                    now,
                    &grant.request_id,
                    "suspended",
                    &format!(
                        "API access suspended: the budget was used up ({reason}). An approver can lift the suspension."
                    ),
                    true,
                )
                .await?;
                evaluation.suspended.push(grant.grant_id.clone());
            }
        }
        let (subject, body) = self.message(grant, &notify, freeze);
        crate::roles::mail_approvers(&self.mail, &mut tx.tx, &subject, &body).await?;
        if let Some(webhook) = &self.webhook {
            let payload = json!({
                // The subject carries the company name as the contractor typed it.
                "text": super::webhook::bullet_text(&subject, notify.iter().map(|r| line(r))),
                "event": top.action().as_str(),
                "grant_id": grant.grant_id,
                "request_id": grant.request_id,
                "company": grant.company,
                "level": top.as_str(),
                "budgets": notify.iter().map(|r| json!({
                    "window": r.window.as_str(), "calls": r.calls, "limit": r.limit,
                })).collect::<Vec<_>>(),
                "action": if freeze { "freeze" } else { "none" },
                "dashboard": format!("{}/admin/usage", self.public_url),
                "at": rfc3339(now),
            });
            webhook
                .queue(&mut tx.tx, top.action().as_str(), &payload)
                .await?;
        }
        tx.commit().await?;
        self.mail.wake();
        if let Some(webhook) = &self.webhook {
            webhook.wake();
        }
        tracing::info!(grant = %grant.grant_id, level = top.as_str(), freeze, "API budget alert");
        evaluation.raised.extend(notify.into_iter().cloned());
        Ok(())
    }

    fn message(&self, grant: &Monitored, notify: &[&Raised], freeze: bool) -> (String, String) {
        let hard = notify.iter().any(|r| r.level == Level::Hard);
        let subject = if hard {
            format!("Portcullis: {} has used up its API budget", grant.company)
        } else {
            format!(
                "Portcullis: {} has used {}% of its API budget",
                grant.company, grant.budget.warn_percent
            )
        };
        let lines: Vec<String> = notify.iter().map(|r| format!("- {}", line(r))).collect();
        let action = if freeze {
            "Portcullis has suspended the grant and frozen its integration user in Salesforce: its calls are refused until an approver lifts the suspension on the usage page."
        } else if hard {
            "No action was taken: this grant's budget only alerts."
        } else {
            "Nothing has been stopped. If the work needs more calls, raise the budget; otherwise ask the contractor why."
        };
        let body = alert_body(
            &grant.company,
            grant.user_id.as_str(),
            &lines,
            action,
            &self.public_url,
            &grant.request_id,
        );
        (subject, body)
    }
}

/// An alert mail's body (budgets and anomalies): who, what was seen, what was done, and
/// where to look.
pub(crate) fn alert_body(
    company: &str,
    user: &str,
    lines: &[String],
    action: &str,
    public_url: &str,
    request_id: &str,
) -> String {
    format!(
        "{company}'s integration user ({user}):\n{lines}\n\n{action}\n\nUsage: {public_url}/admin/usage\nThe request: {public_url}/admin/requests/{request_id}\n",
        lines = lines.join("\n"),
    )
}

fn line(r: &Raised) -> String {
    format!(
        "{} API calls {}, against a budget of {} {}",
        r.calls,
        r.window.words(),
        r.limit,
        r.window.per()
    )
}

pub use crate::provisioning::set_frozen;

/// Revokes the tokens the grant's app issued to its integration user. A grant with no app
/// id recorded (its consumer step has not succeeded, or was undone) has no app (nothing to
/// revoke).
async fn revoke_app_tokens(
    db: &Database,
    salesforce: &Client,
    grant: &Monitored,
) -> Result<(), String> {
    let app_id: Option<Option<String>> =
        sqlx::query_scalar("SELECT app_id FROM grants WHERE id = $1")
            .bind(&grant.grant_id)
            .fetch_optional(db.pool())
            .await
            .map_err(|e| e.to_string())?;
    let Some(app_id) = app_id.flatten() else {
        return Ok(());
    };
    salesforce
        .revoke_user_app_tokens(&app_id, grant.user_id.as_str())
        .await
        .map_err(|e| e.to_string())
}

/// Freezes the integration users of suspended grants that are not frozen yet.
pub(crate) async fn apply_freezes(
    db: &Database,
    salesforce: &Client,
    now: i64,
    evaluation: &mut Evaluation,
) -> Result<(), sqlx::Error> {
    for grant in monitored(db).await? {
        if grant.state != GrantState::Suspended || grant.frozen_at.is_some() {
            continue;
        }
        if let Err(e) = set_frozen(salesforce, &grant.user_id, true).await {
            tracing::warn!(grant = %grant.grant_id, error = %e, "could not freeze the integration user; will try again");
            evaluation
                .freeze_failures
                .push((grant.grant_id.clone(), e.to_string()));
            continue;
        }
        // Freezing stops new tokens; whether it ends the ones already issued is not
        // documented (UNCONFIRMED), so the app's tokens for the user are revoked too
        // (Connect REST, `DELETE /apps/oauth/usage/{app}/{user}/tokens`).
        if let Err(e) = revoke_app_tokens(db, salesforce, &grant).await {
            tracing::warn!(grant = %grant.grant_id, error = %e, "could not revoke the app's tokens of a frozen user; will try again");
            evaluation
                .freeze_failures
                .push((grant.grant_id.clone(), e.to_string()));
            continue;
        }
        let mut tx = db.begin_write().await?;
        let recorded = sqlx::query(
            "UPDATE grants SET frozen_at = $1, updated_at = $1 WHERE id = $2 AND state = $3 AND frozen_at IS NULL",
        )
        .bind(now)
        .bind(&grant.grant_id)
        .bind(GrantState::Suspended.as_str())
        .execute(&mut *tx.tx)
        .await?;
        if recorded.rows_affected() == 0 {
            // Lifted while the freeze was under way: undo it.
            tx.commit().await?;
            if let Err(e) = set_frozen(salesforce, &grant.user_id, false).await {
                tracing::warn!(grant = %grant.grant_id, error = %e, "a freeze crossed a lift and could not be undone");
            }
            continue;
        }
        audit::record(
            &mut tx.tx,
            &Actor::system(),
            AuditAction::GrantFrozen,
            Target::Grant,
            &grant.grant_id,
            json!({
                "integration_user": grant.user_id.as_str(),
                "company": grant.company,
            }),
        )
        .await?;
        tx.commit().await?;
        evaluation.frozen.push(grant.grant_id.clone());
    }
    Ok(())
}

/// Why a suspension could not be lifted.
#[derive(Debug, thiserror::Error)]
pub enum LiftError {
    #[error("There is no grant with this id.")]
    NotFound,
    #[error("This grant is not suspended (it is {0}).")]
    NotSuspended(String),
    #[error("Give a reason for lifting the suspension.")]
    NoReason,
    #[error("Salesforce refused to unfreeze the integration user: {0}")]
    Salesforce(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// An approver lifts a suspension: the integration user is unfrozen in Salesforce, then
/// the grant returns to the state it had, with the reason in the audit log. Until the next
/// window (the next UTC day, or 7 days for the weekly budget) the same budget does not
/// suspend it again.
pub async fn lift(
    db: &Database,
    salesforce: &Client,
    grant_id: &GrantId,
    actor: &Actor,
    reason: &str,
    clock: &dyn Clock,
) -> Result<(), LiftError> {
    let grant_id = grant_id.as_str();
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(LiftError::NoReason);
    }
    let grant = monitored(db)
        .await?
        .into_iter()
        .find(|g| g.grant_id == grant_id);
    let Some(grant) = grant else {
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM grants WHERE id = $1")
            .bind(grant_id)
            .fetch_optional(db.pool())
            .await?;
        return Err(match state {
            Some(state) => LiftError::NotSuspended(state),
            None => LiftError::NotFound,
        });
    };
    if grant.state != GrantState::Suspended {
        return Err(LiftError::NotSuspended(grant.state.to_string()));
    }
    set_frozen(salesforce, &grant.user_id, false)
        .await
        .map_err(|e| LiftError::Salesforce(e.to_string()))?;
    let mut tx = db.begin_write().await?;
    let restored: Option<String> = sqlx::query_scalar(
        "UPDATE grants SET state = COALESCE(suspended_from, $1), suspended_from = NULL, frozen_at = NULL, updated_at = $2 \
         WHERE id = $3 AND state = $4 RETURNING state",
    )
    .bind(GrantState::Active.as_str())
    .bind(clock.now_ms())
    .bind(grant_id)
    .bind(GrantState::Suspended.as_str())
    .fetch_optional(&mut *tx.tx)
    .await?;
    let Some(restored) = restored else {
        return Err(LiftError::NotSuspended("no longer suspended".into()));
    };
    audit::record(
        &mut tx.tx,
        actor,
        AuditAction::GrantUnfrozen,
        Target::Grant,
        grant_id,
        json!({
            "reason": reason.chars().take(1000).collect::<String>(),
            "state": restored,
            "integration_user": grant.user_id.as_str(),
        }),
    )
    .await?;
    crate::requests::add_event(
        &mut tx.tx,
        clock.now_ms(),
        &grant.request_id,
        "unsuspended",
        "API access restored by an approver.",
        true,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_the_budget() {
        assert_eq!(warn_at(100, 80), 80);
        assert_eq!(warn_at(7, 80), 6, "rounded up");
        assert_eq!(level_of(79, 100, 80), None);
        assert_eq!(level_of(80, 100, 80), Some(Level::Warn));
        assert_eq!(level_of(99, 100, 80), Some(Level::Warn));
        assert_eq!(level_of(100, 100, 80), Some(Level::Hard));
        assert_eq!(level_of(120, 100, 80), Some(Level::Hard));
        assert_eq!(level_of(0, 1, 99), None);
    }

    #[test]
    fn days_and_hours_start_in_utc() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-03-01T14:20:07Z")
            .unwrap()
            .timestamp_millis();
        assert_eq!(rfc3339(day_start(at)), "2026-03-01T00:00:00Z");
        assert_eq!(rfc3339(hour_start(at)), "2026-03-01T14:00:00Z");
    }
}
