//! The evidence pack of one grant: everything a reviewer needs to show how a contractor got
//! its access, in one JSON document — the request, the approvals, how the granted scope
//! differs from the requested one, the provisioning steps with the Salesforce ids they made,
//! the least-privilege proof, the credential's reveal receipt, and every audit entry about
//! the grant and its request with their hashes (so the pack can be checked against the log).
//!
//! Nothing secret is in it: no tokens, codes or credentials are stored where it reads from.

use crate::audit::anchor::{self, Anchorer};
use crate::audit::{COLUMNS, Entry};
use crate::clock::{Clock, rfc3339};
use crate::db::Database;
use serde_json::{Value, json};

/// The pack's format, for tools that read it.
pub const FORMAT: &str = "portcullis-evidence/1";

fn json_or_text(raw: Option<String>) -> Value {
    match raw {
        None => Value::Null,
        Some(raw) => serde_json::from_str(&raw).unwrap_or(Value::String(raw)),
    }
}

fn time(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |ms| Value::String(rfc3339(ms)))
}

#[derive(sqlx::FromRow)]
struct LinkRow {
    id: String,
    state: String,
    issued_by: String,
    created_at: i64,
    expires_at: i64,
    codes_sent: i64,
    code_attempts: i64,
    revealed_at: Option<i64>,
    revealed_ip: Option<String>,
    revealed_user_agent: Option<String>,
    disowned_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct GrantRow {
    request_id: String,
    state: String,
    company: String,
    contact_email: String,
    scope: String,
    budget: Option<String>,
    end_date: String,
    ip_ranges: Option<String>,
    created_at: i64,
    updated_at: i64,
    api_calls: i64,
    attention: Option<String>,
}

#[derive(sqlx::FromRow)]
struct RequestRow {
    state: String,
    company: String,
    contact_name: String,
    contact_email: String,
    justification: String,
    scope: String,
    calls_per_day: i64,
    ip_ranges: Option<String>,
    end_date: String,
    submitter_ip: String,
    created_at: i64,
    verified_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct DecisionRow {
    approver: String,
    decision: String,
    reason: String,
    scope: Option<String>,
    budget: Option<String>,
    end_date: Option<String>,
    ip_ranges: Option<String>,
    at: i64,
}

#[derive(sqlx::FromRow)]
struct StepRow {
    step: String,
    state: String,
    attempts: i64,
    last_error: Option<String>,
    output: Option<String>,
    started_at: Option<i64>,
    finished_at: Option<i64>,
}

/// The reveal receipt: each link issued for the grant, when and to whom it was revealed
/// (address and browser), and whether the contractor said it was not them.
pub async fn reveal_receipt(db: &Database, grant_id: &str) -> Result<Vec<Value>, sqlx::Error> {
    let rows = sqlx::query_as::<_, LinkRow>(
        "SELECT id, state, issued_by, created_at, expires_at, codes_sent, code_attempts, \
         revealed_at, revealed_ip, revealed_user_agent, disowned_at \
         FROM reveal_links WHERE grant_id = $1 ORDER BY created_at, id",
    )
    .bind(grant_id)
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            json!({
                "link_id": row.id,
                "state": row.state,
                "issued_by": row.issued_by,
                "issued_at": time(Some(row.created_at)),
                "expires_at": time(Some(row.expires_at)),
                "codes_sent": row.codes_sent,
                "wrong_codes": row.code_attempts,
                "revealed_at": time(row.revealed_at),
                "revealed_from_ip": row.revealed_ip,
                "revealed_user_agent": row.revealed_user_agent,
                "disowned_at": time(row.disowned_at),
            })
        })
        .collect())
}

/// Every audit entry about the grant or its request, oldest first.
async fn entries_about(
    db: &Database,
    grant_id: &str,
    request_id: &str,
) -> Result<Vec<Entry>, sqlx::Error> {
    sqlx::query_as::<_, Entry>(&format!(
        "SELECT {COLUMNS} FROM audit_log WHERE target_id = $1 OR target_id = $2 ORDER BY seq"
    ))
    .bind(grant_id)
    .bind(request_id)
    .fetch_all(db.pool())
    .await
}

