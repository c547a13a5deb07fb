//! The Splunk HTTP Event Collector sink: a batch is one `POST /services/collector/event`
//! with `Authorization: Splunk <token>` and the events stacked one after another in the
//! body, as Splunk documents for batches. Each event is
//! `{"time": <seconds>, "host": …, "source": "portcullis", "sourcetype": "portcullis:audit",
//! "fields": {"seq": "<seq>"}, "event": <the entry's JSON line as an object>}`: the entry's
//! `seq` is an indexed field and inside the event. A batch is acknowledged when the
//! collector answers 200 with `{"text":"Success","code":0}` (Splunk's documented success);
//! anything else — another status, another code, a body that is not that — is a failure,
//! retried, and its `text` and `code` (never the token) say why.

use std::path::Path;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::audit::Entry;

/// Where HEC events go, below the collector's base URL.
pub const EVENT_PATH: &str = "/services/collector/event";

/// The collector's URL and token (never printed).
#[derive(Clone)]
pub struct HecTarget {
    /// The event endpoint (`…/services/collector/event`).
    pub url: url::Url,
    pub token: SecretString,
}

impl std::fmt::Debug for HecTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HecTarget")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

impl HecTarget {
    /// `raw`: the collector's base URL (`https://splunk.example:8088`, the event path is
    /// added) or its full event URL; http or https, no credentials in it.
    pub fn parse_url(raw: &str) -> Result<url::Url, String> {
        let raw = raw.trim();
        let mut url = url::Url::parse(raw)
            .map_err(|e| format!("'{}' is not a URL: {e}", crate::audit_stream::redact(raw)))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!(
                "'{}' is not an http:// or https:// URL",
                crate::audit_stream::redact(raw)
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "the collector's URL takes no user or password: the token goes in AUDIT_HEC_TOKEN"
                    .into(),
            );
        }
        if url.query().is_some() {
            return Err(
                "the collector's URL takes no query: the token goes in AUDIT_HEC_TOKEN".into(),
            );
        }
        if matches!(url.path(), "" | "/") {
            url.set_path(EVENT_PATH);
        }
        Ok(url)
    }

    /// "Splunk HEC at host:port".
    pub fn describe(&self) -> String {
        format!(
            "Splunk HEC at {}{}",
            self.url.host_str().unwrap_or_default(),
            self.url.port().map(|p| format!(":{p}")).unwrap_or_default()
        )
    }
}

/// The HEC sink, ready to send.
#[derive(Clone, Debug)]
pub struct Hec {
    target: HecTarget,
    hostname: String,
    http: reqwest::Client,
}

impl Hec {
    pub fn new(target: HecTarget, hostname: &str, ca_file: Option<&Path>) -> Result<Self, String> {
        let http = crate::audit_stream::http_client(ca_file)?;
        Ok(Self {
            target,
            hostname: hostname.to_string(),
            http,
        })
    }

    pub fn target(&self) -> &HecTarget {
        &self.target
    }

    /// The batch's body: one event object after another.
    pub fn body(&self, entries: &[Entry]) -> String {
        let mut body = String::new();
        for entry in entries {
            let event = event(entry, &self.hostname);
            body.push_str(&event.to_string());
            body.push('\n');
        }
        body
    }

    /// Posts `entries` as one batch; `Ok` when the collector answered Success.
    pub async fn send(&self, entries: &[Entry]) -> Result<(), String> {
        let response = self
            .http
            .post(self.target.url.clone())
            .timeout(Duration::from_secs(30))
            .header(
                "authorization",
                format!("Splunk {}", self.target.token.expose_secret()),
            )
            .header("content-type", "application/json")
            .body(self.body(entries))
            .send()
            .await
            .map_err(|e| {
                format!(
                    "could not post to the collector: {}",
                    salesforce::http::chain(&e.without_url())
                )
            })?;
        let status = response.status();
        let answer: Option<Value> = response.json().await.ok();
        let text = answer
            .as_ref()
            .and_then(|a| a["text"].as_str())
            .map(|t| t.chars().take(200).collect::<String>());
        let code = answer.as_ref().and_then(|a| a["code"].as_i64());
        match (status.as_u16(), text.as_deref(), code) {
            (200, Some("Success"), Some(0)) => Ok(()),
            (status, Some(text), Some(code)) => Err(format!(
                "the collector answered HTTP {status}: {text} (code {code})"
            )),
            (status, _, _) => Err(format!(
                "the collector answered HTTP {status} without Splunk's success answer"
            )),
        }
    }
}

/// One entry as a HEC event.
pub fn event(entry: &Entry, hostname: &str) -> Value {
    json!({
        "time": entry.at as f64 / 1000.0,
        "host": hostname,
        "source": "portcullis",
        "sourcetype": "portcullis:audit",
        "fields": { "seq": entry.seq.to_string() },
        "event": entry.json(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_url_gets_the_event_path_and_credentials_are_refused() {
        assert_eq!(
            HecTarget::parse_url("https://splunk.example:8088")
                .unwrap()
                .as_str(),
            "https://splunk.example:8088/services/collector/event"
        );
        assert_eq!(
            HecTarget::parse_url("http://h:1/custom/event")
                .unwrap()
                .path(),
            "/custom/event"
        );
        assert!(
            HecTarget::parse_url("ftp://h")
                .unwrap_err()
                .contains("http")
        );
        let refused = HecTarget::parse_url("https://u:hunter2@h").unwrap_err();
        assert!(refused.contains("AUDIT_HEC_TOKEN") && !refused.contains("hunter2"));
        assert!(
            HecTarget::parse_url("https://h/?token=x")
                .unwrap_err()
                .contains("query")
        );
    }
}
