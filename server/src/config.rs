//! Configuration: environment variables over an optional TOML file over built-in defaults.
//!
//! Everything is validated once, at start-up, into typed values; a bad setting stops the
//! process with one line that names the setting and says what is wrong with it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

/// A configuration problem, always naming the setting (its environment variable name).
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {setting}: {message}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub message: String,
}

impl ConfigError {
    pub fn new(setting: &'static str, message: impl Into<String>) -> Self {
        Self {
            setting,
            message: message.into(),
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, for a terminal.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

pub use services::db::DatabaseKind;

/// A validated database URL. Its `Display` hides any password, so it is safe to log.
#[derive(Clone)]
pub struct DatabaseUrl {
    url: String,
    kind: DatabaseKind,
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        const SETTING: &str = "DATABASE_URL";
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(ConfigError::new(SETTING, "is empty"));
        }
        let scheme = raw.split(':').next().unwrap_or_default();
        let kind = match scheme {
            "sqlite" => DatabaseKind::Sqlite,
            "postgres" | "postgresql" => DatabaseKind::Postgres,
            _ => {
                return Err(ConfigError::new(
                    SETTING,
                    format!(
                        "unsupported database '{}' (expected a sqlite:// or postgres:// URL)",
                        redact_url(raw)
                    ),
                ));
            }
        };
        if kind == DatabaseKind::Postgres {
            let parsed = Url::parse(raw).map_err(|e| {
                ConfigError::new(
                    SETTING,
                    format!("'{}' is not a valid URL: {e}", redact_url(raw)),
                )
            })?;
            if parsed.host_str().unwrap_or_default().is_empty() {
                return Err(ConfigError::new(SETTING, "a postgres:// URL needs a host"));
            }
        } else if raw
            .trim_start_matches("sqlite:")
            .trim_start_matches("//")
            .is_empty()
        {
            return Err(ConfigError::new(SETTING, "a sqlite: URL needs a file path"));
        }
        Ok(Self {
            url: raw.to_string(),
            kind,
        })
    }

    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    /// The full URL, password included: for connecting only, never for display.
    pub fn expose(&self) -> &str {
        &self.url
    }

    /// For SQLite, the database file the URL names (`None` for in-memory databases).
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        if self.kind != DatabaseKind::Sqlite {
            return None;
        }
        let rest = self
            .url
            .trim_start_matches("sqlite:")
            .trim_start_matches("//");
        let path = rest.split('?').next().unwrap_or_default();
        if path.is_empty() || path == ":memory:" {
            None
        } else {
            Some(PathBuf::from(path))
        }
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact_url(&self.url))
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// Replaces the password of a URL with `***` so it can appear in messages and logs.
pub fn redact_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            // set_password only fails for URLs that cannot have one, which this one has.
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        Ok(_) => raw.to_string(),
        // Not a URL at all: it may still contain a secret, so show only the scheme.
        Err(_) => match raw.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://…"),
            None => "…".to_string(),
        },
    }
}

/// Which Salesforce org the portal works with.
#[derive(Debug, Clone)]
pub enum SalesforceMode {
    /// The built-in sandbox org, started in-process and listening on `listen`.
    Sandbox {
        listen: SocketAddr,
        daily_api_limit: u64,
    },
    /// A real org (or a standalone sandbox org), reached with the portal's own app.
    Org(OrgConnection),
}

/// How the portal authenticates its own connection to an org.
#[derive(Clone)]
pub enum OrgAuth {
    /// JWT bearer: the app's consumer key, the user to act as, and the private key file.
    /// `sign_in_secret` (`SALESFORCE_CLIENT_SECRET` beside the key) serves staff sign-in
    /// only: the web-server flow's code exchange needs the consumer secret unless the app's
    /// "Require secret for web server flow" is off (`isConsumerSecretOptional`).
    JwtBearer {
        username: String,
        key_file: PathBuf,
        sign_in_secret: Option<String>,
    },
    /// Client credentials: the app's consumer secret (the app runs as its run-as user).
    ClientCredentials { secret: String },
}

impl std::fmt::Debug for OrgAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OrgAuth::JwtBearer {
                username,
                key_file,
                sign_in_secret,
            } => f
                .debug_struct("JwtBearer")
                .field("username", username)
                .field("key_file", key_file)
                .field("sign_in_secret", &sign_in_secret.as_ref().map(|_| "***"))
                .finish(),
            OrgAuth::ClientCredentials { .. } => f.write_str("ClientCredentials { secret: *** }"),
        }
    }
}

/// The settings of a connection to an org.
#[derive(Debug, Clone)]
pub struct OrgConnection {
    /// The org's My Domain URL (`SALESFORCE_URL`).
    pub url: Url,
    /// The portal app's consumer key (`SALESFORCE_CLIENT_ID`).
    pub client_id: String,
    pub auth: OrgAuth,
    /// The JWT bearer assertion's `aud` (`SALESFORCE_JWT_AUDIENCE`); default the My Domain
    /// URL, which production orgs and sandboxes both accept (login.salesforce.com is refused
    /// by every sandbox).
    pub jwt_audience: Option<String>,
    /// An extra trusted CA certificate, PEM (`SALESFORCE_CA_FILE`).
    pub ca_file: Option<PathBuf>,
}

