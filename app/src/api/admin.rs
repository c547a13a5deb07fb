//! The approvers' and owners' side: the review queue, a request with its blast radius,
//! decisions, the access catalog, roles and settings. Every function checks the caller's
//! role first; a refused call changes nothing.

// A server function's arguments are its form's fields, one each.
#![allow(clippy::too_many_arguments)]

use std::collections::HashMap;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use shared::FieldErrors;
use shared::budget::Budget;
use shared::request::RequestState;
use shared::scope::{Level, Scope, ScopeChange};

/// One row of the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRow {
    pub id: String,
    pub company: String,
    pub contact_name: String,
    pub contact_email: String,
    pub state: RequestState,
    pub created_at: String,
    pub age_hours: i64,
    pub risky: bool,
    pub approvals: i64,
    pub approvals_required: i64,
    pub end_date: String,
    pub calls_per_day: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuePage {
    pub rows: Vec<QueueRow>,
    pub counts: Vec<(RequestState, i64)>,
    pub next_cursor: Option<String>,
}

#[server(endpoint = "admin_queue")]
pub async fn admin_queue(
    state: Option<String>,
    company: Option<String>,
    age: Option<String>,
    before: Option<String>,
) -> Result<QueuePage, ServerFnError> {
    use super::ssr::{internal, portal, refuse, require};
    use shared::auth::Role;
    require(&[Role::Approver, Role::Owner]).await?;
    let portal = portal()?;
    let state = match state
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "any")
    {
        None => None,
        Some(raw) => Some(
            RequestState::parse(raw)
                .ok_or_else(|| refuse(400, &format!("'{raw}' is not a request state.")))?,
        ),
    };
    let (min_age_hours, max_age_hours) = match age.as_deref().unwrap_or("any") {
        "any" | "" => (None, None),
        "day" => (None, Some(24)),
        "week" => (None, Some(24 * 7)),
        "older-day" => (Some(24), None),
        "older-week" => (Some(24 * 7), None),
        other => return Err(refuse(400, &format!("'{other}' is not an age filter."))),
    };
    let filter = services::decisions::QueueFilter {
        state,
        company: company.filter(|c| !c.trim().is_empty()),
        min_age_hours,
        max_age_hours,
        limit: 50,
        before: before.filter(|b| !b.is_empty()),
    };
    let view = portal.queue(&filter).await.map_err(internal)?;
    let now = portal.clock().now_ms();
    Ok(QueuePage {
        rows: view
            .items
            .into_iter()
            .map(|i| QueueRow {
                age_hours: (now - i.created_at) / 3_600_000,
                created_at: services::clock::rfc3339(i.created_at),
                id: i.id,
                company: i.company,
                contact_name: i.contact_name,
                contact_email: i.contact_email,
                state: i.state,
                risky: i.risky,
                approvals: i.approvals,
                approvals_required: i.approvals_required,
                end_date: i.end_date,
                calls_per_day: i.calls_per_day,
            })
            .collect(),
        counts: view.counts,
        next_cursor: view.next_cursor,
    })
}

/// A decision as the request page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRow {
    pub approver: String,
    pub decision: String,
    pub reason: String,
    pub at: String,
    pub changes: Vec<ScopeChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRow {
    pub at: String,
    pub message: String,
    pub internal: bool,
}

/// What the blast radius says about one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectBlastRow {
    pub object: String,
    pub level: Level,
    pub fields: Vec<(String, Level)>,
    pub unknown_fields: Vec<String>,
    pub record_count: Option<u64>,
    pub total_records: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlastView {
    pub objects: Vec<ObjectBlastRow>,
    pub risks: Vec<String>,
    pub problems: Vec<String>,
}

/// A grantable field of the org, for the decision form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgFieldRow {
    pub name: String,
    pub label: String,
    pub editable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgObjectRow {
    pub name: String,
    pub label: String,
    pub fields: Vec<OrgFieldRow>,
}

