//! The grant's live configuration in the org, read as the portal (the admin), against what
//! was approved and made: the permission sets assigned to the integration user, the grant's
//! permission sets' object and field permissions, its public group memberships, the manual
//! shares it was given and the records it owns, by object. Few API calls: the grants of a
//! wave are read together ([`read_wave`]: each query over all of them, five queries to a
//! composite request), so twenty grants with one object cost two calls.
//!
//! Each kind is one line of the table (expected, observed), and what is *more* than
//! approved is kept with its ids, so that re-applying the approved configuration can remove
//! exactly that.

use std::collections::{BTreeMap, BTreeSet};

use salesforce::composite::Subrequest;
use salesforce::{Client, Cond, SalesforceId, Soql};
use serde_json::{Value, json};
use shared::scope::VisibilityRule;

use crate::org_failure::OrgFailure;
use crate::provisioning::proof::{Check, answer, batched};
use crate::provisioning::reproof::Approved;
use crate::provisioning::{FieldPerm, ObjectPerm, is_activity, share_object, wanted_permissions};

/// What is in the org beyond (or different from) what was approved, by id, for re-apply.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extras {
    /// PermissionSetAssignment ids of sets not approved.
    pub assignments: Vec<SalesforceId>,
    /// ObjectPermissions rows to delete (objects not approved).
    pub object_rows: Vec<SalesforceId>,
    /// ObjectPermissions rows to set back to the approved flags.
    pub object_updates: Vec<(SalesforceId, Value)>,
    /// FieldPermissions rows to delete (fields not approved).
    pub field_rows: Vec<SalesforceId>,
    /// FieldPermissions rows to set back to the approved flags.
    pub field_updates: Vec<(SalesforceId, Value)>,
    /// Manual shares not approved: (share object, id).
    pub shares: Vec<(String, SalesforceId)>,
    /// GroupMember rows not approved.
    pub group_members: Vec<SalesforceId>,
    /// Records the integration user owns that were not approved (cannot be given back
    /// without knowing to whom: reported, not re-applied).
    pub owned: Vec<(String, SalesforceId)>,
}

impl Extras {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The live configuration's lines, and what re-apply would remove.
#[derive(Debug, Clone, Default)]
pub struct Live {
    pub lines: Vec<Check>,
    pub extras: Extras,
}

fn list<I: IntoIterator<Item = String>>(items: I) -> String {
    let set: BTreeSet<String> = items.into_iter().collect();
    if set.is_empty() {
        "none".into()
    } else {
        set.into_iter().collect::<Vec<_>>().join(", ")
    }
}

fn line(check: String, expected: String, observed: String, wider: bool) -> Check {
    Check {
        pass: expected == observed,
        wider: wider && expected != observed,
        check,
        expected,
        observed,
    }
}

fn id_of(row: &Value, key: &str) -> Option<SalesforceId> {
    row[key]
        .as_str()
        .and_then(|id| SalesforceId::parse(id).ok())
}

fn soql(built: Result<Soql, salesforce::soql::SoqlError>) -> Result<Soql, OrgFailure> {
    built.map_err(|e| OrgFailure::permanent(format!("could not build a query: {e}")))
}

fn reference(name: &str) -> Result<salesforce::composite::ReferenceId, OrgFailure> {
    salesforce::composite::ReferenceId::new(name)
        .map_err(|e| OrgFailure::permanent(format!("could not build a composite request: {e}")))
}

fn object_words(p: &ObjectPerm) -> String {
    let mut words = Vec::new();
    for (on, word) in [
        (p.read, "Read"),
        (p.edit, "Edit"),
        (p.delete, "Delete"),
        (p.view_all, "View All"),
        (p.modify_all, "Modify All"),
    ] {
        if on {
            words.push(word);
        }
    }
    if words.is_empty() {
        "none".into()
    } else {
        words.join(", ")
    }
}

fn observed_object(row: &Value) -> (ObjectPerm, bool) {
    let flag = |k: &str| row[k].as_bool().unwrap_or(false);
    (
        ObjectPerm {
            read: flag("PermissionsRead"),
            edit: flag("PermissionsEdit"),
            delete: flag("PermissionsDelete"),
            view_all: flag("PermissionsViewAllRecords"),
            modify_all: flag("PermissionsModifyAllRecords"),
        },
        flag("PermissionsCreate"),
    )
}

fn field_words(field: &str, p: &FieldPerm) -> String {
    format!("{field} ({})", if p.edit { "edit" } else { "read" })
}

/// One grant of a wave: whose rows to pick and what to compare them with.
struct Subject<'a> {
    approved: &'a Approved,
    user: SalesforceId,
    /// The grant's permission set (object and field permissions belong there).
    ps: Option<SalesforceId>,
    /// The grant's two permission sets (its own and its app's).
    sets: Vec<SalesforceId>,
    /// The granted objects with sharing (activities have none of their own).
    objects: Vec<String>,
}

