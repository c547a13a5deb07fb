//! Renewal as the pages see it: a contractor's request for more time ("Ask for more time"
//! on the status page) and the approvers' view of it (the queue and the extension's page).

use serde::{Deserialize, Serialize};

use crate::grant::GrantState;
use crate::vocabulary::vocabulary;

vocabulary! {
    /// Where an extension request stands.
    pub enum ExtensionState: "an extension state" {
        /// Waiting for approvers.
        Pending = "pending", "waiting for approvers";
        /// Approved: the new end date is (or is being) set in Salesforce and on the grant.
        Approved = "approved", "approved";
        /// Refused: access ends on the old date.
        Refused = "refused", "refused";
    }
}

/// A request for more time as its contractor sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionSummary {
    pub state: ExtensionState,
    pub current_end_date: String,
    pub new_end_date: String,
    pub reason: String,
    /// RFC 3339.
    pub asked_at: String,
    /// Approved, but Salesforce has not taken the new date yet (it is tried again).
    pub waiting_for_salesforce: bool,
}

/// The renewal part of the contractor's status page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewalView {
    /// The grant's state (None before the request became a grant).
    pub grant_state: Option<GrantState>,
    /// The grant's end date (the last day of access).
    pub end_date: Option<String>,
    /// Whether the form "Ask for more time" is offered (a ready, active or suspended grant
    /// with no request for more time waiting).
    pub can_ask: bool,
    /// The earliest and latest new end date the form accepts (`YYYY-MM-DD`).
    pub min_new_end_date: String,
    pub max_new_end_date: String,
    /// The requests for more time, newest first.
    pub extensions: Vec<ExtensionSummary>,
}

/// One extension waiting in the approvers' queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionQueueRow {
    pub id: String,
    pub company: String,
    pub contact_email: String,
    pub current_end_date: String,
    pub new_end_date: String,
    pub approvals: i64,
    pub approvals_required: i64,
    /// RFC 3339.
    pub asked_at: String,
}

/// One approver's decision on an extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionDecisionRow {
    pub approver: String,
    /// `approved` or `refused`.
    pub decision: String,
    pub reason: String,
    /// RFC 3339.
    pub at: String,
}

/// An extension's page for approvers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionView {
    pub id: String,
    pub grant_id: String,
    pub request_id: String,
    pub company: String,
    pub contact_email: String,
    pub grant_state: GrantState,
    pub state: ExtensionState,
    pub current_end_date: String,
    pub new_end_date: String,
    pub reason: String,
    /// RFC 3339.
    pub asked_at: String,
    /// The access the grant gives, unchanged by an extension (`Case: read`, …).
    pub access: Vec<String>,
    pub approvals: i64,
    pub approvals_required: i64,
    pub decisions: Vec<ExtensionDecisionRow>,
    /// Approved but not yet taken by Salesforce: the last error.
    pub apply_error: Option<String>,
    /// Whether the viewer may decide it now (pending, not decided by them, not their own).
    pub can_decide: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::check;

    #[test]
    fn every_extension_state_round_trips() {
        check(
            ExtensionState::ALL,
            ExtensionState::as_str,
            ExtensionState::label,
        );
        assert_eq!(
            serde_json::to_string(&ExtensionState::Pending).unwrap(),
            "\"pending\""
        );
    }
}
