//! Test harness for the review, decision, blast-radius and catalog services: a fresh
//! database (SQLite or PostgreSQL), a Portal over it, and, where a test needs the org, an
//! in-process sandbox org the Portal's client talks to over HTTP as the provisioning user.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use salesforce::{Client, ClientConfig, PortalAuth, RetryPolicy, SecretString, Url};
use services::audit::{self, Actor, Verification};
use services::requests::SubmitInput;
use services::testing::{Engine, TestDb};
use services::{Mailer, Portal, PortalSettings};
use shared::auth::SignedInUser;
use shared::scope::{Level, ObjectAccess, Scope, Visibility, VisibilityRule};
use sqlx::Row;

pub struct TestPortal {
    pub portal: Portal,
    pub db: TestDb,
    /// Kept alive for the test (None when the test does not talk to the org).
    pub org: Option<sandbox_org::SandboxOrg>,
}

impl std::ops::Deref for TestPortal {
    type Target = Portal;
    fn deref(&self) -> &Portal {
        &self.portal
    }
}

pub fn settings() -> PortalSettings {
    PortalSettings {
        public_url: "https://portal.test".into(),
        // Tests submit many requests from one address.
        submissions_per_hour: 10_000,
        ..PortalSettings::default()
    }
}

/// A portal whose org connection points nowhere (for tests that never call the org).
pub async fn portal(engine: Engine) -> Option<TestPortal> {
    portal_with(engine, settings(), false).await
}

/// A portal connected to a fresh in-process sandbox org.
pub async fn portal_with_org(engine: Engine) -> Option<TestPortal> {
    portal_with(engine, settings(), true).await
}

pub async fn portal_with(
    engine: Engine,
    settings: PortalSettings,
    with_org: bool,
) -> Option<TestPortal> {
    let db = TestDb::new(engine).await?;
    let (org, salesforce) = if with_org {
        let (org, client) = sandbox_client().await;
        (Some(org), client)
    } else {
        let config = ClientConfig::new(
            Url::parse("http://127.0.0.1:9").unwrap(),
            PortalAuth::AccessToken(SecretString::from("unused")),
        );
        (None, Client::new(config).unwrap())
    };
    let portal = Portal::new(
        db.db.clone(),
        Mailer::outbox(),
        Arc::new(settings),
        salesforce,
    );
    Some(TestPortal { portal, db, org })
}

/// Starts a sandbox org and connects as the portal does (JWT bearer, provisioning user).
pub async fn sandbox_client() -> (sandbox_org::SandboxOrg, Client) {
    let org = sandbox_org::SandboxOrg::start(sandbox_org::SandboxConfig::default())
        .await
        .unwrap();
    let credentials = org.credentials().clone();
    let mut config = ClientConfig::new(
        Url::parse(org.base_url()).unwrap(),
        PortalAuth::JwtBearer {
            client_id: credentials["portalClientId"].as_str().unwrap().to_string(),
            username: credentials["provisionerUsername"]
                .as_str()
                .unwrap()
                .to_string(),
            private_key_pem: SecretString::from(org.portal_private_key_pem().unwrap()),
            audience: org.base_url().to_string(),
        },
    );
    config.retry = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
    };
    config.request_timeout = Duration::from_secs(20);
    (org, Client::new(config).unwrap())
}

pub fn contractor() -> Actor {
    Actor {
        name: "contractor".into(),
        ip: "203.0.113.7".into(),
        user_agent: "test".into(),
    }
}

pub fn approver(username: &str) -> (SignedInUser, Actor) {
    (
        SignedInUser {
            username: username.into(),
            user_id: "005000000000001AAA".into(),
            name: username.split('@').next().unwrap_or(username).into(),
            email: username.into(),
            permission_sets: vec![],
        },
        Actor {
            name: username.into(),
            ip: "198.51.100.4".into(),
            user_agent: "test browser".into(),
        },
    )
}

pub fn scope(object: &str, level: Level, fields: &[(&str, Level)]) -> Scope {
    Scope {
        objects: vec![ObjectAccess {
            object: object.into(),
            level,
            fields: fields.iter().map(|(f, l)| (f.to_string(), *l)).collect(),
            view_all: false,
            modify_all: false,
        }],
        visibility: Visibility {
            rule: VisibilityRule::Shared,
            record_ids: vec![],
            group: None,
        },
        packages: vec![],
    }
}

