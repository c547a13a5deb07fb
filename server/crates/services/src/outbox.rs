//! One outbox for side effects that leave the portal (mail, alert webhooks): a row is written
//! in the transaction of the change that caused it (a rolled-back change sends nothing), and a
//! sender delivers it later. What differs per kind of message is only the table and how one
//! message is sent ([`Delivery`]); claims, their expiry, backoff and attempts are here, once.
//!
//! A sender claims a message for [`CLAIM_MS`] (a claim that runs out, because the sender died
//! mid-send, is taken up again), sends it, and records the outcome. A permanent failure gives
//! up at once; others are tried again after a backoff, oldest due first, until the attempts
//! run out.

use std::future::Future;

use sqlx::FromRow;
use sqlx::any::AnyRow;
use tracing::Instrument;

use crate::clock::Clock;
use crate::db::Database;
use crate::metrics::Metrics;

/// How long a sender's claim on a message lasts; well above any sender's timeout (SMTP 20 s,
/// webhook 15 s).
pub const CLAIM_MS: i64 = 5 * 60 * 1000;
/// Messages one delivery run takes.
const BATCH: i64 = 50;
/// Errors are kept short: they are shown to operators, not stored as logs.
const ERROR_CHARS: usize = 500;

/// Due: pending and its next attempt has come, or claimed by a sender whose claim ran out.
const DUE: &str = "((delivery = 'pending' AND next_attempt_at <= $1) \
     OR (delivery = 'sending' AND (claimed_until IS NULL OR claimed_until <= $1)))";

/// An outbox table: its columns `id`, `delivery` (`pending`, `sending`, `sent`, `failed`),
/// `attempts`, `next_attempt_at`, `claimed_until`, `sent_at`, an error column and the
/// message's own columns.
pub struct Table {
    pub name: &'static str,
    /// The message's columns a delivery reads, e.g. `recipient, subject, body`.
    pub columns: &'static str,
    /// Where the last failure is written.
    pub error_column: &'static str,
    /// Attempts before a message fails for good.
    pub max_attempts: i64,
    /// The wait after the first failed attempt; it doubles with each further one, at most
    /// `max_doublings` times, and is never over an hour.
    pub first_backoff_ms: i64,
    pub max_doublings: i64,
    /// Whether the body is blanked once the message is sent or has failed (it held codes
    /// and links that are no longer needed).
    pub blank_body_when_done: bool,
}

impl Table {
    /// The outbox's name in metrics: `mail` for `mail_outbox`.
    pub fn label(&self) -> &'static str {
        self.name.strip_suffix("_outbox").unwrap_or(self.name)
    }

    /// The wait before the next attempt after `attempts` failed ones.
    pub fn backoff_ms(&self, attempts: i64) -> i64 {
        (self.first_backoff_ms << (attempts - 1).clamp(0, self.max_doublings)).min(3_600_000)
    }
}

/// Why a delivery failed, and whether trying again could help.
#[derive(Debug)]
pub struct Failure {
    pub error: String,
    pub permanent: bool,
}

impl Failure {
    /// A failure that may pass (a timeout, a lost connection, a 4xx SMTP answer).
    pub fn transient(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            permanent: false,
        }
    }

    /// A failure that trying again cannot fix (a recipient refused for good).
    pub fn permanent(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            permanent: true,
        }
    }
}

/// One kind of message: its table and how one is sent.
pub trait Delivery: Sync {
    const TABLE: Table;
    /// The message as the table's `columns` hold it.
    type Message: for<'r> FromRow<'r, AnyRow> + Send + Sync;

    /// Sends message `id`.
    fn send(
        &self,
        id: &str,
        message: &Self::Message,
    ) -> impl Future<Output = Result<(), Failure>> + Send;
}

/// The id of a message that is due (the rest of its row is the [`Delivery::Message`]).
#[derive(FromRow)]
struct Due {
    id: String,
}

