//! Portcullis's domain services, over SQLite or PostgreSQL: contractor requests, decisions,
//! grants, mail, roles, settings, API usage and budgets, and the audit log. Plain Rust,
//! tested without HTTP or a browser; the server's routes and the pages' server functions
//! are thin layers over it.

// The workspace denies unwrap, expect and panic; unit tests may use them.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod assurance;
pub mod audit;
pub mod audit_stream;
pub mod blast;
pub mod catalog;
pub mod client;
pub mod clock;
pub mod db;
pub mod decisions;
pub mod doctor;
pub mod eca;
pub mod ending;
pub mod evidence;
pub mod keys;
#[cfg(test)]
mod layering;
pub mod licence;
pub mod mail;
pub mod metrics;
pub mod names;
pub mod org_failure;
pub mod org_name;
pub mod outbox;
pub mod provisioning;
pub mod records;
pub mod renewal;
pub mod requests;
pub mod reveal;
pub mod review;
pub mod reviews;
pub mod roles;
pub mod rotation;
pub mod scope;
pub mod settings;
pub mod sharing_model;
pub mod tokens;
pub mod usage;
pub mod vault;

use std::sync::Arc;

pub use db::{Database, DatabaseError, DatabaseKind};
pub use mail::Mailer;
/// The Salesforce client the services use, for callers that need its types.
pub use salesforce;
/// The database library, for callers that handle its errors.
pub use sqlx;

/// Why `/metrics` could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("reading the database's gauges: {0}")]
    Database(#[from] sqlx::Error),
    #[error("encoding the metrics: {0}")]
    Encoding(#[from] std::fmt::Error),
}

/// Defaults an owner can change (the `settings` table overrides them).
#[derive(Debug, Clone)]
pub struct PortalSettings {
    /// The portal's public base URL, for links in mail (no trailing slash).
    pub public_url: String,
    /// How long the emailed confirmation link works (the code: [`requests::CODE_TTL_MS`]).
    pub verification_ttl_hours: i64,
    /// How long a credential reveal link works.
    pub reveal_link_hours: i64,
    /// How long after a reveal the contractor can report it as not theirs ("I did not do
    /// this"), from the newest link.
    pub reveal_report_hours: i64,
    pub max_end_days: i64,
    pub submissions_per_hour: i64,
    pub approvals_required: i64,
    /// The built-in sandbox org is in use (the mail outbox page exists only then).
    pub sandbox_mode: bool,
    pub roles: roles::RoleMapping,
    /// Salesforce Integration licences included with the org, and the price of each more.
    pub licences: usage::report::LicencePricing,
    /// What a usage anomaly does for grants without their own action (`ANOMALY_ACTION`).
    pub anomaly_action: usage::anomaly::AnomalyAction,
    /// The maximum age of a grant's secret in days unless the grant has its own (0: never;
    /// [`rotation`]).
    pub secret_max_age_days: i64,
    /// How long a rotation keeps the old secret working beside the new one, in days.
    pub secret_overlap_days: i64,
}

impl Default for PortalSettings {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:3000".into(),
            verification_ttl_hours: 24,
            reveal_link_hours: 72,
            reveal_report_hours: 168,
            max_end_days: 365,
            submissions_per_hour: 10,
            approvals_required: 1,
            sandbox_mode: true,
            roles: roles::RoleMapping::default(),
            licences: usage::report::LicencePricing::default(),
            anomaly_action: usage::anomaly::AnomalyAction::Alert,
            secret_max_age_days: 90,
            secret_overlap_days: 7,
        }
    }
}

