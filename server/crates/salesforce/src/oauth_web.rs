//! OAuth for people and contractors: the web-server flow with PKCE (S256) and `state` for
//! "Log in with Salesforce" (§1.4), and the token endpoints the portal calls with someone
//! else's credentials: client credentials (proving a contractor's key and secret work,
//! §1.2), revoke (§1.8) and userinfo (§1.9).
//!
//! The `oauth2` crate builds the authorize URL, the PKCE pair, the `state` value and the
//! code exchange request; it sends them through our reqwest client (TLS settings included)
//! via [`oauth2::AsyncHttpClient`]. Salesforce's token answer (no `expires_in`, extra
//! fields) is decoded by [`TokenResponse`], the same type every other flow uses.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use oauth2::basic::BasicClient;
use oauth2::{
    AsyncHttpClient, AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    HttpRequest, HttpResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenUrl,
};
use reqwest::header::{ACCEPT, AUTHORIZATION};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::error::{Error, Result};
use crate::http::{self, HttpClient};
use crate::id::SalesforceId;
use crate::token::{self, TokenResponse};
use crate::wire;

pub const AUTHORIZE_PATH: &str = "/services/oauth2/authorize";
pub const REVOKE_PATH: &str = "/services/oauth2/revoke";
pub const USERINFO_PATH: &str = "/services/oauth2/userinfo";

/// The `state` value of one sign-in attempt: keep it in the session, compare on callback.
#[derive(Clone, PartialEq, Eq)]
pub struct CsrfState(String);

impl CsrfState {
    /// Restores a value kept in the session.
    pub fn from_session(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison with the `state` the callback carried.
    pub fn matches(&self, received: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), received.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl std::fmt::Debug for CsrfState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfState(..)")
    }
}

/// The PKCE code verifier of one sign-in attempt: a secret until the code is exchanged.
#[derive(Clone, Debug)]
pub struct PkceVerifier(SecretString);

impl PkceVerifier {
    /// Restores a verifier kept in the (server-side) session.
    pub fn from_secret(secret: SecretString) -> Self {
        Self(secret)
    }

    /// To store it in the server-side session.
    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

/// What to send the browser to, and what to keep until it comes back.
#[derive(Debug)]
pub struct PendingAuthorization {
    /// Redirect the browser here.
    pub url: Url,
    pub state: CsrfState,
    pub pkce_verifier: PkceVerifier,
}

/// Settings of the portal's sign-in app.
#[derive(Debug, Clone)]
pub struct WebFlowConfig {
    /// The org's My Domain URL (or `https://login.salesforce.com`).
    pub login_url: Url,
    pub client_id: String,
    /// Optional when the app has `isConsumerSecretOptional`.
    pub client_secret: Option<SecretString>,
    /// Must match the app's callback URL exactly.
    pub redirect_url: Url,
    /// e.g. `["openid", "api", "id"]`.
    pub scopes: Vec<String>,
}

/// Extra authorize parameters.
#[derive(Debug, Clone, Default)]
pub struct AuthorizeOptions {
    /// `login`, `consent`, `select_account`, ...
    pub prompt: Option<String>,
    pub login_hint: Option<String>,
}

/// Why a sign-in callback was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// Salesforce redirected back with `error=...` (e.g. the user denied access).
    #[error("Salesforce did not authorise the sign-in: {error}: {description}")]
    Denied { error: String, description: String },
    #[error("the sign-in callback's state does not match this session")]
    StateMismatch,
    #[error("the sign-in callback carries no code")]
    MissingCode,
}

type OAuthClient2 = oauth2::Client<
    oauth2::basic::BasicErrorResponse,
    oauth2::basic::BasicTokenResponse,
    oauth2::basic::BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

/// The web-server flow for one app.
#[derive(Debug, Clone)]
pub struct WebServerFlow {
    oauth: OAuthClient2,
    http: HttpClient,
    scopes: Vec<String>,
    has_secret: bool,
}

