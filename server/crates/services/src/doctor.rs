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

/// Free seats of the Salesforce Integration user licence and the Salesforce API Integration
/// permission set licence. Found by stable keys, never by translated names
/// (`LicenseDefinitionKey` of the user licence is UNCONFIRMED; see the reference §3.1).
async fn integration_licences(client: &Client) -> (Check, Option<String>) {
    let id = "integration-licences";
    let user_licences = client
        .query_all::<Value>(&Soql::trusted(
            "SELECT Id, TotalLicenses, UsedLicenses FROM UserLicense WHERE LicenseDefinitionKey = 'SFDC_INTEGRATION'",
        ))
        .await;
    let psl = client
        .query_all::<Value>(&Soql::trusted(
            "SELECT Id, TotalLicenses, UsedLicenses FROM PermissionSetLicense WHERE DeveloperName = 'SalesforceAPIIntegrationPsl'",
        ))
        .await;
    let (user_licences, psl) = match (user_licences, psl) {
        (Ok(u), Ok(p)) => (u, p),
        (Err(e), _) | (_, Err(e)) => {
            return (
                fail(
                    id,
                    title(id),
                    format!("cannot read the licences: {e}"),
                    "Give the service user \"View Setup and Configuration\"",
                ),
                None,
            );
        }
    };
    let free = |rows: &[Value]| {
        rows.first().map(|r| {
            let total = r["TotalLicenses"].as_i64().unwrap_or(0);
            let used = r["UsedLicenses"].as_i64().unwrap_or(0);
            (total - used, total)
        })
    };
    let licence_id = user_licences
        .first()
        .and_then(|r| r["Id"].as_str())
        .map(str::to_string);
    let buy = "Buy more Salesforce Integration licences (Setup > Company Information shows them; \
               each includes the API Integration permission set licence), or deactivate \
               integration users no longer needed";
    let check = match (free(&user_licences), free(&psl)) {
        (None, _) => fail(
            id,
            title(id),
            "the org has no Salesforce Integration user licence",
            "The licence comes with Enterprise, Unlimited, Performance and Developer Editions; \
             ask Salesforce to add Salesforce Integration licences to the org",
        ),
        (_, None) => fail(
            id,
            title(id),
            "the org has no Salesforce API Integration permission set licence",
            "Ask Salesforce for the Salesforce API Integration permission set licence (it comes \
             with Salesforce Integration licences)",
        ),
        (Some((user_free, user_total)), Some((psl_free, psl_total))) => {
            let detail = format!(
                "{user_free} of {user_total} Salesforce Integration licences and {psl_free} of \
                 {psl_total} API Integration permission set licences free"
            );
            if user_free <= 0 || psl_free <= 0 {
                fail(id, title(id), detail, buy)
            } else {
                ok(id, title(id), detail)
            }
        }
    };
    (check, licence_id)
}

async fn api_only_profile(client: &Client, licence_id: Option<&String>) -> Check {
    let id = "api-only-profile";
    let Some(licence_id) = licence_id else {
        return skipped(
            id,
            title(id),
            "the org has no Salesforce Integration licence",
        );
    };
    let query = Soql::select(&["Id", "Name"])
        .from("Profile")
        .filter(Cond::and([
            Cond::eq("UserLicenseId", licence_id.as_str()),
            Cond::eq("PermissionsApiUserOnly", true),
        ]))
        .build();
    let query = match query {
        Ok(q) => q,
        Err(e) => return fail(id, title(id), e.to_string(), "(a bug: report it)"),
    };
    match client.query_all::<Value>(&query).await {
        Ok(rows) if !rows.is_empty() => ok(
            id,
            title(id),
            format!(
                "{} (API only, Salesforce Integration licence)",
                rows[0]["Name"].as_str().unwrap_or("the profile")
            ),
        ),
        Ok(_) => fail(
            id,
            title(id),
            "no API-only profile uses the Salesforce Integration licence",
            "The \"Minimum Access - API Only Integrations\" profile comes with the Salesforce \
             Integration licence; if it was deleted or changed, ask Salesforce Support to \
             restore it",
        ),
        Err(e) => fail(
            id,
            title(id),
            format!("cannot read profiles: {e}"),
            "Give the service user \"View Setup and Configuration\"",
        ),
    }
}

