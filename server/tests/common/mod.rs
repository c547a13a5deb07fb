//! The test harness: the real application on port 0 with a fresh database of its own
//! (a SQLite file, or a new PostgreSQL database), and a cookie-keeping HTTP client.
//!
//! The databases, `both_databases!`, the SMTP sink and the sandbox org's control API are the
//! test kit's (`test_kit`); this module adds what needs the server crate itself.

#![allow(dead_code)]

pub mod binary;
pub mod portal;
pub mod sandbox;
pub mod stress;

use std::sync::Once;
use std::time::Duration;

use portcullis::config::Config;
use portcullis::db::Database;
use portcullis::{Application, StartupError};
use tokio_util::sync::CancellationToken;

// The benches include this module too, and not every one of them uses every name.
#[allow(unused_imports)]
pub use test_kit::{Engine as Db, PgDatabase, postgres_available, smtp};

/// The application under test.
pub struct TestApp {
    pub url: String,
    pub port: u16,
    pub db: Database,
    /// The application's portal (the same one its HTTP handlers and jobs use).
    pub portal: services::Portal,
    pub client: reqwest::Client,
    pub kind: Db,
    pub pg: Option<PgDatabase>,
    /// The embedded sandbox org's base URL (its control API is under `/__sandbox`).
    pub sandbox_url: Option<String>,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pub dir: tempfile::TempDir,
}

static INIT: Once = Once::new();

pub fn init_crypto() {
    portcullis::install_crypto_provider();
}

fn init_process() {
    INIT.call_once(|| {
        portcullis::install_crypto_provider();
        if std::env::var("TEST_LOG").is_ok() {
            let _ = portcullis::telemetry::init(portcullis::config::LogFormat::Text, "info", None);
        }
    });
}

/// A configuration for a test: port 0, everything under `dir`.
pub fn test_config(dir: &std::path::Path, database_url: &str) -> Config {
    test_config_with(dir, database_url, &[])
}

/// [`test_config`] with further settings, as environment variables would give them (they
/// win over the test defaults).
pub fn test_config_with(
    dir: &std::path::Path,
    database_url: &str,
    extra: &[(&str, &str)],
) -> Config {
    let dir = dir.display().to_string();
    let pairs = [
        ("LISTEN_ADDR", "127.0.0.1:0".to_string()),
        ("DATA_DIR", dir),
        ("DATABASE_URL", database_url.to_string()),
        ("DATABASE_MAX_CONNECTIONS", "5".to_string()),
        ("SHUTDOWN_GRACE_SECONDS", "5".to_string()),
        ("SANDBOX_ORG_LISTEN", "127.0.0.1:0".to_string()),
        // Tests that compare database snapshots need no background writers; the
        // provisioning tests turn workers on.
        ("PROVISIONING_WORKERS", "0".to_string()),
        // Usage is collected when a test asks for it.
        ("USAGE_COLLECT_SECONDS", "0".to_string()),
    ];
    Config::load(|key| {
        extra
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
            .or_else(|| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.clone())
            })
    })
    .expect("test configuration is valid")
}

impl TestApp {
    /// Starts the application on `kind`; `None` when PostgreSQL is unavailable (outside CI).
    pub async fn spawn(kind: Db) -> Option<Self> {
        Self::spawn_with(kind, |_| {}).await
    }

    /// Like [`TestApp::spawn`], with a chance to adjust the configuration first.
    pub async fn spawn_with(kind: Db, adjust: impl FnOnce(&mut Config)) -> Option<Self> {
        Self::spawn_env(kind, &[], adjust).await
    }