/// The validated configuration of one portal process.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the portal listens (`LISTEN_ADDR`). Port 0 picks a free port.
    pub listen_addr: SocketAddr,
    /// The address users reach the portal at (`PUBLIC_URL`); links in mail are built on it,
    /// and cookies are marked `Secure` when it is https.
    pub public_url: Option<Url>,
    /// The database (`DATABASE_URL`): SQLite by default, PostgreSQL for several instances.
    pub database_url: DatabaseUrl,
    /// Upper bound on pooled database connections (`DATABASE_MAX_CONNECTIONS`).
    pub database_max_connections: u32,
    /// Where the portal keeps its files in the default mode (`DATA_DIR`).
    pub data_dir: PathBuf,
    /// The built front end: wasm, JavaScript, CSS (`SITE_ROOT`, as written by cargo-leptos).
    pub site_root: PathBuf,
    /// `LOG_FORMAT`: `text` or `json`.
    pub log_format: LogFormat,
    /// `LOG_LEVEL`: a tracing filter such as `info` or `portcullis=debug,info`.
    pub log_level: String,
    /// Sessions end after this much inactivity (`SESSION_IDLE_MINUTES`).
    pub session_idle: Duration,
    /// How long in-flight requests get to finish after a shutdown signal
    /// (`SHUTDOWN_GRACE_SECONDS`).
    pub shutdown_grace: Duration,
    /// The org the portal works with (`SALESFORCE_MODE` and the `SALESFORCE_*` settings).
    pub salesforce: SalesforceMode,
    /// Where mail goes (`SMTP_URL`); `None` keeps it in the local outbox.
    pub smtp_url: Option<String>,
    /// The sender of the portal's mail (`MAIL_FROM`).
    pub mail_from: String,
    /// How roles map from Salesforce (`ROLE_*`).
    pub roles: services::roles::RoleMapping,
    /// Approvals a request needs unless an owner changes it (`APPROVALS_REQUIRED`, 1 or 2).
    pub approvals_required: i64,
    /// Provisioning workers this instance runs (`PROVISIONING_WORKERS`).
    pub provisioning_workers: usize,
    /// How long a credential reveal link works (`REVEAL_LINK_HOURS`).
    pub reveal_link_hours: i64,
    /// How long after a reveal "I did not do this" is taken (`REVEAL_REPORT_HOURS`).
    pub reveal_report_hours: i64,
    /// The AES-256-GCM key for orgs whose credentials API returns no secrets
    /// (`CREDENTIAL_KEY_FILE`; generated when absent).
    pub credential_key_file: PathBuf,
    /// The HMAC key of one-time codes' stored hashes (`CODE_KEY_FILE`; generated when
    /// absent).
    pub code_key_file: PathBuf,
    /// The key audit anchors are made with (`AUDIT_ANCHOR_KEY_FILE`; generated when absent).
    pub audit_anchor_key_file: PathBuf,
    /// The audit chain is anchored every this many entries (`AUDIT_ANCHOR_EVERY`).
    pub audit_anchor_every: i64,
    /// How often this instance collects API usage from the org (`USAGE_COLLECT_SECONDS`);
    /// `None`: never (another instance does).
    pub usage_collect_every: Option<Duration>,
    /// Where budget alerts are posted (`ALERT_WEBHOOK_URL`), signed with
    /// `ALERT_WEBHOOK_SECRET`.
    pub alert_webhook: Option<AlertWebhook>,
    /// Salesforce Integration licences the org includes (`INTEGRATION_LICENCES_INCLUDED`)
    /// and the monthly price of each more, in cents (`INTEGRATION_LICENCE_PRICE`).
    pub licences: services::usage::report::LicencePricing,
    /// Sandbox mode may listen beyond loopback (`SANDBOX_PUBLIC=1`).
    pub sandbox_public: bool,
    /// Reverse proxies whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<crate::http::client::Network>,
    /// Requests to `/auth/login` and `/auth/callback` a client may make a minute
    /// (`AUTH_RATE_LIMIT_PER_MINUTE`), and all clients together
    /// (`AUTH_GLOBAL_RATE_LIMIT_PER_MINUTE`).
    pub auth_rate_limit_per_minute: u32,
    pub auth_global_rate_limit_per_minute: u32,
    /// The org people must sign in from (`SALESFORCE_ORG_ID`, its 15-character form);
    /// `None`: the org the portal's own connection reaches.
    pub salesforce_org_id: Option<String>,
    /// Sessions end this long after the sign-in, however active (`SESSION_MAX_HOURS`).
    pub session_max: Duration,
    /// How often a signed-in person's standing in the org (active, not frozen, permission
    /// sets) is read again (`SESSION_RECHECK_MINUTES`; zero: on every request).
    pub session_recheck: Duration,
    /// A client must send a request's headers within this (`HTTP_HEADER_TIMEOUT_SECONDS`).
    pub http_header_timeout: Duration,
    /// An answer must begin within this (`HTTP_REQUEST_TIMEOUT_SECONDS`).
    pub http_request_timeout: Duration,
    /// Requests in flight at once, beyond which new ones get 503
    /// (`HTTP_MAX_CONCURRENT_REQUESTS`).
    pub http_max_concurrent_requests: usize,
}

/// The alert webhook's target and signing secret (never printed).
#[derive(Clone)]
pub struct AlertWebhook {
    pub url: Url,
    pub secret: secrecy::SecretString,
}

impl std::fmt::Debug for AlertWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertWebhook")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

/// The settings as they may appear in the TOML file: every key optional, named like the
/// environment variable in lower case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen_addr: Option<String>,
    public_url: Option<String>,
    database_url: Option<String>,
    database_max_connections: Option<toml::Value>,
    data_dir: Option<String>,
    site_root: Option<String>,
    log_format: Option<String>,
    log_level: Option<String>,
    session_idle_minutes: Option<toml::Value>,
    shutdown_grace_seconds: Option<toml::Value>,
    salesforce_mode: Option<String>,
    sandbox_org_listen: Option<String>,
    sandbox_org_daily_api_limit: Option<toml::Value>,
    salesforce_url: Option<String>,
    salesforce_client_id: Option<String>,
    salesforce_client_secret: Option<String>,
    salesforce_username: Option<String>,
    salesforce_jwt_key_file: Option<String>,
    salesforce_jwt_audience: Option<String>,
    salesforce_ca_file: Option<String>,
    smtp_url: Option<String>,
    mail_from: Option<String>,
    role_approvers: Option<String>,
    role_security_reviewers: Option<String>,
    role_owners: Option<String>,
    role_approver_permission_set: Option<String>,
    role_security_reviewer_permission_set: Option<String>,
    role_owner_permission_set: Option<String>,
    approvals_required: Option<toml::Value>,
    provisioning_workers: Option<toml::Value>,
    reveal_link_hours: Option<toml::Value>,
    reveal_report_hours: Option<toml::Value>,
    credential_key_file: Option<String>,
    code_key_file: Option<String>,
    audit_anchor_key_file: Option<String>,
    audit_anchor_every: Option<toml::Value>,
    usage_collect_seconds: Option<toml::Value>,
    alert_webhook_url: Option<String>,
    alert_webhook_secret: Option<String>,
    integration_licences_included: Option<toml::Value>,
    integration_licence_price: Option<toml::Value>,
    sandbox_public: Option<toml::Value>,
    trusted_proxies: Option<String>,
    auth_rate_limit_per_minute: Option<toml::Value>,
    auth_global_rate_limit_per_minute: Option<toml::Value>,
    salesforce_org_id: Option<String>,
    session_max_hours: Option<toml::Value>,
    session_recheck_minutes: Option<toml::Value>,
    http_header_timeout_seconds: Option<toml::Value>,
    http_request_timeout_seconds: Option<toml::Value>,
    http_max_concurrent_requests: Option<toml::Value>,
}

