//! What the usage pages show: every contractor's calls against its budget, the org's pool,
//! top consumers, licences and cost, and a contractor's own usage. Built by the services
//! (`services::usage::view`), shown by the pages.

use serde::{Deserialize, Serialize};

/// Where a budget stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BudgetStatus {
    Within,
    /// At or past the warning percentage.
    Warning,
    /// The budget is used up.
    Over,
}

impl BudgetStatus {
    pub fn label(self) -> &'static str {
        match self {
            BudgetStatus::Within => "Within budget",
            BudgetStatus::Warning => "Near budget",
            BudgetStatus::Over => "Over budget",
        }
    }

    pub fn class(self) -> &'static str {
        match self {
            BudgetStatus::Within => "within",
            BudgetStatus::Warning => "warning",
            BudgetStatus::Over => "over",
        }
    }
}

/// One day's bar on a chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayBar {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    pub calls: u64,
}

/// One contractor's usage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContractorView {
    pub grant_id: String,
    pub request_id: String,
    pub company: String,
    pub state: crate::GrantState,
    pub calls_per_day: u64,
    pub calls_per_7_days: u64,
    pub warn_percent: u8,
    /// Calls per day at which the warning is due.
    pub warn_at: u64,
    pub hard_action: String,
    pub freezes: bool,
    pub days: Vec<DayBar>,
    pub today: u64,
    pub last_7_days: u64,
    pub last_24_hours: u64,
    pub day_status: BudgetStatus,
    pub week_status: BudgetStatus,
    /// "0.8%" of the org's daily pool over the last 24 hours.
    pub share_of_pool: Option<String>,
    /// "At this rate the budget is reached at 14:20 UTC", and the like.
    pub forecast: String,
    pub suspended: bool,
    pub frozen: bool,
    /// "Newest data: up to 09:00 UTC on 2026-12-05 (2 hours old)…": Salesforce publishes
    /// usage files late (daily ones the next day).
    pub data_age: String,
}

/// A user among the org's top consumers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerView {
    pub user: String,
    pub company: Option<String>,
    pub last_24_hours: u64,
    pub share_of_pool: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenceView {
    pub total: Option<i64>,
    pub used: Option<i64>,
    pub by_portcullis: i64,
    pub included: u64,
    /// "10.00 USD".
    pub price: String,
    pub billable: u64,
    /// "20.00 USD".
    pub monthly_cost: String,
    /// How many grants' teardowns gave their licence back (their users deactivated).
    pub freed_total: i64,
    /// The newest of them.
    pub freed: Vec<crate::ending::FreedLicence>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolView {
    pub max: Option<i64>,
    pub remaining: Option<i64>,
    /// When the org said so.
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectorView {
    pub last_run: Option<String>,
    pub last_success: Option<String>,
    pub last_error: Option<String>,
    pub files_read: i64,
    /// Malformed rows skipped in the files read.
    pub rows_skipped: i64,
    /// How old the newest usage data is.
    pub data_age: String,
}

/// The approvers' usage dashboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageOverview {
    pub generated_at: String,
    pub collector: CollectorView,
    pub pool: Option<PoolView>,
    pub contractors: Vec<ContractorView>,
    pub top: Vec<ConsumerView>,
    pub licences: LicenceView,
    /// The newest anomalies the usage rules raised, newest window first.
    #[serde(default)]
    pub anomalies: Vec<AnomalyView>,
}

/// One anomaly the usage rules raised (`usage.anomaly`): which grant, what kind, the hour
/// it was seen in and the figures observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnomalyView {
    pub grant_id: String,
    pub request_id: String,
    pub company: String,
    /// `client_errors`, `outside_scope`, `outside_ip_ranges` or `above_baseline`.
    pub kind: String,
    /// The kind in words.
    pub label: String,
    /// The start of the hour (RFC 3339); the window is that hour.
    pub window: String,
    /// The observed figures in one line.
    pub summary: String,
    /// `alert` or `freeze`.
    pub action: String,
}

/// What the contractor's usage link shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OwnUsage {
    /// Boxed: the view is large and the other variant is a name.
    Usage(Box<ContractorView>),
    /// The request has no working grant (yet).
    NotYet { company: String },
}
