//! Cancelling a run: what it made in Salesforce is undone in reverse order (the app, the
//! record visibility, the permission set assignment, the permission set with its
//! permissions, the licence assignment; the integration user, which Salesforce never
//! deletes, is deactivated), leaving the org as it was before the run started.
//!
//! Undo is durable like the run: each step that ever started gets undone by a worker under
//! a lease, newest first, and a crash part-way resumes. Every step that started is undone,
//! whatever it recorded: a step that crashed after Salesforce acted but before it was
//! recorded is found by its deterministic names, as the run itself does.

use salesforce::metadata::DeployId;
use salesforce::{Client, Cond, SalesforceId, Soql};
use serde_json::{Value, json};
use shared::grant::{GrantState, StepState};
use shared::scope::VisibilityRule;

use super::context::Context;
use super::records::{check_saved, find, soql};
use super::sharing::{OwnerRow, chosen_by_object, share_object};
use super::user::{LICENCE, licence_id};
use super::{Step, StepFailure};

use crate::audit::{self, Actor, AuditAction, Target};
use crate::clock::Clock;
use crate::db::Database;
use crate::eca;

/// Why a cancel was refused.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("there is no grant {0}")]
    NotFound(String),
    #[error("the grant is {0}: only a grant still being provisioned can be cancelled")]
    NotCancellable(String),
    #[error(
        "the grant's access is being taken away (its teardown stopped part-way): revoke it again to finish"
    )]
    Ending,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// What a cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// Nothing had started: the grant is cancelled already.
    Now,
    /// Steps had started: workers undo them, then the grant is cancelled.
    Undoing,
}

/// An admin's cancel of a grant that is approved, provisioning or needs attention (also a
/// cancel that stopped part-way, which carries on). Steps that never started are marked
/// cancelled; the others are undone by the workers.
pub async fn cancel(
    db: &Database,
    grant_id: &str,
    actor: &Actor,
    clock: &dyn Clock,
) -> Result<Cancelled, CancelError> {
    let now = clock.now_ms();
    let mut tx = db.begin_write().await?;
    let state: Option<String> = sqlx::query_scalar("SELECT state FROM grants WHERE id = $1")
        .bind(grant_id)
        .fetch_optional(&mut *tx.tx)
        .await?;
    match state.as_deref() {
        None => return Err(CancelError::NotFound(grant_id.to_string())),
        Some(state)
            if matches!(
                GrantState::parse(state),
                Ok(GrantState::Approved
                    | GrantState::Provisioning
                    | GrantState::NeedsAttention
                    | GrantState::Cancelling)
            ) => {}
        Some(other) => return Err(CancelError::NotCancellable(other.to_string())),
    }
    if super::teardown::is_ending(&mut tx.tx, grant_id).await? {
        return Err(CancelError::Ending);
    }
    sqlx::query(
        "UPDATE provisioning_steps SET state = $3, updated_at = $1 \
         WHERE grant_id = $2 AND started_at IS NULL",
    )
    .bind(now)
    .bind(grant_id)
    .bind(StepState::Cancelled.as_str())
    .execute(&mut *tx.tx)
    .await?;
    sqlx::query(
        "UPDATE provisioning_steps SET next_attempt_at = $1, updated_at = $1 \
         WHERE grant_id = $2 AND started_at IS NOT NULL AND state <> $3",
    )
    .bind(now)
    .bind(grant_id)
    .bind(StepState::Undone.as_str())
    .execute(&mut *tx.tx)
    .await?;
    let started = steps_left_to_undo(&mut tx.tx, grant_id).await?;
    let (grant_state, action, outcome) = if started == 0 {
        (
            GrantState::Cancelled,
            AuditAction::ProvisioningCancelled,
            Cancelled::Now,
        )
    } else {
        (
            GrantState::Cancelling,
            AuditAction::ProvisioningCancelRequested,
            Cancelled::Undoing,
        )
    };
    sqlx::query("UPDATE grants SET state = $1, attention = NULL, updated_at = $2 WHERE id = $3")
        .bind(grant_state.as_str())
        .bind(now)
        .bind(grant_id)
        .execute(&mut *tx.tx)
        .await?;
    audit::record(
        &mut tx.tx,
        actor,
        action,
        Target::Grant,
        grant_id,
        json!({ "was": state, "steps_to_undo": started }),
    )
    .await?;
    tx.commit().await?;
    Ok(outcome)
}

/// How many of the grant's steps started and are not undone yet: what a cancel or a
/// teardown still has to undo.
pub(super) async fn steps_left_to_undo(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    grant_id: &str,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM provisioning_steps \
         WHERE grant_id = $1 AND started_at IS NOT NULL AND state <> $2",
    )
    .bind(grant_id)
    .bind(StepState::Undone.as_str())
    .fetch_one(&mut **tx)
    .await
}

