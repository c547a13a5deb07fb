//! Validated values and the errors that name the form field at fault.

use std::fmt;
use std::net::IpAddr;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// A problem with one form field, shown next to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The form field's name, e.g. `contact_email`.
    pub field: String,
    pub message: String,
}

/// All problems found in a form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.to_string(),
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The message for `field`, if it has one.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }

    /// Every message for `field`, joined: what the form shows next to it.
    pub fn message_for(&self, field: &str) -> Option<String> {
        let messages: Vec<&str> = self
            .0
            .iter()
            .filter(|e| e.field == field)
            .map(|e| e.message.as_str())
            .collect();
        (!messages.is_empty()).then(|| messages.join(" "))
    }

    /// Files the messages for `from` under `to` (where a form shows them).
    pub fn renamed(mut self, from: &str, to: &str) -> Self {
        for error in &mut self.0 {
            if error.field == from {
                error.field = to.to_string();
            }
        }
        self
    }

    /// Records the error of a parse, returning the value when it parsed.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(message) => {
                self.add(field, message);
                None
            }
        }
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect();
        f.write_str(&parts.join("; "))
    }
}

fn has_control_chars(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
}

/// A single line of text between `min` and `max` characters (after trimming).
pub fn line(raw: &str, what: &str, min: usize, max: usize) -> Result<String, String> {
    let text = raw.trim();
    let count = text.chars().count();
    if count < min {
        return Err(if min <= 1 {
            format!("Enter the {what}.")
        } else {
            format!("The {what} must be at least {min} characters.")
        });
    }
    if count > max {
        return Err(format!(
            "The {what} must be at most {max} characters (this one has {count})."
        ));
    }
    if text.contains('\n') || text.contains('\r') || has_control_chars(text) {
        return Err(format!("The {what} must be a single line of plain text."));
    }
    Ok(text.to_string())
}

/// Free text (several lines allowed) between `min` and `max` characters.
pub fn paragraph(raw: &str, what: &str, min: usize, max: usize) -> Result<String, String> {
    let text = raw.trim();
    let count = text.chars().count();
    if count < min {
        return Err(format!("Describe the {what} in at least {min} characters."));
    }
    if count > max {
        return Err(format!(
            "The {what} must be at most {max} characters (this one has {count})."
        ));
    }
    if has_control_chars(text) {
        return Err(format!("The {what} contains control characters."));
    }
    Ok(text.to_string())
}

/// A contractor's email address: where codes, links and the credential reveal go.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContractorEmail(String);

