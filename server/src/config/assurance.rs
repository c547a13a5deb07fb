//! Settings of drift detection: how often every grant is proved again, what drift does by
//! default, and how many grants are re-proved at a time.

use services::assurance::AssuranceSettings;
use shared::assurance::DriftPolicy;

use super::ConfigError;
use super::setting::{Source, number, settings};

settings! {
    /// Drift detection (re-proving every ready or active grant).
    pub const ASSURANCE = [
        ASSURANCE_INTERVAL_HOURS: u64 {
            default: Value("24"),
            parse: |raw| number(raw, 0..=8_760),
            help: "how often every ready or active grant is proved again for drift, in hours (`0`: never here; the assurance page's button still works)",
        },
        ASSURANCE_DRIFT_POLICY: DriftPolicy {
            default: Value("alert"),
            parse: |raw| DriftPolicy::parse(raw.trim()).map_err(|e| format!("{e}: use alert, freeze or reapply")),
            help: "what drift does for grants without a policy of their own: `alert` (mail and webhook), `freeze` (also suspend and freeze the integration user) or `reapply` (also put the approved configuration back and prove again)",
        },
        ASSURANCE_CONCURRENCY: u64 {
            default: Value("4"),
            parse: |raw| number(raw, 1..=16),
            help: "grants re-proved at a time (1 to 16; each costs a few API calls, kept well under the org's concurrent request limit)",
        },
    ];
}

/// The drift detection settings.
pub(super) fn assurance(source: &Source) -> Result<AssuranceSettings, ConfigError> {
    Ok(AssuranceSettings {
        default_policy: ASSURANCE_DRIFT_POLICY.read(source)?,
        interval_hours: ASSURANCE_INTERVAL_HOURS.read(source)?,
        concurrency: ASSURANCE_CONCURRENCY.read(source)? as usize,
    })
}
