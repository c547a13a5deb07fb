//! The client: configuration, URL building, and the one place every API call goes through
//! (token, headers, 401 renewal, retries, `Sforce-Limit-Info`).

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::auth::{Authenticator, CurrentToken, PortalAuth};
use crate::error::{Error, Result};
use crate::http::{self, HttpClient, HttpOptions};
use crate::limits::{LIMIT_INFO_HEADER, LimitInfo};
use crate::retry::{self, Decision, Idempotency, RetryPolicy, Sent};
pub use crate::version::ApiVersion;

/// `Sforce-Call-Options: client=portcullis`: Salesforce copies it into event logs
/// (`CLIENT_NAME`), so admins can tell the portal's own calls from the contractors'.
pub const CALL_OPTIONS: &str = "client=portcullis";

/// Everything needed to talk to one org.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The org's My Domain URL (`https://acme.my.salesforce.com`): the host for OAuth token
    /// requests and REST calls alike.
    pub instance_url: Url,
    pub api_version: ApiVersion,
    pub auth: PortalAuth,
    /// An extra trusted root CA (PEM); the sandbox org serves a self-signed certificate.
    pub ca_file: Option<PathBuf>,
    /// Per request, sending to last byte; for downloads, the longest pause between reads.
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    /// Whether 403 `REQUEST_LIMIT_EXCEEDED` (and 429) is retried with backoff. Off by
    /// default: the org's daily allocation does not come back within seconds.
    pub retry_on_request_limit: bool,
}

impl ClientConfig {
    /// A configuration with defaults: API 66.0, system roots only, 60 s timeout, the
    /// default retry policy, no retry on request limits.
    pub fn new(instance_url: Url, auth: PortalAuth) -> Self {
        Self {
            instance_url,
            api_version: ApiVersion::DEFAULT,
            auth,
            ca_file: None,
            request_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            retry_on_request_limit: false,
        }
    }
}

/// What a request sends.
#[derive(Clone)]
pub(crate) enum Body {
    Empty,
    Json(Bytes),
    /// A metadata deploy: the `json` part and the zip (§4.4). Kept as bytes so that a retry
    /// can rebuild the multipart form.
    Deploy {
        json: Bytes,
        zip: Bytes,
    },
    /// A SOAP envelope whose session id placeholder is replaced by the token when sent
    /// (so a renewed token is used on a replay).
    Soap(Bytes),
}

/// One API call, as the retry loop repeats it.
pub(crate) struct ApiRequest {
    pub method: Method,
    pub url: Url,
    pub body: Body,
    pub idempotency: Idempotency,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Streaming downloads get no overall timeout, only the client's read timeout.
    pub streaming: bool,
}

impl ApiRequest {
    pub fn new(method: Method, url: Url) -> Self {
        let idempotency = Idempotency::of_method(&method);
        Self {
            method,
            url,
            body: Body::Empty,
            idempotency,
            headers: Vec::new(),
            streaming: false,
        }
    }

    pub fn json<B: Serialize + ?Sized>(mut self, body: &B) -> Result<Self> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| Error::InvalidRequest(format!("cannot encode the request body: {e}")))?;
        self.body = Body::Json(Bytes::from(bytes));
        Ok(self)
    }

    pub fn idempotency(mut self, idempotency: Idempotency) -> Self {
        self.idempotency = idempotency;
        self
    }

    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

struct Inner {
    http: HttpClient,
    instance_url: Url,
    api_version: ApiVersion,
    retry: RetryPolicy,
    retry_on_request_limit: bool,
    auth: Authenticator,
    last_limit_info: RwLock<Option<LimitInfo>>,
}

