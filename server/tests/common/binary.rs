//! The real `portcullis` binary as a separate process, connected to a standalone sandbox
//! org (which outlives it), for tests that kill it or run two of it; and approved grants
//! made with the services API on the database the binaries use.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use services::audit::Actor;
use services::decisions::{ApprovalInput, DecisionOutcome};
use services::requests::SubmitInput;
use services::{Database, DatabaseKind, Mailer, Portal, PortalSettings};
use shared::auth::SignedInUser;
use shared::budget::Budget;
use shared::scope::{Level, ObjectAccess, Scope, Visibility, VisibilityRule};

use super::sandbox::StandaloneOrg;

/// Opens (and migrates) the database at `url` as the binary will.
pub async fn open_database(url: &str) -> Database {
    let kind = if url.starts_with("sqlite:") {
        DatabaseKind::Sqlite
    } else {
        DatabaseKind::Postgres
    };
    let file = url
        .strip_prefix("sqlite://")
        .map(|rest| std::path::PathBuf::from(rest.split('?').next().unwrap_or(rest)));
    let db = Database::connect(url, kind, 4, url, file.as_deref())
        .await
        .expect("open the database");
    db.migrate(url).await.expect("migrate");
    db
}

/// Case, Edit, with Subject (Edit) and Priority (Read), shared record by record.
pub fn case_scope(record_ids: Vec<String>) -> Scope {
    Scope {
        objects: vec![ObjectAccess {
            object: "Case".into(),
            level: Level::Edit,
            fields: [
                ("Subject".to_string(), Level::Edit),
                ("Priority".to_string(), Level::Read),
            ]
            .into_iter()
            .collect(),
            view_all: false,
            modify_all: false,
        }],
        visibility: Visibility {
            rule: VisibilityRule::Shared,
            record_ids,
            group: None,
        },
        packages: vec![],
    }
}

fn future_date(days: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(days)).to_string()
}

/// One approved grant per company (request submitted, email confirmed, approved as asked),
/// made with the services API; returns the grant ids.
pub async fn approve_grants(
    db: &Database,
    org: &StandaloneOrg,
    companies: &[String],
    scope: &Scope,
    ip_ranges: &str,
) -> Vec<String> {
    let portal = Portal::new(
        db.clone(),
        Mailer::outbox(),
        Arc::new(PortalSettings {
            public_url: "https://portal.test".into(),
            submissions_per_hour: 100_000,
            ..PortalSettings::default()
        }),
        org.admin_client(),
    );
    let actor = |name: &str| Actor {
        name: name.into(),
        ip: "198.51.100.4".into(),
        user_agent: "test".into(),
    };
    let approver = SignedInUser {
        username: "alice@acme.example".into(),
        user_id: "005000000000001AAA".into(),
        name: "alice".into(),
        email: "alice@acme.example".into(),
        permission_sets: vec![],
    };
    let mut grants = Vec::new();
    for (i, company) in companies.iter().enumerate() {
        let email = format!("ops{i}@vendor.example");
        let submitted = portal
            .submit(
                SubmitInput {
                    company: company.clone(),
                    contact_name: "Dana Contractor".into(),
                    contact_email: email.clone(),
                    justification: "Automating case triage for the support team.".into(),
                    scope: Some(scope.clone()),
                    scope_error: None,
                    calls_per_day: "500".into(),
                    ip_ranges: String::new(),
                    end_date: future_date(60),
                    submission_key: uuid::Uuid::new_v4().to_string(),
                },
                &actor("contractor"),
            )
            .await
            .expect("submit");
        let mails = services::mail::outbox(db, Some(&email), 10)
            .await
            .expect("outbox");
        let code = mails
            .iter()
            .find_map(|m| {
                m.body
                    .lines()
                    .map(str::trim)
                    .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
                    .map(str::to_string)
            })
            .expect("a verification code");
        portal
            .verify_code(&submitted.request_id, &code, &actor("contractor"))
            .await
            .expect("verify");
        let outcome = portal
            .approve(
                &submitted.request_id,
                &approver,
                ApprovalInput {
                    scope: scope.clone(),
                    budget: Budget::default_for(500),
                    end_date: future_date(30),
                    ip_ranges: ip_ranges.into(),
                    reason: "Needed for the triage project.".into(),
                },
                &actor("alice@acme.example"),
            )
            .await
            .expect("approve");
        match outcome {
            DecisionOutcome::Approved { grant_id, .. } => grants.push(grant_id),
            other => panic!("expected an approval, got {other:?}"),
        }
    }
    grants
}

