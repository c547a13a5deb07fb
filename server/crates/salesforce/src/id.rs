//! Salesforce record ids: 15 case-sensitive base-62 characters, or 18 with a 3-character
//! case-safe checksum suffix. The first three characters are the object's key prefix.
//!
//! `SalesforceId` always holds the 18-character form; parsing a 15-character id computes the
//! suffix, parsing an 18-character id verifies it (a case-changed id is refused, as Salesforce
//! refuses it).

use std::fmt;

const SUFFIX_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// Why a string is not a Salesforce id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("an id must be 15 or 18 characters, not {0}")]
    Length(usize),
    #[error("an id may contain only letters and digits")]
    Characters,
    #[error(
        "the last 3 characters of an 18-character id do not match the first 15 (was its case changed?)"
    )]
    Checksum,
    #[error("expected an id starting with {expected}, got one starting with {actual}")]
    Prefix {
        expected: &'static str,
        actual: String,
    },
}

/// A valid 18-character Salesforce id.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct SalesforceId(String);

impl SalesforceId {
    /// Parses a 15- or 18-character id (surrounding whitespace is not accepted).
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let bytes = raw.as_bytes();
        if bytes.len() != 15 && bytes.len() != 18 {
            return Err(IdError::Length(raw.chars().count()));
        }
        if !bytes.iter().all(u8::is_ascii_alphanumeric) {
            return Err(IdError::Characters);
        }
        let suffix = checksum(&raw[..15]);
        if bytes.len() == 18 {
            // Salesforce treats the suffix case-insensitively, but it must encode the case
            // of the first 15 characters.
            if !raw[15..].eq_ignore_ascii_case(&suffix) {
                return Err(IdError::Checksum);
            }
            return Ok(Self(format!("{}{}", &raw[..15], suffix)));
        }
        Ok(Self(format!("{raw}{suffix}")))
    }

    /// Parses an id and checks it belongs to the object with key prefix `prefix`.
    pub fn parse_with_prefix(raw: &str, prefix: &'static str) -> Result<Self, IdError> {
        let id = Self::parse(raw)?;
        if id.key_prefix() != prefix {
            return Err(IdError::Prefix {
                expected: prefix,
                actual: id.key_prefix().to_string(),
            });
        }
        Ok(id)
    }

    /// Builds the id from a 15-character base (used by id generators, which guarantee
    /// the characters are valid).
    pub fn from_base15(base: &str) -> Result<Self, IdError> {
        if base.len() != 15 {
            return Err(IdError::Length(base.len()));
        }
        Self::parse(base)
    }

    /// Builds an id from generated characters, for id generators: any character that is
    /// not a letter or digit becomes `0`, and the base is cut or padded (with `0`) to 15
    /// characters, so the result is always a valid id.
    pub fn from_generated(base: &str) -> Self {
        let mut id15: String = base
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '0' })
            .take(15)
            .collect();
        while id15.len() < 15 {
            id15.push('0');
        }
        let suffix = checksum(&id15);
        Self(format!("{id15}{suffix}"))
    }

    /// The 18-character form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-sensitive 15-character form (as in event log files).
    pub fn as_15(&self) -> &str {
        &self.0[..15]
    }

    /// The object key prefix, e.g. `005` for User.
    pub fn key_prefix(&self) -> &str {
        &self.0[..3]
    }

    /// Whether `other` (15 or 18 characters) names this record.
    pub fn matches(&self, other: &str) -> bool {
        match other.len() {
            15 => self.as_15() == other,
            18 => Self::parse(other).is_ok_and(|o| o == *self),
            _ => false,
        }
    }
}

/// The 3-character case-safe suffix of a 15-character id.
pub fn checksum(id15: &str) -> String {
    let bytes = id15.as_bytes();
    let mut suffix = String::with_capacity(3);
    for chunk in 0..3 {
        let mut bits = 0usize;
        for i in 0..5 {
            if bytes.get(chunk * 5 + i).is_some_and(u8::is_ascii_uppercase) {
                bits |= 1 << i;
            }
        }
        suffix.push(SUFFIX_ALPHABET[bits] as char);
    }
    suffix
}

impl fmt::Display for SalesforceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SalesforceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SalesforceId({})", self.0)
    }
}

impl std::str::FromStr for SalesforceId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for SalesforceId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for SalesforceId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_examples_get_their_documented_suffix() {
        for (id15, id18) in [
            ("001D000000IqhSL", "001D000000IqhSLIAZ"),
            ("0ATD000000001bR", "0ATD000000001bROAQ"),
            ("00558000001N0Ke", "00558000001N0KeAAK"),
        ] {
            assert_eq!(SalesforceId::parse(id15).unwrap().as_str(), id18);
            assert_eq!(SalesforceId::parse(id18).unwrap().as_15(), id15);
        }
    }

    #[test]
    fn suffix_is_case_insensitive_but_must_match() {
        assert!(SalesforceId::parse("001D000000IqhSLiaz").is_ok());
        // Changing the case of the body changes what the suffix must be.
        assert_eq!(
            SalesforceId::parse("001d000000IqhSLIAZ"),
            Err(IdError::Checksum)
        );
    }

    #[test]
    fn malformed_ids_are_refused() {
        assert_eq!(SalesforceId::parse(""), Err(IdError::Length(0)));
        assert_eq!(
            SalesforceId::parse("001D000000IqhS"),
            Err(IdError::Length(14))
        );
        assert_eq!(
            SalesforceId::parse("001D000000Iqh-L"),
            Err(IdError::Characters)
        );
        assert_eq!(
            SalesforceId::parse("001D000000IqhSLIAZ ").unwrap_err(),
            IdError::Length(19)
        );
        assert!(SalesforceId::parse("ÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄ").is_err());
    }

    #[test]
    fn generated_ids_are_always_valid() {
        let id = SalesforceId::from_generated("005gK0000-00ab");
        assert_eq!(id.as_15(), "005gK0000000ab0");
        assert!(SalesforceId::parse(id.as_str()).is_ok());
    }

    #[test]
    fn prefixes_are_checked() {
        let err = SalesforceId::parse_with_prefix("001D000000IqhSL", "005").unwrap_err();
        assert!(matches!(
            err,
            IdError::Prefix {
                expected: "005",
                ..
            }
        ));
        assert!(SalesforceId::parse_with_prefix("00558000001N0Ke", "005").is_ok());
    }

    #[test]
    fn fifteen_and_eighteen_character_forms_match() {
        let id = SalesforceId::parse("00558000001N0Ke").unwrap();
        assert!(id.matches("00558000001N0Ke"));
        assert!(id.matches("00558000001N0KeAAK"));
        assert!(!id.matches("00558000001N0KE"));
    }
}
