//! The audit log's vocabulary: every action the portal records and what an entry can be
//! about. Writing an entry takes an [`AuditAction`], and the reviewers' action filter is
//! built from [`AuditAction::ALL`], so an action cannot be written yet missing from the
//! filter.

use serde::{Deserialize, Serialize};

use crate::vocabulary::vocabulary;

vocabulary! {
    /// Every action the portal records, `family.action`, grouped by family.
    pub enum AuditAction: "an audit action" {
        AuthSignedIn = "auth.signed_in", "Signed in";
        AuthSignInFailed = "auth.sign_in_failed", "Sign-in failed";
        AuthSignedOut = "auth.signed_out", "Signed out";
        /// A signed-in session ended by the portal (the user lost their roles, say).
        AuthSessionEnded = "auth.session_ended", "Session ended by the portal";

        CatalogPackageSaved = "catalog.package_saved", "Access package saved";
        CatalogPackageDeleted = "catalog.package_deleted", "Access package deleted";

        GrantCreated = "grant.created", "Grant created";
        GrantSuspended = "grant.suspended", "Grant suspended";
        GrantFrozen = "grant.frozen", "Integration user frozen";
        GrantUnfrozen = "grant.unfrozen", "Suspension lifted";
        GrantRenewalReminderSent = "grant.renewal_reminder_sent", "Reminder of the end date sent";
        GrantExtensionRequested = "grant.extension_requested", "More time asked for";
        GrantExtensionApprovalRecorded = "grant.extension_approval_recorded", "Extension approval recorded";
        GrantExtensionApproved = "grant.extension_approved", "Extension approved";
        GrantExtensionRefused = "grant.extension_refused", "Extension refused";
        /// The approved end date set in Salesforce (the assignments' ExpirationDate) and on
        /// the grant.
        GrantExtended = "grant.extended", "End date moved";
        GrantExtensionApplyFailed = "grant.extension_apply_failed", "Salesforce did not take the new end date";
        /// An approver or owner revoked the grant (with the reason): the teardown starts.
        GrantRevokeRequested = "grant.revoke_requested", "Access revoked (teardown started)";
        /// The grant passed its end date: the teardown starts.
        GrantExpiryStarted = "grant.expiry_started", "End date passed (teardown started)";
        GrantRevoked = "grant.revoked", "Access revoked and torn down";
        GrantExpired = "grant.expired", "Access expired and torn down";
        /// After a teardown, the contractor's credential was tried and refused.
        GrantCredentialDead = "grant.credential_dead", "Credential checked: refused";
        /// A re-proof found the grant's live configuration or the proof different from
        /// what was approved (once per distinct drift).
        GrantDriftDetected = "grant.drift_detected", "Drift from the approved access detected";
        /// The approved configuration was put back after drift (re-apply policy).
        GrantReapplied = "grant.reapplied", "Approved configuration re-applied";
        GrantDriftPolicyChanged = "grant.drift_policy_changed", "Drift policy changed";

        ProvisioningStepStarted = "provisioning.step_started", "Provisioning step started";
        ProvisioningStepSucceeded = "provisioning.step_succeeded", "Provisioning step succeeded";
        ProvisioningStepRetry = "provisioning.step_retry", "Provisioning step to be retried";
        ProvisioningStepFailed = "provisioning.step_failed", "Provisioning step failed";
        ProvisioningRetried = "provisioning.retried", "Provisioning retried by an admin";
        ProvisioningCancelRequested = "provisioning.cancel_requested", "Cancellation requested";
        ProvisioningCancelled = "provisioning.cancelled", "Provisioning cancelled";
        ProvisioningUndoStarted = "provisioning.undo_started", "Undo of a step started";
        ProvisioningUndoRetry = "provisioning.undo_retry", "Undo of a step to be retried";
        ProvisioningStepUndone = "provisioning.step_undone", "Provisioning step undone";
        ProvisioningUndoFailed = "provisioning.undo_failed", "Undo of a step failed";

        RequestSubmitted = "request.submitted", "Request submitted";
        RequestVerified = "request.verified", "Email address verified";
        RequestVerificationFailed = "request.verification_failed", "Email verification failed";
        RequestApprovalRecorded = "request.approval_recorded", "Approval recorded";
        RequestApproved = "request.approved", "Request approved";
        RequestRejected = "request.rejected", "Request rejected";
        RequestExpired = "request.expired", "Request expired unverified";

        RevealLinkIssued = "reveal.link_issued", "Credential link sent";
        RevealCodeSent = "reveal.code_sent", "Reveal code sent";
        RevealCodeRejected = "reveal.code_rejected", "Reveal code rejected";
        RevealLocked = "reveal.locked", "Reveal link locked";
        RevealDisownCodeSent = "reveal.disown_code_sent", "Code sent to report a reveal";
        RevealDisownCodeRejected = "reveal.disown_code_rejected", "Code to report a reveal rejected";

        /// An owner started an access review campaign (its grants became its items).
        ReviewStarted = "review.started", "Access review started";
        ReviewItemKept = "review.item_kept", "Review: access kept";
        /// The reviewer approved a narrower scope (applied, then proven).
        ReviewItemNarrowed = "review.item_narrowed", "Review: access narrowed";
        /// The narrower scope is in Salesforce and the proof passed with it.
        ReviewNarrowApplied = "review.narrow_applied", "Review: narrower access applied and proven";
        ReviewNarrowFailed = "review.narrow_failed", "Review: narrowing failed";
        ReviewItemRevoked = "review.item_revoked", "Review: access revoked";
        /// Unanswered at the due date: the campaign's default (keep or revoke) applied.
        ReviewItemDefaulted = "review.item_defaulted", "Review: default applied at the due date";
        ReviewClosed = "review.closed", "Access review closed";

        RoleChanged = "role.changed", "Role changed";

        SecretRevealed = "secret.revealed", "Credential revealed";
        SecretRevealFailed = "secret.reveal_failed", "Credential reveal failed";
        SecretDisowned = "secret.disowned", "Reveal reported as not the contractor's";
        SecretRotated = "secret.rotated", "Secret rotated";
        SecretSealedDestroyed = "secret.sealed_destroyed", "Uncollected secret destroyed";
        /// A rotation began: a new pair staged beside the old one, its link mailed.
        SecretRotationStarted = "secret.rotation_started", "Secret rotation started";
        /// The contractor was reminded to collect the new pair before the old one stops.
        SecretRotationReminderSent = "secret.rotation_reminder_sent", "Rotation reminder sent";
        /// The staged pair was rotated in: the old secret is retired (refused from now on).
        SecretRotationCompleted = "secret.rotation_completed", "Old secret retired";
        SecretRotationFailed = "secret.rotation_failed", "Secret rotation failed";
        /// An approver set (or cleared) the grant's maximum secret age.
        SecretMaxAgeChanged = "secret.max_age_changed", "Maximum secret age changed";

        SettingsChanged = "settings.changed", "Settings changed";

        TeardownStepStarted = "teardown.step_started", "Teardown step started";
        TeardownStepDone = "teardown.step_done", "Teardown step done";
        TeardownStepRetry = "teardown.step_retry", "Teardown step to be retried";
        TeardownStepFailed = "teardown.step_failed", "Teardown step failed";

        UsageLimitWarning = "usage.limit_warning", "API budget nearly used";
        UsageLimitExceeded = "usage.limit_exceeded", "API budget exceeded";
        UsageAnomaly = "usage.anomaly", "Unusual API usage";
    }
}

