//! Portals for the domain tests: a fresh database (SQLite or PostgreSQL), a `Portal` over
//! it, and, where a test needs the org, an in-process sandbox org the Portal's client talks
//! to over HTTP as the provisioning user; the requests, approvals, provisioning runs and
//! audit checks the services' tests share.

use std::sync::Arc;
use std::time::Duration;

use salesforce::{Client, ClientConfig, Cond, PortalAuth, RetryPolicy, SecretString, Soql, Url};
use serde_json::Value;
use services::audit::{self, Actor, Verification};
use services::decisions::{ApprovalInput, DecisionOutcome};
use services::provisioning::{DeployPoll, Engine as Worker};
use services::requests::SubmitInput;
use services::{Mailer, Portal, PortalSettings};
use shared::auth::SignedInUser;
use shared::budget::Budget;
use shared::scope::{Level, ObjectAccess, Scope, Visibility, VisibilityRule};
use sqlx::Row;

use crate::{Engine, TestDb};

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

/// A portal connected to a fresh in-process sandbox org, speaking API `version` to it (an
/// org reached at an older version: no staged credentials below 65.0).
pub async fn portal_with_org_at(
    engine: Engine,
    version: salesforce::ApiVersion,
) -> Option<TestPortal> {
    portal_at(engine, settings(), Some(version)).await
}

pub async fn portal_with(
    engine: Engine,
    settings: PortalSettings,
    with_org: bool,
) -> Option<TestPortal> {
    portal_at(
        engine,
        settings,
        with_org.then_some(salesforce::ApiVersion::DEFAULT),
    )
    .await
}

async fn portal_at(
    engine: Engine,
    settings: PortalSettings,
    org_version: Option<salesforce::ApiVersion>,
) -> Option<TestPortal> {
    let db = TestDb::new(engine).await?;
    let (org, salesforce) = if let Some(version) = org_version {
        let (org, client) = sandbox_client_at(version).await;
        (Some(org), client)
    } else {
        (None, offline_client())
    };
    let portal = Portal::new(
        db.db.clone(),
        Mailer::outbox(),
        Arc::new(settings),
        salesforce,
    );
    Some(TestPortal { portal, db, org })
}

/// A Salesforce client that cannot connect (port 9 of 127.0.0.1), for portals that never
/// call the org: a call would fail, which proves they do not.
pub fn offline_client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = ClientConfig::new(
        Url::parse("http://127.0.0.1:9").unwrap(),
        PortalAuth::AccessToken(SecretString::from("unused")),
    );
    Client::new(config).unwrap()
}

/// A portal with `settings` over a fresh database, with an [`offline_client`], and the
/// database (for tests declared with `both_databases!(name, |engine| …)`, which have
/// checked that the engine is available).
pub async fn portal_and_db(engine: Engine, settings: PortalSettings) -> (Portal, TestDb) {
    let test = TestDb::new(engine).await.expect("database");
    let portal = Portal::new(
        test.db.clone(),
        Mailer::outbox(),
        Arc::new(settings),
        offline_client(),
    );
    (portal, test)
}

impl TestPortal {
    /// The in-process sandbox org's base URL, without a trailing slash.
    pub fn org_url(&self) -> String {
        self.org
            .as_ref()
            .expect("a portal with a sandbox org")
            .base_url()
            .trim_end_matches('/')
            .to_string()
    }

    /// Replaces the sandbox org's fault rules with `rules`.
    pub async fn set_faults(&self, rules: Value) {
        crate::sandbox::set_faults(&org_http(), &self.org_url(), rules).await;
    }

    /// Removes the sandbox org's fault rules.
    pub async fn clear_faults(&self) {
        crate::sandbox::clear_faults(&org_http(), &self.org_url()).await;
    }

    /// The sandbox org's call log.
    pub async fn call_log(&self) -> Vec<Value> {
        crate::sandbox::call_log(&org_http(), &self.org_url()).await
    }

