//! The contractor's side: the request form, email verification, the status page, and the
//! sandbox-only mail outbox.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use shared::org::OrgObject;
use shared::request::StatusView;
use shared::scope::ScopeSelection;

use super::ApiError;

/// An access catalog package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageOption {
    pub id: String,
    pub name: String,
    pub description: String,
    pub summary: Vec<String>,
}

/// What the request form needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormOptions {
    /// The org's objects with the fields a scope can grant.
    pub objects: Vec<OrgObject>,
    pub packages: Vec<PackageOption>,
    pub min_end_date: String,
    pub max_end_date: String,
    /// A fresh key per rendering: submitting the same form twice creates one request.
    pub submission_key: String,
}

#[server(endpoint = "request_form")]
pub async fn request_form() -> Result<FormOptions, ApiError> {
    use super::ssr::portal;
    let portal = portal()?;
    let objects = portal.org_objects().await?;
    let packages = portal.packages().await?;
    let max_days = portal.max_end_days().await?;
    let today = portal.clock().today();
    Ok(FormOptions {
        objects: objects.into_iter().map(OrgObject::grantable).collect(),
        packages: packages
            .into_iter()
            .map(|p| PackageOption {
                summary: p.scope.summary(),
                id: p.id,
                name: p.name,
                description: p.description,
            })
            .collect(),
        min_end_date: (today + chrono::Duration::days(1)).to_string(),
        max_end_date: (today + chrono::Duration::days(max_days)).to_string(),
        submission_key: uuid::Uuid::new_v4().simple().to_string(),
    })
}

/// The answer to a submission, `{"Submitted":{…}}` (a refusal is an [`ApiError`]: 422
/// with the fields' problems, 429 when the network sent too many).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubmitOutcome {
    Submitted {
        request_id: String,
        contact_email: String,
    },
}

/// The answer to a verification, `"Verified"` (a refusal is an [`ApiError`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerifyOutcome {
    Verified,
}

/// The request form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRequestForm {
    pub company: String,
    pub contact_name: String,
    pub contact_email: String,
    pub justification: String,
    /// The access asked for: packages, objects and fields, the visibility rule.
    #[serde(flatten)]
    pub scope: ScopeSelection,
    pub calls_per_day: String,
    pub ip_ranges: String,
    pub end_date: String,
    /// A fresh key per rendering of the form: submitting it twice creates one request.
    pub submission_key: String,
}

#[cfg(feature = "ssr")]
impl AccessRequestForm {
    /// The submission, its scope checked against the org (a scope that cannot be built is
    /// a problem on the form's `access` field, reported with the others).
    pub async fn parse(self, portal: &services::Portal) -> services::requests::SubmitInput {
        let (scope, scope_error) = match portal.scope_from_selection(&self.scope).await {
            Ok(scope) => (Some(scope), None),
            Err(error) => (None, Some(error)),
        };
        services::requests::SubmitInput {
            company: self.company,
            contact_name: self.contact_name,
            contact_email: self.contact_email,
            justification: self.justification,
            scope,
            scope_error,
            calls_per_day: self.calls_per_day,
            ip_ranges: self.ip_ranges,
            end_date: self.end_date,
            submission_key: self.submission_key,
        }
    }
}

#[server(endpoint = "submit_request")]
pub async fn submit_request(
    #[server(flatten)] form: AccessRequestForm,
) -> Result<SubmitOutcome, ApiError> {
    use super::ssr::{actor, portal};
    let portal = portal()?;
    let actor = actor(&format!(
        "contractor:{}",
        form.contact_email.trim().to_ascii_lowercase()
    ))
    .await;
    let input = form.parse(&portal).await;
    let done = portal.submit(input, &actor).await?;
    Ok(SubmitOutcome::Submitted {
        request_id: done.request_id,
        contact_email: done.contact_email,
    })
}

#[server(endpoint = "verify_code")]
pub async fn verify_code(request_id: String, code: String) -> Result<VerifyOutcome, ApiError> {
    let portal = super::ssr::portal()?;
    let actor = super::ssr::actor("contractor").await;
    portal.verify_code(request_id.trim(), &code, &actor).await?;
    Ok(VerifyOutcome::Verified)
}

/// What a verification link is for (opening it changes nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkInfo {
    pub company: String,
    pub pending: bool,
}

#[server(endpoint = "verification_link")]
pub async fn verification_link(token: String) -> Result<Option<LinkInfo>, ApiError> {
    let portal = super::ssr::portal()?;
    let info = portal.verification_link_info(&token).await?;
    if info.is_none() {
        super::ssr::status(404);
    }
    Ok(info.map(|(_, company, state)| LinkInfo {
        company,
        pending: state == "pending_verification",
    }))
}

#[server(endpoint = "verify_link")]
pub async fn verify_link(token: String) -> Result<VerifyOutcome, ApiError> {
    let portal = super::ssr::portal()?;
    let actor = super::ssr::actor("contractor").await;
    portal.verify_link(&token, &actor).await?;
    Ok(VerifyOutcome::Verified)
}

#[server(endpoint = "request_status")]
pub async fn request_status(token: String) -> Result<Option<StatusView>, ApiError> {
    let portal = super::ssr::portal()?;
    let mut view = portal.status(&token).await?;
    match view.as_mut() {
        Some(view) => super::ssr::label_access(&portal, &mut view.access).await,
        None => super::ssr::status(404),
    }
    Ok(view)
}

/// A message in the sandbox outbox.
pub use shared::request::OutboxItem;

/// The local mail outbox: only in the default (sandbox) mode with no SMTP server.
#[server(endpoint = "outbox")]
pub async fn outbox() -> Result<Vec<OutboxItem>, ApiError> {
    let portal = super::ssr::portal()?;
    portal.sandbox_outbox().await?.ok_or_else(|| {
        ApiError::new(
            404,
            "There is no outbox: mail goes to the configured SMTP server.",
        )
    })
}