/// Everything the services need. Cheap to clone (clones share the org describe cache).
/// Build it with [`Portal::new`] and the `with_*` methods. Its fields are its own: callers
/// use its methods (the accessors below are for start-up, the background jobs and tests).
#[derive(Clone, Debug)]
pub struct Portal {
    db: Database,
    mail: Mailer,
    settings: Arc<PortalSettings>,
    /// The portal's own connection to its org.
    salesforce: salesforce::Client,
    /// The org's describe for the scope pickers and the catalog (see
    /// [`Portal::org_objects`]).
    org_cache: catalog::OrgCache,
    /// The org's name for mail and pages, read once ([`Portal::org_name`]).
    org_name: org_name::OrgNameCache,
    /// Seals secrets for orgs whose credentials API returns none ([`vault`]).
    vault: Option<vault::Vault>,
    /// The External Client Apps' contact (as the provisioning engine deploys them).
    app_contact_email: String,
    /// Where budget alerts are posted, besides the approvers' mail.
    webhook: Option<usage::webhook::Webhook>,
    /// The key of one-time codes' stored hashes (random per process unless set with
    /// [`Portal::with_code_key`]).
    code_key: tokens::CodeKey,
    /// Anchors the audit chain and checks its anchors (a random key per process unless set
    /// with [`Portal::with_audit_anchor`]).
    audit_anchor: Arc<audit::anchor::Anchorer>,
    /// What `/admin/org` checks the org against (the doctor's settings), when known.
    doctor: Option<Arc<doctor::Target>>,
    /// Where the services read the time ([`clock::SystemClock`] unless set with
    /// [`Portal::with_clock`]).
    clock: clock::SharedClock,
    /// Wakes the provisioning workers (a revoke or an expiry has steps to undo now).
    provisioning_wake: Arc<tokio::sync::Notify>,
    /// How drift detection runs ([`Portal::with_assurance`]).
    assurance: Arc<assurance::AssuranceSettings>,
    /// This portal's metrics (`/metrics`): its parts record into them.
    metrics: Arc<metrics::Metrics>,
    /// Wakes the background audit verification (one was asked for: [`audit::job`]).
    audit_verify_wake: Arc<tokio::sync::Notify>,
    /// Where the audit log is streamed ([`Portal::with_audit_stream`]; `None`: nowhere).
    audit_stream: Option<Arc<audit_stream::AuditStream>>,
}

impl Portal {
    pub fn new(
        db: Database,
        mail: Mailer,
        settings: Arc<PortalSettings>,
        salesforce: salesforce::Client,
    ) -> Self {
        let metrics = metrics::detached();
        Self {
            db,
            mail: mail.with_metrics(metrics.clone()),
            settings,
            salesforce,
            org_cache: catalog::OrgCache::default(),
            org_name: org_name::OrgNameCache::default(),
            vault: None,
            app_contact_email: reveal::Handover::default().app_contact_email,
            webhook: None,
            code_key: tokens::CodeKey::ephemeral(),
            audit_anchor: Arc::new(audit::anchor::Anchorer::ephemeral(1_000)),
            doctor: None,
            clock: clock::system(),
            provisioning_wake: Arc::new(tokio::sync::Notify::new()),
            assurance: Arc::new(assurance::AssuranceSettings::default()),
            metrics,
            audit_verify_wake: Arc::new(tokio::sync::Notify::new()),
            audit_stream: None,
        }
    }

    /// This portal's metrics: the server records HTTP requests and refusals into them.
    pub fn metrics(&self) -> &Arc<metrics::Metrics> {
        &self.metrics
    }

    /// The metrics in Prometheus's text format, the database's gauges read now (grants by
    /// state, the provisioning queue, the outboxes, the newest usage data, the org's daily
    /// API calls, the audit log's length, the audit stream's cursors: each query is its
    /// table's room's).
    pub async fn metrics_text(&self) -> Result<String, MetricsError> {
        let now = self.clock.now_ms();
        let seconds_since = |ms: i64| (now - ms).max(0) as f64 / 1000.0;
        let (queue, oldest_due) = provisioning::admin::queue(&self.db, now).await?;
        let usage = usage::report::freshness(&self.db).await?;
        let state = metrics::DatabaseState {
            grants: provisioning::admin::grants_by_state(&self.db).await?,
            queue,
            oldest_waiting_step_seconds: oldest_due.map_or(0.0, seconds_since),
            mail_outbox: mail::outbox_depth(&self.db).await?,
            webhook_outbox: usage::webhook::outbox_depth(&self.db).await?,
            usage_newest_data_age_seconds: usage.data_through.map(seconds_since),
            usage_last_success_age_seconds: usage.last_success_at.map(seconds_since),
            daily_api_remaining: usage.daily_api_remaining,
            daily_api_max: usage.daily_api_max,
            audit_log_entries: audit::length(&self.db).await?,
            audit_stream: match &self.audit_stream {
                Some(stream) => audit_stream::states(&self.db, stream).await?,
                None => Vec::new(),
            },
        };
        self.metrics.set_state(&state);
        Ok(self.metrics.encode()?)
    }

    /// Reads the time from `clock` (a [`clock::TestClock`] in tests), and so do its mail
    /// and webhook senders.
    pub fn with_clock(mut self, clock: clock::SharedClock) -> Self {
        self.mail = self.mail.with_clock(clock.clone());
        self.webhook = self.webhook.map(|w| w.with_clock(clock.clone()));
        self.clock = clock;
        self
    }

