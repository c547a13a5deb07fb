//! Alert webhooks: a JSON POST to a configured URL, with a Slack-compatible `text` field
//! (values people typed, such as company names, escaped for Slack: see [`slack_escape`]),
//! signed so the receiver can tell it came from this portal.
//!
//! Each delivery is written to `webhook_outbox` in the transaction of the alert it carries
//! (a rolled-back alert sends nothing), then the [`crate::outbox`] sender claims it, posts it,
//! and retries with backoff, oldest due first, until the receiver answers 2xx or the attempts
//! run out.
//! Headers:
//!
//! - `X-Portcullis-Signature: t=<unix seconds>,v1=<hex>`: HMAC-SHA256 with the configured
//!   secret over `<t>.<body>` (the exact bytes sent). Receivers recompute it and reject
//!   old timestamps, as with Stripe's and Slack's signatures.
//! - `X-Portcullis-Delivery: <id>`: the same for every retry of one delivery, so a receiver
//!   that saw it already can ignore a repeat.
//! - `X-Portcullis-Event: <audit action>`, e.g. `usage.limit_exceeded`.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use sqlx::{Any, Transaction};
use tokio::sync::Notify;

use crate::clock::SharedClock;
use crate::db::Database;
use crate::outbox::{Delivery, Failure, Table};

/// Deliveries given up after this many attempts (about a day with the backoff below).
const MAX_ATTEMPTS: i64 = 12;
pub use crate::outbox::CLAIM_MS;

/// Where alerts are posted. Cheap to clone; the secret is never printed.
#[derive(Clone)]
pub struct Webhook {
    url: String,
    secret: SecretString,
    http: reqwest::Client,
    wake: Arc<Notify>,
    /// When a delivery was queued, is due and was signed.
    clock: SharedClock,
    /// Where delivery attempts are counted (the portal's: see [`crate::Portal::with_webhook`]).
    metrics: Arc<crate::metrics::Metrics>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// `text` safe to put into a Slack message's `text`: Slack reads `<…>` as mentions
/// (`<!channel>`) and links (`<url|label>`) and `&` as the start of an escape, so a value
/// someone typed (a company name) is escaped as Slack asks: `&amp;`, `&lt;`, `&gt;`, and
/// nothing else.
pub fn slack_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// An alert's `text` for chat webhooks: the subject, then one bullet a line, all escaped.
pub fn bullet_text<I: IntoIterator<Item = String>>(subject: &str, lines: I) -> String {
    let mut text = slack_escape(subject);
    for line in lines {
        text.push_str("\n• ");
        text.push_str(&slack_escape(&line));
    }
    text
}

/// The signature header's value for `body` sent at `timestamp` (Unix seconds).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut context = ring::hmac::Context::with_key(&key);
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    format!("t={timestamp},v1={}", hex::encode(context.sign().as_ref()))
}

