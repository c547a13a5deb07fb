//! A contractor's API budget: the calls per day and per rolling 7 days an approver allows,
//! the percentage at which admins are warned, and what happens when the budget runs out.
//! Salesforce cannot cap one user's calls, so Portcullis enforces these itself.

use serde::{Deserialize, Serialize};

use crate::fields::{self, FieldErrors};

/// The most calls per day an approver can allow (well above any org's daily pool share a
/// single contractor should get, but a bound so a typo cannot mean "unlimited").
pub const MAX_CALLS_PER_DAY: u64 = 1_000_000;

/// What happens when a contractor uses up its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HardAction {
    /// Alert admins only.
    None,
    /// Alert admins and freeze the integration user until an admin lifts it.
    Freeze,
}

impl HardAction {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "freeze" => Ok(Self::Freeze),
            "" => Err("Choose what happens when the budget is used up.".into()),
            _ => Err(format!(
                "'{}' is not an action: choose none or freeze.",
                raw.trim()
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Freeze => "freeze",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::None => "alert admins only",
            Self::Freeze => "alert admins and freeze the integration user",
        }
    }
}

/// The API budget of one grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    pub calls_per_day: u64,
    /// Calls in any rolling 7 days; at least `calls_per_day`.
    pub calls_per_7_days: u64,
    /// Admins are warned at this percentage of either limit (1 to 99).
    pub warn_percent: u8,
    pub hard_action: HardAction,
}

impl Budget {
    /// Parses the budget part of a form. Errors name the fields `calls_per_day`,
    /// `calls_per_7_days`, `warn_percent` and `hard_action`.
    pub fn parse(
        calls_per_day: &str,
        calls_per_7_days: &str,
        warn_percent: &str,
        hard_action: &str,
    ) -> Result<Budget, FieldErrors> {
        let mut errors = FieldErrors::default();
        let day = errors.check(
            "calls_per_day",
            fields::whole_number(calls_per_day, "API calls per day", 1, MAX_CALLS_PER_DAY),
        );
        let week = errors.check(
            "calls_per_7_days",
            fields::whole_number(
                calls_per_7_days,
                "API calls per 7 days",
                1,
                MAX_CALLS_PER_DAY * 7,
            ),
        );
        let warn = errors.check(
            "warn_percent",
            fields::whole_number(warn_percent, "warning percentage", 1, 99),
        );
        let action = errors.check("hard_action", HardAction::parse(hard_action));
        match (day, week, warn, action) {
            (Some(calls_per_day), Some(calls_per_7_days), Some(warn), Some(hard_action)) => {
                let budget = Budget {
                    calls_per_day,
                    calls_per_7_days,
                    // whole_number kept it within 1..=99.
                    warn_percent: u8::try_from(warn).unwrap_or(80),
                    hard_action,
                };
                let problems = budget.problems();
                if problems.is_empty() {
                    Ok(budget)
                } else {
                    Err(problems)
                }
            }
            _ => Err(errors),
        }
    }

    /// The budget a request for `calls_per_day` starts from: 7 times that per week, a
    /// warning at 80%, and no hard action.
    pub fn default_for(calls_per_day: u64) -> Budget {
        let calls_per_day = calls_per_day.clamp(1, MAX_CALLS_PER_DAY);
        Budget {
            calls_per_day,
            calls_per_7_days: calls_per_day * 7,
            warn_percent: 80,
            hard_action: HardAction::None,
        }
    }

    /// What is wrong with a budget built field by field (the fields are public, so the
    /// services check a budget they are handed before storing it). Empty when it is fine.
    pub fn problems(&self) -> FieldErrors {
        let mut errors = FieldErrors::default();
        if !(1..=MAX_CALLS_PER_DAY).contains(&self.calls_per_day) {
            errors.add(
                "calls_per_day",
                format!("The API calls per day must be between 1 and {MAX_CALLS_PER_DAY}."),
            );
        }
        if self.calls_per_7_days < self.calls_per_day {
            errors.add(
                "calls_per_7_days",
                format!(
                    "The calls per 7 days must be at least the calls per day ({}).",
                    self.calls_per_day
                ),
            );
        } else if self.calls_per_7_days > MAX_CALLS_PER_DAY * 7 {
            errors.add(
                "calls_per_7_days",
                format!(
                    "The API calls per 7 days must be at most {}.",
                    MAX_CALLS_PER_DAY * 7
                ),
            );
        }
        if !(1..=99).contains(&self.warn_percent) {
            errors.add(
                "warn_percent",
                "The warning percentage must be between 1 and 99.",
            );
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_budget() {
        let budget = Budget::parse("1,000", "5000", "75", "freeze").unwrap();
        assert_eq!(
            budget,
            Budget {
                calls_per_day: 1000,
                calls_per_7_days: 5000,
                warn_percent: 75,
                hard_action: HardAction::Freeze,
            }
        );
        assert_eq!(
            Budget::parse("10", "70", "80", " None ")
                .unwrap()
                .hard_action,
            HardAction::None
        );
    }

    #[test]
    fn names_every_bad_field() {
        let errors = Budget::parse("zero", "-1", "100", "explode").unwrap_err();
        for field in [
            "calls_per_day",
            "calls_per_7_days",
            "warn_percent",
            "hard_action",
        ] {
            assert!(errors.get(field).is_some(), "{field}: {errors}");
        }
        assert!(Budget::parse("0", "10", "80", "none").is_err());
        assert!(Budget::parse("10", "10", "0", "none").is_err());
        assert!(Budget::parse("10", "10", "80", "").is_err());
    }

    #[test]
    fn a_week_holds_at_least_a_day() {
        let errors = Budget::parse("1000", "999", "80", "none").unwrap_err();
        assert!(
            errors.get("calls_per_7_days").unwrap().contains("1000"),
            "{errors}"
        );
        assert!(Budget::parse("1000", "1000", "80", "none").is_ok());
    }

    #[test]
    fn defaults_follow_the_daily_figure() {
        let budget = Budget::default_for(1000);
        assert_eq!(budget.calls_per_7_days, 7000);
        assert_eq!(budget.warn_percent, 80);
        assert_eq!(budget.hard_action, HardAction::None);
        assert!(budget.problems().is_empty());
        assert!(Budget::default_for(0).problems().is_empty());
    }

    #[test]
    fn stored_as_lowercase_json() {
        let json = serde_json::to_string(&Budget::default_for(10)).unwrap();
        assert!(json.contains("\"hard_action\":\"none\""), "{json}");
    }
}
