//! API usage: the approvers' dashboard (every contractor's calls against its budget, the
//! org's pool, top consumers, licences and cost), collecting usage now, lifting a
//! suspension, and the contractor's own usage behind their status link.

use leptos::prelude::*;
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
    pub state: shared::GrantState,
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
}

/// What the contractor's usage link shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OwnUsage {
    /// Boxed: the view is large and the other variant is a name.
    Usage(Box<ContractorView>),
    /// The request has no working grant (yet).
    NotYet { company: String },
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::*;
    use services::usage::budgets::{Level, warn_at};
    use services::usage::report::{ContractorUsage, Forecast};

    pub fn time(ms: i64) -> String {
        services::clock::to_datetime(ms)
            .format("%Y-%m-%d %H:%M UTC")
            .to_string()
    }

    fn status_of(level: Option<Level>) -> BudgetStatus {
        match level {
            None => BudgetStatus::Within,
            Some(Level::Warn) => BudgetStatus::Warning,
            Some(Level::Hard) => BudgetStatus::Over,
        }
    }

    pub fn share(percent: Option<f64>) -> Option<String> {
        percent.map(|p| {
            if p > 0.0 && p < 0.1 {
                "under 0.1%".to_string()
            } else {
                format!("{p:.1}%")
            }
        })
    }

    pub fn usd(cents: u64) -> String {
        format!("{}.{:02} USD", cents / 100, cents % 100)
    }

    pub fn contractor(usage: ContractorUsage) -> ContractorView {
        let forecast = if usage.suspended() {
            "Suspended: its calls are refused until an approver lifts the suspension.".to_string()
        } else {
            match usage.forecast {
                Forecast::Reached => "Today's budget is used up.".to_string(),
                Forecast::At(at) => format!(
                    "At this rate ({:.0} calls an hour) the budget is reached at {}.",
                    usage.rate_per_hour,
                    services::clock::to_datetime(at).format("%H:%M UTC")
                ),
                Forecast::NotToday => format!(
                    "At this rate ({:.0} calls an hour) the budget is not reached today.",
                    usage.rate_per_hour
                ),
                Forecast::Idle => "No calls in the latest hours: nothing to forecast.".to_string(),
            }
        };
        ContractorView {
            warn_at: warn_at(usage.budget.calls_per_day, usage.budget.warn_percent),
            day_status: status_of(usage.day_level),
            week_status: status_of(usage.week_level),
            share_of_pool: share(usage.share_of_pool),
            suspended: usage.suspended(),
            freezes: usage.budget.hard_action == shared::budget::HardAction::Freeze,
            hard_action: usage.budget.hard_action.label().to_string(),
            calls_per_day: usage.budget.calls_per_day,
            calls_per_7_days: usage.budget.calls_per_7_days,
            warn_percent: usage.budget.warn_percent,
            days: usage
                .days
                .iter()
                .map(|(day, calls)| DayBar {
                    day: services::clock::to_datetime(*day)
                        .format("%Y-%m-%d")
                        .to_string(),
                    calls: *calls,
                })
                .collect(),
            forecast,
            grant_id: usage.grant_id,
            request_id: usage.request_id,
            company: usage.company,
            state: usage.state,
            today: usage.today,
            last_7_days: usage.last_7_days,
            last_24_hours: usage.last_24_hours,
            frozen: usage.frozen,
            data_age: data_age(usage.data_through, services::clock::now_ms()),
        }
    }

    /// How old the newest usage data is, in words.
    pub fn data_age(through: Option<i64>, now: i64) -> String {
        match through {
            None => "No usage data has arrived from Salesforce yet (its usage files arrive late: hourly ones within hours, daily ones the next day).".to_string(),
            Some(through) => {
                let hours = (now - through).max(0) / 3_600_000;
                format!(
                    "Newest data: up to {} ({}). Salesforce publishes usage files late: hourly ones within hours, daily ones the next day.",
                    services::clock::to_datetime(through).format("%Y-%m-%d %H:%M UTC"),
                    match hours {
                        0 => "less than an hour old".to_string(),
                        1 => "1 hour old".to_string(),
                        n => format!("{n} hours old"),
                    }
                )
            }
        }
    }
}