    /// Changes the sandbox org's settings (`PATCH /__sandbox/settings`): licences, language,
    /// org-wide defaults…
    pub async fn org_settings(&self, settings: Value) {
        crate::sandbox::org_settings(&org_http(), &self.org_url(), settings).await;
    }
}

/// A plain HTTP client for the in-process sandbox org's control API.
fn org_http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// Starts a sandbox org and connects as the portal does (JWT bearer, provisioning user).
pub async fn sandbox_client() -> (sandbox_org::SandboxOrg, Client) {
    sandbox_client_at(salesforce::ApiVersion::DEFAULT).await
}

/// Like [`sandbox_client`], speaking API `version`.
pub async fn sandbox_client_at(
    version: salesforce::ApiVersion,
) -> (sandbox_org::SandboxOrg, Client) {
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
    config.api_version = version;
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

/// A verified request from `company` for `scope`, approved as asked by one approver with no
/// IP ranges; returns the grant's id (its provisioning run is planned, not started).
pub async fn approved_grant(t: &TestPortal, company: &str, scope: Scope) -> String {
    approved_grant_with(t, company, scope, "").await
}

/// A verified request from `company` for `scope`, approved as asked with these IP ranges;
/// returns the grant's id.
pub async fn approved_grant_with(
    t: &TestPortal,
    company: &str,
    scope: Scope,
    ip_ranges: &str,
) -> String {
    match approve_as_asked(t, company, scope, ip_ranges)
        .await
        .unwrap()
    {
        DecisionOutcome::Approved { grant_id, .. } => grant_id,
        other => panic!("expected an approval, got {other:?}"),
    }
}

/// A verified request from `company` for `scope`, which an approver approves as asked with
/// these IP ranges; returns what the decision came to (the approval may be refused).
pub async fn approve_as_asked(
    t: &TestPortal,
    company: &str,
    scope: Scope,
    ip_ranges: &str,
) -> Result<DecisionOutcome, services::decisions::DecisionError> {
    let id = submit_verified(t, company, "ops@vendor.example", scope.clone()).await;
    let (alice, actor) = approver("alice@acme.example");
    t.approve(
        &id,
        &alice,
        ApprovalInput {
            scope,
            budget: Budget::default_for(500),
            end_date: future_date(30),
            ip_ranges: ip_ranges.into(),
            reason: "Needed for the triage project.".into(),
        },
        &actor,
    )
    .await
}

/// A provisioning worker over the portal's database and org connection, polling deploys
/// as the sandbox org needs (it takes 450 ms to deploy an app).
pub fn worker(t: &TestPortal) -> Worker {
    Worker::new(t.db.db.clone(), t.salesforce().clone()).with_deploy_poll(DeployPoll {
        first_check: Duration::from_millis(450),
        interval: Duration::from_millis(100),
        timeout: Duration::from_secs(30),
    })
}

/// A grant's state and what it says needs attention.
pub async fn grant_state(t: &TestPortal, grant: &str) -> (String, Option<String>) {
    let row = sqlx::query("SELECT state, attention FROM grants WHERE id = $1")
        .bind(grant)
        .fetch_one(t.db.db.pool())
        .await
        .unwrap();
    (row.get("state"), row.get("attention"))
}

/// The recorded output of a grant's provisioning step, as JSON.
pub async fn output_of(t: &TestPortal, grant: &str, step: &str) -> Value {
    let output: String = sqlx::query_scalar(
        "SELECT output FROM provisioning_steps WHERE grant_id = $1 AND step = $2",
    )
    .bind(grant)
    .bind(step)
    .fetch_one(t.db.db.pool())
    .await
    .unwrap();
    serde_json::from_str(&output).unwrap()
}

/// The steps of a grant's run and their states, in order.
pub async fn step_states(t: &TestPortal, grant_id: &str) -> Vec<(String, String)> {
    sqlx::query("SELECT step, state FROM provisioning_steps WHERE grant_id = $1 ORDER BY position")
        .bind(grant_id)
        .fetch_all(t.db.db.pool())
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.get("step"), r.get("state")))
        .collect()
}

