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

mod org;
use org::*;

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

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

async fn my_domain(client: &Client, target: &Target) -> Check {
    let id = "my-domain";
    let url = &target.org_url;
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let local = is_loopback(url);
    let form_fix = "Set SALESFORCE_URL to the org's My Domain URL, as shown in Setup > My Domain \
                    (\"Current My Domain URL\"), e.g. https://acme.my.salesforce.com";
    if url.scheme() != "https" && !local {
        return fail(
            id,
            title(id),
            format!("{url} is not an https URL (form)"),
            form_fix,
        );
    }
    if matches!(
        host.as_str(),
        "login.salesforce.com" | "test.salesforce.com" | "welcome.salesforce.com"
    ) || host.ends_with(".lightning.force.com")
        || host.ends_with(".my.site.com")
    {
        return fail(
            id,
            title(id),
            format!("{host} is not a My Domain host (form)"),
            form_fix,
        );
    }
    let versions = match url.join("/services/data/") {
        Ok(u) => u,
        Err(e) => return fail(id, title(id), format!("{url}: {e} (form)"), form_fix),
    };
    let answer = client
        .http()
        .reqwest()
        .get(versions)
        .timeout(Duration::from_secs(15))
        .send()
        .await;
    let reached = match answer {
        Ok(response) if response.status().is_success() => response
            .json::<Value>()
            .await
            .map(|v| v.is_array())
            .unwrap_or(false),
        Ok(_) => false,
        Err(e) => {
            return fail(
                id,
                title(id),
                format!("{url} cannot be reached: {}", salesforce::http::chain(&e)),
                "Check SALESFORCE_URL, the network path to Salesforce, and SALESFORCE_CA_FILE if a proxy re-signs TLS",
            );
        }
    };
    if !reached {
        return fail(
            id,
            title(id),
            format!("{url}/services/data/ did not answer with the list of API versions"),
            form_fix,
        );
    }
    if local {
        ok(
            id,
            title(id),
            format!("{url} answers (a local sandbox org)"),
        )
    } else if host.ends_with(".my.salesforce.com") {
        ok(id, title(id), format!("{url} answers"))
    } else {
        warn(
            id,
            title(id),
            format!("{url} answers, but {host} is not a *.my.salesforce.com host"),
            Some(form_fix.into()),
        )
    }
}

async fn portal_token(client: &Client, target: &Target) -> Check {
    let id = "portal-token";
    let query = Soql::trusted("SELECT Id FROM Organization LIMIT 1");
    match client.query::<Value>(&query).await {
        Ok(_) => ok(
            id,
            title(id),
            match &target.auth {
                AuthMode::JwtBearer { username } => {
                    format!("the JWT bearer flow signs in as {username}")
                }
                AuthMode::ClientCredentials => "the client credentials flow works".into(),
            },
        ),
        Err(e) => {
            let fix = match &target.auth {
                AuthMode::JwtBearer { username } => format!(
                    "In Setup > External Client App Manager > the portal's app: OAuth Settings: enable \
                     \"JWT Bearer Flow\" with the certificate of SALESFORCE_JWT_KEY_FILE's key; \
                     Policies: Permitted Users \"Admin approved users are pre-authorized\" and add \
                     {username}'s profile or a permission set it holds. SALESFORCE_CLIENT_ID must \
                     be the app's consumer key"
                ),
                AuthMode::ClientCredentials => "In Setup > External Client App Manager > the \
                     portal's app: enable \"Client Credentials Flow\" (OAuth Settings and \
                     Policies) and set \"Run As\" to the service user. SALESFORCE_CLIENT_ID and \
                     SALESFORCE_CLIENT_SECRET must be the app's consumer key and secret"
                    .into(),
            };
            fail(
                id,
                title(id),
                format!("the portal cannot get a token: {e}"),
                fix,
            )
        }
    }
}

