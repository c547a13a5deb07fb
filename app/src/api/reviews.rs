//! Access reviews (issue 18): the campaigns page (owners start one), a campaign's page with
//! its items, and each item's decision (keep, narrow, revoke) by its reviewers.

use std::collections::HashMap;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::ApiError;

pub use shared::access_review::{CampaignView, ReviewsView};

#[server(endpoint = "admin_reviews")]
pub async fn admin_reviews() -> Result<ReviewsView, ApiError> {
    use super::ssr::{portal, require};
    use shared::auth::Role;
    let (_, viewer) = require(&[Role::Approver, Role::Owner, Role::SecurityReviewer]).await?;
    Ok(portal()?.reviews_view(viewer.roles.owner).await?)
}

/// The form "Start an access review".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartReviewForm {
    pub name: String,
    /// all, package or object.
    pub selection: String,
    #[serde(default)]
    pub package: String,
    #[serde(default)]
    pub object: String,
    pub due_date: String,
    #[serde(default)]
    pub reviewers: String,
    pub default_decision: String,
}

#[cfg(feature = "ssr")]
impl From<StartReviewForm> for services::reviews::CampaignInput {
    fn from(form: StartReviewForm) -> Self {
        let selection_value = match form.selection.as_str() {
            "package" => form.package,
            "object" => form.object,
            _ => String::new(),
        };
        Self {
            name: form.name,
            selection: form.selection,
            selection_value,
            due_date: form.due_date,
            reviewers: form.reviewers,
            default_decision: form.default_decision,
        }
    }
}

/// A started campaign's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started(pub String);

#[server(endpoint = "start_review")]
pub async fn start_review(#[server(flatten)] form: StartReviewForm) -> Result<Started, ApiError> {
    use super::ssr::{actor, portal, require};
    use shared::auth::Role;
    let (user, _) = require(&[Role::Owner]).await?;
    let actor = actor(&user.username).await;
    let id = portal()?
        .start_review(&form.into(), &user.username, &actor)
        .await?;
    Ok(Started(id))
}

#[server(endpoint = "admin_review")]
pub async fn admin_review(id: String) -> Result<Option<CampaignView>, ApiError> {
    use super::ssr::{portal, require, status};
    use shared::auth::Role;
    let (user, _) = require(&[Role::Approver, Role::Owner, Role::SecurityReviewer]).await?;
    let view = portal()?.review_campaign(id.trim(), &user.username).await?;
    if view.is_none() {
        status(404);
    }
    Ok(view)
}

/// A reviewer's decision on one item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewDecisionForm {
    pub campaign: String,
    pub grant: String,
    /// keep, narrow or revoke (the button pressed).
    pub decision: String,
    #[serde(default)]
    pub comment: String,
    /// `drop[Case.Status]=on`: what a narrowing drops.
    #[serde(default)]
    pub drop: HashMap<String, String>,
}

#[cfg(feature = "ssr")]
impl From<ReviewDecisionForm> for services::reviews::DecisionInput {
    fn from(form: ReviewDecisionForm) -> Self {
        let mut drop: Vec<String> = form
            .drop
            .into_iter()
            .filter(|(_, v)| v == "on" || v == "true")
            .map(|(k, _)| k)
            .collect();
        drop.sort();
        Self {
            decision: form.decision,
            comment: form.comment,
            drop,
        }
    }
}

/// What a decision started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReviewDecisionResult {
    Kept,
    Narrowing,
    Revoking,
}

#[server(endpoint = "decide_review_item")]
pub async fn decide_review_item(
    #[server(flatten)] form: ReviewDecisionForm,
) -> Result<ReviewDecisionResult, ApiError> {
    use super::ssr::{actor, portal, require};
    use services::reviews::Decided;
    use shared::auth::Role;
    let (user, _) = require(&[Role::Approver, Role::Owner]).await?;
    let actor = actor(&user.username).await;
    let (campaign, grant) = (
        form.campaign.trim().to_string(),
        form.grant.trim().to_string(),
    );
    let decided = portal()?
        .decide_review_item(&campaign, &grant, &user.username, &form.into(), &actor)
        .await?;
    Ok(match decided {
        Decided::Kept => ReviewDecisionResult::Kept,
        Decided::Narrowing => ReviewDecisionResult::Narrowing,
        Decided::Revoking => ReviewDecisionResult::Revoking,
    })
}
