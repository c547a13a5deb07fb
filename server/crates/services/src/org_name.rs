//! The org's name as Salesforce gives it (`SELECT Name FROM Organization`, the org's one
//! Organization row), for the mail and pages that send people to the org's admins and
//! approvers ("Ask Acme's admin for a new link"). Read once and kept for the process
//! ([`OrgNameCache`]); when it cannot be read, a neutral wording stands in ("your
//! company's admins") and a later use tries again, at most once a minute. Never a reason
//! to refuse anything.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;

/// What stands in for the name when the org does not give it.
pub const FALLBACK: &str = "your company";

/// How long one read of the name may take (a mail is not held up longer for it).
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long after a failed read the next one is tried.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// The org's name, or the neutral wording when it is not known.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrgName(Option<Arc<str>>);

impl OrgName {
    /// The name as the org gives it; a blank name is not known.
    pub fn known(name: &str) -> Self {
        let name = name.trim();
        if name.is_empty() {
            Self(None)
        } else {
            Self(Some(Arc::from(name)))
        }
    }

    /// The name is not known: the neutral wording stands in.
    pub fn unknown() -> Self {
        Self(None)
    }

    pub fn is_known(&self) -> bool {
        self.0.is_some()
    }

    /// The name, or [`FALLBACK`].
    pub fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or(FALLBACK)
    }

    /// "Acme's", "your company's".
    pub fn possessive(&self) -> String {
        format!("{}'s", self.as_str())
    }
}

impl std::fmt::Display for OrgName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Deserialize)]
struct OrganizationRow {
    #[serde(rename = "Name")]
    name: Option<String>,
}

/// Reads the org's name (one query). `Ok(None)` when the org answers with no name.
pub async fn read(client: &salesforce::Client) -> Result<Option<String>, salesforce::Error> {
    let soql = salesforce::Soql::trusted("SELECT Name FROM Organization LIMIT 1");
    let page = client.query::<OrganizationRow>(&soql).await?;
    Ok(page
        .records
        .into_iter()
        .next()
        .and_then(|row| row.name)
        .filter(|name| !name.trim().is_empty()))
}

#[derive(Debug, Default)]
struct State {
    name: Option<OrgName>,
    /// When the last read failed (elapsed real time, not the portal's clock).
    failed_at: Option<tokio::time::Instant>,
}

/// The name once read, shared by a portal's clones.
#[derive(Clone, Debug, Default)]
pub struct OrgNameCache(Arc<Mutex<State>>);

impl OrgNameCache {
    /// The name: the one read before, else a read now (the neutral wording when it fails or
    /// a read failed less than a minute ago).
    pub async fn get(&self, client: &salesforce::Client) -> OrgName {
        if let Some(name) = self.cached() {
            return name;
        }
        if self.failed_recently() {
            return OrgName::unknown();
        }
        self.refresh(client).await
    }

    /// Reads the name again (at start-up, or after a reconnection), keeping it when read.
    pub async fn refresh(&self, client: &salesforce::Client) -> OrgName {
        let result = tokio::time::timeout(READ_TIMEOUT, read(client)).await;
        let name = match result {
            Ok(Ok(Some(name))) => Some(OrgName::known(&name)),
            Ok(Ok(None)) => {
                tracing::warn!(
                    "the org's Organization record has no Name; mail says \"{FALLBACK}\""
                );
                None
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the org's name could not be read; mail says \"{FALLBACK}\"");
                None
            }
            Err(_) => {
                tracing::warn!("the org's name was not read in time; mail says \"{FALLBACK}\"");
                None
            }
        };
        let Ok(mut state) = self.0.lock() else {
            return name.unwrap_or_default();
        };
        match name {
            Some(name) => {
                state.name = Some(name.clone());
                state.failed_at = None;
                name
            }
            None => {
                state.failed_at = Some(tokio::time::Instant::now());
                state.name.clone().unwrap_or_default()
            }
        }
    }

    /// The name if it was read, else the neutral wording; never reads (for code inside a
    /// transaction, after [`OrgNameCache::get`] was called before it).
    pub fn current(&self) -> OrgName {
        self.cached().unwrap_or_default()
    }

    fn cached(&self) -> Option<OrgName> {
        self.0.lock().ok().and_then(|state| state.name.clone())
    }

    fn failed_recently(&self) -> bool {
        self.0
            .lock()
            .ok()
            .and_then(|state| state.failed_at)
            .is_some_and(|at| at.elapsed() < RETRY_AFTER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_name_is_used_and_a_blank_one_is_not() {
        let acme = OrgName::known("  Kinetic Holdings ");
        assert!(acme.is_known());
        assert_eq!(acme.to_string(), "Kinetic Holdings");
        assert_eq!(acme.possessive(), "Kinetic Holdings's");
        let blank = OrgName::known("  ");
        assert!(!blank.is_known());
        assert_eq!(blank.possessive(), "your company's");
        assert_eq!(OrgName::unknown(), OrgName::default());
    }
}
