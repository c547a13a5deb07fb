//! The rules of the provisioning objects, run before and after an insert: licence seats,
//! unique usernames, permission set licences, object and field permission dependencies,
//! permission set assignments.

use super::*;

pub(super) fn active_users_of_license(data: &OrgData, license_id: &str) -> usize {
    data.table("User")
        .filter(|(_, u)| bool_of(u, "IsActive"))
        .filter(|(_, u)| {
            str_of(u, "ProfileId")
                .and_then(|p| data.get("Profile", p))
                .and_then(|p| str_of(p, "UserLicenseId"))
                == Some(license_id)
        })
        .count()
}

pub(super) fn license_of_profile<'d>(
    data: &'d OrgData,
    profile_id: &str,
) -> Option<(&'d str, &'d Record)> {
    let license_id = data
        .get("Profile", profile_id)
        .and_then(|p| str_of(p, "UserLicenseId"))?;
    data.get("UserLicense", license_id).map(|l| (license_id, l))
}

pub(super) fn check_license_seat(data: &OrgData, profile_id: &str) -> SfResult<()> {
    if let Some((license_id, license)) = license_of_profile(data, profile_id) {
        let total = license
            .get("TotalLicenses")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if active_users_of_license(data, license_id) as i64 >= total {
            return Err(SfError::bad_request(
                "LICENSE_LIMIT_EXCEEDED",
                format!(
                    "License Limit Exceeded: no more {} licenses are available (all {total} are in use)",
                    str_of(license, "Name").unwrap_or("user")
                ),
            ));
        }
    }
    Ok(())
}

pub(super) fn validate_username(
    data: &OrgData,
    username: &str,
    except: Option<&str>,
) -> SfResult<String> {
    let lower = username.to_ascii_lowercase();
    if !valid_email(&lower) {
        return Err(SfError::bad_request(
            "INVALID_NEW_VALUE",
            format!("Username: invalid username: {}. Usernames must be in the form of an email address (for example, john@acme.com).", truncate(username, 80)),
        )
        .with_fields(["Username"]));
    }
    if let Some((id, _)) = data.find_by("User", "Username", &lower)
        && Some(id.as_str()) != except
    {
        return Err(SfError::bad_request(
                "DUPLICATE_USERNAME",
                "Duplicate Username.<br>The username already exists in this or another Salesforce organization. Usernames must be unique across all Salesforce organizations. To resolve, use a different username (it doesn't need to match the user's email address).",
            )
            .with_fields(["Username"]));
    }
    Ok(lower)
}

pub(super) fn permission_set_license_of_user(data: &OrgData, user_id: &str, psl_id: &str) -> bool {
    data.table("PermissionSetLicenseAssign").any(|(_, a)| {
        str_of(a, "AssigneeId") == Some(user_id)
            && str_of(a, "PermissionSetLicenseId") == Some(psl_id)
    })
}

/// The permission set licence integration users need for standard-object access.
pub(super) fn integration_psl(data: &OrgData) -> Option<&str> {
    data.find_by(
        "PermissionSetLicense",
        "DeveloperName",
        "SalesforceAPIIntegrationPsl",
    )
    .map(|(id, _)| id.as_str())
}

pub(super) fn is_integration_user(data: &OrgData, user_id: &str) -> bool {
    data.get("User", user_id)
        .and_then(|u| str_of(u, "ProfileId"))
        .and_then(|p| license_of_profile(data, p))
        .and_then(|(_, l)| str_of(l, "LicenseDefinitionKey"))
        == Some(crate::seed::INTEGRATION_LICENSE_KEY)
}

pub(super) fn object_permission_names(op: &Record) -> Vec<&'static str> {
    let pairs = [
        ("PermissionsRead", "Read"),
        ("PermissionsCreate", "Create"),
        ("PermissionsEdit", "Edit"),
        ("PermissionsDelete", "Delete"),
        ("PermissionsViewAllRecords", "View All"),
        ("PermissionsModifyAllRecords", "Modify All"),
    ];
    pairs
        .iter()
        .filter(|(field, _)| bool_of(op, field))
        .map(|(_, name)| *name)
        .collect()
}

