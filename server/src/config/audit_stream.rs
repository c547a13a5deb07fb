//! Settings of the audit stream: where the audit log is streamed (syslog, Splunk HEC, a
//! signed webhook), with what trust, how much at a time and how often.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use services::audit_stream::hec::HecTarget;
use services::audit_stream::syslog::SyslogTarget;
use services::audit_stream::webhook::WebhookTarget;
use services::audit_stream::{SinkConfig, StreamSettings};
use url::Url;

use super::ConfigError;
use super::setting::{Source, number, path, settings};

/// A secret of at least 16 characters, without spaces.
fn secret(raw: &str) -> Result<SecretString, String> {
    let secret = raw.trim();
    if secret.len() < 16 {
        return Err("is too short: use at least 16 characters".into());
    }
    if secret.chars().any(char::is_whitespace) {
        return Err("must not contain spaces".into());
    }
    Ok(SecretString::from(secret))
}

settings! {
    /// The audit log streamed to a SIEM.
    pub const AUDIT_STREAM = [
        AUDIT_SYSLOG_URL: SyslogTarget {
            default: None,
            parse: SyslogTarget::parse,
            help: "stream every audit entry to syslog: `tcp://host:port` or `tls://host:port` (RFC 5424 messages, octet-counted framing, the entry's seq as MSGID); unset: no syslog sink",
        },
        AUDIT_HEC_URL: Url {
            default: None,
            parse: HecTarget::parse_url,
            help: "stream every audit entry to a Splunk HTTP Event Collector: its base URL (`https://splunk.example:8088`; `/services/collector/event` is added) or its full event URL; needs `AUDIT_HEC_TOKEN`",
        },
        AUDIT_HEC_TOKEN: SecretString {
            default: None,
            parse: secret,
            help: "with `AUDIT_HEC_URL`: the HEC token (sent as `Authorization: Splunk <token>`; never logged or shown)",
        },
        AUDIT_WEBHOOK_URL: Url {
            default: None,
            parse: |raw| {
                Url::parse(raw.trim())
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                    .ok_or_else(|| {
                        format!(
                            "'{}' is not an http:// or https:// URL",
                            services::audit_stream::redact(raw)
                        )
                    })
            },
            help: "stream every audit entry to a webhook: batches of entries POSTed as JSON, signed like the alert webhook (`X-Portcullis-Signature`); needs `AUDIT_WEBHOOK_SECRET`",
        },
        AUDIT_WEBHOOK_SECRET: SecretString {
            default: None,
            parse: secret,
            help: "with `AUDIT_WEBHOOK_URL`: HMAC-SHA256 key (16+ characters) signing each post",
        },
        AUDIT_STREAM_CA_FILE: PathBuf {
            default: None,
            parse: path,
            help: "an extra trusted CA (PEM) for `tls://` syslog and https collectors and webhooks, besides the system's roots (for a self-signed receiver)",
        },
        AUDIT_STREAM_BATCH: i64 {
            default: Value("500"),
            parse: |raw| number(raw, 1..=10_000).map(|n| n as i64),
            help: "audit entries sent at most in one batch to each sink (1 to 10000)",
        },
        AUDIT_STREAM_INTERVAL_MS: Duration {
            default: Value("1000"),
            parse: |raw| number(raw, 50..=60_000).map(Duration::from_millis),
            help: "how often the stream looks for new audit entries, in milliseconds (50 to 60000)",
        },
    ];
}

/// A setting that needs another: `ConfigError` naming the one missing.
fn pair<T>(
    value: Option<T>,
    needs: Option<SecretString>,
    (value_name, needs_name): (&'static str, &'static str),
    why: &str,
) -> Result<Option<(T, SecretString)>, ConfigError> {
    match (value, needs) {
        (Some(value), Some(needs)) => Ok(Some((value, needs))),
        (Some(_), None) => Err(ConfigError::new(
            needs_name,
            format!("is required with {value_name}: {why}"),
        )),
        (None, Some(_)) => Err(ConfigError::new(
            needs_name,
            format!("is set but {value_name} is not: set both, or neither"),
        )),
        (None, None) => Ok(None),
    }
}

/// The sinks and how they are streamed to; `hostname` names this portal in messages.
pub(super) fn audit_stream(source: &Source, hostname: &str) -> Result<StreamSettings, ConfigError> {
    let mut sinks = Vec::new();
    if let Some(target) = AUDIT_SYSLOG_URL.get(source)? {
        sinks.push(SinkConfig::Syslog(target));
    }
    let hec = pair(
        AUDIT_HEC_URL.get(source)?,
        AUDIT_HEC_TOKEN.get(source)?,
        (AUDIT_HEC_URL.name, AUDIT_HEC_TOKEN.name),
        "the collector refuses events without a token",
    )?;
    if let Some((url, token)) = hec {
        sinks.push(SinkConfig::Hec(HecTarget { url, token }));
    }
    let webhook = pair(
        AUDIT_WEBHOOK_URL.get(source)?,
        AUDIT_WEBHOOK_SECRET.get(source)?,
        (AUDIT_WEBHOOK_URL.name, AUDIT_WEBHOOK_SECRET.name),
        "every post is signed with it",
    )?;
    if let Some((url, secret)) = webhook {
        sinks.push(SinkConfig::Webhook(WebhookTarget { url, secret }));
    }
    let ca_file = AUDIT_STREAM_CA_FILE.get(source)?;
    if let Some(file) = &ca_file {
        // Read now, so a missing or unreadable file stops the start with its setting named.
        services::audit_stream::syslog::read_ca_file(file)
            .map_err(|e| ConfigError::new(AUDIT_STREAM_CA_FILE.name, e))?;
    }
    Ok(StreamSettings {
        sinks,
        ca_file,
        hostname: hostname.to_string(),
        batch: AUDIT_STREAM_BATCH.read(source)?,
        interval: AUDIT_STREAM_INTERVAL_MS.read(source)?,
        ..StreamSettings::default()
    })
}
