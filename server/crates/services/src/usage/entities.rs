//! The objects each integration user called, per UTC day (`ENTITY_NAME` of ApiTotalUsage),
//! for access reviews: written by the collector in the transaction that stores the file's
//! hours, read by the reviews as "what the contractor actually used".

use std::collections::BTreeMap;

use sqlx::{Any, Transaction};

use super::ingest::UserDayEntity;
use crate::db::Database;

/// Stores a file's objects per user and day. A file that replaces its period (daily)
/// replaces the rows of that period first; hourly files are deltas with their own period.
pub(crate) async fn store(
    tx: &mut Transaction<'static, Any>,
    interval: &str,
    period_start: i64,
    replaces: bool,
    entities: &[UserDayEntity],
) -> Result<(), sqlx::Error> {
    if replaces {
        sqlx::query("DELETE FROM usage_entities WHERE log_interval = $1 AND period_start = $2")
            .bind(interval)
            .bind(period_start)
            .execute(&mut **tx)
            .await?;
    }
    for e in entities {
        sqlx::query(
            "INSERT INTO usage_entities (log_interval, period_start, user_key, day_start, entity, calls) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (log_interval, period_start, user_key, day_start, entity) \
             DO UPDATE SET calls = usage_entities.calls + excluded.calls",
        )
        .bind(interval)
        .bind(period_start)
        .bind(&e.user_id15)
        .bind(e.day_ms)
        .bind(&e.entity)
        .bind(e.calls as i64)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// One object a user called in a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Used {
    pub entity: String,
    pub calls: i64,
    /// Days with at least one call.
    pub days: i64,
}

/// The objects `user_key` (15 characters) called on days starting in `[from, to)`, most
/// called first. Hourly and daily files of the same day are not added up: per day and
/// object the larger of the two counts is taken.
pub async fn used_between(
    db: &Database,
    user_key: &str,
    from: i64,
    to: i64,
) -> Result<Vec<Used>, sqlx::Error> {
    let rows: Vec<(String, i64, String, i64)> = sqlx::query_as(
        "SELECT log_interval, day_start, entity, CAST(SUM(calls) AS BIGINT) FROM usage_entities \
         WHERE user_key = $1 AND day_start >= $2 AND day_start < $3 \
         GROUP BY log_interval, day_start, entity",
    )
    .bind(user_key)
    .bind(from)
    .bind(to)
    .fetch_all(db.pool())
    .await?;
    // Per (object, day): the larger count of the hourly and the daily files.
    let mut per_day: BTreeMap<(String, i64), (String, i64)> = BTreeMap::new();
    for (_, day, entity, calls) in rows {
        let slot = per_day
            .entry((entity.to_ascii_lowercase(), day))
            .or_insert((entity, 0));
        slot.1 = slot.1.max(calls);
    }
    let mut by_entity: BTreeMap<String, Used> = BTreeMap::new();
    for ((key, _), (entity, calls)) in per_day {
        let used = by_entity.entry(key).or_insert(Used {
            entity,
            calls: 0,
            days: 0,
        });
        used.calls += calls;
        used.days += 1;
    }
    let mut used: Vec<Used> = by_entity.into_values().collect();
    used.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.entity.cmp(&b.entity)));
    Ok(used)
}
