//! Objects' sharing models (organization-wide defaults), read from the org, and what they
//! allow: a manual share only gives access above the default, and some objects have no
//! manual share at all. The approval page offers record sharing only where it is possible;
//! approval and provisioning refuse it (before any share is attempted) where it is not.
//!
//! Standard objects' defaults are on the Organization record (`Default<Object>Access`);
//! custom objects' are EntityDefinition's `InternalSharingModel`, read one object at a
//! time: EntityDefinition queries take only equality filters ("Only equals comparisons
//! permitted", "Disjunctions not supported" in the Tooling API's SOQL limitations), and
//! whether `IN` works is in no source (UNCONFIRMED), so the portal does not rely on it.

use std::collections::BTreeMap;

use salesforce::{Client, Cond, Soql};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::scope::{Level, Scope};

use crate::Portal;

/// Standard objects whose org-wide default the Organization record holds.
const ORGANIZATION_DEFAULTS: &[&str] = &["Account", "Contact", "Case", "Opportunity", "Lead"];

/// Activities: no share object of their own; they follow the record they belong to.
const ACTIVITIES: &[&str] = &["Task", "Event"];

/// An EntityDefinition `InternalSharingModel` in the Organization record's vocabulary
/// (`Default<Object>Access`), so one set of rules judges both.
///
/// UNCONFIRMED: the picklist's values. EntityDefinition's reference names the field but
/// lists no values; these are Metadata API `CustomObject.sharingModel`'s (Private, Read,
/// ReadWrite, ReadWriteTransfer, FullAccess, ControlledByParent). The Organization's own
/// spellings (None, Edit, ReadEditTransfer, All) are taken too, in case the org answers in
/// those; anything else is passed through and judged as no known model (a share is tried
/// and the org decides).
pub fn from_entity_definition(model: &str) -> &str {
    match model {
        "Private" => "None",
        "ReadWrite" => "Edit",
        "ReadWriteTransfer" => "ReadEditTransfer",
        "FullAccess" => "All",
        other => other,
    }
}

/// The org-wide defaults of `objects` (Organization-style values), by object. Objects
/// the org has no default for (activities, unknown objects) are left out.
pub async fn org_wide_defaults(
    client: &Client,
    objects: &[&str],
) -> Result<BTreeMap<String, String>, salesforce::Error> {
    let mut defaults = BTreeMap::new();
    let standard: Vec<&str> = objects
        .iter()
        .copied()
        .filter(|o| ORGANIZATION_DEFAULTS.contains(o))
        .collect();
    if !standard.is_empty() {
        let fields: Vec<String> = standard
            .iter()
            .map(|o| format!("Default{o}Access"))
            .collect();
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        let query = Soql::select(&fields).from("Organization").build()?;
        let rows: Vec<Value> = client.query_all(&query).await?;
        if let Some(org) = rows.first() {
            for object in &standard {
                if let Some(default) = org[format!("Default{object}Access")].as_str() {
                    defaults.insert(object.to_string(), default.to_string());
                }
            }
        }
    }
    for object in objects.iter().filter(|o| o.ends_with("__c")) {
        let query = Soql::select(&["QualifiedApiName", "InternalSharingModel"])
            .from("EntityDefinition")
            .filter(Cond::eq("QualifiedApiName", *object))
            .build()?;
        let rows: Vec<Value> = client.query_all(&query).await?;
        if let Some(model) = rows
            .first()
            .and_then(|r| r["InternalSharingModel"].as_str())
        {
            defaults.insert(
                object.to_string(),
                from_entity_definition(model).to_string(),
            );
        }
    }
    Ok(defaults)
}

/// Why records of `objects` cannot be shared under `scope` (empty when every share is
/// possible), from the sharing models read from the org. Objects without a known model
/// are not refused here: the org decides when the share is made.
pub async fn refusals(
    client: &Client,
    scope: &Scope,
    objects: &[&str],
) -> Result<Vec<String>, salesforce::Error> {
    let defaults = org_wide_defaults(client, objects).await?;
    let mut refusals = Vec::new();
    for object in objects {
        if let Some(default) = defaults.get(*object) {
            let level = scope.object(object).map_or(Level::Read, |o| o.level);
            refusals.extend(share_refusal(object, default, level));
        }
    }
    Ok(refusals)
}

