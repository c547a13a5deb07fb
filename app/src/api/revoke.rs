//! The end of access on an approver's request page (issue 17): "Revoke access now" for a
//! ready, active or suspended grant, by an approver or owner, with the reason. The portal
//! moves the grant to `revoking` (audited, the contractor mailed) and its workers tear it
//! down: the token and the user first, so the credential is refused within seconds.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::ApiError;

/// The revoke form: the request whose grant ends, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeForm {
    /// The request's id (the page's).
    pub id: String,
    /// Why access ends now; required (the audit log and the contractor's page show it).
    pub reason: String,
}

/// What revoking did (a refusal is an [`ApiError`]: 422 with the reason's problem, 409 when
/// the grant cannot be revoked in its state).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RevokeResult {
    /// Revoking: the teardown runs; the page follows it.
    Revoking(String),
}

#[server(endpoint = "revoke_access")]
pub async fn revoke_access(#[server(flatten)] form: RevokeForm) -> Result<RevokeResult, ApiError> {
    use super::ssr::{actor, portal, require};
    use shared::auth::Role;
    let (user, _) = require(&[Role::Approver, Role::Owner]).await?;
    let portal = portal()?;
    let Some(grant) = portal.grant_of_request(form.id.trim()).await? else {
        return Err(ApiError::new(404, "This request has no grant."));
    };
    let actor = actor(&user.username).await;
    portal.revoke_access(&grant, &actor, &form.reason).await?;
    Ok(RevokeResult::Revoking(
        "Revoking: the credential's tokens are being revoked and the integration user deactivated; the rest is then removed from Salesforce.".into(),
    ))
}
