//! `portcullis doctor` and the owners' page `/admin/org`: whether the configured org is
//! ready for the first grant. One implementation for both; each check reads the org through
//! the same Salesforce APIs the portal uses (REST, SOQL, describe, Metadata deploy with
//! `checkOnly`, Connect REST), so it works against a real org and the sandbox org alike.
//! The order is the order of docs/real-org.md.

use std::time::Duration;

use salesforce::connect::CredentialPart;
use salesforce::metadata::{
    ApiName, DeployOptions, ExternalClientAppSpec, PackageBuilder, TrustedIpRange,
};
use salesforce::soql::{Cond, Soql};
use salesforce::{Client, SalesforceId, Url};
use serde_json::Value;
use shared::doctor::{Check, CheckStatus};

mod connection;
mod org_settings;
mod service_user;

use connection::*;
use org_settings::*;
use service_user::*;

/// The user permissions the portal's service user needs, with Setup's names. (View Event
/// Log Files is the EventLogFile check's.)
pub const SERVICE_PERMISSIONS: &[(&str, &str, &str)] = &[
    ("ApiEnabled", "API Enabled", "every API call"),
    (
        "ViewSetup",
        "View Setup and Configuration",
        "reading licences, profiles and permission sets",
    ),
    (
        "ManageUsers",
        "Manage Users",
        "creating, freezing and deactivating integration users",
    ),
    (
        "ManageProfilesPermissionsets",
        "Manage Profiles and Permission Sets",
        "creating each grant's permission set",
    ),
    (
        "AssignPermissionSets",
        "Assign Permission Sets",
        "assigning permission sets and licences",
    ),
    (
        "CustomizeApplication",
        "Customize Application",
        "deploying External Client Apps and reading their credentials",
    ),
];

/// The throw-away app of the `checkOnly` deploys (never created).
const CHECK_APP: &str = "Portcullis_Doctor_Check";

/// How the portal authenticates to the org.
#[derive(Debug, Clone)]
pub enum AuthMode {
    JwtBearer { username: String },
    ClientCredentials,
}

/// What the doctor checks against: the portal's settings.
#[derive(Debug, Clone)]
pub struct Target {
    /// `SALESFORCE_URL` (or the built-in sandbox org's URL).
    pub org_url: Url,
    /// `SALESFORCE_CLIENT_ID`.
    pub client_id: String,
    /// The portal's sign-in callback (`PUBLIC_URL/auth/callback`).
    pub callback_url: String,
    /// Whether sign-in sends a consumer secret (`SALESFORCE_CLIENT_SECRET` is set).
    pub sign_in_secret: bool,
    pub auth: AuthMode,
    /// Objects of the access catalog whose org-wide defaults matter.
    pub catalog_objects: Vec<String>,
}

fn check(id: &str, title: &str, status: CheckStatus, detail: impl Into<String>) -> Check {
    Check {
        id: id.into(),
        title: title.into(),
        status,
        detail: detail.into(),
        fix: None,
    }
}

fn ok(id: &str, title: &str, detail: impl Into<String>) -> Check {
    check(id, title, CheckStatus::Ok, detail)
}

fn fail(id: &str, title: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        fix: Some(fix.into()),
        ..check(id, title, CheckStatus::Fail, detail)
    }
}

fn warn(id: &str, title: &str, detail: impl Into<String>, fix: Option<String>) -> Check {
    Check {
        fix,
        ..check(id, title, CheckStatus::Warn, detail)
    }
}

fn skipped(id: &str, title: &str, because: &str) -> Check {
    warn(id, title, format!("not checked: {because}"), None)
}

/// The checks, in order (each name is its `id`).
pub const CHECKS: &[(&str, &str)] = &[
    ("my-domain", "My Domain URL"),
    ("portal-token", "The portal's own authentication"),
    ("sign-in-callback", "Staff sign-in: callback URL"),
    ("sign-in-secret", "Staff sign-in: consumer secret"),
    ("service-user-permissions", "The service user's permissions"),
    (
        "integration-licences",
        "Salesforce Integration licences and the API Integration permission set licence",
    ),
    ("api-only-profile", "The API-only profile"),
    ("external-client-apps", "External Client Apps"),
    ("secrets-rest", "Consumer secrets through the REST API"),
    (
        "secrets-metadata",
        "Consumer secrets through the Metadata API",
    ),
    ("check-deploy", "A checkOnly deploy of a throw-away app"),
    ("assignment-expiry", "Permission set assignment expiry"),
    ("event-log-files", "EventLogFile access and hourly files"),
    (
        "org-wide-defaults",
        "Org-wide defaults of the catalog objects",
    ),
    ("api-access-control", "API Access Control"),
];

fn title(id: &str) -> &'static str {
    CHECKS
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, t)| *t)
        .unwrap_or("")
}

/// Runs every check against the org `client` talks to.
pub async fn run(client: &Client, target: &Target) -> Vec<Check> {
    let mut checks = Vec::new();
    let domain = my_domain(client, target).await;
    let reachable = domain.status != CheckStatus::Fail || domain.detail.contains("form");
    checks.push(domain);
    if !reachable {
        for (id, title) in &CHECKS[1..] {
            checks.push(skipped(id, title, "the org cannot be reached"));
        }
        return checks;
    }
    let token = portal_token(client, target).await;
    let authenticated = token.status == CheckStatus::Ok;
    checks.push(token);
    checks.push(sign_in_callback(client, target).await);
    checks.push(sign_in_secret(client, target).await);
    if !authenticated {
        for (id, title) in &CHECKS[4..] {
            checks.push(skipped(id, title, "the portal cannot authenticate"));
        }
        return checks;
    }
    let me = client.own_userinfo().await.ok();
    let (permissions, service_username) = service_user_permissions(client, me.as_ref()).await;
    checks.push(permissions);
    let licence = integration_licences(client).await;
    let licence_id = licence.1;
    checks.push(licence.0);
    checks.push(api_only_profile(client, licence_id.as_ref()).await);
    let (eca, deploys) = deploy_checks(client, service_username.as_deref()).await;
    checks.push(eca);
    checks.push(secrets_rest(client, target).await);
    let [secrets_metadata, check_deploy] = deploys;
    // Without either way to the secret, the portal cannot hand any over.
    let rest_ok = checks
        .last()
        .is_some_and(|c: &Check| c.status == CheckStatus::Ok);
    checks.push(
        if !rest_ok && secrets_metadata.status == CheckStatus::Warn {
            Check {
                status: CheckStatus::Fail,
                ..secrets_metadata
            }
        } else {
            secrets_metadata
        },
    );
    checks.push(check_deploy);
    checks.push(assignment_expiry(client).await);
    checks.push(event_log_files(client).await);
    checks.push(org_wide_defaults(client, target).await);
    checks.push(api_access_control(client, me.as_ref()).await);
    checks
}