fn subject(approved: &Approved) -> Result<Subject<'_>, OrgFailure> {
    let user = approved
        .outputs
        .user()
        .and_then(|o| SalesforceId::parse(&o.user_id).ok())
        .ok_or_else(|| OrgFailure::permanent("the user step recorded no user_id"))?;
    let set = approved.outputs.permission_set();
    let ps = set.and_then(|o| SalesforceId::parse(&o.permission_set_id).ok());
    let app_ps = set.and_then(|o| SalesforceId::parse(&o.app_permission_set_id).ok());
    let sets: Vec<SalesforceId> = ps.iter().chain(app_ps.iter()).cloned().collect();
    let objects: Vec<String> = approved
        .scope
        .objects
        .iter()
        .map(|o| o.object.clone())
        .filter(|o| !is_activity(o))
        .collect();
    Ok(Subject {
        approved,
        user,
        ps,
        sets,
        objects,
    })
}

/// What the org answered about one grant, by kind (shares and owned records by the index
/// of the grant's objects).
#[derive(Default)]
struct GrantRows {
    assignments: Vec<Value>,
    groups: Vec<Value>,
    objects: Vec<Value>,
    fields: Vec<Value>,
    shares: Vec<Vec<Value>>,
    owned: Vec<Vec<Value>>,
}

/// Every row a composite's query answered, following `nextRecordsUrl` (one more call a
/// page) when there are more than a page's.
async fn all_rows(
    client: &Client,
    answers: &std::collections::HashMap<String, salesforce::composite::SubrequestResult>,
    r: &str,
) -> Result<Vec<Value>, OrgFailure> {
    let body = answer(answers, r)?.map_err(OrgFailure::from)?;
    let mut records = body["records"].as_array().cloned().unwrap_or_default();
    let mut done = body["done"].as_bool().unwrap_or(true);
    let mut next = body["nextRecordsUrl"].as_str().map(str::to_string);
    while let (false, Some(url)) = (done, next.take()) {
        let page: salesforce::query::QueryPage<Value> = client.query_more(&url).await?;
        records.extend(page.records);
        done = page.done;
        next = page.next_records_url;
    }
    Ok(records)
}

/// Reads one grant's live configuration and compares it with what was approved.
pub async fn read(client: &Client, approved: &Approved) -> Result<Live, OrgFailure> {
    read_wave(client, &[approved])
        .await?
        .pop()
        .unwrap_or_else(|| Err(OrgFailure::permanent("the grant was not read")))
}