impl WebServerFlow {
    pub fn new(config: WebFlowConfig, http: HttpClient) -> Result<Self> {
        let join = |path: &str| {
            config
                .login_url
                .join(path)
                .map_err(|e| Error::Config(format!("bad login URL: {e}")))
        };
        let mut oauth = BasicClient::new(ClientId::new(config.client_id))
            .set_auth_uri(AuthUrl::from_url(join(AUTHORIZE_PATH)?))
            .set_token_uri(TokenUrl::from_url(join(token::TOKEN_PATH)?))
            .set_redirect_uri(RedirectUrl::from_url(config.redirect_url))
            // §1.4 sends the client credentials in the body.
            .set_auth_type(AuthType::RequestBody);
        let has_secret = config.client_secret.is_some();
        if let Some(secret) = config.client_secret {
            oauth = oauth.set_client_secret(ClientSecret::new(secret.expose_secret().to_string()));
        }
        Ok(Self {
            oauth,
            http,
            scopes: config.scopes,
            has_secret,
        })
    }

    /// Starts a sign-in: a fresh `state` and PKCE pair, and the authorize URL.
    pub fn authorize(&self, options: &AuthorizeOptions) -> PendingAuthorization {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self
            .oauth
            .authorize_url(CsrfToken::new_random)
            .add_scopes(self.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge);
        if let Some(prompt) = &options.prompt {
            request = request.add_extra_param("prompt", prompt.clone());
        }
        if let Some(hint) = &options.login_hint {
            request = request.add_extra_param("login_hint", hint.clone());
        }
        let (url, state) = request.url();
        PendingAuthorization {
            url,
            state: CsrfState(state.secret().clone()),
            pkce_verifier: PkceVerifier(SecretString::from(verifier.secret().clone())),
        }
    }

    /// Checks the callback's query parameters against the session's `state` and returns
    /// the authorization code. The state comes first: a callback that does not carry this
    /// browser's state is forged or stale, whatever else it says (an `error` included), and
    /// nothing in it is believed.
    pub fn callback_code(
        query: &BTreeMap<String, String>,
        expected: &CsrfState,
    ) -> std::result::Result<SecretString, CallbackError> {
        let state = query.get("state").map(String::as_str).unwrap_or_default();
        if !expected.matches(state) {
            return Err(CallbackError::StateMismatch);
        }
        if let Some(error) = query.get("error") {
            return Err(CallbackError::Denied {
                error: error.clone(),
                description: query.get("error_description").cloned().unwrap_or_default(),
            });
        }
        match query.get("code") {
            Some(code) if !code.is_empty() => Ok(SecretString::from(code.clone())),
            _ => Err(CallbackError::MissingCode),
        }
    }

    /// Exchanges the code (with the PKCE verifier) for tokens.
    pub async fn exchange_code(
        &self,
        code: &SecretString,
        verifier: PkceVerifier,
    ) -> Result<TokenResponse> {
        let transport = RecordingHttp::new(&self.http);
        let outcome = self
            .oauth
            .exchange_code(AuthorizationCode::new(code.expose_secret().to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(
                verifier.0.expose_secret().to_string(),
            ))
            .request_async(&transport)
            .await;
        // The crate's verdict only matters when nothing came back; the answer itself is
        // judged on Salesforce's terms (no expires_in, extra fields, its error shape).
        match (transport.take(), outcome) {
            (Some((status, body)), _) if (200..300).contains(&status) => {
                TokenResponse::from_json(&body)
            }
            (Some((status, body)), _) => Err(Error::from_oauth_response(status, &body)),
            (None, Err(oauth2::RequestTokenError::Request(error))) => Err(error),
            (None, _) => Err(Error::decode("code exchange", "no answer was recorded")),
        }
    }
}

impl WebServerFlow {
    /// Whether the org needs the consumer secret for this app's code exchange, asked by
    /// exchanging a code that cannot exist without a secret: `Some(true)` when the org
    /// refuses the client (`invalid_client`, "Require secret for web server flow" is on),
    /// `Some(false)` when it gets as far as the code (`invalid_grant`), `None` when the
    /// answer says neither. That Salesforce checks the client before the code is
    /// UNCONFIRMED (the sandbox org does); an unclear answer is never taken as "required".
    pub async fn secret_required(&self) -> Result<Option<bool>> {
        if self.has_secret {
            return Ok(Some(false));
        }
        let verifier = PkceVerifier(SecretString::from(
            "portcullis-probe-verifier-0000000000000000000000000".to_string(),
        ));
        match self
            .exchange_code(
                &SecretString::from("portcullis-secret-requirement-probe".to_string()),
                verifier,
            )
            .await
        {
            Err(Error::OAuth { error, .. }) if error == "invalid_client" => Ok(Some(true)),
            Err(Error::OAuth { error, .. }) if error == "invalid_grant" => Ok(Some(false)),
            Err(Error::OAuth { .. }) | Ok(_) => Ok(None),
            Err(other) => Err(other),
        }
    }
}

/// Sends the `oauth2` crate's requests with our reqwest client and keeps the last answer.
struct RecordingHttp<'a> {
    http: &'a HttpClient,
    last: Mutex<Option<(u16, Vec<u8>)>>,
}

