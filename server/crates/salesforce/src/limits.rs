//! The org's API allocation: the `Sforce-Limit-Info` header every REST response carries, and
//! the `/limits` resource (§2.8). Both are org-wide; per-contractor usage comes from event
//! logs ([`crate::eventlog`]).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::client::Client;
use crate::error::{Error, Result};

/// The name of the response header Salesforce reports API usage in.
pub const LIMIT_INFO_HEADER: &str = "Sforce-Limit-Info";

/// `api-usage=used/max` from `Sforce-Limit-Info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitInfo {
    pub used: u64,
    pub max: u64,
}

impl LimitInfo {
    /// Parses the header value. Salesforce has sent other entries next to `api-usage`
    /// (`per-app-api-usage=17/250(appName=x)`), separated by `;` or `,`; they are ignored.
    pub fn parse(header: &str) -> Option<Self> {
        header
            .split([';', ','])
            .map(str::trim)
            .find_map(|part| part.strip_prefix("api-usage="))
            .and_then(|usage| {
                let (used, max) = usage.split_once('/')?;
                Some(Self {
                    used: used.trim().parse().ok()?,
                    max: max.trim().parse().ok()?,
                })
            })
    }

    pub fn remaining(&self) -> u64 {
        self.max.saturating_sub(self.used)
    }
}

/// One entry of `/limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: i64,
    pub remaining: i64,
}

impl Limit {
    pub fn used(&self) -> i64 {
        self.max.saturating_sub(self.remaining)
    }
}

/// The org's limits by name (`DailyApiRequests`, `DataStorageMB`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub entries: BTreeMap<String, Limit>,
}

impl Limits {
    /// Decodes the `/limits` body. Entries that are not `{"Max", "Remaining"}` objects are
    /// skipped; extra keys inside an entry (per-app breakdowns) are ignored.
    pub fn from_value(value: &Value) -> Result<Self> {
        let map = value
            .as_object()
            .ok_or_else(|| Error::decode("limits", "expected an object of limits"))?;
        let entries = map
            .iter()
            .filter_map(|(name, entry)| {
                let max = entry.get("Max")?.as_i64()?;
                let remaining = entry.get("Remaining")?.as_i64()?;
                Some((name.clone(), Limit { max, remaining }))
            })
            .collect();
        Ok(Self { entries })
    }

    pub fn get(&self, name: &str) -> Option<Limit> {
        self.entries.get(name).copied()
    }

    /// The rolling-24-hour API allocation.
    pub fn daily_api_requests(&self) -> Option<Limit> {
        self.get("DailyApiRequests")
    }
}

impl Client {
    /// `GET /limits/` (needs View Setup and Configuration).
    pub async fn limits(&self) -> Result<Limits> {
        let value: Value = self.get_json(&self.rest_url(&["limits", ""])?).await?;
        Limits::from_value(&value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_header() {
        assert_eq!(
            LimitInfo::parse("api-usage=10018/100000"),
            Some(LimitInfo {
                used: 10018,
                max: 100000
            })
        );
        assert_eq!(
            LimitInfo::parse("api-usage=135/5000").map(|l| l.remaining()),
            Some(4865)
        );
    }

    #[test]
    fn tolerates_extra_entries_and_spacing() {
        assert_eq!(
            LimitInfo::parse("api-usage=18/5000; per-app-api-usage=17/250(appName=sample)"),
            Some(LimitInfo {
                used: 18,
                max: 5000
            })
        );
        assert_eq!(
            LimitInfo::parse("per-app-api-usage=1/2(appName=x), api-usage= 3 / 4 "),
            Some(LimitInfo { used: 3, max: 4 })
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "api-usage=",
            "api-usage=1",
            "api-usage=a/b",
            "usage=1/2",
            "api-usage=-1/5",
        ] {
            assert_eq!(LimitInfo::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn decodes_the_limits_resource() {
        let body = serde_json::json!({
            "DailyApiRequests": { "Max": 5000, "Remaining": 4937, "Portcullis": {"Max": 0, "Remaining": 0} },
            "DailyAsyncApexExecutions": { "Max": 250000, "Remaining": 250000 },
            "DailyBulkApiBatches": { "Max": 15000, "Remaining": 15000 },
            "DataStorageMB": { "Max": 1024, "Remaining": 1024 },
            "Odd": "not a limit"
        });
        let limits = Limits::from_value(&body).unwrap();
        assert_eq!(limits.entries.len(), 4);
        let daily = limits.daily_api_requests().unwrap();
        assert_eq!(daily.max, 5000);
        assert_eq!(daily.used(), 63);
        assert!(limits.get("Odd").is_none());
        assert!(Limits::from_value(&serde_json::json!([])).is_err());
    }
}