/// Undoes one step; what it removed or gave back, as evidence.
pub(super) async fn run(client: &Client, step: Step, cx: &Context) -> Result<Value, StepFailure> {
    match step {
        // Nothing of their own in the org: the proof only read; the consumer, the deploy's
        // result and the trusted IP ranges belong to the app, which the app step's undo
        // deletes.
        Step::Restrict | Step::Proof | Step::Consumer | Step::AppDeployed => {
            Ok(json!({ "nothing": true }))
        }
        Step::App => delete_app(client, cx).await,
        Step::Visibility => undo_visibility(client, cx).await,
        Step::Assignment => delete_assignment(client, cx).await,
        Step::PermissionSet => delete_permission_set(client, cx).await,
        Step::Licence => delete_licence(client, cx).await,
        Step::User => deactivate_user(client, cx).await,
    }
}

/// The integration user's id: as recorded, else by its deterministic username.
pub(super) async fn user_id(
    client: &Client,
    cx: &Context,
) -> Result<Option<SalesforceId>, StepFailure> {
    if let Ok(id) = cx.user_id() {
        return Ok(Some(id));
    }
    find(
        client,
        "User",
        Cond::eq("Username", cx.names.username.as_str()),
    )
    .await
}

async fn permission_set_id(
    client: &Client,
    cx: &Context,
) -> Result<Option<SalesforceId>, StepFailure> {
    if let Ok(id) = cx.permission_set_id() {
        return Ok(Some(id));
    }
    find(
        client,
        "PermissionSet",
        Cond::eq("Name", cx.names.permission_set.as_str()),
    )
    .await
}

/// A record that is already gone counts as deleted.
async fn delete_if_there(
    client: &Client,
    object: &str,
    id: &SalesforceId,
) -> Result<bool, StepFailure> {
    match client.delete(object, id).await {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.error_code(), Some("ENTITY_IS_DELETED" | "NOT_FOUND")) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Deletes the app by a destructive deploy, after any deploy of it still running (deploys
/// run one at a time per org, in order, so a deploy the crashed run started but did not
/// record finishes before this one deletes what it made).
async fn delete_app(client: &Client, cx: &Context) -> Result<Value, StepFailure> {
    // A deletion this step started before (and the crash lost) is simply done again.
    let (deleted, DeployId(id)) = eca::delete(client, &cx.app(), &cx.deploy_poll).await?;
    Ok(json!({ "app": cx.names.app, "deleted": deleted, "deploy_id": id.as_str() }))
}

async fn undo_visibility(client: &Client, cx: &Context) -> Result<Value, StepFailure> {
    let Some(user) = user_id(client, cx).await? else {
        return Ok(json!({ "nothing": true }));
    };
    match cx.scope.visibility.rule {
        VisibilityRule::Shared => {
            let objects: Vec<String> = match cx.outputs.visibility() {
                Some(output) => output
                    .records
                    .as_ref()
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default(),
                None => chosen_by_object(client, cx).await?.into_keys().collect(),
            };
            let mut removed = Vec::new();
            for object in objects {
                let (share, _, _) = share_object(&object);
                let rows: Vec<Value> = client
                    .query_all(&soql(
                        Soql::select(&["Id"])
                            .from(&share)
                            .filter(Cond::and([
                                Cond::eq("UserOrGroupId", &user),
                                Cond::eq("RowCause", "Manual"),
                            ]))
                            .build(),
                    )?)
                    .await?;
                let ids: Vec<SalesforceId> = rows
                    .iter()
                    .filter_map(|r| r["Id"].as_str())
                    .filter_map(|id| SalesforceId::parse(id).ok())
                    .collect();
                for chunk in ids.chunks(200) {
                    for result in client.delete_collection(chunk, false).await? {
                        let gone = result.success
                            || result
                                .errors
                                .iter()
                                .any(|e| e.error_code == "ENTITY_IS_DELETED");
                        if !gone {
                            result.into_result(400).map_err(StepFailure::from)?;
                        }
                    }
                }
                removed.extend(ids.iter().map(|id| id.as_str().to_string()));
            }
            Ok(json!({ "rule": "shared", "shares_deleted": removed }))
        }
        VisibilityRule::Owned => {
            // Previous owners: saved before the transfer (checkpoint), also in the output.
            let mut previous: std::collections::BTreeMap<String, String> = cx
                .checkpoint
                .as_ref()
                .map(|c| c.previous_owners.clone())
                .unwrap_or_default();
            if let Some(owned) = cx.outputs.visibility().and_then(|o| o.owned.as_ref()) {
                for row in owned {
                    if let Some(owner) = &row.previous_owner {
                        previous.insert(row.id.clone(), owner.clone());
                    }
                }
            }
            let chosen = chosen_by_object(client, cx).await?;
            let mut given_back = Vec::new();
            // Records not given back, and why: someone else owns them now (the org's
            // admins moved them after the transfer), or their previous owner is unknown.
            let mut kept = Vec::new();
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
                    let back: Vec<(SalesforceId, Value)> = rows
                        .iter()
                        .filter(|r| r.owner_id == user)
                        .filter_map(|r| {
                            previous
                                .get(r.id.as_str())
                                .map(|owner| (r.id.clone(), json!({ "OwnerId": owner })))
                        })
                        .collect();
                    for row in &rows {
                        if row.owner_id != user {
                            kept.push(json!({
                                "object": object, "id": row.id.as_str(),
                                "owner": row.owner_id.as_str(),
                                "why": "no longer owned by the integration user",
                            }));
                        } else if !previous.contains_key(row.id.as_str()) {
                            kept.push(json!({
                                "object": object, "id": row.id.as_str(),
                                "why": "its previous owner is not known",
                            }));
                        }
                    }
                    check_saved(client.update_collection(object, &back, true).await?)?;
                    given_back.extend(back.iter().map(|(id, _)| id.as_str().to_string()));
                }
            }
            Ok(json!({ "rule": "owned", "given_back": given_back, "not_given_back": kept }))
        }
        VisibilityRule::Group => {
            let member = match cx
                .outputs
                .visibility()
                .and_then(|o| o.group_member_id.as_deref())
                .and_then(|id| SalesforceId::parse(id).ok())
            {
                Some(id) => Some(id),
                None => find(client, "GroupMember", Cond::eq("UserOrGroupId", &user)).await?,
            };
            let removed = match &member {
                Some(id) => delete_if_there(client, "GroupMember", id).await?,
                None => false,
            };
            Ok(json!({ "rule": "group", "group_member_deleted": removed }))
        }
    }
}

