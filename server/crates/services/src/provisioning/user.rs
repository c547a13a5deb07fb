//! The integration user and its licences: the user (API only, on the Salesforce
//! Integration licence, with its permission set licence assigned in the same composite
//! request), and the licence step that records (or makes) that assignment.

use salesforce::composite::{CompositeRequest, ReferenceId, Subrequest};
use salesforce::{Client, Cond, SalesforceId, Soql};
use serde_json::json;

use super::StepFailure;
use super::context::Context;
use super::outputs::{LicenceMade, UserMade};
use super::records::{composite_failure, find, first_record, look_up, reference};
use crate::org_failure::not_found;

/// The integration user's profile (DESIGN.md, "What provisioning creates"), by name only in
/// messages: it is found by what it is (API only, on the Salesforce Integration licence),
/// because a standard profile's name comes back translated in the querying user's language.
const PROFILE: &str = "Minimum Access - API Only Integrations";

/// The API-only profile of the integration licence, by its attributes.
fn api_only_profile() -> Cond {
    Cond::and([
        Cond::eq("PermissionsApiUserOnly", true),
        crate::licence::profile_licence(),
    ])
}

/// The permission set licence every integration user gets.
pub(super) const LICENCE: &str = "SalesforceAPIIntegrationPsl";

pub(super) async fn licence_id(client: &Client) -> Result<SalesforceId, StepFailure> {
    find(
        client,
        "PermissionSetLicense",
        Cond::eq("DeveloperName", LICENCE),
    )
    .await?
    .ok_or_else(|| not_found("The Salesforce API Integration permission set licence"))
}

pub(super) async fn user(client: &Client, cx: &Context) -> Result<UserMade, StepFailure> {
    let username = &cx.names.username;
    let existing = look_up(client, cx, "User", Cond::eq("Username", username.as_str())).await?;
    if let Some(id) = existing {
        return Ok(UserMade {
            user_id: id.as_str().to_string(),
            username: username.clone(),
            found: true,
            ..UserMade::default()
        });
    }
    // One API call: the profile's and the licence's look-ups, the user, and its licence
    // assignment, as one composite request (all setup objects). Not all-or-none: a user
    // whose licence is refused is kept, and the licence step explains the refusal.
    let profile = reference("profile")?;
    let licence = reference("licence")?;
    let user = reference("user")?;
    let assign = reference("assign")?;
    let mut request = CompositeRequest::new(false);
    let build = |request: &mut CompositeRequest| -> salesforce::Result<()> {
        request.push(Subrequest::query(
            profile.clone(),
            &Soql::select(&["Id"])
                .from("Profile")
                .filter(api_only_profile())
                .order_by("CreatedDate", salesforce::soql::Order::Asc)
                .limit(1)
                .build()
                .map_err(|e| salesforce::Error::InvalidRequest(e.to_string()))?,
        ))?;
        request.push(Subrequest::query(
            licence.clone(),
            &Soql::select(&["Id"])
                .from("PermissionSetLicense")
                .filter(Cond::eq("DeveloperName", LICENCE))
                .build()
                .map_err(|e| salesforce::Error::InvalidRequest(e.to_string()))?,
        ))?;
        request.push(Subrequest::create(
            user.clone(),
            "User",
            &json!({
                "Username": username,
                "Email": username,
                "LastName": cx.names.last_name,
                "Alias": cx.names.alias,
                "ProfileId": profile.field("records[0].Id")?.as_str(),
                "TimeZoneSidKey": "GMT",
                "LocaleSidKey": "en_US",
                "EmailEncodingKey": "UTF-8",
                "LanguageLocaleKey": "en_US",
            }),
        )?)?;
        request.push(Subrequest::create(
            assign.clone(),
            "PermissionSetLicenseAssign",
            &json!({
                "AssigneeId": user.id().as_str(),
                "PermissionSetLicenseId": licence.field("records[0].Id")?.as_str(),
            }),
        )?)?;
        Ok(())
    };
    build(&mut request).map_err(composite_failure)?;
    let response = client.composite(&request).await?;
    first_record(&response, &profile)?.ok_or_else(|| {
        not_found(&format!(
            "The API-only profile of the Salesforce Integration licence ('{PROFILE}')"
        ))
    })?;
    let id = response
        .get(&user)
        .and_then(|r| r.created_id())
        .ok_or_else(|| match response.get(&user).and_then(|r| r.error()) {
            Some(e) => StepFailure::from(e),
            None => StepFailure {
                message: "Salesforce returned no id for the new user".into(),
                transient: true,
            },
        })?;
    let mut output = UserMade {
        user_id: id.as_str().to_string(),
        username: username.clone(),
        found: false,
        ..UserMade::default()
    };
    if let (Ok(Some(psl)), Some(assigned)) = (
        first_record(&response, &licence),
        response.get(&assign).and_then(|r| r.created_id()),
    ) {
        output.licence_id = Some(psl.as_str().to_string());
        output.licence_assignment_id = Some(assigned.as_str().to_string());
    }
    Ok(output)
}

pub(super) async fn licence(client: &Client, cx: &Context) -> Result<LicenceMade, StepFailure> {
    let user = cx.user_id()?;
    let made = cx.outputs.user();
    // The user step's composite assigned the licence: nothing to do but record it.
    if let Some(made) = made
        && let (Some(id), Some(psl)) = (&made.licence_assignment_id, &made.licence_id)
    {
        return Ok(LicenceMade {
            licence_assignment_id: id.clone(),
            licence_id: psl.clone(),
            found: true,
        });
    }
    let psl = licence_id(client).await?;
    // Look before creating unless this is certainly the first try (the user is new and
    // its composite did not get as far as the licence).
    let fresh = cx.first_attempt && made.is_some_and(|m| !m.found);
    let cond = Cond::and([
        Cond::eq("AssigneeId", &user),
        Cond::eq("PermissionSetLicenseId", &psl),
    ]);
    let existing = if fresh {
        None
    } else {
        find(client, "PermissionSetLicenseAssign", cond).await?
    };
    let (id, found) = match existing {
        Some(id) => (id, true),
        None => (
            client
                .create(
                    "PermissionSetLicenseAssign",
                    &json!({ "AssigneeId": user.as_str(), "PermissionSetLicenseId": psl.as_str() }),
                )
                .await?,
            false,
        ),
    };
    Ok(LicenceMade {
        licence_assignment_id: id.as_str().to_string(),
        licence_id: psl.as_str().to_string(),
        found,
    })
}

/// Freezes (or unfreezes) the user in Salesforce: its UserLogin, found and updated in one
/// composite request.
pub async fn set_frozen(
    salesforce: &Client,
    user_id: &SalesforceId,
    frozen: bool,
) -> Result<(), salesforce::Error> {
    let login = ReferenceId::new("login")?;
    let soql = Soql::select(&["Id"])
        .from("UserLogin")
        .filter(Cond::eq("UserId", user_id.as_str()))
        .limit(1)
        .build()?;
    let mut request = CompositeRequest::new(true);
    request.push(Subrequest::query(login.clone(), &soql))?;
    request.push(Subrequest::update(
        ReferenceId::new("freeze")?,
        "UserLogin",
        login.field("records[0].Id")?,
        &json!({ "IsFrozen": frozen }),
    )?)?;
    salesforce.composite(&request).await?.ensure_success()?;
    Ok(())
}
