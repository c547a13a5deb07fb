//! SOQL date literals (`TODAY`, `LAST_N_DAYS:7`, ...) and the time ranges they stand for.
//!
//! The sandbox org's time zone is UTC and its locale en_US, so weeks start on Sunday, quarters
//! are calendar quarters, and every range starts and ends at 00:00:00 UTC.
//!
//! Ranges follow Salesforce's "Date Formats and Date Literals in WHERE" reference
//! (SOQL and SOSL Reference), quoted here per literal. Each range is half-open, `[start, end)`.
//!
//! # Comparing a value with a date literal
//!
//! Salesforce: "To filter for results within a range, use the `=` comparison operator. To filter
//! for results on either side of a range, use the `>` or `<` comparison operators." A literal
//! stands for its whole range, so for a value `v` and the range `[start, end)`:
//!
//! | operator | holds when            | meaning                     |
//! |----------|-----------------------|-----------------------------|
//! | `=`      | `start <= v < end`    | within the range            |
//! | `!=`     | `v < start \|\| v >= end` | outside the range       |
//! | `<`      | `v < start`           | before the range starts     |
//! | `>`      | `v >= end`            | after the range ends        |
//! | `<=`     | `v < end`             | before the range ends       |
//! | `>=`     | `v >= start`          | on or after the range start |
//!
//! [`DateLiteral::matches`] implements this table for dateTime values and
//! [`DateLiteral::matches_date`] for date values (a date is taken at 00:00:00 UTC, which is
//! exact because every range is whole days).

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveTime, Utc};

use crate::ast::CompareOp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DateLiteral {
    Yesterday,
    Today,
    Tomorrow,
    LastWeek,
    ThisWeek,
    NextWeek,
    LastMonth,
    ThisMonth,
    NextMonth,
    Last90Days,
    Next90Days,
    ThisQuarter,
    LastQuarter,
    NextQuarter,
    ThisYear,
    LastYear,
    NextYear,
    LastNDays(u32),
    NextNDays(u32),
    NDaysAgo(u32),
    LastNWeeks(u32),
    NextNWeeks(u32),
    LastNMonths(u32),
    NextNMonths(u32),
    // Added beyond the brief: the remaining non-fiscal literals Salesforce documents.
    NWeeksAgo(u32),
    NMonthsAgo(u32),
    LastNQuarters(u32),
    NextNQuarters(u32),
    NQuartersAgo(u32),
    LastNYears(u32),
    NextNYears(u32),
    NYearsAgo(u32),
}

/// Literals without a number, by SOQL name.
const SIMPLE: &[(&str, DateLiteral)] = &[
    ("YESTERDAY", DateLiteral::Yesterday),
    ("TODAY", DateLiteral::Today),
    ("TOMORROW", DateLiteral::Tomorrow),
    ("LAST_WEEK", DateLiteral::LastWeek),
    ("THIS_WEEK", DateLiteral::ThisWeek),
    ("NEXT_WEEK", DateLiteral::NextWeek),
    ("LAST_MONTH", DateLiteral::LastMonth),
    ("THIS_MONTH", DateLiteral::ThisMonth),
    ("NEXT_MONTH", DateLiteral::NextMonth),
    ("LAST_90_DAYS", DateLiteral::Last90Days),
    ("NEXT_90_DAYS", DateLiteral::Next90Days),
    ("THIS_QUARTER", DateLiteral::ThisQuarter),
    ("LAST_QUARTER", DateLiteral::LastQuarter),
    ("NEXT_QUARTER", DateLiteral::NextQuarter),
    ("THIS_YEAR", DateLiteral::ThisYear),
    ("LAST_YEAR", DateLiteral::LastYear),
    ("NEXT_YEAR", DateLiteral::NextYear),
];

/// Builds a numbered literal from its `n`.
pub(crate) type MakeLiteral = fn(u32) -> DateLiteral;