impl<'a> RecordingHttp<'a> {
    fn new(http: &'a HttpClient) -> Self {
        Self {
            http,
            last: Mutex::new(None),
        }
    }

    fn take(&self) -> Option<(u16, Vec<u8>)> {
        match self.last.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }
    }

    fn record(&self, status: u16, body: Vec<u8>) {
        match self.last.lock() {
            Ok(mut guard) => *guard = Some((status, body)),
            Err(poisoned) => *poisoned.into_inner() = Some((status, body)),
        }
    }
}

impl<'c> AsyncHttpClient<'c> for RecordingHttp<'_> {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, Error>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let mut request = reqwest::Request::try_from(request)
                .map_err(|e| Error::InvalidRequest(http::chain(&e)))?;
            *request.timeout_mut() = Some(self.http.request_timeout());
            let response = self
                .http
                .reqwest()
                .execute(request)
                .await
                .map_err(http::transport_error)?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = http::read_body(response).await?.to_vec();
            self.record(status.as_u16(), body.clone());
            let mut builder = oauth2::http::Response::builder().status(status);
            for (name, value) in &headers {
                builder = builder.header(name, value);
            }
            builder
                .body(body)
                .map_err(|e| Error::decode("token endpoint answer", e))
        })
    }
}

/// `/services/oauth2/userinfo` (§1.9); unknown keys are ignored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UserInfo {
    /// The identity URL.
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default, deserialize_with = "wire::lenient_string")]
    pub user_id: String,
    #[serde(default, deserialize_with = "wire::lenient_string")]
    pub organization_id: String,
    #[serde(default)]
    pub preferred_username: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "wire::lenient_opt_bool")]
    pub email_verified: Option<bool>,
    #[serde(default, deserialize_with = "wire::lenient_opt_bool")]
    pub active: Option<bool>,
    #[serde(default)]
    pub user_type: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub locale: Option<String>,
    #[serde(default)]
    pub zoneinfo: Option<String>,
    /// Whether the user holds the Salesforce Integration licence.
    #[serde(default, deserialize_with = "wire::lenient_opt_bool")]
    pub is_salesforce_integration_user: Option<bool>,
    #[serde(default)]
    pub urls: BTreeMap<String, Value>,
}

impl UserInfo {
    pub fn user_id(&self) -> Option<SalesforceId> {
        SalesforceId::parse(&self.user_id).ok()
    }

    pub fn org_id(&self) -> Option<SalesforceId> {
        SalesforceId::parse(&self.organization_id).ok()
    }
}

/// Token endpoint calls made with someone else's credentials. One attempt each: these
/// prove or end a credential, and the caller decides what a failure means.
#[derive(Debug, Clone)]
pub struct OAuthEndpoints {
    http: HttpClient,
}

impl OAuthEndpoints {
    pub fn new(http: HttpClient) -> Self {
        Self { http }
    }

    /// `grant_type=client_credentials` at the org's My Domain host, the consumer key and
    /// secret sent with HTTP Basic (§1.2).
    pub async fn client_credentials_token(
        &self,
        instance_url: &Url,
        consumer_key: &str,
        consumer_secret: &SecretString,
    ) -> Result<TokenResponse> {
        token::request_token(
            &self.http,
            token::token_url(instance_url)?,
            &[("grant_type", "client_credentials")],
            Some((consumer_key, consumer_secret.expose_secret())),
        )
        .await
    }

    /// Revokes an access or refresh token (§1.8): 200 on success, 400 `invalid_token` /
    /// `unsupported_token_type` otherwise.
    pub async fn revoke(&self, instance_url: &Url, token: &SecretString) -> Result<()> {
        let url = instance_url
            .join(REVOKE_PATH)
            .map_err(|e| Error::Config(format!("bad instance URL: {e}")))?;
        let response = self
            .http
            .reqwest()
            .post(url)
            .timeout(self.http.request_timeout())
            .form(&[("token", token.expose_secret())])
            .send()
            .await
            .map_err(http::transport_error)?;
        let status = response.status();
        if status.is_success() {
            let _ = http::read_body(response).await?;
            return Ok(());
        }
        let body = http::read_error_body(response).await;
        Err(Error::from_oauth_response(status.as_u16(), &body))
    }

