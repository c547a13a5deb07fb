//! The approvers' and owners' side: the review queue, a request with its blast radius,
//! decisions and a grant's provisioning. Every function checks the caller's role first; a
//! refused call changes nothing.

#[cfg(feature = "ssr")]
use std::collections::HashMap;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use shared::scope::ScopeSelection;

use super::ApiError;

pub use shared::review::{
    DecisionRow, EventRow, EvidenceRow, Proposal, ProvisioningView, QueuePage, QueueRow,
    RecordSharingRow, RequestView, StepRow,
};

/// The queue's filters, as the queue page's links and form send them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueForm {
    /// A request state, or `any`.
    pub state: Option<String>,
    pub company: Option<String>,
    /// `any`, `day`, `week`, `older-day`, `older-week`.
    pub age: Option<String>,
    /// The cursor of the page to start after.
    pub before: Option<String>,
}

#[cfg(feature = "ssr")]
impl TryFrom<QueueForm> for services::decisions::QueueFilter {
    type Error = ApiError;

    fn try_from(form: QueueForm) -> Result<Self, ApiError> {
        use shared::request::RequestState;
        let state =
            match form
                .state
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty() && *s != "any")
            {
                None => None,
                Some(raw) => Some(RequestState::parse(raw).ok_or_else(|| {
                    ApiError::new(400, format!("'{raw}' is not a request state."))
                })?),
            };
        let (min_age_hours, max_age_hours) = match form.age.as_deref().unwrap_or("any") {
            "any" | "" => (None, None),
            "day" => (None, Some(24)),
            "week" => (None, Some(24 * 7)),
            "older-day" => (Some(24), None),
            "older-week" => (Some(24 * 7), None),
            other => {
                return Err(ApiError::new(
                    400,
                    format!("'{other}' is not an age filter."),
                ));
            }
        };
        Ok(Self {
            state,
            company: form.company.filter(|c| !c.trim().is_empty()),
            min_age_hours,
            max_age_hours,
            limit: 50,
            before: form.before.filter(|b| !b.is_empty()),
        })
    }
}

#[server(endpoint = "admin_queue")]
pub async fn admin_queue(#[server(flatten)] form: QueueForm) -> Result<QueuePage, ApiError> {
    use super::ssr::{portal, require};
    use shared::auth::Role;
    require(&[Role::Approver, Role::Owner]).await?;
    let filter = services::decisions::QueueFilter::try_from(form)?;
    Ok(portal()?.queue_page(&filter).await?)
}

#[server(endpoint = "admin_request")]
pub async fn admin_request(id: String) -> Result<Option<RequestView>, ApiError> {
    use super::ssr::{portal, require, status};
    use shared::auth::Role;
    let (user, _) = require(&[Role::Approver, Role::Owner]).await?;
    let view = portal()?.review_request(id.trim(), &user.username).await?;
    if view.is_none() {
        status(404);
    }
    Ok(view)
}

/// The answer to a decision (a refusal is an [`ApiError`]: 422 with the fields' problems,
/// 409 when the request cannot be decided now).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DecisionResult {
    Recorded { approvals: i64, required: i64 },
    Approved,
    Rejected,
}

/// The decision form: approve (with the access, records, budget, end date and IP ranges
/// granted) or reject, with a reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionForm {
    pub id: String,
    /// `approve` or `reject`.
    pub action: String,
    #[serde(flatten)]
    pub scope: ScopeSelection,
    /// Salesforce record ids, one per line or comma-separated (pasted).
    pub record_ids: Option<String>,
    /// The record picker's chosen records' ids, one per line.
    pub picked_record_ids: Option<String>,
    pub group: Option<String>,
    pub calls_per_day: Option<String>,
    pub calls_per_7_days: Option<String>,
    pub warn_percent: Option<String>,
    pub hard_action: Option<String>,
    pub end_date: Option<String>,
    pub ip_ranges: Option<String>,
    pub reason: String,
}

/// What a decision form asks for, parsed.
#[cfg(feature = "ssr")]
pub enum Decision {
    Reject { reason: String },
    Approve(services::decisions::ApprovalInput),
}

