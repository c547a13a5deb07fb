//! The owners' org readiness page: the checks of `portcullis doctor`.

use leptos::prelude::*;
use shared::doctor::Check;

use super::ApiError;

/// Runs the doctor's checks against the portal's org (owners only). Each run makes a few
/// dozen API calls and `checkOnly` deploys, so it runs when the page is opened or "Check
/// again" is pressed, never in the background.
#[server(endpoint = "org_checks")]
pub async fn org_checks() -> Result<Vec<Check>, ApiError> {
    use super::ssr::{portal, require};
    use shared::auth::Role;
    require(&[Role::Owner]).await?;
    let portal = portal()?;
    portal
        .check_org()
        .await
        .ok_or_else(|| ApiError::internal("the org checks are not configured"))
}

/// "Check again": the page reloads its checks when this action's version changes.
#[server(endpoint = "org_check_again")]
pub async fn check_again() -> Result<(), ApiError> {
    use super::ssr::require;
    use shared::auth::Role;
    require(&[Role::Owner]).await?;
    Ok(())
}
