//! The rotation policy as the pages see it: a grant's secret, its age against the maximum,
//! a rotation under way, and the secrets that are overdue.

use serde::{Deserialize, Serialize};

use crate::vocabulary::vocabulary;

vocabulary! {
    /// Where a rotation stands.
    pub enum RotationState: "a rotation state" {
        /// The portal is asking the org for staged credentials.
        Staging = "staging", "staging a new secret";
        /// Both pairs work; the contractor has a link to the new one.
        Staged = "staged", "both secrets work";
        /// The new pair was rotated in: the old one is refused.
        Completed = "completed", "completed";
        /// The org did not stage or rotate; the old pair still works.
        Failed = "failed", "failed";
    }
}

vocabulary! {
    /// How a rotation replaces the contractor's pair.
    pub enum RotationMethod: "a rotation method" {
        /// Staged credentials beside the old pair, on the same app (Connect REST).
        Staged = "staged", "staged pair (same app)";
        /// A second External Client App for the same user and permission set, where the
        /// org cannot stage; retiring the old secret deletes the old app.
        SecondApp = "second_app", "second app";
    }
}

/// A rotation as the approvers' request page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationSummary {
    pub id: String,
    pub state: RotationState,
    pub method: RotationMethod,
    /// The second app's API name (a rotation by a second app).
    pub new_app: Option<String>,
    /// `max_age` (started by the job) or `manual` ("Rotate now").
    pub reason: String,
    pub started_by: String,
    /// RFC 3339.
    pub started_at: String,
    /// When the old pair stops working at the latest (RFC 3339).
    pub deadline_at: String,
    /// The contractor collected the new pair from its link.
    pub collected: bool,
    pub completed_at: Option<String>,
    pub error: Option<String>,
}

/// The "Secret rotation" part of a grant's page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationView {
    pub grant_id: String,
    /// The maximum age that applies (days; 0: never), and whether it is the grant's own.
    pub max_age_days: i64,
    pub max_age_is_override: bool,
    /// The portal's default (`SECRET_MAX_AGE_DAYS`).
    pub default_max_age_days: i64,
    /// When the current secret became the grant's (RFC 3339).
    pub secret_since: String,
    /// When it is due for rotation (RFC 3339; None: never).
    pub due_at: Option<String>,
    /// "Rotate now" is offered (a ready or active grant with no rotation under way).
    pub can_rotate: bool,
    /// Newest first.
    pub rotations: Vec<RotationSummary>,
}

vocabulary! {
    /// Why a secret is listed as overdue.
    pub enum OverdueReason: "an overdue reason" {
        /// Older than its maximum age, and no rotation under way.
        PastMaxAge = "past_max_age", "past its maximum age";
        /// A rotation under way is past its deadline (the old secret was not retired yet).
        PastDeadline = "past_deadline", "rotation past its deadline";
    }
}

/// A grant whose secret is overdue (the assurance page's list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverdueSecret {
    pub grant_id: String,
    pub request_id: String,
    pub company: String,
    pub reason: OverdueReason,
    /// When it became overdue (RFC 3339).
    pub since: String,
}
