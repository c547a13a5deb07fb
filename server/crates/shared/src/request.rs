//! A contractor's request as the forms and pages see it.

use serde::{Deserialize, Serialize};

use crate::vocabulary::id;

id! {
    /// An access request's id (`access_requests.id`).
    RequestId
}

/// Where a request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    /// Waiting for the contractor to confirm their email address.
    PendingVerification,
    /// Verified; waiting for approvers.
    Submitted,
    Approved,
    Rejected,
    /// Never verified in time.
    Expired,
    Cancelled,
}

impl RequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingVerification => "pending_verification",
            Self::Submitted => "submitted",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "pending_verification" => Self::PendingVerification,
            "submitted" => Self::Submitted,
            "approved" => Self::Approved,
            "rejected" => Self::Rejected,
            "expired" => Self::Expired,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    /// How the state reads to people.
    pub fn label(self) -> &'static str {
        match self {
            Self::PendingVerification => "waiting for email verification",
            Self::Submitted => "waiting for review",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
        }
    }

    pub const ALL: [RequestState; 6] = [
        Self::PendingVerification,
        Self::Submitted,
        Self::Approved,
        Self::Rejected,
        Self::Expired,
        Self::Cancelled,
    ];
}

/// One line of a request's history as the contractor sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryItem {
    /// RFC 3339.
    pub at: String,
    pub message: String,
}

/// What the contractor's status page shows (never internal notes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusView {
    pub company: String,
    pub contact_name: String,
    pub state: RequestState,
    pub submitted_at: String,
    pub end_date: String,
    /// The access asked for (or granted), labelled (see [`crate::scope::AccessLine`]).
    pub access: Vec<crate::scope::AccessLine>,
    pub history: Vec<HistoryItem>,
    /// How the grant's access ended (revoked or expired), or is ending; None while it has
    /// not begun to end (or there is no grant).
    pub access_end: Option<crate::ending::AccessEnd>,
}

/// A message in the sandbox's mail outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxItem {
    pub id: String,
    pub at: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
}
