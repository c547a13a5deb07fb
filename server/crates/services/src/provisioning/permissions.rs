//! The permission set with exactly the approved object and field permissions, the
//! licence-less app permission set, and their assignments to the integration user (expiring
//! with the grant).

use std::collections::{BTreeMap, BTreeSet};

use salesforce::composite::{CompositeRequest, Subrequest};
use salesforce::{Client, Cond, SalesforceId, Soql};
use serde_json::{Value, json};
use shared::scope::{Level, Scope};

use super::StepFailure;
use super::context::Context;
use super::outputs::{AssignmentMade, PermissionSetMade};
use super::records::{
    check_saved, composite_failure, created, find, find_or_create, reference, soql,
};
use crate::org_failure::not_found;

/// One ObjectPermissions row a scope asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectPerm {
    pub read: bool,
    pub edit: bool,
    /// Only with Modify All, which Salesforce allows only with Read, Edit, Delete and View
    /// All ("Permission Modify All … depends on permission(s): Delete …").
    pub delete: bool,
    pub view_all: bool,
    pub modify_all: bool,
}

/// One FieldPermissions row a scope asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPerm {
    pub object: String,
    pub read: bool,
    pub edit: bool,
}

/// The permissions a scope grants, as Salesforce rows: by object, and by `Object.Field`.
/// Tasks and events: no object permissions (ObjectPermissions refuses them) and no share
/// object; their access follows the parent record and the "Edit Tasks" user permission.
pub fn is_activity(object: &str) -> bool {
    object.eq_ignore_ascii_case("Task") || object.eq_ignore_ascii_case("Event")
}

/// Whether the scope edits activities (the permission set then gets "Edit Tasks").
fn edits_tasks(scope: &Scope) -> bool {
    scope
        .objects
        .iter()
        .any(|o| is_activity(&o.object) && (o.level == Level::Edit || o.modify_all))
}

/// The ObjectPermissions (by object) and FieldPermissions (by `Object.Field`) rows a scope
/// grants, as the permission set step makes them (and a re-proof expects them).
pub fn wanted_permissions(
    scope: &Scope,
) -> (BTreeMap<String, ObjectPerm>, BTreeMap<String, FieldPerm>) {
    let mut objects = BTreeMap::new();
    let mut fields = BTreeMap::new();
    for o in &scope.objects {
        for (field, level) in &o.fields {
            fields.insert(
                format!("{}.{}", o.object, field),
                FieldPerm {
                    object: o.object.clone(),
                    read: true,
                    edit: *level == Level::Edit,
                },
            );
        }
        if is_activity(&o.object) {
            continue;
        }
        objects.insert(
            o.object.clone(),
            ObjectPerm {
                read: true,
                edit: o.level == Level::Edit || o.modify_all,
                delete: o.modify_all,
                view_all: o.view_all || o.modify_all,
                modify_all: o.modify_all,
            },
        );
    }
    (objects, fields)
}

/// The `key` values (lower case) of permission set `ps`'s `object` rows: which objects or
/// fields it already has permissions for.
async fn permission_keys(
    client: &Client,
    ps: &SalesforceId,
    object: &str,
    key: &str,
) -> Result<BTreeSet<String>, StepFailure> {
    let query = soql(
        Soql::select(&[key])
            .from(object)
            .filter(Cond::eq("ParentId", ps))
            .build(),
    )?;
    let rows: Vec<Value> = client.query_all(&query).await?;
    Ok(rows
        .iter()
        .filter_map(|r| r[key].as_str())
        .map(str::to_ascii_lowercase)
        .collect())
}

