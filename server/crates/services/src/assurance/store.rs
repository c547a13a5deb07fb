//! The assurance tables: every re-proof kept (`assurance_proofs`), and per grant its drift
//! policy and the drift last raised (`assurance_grants`).

use shared::assurance::{DriftPolicy, ProofLine, ProofRecord};
use sqlx::{Any, Transaction};

use crate::clock::rfc3339;
use crate::db::Database;
use crate::provisioning::proof::Check;

/// A proof's checks as its table's lines.
pub fn lines(checks: &[Check]) -> Vec<ProofLine> {
    checks
        .iter()
        .map(|c| ProofLine {
            check: c.check.clone(),
            expected: c.expected.clone(),
            observed: c.observed.clone(),
            pass: c.pass,
            wider: c.wider,
        })
        .collect()
}

#[derive(sqlx::FromRow)]
struct ProofRow {
    grant_id: String,
    proved_at: i64,
    passed: i64,
    checks: String,
    drift: String,
    action: Option<String>,
    error: Option<String>,
    calls: Option<i64>,
}

impl From<ProofRow> for ProofRecord {
    fn from(row: ProofRow) -> Self {
        Self {
            grant_id: row.grant_id,
            proved_at: rfc3339(row.proved_at),
            passed: row.passed != 0,
            checks: serde_json::from_str(&row.checks).unwrap_or_default(),
            drift: serde_json::from_str(&row.drift).unwrap_or_default(),
            action: row.action,
            error: row.error,
            calls: row.calls.map(|c| c.max(0) as u32),
        }
    }
}

/// Keeps one re-proof.
pub(super) async fn insert(
    tx: &mut Transaction<'static, Any>,
    grant_id: &str,
    at: i64,
    record: &ProofRecord,
    fingerprint: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO assurance_proofs (id, grant_id, proved_at, passed, checks, drift, fingerprint, action, error, calls) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(grant_id)
    .bind(at)
    .bind(i64::from(record.passed))
    .bind(serde_json::to_string(&record.checks).unwrap_or_else(|_| "[]".into()))
    .bind(serde_json::to_string(&record.drift).unwrap_or_else(|_| "[]".into()))
    .bind(fingerprint)
    .bind(record.action.as_deref())
    .bind(record.error.as_deref())
    .bind(record.calls.map(i64::from))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The last re-proof of grant `grant_id` (its time, result and table), if it was ever
/// re-proved. For the other rooms' pages (access reviews show "the last proof's table").
pub async fn last_proof(db: &Database, grant_id: &str) -> Result<Option<ProofRecord>, sqlx::Error> {
    let row: Option<ProofRow> = sqlx::query_as(
        "SELECT grant_id, proved_at, passed, checks, drift, action, error, calls FROM assurance_proofs \
         WHERE grant_id = $1 ORDER BY proved_at DESC, id DESC LIMIT 1",
    )
    .bind(grant_id)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.map(ProofRecord::from))
}

/// Grant `grant_id`'s own drift policy (`None`: the default) and the fingerprint of the
/// drift last raised.
pub(super) async fn grant_state(
    tx: &mut Transaction<'static, Any>,
    grant_id: &str,
) -> Result<(Option<DriftPolicy>, Option<String>), sqlx::Error> {
    let row: Option<(Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT policy, raised_fingerprint FROM assurance_grants WHERE grant_id = $1",
    )
    .bind(grant_id)
    .fetch_optional(&mut **tx)
    .await?;
    let (policy, raised) = row.unwrap_or((None, None));
    Ok((policy.and_then(|p| DriftPolicy::parse(&p).ok()), raised))
}

/// The policies of every grant that has one.
pub(super) async fn policies(db: &Database) -> Result<Vec<(String, DriftPolicy)>, sqlx::Error> {
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT grant_id, policy FROM assurance_grants")
            .fetch_all(db.pool())
            .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(g, p)| Some((g, DriftPolicy::parse(&p?).ok()?)))
        .collect())
}

/// Records the drift raised for the grant (`None`: no drift now, so the same drift later
/// is raised again).
pub(super) async fn set_raised(
    tx: &mut Transaction<'static, Any>,
    grant_id: &str,
    fingerprint: Option<&str>,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO assurance_grants (grant_id, policy, raised_fingerprint, raised_at) VALUES ($1, NULL, $2, $3) \
         ON CONFLICT (grant_id) DO UPDATE SET raised_fingerprint = excluded.raised_fingerprint, raised_at = excluded.raised_at",
    )
    .bind(grant_id)
    .bind(fingerprint)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn set_policy(
    tx: &mut Transaction<'static, Any>,
    grant_id: &str,
    policy: DriftPolicy,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO assurance_grants (grant_id, policy) VALUES ($1, $2) \
         ON CONFLICT (grant_id) DO UPDATE SET policy = excluded.policy",
    )
    .bind(grant_id)
    .bind(policy.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
