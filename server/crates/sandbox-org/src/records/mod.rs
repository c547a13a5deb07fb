//! Creating, reading, updating and deleting records, with the validation Salesforce applies:
//! unknown and read-only fields, field-level security, types, lengths, restricted
//! picklists, ids and references, required fields, sharing, and the rules of the
//! provisioning objects (licences, permission set licences, permission dependencies,
//! manual shares, unique usernames).

use chrono::{DateTime, Utc};
use salesforce::SalesforceId;
use serde_json::{Map, Value, json};

use crate::access::{Access, Level, RecordSharing, assignment_active};
use crate::error::{SfError, SfResult};
use crate::schema::{self, Access as FieldAccess, FieldDef, FieldType, Kind, ObjectDef};
use crate::store::{OrgData, Record, parse_sf_datetime, sf_datetime};

mod triggers;
mod validate;

use triggers::*;
use validate::*;
pub use validate::{org_wide_default, valid_email};

/// Who is acting, and when.
pub struct Actor<'a> {
    pub access: &'a Access,
    pub now: DateTime<Utc>,
}

fn str_of<'a>(record: &'a Record, field: &str) -> Option<&'a str> {
    record.get(field).and_then(Value::as_str)
}

fn bool_of(record: &Record, field: &str) -> bool {
    record.get(field).and_then(Value::as_bool).unwrap_or(false)
}

/// Resolves an object for the REST sObject resources: unknown objects are NOT_FOUND.
pub fn object_for_rest(name: &str) -> SfResult<&'static ObjectDef> {
    schema::object_def(name).ok_or_else(SfError::not_found)
}

/// Parses an id given in a URL or body for `def` (MALFORMED_ID for bad ids and ids of
/// another object).
pub fn parse_record_id(def: &ObjectDef, raw: &str) -> SfResult<SalesforceId> {
    let malformed = || {
        SfError::bad_request(
            "MALFORMED_ID",
            format!("{} ID: id value of incorrect type: {raw}", def.label),
        )
        .with_fields(["Id"])
    };
    let id = SalesforceId::parse(raw).map_err(|_| malformed())?;
    if id.key_prefix() != def.key_prefix {
        return Err(malformed());
    }
    Ok(id)
}

/// The record as the REST API returns it: `attributes` first, then every field the user may
/// see (or only `fields`, when given).
pub fn render(
    def: &ObjectDef,
    id: &str,
    record: &Record,
    access: &Access,
    fields: Option<&[&FieldDef]>,
    version: &str,
) -> Value {
    let mut out = Map::new();
    out.insert(
        "attributes".into(),
        json!({ "type": def.name, "url": format!("/services/data/v{version}/sobjects/{}/{id}", def.name) }),
    );
    match fields {
        Some(fields) => {
            for field in fields {
                out.insert(
                    field.name.into(),
                    record.get(field.name).cloned().unwrap_or(Value::Null),
                );
            }
        }
        None => {
            for field in &def.fields {
                if access.field_readable(def, field) {
                    out.insert(
                        field.name.into(),
                        record.get(field.name).cloned().unwrap_or(Value::Null),
                    );
                }
            }
        }
    }
    Value::Object(out)
}

/// Reads one record. Records the user cannot see are NOT_FOUND, as are deleted ones.
pub fn retrieve<'d>(
    data: &'d OrgData,
    actor: &Actor<'_>,
    def: &ObjectDef,
    raw_id: &str,
) -> SfResult<(SalesforceId, &'d Record)> {
    if !actor.access.can_read_object(def) {
        return Err(SfError::not_found());
    }
    let id = parse_record_id(def, raw_id)?;
    let record = data
        .get(def.name, id.as_str())
        .ok_or_else(SfError::not_found)?;
    if bool_of(record, "IsDeleted") {
        return Err(SfError::new(
            axum::http::StatusCode::NOT_FOUND,
            "ENTITY_IS_DELETED",
            "entity is deleted",
        ));
    }
    let mut sharing = RecordSharing::new(data, actor.access);
    if sharing.level(def, id.as_str(), record) == Level::None {
        return Err(SfError::not_found());
    }
    Ok((id, record))
}

