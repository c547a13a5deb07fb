//! Connect REST for External Client Apps (§5): find the app, read its consumer key and
//! secret, stage and rotate new credentials, and revoke tokens.
//!
//! The consumer secret is only ever held as a [`SecretString`]: the types that carry it
//! implement neither `Serialize` nor a revealing `Debug`, so it cannot leak into logs,
//! JSON or server-function results by accident.

use chrono::{DateTime, Utc};
use reqwest::Method;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::client::{ApiRequest, Client};
use crate::error::{Error, Result};
use crate::retry::Idempotency;
use crate::wire;

/// Stop following `nextPageUrl` after this many pages (a safety net against a loop).
const MAX_PAGES: usize = 1000;

/// An app with OAuth usage (`/apps/oauth/usage`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthUsageApp {
    /// The External Client App's id: the `app_id` of the other calls.
    #[serde(deserialize_with = "wire::lenient_string")]
    pub identifier: String,
    #[serde(default, deserialize_with = "wire::lenient_string")]
    pub developer_name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// `JWT` or `Opaque`.
    #[serde(default)]
    pub access_token_format: Option<String>,
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub is_from_package: bool,
    #[serde(default)]
    pub usage_details_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageCollection {
    #[serde(default, deserialize_with = "wire::one_or_many")]
    apps: Vec<OAuthUsageApp>,
    #[serde(default)]
    next_page_url: Option<String>,
}

/// Which credential parts to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialPart {
    Key,
    Secret,
    KeyAndSecret,
}

impl CredentialPart {
    pub fn as_param(self) -> &'static str {
        match self {
            CredentialPart::Key => "key",
            CredentialPart::Secret => "secret",
            CredentialPart::KeyAndSecret => "keyandsecret",
        }
    }
}

/// An OAuth consumer of an app (`App Oauth Credentials`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerCredentials {
    /// The consumer id: the `consumer_id` of the other calls.
    #[serde(deserialize_with = "wire::lenient_string")]
    pub id: String,
    /// The consumer key (client_id). Not secret.
    #[serde(default)]
    pub key: Option<String>,
    /// The consumer secret, only when asked for.
    #[serde(default)]
    pub secret: Option<SecretString>,
    /// The application's name.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub staged_credentials_url: Option<String>,
}

#[derive(Deserialize)]
struct CredentialsCollection {
    #[serde(default, deserialize_with = "wire::one_or_many")]
    consumers: Vec<ConsumerCredentials>,
}

/// The state of staged credentials.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub enum StagedState {
    Active,
    Expired,
    Rotated,
    #[serde(other)]
    Unknown,
}

/// Staged (not yet primary) credentials, valid 30 days (`App Oauth Staged Credentials`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StagedCredentials {
    #[serde(deserialize_with = "wire::lenient_string")]
    pub id: String,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub secret: Option<SecretString>,
    #[serde(default)]
    pub state: Option<StagedState>,
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_datetime")]
    pub created_date: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "wire::opt_datetime")]
    pub expiration_date: Option<DateTime<Utc>>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub staged_credentials_url: Option<String>,
}

/// Staged credentials arrive as a collection (`{"stagedCredentials": [...]}`), an array or
/// one object; the reference does not pin down which resource answers which way.
fn staged_list(value: Value) -> Result<Vec<StagedCredentials>> {
    let decode = |v: Value| {
        serde_json::from_value::<StagedCredentials>(v)
            .map_err(|e| Error::decode("staged credentials", e))
    };
    match value {
        Value::Object(mut map) if map.contains_key("stagedCredentials") => {
            match map.remove("stagedCredentials") {
                Some(Value::Array(items)) => items.into_iter().map(decode).collect(),
                Some(Value::Null) | None => Ok(Vec::new()),
                Some(single) => Ok(vec![decode(single)?]),
            }
        }
        Value::Array(items) => items.into_iter().map(decode).collect(),
        Value::Null => Ok(Vec::new()),
        single => Ok(vec![decode(single)?]),
    }
}

