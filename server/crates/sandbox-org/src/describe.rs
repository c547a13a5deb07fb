//! Describe results: the sObject list and one object's fields, as the caller may see them
//! (objects they cannot read are absent; fields hidden by field-level security are absent;
//! `createable`/`updateable` reflect their permissions).

use serde_json::{Value, json};

use crate::access::Access;
use crate::schema::{self, Access as FieldAccess, FieldDef, FieldType, Kind, ObjectDef};

fn urls(def: &ObjectDef, version: &str) -> Value {
    let base = format!("/services/data/v{version}/sobjects/{}", def.name);
    json!({
        "sobject": base,
        "describe": format!("{base}/describe"),
        "rowTemplate": format!("{base}/{{ID}}"),
    })
}

fn object_flags(def: &ObjectDef, access: &Access) -> (bool, bool, bool) {
    match def.kind {
        Kind::Data => {
            let perms = access.object(def);
            (
                def.createable && perms.create,
                def.updateable && perms.edit,
                def.deletable && perms.delete,
            )
        }
        Kind::Setup => {
            let write = access.can_write_setup(def);
            (
                def.createable && write,
                def.updateable && write,
                def.deletable && write,
            )
        }
    }
}

/// One entry of the `sobjects` list.
pub fn summary(def: &ObjectDef, access: &Access, version: &str) -> Value {
    let (createable, updateable, deletable) = object_flags(def, access);
    json!({
        "activateable": false,
        "createable": createable,
        "custom": false,
        "customSetting": false,
        "deepCloneable": false,
        "deletable": deletable,
        "deprecatedAndHidden": false,
        "feedEnabled": false,
        "hasSubtypes": false,
        "isInterface": false,
        "isSubtype": false,
        "keyPrefix": def.key_prefix,
        "label": def.label,
        "labelPlural": def.label_plural,
        "layoutable": def.kind == Kind::Data,
        "mergeable": false,
        "mruEnabled": def.kind == Kind::Data,
        "name": def.name,
        "queryable": true,
        "replicateable": true,
        "retrieveable": true,
        "searchable": def.kind == Kind::Data,
        "triggerable": def.kind == Kind::Data,
        "undeletable": def.kind == Kind::Data && deletable,
        "updateable": updateable,
        "urls": urls(def, version),
    })
}

/// `GET /sobjects`.
pub fn global(access: &Access, version: &str) -> Value {
    let sobjects: Vec<Value> = schema::objects()
        .iter()
        .filter(|def| access.can_read_object(def))
        .map(|def| summary(def, access, version))
        .collect();
    json!({ "encoding": "UTF-8", "maxBatchSize": 200, "sobjects": sobjects })
}