/// Resolves `?fields=A,B` against FLS: an unknown or hidden field is INVALID_FIELD.
pub fn select_fields<'a>(
    def: &'a ObjectDef,
    access: &Access,
    list: &str,
) -> SfResult<Vec<&'a FieldDef>> {
    let mut fields = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match def.field(name) {
            Some(field) if access.field_readable(def, field) => fields.push(field),
            _ => {
                return Err(SfError::bad_request(
                    "INVALID_FIELD",
                    format!(
                        "No such column '{name}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
                        def.name
                    ),
                ));
            }
        }
    }
    Ok(fields)
}

/// Creates a record and returns its id.
pub fn create(
    data: &mut OrgData,
    actor: &Actor<'_>,
    def: &'static ObjectDef,
    body: &Map<String, Value>,
) -> SfResult<SalesforceId> {
    if !def.createable {
        return Err(SfError::bad_request(
            "INVALID_TYPE_FOR_OPERATION",
            format!("entity type cannot be inserted: {}", def.name),
        ));
    }
    let allowed = match def.kind {
        Kind::Data => actor.access.object(def).create,
        Kind::Setup => actor.access.can_write_setup(def),
    };
    if !allowed {
        return Err(no_object_access(def, "create"));
    }
    let values = validate_body(data, actor, def, body, Op::Create)?;
    let mut record = Record::new();
    for (name, value) in values {
        record.insert(name.to_string(), value);
    }
    // Defaults Salesforce fills in.
    for field in &def.fields {
        if record.contains_key(field.name) {
            continue;
        }
        match &field.field_type {
            FieldType::Boolean { default }
                if field.access != FieldAccess::ReadOnly || field.name == "IsDeleted" =>
            {
                record.insert(field.name.into(), json!(default));
            }
            FieldType::Picklist {
                default: Some(default),
                ..
            } => {
                record.insert(field.name.into(), json!(default));
            }
            _ => {}
        }
    }
    if def.field("OwnerId").is_some() && !record.contains_key("OwnerId") {
        record.insert("OwnerId".into(), json!(actor.access.user_id));
    }
    let missing: Vec<&str> = def
        .fields
        .iter()
        .filter(|f| f.required && record.get(f.name).is_none_or(Value::is_null))
        .map(|f| f.name)
        .collect();
    if !missing.is_empty() {
        return Err(SfError::bad_request(
            "REQUIRED_FIELD_MISSING",
            format!("Required fields are missing: [{}]", missing.join(", ")),
        )
        .with_fields(missing.iter().map(|s| s.to_string())));
    }

    before_insert(data, actor, def, &mut record)?;

    let id = data.new_id(def.key_prefix);
    let now = sf_datetime(actor.now);
    record.insert("Id".into(), json!(id.as_str()));
    record.insert("IsDeleted".into(), json!(false));
    record.insert("CreatedDate".into(), json!(now));
    record.insert("CreatedById".into(), json!(actor.access.user_id));
    record.insert("LastModifiedDate".into(), json!(now));
    record.insert("LastModifiedById".into(), json!(actor.access.user_id));
    record.insert("SystemModstamp".into(), json!(now));
    derive_fields(def, &mut record, actor.now);
    data.insert(def.name, id.as_str(), record);
    after_insert(data, actor, def, &id);
    Ok(id)
}