/// The throw-away app: what the portal deploys for a grant, named so it is recognisable.
fn check_app(
    run_as: &str,
    permission_set: &str,
) -> Result<ExternalClientAppSpec, salesforce::metadata::SpecError> {
    Ok(ExternalClientAppSpec {
        name: ApiName::parse(CHECK_APP)?,
        label: "Portcullis doctor check".into(),
        contact_email: "portcullis@localhost.localdomain".into(),
        description: "A checkOnly deploy by portcullis doctor; never created.".into(),
        scopes: vec!["Api".into()],
        client_credentials_run_as: run_as.into(),
        permission_set_names: vec![ApiName::parse(permission_set)?],
        trusted_ip_ranges: Vec::<TrustedIpRange>::new(),
        callback_url: Url::parse("https://login.salesforce.com/services/oauth2/success").map_err(
            |e| salesforce::metadata::SpecError::InvalidValue {
                field: "callback URL",
                reason: e.to_string(),
            },
        )?,
        pkce_required: true,
    })
}

/// One `checkOnly` deploy: `Ok(())` when it would succeed, else what the org said.
async fn check_only(
    client: &Client,
    zip: Result<salesforce::metadata::DeployZip, salesforce::metadata::SpecError>,
) -> Result<(), String> {
    let zip = zip.map_err(|e| format!("the package could not be built: {e}"))?;
    let options = DeployOptions {
        check_only: true,
        ..DeployOptions::default()
    };
    let deploy = client
        .deploy(&zip, &options)
        .await
        .map_err(|e| e.to_string())?;
    let result = client
        .wait_for_deploy(
            &deploy,
            Duration::from_millis(500),
            Duration::from_secs(120),
        )
        .await
        .map_err(|e| e.to_string())?;
    if result.success {
        return Ok(());
    }
    let problems: Vec<String> = result
        .details
        .component_failures
        .iter()
        .map(|f| format!("{}: {}", f.file_name, f.problem))
        .collect();
    Err(if problems.is_empty() {
        result
            .error_message
            .unwrap_or_else(|| format!("the deploy ended {}", result.status.as_str()))
    } else {
        problems.join("; ")
    })
}

/// External Client Apps on (the app header alone deploys), a throw-away app as the portal
/// builds one, and the same with a consumer secret (the sealed fallback's way).
async fn deploy_checks(client: &Client, run_as: Option<&str>) -> (Check, [Check; 2]) {
    let (eca_id, metadata_id, deploy_id) =
        ("external-client-apps", "secrets-metadata", "check-deploy");
    let run_as = run_as.unwrap_or("portcullis@localhost.localdomain");
    // The app is admin-approved for a permission set, as a grant's is for its own: any
    // existing one will do for a check that creates nothing.
    let permission_set = client
        .query::<Value>(&Soql::trusted(
            "SELECT Name FROM PermissionSet WHERE IsOwnedByProfile = false ORDER BY Name LIMIT 1",
        ))
        .await
        .ok()
        .and_then(|page| page.records.first()?["Name"].as_str().map(str::to_string))
        .unwrap_or_else(|| CHECK_APP.to_string());
    let spec = match check_app(run_as, &permission_set) {
        Ok(spec) => spec,
        Err(e) => {
            let bug = |id: &str| fail(id, title(id), e.to_string(), "(a bug: report it)");
            return (bug(eca_id), [bug(metadata_id), bug(deploy_id)]);
        }
    };
    let header = spec.eca_xml().and_then(|xml| {
        let mut package = PackageBuilder::new(client.api_version());
        package.add(
            ExternalClientAppSpec::ECA_TYPE,
            "externalClientApps",
            "eca",
            CHECK_APP,
            xml,
        );
        package.build()
    });
    if let Err(problem) = check_only(client, header).await {
        let off = |id: &str| skipped(id, title(id), "External Client Apps are not available");
        return (
            fail(
                eca_id,
                title(eca_id),
                format!("an External Client App cannot be deployed: {problem}"),
                "In Setup > External Client App Settings, turn on External Client Apps \
                 (ExternalClientAppSettings.enableExternalClientApps); the service user needs \
                 \"Customize Application\"",
            ),
            [off(metadata_id), off(deploy_id)],
        );
    }
    let eca = ok(
        eca_id,
        title(eca_id),
        "External Client Apps can be deployed",
    );
    let deploy = match check_only(client, spec.build_zip(client.api_version())).await {
        Ok(()) => ok(
            deploy_id,
            title(deploy_id),
            format!(
                "a throw-away app running as {run_as} would deploy (checkOnly: nothing was created)"
            ),
        ),
        Err(problem) => fail(
            deploy_id,
            title(deploy_id),
            format!("the throw-away app would not deploy: {problem}"),
            "Fix what the org names above; the service user must be an active user the app may \
             run as (its client credentials \"Run As\" user)",
        ),
    };
    let secret = secrecy::SecretString::from(format!("D{}", uuid::Uuid::new_v4().simple()));
    let metadata = match check_only(
        client,
        spec.build_zip_with_secret(client.api_version(), &secret),
    )
    .await
    {
        Ok(()) => ok(
            metadata_id,
            title(metadata_id),
            "an app's consumer secret can be set through the Metadata API",
        ),
        Err(problem) => warn(
            metadata_id,
            title(metadata_id),
            format!("an app's consumer secret cannot be set through the Metadata API: {problem}"),
            Some(
                "In Setup > External Client App Settings, turn on \"Allow access to OAuth \
                 consumer secrets via Metadata API\" (needed only when secrets through the \
                 REST API are off)"
                    .into(),
            ),
        ),
    };
    (eca, [metadata, deploy])
}