/// A request, as an approver reviews it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestView {
    pub id: String,
    pub company: String,
    pub contact_name: String,
    pub contact_email: String,
    pub justification: String,
    pub state: RequestState,
    pub scope: Scope,
    pub calls_per_day: i64,
    pub ip_ranges: Vec<String>,
    pub end_date: String,
    pub created_at: String,
    pub risky: bool,
    pub risks: Vec<String>,
    pub approvals_required: i64,
    pub decisions: Vec<DecisionRow>,
    pub events: Vec<EventRow>,
    pub blast: Option<BlastView>,
    /// Why the blast radius could not be computed, if it could not.
    pub blast_error: Option<String>,
    pub org_objects: Vec<OrgObjectRow>,
    /// Whether each object's records can be shared, from its sharing model read from the org.
    pub record_sharing: Vec<RecordSharingRow>,
    /// Why the sharing models could not be read, if they could not.
    pub record_sharing_error: Option<String>,
    /// What the decision form starts from.
    pub proposal: Proposal,
    pub viewer: String,
}

/// Whether an approver may choose an object's records to share (see
/// `services::sharing_model`), and why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSharingRow {
    pub object: String,
    pub offered: bool,
    pub note: Option<String>,
}

/// The decision form's starting values: what the contractor asked for, or, once an
/// approver has approved, what they approved (a second approver confirms or narrows it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub scope: Scope,
    pub budget: Budget,
    pub end_date: String,
    pub ip_ranges: Vec<String>,
    /// The approver whose approval the values come from.
    pub from_approver: Option<String>,
}

#[server(endpoint = "admin_request")]
pub async fn admin_request(id: String) -> Result<Option<RequestView>, ServerFnError> {
    use super::ssr::{internal, portal, require, status};
    use shared::auth::Role;
    let (user, _) = require(&[Role::Approver, Role::Owner]).await?;
    let portal = portal()?;
    let Some(detail) = portal.request_detail(id.trim()).await.map_err(internal)? else {
        status(404);
        return Ok(None);
    };
    let (blast, blast_error) = match portal.blast_radius(&detail.scope).await {
        Ok(b) => (
            Some(BlastView {
                objects: b
                    .objects
                    .into_iter()
                    .map(|o| ObjectBlastRow {
                        object: o.object,
                        level: o.level,
                        fields: o.fields,
                        unknown_fields: o.unknown_fields,
                        record_count: o.record_count,
                        total_records: o.total_records,
                    })
                    .collect(),
                risks: b.risks,
                problems: b.problems,
            }),
            None,
        ),
        Err(e) => {
            tracing::warn!(error = %e, "blast radius failed");
            (
                None,
                Some(
                    "The org could not be asked right now; the blast radius is not available."
                        .to_string(),
                ),
            )
        }
    };
    let org_objects: Vec<OrgObjectRow> = portal
        .org_objects()
        .await
        .map(|objects| {
            objects
                .into_iter()
                .map(|o| OrgObjectRow {
                    fields: o
                        .fields
                        .into_iter()
                        .filter(|f| f.permissionable)
                        .map(|f| OrgFieldRow {
                            name: f.name,
                            label: f.label,
                            editable: f.editable,
                        })
                        .collect(),
                    name: o.name,
                    label: o.label,
                })
                .collect()
        })
        .unwrap_or_default();
    // Record sharing is offered only where the objects' sharing models allow a share.
    let mut sharing_objects: Vec<String> = org_objects
        .iter()
        .map(|o: &OrgObjectRow| o.name.clone())
        .collect();
    for object in &detail.scope.objects {
        if !sharing_objects.contains(&object.object) {
            sharing_objects.push(object.object.clone());
        }
    }
    let (record_sharing, record_sharing_error) = match portal.record_sharing(&sharing_objects).await
    {
        Ok(rows) => (
            rows.into_iter()
                .map(|r| RecordSharingRow {
                    object: r.object,
                    offered: r.offered,
                    note: r.note,
                })
                .collect(),
            None,
        ),
        Err(e) => {
            tracing::warn!(error = %e, "sharing models could not be read");
            (
                    Vec::new(),
                    Some(
                        "The org's sharing models could not be read right now, so it is not known which objects' records can be shared; approving checks again."
                            .to_string(),
                    ),
                )
        }
    };
    let earlier = detail
        .decisions
        .iter()
        .rev()
        .find(|d| d.decision == "approved" && d.scope.is_some());
    let proposal = match earlier {
        Some(d) => Proposal {
            scope: d.scope.clone().unwrap_or_else(|| detail.scope.clone()),
            budget: d
                .budget
                .clone()
                .unwrap_or_else(|| Budget::default_for(detail.calls_per_day.max(1) as u64)),
            end_date: d
                .end_date
                .clone()
                .unwrap_or_else(|| detail.end_date.clone()),
            ip_ranges: d.ip_ranges.clone(),
            from_approver: Some(d.approver.clone()),
        },
        None => Proposal {
            scope: detail.scope.clone(),
            budget: Budget::default_for(detail.calls_per_day.max(1) as u64),
            end_date: detail.end_date.clone(),
            ip_ranges: detail.ip_ranges.clone(),
            from_approver: None,
        },
    };
    Ok(Some(RequestView {
        proposal,
        id: detail.id,
        company: detail.company,
        contact_name: detail.contact_name,
        contact_email: detail.contact_email,
        justification: detail.justification,
        state: detail.state,
        scope: detail.scope,
        calls_per_day: detail.calls_per_day,
        ip_ranges: detail.ip_ranges,
        end_date: detail.end_date,
        created_at: services::clock::rfc3339(detail.created_at),
        risky: detail.risky,
        risks: detail.risks,
        approvals_required: detail.approvals_required,
        decisions: detail
            .decisions
            .into_iter()
            .map(|d| DecisionRow {
                approver: d.approver,
                decision: d.decision,
                reason: d.reason,
                at: services::clock::rfc3339(d.at),
                changes: d.scope_changes,
            })
            .collect(),
        events: detail
            .events
            .into_iter()
            .map(|e| EventRow {
                at: services::clock::rfc3339(e.at),
                message: e.message,
                internal: !e.visible_to_contractor,
            })
            .collect(),
        blast,
        blast_error,
        org_objects,
        record_sharing,
        record_sharing_error,
        viewer: user.username,
    }))
}