/// Fields computed from others (names, closed flags).
pub(crate) fn derive_fields(def: &ObjectDef, record: &mut Record, now: DateTime<Utc>) {
    match def.name {
        "User" | "Contact" => {
            let first = str_of(record, "FirstName").unwrap_or("").trim().to_string();
            let last = str_of(record, "LastName").unwrap_or("").trim().to_string();
            let name = if first.is_empty() {
                last
            } else {
                format!("{first} {last}")
            };
            record.insert("Name".into(), json!(name));
        }
        "Case" => {
            let closed = str_of(record, "Status") == Some("Closed");
            let was_closed = bool_of(record, "IsClosed");
            record.insert("IsClosed".into(), json!(closed));
            if closed && !was_closed {
                record.insert("ClosedDate".into(), json!(sf_datetime(now)));
            } else if !closed {
                record.insert("ClosedDate".into(), Value::Null);
            }
        }
        "Task" => {
            let closed = str_of(record, "Status") == Some("Completed");
            record.insert("IsClosed".into(), json!(closed));
        }
        _ => {}
    }
}

/// Updates a record.
pub fn update(
    data: &mut OrgData,
    actor: &Actor<'_>,
    def: &'static ObjectDef,
    raw_id: &str,
    body: &Map<String, Value>,
) -> SfResult<SalesforceId> {
    if !def.updateable {
        return Err(SfError::bad_request(
            "INVALID_TYPE_FOR_OPERATION",
            format!("entity type cannot be updated: {}", def.name),
        ));
    }
    let id = parse_record_id(def, raw_id)?;
    let existing = data
        .get(def.name, id.as_str())
        .ok_or_else(SfError::not_found)?;
    if bool_of(existing, "IsDeleted") {
        return Err(SfError::bad_request(
            "ENTITY_IS_DELETED",
            "entity is deleted",
        ));
    }
    let level = RecordSharing::new(data, actor.access).level(def, id.as_str(), existing);
    if level == Level::None {
        return Err(SfError::not_found());
    }
    let allowed = match def.kind {
        Kind::Data => actor.access.object(def).edit && level >= Level::Edit,
        Kind::Setup => level >= Level::Edit || actor.access.can_write_setup(def),
    };
    if !allowed {
        return Err(SfError::insufficient_access());
    }
    let values = validate_body(data, actor, def, body, Op::Update)?;
    let mut record = existing.clone();
    for (name, value) in values {
        record.insert(name.to_string(), value);
    }
    before_update(data, actor, def, id.as_str(), existing, &mut record)?;
    if def.name == "FieldPermissions" && !bool_of(&record, "PermissionsRead") {
        // "A FieldPermissions record must have at minimum PermissionsRead set to true, or
        // it will be deleted."
        data.remove(def.name, id.as_str());
        return Ok(id);
    }
    let now = sf_datetime(actor.now);
    record.insert("LastModifiedDate".into(), json!(now));
    record.insert("LastModifiedById".into(), json!(actor.access.user_id));
    record.insert("SystemModstamp".into(), json!(now));
    derive_fields(def, &mut record, actor.now);
    data.insert(def.name, id.as_str(), record);
    Ok(id)
}