/// Whether an error says the org does not allow reading consumer secrets over REST
/// (`enableClientSecretInRestApiAccess` off): matched by its error code, never by its
/// message (messages change and are translated). The code a real org sends is UNCONFIRMED;
/// `FUNCTIONALITY_NOT_ENABLED` is the one for a feature turned off. The portal then falls
/// back to storing the secret.
pub fn is_secret_access_disabled(error: &Error) -> bool {
    let Error::Api { errors, .. } = error else {
        return false;
    };
    errors
        .iter()
        .any(|e| e.error_code == "FUNCTIONALITY_NOT_ENABLED")
}

/// The first API version with staged credentials (`…/credentials/{appId}/{consumerId}/staged`,
/// reference §5: "65.0").
pub const STAGED_CREDENTIALS_SINCE: u16 = 65;

/// Why an org cannot stage credentials for an app, when it cannot: the client speaks an API
/// older than 65.0 (known before any call), or the org answered a staging with its
/// credentials API closed ([`is_secret_access_disabled`]). `error` is the answer to the
/// staging, if one was asked for. Any other error is not a refusal (a transient fault, a
/// missing app): the caller reports it as it is.
pub fn staging_refused(version: crate::ApiVersion, error: Option<&Error>) -> Option<&'static str> {
    if version.major() < STAGED_CREDENTIALS_SINCE {
        return Some("the org's API version is older than 65.0, which has no staged credentials");
    }
    match error {
        Some(e) if is_secret_access_disabled(e) => {
            Some("the org's credentials API is closed (enableClientSecretInRestApiAccess is off)")
        }
        _ => None,
    }
}

impl Client {
    /// Every app with OAuth usage, following `nextPageUrl`.
    pub async fn oauth_usage_apps(&self) -> Result<Vec<OAuthUsageApp>> {
        let mut url = self.rest_url(&["apps", "oauth", "usage"])?;
        let mut apps = Vec::new();
        for _ in 0..MAX_PAGES {
            let page: UsageCollection = self.get_json(&url).await?;
            apps.extend(page.apps);
            match page.next_page_url.filter(|next| !next.is_empty()) {
                Some(next) => url = self.resolve_relative(&next)?,
                None => return Ok(apps),
            }
        }
        Err(Error::decode(
            "OAuth usage",
            format!("more than {MAX_PAGES} pages; stopping"),
        ))
    }

    /// The OAuth consumers of an app, keys only.
    pub async fn app_credentials(&self, app_id: &str) -> Result<Vec<ConsumerCredentials>> {
        let url = self.rest_url(&["apps", "oauth", "credentials", app_id])?;
        let collection: CredentialsCollection = self.get_json(&url).await?;
        Ok(collection.consumers)
    }

    /// One consumer's key and/or secret (`?part=`).
    pub async fn consumer_credential(
        &self,
        app_id: &str,
        consumer_id: &str,
        part: CredentialPart,
    ) -> Result<ConsumerCredentials> {
        let mut url = self.rest_url(&["apps", "oauth", "credentials", app_id, consumer_id])?;
        url.query_pairs_mut().append_pair("part", part.as_param());
        self.get_json(&url).await
    }

    /// Creates staged credentials (POST, no body; API 65.0+).
    pub async fn create_staged(
        &self,
        app_id: &str,
        consumer_id: &str,
    ) -> Result<StagedCredentials> {
        let url = self.rest_url(&[
            "apps",
            "oauth",
            "credentials",
            app_id,
            consumer_id,
            "staged",
        ])?;
        let value: Value = self.send_json(&ApiRequest::new(Method::POST, url)).await?;
        let mut staged = staged_list(value)?;
        // A collection answer: the newest active entry is the one just created.
        staged.sort_by_key(|s| (s.state == Some(StagedState::Active), s.created_date));
        staged
            .pop()
            .ok_or_else(|| Error::decode("staged credentials", "the answer lists none"))
    }