fn field_json(def: &ObjectDef, field: &FieldDef, access: &Access) -> Value {
    let writable = access.field_editable(def, field);
    let createable = writable
        && matches!(
            field.access,
            FieldAccess::ReadWrite | FieldAccess::CreateOnly
        );
    let updateable = writable && field.access == FieldAccess::ReadWrite;
    let (picklist, restricted, default_value) = match &field.field_type {
        FieldType::Picklist { values, restricted, default } => (
            values
                .iter()
                .map(|v| json!({ "active": true, "defaultValue": Some(*v) == *default, "label": v, "validFor": null, "value": v }))
                .collect::<Vec<_>>(),
            *restricted,
            default.map(|d| json!(d)).unwrap_or(Value::Null),
        ),
        FieldType::Boolean { default } => (Vec::new(), false, json!(default)),
        _ => (Vec::new(), false, Value::Null),
    };
    let (reference_to, relationship_name) = match &field.field_type {
        FieldType::Reference { to, relationship } => (json!(to), json!(relationship)),
        _ => (json!([]), Value::Null),
    };
    let length = match &field.field_type {
        FieldType::Picklist { .. } => 255,
        other => other.max_length().unwrap_or(0),
    };
    let numeric = matches!(field.field_type, FieldType::Double | FieldType::Currency);
    json!({
        "aggregatable": true,
        "autoNumber": field.field_type == FieldType::AutoNumber,
        "byteLength": length * 3,
        "calculated": false,
        "caseSensitive": false,
        "createable": createable,
        "custom": false,
        "defaultValue": default_value,
        "defaultedOnCreate": matches!(field.field_type, FieldType::Boolean { .. })
            || matches!(field.field_type, FieldType::Picklist { default: Some(_), .. })
            || field.name == "OwnerId" || field.field_type == FieldType::AutoNumber,
        "dependentPicklist": false,
        "deprecatedAndHidden": false,
        "digits": if field.field_type == FieldType::Int { 9 } else { 0 },
        "externalId": field.external_id,
        "filterable": true,
        "groupable": !numeric,
        "htmlFormatted": false,
        "idLookup": field.field_type == FieldType::Id || field.external_id,
        "label": field.label,
        "length": length,
        "name": field.name,
        "nameField": field.name_field,
        "namePointing": false,
        "nillable": field.nillable,
        "permissionable": field.permissionable,
        "picklistValues": picklist,
        "precision": if numeric { 18 } else { 0 },
        "referenceTo": reference_to,
        "relationshipName": relationship_name,
        "restrictedPicklist": restricted,
        "scale": if numeric { 2 } else { 0 },
        "soapType": field.field_type.soap_type(),
        "sortable": true,
        "type": field.field_type.describe_name(),
        "unique": field.unique,
        "updateable": updateable,
    })
}

/// `GET /sobjects/{object}/describe`.
pub fn object(def: &ObjectDef, access: &Access, version: &str) -> Value {
    let mut result = summary(def, access, version);
    let fields: Vec<Value> = def
        .fields
        .iter()
        .filter(|f| access.field_readable(def, f))
        .map(|f| field_json(def, f, access))
        .collect();
    let children: Vec<Value> = schema::objects()
        .iter()
        .filter(|child| access.can_read_object(child))
        .flat_map(|child| {
            child
                .fields
                .iter()
                .filter_map(move |f| match &f.field_type {
                    FieldType::Reference { to, .. } if to.contains(&def.name) => Some(json!({
                        "cascadeDelete": false,
                        "childSObject": child.name,
                        "deprecatedAndHidden": false,
                        "field": f.name,
                        "relationshipName": null,
                    })),
                    _ => None,
                })
        })
        .collect();
    if let Value::Object(map) = &mut result {
        map.insert("fields".into(), json!(fields));
        map.insert("childRelationships".into(), json!(children));
        map.insert("recordTypeInfos".into(), json!([]));
        map.insert(
            "supportedScopes".into(),
            json!([{ "label": "All", "name": "everything" }]),
        );
        map.insert("networkScopeFieldName".into(), Value::Null);
    }
    result
}

/// What org settings change in a describe: with assignment expiration off,
/// `PermissionSetAssignment.ExpirationDate` is neither createable nor updateable; with API
/// Access Control off, PermissionSet and Profile do not list "Use Any API Client".
/// Both UNCONFIRMED (see `OrgSettings`).
pub fn apply_org_settings(
    def: &ObjectDef,
    describe: &mut Value,
    settings: &crate::store::OrgSettings,
) {
    let Some(fields) = describe.get_mut("fields").and_then(Value::as_array_mut) else {
        return;
    };
    if def.name == "PermissionSetAssignment" && !settings.permset_assignment_expiration {
        for field in fields.iter_mut() {
            if field["name"] == "ExpirationDate" {
                field["createable"] = json!(false);
                field["updateable"] = json!(false);
            }
        }
    }
    if matches!(def.name, "PermissionSet" | "Profile") && !settings.api_access_control {
        fields.retain(|f| f["name"] != "PermissionsUseAnyApiClient");
    }
}
