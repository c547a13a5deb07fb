//! Renewal: the contractor's "Ask for more time" (by the status link, no session), and the
//! approvers' page of a request for more time with its decision.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::ApiError;

pub use shared::renewal::{ExtensionQueueRow, ExtensionView, RenewalView};

/// The renewal part of the contractor's status page.
#[server(endpoint = "renewal_status")]
pub async fn renewal_status(token: String) -> Result<Option<RenewalView>, ApiError> {
    let portal = super::ssr::portal()?;
    Ok(portal.renewal_view(token.trim()).await?)
}

/// The form "Ask for more time".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoreTimeForm {
    /// The status link's token.
    pub token: String,
    pub new_end_date: String,
    pub reason: String,
}

#[cfg(feature = "ssr")]
impl From<MoreTimeForm> for services::renewal::ExtensionInput {
    fn from(form: MoreTimeForm) -> Self {
        Self {
            new_end_date: form.new_end_date,
            reason: form.reason,
        }
    }
}

/// The answer to "Ask for more time" (a refusal is an [`ApiError`]: 422 with the fields'
/// problems, 409 when it cannot be asked now).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MoreTimeResult {
    Asked,
}

#[server(endpoint = "ask_for_more_time")]
pub async fn ask_for_more_time(
    #[server(flatten)] form: MoreTimeForm,
) -> Result<MoreTimeResult, ApiError> {
    use super::ssr::{actor, portal};
    let portal = portal()?;
    let actor = actor("contractor").await;
    let token = form.token.trim().to_string();
    portal
        .ask_for_more_time(&token, form.into(), &actor)
        .await?;
    Ok(MoreTimeResult::Asked)
}

#[server(endpoint = "admin_extension")]
pub async fn admin_extension(id: String) -> Result<Option<ExtensionView>, ApiError> {
    use super::ssr::{portal, require, status};
    use shared::auth::Role;
    let (user, _) = require(&[Role::Approver, Role::Owner]).await?;
    let view = portal()?.extension_view(id.trim(), &user).await?;
    if view.is_none() {
        status(404);
    }
    Ok(view)
}

/// The decision on a request for more time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionDecisionForm {
    pub id: String,
    /// `approve` or `refuse`.
    pub action: String,
    pub reason: String,
}

/// What the decision came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExtensionDecisionResult {
    Recorded {
        approvals: i64,
        required: i64,
    },
    /// `applied`: Salesforce and the grant have the new date (otherwise it is tried again).
    Approved {
        applied: bool,
    },
    Refused,
}

#[server(endpoint = "decide_extension")]
pub async fn decide_extension(
    #[server(flatten)] form: ExtensionDecisionForm,
) -> Result<ExtensionDecisionResult, ApiError> {
    use super::ssr::{actor, portal, require};
    use services::renewal::ExtensionOutcome;
    use shared::auth::Role;
    let (user, _) = require(&[Role::Approver]).await?;
    let portal = portal()?;
    let actor = actor(&user.username).await;
    let id = form.id.trim();
    let outcome = match form.action.as_str() {
        "approve" => {
            portal
                .approve_extension(id, &user, &form.reason, &actor)
                .await?
        }
        "refuse" => {
            portal
                .refuse_extension(id, &user, &form.reason, &actor)
                .await?
        }
        other => {
            return Err(ApiError::new(
                400,
                format!("'{other}' is not a decision: approve or refuse."),
            ));
        }
    };
    Ok(match outcome {
        ExtensionOutcome::Recorded {
            approvals,
            required,
        } => ExtensionDecisionResult::Recorded {
            approvals,
            required,
        },
        ExtensionOutcome::Approved { applied } => ExtensionDecisionResult::Approved { applied },
        ExtensionOutcome::Refused => ExtensionDecisionResult::Refused,
    })
}