pub(super) fn check_object_permission_dependencies(record: &Record) -> SfResult<()> {
    let object = str_of(record, "SobjectType").unwrap_or("");
    let plural = schema::object_def(object)
        .map(|d| d.label_plural)
        .unwrap_or(object);
    let has = |f: &str| bool_of(record, f);
    type Rule<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
    let rules: [Rule; 5] = [
        (
            "PermissionsCreate",
            "Create",
            &[("PermissionsRead", "Read")],
        ),
        ("PermissionsEdit", "Edit", &[("PermissionsRead", "Read")]),
        (
            "PermissionsDelete",
            "Delete",
            &[("PermissionsRead", "Read"), ("PermissionsEdit", "Edit")],
        ),
        (
            "PermissionsViewAllRecords",
            "View All",
            &[("PermissionsRead", "Read")],
        ),
        (
            "PermissionsModifyAllRecords",
            "Modify All",
            &[
                ("PermissionsRead", "Read"),
                ("PermissionsEdit", "Edit"),
                ("PermissionsDelete", "Delete"),
                ("PermissionsViewAllRecords", "View All"),
            ],
        ),
    ];
    for (field, name, needs) in rules {
        if !has(field) {
            continue;
        }
        let missing: Vec<String> = needs
            .iter()
            .filter(|(f, _)| !has(f))
            .map(|(_, n)| format!("{n} {plural}"))
            .collect();
        if !missing.is_empty() {
            return Err(integrity(format!(
                "Permission {name} {plural} depends on permission(s): {}",
                missing.join(", ")
            )));
        }
    }
    Ok(())
}

pub(super) fn check_field_permission(data: &OrgData, record: &Record) -> SfResult<()> {
    let object = str_of(record, "SobjectType").unwrap_or("");
    let field_path = str_of(record, "Field").unwrap_or("");
    let Some((prefix, field_name)) = field_path.split_once('.') else {
        return Err(integrity(format!(
            "Field: bad value {field_path}: the field must be prefixed with the SobjectType, e.g. {object}.Name"
        ))
        .with_fields(["Field"]));
    };
    if !prefix.eq_ignore_ascii_case(object) {
        return Err(integrity(format!(
            "Field: {field_path} does not belong to SobjectType {object}"
        ))
        .with_fields(["Field"]));
    }
    let def = schema::object_def(object).ok_or_else(|| integrity("SobjectType: bad value"))?;
    let field = def.field(field_name).ok_or_else(|| {
        SfError::bad_request(
            "INVALID_FIELD",
            format!("No such column '{field_name}' on entity '{object}'"),
        )
        .with_fields(["Field"])
    })?;
    if !field.permissionable {
        return Err(SfError::bad_request(
            "INVALID_FIELD",
            format!("Field {field_path} is not permissionable: its access is controlled by the object's permissions"),
        )
        .with_fields(["Field"]));
    }
    if !bool_of(record, "PermissionsRead") {
        return Err(integrity(
            "A FieldPermissions record must have at least PermissionsRead set to true",
        )
        .with_fields(["PermissionsRead"]));
    }
    if bool_of(record, "PermissionsEdit") && field.access == FieldAccess::ReadOnly {
        return Err(integrity(format!(
            "Field {field_path} is read-only and can only be given Read access"
        ))
        .with_fields(["PermissionsEdit"]));
    }
    let _ = data;
    Ok(())
}

