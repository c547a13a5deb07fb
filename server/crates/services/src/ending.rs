//! What the pages show of the end of access (issue 17): how a grant's access ended or is
//! ending (revoked by an approver or owner, or expired on its end date), the Salesforce
//! Integration licences teardowns gave back, and the grants that end soonest (where the
//! next licence comes free). Read from the grant's end columns, which the revoke and the
//! teardown write; the types are `shared::ending`'s.

use shared::GrantState;
use shared::ending::{AccessEnd, EndingGrant, FreedLicence};

use crate::clock::rfc3339;
use crate::db::Database;

/// How a grant's access ended or is ending, as the revoke and the teardown wrote it on the
/// grant (`end_kind` is set once its teardown began).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EndRecord {
    /// The grant's state now.
    pub state: String,
    /// `revoked` or `expired`.
    pub kind: String,
    pub reason: Option<String>,
    /// Who revoked it (`system` for an expiry).
    pub by: Option<String>,
    pub requested_at: Option<i64>,
    /// When the teardown finished (`None` while it runs).
    pub ended_at: Option<i64>,
}

/// Which grant: by its id, or by the request it was made from.
#[derive(Debug, Clone, Copy)]
pub enum Of<'a> {
    Grant(&'a str),
    Request(&'a str),
}

/// How the grant's access ended or is ending; None while it has not begun to end (or
/// there is no such grant).
pub async fn end_record(db: &Database, of: Of<'_>) -> Result<Option<EndRecord>, sqlx::Error> {
    let (column, id) = match of {
        Of::Grant(id) => ("id", id),
        Of::Request(id) => ("request_id", id),
    };
    sqlx::query_as::<_, EndRecord>(&format!(
        "SELECT state, end_kind AS kind, end_reason AS reason, ended_by AS by, \
             end_requested_at AS requested_at, access_ended_at AS ended_at \
         FROM grants WHERE {column} = $1 AND end_kind IS NOT NULL"
    ))
    .bind(id)
    .fetch_optional(db.pool())
    .await
}

/// A stored value the vocabulary does not know: the database is not as the portal wrote it.
fn corrupt(e: shared::UnknownValue) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(e))
}

/// Whether the reader may see who ended the access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// An approver or owner: who revoked it too.
    Staff,
    /// The contractor through the status link: when and why, not who.
    Contractor,
}

/// How the access of the grant made from request `request_id` ended, or is ending; None
/// while it has not begun to end (or there is no grant).
pub async fn access_end(
    db: &Database,
    request_id: &str,
    reader: Reader,
) -> Result<Option<AccessEnd>, sqlx::Error> {
    let Some(row) = end_record(db, Of::Request(request_id)).await? else {
        return Ok(None);
    };
    let state = GrantState::parse(&row.state).map_err(corrupt)?;
    // Ending, ended, or a teardown that stopped (it needs attention with its end recorded).
    if !(state.is_ending() || state.has_ended() || state == GrantState::NeedsAttention) {
        return Ok(None);
    }
    let kind = row.kind;
    let requested = row.requested_at.or(row.ended_at).unwrap_or(0);
    Ok(Some(AccessEnd {
        state,
        revoked: kind == "revoked",
        requested_at: rfc3339(requested),
        ended_at: row.ended_at.map(rfc3339),
        reason: row.reason.filter(|r| !r.trim().is_empty()),
        by: match reader {
            Reader::Staff => row.by,
            Reader::Contractor => None,
        },
    }))
}

#[derive(sqlx::FromRow)]
struct FreedRow {
    request_id: String,
    company: String,
    state: String,
    access_ended_at: Option<i64>,
}

/// Which grants gave a licence back: torn down (revoked or expired) after their integration
/// user was made, so its deactivation freed its Salesforce Integration licence.
const FREED: &str = "FROM grants g WHERE g.state IN ($1, $2) AND EXISTS (SELECT 1 FROM provisioning_steps s \
     WHERE s.grant_id = g.id AND s.step = $3 AND s.state IN ($4, $5))";

/// The grants whose teardown gave a Salesforce Integration licence back: how many in all,
/// and the newest `limit` of them.
pub async fn freed_licences(
    db: &Database,
    limit: i64,
) -> Result<(i64, Vec<FreedLicence>), sqlx::Error> {
    let count_sql = format!("SELECT COUNT(*) {FREED}");
    let total: i64 = sqlx::query_scalar(&count_sql)
        .bind(GrantState::Revoked.as_str())
        .bind(GrantState::Expired.as_str())
        .bind(shared::StepName::User.as_str())
        .bind(shared::StepState::Succeeded.as_str())
        .bind(shared::StepState::Undone.as_str())
        .fetch_one(db.pool())
        .await?;
    let list_sql = format!(
        "SELECT g.request_id, g.company, g.state, g.access_ended_at {FREED} \
         ORDER BY g.access_ended_at DESC, g.id LIMIT $6"
    );
    let rows = sqlx::query_as::<_, FreedRow>(&list_sql)
        .bind(GrantState::Revoked.as_str())
        .bind(GrantState::Expired.as_str())
        .bind(shared::StepName::User.as_str())
        .bind(shared::StepState::Succeeded.as_str())
        .bind(shared::StepState::Undone.as_str())
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
    let list = rows
        .into_iter()
        .map(|r| {
            Ok(FreedLicence {
                state: GrantState::parse(&r.state).map_err(corrupt)?,
                at: r.access_ended_at.map(rfc3339).unwrap_or_default(),
                request_id: r.request_id,
                company: r.company,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok((total, list))
}

#[derive(sqlx::FromRow)]
struct EndingRow {
    request_id: String,
    company: String,
    state: String,
    end_date: String,
}

/// The grants holding access (ready, active or suspended) that end soonest, at most
/// `limit`: when a new grant finds no free licence, one comes free when these end (or are
/// revoked).
pub async fn ending_soonest(db: &Database, limit: i64) -> Result<Vec<EndingGrant>, sqlx::Error> {
    let rows = sqlx::query_as::<_, EndingRow>(
        "SELECT request_id, company, state, end_date FROM grants WHERE state IN ($1, $2, $3) \
         ORDER BY end_date, created_at, id LIMIT $4",
    )
    .bind(GrantState::Ready.as_str())
    .bind(GrantState::Active.as_str())
    .bind(GrantState::Suspended.as_str())
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(EndingGrant {
                state: GrantState::parse(&r.state).map_err(corrupt)?,
                request_id: r.request_id,
                company: r.company,
                end_date: r.end_date,
            })
        })
        .collect()
}