impl Webhook {
    /// `url` must be http(s); `secret` signs every delivery.
    pub fn new(url: &str, secret: SecretString) -> Result<Self, String> {
        let parsed =
            url::Url::parse(url.trim()).map_err(|e| format!("'{url}' is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("'{url}' must start with http:// or https://"));
        }
        if secret.expose_secret().len() < 16 {
            return Err("the signing secret must be at least 16 characters".into());
        }
        let http = salesforce::http::HttpClient::new(&salesforce::http::HttpOptions {
            request_timeout: Duration::from_secs(15),
            ..Default::default()
        })
        .map_err(|e| e.to_string())?
        .reqwest()
        .clone();
        Ok(Self {
            url: parsed.to_string(),
            secret,
            http,
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

    /// Counts delivery attempts in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Records a delivery of `body` for `event` in `tx`. Call [`Webhook::wake`] after
    /// committing.
    pub async fn queue(
        &self,
        tx: &mut Transaction<'static, Any>,
        event: &str,
        body: &Value,
    ) -> Result<(), sqlx::Error> {
        let now = self.clock.now_ms();
        sqlx::query(
            "INSERT INTO webhook_outbox (id, created_at, url, body, delivery, next_attempt_at) VALUES ($1, $2, $3, $4, 'pending', $2)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(now)
        .bind(&self.url)
        .bind(serde_json::json!({ "event": event, "payload": body }).to_string())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Posts the deliveries that are due (see [`crate::outbox`]). Returns how many the
    /// receiver took.
    pub async fn deliver_pending(&self, db: &Database) -> Result<usize, sqlx::Error> {
        crate::outbox::deliver_due(self, db, self.clock.as_ref(), &self.metrics).await
    }

    /// Woken when a delivery was queued (see [`Webhook::wake`]); the sender job waits on it.
    pub fn wake_handle(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    async fn post(&self, id: &str, event: &str, body: String) -> Result<(), String> {
        let signed = Signed {
            url: &self.url,
            secret: &self.secret,
            timestamp: self.clock.now_ms() / 1000,
            delivery: id,
            event,
        };
        signed.post(&self.http, body).await
    }
}

/// One signed post, as alerts and the audit stream's webhook (`audit_stream::webhook`)
/// send them: the JSON `body` to `url` with the signature, delivery and event headers
/// described at the top of this module.
pub struct Signed<'a> {
    pub url: &'a str,
    pub secret: &'a SecretString,
    /// Unix seconds, signed with the body.
    pub timestamp: i64,
    /// The same for every retry of one delivery.
    pub delivery: &'a str,
    pub event: &'a str,
}

impl Signed<'_> {
    /// Posts `body`; `Ok` when the receiver answered 2xx. The error never holds the secret.
    pub async fn post(&self, http: &reqwest::Client, body: String) -> Result<(), String> {
        let signed = signature(self.secret.expose_secret(), self.timestamp, body.as_bytes());
        let response = http
            .post(self.url)
            .header("content-type", "application/json")
            .header("x-portcullis-signature", signed)
            .header("x-portcullis-delivery", self.delivery)
            .header("x-portcullis-event", self.event)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "could not post: {}",
                    salesforce::http::chain(&e.without_url())
                )
            })?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the receiver answered HTTP {}", status.as_u16()))
        }
    }
}

/// The webhook deliveries not sent yet, per delivery state ([`crate::outbox::depth`]).
pub async fn outbox_depth(db: &Database) -> Result<Vec<(String, i64)>, sqlx::Error> {
    crate::outbox::depth(db, "webhook_outbox", &["pending", "sending", "failed"]).await
}

/// A webhook in the outbox: its stored body (the event and its payload).
#[derive(sqlx::FromRow)]
pub struct Queued {
    body: String,
}

impl Delivery for Webhook {
    const TABLE: Table = Table {
        name: "webhook_outbox",
        columns: "body",
        error_column: "last_error",
        max_attempts: MAX_ATTEMPTS,
        // 10 s, 20 s, 40 s ... at most an hour apart.
        first_backoff_ms: 10_000,
        max_doublings: 9,
        blank_body_when_done: false,
    };

    type Message = Queued;

    async fn send(&self, id: &str, queued: &Queued) -> Result<(), Failure> {
        let stored = &queued.body;
        let (event, body) = match serde_json::from_str::<Value>(stored) {
            Ok(v) => (
                v["event"].as_str().unwrap_or("").to_string(),
                v["payload"].to_string(),
            ),
            Err(_) => (String::new(), stored.clone()),
        };
        // A receiver's refusal may pass (it is being deployed, say): every failure is retried.
        self.post(id, &event, body)
            .await
            .map_err(Failure::transient)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Recomputed independently: HMAC-SHA256(key, "1700000000.{}") as hex.
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"0123456789abcdef");
        let expected = hex::encode(ring::hmac::sign(&key, b"1700000000.{}").as_ref());
        assert_eq!(
            signature("0123456789abcdef", 1_700_000_000, b"{}"),
            format!("t=1700000000,v1={expected}")
        );
        assert_ne!(
            signature("0123456789abcdef", 1_700_000_000, b"{}"),
            signature("0123456789abcdef", 1_700_000_001, b"{}"),
            "the timestamp is signed"
        );
    }

    #[test]
    fn slack_control_characters_are_escaped() {
        assert_eq!(
            slack_escape("A & B <!here> <https://x.example|y>"),
            "A &amp; B &lt;!here&gt; &lt;https://x.example|y&gt;"
        );
        assert_eq!(
            slack_escape("Kinetic Ltd *bold* _it_"),
            "Kinetic Ltd *bold* _it_"
        );
    }

    #[test]
    fn bad_targets_are_named() {
        let secret = || SecretString::from("0123456789abcdef");
        assert!(
            Webhook::new("ftp://x", secret())
                .unwrap_err()
                .contains("http")
        );
        assert!(
            Webhook::new("not a url", secret())
                .unwrap_err()
                .contains("not a URL")
        );
        assert!(
            Webhook::new("http://127.0.0.1:9/hook", SecretString::from("short"))
                .unwrap_err()
                .contains("16 characters")
        );
    }
}