/// Object-specific rules before a record is stored.
pub(super) fn before_insert(
    data: &OrgData,
    actor: &Actor<'_>,
    def: &ObjectDef,
    record: &mut Record,
) -> SfResult<()> {
    match def.name {
        "User" => {
            let username = validate_username(data, str_of(record, "Username").unwrap_or(""), None)?;
            record.insert("Username".into(), json!(username));
            if let Some(nickname) = str_of(record, "CommunityNickname") {
                if let Some((id, _)) = data.find_by("User", "CommunityNickname", nickname) {
                    return Err(duplicate_value("CommunityNickname", id));
                }
            } else {
                let base = username.split('@').next().unwrap_or("user").to_string();
                let mut nickname = base.clone();
                let mut n = 1;
                while data
                    .find_by("User", "CommunityNickname", &nickname)
                    .is_some()
                {
                    n += 1;
                    nickname = format!("{base}{n}");
                }
                record.insert("CommunityNickname".into(), json!(nickname));
            }
            let profile = str_of(record, "ProfileId").unwrap_or("").to_string();
            if bool_of(record, "IsActive") {
                check_license_seat(data, &profile)?;
            }
            let user_type = data
                .get("Profile", &profile)
                .and_then(|p| str_of(p, "UserType"))
                .unwrap_or("Standard");
            record.insert("UserType".into(), json!(user_type));
        }
        "PermissionSet" => {
            let name = str_of(record, "Name").unwrap_or("");
            let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.ends_with('_')
                && !name.contains("__");
            if !valid {
                return Err(SfError::bad_request(
                    "INVALID_FIELD",
                    format!("Name: The API name '{name}' can only contain underscores and alphanumeric characters. It must be unique, begin with a letter, not include spaces, not end with an underscore, and not contain two consecutive underscores."),
                )
                .with_fields(["Name"]));
            }
            if let Some((id, _)) = data.find_by("PermissionSet", "Name", name) {
                return Err(duplicate_value("Name", id));
            }
            record.insert("IsOwnedByProfile".into(), json!(false));
            record.insert("IsCustom".into(), json!(true));
            record.insert("Type".into(), json!("Regular"));
        }
        "ObjectPermissions" => {
            let parent = str_of(record, "ParentId").unwrap_or("");
            let object = str_of(record, "SobjectType").unwrap_or("");
            // Activities are not in ObjectPermissions' SobjectType picklist: their access
            // follows the parent record and the "Edit Tasks" user permission.
            if matches!(object, "Task" | "Event") {
                return Err(SfError::bad_request(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    format!("SobjectType: bad value for restricted picklist field: {object}"),
                )
                .with_fields(["SobjectType"]));
            }
            check_object_permission_dependencies(record)?;
            if let Some((id, _)) = data.table("ObjectPermissions").find(|(_, o)| {
                str_of(o, "ParentId") == Some(parent) && str_of(o, "SobjectType") == Some(object)
            }) {
                return Err(duplicate_value("SobjectType", id));
            }
            if object_permission_names(record).is_empty() {
                return Err(integrity(
                    "An ObjectPermissions record must grant at least Read",
                ));
            }
        }
        "FieldPermissions" => {
            check_field_permission(data, record)?;
            let parent = str_of(record, "ParentId").unwrap_or("");
            let field = str_of(record, "Field").unwrap_or("");
            if let Some((id, _)) = data.table("FieldPermissions").find(|(_, f)| {
                str_of(f, "ParentId") == Some(parent)
                    && str_of(f, "Field").is_some_and(|x| x.eq_ignore_ascii_case(field))
            }) {
                return Err(duplicate_value("Field", id));
            }
        }
        "PermissionSetLicenseAssign" => {
            let assignee = str_of(record, "AssigneeId").unwrap_or("");
            let psl = str_of(record, "PermissionSetLicenseId").unwrap_or("");
            if permission_set_license_of_user(data, assignee, psl) {
                let id = data
                    .table("PermissionSetLicenseAssign")
                    .find(|(_, a)| {
                        str_of(a, "AssigneeId") == Some(assignee)
                            && str_of(a, "PermissionSetLicenseId") == Some(psl)
                    })
                    .map(|(id, _)| id.clone())
                    .unwrap_or_default();
                return Err(duplicate_value("PermissionSetLicenseId", &id));
            }
            let license = data.get("PermissionSetLicense", psl);
            let for_integrations =
                license.is_some_and(|l| bool_of(l, "IsAvailableForIntegrations"));
            if for_integrations && !is_integration_user(data, assignee) {
                return Err(integrity(
                    "This permission set license can only be assigned to users with the Salesforce Integration user license",
                ));
            }
            if let Some(license) = license {
                let total = license
                    .get("TotalLicenses")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                let used = data
                    .table("PermissionSetLicenseAssign")
                    .filter(|(_, a)| str_of(a, "PermissionSetLicenseId") == Some(psl))
                    .count() as i64;
                if used >= total {
                    return Err(SfError::bad_request(
                        "LICENSE_LIMIT_EXCEEDED",
                        format!(
                            "License Limit Exceeded: all {total} {} permission set licenses are assigned",
                            str_of(license, "MasterLabel").unwrap_or("")
                        ),
                    ));
                }
            }
        }
        "PermissionSetAssignment" => {
            let assignee = str_of(record, "AssigneeId").unwrap_or("").to_string();
            let ps_id = str_of(record, "PermissionSetId").unwrap_or("").to_string();
            if let Some((id, _)) = data.table("PermissionSetAssignment").find(|(_, a)| {
                str_of(a, "AssigneeId") == Some(assignee.as_str())
                    && str_of(a, "PermissionSetId") == Some(ps_id.as_str())
            }) {
                return Err(duplicate_value("PermissionSetId", id));
            }
            // UNCONFIRMED: the error a real org gives when the expiration setting is off.
            if !data.settings.permset_assignment_expiration
                && str_of(record, "ExpirationDate").is_some()
            {
                return Err(integrity(
                    "ExpirationDate: permission set assignment expiration is not enabled in this org",
                )
                .with_fields(["ExpirationDate"]));
            }
            if let Some(expires) = str_of(record, "ExpirationDate").and_then(parse_sf_datetime)
                && expires <= actor.now
            {
                return Err(
                    integrity("ExpirationDate: the expiration date must be in the future")
                        .with_fields(["ExpirationDate"]),
                );
            }
            check_assignment_license(data, &assignee, &ps_id)?;
        }
        "AccountShare" | "ContactShare" | "CaseShare" => {
            let parent = def.name.trim_end_matches("Share");
            let level_field = format!("{parent}AccessLevel");
            let record_field = format!("{parent}Id");
            let level = str_of(record, &level_field).unwrap_or("").to_string();
            if level == "All" {
                return Err(integrity(format!(
                    "{level_field}: All isn't valid for creating a share"
                ))
                .with_fields([level_field.as_str()]));
            }
            if str_of(record, "RowCause").is_some_and(|c| c != "Manual") {
                return Err(
                    integrity("RowCause: only Manual is permitted when creating a share")
                        .with_fields(["RowCause"]),
                );
            }
            record.insert("RowCause".into(), json!("Manual"));
            let record_id = str_of(record, &record_field).unwrap_or("").to_string();
            let grantee = str_of(record, "UserOrGroupId").unwrap_or("").to_string();
            check_share_above_default(data, parent, &level)?;
            if let Some(user) = data.get("User", &grantee)
                && !bool_of(user, "IsActive")
            {
                return Err(SfError::bad_request(
                    "INACTIVE_OWNER_OR_USER",
                    "operation performed with inactive user",
                )
                .with_fields(["UserOrGroupId"]));
            }
            let shared = data.get(parent, &record_id);
            if shared.and_then(|c| str_of(c, "OwnerId")) == Some(grantee.as_str()) {
                return Err(integrity(format!(
                    "The user or group already owns this {}; a share adds nothing",
                    parent.to_ascii_lowercase()
                )));
            }
            // Only the owner, or someone with full access, may share a record.
            if !actor.access.modify_all_data() {
                let owner = shared.and_then(|c| str_of(c, "OwnerId")).unwrap_or("");
                if !actor.access.is_or_contains(owner) {
                    return Err(SfError::insufficient_access());
                }
            }
            if let Some((id, _)) = data.table(def.name).find(|(_, s)| {
                str_of(s, &record_field) == Some(record_id.as_str())
                    && str_of(s, "UserOrGroupId") == Some(grantee.as_str())
                    && str_of(s, "RowCause") == Some("Manual")
            }) {
                return Err(duplicate_value("UserOrGroupId", id));
            }
        }
        "Group" => {
            let group_type = str_of(record, "Type").unwrap_or("");
            if group_type != "Regular" && group_type != "Queue" {
                return Err(integrity(
                    "Type: when you create a group, its type must be Regular or Queue",
                )
                .with_fields(["Type"]));
            }
            let developer_name = match str_of(record, "DeveloperName") {
                Some(name) => name.to_string(),
                None => str_of(record, "Name")
                    .unwrap_or("Group")
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect(),
            };
            if let Some((id, _)) = data.find_by("Group", "DeveloperName", &developer_name) {
                return Err(duplicate_value("DeveloperName", id));
            }
            record.insert("DeveloperName".into(), json!(developer_name));
        }
        "GroupMember" => {
            let group = str_of(record, "GroupId").unwrap_or("");
            let member = str_of(record, "UserOrGroupId").unwrap_or("");
            if group == member {
                return Err(integrity("A group cannot be a member of itself"));
            }
            if let Some((id, _)) = data.table("GroupMember").find(|(_, m)| {
                str_of(m, "GroupId") == Some(group) && str_of(m, "UserOrGroupId") == Some(member)
            }) {
                return Err(duplicate_value("UserOrGroupId", id));
            }
        }
        "Case" => {
            let number = data.next_case_number.max(1000) + 1;
            record.insert("CaseNumber".into(), json!(format!("{number:08}")));
        }
        _ => {}
    }
    if let Some(owner) = str_of(record, "OwnerId")
        && let Some(user) = data.get("User", owner)
        && !bool_of(user, "IsActive")
    {
        return Err(SfError::bad_request(
            "INACTIVE_OWNER_OR_USER",
            "operation performed with inactive user",
        )
        .with_fields(["OwnerId"]));
    }
    Ok(())
}