/// Delivers the messages that are due: pending ones whose next attempt has come, and ones
/// whose sender's claim ran out, oldest due first. Each is claimed first, so several portal
/// instances never send the same message at once. Returns how many were delivered. Each
/// attempt's outcome is counted in `metrics`.
pub async fn deliver_due<D: Delivery>(
    delivery: &D,
    db: &Database,
    clock: &dyn Clock,
    metrics: &Metrics,
) -> Result<usize, sqlx::Error> {
    let table = &D::TABLE;
    let name = table.name;
    let due = sqlx::query(&format!(
        "SELECT id, {columns} FROM {name} WHERE {DUE} \
         ORDER BY next_attempt_at, created_at, id LIMIT {BATCH}",
        columns = table.columns,
    ))
    .bind(clock.now_ms())
    .fetch_all(db.pool())
    .await?;
    let mut sent = 0;
    for row in due {
        let Due { id } = Due::from_row(&row)?;
        let now = clock.now_ms();
        let claimed: Option<i64> = sqlx::query_scalar(&format!(
            "UPDATE {name} SET delivery = 'sending', claimed_until = $2, attempts = attempts + 1 \
             WHERE id = $3 AND {DUE} RETURNING attempts"
        ))
        .bind(now)
        .bind(now + CLAIM_MS)
        .bind(&id)
        .fetch_optional(db.pool())
        .await?;
        let Some(attempts) = claimed else {
            continue;
        };
        let outcome = if attempts > table.max_attempts {
            // Taken up after its last attempt never finished.
            Err(Failure::permanent(format!(
                "gave up after {} attempts",
                table.max_attempts
            )))
        } else {
            // A message that cannot be read is tried again, like one that could not be sent.
            match D::Message::from_row(&row) {
                Ok(message) => {
                    let span = tracing::info_span!(
                        "outbox_deliver",
                        outbox = table.label(),
                        id = %id,
                        attempt = attempts,
                    );
                    delivery.send(&id, &message).instrument(span).await
                }
                Err(e) => Err(Failure::transient(e.to_string())),
            }
        };
        let blank = if table.blank_body_when_done {
            ", body = ''"
        } else {
            ""
        };
        let error_column = table.error_column;
        match outcome {
            Ok(()) => {
                sent += 1;
                metrics.outbox_delivery(table.label(), "sent");
                sqlx::query(&format!(
                    "UPDATE {name} SET delivery = 'sent', sent_at = $1{blank}, claimed_until = NULL, \
                     {error_column} = NULL WHERE id = $2"
                ))
                .bind(clock.now_ms())
                .bind(&id)
                .execute(db.pool())
                .await?;
            }
            Err(failure) => {
                let give_up = failure.permanent || attempts >= table.max_attempts;
                let error: String = failure.error.chars().take(ERROR_CHARS).collect();
                tracing::warn!(outbox = name, id = %id, attempts, %error, give_up, "delivery failed");
                metrics.outbox_delivery(table.label(), if give_up { "failed" } else { "retry" });
                if give_up {
                    sqlx::query(&format!(
                        "UPDATE {name} SET delivery = 'failed'{blank}, {error_column} = $1, \
                         claimed_until = NULL WHERE id = $2"
                    ))
                    .bind(&error)
                    .bind(&id)
                    .execute(db.pool())
                    .await?;
                } else {
                    sqlx::query(&format!(
                        "UPDATE {name} SET delivery = 'pending', {error_column} = $1, \
                         next_attempt_at = $2, claimed_until = NULL WHERE id = $3"
                    ))
                    .bind(&error)
                    .bind(clock.now_ms() + table.backoff_ms(attempts))
                    .bind(&id)
                    .execute(db.pool())
                    .await?;
                }
            }
        }
    }
    Ok(sent)
}

/// The messages of outbox `table` in each of the `delivery` states (those waiting or being
/// sent, those that failed for good; mail kept in the sandbox outbox). Sent messages (the
/// table's history) are not counted; each state is a range of the
/// `(delivery, next_attempt_at)` index.
pub async fn depth(
    db: &Database,
    table: &str,
    states: &[&str],
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let mut depth = Vec::new();
    for &delivery in states {
        let count: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE delivery = $1"))
                .bind(delivery)
                .fetch_one(db.pool())
                .await?;
        depth.push((delivery.to_string(), count));
    }
    Ok(depth)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIL: Table = Table {
        name: "mail_outbox",
        columns: "",
        error_column: "error",
        max_attempts: 10,
        first_backoff_ms: 30_000,
        max_doublings: 7,
        blank_body_when_done: true,
    };

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(MAIL.backoff_ms(1), 30_000);
        assert_eq!(MAIL.backoff_ms(2), 60_000);
        assert_eq!(MAIL.backoff_ms(3), 120_000);
        assert_eq!(MAIL.backoff_ms(8), 3_600_000);
        assert_eq!(MAIL.backoff_ms(20), 3_600_000);
        assert_eq!(MAIL.backoff_ms(0), 30_000);
    }
}
