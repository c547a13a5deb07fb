//! What the usage pages show: per contractor the last 30 days of calls against its budget,
//! today's and the last 7 days' totals, its share of the org's daily pool and a burn-rate
//! forecast; the org's top consumers; the Salesforce Integration licences and what they
//! cost beyond the included ones; and where the collector stands.

use std::collections::BTreeMap;

use shared::budget::Budget;
use shared::grant::{GrantState, StepName, StepState};

use super::budgets::{self, DAY_MS, HOUR_MS, Level, Monitored, day_start, hour_start, level_of};
use super::collector::{self, CollectorStatus, OrgSnapshot};
use crate::db::Database;

/// Days on the charts.
pub const DAYS: i64 = 30;

/// When, at the recent rate, the day's budget runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forecast {
    /// Already used up today.
    Reached,
    /// At this time (Unix ms), today.
    At(i64),
    /// Not before the day ends.
    NotToday,
    /// No calls in the recent hours: no rate to go by.
    Idle,
}

/// One contractor's usage.
#[derive(Debug, Clone)]
pub struct ContractorUsage {
    pub grant_id: String,
    pub request_id: String,
    pub company: String,
    pub state: GrantState,
    pub budget: Budget,
    pub user_id: String,
    /// Counted calls per UTC day, the oldest first, ending today.
    pub days: Vec<(i64, u64)>,
    pub today: u64,
    pub last_7_days: u64,
    /// Calls in the last 24 hours (the org's pool is a rolling 24 hours).
    pub last_24_hours: u64,
    pub day_level: Option<Level>,
    pub week_level: Option<Level>,
    /// Percent of the org's DailyApiRequests the last 24 hours took.
    pub share_of_pool: Option<f64>,
    pub forecast: Forecast,
    /// Calls per hour the forecast goes by.
    pub rate_per_hour: f64,
    /// The integration user is frozen in Salesforce (the grant is suspended).
    pub frozen: bool,
    /// The end of the newest hour the org's usage files cover (daily files arrive the next
    /// day, so the newest data can be a day old): how old the numbers are.
    pub data_through: Option<i64>,
}

impl ContractorUsage {
    pub fn suspended(&self) -> bool {
        self.state == GrantState::Suspended
    }
}

/// A user among the org's top consumers.
#[derive(Debug, Clone, PartialEq)]
pub struct Consumer {
    pub user_key: String,
    pub username: Option<String>,
    /// The contractor, when the user is one of Portcullis's integration users.
    pub company: Option<String>,
    pub last_24_hours: u64,
    pub share_of_pool: Option<f64>,
}

/// Salesforce Integration licences and what they cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Licences {
    pub total: Option<i64>,
    pub used: Option<i64>,
    /// Integration users Portcullis made that still hold a licence.
    pub by_portcullis: i64,
    pub included: u64,
    pub price_cents: u64,
    /// Used licences beyond the included ones.
    pub billable: u64,
    pub monthly_cost_cents: u64,
}

/// Prices of licences, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LicencePricing {
    pub included: u64,
    pub price_cents: u64,
}

