//! Tolerant decoding of Salesforce's wire quirks: booleans and numbers sent as strings (the
//! Metadata REST examples do both), `null` where a list is expected, a single object where
//! a list is expected, and timestamps in `+0000` form, which is not RFC 3339.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer};
use serde_json::Value;

/// Parses a Salesforce timestamp: RFC 3339 (`2026-03-01T10:15:00.123Z`) or Salesforce's
/// own `2014-03-14T00:00:00.000+0000`.
pub fn parse_datetime(raw: &str) -> Option<DateTime<Utc>> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(raw) {
        return Some(dt.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z"] {
        if let Ok(dt) = DateTime::parse_from_str(raw, format) {
            return Some(dt.with_timezone(&Utc));
        }
    }
    // A bare date (a Date field) is midnight UTC.
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc())
}

fn bool_from_value(value: Value) -> Result<Option<bool>, String> {
    match value {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(b)),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Value::String(s) if s.is_empty() => Ok(None),
        other => Err(format!("expected a boolean, got {other}")),
    }
}

/// `true`, `"true"`, `false`, `"false"`; `null` or absent is `false`.
pub fn lenient_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    let value = Value::deserialize(deserializer)?;
    bool_from_value(value)
        .map(Option::unwrap_or_default)
        .map_err(de::Error::custom)
}

/// Like [`lenient_bool`], keeping "not sent" apart from `false`.
pub fn lenient_opt_bool<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<bool>, D::Error> {
    bool_from_value(Value::deserialize(deserializer)?).map_err(de::Error::custom)
}

fn u64_from_value(value: Value) -> Result<Option<u64>, String> {
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Ok(Some(u))
            } else if let Some(f) = n.as_f64().filter(|f| *f >= 0.0 && f.fract() == 0.0) {
                // Salesforce sends doubles such as LogFileLength `2692.0`.
                Ok(Some(f as u64))
            } else {
                Err(format!("expected a non-negative whole number, got {n}"))
            }
        }
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => {
            let trimmed = s.trim();
            trimmed
                .parse::<u64>()
                .ok()
                .or_else(|| {
                    trimmed
                        .parse::<f64>()
                        .ok()
                        .filter(|f| *f >= 0.0 && f.fract() == 0.0 && f.is_finite())
                        .map(|f| f as u64)
                })
                .map(Some)
                .ok_or_else(|| format!("expected a whole number, got {s:?}"))
        }
        other => Err(format!("expected a number, got {other}")),
    }
}

/// A non-negative whole number sent as a number, a double (`2692.0`) or a string; `null` is 0.
pub fn lenient_u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    u64_from_value(Value::deserialize(deserializer)?)
        .map(Option::unwrap_or_default)
        .map_err(de::Error::custom)
}

/// Like [`lenient_u64`], keeping "not sent" apart from 0.
pub fn lenient_opt_u64<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    u64_from_value(Value::deserialize(deserializer)?).map_err(de::Error::custom)
}

/// A string, or `null`/absent as the empty string; numbers are written out (ids of some
/// Connect resources have been seen as numbers in third-party fixtures).
pub fn lenient_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(de::Error::custom(format!("expected a string, got {other}"))),
    }
}

/// A list that may arrive as `null`, a single object, or an array.
pub fn one_or_many<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .into_iter()
            .map(|item| serde_json::from_value(item).map_err(de::Error::custom))
            .collect(),
        single => serde_json::from_value(single)
            .map(|item| vec![item])
            .map_err(de::Error::custom),
    }
}

/// A timestamp in any form [`parse_datetime`] accepts; `null` or absent is `None`.
pub fn opt_datetime<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => parse_datetime(&s)
            .map(Some)
            .ok_or_else(|| de::Error::custom(format!("not a Salesforce timestamp: {s:?}"))),
        other => Err(de::Error::custom(format!(
            "expected a timestamp, got {other}"
        ))),
    }
}

/// Truncates `text` to at most `max` bytes on a character boundary, marking the cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], text.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Sample {
        #[serde(default, deserialize_with = "lenient_bool")]
        flag: bool,
        #[serde(default, deserialize_with = "lenient_u64")]
        count: u64,
        #[serde(default, deserialize_with = "one_or_many")]
        items: Vec<u32>,
        #[serde(default, deserialize_with = "opt_datetime")]
        at: Option<DateTime<Utc>>,
    }

    #[test]
    fn booleans_and_numbers_may_be_strings() {
        let s: Sample =
            serde_json::from_str(r#"{"flag":"true","count":"3","items":7,"at":null}"#).unwrap();
        assert!(s.flag);
        assert_eq!(s.count, 3);
        assert_eq!(s.items, vec![7]);
        assert!(s.at.is_none());
        let s: Sample = serde_json::from_str(r#"{"flag":false,"count":2692.0}"#).unwrap();
        assert!(!s.flag);
        assert_eq!(s.count, 2692);
        assert!(s.items.is_empty());
        assert!(serde_json::from_str::<Sample>(r#"{"flag":"maybe"}"#).is_err());
        assert!(serde_json::from_str::<Sample>(r#"{"count":-1}"#).is_err());
    }

    #[test]
    fn salesforce_timestamps_parse() {
        let a = parse_datetime("2014-03-14T00:00:00.000+0000").unwrap();
        let b = parse_datetime("2014-03-14T00:00:00Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(
            parse_datetime("2026-03-01T10:15:00.123Z")
                .unwrap()
                .timestamp_millis(),
            1_772_360_100_123
        );
        assert_eq!(parse_datetime("2014-03-14"), Some(a));
        assert!(parse_datetime("yesterday").is_none());
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate("short", 10), "short");
        let cut = truncate("ééééé", 3);
        assert!(cut.starts_with('é'));
        assert!(cut.contains("10 bytes"));
    }
}
