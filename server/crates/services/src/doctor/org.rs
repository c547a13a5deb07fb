//! The checks of the org itself: the Integration licence and its API-only profile, the
//! Metadata deploys the provisioning makes (checked only), the secrets' REST, assignment
//! expiry, event log files, org-wide defaults and API access control.

use super::*;

/// Free seats of the Salesforce Integration user licence and the Salesforce API Integration
/// permission set licence. Found by stable keys, never by translated names
/// (`LicenseDefinitionKey` of the user licence is UNCONFIRMED; see the reference §3.1).
pub(super) async fn integration_licences(client: &Client) -> (Check, Option<String>) {
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

pub(super) async fn api_only_profile(client: &Client, licence_id: Option<&String>) -> Check {
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
pub(super) fn check_app(
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
pub(super) async fn check_only(
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
pub(super) async fn deploy_checks(client: &Client, run_as: Option<&str>) -> (Check, [Check; 2]) {
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

pub(super) async fn secrets_rest(client: &Client, target: &Target) -> Check {
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

pub(super) async fn assignment_expiry(client: &Client) -> Check {
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

pub(super) async fn event_log_files(client: &Client) -> Check {
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

pub(super) async fn org_wide_defaults(client: &Client, target: &Target) -> Check {
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
pub(super) async fn api_access_control(
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