async fn secrets_rest(client: &Client, target: &Target) -> Check {
    let id = "secrets-rest";
    let apps = match client.oauth_usage_apps().await {
        Ok(apps) => apps,
        Err(e) => {
            return fail(
                id,
                title(id),
                format!("cannot list the org's apps: {e}"),
                "Give the service user \"Customize Application\"",
            );
        }
    };
    // The portal's own app (its consumer key is SALESFORCE_CLIENT_ID).
    let mut found = None;
    for app in &apps {
        if let Ok(consumers) = client.app_credentials(&app.identifier).await
            && let Some(consumer) = consumers
                .iter()
                .find(|c| c.key.as_deref() == Some(target.client_id.as_str()))
        {
            found = Some((app.identifier.clone(), consumer.id.clone()));
            break;
        }
    }
    let Some((app_id, consumer_id)) = found else {
        return warn(
            id,
            title(id),
            "the portal's app is not among the apps the credentials API lists",
            None,
        );
    };
    match client
        .consumer_credential(&app_id, &consumer_id, CredentialPart::Secret)
        .await
    {
        Ok(credential) if credential.secret.is_some() => ok(
            id,
            title(id),
            "the credentials API returns consumer secrets: contractors' secrets are read from the org",
        ),
        Ok(_) => warn(
            id,
            title(id),
            "the credentials API returned no secret: the sealed fallback will be used",
            None,
        ),
        Err(e) if salesforce::connect::is_secret_access_disabled(&e) => warn(
            id,
            title(id),
            "secrets through the REST API are off: the portal chooses each app's secret, \
             deploys it through the Metadata API and keeps it sealed until the reveal",
            Some(
                "Optional: in Setup > External Client App Settings, turn on \"Allow access to \
                 External Client App consumer secrets via REST API\" (Salesforce's health check \
                 recommends leaving it off; the sealed fallback works without it)"
                    .into(),
            ),
        ),
        Err(e) => fail(
            id,
            title(id),
            format!("the credentials API refused: {e}"),
            "Give the service user \"Customize Application\"",
        ),
    }
}

async fn assignment_expiry(client: &Client) -> Check {
    let id = "assignment-expiry";
    match client.describe("PermissionSetAssignment").await {
        Ok(describe) => match describe.field("ExpirationDate") {
            Some(field) if field.createable => ok(
                id,
                title(id),
                "permission set assignments can expire (the grant's end date is enforced by Salesforce too)",
            ),
            _ => fail(
                id,
                title(id),
                "PermissionSetAssignment.ExpirationDate cannot be set: assignment expiry is off",
                "In Setup > User Management Settings, turn on \"Permission Set and Permission Set \
                 Group Assignment Expiration Details\"",
            ),
        },
        Err(e) => fail(
            id,
            title(id),
            format!("cannot describe PermissionSetAssignment: {e}"),
            "Give the service user \"View Setup and Configuration\"",
        ),
    }
}

async fn event_log_files(client: &Client) -> Check {
    let id = "event-log-files";
    let files = client
        .query_all::<Value>(&Soql::trusted(
            "SELECT Id, Interval FROM EventLogFile WHERE EventType = 'ApiTotalUsage' ORDER BY LogDate DESC LIMIT 200",
        ))
        .await;
    match files {
        Ok(rows) => {
            let hourly = rows.iter().any(|r| r["Interval"] == "Hourly");
            let daily = rows.iter().any(|r| r["Interval"] == "Daily");
            if hourly {
                ok(
                    id,
                    title(id),
                    "ApiTotalUsage files can be read, hourly files included",
                )
            } else {
                warn(
                    id,
                    title(id),
                    if daily {
                        "ApiTotalUsage files can be read, but there are no hourly files: usage is known a day late"
                    } else {
                        "EventLogFile can be read, but there are no ApiTotalUsage files yet (they appear the day after the first API calls)"
                    },
                    Some(
                        "Hourly event log files come with Event Monitoring (Shield or the Event \
                         Monitoring add-on); without it the portal works from daily files"
                            .into(),
                    ),
                )
            }
        }
        Err(e) => fail(
            id,
            title(id),
            format!("the service user cannot read EventLogFile: {e}"),
            "In Setup > Permission Sets, give a permission set assigned to the service user the \
             System Permission \"View Event Log Files\"",
        ),
    }
}

