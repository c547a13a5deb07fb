//! Salesforce, from the portal's side: the wire types both the client and the sandbox org
//! agree on (ids, error bodies, deploy results), and the client the portal uses against
//! real orgs and the sandbox org alike.
//!
//! Start with [`ClientConfig`] and [`Client::new`]. Every call goes through one path that
//! obtains and shares the access token, renews it once on `INVALID_SESSION_ID`, retries
//! transient failures per [`retry`], and records the org's API usage
//! ([`Client::last_limit_info`]). SOQL is only ever built with [`soql`].
//!
//! ```no_run
//! use salesforce::soql::{Cond, Soql};
//! use salesforce::{Client, ClientConfig, PortalAuth, SalesforceId, SecretString, Url};
//!
//! # async fn demo(key_pem: String) -> Result<(), Box<dyn std::error::Error>> {
//! let config = ClientConfig {
//!     // The sandbox org serves a self-signed certificate.
//!     ca_file: Some("data/sandbox-org/ca.pem".into()),
//!     ..ClientConfig::new(
//!         Url::parse("https://acme.my.salesforce.com")?,
//!         PortalAuth::JwtBearer {
//!             client_id: "3MVG9...".into(),
//!             username: "portcullis@acme.example".into(),
//!             private_key_pem: SecretString::from(key_pem),
//!             audience: "https://login.salesforce.com".into(),
//!         },
//!     )
//! };
//! let client = Client::new(config)?;
//!
//! #[derive(serde::Deserialize)]
//! struct User {
//!     #[serde(rename = "Id")]
//!     id: SalesforceId,
//! }
//! let query = Soql::select(&["Id"])
//!     .from("User")
//!     .filter(Cond::eq("Username", "acme.contractor.int@example.com"))
//!     .limit(1)
//!     .build()?;
//! let users: Vec<User> = client.query_all(&query).await?;
//! if let Some(user) = users.first() {
//!     client.update("User", &user.id, &serde_json::json!({"IsActive": false})).await?;
//! }
//! println!("org API usage: {:?}", client.last_limit_info());
//! # Ok(())
//! # }
//! ```
//!
//! Against the sandbox org, integration tests use the same client: point `instance_url` at
//! it (`http://127.0.0.1:<port>` works too), set `ca_file` when it serves TLS, and use
//! [`PortalAuth::ClientCredentials`] or [`PortalAuth::AccessToken`]. Contractor-side checks
//! go through [`Client::oauth`] ([`oauth_web::OAuthEndpoints`]).

// The workspace denies unwrap, expect and panic; unit tests may use them.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod auth;
pub mod client;
pub mod composite;
pub mod connect;
pub mod error;
pub mod eventlog;
pub mod http;
pub mod id;
pub mod limits;
pub mod metadata;
pub mod oauth_web;
pub mod query;
pub mod rest;
pub mod retry;
pub mod soql;
pub mod token;
pub mod version;
mod wire;

pub use auth::PortalAuth;
pub use client::{Client, ClientConfig};
pub use error::{ApiError, Error, Result, TransportKind};
pub use id::{IdError, SalesforceId};
pub use limits::{Limit, LimitInfo, Limits};
pub use retry::RetryPolicy;
pub use soql::{Cond, Soql, SoqlValue};
pub use token::TokenResponse;
pub use version::ApiVersion;

// Callers name these types in our signatures; re-exported so they need no direct dependency.
pub use secrecy::{ExposeSecret, SecretString};
pub use url::Url;