/// The end of the grant's access, when it began to end: how (revoked or expired), why, by
/// whom and when; each teardown step's outcome with what it removed, gave back or checked
/// (from the audit log, where the teardown's evidence is kept); and the checks that the
/// contractor's credential was refused.
async fn teardown_of(
    db: &Database,
    grant_id: &str,
    entries: &[Entry],
) -> Result<Value, sqlx::Error> {
    use shared::audit::AuditAction;
    let Some(end) = crate::ending::end_record(db, crate::ending::Of::Grant(grant_id)).await? else {
        return Ok(Value::Null);
    };
    let of = |actions: &[AuditAction]| -> Vec<Value> {
        entries
            .iter()
            .filter(|e| e.target_id == grant_id)
            .filter(|e| actions.iter().any(|a| a.as_str() == e.action))
            .map(|e| {
                let details: Value = serde_json::from_str(&e.details).unwrap_or(Value::Null);
                json!({
                    "action": e.action,
                    "at": time(Some(e.at)),
                    "outcome": e.outcome,
                    "details": details,
                })
            })
            .collect()
    };
    Ok(json!({
        "how": end.kind,
        "reason": end.reason,
        "by": end.by,
        "requested_at": time(end.requested_at),
        "ended_at": time(end.ended_at),
        "steps": of(&[
            AuditAction::TeardownStepDone,
            AuditAction::TeardownStepRetry,
            AuditAction::TeardownStepFailed,
        ]),
        "credential_checks": of(&[AuditAction::GrantCredentialDead]),
    }))
}

/// The pack for `grant_id`, or `None` when there is no such grant. Its chain verification
/// includes what `anchorer`'s anchors say about the span.
pub async fn pack(
    db: &Database,
    anchorer: &Anchorer,
    grant_id: &str,
    clock: &dyn Clock,
) -> Result<Option<Value>, sqlx::Error> {
    let Some(grant) = sqlx::query_as::<_, GrantRow>(
        "SELECT id, request_id, state, company, contact_email, scope, budget, end_date, \
         ip_ranges, created_at, updated_at, api_calls, attention FROM grants WHERE id = $1",
    )
    .bind(grant_id)
    .fetch_optional(db.pool())
    .await?
    else {
        return Ok(None);
    };
    let request_id = grant.request_id;
    let granted_scope = grant.scope;
    let request = sqlx::query_as::<_, RequestRow>(
        "SELECT id, state, company, contact_name, contact_email, justification, scope, \
         calls_per_day, ip_ranges, end_date, submitter_ip, created_at, verified_at \
         FROM access_requests WHERE id = $1",
    )
    .bind(&request_id)
    .fetch_one(db.pool())
    .await?;
    let requested_scope = request.scope;

    let decisions = sqlx::query_as::<_, DecisionRow>(
        "SELECT approver, decision, reason, scope, budget, end_date, ip_ranges, at \
         FROM decisions WHERE request_id = $1 ORDER BY at, id",
    )
    .bind(&request_id)
    .fetch_all(db.pool())
    .await?;
    let approvals: Vec<Value> = decisions
        .into_iter()
        .map(|row| {
            json!({
                "approver": row.approver,
                "decision": row.decision,
                "reason": row.reason,
                "at": time(Some(row.at)),
                "scope": json_or_text(row.scope),
                "budget": json_or_text(row.budget),
                "end_date": row.end_date,
                "ip_ranges": json_or_text(row.ip_ranges),
            })
        })
        .collect();

    let steps = sqlx::query_as::<_, StepRow>(
        "SELECT step, state, attempts, last_error, output, started_at, finished_at \
         FROM provisioning_steps WHERE grant_id = $1 ORDER BY position",
    )
    .bind(grant_id)
    .fetch_all(db.pool())
    .await?;
    let mut proof = Value::Array(Vec::new());
    let mut provisioning = Vec::new();
    for row in steps {
        let step = row.step;
        let output = json_or_text(row.output);
        if step == shared::grant::StepName::Proof.as_str() {
            proof = output["checks"].clone();
        }
        let label = shared::grant::StepName::parse(&step)
            .ok()
            .map_or_else(|| step.clone(), |s| s.label().to_string());
        provisioning.push(json!({
            "step": step,
            "label": label,
            "state": row.state,
            "attempts": row.attempts,
            "started_at": time(row.started_at),
            "finished_at": time(row.finished_at),
            "last_error": row.last_error,
            "salesforce": output,
        }));
    }

    let entries = entries_about(db, grant_id, &request_id).await?;
    let teardown = teardown_of(db, grant_id, &entries).await?;
    // Whether the log is intact over the span these entries cover (from the first of them,
    // linked to the entry before it, to the last), and how far its anchors vouch for it.
    let chain = match (entries.first(), entries.last()) {
        (Some(first), Some(last)) => serde_json::to_value(
            anchor::verify_anchored(db, anchorer, Some(first.seq), Some(last.seq)).await?,
        )
        .unwrap_or_default(),
        _ => json!({ "status": "intact", "entries": 0, "last_seq": 0 }),
    };

    Ok(Some(json!({
        "format": FORMAT,
        "generated_at": rfc3339(clock.now_ms()),
        "grant": {
            "id": grant_id,
            "state": grant.state,
            "company": grant.company,
            "contact_email": grant.contact_email,
            "scope": json_or_text(Some(granted_scope.clone())),
            "budget": json_or_text(grant.budget),
            "end_date": grant.end_date,
            "ip_ranges": json_or_text(grant.ip_ranges),
            "created_at": time(Some(grant.created_at)),
            "updated_at": time(Some(grant.updated_at)),
            "provisioning_api_calls": grant.api_calls,
            "attention": grant.attention,
        },
        "request": {
            "id": request_id,
            "state": request.state,
            "company": request.company,
            "contact_name": request.contact_name,
            "contact_email": request.contact_email,
            "justification": request.justification,
            "scope": json_or_text(Some(requested_scope.clone())),
            "calls_per_day": request.calls_per_day,
            "ip_ranges": json_or_text(request.ip_ranges),
            "end_date": request.end_date,
            "submitted_from_ip": request.submitter_ip,
            "submitted_at": time(Some(request.created_at)),
            "email_verified_at": time(request.verified_at),
        },
        "approvals": approvals,
        "scope_diff": crate::decisions::scope_changes(
            &crate::decisions::parse_scope(&requested_scope),
            &crate::decisions::parse_scope(&granted_scope),
        ),
        "provisioning": provisioning,
        "proof": proof,
        "reveal_receipt": reveal_receipt(db, grant_id).await?,
        "teardown": teardown,
        "reviews": reviews_of(db, grant_id).await?,
        "audit": {
            "chain": chain,
            "entries": entries,
        },
    })))
}