fn before_update(
    data: &OrgData,
    actor: &Actor<'_>,
    def: &ObjectDef,
    id: &str,
    old: &Record,
    new: &mut Record,
) -> SfResult<()> {
    match def.name {
        "User" => {
            if str_of(old, "Username") != str_of(new, "Username") {
                let username =
                    validate_username(data, str_of(new, "Username").unwrap_or(""), Some(id))?;
                new.insert("Username".into(), json!(username));
            }
            let reactivating = !bool_of(old, "IsActive") && bool_of(new, "IsActive");
            let new_profile = str_of(new, "ProfileId").unwrap_or("").to_string();
            let profile_changed = str_of(old, "ProfileId") != Some(new_profile.as_str());
            if reactivating || (profile_changed && bool_of(new, "IsActive")) {
                let old_license = str_of(old, "ProfileId")
                    .and_then(|p| license_of_profile(data, p))
                    .map(|(id, _)| id);
                let new_license = license_of_profile(data, &new_profile).map(|(id, _)| id);
                if reactivating || old_license != new_license {
                    check_license_seat(data, &new_profile)?;
                }
            }
            if id == actor.access.user_id && !bool_of(new, "IsActive") {
                return Err(integrity("You can't deactivate your own user"));
            }
        }
        "ObjectPermissions" => check_object_permission_dependencies(new)?,
        "FieldPermissions" if bool_of(new, "PermissionsRead") => {
            check_field_permission(data, new)?;
        }
        "AccountShare" | "ContactShare" | "CaseShare" => {
            let parent = def.name.trim_end_matches("Share");
            let level_field = format!("{parent}AccessLevel");
            let level = str_of(new, &level_field).unwrap_or("");
            if level == "All" {
                return Err(integrity(format!(
                    "{level_field}: All isn't valid for a manual share"
                ))
                .with_fields([level_field.as_str()]));
            }
            if str_of(old, &level_field) != Some(level) {
                check_share_above_default(data, parent, level)?;
            }
        }
        "PermissionSetAssignment" => {
            if let Some(expires) = str_of(new, "ExpirationDate").and_then(parse_sf_datetime)
                && expires <= actor.now
                && str_of(old, "ExpirationDate") != str_of(new, "ExpirationDate")
            {
                return Err(
                    integrity("ExpirationDate: the expiration date must be in the future")
                        .with_fields(["ExpirationDate"]),
                );
            }
        }
        _ => {}
    }
    if str_of(old, "OwnerId") != str_of(new, "OwnerId")
        && let Some(owner) = str_of(new, "OwnerId")
    {
        if let Some(user) = data.get("User", owner)
            && !bool_of(user, "IsActive")
        {
            return Err(SfError::bad_request(
                "INACTIVE_OWNER_OR_USER",
                "operation performed with inactive user",
            )
            .with_fields(["OwnerId"]));
        }
        // Transferring needs full access to the record (owner or Modify All).
        let level = RecordSharing::new(data, actor.access).level(def, id, old);
        if level < Level::All && !actor.access.has("TransferAnyEntity") {
            return Err(SfError::insufficient_access());
        }
    }
    Ok(())
}

/// Deletes a record (business records go to the recycle bin: `IsDeleted = true`).
pub fn delete(
    data: &mut OrgData,
    actor: &Actor<'_>,
    def: &'static ObjectDef,
    raw_id: &str,
) -> SfResult<SalesforceId> {
    if !def.deletable {
        return Err(SfError::bad_request(
            "INVALID_TYPE_FOR_OPERATION",
            format!("entity type cannot be deleted: {}", def.name),
        ));
    }
    let id = parse_record_id(def, raw_id)?;
    let existing = data
        .get(def.name, id.as_str())
        .ok_or_else(SfError::not_found)?;
    if bool_of(existing, "IsDeleted") {
        return Err(SfError::bad_request(
            "ENTITY_IS_DELETED",
            "entity is deleted",
        ));
    }
    let level = RecordSharing::new(data, actor.access).level(def, id.as_str(), existing);
    if level == Level::None {
        return Err(SfError::not_found());
    }
    let allowed = match def.kind {
        Kind::Data => actor.access.object(def).delete && level >= Level::All,
        Kind::Setup => actor.access.can_write_setup(def) && level >= Level::Edit,
    };
    if !allowed {
        return Err(SfError::insufficient_access());
    }
    match def.name {
        "PermissionSet" => {
            if bool_of(existing, "IsOwnedByProfile") {
                return Err(SfError::bad_request(
                    "DELETE_FAILED",
                    "A profile's permission set can't be deleted",
                ));
            }
            if data
                .table("PermissionSetAssignment")
                .any(|(_, a)| str_of(a, "PermissionSetId") == Some(id.as_str()))
            {
                return Err(SfError::bad_request(
                    "DELETE_FAILED",
                    "This permission set is assigned to users; remove the assignments first",
                ));
            }
            cascade(
                data,
                &["ObjectPermissions", "FieldPermissions"],
                "ParentId",
                id.as_str(),
            );
        }
        "Group" => {
            cascade(data, &["GroupMember"], "GroupId", id.as_str());
            cascade(
                data,
                &["GroupMember", "AccountShare", "ContactShare", "CaseShare"],
                "UserOrGroupId",
                id.as_str(),
            );
        }
        "Case" => cascade(data, &["CaseShare"], "CaseId", id.as_str()),
        "Account" => cascade(data, &["AccountShare"], "AccountId", id.as_str()),
        "Contact" => cascade(data, &["ContactShare"], "ContactId", id.as_str()),
        _ => {}
    }
    if def.kind == Kind::Data {
        if let Some(record) = data.get_mut(def.name, id.as_str()) {
            record.insert("IsDeleted".into(), json!(true));
            record.insert("SystemModstamp".into(), json!(sf_datetime(actor.now)));
        }
    } else {
        data.remove(def.name, id.as_str());
    }
    Ok(id)
}