async fn org_wide_defaults(client: &Client, target: &Target) -> Check {
    let id = "org-wide-defaults";
    let rows = client
        .query_all::<Value>(&Soql::trusted(
            "SELECT DefaultAccountAccess, DefaultCaseAccess, DefaultContactAccess FROM Organization LIMIT 1",
        ))
        .await;
    let org = match rows {
        Ok(rows) => rows.into_iter().next().unwrap_or(Value::Null),
        Err(e) => {
            return fail(
                id,
                title(id),
                format!("cannot read the org-wide defaults: {e}"),
                "Give the service user \"View Setup and Configuration\"",
            );
        }
    };
    let mut seen = Vec::new();
    let mut open = Vec::new();
    let mut readable = Vec::new();
    for object in &target.catalog_objects {
        let level = match object.as_str() {
            // Activities have no org-wide default of their own: they follow the parent
            // record ("Controlled by Parent").
            "Task" | "Event" => {
                seen.push(format!("{object} Controlled by Parent"));
                continue;
            }
            other => org[format!("Default{other}Access")]
                .as_str()
                .unwrap_or("")
                .to_string(),
        };
        let label = match level.as_str() {
            "None" => "Private",
            "Read" => "Public Read Only",
            "Edit" => "Public Read/Write",
            "ReadEditTransfer" => "Public Read/Write/Transfer",
            "All" => "Public Full Access",
            "ControlledByParent" => "Controlled by Parent",
            "" => "unknown",
            other => other,
        };
        seen.push(format!("{object} {label}"));
        match level.as_str() {
            "Edit" | "ReadEditTransfer" | "All" => open.push(format!("{object} ({label})")),
            "Read" => readable.push(format!("{object} ({label})")),
            _ => {}
        }
    }
    let fix = |objects: &[String], to: &str| {
        format!(
            "In Setup > Sharing Settings > Organization-Wide Defaults, set {} to {to}",
            objects.join(", ")
        )
    };
    if !open.is_empty() {
        fail(
            id,
            title(id),
            format!(
                "every user can edit every record of {}: a grant could not be limited to some records",
                open.join(", ")
            ),
            fix(
                &open,
                "Private (or Public Read Only if every contractor may read them all)",
            ),
        )
    } else if !readable.is_empty() {
        warn(
            id,
            title(id),
            format!(
                "{}: every contractor with object access reads every record; record rules cannot narrow that",
                readable.join(", ")
            ),
            Some(fix(&readable, "Private")),
        )
    } else {
        ok(id, title(id), seen.join(", "))
    }
}

/// API Access Control (enabled by Salesforce Support). Not readable through REST: its sign
/// is that PermissionSet describes list "Use Any API Client" (`PermissionsUseAnyApiClient`)
/// only when it is on (UNCONFIRMED, 3P). When on, the portal's token working means the app is
/// allow-listed, unless the service user bypasses the list with that permission.
async fn api_access_control(
    client: &Client,
    me: Option<&salesforce::oauth_web::UserInfo>,
) -> Check {
    let id = "api-access-control";
    let describe = match client.describe("PermissionSet").await {
        Ok(d) => d,
        Err(e) => {
            return fail(
                id,
                title(id),
                format!("cannot describe PermissionSet: {e}"),
                "Give the service user \"View Setup and Configuration\"",
            );
        }
    };
    if describe.field("PermissionsUseAnyApiClient").is_none() {
        return ok(
            id,
            title(id),
            "off: any app the org's users approve may call the API",
        );
    }
    let bypass = match me.and_then(|m| m.user_id()) {
        Some(user_id) => user_permissions(client, &user_id, &["UseAnyApiClient"])
            .await
            .map(|(_, held)| !held.is_empty())
            .unwrap_or(false),
        None => false,
    };
    if bypass {
        fail(
            id,
            title(id),
            "on, and the portal works only because its service user has \"Use Any API Client\": \
             the portal's app is not allow-listed, and contractors' apps would not be either",
            "In Setup > Connected Apps OAuth Usage (or External Client App Manager), install and \
             allow-list the portal's app, with Policies > Permitted Users \"Admin approved users \
             are pre-authorized\"; then remove \"Use Any API Client\" from the service user",
        )
    } else {
        ok(
            id,
            title(id),
            "on, and the portal's app is allow-listed (its token works); each contractor app is pre-authorised for its own permission set",
        )
    }
}