/// Literals of the form `NAME:n`, by SOQL name.
const WITH_N: &[(&str, MakeLiteral)] = &[
    ("LAST_N_DAYS", DateLiteral::LastNDays),
    ("NEXT_N_DAYS", DateLiteral::NextNDays),
    ("N_DAYS_AGO", DateLiteral::NDaysAgo),
    ("LAST_N_WEEKS", DateLiteral::LastNWeeks),
    ("NEXT_N_WEEKS", DateLiteral::NextNWeeks),
    ("N_WEEKS_AGO", DateLiteral::NWeeksAgo),
    ("LAST_N_MONTHS", DateLiteral::LastNMonths),
    ("NEXT_N_MONTHS", DateLiteral::NextNMonths),
    ("N_MONTHS_AGO", DateLiteral::NMonthsAgo),
    ("LAST_N_QUARTERS", DateLiteral::LastNQuarters),
    ("NEXT_N_QUARTERS", DateLiteral::NextNQuarters),
    ("N_QUARTERS_AGO", DateLiteral::NQuartersAgo),
    ("LAST_N_YEARS", DateLiteral::LastNYears),
    ("NEXT_N_YEARS", DateLiteral::NextNYears),
    ("N_YEARS_AGO", DateLiteral::NYearsAgo),
];

/// Fiscal literals: real SOQL, but they depend on an org's fiscal-year settings, which the
/// sandbox org does not model.
const FISCAL: &[&str] = &[
    "THIS_FISCAL_QUARTER",
    "LAST_FISCAL_QUARTER",
    "NEXT_FISCAL_QUARTER",
    "THIS_FISCAL_YEAR",
    "LAST_FISCAL_YEAR",
    "NEXT_FISCAL_YEAR",
    "LAST_N_FISCAL_QUARTERS",
    "NEXT_N_FISCAL_QUARTERS",
    "N_FISCAL_QUARTERS_AGO",
    "LAST_N_FISCAL_YEARS",
    "NEXT_N_FISCAL_YEARS",
    "N_FISCAL_YEARS_AGO",
];

/// What a word in value position names, as far as date literals go.
pub(crate) enum LiteralName {
    Simple(DateLiteral),
    WithN(MakeLiteral),
    Fiscal,
}

pub(crate) fn lookup(word: &str) -> Option<LiteralName> {
    if let Some((_, lit)) = SIMPLE.iter().find(|(n, _)| n.eq_ignore_ascii_case(word)) {
        return Some(LiteralName::Simple(*lit));
    }
    if let Some((_, make)) = WITH_N.iter().find(|(n, _)| n.eq_ignore_ascii_case(word)) {
        return Some(LiteralName::WithN(*make));
    }
    if FISCAL.iter().any(|n| n.eq_ignore_ascii_case(word)) {
        return Some(LiteralName::Fiscal);
    }
    None
}