impl AuditAction {
    /// The family, the part before the dot (`request` for `request.submitted`).
    pub fn family(self) -> &'static str {
        self.as_str()
            .split_once('.')
            .map_or(self.as_str(), |(family, _)| family)
    }

    /// Whether `family` is the family of some action.
    pub fn is_family(family: &str) -> bool {
        Self::ALL.iter().any(|a| a.family() == family)
    }
}

vocabulary! {
    /// What an audit entry is about (its `target_type`; `target_id` says which one).
    pub enum Target: "a target type" {
        Request = "request", "Request";
        Grant = "grant", "Grant";
        User = "user", "User";
        Package = "package", "Access package";
        Settings = "settings", "Settings";
        ReviewCampaign = "review_campaign", "Access review";
    }
}

/// The families of actions (`request.*` ...), in the order the filter lists them.
pub fn families() -> Vec<&'static str> {
    let mut families: Vec<&'static str> = AuditAction::ALL.iter().map(|a| a.family()).collect();
    families.sort_unstable();
    families.dedup();
    families
}

/// Percent-encodes a value for a URL query (everything but unreserved characters).
pub fn url_encode(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocabulary::check;

    #[test]
    fn every_value_round_trips_and_none_is_listed_twice() {
        check(AuditAction::ALL, AuditAction::as_str, AuditAction::label);
        check(Target::ALL, Target::as_str, Target::label);
    }

    #[test]
    fn actions_are_family_dot_action_grouped_by_family() {
        let mut seen: Vec<&str> = Vec::new();
        for action in AuditAction::ALL {
            let (family, name) = action.as_str().split_once('.').unwrap();
            assert!(!family.is_empty() && !name.is_empty(), "{action}");
            assert!(
                action
                    .as_str()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.'),
                "{action}"
            );
            // A family's actions are together, so the filter's list reads in groups.
            if seen.last() != Some(&family) {
                assert!(!seen.contains(&family), "{family} is split in ALL");
                seen.push(family);
            }
        }
        assert_eq!(
            families(),
            [
                "auth",
                "catalog",
                "grant",
                "provisioning",
                "request",
                "reveal",
                "review",
                "role",
                "secret",
                "settings",
                "teardown",
                "usage"
            ]
        );
        assert!(AuditAction::is_family("usage") && !AuditAction::is_family("org"));
    }

    #[test]
    fn the_actions_the_filter_lacked_are_in_the_vocabulary() {
        for action in [
            "grant.suspended",
            "grant.frozen",
            "grant.unfrozen",
            "usage.limit_warning",
            "usage.limit_exceeded",
        ] {
            assert!(AuditAction::parse(action).is_ok(), "{action}");
        }
        assert_eq!(
            AuditAction::parse("request.exploded")
                .unwrap_err()
                .to_string(),
            "'request.exploded' is not an audit action"
        );
    }
}

