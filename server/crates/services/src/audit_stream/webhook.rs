//! The signed webhook sink: a batch is one JSON POST,
//! `{"event": "audit.entries", "entries": [<each entry's JSON line as an object>…]}`, signed
//! and labelled exactly as the usage alerts' webhook is (`usage::webhook::Signed`: the
//! `X-Portcullis-Signature` HMAC over `<t>.<body>`, `X-Portcullis-Delivery`,
//! `X-Portcullis-Event: audit.entries`). The delivery id is `audit-<first seq>-<last seq>`,
//! the same for every retry of one batch; each entry carries its own `seq`. A 2xx answer
//! acknowledges the batch.

use std::path::Path;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::json;

use crate::audit::Entry;
use crate::clock::SharedClock;
use crate::usage::webhook::Signed;

/// The `X-Portcullis-Event` of a batch of entries.
pub const EVENT: &str = "audit.entries";

/// The webhook's URL and signing secret (never printed).
#[derive(Clone)]
pub struct WebhookTarget {
    pub url: url::Url,
    pub secret: SecretString,
}

impl std::fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("host", &self.url.host_str())
            .finish_non_exhaustive()
    }
}

impl WebhookTarget {
    /// "signed webhook to host:port" (the path may hold a secret, so it is not shown).
    pub fn describe(&self) -> String {
        format!(
            "signed webhook to {}{}",
            self.url.host_str().unwrap_or_default(),
            self.url.port().map(|p| format!(":{p}")).unwrap_or_default()
        )
    }
}

/// The webhook sink, ready to send.
#[derive(Clone)]
pub struct AuditWebhook {
    target: WebhookTarget,
    http: reqwest::Client,
    clock: SharedClock,
}

impl std::fmt::Debug for AuditWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWebhook")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl AuditWebhook {
    pub fn new(
        target: WebhookTarget,
        ca_file: Option<&Path>,
        clock: SharedClock,
    ) -> Result<Self, String> {
        Ok(Self {
            target,
            http: crate::audit_stream::http_client(ca_file)?,
            clock,
        })
    }

    pub fn target(&self) -> &WebhookTarget {
        &self.target
    }

    /// Posts `entries` as one signed delivery; `Ok` on a 2xx answer.
    pub async fn send(&self, entries: &[Entry]) -> Result<(), String> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(());
        };
        let body = json!({
            "event": EVENT,
            "entries": entries.iter().map(Entry::json).collect::<Vec<_>>(),
        })
        .to_string();
        let delivery = format!("audit-{}-{}", first.seq, last.seq);
        let signed = Signed {
            url: self.target.url.as_str(),
            secret: &self.target.secret,
            timestamp: self.clock.now_ms() / 1000,
            delivery: &delivery,
            event: EVENT,
        };
        tokio::time::timeout(Duration::from_secs(30), signed.post(&self.http, body))
            .await
            .map_err(|_| "the receiver did not answer within 30 s".to_string())?
    }
}
