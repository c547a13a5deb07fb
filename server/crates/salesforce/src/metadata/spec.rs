//! Checked building blocks of app specs: API names, IP ranges, and the errors of building
//! a deploy package.

use std::fmt;
use std::net::IpAddr;

/// Why an app spec cannot become a deploy package.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error(
        "{what} {value:?} is not a valid API name (a letter, then letters, digits and single underscores, not ending in one; at most {} characters)",
        ApiName::MAX_LEN
    )]
    InvalidName { what: &'static str, value: String },
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error("{field} contains a character XML cannot carry (a control character)")]
    InvalidXmlText { field: &'static str },
    #[error("{field} is not valid: {reason}")]
    InvalidValue { field: &'static str, reason: String },
    #[error("IP range {start}–{end} is not valid: {reason}")]
    InvalidIpRange {
        start: IpAddr,
        end: IpAddr,
        reason: &'static str,
    },
    #[error("cannot write the deploy zip: {0}")]
    Zip(String),
}

/// A Metadata API name (`fullName`): starts with a letter, letters, digits and `_`, no
/// `__`, no trailing `_`. Used for app names and permission set names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiName(String);

impl ApiName {
    pub const MAX_LEN: usize = 80;

    pub fn parse(raw: &str) -> Result<Self, SpecError> {
        Self::parse_as("API name", raw)
    }

    pub(crate) fn parse_as(what: &'static str, raw: &str) -> Result<Self, SpecError> {
        let mut chars = raw.chars();
        let valid = raw.len() <= Self::MAX_LEN
            && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !raw.ends_with('_')
            && !raw.contains("__");
        if valid {
            Ok(Self(raw.to_string()))
        } else {
            Err(SpecError::InvalidName {
                what,
                value: raw.to_string(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ApiName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for ApiName {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// An address range the app's tokens may be used from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedIpRange {
    pub start: IpAddr,
    pub end: IpAddr,
    pub description: String,
}

impl TrustedIpRange {
    pub fn new(start: IpAddr, end: IpAddr, description: impl Into<String>) -> Self {
        Self {
            start,
            end,
            description: description.into(),
        }
    }

    pub(crate) fn check(&self) -> Result<(), SpecError> {
        let reason = match (self.start, self.end) {
            (IpAddr::V4(s), IpAddr::V4(e)) if s > e => Some("start is after end"),
            (IpAddr::V6(s), IpAddr::V6(e)) if s > e => Some("start is after end"),
            (IpAddr::V4(_), IpAddr::V6(_)) | (IpAddr::V6(_), IpAddr::V4(_)) => {
                Some("start and end are of different address families")
            }
            _ => None,
        };
        match reason {
            Some(reason) => Err(SpecError::InvalidIpRange {
                start: self.start,
                end: self.end,
                reason,
            }),
            None => Ok(()),
        }
    }
}

/// An OAuth scope name as the metadata types spell them (`Api`, `RefreshToken`, ...).
pub(crate) fn check_scope(scope: &str) -> Result<(), SpecError> {
    let mut chars = scope.chars();
    if chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        Ok(())
    } else {
        Err(SpecError::InvalidValue {
            field: "scope",
            reason: format!("{scope:?} is not a scope name such as Api"),
        })
    }
}

pub(crate) fn require(field: &'static str, value: &str) -> Result<(), SpecError> {
    if value.trim().is_empty() {
        Err(SpecError::Empty(field))
    } else {
        Ok(())
    }
}

/// A username or email: non-empty, one `@`, no whitespace. Values are XML-escaped anyway;
/// this catches mistakes, not attacks.
pub(crate) fn check_email_like(field: &'static str, value: &str) -> Result<(), SpecError> {
    require(field, value)?;
    let valid = value.matches('@').count() == 1
        && !value.starts_with('@')
        && !value.ends_with('@')
        && !value.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(())
    } else {
        Err(SpecError::InvalidValue {
            field,
            reason: format!("{value:?} is not an email-style address"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_names() {
        for good in ["Acme", "Acme_Contractor_API", "a1", &"A".repeat(80)] {
            assert!(ApiName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1Acme",
            "_Acme",
            "Acme_",
            "Ac__me",
            "Ac-me",
            "Ac me",
            "Acme</x>",
            "Acmé",
            &"A".repeat(81),
        ] {
            assert!(ApiName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ip_ranges() {
        let ok = TrustedIpRange::new(
            "203.0.113.0".parse().unwrap(),
            "203.0.113.255".parse().unwrap(),
            "office",
        );
        assert!(ok.check().is_ok());
        let single = TrustedIpRange::new(
            "203.0.113.7".parse().unwrap(),
            "203.0.113.7".parse().unwrap(),
            "",
        );
        assert!(single.check().is_ok());
        let backwards = TrustedIpRange::new(
            "203.0.113.9".parse().unwrap(),
            "203.0.113.1".parse().unwrap(),
            "",
        );
        assert!(backwards.check().is_err());
        let mixed = TrustedIpRange::new(
            "203.0.113.1".parse().unwrap(),
            "2001:db8::1".parse().unwrap(),
            "",
        );
        assert!(mixed.check().is_err());
    }

    #[test]
    fn scopes_and_emails() {
        assert!(check_scope("Api").is_ok());
        assert!(check_scope("RefreshToken").is_ok());
        assert!(check_scope("Api, Full").is_err());
        assert!(check_scope("").is_err());
        assert!(check_email_like("contact email", "ops@example.com").is_ok());
        assert!(check_email_like("contact email", "ops").is_err());
        assert!(check_email_like("contact email", "a b@example.com").is_err());
        assert!(check_email_like("contact email", "a@b@c").is_err());
        assert!(check_email_like("contact email", "  ").is_err());
    }
}