fn cascade(data: &mut OrgData, objects: &[&str], field: &str, id: &str) {
    for object in objects {
        let ids: Vec<String> = data
            .table(object)
            .filter(|(_, r)| str_of(r, field) == Some(id))
            .map(|(rid, _)| rid.clone())
            .collect();
        for rid in ids {
            data.remove(object, &rid);
        }
    }
}

/// Upsert by external id (`Id` or an external-id field): create when no record matches,
/// update when one does, 300 when several do.
pub enum UpsertOutcome {
    Created(SalesforceId),
    Updated(SalesforceId),
}

pub fn upsert(
    data: &mut OrgData,
    actor: &Actor<'_>,
    def: &'static ObjectDef,
    field_name: &str,
    value: &str,
    body: &Map<String, Value>,
) -> SfResult<UpsertOutcome> {
    if field_name.eq_ignore_ascii_case("Id") {
        return update(data, actor, def, value, body).map(UpsertOutcome::Updated);
    }
    let field = def
        .field(field_name)
        .filter(|f| f.external_id)
        .ok_or_else(|| {
            SfError::new(
                axum::http::StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!(
                    "Provided external ID field does not exist or is not accessible: {field_name}"
                ),
            )
        })?;
    let matches: Vec<String> = data
        .table(def.name)
        .filter(|(_, r)| !bool_of(r, "IsDeleted"))
        .filter(|(_, r)| str_of(r, field.name).is_some_and(|v| v.eq_ignore_ascii_case(value)))
        .map(|(id, _)| id.clone())
        .collect();
    match matches.as_slice() {
        [] => {
            let mut body = body.clone();
            body.insert(field.name.to_string(), json!(value));
            create(data, actor, def, &body).map(UpsertOutcome::Created)
        }
        [id] => {
            let mut body = body.clone();
            body.remove(field.name);
            update(data, actor, def, id, &body).map(UpsertOutcome::Updated)
        }
        _ => Err(SfError::new(
            axum::http::StatusCode::MULTIPLE_CHOICES,
            "MULTIPLE_CHOICES",
            format!("The value of the external id field {field_name} matched more than one record"),
        )),
    }
}

/// Whether the assignments of `user_id` include, unexpired, a permission set named in
/// `names` (for admin-approved apps).
pub fn holds_any_permission_set(
    data: &OrgData,
    user_id: &str,
    names: &[String],
    now: DateTime<Utc>,
) -> bool {
    data.table("PermissionSetAssignment")
        .filter(|(_, a)| str_of(a, "AssigneeId") == Some(user_id) && assignment_active(a, now))
        .filter_map(|(_, a)| {
            str_of(a, "PermissionSetId").and_then(|ps| data.get("PermissionSet", ps))
        })
        .any(|ps| {
            str_of(ps, "Name")
                .is_some_and(|n| names.iter().any(|want| want.eq_ignore_ascii_case(n)))
        })
}