pub(super) async fn permission_set(
    client: &Client,
    cx: &Context,
) -> Result<PermissionSetMade, StepFailure> {
    let psl = cx.licence_id()?;
    let name = &cx.names.permission_set;
    let mut body = json!({
        "Name": name,
        "Label": cx.names.permission_set_label,
        "Description": "Made by Portcullis for one contractor grant. Do not edit by hand.",
        "LicenseId": psl.as_str(),
    });
    if edits_tasks(&cx.scope) {
        body["PermissionsEditTask"] = json!(true);
    }
    let (objects, fields) = wanted_permissions(&cx.scope);
    if cx.first_attempt && objects.len() <= 200 && fields.len() <= 200 * 3 {
        return new_permission_set(client, cx, &body, &objects, &fields).await;
    }
    let (ps, found) = find_or_create(
        client,
        cx,
        "PermissionSet",
        Cond::eq("Name", name.as_str()),
        &body,
    )
    .await?;

    // Only what is missing is created, so a step that ran halfway adds the rest. A
    // permission set made just now has nothing yet.
    let have_objects = if found {
        permission_keys(client, &ps, "ObjectPermissions", "SobjectType").await?
    } else {
        BTreeSet::new()
    };
    let new_objects: Vec<Value> = objects
        .iter()
        .filter(|(object, _)| !have_objects.contains(&object.to_ascii_lowercase()))
        .map(|(object, p)| {
            json!({
                "ParentId": ps.as_str(), "SobjectType": object,
                "PermissionsRead": p.read, "PermissionsEdit": p.edit,
                "PermissionsCreate": false, "PermissionsDelete": p.delete,
                "PermissionsViewAllRecords": p.view_all, "PermissionsModifyAllRecords": p.modify_all,
            })
        })
        .collect();
    check_saved(
        client
            .create_collection("ObjectPermissions", &new_objects, true)
            .await?,
    )?;

    let have_fields = if found {
        permission_keys(client, &ps, "FieldPermissions", "Field").await?
    } else {
        BTreeSet::new()
    };
    let new_fields: Vec<Value> = fields
        .iter()
        .filter(|(field, _)| !have_fields.contains(&field.to_ascii_lowercase()))
        .map(|(field, p)| {
            json!({
                "ParentId": ps.as_str(), "SobjectType": p.object, "Field": field,
                "PermissionsRead": p.read, "PermissionsEdit": p.edit,
            })
        })
        .collect();
    for chunk in new_fields.chunks(200) {
        check_saved(
            client
                .create_collection("FieldPermissions", chunk, true)
                .await?,
        )?;
    }
    let (app_ps, _) = find_or_create(
        client,
        cx,
        "PermissionSet",
        Cond::eq("Name", cx.names.app_permission_set.as_str()),
        &app_permission_set_body(cx),
    )
    .await?;
    Ok(PermissionSetMade {
        permission_set_id: ps.as_str().to_string(),
        permission_set: name.clone(),
        found,
        objects: objects.len(),
        fields: fields.len(),
        assignment_id: None,
        app_permission_set_id: app_ps.as_str().to_string(),
        app_assignment_id: None,
    })
}

/// The assignment's expiry: the end of the grant's last day.
fn assignment_expiry(cx: &Context) -> String {
    format!("{}T23:59:59.000Z", cx.end_date)
}

