//! Starts a fresh in-memory sandbox org over plain HTTP and talks to it as a raw HTTP
//! client would.

#![allow(dead_code)]

use reqwest::{Method, StatusCode};
use sandbox_org::{SandboxConfig, SandboxOrg};
use serde_json::Value;

pub struct Org {
    pub org: SandboxOrg,
    pub http: reqwest::Client,
    pub admin_token: String,
}

pub fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Org {
    pub async fn start() -> Self {
        Self::start_with(SandboxConfig::default()).await
    }

    pub async fn start_with(config: SandboxConfig) -> Self {
        init();
        let org = SandboxOrg::start(config).await.expect("sandbox org starts");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut me = Self {
            org,
            http,
            admin_token: String::new(),
        };
        me.admin_token = me
            .password_token("admin@acme-sandbox.example", "Admin-Sandbox-1")
            .await;
        me
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.org.base_url())
    }

    pub fn portal_client(&self) -> (String, String) {
        let c = self.org.credentials();
        (
            c["portalClientId"].as_str().unwrap().to_string(),
            c["portalClientSecret"].as_str().unwrap().to_string(),
        )
    }

    pub async fn password_token(&self, username: &str, password: &str) -> String {
        let (id, secret) = self.portal_client();
        let response = self
            .http
            .post(self.url("/services/oauth2/token"))
            .form(&[
                ("grant_type", "password"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("username", username),
                ("password", password),
            ])
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "password grant: {body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    /// A REST call with `token`; returns status and JSON body (Null when empty).
    pub async fn call(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call(&self.admin_token, method, path, body).await
    }

    /// Runs a query as `token` and returns the records.
    pub async fn query(&self, token: &str, soql: &str) -> (StatusCode, Value) {
        let path = format!("/services/data/v66.0/query?q={}", urlencode(soql));
        self.call(token, Method::GET, &path, None).await
    }

    pub async fn id_of(&self, soql: &str) -> String {
        let (status, body) = self.query(&self.admin_token, soql).await;
        assert_eq!(status, StatusCode::OK, "{soql}: {body}");
        body["records"][0]["Id"]
            .as_str()
            .unwrap_or_else(|| panic!("{soql}: no record in {body}"))
            .to_string()
    }
}

pub fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Asserts a Salesforce REST error body: an array of {message, errorCode}.
pub fn error_code(body: &Value) -> String {
    let item = body
        .as_array()
        .and_then(|a| a.first())
        .unwrap_or_else(|| panic!("not a Salesforce error array: {body}"));
    assert!(item["message"].is_string(), "message in {body}");
    item["errorCode"]
        .as_str()
        .unwrap_or_else(|| panic!("errorCode in {body}"))
        .to_string()
}

/// A JWT bearer assertion for `username`, signed with the portal app's key.
pub fn jwt_assertion(org: &Org, username: &str) -> String {
    let key = org
        .org
        .portal_private_key_pem()
        .expect("the portal app's key");
    let claims = serde_json::json!({
        "iss": org.portal_client().0,
        "sub": username,
        "aud": org.org.base_url(),
        "exp": chrono::Utc::now().timestamp() + 120,
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(key.as_bytes()).unwrap(),
    )
    .unwrap()
}

impl Org {
    /// A token for `username` by the JWT bearer flow through the portal app.
    pub async fn jwt_token(&self, username: &str) -> Result<String, Value> {
        let response = self
            .http
            .post(self.url("/services/oauth2/token"))
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", &jwt_assertion(self, username)),
            ])
            .send()
            .await
            .unwrap();
        let ok = response.status().is_success();
        let body: Value = response.json().await.unwrap();
        if ok {
            Ok(body["access_token"].as_str().unwrap().to_string())
        } else {
            Err(body)
        }
    }

    /// Creates a record as the admin and returns its id (panics with the error otherwise).
    pub async fn create(&self, object: &str, body: Value) -> String {
        let (status, result) = self
            .admin(
                Method::POST,
                &format!("/services/data/v66.0/sobjects/{object}"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "create {object} {body}: {result}"
        );
        result["id"].as_str().unwrap().to_string()
    }

    /// An active integration user (Salesforce Integration licence, Minimum Access - API Only
    /// Integrations profile) that may use the portal app (Portcullis_API_Only assigned).
    pub async fn integration_user(&self, name: &str) -> (String, String) {
        let profile = self
            .id_of("SELECT Id FROM Profile WHERE Name = 'Minimum Access - API Only Integrations'")
            .await;
        let username = format!("{name}.integration@contractor.example");
        let user = self
            .create(
                "User",
                serde_json::json!({
                    "Username": username, "LastName": name, "Email": "ops@contractor.example",
                    "Alias": &name[..name.len().min(8)], "TimeZoneSidKey": "Europe/London",
                    "LocaleSidKey": "en_GB", "EmailEncodingKey": "UTF-8", "LanguageLocaleKey": "en_US",
                    "ProfileId": profile,
                }),
            )
            .await;
        let api_only = self
            .id_of("SELECT Id FROM PermissionSet WHERE Name = 'Portcullis_API_Only'")
            .await;
        self.create(
            "PermissionSetAssignment",
            serde_json::json!({ "AssigneeId": user, "PermissionSetId": api_only }),
        )
        .await;
        (user, username)
    }
}