    /// Like [`TestApp::spawn_with`], with settings given as environment variables would
    /// give them (read by `Config::load`, so they are checked as at start-up).
    pub async fn spawn_env(
        kind: Db,
        env: &[(&str, &str)],
        adjust: impl FnOnce(&mut Config),
    ) -> Option<Self> {
        init_process();
        let dir = tempfile::tempdir().expect("temporary directory");
        let (database_url, pg) = match kind {
            Db::Sqlite => (
                format!("sqlite://{}/portcullis.db?mode=rwc", dir.path().display()),
                None,
            ),
            Db::Postgres => {
                if !postgres_available(std::thread::current().name().unwrap_or("a test")).await {
                    return None;
                }
                let pg = PgDatabase::create().await;
                (pg.url.clone(), Some(pg))
            }
        };
        share_sandbox_tls(dir.path());
        let mut config = test_config_with(dir.path(), &database_url, env);
        adjust(&mut config);
        let app = match Application::build(config).await {
            Ok(app) => app,
            Err(e) => panic!("the application failed to start: {e}"),
        };
        // The embedded org waits a few seconds before a new app's credentials work, as a
        // real org does; tests not about that wait have it activate apps at once.
        if let Some(org) = app.sandbox_org() {
            org.org.write().settings.app_activation_seconds = 0;
        }
        Some(Self::start(app, kind, pg, dir))
    }

    fn start(app: Application, kind: Db, pg: Option<PgDatabase>, dir: tempfile::TempDir) -> Self {
        let url = app.url();
        let port = app.port();
        let db = app.database().clone();
        let portal = app.portal().clone();
        let sandbox_url = app.sandbox_org().map(|o| o.base_url().to_string());
        let shutdown = app.shutdown_token();
        let server = tokio::spawn(app.run_until_stopped());
        // The embedded sandbox org serves HTTPS with the process's sandbox CA.
        let client = reqwest::Client::builder()
            .add_root_certificate(sandbox_ca())
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        Self {
            url,
            port,
            db,
            portal,
            client,
            kind,
            pg,
            sandbox_url,
            shutdown,
            server: Some(server),
            dir,
        }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.at(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// Stops the application and waits for it to finish.
    pub async fn stop(mut self) -> std::io::Result<()> {
        self.shutdown.cancel();
        match self.server.take() {
            Some(handle) => handle.await.expect("server task"),
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Builds the application and returns the start-up error (for tests of bad settings).
pub async fn startup_error(config: Config) -> StartupError {
    init_process();
    match Application::build(config).await {
        Ok(_) => panic!("start-up was expected to fail"),
        Err(e) => e,
    }
}

/// One TLS identity for every embedded sandbox org of this test process: written into each
/// test's `DATA_DIR/sandbox-org` before the portal starts (the org uses files it finds there),
/// so test clients trust the orgs' HTTPS the ordinary way, with this CA.
fn sandbox_tls_files() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        init_crypto();
        let dir = tempfile::tempdir().expect("a directory for the sandbox orgs' TLS identity");
        sandbox_org::tls::server_tls(Some(dir.path()), &["127.0.0.1".to_string()])
            .expect("the sandbox orgs' TLS identity");
        dir
    })
    .path()
}

/// Gives the embedded sandbox org under `data_dir` the process's TLS identity.
fn share_sandbox_tls(data_dir: &std::path::Path) {
    let target = data_dir.join("sandbox-org");
    std::fs::create_dir_all(&target).expect("the sandbox org's state directory");
    for name in ["cert.pem", "server-cert.pem", "key.pem"] {
        std::fs::copy(sandbox_tls_files().join(name), target.join(name))
            .expect("copy the sandbox org's TLS files");
    }
}

/// The CA every embedded sandbox org of this process serves HTTPS with.
pub fn sandbox_ca() -> reqwest::Certificate {
    let pem = std::fs::read(sandbox_tls_files().join("cert.pem")).expect("the sandbox CA");
    reqwest::Certificate::from_pem(&pem).expect("the sandbox CA as PEM")
}

/// A plain HTTP client for calls to an embedded sandbox org (its control API, or a
/// contractor's calls with a credential), trusting the org's CA.
#[allow(dead_code)]
pub fn sandbox_http() -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(sandbox_ca())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client")
}