/// The objects of record ids as an approver typed them: standard objects by their fixed
/// key prefixes, others by the org's object list (read only when needed). Ids of no known
/// object are left out (the approval's own checks name them).
pub async fn objects_of_records(
    client: &Client,
    ids: &[String],
) -> Result<Vec<String>, salesforce::Error> {
    let mut objects: Vec<String> = Vec::new();
    let mut others: Vec<&str> = Vec::new();
    for id in ids {
        match standard_object_of(id) {
            Some(object) => objects.push(object.to_string()),
            None => others.extend(id.trim().get(..3)),
        }
    }
    if !others.is_empty() {
        let list = client.sobjects().await?.sobjects;
        for prefix in others {
            objects.extend(
                list.iter()
                    .find(|o| o.key_prefix.as_deref() == Some(prefix))
                    .map(|o| o.name.clone()),
            );
        }
    }
    objects.sort_unstable();
    objects.dedup();
    Ok(objects)
}

/// Whether an approver may choose `object`'s records to share, and why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectSharing {
    pub object: String,
    /// The org-wide default's Setup name (e.g. "Public Read/Write"); None for activities
    /// and objects without a known default.
    pub model: Option<String>,
    /// A manual share of its records can give access the default does not.
    pub offered: bool,
    /// For the approver: why sharing is not offered, or what it can add.
    pub note: Option<String>,
}

/// What sharing `object`'s records can do under its org-wide default `default`.
pub fn object_sharing(object: &str, default: Option<&str>) -> ObjectSharing {
    let model = default.map(|d| sharing_model_label(d).to_string());
    let (offered, note) = match default {
        _ if ACTIVITIES.contains(&object) => (
            false,
            Some(format!(
                "{object}: no sharing of its own (Salesforce has no {object}Share) — a {object} follows the record it belongs to; share that record instead"
            )),
        ),
        Some("Edit" | "ReadEditTransfer" | "All") => (
            false,
            Some(format!(
                "{object}: org-wide default {} — every user sees and edits all {object} records; no sharing needed",
                model.as_deref().unwrap_or_default()
            )),
        ),
        Some("ControlledByParent") => (
            false,
            Some(format!(
                "{object}: org-wide default Controlled by Parent — a {object} follows its parent record (no {object}Share); share the parent record instead"
            )),
        ),
        Some("Read") => (
            true,
            Some(format!(
                "{object}: org-wide default Public Read Only — every user already reads all {object} records; a share adds edit access only, so grant {object} Read and edit"
            )),
        ),
        _ => (true, None),
    };
    ObjectSharing {
        object: object.to_string(),
        model,
        offered,
        note,
    }
}

impl Portal {
    /// What sharing records of each of `objects` can do, from the sharing models read from
    /// the org (an error when the org cannot be asked: the caller says so, and approval and
    /// provisioning check again).
    pub async fn record_sharing(
        &self,
        objects: &[String],
    ) -> Result<Vec<ObjectSharing>, salesforce::Error> {
        let names: Vec<&str> = objects.iter().map(String::as_str).collect();
        let defaults = org_wide_defaults(&self.salesforce, &names).await?;
        Ok(names
            .iter()
            .map(|o| object_sharing(o, defaults.get(*o).map(String::as_str)))
            .collect())
    }
}

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

/// The standard objects of chosen record ids, by their fixed key prefixes (others: None).
pub fn standard_object_of(id: &str) -> Option<&'static str> {
    let prefix = id.trim().get(..3)?;
    STANDARD_PREFIXES
        .iter()
        .find(|(p, _)| *p == prefix)
        .map(|(_, object)| *object)
}

/// Key prefixes of standard objects, fixed across all orgs.
pub(crate) const STANDARD_PREFIXES: &[(&str, &str)] = &[
    ("001", "Account"),
    ("003", "Contact"),
    ("006", "Opportunity"),
    ("00Q", "Lead"),
    ("500", "Case"),
    ("00T", "Task"),
    ("00U", "Event"),
    ("800", "Contract"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_definition_models_are_judged_like_organization_defaults() {
        assert_eq!(from_entity_definition("Private"), "None");
        assert_eq!(from_entity_definition("ReadWrite"), "Edit");
        assert_eq!(from_entity_definition("Read"), "Read");
        assert_eq!(
            from_entity_definition("ControlledByParent"),
            "ControlledByParent"
        );
        assert_eq!(from_entity_definition("Edit"), "Edit");
    }

    #[test]
    fn sharing_is_offered_only_where_a_share_adds_access() {
        let case = object_sharing("Case", Some("Edit"));
        assert!(!case.offered);
        assert_eq!(
            case.note.as_deref(),
            Some(
                "Case: org-wide default Public Read/Write — every user sees and edits all Case records; no sharing needed"
            )
        );
        assert!(!object_sharing("Contact", Some("ControlledByParent")).offered);
        assert!(!object_sharing("Task", None).offered);
        assert!(object_sharing("Account", Some("None")).offered);
        assert!(object_sharing("Account", Some("None")).note.is_none());
        assert!(object_sharing("Project__c", Some("Read")).offered);
        assert!(object_sharing("Project__c", None).offered);
    }
}
