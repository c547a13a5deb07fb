//! The audit log's vocabulary, for the reviewers' filters.

/// Every action the portal records, for the action filter.
pub const KNOWN_ACTIONS: &[&str] = &[
    "auth.signed_in",
    "auth.sign_in_failed",
    "auth.signed_out",
    "catalog.package_saved",
    "catalog.package_deleted",
    "grant.created",
    "provisioning.step_started",
    "provisioning.step_succeeded",
    "provisioning.step_retry",
    "provisioning.step_failed",
    "provisioning.retried",
    "provisioning.cancel_requested",
    "provisioning.cancelled",
    "provisioning.undo_started",
    "provisioning.undo_retry",
    "provisioning.step_undone",
    "provisioning.undo_failed",
    "request.submitted",
    "request.verified",
    "request.verification_failed",
    "request.approval_recorded",
    "request.approved",
    "request.rejected",
    "request.expired",
    "reveal.link_issued",
    "reveal.code_sent",
    "reveal.code_rejected",
    "reveal.locked",
    "role.changed",
    "secret.revealed",
    "secret.reveal_failed",
    "secret.disowned",
    "secret.rotated",
    "secret.sealed_destroyed",
    "settings.changed",
];

/// What entries can be about.
pub const TARGET_TYPES: &[&str] = &["request", "grant", "user", "package", "settings"];

/// The families of actions (`request.*` ...), in the order the filter lists them.
pub fn families() -> Vec<&'static str> {
    let mut families: Vec<&'static str> = KNOWN_ACTIONS
        .iter()
        .filter_map(|a| a.split_once('.').map(|(family, _)| family))
        .collect();
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