impl ContractorEmail {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let text = raw.trim();
        if text.is_empty() {
            return Err("Enter an email address.".into());
        }
        if text.len() > 254 {
            return Err("That email address is too long (at most 254 characters).".into());
        }
        let Some((local, domain)) = text.rsplit_once('@') else {
            return Err("Enter an email address like name@company.com.".into());
        };
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
            && labels
                .last()
                .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
        if !local_ok || !domain_ok {
            return Err("Enter an email address like name@company.com.".into());
        }
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ContractorEmail {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ContractorEmail> for String {
    fn from(value: ContractorEmail) -> Self {
        value.0
    }
}

impl fmt::Display for ContractorEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An IP network in CIDR notation, such as `203.0.113.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    pub address: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let text = raw.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, p),
            None => (text, if text.contains(':') { "128" } else { "32" }),
        };
        let address: IpAddr = address.parse().map_err(|_| {
            format!("'{text}' is not an IP range: use CIDR notation such as 203.0.113.0/24.")
        })?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix.parse().ok().filter(|p| *p <= max).ok_or_else(|| {
            format!("'{text}': the prefix length must be a number from 0 to {max}.")
        })?;
        if prefix < if address.is_ipv4() { 8 } else { 32 } {
            return Err(format!(
                "'{text}' is too wide to be a contractor's network (at most /{} allowed).",
                if address.is_ipv4() { 8 } else { 32 }
            ));
        }
        let cidr = Self { address, prefix };
        if cidr.network() != address {
            return Err(format!(
                "'{text}' has host bits set: did you mean {}/{prefix}?",
                cidr.network()
            ));
        }
        Ok(cidr)
    }

    fn bits(&self) -> u128 {
        match self.address {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            IpAddr::V6(v6) => u128::from(v6),
        }
    }

    fn width(&self) -> u32 {
        if self.address.is_ipv4() { 32 } else { 128 }
    }

    fn address_of(&self, bits: u128) -> IpAddr {
        match self.address {
            IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::from(bits as u32)),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::from(bits)),
        }
    }

    fn mask(&self) -> u128 {
        let host = self.width() - u32::from(self.prefix);
        let all: u128 = if self.width() == 128 {
            u128::MAX
        } else {
            (1u128 << self.width()) - 1
        };
        if host >= 128 {
            0
        } else {
            all & !((1u128 << host) - 1)
        }
    }

    /// The first address of the range.
    pub fn network(&self) -> IpAddr {
        self.address_of(self.bits() & self.mask())
    }

    /// The last address of the range.
    pub fn last(&self) -> IpAddr {
        let host = self.width() - u32::from(self.prefix);
        let host_bits: u128 = if host >= 128 {
            u128::MAX
        } else {
            (1u128 << host) - 1
        };
        self.address_of((self.bits() & self.mask()) | host_bits)
    }

    /// The first and last address as numbers.
    fn span(&self) -> (u128, u128) {
        let host = self.width() - u32::from(self.prefix);
        let host_bits: u128 = if host >= 128 {
            u128::MAX
        } else {
            (1u128 << host) - 1
        };
        let first = self.bits() & self.mask();
        (first, first | host_bits)
    }

    /// Whether every address of this range is in `ranges` (in their union: two halves
    /// cover the whole). Ranges of the other address family cover nothing.
    pub fn covered_by(&self, ranges: &[Cidr]) -> bool {
        let v4 = self.address.is_ipv4();
        let mut spans: Vec<(u128, u128)> = ranges
            .iter()
            .filter(|r| r.address.is_ipv4() == v4)
            .map(Cidr::span)
            .collect();
        spans.sort_unstable();
        let (mut next, last) = self.span();
        for (start, end) in spans {
            if start > next {
                break;
            }
            if end >= last {
                return true;
            }
            if end >= next {
                next = end + 1;
            }
        }
        false
    }
}

impl TryFrom<String> for Cidr {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Cidr> for String {
    fn from(value: Cidr) -> Self {
        value.to_string()
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// IP ranges, one per line (or separated by commas); empty means "any address".
pub fn cidr_list(raw: &str) -> Result<Vec<Cidr>, String> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for part in raw
        .split(['\n', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match Cidr::parse(part) {
            Ok(cidr) if !out.contains(&cidr) => out.push(cidr),
            Ok(_) => {}
            Err(e) => problems.push(e),
        }
    }
    if out.len() > 20 {
        problems.push("At most 20 IP ranges.".into());
    }
    match problems.is_empty() {
        true => Ok(out),
        false => Err(problems.join(" ")),
    }
}

/// An end date: after `today`, and at most `max_days` ahead.
pub fn end_date(raw: &str, today: NaiveDate, max_days: i64) -> Result<NaiveDate, String> {
    let text = raw.trim();
    if text.is_empty() {
        return Err("Choose the date the access should end.".into());
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("'{text}' is not a date: use YYYY-MM-DD."))?;
    if date <= today {
        return Err("The end date must be in the future.".into());
    }
    let latest = today + chrono::Duration::days(max_days);
    if date > latest {
        return Err(format!(
            "The end date can be at most {max_days} days ahead (on or before {latest})."
        ));
    }
    Ok(date)
}

/// A whole number in `min..=max`.
pub fn whole_number(raw: &str, what: &str, min: u64, max: u64) -> Result<u64, String> {
    let text = raw.trim().replace(['_', ','], "");
    let value: u64 = text
        .parse()
        .map_err(|_| format!("Enter the {what} as a whole number."))?;
    if value < min || value > max {
        return Err(format!("The {what} must be between {min} and {max}."));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            ContractorEmail::parse(" Ops@Kinetic.Example ")
                .unwrap()
                .as_str(),
            "Ops@kinetic.example"
        );
        for bad in [
            "",
            "ops",
            "ops@",
            "@kinetic.example",
            "ops@kinetic",
            "a b@c.example",
            "ops@-x.example",
            "o..ps@x.example",
            "ops@x.c0m",
        ] {
            assert!(ContractorEmail::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("203.0.113.0/24").unwrap();
        assert_eq!(c.network().to_string(), "203.0.113.0");
        assert_eq!(c.last().to_string(), "203.0.113.255");
        assert_eq!(
            Cidr::parse("198.51.100.7").unwrap().to_string(),
            "198.51.100.7/32"
        );
        assert!(
            Cidr::parse("203.0.113.5/24")
                .unwrap_err()
                .contains("203.0.113.0/24")
        );
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("0.0.0.0/0").is_err());
        assert!(Cidr::parse("banana").is_err());
        let v6 = Cidr::parse("2001:db8::/48").unwrap();
        assert_eq!(v6.last().to_string(), "2001:db8:0:ffff:ffff:ffff:ffff:ffff");
        assert_eq!(
            cidr_list("203.0.113.0/24\n198.51.100.0/28, 203.0.113.0/24")
                .unwrap()
                .len(),
            2
        );
        assert!(cidr_list("").unwrap().is_empty());
        assert!(cidr_list("1.2.3.4/24").is_err());
    }

    #[test]
    fn ranges_are_covered_by_the_union_of_others() {
        let list = |raw: &str| cidr_list(raw).unwrap();
        let c = |raw: &str| Cidr::parse(raw).unwrap();
        assert!(c("203.0.113.0/24").covered_by(&list("203.0.113.0/24")));
        assert!(c("203.0.113.64/26").covered_by(&list("203.0.113.0/24")));
        assert!(!c("203.0.113.0/24").covered_by(&list("203.0.113.0/25")));
        // Two halves make up the whole; a gap does not.
        assert!(c("203.0.113.0/24").covered_by(&list("203.0.113.128/25, 203.0.113.0/25")));
        assert!(!c("203.0.113.0/24").covered_by(&list("203.0.113.0/25, 203.0.113.192/26")));
        assert!(!c("198.51.100.0/28").covered_by(&list("203.0.113.0/24")));
        assert!(!c("203.0.113.0/24").covered_by(&[]));
        // The other family covers nothing.
        assert!(!c("2001:db8::/48").covered_by(&list("203.0.113.0/24")));
        assert!(c("2001:db8:0:1::/64").covered_by(&list("2001:db8::/48")));
        assert!(c("255.255.255.0/24").covered_by(&list("255.255.0.0/16")));
        assert!(c("ffff:ffff:1::/48").covered_by(&list("ffff:ffff::/32")));
    }

    #[test]
    fn dates_and_numbers() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        assert!(end_date("2026-11-22", today, 365).is_err());
        assert!(end_date("2026-11-23", today, 365).is_ok());
        assert!(end_date("2027-11-23", today, 365).is_err());
        assert!(end_date("23/11/2026", today, 365).is_err());
        assert_eq!(whole_number("1,000", "calls", 1, 5000).unwrap(), 1000);
        assert!(whole_number("-3", "calls", 1, 5000).is_err());
        assert!(line("  ", "company", 1, 100).is_err());
        assert!(line("a\nb", "company", 1, 100).is_err());
        assert!(paragraph("short", "work", 20, 2000).is_err());
    }
}