/// The filter as a form or a URL carries it: every field optional text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub outcome: Option<String>,
    /// A UTC date (`2026-11-22`) or date and time (`2026-11-22T14:20`), inclusive.
    pub from: Option<String>,
    /// The same; a date alone means the end of that day.
    pub to: Option<String>,
    /// Words to find in the details.
    pub q: Option<String>,
}

impl AuditQuery {
    /// The query as URL parameters (only the fields given), for links that keep it.
    pub fn to_url_query(&self) -> String {
        let pairs = [
            ("actor", &self.actor),
            ("action", &self.action),
            ("target_type", &self.target_type),
            ("target_id", &self.target_id),
            ("outcome", &self.outcome),
            ("from", &self.from),
            ("to", &self.to),
            ("q", &self.q),
        ];
        let mut out = String::new();
        for (key, value) in pairs {
            if let Some(value) = given(value) {
                if !out.is_empty() {
                    out.push('&');
                }
                out.push_str(key);
                out.push('=');
                out.push_str(&url_encode(value));
            }
        }
        out
    }
}

fn given(raw: &Option<String>) -> Option<&str> {
    raw.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "any")
}

/// What the anchors say about a verified stretch of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnchorReport {
    /// Anchors are made every this many entries.
    pub every: i64,
    /// Anchors made with this portal's key that were checked and hold.
    pub checked: i64,
    /// The last entry a holding anchor vouches for (0: none).
    pub anchored_through: i64,
    /// From this entry on the log is only self-consistent: no anchor vouches for it.
    /// `None` when anchors cover every entry checked.
    pub self_consistent_from: Option<i64>,
    /// Anchors made with another key, which this portal cannot check.
    pub other_keys: i64,
    /// More than two intervals of entries have no anchor: the anchoring may be behind, or
    /// anchors were deleted.
    pub overdue: bool,
}

