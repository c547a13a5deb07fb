//! Mail to contractors and approvers. Every message is written to `mail_outbox` in the
//! transaction of the change that caused it (so a rolled-back change sends nothing); with
//! SMTP configured a sender task then delivers it, otherwise it stays in the outbox, which
//! the portal shows on its outbox page in the default (sandbox) mode.
//!
//! Delivery: a sender claims a message for [`CLAIM_MS`] (a claim that runs out, because the
//! sender died mid-send, is taken up again), sends it, and records the outcome. A recipient
//! the server refuses for good (a 5xx answer) fails at once; other failures are tried again
//! after a backoff, oldest due first, at most [`MAX_ATTEMPTS`] times. A message that is sent
//! or has failed keeps only its envelope: the body held codes and links.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use sqlx::{Any, Row, Transaction};
use tokio::sync::Notify;

use crate::clock::now_ms;
use crate::db::Database;

/// Attempts a message gets before it fails for good (about three hours with the backoff).
pub const MAX_ATTEMPTS: i64 = 10;
/// How long a sender's claim on a message lasts; well above the SMTP timeout (20 s).
pub const CLAIM_MS: i64 = 5 * 60 * 1000;
/// Messages one delivery run takes.
const BATCH: i64 = 50;

/// The wait before the next attempt after `attempts` failed ones: 30 s, 1 min, 2 min, ...
/// at most an hour.
fn backoff_ms(attempts: i64) -> i64 {
    (30_000i64 << (attempts - 1).clamp(0, 7)).min(3_600_000)
}

/// Why a delivery failed, and whether trying again could help.
struct Failure {
    error: String,
    permanent: bool,
}

/// A message to send.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// A message as the outbox page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMail {
    pub id: String,
    pub created_at: i64,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub delivery: String,
}

enum Transport {
    Outbox,
    Smtp {
        transport: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
    },
}

/// Where mail goes. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    transport: Arc<Transport>,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_outbox() {
            "Mailer(outbox)"
        } else {
            "Mailer(smtp)"
        })
    }
}

