//! Salesforce's token endpoint answer (§1.2, §1.6) and the form POST that gets it.
//!
//! Salesforce's token responses differ from RFC 6749's: no `expires_in`, `issued_at` as a
//! millisecond string, and extra fields (`instance_url`, `id`, `signature`, `token_format`,
//! `api_instance_url`). Unknown fields are ignored.

use std::fmt;

use chrono::{DateTime, TimeZone, Utc};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::error::{Error, Result};
use crate::http::{self, HttpClient};
use crate::id::SalesforceId;

/// The token endpoint path on the org's host.
pub const TOKEN_PATH: &str = "/services/oauth2/token";

/// A successful token response. Not `Serialize`, and its secrets never Debug-print.
#[derive(Clone, Deserialize)]
pub struct TokenResponse {
    pub access_token: SecretString,
    #[serde(default)]
    pub token_type: Option<String>,
    /// The org's My Domain URL, the base for REST calls.
    pub instance_url: Url,
    /// The identity URL `https://login.salesforce.com/id/{orgId}/{userId}`.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "issued_at")]
    pub issued_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub refresh_token: Option<SecretString>,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub id_token: Option<SecretString>,
    #[serde(default)]
    pub signature: Option<String>,
    #[serde(default)]
    pub token_format: Option<String>,
    #[serde(default)]
    pub api_instance_url: Option<String>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[REDACTED]")
            .field("instance_url", &self.instance_url.as_str())
            .field("id", &self.id)
            .field("issued_at", &self.issued_at)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl TokenResponse {
    /// Decodes a token endpoint body.
    pub fn from_json(body: &[u8]) -> Result<Self> {
        serde_json::from_slice(body).map_err(|e| {
            // serde quotes offending values; in a token response one of them could be the
            // token, so only a missing field is named, otherwise just the position.
            let message = e.to_string();
            let safe = if message.starts_with("missing field") {
                message
            } else {
                format!("malformed at line {} column {}", e.line(), e.column())
            };
            Error::decode("token response", safe)
        })
    }

    /// The user the token acts for: the last segment of the identity URL.
    pub fn user_id(&self) -> Option<SalesforceId> {
        self.identity_segments()
            .and_then(|(_, user)| SalesforceId::parse(&user).ok())
    }

    /// The org: the second-to-last segment of the identity URL.
    pub fn org_id(&self) -> Option<SalesforceId> {
        self.identity_segments()
            .and_then(|(org, _)| SalesforceId::parse(&org).ok())
    }

    fn identity_segments(&self) -> Option<(String, String)> {
        let url = Url::parse(self.id.as_deref()?).ok()?;
        let mut segments: Vec<&str> = url.path_segments()?.filter(|s| !s.is_empty()).collect();
        let user = segments.pop()?.to_string();
        let org = segments.pop()?.to_string();
        Some((org, user))
    }
}

/// `issued_at`: a string or number of epoch milliseconds (every sample), or seconds (old docs).
fn issued_at<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<DateTime<Utc>>, D::Error> {
    let raw = match Value::deserialize(deserializer)? {
        Value::String(s) => s.trim().parse::<i64>().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    };
    // Ten-digit values are seconds; thirteen-digit values milliseconds.
    Ok(raw.and_then(|n| {
        if n.abs() < 100_000_000_000 {
            Utc.timestamp_opt(n, 0).single()
        } else {
            Utc.timestamp_millis_opt(n).single()
        }
    }))
}

/// The token endpoint of an org.
pub fn token_url(instance_url: &Url) -> Result<Url> {
    instance_url
        .join(TOKEN_PATH)
        .map_err(|e| Error::Config(format!("bad instance URL: {e}")))
}

/// POSTs a token request form, optionally with HTTP Basic client authentication, and
/// decodes the answer. One attempt; callers decide about retries.
pub(crate) async fn request_token(
    http: &HttpClient,
    url: Url,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> Result<TokenResponse> {
    let mut request = http
        .reqwest()
        .post(url)
        .timeout(http.request_timeout())
        .header(reqwest::header::ACCEPT, "application/json")
        .form(form);
    if let Some((user, password)) = basic {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send().await.map_err(http::transport_error)?;
    let status = response.status().as_u16();
    if !response.status().is_success() {
        let body = http::read_error_body(response).await;
        return Err(Error::from_oauth_response(status, &body));
    }
    let body = http::read_body(response).await?;
    TokenResponse::from_json(&body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn decodes_the_client_credentials_sample() {
        // §1.2, with the comma the original lacks after instance_url.
        let body = br#"{
"access_token": "00Dxx0000001gPL!AR8AQO.s3cr3t",
"signature": "nUFHwtfIGLKDTHcLWmDBG8frv0t+HQGl/iCZFIQUarE=",
"token_format": "opaque",
"instance_url": "https://instance_name.my.salesforce.com",
"id": "https://login.salesforce.com/id/00D5g000000AbCdEAK/0055g00000XyZabAAE",
"token_type": "Bearer",
"issued_at": "1678833535086"
}"#;
        let token = TokenResponse::from_json(body).unwrap();
        assert_eq!(
            token.access_token.expose_secret(),
            "00Dxx0000001gPL!AR8AQO.s3cr3t"
        );
        assert_eq!(
            token.instance_url.as_str(),
            "https://instance_name.my.salesforce.com/"
        );
        assert_eq!(
            token.issued_at.unwrap().timestamp_millis(),
            1_678_833_535_086
        );
        assert_eq!(token.token_format.as_deref(), Some("opaque"));
        assert!(token.refresh_token.is_none());
        // Neither Debug nor the error path shows the token.
        let debug = format!("{token:?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
        assert!(debug.contains("REDACTED"));
    }

    #[test]
    fn decodes_the_postman_sample_with_extra_fields() {
        let body = br#"{ "access_token": "tok", "signature": "sig", "scope": "api refresh_token",
          "instance_url": "https://acme.my.salesforce.com", "id": "https://login.salesforce.com/id/00D5g000000AbCdEAK/0055g00000XyZabAAE",
          "token_type": "Bearer", "issued_at": 1678833535, "api_instance_url": "https://api.salesforce.com",
          "something_new": {"nested": true} }"#;
        let token = TokenResponse::from_json(body).unwrap();
        assert_eq!(token.scope.as_deref(), Some("api refresh_token"));
        assert_eq!(token.issued_at.unwrap().timestamp(), 1_678_833_535);
        assert_eq!(
            token.api_instance_url.as_deref(),
            Some("https://api.salesforce.com")
        );
    }

    #[test]
    fn identity_url_names_org_and_user() {
        let org = SalesforceId::parse("00D5g000000AbCd").unwrap();
        let user = SalesforceId::parse("0055g00000XyZab").unwrap();
        let body = format!(
            r#"{{"access_token":"t","instance_url":"https://x.my.salesforce.com","id":"https://login.salesforce.com/id/{org}/{user}"}}"#
        );
        let token = TokenResponse::from_json(body.as_bytes()).unwrap();
        assert_eq!(token.org_id(), Some(org));
        assert_eq!(token.user_id(), Some(user));
    }

    #[test]
    fn a_body_without_a_token_is_a_decode_error() {
        let err = TokenResponse::from_json(br#"{"instance_url":"https://x"}"#).unwrap_err();
        assert!(matches!(err, Error::Decode { .. }));
    }

    #[test]
    fn token_url_uses_the_org_host() {
        let url = token_url(&Url::parse("https://acme.my.salesforce.com").unwrap()).unwrap();
        assert_eq!(
            url.as_str(),
            "https://acme.my.salesforce.com/services/oauth2/token"
        );
    }
}