/// A first attempt's permission set: the set, its object permissions, its field
/// permissions and its assignment to the integration user in one composite request (one
/// API call; all setup objects, so no mixed DML; all or none).
/// The collections' results are checked one by one: a refused permission fails the step,
/// and the retry finds the set and adds what is missing.
async fn new_permission_set(
    client: &Client,
    cx: &Context,
    body: &Value,
    objects: &BTreeMap<String, ObjectPerm>,
    fields: &BTreeMap<String, FieldPerm>,
) -> Result<PermissionSetMade, StepFailure> {
    let set = reference("set")?;
    let parent = set.id();
    let mut request = CompositeRequest::new(true);
    request
        .push(Subrequest::create(set.clone(), "PermissionSet", body)?)
        .map_err(composite_failure)?;
    let object_rows: Vec<Value> = objects
        .iter()
        .map(|(object, p)| {
            json!({
                "ParentId": parent.as_str(), "SobjectType": object,
                "PermissionsRead": p.read, "PermissionsEdit": p.edit,
                "PermissionsCreate": false, "PermissionsDelete": p.delete,
                "PermissionsViewAllRecords": p.view_all, "PermissionsModifyAllRecords": p.modify_all,
            })
        })
        .collect();
    let field_rows: Vec<Value> = fields
        .iter()
        .map(|(field, p)| {
            json!({
                "ParentId": parent.as_str(), "SobjectType": p.object, "Field": field,
                "PermissionsRead": p.read, "PermissionsEdit": p.edit,
            })
        })
        .collect();
    let mut collections = Vec::new();
    for (i, chunk) in object_rows.chunks(200).enumerate() {
        let r = reference(&format!("objects{i}"))?;
        request
            .push(Subrequest::create_collection(
                r.clone(),
                "ObjectPermissions",
                chunk,
                true,
            )?)
            .map_err(composite_failure)?;
        collections.push(r);
    }
    for (i, chunk) in field_rows.chunks(200).enumerate() {
        let r = reference(&format!("fields{i}"))?;
        request
            .push(Subrequest::create_collection(
                r.clone(),
                "FieldPermissions",
                chunk,
                true,
            )?)
            .map_err(composite_failure)?;
        collections.push(r);
    }
    let assign = reference("assign")?;
    let user = cx.user_id()?;
    request
        .push(Subrequest::create(
            assign.clone(),
            "PermissionSetAssignment",
            &json!({
                "AssigneeId": user.as_str(),
                "PermissionSetId": parent.as_str(),
                "ExpirationDate": assignment_expiry(cx),
            }),
        )?)
        .map_err(composite_failure)?;
    let app_set = reference("appset")?;
    let app_assign = reference("appassign")?;
    request
        .push(Subrequest::create(
            app_set.clone(),
            "PermissionSet",
            &app_permission_set_body(cx),
        )?)
        .map_err(composite_failure)?;
    request
        .push(Subrequest::create(
            app_assign.clone(),
            "PermissionSetAssignment",
            &json!({
                "AssigneeId": user.as_str(),
                "PermissionSetId": app_set.id().as_str(),
                "ExpirationDate": assignment_expiry(cx),
            }),
        )?)
        .map_err(composite_failure)?;
    let response = client.composite(&request).await?;
    let ps = created(response.clone(), &set)?;
    let assignment = created(response.clone(), &assign)?;
    let app_ps = created(response.clone(), &app_set)?;
    let app_assignment = created(response.clone(), &app_assign)?;
    for r in &collections {
        let result = response
            .get(r)
            .cloned()
            .ok_or_else(|| StepFailure {
                message: format!("Salesforce did not answer the subrequest {}", r.as_str()),
                transient: true,
            })?
            .into_result()?;
        let saved: Vec<salesforce::rest::SaveResult> =
            serde_json::from_value(result).map_err(|e| StepFailure {
                message: format!(
                    "Salesforce's answer to {} was not understood: {e}",
                    r.as_str()
                ),
                transient: true,
            })?;
        check_saved(saved)?;
    }
    Ok(PermissionSetMade {
        permission_set_id: ps.as_str().to_string(),
        permission_set: cx.names.permission_set.clone(),
        found: false,
        objects: objects.len(),
        fields: fields.len(),
        assignment_id: Some(assignment.as_str().to_string()),
        app_permission_set_id: app_ps.as_str().to_string(),
        app_assignment_id: Some(app_assignment.as_str().to_string()),
    })
}

/// The licence-less permission set that carries only the app's pre-authorisation.
fn app_permission_set_body(cx: &Context) -> Value {
    json!({
        "Name": cx.names.app_permission_set,
        "Label": format!("{} app", cx.names.permission_set_label),
        "Description": "Made by Portcullis: pre-authorises one contractor grant's External Client App. Holds no permissions. Do not edit by hand.",
    })
}

pub(super) async fn assignment(
    client: &Client,
    cx: &Context,
) -> Result<AssignmentMade, StepFailure> {
    let user = cx.user_id()?;
    let ps = cx.permission_set_id()?;
    let expires = assignment_expiry(cx);
    let set = cx.outputs.permission_set();
    // The permission set step's composite assigned both sets: nothing to do but record it.
    if let Some(id) = set.and_then(|o| o.assignment_id.clone())
        && let Some(app) = set.and_then(|o| o.app_assignment_id.clone())
    {
        return Ok(AssignmentMade {
            assignment_id: id,
            app_assignment_id: app,
            expires,
            found: true,
        });
    }
    let app_assignment = app_assignment(client, cx, &user, &expires).await?;
    if let Some(id) = set.and_then(|o| o.assignment_id.clone()) {
        return Ok(AssignmentMade {
            assignment_id: id,
            app_assignment_id: app_assignment.as_str().to_string(),
            expires,
            found: true,
        });
    }
    // A permission set found (not made) by its step may come with an assignment an
    // earlier, unrecorded composite made: look first.
    let cond = Cond::and([
        Cond::eq("AssigneeId", &user),
        Cond::eq("PermissionSetId", &ps),
    ]);
    let fresh = cx.first_attempt && set.is_some_and(|o| !o.found);
    let existing = if fresh {
        None
    } else {
        find(client, "PermissionSetAssignment", cond).await?
    };
    let (id, found) = match existing {
        Some(id) => (id, true),
        None => (
            client
                .create(
                    "PermissionSetAssignment",
                    &json!({
                        "AssigneeId": user.as_str(),
                        "PermissionSetId": ps.as_str(),
                        "ExpirationDate": expires,
                    }),
                )
                .await?,
            false,
        ),
    };
    Ok(AssignmentMade {
        assignment_id: id.as_str().to_string(),
        app_assignment_id: app_assignment.as_str().to_string(),
        expires,
        found,
    })
}