/// The org's records of `object` matching `cond`, with `fields`, read as the portal.
pub async fn records(t: &TestPortal, object: &str, fields: &[&str], cond: Cond) -> Vec<Value> {
    let soql = Soql::select(fields)
        .from(object)
        .filter(cond)
        .build()
        .unwrap();
    t.salesforce().query_all::<Value>(&soql).await.unwrap()
}

/// Everything in the org a grant's run can touch, for "left as it was" comparisons: active
/// users, permission sets, licence and permission set assignments, object and field
/// permissions, manual case shares, group members, case owners, and apps.
pub async fn org_snapshot(t: &TestPortal) -> Vec<(String, Vec<String>)> {
    async fn ids(t: &TestPortal, object: &str, fields: &[&str]) -> Vec<String> {
        let soql = Soql::select(fields).from(object).build().unwrap();
        let mut rows: Vec<String> = t
            .salesforce()
            .query_all::<Value>(&soql)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                fields
                    .iter()
                    .map(|f| r[*f].to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        rows.sort();
        rows
    }
    let active_users = records(t, "User", &["Username"], Cond::eq("IsActive", true))
        .await
        .iter()
        .map(|r| r["Username"].to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let org_url = t
        .salesforce()
        .instance_url()
        .as_str()
        .trim_end_matches('/')
        .to_string();
    let apps: Value = t
        .salesforce()
        .http()
        .reqwest()
        .get(format!("{org_url}/__sandbox/apps"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let apps = apps["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["developerName"].to_string())
        .collect();
    vec![
        ("active users".into(), active_users),
        (
            "permission sets".into(),
            ids(t, "PermissionSet", &["Name"]).await,
        ),
        (
            "permission set assignments".into(),
            ids(
                t,
                "PermissionSetAssignment",
                &["AssigneeId", "PermissionSetId"],
            )
            .await,
        ),
        (
            "licence assignments".into(),
            ids(t, "PermissionSetLicenseAssign", &["Id"]).await,
        ),
        (
            "object permissions".into(),
            ids(t, "ObjectPermissions", &["Id"]).await,
        ),
        (
            "field permissions".into(),
            ids(t, "FieldPermissions", &["Id"]).await,
        ),
        ("case shares".into(), ids(t, "CaseShare", &["Id"]).await),
        ("group members".into(), ids(t, "GroupMember", &["Id"]).await),
        (
            "case owners".into(),
            ids(t, "Case", &["Id", "OwnerId"]).await,
        ),
        ("apps".into(), apps),
    ]
}

pub fn assert_same_org(before: &[(String, Vec<String>)], after: &[(String, Vec<String>)]) {
    for ((what, b), (_, a)) in before.iter().zip(after) {
        assert_eq!(a, b, "{what}: the org is not as it was");
    }
}

/// The grant's consumer secret, read from the org as the portal (tests only).
pub async fn contractor_secret(t: &TestPortal, grant: &str) -> String {
    use salesforce::ExposeSecret;
    let consumer = output_of(t, grant, "consumer").await;
    t.salesforce()
        .consumer_credential(
            consumer["app_id"].as_str().unwrap(),
            consumer["consumer_id"].as_str().unwrap(),
            salesforce::connect::CredentialPart::Secret,
        )
        .await
        .unwrap()
        .secret
        .unwrap()
        .expose_secret()
        .to_string()
}

/// A client of the org with the contractor's credential (client credentials flow). The
/// secret is read here only to prove the credential works; the engine never reads it.
pub async fn contractor_client(t: &TestPortal, grant: &str) -> salesforce::Client {
    let consumer = output_of(t, grant, "consumer").await;
    let app_id = consumer["app_id"].as_str().unwrap();
    let credential = t
        .salesforce()
        .consumer_credential(
            app_id,
            consumer["consumer_id"].as_str().unwrap(),
            salesforce::connect::CredentialPart::KeyAndSecret,
        )
        .await
        .unwrap();
    assert_eq!(
        credential.key.as_deref(),
        consumer["consumer_key"].as_str(),
        "the recorded key is the app's"
    );
    let config = salesforce::ClientConfig::new(
        t.salesforce().instance_url().clone(),
        salesforce::PortalAuth::ClientCredentials {
            client_id: credential.key.unwrap(),
            client_secret: credential.secret.unwrap(),
        },
    );
    salesforce::Client::new(config).unwrap()
}

/// `t`'s portal, reading the time from a test clock standing at the wall clock's now.
pub fn with_test_clock(t: &mut TestPortal) -> services::clock::TestClock {
    let clock = services::clock::TestClock::starting_now();
    t.portal = t.portal.clone().with_clock(clock.shared());
    clock
}

/// Moves the sandbox org's clock so that it reads `at_ms` now (its offset is from the
/// machine's clock, which keeps running; a portal's test clock does not).
pub async fn set_org_clock_to(t: &TestPortal, at_ms: i64) {
    use services::clock::Clock;
    let offset = (at_ms - services::clock::SystemClock.now_ms()) / 1_000;
    crate::sandbox::set_clock_offset_seconds(&reqwest::Client::new(), &t.org_url(), offset).await;
}

/// The ids of the org's first `n` cases by case number.
pub async fn first_case_ids(t: &TestPortal, n: u32) -> Vec<String> {
    let soql = Soql::select(&["Id"])
        .from("Case")
        .order_by("CaseNumber", salesforce::soql::Order::Asc)
        .limit(n)
        .build()
        .unwrap();
    t.salesforce()
        .query_all::<Value>(&soql)
        .await
        .unwrap()
        .iter()
        .map(|r| r["Id"].as_str().unwrap().to_string())
        .collect()
}

/// [`case_scope`] with its records visible by `rule` (the records, or the public group).
pub fn case_scope_visible(
    rule: VisibilityRule,
    record_ids: Vec<String>,
    group: Option<&str>,
) -> Scope {
    let mut scope = case_scope();
    scope.visibility = Visibility {
        rule,
        record_ids,
        group: group.map(str::to_string),
    };
    scope
}

/// Whether a fresh token exchange with the grant's credential succeeds and the token reads
/// a case. Once the app is deleted its secret cannot be read: any secret is then refused.
pub async fn credential_works(t: &TestPortal, grant: &str) -> bool {
    let consumer = output_of(t, grant, "consumer").await;
    let secret = t
        .salesforce()
        .consumer_credential(
            consumer["app_id"].as_str().unwrap(),
            consumer["consumer_id"].as_str().unwrap(),
            salesforce::connect::CredentialPart::Secret,
        )
        .await
        .ok()
        .and_then(|c| c.secret)
        .unwrap_or_else(|| SecretString::from("gone-with-the-app"));
    let config = ClientConfig::new(
        t.salesforce().instance_url().clone(),
        PortalAuth::ClientCredentials {
            client_id: consumer["consumer_key"].as_str().unwrap().to_string(),
            client_secret: secret,
        },
    );
    let client = Client::new(config).unwrap();
    let soql = Soql::select(&["Id"]).from("Case").limit(1).build().unwrap();
    client.query_all::<Value>(&soql).await.is_ok()
}

/// The token of the newest link to `path` (`/status/`, `/reveal/`, ...) mailed to `email`.
pub async fn link_token_for(t: &TestPortal, email: &str, path: &str) -> String {
    let mails = services::mail::outbox(&t.db.db, Some(email), 50)
        .await
        .unwrap();
    mails
        .iter()
        .find_map(|m| {
            let at = m.body.find(path)?;
            let rest = &m.body[at + path.len()..];
            Some(
                rest.chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect::<String>(),
            )
        })
        .unwrap_or_else(|| panic!("a mail to {email} with a {path} link"))
}