/// Reads the live configuration of a wave of grants in as few calls as the composite's
/// limits allow — the same queries as one grant's, each over every grant of the wave
/// (`AssigneeId IN (...)`, `ParentId IN (...)`, ...): six queries (two composites) for a
/// wave whose grants share one object, whatever its size — and compares each with what was
/// approved. The results in the order of `grants`; an org failure fails the whole wave.
pub async fn read_wave(
    client: &Client,
    grants: &[&Approved],
) -> Result<Vec<Result<Live, OrgFailure>>, OrgFailure> {
    let subjects: Vec<Result<Subject<'_>, OrgFailure>> =
        grants.iter().map(|a| subject(a)).collect();
    let valid: Vec<&Subject<'_>> = subjects.iter().filter_map(|s| s.as_ref().ok()).collect();
    if valid.is_empty() {
        return Ok(subjects
            .into_iter()
            .map(|s| s.map(|_| Live::default()))
            .collect());
    }
    let users: BTreeSet<SalesforceId> = valid.iter().map(|s| s.user.clone()).collect();
    let sets: BTreeSet<SalesforceId> = valid.iter().flat_map(|s| s.sets.clone()).collect();
    // Each object with sharing, once (case-insensitively), with the users granted it.
    let mut objects: Vec<(String, BTreeSet<SalesforceId>)> = Vec::new();
    for s in &valid {
        for object in &s.objects {
            match objects
                .iter_mut()
                .find(|(o, _)| o.eq_ignore_ascii_case(object))
            {
                Some((_, users)) => {
                    users.insert(s.user.clone());
                }
                None => objects.push((object.clone(), BTreeSet::from([s.user.clone()]))),
            }
        }
    }

    let mut queries = vec![
        Subrequest::query(
            reference("assignments")?,
            &soql(
                Soql::select(&[
                    "Id",
                    "AssigneeId",
                    "PermissionSetId",
                    "PermissionSet.Name",
                    "PermissionSet.IsOwnedByProfile",
                ])
                .from("PermissionSetAssignment")
                .filter(Cond::in_list("AssigneeId", users.iter().cloned()))
                .build(),
            )?,
        ),
        Subrequest::query(
            reference("groups")?,
            &soql(
                Soql::select(&["Id", "GroupId", "UserOrGroupId"])
                    .from("GroupMember")
                    .filter(Cond::in_list("UserOrGroupId", users.iter().cloned()))
                    .build(),
            )?,
        ),
    ];
    if !sets.is_empty() {
        queries.push(Subrequest::query(
            reference("objects")?,
            &soql(
                Soql::select(&[
                    "Id",
                    "ParentId",
                    "SobjectType",
                    "PermissionsRead",
                    "PermissionsCreate",
                    "PermissionsEdit",
                    "PermissionsDelete",
                    "PermissionsViewAllRecords",
                    "PermissionsModifyAllRecords",
                ])
                .from("ObjectPermissions")
                .filter(Cond::in_list("ParentId", sets.iter().cloned()))
                .build(),
            )?,
        ));
        queries.push(Subrequest::query(
            reference("fields")?,
            &soql(
                Soql::select(&[
                    "Id",
                    "ParentId",
                    "Field",
                    "PermissionsRead",
                    "PermissionsEdit",
                ])
                .from("FieldPermissions")
                .filter(Cond::in_list("ParentId", sets.iter().cloned()))
                .build(),
            )?,
        ));
    }
    for (i, (object, users_of)) in objects.iter().enumerate() {
        let (share, record_field, _) = share_object(object);
        queries.push(Subrequest::query(
            reference(&format!("shares{i}"))?,
            &soql(
                Soql::select(&["Id", "UserOrGroupId", record_field.as_str()])
                    .from(&share)
                    .filter(Cond::and([
                        Cond::in_list("UserOrGroupId", users_of.iter().cloned()),
                        Cond::eq("RowCause", "Manual"),
                    ]))
                    .build(),
            )?,
        ));
        queries.push(Subrequest::query(
            reference(&format!("owned{i}"))?,
            &soql(
                Soql::select(&["Id", "OwnerId"])
                    .from(object)
                    .filter(Cond::in_list("OwnerId", users_of.iter().cloned()))
                    .build(),
            )?,
        ));
    }
    let answers = batched(client, queries).await?;
    let assignments = all_rows(client, &answers, "assignments").await?;
    let groups = all_rows(client, &answers, "groups").await?;
    let (object_rows, field_rows) = if sets.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        (
            all_rows(client, &answers, "objects").await?,
            all_rows(client, &answers, "fields").await?,
        )
    };
    let mut shares = Vec::new();
    let mut owned = Vec::new();
    for i in 0..objects.len() {
        shares.push(all_rows(client, &answers, &format!("shares{i}")).await?);
        owned.push(all_rows(client, &answers, &format!("owned{i}")).await?);
    }

    let of = |rows: &[Value], key: &str, id: &SalesforceId| -> Vec<Value> {
        rows.iter()
            .filter(|r| id_of(r, key).as_ref() == Some(id))
            .cloned()
            .collect()
    };
    let on_sets = |rows: &[Value], sets: &[SalesforceId]| -> Vec<Value> {
        rows.iter()
            .filter(|r| id_of(r, "ParentId").is_some_and(|p| sets.contains(&p)))
            .cloned()
            .collect()
    };
    Ok(subjects
        .iter()
        .map(|s| {
            let s = s.as_ref().map_err(Clone::clone)?;
            let index = |object: &str| {
                objects
                    .iter()
                    .position(|(o, _)| o.eq_ignore_ascii_case(object))
            };
            let rows = GrantRows {
                assignments: of(&assignments, "AssigneeId", &s.user),
                groups: of(&groups, "UserOrGroupId", &s.user),
                objects: on_sets(&object_rows, &s.sets),
                fields: on_sets(&field_rows, &s.sets),
                shares: s
                    .objects
                    .iter()
                    .map(|o| {
                        index(o)
                            .map(|i| of(&shares[i], "UserOrGroupId", &s.user))
                            .unwrap_or_default()
                    })
                    .collect(),
                owned: s
                    .objects
                    .iter()
                    .map(|o| {
                        index(o)
                            .map(|i| of(&owned[i], "OwnerId", &s.user))
                            .unwrap_or_default()
                    })
                    .collect(),
            };
            Ok(compare(s, rows))
        })
        .collect())
}

