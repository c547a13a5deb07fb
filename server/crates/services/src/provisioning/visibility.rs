//! Record visibility for the integration user, by the grant's rule: manual shares of the
//! chosen records (shared), the chosen records transferred to it with their previous owners
//! kept (owned), or membership of a public group (group).

use std::collections::BTreeMap;

use salesforce::{Client, Cond, SalesforceId, Soql};
use serde_json::{Value, json};
use shared::scope::{Level, VisibilityRule};

use super::StepFailure;
use super::context::Context;
use super::outputs::{Checkpoint, OwnedRecord, VisibilityMade};
use super::permissions::is_activity;
use super::records::{check_saved, find, find_or_create, soql};
use super::sharing::{OwnerRow, check_sharing_models, chosen_by_object, share_object};
use crate::org_failure::not_found;

pub(super) async fn visibility(
    client: &Client,
    cx: &Context,
) -> Result<VisibilityMade, StepFailure> {
    let user = cx.user_id()?;
    let rule = cx.scope.visibility.rule;
    match rule {
        VisibilityRule::Shared => {
            let chosen = chosen_by_object(client, cx).await?;
            if let Some((object, _)) = chosen.iter().find(|(o, _)| is_activity(o)) {
                // No TaskShare or EventShare: an activity's access follows its parent.
                return Err(StepFailure {
                    message: format!(
                        "{object} records cannot be shared: Salesforce has no {object}Share, and an activity is visible with the record it belongs to. Share the parent record (the Case or Account) instead, or choose another visibility rule."
                    ),
                    transient: false,
                });
            }
            check_sharing_models(client, cx, &chosen).await?;
            let mut shares = Vec::new();
            for (object, ids) in &chosen {
                let (share, record_field, level_field) = share_object(object);
                let level = match cx.scope.object(object).map(|o| o.level) {
                    Some(Level::Edit) => "Edit",
                    _ => "Read",
                };
                for chunk in ids.chunks(200) {
                    let mut missing: Vec<&SalesforceId> = chunk.iter().collect();
                    if !cx.first_attempt {
                        let existing: Vec<Value> = client
                            .query_all(&soql(
                                Soql::select(&["Id", record_field.as_str()])
                                    .from(&share)
                                    .filter(Cond::and([
                                        Cond::eq("UserOrGroupId", &user),
                                        Cond::eq("RowCause", "Manual"),
                                        Cond::in_list(&record_field, chunk.iter().cloned()),
                                    ]))
                                    .build(),
                            )?)
                            .await?;
                        for row in &existing {
                            shares.extend(row["Id"].as_str().map(str::to_string));
                        }
                        missing.retain(|id| {
                            !existing
                                .iter()
                                .any(|row| row[record_field.as_str()].as_str() == Some(id.as_str()))
                        });
                    }
                    let rows: Vec<Value> = missing
                        .iter()
                        .map(|id| {
                            json!({
                                record_field.as_str(): id.as_str(),
                                "UserOrGroupId": user.as_str(),
                                level_field.as_str(): level,
                            })
                        })
                        .collect();
                    let made = check_saved(client.create_collection(&share, &rows, true).await?)?;
                    shares.extend(made.iter().map(|id| id.as_str().to_string()));
                }
            }
            Ok(VisibilityMade {
                rule: rule.as_str().to_string(),
                shares: Some(shares),
                records: Some(recorded(&chosen)),
                ..VisibilityMade::default()
            })
        }
        VisibilityRule::Owned => {
            // The previous owners are saved before the transfer (and kept in the output)
            // so that cancelling can give the records back, even after a crash mid-way.
            let chosen = chosen_by_object(client, cx).await?;
            let mut previous: BTreeMap<String, String> = cx
                .checkpoint
                .as_ref()
                .map(|c| c.previous_owners.clone())
                .unwrap_or_default();
            let mut current = Vec::new();
            for (object, ids) in &chosen {
                for chunk in ids.chunks(200) {
                    let rows: Vec<OwnerRow> = client
                        .query_all(&soql(
                            Soql::select(&["Id", "OwnerId"])
                                .from(object)
                                .filter(Cond::in_list("Id", chunk.iter().cloned()))
                                .build(),
                        )?)
                        .await?;
                    current.extend(rows.into_iter().map(|r| (object.clone(), r)));
                }
            }
            for (_, row) in &current {
                if row.owner_id != user {
                    previous.insert(
                        row.id.as_str().to_string(),
                        row.owner_id.as_str().to_string(),
                    );
                }
            }
            cx.saver
                .save(&Checkpoint {
                    previous_owners: previous.clone(),
                })
                .await?;
            let mut owned = Vec::new();
            for (object, ids) in &chosen {
                let transfer: Vec<(SalesforceId, Value)> = current
                    .iter()
                    .filter(|(o, r)| o == object && r.owner_id != user)
                    .map(|(_, r)| (r.id.clone(), json!({ "OwnerId": user.as_str() })))
                    .collect();
                for chunk in transfer.chunks(200) {
                    check_saved(client.update_collection(object, chunk, true).await?)?;
                }
                for id in ids {
                    owned.push(OwnedRecord {
                        object: object.clone(),
                        id: id.as_str().to_string(),
                        previous_owner: previous.get(id.as_str()).cloned(),
                    });
                }
            }
            Ok(VisibilityMade {
                rule: rule.as_str().to_string(),
                owned: Some(owned),
                records: Some(recorded(&chosen)),
                ..VisibilityMade::default()
            })
        }
        VisibilityRule::Group => {
            let name = cx
                .scope
                .visibility
                .group
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| StepFailure {
                    message: "the group visibility rule names no public group".into(),
                    transient: false,
                })?;
            let group = find(
                client,
                "Group",
                Cond::and([
                    Cond::eq("Type", "Regular"),
                    Cond::or([Cond::eq("DeveloperName", name), Cond::eq("Name", name)]),
                ]),
            )
            .await?
            .ok_or_else(|| not_found(&format!("The public group '{name}'")))?;
            let (member, _) = find_or_create(
                client,
                cx,
                "GroupMember",
                Cond::and([
                    Cond::eq("GroupId", &group),
                    Cond::eq("UserOrGroupId", &user),
                ]),
                &json!({ "GroupId": group.as_str(), "UserOrGroupId": user.as_str() }),
            )
            .await?;
            Ok(VisibilityMade {
                rule: rule.as_str().to_string(),
                group_id: Some(group.as_str().to_string()),
                group_member_id: Some(member.as_str().to_string()),
                ..VisibilityMade::default()
            })
        }
    }
}

/// The chosen records by object, as the output keeps them.
fn recorded(chosen: &BTreeMap<String, Vec<SalesforceId>>) -> BTreeMap<String, Vec<String>> {
    chosen
        .iter()
        .map(|(object, ids)| {
            let ids = ids.iter().map(|id| id.as_str().to_string()).collect();
            (object.clone(), ids)
        })
        .collect()
}