/// A Salesforce org client. Clones share the connection pool and the token.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    /// Counts the API requests sent through this handle (see [`Client::counting`]).
    calls: Option<Arc<AtomicU64>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("instance_url", &self.inner.instance_url.as_str())
            .field("api_version", &self.inner.api_version)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds the client. Nothing is sent until the first call; a bad CA file or private
    /// key is reported here.
    pub fn new(config: ClientConfig) -> Result<Self> {
        let instance_url = normalise_instance_url(config.instance_url)?;
        let http = HttpClient::new(&HttpOptions {
            ca_file: config.ca_file,
            request_timeout: config.request_timeout,
            ..HttpOptions::default()
        })?;
        let auth = Authenticator::new(&config.auth, http.clone(), &instance_url)?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                instance_url,
                api_version: config.api_version,
                retry: config.retry,
                retry_on_request_limit: config.retry_on_request_limit,
                auth,
                last_limit_info: RwLock::new(None),
            }),
            calls: None,
        })
    }

    /// A client of the same org over the same connection pool (TLS set-up included) that
    /// authenticates with `auth` instead: e.g. as a contractor's app, to check what its
    /// credential can do. Calls are counted with this handle's counter, if any.
    pub fn acting_as(&self, auth: &PortalAuth) -> Result<Client> {
        let inner = &self.inner;
        let authenticator = Authenticator::new(auth, inner.http.clone(), &inner.instance_url)?;
        Ok(Client {
            inner: Arc::new(Inner {
                http: inner.http.clone(),
                instance_url: inner.instance_url.clone(),
                api_version: inner.api_version,
                retry: inner.retry,
                retry_on_request_limit: inner.retry_on_request_limit,
                auth: authenticator,
                last_limit_info: RwLock::new(None),
            }),
            calls: self.calls.clone(),
        })
    }

    /// A handle on the same connection and token that also counts, in `calls`, every API
    /// request it sends (retries and token-refused replays included: each one reaches
    /// Salesforce and counts against the org's daily limit). The OAuth token requests are
    /// not API calls and are not counted.
    pub fn counting(&self, calls: Arc<AtomicU64>) -> Client {
        Client {
            inner: self.inner.clone(),
            calls: Some(calls),
        }
    }

    /// The access token this client currently uses (fetching one if it has none).
    pub(crate) async fn current_token_secret(&self) -> Result<secrecy::SecretString> {
        Ok(self.inner.auth.current().await?.secret)
    }

    pub fn instance_url(&self) -> &Url {
        &self.inner.instance_url
    }

    pub fn api_version(&self) -> ApiVersion {
        self.inner.api_version
    }

    /// The HTTP client (TLS set-up included), e.g. for [`crate::oauth_web`].
    pub fn http(&self) -> &HttpClient {
        &self.inner.http
    }

    /// The org's API usage as of the latest response that reported it.
    pub fn last_limit_info(&self) -> Option<LimitInfo> {
        match self.inner.last_limit_info.read() {
            Ok(guard) => *guard,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    fn record_limit_info(&self, response: &reqwest::Response) {
        let Some(info) = response
            .headers()
            .get(LIMIT_INFO_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(LimitInfo::parse)
        else {
            return;
        };
        match self.inner.last_limit_info.write() {
            Ok(mut guard) => *guard = Some(info),
            Err(poisoned) => *poisoned.into_inner() = Some(info),
        }
    }

    /// `{instance}/services/data/vXX.X/{segments...}`, each segment percent-encoded (so an
    /// external id value containing `/` stays one segment). An empty last segment gives
    /// the trailing slash some documented paths have.
    pub fn rest_url(&self, segments: &[&str]) -> Result<Url> {
        let mut url = self.inner.instance_url.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|_| Error::Config("the instance URL cannot have a path".to_string()))?;
            path.clear()
                .extend(["services", "data"])
                .push(&format!("v{}", self.inner.api_version));
            path.extend(segments);
        }
        Ok(url)
    }

    /// A URL Salesforce handed us (`nextRecordsUrl`, `LogFile`, ...), resolved against the
    /// org. Only paths under `/services/` on the org's own host are accepted, so a
    /// response can never send our token elsewhere.
    pub fn resolve_relative(&self, relative: &str) -> Result<Url> {
        let refuse = || {
            Error::InvalidRequest(format!(
                "refusing to follow URL {relative:?} from a response"
            ))
        };
        if !relative.starts_with("/services/")
            || relative.contains("..")
            || relative.contains('\\')
            || relative.contains("//")
            || relative
                .chars()
                .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(refuse());
        }
        let url = self
            .inner
            .instance_url
            .join(relative)
            .map_err(|_| refuse())?;
        if url.origin() != self.inner.instance_url.origin() {
            return Err(refuse());
        }
        Ok(url)
    }

    /// Sends a request through the token, renewal and retry machinery and returns the
    /// successful (2xx) response.
    pub(crate) async fn execute(&self, request: &ApiRequest) -> Result<reqwest::Response> {
        let policy = self.inner.retry;
        let mut retries = 0u32;
        loop {
            let (error, sent) = match self.attempt(request).await {
                Ok(response) => return Ok(response),
                Err(failure) => failure,
            };
            let decision = retry::classify(
                &error,
                sent,
                request.idempotency,
                self.inner.retry_on_request_limit,
            );
            let attempts_left = retries + 1 < policy.max_attempts;
            match decision {
                Decision::Retry if attempts_left => {
                    retries += 1;
                    let delay = policy.delay(retries, &mut rand::rng());
                    tracing::warn!(
                        method = %request.method,
                        path = request.url.path(),
                        retry = retries,
                        delay_ms = delay.as_millis() as u64,
                        error = %error,
                        "retrying a Salesforce call"
                    );
                    tokio::time::sleep(delay).await;
                }
                Decision::StopOutcomeUnknown => {
                    return Err(Error::OutcomeUnknown {
                        method: request.method.to_string(),
                        path: request.url.path().to_string(),
                        cause: Box::new(error),
                    });
                }
                Decision::Retry | Decision::Stop => return Err(error),
            }
        }
    }

    /// One attempt: token, send, and on `INVALID_SESSION_ID` one renewal and replay.
    async fn attempt(&self, request: &ApiRequest) -> Result<reqwest::Response, (Error, Sent)> {
        let token = self.inner.auth.current().await.map_err(|e| (e, Sent::No))?;
        match self.send_once(request, &token).await {
            Err((error, Sent::Maybe)) if error.is_invalid_session() => {
                // A 401 means Salesforce did not process the request: replaying is safe.
                let Some(renewed) = self
                    .inner
                    .auth
                    .renew(&token)
                    .await
                    .map_err(|e| (e, Sent::No))?
                else {
                    return Err((error, Sent::Maybe));
                };
                tracing::debug!("access token refused; renewed it and replaying once");
                self.send_once(request, &renewed).await
            }
            other => other,
        }
    }

    async fn send_once(
        &self,
        request: &ApiRequest,
        token: &CurrentToken,
    ) -> Result<reqwest::Response, (Error, Sent)> {
        let mut builder = self
            .inner
            .http
            .reqwest()
            .request(request.method.clone(), request.url.clone())
            .header(
                HeaderName::from_static("sforce-call-options"),
                HeaderValue::from_static(CALL_OPTIONS),
            );
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", token.secret.expose_secret()))
            .map_err(|_| {
                (
                    Error::Config("the access token is not a valid header value".into()),
                    Sent::No,
                )
            })?;
        bearer.set_sensitive(true);
        builder = builder.header(AUTHORIZATION, bearer);
        if !request.streaming {
            builder = builder.timeout(self.inner.http.request_timeout());
        }
        if !request.headers.iter().any(|(name, _)| name == ACCEPT) {
            builder = builder.header(ACCEPT, "application/json");
        }
        for (name, value) in &request.headers {
            builder = builder.header(name.clone(), value.clone());
        }
        builder = match &request.body {
            Body::Empty => builder,
            Body::Json(bytes) => builder
                .header(CONTENT_TYPE, "application/json")
                .body(bytes.clone()),
            Body::Deploy { json, zip } => {
                let form = deploy_form(json.clone(), zip.clone()).map_err(|e| (e, Sent::No))?;
                builder.multipart(form)
            }
            Body::Soap(envelope) => {
                let text = String::from_utf8_lossy(envelope).replace(
                    crate::metadata::SESSION_PLACEHOLDER,
                    token.secret.expose_secret(),
                );
                builder
                    .header(CONTENT_TYPE, "text/xml; charset=UTF-8")
                    .body(text)
            }
        };
        if let Some(calls) = &self.calls {
            calls.fetch_add(1, Ordering::Relaxed);
        }
        let response = builder
            .send()
            .await
            .map_err(|e| (http::transport_error(e), Sent::Maybe))?;
        self.record_limit_info(&response);
        let status = response.status();
        tracing::debug!(
            method = %request.method,
            path = request.url.path(),
            status = status.as_u16(),
            "Salesforce call"
        );
        if status.is_success() {
            return Ok(response);
        }
        let body = http::read_error_body(response).await;
        Err((Error::from_response(status.as_u16(), &body), Sent::Maybe))
    }

    /// GET and decode JSON.
    pub(crate) async fn get_json<T: DeserializeOwned>(&self, url: &Url) -> Result<T> {
        let response = self
            .execute(&ApiRequest::new(Method::GET, url.clone()))
            .await?;
        decode_json(response, url.path()).await
    }

    /// Sends and decodes a JSON answer.
    pub(crate) async fn send_json<T: DeserializeOwned>(&self, request: &ApiRequest) -> Result<T> {
        let response = self.execute(request).await?;
        decode_json(response, request.url.path()).await
    }

    /// Sends and ignores the (usually empty, 204) answer.
    pub(crate) async fn send_no_content(&self, request: &ApiRequest) -> Result<()> {
        let response = self.execute(request).await?;
        // Drain the body so the connection can be reused.
        let _ = http::read_body(response).await?;
        Ok(())
    }
}