/// Permission set licence rules for assigning a permission set to a user (reference §3.1).
pub(super) fn check_assignment_license(
    data: &OrgData,
    assignee: &str,
    ps_id: &str,
) -> SfResult<()> {
    let Some(ps) = data.get("PermissionSet", ps_id) else {
        return Ok(());
    };
    if bool_of(ps, "IsOwnedByProfile") {
        return Err(integrity(
            "You can't assign a permission set that is owned by a profile",
        ));
    }
    let user_license = data
        .get("User", assignee)
        .and_then(|u| str_of(u, "ProfileId"))
        .and_then(|p| license_of_profile(data, p));
    if let Some(license_id) = str_of(ps, "LicenseId") {
        if license_id.starts_with("0PL") {
            if !permission_set_license_of_user(data, assignee, license_id) {
                let label = data
                    .get("PermissionSetLicense", license_id)
                    .and_then(|l| str_of(l, "MasterLabel"))
                    .unwrap_or("required");
                return Err(integrity(format!(
                    "The user doesn't have the {label} permission set license this permission set requires. Assign the permission set license first."
                )));
            }
        } else if user_license.map(|(id, _)| id) != Some(license_id) {
            return Err(integrity(
                "The permission set's user license doesn't match the user's profile license",
            ));
        }
    }
    // Integration users may only receive standard-object permissions with the API
    // Integration permission set licence.
    let is_integration = user_license.and_then(|(_, l)| str_of(l, "LicenseDefinitionKey"))
        == Some(crate::seed::INTEGRATION_LICENSE_KEY);
    if is_integration {
        let grants_objects: Vec<String> = data
            .table("ObjectPermissions")
            .filter(|(_, op)| str_of(op, "ParentId") == Some(ps_id))
            .flat_map(|(_, op)| {
                let object = str_of(op, "SobjectType").unwrap_or("").to_string();
                object_permission_names(op).into_iter().map(move |p| {
                    format!(
                        "{p} {}",
                        schema::object_def(&object)
                            .map(|d| d.label_plural)
                            .unwrap_or("")
                    )
                })
            })
            .collect();
        let has_psl = integration_psl(data)
            .is_some_and(|psl| permission_set_license_of_user(data, assignee, psl));
        if let Some(first) = grants_objects.first()
            && !has_psl
        {
            return Err(integrity(format!(
                "The user license doesn't allow the permission: {first}"
            )));
        }
    }
    Ok(())
}

pub(super) fn after_insert(
    data: &mut OrgData,
    actor: &Actor<'_>,
    def: &ObjectDef,
    id: &SalesforceId,
) {
    match def.name {
        "User" => {
            // Every user has a UserLogin row (freeze/unfreeze).
            let login_id = data.new_id("0Yw");
            let now = sf_datetime(actor.now);
            let mut login = Record::new();
            for (k, v) in [
                ("Id", json!(login_id.as_str())),
                ("UserId", json!(id.as_str())),
                ("IsFrozen", json!(false)),
                ("IsPasswordLocked", json!(false)),
                ("IsDeleted", json!(false)),
                ("CreatedDate", json!(now)),
                ("CreatedById", json!(actor.access.user_id)),
                ("LastModifiedDate", json!(now)),
                ("LastModifiedById", json!(actor.access.user_id)),
                ("SystemModstamp", json!(now)),
            ] {
                login.insert(k.into(), v);
            }
            data.insert("UserLogin", login_id.as_str(), login);
        }
        "Case" => {
            data.next_case_number = data.next_case_number.max(1000) + 1;
        }
        _ => {}
    }
}