async fn sign_in_callback(client: &Client, target: &Target) -> Check {
    let id = "sign-in-callback";
    let mut url = match target.org_url.join("/services/oauth2/authorize") {
        Ok(url) => url,
        Err(e) => return fail(id, title(id), e.to_string(), "Fix SALESFORCE_URL"),
    };
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &target.client_id)
        .append_pair("redirect_uri", &target.callback_url)
        .append_pair("scope", "openid api")
        .append_pair("state", "portcullis-doctor")
        // As sign-in sends it (PKCE): without it an app that requires PKCE sends the browser
        // back to the callback with an error instead of showing its login page.
        .append_pair(
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        )
        .append_pair("code_challenge_method", "S256");
    let answer = client
        .http()
        .reqwest()
        .get(url)
        .timeout(Duration::from_secs(15))
        .send()
        .await;
    let (status, final_url, body) = match answer {
        Ok(response) => {
            let status = response.status().as_u16();
            let final_url = response.url().to_string();
            (status, final_url, response.text().await.unwrap_or_default())
        }
        Err(e) => {
            return fail(
                id,
                title(id),
                format!(
                    "the authorize page did not answer: {}",
                    salesforce::http::chain(&e)
                ),
                "Check SALESFORCE_URL",
            );
        }
    };
    let seen = format!("{final_url}\n{body}");
    let fix = format!(
        "In Setup > External Client App Manager > the portal's app > OAuth Settings, add the \
         callback URL {} (or set PUBLIC_URL to the URL the portal is reached at)",
        target.callback_url
    );
    if seen.contains("redirect_uri_mismatch") {
        fail(
            id,
            title(id),
            format!(
                "the portal's app does not list {} as a callback URL",
                target.callback_url
            ),
            fix,
        )
    } else if seen.contains("invalid_client_id") {
        fail(
            id,
            title(id),
            "the org does not know the app SALESFORCE_CLIENT_ID names",
            "Set SALESFORCE_CLIENT_ID to the consumer key of the portal's app (Setup > External \
             Client App Manager > the app > OAuth Settings > Consumer Key and Secret)",
        )
    } else if status >= 400 {
        fail(
            id,
            title(id),
            format!("the authorize page answered HTTP {status}"),
            fix,
        )
    } else {
        ok(
            id,
            title(id),
            format!("{} is an allowed callback URL", target.callback_url),
        )
    }
}

async fn sign_in_secret(client: &Client, target: &Target) -> Check {
    let id = "sign-in-secret";
    if target.sign_in_secret {
        return ok(
            id,
            title(id),
            "SALESFORCE_CLIENT_SECRET is set: sign-in sends the consumer secret",
        );
    }
    // A code exchange with a code that cannot be valid and no secret: an org that requires
    // the secret refuses the client (`invalid_client`) before it looks at the code.
    // UNCONFIRMED: that a real org checks the client before the code.
    let Ok(url) = target.org_url.join("/services/oauth2/token") else {
        return fail(id, title(id), "SALESFORCE_URL", "Fix SALESFORCE_URL");
    };
    let answer = client
        .http()
        .reqwest()
        .post(url)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "portcullis-doctor-probe"),
            ("client_id", target.client_id.as_str()),
            ("redirect_uri", target.callback_url.as_str()),
        ])
        .timeout(Duration::from_secs(15))
        .send()
        .await;
    let error = match answer {
        Ok(response) => response
            .json::<Value>()
            .await
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_default(),
        Err(e) => {
            return fail(
                id,
                title(id),
                format!(
                    "the token endpoint did not answer: {}",
                    salesforce::http::chain(&e)
                ),
                "Check SALESFORCE_URL",
            );
        }
    };
    if error == "invalid_client" {
        fail(
            id,
            title(id),
            "the portal's app requires the consumer secret for the web server flow, and SALESFORCE_CLIENT_SECRET is not set",
            "Set SALESFORCE_CLIENT_SECRET to the app's consumer secret (it then serves sign-in \
             only), or in Setup > External Client App Manager > the portal's app > OAuth \
             Settings, clear \"Require secret for Web Server Flow\"",
        )
    } else {
        ok(
            id,
            title(id),
            "the portal's app does not require the consumer secret for sign-in",
        )
    }
}