#[server(endpoint = "usage_dashboard")]
pub async fn usage_dashboard() -> Result<UsageOverview, ServerFnError> {
    use super::ssr::{internal, portal, require};
    use shared::auth::Role;
    require(&[Role::Approver, Role::Owner]).await?;
    let portal = portal()?;
    let now = portal.clock().now_ms();
    let overview = services::usage::report::overview(&portal.db, portal.settings.licences, now)
        .await
        .map_err(internal)?;
    let licences = overview.licences;
    Ok(UsageOverview {
        generated_at: ssr::time(now),
        collector: CollectorView {
            last_run: overview.collector.last_run_at.map(ssr::time),
            last_success: overview.collector.last_success_at.map(ssr::time),
            last_error: overview.collector.last_error,
            files_read: overview.collector.files_read,
            rows_skipped: overview.rows_skipped,
            data_age: ssr::data_age(overview.data_through, now),
        },
        pool: overview.org.map(|org| PoolView {
            max: org.daily_api_max,
            remaining: org.daily_api_remaining,
            at: ssr::time(org.at),
        }),
        contractors: overview
            .contractors
            .into_iter()
            .map(ssr::contractor)
            .collect(),
        top: overview
            .top
            .into_iter()
            .map(|c| ConsumerView {
                user: c.username.unwrap_or_else(|| c.user_key.clone()),
                company: c.company,
                last_24_hours: c.last_24_hours,
                share_of_pool: ssr::share(c.share_of_pool),
            })
            .collect(),
        licences: LicenceView {
            total: licences.total,
            used: licences.used,
            by_portcullis: licences.by_portcullis,
            included: licences.included,
            price: ssr::usd(licences.price_cents),
            billable: licences.billable,
            monthly_cost: ssr::usd(licences.monthly_cost_cents),
        },
    })
}

/// Reads the org's usage files now (as the collector job does on its interval) and checks
/// the budgets. Answers what the run did.
#[server(endpoint = "collect_usage_now")]
pub async fn collect_usage_now() -> Result<String, ServerFnError> {
    use super::ssr::{internal, portal, refuse, require};
    use services::usage::collector::CollectError;
    use shared::auth::Role;
    require(&[Role::Approver, Role::Owner]).await?;
    let portal = portal()?;
    match portal.usage_collector().run_once().await {
        Ok(report) => {
            let mut said = format!(
                "Collected: {} new file{} read ({} rows), {} already read.",
                report.read.len(),
                if report.read.len() == 1 { "" } else { "s" },
                report.rows,
                report.already_read
            );
            if !report.budgets.raised.is_empty() {
                said.push_str(&format!(
                    " {} budget alert{} sent.",
                    report.budgets.raised.len(),
                    if report.budgets.raised.len() == 1 {
                        ""
                    } else {
                        "s"
                    }
                ));
            }
            if let Some(failure) = report.failed.first() {
                said.push_str(&format!(
                    " {} file(s) could not be read and will be tried again: {}",
                    report.failed.len(),
                    failure.error
                ));
            }
            Ok(said)
        }
        Err(CollectError::Busy) => Err(refuse(
            409,
            "Usage is being collected right now; look again in a moment.",
        )),
        Err(CollectError::Listing(e)) => {
            tracing::warn!(error = %e, "collecting usage: the org did not answer");
            Err(refuse(
                502,
                "The org did not list its usage files; try again later.",
            ))
        }
        Err(e) => Err(internal(e)),
    }
}

/// An approver lifts the suspension of the grant made from request `id`: its integration
/// user is unfrozen in Salesforce and the grant works again.
#[server(endpoint = "lift_suspension")]
pub async fn lift_suspension(
    id: String,
    reason: String,
) -> Result<super::admin::GrantActionResult, ServerFnError> {
    use super::admin::GrantActionResult;
    use super::ssr::{internal, status};
    use services::usage::budgets::{LiftError, lift};
    let (portal, grant, actor) = match super::admin::grant_action(&id).await? {
        Ok(action) => action,
        Err(refused) => return Ok(refused),
    };
    match lift(
        &portal.db,
        &portal.salesforce,
        &shared::GrantId::new(grant),
        &actor,
        &reason,
        portal.clock().as_ref(),
    )
    .await
    {
        Ok(()) => Ok(GrantActionResult::Done(
            "Lifted: the integration user is unfrozen and its calls work again.".into(),
        )),
        Err(LiftError::Database(e)) => Err(internal(e)),
        Err(LiftError::NoReason) => {
            status(422);
            Ok(GrantActionResult::Refused(LiftError::NoReason.to_string()))
        }
        Err(e @ LiftError::Salesforce(_)) => {
            tracing::warn!(error = %e, "lifting a suspension");
            status(502);
            Ok(GrantActionResult::Refused(e.to_string()))
        }
        Err(other) => {
            status(409);
            Ok(GrantActionResult::Refused(other.to_string()))
        }
    }
}

/// The contractor's own usage, through the status link from their mail.
#[server(endpoint = "my_usage")]
pub async fn my_usage(token: String) -> Result<Option<OwnUsage>, ServerFnError> {
    use super::ssr::{internal, portal, status};
    let portal = portal()?;
    let now = portal.clock().now_ms();
    let found = services::usage::report::for_status_token(&portal.db, token.trim(), now)
        .await
        .map_err(internal)?;
    Ok(match found {
        None => {
            status(404);
            None
        }
        Some(Some(usage)) => Some(OwnUsage::Usage(Box::new(ssr::contractor(usage)))),
        Some(None) => {
            let company = portal
                .status(token.trim())
                .await
                .map_err(internal)?
                .map(|s| s.company)
                .unwrap_or_default();
            Some(OwnUsage::NotYet { company })
        }
    })
}