/// The app permission set's assignment to the integration user (found, or made).
async fn app_assignment(
    client: &Client,
    cx: &Context,
    user: &SalesforceId,
    expires: &str,
) -> Result<SalesforceId, StepFailure> {
    let app_ps = match cx
        .outputs
        .permission_set()
        .map(|o| o.app_permission_set_id.as_str())
        .and_then(|id| SalesforceId::parse(id).ok())
    {
        Some(id) => id,
        None => find(
            client,
            "PermissionSet",
            Cond::eq("Name", cx.names.app_permission_set.as_str()),
        )
        .await?
        .ok_or_else(|| {
            not_found(&format!(
                "The permission set {}",
                cx.names.app_permission_set
            ))
        })?,
    };
    let existing = find(
        client,
        "PermissionSetAssignment",
        Cond::and([
            Cond::eq("AssigneeId", user),
            Cond::eq("PermissionSetId", &app_ps),
        ]),
    )
    .await?;
    match existing {
        Some(id) => Ok(id),
        None => Ok(client
            .create(
                "PermissionSetAssignment",
                &json!({
                    "AssigneeId": user.as_str(),
                    "PermissionSetId": app_ps.as_str(),
                    "ExpirationDate": expires,
                }),
            )
            .await?),
    }
}

/// Access reviews' narrowing: takes away from the grant's permission set whatever
/// `cx.scope` (the approved narrower scope) does not grant — field permissions first, then
/// object permissions; rows kept but wider than approved (Edit where Read is approved) are
/// lowered — and "Edit Tasks" when the scope no longer edits activities. Nothing is added
/// (a narrower scope is a subset). Idempotent: it reads what the set has now, so a run
/// cut off halfway finishes on the next; what it removed, as evidence.
pub(super) async fn narrow_permission_set(
    client: &Client,
    cx: &Context,
) -> Result<Value, StepFailure> {
    let ps = cx.permission_set_id()?;
    let (objects, fields) = wanted_permissions(&cx.scope);
    let objects: BTreeMap<String, ObjectPerm> = objects
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let fields: BTreeMap<String, FieldPerm> = fields
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let id_of = |r: &Value| r["Id"].as_str().and_then(|i| SalesforceId::parse(i).ok());
    let flag = |r: &Value, f: &str| r[f].as_bool().unwrap_or(false);

    let query = soql(
        Soql::select(&["Id", "Field", "PermissionsEdit"])
            .from("FieldPermissions")
            .filter(Cond::eq("ParentId", &ps))
            .build(),
    )?;
    let rows: Vec<Value> = client.query_all(&query).await?;
    let (mut drop_fields, mut lower_fields, mut dropped) = (Vec::new(), Vec::new(), Vec::new());
    for row in &rows {
        let (Some(id), Some(field)) = (id_of(row), row["Field"].as_str()) else {
            continue;
        };
        match fields.get(&field.to_ascii_lowercase()) {
            None => {
                drop_fields.push(id);
                dropped.push(field.to_string());
            }
            Some(p) if !p.edit && flag(row, "PermissionsEdit") => {
                lower_fields.push((id, json!({ "PermissionsEdit": false })));
            }
            Some(_) => {}
        }
    }
    for chunk in lower_fields.chunks(200) {
        check_saved(
            client
                .update_collection("FieldPermissions", chunk, true)
                .await?,
        )?;
    }
    for chunk in drop_fields.chunks(200) {
        check_deleted(client.delete_collection(chunk, true).await?)?;
    }

    let query = soql(
        Soql::select(&[
            "Id",
            "SobjectType",
            "PermissionsEdit",
            "PermissionsDelete",
            "PermissionsViewAllRecords",
            "PermissionsModifyAllRecords",
        ])
        .from("ObjectPermissions")
        .filter(Cond::eq("ParentId", &ps))
        .build(),
    )?;
    let rows: Vec<Value> = client.query_all(&query).await?;
    let (mut drop_objects, mut lower_objects) = (Vec::new(), Vec::new());
    for row in &rows {
        let (Some(id), Some(object)) = (id_of(row), row["SobjectType"].as_str()) else {
            continue;
        };
        match objects.get(&object.to_ascii_lowercase()) {
            None => {
                drop_objects.push(id);
                dropped.push(object.to_string());
            }
            Some(p) => {
                let wider = (flag(row, "PermissionsEdit") && !p.edit)
                    || (flag(row, "PermissionsDelete") && !p.delete)
                    || (flag(row, "PermissionsViewAllRecords") && !p.view_all)
                    || (flag(row, "PermissionsModifyAllRecords") && !p.modify_all);
                if wider {
                    lower_objects.push((
                        id,
                        json!({
                            "PermissionsRead": p.read, "PermissionsEdit": p.edit,
                            "PermissionsDelete": p.delete, "PermissionsViewAllRecords": p.view_all,
                            "PermissionsModifyAllRecords": p.modify_all,
                        }),
                    ));
                }
            }
        }
    }
    for chunk in lower_objects.chunks(200) {
        check_saved(
            client
                .update_collection("ObjectPermissions", chunk, true)
                .await?,
        )?;
    }
    for chunk in drop_objects.chunks(200) {
        check_deleted(client.delete_collection(chunk, true).await?)?;
    }
    let no_task_edits = !edits_tasks(&cx.scope);
    if no_task_edits {
        client
            .update(
                "PermissionSet",
                &ps,
                &json!({ "PermissionsEditTask": false }),
            )
            .await?;
    }
    Ok(json!({
        "permission_set_id": ps.as_str(),
        "removed": dropped,
        "lowered": lower_fields.len() + lower_objects.len(),
    }))
}