    /// The staged credentials of a consumer.
    pub async fn staged_credentials(
        &self,
        app_id: &str,
        consumer_id: &str,
    ) -> Result<Vec<StagedCredentials>> {
        let url = self.rest_url(&[
            "apps",
            "oauth",
            "credentials",
            app_id,
            consumer_id,
            "staged",
        ])?;
        staged_list(self.get_json(&url).await?)
    }

    /// Replaces the primary credentials with staged ones (`{"command":"rotate"}`). The old
    /// secret stops working; not repeated blindly after an unknown outcome.
    pub async fn rotate_staged(
        &self,
        app_id: &str,
        consumer_id: &str,
        staged_id: &str,
    ) -> Result<()> {
        let url = self.rest_url(&[
            "apps",
            "oauth",
            "credentials",
            app_id,
            consumer_id,
            "staged",
            staged_id,
        ])?;
        let request = ApiRequest::new(Method::PATCH, url)
            .json(&json!({ "command": "rotate" }))?
            .idempotency(Idempotency::NonIdempotent);
        self.send_no_content(&request).await
    }

    /// Deletes staged credentials (204).
    pub async fn delete_staged(
        &self,
        app_id: &str,
        consumer_id: &str,
        staged_id: &str,
    ) -> Result<()> {
        let url = self.rest_url(&[
            "apps",
            "oauth",
            "credentials",
            app_id,
            consumer_id,
            "staged",
            staged_id,
        ])?;
        self.send_no_content(&ApiRequest::new(Method::DELETE, url))
            .await
    }

    /// Revokes one user's tokens for an app (204).
    pub async fn revoke_user_app_tokens(&self, app_id: &str, user_id: &str) -> Result<()> {
        let url = self.rest_url(&["apps", "oauth", "usage", app_id, user_id, "tokens"])?;
        self.send_no_content(&ApiRequest::new(Method::DELETE, url))
            .await
    }

    /// Revokes every token of an app (204).
    pub async fn revoke_app_tokens(&self, app_id: &str) -> Result<()> {
        let url = self.rest_url(&["apps", "oauth", "usage", app_id, "tokens"])?;
        self.send_no_content(&ApiRequest::new(Method::DELETE, url))
            .await
    }