impl DateLiteral {
    /// The SOQL name, without the `:n` of the numbered literals.
    pub fn name(&self) -> &'static str {
        use DateLiteral::*;
        match self {
            Yesterday => "YESTERDAY",
            Today => "TODAY",
            Tomorrow => "TOMORROW",
            LastWeek => "LAST_WEEK",
            ThisWeek => "THIS_WEEK",
            NextWeek => "NEXT_WEEK",
            LastMonth => "LAST_MONTH",
            ThisMonth => "THIS_MONTH",
            NextMonth => "NEXT_MONTH",
            Last90Days => "LAST_90_DAYS",
            Next90Days => "NEXT_90_DAYS",
            ThisQuarter => "THIS_QUARTER",
            LastQuarter => "LAST_QUARTER",
            NextQuarter => "NEXT_QUARTER",
            ThisYear => "THIS_YEAR",
            LastYear => "LAST_YEAR",
            NextYear => "NEXT_YEAR",
            LastNDays(_) => "LAST_N_DAYS",
            NextNDays(_) => "NEXT_N_DAYS",
            NDaysAgo(_) => "N_DAYS_AGO",
            LastNWeeks(_) => "LAST_N_WEEKS",
            NextNWeeks(_) => "NEXT_N_WEEKS",
            NWeeksAgo(_) => "N_WEEKS_AGO",
            LastNMonths(_) => "LAST_N_MONTHS",
            NextNMonths(_) => "NEXT_N_MONTHS",
            NMonthsAgo(_) => "N_MONTHS_AGO",
            LastNQuarters(_) => "LAST_N_QUARTERS",
            NextNQuarters(_) => "NEXT_N_QUARTERS",
            NQuartersAgo(_) => "N_QUARTERS_AGO",
            LastNYears(_) => "LAST_N_YEARS",
            NextNYears(_) => "NEXT_N_YEARS",
            NYearsAgo(_) => "N_YEARS_AGO",
        }
    }

    /// The `n` of `NAME:n` literals.
    pub fn n(&self) -> Option<u32> {
        use DateLiteral::*;
        match *self {
            LastNDays(n) | NextNDays(n) | NDaysAgo(n) | LastNWeeks(n) | NextNWeeks(n)
            | NWeeksAgo(n) | LastNMonths(n) | NextNMonths(n) | NMonthsAgo(n) | LastNQuarters(n)
            | NextNQuarters(n) | NQuartersAgo(n) | LastNYears(n) | NextNYears(n) | NYearsAgo(n) => {
                Some(n)
            }
            _ => None,
        }
    }

    /// The range `[start, end)` this literal stands for when the current instant is `now`, in
    /// the sandbox org's time zone (UTC) and locale (en_US: weeks start on Sunday).
    ///
    /// Never panics: a range reaching past chrono's representable dates is clamped to them.
    pub fn range(&self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        use DateLiteral::*;
        let today = now.date_naive();
        let week = sub_days(today, u64::from(today.weekday().num_days_from_sunday()));
        let month = today.with_day(1).unwrap_or(today);
        let quarter_month = (today.month0() / 3) * 3 + 1;
        let quarter = month.with_month(quarter_month).unwrap_or(month);
        let year = month.with_month(1).unwrap_or(month);
        let n_days = |n: u32| u64::from(n);
        let n_weeks = |n: u32| u64::from(n) * 7;
        let n_quarters = |n: u32| n.saturating_mul(3);
        let n_years = |n: u32| n.saturating_mul(12);
        let (start, end) = match *self {
            // "Starts 00:00:00 the day before and continues for 24 hours."
            Yesterday => (sub_days(today, 1), today),
            // "Starts 00:00:00 of the current day and continues for 24 hours."
            Today => (today, add_days(today, 1)),
            // "Starts 00:00:00 after the current day and continues for 24 hours."
            Tomorrow => (add_days(today, 1), add_days(today, 2)),
            // "Starts 00:00:00 on the first day of the week before the most recent first day of
            // the week and continues for seven full days."
            LastWeek => (sub_days(week, 7), week),
            // "Starts 00:00:00 on the most recent first day of the week on or before the current
            // day and continues for seven full days."
            ThisWeek => (week, add_days(week, 7)),
            // "Starts 00:00:00 on the most recent first day of the week after the current day
            // and continues for seven full days."
            NextWeek => (add_days(week, 7), add_days(week, 14)),
            // "Starts 00:00:00 on the first day of the month before the current day and
            // continues for all the days of that month."
            LastMonth => (sub_months(month, 1), month),
            ThisMonth => (month, add_months(month, 1)),
            NextMonth => (add_months(month, 1), add_months(month, 2)),
            // "Starts with the current day and continues for the past 90 days. This includes
            // the current day, not just previous days. So it includes 91 days in total."
            Last90Days => (sub_days(today, 90), add_days(today, 1)),
            // "Starts 00:00:00 of the next day and continues for the next 90 days."
            Next90Days => (add_days(today, 1), add_days(today, 91)),
            ThisQuarter => (quarter, add_months(quarter, 3)),
            LastQuarter => (sub_months(quarter, 3), quarter),
            NextQuarter => (add_months(quarter, 3), add_months(quarter, 6)),
            ThisYear => (year, add_months(year, 12)),
            LastYear => (sub_months(year, 12), year),
            NextYear => (add_months(year, 12), add_months(year, 24)),
            // "For the number n provided, starts with the current day and continues for the
            // past n days. This includes the current day, not just previous days. For example,
            // LAST_N_DAYS:1 includes yesterday and today."
            LastNDays(n) => (sub_days(today, n_days(n)), add_days(today, 1)),
            // "For the number n provided, starts 00:00:00 of the next day and continues for the
            // next n days. This doesn't include the current day."
            NextNDays(n) => {
                let start = add_days(today, 1);
                (start, add_days(start, n_days(n)))
            }
            // "Starts 00:00:00 of the day n days before the current day and continues for 24
            // hours. (The range doesn't include today.)"
            NDaysAgo(n) => {
                let start = sub_days(today, n_days(n));
                (start, add_days(start, 1))
            }
            // "For the number n provided, starts 00:00:00 of the last day of the previous week
            // and continues for the past n weeks." (the n whole weeks before this week)
            LastNWeeks(n) => (sub_days(week, n_weeks(n)), week),
            // "For the number n provided, starts 00:00:00 of the first day of the next week and
            // continues for the next n weeks."
            NextNWeeks(n) => {
                let start = add_days(week, 7);
                (start, add_days(start, n_weeks(n)))
            }
            // "Starts 00:00:00 of the first day of the week n weeks ago and continues for seven
            // full days."
            NWeeksAgo(n) => {
                let start = sub_days(week, n_weeks(n));
                (start, add_days(start, 7))
            }
            // "For the number n provided, starts 00:00:00 of the last day of the previous month
            // and continues for the past n months. The range doesn't include the current month."
            LastNMonths(n) => (sub_months(month, n), month),
            // "For the number n provided, starts 00:00:00 of the first day of the next month and
            // continues for the next n months."
            NextNMonths(n) => {
                let start = add_months(month, 1);
                (start, add_months(start, n))
            }
            // "Starts 00:00:00 of the first day of the month n months ago and continues for all
            // the days of that month."
            NMonthsAgo(n) => {
                let start = sub_months(month, n);
                (start, add_months(start, 1))
            }
            // "Starts 00:00:00 of the previous quarter and continues for the past n quarters."
            LastNQuarters(n) => (sub_months(quarter, n_quarters(n)), quarter),
            // "Starts 00:00:00 of the next quarter and continues for the next n quarters."
            NextNQuarters(n) => {
                let start = add_months(quarter, 3);
                (start, add_months(start, n_quarters(n)))
            }
            // "Starts 00:00:00 of the quarter n quarters ago and continues for three months."
            NQuartersAgo(n) => {
                let start = sub_months(quarter, n_quarters(n));
                (start, add_months(start, 3))
            }
            // "Starts 00:00:00 on Jan 1 of the previous year and continues for the past n years."
            LastNYears(n) => (sub_months(year, n_years(n)), year),
            // "Starts 00:00:00 on Jan 1 of the following year and continues for the next n
            // years."
            NextNYears(n) => {
                let start = add_months(year, 12);
                (start, add_months(start, n_years(n)))
            }
            // "Starts 00:00:00 on Jan 1 of the calendar year n years ago and continues through
            // Dec 31 of that year."
            NYearsAgo(n) => {
                let start = sub_months(year, n_years(n));
                (start, add_months(start, 12))
            }
        };
        (midnight(start), midnight(end))
    }

    /// Whether `value <op> self` holds at `now`, per the table in the module documentation.
    pub fn matches(&self, op: CompareOp, value: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        let (start, end) = self.range(now);
        match op {
            CompareOp::Eq => start <= value && value < end,
            CompareOp::Ne => !(start <= value && value < end),
            CompareOp::Lt => value < start,
            CompareOp::Gt => value >= end,
            CompareOp::Le => value < end,
            CompareOp::Ge => value >= start,
        }
    }

    /// [`DateLiteral::matches`] for a date field: the date is taken at 00:00:00 UTC.
    pub fn matches_date(&self, op: CompareOp, value: NaiveDate, now: DateTime<Utc>) -> bool {
        self.matches(op, midnight(value), now)
    }
}

