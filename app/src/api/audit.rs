//! The security reviewers' side: finding audit entries, one entry in full, and verifying
//! the hash chain. Security reviewers and owners only; nothing here changes anything.
//! (The streamed exports and the evidence pack are plain routes of the server, because they
//! are downloads: `/audit/export.csv`, `/audit/export.jsonl`, `/audit/evidence/{grant}`.)

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use shared::audit::AuditQuery;

use super::ApiError;

pub use shared::audit::{AnchorReport, AuditPage, AuditRow, EntryView, VerifyView};

/// Who may read the audit log.
pub fn reviewer_or_owner(roles: &shared::auth::Roles) -> bool {
    roles.security_reviewer || roles.owner
}

/// The search form: the filter, and the page to start after.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditSearchForm {
    #[serde(flatten)]
    pub query: AuditQuery,
    /// The entry number the page starts below.
    pub before: Option<String>,
}

#[server(endpoint = "audit_search")]
pub async fn audit_search(#[server(flatten)] form: AuditSearchForm) -> Result<AuditPage, ApiError> {
    use super::ssr::{portal, require};
    use shared::auth::Role;
    require(&[Role::SecurityReviewer, Role::Owner]).await?;
    Ok(portal()?
        .audit_page(&form.query, form.before.as_deref())
        .await?)
}

#[server(endpoint = "audit_entry")]
pub async fn audit_entry(seq: String) -> Result<Option<EntryView>, ApiError> {
    use super::ssr::{portal, require};
    use shared::auth::Role;
    require(&[Role::SecurityReviewer, Role::Owner]).await?;
    Ok(portal()?.audit_entry(&seq).await?)
}

#[server(endpoint = "audit_verify")]
pub async fn audit_verify(
    from_seq: Option<String>,
    to_seq: Option<String>,
) -> Result<VerifyView, ApiError> {
    use super::ssr::{portal, require};
    use shared::auth::Role;
    require(&[Role::SecurityReviewer, Role::Owner]).await?;
    Ok(portal()?
        .audit_verify(from_seq.as_deref(), to_seq.as_deref())
        .await?)
}