impl FileSettings {
    fn get(&self, key: &str) -> Option<String> {
        let value = |v: &Option<toml::Value>| {
            v.as_ref().map(|v| match v {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        match key {
            "LISTEN_ADDR" => self.listen_addr.clone(),
            "PUBLIC_URL" => self.public_url.clone(),
            "DATABASE_URL" => self.database_url.clone(),
            "DATABASE_MAX_CONNECTIONS" => value(&self.database_max_connections),
            "DATA_DIR" => self.data_dir.clone(),
            "SITE_ROOT" => self.site_root.clone(),
            "LOG_FORMAT" => self.log_format.clone(),
            "LOG_LEVEL" => self.log_level.clone(),
            "SESSION_IDLE_MINUTES" => value(&self.session_idle_minutes),
            "SHUTDOWN_GRACE_SECONDS" => value(&self.shutdown_grace_seconds),
            "SALESFORCE_MODE" => self.salesforce_mode.clone(),
            "SANDBOX_ORG_LISTEN" => self.sandbox_org_listen.clone(),
            "SANDBOX_ORG_DAILY_API_LIMIT" => value(&self.sandbox_org_daily_api_limit),
            "SALESFORCE_URL" => self.salesforce_url.clone(),
            "SALESFORCE_CLIENT_ID" => self.salesforce_client_id.clone(),
            "SALESFORCE_CLIENT_SECRET" => self.salesforce_client_secret.clone(),
            "SALESFORCE_USERNAME" => self.salesforce_username.clone(),
            "SALESFORCE_JWT_KEY_FILE" => self.salesforce_jwt_key_file.clone(),
            "SALESFORCE_JWT_AUDIENCE" => self.salesforce_jwt_audience.clone(),
            "SALESFORCE_CA_FILE" => self.salesforce_ca_file.clone(),
            "SMTP_URL" => self.smtp_url.clone(),
            "MAIL_FROM" => self.mail_from.clone(),
            "ROLE_APPROVERS" => self.role_approvers.clone(),
            "ROLE_SECURITY_REVIEWERS" => self.role_security_reviewers.clone(),
            "ROLE_OWNERS" => self.role_owners.clone(),
            "ROLE_APPROVER_PERMISSION_SET" => self.role_approver_permission_set.clone(),
            "ROLE_SECURITY_REVIEWER_PERMISSION_SET" => {
                self.role_security_reviewer_permission_set.clone()
            }
            "ROLE_OWNER_PERMISSION_SET" => self.role_owner_permission_set.clone(),
            "APPROVALS_REQUIRED" => value(&self.approvals_required),
            "PROVISIONING_WORKERS" => value(&self.provisioning_workers),
            "REVEAL_LINK_HOURS" => value(&self.reveal_link_hours),
            "REVEAL_REPORT_HOURS" => value(&self.reveal_report_hours),
            "CREDENTIAL_KEY_FILE" => self.credential_key_file.clone(),
            "CODE_KEY_FILE" => self.code_key_file.clone(),
            "AUDIT_ANCHOR_KEY_FILE" => self.audit_anchor_key_file.clone(),
            "AUDIT_ANCHOR_EVERY" => value(&self.audit_anchor_every),
            "USAGE_COLLECT_SECONDS" => value(&self.usage_collect_seconds),
            "ALERT_WEBHOOK_URL" => self.alert_webhook_url.clone(),
            "ALERT_WEBHOOK_SECRET" => self.alert_webhook_secret.clone(),
            "INTEGRATION_LICENCES_INCLUDED" => value(&self.integration_licences_included),
            "INTEGRATION_LICENCE_PRICE" => value(&self.integration_licence_price),
            "SANDBOX_PUBLIC" => value(&self.sandbox_public),
            "TRUSTED_PROXIES" => self.trusted_proxies.clone(),
            "AUTH_RATE_LIMIT_PER_MINUTE" => value(&self.auth_rate_limit_per_minute),
            "AUTH_GLOBAL_RATE_LIMIT_PER_MINUTE" => value(&self.auth_global_rate_limit_per_minute),
            "SALESFORCE_ORG_ID" => self.salesforce_org_id.clone(),
            "SESSION_MAX_HOURS" => value(&self.session_max_hours),
            "SESSION_RECHECK_MINUTES" => value(&self.session_recheck_minutes),
            "HTTP_HEADER_TIMEOUT_SECONDS" => value(&self.http_header_timeout_seconds),
            "HTTP_REQUEST_TIMEOUT_SECONDS" => value(&self.http_request_timeout_seconds),
            "HTTP_MAX_CONCURRENT_REQUESTS" => value(&self.http_max_concurrent_requests),
            _ => None,
        }
    }
}

/// Every setting the portal reads, for documentation and for `--help`.
pub const SETTINGS: &[(&str, &str)] = &[
    (
        "PORTCULLIS_CONFIG",
        "path of an optional TOML file with the settings below (lower-case keys)",
    ),
    (
        "LISTEN_ADDR",
        "address to listen on; default 127.0.0.1:3000 (port 0 = any free port)",
    ),
    (
        "PUBLIC_URL",
        "URL users reach the portal at; default http://LISTEN_ADDR",
    ),
    (
        "DATABASE_URL",
        "sqlite://… or postgres://…; default sqlite://DATA_DIR/portcullis.db",
    ),
    ("DATABASE_MAX_CONNECTIONS", "database pool size; default 10"),
    (
        "DATA_DIR",
        "directory for the SQLite database and generated keys; default ./data",
    ),
    (
        "SITE_ROOT",
        "directory of the built front end; default target/site",
    ),
    ("LOG_FORMAT", "text or json; default text"),
    (
        "LOG_LEVEL",
        "tracing filter, e.g. info or portcullis=debug; default info",
    ),
    (
        "SESSION_IDLE_MINUTES",
        "sign-in sessions end after this idle time; default 480",
    ),
    (
        "SHUTDOWN_GRACE_SECONDS",
        "time in-flight requests get on shutdown; default 10",
    ),
    (
        "SALESFORCE_MODE",
        "sandbox (the embedded sandbox org, default) or org (a real Salesforce org)",
    ),
    (
        "SANDBOX_ORG_LISTEN",
        "where the sandbox org listens (HTTPS); default 127.0.0.1:3900",
    ),
    (
        "SANDBOX_ORG_DAILY_API_LIMIT",
        "the sandbox org's daily API request limit; default 15000",
    ),
    (
        "SALESFORCE_URL",
        "org mode: the org's My Domain URL, e.g. https://acme.my.salesforce.com",
    ),
    (
        "SALESFORCE_CLIENT_ID",
        "org mode: the consumer key of the portal's own External Client App",
    ),
    (
        "SALESFORCE_JWT_KEY_FILE",
        "org mode: private key (PEM) for the JWT bearer flow (preferred)",
    ),
    (
        "SALESFORCE_USERNAME",
        "org mode, with the JWT key: the user the portal acts as",
    ),
    (
        "SALESFORCE_CLIENT_SECRET",
        "org mode: the portal app's consumer secret: the client credentials flow (if no JWT key); with the JWT key, used for staff sign-in only (required unless the app's \"Require secret for web server flow\" is off)",
    ),
    (
        "SALESFORCE_JWT_AUDIENCE",
        "org mode, with the JWT key: the assertion's audience; default SALESFORCE_URL (the My Domain URL)",
    ),
    (
        "SALESFORCE_CA_FILE",
        "org mode: extra CA certificate (PEM) to trust, e.g. for a TLS-inspecting proxy",
    ),
    (
        "SMTP_URL",
        "smtps://user:pass@host:465 or smtp://user:pass@host:587?tls=required (STARTTLS); plain smtp:// only to localhost; unset: mail stays in the sandbox outbox (/outbox)",
    ),
    (
        "MAIL_FROM",
        "sender of the portal's mail; default Portcullis <portcullis@localhost>",
    ),
    (
        "ROLE_APPROVERS",
        "comma-separated Salesforce usernames who may approve",
    ),
    (
        "ROLE_SECURITY_REVIEWERS",
        "comma-separated Salesforce usernames who may review the audit log",
    ),
    (
        "ROLE_OWNERS",
        "comma-separated Salesforce usernames who run the portal (catalog, settings)",
    ),
    (
        "ROLE_APPROVER_PERMISSION_SET",
        "holders of this permission set are approvers; default Portcullis_Approver (- = none)",
    ),
    (
        "ROLE_SECURITY_REVIEWER_PERMISSION_SET",
        "holders are security reviewers; default Portcullis_Security_Reviewer (- = none)",
    ),
    (
        "ROLE_OWNER_PERMISSION_SET",
        "holders are owners; default Portcullis_Owner (- = none)",
    ),
    (
        "PROVISIONING_WORKERS",
        "provisioning workers in this instance (0 = none: another instance provisions); default 2",
    ),
    (
        "APPROVALS_REQUIRED",
        "approvals a request needs at first start (1 or 2; owners change it in /admin/settings); default 1",
    ),
    (
        "REVEAL_LINK_HOURS",
        "hours a contractor's credential reveal link works (1 to 720); default 72",
    ),
    (
        "REVEAL_REPORT_HOURS",
        "hours after a reveal during which the contractor can report it as not theirs (\"I did not do this\", newest link only, with a mailed code; 1 to 720); default 168",
    ),
    (
        "CREDENTIAL_KEY_FILE",
        "AES-256-GCM key (base64 of 32 bytes) sealing secrets for orgs whose credentials API returns none; generated when absent; default <DATA_DIR>/credential.key",
    ),
    (
        "CODE_KEY_FILE",
        "HMAC-SHA256 key (base64 of 32 bytes) one-time codes are stored under, so a copy of the database reveals none; generated when absent; default <DATA_DIR>/code.key (several instances: the same key)",
    ),
    (
        "AUDIT_ANCHOR_KEY_FILE",
        "HMAC-SHA256 key (base64 of 32 bytes) the audit chain is anchored with; keep it (or a copy) where a database administrator cannot write; generated when absent; default <DATA_DIR>/audit-anchor.key",
    ),
    (
        "AUDIT_ANCHOR_EVERY",
        "the audit chain is anchored every this many entries (and at shutdown); 1 to 1000000; default 1000",
    ),
    (
        "USAGE_COLLECT_SECONDS",
        "how often API usage is read from the org's event log files (60 to 86400; 0 = never, another instance collects); default 600",
    ),
    (
        "ALERT_WEBHOOK_URL",
        "http(s) URL budget alerts are posted to (JSON with a Slack-compatible text field); unset: mail only",
    ),
    (
        "ALERT_WEBHOOK_SECRET",
        "with ALERT_WEBHOOK_URL: the HMAC-SHA256 key (16+ characters) that signs each post (X-Portcullis-Signature)",
    ),
    (
        "INTEGRATION_LICENCES_INCLUDED",
        "Salesforce Integration licences the org includes at no cost; default 5",
    ),
    (
        "INTEGRATION_LICENCE_PRICE",
        "monthly price of each further Salesforce Integration licence, in USD (e.g. 10 or 12.50); default 10",
    ),
    (
        "SANDBOX_PUBLIC",
        "1: allow sandbox mode (its /outbox page and the sandbox org) on a non-loopback LISTEN_ADDR or SANDBOX_ORG_LISTEN; default 0",
    ),
    (
        "TRUSTED_PROXIES",
        "comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For names the client; default none",
    ),
    (
        "AUTH_RATE_LIMIT_PER_MINUTE",
        "requests to /auth/login and /auth/callback one client (IPv4 address, IPv6 /64) may make a minute; default 30",
    ),
    (
        "AUTH_GLOBAL_RATE_LIMIT_PER_MINUTE",
        "requests to /auth/login and /auth/callback all clients together may make a minute (per instance); default 300",
    ),
    (
        "SALESFORCE_ORG_ID",
        "the org id (00D…) people sign in from; sign-ins from any other org are refused; default: the org the portal connects to",
    ),
    (
        "SESSION_MAX_HOURS",
        "sign-in sessions end this many hours after the sign-in, however active (1 to 720); default 12",
    ),
    (
        "SESSION_RECHECK_MINUTES",
        "how often a signed-in person's roles and active/frozen state are read again from the org (0 to 60; 0 = every request); default 5",
    ),
    (
        "HTTP_HEADER_TIMEOUT_SECONDS",
        "a client must send a request's headers within this many seconds, or the connection is closed (1 to 300); default 10",
    ),
    (
        "HTTP_REQUEST_TIMEOUT_SECONDS",
        "an answer that has not begun after this many seconds becomes a 503 page (1 to 3600); default 60",
    ),
    (
        "HTTP_MAX_CONCURRENT_REQUESTS",
        "requests in flight at once; more get 503 with Retry-After (health checks exempt) (1 to 100000); default 512",
    ),
];

impl Config {
    /// Reads the configuration from the process environment (and `PORTCULLIS_CONFIG`).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::load(|key| std::env::var(key).ok())
    }

    /// Reads the configuration through `env`, which returns a variable's value if set.
    /// Tests pass a closure over a map instead of touching the process environment.
    pub fn load(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let file = match env("PORTCULLIS_CONFIG").filter(|p| !p.trim().is_empty()) {
            Some(path) => read_file_settings(Path::new(&path))?,
            None => FileSettings::default(),
        };
        // Environment first, then the file; empty values count as unset.
        let get = |key: &str| {
            env(key)
                .filter(|v| !v.trim().is_empty())
                .or_else(|| file.get(key))
        };

        let listen_addr = match get("LISTEN_ADDR") {
            Some(raw) => parse_socket_addr(&raw)?,
            None => SocketAddr::from(([127, 0, 0, 1], 3000)),
        };

        let public_url = get("PUBLIC_URL")
            .map(|raw| {
                let url = Url::parse(raw.trim()).map_err(|e| {
                    ConfigError::new("PUBLIC_URL", format!("'{raw}' is not a valid URL: {e}"))
                })?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(ConfigError::new(
                        "PUBLIC_URL",
                        format!("'{raw}' must start with http:// or https://"),
                    ));
                }
                Ok(url)
            })
            .transpose()?;

        let data_dir = PathBuf::from(get("DATA_DIR").unwrap_or_else(|| "data".to_string()));

        let database_url = match get("DATABASE_URL") {
            Some(raw) => DatabaseUrl::parse(&raw)?,
            None => {
                let file = data_dir.join("portcullis.db");
                DatabaseUrl::parse(&format!("sqlite://{}?mode=rwc", file.display()))?
            }
        };

        let database_max_connections = parse_number(
            "DATABASE_MAX_CONNECTIONS",
            get("DATABASE_MAX_CONNECTIONS"),
            10,
            1..=1000,
        )? as u32;

        let site_root = PathBuf::from(
            get("SITE_ROOT")
                .or_else(|| env("LEPTOS_SITE_ROOT"))
                .unwrap_or_else(|| "target/site".to_string()),
        );

        let log_format = match get("LOG_FORMAT").as_deref().map(str::trim) {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::new(
                    "LOG_FORMAT",
                    format!("'{other}' is not a log format (expected text or json)"),
                ));
            }
        };

