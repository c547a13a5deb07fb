//! Anomaly rules on the usage files the collector reads: a high share of 4xx answers,
//! calls touching an object outside the grant, calls from outside the approved IP ranges,
//! and volume far above the grant's own baseline ([`rules`]), judged per user and hour
//! from the windows [`crate::usage::windows`] keeps.
//!
//! Each finding raises `usage.anomaly` once per grant, kind and window: the row in
//! `usage_anomalies` (its key is the three) is written with the audit entry, the approvers'
//! mail and the signed webhook in one transaction, so two runs or two instances never raise
//! it twice. The action is the grant's (`grants.anomaly_action`) or the `ANOMALY_ACTION`
//! setting's: `alert`, or `freeze` — the grant is suspended in the same transaction and
//! [`super::budgets`]' freeze machinery freezes its integration user and revokes its app's
//! tokens. Calls from outside the approved IP ranges always freeze: the ranges are a
//! restriction Salesforce does not enforce for a client-credentials token (see
//! `budgets::Alerts::evaluate`), and this rule is how the portal enforces them.

pub mod rules;

use salesforce::SalesforceId;
use serde_json::{Value, json};
use shared::grant::{GrantState, StepName, StepState};
use shared::scope::Scope;

use super::budgets::{Alerts, Evaluation, HOUR_MS, hour_start};
use super::windows::ValueKind;
use crate::audit::{self, Actor, AuditAction, Target};
use crate::clock::rfc3339;
use crate::db::Database;
pub use rules::{Finding, Kind};

/// Windows judged: those of the last 30 days (the collector's look-back).
const JUDGED_DAYS: i64 = 30;

/// What an anomaly does besides alerting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AnomalyAction {
    /// Mail, webhook and audit entry only.
    #[default]
    Alert,
    /// Also suspend the grant and freeze its integration user.
    Freeze,
}

impl AnomalyAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyAction::Alert => "alert",
            AnomalyAction::Freeze => "freeze",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "alert" => Ok(AnomalyAction::Alert),
            "freeze" => Ok(AnomalyAction::Freeze),
            other => Err(format!("'{other}' is not alert or freeze")),
        }
    }
}

/// One anomaly raised now.
#[derive(Debug, Clone, PartialEq)]
pub struct Raised {
    pub grant_id: String,
    pub kind: Kind,
    pub window_start: i64,
    pub figures: Value,
    pub action: AnomalyAction,
}

#[derive(sqlx::FromRow)]
struct GrantRow {
    id: String,
    request_id: String,
    company: String,
    state: String,
    scope: String,
    ip_ranges: String,
    anomaly_action: Option<String>,
    output: Option<String>,
    setup_at: Option<i64>,
}

/// A grant the rules judge.
struct Judged {
    id: String,
    request_id: String,
    company: String,
    state: GrantState,
    user_id: SalesforceId,
    action: AnomalyAction,
    facts: rules::GrantFacts,
}

/// Ready and active grants whose integration user exists, with what the rules need.
async fn judged(db: &Database, default: AnomalyAction) -> Result<Vec<Judged>, sqlx::Error> {
    let rows = sqlx::query_as::<_, GrantRow>(
        "SELECT g.id, g.request_id, g.company, g.state, g.scope, g.ip_ranges, g.anomaly_action, u.output, \
         (SELECT MAX(s.finished_at) FROM provisioning_steps s WHERE s.grant_id = g.id AND s.state = $2) AS setup_at \
         FROM grants g JOIN provisioning_steps u ON u.grant_id = g.id AND u.step = $1 AND u.state = $2 \
         WHERE g.state IN ($3, $4) ORDER BY g.id",
    )
    .bind(StepName::User.as_str())
    .bind(StepState::Succeeded.as_str())
    .bind(GrantState::Ready.as_str())
    .bind(GrantState::Active.as_str())
    .fetch_all(db.pool())
    .await?;
    let mut grants = Vec::with_capacity(rows.len());
    for row in rows {
        let user_id = row
            .output
            .and_then(|o| serde_json::from_str::<Value>(&o).ok())
            .and_then(|o| o["user_id"].as_str().map(str::to_string))
            .and_then(|id| SalesforceId::parse(&id).ok());
        let (Some(user_id), Ok(state)) = (user_id, GrantState::parse(&row.state)) else {
            continue;
        };
        let objects = serde_json::from_str::<Scope>(&row.scope)
            .map(|s| s.objects.into_iter().map(|o| o.object).collect())
            .unwrap_or_default();
        let ranges: Vec<String> = serde_json::from_str(&row.ip_ranges).unwrap_or_default();
        let ranges = ranges
            .iter()
            .filter_map(|r| shared::fields::Cidr::parse(r).ok())
            .collect();
        let action = row
            .anomaly_action
            .as_deref()
            .and_then(|a| AnomalyAction::parse(a).ok())
            .unwrap_or(default);
        grants.push(Judged {
            id: row.id,
            request_id: row.request_id,
            company: row.company,
            state,
            user_id,
            action,
            facts: rules::GrantFacts {
                objects,
                ranges,
                setup_at: row.setup_at.unwrap_or(0),
            },
        });
    }
    Ok(grants)
}

