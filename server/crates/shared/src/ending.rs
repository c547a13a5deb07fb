//! The end of a grant's access, as the pages show it: revoked by an approver or owner, or
//! expired on its end date (issue 17); and the Salesforce Integration licences that ends
//! give back. Built by the services from the grant's end columns.

use serde::{Deserialize, Serialize};

use crate::GrantState;

/// How and when a grant's access ended (or is ending).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEnd {
    /// `revoking` or `revoked`, `expiring` or `expired`; `needs_attention` when the
    /// teardown stopped (revoking again carries on).
    pub state: GrantState,
    /// Revoked by an approver or owner, rather than expired on the end date.
    pub revoked: bool,
    /// When the end was asked for (the revoke), or the end date passed (RFC 3339).
    pub requested_at: String,
    /// When the teardown finished and the grant became revoked or expired (RFC 3339).
    pub ended_at: Option<String>,
    /// Why it was revoked, as the approver or owner wrote it.
    pub reason: Option<String>,
    /// Who revoked it (approvers' pages only; the contractor's page leaves it out).
    pub by: Option<String>,
}

impl AccessEnd {
    /// The teardown is done: nothing of the grant is left in the org but its deactivated
    /// user, and the credential is refused.
    pub fn done(&self) -> bool {
        self.state.has_ended()
    }

    /// "Revoked" or "Expired" (the teardown done), else "Being revoked" / "Expiring".
    pub fn headline(&self) -> &'static str {
        match (self.revoked, self.done()) {
            (true, true) => "Revoked",
            (true, false) => "Being revoked",
            (false, true) => "Expired",
            (false, false) => "Expiring",
        }
    }

    /// The teardown stopped and needs an admin (who revokes again to carry on).
    pub fn stopped(&self) -> bool {
        self.state == GrantState::NeedsAttention
    }

    /// The day of the end: when the teardown finished, else when it was asked for
    /// (`2026-12-05`).
    pub fn day(&self) -> String {
        self.ended_at
            .as_deref()
            .unwrap_or(&self.requested_at)
            .chars()
            .take(10)
            .collect()
    }
}

/// A grant whose teardown gave its Salesforce Integration licence back (its user is
/// deactivated), for the usage page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreedLicence {
    pub request_id: String,
    pub company: String,
    /// `revoked` or `expired`.
    pub state: GrantState,
    /// When the teardown finished (RFC 3339).
    pub at: String,
}

/// A grant holding a licence, with its end date: when a new grant finds no free licence,
/// the ones that end soonest are where one comes free.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndingGrant {
    pub request_id: String,
    pub company: String,
    pub state: GrantState,
    /// `2026-12-31`.
    pub end_date: String,
}