/// A running `portcullis` (the portal) process using `database_url` and the standalone org.
pub struct PortalProcess {
    child: Child,
    pub url: String,
}

impl PortalProcess {
    pub fn start(
        org: &StandaloneOrg,
        database_url: &str,
        data_dir: &std::path::Path,
        workers: u32,
    ) -> Self {
        Self::spawn(org, database_url, data_dir, workers, None)
    }

    /// Like [`PortalProcess::start`], logging at `level` into `log` (stdout and stderr both):
    /// for tests that read what the portal logged.
    pub fn start_logged(
        org: &StandaloneOrg,
        database_url: &str,
        data_dir: &std::path::Path,
        workers: u32,
        level: &str,
        log: &std::path::Path,
    ) -> Self {
        Self::spawn(org, database_url, data_dir, workers, Some((level, log)))
    }

    fn spawn(
        org: &StandaloneOrg,
        database_url: &str,
        data_dir: &std::path::Path,
        workers: u32,
        log: Option<(&str, &std::path::Path)>,
    ) -> Self {
        let key_file = data_dir.join("portal-app-key.pem");
        if !key_file.exists() {
            std::fs::write(&key_file, &org.key_pem).expect("write the portal app's key");
        }
        let (level, stderr, mut log_file) = match log {
            Some((level, path)) => {
                let file = std::fs::File::create(path).expect("create the log file");
                let stderr = file.try_clone().expect("share the log file");
                (level, Stdio::from(stderr), Some(file))
            }
            None => ("warn", Stdio::null(), None),
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATA_DIR", data_dir)
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("DATABASE_URL", database_url)
            .env("SALESFORCE_MODE", "org")
            .env("SALESFORCE_URL", &org.base_url)
            .env("SALESFORCE_CLIENT_ID", &org.client_id)
            .env("SALESFORCE_JWT_KEY_FILE", &key_file)
            .env("SALESFORCE_USERNAME", &org.provisioner)
            // Staff sign-in's code exchange needs the consumer secret (issue 14, item 1).
            .env("SALESFORCE_CLIENT_SECRET", &org.client_secret)
            .env("SALESFORCE_CA_FILE", &org.ca_file)
            .env("PROVISIONING_WORKERS", workers.to_string())
            .env("USAGE_COLLECT_SECONDS", "0")
            .env("LOG_LEVEL", level)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start the portcullis binary");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = lines
            .next()
            .and_then(Result::ok)
            .unwrap_or_else(|| panic!("the portal printed nothing (did it fail to start?)"));
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Some(file) = log_file.as_mut() {
                    use std::io::Write;
                    let _ = writeln!(file, "{line}");
                }
            }
        });
        let url = first
            .trim()
            .strip_prefix("Portcullis is running at ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_string();
        Self { child, url }
    }

    /// SIGTERM, then waits for the process to finish (its logs are then complete).
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }

    /// SIGKILL: no shutdown, no chance to record anything.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PortalProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sandbox org's call log.
pub async fn call_log(org: &StandaloneOrg) -> Vec<Value> {
    test_kit::sandbox::call_log(&org.http(), &org.base_url).await
}

/// Sets the sandbox org's fault rules.
pub async fn set_faults(org: &StandaloneOrg, rules: Value) {
    test_kit::sandbox::set_faults(&org.http(), &org.base_url, rules).await;
}

/// Waits (up to `limit`) for `check` to hold, polling every 10 ms.
pub async fn wait_for<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