/// The access reviews the grant was an item of, oldest first: the campaign, its due date
/// and default, and the decision (keep, narrow, revoke; by whom — "default" when the due
/// date decided —, when, why; a narrowing's approved scope and how far it got). The tables
/// are the reviews room's (`crate::reviews`, a layer above): read here by SQL only.
async fn reviews_of(db: &Database, grant_id: &str) -> Result<Vec<Value>, sqlx::Error> {
    type Row = (
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT c.id, c.name, c.due_date, c.default_decision, i.decision, i.decided_by, i.comment, \
             i.decided_at, i.narrow_state, i.narrow_scope \
         FROM review_items i JOIN review_campaigns c ON c.id = i.campaign_id \
         WHERE i.grant_id = $1 ORDER BY c.created_at, c.id",
    )
    .bind(grant_id)
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, name, due, default, decision, by, comment, at, narrow_state, narrow_scope)| {
                json!({
                    "campaign": id, "name": name, "due_date": due, "default": default,
                    "decision": decision, "decided_by": by, "comment": comment,
                    "decided_at": time(at), "narrow_state": narrow_state,
                    "narrowed_to": json_or_text(narrow_scope),
                })
            },
        )
        .collect())
}

impl crate::Portal {
    /// The evidence pack of grant `grant_id` ([`pack`]); None for an unknown grant.
    pub async fn evidence_pack(&self, grant_id: &str) -> Result<Option<Value>, sqlx::Error> {
        pack(&self.db, &self.audit_anchor, grant_id, self.clock.as_ref()).await
    }
}
