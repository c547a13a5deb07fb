//! Configuration: environment variables over an optional TOML file over built-in defaults.
//!
//! Every setting is declared once, in the module of its subsystem ([`server`], [`storage`],
//! [`sign_in`], [`salesforce`], [`mail`], [`access`], [`usage`], [`rotation`],
//! [`assurance`], [`audit_stream`]): its name, default, parser and help together
//! ([`setting`]). `--help`, the README's table and the file's keys come from those
//! declarations. Everything is validated once, at start-up, into typed values; a bad
//! setting stops the process with one line that names the setting and says what is wrong.

pub mod access;
pub mod assurance;
pub mod audit_stream;
pub mod mail;
pub mod rotation;
pub mod salesforce;
pub mod server;
pub mod setting;
pub mod sign_in;
pub mod storage;
#[cfg(test)]
mod tests;
pub mod usage;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use setting::{Documented, Setting, Source};

pub use crate::http::client::Network;
pub use salesforce::{OrgAuth, OrgConnection, SalesforceMode};
pub use storage::{DatabaseKind, DatabaseUrl, redact_url};
pub use usage::AlertWebhook;

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

/// The file the other settings may come from.
pub const PORTCULLIS_CONFIG: Setting<PathBuf> = Setting {
    name: "PORTCULLIS_CONFIG",
    default: setting::Default::None,
    parse: setting::path,
    help: "path of an optional TOML file with the settings below (lower-case keys; the environment wins)",
    in_file: false,
};

/// Every setting, in the order `--help` and the README list them.
pub fn all_settings() -> Vec<&'static dyn Documented> {
    let file: &'static dyn Documented = &PORTCULLIS_CONFIG;
    std::iter::once(file)
        .chain(
            [
                server::SERVER,
                storage::STORAGE,
                sign_in::SIGN_IN,
                salesforce::SALESFORCE,
                mail::MAIL,
                access::ACCESS,
                usage::USAGE,
                rotation::ROTATION,
                assurance::ASSURANCE,
                audit_stream::AUDIT_STREAM,
            ]
            .into_iter()
            .flatten()
            .copied(),
        )
        .collect()
}

/// The settings as `--help` shows them.
pub fn help_text() -> String {
    let mut help = String::from("Settings (environment variables):\n");
    for setting in all_settings() {
        let default = match setting.default_markdown() {
            Some(default) => format!("; default {default}"),
            None => String::new(),
        };
        let line = format!("{}{default}", setting.help()).replace('`', "");
        help.push_str(&format!("  {:<26} {line}\n", setting.name()));
    }
    help
}

/// The settings as the README's table shows them (Markdown).
pub fn readme_table() -> String {
    let mut table = String::from("| variable | default | meaning |\n| --- | --- | --- |\n");
    for setting in all_settings() {
        table.push_str(&format!(
            "| `{}` | {} | {} |\n",
            setting.name(),
            setting.default_markdown().as_deref().unwrap_or("—"),
            setting.help()
        ));
    }
    table
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
    /// Where mail goes (`SMTP_URL`, which may carry a password); `None` keeps it in the
    /// local outbox.
    pub smtp_url: Option<SecretString>,
    /// The bearer token `/metrics` requires (`METRICS_TOKEN`); `None` leaves it open.
    pub metrics_token: Option<SecretString>,
    /// Where trace spans go (`OTEL_EXPORTER_OTLP_ENDPOINT`, an OTLP/HTTP base URL); `None`
    /// exports nothing.
    pub otlp_endpoint: Option<Url>,
    /// The sender of the portal's mail (`MAIL_FROM`).
    pub mail_from: String,
    /// How roles map from Salesforce (`ROLE_*`).
    pub roles: services::roles::RoleMapping,
    /// Approvals a request needs unless an owner changes it (`APPROVALS_REQUIRED`, 1 or 2).
    pub approvals_required: i64,
    /// Provisioning workers this instance runs (`PROVISIONING_WORKERS`).
    pub provisioning_workers: usize,
    /// How often grants past their end date are looked for (`GRANT_EXPIRY_SECONDS`).
    pub grant_expiry_every: Duration,
    /// How often the access reviews job runs (`REVIEWS_SECONDS`).
    pub reviews_every: Duration,
    /// How long a credential reveal link works (`REVEAL_LINK_HOURS`).
    pub reveal_link_hours: i64,
    /// How long after a reveal "I did not do this" is taken (`REVEAL_REPORT_HOURS`).
    pub reveal_report_hours: i64,
    /// Access requests one client may submit an hour (`SUBMISSIONS_PER_HOUR`).
    pub submissions_per_hour: i64,
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
    /// Drift detection (`ASSURANCE_INTERVAL_HOURS`, `ASSURANCE_DRIFT_POLICY`,
    /// `ASSURANCE_CONCURRENCY`).
    pub assurance: services::assurance::AssuranceSettings,
    /// Where the audit log is streamed (`AUDIT_SYSLOG_URL`, `AUDIT_HEC_URL`,
    /// `AUDIT_WEBHOOK_URL` and the settings beside them); no sinks: nowhere.
    pub audit_stream: services::audit_stream::StreamSettings,
    /// Where budget alerts are posted (`ALERT_WEBHOOK_URL`), signed with
    /// `ALERT_WEBHOOK_SECRET`.
    pub alert_webhook: Option<AlertWebhook>,
    /// Salesforce Integration licences the org includes (`INTEGRATION_LICENCES_INCLUDED`)
    /// and the monthly price of each more, in cents (`INTEGRATION_LICENCE_PRICE`).
    pub licences: services::usage::report::LicencePricing,
    /// What a usage anomaly does for grants without their own action (`ANOMALY_ACTION`).
    pub anomaly_action: services::usage::anomaly::AnomalyAction,
    /// Sandbox mode may listen beyond loopback (`SANDBOX_PUBLIC=1`).
    pub sandbox_public: bool,
    /// Browser tests may move the portal's clock (`SANDBOX_CLOCK_CONTROL=1`, sandbox mode).
    pub sandbox_clock_control: bool,
    /// Reverse proxies whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<Network>,
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
    /// The maximum age of a grant's secret in days (`SECRET_MAX_AGE_DAYS`; 0: never).
    pub secret_max_age_days: i64,
    /// How long a rotation keeps the old secret working (`SECRET_OVERLAP_DAYS`).
    pub secret_overlap_days: i64,
}