/// Deleted, or already gone (a narrowing run again after a crash).
fn check_deleted(results: Vec<salesforce::rest::SaveResult>) -> Result<(), StepFailure> {
    let left: Vec<salesforce::rest::SaveResult> = results
        .into_iter()
        .filter(|r| !r.success && !r.errors.iter().any(|e| e.error_code == "ENTITY_IS_DELETED"))
        .collect();
    check_saved(left).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_becomes_exact_permission_rows() {
        let scope = Scope {
            objects: vec![shared::scope::ObjectAccess {
                object: "Case".into(),
                level: Level::Read,
                fields: [
                    ("Subject".to_string(), Level::Read),
                    ("Status".to_string(), Level::Edit),
                ]
                .into_iter()
                .collect(),
                view_all: false,
                modify_all: false,
            }],
            visibility: shared::scope::Visibility {
                rule: shared::scope::VisibilityRule::Shared,
                record_ids: vec![],
                group: None,
            },
            packages: vec![],
        };
        let (objects, fields) = wanted_permissions(&scope);
        assert_eq!(
            objects["Case"],
            ObjectPerm {
                read: true,
                edit: false,
                delete: false,
                view_all: false,
                modify_all: false
            }
        );
        let field = |read, edit| FieldPerm {
            object: "Case".into(),
            read,
            edit,
        };
        assert_eq!(fields["Case.Subject"], field(true, false));
        assert_eq!(fields["Case.Status"], field(true, true));
        assert_eq!(fields.len(), 2);
    }

    /// Issue 14, item 5: a task has no object permissions (ObjectPermissions refuses
    /// Task); editing tasks is the "Edit Tasks" user permission; its fields keep FLS.
    #[test]
    fn tasks_get_no_object_permissions_and_editing_them_is_edit_tasks() {
        let scope = Scope {
            objects: vec![shared::scope::ObjectAccess {
                object: "Task".into(),
                level: Level::Edit,
                fields: [("Subject".to_string(), Level::Edit)].into_iter().collect(),
                view_all: false,
                modify_all: false,
            }],
            visibility: shared::scope::Visibility {
                rule: shared::scope::VisibilityRule::Shared,
                record_ids: vec![],
                group: None,
            },
            packages: vec![],
        };
        let (objects, fields) = wanted_permissions(&scope);
        assert!(objects.is_empty(), "{objects:?}");
        assert!(fields.contains_key("Task.Subject"));
        assert!(edits_tasks(&scope));
    }
}
