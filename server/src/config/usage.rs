//! Settings of API usage: how often it is collected, where alerts go, and what licences cost.

use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use super::ConfigError;
use super::setting::{Source, number, settings};
use super::storage::redact_url;

settings! {
    /// Usage collection, alerts and licence pricing.
    pub const USAGE = [
        USAGE_COLLECT_SECONDS: Option<Duration> {
            default: Value("600"),
            parse: |raw| match number(raw, 0..=86_400)? {
                0 => Ok(None),
                seconds if seconds < 60 => Err(format!(
                    "{seconds} is too often: at least 60 seconds (each run costs API calls), or 0 for never"
                )),
                seconds => Ok(Some(Duration::from_secs(seconds))),
            },
            help: "how often API usage is read from the org (60 to 86400; `0`: never here, another instance collects)",
        },
        ALERT_WEBHOOK_URL: Url {
            default: None,
            parse: |raw| {
                Url::parse(raw.trim())
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                    .ok_or_else(|| {
                        format!("'{}' is not an http:// or https:// URL", redact_url(raw.trim()))
                    })
            },
            help: "http(s) URL budget alerts are posted to (JSON with a Slack-compatible `text`); unset: mail only",
        },
        ALERT_WEBHOOK_SECRET: SecretString {
            default: None,
            parse: |raw| {
                let secret = raw.trim();
                if secret.len() < 16 {
                    return Err("is too short: use at least 16 characters".into());
                }
                Ok(SecretString::from(secret))
            },
            help: "with `ALERT_WEBHOOK_URL`: HMAC-SHA256 key (16+ characters) signing each post",
        },
        INTEGRATION_LICENCES_INCLUDED: u64 {
            default: Value("5"),
            parse: |raw| number(raw, 0..=100_000),
            help: "Salesforce Integration licences the org includes at no cost",
        },
        INTEGRATION_LICENCE_PRICE: u64 {
            default: Value("10"),
            parse: parse_price,
            help: "monthly price in USD of each further Salesforce Integration licence (e.g. `12.50`)",
        },
        ANOMALY_ACTION: services::usage::anomaly::AnomalyAction {
            default: Value("alert"),
            parse: services::usage::anomaly::AnomalyAction::parse,
            help: "what a usage anomaly does for grants without their own action: `alert` (mail, webhook, audit) or `freeze` (also suspend the grant and freeze its user); calls from outside the IP ranges always freeze",
        },
    ];
}

/// The alert webhook's target and signing secret (never printed).
#[derive(Clone)]
pub struct AlertWebhook {
    pub url: Url,
    pub secret: SecretString,
}

impl std::fmt::Debug for AlertWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertWebhook")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

/// The webhook: both settings, or neither.
pub(super) fn alert_webhook(source: &Source) -> Result<Option<AlertWebhook>, ConfigError> {
    let secret = ALERT_WEBHOOK_SECRET.raw(source);
    let Some(url) = ALERT_WEBHOOK_URL.get(source)? else {
        if secret.is_some() {
            return Err(ConfigError::new(
                ALERT_WEBHOOK_SECRET.name,
                "is set but ALERT_WEBHOOK_URL is not: set both, or neither",
            ));
        }
        return Ok(None);
    };
    let secret = ALERT_WEBHOOK_SECRET.value(secret)?.ok_or_else(|| {
        ConfigError::new(
            ALERT_WEBHOOK_SECRET.name,
            "is required with ALERT_WEBHOOK_URL: every alert is signed with it",
        )
    })?;
    Ok(Some(AlertWebhook { url, secret }))
}

/// What the org's Integration licences cost.
pub(super) fn licences(
    source: &Source,
) -> Result<services::usage::report::LicencePricing, ConfigError> {
    Ok(services::usage::report::LicencePricing {
        included: INTEGRATION_LICENCES_INCLUDED.read(source)?,
        price_cents: INTEGRATION_LICENCE_PRICE.read(source)?,
    })
}

/// A price in USD (`10`, `12.5`, `12.50`) as cents.
pub(super) fn parse_price(raw: &str) -> Result<u64, String> {
    let bad = || format!("'{raw}' is not a price in USD such as 10 or 12.50");
    let text = raw.trim().trim_start_matches('$');
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || fraction.len() > 2 || !fraction.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let whole: u64 = whole.parse().map_err(|_| bad())?;
    let cents: u64 = format!("{fraction:0<2}").parse().map_err(|_| bad())?;
    whole
        .checked_mul(100)
        .and_then(|w| w.checked_add(cents))
        .filter(|c| *c <= 100_000_000)
        .ok_or_else(bad)
}
