//! Building and running the application: bind, open the database, migrate, serve, and
//! shut down gracefully.

use std::net::SocketAddr;
use std::sync::Arc;

use leptos::config::LeptosOptions;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::config::{Config, ConfigError};
use crate::db::{Database, DatabaseError};
use crate::http::{self, AppState};
use crate::jobs::{self, Runner};
use crate::session_store::DbSessionStore;

/// Why the application could not start. Every message names the setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("LISTEN_ADDR: cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error("SANDBOX_ORG_LISTEN: {0}")]
    SandboxOrg(String),
    #[error(transparent)]
    Org(#[from] crate::org::OrgError),
    #[error("SMTP_URL: {0}")]
    Mail(String),
    #[error("CREDENTIAL_KEY_FILE: {0}")]
    CredentialKey(#[from] services::vault::VaultError),
    #[error("CODE_KEY_FILE: {0}")]
    CodeKey(services::keys::KeyFileError),
    #[error("AUDIT_ANCHOR_KEY_FILE: {0}")]
    AuditAnchorKey(services::keys::KeyFileError),
    #[error("ALERT_WEBHOOK_URL: {0}")]
    Webhook(String),
    #[error("{setting}: {error}")]
    AuditStream {
        setting: &'static str,
        error: services::audit_stream::SinkError,
    },
    #[error("DATA_DIR: cannot create {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
}

impl From<services::audit_stream::SinkError> for StartupError {
    /// A sink that could not be built, named by the setting that configures it.
    fn from(error: services::audit_stream::SinkError) -> Self {
        use services::audit_stream::SinkKind;
        let setting = match error.kind {
            SinkKind::Syslog => "AUDIT_SYSLOG_URL",
            SinkKind::Hec => "AUDIT_HEC_URL",
            SinkKind::Webhook => "AUDIT_WEBHOOK_URL",
        };
        Self::AuditStream { setting, error }
    }
}

/// Creates the data directory readable by this user only (0700): it holds the database,
/// the credential key and the sandbox org's state. One that exists with wider permissions
/// is left as the operator made it, with a warning.
fn private_data_dir(dir: &std::path::Path) -> Result<(), StartupError> {
    let error = |source| StartupError::DataDir {
        path: dir.display().to_string(),
        source,
    };
    if !dir.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(dir).map_err(error)?;
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(dir)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                dir = %dir.display(),
                "DATA_DIR can be read by other users; chmod 700 it (it holds the database and keys)"
            );
        }
    }
    Ok(())
}

/// A built application, bound to its port and ready to serve.
pub struct Application {
    /// The built-in sandbox org, in the default mode.
    sandbox: Option<sandbox_org::SandboxOrg>,
    listener: TcpListener,
    local_addr: SocketAddr,
    state: AppState,
    session_store: DbSessionStore,
    shutdown: CancellationToken,
}