impl Default for LicencePricing {
    fn default() -> Self {
        Self {
            included: 5,
            price_cents: 1000,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Overview {
    pub now: i64,
    pub collector: CollectorStatus,
    /// The newest of the org's reports (API allocation, licences).
    pub org: Option<OrgSnapshot>,
    pub contractors: Vec<ContractorUsage>,
    pub top: Vec<Consumer>,
    pub licences: Licences,
    /// Malformed rows the collector skipped, in all the files it read.
    pub rows_skipped: i64,
    /// The end of the newest hour the usage files cover.
    pub data_through: Option<i64>,
}

/// The newest org snapshot.
pub async fn latest_org(db: &Database) -> Result<Option<OrgSnapshot>, sqlx::Error> {
    sqlx::query_as::<_, OrgSnapshot>(
        "SELECT at, daily_api_max, daily_api_remaining, integration_licences_total, integration_licences_used \
         FROM org_usage_snapshots ORDER BY at DESC LIMIT 1",
    )
    .fetch_optional(db.pool())
    .await
}

/// How fresh the usage data is, for `/metrics`: the end of the newest hour with calls (as
/// the dashboard's "data through"), the collector's last success, and the org's daily API
/// calls as last read. Three single-row reads (an index's end, a one-row table, the newest
/// snapshot).
#[derive(Debug, Clone, Default)]
pub struct Freshness {
    pub data_through: Option<i64>,
    pub last_success_at: Option<i64>,
    pub daily_api_remaining: Option<i64>,
    pub daily_api_max: Option<i64>,
}

pub async fn freshness(db: &Database) -> Result<Freshness, sqlx::Error> {
    let horizon = data_horizon(db).await?;
    let last_success_at: Option<i64> =
        sqlx::query_scalar("SELECT last_success_at FROM usage_collector WHERE id = 1")
            .fetch_optional(db.pool())
            .await?
            .flatten();
    let org = latest_org(db).await?;
    Ok(Freshness {
        data_through: horizon.map(|h| h + HOUR_MS),
        last_success_at,
        daily_api_remaining: org.as_ref().and_then(|o| o.daily_api_remaining),
        daily_api_max: org.as_ref().and_then(|o| o.daily_api_max),
    })
}

/// The newest hour any file has calls for: usage files arrive hours late on real orgs, so
/// rates are taken over the hours before this, not before now.
async fn data_horizon(db: &Database) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT MAX(hour_start) FROM usage_hours")
        .fetch_one(db.pool())
        .await
}

fn percent(calls: u64, pool: Option<i64>) -> Option<f64> {
    pool.filter(|max| *max > 0)
        .map(|max| 100.0 * calls as f64 / max as f64)
}

/// One grant's usage at `now`.
pub async fn contractor(
    db: &Database,
    grant: &Monitored,
    now: i64,
    pool: Option<i64>,
    horizon: Option<i64>,
) -> Result<ContractorUsage, sqlx::Error> {
    let today = day_start(now);
    let first_day = today - (DAYS - 1) * DAY_MS;
    let hours: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT hour_start, counted FROM usage_effective WHERE user_key = $1 AND hour_start >= $2 ORDER BY hour_start",
    )
    .bind(grant.user_key())
    .bind(first_day.min(hour_start(now) - 7 * DAY_MS))
    .fetch_all(db.pool())
    .await?;
    let sum = |from: i64, to: i64| -> u64 {
        hours
            .iter()
            .filter(|(h, _)| (from..to).contains(h))
            .map(|(_, c)| (*c).max(0) as u64)
            .sum()
    };
    let mut by_day: BTreeMap<i64, u64> = (0..DAYS).map(|d| (first_day + d * DAY_MS, 0)).collect();
    for (hour, calls) in &hours {
        if let Some(day) = by_day.get_mut(&day_start(*hour)) {
            *day += (*calls).max(0) as u64;
        }
    }
    let next_hour = hour_start(now) + HOUR_MS;
    let today_calls = sum(today, today + DAY_MS);
    let last_7_days = sum(next_hour - 7 * DAY_MS, next_hour);
    let last_24_hours = sum(next_hour - DAY_MS, next_hour);
    let budget = &grant.budget;

    // The rate of the three hours up to the newest data, per hour.
    let rate_per_hour = match horizon {
        Some(horizon) => sum(horizon - 2 * HOUR_MS, horizon + HOUR_MS) as f64 / 3.0,
        None => 0.0,
    };
    let forecast = if today_calls >= budget.calls_per_day {
        Forecast::Reached
    } else if rate_per_hour <= 0.0 {
        Forecast::Idle
    } else {
        let left = (budget.calls_per_day - today_calls) as f64;
        let at = now + (left / rate_per_hour * HOUR_MS as f64) as i64;
        if at < today + DAY_MS {
            Forecast::At(at)
        } else {
            Forecast::NotToday
        }
    };
    Ok(ContractorUsage {
        data_through: horizon.map(|h| h + HOUR_MS),
        grant_id: grant.grant_id.clone(),
        request_id: grant.request_id.clone(),
        company: grant.company.clone(),
        state: grant.state,
        budget: budget.clone(),
        user_id: grant.user_id.as_str().to_string(),
        days: by_day.into_iter().collect(),
        today: today_calls,
        last_7_days,
        last_24_hours,
        day_level: level_of(today_calls, budget.calls_per_day, budget.warn_percent),
        week_level: level_of(last_7_days, budget.calls_per_7_days, budget.warn_percent),
        share_of_pool: percent(last_24_hours, pool),
        forecast,
        rate_per_hour,
        frozen: grant.frozen_at.is_some(),
    })
}

/// Everything the approvers' usage dashboard shows.
pub async fn overview(
    db: &Database,
    pricing: LicencePricing,
    now: i64,
) -> Result<Overview, sqlx::Error> {
    let collector = collector::status(db).await?;
    let org = latest_org(db).await?;
    let pool = org.as_ref().and_then(|o| o.daily_api_max);
    let horizon = data_horizon(db).await?;
    let grants = budgets::monitored(db).await?;
    let mut contractors = Vec::with_capacity(grants.len());
    for grant in &grants {
        contractors.push(contractor(db, grant, now, pool, horizon).await?);
    }
    // The most calls first; ties by company.
    contractors.sort_by(|a, b| {
        b.last_24_hours
            .cmp(&a.last_24_hours)
            .then_with(|| a.company.cmp(&b.company))
    });

    let since = hour_start(now) + HOUR_MS - DAY_MS;
    let rows: Vec<(String, Option<i64>, Option<String>)> = sqlx::query_as(
        "SELECT e.user_key, CAST(SUM(e.counted) AS BIGINT) AS calls, MAX(u.username) AS username \
         FROM usage_effective e LEFT JOIN usage_users u ON u.user_key = e.user_key \
         WHERE e.hour_start >= $1 GROUP BY e.user_key ORDER BY calls DESC, e.user_key LIMIT 10",
    )
    .bind(since)
    .fetch_all(db.pool())
    .await?;
    let top = rows
        .into_iter()
        .map(|(user_key, calls, username)| {
            let calls = calls.unwrap_or(0).max(0) as u64;
            Consumer {
                company: grants
                    .iter()
                    .find(|g| g.user_key() == user_key)
                    .map(|g| g.company.clone()),
                username,
                share_of_pool: percent(calls, pool),
                last_24_hours: calls,
                user_key,
            }
        })
        .collect::<Vec<_>>();

    let by_portcullis: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM grants g JOIN provisioning_steps s ON s.grant_id = g.id AND s.step = $1 AND s.state = $2 \
         WHERE g.state NOT IN ($3, $4, $5, $6)",
    )
    .bind(StepName::User.as_str())
    .bind(StepState::Succeeded.as_str())
    .bind(GrantState::Cancelled.as_str())
    .bind(GrantState::Cancelling.as_str())
    // A torn-down grant's user is deactivated: its licence is free again.
    .bind(GrantState::Revoked.as_str())
    .bind(GrantState::Expired.as_str())
    .fetch_one(db.pool())
    .await?;
    let used = org.as_ref().and_then(|o| o.integration_licences_used);
    let billable = used.map_or(0, |u| (u.max(0) as u64).saturating_sub(pricing.included));
    let licences = Licences {
        total: org.as_ref().and_then(|o| o.integration_licences_total),
        used,
        by_portcullis,
        included: pricing.included,
        price_cents: pricing.price_cents,
        billable,
        monthly_cost_cents: billable * pricing.price_cents,
    };
    let rows_skipped: Option<i64> =
        sqlx::query_scalar("SELECT CAST(SUM(rows_skipped) AS BIGINT) FROM usage_files")
            .fetch_one(db.pool())
            .await?;
    Ok(Overview {
        rows_skipped: rows_skipped.unwrap_or(0),
        data_through: horizon.map(|h| h + HOUR_MS),
        now,
        collector,
        org,
        contractors,
        top,
        licences,
    })
}

/// The usage of the grant of the request whose status link is `token`, for the contractor:
/// `None` when the link is not valid, `Some(None)` while the request has no working grant.
pub async fn for_status_token(
    db: &Database,
    token: &str,
    now: i64,
) -> Result<Option<Option<ContractorUsage>>, sqlx::Error> {
    if !crate::tokens::looks_like_token(token) {
        return Ok(None);
    }
    let request_id: Option<String> =
        sqlx::query_scalar("SELECT id FROM access_requests WHERE status_token_hash = $1")
            .bind(crate::tokens::hash(token))
            .fetch_optional(db.pool())
            .await?;
    let Some(request_id) = request_id else {
        return Ok(None);
    };
    let Some(grant) = budgets::monitored(db)
        .await?
        .into_iter()
        .find(|g| g.request_id == request_id)
    else {
        return Ok(Some(None));
    };
    let org = latest_org(db).await?;
    let horizon = data_horizon(db).await?;
    contractor(db, &grant, now, org.and_then(|o| o.daily_api_max), horizon)
        .await
        .map(|usage| Some(Some(usage)))
}