async fn delete_assignment(client: &Client, cx: &Context) -> Result<Value, StepFailure> {
    let (Some(user), Some(ps)) = (
        user_id(client, cx).await?,
        permission_set_id(client, cx).await?,
    ) else {
        return Ok(json!({ "nothing": true }));
    };
    let assignment = find(
        client,
        "PermissionSetAssignment",
        Cond::and([
            Cond::eq("AssigneeId", &user),
            Cond::eq("PermissionSetId", &ps),
        ]),
    )
    .await?;
    let deleted = match &assignment {
        Some(id) => delete_if_there(client, "PermissionSetAssignment", id).await?,
        None => false,
    };
    // The app permission set's assignment too.
    let mut app_deleted = false;
    if let Some(app_ps) = find(
        client,
        "PermissionSet",
        Cond::eq("Name", cx.names.app_permission_set.as_str()),
    )
    .await?
        && let Some(id) = find(
            client,
            "PermissionSetAssignment",
            Cond::and([
                Cond::eq("AssigneeId", &user),
                Cond::eq("PermissionSetId", &app_ps),
            ]),
        )
        .await?
    {
        app_deleted = delete_if_there(client, "PermissionSetAssignment", &id).await?;
    }
    Ok(json!({ "assignment_deleted": deleted, "app_assignment_deleted": app_deleted }))
}

async fn delete_permission_set(client: &Client, cx: &Context) -> Result<Value, StepFailure> {
    let ps = find(
        client,
        "PermissionSet",
        Cond::eq("Name", cx.names.permission_set.as_str()),
    )
    .await?;
    let deleted = match &ps {
        Some(id) => delete_if_there(client, "PermissionSet", id).await?,
        None => false,
    };
    let app_ps = find(
        client,
        "PermissionSet",
        Cond::eq("Name", cx.names.app_permission_set.as_str()),
    )
    .await?;
    let app_deleted = match &app_ps {
        Some(id) => delete_if_there(client, "PermissionSet", id).await?,
        None => false,
    };
    Ok(json!({
        "permission_set": cx.names.permission_set,
        "deleted": deleted,
        "app_permission_set": cx.names.app_permission_set,
        "app_deleted": app_deleted,
    }))
}

async fn delete_licence(client: &Client, cx: &Context) -> Result<Value, StepFailure> {
    let Some(user) = user_id(client, cx).await? else {
        return Ok(json!({ "nothing": true }));
    };
    let psl = match cx
        .outputs
        .licence()
        .and_then(|o| SalesforceId::parse(&o.licence_id).ok())
    {
        Some(id) => id,
        None => licence_id(client).await?,
    };
    let assignment = find(
        client,
        "PermissionSetLicenseAssign",
        Cond::and([
            Cond::eq("AssigneeId", &user),
            Cond::eq("PermissionSetLicenseId", &psl),
        ]),
    )
    .await?;
    let deleted = match &assignment {
        Some(id) => delete_if_there(client, "PermissionSetLicenseAssign", id).await?,
        None => false,
    };
    Ok(json!({ "licence": LICENCE, "deleted": deleted }))
}

/// Salesforce never deletes users: the integration user is deactivated (which also frees
/// its Salesforce Integration user licence).
async fn deactivate_user(client: &Client, cx: &Context) -> Result<Value, StepFailure> {
    let Some(user) = user_id(client, cx).await? else {
        return Ok(json!({ "nothing": true }));
    };
    client
        .update("User", &user, &json!({ "IsActive": false }))
        .await?;
    Ok(json!({ "user_id": user.as_str(), "deactivated": true }))
}
