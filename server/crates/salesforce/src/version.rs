//! The REST API version the client speaks (`/services/data/v66.0/...`).

use std::fmt;

/// Why a string is not a usable API version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct VersionError(String);

/// A REST API version such as `66.0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    major: u16,
}

impl ApiVersion {
    /// Spring '26, the version the reference's examples use.
    pub const DEFAULT: ApiVersion = ApiVersion { major: 66 };
    /// The oldest version Salesforce still serves (§2.1).
    pub const OLDEST_SUPPORTED: u16 = 31;

    /// Parses `66.0`, `66` or `v66.0`.
    pub fn parse(raw: &str) -> Result<Self, VersionError> {
        let bad = || VersionError(format!("{raw:?} is not an API version like 66.0"));
        let text = raw.trim().strip_prefix('v').unwrap_or(raw.trim());
        let major = match text.split_once('.') {
            Some((major, "0")) => major,
            Some(_) => return Err(bad()),
            None => text,
        };
        if major.is_empty() || !major.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let major: u16 = major.parse().map_err(|_| bad())?;
        if major < Self::OLDEST_SUPPORTED {
            return Err(VersionError(format!(
                "API version {major}.0 is retired; use {}.0 or later",
                Self::OLDEST_SUPPORTED
            )));
        }
        Ok(Self { major })
    }

    pub fn major(self) -> u16 {
        self.major
    }

    /// `/services/data/v66.0`.
    pub fn rest_root(self) -> String {
        format!("/services/data/v{self}")
    }
}

impl Default for ApiVersion {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.0", self.major)
    }
}

impl std::str::FromStr for ApiVersion {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, VersionError> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_parse() {
        assert_eq!(ApiVersion::parse("66.0").unwrap(), ApiVersion::DEFAULT);
        assert_eq!(ApiVersion::parse("v62.0").unwrap().major(), 62);
        assert_eq!(ApiVersion::parse("60").unwrap().to_string(), "60.0");
        for bad in ["", "66.1", "abc", "66.0.0", "v", "-1", "30.0", "99999999"] {
            assert!(ApiVersion::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(ApiVersion::DEFAULT.rest_root(), "/services/data/v66.0");
    }
}
