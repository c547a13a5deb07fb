//! The service user's checks: its permissions, the integration licences and the API-only
//! profile the portal gives each contractor's user.

use super::*;

pub(super) fn perm_field(name: &str) -> String {
    format!("Permissions{name}")
}

/// The service user's effective user permissions: its profile's and its permission sets'.
pub(super) async fn user_permissions(
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

pub(super) async fn service_user_permissions(
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
