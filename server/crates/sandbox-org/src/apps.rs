//! OAuth client apps: External Client Apps (created by Metadata deploy) and legacy Connected
//! Apps, their consumer key and secret, staged credentials and policies.

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// What created the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppKind {
    ExternalClientApp,
    ConnectedApp,
}

/// Who may use the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PermittedUsers {
    /// Only users holding one of the app's profiles or permission sets.
    AdminApprovedPreAuthorized,
    AllSelfAuthorized,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Consumer {
    pub id: String,
    pub key: String,
    pub secret: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StagedState {
    Active,
    Expired,
    Rotated,
}

impl StagedState {
    pub fn as_str(self) -> &'static str {
        match self {
            StagedState::Active => "Active",
            StagedState::Expired => "Expired",
            StagedState::Rotated => "Rotated",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StagedCredentials {
    pub id: String,
    pub key: String,
    pub secret: String,
    pub created_by: String,
    pub created_date: DateTime<Utc>,
    pub expiration_date: DateTime<Utc>,
    pub state: StagedState,
}

impl StagedCredentials {
    /// Whether the staged pair works at the token endpoint at `now`: active (not rotated in,
    /// not deleted) and not past its expiration date (30 days after it was created).
    pub fn usable(&self, now: DateTime<Utc>) -> bool {
        self.state == StagedState::Active && self.expiration_date > now
    }
}

/// An inclusive IPv4/IPv6 range from the app's trusted IP ranges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpRange {
    pub start: std::net::IpAddr,
    pub end: std::net::IpAddr,
    pub description: String,
}

impl IpRange {
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        match (self.start, self.end, ip) {
            (IpAddr::V4(s), IpAddr::V4(e), IpAddr::V4(x)) => s <= x && x <= e,
            (IpAddr::V6(s), IpAddr::V6(e), IpAddr::V6(x)) => s <= x && x <= e,
            _ => false,
        }
    }
}

/// Admin-side policies (ExtlClntAppOauthConfigurablePolicies / ConnectedApp policies).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Policy {
    pub client_credentials_enabled: bool,
    /// The run-as user's username.
    pub client_credentials_user: Option<String>,
    pub permitted_users: PermittedUsers,
    /// Permission set names (API names) the app is admin-approved for.
    pub permission_sets: Vec<String>,
    /// Profile names the app is admin-approved for.
    pub profiles: Vec<String>,
    /// Enforce, Bypass, ...
    pub ip_relaxation: String,
    /// Zero, Infinite, SpecificLifetime, SpecificInactivity
    pub refresh_token_policy: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct App {
    /// The app's identifier (External Client App: `0xI…`).
    pub id: String,
    /// The id Salesforce reports as CONNECTED_APP_ID in event logs (`0H4…`).
    pub connected_app_id: String,
    pub developer_name: String,
    pub label: String,
    pub kind: AppKind,
    pub contact_email: String,
    pub description: String,
    pub enabled: bool,
    pub created_by_id: String,
    pub created_date: DateTime<Utc>,
    pub consumer: Consumer,
    pub staged: Vec<StagedCredentials>,
    pub callback_urls: Vec<String>,
    pub scopes: Vec<String>,
    /// PEM certificate: enables the JWT bearer flow.
    pub certificate_pem: Option<String>,
    /// Global OAuth settings: the flow must be on here and in the policy.
    pub client_credentials_enabled: bool,
    pub pkce_required: bool,
    pub consumer_secret_optional: bool,
    pub trusted_ip_ranges: Vec<IpRange>,
    pub policy: Policy,
    /// The member names of the app's settings components, by metadata type (an External
    /// Client App deployed through the Metadata API).
    #[serde(default)]
    pub component_names: std::collections::BTreeMap<String, String>,
    /// A deployed app's credentials work from this moment (none: at once).
    #[serde(default)]
    pub active_from: Option<DateTime<Utc>>,
}

impl App {
    /// Whether the org has finished activating the app.
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        self.active_from.is_none_or(|from| from <= now)
    }
}

impl App {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s.eq_ignore_ascii_case(scope))
    }

    /// Space-separated OAuth scope string for token responses.
    pub fn scope_string(&self) -> String {
        let mut scopes: Vec<String> = self
            .scopes
            .iter()
            .map(|s| match s.to_ascii_lowercase().as_str() {
                "refreshtoken" | "offlineaccess" => "refresh_token".to_string(),
                "openid" => "openid".to_string(),
                other => other.to_string(),
            })
            .collect();
        scopes.sort();
        scopes.dedup();
        scopes.join(" ")
    }

    pub fn issues_refresh_tokens(&self) -> bool {
        (self.has_scope("RefreshToken")
            || self.has_scope("OfflineAccess")
            || self.has_scope("refresh_token"))
            && !self
                .policy
                .refresh_token_policy
                .eq_ignore_ascii_case("Zero")
    }
}

/// A new consumer key, shaped like Salesforce's (`3MVG9…`, 85 characters).
pub fn new_consumer_key() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";
    let mut rng = rand::rng();
    let tail: String = (0..80)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("3MVG9{tail}")
}

/// A new consumer secret, shaped like Salesforce's (64 hexadecimal digits).
pub fn new_consumer_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes);
    hex::encode_upper(bytes)
}

/// Constant-time comparison for secrets.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_ranges_include_their_ends_and_mapped_addresses() {
        let range = IpRange {
            start: "10.0.0.0".parse().unwrap(),
            end: "10.0.0.255".parse().unwrap(),
            description: String::new(),
        };
        assert!(range.contains("10.0.0.0".parse().unwrap()));
        assert!(range.contains("10.0.0.255".parse().unwrap()));
        assert!(range.contains("::ffff:10.0.0.7".parse().unwrap()));
        assert!(!range.contains("10.0.1.0".parse().unwrap()));
    }

    #[test]
    fn credentials_look_like_salesforce_ones() {
        let key = new_consumer_key();
        assert!(key.starts_with("3MVG9") && key.len() == 85);
        let secret = new_consumer_secret();
        assert_eq!(secret.len(), 64);
        assert!(secrets_equal(&secret, &secret.clone()));
        assert!(!secrets_equal(&secret, &new_consumer_secret()));
    }
}
