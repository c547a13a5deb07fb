//! Fault and latency injection, for tests and benchmarks: per path pattern, a delay, an
//! error rate with a given status and errorCode, dropped connections, and answers whose
//! body is cut off part-way. A rule may apply a limited number of `times`. Rules are set at
//! start-up or through the control API (`/__sandbox/faults`), which exists only on the
//! sandbox org.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// One rule. A request matching several rules gets the first match's behaviour.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultRule {
    /// A path pattern: `*` matches any run of characters, e.g. `/services/data/*/sobjects/User*`.
    /// The default matches every Salesforce path.
    #[serde(default = "any_path")]
    pub path: String,
    /// Only these methods (upper case); empty means all.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Added before the request is handled.
    #[serde(default)]
    pub delay_ms: u64,
    /// Added after the request is handled, before the answer is sent: Salesforce has
    /// acted, and the caller has not heard yet (a client that dies or times out now leaves
    /// an outcome it does not know).
    #[serde(default)]
    pub response_delay_ms: u64,
    /// Fraction (0..=1) of matching requests answered with an error instead of being handled.
    #[serde(default)]
    pub error_rate: f64,
    #[serde(default = "default_status")]
    pub error_status: u16,
    #[serde(default = "default_code")]
    pub error_code: String,
    #[serde(default = "default_message")]
    pub error_message: String,
    /// Fraction (0..=1) of matching requests whose connection is closed without an answer
    /// (before the request is handled).
    #[serde(default)]
    pub drop_rate: f64,
    /// Fraction (0..=1) of matching requests that are handled but whose answer stops
    /// half-way through its body, the connection then closed (a download cut off).
    #[serde(default)]
    pub truncate_rate: f64,
    /// How many more matching requests the rule applies to; absent: every one. A rule
    /// that has run out no longer matches, so the next rule (or none) applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
}

fn any_path() -> String {
    "/services/*".into()
}
fn default_status() -> u16 {
    503
}
fn default_code() -> String {
    "SERVER_UNAVAILABLE".into()
}
fn default_message() -> String {
    "Service temporarily unavailable (injected by the sandbox org)".into()
}

impl FaultRule {
    /// Checks the rule's values; the message names the bad one.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("errorRate", self.error_rate),
            ("dropRate", self.drop_rate),
            ("truncateRate", self.truncate_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1, got {rate}"));
            }
        }
        if !(400..=599).contains(&self.error_status) {
            return Err(format!(
                "errorStatus must be 400-599, got {}",
                self.error_status
            ));
        }
        if self.response_delay_ms > 120_000 {
            return Err("responseDelayMs must be at most 120000".into());
        }
        if self.delay_ms > 120_000 {
            return Err("delayMs must be at most 120000".into());
        }
        if self.path.is_empty() || !self.path.starts_with('/') {
            return Err("path must start with /".into());
        }
        Ok(())
    }

    pub fn matches(&self, method: &str, path: &str) -> bool {
        self.times != Some(0)
            && (self.methods.is_empty()
                || self.methods.iter().any(|m| m.eq_ignore_ascii_case(method)))
            && glob_match(&self.path, path)
    }
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Handle it, after `delay`; hold the answer for `hold`; with `truncate`, send only the
    /// first half of its body and close the connection.
    Proceed {
        delay: Duration,
        hold: Duration,
        truncate: bool,
    },
    Fail {
        delay: Duration,
        status: u16,
        code: String,
        message: String,
    },
    Drop {
        delay: Duration,
    },
}

/// The verdict of the first rule matching the request (counting down its `times`).
pub fn decide(rules: &mut [FaultRule], method: &str, path: &str) -> Verdict {
    let Some(rule) = rules.iter_mut().find(|r| r.matches(method, path)) else {
        return Verdict::Proceed {
            delay: Duration::ZERO,
            hold: Duration::ZERO,
            truncate: false,
        };
    };
    if let Some(times) = rule.times.as_mut() {
        *times = times.saturating_sub(1);
    }
    let delay = Duration::from_millis(rule.delay_ms);
    let mut rng = rand::rng();
    if rule.drop_rate > 0.0 && rng.random::<f64>() < rule.drop_rate {
        return Verdict::Drop { delay };
    }
    if rule.error_rate > 0.0 && rng.random::<f64>() < rule.error_rate {
        return Verdict::Fail {
            delay,
            status: rule.error_status,
            code: rule.error_code.clone(),
            message: rule.error_message.clone(),
        };
    }
    Verdict::Proceed {
        delay,
        hold: Duration::from_millis(rule.response_delay_ms),
        truncate: rule.truncate_rate > 0.0 && rng.random::<f64>() < rule.truncate_rate,
    }
}

/// `*` matches any (possibly empty) run of characters; everything else literally.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_shell_stars() {
        assert!(glob_match("/services/*", "/services/data/v66.0/query"));
        assert!(glob_match(
            "/services/data/*/sobjects/User*",
            "/services/data/v66.0/sobjects/User/005"
        ));
        assert!(!glob_match(
            "/services/data/*/sobjects/User*",
            "/services/data/v66.0/sobjects/Case"
        ));
        assert!(glob_match("*", ""));
        assert!(!glob_match("/a", "/ab"));
    }

    #[test]
    fn rates_decide_outcomes() {
        let always_fail = FaultRule {
            error_rate: 1.0,
            ..serde_json::from_str("{}").unwrap()
        };
        assert!(matches!(
            decide(&mut [always_fail], "GET", "/services/data"),
            Verdict::Fail { status: 503, .. }
        ));
        let never: FaultRule = serde_json::from_str(r#"{"delayMs": 5}"#).unwrap();
        assert_eq!(
            decide(&mut [never], "GET", "/services/x"),
            Verdict::Proceed {
                delay: Duration::from_millis(5),
                hold: Duration::ZERO,
                truncate: false,
            }
        );
        let bad: FaultRule = serde_json::from_str(r#"{"errorRate": 2}"#).unwrap();
        assert!(bad.validate().unwrap_err().contains("errorRate"));
        let bad: FaultRule = serde_json::from_str(r#"{"truncateRate": -1}"#).unwrap();
        assert!(bad.validate().unwrap_err().contains("truncateRate"));
    }

    #[test]
    fn a_rule_with_times_applies_that_often_then_lets_requests_through() {
        let mut rules: Vec<FaultRule> =
            vec![serde_json::from_str(r#"{"truncateRate": 1, "times": 2}"#).unwrap()];
        for _ in 0..2 {
            assert!(matches!(
                decide(&mut rules, "GET", "/services/data/v66.0/x"),
                Verdict::Proceed { truncate: true, .. }
            ));
        }
        assert_eq!(rules[0].times, Some(0));
        assert!(matches!(
            decide(&mut rules, "GET", "/services/data/v66.0/x"),
            Verdict::Proceed {
                truncate: false,
                ..
            }
        ));
    }
}
