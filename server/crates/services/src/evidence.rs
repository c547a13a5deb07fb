//! The evidence pack of one grant: everything a reviewer needs to show how a contractor got
//! its access, in one JSON document — the request, the approvals, how the granted scope
//! differs from the requested one, the provisioning steps with the Salesforce ids they made,
//! the least-privilege proof, the credential's reveal receipt, and every audit entry about
//! the grant and its request with their hashes (so the pack can be checked against the log).
//!
//! Nothing secret is in it: no tokens, codes or credentials are stored where it reads from.

use serde_json::{Value, json};
use sqlx::Row;

use crate::audit::anchor::{self, Anchorer};
use crate::audit::{COLUMNS, Entry};
use crate::clock::{now_ms, rfc3339};
use crate::db::Database;

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

/// The reveal receipt: each link issued for the grant, when and to whom it was revealed
/// (address and browser), and whether the contractor said it was not them.
pub async fn reveal_receipt(db: &Database, grant_id: &str) -> Result<Vec<Value>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, state, issued_by, created_at, expires_at, codes_sent, code_attempts, \
         revealed_at, revealed_ip, revealed_user_agent, disowned_at \
         FROM reveal_links WHERE grant_id = $1 ORDER BY created_at, id",
    )
    .bind(grant_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(json!({
                "link_id": row.try_get::<String, _>("id")?,
                "state": row.try_get::<String, _>("state")?,
                "issued_by": row.try_get::<String, _>("issued_by")?,
                "issued_at": time(Some(row.try_get("created_at")?)),
                "expires_at": time(Some(row.try_get("expires_at")?)),
                "codes_sent": row.try_get::<i64, _>("codes_sent")?,
                "wrong_codes": row.try_get::<i64, _>("code_attempts")?,
                "revealed_at": time(row.try_get("revealed_at")?),
                "revealed_from_ip": row.try_get::<Option<String>, _>("revealed_ip")?,
                "revealed_user_agent": row.try_get::<Option<String>, _>("revealed_user_agent")?,
                "disowned_at": time(row.try_get("disowned_at")?),
            }))
        })
        .collect()
}

/// Every audit entry about the grant or its request, oldest first.
async fn entries_about(
    db: &Database,
    grant_id: &str,
    request_id: &str,
) -> Result<Vec<Entry>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM audit_log WHERE target_id = $1 OR target_id = $2 ORDER BY seq"
    ))
    .bind(grant_id)
    .bind(request_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(Entry::from_row).collect()
}