impl Application {
    /// Binds the listener (port 0 picks a free port), opens the database and applies its
    /// migrations. Nothing is served until [`Application::run_until_stopped`].
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .map_err(|source| StartupError::Listen {
                addr: config.listen_addr,
                source,
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| StartupError::Listen {
                addr: config.listen_addr,
                source,
            })?;

        private_data_dir(&config.data_dir)?;
        let db = crate::db::open(&config.database_url, config.database_max_connections).await?;
        db.migrate(&config.database_url.to_string()).await?;

        let portal_url = match &config.public_url {
            Some(url) => url.as_str().trim_end_matches('/').to_string(),
            None => format!("http://{local_addr}"),
        };
        let sandbox = match &config.salesforce {
            crate::config::SalesforceMode::Sandbox {
                listen,
                daily_api_limit,
            } => {
                let org = sandbox_org::SandboxOrg::start(sandbox_org::SandboxConfig {
                    listen: *listen,
                    state_dir: Some(config.data_dir.join("sandbox-org")),
                    // HTTPS like a real org (clients such as simple-salesforce build https://
                    // URLs); its CA is DATA_DIR/sandbox-org/cert.pem.
                    https: true,
                    daily_api_limit: *daily_api_limit,
                    portal_callbacks: vec![format!("{portal_url}/auth/callback")],
                    faults: Vec::new(),
                    kind: None,
                    app_activation_seconds: None,
                })
                .await
                .map_err(|e| StartupError::SandboxOrg(e.to_string()))?;
                tracing::info!(url = %org.base_url(), "the built-in sandbox org is running");
                if config.sandbox_public {
                    tracing::warn!(
                        "SANDBOX_PUBLIC=1: the sandbox outbox and the sandbox org may be reachable from other machines"
                    );
                }
                Some(org)
            }
            crate::config::SalesforceMode::Org(_) => None,
        };

        let leptos_options = LeptosOptions::builder()
            .output_name("portcullis")
            .site_root(config.site_root.display().to_string())
            .site_pkg_dir("pkg")
            .site_addr(local_addr)
            .reload_port(
                std::env::var("LEPTOS_RELOAD_PORT")
                    .ok()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(3001),
            )
            .build();

        let org = match (&config.salesforce, &sandbox) {
            (crate::config::SalesforceMode::Org(connection), _) => {
                let org = crate::org::Org::real(connection, &portal_url)?;
                org.check_sign_in_secret(connection).await?;
                org
            }
            (_, Some(sandbox)) => crate::org::Org::sandbox(
                sandbox,
                &portal_url,
                Some(config.data_dir.join("sandbox-org").join("cert.pem")),
            )?,
            (crate::config::SalesforceMode::Sandbox { .. }, None) => {
                return Err(StartupError::SandboxOrg(
                    "the sandbox org did not start".into(),
                ));
            }
        };
        let mail = match &config.smtp_url {
            Some(url) => services::Mailer::smtp(url.expose_secret(), &config.mail_from)
                .map_err(StartupError::Mail)?,
            None => services::Mailer::outbox(),
        };
        let portal = services::Portal::new(
            db.clone(),
            mail,
            Arc::new(services::PortalSettings {
                public_url: portal_url.clone(),
                approvals_required: config.approvals_required,
                reveal_link_hours: config.reveal_link_hours,
                reveal_report_hours: config.reveal_report_hours,
                submissions_per_hour: config.submissions_per_hour,
                sandbox_mode: org.sandbox,
                roles: config.roles.clone(),
                licences: config.licences,
                anomaly_action: config.anomaly_action,
                secret_max_age_days: config.secret_max_age_days,
                secret_overlap_days: config.secret_overlap_days,
                ..services::PortalSettings::default()
            }),
            org.client.clone(),
        )
        .with_vault(services::vault::Vault::load_or_create(
            &config.credential_key_file,
        )?)
        .with_code_key(
            services::tokens::CodeKey::load_or_create(&config.code_key_file)
                .map_err(StartupError::CodeKey)?,
        )
        .with_audit_anchor(Arc::new(services::audit::anchor::Anchorer::new(
            &services::keys::load_or_create(&config.audit_anchor_key_file)
                .map_err(StartupError::AuditAnchorKey)?,
            config.audit_anchor_every,
        )))
        .with_app_contact_email(app_contact(&config.mail_from))
        .with_doctor(org.doctor.clone())
        .with_assurance(config.assurance.clone());
        // Browser tests move the portal's clock to reach due dates (sandbox mode only).
        let portal = if config.sandbox_clock_control && org.sandbox {
            portal.with_clock(http::clock::enable())
        } else {
            portal
        };
        // The audit stream's sinks, built now (after the clock: the webhook signs with it).
        let portal = portal.with_audit_stream(config.audit_stream.clone())?;
        let portal = match &config.alert_webhook {
            Some(hook) => portal.with_webhook(
                services::usage::webhook::Webhook::new(hook.url.as_str(), hook.secret.clone())
                    .map_err(StartupError::Webhook)?,
            ),
            None => portal,
        };
        // The org's name for mail and pages, read once now; if it cannot be read the portal
        // says "your company" and tries again on a later use (never a reason not to start).
        let org_name = portal.refresh_org_name().await;
        tracing::info!(known = org_name.is_known(), org_name = %org_name, "the org's name");

        let session_store = DbSessionStore::new(db.pool().clone(), config.session_max);
        let metrics = portal.metrics().clone();
        let auth_limits = Arc::new(http::limits::AuthLimits::new(
            config.auth_rate_limit_per_minute,
            config.auth_global_rate_limit_per_minute,
            metrics.clone(),
        ));
        let state = AppState {
            config: Arc::new(config),
            db,
            portal,
            org,
            leptos_options,
            metrics,
            auth_limits,
        };
        Ok(Self {
            sandbox,
            listener,
            local_addr,
            state,
            session_store,
            shutdown: CancellationToken::new(),
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The URL the portal answers at.
    pub fn url(&self) -> String {
        match &self.state.config.public_url {
            Some(url) => url.as_str().trim_end_matches('/').to_string(),
            None => format!("http://{}", self.local_addr),
        }
    }

    pub fn database(&self) -> &Database {
        &self.state.db
    }

    /// The portal's services (tests drive its provisioning engine with it).
    pub fn portal(&self) -> &services::Portal {
        &self.state.portal
    }

    /// The built-in sandbox org's certificate (the CA its HTTPS is signed with), in the
    /// default mode.
    pub fn sandbox_certificate_file(&self) -> Option<std::path::PathBuf> {
        self.sandbox.as_ref().map(|_| {
            self.state
                .config
                .data_dir
                .join("sandbox-org")
                .join("cert.pem")
        })
    }

    /// The built-in sandbox org, when the portal runs in the default mode.
    pub fn sandbox_org(&self) -> Option<&sandbox_org::SandboxOrg> {
        self.sandbox.as_ref()
    }

    /// A token that stops the application when cancelled (as SIGINT/SIGTERM do).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until SIGINT, SIGTERM or the shutdown token, then lets in-flight requests
    /// finish (up to `SHUTDOWN_GRACE_SECONDS`) and closes the database.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Self {
            sandbox,
            listener,
            state,
            session_store,
            shutdown,
            ..
        } = self;
        let config = state.config.clone();

        // Under https the cookie is `__Host-`: Secure, on `/`, and no other host (a sibling
        // subdomain included) can set or shadow it.
        let cookie_name = if config.serves_https() {
            "__Host-portcullis_session"
        } else {
            "portcullis_session"
        };
        let sessions = SessionManagerLayer::new(session_store.clone())
            .with_name(cookie_name)
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_secure(config.serves_https())
            .with_expiry(Expiry::OnInactivity(
                time::Duration::try_from(config.session_idle).unwrap_or(time::Duration::HOUR),
            ));
        let router = http::router(state.clone()).layer(sessions);

        // On SQLite the portal runs as a single instance, so steps left running (leased) at
        // start-up belong to a previous process that died: they are taken up again now
        // rather than when their leases expire.
        if state.portal.db().kind() == services::db::DatabaseKind::Sqlite {
            match state.portal.release_provisioning_leases().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    steps = n,
                    "resuming provisioning steps a previous run left unfinished"
                ),
                Err(e) => tracing::warn!(error = %e, "could not release provisioning leases"),
            }
            if let Err(e) = state.portal.release_usage_lease().await {
                tracing::warn!(error = %e, "could not release the usage collector's lease");
            }
            if let Err(e) = state.portal.release_audit_stream_leases().await {
                tracing::warn!(error = %e, "could not release the audit stream's leases");
            }
        }
        let streamer = state.portal.audit_streamer();
        let jobs = register_jobs(&state, session_store, streamer.clone(), shutdown.clone());
        tracing::debug!(jobs = ?jobs.names(), "background jobs started");
        tokio::spawn(stop_on_signal(shutdown.clone()));

