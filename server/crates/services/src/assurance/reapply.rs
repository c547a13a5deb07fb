//! Putting a drifted grant's approved configuration back (the re-apply policy): the extra
//! permission set assignments, object and field permissions, manual shares and group
//! memberships the live read found are removed (or set back to the approved flags), and the
//! approved app is deployed again (its policies as approved: permitted users, scopes,
//! session and refresh policies, trusted IP ranges). Records handed to the integration user
//! by hand cannot be given back without knowing to whom: they stay, and the table says so.

use salesforce::{Client, SalesforceId};
use serde_json::{Value, json};

use super::live::Extras;
use crate::eca::{self, DeployPoll};
use crate::org_failure::OrgFailure;
use crate::provisioning::reproof::Approved;

fn saved(
    results: Vec<salesforce::rest::SaveResult>,
    removed: &mut Vec<Value>,
) -> Result<(), OrgFailure> {
    for result in results {
        match result.into_result(400) {
            Ok(id) => removed.push(json!(id.as_str())),
            // Gone already (removed by hand meanwhile): nothing to put back.
            Err(e)
                if e.error_code() == Some("ENTITY_IS_DELETED")
                    || e.error_code() == Some("INVALID_CROSS_REFERENCE_KEY") => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

async fn delete_all(
    client: &Client,
    ids: &[SalesforceId],
    done: &mut Vec<Value>,
) -> Result<(), OrgFailure> {
    for chunk in ids.chunks(200) {
        saved(client.delete_collection(chunk, false).await?, done)?;
    }
    Ok(())
}

async fn update_all(
    client: &Client,
    object: &str,
    rows: &[(SalesforceId, Value)],
    done: &mut Vec<Value>,
) -> Result<(), OrgFailure> {
    for chunk in rows.chunks(200) {
        saved(client.update_collection(object, chunk, false).await?, done)?;
    }
    Ok(())
}

/// Removes `extras` and redeploys the approved app; what was done, as evidence.
pub(super) async fn run(
    client: &Client,
    approved: &Approved,
    contact_email: &str,
    extras: &Extras,
) -> Result<Value, OrgFailure> {
    let mut removed = Vec::new();
    let mut reset = Vec::new();
    // Field permissions before object permissions (a field's permission hangs on its
    // object's); setup objects and shares in separate calls (no mixed DML).
    update_all(
        client,
        "FieldPermissions",
        &extras.field_updates,
        &mut reset,
    )
    .await?;
    update_all(
        client,
        "ObjectPermissions",
        &extras.object_updates,
        &mut reset,
    )
    .await?;
    let setup: Vec<SalesforceId> = extras
        .field_rows
        .iter()
        .chain(&extras.object_rows)
        .chain(&extras.assignments)
        .chain(&extras.group_members)
        .cloned()
        .collect();
    delete_all(client, &setup, &mut removed).await?;
    let shares: Vec<SalesforceId> = extras.shares.iter().map(|(_, id)| id.clone()).collect();
    delete_all(client, &shares, &mut removed).await?;
    let app = approved.app(contact_email);
    let poll = DeployPoll::default();
    let id = eca::deploy(client, &app, !approved.ip_ranges.is_empty()).await?;
    eca::wait_for_deploy(client, &poll, &id, "the approved External Client App").await?;
    Ok(json!({
        "removed": removed,
        "reset": reset,
        "app_redeployed": id.0.as_str(),
        "not_given_back": extras.owned.iter().map(|(o, id)| format!("{o} {}", id.as_str())).collect::<Vec<_>>(),
    }))
}