fn midnight(date: NaiveDate) -> DateTime<Utc> {
    date.and_time(NaiveTime::MIN).and_utc()
}

fn add_days(date: NaiveDate, n: u64) -> NaiveDate {
    date.checked_add_days(Days::new(n))
        .unwrap_or(NaiveDate::MAX)
}

fn sub_days(date: NaiveDate, n: u64) -> NaiveDate {
    date.checked_sub_days(Days::new(n))
        .unwrap_or(NaiveDate::MIN)
}

fn add_months(date: NaiveDate, n: u32) -> NaiveDate {
    date.checked_add_months(Months::new(n))
        .unwrap_or(NaiveDate::MAX)
}

fn sub_months(date: NaiveDate, n: u32) -> NaiveDate {
    date.checked_sub_months(Months::new(n))
        .unwrap_or(NaiveDate::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use DateLiteral::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 30, 15).unwrap()
    }

    fn day(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
    }

    // 2026-11-18 is a Wednesday.
    fn now() -> DateTime<Utc> {
        at(2026, 11, 18, 15)
    }

    #[test]
    fn days() {
        assert_eq!(Today.range(now()), (day(2026, 11, 18), day(2026, 11, 19)));
        assert_eq!(
            Yesterday.range(now()),
            (day(2026, 11, 17), day(2026, 11, 18))
        );
        assert_eq!(
            Tomorrow.range(now()),
            (day(2026, 11, 19), day(2026, 11, 20))
        );
        assert_eq!(
            LastNDays(1).range(now()),
            (day(2026, 11, 17), day(2026, 11, 19))
        );
        assert_eq!(
            LastNDays(0).range(now()),
            (day(2026, 11, 18), day(2026, 11, 19))
        );
        assert_eq!(Last90Days.range(now()), LastNDays(90).range(now()));
        assert_eq!(Last90Days.range(now()).0, day(2026, 8, 20));
        assert_eq!(
            NextNDays(2).range(now()),
            (day(2026, 11, 19), day(2026, 11, 21))
        );
        assert_eq!(Next90Days.range(now()), NextNDays(90).range(now()));
        assert_eq!(
            NDaysAgo(3).range(now()),
            (day(2026, 11, 15), day(2026, 11, 16))
        );
    }

    #[test]
    fn weeks_start_on_sunday() {
        assert_eq!(
            ThisWeek.range(now()),
            (day(2026, 11, 15), day(2026, 11, 22))
        );
        assert_eq!(LastWeek.range(now()), (day(2026, 11, 8), day(2026, 11, 15)));
        assert_eq!(
            NextWeek.range(now()),
            (day(2026, 11, 22), day(2026, 11, 29))
        );
        assert_eq!(
            LastNWeeks(2).range(now()),
            (day(2026, 11, 1), day(2026, 11, 15))
        );
        assert_eq!(
            NextNWeeks(2).range(now()),
            (day(2026, 11, 22), day(2026, 12, 6))
        );
        assert_eq!(NWeeksAgo(1).range(now()), LastWeek.range(now()));
        // On a Sunday, the week starts that day; on a Saturday, six days before.
        assert_eq!(ThisWeek.range(at(2026, 11, 15, 0)).0, day(2026, 11, 15));
        assert_eq!(ThisWeek.range(at(2026, 11, 21, 23)).0, day(2026, 11, 15));
    }

    #[test]
    fn months_quarters_years() {
        assert_eq!(ThisMonth.range(now()), (day(2026, 11, 1), day(2026, 12, 1)));
        assert_eq!(LastMonth.range(now()), (day(2026, 10, 1), day(2026, 11, 1)));
        assert_eq!(NextMonth.range(now()), (day(2026, 12, 1), day(2027, 1, 1)));
        assert_eq!(
            LastNMonths(3).range(now()),
            (day(2026, 8, 1), day(2026, 11, 1))
        );
        assert_eq!(
            NextNMonths(2).range(now()),
            (day(2026, 12, 1), day(2027, 2, 1))
        );
        assert_eq!(
            NMonthsAgo(12).range(now()),
            (day(2025, 11, 1), day(2025, 12, 1))
        );
        assert_eq!(
            ThisQuarter.range(now()),
            (day(2026, 10, 1), day(2027, 1, 1))
        );
        assert_eq!(
            LastQuarter.range(now()),
            (day(2026, 7, 1), day(2026, 10, 1))
        );
        assert_eq!(NextQuarter.range(now()), (day(2027, 1, 1), day(2027, 4, 1)));
        assert_eq!(
            ThisQuarter.range(at(2026, 3, 31, 23)),
            (day(2026, 1, 1), day(2026, 4, 1))
        );
        assert_eq!(
            LastNQuarters(2).range(now()),
            (day(2026, 4, 1), day(2026, 10, 1))
        );
        assert_eq!(NextNQuarters(1).range(now()), NextQuarter.range(now()));
        assert_eq!(NQuartersAgo(1).range(now()), LastQuarter.range(now()));
        assert_eq!(ThisYear.range(now()), (day(2026, 1, 1), day(2027, 1, 1)));
        assert_eq!(LastYear.range(now()), (day(2025, 1, 1), day(2026, 1, 1)));
        assert_eq!(NextYear.range(now()), (day(2027, 1, 1), day(2028, 1, 1)));
        assert_eq!(
            LastNYears(2).range(now()),
            (day(2024, 1, 1), day(2026, 1, 1))
        );
        assert_eq!(
            NextNYears(2).range(now()),
            (day(2027, 1, 1), day(2029, 1, 1))
        );
        assert_eq!(NYearsAgo(1).range(now()), LastYear.range(now()));
        // Month arithmetic from the 1st never clips: from 31 Jan the next month is 1 Feb.
        assert_eq!(
            NextMonth.range(at(2026, 1, 31, 1)),
            (day(2026, 2, 1), day(2026, 3, 1))
        );
    }

    #[test]
    fn huge_n_clamps_instead_of_panicking() {
        let (s, e) = LastNDays(u32::MAX).range(now());
        assert!(s < e);
        let (s, e) = NextNYears(u32::MAX).range(now());
        assert!(s < e);
        let (s, e) = NYearsAgo(u32::MAX).range(now());
        assert!(s <= e);
        let far = DateTime::<Utc>::MAX_UTC;
        for lit in [NextYear, NextNQuarters(5), LastNWeeks(u32::MAX), Tomorrow] {
            let _ = lit.range(far);
            let _ = lit.range(DateTime::<Utc>::MIN_UTC);
        }
    }

    #[test]
    fn comparison_semantics() {
        let n = now();
        let inside = at(2026, 11, 10, 12); // last week
        let before = at(2026, 11, 7, 23);
        let after = day(2026, 11, 15); // first instant of this week
        assert!(LastWeek.matches(CompareOp::Eq, inside, n));
        assert!(!LastWeek.matches(CompareOp::Eq, after, n));
        assert!(LastWeek.matches(CompareOp::Ne, after, n));
        assert!(LastWeek.matches(CompareOp::Lt, before, n));
        assert!(!LastWeek.matches(CompareOp::Lt, inside, n));
        assert!(LastWeek.matches(CompareOp::Gt, after, n));
        assert!(!LastWeek.matches(CompareOp::Gt, inside, n));
        assert!(LastWeek.matches(CompareOp::Le, inside, n));
        assert!(LastWeek.matches(CompareOp::Le, before, n));
        assert!(!LastWeek.matches(CompareOp::Le, after, n));
        assert!(LastWeek.matches(CompareOp::Ge, inside, n));
        assert!(!LastWeek.matches(CompareOp::Ge, before, n));
        let d = NaiveDate::from_ymd_opt(2026, 11, 18).unwrap();
        assert!(Today.matches_date(CompareOp::Eq, d, n));
        assert!(Yesterday.matches_date(CompareOp::Gt, d, n));
        assert!(Tomorrow.matches_date(CompareOp::Lt, d, n));
    }

    #[test]
    fn names_round_trip_through_lookup() {
        for (name, lit) in SIMPLE {
            assert_eq!(lit.name(), *name);
            assert!(
                matches!(lookup(&name.to_lowercase()), Some(LiteralName::Simple(l)) if l == *lit)
            );
        }
        for (name, make) in WITH_N {
            assert_eq!(make(4).name(), *name);
            assert_eq!(make(4).n(), Some(4));
        }
        assert!(matches!(
            lookup("this_fiscal_year"),
            Some(LiteralName::Fiscal)
        ));
        assert!(lookup("XYZ").is_none());
        assert_eq!(Today.n(), None);
    }
}