/// The answer to a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DecisionResult {
    Recorded { approvals: i64, required: i64 },
    Approved,
    Rejected,
    Invalid(FieldErrors),
    Refused(String),
}

#[server(endpoint = "decide")]
pub async fn decide(
    id: String,
    action: String,
    object_level: Option<HashMap<String, String>>,
    field_level: Option<HashMap<String, String>>,
    visibility: Option<String>,
    record_ids: Option<String>,
    group: Option<String>,
    calls_per_day: Option<String>,
    calls_per_7_days: Option<String>,
    warn_percent: Option<String>,
    hard_action: Option<String>,
    end_date: Option<String>,
    ip_ranges: Option<String>,
    reason: String,
) -> Result<DecisionResult, ServerFnError> {
    use super::ssr::{actor, internal, portal, require, status};
    use services::decisions::{ApprovalInput, DecisionError, DecisionOutcome};
    use shared::auth::Role;
    let (user, _) = require(&[Role::Approver]).await?;
    let portal = portal()?;
    let actor = actor(&user.username).await;
    let result = match action.as_str() {
        "reject" => portal.reject(id.trim(), &user, &reason, &actor).await,
        "approve" => {
            let mut errors = FieldErrors::default();
            let selection = super::intake::ssr::Selection {
                packages: HashMap::new(),
                objects: object_level.unwrap_or_default(),
                fields: field_level.unwrap_or_default(),
                visibility: visibility.clone().unwrap_or_default(),
            };
            let mut scope =
                match super::intake::ssr::scope_from_selection(&portal, &selection).await {
                    Ok(scope) => Some(scope),
                    Err(e) => {
                        errors.0.push(e);
                        None
                    }
                };
            if let Some(scope) = scope.as_mut() {
                if scope.is_empty() {
                    errors.add(
                        "access",
                        "Grant at least one object, or reject the request.",
                    );
                }
                let mut ids = Vec::new();
                for raw in record_ids
                    .unwrap_or_default()
                    .split(['\n', ',', ' '])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                {
                    match salesforce_id(raw) {
                        Some(id) => ids.push(id),
                        None => errors.add(
                            "record_ids",
                            format!("'{raw}' is not a Salesforce record id."),
                        ),
                    }
                }
                scope.visibility.record_ids = ids;
                scope.visibility.group = group
                    .map(|g| g.trim().to_string())
                    .filter(|g| !g.is_empty());
            }
            let budget = Budget::parse(
                calls_per_day.as_deref().unwrap_or(""),
                calls_per_7_days.as_deref().unwrap_or(""),
                warn_percent.as_deref().unwrap_or(""),
                hard_action.as_deref().unwrap_or("none"),
            );
            let budget = match budget {
                Ok(budget) => Some(budget),
                Err(problems) => {
                    errors.0.extend(problems.0);
                    None
                }
            };
            match (scope, budget) {
                (Some(scope), Some(budget)) if errors.is_empty() => {
                    let input = ApprovalInput {
                        scope,
                        budget,
                        end_date: end_date.unwrap_or_default(),
                        ip_ranges: ip_ranges.unwrap_or_default(),
                        reason: reason.clone(),
                    };
                    portal.approve(id.trim(), &user, input, &actor).await
                }
                _ => Err(DecisionError::Invalid(errors)),
            }
        }
        other => {
            status(400);
            return Ok(DecisionResult::Refused(format!(
                "'{other}' is not a decision."
            )));
        }
    };
    match result {
        Ok(DecisionOutcome::Recorded {
            approvals,
            required,
        }) => Ok(DecisionResult::Recorded {
            approvals,
            required,
        }),
        Ok(DecisionOutcome::Approved { .. }) => Ok(DecisionResult::Approved),
        Ok(DecisionOutcome::Rejected) => Ok(DecisionResult::Rejected),
        Err(DecisionError::Invalid(errors)) => {
            status(422);
            Ok(DecisionResult::Invalid(errors.renamed("scope", "access")))
        }
        Err(DecisionError::Database(e)) => Err(internal(e)),
        Err(other) => {
            status(409);
            Ok(DecisionResult::Refused(other.to_string()))
        }
    }
}