/// The scope most tests ask for: Case edit with Subject edit and Priority read.
pub fn case_scope() -> Scope {
    scope(
        "Case",
        Level::Edit,
        &[("Subject", Level::Edit), ("Priority", Level::Read)],
    )
}

pub fn future_date(days: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(days)).to_string()
}

/// Submits a request (still waiting for email verification); returns its id.
pub async fn submit(portal: &Portal, company: &str, email: &str, scope: Scope) -> String {
    let submitted = portal
        .submit(
            SubmitInput {
                company: company.into(),
                contact_name: "Dana Contractor".into(),
                contact_email: email.into(),
                justification: "Automating case triage for the support team.".into(),
                scope: Some(scope),
                scope_error: None,
                calls_per_day: "500".into(),
                ip_ranges: "203.0.113.0/24".into(),
                end_date: future_date(60),
                submission_key: uuid::Uuid::new_v4().to_string(),
            },
            &contractor(),
        )
        .await
        .unwrap();
    submitted.request_id
}

/// The verification code from the newest mail to `email`.
pub async fn code_for(portal: &Portal, email: &str) -> String {
    let mails = services::mail::outbox(portal.db(), Some(email), 10)
        .await
        .unwrap();
    mails
        .iter()
        .filter(|m| m.subject.starts_with("Confirm your email"))
        .find_map(|m| {
            m.body
                .lines()
                .map(str::trim)
                .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
                .map(str::to_string)
        })
        .expect("a verification code in the outbox")
}

/// Submits and verifies a request, so it waits for approvers; returns its id.
pub async fn submit_verified(portal: &Portal, company: &str, email: &str, scope: Scope) -> String {
    let id = submit(portal, company, email, scope).await;
    let code = code_for(portal, email).await;
    portal.verify_code(&id, &code, &contractor()).await.unwrap();
    id
}

/// Actions of the audit entries about `target_id`, in order.
pub async fn audit_actions(portal: &Portal, target_id: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT action FROM audit_log WHERE target_id = $1 ORDER BY seq")
        .bind(target_id)
        .fetch_all(portal.db().pool())
        .await
        .unwrap()
}

/// The details of the last audit entry with `action` about `target_id`.
pub async fn audit_details(portal: &Portal, action: &str, target_id: &str) -> serde_json::Value {
    let row = sqlx::query(
        "SELECT details FROM audit_log WHERE action = $1 AND target_id = $2 ORDER BY seq DESC LIMIT 1",
    )
    .bind(action)
    .bind(target_id)
    .fetch_one(portal.db().pool())
    .await
    .unwrap_or_else(|_| panic!("no {action} audit entry for {target_id}"));
    serde_json::from_str(&row.try_get::<String, _>("details").unwrap()).unwrap()
}

pub async fn count(portal: &Portal, sql: &str, id: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(portal.db().pool())
        .await
        .unwrap()
}

/// The chain verifies, and every entry written speaks the vocabulary: its action is one of
/// `AuditAction::ALL` (so the audit page's filter offers it) and its target one of
/// `Target::ALL` — checked after every flow these tests run, provisioning and reveal
/// included, whatever wrote the entry.
pub async fn assert_audit_intact(portal: &Portal) {
    let verification = audit::verify(portal.db(), None, None).await.unwrap();
    assert!(
        matches!(verification, Verification::Intact { .. }),
        "{verification:?}"
    );
    let written = sqlx::query("SELECT DISTINCT action, target_type FROM audit_log")
        .fetch_all(portal.db().pool())
        .await
        .unwrap();
    for row in written {
        let action: String = row.get("action");
        let target: String = row.get("target_type");
        assert!(
            audit::AuditAction::parse(&action).is_ok(),
            "the log holds '{action}', which AuditAction does not list (nor the audit filter)"
        );
        assert!(
            audit::Target::parse(&target).is_ok(),
            "the log holds target type '{target}', which Target does not list"
        );
    }
}
