//! The blast-radius preview: what a scope would expose if it were granted, read from the
//! org with the portal's own connection: which objects and fields exist (and which no
//! longer do), how many records the visibility rule reaches, and what is risky.
//!
//! Record counts are `SELECT COUNT()` queries built with the SOQL builder (record ids and
//! group names are values, never pasted into the query text).

use serde::Deserialize;
use shared::scope::{Level, ObjectAccess, Scope, VisibilityRule};

use salesforce::rest::Describe;
use salesforce::{Cond, SalesforceId, Soql};

use crate::Portal;

/// Ids per `Id IN (...)` query, to keep each query well under SOQL's length limit.
const IDS_PER_QUERY: usize = 200;

pub use shared::blast::{BlastRadius, ObjectBlast};

/// Whether `e` means "the org has no such object" rather than "the org could not be asked".
fn no_such_object(e: &salesforce::Error) -> bool {
    e.is_not_found()
        || matches!(e, salesforce::Error::Soql(_))
        || matches!(e.error_code(), Some("INVALID_TYPE"))
}

async fn count(
    client: &salesforce::Client,
    object: &str,
    cond: Option<Cond>,
) -> Result<u64, salesforce::Error> {
    let mut query = Soql::count().from(object);
    if let Some(cond) = cond {
        query = query.filter(cond);
    }
    client.count(&query.build()?).await
}

#[derive(Deserialize)]
struct GroupRow {
    #[serde(rename = "Id")]
    id: SalesforceId,
}

