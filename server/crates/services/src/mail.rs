//! Mail to contractors and approvers. Every message is written to `mail_outbox` in the
//! transaction of the change that caused it (so a rolled-back change sends nothing); with
//! SMTP configured a sender task then delivers it, otherwise it stays in the outbox, which
//! the portal shows on its outbox page in the default (sandbox) mode.
//!
//! Delivery goes through the [`crate::outbox`]: a recipient the server refuses for good (a
//! 5xx answer) fails at once; other failures are tried again after a backoff, at most
//! [`MAX_ATTEMPTS`] times. A message that is sent or has failed keeps only its envelope: the
//! body held codes and links.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use sqlx::{Any, Transaction};
use tokio::sync::Notify;

use crate::clock::SharedClock;
use crate::db::Database;
use crate::outbox::{Delivery, Failure, Table};

pub use crate::outbox::CLAIM_MS;

/// Attempts a message gets before it fails for good (about three hours with the backoff).
pub const MAX_ATTEMPTS: i64 = 10;

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
    /// When a message was queued and when it is due.
    clock: SharedClock,
    /// Where delivery attempts are counted (the portal's).
    metrics: Arc<crate::metrics::Metrics>,
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
            clock: crate::clock::system(),
            metrics: crate::metrics::detached(),
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
            clock: crate::clock::system(),
            metrics: crate::metrics::detached(),
        })
    }

    /// Reads the time from `clock` (the portal's: see [`crate::Portal::with_clock`]).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Counts delivery attempts in `metrics` (the portal's: see [`crate::Portal::new`]).
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = metrics;
        self
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
        .bind(self.clock.now_ms())
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

    /// Delivers the messages that are due over SMTP (see [`crate::outbox`]). Returns how
    /// many were sent.
    pub async fn deliver_pending(&self, db: &Database) -> Result<usize, sqlx::Error> {
        match &*self.transport {
            Transport::Outbox => Ok(0),
            Transport::Smtp { transport, from } => {
                crate::outbox::deliver_due(
                    &Smtp { transport, from },
                    db,
                    self.clock.as_ref(),
                    &self.metrics,
                )
                .await
            }
        }
    }

    /// Woken when mail was queued (see [`Mailer::wake`]); the sender job waits on it.
    pub fn wake_handle(&self) -> Arc<Notify> {
        self.wake.clone()
    }
}

/// The mail not sent yet, per delivery state ([`crate::outbox::depth`]).
pub async fn outbox_depth(db: &Database) -> Result<Vec<(String, i64)>, sqlx::Error> {
    crate::outbox::depth(
        db,
        "mail_outbox",
        &["pending", "sending", "failed", "outbox"],
    )
    .await
}

/// One SMTP delivery of a row of `mail_outbox`.
struct Smtp<'a> {
    transport: &'a AsyncSmtpTransport<Tokio1Executor>,
    from: &'a Mailbox,
}

/// A message in the outbox, as the sender reads it.
#[derive(sqlx::FromRow)]
struct Queued {
    recipient: String,
    subject: String,
    body: String,
}

impl Delivery for Smtp<'_> {
    const TABLE: Table = Table {
        name: "mail_outbox",
        columns: "recipient, subject, body",
        error_column: "error",
        max_attempts: MAX_ATTEMPTS,
        // 30 s, 1 min, 2 min, ... at most an hour.
        first_backoff_ms: 30_000,
        max_doublings: 7,
        // Mail may carry codes and links: once sent or failed only the envelope is kept.
        blank_body_when_done: true,
    };

    type Message = Queued;

    async fn send(&self, _id: &str, mail: &Queued) -> Result<(), Failure> {
        send(
            self.transport,
            self.from,
            &mail.recipient,
            mail.subject.clone(),
            mail.body.clone(),
        )
        .await
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
    type Row = (String, i64, String, String, String, String);
    let rows: Vec<Row> = match recipient {
        Some(recipient) => {
            sqlx::query_as("SELECT id, created_at, recipient, subject, body, delivery FROM mail_outbox WHERE recipient = $1 ORDER BY created_at DESC, id DESC LIMIT $2")
                .bind(recipient)
                .bind(limit)
                .fetch_all(db.pool())
                .await?
        }
        None => {
            sqlx::query_as("SELECT id, created_at, recipient, subject, body, delivery FROM mail_outbox ORDER BY created_at DESC, id DESC LIMIT $1")
                .bind(limit)
                .fetch_all(db.pool())
                .await?
        }
    };
    Ok(rows
        .into_iter()
        .map(
            |(id, created_at, recipient, subject, body, delivery)| OutboxMail {
                id,
                created_at,
                recipient,
                subject,
                body,
                delivery,
            },
        )
        .collect())
}

impl crate::Portal {
    /// The newest 200 messages of the local outbox, for the sandbox's outbox page; None
    /// unless the built-in sandbox org is in use and mail goes to the outbox.
    pub async fn sandbox_outbox(
        &self,
    ) -> Result<Option<Vec<shared::request::OutboxItem>>, sqlx::Error> {
        if !self.settings.sandbox_mode || !self.mail.is_outbox() {
            return Ok(None);
        }
        let mails = outbox(&self.db, None, 200).await?;
        Ok(Some(
            mails
                .into_iter()
                .map(|m| shared::request::OutboxItem {
                    id: m.id,
                    at: crate::clock::rfc3339(m.created_at),
                    recipient: m.recipient,
                    subject: m.subject,
                    body: m.body,
                })
                .collect(),
        ))
    }
}
