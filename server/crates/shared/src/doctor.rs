//! What `portcullis doctor` and the owners' page `/admin/org` report: one line per check of
//! the org's readiness, in the order an admin sets the org up (docs/real-org.md).

use serde::{Deserialize, Serialize};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckStatus {
    Ok,
    /// Works, but not as well as it could (or could not be checked because an earlier
    /// check failed).
    Warn,
    /// The portal cannot work until this is fixed.
    Fail,
}

impl CheckStatus {
    /// `ok`, `warn` or `FAIL`, as the doctor prints them.
    pub fn label(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "FAIL",
        }
    }
}

/// One check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// A stable name, e.g. `integration-licences` (docs/real-org.md names the checks so).
    pub id: String,
    /// What is checked, e.g. "Salesforce Integration licences".
    pub title: String,
    pub status: CheckStatus,
    /// What was found.
    pub detail: String,
    /// Exactly what to change in Setup (or in the portal's settings), when something is
    /// wrong.
    pub fix: Option<String>,
}

impl Check {
    /// The doctor's line: `ok    id: detail` (and ` Fix: ...` when there is one).
    /// One line even when the org's error messages span several.
    pub fn line(&self) -> String {
        let one = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut line = format!(
            "{:<5} {}: {}",
            self.status.label(),
            self.id,
            one(&self.detail)
        );
        if let Some(fix) = &self.fix {
            line.push_str(" Fix: ");
            line.push_str(&one(fix));
        }
        line
    }
}

/// Whether any check failed.
pub fn any_failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.status == CheckStatus::Fail)
}
