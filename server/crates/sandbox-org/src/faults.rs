//! Fault and latency injection, for tests and benchmarks: per path pattern, a delay, an
//! error rate with a given status and errorCode, and dropped connections. Rules are set at
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
        for (name, rate) in [("errorRate", self.error_rate), ("dropRate", self.drop_rate)] {
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
        (self.methods.is_empty() || self.methods.iter().any(|m| m.eq_ignore_ascii_case(method)))
            && glob_match(&self.path, path)
    }
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Proceed {
        delay: Duration,
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

pub fn decide(rules: &[FaultRule], method: &str, path: &str) -> Verdict {
    let Some(rule) = rules.iter().find(|r| r.matches(method, path)) else {
        return Verdict::Proceed {
            delay: Duration::ZERO,
        };
    };
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
    Verdict::Proceed { delay }
}

/// How long to hold a handled request's answer (the first matching rule's
/// `responseDelayMs`).
pub fn response_delay(rules: &[FaultRule], method: &str, path: &str) -> Duration {
    rules
        .iter()
        .find(|r| r.matches(method, path))
        .map_or(Duration::ZERO, |r| {
            Duration::from_millis(r.response_delay_ms)
        })
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
            decide(&[always_fail], "GET", "/services/data"),
            Verdict::Fail { status: 503, .. }
        ));
        let never: FaultRule = serde_json::from_str(r#"{"delayMs": 5}"#).unwrap();
        assert_eq!(
            decide(&[never], "GET", "/services/x"),
            Verdict::Proceed {
                delay: Duration::from_millis(5)
            }
        );
        let bad: FaultRule = serde_json::from_str(r#"{"errorRate": 2}"#).unwrap();
        assert!(bad.validate().unwrap_err().contains("errorRate"));
    }
}