impl Portal {
    /// Computes the blast radius of `scope` against the org. Errors only when the org
    /// cannot be asked; everything wrong with the scope itself is a problem in the answer.
    pub async fn blast_radius(&self, scope: &Scope) -> Result<BlastRadius, salesforce::Error> {
        let client = &self.salesforce;
        let mut problems = Vec::new();
        let visibility = &scope.visibility;

        let mut chosen: Vec<SalesforceId> = Vec::new();
        if matches!(
            visibility.rule,
            VisibilityRule::Owned | VisibilityRule::Shared
        ) {
            for raw in &visibility.record_ids {
                match SalesforceId::parse(raw.trim()) {
                    Ok(id) if !chosen.contains(&id) => chosen.push(id),
                    Ok(_) => {}
                    Err(_) => problems.push(format!("'{raw}' is not a Salesforce record id.")),
                }
            }
        }
        let group = match (visibility.rule, visibility.group.as_deref().map(str::trim)) {
            (VisibilityRule::Group, Some(name)) if !name.is_empty() => {
                let query = Soql::select(&["Id"])
                    .from("Group")
                    .filter(Cond::or([
                        Cond::eq("DeveloperName", name),
                        Cond::eq("Name", name),
                    ]))
                    .limit(1)
                    .build()?;
                let found: Vec<GroupRow> = client.query_all(&query).await?;
                match found.into_iter().next() {
                    Some(row) => Some((name.to_string(), row.id)),
                    None => {
                        problems.push(format!(
                            "There is no public group named '{name}' in the org."
                        ));
                        None
                    }
                }
            }
            (VisibilityRule::Group, _) => {
                problems.push("No public group is named for the group visibility rule.".into());
                None
            }
            _ => None,
        };

        let mut objects = Vec::new();
        // Key prefixes of the objects found, to name chosen records of no granted object.
        let mut prefixes: Vec<String> = Vec::new();
        for access in &scope.objects {
            let describe = match client.describe(&access.object).await {
                Ok(describe) => describe,
                Err(e) if no_such_object(&e) => {
                    problems.push(format!("There is no object {} in the org.", access.object));
                    objects.push(ObjectBlast {
                        object: access.object.clone(),
                        level: access.level,
                        fields: Vec::new(),
                        unknown_fields: access.fields.keys().cloned().collect(),
                        object_access_fields: Vec::new(),
                        record_count: None,
                        counted: "not counted: the object does not exist".into(),
                        total_records: 0,
                    });
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut blast = fields_of(access, &describe, &mut problems);
            blast.total_records = count(client, &describe.name, None).await?;
            prefixes.extend(describe.key_prefix.clone());
            let (record_count, counted) = if access.view_all || access.modify_all {
                (
                    Some(blast.total_records),
                    format!(
                        "every {} record: {} ignores sharing",
                        describe.name,
                        if access.modify_all {
                            "Modify All"
                        } else {
                            "View All"
                        }
                    ),
                )
            } else {
                match visibility.rule {
                    VisibilityRule::Owned | VisibilityRule::Shared => {
                        let ids: Vec<&SalesforceId> = chosen
                            .iter()
                            .filter(|id| describe.key_prefix.as_deref() == Some(id.key_prefix()))
                            .collect();
                        let existing = self.existing(&describe.name, &ids).await?;
                        if existing < ids.len() as u64 {
                            problems.push(format!(
                                "{} of the {} chosen {} records do not exist in the org.",
                                ids.len() as u64 - existing,
                                ids.len(),
                                describe.name
                            ));
                        }
                        (
                            Some(existing),
                            format!(
                                "the chosen {} records that exist, {}",
                                describe.name,
                                if visibility.rule == VisibilityRule::Owned {
                                    "to be owned by the integration user"
                                } else {
                                    "to be shared with the integration user"
                                }
                            ),
                        )
                    }
                    VisibilityRule::Group => match &group {
                        None => (None, "not counted: no such group".into()),
                        Some((name, group_id)) => {
                            self.group_count(&describe, name, group_id).await?
                        }
                    },
                }
            };
            blast.record_count = record_count;
            blast.counted = counted;
            objects.push(blast);
        }
        for id in &chosen {
            if !prefixes.iter().any(|p| p == id.key_prefix()) {
                problems.push(format!(
                    "Record {} is not a record of any object in the scope.",
                    id.as_str()
                ));
            }
        }
        Ok(BlastRadius {
            objects,
            risks: scope.risks(),
            problems,
        })
    }

    /// How many of `ids` (all of `object`) exist.
    async fn existing(
        &self,
        object: &str,
        ids: &[&SalesforceId],
    ) -> Result<u64, salesforce::Error> {
        let mut existing = 0;
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let cond = Cond::in_list("Id", chunk.iter().map(|id| (*id).clone()));
            existing += count(&self.salesforce, object, Some(cond)).await?;
        }
        Ok(existing)
    }

    /// Records of `describe`'s object that a member of the group sees through the group.
    async fn group_count(
        &self,
        describe: &Describe,
        group_name: &str,
        group_id: &SalesforceId,
    ) -> Result<(Option<u64>, String), salesforce::Error> {
        let client = &self.salesforce;
        let share_object = format!("{}Share", describe.name);
        let shared = match count(
            client,
            &share_object,
            Some(Cond::eq("UserOrGroupId", group_id)),
        )
        .await
        {
            Ok(n) => n,
            Err(e) if no_such_object(&e) => {
                return Ok((
                    None,
                    format!(
                        "not counted: {} has no share object (its sharing follows the parent record)",
                        describe.name
                    ),
                ));
            }
            Err(e) => return Err(e),
        };
        let owned = if describe.field("OwnerId").is_some() {
            count(client, &describe.name, Some(Cond::eq("OwnerId", group_id))).await?
        } else {
            0
        };
        Ok((
            Some(shared + owned),
            format!(
                "{} records shared with the group {group_name} ({share_object}) or owned by it",
                describe.name
            ),
        ))
    }
}

/// The object's fields split into governed, unknown and object-level ones.
fn fields_of(
    access: &ObjectAccess,
    describe: &Describe,
    problems: &mut Vec<String>,
) -> ObjectBlast {
    let mut blast = ObjectBlast {
        object: describe.name.clone(),
        level: access.level,
        fields: Vec::new(),
        unknown_fields: Vec::new(),
        object_access_fields: Vec::new(),
        record_count: None,
        counted: String::new(),
        total_records: 0,
    };
    for (name, level) in &access.fields {
        match describe.field(name) {
            None => {
                problems.push(format!(
                    "The field {}.{name} does not exist in the org.",
                    describe.name
                ));
                blast.unknown_fields.push(name.clone());
            }
            Some(field) if !field.permissionable => {
                blast.object_access_fields.push(field.name.clone());
            }
            Some(field) => {
                if *level == Level::Edit && !field.updateable {
                    problems.push(format!(
                        "{}.{} is read-only in the org; edit access to it has no effect.",
                        describe.name, field.name
                    ));
                }
                blast.fields.push((field.name.clone(), *level));
            }
        }
    }
    blast
}
