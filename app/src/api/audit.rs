//! The security reviewers' side: finding audit entries, one entry in full, and verifying
//! the hash chain. Security reviewers and owners only; nothing here changes the log ("Verify
//! chain" over the whole log starts the background verification, a row of its own).
//! (The streamed exports and the evidence pack are plain routes of the server, because they
//! are downloads: `/audit/export.csv`, `/audit/export.jsonl`, `/audit/evidence/{grant}`.)

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use shared::audit::AuditQuery;

use super::ApiError;

pub use shared::audit::{
    AnchorReport, AuditPage, AuditRow, EntryView, StreamSinkView, VerifyAnswer, VerifyJobView,
    VerifyStatus, VerifyView,
};

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

/// "Verify chain": a range of at most 10,000 entries is checked at once; the whole log (no
/// range) or a larger range starts the background verification, one at a time.
#[server(endpoint = "audit_verify")]
pub async fn audit_verify(
    from_seq: Option<String>,
    to_seq: Option<String>,
) -> Result<VerifyAnswer, ApiError> {
    use super::ssr::{portal, require};
    use shared::auth::Role;
    let (user, _) = require(&[Role::SecurityReviewer, Role::Owner]).await?;
    Ok(portal()?
        .audit_verify(&user.username, from_seq.as_deref(), to_seq.as_deref())
        .await?)
}

/// The background verification: the one running (entries checked, rate, first problem)
/// and the last one finished.
#[server(endpoint = "audit_verify_status")]
pub async fn audit_verify_status() -> Result<VerifyStatus, ApiError> {
    use super::ssr::{portal, require};
    use shared::auth::Role;
    require(&[Role::SecurityReviewer, Role::Owner]).await?;
    Ok(portal()?.audit_verification().await?)
}

/// The sinks the audit log is streamed to (none when none is configured): each one's
/// acknowledged entry, lag, failures and last success.
#[server(endpoint = "audit_stream_status")]
pub async fn audit_stream_status() -> Result<Vec<StreamSinkView>, ApiError> {
    use super::ssr::{portal, require};
    use shared::auth::Role;
    require(&[Role::SecurityReviewer, Role::Owner]).await?;
    Ok(portal()?.audit_stream_status().await?)
}