/// A record id as typed by an approver, in its 18-character form.
#[cfg(feature = "ssr")]
fn salesforce_id(raw: &str) -> Option<String> {
    services::salesforce::SalesforceId::parse(raw)
        .ok()
        .map(|id| id.as_str().to_string())
}

/// One provisioning step, for the request's page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRow {
    pub label: String,
    pub state: shared::StepState,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// One line of the least-privilege proof's evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceRow {
    pub check: String,
    pub expected: String,
    pub observed: String,
    pub pass: bool,
}

/// The provisioning of an approved request's grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisioningView {
    pub state: shared::GrantState,
    pub attention: Option<String>,
    pub api_calls: i64,
    pub steps: Vec<StepRow>,
    pub evidence: Vec<EvidenceRow>,
    /// Where the contractor's credential stands, once the grant is set up.
    pub credential: Option<shared::reveal::CredentialStatus>,
}

impl ProvisioningView {
    /// Nothing more will happen without an admin.
    pub fn finished(&self) -> bool {
        self.state.is_settled()
    }
}

#[server(endpoint = "grant_progress")]
pub async fn grant_progress(id: String) -> Result<Option<ProvisioningView>, ServerFnError> {
    use super::ssr::{internal, portal, require};
    use shared::auth::Role;
    require(&[Role::Approver, Role::Owner]).await?;
    let portal = portal()?;
    let Some(progress) = services::provisioning::progress(&portal.db, id.trim())
        .await
        .map_err(internal)?
    else {
        return Ok(None);
    };
    let state = shared::GrantState::parse(&progress.state).map_err(internal)?;
    let credential = match state.is_usable() {
        true => match services::provisioning::grant_of_request(&portal.db, id.trim())
            .await
            .map_err(internal)?
        {
            Some(grant_id) => Some(
                portal
                    .credential_status(&grant_id)
                    .await
                    .map_err(internal)?,
            ),
            None => None,
        },
        false => None,
    };
    Ok(Some(ProvisioningView {
        credential,
        state,
        attention: progress.attention,
        api_calls: progress.api_calls,
        steps: progress
            .steps
            .into_iter()
            .map(|s| {
                Ok(StepRow {
                    label: s.label,
                    state: shared::StepState::parse(&s.state)?,
                    attempts: s.attempts,
                    last_error: s.last_error,
                })
            })
            .collect::<Result<_, shared::UnknownValue>>()
            .map_err(internal)?,
        evidence: progress
            .evidence
            .into_iter()
            .map(|c| EvidenceRow {
                check: c.check,
                expected: c.expected,
                observed: c.observed,
                pass: c.pass,
            })
            .collect(),
    }))
}