        let log_level = get("LOG_LEVEL").unwrap_or_else(|| "info".to_string());
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log_level) {
            return Err(ConfigError::new(
                "LOG_LEVEL",
                format!("'{log_level}' is not a log filter: {e}"),
            ));
        }

        let session_idle = Duration::from_secs(
            60 * parse_number(
                "SESSION_IDLE_MINUTES",
                get("SESSION_IDLE_MINUTES"),
                480,
                1..=43_200,
            )?,
        );
        let shutdown_grace = Duration::from_secs(parse_number(
            "SHUTDOWN_GRACE_SECONDS",
            get("SHUTDOWN_GRACE_SECONDS"),
            10,
            0..=600,
        )?);

        let salesforce = parse_salesforce(&get)?;
        let sandbox_public = parse_flag("SANDBOX_PUBLIC", get("SANDBOX_PUBLIC"))?;
        if !sandbox_public {
            check_sandbox_stays_local(listen_addr, &salesforce)?;
        }

        let smtp_url = get("SMTP_URL").map(|raw| raw.trim().to_string());
        if let Some(raw) = &smtp_url {
            check_smtp_url(raw)?;
        }
        let mail_from =
            get("MAIL_FROM").unwrap_or_else(|| "Portcullis <portcullis@localhost>".to_string());
        if mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError::new(
                "MAIL_FROM",
                format!(
                    "'{mail_from}' is not a sender address such as Portcullis <portcullis@example.com>"
                ),
            ));
        }
        let list = |key: &str| -> Vec<String> {
            get(key)
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().to_ascii_lowercase())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let permission_set = |key: &str, default: &str| -> Option<String> {
            match get(key) {
                Some(v) if v.trim() == "-" => None,
                Some(v) => Some(v.trim().to_string()),
                None => Some(default.to_string()),
            }
        };
        let roles = services::roles::RoleMapping {
            approvers: list("ROLE_APPROVERS"),
            security_reviewers: list("ROLE_SECURITY_REVIEWERS"),
            owners: list("ROLE_OWNERS"),
            approver_permission_set: permission_set(
                "ROLE_APPROVER_PERMISSION_SET",
                "Portcullis_Approver",
            ),
            security_reviewer_permission_set: permission_set(
                "ROLE_SECURITY_REVIEWER_PERMISSION_SET",
                "Portcullis_Security_Reviewer",
            ),
            owner_permission_set: permission_set("ROLE_OWNER_PERMISSION_SET", "Portcullis_Owner"),
        };
        let approvals_required =
            parse_number("APPROVALS_REQUIRED", get("APPROVALS_REQUIRED"), 1, 1..=2)? as i64;

        let provisioning_workers = parse_number(
            "PROVISIONING_WORKERS",
            get("PROVISIONING_WORKERS"),
            2,
            0..=16,
        )? as usize;

        let reveal_link_hours =
            parse_number("REVEAL_LINK_HOURS", get("REVEAL_LINK_HOURS"), 72, 1..=720)? as i64;
        let reveal_report_hours = parse_number(
            "REVEAL_REPORT_HOURS",
            get("REVEAL_REPORT_HOURS"),
            168,
            1..=720,
        )? as i64;

        let credential_key_file = get("CREDENTIAL_KEY_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("credential.key"));
        let code_key_file = get("CODE_KEY_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("code.key"));
        let audit_anchor_key_file = get("AUDIT_ANCHOR_KEY_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("audit-anchor.key"));
        let audit_anchor_every = parse_number(
            "AUDIT_ANCHOR_EVERY",
            get("AUDIT_ANCHOR_EVERY"),
            1_000,
            1..=1_000_000,
        )? as i64;

        let usage_collect_every = match parse_number(
            "USAGE_COLLECT_SECONDS",
            get("USAGE_COLLECT_SECONDS"),
            600,
            0..=86_400,
        )? {
            0 => None,
            seconds if seconds < 60 => {
                return Err(ConfigError::new(
                    "USAGE_COLLECT_SECONDS",
                    format!(
                        "{seconds} is too often: at least 60 seconds (each run costs API calls), or 0 for never"
                    ),
                ));
            }
            seconds => Some(Duration::from_secs(seconds)),
        };
        let alert_webhook = parse_webhook(&get)?;
        let licences = services::usage::report::LicencePricing {
            included: parse_number(
                "INTEGRATION_LICENCES_INCLUDED",
                get("INTEGRATION_LICENCES_INCLUDED"),
                5,
                0..=100_000,
            )?,
            price_cents: match get("INTEGRATION_LICENCE_PRICE") {
                Some(raw) => parse_price("INTEGRATION_LICENCE_PRICE", &raw)?,
                None => 1000,
            },
        };

        let trusted_proxies = parse_trusted_proxies(get("TRUSTED_PROXIES"))?;
        let http_header_timeout = Duration::from_secs(parse_number(
            "HTTP_HEADER_TIMEOUT_SECONDS",
            get("HTTP_HEADER_TIMEOUT_SECONDS"),
            10,
            1..=300,
        )?);
        let http_request_timeout = Duration::from_secs(parse_number(
            "HTTP_REQUEST_TIMEOUT_SECONDS",
            get("HTTP_REQUEST_TIMEOUT_SECONDS"),
            60,
            1..=3600,
        )?);
        let http_max_concurrent_requests = parse_number(
            "HTTP_MAX_CONCURRENT_REQUESTS",
            get("HTTP_MAX_CONCURRENT_REQUESTS"),
            512,
            1..=100_000,
        )? as usize;
        let session_max = Duration::from_secs(
            3600 * parse_number("SESSION_MAX_HOURS", get("SESSION_MAX_HOURS"), 12, 1..=720)?,
        );
        let session_recheck = Duration::from_secs(
            60 * parse_number(
                "SESSION_RECHECK_MINUTES",
                get("SESSION_RECHECK_MINUTES"),
                5,
                0..=60,
            )?,
        );
        let salesforce_org_id = get("SALESFORCE_ORG_ID")
            .map(|raw| {
                let raw = raw.trim();
                salesforce::SalesforceId::parse(raw)
                    .ok()
                    .map(|id| id.as_15().to_string())
                    .filter(|id| id.starts_with("00D"))
                    .ok_or_else(|| {
                        ConfigError::new(
                            "SALESFORCE_ORG_ID",
                            format!("'{raw}' is not an org id (15 or 18 characters, starting 00D)"),
                        )
                    })
            })
            .transpose()?;
        let auth_rate_limit_per_minute = parse_number(
            "AUTH_RATE_LIMIT_PER_MINUTE",
            get("AUTH_RATE_LIMIT_PER_MINUTE"),
            30,
            2..=1_000_000,
        )? as u32;
        let auth_global_rate_limit_per_minute = parse_number(
            "AUTH_GLOBAL_RATE_LIMIT_PER_MINUTE",
            get("AUTH_GLOBAL_RATE_LIMIT_PER_MINUTE"),
            300,
            2..=10_000_000,
        )? as u32;

        Ok(Self {
            http_header_timeout,
            http_request_timeout,
            http_max_concurrent_requests,
            session_max,
            session_recheck,
            salesforce_org_id,
            auth_rate_limit_per_minute,
            auth_global_rate_limit_per_minute,
            trusted_proxies,
            sandbox_public,
            usage_collect_every,
            alert_webhook,
            licences,
            credential_key_file,
            code_key_file,
            audit_anchor_key_file,
            audit_anchor_every,
            reveal_link_hours,
            reveal_report_hours,
            provisioning_workers,
            salesforce,
            smtp_url,
            mail_from,
            roles,
            approvals_required,
            listen_addr,
            public_url,
            database_url,
            database_max_connections,
            data_dir,
            site_root,
            log_format,
            log_level,
            session_idle,
            shutdown_grace,
        })
    }

    /// Whether cookies must carry the `Secure` attribute.
    pub fn serves_https(&self) -> bool {
        self.public_url
            .as_ref()
            .is_some_and(|url| url.scheme() == "https")
    }
}

fn parse_salesforce(get: &dyn Fn(&str) -> Option<String>) -> Result<SalesforceMode, ConfigError> {
    match get("SALESFORCE_MODE").as_deref().map(str::trim) {
        None | Some("sandbox") => {
            let listen = match get("SANDBOX_ORG_LISTEN") {
                Some(raw) => parse_socket_addr(&raw)
                    .map_err(|e| ConfigError::new("SANDBOX_ORG_LISTEN", e.message))?,
                None => SocketAddr::from(([127, 0, 0, 1], 3900)),
            };
            let daily_api_limit = parse_number(
                "SANDBOX_ORG_DAILY_API_LIMIT",
                get("SANDBOX_ORG_DAILY_API_LIMIT"),
                15_000,
                1..=100_000_000,
            )?;
            Ok(SalesforceMode::Sandbox {
                listen,
                daily_api_limit,
            })
        }
        Some("org") => {
            let raw_url = get("SALESFORCE_URL").ok_or_else(|| {
                ConfigError::new("SALESFORCE_URL", "is required when SALESFORCE_MODE=org")
            })?;
            let url = Url::parse(raw_url.trim()).map_err(|e| {
                ConfigError::new(
                    "SALESFORCE_URL",
                    format!("'{raw_url}' is not a valid URL: {e}"),
                )
            })?;
            if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
                return Err(ConfigError::new(
                    "SALESFORCE_URL",
                    format!("'{raw_url}' must be the org's https:// My Domain URL"),
                ));
            }
            let client_id = get("SALESFORCE_CLIENT_ID").ok_or_else(|| {
                ConfigError::new(
                    "SALESFORCE_CLIENT_ID",
                    "is required when SALESFORCE_MODE=org",
                )
            })?;
            let auth = match (
                get("SALESFORCE_JWT_KEY_FILE"),
                get("SALESFORCE_CLIENT_SECRET"),
            ) {
                (Some(key_file), secret) => {
                    let key_file = PathBuf::from(key_file);
                    if !key_file.is_file() {
                        return Err(ConfigError::new(
                            "SALESFORCE_JWT_KEY_FILE",
                            format!("{} is not a readable file", key_file.display()),
                        ));
                    }
                    let username = get("SALESFORCE_USERNAME").ok_or_else(|| {
                        ConfigError::new("SALESFORCE_USERNAME", "is required with SALESFORCE_JWT_KEY_FILE (the user the portal acts as)")
                    })?;
                    OrgAuth::JwtBearer {
                        username,
                        key_file,
                        sign_in_secret: secret.filter(|s| !s.trim().is_empty()),
                    }
                }
                (None, Some(secret)) => OrgAuth::ClientCredentials { secret },
                (None, None) => {
                    return Err(ConfigError::new(
                        "SALESFORCE_JWT_KEY_FILE",
                        "org mode needs SALESFORCE_JWT_KEY_FILE (JWT bearer, preferred) or SALESFORCE_CLIENT_SECRET (client credentials)",
                    ));
                }
            };
            let jwt_audience = match get("SALESFORCE_JWT_AUDIENCE") {
                Some(raw) => {
                    let raw = raw.trim().trim_end_matches('/').to_string();
                    match Url::parse(&raw) {
                        Ok(aud) if aud.scheme() == "https" || aud.scheme() == "http" => Some(raw),
                        _ => {
                            return Err(ConfigError::new(
                                "SALESFORCE_JWT_AUDIENCE",
                                format!(
                                    "'{raw}' is not a URL (expected the org's My Domain URL, https://login.salesforce.com or https://test.salesforce.com)"
                                ),
                            ));
                        }
                    }
                }
                None => None,
            };
            let ca_file = get("SALESFORCE_CA_FILE").map(PathBuf::from);
            if let Some(ca) = &ca_file
                && !ca.is_file()
            {
                return Err(ConfigError::new(
                    "SALESFORCE_CA_FILE",
                    format!("{} is not a readable file", ca.display()),
                ));
            }
            Ok(SalesforceMode::Org(OrgConnection {
                url,
                client_id,
                auth,
                jwt_audience,
                ca_file,
            }))
        }
        Some(other) => Err(ConfigError::new(
            "SALESFORCE_MODE",
            format!("'{other}' is not a mode (expected sandbox or org)"),
        )),
    }
}