#[derive(sqlx::FromRow)]
struct WindowRow {
    hour_start: i64,
    calls: i64,
    client_errors: i64,
}

#[derive(sqlx::FromRow)]
struct ValueRow {
    hour_start: i64,
    kind: String,
    value: String,
    calls: i64,
    last_at: i64,
}

/// `user_key`'s windows with hours from `from`, in hour order.
async fn windows(
    db: &Database,
    user_key: &str,
    from: i64,
) -> Result<Vec<rules::Window>, sqlx::Error> {
    let rows = sqlx::query_as::<_, WindowRow>(
        "SELECT hour_start, CAST(SUM(calls) AS BIGINT) AS calls, CAST(SUM(client_errors) AS BIGINT) AS client_errors \
         FROM usage_windows_effective WHERE user_key = $1 AND hour_start >= $2 GROUP BY hour_start ORDER BY hour_start",
    )
    .bind(user_key)
    .bind(from)
    .fetch_all(db.pool())
    .await?;
    let mut windows: Vec<rules::Window> = rows
        .into_iter()
        .map(|r| rules::Window {
            hour_start: r.hour_start,
            calls: r.calls.max(0) as u64,
            client_errors: r.client_errors.max(0) as u64,
            values: Vec::new(),
        })
        .collect();
    let values = sqlx::query_as::<_, ValueRow>(
        "SELECT hour_start, kind, value, calls, last_at FROM usage_window_values_effective \
         WHERE user_key = $1 AND hour_start >= $2 ORDER BY hour_start, kind, value",
    )
    .bind(user_key)
    .bind(from)
    .fetch_all(db.pool())
    .await?;
    for row in values {
        let Some(kind) = ValueKind::parse(&row.kind) else {
            continue;
        };
        if let Ok(i) = windows.binary_search_by_key(&row.hour_start, |w| w.hour_start) {
            windows[i]
                .values
                .push((kind, row.value, row.calls.max(0) as u64, row.last_at));
        }
    }
    Ok(windows)
}

/// Judges every ready and active grant's recent windows at `now` and raises what is new.
/// Called by [`Alerts::evaluate`] before it applies the freezes.
pub async fn evaluate(
    alerts: &Alerts,
    db: &Database,
    now: i64,
    evaluation: &mut Evaluation,
) -> Result<(), sqlx::Error> {
    let judged_from = hour_start(now) - JUDGED_DAYS * 24 * HOUR_MS;
    for grant in judged(db, alerts.anomaly_action).await? {
        let from = judged_from - rules::BASELINE_HOURS * HOUR_MS;
        let windows = windows(db, grant.user_id.as_15(), from).await?;
        if windows.is_empty() {
            continue;
        }
        let raised: Vec<(String, i64)> = sqlx::query_as(
            "SELECT kind, window_start FROM usage_anomalies WHERE grant_id = $1 AND window_start >= $2",
        )
        .bind(&grant.id)
        .bind(judged_from)
        .fetch_all(db.pool())
        .await?;
        let new: Vec<Finding> = rules::judge(&grant.facts, &windows)
            .into_iter()
            .filter(|f| f.window_start >= judged_from)
            .filter(|f| {
                !raised
                    .iter()
                    .any(|(k, w)| k == f.kind.as_str() && *w == f.window_start)
            })
            .collect();
        if !new.is_empty() {
            raise(alerts, db, &grant, new, now, evaluation).await?;
        }
    }
    Ok(())
}

/// The action a finding takes for `grant`.
fn action_of(grant: &Judged, kind: Kind) -> AnomalyAction {
    match kind {
        Kind::OutsideIpRanges => AnomalyAction::Freeze,
        _ => grant.action,
    }
}

