//! Turning a scope picker's choices (packages, object and field levels, the visibility
//! rule) into a [`Scope`], checked against the org's describe. The request form, the
//! decision form and the catalog's package form all build their scope here; the portal
//! reads the org and the packages ([`crate::Portal::scope_from_selection`]), this module
//! decides.

use std::collections::BTreeMap;

use shared::FieldError;
use shared::org::OrgObject;
use shared::scope::{Level, ObjectAccess, Scope, Visibility, VisibilityRule};

pub use shared::scope::ScopeSelection as Selection;

/// An error on the form's `access` field.
pub fn access_error(message: impl Into<String>) -> FieldError {
    FieldError {
        field: "access".into(),
        message: message.into(),
    }
}

/// The scope the selection asks for: the chosen packages' scope (`from_packages`, already
/// merged) widened by the objects and fields chosen one by one. Objects and fields must
/// exist in `org` (fields: ones field-level security applies to); a field can be edited
/// only when its object can and the org lets the field be edited; a field needs its object
/// chosen (here or by a package). The first problem is the error, on `access` (or on
/// `visibility` for an unknown rule).
pub fn build(
    org: &[OrgObject],
    from_packages: Option<Scope>,
    selection: &Selection,
) -> Result<Scope, FieldError> {
    let mut custom: Vec<ObjectAccess> = Vec::new();
    let mut objects: Vec<(&String, &String)> = selection.objects.iter().collect();
    objects.sort();
    let mut fields: Vec<(&String, &String)> = selection.fields.iter().collect();
    fields.sort();
    for (object, raw) in objects {
        let level = Level::parse(raw)
            .ok_or_else(|| access_error(format!("'{raw}' is not an access level for {object}.")))?;
        let Some(level) = level else { continue };
        let Some(org_object) = org.iter().find(|o| o.name == *object) else {
            return Err(access_error(format!(
                "There is no object {object} in the org."
            )));
        };
        let mut chosen_fields = BTreeMap::new();
        for (path, raw) in &fields {
            let Some((owner, field)) = path.split_once('.') else {
                return Err(access_error(format!("'{path}' is not a field.")));
            };
            if owner != object {
                continue;
            }
            let Some(field_level) = Level::parse(raw).ok_or_else(|| {
                access_error(format!("'{raw}' is not an access level for {path}."))
            })?
            else {
                continue;
            };
            let Some(org_field) = org_object
                .fields
                .iter()
                .find(|f| f.name == field && f.permissionable)
            else {
                return Err(access_error(format!(
                    "There is no field {path} the org can grant."
                )));
            };
            if field_level == Level::Edit && (!org_field.editable || level != Level::Edit) {
                return Err(access_error(format!(
                    "{path} can only be edited when {object} records can be edited and the field itself is editable."
                )));
            }
            chosen_fields.insert(field.to_string(), field_level);
        }
        custom.push(ObjectAccess {
            object: object.clone(),
            level,
            fields: chosen_fields,
            view_all: false,
            modify_all: false,
        });
    }
    for (path, raw) in &fields {
        let object = path.split('.').next().unwrap_or("");
        let chosen = Level::parse(raw).flatten().is_some();
        if chosen
            && !custom.iter().any(|o| o.object == object)
            && from_packages
                .as_ref()
                .and_then(|s| s.object(object))
                .is_none()
        {
            return Err(access_error(format!(
                "Choose read or edit for {object} before choosing its fields."
            )));
        }
    }
    let rule = if selection.visibility.trim().is_empty() {
        from_packages
            .as_ref()
            .map(|s| s.visibility.rule)
            .unwrap_or(VisibilityRule::Shared)
    } else {
        VisibilityRule::parse(&selection.visibility).map_err(|message| FieldError {
            field: "visibility".into(),
            message,
        })?
    };
    let mut merged = from_packages.unwrap_or(Scope {
        objects: Vec::new(),
        visibility: Visibility {
            rule,
            record_ids: Vec::new(),
            group: None,
        },
        packages: Vec::new(),
    });
    merged.visibility.rule = rule;
    for object in custom {
        match merged
            .objects
            .iter_mut()
            .find(|o| o.object == object.object)
        {
            Some(existing) => {
                existing.level = existing.level.max(object.level);
                for (field, level) in object.fields {
                    let entry = existing.fields.entry(field).or_insert(level);
                    *entry = (*entry).max(level);
                }
            }
            None => merged.objects.push(object),
        }
    }
    merged.objects.sort_by(|a, b| a.object.cmp(&b.object));
    Ok(merged)
}

#[cfg(test)]
mod tests;
