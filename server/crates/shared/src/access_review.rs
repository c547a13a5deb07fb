//! Access reviews as the pages see them (issue 18): campaigns, their items with what the
//! credential can do (the last proof's table) next to what it used, and the decisions.

use serde::{Deserialize, Serialize};

pub use crate::assurance::ProofLine;

use crate::grant::GrantState;
use crate::vocabulary::vocabulary;

vocabulary! {
    /// What a reviewer (or the due date) decided for one item.
    pub enum ReviewDecision: "a review decision" {
        Keep = "keep", "kept";
        /// A narrower scope, applied and proven, then the old permissions removed.
        Narrow = "narrow", "narrowed";
        /// The end-of-access teardown.
        Revoke = "revoke", "revoked";
    }
}

vocabulary! {
    /// Where a campaign stands.
    pub enum CampaignState: "a campaign state" {
        Open = "open", "open";
        /// Every item is decided (by reviewers, or by the default at the due date).
        Closed = "closed", "closed";
    }
}

vocabulary! {
    /// Which grants a campaign reviews.
    pub enum CampaignSelection: "a campaign selection" {
        All = "all", "every ready or active grant";
        Package = "package", "the grants of an access package";
        Object = "object", "the grants that reach an object";
    }
}

/// One campaign in the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignRow {
    pub id: String,
    pub name: String,
    pub state: CampaignState,
    /// `YYYY-MM-DD`: unanswered items take the default at the end of this day (UTC).
    pub due_date: String,
    pub default_decision: ReviewDecision,
    /// e.g. "every ready or active grant", "access package Support".
    pub selection: String,
    pub items: i64,
    pub decided: i64,
    pub started_by: String,
    /// RFC 3339.
    pub created_at: String,
}

/// The page `/admin/reviews`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewsView {
    pub campaigns: Vec<CampaignRow>,
    /// The access packages a campaign may be limited to (names).
    pub packages: Vec<String>,
    /// Whether the signed-in user may start a campaign (owners).
    pub can_start: bool,
    /// The earliest due date the form accepts (`YYYY-MM-DD`, tomorrow).
    pub min_due_date: String,
}

/// An object the contractor used in the review window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsedObject {
    pub object: String,
    pub calls: i64,
    /// Days (UTC) with at least one call on it.
    pub days: i64,
    /// The granted fields of the object (from the approved scope the proof checked); empty
    /// for an object outside the grant.
    pub granted_fields: Vec<String>,
    /// Whether the grant includes the object at all.
    pub granted: bool,
}

/// A granted object or field a reviewer may drop when narrowing (`Case` or `Case.Status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Droppable {
    pub key: String,
    pub label: String,
    /// Whether the contractor used it (objects: called in the window; fields: their object
    /// was called).
    pub used: bool,
}

/// One item of a campaign: a grant under review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewItemView {
    pub grant_id: String,
    pub request_id: String,
    pub company: String,
    pub contact_email: String,
    pub grant_state: GrantState,
    pub end_date: String,
    /// The approved access, one line per object.
    pub access: Vec<String>,
    /// RFC 3339 of the proof's time, when known.
    pub proof_at: Option<String>,
    pub proof: Vec<ProofLine>,
    pub used: Vec<UsedObject>,
    pub droppable: Vec<Droppable>,
    pub decision: Option<ReviewDecision>,
    /// The reviewer, or "default" (the due date decided).
    pub decided_by: Option<String>,
    pub comment: Option<String>,
    pub decided_at: Option<String>,
    /// A narrowing: pending, done or failed, and why it failed.
    pub narrow_state: Option<String>,
    pub narrow_error: Option<String>,
    /// Whether the signed-in user may decide this item now.
    pub can_decide: bool,
}

/// The page `/admin/reviews/<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignView {
    pub campaign: CampaignRow,
    pub reviewers: Vec<String>,
    /// The usage window (RFC 3339 of its start; it ends now or at the due date).
    pub window_start: String,
    pub items: Vec<ReviewItemView>,
}