/// Raises `found` for `grant` in one transaction: each anomaly's row (a second raise of the
/// same grant, kind and window is skipped), its audit entry, a suspension when one of them
/// freezes, one mail to the approvers and one webhook delivery.
async fn raise(
    alerts: &Alerts,
    db: &Database,
    grant: &Judged,
    found: Vec<Finding>,
    now: i64,
    evaluation: &mut Evaluation,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let mut raised: Vec<(Finding, AnomalyAction)> = Vec::new();
    for finding in found {
        let action = action_of(grant, finding.kind);
        let details = json!({
            "summary": finding.summary,
            "figures": finding.figures,
        });
        let inserted = sqlx::query(
            "INSERT INTO usage_anomalies (grant_id, kind, window_start, details, action, raised_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (grant_id, kind, window_start) DO NOTHING",
        )
        .bind(&grant.id)
        .bind(finding.kind.as_str())
        .bind(finding.window_start)
        .bind(details.to_string())
        .bind(action.as_str())
        .bind(now)
        .execute(&mut *tx.tx)
        .await?;
        if inserted.rows_affected() == 0 {
            // Another instance raised it meanwhile.
            continue;
        }
        audit::record(
            &mut tx.tx,
            &Actor::system(),
            AuditAction::UsageAnomaly,
            Target::Grant,
            &grant.id,
            json!({
                "kind": finding.kind.as_str(),
                "window": rfc3339(finding.window_start),
                "window_end": rfc3339(finding.window_start + HOUR_MS),
                "figures": finding.figures,
                "summary": finding.summary,
                "action": action.as_str(),
                "company": grant.company,
                "integration_user": grant.user_id.as_str(),
            }),
        )
        .await?;
        raised.push((finding, action));
    }
    if raised.is_empty() {
        return Ok(());
    }
    let freeze = raised.iter().any(|(_, a)| *a == AnomalyAction::Freeze);
    let mut suspended = false;
    if freeze {
        suspended = suspend(&mut tx, grant, &raised, now).await?;
    }
    let (subject, body) = message(alerts, grant, &raised, freeze);
    crate::roles::mail_approvers(&alerts.mail, &mut tx.tx, &subject, &body).await?;
    if let Some(webhook) = &alerts.webhook {
        let event = AuditAction::UsageAnomaly.as_str();
        let payload = json!({
            "text": super::webhook::bullet_text(&subject, raised.iter().map(|(f, _)| line(f))),
            "event": event,
            "grant_id": grant.id,
            "request_id": grant.request_id,
            "company": grant.company,
            "anomalies": raised.iter().map(|(f, a)| json!({
                "kind": f.kind.as_str(),
                "window": rfc3339(f.window_start),
                "figures": f.figures,
                "action": a.as_str(),
            })).collect::<Vec<_>>(),
            "action": if freeze { "freeze" } else { "none" },
            "dashboard": format!("{}/admin/usage", alerts.public_url),
            "at": rfc3339(now),
        });
        webhook.queue(&mut tx.tx, event, &payload).await?;
    }
    tx.commit().await?;
    alerts.mail.wake();
    if let Some(webhook) = &alerts.webhook {
        webhook.wake();
    }
    if suspended {
        evaluation.suspended.push(grant.id.clone());
    }
    for (finding, action) in raised {
        tracing::warn!(grant = %grant.id, kind = finding.kind.as_str(), window = %rfc3339(finding.window_start), action = action.as_str(), "usage anomaly");
        evaluation.anomalies.push(Raised {
            grant_id: grant.id.clone(),
            kind: finding.kind,
            window_start: finding.window_start,
            figures: finding.figures,
            action,
        });
    }
    Ok(())
}