impl Mailer {
    /// Keeps mail in the local outbox (default mode).
    pub fn outbox() -> Self {
        Self {
            transport: Arc::new(Transport::Outbox),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Sends through the SMTP server at `url` (`smtp://host:port`, `smtps://…`, with
    /// `?tls=required` for STARTTLS), from `from`.
    pub fn smtp(url: &str, from: &str) -> Result<Self, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("not an SMTP URL: {e}"))?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        let from: Mailbox = from
            .parse()
            .map_err(|e| format!("'{from}' is not a sender address: {e}"))?;
        Ok(Self {
            transport: Arc::new(Transport::Smtp { transport, from }),
            wake: Arc::new(Notify::new()),
        })
    }

    pub fn is_outbox(&self) -> bool {
        matches!(*self.transport, Transport::Outbox)
    }

    /// Records a message in `tx`. Call [`Mailer::wake`] after committing.
    pub async fn queue(
        &self,
        tx: &mut Transaction<'static, Any>,
        mail: &Mail,
    ) -> Result<(), sqlx::Error> {
        let delivery = if self.is_outbox() {
            "outbox"
        } else {
            "pending"
        };
        sqlx::query(
            "INSERT INTO mail_outbox (id, created_at, recipient, subject, body, delivery, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $2)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(now_ms())
        .bind(&mail.to)
        .bind(&mail.subject)
        .bind(&mail.body)
        .bind(delivery)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Tells the sender task there is mail to deliver.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Delivers the messages that are due over SMTP: pending ones whose next attempt has
    /// come, and ones whose sender's claim ran out, oldest due first. Each is claimed first,
    /// so several portal instances never send the same message at once. Returns how many
    /// were sent.
    pub async fn deliver_pending(&self, db: &Database) -> Result<usize, sqlx::Error> {
        let Transport::Smtp { transport, from } = &*self.transport else {
            return Ok(0);
        };
        const DUE: &str = "((delivery = 'pending' AND next_attempt_at <= $1) \
             OR (delivery = 'sending' AND (claimed_until IS NULL OR claimed_until <= $1)))";
        let now = now_ms();
        let due = sqlx::query(&format!(
            "SELECT id, recipient, subject, body FROM mail_outbox WHERE {DUE} \
             ORDER BY next_attempt_at, created_at, id LIMIT {BATCH}"
        ))
        .bind(now)
        .fetch_all(db.pool())
        .await?;
        let mut sent = 0;
        for row in due {
            let id: String = row.try_get("id")?;
            let now = now_ms();
            let claimed = sqlx::query(&format!(
                "UPDATE mail_outbox SET delivery = 'sending', claimed_until = $2, attempts = attempts + 1 \
                 WHERE id = $3 AND {DUE} RETURNING attempts"
            ))
            .bind(now)
            .bind(now + CLAIM_MS)
            .bind(&id)
            .fetch_optional(db.pool())
            .await?;
            let Some(claimed) = claimed else {
                continue;
            };
            let attempts: i64 = claimed.try_get("attempts")?;
            let recipient: String = row.try_get("recipient")?;
            let outcome = if attempts > MAX_ATTEMPTS {
                // Taken up after its last attempt never finished.
                Err(Failure {
                    error: format!("gave up after {MAX_ATTEMPTS} attempts"),
                    permanent: true,
                })
            } else {
                let subject: String = row.try_get("subject")?;
                let body: String = row.try_get("body")?;
                send(transport, from, &recipient, subject, body).await
            };
            match outcome {
                Ok(()) => {
                    sent += 1;
                    // Delivered mail may carry codes and links: the copy here is no longer
                    // needed, so only the envelope is kept.
                    sqlx::query("UPDATE mail_outbox SET delivery = 'sent', sent_at = $1, body = '', claimed_until = NULL, error = NULL WHERE id = $2")
                        .bind(now_ms())
                        .bind(&id)
                        .execute(db.pool())
                        .await?;
                }
                Err(failure) => {
                    let give_up = failure.permanent || attempts >= MAX_ATTEMPTS;
                    let error: String = failure.error.chars().take(500).collect();
                    if give_up {
                        tracing::warn!(mail = %id, attempts, %error, "SMTP delivery failed for good");
                        sqlx::query(
                            "UPDATE mail_outbox SET delivery = 'failed', body = '', error = $1, claimed_until = NULL WHERE id = $2",
                        )
                        .bind(&error)
                        .bind(&id)
                        .execute(db.pool())
                        .await?;
                    } else {
                        tracing::warn!(mail = %id, attempts, %error, "SMTP delivery failed; will retry");
                        sqlx::query(
                            "UPDATE mail_outbox SET delivery = 'pending', error = $1, next_attempt_at = $2, claimed_until = NULL WHERE id = $3",
                        )
                        .bind(&error)
                        .bind(now_ms() + backoff_ms(attempts))
                        .bind(&id)
                        .execute(db.pool())
                        .await?;
                    }
                }
            }
        }
        Ok(sent)
    }

    /// Runs until `stop`: delivers mail when woken, and retries every 30 seconds.
    pub async fn run_sender(self, db: Database, stop: impl std::future::Future<Output = ()>) {
        if self.is_outbox() {
            stop.await;
            return;
        }
        tokio::pin!(stop);
        loop {
            if let Err(e) = self.deliver_pending(&db).await {
                tracing::warn!(error = %e, "mail sender: database error");
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(30)) => {}
                () = &mut stop => return,
            }
        }
    }
}

/// Sends one message. A 5xx answer (e.g. the recipient refused for good) or a message that
/// cannot be built is permanent; timeouts, lost connections and 4xx answers are not.
async fn send(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
    recipient: &str,
    subject: String,
    body: String,
) -> Result<(), Failure> {
    let to = recipient.parse::<Mailbox>().map_err(|e| Failure {
        error: format!("bad recipient: {e}"),
        permanent: true,
    })?;
    let message = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .body(body)
        .map_err(|e| Failure {
            error: e.to_string(),
            permanent: true,
        })?;
    transport
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| Failure {
            permanent: e.is_permanent(),
            error: e.to_string(),
        })
}

/// The outbox, newest first (optionally only one recipient's mail).
pub async fn outbox(
    db: &Database,
    recipient: Option<&str>,
    limit: i64,
) -> Result<Vec<OutboxMail>, sqlx::Error> {
    let rows = match recipient {
        Some(recipient) => {
            sqlx::query("SELECT id, created_at, recipient, subject, body, delivery FROM mail_outbox WHERE recipient = $1 ORDER BY created_at DESC, id DESC LIMIT $2")
                .bind(recipient)
                .bind(limit)
                .fetch_all(db.pool())
                .await?
        }
        None => {
            sqlx::query("SELECT id, created_at, recipient, subject, body, delivery FROM mail_outbox ORDER BY created_at DESC, id DESC LIMIT $1")
                .bind(limit)
                .fetch_all(db.pool())
                .await?
        }
    };
    rows.iter()
        .map(|row| {
            Ok(OutboxMail {
                id: row.try_get("id")?,
                created_at: row.try_get("created_at")?,
                recipient: row.try_get("recipient")?,
                subject: row.try_get("subject")?,
                body: row.try_get("body")?,
                delivery: row.try_get("delivery")?,
            })
        })
        .collect()
}