/// Decodes a successful JSON response, naming the resource on failure.
pub(crate) async fn decode_json<T: DeserializeOwned>(
    response: reqwest::Response,
    context: &str,
) -> Result<T> {
    let body = http::read_body(response).await?;
    serde_json::from_slice(&body).map_err(|e| Error::decode(context.to_string(), e))
}

fn deploy_form(json: Bytes, zip: Bytes) -> Result<reqwest::multipart::Form> {
    let json_part = reqwest::multipart::Part::bytes(json.to_vec())
        .mime_str("application/json")
        .map_err(|e| Error::InvalidRequest(e.to_string()))?;
    let zip_part = reqwest::multipart::Part::bytes(zip.to_vec())
        .file_name("deploy.zip")
        .mime_str("application/zip")
        .map_err(|e| Error::InvalidRequest(e.to_string()))?;
    Ok(reqwest::multipart::Form::new()
        .part("json", json_part)
        .part("file", zip_part))
}

/// The instance URL must be a bare origin (`https://host[:port]`); a trailing slash is fine.
fn normalise_instance_url(mut url: Url) -> Result<Url> {
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return Err(Error::Config(format!(
            "the instance URL {url} must be an http(s) URL with a host"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::Config(
            "the instance URL must not carry credentials".to_string(),
        ));
    }
    if url.path() != "/" && !url.path().is_empty() {
        return Err(Error::Config(format!(
            "the instance URL must have no path (got {})",
            url.path()
        )));
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use secrecy::SecretString;

    pub(crate) fn test_client() -> Client {
        Client::new(ClientConfig::new(
            Url::parse("https://acme.my.salesforce.com").unwrap(),
            PortalAuth::AccessToken(SecretString::from("tok")),
        ))
        .unwrap()
    }

    #[test]
    fn rest_urls_encode_each_segment() {
        let client = test_client();
        assert_eq!(
            client
                .rest_url(&["sobjects", "Account", "describe", ""])
                .unwrap()
                .as_str(),
            "https://acme.my.salesforce.com/services/data/v66.0/sobjects/Account/describe/"
        );
        assert_eq!(
            client
                .rest_url(&["sobjects", "Contact", "Ext__c", "a/b c?d#e"])
                .unwrap()
                .as_str(),
            "https://acme.my.salesforce.com/services/data/v66.0/sobjects/Contact/Ext__c/a%2Fb%20c%3Fd%23e"
        );
    }

    #[test]
    fn relative_urls_from_responses_stay_on_the_org() {
        let client = test_client();
        assert_eq!(
            client
                .resolve_relative("/services/data/v66.0/query/01gRO0000016PIAYA2-500")
                .unwrap()
                .as_str(),
            "https://acme.my.salesforce.com/services/data/v66.0/query/01gRO0000016PIAYA2-500"
        );
        for hostile in [
            "https://evil.example/services/data/v66.0/query/x",
            "//evil.example/services/data/",
            "/services/data/../../admin",
            "/services//evil.example/x",
            "/other/path",
            "services/data/v66.0/query/x",
            "/services/data/v66.0/query/x\n",
            "/services\\..\\x",
        ] {
            assert!(client.resolve_relative(hostile).is_err(), "{hostile}");
        }
    }

    #[test]
    fn instance_urls_are_checked() {
        let make = |url: &str| {
            Client::new(ClientConfig::new(
                Url::parse(url).unwrap(),
                PortalAuth::AccessToken(SecretString::from("t")),
            ))
        };
        assert!(make("https://acme.my.salesforce.com/").is_ok());
        assert!(make("http://127.0.0.1:8443").is_ok());
        assert!(make("https://acme.my.salesforce.com/services").is_err());
        assert!(make("https://user:pw@acme.my.salesforce.com").is_err());
        assert!(make("ftp://acme.my.salesforce.com").is_err());
    }

    #[test]
    fn debug_output_hides_the_token() {
        let client = test_client();
        let text = format!("{client:?}");
        assert!(!text.contains("tok\""));
        let config = ClientConfig::new(
            Url::parse("https://acme.my.salesforce.com").unwrap(),
            PortalAuth::AccessToken(SecretString::from("00D!very-secret")),
        );
        assert!(!format!("{config:?}").contains("very-secret"));
    }

    fn assert_send<T: Send>(_: T) {}

    /// The workflow engine and axum handlers spawn these futures on a multi-threaded
    /// runtime, so every public call must be `Send`. (The futures are built, not run.)
    #[test]
    fn async_calls_are_send_and_clients_sync() {
        fn assert_sync<T: Send + Sync>() {}
        assert_sync::<Client>();
        let client = test_client();
        let id = crate::SalesforceId::parse("001D000000IqhSL").unwrap();
        let soql = crate::Soql::trusted("SELECT Id FROM Account");
        let body = serde_json::json!({});
        assert_send(client.query::<serde_json::Value>(&soql));
        assert_send(client.query_all::<serde_json::Value>(&soql));
        assert_send(client.query_stream::<serde_json::Value>(&soql, Default::default()));
        assert_send(client.create("Account", &body));
        assert_send(client.update("Account", &id, &body));
        assert_send(client.upsert("Account", "Ext__c", "1", &body));
        assert_send(client.describe("Account"));
        assert_send(client.limits());
        assert_send(client.composite(&crate::composite::CompositeRequest::new(true)));
        let zip = crate::metadata::DeployZip::from_bytes(Vec::new());
        let options = crate::metadata::DeployOptions::default();
        assert_send(client.deploy_and_wait(
            &zip,
            &options,
            Duration::from_secs(1),
            Duration::from_secs(2),
        ));
        assert_send(client.consumer_credential("a", "c", crate::connect::CredentialPart::Secret));
        assert_send(client.download_log_file(&id));
        let oauth = client.oauth();
        let token = SecretString::from("t");
        assert_send(oauth.client_credentials_token(client.instance_url(), "k", &token));
        assert_send(oauth.userinfo(client.instance_url(), &token));
    }

    #[test]
    fn clients_are_cheap_to_clone() {
        let client = test_client();
        let clone = client.clone();
        assert!(Arc::ptr_eq(&client.inner, &clone.inner));
        assert!(client.last_limit_info().is_none());
    }
}