        let server = http::serve::serve(
            listener,
            router,
            config.http_header_timeout,
            shutdown.clone(),
        );
        let mut server = std::pin::pin!(server);

        let result: std::io::Result<()> = tokio::select! {
            () = &mut server => Ok(()),
            () = shutdown.cancelled() => {
                tracing::info!("shutting down: waiting for in-flight requests");
                match tokio::time::timeout(config.shutdown_grace, &mut server).await {
                    Ok(()) => Ok(()),
                    Err(_) => {
                        tracing::warn!(
                            grace_seconds = config.shutdown_grace.as_secs(),
                            "in-flight requests did not finish in time; stopping anyway"
                        );
                        Ok(())
                    }
                }
            }
        };
        // Every job stops (the example packages' seeding gets up to the grace period) before
        // the audit chain's head is anchored below, so no entry comes after the anchor.
        jobs.stop(config.shutdown_grace).await;
        // The next start (or another instance) streams on at once, not when the leases lapse.
        if let Some(streamer) = &streamer
            && let Err(e) = streamer.release().await
        {
            tracing::warn!(error = %e, "could not release the audit stream's leases");
        }
        // Last, when nothing writes to the log any more: anchor its head.
        match state.portal.anchor_audit_head("shutdown").await {
            Ok(Some(seq)) => tracing::info!(seq, "audit chain anchored at shutdown"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "could not anchor the audit chain at shutdown"),
        }
        if let Some(org) = sandbox {
            org.stop().await;
        }
        state.db.close().await;
        tracing::info!("stopped");
        result
    }
}