/// One grant's live rows against what was approved: the table's lines and the extras.
fn compare(subject: &Subject<'_>, answers: GrantRows) -> Live {
    let Subject {
        approved,
        ps,
        sets,
        objects,
        ..
    } = subject;
    let rule = approved.scope.visibility.rule;

    let mut live = Live::default();
    // Permission sets assigned (the profile's own set is not an assignment an admin makes).
    let assigned: Vec<Value> = answers
        .assignments
        .into_iter()
        .filter(|r| {
            !r["PermissionSet"]["IsOwnedByProfile"]
                .as_bool()
                .unwrap_or(false)
        })
        .collect();
    let expected_sets = [
        &approved.names.permission_set,
        &approved.names.app_permission_set,
    ];
    let mut observed_sets = Vec::new();
    for row in &assigned {
        let name = row["PermissionSet"]["Name"]
            .as_str()
            .map(str::to_string)
            .or_else(|| row["PermissionSetId"].as_str().map(str::to_string))
            .unwrap_or_default();
        let approved_set = id_of(row, "PermissionSetId").is_some_and(|id| sets.contains(&id))
            || expected_sets.iter().any(|n| n.eq_ignore_ascii_case(&name));
        if !approved_set && let Some(id) = id_of(row, "Id") {
            live.extras.assignments.push(id);
        }
        observed_sets.push(name);
    }
    live.lines.push(line(
        "Permission sets assigned to the integration user".into(),
        list(expected_sets.iter().map(|n| n.to_string())),
        list(observed_sets),
        !live.extras.assignments.is_empty(),
    ));

    let (wanted_objects, wanted_fields) = wanted_permissions(&approved.scope);
    if !sets.is_empty() {
        // Object permissions, by object (on the grant's sets only; another set's are the
        // other set's drift, above).
        let mut seen: BTreeMap<String, (Vec<String>, bool)> = BTreeMap::new();
        for row in answers.objects {
            let object = row["SobjectType"].as_str().unwrap_or_default().to_string();
            let (perm, create) = observed_object(&row);
            let on_grant_set = ps
                .as_ref()
                .is_some_and(|p| id_of(&row, "ParentId").as_ref() == Some(p));
            let want = wanted_objects
                .iter()
                .find(|(o, _)| o.eq_ignore_ascii_case(&object))
                .map(|(_, p)| *p)
                .filter(|_| on_grant_set);
            let mut words = object_words(&perm);
            if create {
                words = if words == "none" {
                    "Create".into()
                } else {
                    format!("{words}, Create")
                };
            }
            let Some(id) = id_of(&row, "Id") else {
                continue;
            };
            match want {
                None => live.extras.object_rows.push(id),
                Some(want) if want != perm || create => live.extras.object_updates.push((
                    id,
                    json!({
                        "PermissionsRead": want.read, "PermissionsEdit": want.edit,
                        "PermissionsCreate": false, "PermissionsDelete": want.delete,
                        "PermissionsViewAllRecords": want.view_all,
                        "PermissionsModifyAllRecords": want.modify_all,
                    }),
                )),
                Some(_) => {}
            }
            let entry = seen.entry(object).or_default();
            entry.0.push(words);
            entry.1 |= want.is_none() || want.is_some_and(|w| !w_covers(&w, &perm, create));
        }
        let mut names: BTreeSet<String> = wanted_objects.keys().cloned().collect();
        names.extend(seen.keys().cloned());
        for object in names {
            let expected = wanted_objects
                .iter()
                .find(|(o, _)| o.eq_ignore_ascii_case(&object))
                .map(|(_, p)| object_words(p))
                .unwrap_or_else(|| "none".into());
            let (observed, wider) = seen
                .iter()
                .find(|(o, _)| o.eq_ignore_ascii_case(&object))
                .map(|(_, (words, wider))| (words.join(" + "), *wider))
                .unwrap_or_else(|| ("none".into(), false));
            live.lines.push(line(
                format!("{object}: object permissions"),
                expected,
                observed,
                wider,
            ));
        }

        // Field permissions: one line for all of them.
        let mut observed_fields = Vec::new();
        let mut wider = false;
        for row in answers.fields {
            let field = row["Field"].as_str().unwrap_or_default().to_string();
            let read = row["PermissionsRead"].as_bool().unwrap_or(false);
            let edit = row["PermissionsEdit"].as_bool().unwrap_or(false);
            let on_grant_set = ps
                .as_ref()
                .is_some_and(|p| id_of(&row, "ParentId").as_ref() == Some(p));
            let want = wanted_fields
                .iter()
                .find(|(f, _)| f.eq_ignore_ascii_case(&field))
                .map(|(_, p)| p.clone())
                .filter(|_| on_grant_set);
            let Some(id) = id_of(&row, "Id") else {
                continue;
            };
            if !read && !edit {
                continue;
            }
            let observed = FieldPerm {
                object: String::new(),
                read,
                edit,
            };
            match &want {
                None => {
                    wider = true;
                    live.extras.field_rows.push(id);
                }
                Some(w) if w.edit != edit => {
                    wider |= edit && !w.edit;
                    live.extras.field_updates.push((
                        id,
                        json!({ "PermissionsRead": true, "PermissionsEdit": w.edit }),
                    ));
                }
                Some(_) => {}
            }
            observed_fields.push(field_words(&field, &observed));
        }
        live.lines.push(line(
            "Field permissions".into(),
            list(wanted_fields.iter().map(|(f, p)| field_words(f, p))),
            list(observed_fields),
            wider,
        ));
    }

    // Public groups.
    let approved_group = approved
        .outputs
        .visibility()
        .and_then(|v| v.group_id.clone())
        .filter(|_| rule == VisibilityRule::Group);
    let mut observed_groups = Vec::new();
    for row in answers.groups {
        let group = row["GroupId"].as_str().unwrap_or_default().to_string();
        if approved_group.as_deref() != Some(group.as_str())
            && let Some(id) = id_of(&row, "Id")
        {
            live.extras.group_members.push(id);
        }
        observed_groups.push(group);
    }
    live.lines.push(line(
        "Public groups the integration user is in".into(),
        list(approved_group.clone()),
        list(observed_groups),
        !live.extras.group_members.is_empty(),
    ));

    // Shares and ownership, by object.
    let chosen = approved
        .outputs
        .visibility()
        .and_then(|v| v.records.clone())
        .unwrap_or_default();
    let chosen_of = |object: &str| -> BTreeSet<String> {
        chosen
            .iter()
            .find(|(o, _)| o.eq_ignore_ascii_case(object))
            .map(|(_, ids)| ids.iter().cloned().collect())
            .unwrap_or_default()
    };
    for (i, object) in objects.iter().enumerate() {
        let (share, record_field, _) = share_object(object);
        let expected = if rule == VisibilityRule::Shared {
            chosen_of(object)
        } else {
            BTreeSet::new()
        };
        let mut observed = BTreeSet::new();
        for row in &answers.shares[i] {
            let record = row[record_field.as_str()]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if !expected.contains(&record)
                && let Some(id) = id_of(row, "Id")
            {
                live.extras.shares.push((share.clone(), id));
            }
            observed.insert(record);
        }
        let wider = !observed.is_subset(&expected);
        live.lines.push(line(
            format!("{object}: records shared with the integration user"),
            list(expected),
            list(observed),
            wider,
        ));
        let expected = if rule == VisibilityRule::Owned {
            chosen_of(object)
        } else {
            BTreeSet::new()
        };
        let mut observed = BTreeSet::new();
        for row in &answers.owned[i] {
            let record = row["Id"].as_str().unwrap_or_default().to_string();
            if !expected.contains(&record)
                && let Some(id) = id_of(row, "Id")
            {
                live.extras.owned.push((object.clone(), id));
            }
            observed.insert(record);
        }
        let wider = !observed.is_subset(&expected);
        live.lines.push(line(
            format!("{object}: records the integration user owns"),
            list(expected),
            list(observed),
            wider,
        ));
    }
    live
}

/// Whether the approved object permission covers what the row grants.
fn w_covers(want: &ObjectPerm, seen: &ObjectPerm, create: bool) -> bool {
    !create
        && (want.read || !seen.read)
        && (want.edit || !seen.edit)
        && (want.delete || !seen.delete)
        && (want.view_all || !seen.view_all)
        && (want.modify_all || !seen.modify_all)
}