/// The pack for `grant_id`, or `None` when there is no such grant. Its chain verification
/// includes what `anchorer`'s anchors say about the span.
pub async fn pack(
    db: &Database,
    anchorer: &Anchorer,
    grant_id: &str,
) -> Result<Option<Value>, sqlx::Error> {
    let Some(grant) = sqlx::query(
        "SELECT id, request_id, state, company, contact_email, scope, budget, end_date, \
         ip_ranges, created_at, updated_at, api_calls, attention FROM grants WHERE id = $1",
    )
    .bind(grant_id)
    .fetch_optional(db.pool())
    .await?
    else {
        return Ok(None);
    };
    let request_id: String = grant.try_get("request_id")?;
    let granted_scope: String = grant.try_get("scope")?;
    let request = sqlx::query(
        "SELECT id, state, company, contact_name, contact_email, justification, scope, \
         calls_per_day, ip_ranges, end_date, submitter_ip, created_at, verified_at \
         FROM access_requests WHERE id = $1",
    )
    .bind(&request_id)
    .fetch_one(db.pool())
    .await?;
    let requested_scope: String = request.try_get("scope")?;

    let decisions = sqlx::query(
        "SELECT approver, decision, reason, scope, budget, end_date, ip_ranges, at \
         FROM decisions WHERE request_id = $1 ORDER BY at, id",
    )
    .bind(&request_id)
    .fetch_all(db.pool())
    .await?;
    let approvals = decisions
        .iter()
        .map(|row| {
            Ok(json!({
                "approver": row.try_get::<String, _>("approver")?,
                "decision": row.try_get::<String, _>("decision")?,
                "reason": row.try_get::<String, _>("reason")?,
                "at": time(Some(row.try_get("at")?)),
                "scope": json_or_text(row.try_get("scope")?),
                "budget": json_or_text(row.try_get("budget")?),
                "end_date": row.try_get::<Option<String>, _>("end_date")?,
                "ip_ranges": json_or_text(row.try_get("ip_ranges")?),
            }))
        })
        .collect::<Result<Vec<Value>, sqlx::Error>>()?;

    let steps = sqlx::query(
        "SELECT step, state, attempts, last_error, output, started_at, finished_at \
         FROM provisioning_steps WHERE grant_id = $1 ORDER BY position",
    )
    .bind(grant_id)
    .fetch_all(db.pool())
    .await?;
    let mut proof = Value::Array(Vec::new());
    let mut provisioning = Vec::new();
    for row in &steps {
        let step: String = row.try_get("step")?;
        let output = json_or_text(row.try_get("output")?);
        if step == shared::grant::StepName::Proof.as_str() {
            proof = output["checks"].clone();
        }
        let label = shared::grant::StepName::parse(&step)
            .ok()
            .map_or_else(|| step.clone(), |s| s.label().to_string());
        provisioning.push(json!({
            "step": step,
            "label": label,
            "state": row.try_get::<String, _>("state")?,
            "attempts": row.try_get::<i64, _>("attempts")?,
            "started_at": time(row.try_get("started_at")?),
            "finished_at": time(row.try_get("finished_at")?),
            "last_error": row.try_get::<Option<String>, _>("last_error")?,
            "salesforce": output,
        }));
    }

    let entries = entries_about(db, grant_id, &request_id).await?;
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
        "generated_at": rfc3339(now_ms()),
        "grant": {
            "id": grant_id,
            "state": grant.try_get::<String, _>("state")?,
            "company": grant.try_get::<String, _>("company")?,
            "contact_email": grant.try_get::<String, _>("contact_email")?,
            "scope": json_or_text(Some(granted_scope.clone())),
            "budget": json_or_text(grant.try_get("budget")?),
            "end_date": grant.try_get::<String, _>("end_date")?,
            "ip_ranges": json_or_text(grant.try_get("ip_ranges")?),
            "created_at": time(Some(grant.try_get("created_at")?)),
            "updated_at": time(Some(grant.try_get("updated_at")?)),
            "provisioning_api_calls": grant.try_get::<i64, _>("api_calls")?,
            "attention": grant.try_get::<Option<String>, _>("attention")?,
        },
        "request": {
            "id": request_id,
            "state": request.try_get::<String, _>("state")?,
            "company": request.try_get::<String, _>("company")?,
            "contact_name": request.try_get::<String, _>("contact_name")?,
            "contact_email": request.try_get::<String, _>("contact_email")?,
            "justification": request.try_get::<String, _>("justification")?,
            "scope": json_or_text(Some(requested_scope.clone())),
            "calls_per_day": request.try_get::<i64, _>("calls_per_day")?,
            "ip_ranges": json_or_text(request.try_get("ip_ranges")?),
            "end_date": request.try_get::<String, _>("end_date")?,
            "submitted_from_ip": request.try_get::<String, _>("submitter_ip")?,
            "submitted_at": time(Some(request.try_get("created_at")?)),
            "email_verified_at": time(request.try_get("verified_at")?),
        },
        "approvals": approvals,
        "scope_diff": crate::decisions::scope_changes(
            &crate::decisions::parse_scope(&requested_scope),
            &crate::decisions::parse_scope(&granted_scope),
        ),
        "provisioning": provisioning,
        "proof": proof,
        "reveal_receipt": reveal_receipt(db, grant_id).await?,
        "audit": {
            "chain": chain,
            "entries": entries,
        },
    })))
}

impl crate::Portal {
    /// The evidence pack of grant `grant_id` ([`pack`]); None for an unknown grant.
    pub async fn evidence_pack(&self, grant_id: &str) -> Result<Option<Value>, sqlx::Error> {
        pack(&self.db, &self.audit_anchor, grant_id).await
    }
}