    /// Revokes one token by the id from its `revocationUrl` (204).
    pub async fn revoke_token_by_id(&self, token_id: &str) -> Result<()> {
        let url = self.rest_url(&["apps", "oauth", "usage", "tokens", token_id])?;
        self.send_no_content(&ApiRequest::new(Method::DELETE, url))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ApiError;
    use secrecy::ExposeSecret;

    #[test]
    fn staging_is_refused_below_65_or_with_the_credentials_api_closed() {
        let v = |raw: &str| crate::ApiVersion::parse(raw).unwrap();
        assert!(staging_refused(v("64.0"), None).is_some());
        assert!(staging_refused(v("65.0"), None).is_none());
        let closed = Error::Api {
            status: 403,
            errors: vec![ApiError {
                message: "not enabled".into(),
                error_code: "FUNCTIONALITY_NOT_ENABLED".into(),
                fields: Vec::new(),
            }],
        };
        assert!(staging_refused(v("66.0"), Some(&closed)).is_some());
        let missing = Error::Api {
            status: 404,
            errors: vec![ApiError {
                message: "no app".into(),
                error_code: "NOT_FOUND".into(),
                fields: Vec::new(),
            }],
        };
        assert!(
            staging_refused(v("66.0"), Some(&missing)).is_none(),
            "a missing app is not a refusal"
        );
    }

    #[test]
    fn usage_collection_decodes() {
        let page: UsageCollection = serde_json::from_str(
            r#"{"apps":[{"developerName":"Acme_Contractor","identifier":"0xIxx0000000001AAA","accessTokenFormat":"Opaque",
                "availableActions":[],"description":null,"isFromPackage":false,"usageDetailsUrl":"/services/data/v66.0/apps/oauth/usage/0xIxx0000000001AAA/users"}],
               "currentPageUrl":"/services/data/v66.0/apps/oauth/usage","nextPageUrl":null}"#,
        )
        .unwrap();
        assert_eq!(page.apps[0].identifier, "0xIxx0000000001AAA");
        assert_eq!(page.apps[0].developer_name, "Acme_Contractor");
        assert!(page.next_page_url.is_none());
    }

    #[test]
    fn credentials_decode_with_and_without_secret() {
        let collection: CredentialsCollection = serde_json::from_str(
            r#"{"consumers":[{"id":"0Hnxx0000000001","key":"3MVG9abc","name":"Acme_Contractor",
               "url":"/services/data/v66.0/apps/oauth/credentials/0xI/0Hn","stagedCredentialsUrl":"/services/data/v66.0/apps/oauth/credentials/0xI/0Hn/staged"}],
               "currentPageUrl":"/x"}"#,
        )
        .unwrap();
        let consumer = &collection.consumers[0];
        assert_eq!(consumer.key.as_deref(), Some("3MVG9abc"));
        assert!(consumer.secret.is_none());
        assert!(
            consumer
                .staged_credentials_url
                .as_deref()
                .unwrap()
                .ends_with("/staged")
        );

        let full: ConsumerCredentials = serde_json::from_str(
            r#"{"id":"0Hnxx0000000001","key":"3MVG9abc","name":"Acme_Contractor","secret":"8A4BE698BCA216718ECB","url":"/x"}"#,
        )
        .unwrap();
        assert_eq!(
            full.secret.as_ref().unwrap().expose_secret(),
            "8A4BE698BCA216718ECB"
        );
        let debug = format!("{full:?}");
        assert!(!debug.contains("8A4BE698"), "{debug}");
        assert!(debug.contains("3MVG9abc"));
    }

    #[test]
    fn staged_credentials_decode_in_every_shape() {
        let item = r#"{"createdBy":"005xx","createdDate":"2026-03-01T10:15:00.000+0000","expirationDate":"2026-03-31T10:15:00.000Z",
                       "id":"stg1","key":"3MVG9new","secret":"NEWSECRET","state":"Active","url":"/u","stagedCredentialsUrl":"/s"}"#;
        let collection: Value =
            serde_json::from_str(&format!(r#"{{"stagedCredentials":[{item}],"url":"/s"}}"#))
                .unwrap();
        let list = staged_list(collection).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].state, Some(StagedState::Active));
        assert_eq!(
            list[0].secret.as_ref().unwrap().expose_secret(),
            "NEWSECRET"
        );
        assert!(list[0].expiration_date.unwrap() > list[0].created_date.unwrap());
        assert!(!format!("{list:?}").contains("NEWSECRET"));

        let single: Value = serde_json::from_str(item).unwrap();
        assert_eq!(staged_list(single).unwrap()[0].id, "stg1");
        let array: Value = serde_json::from_str(&format!("[{item}]")).unwrap();
        assert_eq!(staged_list(array).unwrap().len(), 1);
        let empty: Value = serde_json::from_str(r#"{"stagedCredentials":[],"url":"/s"}"#).unwrap();
        assert!(staged_list(empty).unwrap().is_empty());
        let odd: Value = serde_json::from_str(r#"{"id":"x","state":"Pending"}"#).unwrap();
        assert_eq!(
            staged_list(odd).unwrap()[0].state,
            Some(StagedState::Unknown)
        );
    }

    #[test]
    fn credential_parts() {
        assert_eq!(CredentialPart::Key.as_param(), "key");
        assert_eq!(CredentialPart::Secret.as_param(), "secret");
        assert_eq!(CredentialPart::KeyAndSecret.as_param(), "keyandsecret");
    }

    #[test]
    fn disabled_secret_access_is_recognised() {
        let disabled = Error::Api {
            status: 403,
            errors: vec![ApiError::new(
                "FUNCTIONALITY_NOT_ENABLED",
                "This feature is not currently enabled for this user.",
            )],
        };
        assert!(is_secret_access_disabled(&disabled));
        let other = Error::Api {
            status: 404,
            errors: vec![ApiError::new(
                "NOT_FOUND",
                "The requested resource does not exist",
            )],
        };
        assert!(!is_secret_access_disabled(&other));
    }
}