fn perm_field(name: &str) -> String {
    format!("Permissions{name}")
}

/// The service user's effective user permissions: its profile's and its permission sets'.
async fn user_permissions(
    client: &Client,
    user_id: &SalesforceId,
    names: &[&str],
) -> Result<(String, Vec<String>), salesforce::Error> {
    let invalid = |e: salesforce::soql::SoqlError| salesforce::Error::InvalidRequest(e.to_string());
    let users: Vec<Value> = client
        .query_all(
            &Soql::select(&["Id", "Username", "ProfileId"])
                .from("User")
                .filter(Cond::eq("Id", user_id))
                .build()
                .map_err(invalid)?,
        )
        .await?;
    let user = users.first().cloned().unwrap_or(Value::Null);
    let username = user["Username"].as_str().unwrap_or_default().to_string();
    let fields: Vec<String> = names.iter().map(|n| perm_field(n)).collect();
    let mut select: Vec<&str> = vec!["Id"];
    select.extend(fields.iter().map(String::as_str));
    let mut held = Vec::new();
    let mut collect = |rows: &[Value]| {
        for row in rows {
            for name in names {
                if row[perm_field(name)].as_bool() == Some(true)
                    && !held.contains(&name.to_string())
                {
                    held.push(name.to_string());
                }
            }
        }
    };
    if let Some(profile) = user["ProfileId"].as_str() {
        let rows: Vec<Value> = client
            .query_all(
                &Soql::select(&select)
                    .from("Profile")
                    .filter(Cond::eq("Id", profile))
                    .build()
                    .map_err(invalid)?,
            )
            .await?;
        collect(&rows);
    }
    let assignments: Vec<Value> = client
        .query_all(
            &Soql::select(&["PermissionSetId"])
                .from("PermissionSetAssignment")
                .filter(Cond::eq("AssigneeId", user_id))
                .build()
                .map_err(invalid)?,
        )
        .await?;
    let sets: Vec<String> = assignments
        .iter()
        .filter_map(|a| a["PermissionSetId"].as_str().map(str::to_string))
        .collect();
    if !sets.is_empty() {
        let rows: Vec<Value> = client
            .query_all(
                &Soql::select(&select)
                    .from("PermissionSet")
                    .filter(Cond::in_list("Id", sets))
                    .build()
                    .map_err(invalid)?,
            )
            .await?;
        collect(&rows);
    }
    Ok((username, held))
}

async fn service_user_permissions(
    client: &Client,
    me: Option<&salesforce::oauth_web::UserInfo>,
) -> (Check, Option<String>) {
    let id = "service-user-permissions";
    let Some(user_id) = me.and_then(|m| m.user_id()) else {
        return (
            fail(
                id,
                title(id),
                "the org did not say who the portal signs in as (userinfo)",
                "Give the portal's app the \"openid\" and \"api\" OAuth scopes",
            ),
            None,
        );
    };
    let names: Vec<&str> = SERVICE_PERMISSIONS.iter().map(|(n, _, _)| *n).collect();
    match user_permissions(client, &user_id, &names).await {
        Ok((username, held)) => {
            let missing: Vec<String> = SERVICE_PERMISSIONS
                .iter()
                .filter(|(n, _, _)| !held.iter().any(|h| h == n))
                .map(|(_, label, why)| format!("\"{label}\" ({why})"))
                .collect();
            let check = if missing.is_empty() {
                ok(
                    id,
                    title(id),
                    format!("{username} has every permission the portal needs"),
                )
            } else {
                fail(
                    id,
                    title(id),
                    format!("{username} lacks {}", missing.join(", ")),
                    format!(
                        "In Setup > Permission Sets, give a permission set assigned to {username} \
                         (or its profile) the System Permissions {}",
                        missing.join(", ")
                    ),
                )
            };
            (check, Some(username))
        }
        Err(e) => (
            fail(
                id,
                title(id),
                format!("cannot read the service user's permissions: {e}"),
                "Give the service user \"View Setup and Configuration\"",
            ),
            me.and_then(|m| m.preferred_username.clone()),
        ),
    }
}