    /// Who a token belongs to (§1.9).
    pub async fn userinfo(&self, instance_url: &Url, token: &SecretString) -> Result<UserInfo> {
        let url = instance_url
            .join(USERINFO_PATH)
            .map_err(|e| Error::Config(format!("bad instance URL: {e}")))?;
        let mut bearer =
            reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
                .map_err(|_| Error::InvalidRequest("the token is not a valid header".into()))?;
        bearer.set_sensitive(true);
        let response = self
            .http
            .reqwest()
            .get(url)
            .timeout(self.http.request_timeout())
            .header(ACCEPT, "application/json")
            .header(AUTHORIZATION, bearer)
            .send()
            .await
            .map_err(http::transport_error)?;
        let status = response.status();
        if !status.is_success() {
            let body = http::read_error_body(response).await;
            return Err(Error::from_response(status.as_u16(), &body));
        }
        crate::client::decode_json(response, USERINFO_PATH).await
    }
}

impl crate::client::Client {
    /// Token endpoint calls over this client's connection settings.
    pub fn oauth(&self) -> OAuthEndpoints {
        OAuthEndpoints::new(self.http().clone())
    }

    /// Who this client acts as: `/services/oauth2/userinfo` (§1.9) with the client's own
    /// token (fetched first if there is none yet).
    pub async fn own_userinfo(&self) -> Result<UserInfo> {
        let token = self.current_token_secret().await?;
        self.oauth().userinfo(self.instance_url(), &token).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use sha2::Digest;

    fn flow() -> WebServerFlow {
        WebServerFlow::new(
            WebFlowConfig {
                login_url: Url::parse("https://acme.my.salesforce.com").unwrap(),
                client_id: "3MVG9portal".into(),
                client_secret: Some(SecretString::from("portal-secret")),
                redirect_url: Url::parse("https://portal.example/auth/callback").unwrap(),
                scopes: vec!["openid".into(), "api".into(), "id".into()],
            },
            HttpClient::new(&crate::http::HttpOptions::default()).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn authorize_url_carries_pkce_state_and_scopes() {
        let pending = flow().authorize(&AuthorizeOptions {
            prompt: Some("login".into()),
            login_hint: None,
        });
        assert_eq!(
            format!(
                "{}://{}{}",
                pending.url.scheme(),
                pending.url.host_str().unwrap(),
                pending.url.path()
            ),
            "https://acme.my.salesforce.com/services/oauth2/authorize"
        );
        let params: BTreeMap<String, String> = pending.url.query_pairs().into_owned().collect();
        assert_eq!(params["response_type"], "code");
        assert_eq!(params["client_id"], "3MVG9portal");
        assert_eq!(
            params["redirect_uri"],
            "https://portal.example/auth/callback"
        );
        assert_eq!(params["scope"], "openid api id");
        assert_eq!(params["prompt"], "login");
        assert_eq!(params["code_challenge_method"], "S256");
        assert_eq!(params["state"], pending.state.as_str());
        // The challenge is base64url(SHA-256(verifier)).
        let digest =
            sha2::Sha256::digest(pending.pkce_verifier.secret().expose_secret().as_bytes());
        assert_eq!(params["code_challenge"], URL_SAFE_NO_PAD.encode(digest));
        // The client secret and the verifier stay out of the URL and of Debug output
        // (the state is in the URL by design).
        assert!(!pending.url.as_str().contains("portal-secret"));
        let verifier = pending.pkce_verifier.secret().expose_secret();
        assert!(!pending.url.as_str().contains(verifier));
        assert!(!format!("{pending:?}").contains(verifier));
        assert!(!format!("{:?}", flow()).contains("portal-secret"));
    }

    #[test]
    fn code_exchange_future_is_send() {
        fn assert_send<T: Send>(_: T) {}
        let flow = flow();
        let pending = flow.authorize(&AuthorizeOptions::default());
        let code = SecretString::from("code");
        assert_send(flow.exchange_code(&code, pending.pkce_verifier));
    }

    #[test]
    fn every_start_is_fresh() {
        let flow = flow();
        let a = flow.authorize(&AuthorizeOptions::default());
        let b = flow.authorize(&AuthorizeOptions::default());
        assert_ne!(a.state.as_str(), b.state.as_str());
        assert_ne!(
            a.pkce_verifier.secret().expose_secret(),
            b.pkce_verifier.secret().expose_secret()
        );
    }

    fn query(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn callbacks_are_checked() {
        let state = CsrfState::from_session("abc123".into());
        let code =
            WebServerFlow::callback_code(&query(&[("code", "aPrx"), ("state", "abc123")]), &state)
                .unwrap();
        assert_eq!(code.expose_secret(), "aPrx");
        assert_eq!(
            WebServerFlow::callback_code(&query(&[("code", "aPrx"), ("state", "abc124")]), &state)
                .unwrap_err(),
            CallbackError::StateMismatch
        );
        assert_eq!(
            WebServerFlow::callback_code(&query(&[("code", "aPrx")]), &state).unwrap_err(),
            CallbackError::StateMismatch
        );
        assert_eq!(
            WebServerFlow::callback_code(&query(&[("state", "abc123")]), &state).unwrap_err(),
            CallbackError::MissingCode
        );
        assert!(matches!(
            WebServerFlow::callback_code(
                &query(&[("error", "access_denied"), ("error_description", "end-user denied authorization"), ("state", "abc123")]),
                &state
            ),
            Err(CallbackError::Denied { error, .. }) if error == "access_denied"
        ));
    }

    #[test]
    fn a_callback_is_checked_for_its_state_before_anything_else() {
        let expected = CsrfState::from_session("abc".into());
        for forged in [
            query(&[("state", "forged"), ("error", "access_denied")]),
            query(&[("error", "access_denied")]),
            query(&[("state", "forged"), ("code", "c")]),
        ] {
            assert!(matches!(
                WebServerFlow::callback_code(&forged, &expected),
                Err(CallbackError::StateMismatch)
            ));
        }
        assert!(matches!(
            WebServerFlow::callback_code(
                &query(&[("state", "abc"), ("error", "access_denied")]),
                &expected
            ),
            Err(CallbackError::Denied { .. })
        ));
        assert!(
            WebServerFlow::callback_code(&query(&[("state", "abc"), ("code", "c")]), &expected)
                .is_ok()
        );
    }

    #[test]
    fn state_comparison() {
        let state = CsrfState::from_session("abc".into());
        assert!(state.matches("abc"));
        assert!(!state.matches("abd"));
        assert!(!state.matches("ab"));
        assert!(!state.matches(""));
    }

    #[test]
    fn userinfo_decodes_the_postman_sample() {
        let body = serde_json::json!({
            "sub": "https://login.salesforce.com/id/00D5g000000AbCdEAK/0055g00000XyZabAAE",
            "user_id": "0055g00000XyZab", "organization_id": "00D5g000000AbCd",
            "preferred_username": "admin@acme.example", "nickname": "admin", "name": "Ada Admin",
            "email": "ada@acme.example", "email_verified": true, "given_name": "Ada", "family_name": "Admin",
            "zoneinfo": "Europe/Paris",
            "photos": { "picture": "https://x/profilephoto/005/F", "thumbnail": "https://x/profilephoto/005/T" },
            "profile": "https://acme.my.salesforce.com/005", "address": { "country": "FR" },
            "is_salesforce_integration_user": false,
            "urls": { "rest": "https://acme.my.salesforce.com/services/data/v{version}/", "custom_domain": "https://acme.my.salesforce.com" },
            "active": true, "user_type": "STANDARD", "language": "en_US", "locale": "en_US", "utcOffset": 3600000,
            "updated_at": "2026-01-01T00:00:00Z", "is_app_installed": true
        });
        let info: UserInfo = serde_json::from_value(body).unwrap();
        assert_eq!(info.user_id().unwrap().as_15(), "0055g00000XyZab");
        assert_eq!(info.org_id().unwrap().as_15(), "00D5g000000AbCd");
        assert_eq!(info.is_salesforce_integration_user, Some(false));
        assert_eq!(info.email_verified, Some(true));
        assert_eq!(
            info.preferred_username.as_deref(),
            Some("admin@acme.example")
        );
        assert!(info.urls.contains_key("rest"));
    }
}