fn read_file_settings(path: &Path) -> Result<FileSettings, ConfigError> {
    const SETTING: &str = "PORTCULLIS_CONFIG";
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(SETTING, format!("cannot read {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| {
        // toml's messages span several lines; keep the promise of a one-line error.
        let message = e.message().replace('\n', " ");
        let place = e
            .span()
            .map(|span| {
                let line = text[..span.start.min(text.len())].lines().count().max(1);
                format!(" (line {line})")
            })
            .unwrap_or_default();
        ConfigError::new(SETTING, format!("{}{place}: {message}", path.display()))
    })
}

/// Mail carries verification codes and capability links, so it leaves this machine only
/// encrypted: `smtps://` (TLS from the start) or `smtp://…?tls=required` (STARTTLS, refused
/// if the server does not offer it). lettre sends a plain `smtp://` URL, and one with
/// `tls=opportunistic` to a server that does not offer STARTTLS, in clear text, which is
/// fine only for a relay on this machine.
fn check_smtp_url(raw: &str) -> Result<(), ConfigError> {
    const SETTING: &str = "SMTP_URL";
    let shown = redact_url(raw);
    let url = Url::parse(raw)
        .ok()
        .filter(|u| matches!(u.scheme(), "smtp" | "smtps"))
        .ok_or_else(|| {
            ConfigError::new(
                SETTING,
                format!("'{shown}' is not an smtp:// or smtps:// URL"),
            )
        })?;
    let Some(host) = url.host() else {
        return Err(ConfigError::new(
            SETTING,
            format!("'{shown}' names no host"),
        ));
    };
    if url.scheme() == "smtps" {
        return Ok(());
    }
    let tls = url
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    // smtp: is not a "special" scheme, so the url crate leaves an IPv4 host as a name.
    let loopback = match host {
        url::Host::Domain(name) => {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    };
    match tls.as_deref() {
        Some("required") => Ok(()),
        None | Some("opportunistic") if loopback => Ok(()),
        None | Some("opportunistic") => Err(ConfigError::new(
            SETTING,
            format!(
                "'{shown}' would send mail, with its codes and links, unencrypted: add ?tls=required \
                 (STARTTLS, usually port 587) or use smtps:// (TLS, usually port 465); plain smtp:// \
                 is only for a relay on this machine (localhost, 127.0.0.1, ::1)"
            ),
        )),
        Some(other) => Err(ConfigError::new(
            SETTING,
            format!("'{shown}': tls={other} is not understood (use tls=required, or smtps://)"),
        )),
    }
}

/// A comma-separated list of proxy addresses and networks.
fn parse_trusted_proxies(
    raw: Option<String>,
) -> Result<Vec<crate::http::client::Network>, ConfigError> {
    const SETTING: &str = "TRUSTED_PROXIES";
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let network = crate::http::client::Network::parse(item)
                .map_err(|e| ConfigError::new(SETTING, e))?;
            if network.to_string().ends_with("/0") {
                return Err(ConfigError::new(
                    SETTING,
                    format!(
                        "'{item}' trusts every address, so any client could name its own address"
                    ),
                ));
            }
            Ok(network)
        })
        .collect()
}

