//! Drift detection's server functions (issue 18): the assurance page (every grant with its
//! last proof), "Re-prove all grants now", and on a request page the grant's drift policy
//! and last proof, with the policy settable by approvers and owners.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use shared::assurance::{AssuranceOverview, DriftPolicy, GrantAssurance, ReproveSummary};

use super::ApiError;

/// The assurance page: approvers, owners and security reviewers read it.
#[server(endpoint = "assurance_page")]
pub async fn assurance_page() -> Result<AssuranceOverview, ApiError> {
    use super::ssr::{portal, require};
    use shared::auth::Role;
    require(&[Role::Approver, Role::Owner, Role::SecurityReviewer]).await?;
    Ok(portal()?.assurance_overview().await?)
}

/// Re-proves every ready or active grant now (approvers and owners).
#[server(endpoint = "reprove_all")]
pub async fn reprove_all() -> Result<ReproveSummary, ApiError> {
    use super::ssr::{portal, require};
    use shared::auth::Role;
    require(&[Role::Approver, Role::Owner]).await?;
    Ok(portal()?.reprove_all().await?)
}

/// A request's grant's assurance (`None`: the request has no grant).
#[server(endpoint = "grant_drift")]
pub async fn grant_drift(id: String) -> Result<Option<GrantAssurance>, ApiError> {
    use super::ssr::{portal, require};
    use shared::auth::Role;
    require(&[Role::Approver, Role::Owner, Role::SecurityReviewer]).await?;
    let portal = portal()?;
    let Some(grant) = portal.grant_of_request(id.trim()).await? else {
        return Ok(None);
    };
    Ok(Some(
        portal.grant_assurance(&shared::GrantId::new(grant)).await?,
    ))
}

/// The drift policy form: the request whose grant it is, and the policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftPolicyForm {
    /// The request's id (the page's).
    pub id: String,
    /// `alert`, `freeze` or `reapply`.
    pub policy: String,
}

#[server(endpoint = "set_drift_policy")]
pub async fn set_drift_policy(
    #[server(flatten)] form: DriftPolicyForm,
) -> Result<DriftPolicy, ApiError> {
    use super::ssr::{actor, portal, require};
    use shared::auth::Role;
    let (user, _) = require(&[Role::Approver, Role::Owner]).await?;
    let policy = DriftPolicy::parse(form.policy.trim()).map_err(|e| {
        let mut fields = shared::FieldErrors::default();
        fields.add("policy", format!("{e}: choose alert, freeze or re-apply"));
        ApiError::invalid(fields)
    })?;
    let portal = portal()?;
    let Some(grant) = portal.grant_of_request(form.id.trim()).await? else {
        return Err(ApiError::new(404, "This request has no grant."));
    };
    let actor = actor(&user.username).await;
    portal
        .set_drift_policy(&shared::GrantId::new(grant), policy, &actor)
        .await?;
    Ok(policy)
}