/// Starts the portal's background jobs; they run until `shutdown`.
fn register_jobs(
    state: &AppState,
    session_store: DbSessionStore,
    streamer: Option<services::audit_stream::Streamer>,
    shutdown: CancellationToken,
) -> Runner {
    let portal = &state.portal;
    let config = &state.config;
    let mut runner = Runner::new(shutdown);
    runner.add(jobs::SessionCleanup(session_store));
    if !portal.mail().is_outbox() {
        runner.add(jobs::MailSender {
            mailer: portal.mail().clone(),
            db: portal.db().clone(),
        });
    }
    runner.add(jobs::RequestExpiry(portal.clone()));
    runner.add(jobs::AuditAnchoring(portal.clone()));
    runner.add(jobs::AuditVerification {
        verifier: portal.audit_verifier(),
        wake: portal.audit_verify_wake_handle(),
    });
    if let Some(streamer) = streamer {
        runner.add(jobs::AuditStreaming(streamer));
    }
    if let Some(webhook) = portal.webhook().cloned() {
        runner.add(jobs::WebhookSender {
            webhook,
            db: portal.db().clone(),
        });
    }
    if let Some(every) = config.usage_collect_every {
        runner.add(jobs::UsageCollector {
            collector: portal.usage_collector(),
            every,
        });
    }
    runner.add(jobs::SealedSecretSweeper(portal.clone()));
    runner.add(jobs::RenewalReminders(portal.clone()));
    runner.add(jobs::SecretRotation(portal.clone()));
    if config.assurance.interval_hours > 0 {
        runner.add(jobs::Assurance {
            portal: portal.clone(),
            every: std::time::Duration::from_secs(config.assurance.interval_hours * 3_600),
        });
    }
    runner.workers(config.provisioning_workers, || jobs::ProvisioningWorker {
        engine: portal.provisioning_engine(),
        db: portal.db().clone(),
        wake: portal.provisioning_wake_handle(),
    });
    runner.add(jobs::GrantExpiry {
        portal: portal.clone(),
        every: config.grant_expiry_every,
    });
    runner.add(jobs::AccessReviews {
        portal: portal.clone(),
        every: config.reviews_every,
    });
    // A new portal starts with the two example packages in its access catalog (built from
    // the org's describe, so it waits for the org rather than delaying start-up). Its audit
    // entries must come before the shutdown anchor, so shutdown waits for it.
    runner.once("example_packages", {
        let portal = portal.clone();
        async move {
            if let Err(e) = portal
                .seed_default_packages(&services::audit::Actor::system())
                .await
            {
                tracing::warn!(error = %e, "could not add the example access packages");
            }
        }
    });
    runner
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = ctrl_c => tracing::info!("received SIGINT"),
        () = terminate => tracing::info!("received SIGTERM"),
        () = shutdown.cancelled() => return,
    }
    shutdown.cancel();
}

/// Who Salesforce lists as the contact of the apps the portal makes: the sender address.
fn app_contact(mail_from: &str) -> String {
    mail_from
        .parse::<lettre::message::Mailbox>()
        .map(|m| m.email.to_string())
        .unwrap_or_else(|_| "portcullis@localhost".into())
}