impl Config {
    /// Reads the configuration from the process environment (and `PORTCULLIS_CONFIG`).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::load(|key| std::env::var(key).ok())
    }

    /// Reads the configuration through `env`, which returns a variable's value if set.
    /// Tests pass a closure over a map instead of touching the process environment.
    pub fn load(env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let file = match PORTCULLIS_CONFIG
            .value(env(PORTCULLIS_CONFIG.name).filter(|p| !p.trim().is_empty()))?
        {
            Some(path) => read_file(&path)?,
            None => toml::Table::new(),
        };
        let source = Source::new(&env, file);
        let source = &source;
        use access::*;
        use mail::*;
        use salesforce::*;
        use server::*;
        use sign_in::*;
        use storage::*;
        use usage::*;

        let listen_addr = LISTEN_ADDR.read(source)?;
        let public_url = PUBLIC_URL.get(source)?;
        let data_dir = DATA_DIR.read(source)?;
        let database_url = match DATABASE_URL.get(source)? {
            Some(url) => url,
            None => DatabaseUrl::in_data_dir(&data_dir)?,
        };
        let database_max_connections = DATABASE_MAX_CONNECTIONS.read(source)?;
        // cargo-leptos tells the server where the site is through LEPTOS_SITE_ROOT.
        let site_root = SITE_ROOT.value(
            SITE_ROOT
                .raw(source)
                .or_else(|| source.env("LEPTOS_SITE_ROOT")),
        )?;
        let site_root = site_root.unwrap_or_else(|| PathBuf::from("target/site"));
        let log_format = LOG_FORMAT.read(source)?;
        let log_level = LOG_LEVEL.read(source)?;
        let session_idle = SESSION_IDLE_MINUTES.read(source)?;
        let shutdown_grace = SHUTDOWN_GRACE_SECONDS.read(source)?;

        let salesforce = salesforce::salesforce(source)?;
        let sandbox_public = SANDBOX_PUBLIC.read(source)?;
        let sandbox_clock_control = SANDBOX_CLOCK_CONTROL.read(source)?;
        if !sandbox_public {
            check_sandbox_stays_local(listen_addr, &salesforce)?;
        }
        let smtp_url = SMTP_URL.get(source)?;
        let mail_from = MAIL_FROM.read(source)?;
        let roles = access::roles(source)?;
        let approvals_required = APPROVALS_REQUIRED.read(source)?;
        let provisioning_workers = PROVISIONING_WORKERS.read(source)?;
        let grant_expiry_every = Duration::from_secs(GRANT_EXPIRY_SECONDS.read(source)?);
        let reviews_every = Duration::from_secs(REVIEWS_SECONDS.read(source)?);
        let reveal_link_hours = REVEAL_LINK_HOURS.read(source)?;
        let reveal_report_hours = REVEAL_REPORT_HOURS.read(source)?;
        let submissions_per_hour = SUBMISSIONS_PER_HOUR.read(source)?;
        let key_file = |setting: &Setting<PathBuf>, default: &str| {
            setting
                .get(source)
                .map(|file| file.unwrap_or_else(|| data_dir.join(default)))
        };
        let credential_key_file = key_file(&CREDENTIAL_KEY_FILE, "credential.key")?;
        let code_key_file = key_file(&CODE_KEY_FILE, "code.key")?;
        let audit_anchor_key_file = key_file(&AUDIT_ANCHOR_KEY_FILE, "audit-anchor.key")?;
        let audit_anchor_every = AUDIT_ANCHOR_EVERY.read(source)?;
        let usage_collect_every = USAGE_COLLECT_SECONDS.read(source)?;
        let alert_webhook = usage::alert_webhook(source)?;
        let assurance = assurance::assurance(source)?;
        let audit_stream = audit_stream::audit_stream(
            source,
            public_url
                .as_ref()
                .and_then(|u| u.host_str())
                .unwrap_or("portcullis"),
        )?;
        let licences = usage::licences(source)?;
        let anomaly_action = usage::ANOMALY_ACTION.read(source)?;
        let trusted_proxies = TRUSTED_PROXIES.get(source)?.unwrap_or_default();
        let http_header_timeout = HTTP_HEADER_TIMEOUT_SECONDS.read(source)?;
        let http_request_timeout = HTTP_REQUEST_TIMEOUT_SECONDS.read(source)?;
        let http_max_concurrent_requests = HTTP_MAX_CONCURRENT_REQUESTS.read(source)?;
        let metrics_token = METRICS_TOKEN.get(source)?;
        let otlp_endpoint = OTEL_EXPORTER_OTLP_ENDPOINT.get(source)?;
        let session_max = SESSION_MAX_HOURS.read(source)?;
        let session_recheck = SESSION_RECHECK_MINUTES.read(source)?;
        let salesforce_org_id = SALESFORCE_ORG_ID.get(source)?;
        let auth_rate_limit_per_minute = AUTH_RATE_LIMIT_PER_MINUTE.read(source)?;
        let auth_global_rate_limit_per_minute = AUTH_GLOBAL_RATE_LIMIT_PER_MINUTE.read(source)?;
        let secret_max_age_days = rotation::SECRET_MAX_AGE_DAYS.read(source)?;
        let secret_overlap_days = rotation::SECRET_OVERLAP_DAYS.read(source)?;

        Ok(Self {
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
            salesforce,
            smtp_url,
            mail_from,
            roles,
            approvals_required,
            provisioning_workers,
            grant_expiry_every,
            reviews_every,
            reveal_link_hours,
            reveal_report_hours,
            submissions_per_hour,
            credential_key_file,
            code_key_file,
            audit_anchor_key_file,
            audit_anchor_every,
            usage_collect_every,
            alert_webhook,
            assurance,
            audit_stream,
            licences,
            anomaly_action,
            sandbox_public,
            sandbox_clock_control,
            trusted_proxies,
            auth_rate_limit_per_minute,
            auth_global_rate_limit_per_minute,
            salesforce_org_id,
            session_max,
            session_recheck,
            http_header_timeout,
            http_request_timeout,
            http_max_concurrent_requests,
            metrics_token,
            otlp_endpoint,
            secret_max_age_days,
            secret_overlap_days,
        })
    }

    /// Whether cookies must carry the `Secure` attribute.
    pub fn serves_https(&self) -> bool {
        self.public_url
            .as_ref()
            .is_some_and(|url| url.scheme() == "https")
    }
}