#[cfg(feature = "ssr")]
impl DecisionForm {
    /// The decision, its scope checked against the org; the fields' problems are a 422
    /// (the scope's on `access`), an unknown action a 400.
    pub async fn parse(self, portal: &services::Portal) -> Result<Decision, ApiError> {
        use services::decisions::{ApprovalInput, DecisionError};
        use shared::FieldErrors;
        use shared::budget::Budget;
        match self.action.as_str() {
            "reject" => {
                return Ok(Decision::Reject {
                    reason: self.reason,
                });
            }
            "approve" => {}
            other => {
                return Err(ApiError::new(400, format!("'{other}' is not a decision.")));
            }
        }
        let mut errors = FieldErrors::default();
        // Packages are the request form's; a decision grants objects and fields.
        let selection = ScopeSelection {
            packages: HashMap::new(),
            ..self.scope
        };
        let mut scope = match portal.scope_from_selection(&selection).await {
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
            let mut ids: Vec<String> = Vec::new();
            // Picked and pasted ids are checked alike; an id given twice counts once.
            let picked = self.picked_record_ids.unwrap_or_default();
            let pasted = self.record_ids.unwrap_or_default();
            for raw in picked
                .split(['\n', ',', ' '])
                .chain(pasted.split(['\n', ',', ' ']))
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                match services::salesforce::SalesforceId::parse(raw) {
                    Ok(id) if ids.iter().any(|known| known == id.as_str()) => {}
                    Ok(id) => ids.push(id.as_str().to_string()),
                    Err(_) => errors.add(
                        "record_ids",
                        format!("'{raw}' is not a Salesforce record id."),
                    ),
                }
            }
            scope.visibility.record_ids = ids;
            scope.visibility.group = self
                .group
                .map(|g| g.trim().to_string())
                .filter(|g| !g.is_empty());
        }
        let budget = match Budget::parse(
            self.calls_per_day.as_deref().unwrap_or(""),
            self.calls_per_7_days.as_deref().unwrap_or(""),
            self.warn_percent.as_deref().unwrap_or(""),
            self.hard_action.as_deref().unwrap_or("none"),
        ) {
            Ok(budget) => Some(budget),
            Err(problems) => {
                errors.0.extend(problems.0);
                None
            }
        };
        match (scope, budget) {
            (Some(scope), Some(budget)) if errors.is_empty() => {
                Ok(Decision::Approve(ApprovalInput {
                    scope,
                    budget,
                    end_date: self.end_date.unwrap_or_default(),
                    ip_ranges: self.ip_ranges.unwrap_or_default(),
                    reason: self.reason,
                }))
            }
            _ => Err(DecisionError::Invalid(errors).into()),
        }
    }
}

#[server(endpoint = "decide")]
pub async fn decide(#[server(flatten)] form: DecisionForm) -> Result<DecisionResult, ApiError> {
    use super::ssr::{actor, portal, require};
    use services::decisions::DecisionOutcome;
    use shared::auth::Role;
    let (user, _) = require(&[Role::Approver]).await?;
    let portal = portal()?;
    let actor = actor(&user.username).await;
    let id = form.id.trim().to_string();
    let outcome = match form.parse(&portal).await? {
        Decision::Reject { reason } => portal.reject(&id, &user, &reason, &actor).await?,
        Decision::Approve(input) => portal.approve(&id, &user, input, &actor).await?,
    };
    Ok(match outcome {
        DecisionOutcome::Recorded {
            approvals,
            required,
        } => DecisionResult::Recorded {
            approvals,
            required,
        },
        DecisionOutcome::Approved { .. } => DecisionResult::Approved,
        DecisionOutcome::Rejected => DecisionResult::Rejected,
    })
}

#[server(endpoint = "grant_progress")]
pub async fn grant_progress(id: String) -> Result<Option<ProvisioningView>, ApiError> {
    use super::ssr::{portal, require};
    use shared::auth::Role;
    require(&[Role::Approver, Role::Owner]).await?;
    Ok(portal()?.provisioning_view(id.trim()).await?)
}

/// An approver's action on the grant made from request `request_id`: the portal, the grant
/// and the actor; 404 when the request has no grant.
#[cfg(feature = "ssr")]
pub(crate) async fn grant_action(
    request_id: &str,
) -> Result<(services::Portal, String, services::audit::Actor), ApiError> {
    use super::ssr::{actor, portal, require};
    use shared::auth::Role;
    let (user, _) = require(&[Role::Approver]).await?;
    let portal = portal()?;
    let Some(grant) = portal.grant_of_request(request_id.trim()).await? else {
        return Err(ApiError::new(404, "This request has no grant."));
    };
    let actor = actor(&user.username).await;
    Ok((portal, grant, actor))
}

/// What an admin's action on a grant did, `{"Done":"…"}` (a refusal is an [`ApiError`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrantActionResult {
    Done(String),
}

/// Runs the failed step of a grant that needs attention again (after the cause was fixed
/// in the org).
#[server(endpoint = "retry_grant")]
pub async fn retry_grant(id: String) -> Result<GrantActionResult, ApiError> {
    let (portal, grant, actor) = grant_action(&id).await?;
    portal.retry_grant(&grant, &actor).await?;
    Ok(GrantActionResult::Done(
        "Retrying: the failed step runs again.".into(),
    ))
}

/// Cancels a grant still being provisioned: what its run made in Salesforce is undone, in
/// reverse order.
#[server(endpoint = "cancel_grant")]
pub async fn cancel_grant(id: String) -> Result<GrantActionResult, ApiError> {
    use services::provisioning::Cancelled;
    let (portal, grant, actor) = grant_action(&id).await?;
    Ok(GrantActionResult::Done(
        match portal.cancel_grant(&grant, &actor).await? {
            Cancelled::Now => "Cancelled: nothing had been made in Salesforce yet.",
            Cancelled::Undoing => "Cancelling: what was made in Salesforce is being undone.",
        }
        .into(),
    ))
}