/// One entry as the list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub actor_ip: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub outcome: String,
    /// The details, shortened for the table.
    pub summary: String,
}

/// One page of found entries, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub rows: Vec<AuditRow>,
    /// The cursor of the next (older) page.
    pub next_before: Option<i64>,
    /// Entries in the whole log.
    pub total: i64,
    /// The filter as URL parameters, for the export links and the next page.
    pub query: String,
    /// The grant the filter is about, when it names one (for the evidence pack link).
    pub grant: Option<String>,
}

/// One entry in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryView {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub actor_ip: String,
    pub user_agent: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub outcome: String,
    /// Pretty-printed JSON.
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// What "Verify chain" found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerifyView {
    Intact {
        entries: i64,
        first_seq: i64,
        last_seq: i64,
        anchors: AnchorReport,
    },
    Broken {
        seq: i64,
        problem: String,
        detail: String,
        anchors: AnchorReport,
    },
}

/// What pressing "Verify chain" did: a range of at most
/// [`VERIFY_INLINE_MAX`] entries is checked at once; the whole log, or a larger range,
/// is verified in the background, one verification at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerifyAnswer {
    /// Checked in the request.
    Checked(VerifyView),
    /// A background verification was started.
    Started,
    /// One is running already (started by someone, maybe on another instance): nothing new
    /// was started.
    AlreadyRunning,
}

/// The largest range "Verify chain" checks inside the request.
pub const VERIFY_INLINE_MAX: i64 = 10_000;

/// The first problem a background verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyProblem {
    pub seq: i64,
    /// `changed`, `missing`, `inserted`, … (as [`VerifyView::Broken`]'s).
    pub problem: String,
    pub detail: String,
}

/// A background verification, running or finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyJobView {
    pub id: String,
    /// `running`, `intact`, `broken` or `failed` (it could not finish: see `error`).
    pub state: String,
    pub requested_by: String,
    /// RFC 3339.
    pub requested_at: String,
    /// The range asked for (`None`: from the first entry / to the last).
    pub from_seq: Option<i64>,
    pub to_seq: Option<i64>,
    /// Entries to check, once known (for the whole log: up to the head when it began).
    pub total: Option<i64>,
    /// Entries checked so far.
    pub checked: i64,
    /// Entries a second.
    pub rate: i64,
    /// Problems found so far (a run carries on after the first).
    pub problems: i64,
    pub first_problem: Option<VerifyProblem>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// The finished result, with the anchors, as an inline verify answers.
    pub result: Option<VerifyView>,
    pub error: Option<String>,
}

impl VerifyJobView {
    pub fn running(&self) -> bool {
        self.state == "running"
    }
}

/// The background verification on the audit page: the one running, if any, and the last
/// one that finished.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyStatus {
    pub running: Option<VerifyJobView>,
    pub last: Option<VerifyJobView>,
}

/// One sink the audit log is streamed to (`syslog`, `hec`, `webhook`), as the audit page
/// shows it: where it goes (the host, never a token or key), how far it acknowledged, how
/// far behind it is, and how it last fared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSinkView {
    /// `syslog`, `hec` or `webhook`.
    pub name: String,
    /// What the sink is, in words ("syslog over TLS to siem.example:6514").
    pub target: String,
    /// The last entry the sink acknowledged (0: none yet).
    pub acked_seq: i64,
    /// Entries written after it (the log's head − `acked_seq`).
    pub lag: i64,
    /// Failures since the last success, and in all.
    pub failures: i64,
    pub failures_total: i64,
    /// The last failure's message (never a secret), and when (RFC 3339).
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    /// When the sink last acknowledged a batch (RFC 3339).
    pub last_success_at: Option<String>,
}