    /// Wakes the provisioning workers now (they also look every 250 ms).
    pub fn wake_provisioning(&self) {
        self.provisioning_wake.notify_waiters();
        self.provisioning_wake.notify_one();
    }

    /// What the provisioning workers wait on between looks ([`Portal::wake_provisioning`]).
    pub fn provisioning_wake_handle(&self) -> Arc<tokio::sync::Notify> {
        self.provisioning_wake.clone()
    }

    /// The clock the services read the time from.
    pub fn clock(&self) -> &clock::SharedClock {
        &self.clock
    }

    /// The portal's database.
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// Where mail goes.
    pub fn mail(&self) -> &Mailer {
        &self.mail
    }

    /// The portal's settings (defaults an owner can change in the `settings` table).
    pub fn settings(&self) -> &PortalSettings {
        &self.settings
    }

    /// The portal's own connection to its org.
    pub fn salesforce(&self) -> &salesforce::Client {
        &self.salesforce
    }

    /// The org's name as Salesforce gives it (read once, then kept), or the neutral
    /// wording ("your company") when it cannot be read: never an error.
    pub async fn org_name(&self) -> org_name::OrgName {
        self.org_name.get(&self.salesforce).await
    }

    /// Reads the org's name again (at start-up: the portal has just connected).
    pub async fn refresh_org_name(&self) -> org_name::OrgName {
        self.org_name.refresh(&self.salesforce).await
    }

    /// The vault that seals secrets, when one is configured.
    pub fn vault(&self) -> Option<&vault::Vault> {
        self.vault.as_ref()
    }

    /// The External Client Apps' contact email.
    pub fn app_contact_email(&self) -> &str {
        &self.app_contact_email
    }

    /// Where budget alerts are posted, besides the approvers' mail.
    pub fn webhook(&self) -> Option<&usage::webhook::Webhook> {
        self.webhook.as_ref()
    }

    /// What anchors the audit chain and checks its anchors.
    pub fn audit_anchor(&self) -> &audit::anchor::Anchorer {
        &self.audit_anchor
    }

    /// Lets owners run the doctor's checks (`/admin/org`) against `target`.
    pub fn with_doctor(mut self, target: doctor::Target) -> Self {
        self.doctor = Some(Arc::new(target));
        self
    }

    /// The doctor's checks of the org (as `portcullis doctor` runs them).
    pub async fn check_org(&self) -> Option<Vec<shared::doctor::Check>> {
        let target = self.doctor.as_ref()?;
        Some(doctor::run(&self.salesforce, target).await)
    }

    /// Anchors the audit chain with `anchorer` (its key from `AUDIT_ANCHOR_KEY_FILE`).
    pub fn with_audit_anchor(mut self, anchorer: Arc<audit::anchor::Anchorer>) -> Self {
        self.audit_anchor = anchorer;
        self
    }

    /// Stores one-time codes keyed with `key` (several instances share one key).
    pub fn with_code_key(mut self, key: tokens::CodeKey) -> Self {
        self.code_key = key;
        self
    }

    /// Posts budget alerts to `webhook` too.
    pub fn with_webhook(mut self, webhook: usage::webhook::Webhook) -> Self {
        self.webhook = Some(
            webhook
                .with_clock(self.clock.clone())
                .with_metrics(self.metrics.clone()),
        );
        self
    }

    /// Where budget alerts go.
    pub fn usage_alerts(&self) -> usage::budgets::Alerts {
        usage::budgets::Alerts {
            mail: self.mail.clone(),
            webhook: self.webhook.clone(),
            public_url: self.settings.public_url.clone(),
            anomaly_action: self.settings.anomaly_action,
        }
    }

    /// A usage collector over this portal's database and org.
    pub fn usage_collector(&self) -> usage::collector::Collector {
        usage::collector::Collector::new(
            self.db.clone(),
            self.salesforce.clone(),
            self.usage_alerts(),
        )
        .with_clock(self.clock.clone())
        .with_metrics(self.metrics.clone())
    }

    /// Keeps secrets sealed with `vault` for orgs whose credentials API returns none.
    pub fn with_vault(mut self, vault: vault::Vault) -> Self {
        self.vault = Some(vault);
        self
    }

    /// The apps' contact email, as the provisioning engine is given it.
    pub fn with_app_contact_email(mut self, email: impl Into<String>) -> Self {
        self.app_contact_email = email.into();
        self
    }
}
