//! The `audit_stream_cursors` table: one row per sink with the last entry it acknowledged,
//! the lease of the instance streaming to it, its backoff and how it last fared. The
//! acknowledged seq only moves forward (a late acknowledgement of an older batch never
//! takes it back).

use crate::db::Database;

/// A sink's row.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Cursor {
    pub sink: String,
    pub acked_seq: i64,
    pub failures: i64,
    pub failures_total: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    pub last_success_at: Option<i64>,
}

const COLUMNS: &str = "sink, acked_seq, failures, failures_total, next_attempt_at, last_error, \
    last_error_at, last_success_at";

/// Makes the sink's row (acknowledged nothing: a new sink gets the whole log).
pub async fn ensure(db: &Database, sink: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_stream_cursors (sink) VALUES ($1) ON CONFLICT (sink) DO NOTHING",
    )
    .bind(sink)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Every sink's row, by name.
pub async fn all(db: &Database) -> Result<Vec<Cursor>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM audit_stream_cursors ORDER BY sink"
    ))
    .fetch_all(db.pool())
    .await
}

/// The sink's row, if it has one.
pub async fn get(db: &Database, sink: &str) -> Result<Option<Cursor>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM audit_stream_cursors WHERE sink = $1"
    ))
    .bind(sink)
    .fetch_optional(db.pool())
    .await
}

/// Takes (or renews) the sink's lease for `owner` until `until`, when nobody else holds it
/// and its backoff is over; the acknowledged seq when taken.
pub async fn lease(
    db: &Database,
    sink: &str,
    owner: &str,
    now: i64,
    until: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let taken = sqlx::query(
        "UPDATE audit_stream_cursors SET lease_owner = $1, lease_expires_at = $2 \
         WHERE sink = $3 AND next_attempt_at <= $4 \
         AND (lease_owner IS NULL OR lease_owner = $1 OR lease_expires_at < $4)",
    )
    .bind(owner)
    .bind(until)
    .bind(sink)
    .bind(now)
    .execute(db.pool())
    .await?;
    if taken.rows_affected() == 0 {
        return Ok(None);
    }
    sqlx::query_scalar(
        "SELECT acked_seq FROM audit_stream_cursors WHERE sink = $1 AND lease_owner = $2",
    )
    .bind(sink)
    .bind(owner)
    .fetch_optional(db.pool())
    .await
}

/// The sink acknowledged everything up to `seq`: the cursor moves there (never back), the
/// failures since the last success are forgotten. `false` when `owner` lost the lease (the
/// batch was still delivered: at least once).
pub async fn acknowledge(
    db: &Database,
    sink: &str,
    owner: &str,
    seq: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE audit_stream_cursors SET \
         acked_seq = CASE WHEN acked_seq < $1 THEN $1 ELSE acked_seq END, \
         failures = 0, next_attempt_at = 0, last_success_at = $2 \
         WHERE sink = $3 AND lease_owner = $4",
    )
    .bind(seq)
    .bind(now)
    .bind(sink)
    .bind(owner)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A failed batch: counted, its message kept, the next try after `retry_at`.
pub async fn failed(
    db: &Database,
    sink: &str,
    owner: &str,
    error: &str,
    now: i64,
    retry_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE audit_stream_cursors SET failures = failures + 1, \
         failures_total = failures_total + 1, last_error = $1, last_error_at = $2, \
         next_attempt_at = $3 WHERE sink = $4 AND lease_owner = $5",
    )
    .bind(error)
    .bind(now)
    .bind(retry_at)
    .bind(sink)
    .bind(owner)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Gives the sink's lease up (at shutdown, so another instance carries on at once).
pub async fn release(db: &Database, sink: &str, owner: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE audit_stream_cursors SET lease_owner = NULL, lease_expires_at = NULL \
         WHERE sink = $1 AND lease_owner = $2",
    )
    .bind(sink)
    .bind(owner)
    .execute(db.pool())
    .await?;
    Ok(())
}