/// `1`/`true` or `0`/`false` (unset: false).
fn parse_flag(setting: &'static str, raw: Option<String>) -> Result<bool, ConfigError> {
    match raw.as_deref().map(str::trim) {
        None | Some("0") | Some("false") => Ok(false),
        Some("1") | Some("true") => Ok(true),
        Some(other) => Err(ConfigError::new(
            setting,
            format!("'{other}' is not 1 or 0"),
        )),
    }
}

/// The sandbox mode is for trying the portal on one machine: its outbox page shows every
/// mail (codes and links included) to anyone, and the sandbox org's home page lists its
/// people's passwords. Serving either beyond this machine must be asked for.
fn check_sandbox_stays_local(
    listen_addr: SocketAddr,
    salesforce: &SalesforceMode,
) -> Result<(), ConfigError> {
    let SalesforceMode::Sandbox { listen, .. } = salesforce else {
        return Ok(());
    };
    let remedy = "listen on 127.0.0.1, point the portal at a real org (SALESFORCE_MODE=org), \
                  or set SANDBOX_PUBLIC=1 to do this on purpose";
    if !listen_addr.ip().to_canonical().is_loopback() {
        return Err(ConfigError::new(
            "LISTEN_ADDR",
            format!(
                "{listen_addr} can be reached from other machines, and with SALESFORCE_MODE=sandbox \
                 the portal shows its outbox (/outbox: every mail, codes and links included) to \
                 anyone who reaches it: {remedy}"
            ),
        ));
    }
    if !listen.ip().to_canonical().is_loopback() {
        return Err(ConfigError::new(
            "SANDBOX_ORG_LISTEN",
            format!(
                "{listen} can be reached from other machines, and with SALESFORCE_MODE=sandbox \
                 that serves the sandbox org (its people's passwords, its control API) to anyone \
                 who reaches it: {remedy}"
            ),
        ));
    }
    Ok(())
}

fn parse_socket_addr(raw: &str) -> Result<SocketAddr, ConfigError> {
    let raw = raw.trim();
    raw.parse::<SocketAddr>().map_err(|_| {
        let hint = match raw.rsplit_once(':') {
            Some((_, port)) if port.parse::<u16>().is_err() => {
                format!("'{port}' is not a port number (0-65535)")
            }
            Some(_) => "the host must be an IP address such as 127.0.0.1 or 0.0.0.0".to_string(),
            None => "expected host:port, e.g. 127.0.0.1:3000".to_string(),
        };
        ConfigError::new(
            "LISTEN_ADDR",
            format!("'{raw}' is not a listen address: {hint}"),
        )
    })
}