/// What an admin's action on a grant's provisioning did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrantActionResult {
    Done(String),
    Refused(String),
}

/// An approver's action on the grant made from request `request_id`: the portal, the grant
/// and the actor; or, when the request has no grant, the refusal to answer (404).
#[cfg(feature = "ssr")]
pub(crate) async fn grant_action(
    request_id: &str,
) -> Result<
    Result<(services::Portal, String, services::audit::Actor), GrantActionResult>,
    ServerFnError,
> {
    use super::ssr::{actor, internal, portal, require, status};
    use shared::auth::Role;
    let (user, _) = require(&[Role::Approver]).await?;
    let portal = portal()?;
    let grant = services::provisioning::grant_of_request(&portal.db, request_id.trim())
        .await
        .map_err(internal)?;
    let Some(grant) = grant else {
        status(404);
        return Ok(Err(GrantActionResult::Refused(
            "This request has no grant.".into(),
        )));
    };
    let actor = actor(&user.username).await;
    Ok(Ok((portal, grant, actor)))
}

/// Runs the failed step of a grant that needs attention again (after the cause was fixed
/// in the org).
#[server(endpoint = "retry_grant")]
pub async fn retry_grant(id: String) -> Result<GrantActionResult, ServerFnError> {
    use super::ssr::{internal, status};
    use services::provisioning::RetryError;
    let (portal, grant, actor) = match grant_action(&id).await? {
        Ok(action) => action,
        Err(refused) => return Ok(refused),
    };
    match services::provisioning::retry(&portal.db, &grant, &actor, portal.clock().as_ref()).await {
        Ok(()) => Ok(GrantActionResult::Done(
            "Retrying: the failed step runs again.".into(),
        )),
        Err(RetryError::Database(e)) => Err(internal(e)),
        Err(other) => {
            status(409);
            Ok(GrantActionResult::Refused(other.to_string()))
        }
    }
}

/// Cancels a grant still being provisioned: what its run made in Salesforce is undone, in
/// reverse order.
#[server(endpoint = "cancel_grant")]
pub async fn cancel_grant(id: String) -> Result<GrantActionResult, ServerFnError> {
    use super::ssr::{internal, status};
    use services::provisioning::{CancelError, Cancelled};
    let (portal, grant, actor) = match grant_action(&id).await? {
        Ok(action) => action,
        Err(refused) => return Ok(refused),
    };
    match services::provisioning::cancel(&portal.db, &grant, &actor, portal.clock().as_ref()).await
    {
        Ok(Cancelled::Now) => Ok(GrantActionResult::Done(
            "Cancelled: nothing had been made in Salesforce yet.".into(),
        )),
        Ok(Cancelled::Undoing) => Ok(GrantActionResult::Done(
            "Cancelling: what was made in Salesforce is being undone.".into(),
        )),
        Err(CancelError::Database(e)) => Err(internal(e)),
        Err(other) => {
            status(409);
            Ok(GrantActionResult::Refused(other.to_string()))
        }
    }
}
