//! API usage: the approvers' dashboard (every contractor's calls against its budget, the
//! org's pool, top consumers, licences and cost), collecting usage now, lifting a
//! suspension, and the contractor's own usage behind their status link.

use leptos::prelude::*;

pub use shared::usage::{
    AnomalyView, BudgetStatus, CollectorView, ConsumerView, ContractorView, DayBar, LicenceView,
    OwnUsage, PoolView, UsageOverview,
};

use super::ApiError;

#[server(endpoint = "usage_dashboard")]
pub async fn usage_dashboard() -> Result<UsageOverview, ApiError> {
    use super::ssr::{portal, require};
    use shared::auth::Role;
    require(&[Role::Approver, Role::Owner]).await?;
    Ok(portal()?.usage_overview().await?)
}

/// Reads the org's usage files now (as the collector job does on its interval) and checks
/// the budgets. Answers what the run did.
#[server(endpoint = "collect_usage_now")]
pub async fn collect_usage_now() -> Result<String, ApiError> {
    use super::ssr::{portal, require};
    use shared::auth::Role;
    require(&[Role::Approver, Role::Owner]).await?;
    Ok(portal()?.collect_usage_now().await?)
}

/// An approver lifts the suspension of the grant made from request `id`: its integration
/// user is unfrozen in Salesforce and the grant works again.
#[server(endpoint = "lift_suspension")]
pub async fn lift_suspension(
    id: String,
    reason: String,
) -> Result<super::admin::GrantActionResult, ApiError> {
    let (portal, grant, actor) = super::admin::grant_action(&id).await?;
    portal
        .lift_suspension(&shared::GrantId::new(grant), &actor, &reason)
        .await?;
    Ok(super::admin::GrantActionResult::Done(
        "Lifted: the integration user is unfrozen and its calls work again.".into(),
    ))
}

/// The contractor's own usage, through the status link from their mail.
#[server(endpoint = "my_usage")]
pub async fn my_usage(token: String) -> Result<Option<OwnUsage>, ApiError> {
    use super::ssr::{portal, status};
    let usage = portal()?.own_usage(token.trim()).await?;
    if usage.is_none() {
        status(404);
    }
    Ok(usage)
}
