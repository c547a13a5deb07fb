//! What an org's sharing model allows: manual-share objects, org-wide defaults and why a
//! share under them is refused, standard objects by key prefix, and the chosen records of a
//! grant by the object they belong to. Used by the visibility step, its undo, the proof and
//! the approval form's checks.

use std::collections::BTreeMap;

use salesforce::{Client, SalesforceId, Soql};
use serde::Deserialize;
use serde_json::Value;
use shared::scope::{Level, Scope};

use super::StepFailure;
use super::context::Context;

/// A standard object's manual-share object and its fields: `(share object, record field,
/// access level field)`. Custom objects use `X__Share` with `ParentId` and `AccessLevel`.
pub(super) fn share_object(object: &str) -> (String, String, String) {
    match object.strip_suffix("__c") {
        Some(base) => (
            format!("{base}__Share"),
            "ParentId".into(),
            "AccessLevel".into(),
        ),
        None => (
            format!("{object}Share"),
            format!("{object}Id"),
            format!("{object}AccessLevel"),
        ),
    }
}

/// Standard objects whose org-wide default the Organization record holds
/// (`Default<Object>Access`).
const ORG_WIDE_DEFAULTS: &[&str] = &["Account", "Contact", "Case", "Opportunity", "Lead"];

/// The Setup name of an org-wide default (`Organization.Default<Object>Access` value).
pub fn sharing_model_label(default: &str) -> &str {
    match default {
        "None" => "Private",
        "Read" => "Public Read Only",
        "Edit" => "Public Read/Write",
        "ReadEditTransfer" => "Public Read/Write/Transfer",
        "All" => "Public Full Access",
        "ControlledByParent" => "Controlled by Parent",
        other => other,
    }
}

/// Why sharing chosen `object` records at `level` is impossible under the object's
/// org-wide default `default`, or None when a manual share gives more than the default.
/// A real org has no manual share under Controlled by Parent, and refuses a share at or
/// below the default (INVALID_ACCESS_LEVEL).
pub fn share_refusal(object: &str, default: &str, level: Level) -> Option<String> {
    let model = sharing_model_label(default);
    match default {
        "ControlledByParent" => Some(format!(
            "{object} records cannot be shared: the org's {object} sharing model is {model}, so Salesforce has no manual {object}Share and a {object} follows its parent record. Share the parent record (the Account) instead, or choose another visibility rule."
        )),
        "Edit" | "ReadEditTransfer" | "All" => Some(format!(
            "{object} records cannot be shared: the org's {object} sharing model is {model}, so every user already sees and edits them and Salesforce refuses a share that adds nothing. Choose another visibility rule, or make {object} sharing Private in Setup > Sharing Settings."
        )),
        "Read" if level != Level::Edit => Some(format!(
            "{object} records cannot be shared at Read: the org's {object} sharing model is {model}, so every user already reads them and Salesforce refuses a share that adds nothing. Grant {object} Edit, choose another visibility rule, or make {object} sharing Private in Setup > Sharing Settings."
        )),
        _ => None,
    }
}

/// Why records of `objects` cannot be shared under `scope`, from the org-wide defaults read
/// from the org (one query of the Organization record); empty when every share is possible.
/// Objects without a default on the Organization record (custom objects) are not checked.
pub async fn sharing_refusals(
    client: &Client,
    scope: &Scope,
    objects: &[&str],
) -> Result<Vec<String>, salesforce::Error> {
    let objects: Vec<&str> = objects
        .iter()
        .copied()
        .filter(|o| ORG_WIDE_DEFAULTS.contains(o))
        .collect();
    if objects.is_empty() {
        return Ok(Vec::new());
    }
    let fields: Vec<String> = objects
        .iter()
        .map(|o| format!("Default{o}Access"))
        .collect();
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    let query = Soql::select(&fields).from("Organization").build()?;
    let rows: Vec<Value> = client.query_all(&query).await?;
    let Some(org) = rows.first() else {
        return Ok(Vec::new());
    };
    let mut refusals = Vec::new();
    for object in objects {
        let default = org[format!("Default{object}Access")]
            .as_str()
            .unwrap_or("None");
        let level = scope.object(object).map_or(Level::Read, |o| o.level);
        refusals.extend(share_refusal(object, default, level));
    }
    Ok(refusals)
}

/// The standard objects of chosen record ids, by their fixed key prefixes (others: None).
pub fn standard_object_of(id: &str) -> Option<&'static str> {
    let prefix = id.trim().get(..3)?;
    STANDARD_PREFIXES
        .iter()
        .find(|(p, _)| *p == prefix)
        .map(|(_, object)| *object)
}

/// Refuses, before any share is attempted, chosen records of objects whose sharing model
/// (the org-wide default, read from the org) makes a manual share impossible.
pub(super) async fn check_sharing_models(
    client: &Client,
    cx: &Context,
    chosen: &BTreeMap<String, Vec<SalesforceId>>,
) -> Result<(), StepFailure> {
    let objects: Vec<&str> = chosen.keys().map(String::as_str).collect();
    let refusals = sharing_refusals(client, &cx.scope, &objects).await?;
    if refusals.is_empty() {
        Ok(())
    } else {
        Err(StepFailure {
            message: refusals.join(" "),
            transient: false,
        })
    }
}

#[derive(Deserialize)]
pub(super) struct OwnerRow {
    #[serde(rename = "Id")]
    pub(super) id: SalesforceId,
    #[serde(rename = "OwnerId")]
    pub(super) owner_id: SalesforceId,
}

/// Key prefixes of standard objects, fixed across all orgs.
const STANDARD_PREFIXES: &[(&str, &str)] = &[
    ("001", "Account"),
    ("003", "Contact"),
    ("006", "Opportunity"),
    ("00Q", "Lead"),
    ("500", "Case"),
    ("00T", "Task"),
    ("00U", "Event"),
    ("800", "Contract"),
];

/// The chosen records, by the scope object they belong to (found by key prefix). A record
/// of no granted object is a permanent failure: the approval did not grant its object.
pub(super) async fn chosen_by_object(
    client: &Client,
    cx: &Context,
) -> Result<BTreeMap<String, Vec<SalesforceId>>, StepFailure> {
    let mut ids = Vec::new();
    for raw in &cx.scope.visibility.record_ids {
        let id = SalesforceId::parse(raw.trim()).map_err(|_| StepFailure {
            message: format!("'{raw}' is not a Salesforce record id"),
            transient: false,
        })?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let mut by_object: BTreeMap<String, Vec<SalesforceId>> = BTreeMap::new();
    if ids.is_empty() {
        return Ok(by_object);
    }
    // Standard objects' key prefixes are the same in every org; the org's object list
    // (an API call) is needed only for others.
    let known = |id: &SalesforceId| {
        STANDARD_PREFIXES
            .iter()
            .find(|(prefix, _)| *prefix == id.key_prefix())
            .map(|(_, object)| object.to_string())
    };
    let list = if ids.iter().all(|id| known(id).is_some()) {
        Vec::new()
    } else {
        client.sobjects().await?.sobjects
    };
    for id in ids {
        let object = known(&id)
            .or_else(|| {
                list.iter()
                    .find(|o| o.key_prefix.as_deref() == Some(id.key_prefix()))
                    .map(|o| o.name.clone())
            })
            .filter(|name| cx.scope.object(name).is_some())
            .ok_or_else(|| StepFailure {
                message: format!(
                    "record {} is not a record of any object the grant gives access to",
                    id.as_str()
                ),
                transient: false,
            })?;
        by_object.entry(object).or_default().push(id);
    }
    Ok(by_object)
}
