//! Mail to contractors and approvers. Every message is written to `mail_outbox` in the
//! transaction of the change that caused it (so a rolled-back change sends nothing); with
//! SMTP configured a sender task then delivers it, otherwise it stays in the outbox, which
//! the portal shows on its outbox page in the default (sandbox) mode.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use sqlx::{Any, Row, Transaction};
use tokio::sync::Notify;

use crate::clock::now_ms;
use crate::db::Database;

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
            "INSERT INTO mail_outbox (id, created_at, recipient, subject, body, delivery) VALUES ($1, $2, $3, $4, $5, $6)",
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

    /// Delivers pending messages over SMTP. Each is claimed first, so several portal
    /// instances never send the same message twice. Returns how many were sent.
    pub async fn deliver_pending(&self, db: &Database) -> Result<usize, sqlx::Error> {
        let Transport::Smtp { transport, from } = &*self.transport else {
            return Ok(0);
        };
        let pending = sqlx::query("SELECT id, recipient, subject, body FROM mail_outbox WHERE delivery = 'pending' ORDER BY created_at LIMIT 50")
            .fetch_all(db.pool())
            .await?;
        let mut sent = 0;
        for row in pending {
            let id: String = row.try_get("id")?;
            let claimed = sqlx::query("UPDATE mail_outbox SET delivery = 'sending' WHERE id = $1 AND delivery = 'pending'")
                .bind(&id)
                .execute(db.pool())
                .await?;
            if claimed.rows_affected() != 1 {
                continue;
            }
            let recipient: String = row.try_get("recipient")?;
            let subject: String = row.try_get("subject")?;
            let body: String = row.try_get("body")?;
            let outcome = match recipient.parse::<Mailbox>() {
                Ok(to) => match Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(subject)
                    .body(body)
                {
                    Ok(message) => transport
                        .send(message)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                },
                Err(e) => Err(format!("bad recipient: {e}")),
            };
            match outcome {
                Ok(()) => {
                    sent += 1;
                    // Delivered mail may carry codes and links: the copy here is no longer
                    // needed, so only the envelope is kept.
                    sqlx::query("UPDATE mail_outbox SET delivery = 'sent', sent_at = $1, body = '' WHERE id = $2")
                        .bind(now_ms())
                        .bind(&id)
                        .execute(db.pool())
                        .await?;
                }
                Err(error) => {
                    tracing::warn!(mail = %id, %error, "SMTP delivery failed; will retry");
                    sqlx::query(
                        "UPDATE mail_outbox SET delivery = 'pending', error = $1 WHERE id = $2",
                    )
                    .bind(error.chars().take(500).collect::<String>())
                    .bind(&id)
                    .execute(db.pool())
                    .await?;
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
