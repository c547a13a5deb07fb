//! What the approvers' pages show: the queue, a request under review (with its blast
//! radius, the org's objects and the decision form's starting values) and a grant's
//! provisioning. Built by the services, shown by the pages.

use serde::{Deserialize, Serialize};

use crate::blast::BlastRadius;
use crate::budget::Budget;
use crate::ending::{AccessEnd, EndingGrant};
use crate::org::OrgObject;
use crate::request::RequestState;
use crate::reveal::CredentialStatus;
use crate::scope::{Scope, ScopeChange};
use crate::{GrantState, StepState};

/// One row of the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRow {
    pub id: String,
    pub company: String,
    pub contact_name: String,
    pub contact_email: String,
    pub state: RequestState,
    pub created_at: String,
    pub age_hours: i64,
    pub risky: bool,
    pub approvals: i64,
    pub approvals_required: i64,
    pub end_date: String,
    pub calls_per_day: i64,
}

/// One page of the queue, with the count of requests in each state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuePage {
    pub rows: Vec<QueueRow>,
    pub counts: Vec<(RequestState, i64)>,
    pub next_cursor: Option<String>,
    /// Requests for more time waiting for approvers (all of them, oldest first; the
    /// filters are the requests').
    pub extensions: Vec<crate::renewal::ExtensionQueueRow>,
}

/// A decision as the request page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRow {
    pub approver: String,
    pub decision: String,
    pub reason: String,
    pub at: String,
    pub changes: Vec<ScopeChange>,
}

/// One entry of the request's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRow {
    pub at: String,
    pub message: String,
    pub internal: bool,
}

/// A request, as an approver reviews it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestView {
    pub id: String,
    pub company: String,
    pub contact_name: String,
    pub contact_email: String,
    pub justification: String,
    pub state: RequestState,
    pub scope: Scope,
    pub calls_per_day: i64,
    pub ip_ranges: Vec<String>,
    pub end_date: String,
    pub created_at: String,
    pub risky: bool,
    pub risks: Vec<String>,
    pub approvals_required: i64,
    pub decisions: Vec<DecisionRow>,
    pub events: Vec<EventRow>,
    pub blast: Option<BlastRadius>,
    /// Why the blast radius could not be computed, if it could not.
    pub blast_error: Option<String>,
    /// The org's objects with the fields a scope can grant, for the decision form.
    pub org_objects: Vec<OrgObject>,
    /// Whether each object's records can be shared, from its sharing model read from the org.
    pub record_sharing: Vec<RecordSharingRow>,
    /// Why the sharing models could not be read, if they could not.
    pub record_sharing_error: Option<String>,
    /// What the decision form starts from.
    pub proposal: Proposal,
    pub viewer: String,
}

/// Whether an approver may choose an object's records to share (from the object's sharing
/// model), and why not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSharingRow {
    pub object: String,
    pub offered: bool,
    pub note: Option<String>,
}

/// The decision form's starting values: what the contractor asked for, or, once an
/// approver has approved, what they approved (a second approver confirms or narrows it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub scope: Scope,
    pub budget: Budget,
    pub end_date: String,
    pub ip_ranges: Vec<String>,
    /// The approver whose approval the values come from.
    pub from_approver: Option<String>,
}

/// One provisioning step, for the request's page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRow {
    pub label: String,
    pub state: StepState,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// One line of the least-privilege proof's evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceRow {
    pub check: String,
    pub expected: String,
    pub observed: String,
    pub pass: bool,
}

/// The provisioning of an approved request's grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisioningView {
    pub state: GrantState,
    pub attention: Option<String>,
    pub api_calls: i64,
    pub steps: Vec<StepRow>,
    pub evidence: Vec<EvidenceRow>,
    /// Where the contractor's credential stands, once the grant is set up.
    pub credential: Option<CredentialStatus>,
    /// How the grant's access ended (or is ending): revoked or expired.
    pub access_end: Option<AccessEnd>,
    /// When the run needs attention for lack of a Salesforce Integration licence: the
    /// grants holding one that end soonest (where one comes free).
    pub ending_soonest: Vec<EndingGrant>,
}

impl ProvisioningView {
    /// Nothing more will happen without an admin.
    pub fn finished(&self) -> bool {
        self.state.is_settled()
    }
}