fn parse_webhook(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<AlertWebhook>, ConfigError> {
    let secret = get("ALERT_WEBHOOK_SECRET");
    let Some(raw) = get("ALERT_WEBHOOK_URL") else {
        if secret.is_some() {
            return Err(ConfigError::new(
                "ALERT_WEBHOOK_SECRET",
                "is set but ALERT_WEBHOOK_URL is not: set both, or neither",
            ));
        }
        return Ok(None);
    };
    let url = Url::parse(raw.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| {
            ConfigError::new(
                "ALERT_WEBHOOK_URL",
                format!(
                    "'{}' is not an http:// or https:// URL",
                    redact_url(raw.trim())
                ),
            )
        })?;
    let secret = secret.map(|s| s.trim().to_string()).ok_or_else(|| {
        ConfigError::new(
            "ALERT_WEBHOOK_SECRET",
            "is required with ALERT_WEBHOOK_URL: every alert is signed with it",
        )
    })?;
    if secret.len() < 16 {
        return Err(ConfigError::new(
            "ALERT_WEBHOOK_SECRET",
            "is too short: use at least 16 characters",
        ));
    }
    Ok(Some(AlertWebhook {
        url,
        secret: secrecy::SecretString::from(secret),
    }))
}

/// A price in USD (`10`, `12.5`, `12.50`) as cents.
fn parse_price(setting: &'static str, raw: &str) -> Result<u64, ConfigError> {
    let bad = || {
        ConfigError::new(
            setting,
            format!("'{raw}' is not a price in USD such as 10 or 12.50"),
        )
    };
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

fn parse_number(
    setting: &'static str,
    raw: Option<String>,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    let Some(raw) = raw else { return Ok(default) };
    let value: u64 = raw
        .trim()
        .parse()
        .map_err(|_| ConfigError::new(setting, format!("'{raw}' is not a whole number")))?;
    if !range.contains(&value) {
        return Err(ConfigError::new(
            setting,
            format!(
                "{value} is out of range ({}-{})",
                range.start(),
                range.end()
            ),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(|k| map.get(k).cloned())
    }

    #[test]
    fn every_documented_setting_can_come_from_the_file_and_no_other() {
        let documented: Vec<&str> = SETTINGS
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| *name != "PORTCULLIS_CONFIG")
            .collect();
        let text: String = documented
            .iter()
            .map(|name| format!("{} = \"x\"\n", name.to_ascii_lowercase()))
            .collect();
        let file: FileSettings = toml::from_str(&text).expect("every documented key is accepted");
        for name in &documented {
            assert_eq!(
                file.get(name).as_deref(),
                Some("x"),
                "{name} is read from the file"
            );
        }
        // The file takes no key the documentation does not list (deny_unknown_fields makes
        // an extra field an error, so count the struct's fields through its Debug output).
        let fields = format!("{:?}", FileSettings::default())
            .matches(": None")
            .count();
        assert_eq!(fields, documented.len(), "every file setting is documented");
    }

    #[test]
    fn defaults_are_the_embedded_mode() {
        let config = load(&[]).expect("defaults are valid");
        assert_eq!(config.listen_addr.to_string(), "127.0.0.1:3000");
        assert_eq!(config.database_url.kind(), DatabaseKind::Sqlite);
        assert_eq!(
            config.database_url.sqlite_path(),
            Some(PathBuf::from("data/portcullis.db"))
        );
        assert_eq!(config.log_format, LogFormat::Text);
        assert!(!config.serves_https());
    }

    #[test]
    fn every_bad_value_names_its_setting() {
        for (key, value) in [
            ("LISTEN_ADDR", "localhost"),
            ("LISTEN_ADDR", "127.0.0.1:99999"),
            ("LISTEN_ADDR", "example.com:80"),
            ("DATABASE_URL", "mysql://root@localhost/db"),
            ("DATABASE_URL", "postgres://"),
            ("DATABASE_URL", "sqlite://"),
            ("PUBLIC_URL", "ftp://example.com"),
            ("PUBLIC_URL", "not a url"),
            ("LOG_FORMAT", "xml"),
            ("LOG_LEVEL", "=== nope"),
            ("DATABASE_MAX_CONNECTIONS", "0"),
            ("DATABASE_MAX_CONNECTIONS", "ten"),
            ("SESSION_IDLE_MINUTES", "-5"),
            ("SALESFORCE_MODE", "production"),
            ("SANDBOX_ORG_LISTEN", "nowhere"),
            ("SMTP_URL", "mail.example.com:25"),
            ("MAIL_FROM", "not an address"),
            ("APPROVALS_REQUIRED", "3"),
            ("REVEAL_LINK_HOURS", "0"),
            ("REVEAL_LINK_HOURS", "three days"),
            ("REVEAL_REPORT_HOURS", "0"),
            ("REVEAL_REPORT_HOURS", "a week"),
            ("AUDIT_ANCHOR_EVERY", "0"),
            ("AUDIT_ANCHOR_EVERY", "often"),
            ("USAGE_COLLECT_SECONDS", "5"),
            ("USAGE_COLLECT_SECONDS", "hourly"),
            ("ALERT_WEBHOOK_URL", "hooks.example.com/x"),
            ("ALERT_WEBHOOK_SECRET", "0123456789abcdef"),
            ("INTEGRATION_LICENCES_INCLUDED", "five"),
            ("INTEGRATION_LICENCE_PRICE", "ten dollars"),
            ("INTEGRATION_LICENCE_PRICE", "10.005"),
            ("SALESFORCE_ORG_ID", "005000000000001"),
            ("SESSION_MAX_HOURS", "0"),
            ("SESSION_RECHECK_MINUTES", "61"),
            ("HTTP_HEADER_TIMEOUT_SECONDS", "0"),
            ("HTTP_REQUEST_TIMEOUT_SECONDS", "forever"),
            ("HTTP_MAX_CONCURRENT_REQUESTS", "0"),
            ("SALESFORCE_ORG_ID", "acme"),
            ("TRUSTED_PROXIES", "10.0.0.0/0"),
            ("AUTH_RATE_LIMIT_PER_MINUTE", "0"),
        ] {
            let err = load(&[(key, value)]).expect_err(&format!("{key}={value} must be refused"));
            assert_eq!(err.setting, key, "{key}={value}: {err}");
            let line = err.to_string();
            assert!(line.contains(key), "{line}");
            assert!(!line.contains('\n'), "one line: {line}");
        }
    }

    #[test]
    fn usage_settings_are_read_and_the_webhook_secret_stays_hidden() {
        let config = load(&[]).unwrap();
        assert_eq!(config.usage_collect_every, Some(Duration::from_secs(600)));
        assert!(config.alert_webhook.is_none());
        assert_eq!(config.licences.included, 5);
        assert_eq!(config.licences.price_cents, 1000);
        let config = load(&[
            ("USAGE_COLLECT_SECONDS", "0"),
            ("ALERT_WEBHOOK_URL", "https://hooks.example.com/portcullis"),
            ("ALERT_WEBHOOK_SECRET", "a-long-signing-secret"),
            ("INTEGRATION_LICENCES_INCLUDED", "1"),
            ("INTEGRATION_LICENCE_PRICE", "12.5"),
        ])
        .unwrap();
        assert_eq!(config.usage_collect_every, None);
        assert_eq!(config.licences.included, 1);
        assert_eq!(config.licences.price_cents, 1250);
        assert_eq!(
            config.alert_webhook.as_ref().map(|w| w.url.as_str()),
            Some("https://hooks.example.com/portcullis")
        );
        assert!(!format!("{config:?}").contains("a-long-signing-secret"));
        let short = load(&[
            ("ALERT_WEBHOOK_URL", "https://hooks.example.com/x"),
            ("ALERT_WEBHOOK_SECRET", "short"),
        ])
        .unwrap_err();
        assert_eq!(short.setting, "ALERT_WEBHOOK_SECRET");
        assert_eq!(parse_price("P", "$7").unwrap(), 700);
        assert_eq!(parse_price("P", "0.05").unwrap(), 5);
    }

    #[test]
    fn org_mode_names_each_missing_connection_setting() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "not checked here").unwrap();
        let key = key.to_string_lossy().to_string();
        let org = ("SALESFORCE_MODE", "org");
        let url = ("SALESFORCE_URL", "https://acme.my.salesforce.com");
        let id = ("SALESFORCE_CLIENT_ID", "3MVG9example");
        for (pairs, missing) in [
            (vec![org], "SALESFORCE_URL"),
            (vec![org, ("SALESFORCE_URL", "acme")], "SALESFORCE_URL"),
            (vec![org, url], "SALESFORCE_CLIENT_ID"),
            (vec![org, url, id], "SALESFORCE_JWT_KEY_FILE"),
            (
                vec![
                    org,
                    url,
                    id,
                    ("SALESFORCE_JWT_KEY_FILE", "/nonexistent.pem"),
                ],
                "SALESFORCE_JWT_KEY_FILE",
            ),
            (
                vec![org, url, id, ("SALESFORCE_JWT_KEY_FILE", key.as_str())],
                "SALESFORCE_USERNAME",
            ),
        ] {
            assert_eq!(load(&pairs).unwrap_err().setting, missing, "{pairs:?}");
        }
        let config = load(&[org, url, id, ("SALESFORCE_CLIENT_SECRET", "s3cr3t-value")]).unwrap();
        assert!(
            matches!(&config.salesforce, SalesforceMode::Org(c) if matches!(c.auth, OrgAuth::ClientCredentials { .. }))
        );
        assert!(
            !format!("{config:?}").contains("s3cr3t-value"),
            "secrets stay out of Debug output"
        );
        assert!(matches!(
            load(&[]).unwrap().salesforce,
            SalesforceMode::Sandbox { .. }
        ));
    }

    #[test]
    fn mail_to_a_remote_server_must_be_encrypted() {
        // Plain smtp:// (and opportunistic STARTTLS, which a network attacker can strip)
        // would send codes and links in clear text.
        for plaintext in [
            "smtp://user:hunter2@mail.example.com:587",
            "smtp://mail.example.com",
            "smtp://mail.example.com:25?tls=opportunistic",
            "smtp://10.0.0.5:587",
        ] {
            let err = load(&[("SMTP_URL", plaintext)])
                .expect_err(&format!("{plaintext} must be refused"));
            assert_eq!(err.setting, "SMTP_URL");
            let line = err.to_string();
            assert!(line.contains("tls=required"), "{line}");
            assert!(line.contains("smtps://"), "{line}");
            assert!(!line.contains("hunter2"), "{line}");
        }
        for encrypted in [
            "smtp://user:pass@mail.example.com:587?tls=required",
            "smtps://user:pass@mail.example.com:465",
            "smtps://mail.example.com",
        ] {
            assert!(load(&[("SMTP_URL", encrypted)]).is_ok(), "{encrypted}");
        }
        // A relay on this machine may be plain: nothing crosses a network.
        for loopback in [
            "smtp://127.0.0.1:2525",
            "smtp://localhost:25",
            "smtp://[::1]:25",
            "smtp://127.0.0.2:25?tls=opportunistic",
        ] {
            let loaded = load(&[("SMTP_URL", loopback)]);
            assert!(loaded.is_ok(), "{loopback}: {:?}", loaded.err());
        }
    }

    #[test]
    fn the_sandbox_org_is_not_served_to_the_network_by_accident() {
        for (key, value) in [
            ("LISTEN_ADDR", "0.0.0.0:3000"),
            ("LISTEN_ADDR", "192.0.2.10:3000"),
            ("LISTEN_ADDR", "[::]:3000"),
            ("SANDBOX_ORG_LISTEN", "0.0.0.0:3900"),
        ] {
            let err = load(&[(key, value)]).expect_err(&format!("{key}={value}"));
            let line = err.to_string();
            assert!(
                line.contains("SALESFORCE_MODE") && line.contains("SANDBOX_PUBLIC"),
                "{key}={value}: {line}"
            );
            assert!(!line.contains('\n'), "{line}");
            // On purpose, it is allowed.
            assert!(
                load(&[(key, value), ("SANDBOX_PUBLIC", "1")]).is_ok(),
                "{key}={value} with SANDBOX_PUBLIC=1"
            );
        }
        for loopback in ["127.0.0.1:3000", "[::1]:3000", "127.0.0.5:3000"] {
            assert!(load(&[("LISTEN_ADDR", loopback)]).is_ok(), "{loopback}");
        }
        let err = load(&[("SANDBOX_PUBLIC", "yes please")]).unwrap_err();
        assert_eq!(err.setting, "SANDBOX_PUBLIC");
        // A real org has no outbox page and no sandbox: any address will do.
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "not checked here").unwrap();
        let key = key.to_string_lossy().to_string();
        assert!(
            load(&[
                ("LISTEN_ADDR", "0.0.0.0:3000"),
                ("SALESFORCE_MODE", "org"),
                ("SALESFORCE_URL", "https://acme.my.salesforce.com"),
                ("SALESFORCE_CLIENT_ID", "3MVG9example"),
                ("SALESFORCE_JWT_KEY_FILE", key.as_str()),
                ("SALESFORCE_USERNAME", "portal@acme.example"),
            ])
            .is_ok()
        );
    }

    #[test]
    fn database_passwords_never_appear_in_messages() {
        let url = DatabaseUrl::parse("postgres://app:hunter2@db.internal/portcullis").unwrap();
        assert_eq!(url.kind(), DatabaseKind::Postgres);
        assert!(!url.to_string().contains("hunter2"));
        assert!(!format!("{url:?}").contains("hunter2"));
        let err = load(&[("DATABASE_URL", "mysql://app:hunter2@db/x")]).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn file_settings_apply_and_environment_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portcullis.toml");
        std::fs::write(
            &path,
            "listen_addr = \"127.0.0.1:4000\"\nlog_format = \"json\"\nsession_idle_minutes = 30\n",
        )
        .unwrap();
        let path = path.to_string_lossy().to_string();
        let config = load(&[("PORTCULLIS_CONFIG", &path), ("LOG_FORMAT", "text")]).unwrap();
        assert_eq!(config.listen_addr.port(), 4000);
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.session_idle, Duration::from_secs(30 * 60));
    }

    #[test]
    fn bad_files_are_reported_on_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "listen_adr = \"127.0.0.1:1\"\n").unwrap();
        let path = path.to_string_lossy().to_string();
        let err = load(&[("PORTCULLIS_CONFIG", &path)]).unwrap_err();
        assert_eq!(err.setting, "PORTCULLIS_CONFIG");
        assert!(err.to_string().contains("listen_adr"), "{err}");
        assert!(!err.to_string().contains('\n'), "{err}");

        let err = load(&[("PORTCULLIS_CONFIG", "/nonexistent/portcullis.toml")]).unwrap_err();
        assert_eq!(err.setting, "PORTCULLIS_CONFIG");
    }
}
