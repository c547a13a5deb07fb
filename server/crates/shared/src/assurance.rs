//! Assurance (drift detection): what the pages show about the re-proofs of set-up grants —
//! each grant's drift policy, its last proof's table, the assurance page's rows — declared
//! once for the server and the browser.

use serde::{Deserialize, Serialize};

use crate::vocabulary::vocabulary;

vocabulary! {
    /// What a re-proof that finds drift does besides raising `grant.drift_detected`.
    pub enum DriftPolicy: "a drift policy" {
        /// Alert the approvers (mail and webhook) and change nothing.
        Alert = "alert", "Alert only";
        /// Alert, suspend the grant and freeze its integration user (as a budget's freeze).
        Freeze = "freeze", "Alert and freeze the integration user";
        /// Alert, put the approved configuration back, and prove again.
        Reapply = "reapply", "Alert and re-apply the approved configuration";
    }
}

/// One line of a proof's table: what was approved, what the org shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofLine {
    pub check: String,
    pub expected: String,
    pub observed: String,
    pub pass: bool,
    /// A failure that means more access than approved.
    pub wider: bool,
}

/// One re-proof of a grant, as kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofRecord {
    pub grant_id: String,
    /// RFC 3339.
    pub proved_at: String,
    /// Every check passed and nothing drifted.
    pub passed: bool,
    /// The proof's own checks as the contractor, and the live configuration's (as the admin).
    pub checks: Vec<ProofLine>,
    /// The lines that differ from what was approved (empty: no drift).
    pub drift: Vec<ProofLine>,
    /// What was done about the drift (`alerted`, `frozen`, `reapplied`, ...), if any.
    pub action: Option<String>,
    /// Why the re-proof could not run, if it could not.
    pub error: Option<String>,
    /// Salesforce API calls the re-proof made (as the portal counted them), if known.
    pub calls: Option<u32>,
}

/// A grant on the assurance page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssuranceRow {
    pub grant_id: String,
    pub request_id: String,
    pub company: String,
    /// The grant's state (its stored text).
    pub state: String,
    pub policy: DriftPolicy,
    /// The grant has no policy of its own: the portal's default applies.
    pub policy_is_default: bool,
    pub last: Option<ProofRecord>,
}

/// The assurance page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssuranceOverview {
    pub rows: Vec<AssuranceRow>,
    pub default_policy: DriftPolicy,
    pub interval_hours: u64,
}

/// What "Re-prove all grants now" did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReproveSummary {
    pub proved: u32,
    pub passed: u32,
    pub drifted: u32,
    /// Drift raised now (not already raised by an earlier run).
    pub raised: u32,
    pub failed: u32,
}

/// A grant's assurance on its request page: its policy and its last proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantAssurance {
    pub grant_id: String,
    pub policy: DriftPolicy,
    pub policy_is_default: bool,
    pub last: Option<ProofRecord>,
}