/// Suspends the grant (the freeze itself is applied by the budgets' `apply_freezes` right
/// after, as for a budget). Returns whether it was suspended now.
async fn suspend(
    tx: &mut crate::db::WriteTx,
    grant: &Judged,
    raised: &[(Finding, AnomalyAction)],
    now: i64,
) -> Result<bool, sqlx::Error> {
    let suspended = sqlx::query(
        "UPDATE grants SET suspended_from = state, state = $1, frozen_at = NULL, updated_at = $2 \
         WHERE id = $3 AND state IN ($4, $5)",
    )
    .bind(GrantState::Suspended.as_str())
    .bind(now)
    .bind(&grant.id)
    .bind(GrantState::Ready.as_str())
    .bind(GrantState::Active.as_str())
    .execute(&mut *tx.tx)
    .await?;
    if suspended.rows_affected() != 1 {
        return Ok(false);
    }
    let reasons: Vec<String> = raised
        .iter()
        .filter(|(_, a)| *a == AnomalyAction::Freeze)
        .map(|(f, _)| line(f))
        .collect();
    let reason = format!(
        "unusual API usage seen in Salesforce's usage files: {}",
        reasons.join("; ")
    );
    audit::record(
        &mut tx.tx,
        &Actor::system(),
        AuditAction::GrantSuspended,
        Target::Grant,
        &grant.id,
        json!({
            "reason": reason,
            "previous_state": grant.state,
            "integration_user": grant.user_id.as_str(),
            "anomalies": raised.iter().map(|(f, _)| f.kind.as_str()).collect::<Vec<_>>(),
        }),
    )
    .await?;
    crate::requests::add_event(
        &mut tx.tx,
        now,
        &grant.request_id,
        "suspended",
        &format!("API access suspended: {reason}. An approver can lift the suspension."),
        true,
    )
    .await?;
    Ok(true)
}

/// `kind, hour: summary`.
fn line(finding: &Finding) -> String {
    format!(
        "{} ({} to {} UTC): {}",
        finding.kind.label(),
        rfc3339(finding.window_start),
        crate::clock::to_datetime(finding.window_start + HOUR_MS).format("%H:%M"),
        finding.summary
    )
}

fn message(
    alerts: &Alerts,
    grant: &Judged,
    raised: &[(Finding, AnomalyAction)],
    freeze: bool,
) -> (String, String) {
    let subject = format!("Portcullis: unusual API usage by {}", grant.company);
    let lines: Vec<String> = raised
        .iter()
        .map(|(f, _)| format!("- {}", line(f)))
        .collect();
    let action = if freeze {
        "Portcullis has suspended the grant and is freezing its integration user in Salesforce: its calls are refused until an approver lifts the suspension on the usage page."
    } else {
        "Nothing has been stopped (this grant's anomalies only alert). Ask the contractor about it, or revoke the access from the request's page."
    };
    let body = super::budgets::alert_body(
        &grant.company,
        grant.user_id.as_str(),
        &lines,
        action,
        &alerts.public_url,
        &grant.request_id,
    );
    (subject, body)
}

#[derive(sqlx::FromRow)]
struct ListedRow {
    grant_id: String,
    request_id: String,
    company: String,
    kind: String,
    window_start: i64,
    details: String,
    action: String,
}

/// The newest anomalies (at most `limit`), newest window first, as the usage page lists
/// them.
pub async fn recent_views(
    db: &Database,
    limit: i64,
) -> Result<Vec<shared::usage::AnomalyView>, sqlx::Error> {
    let rows = sqlx::query_as::<_, ListedRow>(
        "SELECT a.grant_id, g.request_id, g.company, a.kind, a.window_start, a.details, a.action \
         FROM usage_anomalies a JOIN grants g ON g.id = a.grant_id \
         ORDER BY a.window_start DESC, a.raised_at DESC, a.grant_id, a.kind LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let details: Value = serde_json::from_str(&r.details).unwrap_or(Value::Null);
            shared::usage::AnomalyView {
                label: Kind::parse(&r.kind)
                    .map(Kind::label)
                    .unwrap_or("Unusual usage")
                    .to_string(),
                summary: details["summary"].as_str().unwrap_or_default().to_string(),
                window: rfc3339(r.window_start),
                grant_id: r.grant_id,
                request_id: r.request_id,
                company: r.company,
                kind: r.kind,
                action: r.action,
            }
        })
        .collect())
}

impl crate::Portal {
    /// Sets a grant's own anomaly action (None: the `ANOMALY_ACTION` setting's), audited
    /// as a settings change of the grant. Returns false when there is no such grant.
    pub async fn set_anomaly_action(
        &self,
        grant_id: &str,
        action: Option<AnomalyAction>,
        actor: &Actor,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.db.begin_write().await?;
        let updated = sqlx::query("UPDATE grants SET anomaly_action = $1 WHERE id = $2")
            .bind(action.map(AnomalyAction::as_str))
            .bind(grant_id)
            .execute(&mut *tx.tx)
            .await?;
        if updated.rows_affected() != 1 {
            return Ok(false);
        }
        audit::record(
            &mut tx.tx,
            actor,
            AuditAction::SettingsChanged,
            Target::Grant,
            grant_id,
            json!({
                "anomaly_action": action.map(AnomalyAction::as_str).unwrap_or("default"),
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}