/// Reads the TOML file: lower-case keys of the settings that may come from a file, and no
/// other key.
fn read_file(path: &Path) -> Result<toml::Table, ConfigError> {
    let setting = PORTCULLIS_CONFIG.name;
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(setting, format!("cannot read {}: {e}", path.display())))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        // toml's messages span several lines; keep the promise of a one-line error.
        let message = e.message().replace('\n', " ");
        let place = e
            .span()
            .map(|span| {
                let line = text[..span.start.min(text.len())].lines().count().max(1);
                format!(" (line {line})")
            })
            .unwrap_or_default();
        ConfigError::new(setting, format!("{}{place}: {message}", path.display()))
    })?;
    let keys: Vec<String> = all_settings()
        .into_iter()
        .filter(|s| s.in_file())
        .map(|s| s.name().to_ascii_lowercase())
        .collect();
    if let Some(unknown) = table.keys().find(|key| !keys.contains(*key)) {
        let line = text
            .lines()
            .position(|l| {
                l.trim_start()
                    .strip_prefix(unknown.as_str())
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            })
            .map(|n| format!(" (line {})", n + 1))
            .unwrap_or_default();
        let expected: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
        return Err(ConfigError::new(
            setting,
            format!(
                "{}{line}: unknown field `{unknown}`, expected one of {}",
                path.display(),
                expected.join(", ")
            ),
        ));
    }
    Ok(table)
}
