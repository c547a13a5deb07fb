//! A grant's chosen records and how they are shared: each standard object's manual-share
//! object and fields, the chosen records grouped by object with their owners, and the check
//! (before any share is attempted) that the org's sharing models allow it. What the models
//! allow is `crate::sharing_model`'s, below both this step and the approval form.

use std::collections::BTreeMap;

use salesforce::{Client, SalesforceId};
use serde::Deserialize;

use crate::sharing_model::STANDARD_PREFIXES;

use super::StepFailure;
use super::context::Context;

/// A standard object's manual-share object and its fields: `(share object, record field,
/// access level field)`. Custom objects use `X__Share` with `ParentId` and `AccessLevel`.
pub fn share_object(object: &str) -> (String, String, String) {
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

/// Refuses, before any share is attempted, chosen records of objects whose sharing model
/// (the org-wide default, read from the org) makes a manual share impossible.
pub(super) async fn check_sharing_models(
    client: &Client,
    cx: &Context,
    chosen: &BTreeMap<String, Vec<SalesforceId>>,
) -> Result<(), StepFailure> {
    let objects: Vec<&str> = chosen.keys().map(String::as_str).collect();
    let refusals = crate::sharing_model::refusals(client, &cx.scope, &objects).await?;
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
