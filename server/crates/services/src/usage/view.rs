//! What the usage pages show, in words and numbers the pages print: the approvers'
//! dashboard, a contractor's own usage, and what "collect now" did. The types are
//! `shared::usage`'s; this module is the one place they are built.

use shared::budget::HardAction;
use shared::usage::{
    BudgetStatus, CollectorView, ConsumerView, ContractorView, DayBar, LicenceView, OwnUsage,
    PoolView, UsageOverview,
};

use super::budgets::{Level, warn_at};
use super::collector::{CollectError, RunReport};
use super::report::{self, ContractorUsage, Forecast};
use crate::Portal;
use crate::clock::to_datetime;

/// How many of the grants whose teardown gave a licence back the dashboard names.
const FREED_SHOWN: i64 = 20;
/// How many anomalies the dashboard lists (the newest).
const ANOMALIES_SHOWN: i64 = 20;

fn time(ms: i64) -> String {
    to_datetime(ms).format("%Y-%m-%d %H:%M UTC").to_string()
}

fn status_of(level: Option<Level>) -> BudgetStatus {
    match level {
        None => BudgetStatus::Within,
        Some(Level::Warn) => BudgetStatus::Warning,
        Some(Level::Hard) => BudgetStatus::Over,
    }
}

fn share(percent: Option<f64>) -> Option<String> {
    percent.map(|p| {
        if p > 0.0 && p < 0.1 {
            "under 0.1%".to_string()
        } else {
            format!("{p:.1}%")
        }
    })
}

fn usd(cents: u64) -> String {
    format!("{}.{:02} USD", cents / 100, cents % 100)
}

fn contractor(usage: ContractorUsage, now: i64) -> ContractorView {
    let forecast = if usage.suspended() {
        "Suspended: its calls are refused until an approver lifts the suspension.".to_string()
    } else {
        match usage.forecast {
            Forecast::Reached => "Today's budget is used up.".to_string(),
            Forecast::At(at) => format!(
                "At this rate ({:.0} calls an hour) the budget is reached at {}.",
                usage.rate_per_hour,
                to_datetime(at).format("%H:%M UTC")
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
        freezes: usage.budget.hard_action == HardAction::Freeze,
        hard_action: usage.budget.hard_action.label().to_string(),
        calls_per_day: usage.budget.calls_per_day,
        calls_per_7_days: usage.budget.calls_per_7_days,
        warn_percent: usage.budget.warn_percent,
        days: usage
            .days
            .iter()
            .map(|(day, calls)| DayBar {
                day: to_datetime(*day).format("%Y-%m-%d").to_string(),
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
        data_age: data_age(usage.data_through, now),
    }
}

/// How old the newest usage data is, in words.
fn data_age(through: Option<i64>, now: i64) -> String {
    match through {
        None => "No usage data has arrived from Salesforce yet (its usage files arrive late: hourly ones within hours, daily ones the next day).".to_string(),
        Some(through) => {
            let hours = (now - through).max(0) / 3_600_000;
            format!(
                "Newest data: up to {} ({}). Salesforce publishes usage files late: hourly ones within hours, daily ones the next day.",
                to_datetime(through).format("%Y-%m-%d %H:%M UTC"),
                match hours {
                    0 => "less than an hour old".to_string(),
                    1 => "1 hour old".to_string(),
                    n => format!("{n} hours old"),
                }
            )
        }
    }
}

/// What a collector run did, in a sentence for the approver who asked for it.
pub fn run_summary(report: &RunReport) -> String {
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let mut said = format!(
        "Collected: {} new file{} read ({} rows), {} already read.",
        report.read.len(),
        plural(report.read.len()),
        report.rows,
        report.already_read
    );
    if !report.budgets.raised.is_empty() {
        said.push_str(&format!(
            " {} budget alert{} sent.",
            report.budgets.raised.len(),
            plural(report.budgets.raised.len())
        ));
    }
    if !report.budgets.anomalies.is_empty() {
        said.push_str(&format!(
            " {} usage anomal{} raised.",
            report.budgets.anomalies.len(),
            if report.budgets.anomalies.len() == 1 {
                "y"
            } else {
                "ies"
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
    said
}

impl Portal {
    /// The approvers' usage dashboard, now.
    pub async fn usage_overview(&self) -> Result<UsageOverview, sqlx::Error> {
        let now = self.clock.now_ms();
        let overview = report::overview(&self.db, self.settings.licences, now).await?;
        let licences = overview.licences;
        let (freed_total, freed) = crate::ending::freed_licences(&self.db, FREED_SHOWN).await?;
        Ok(UsageOverview {
            generated_at: time(now),
            collector: CollectorView {
                last_run: overview.collector.last_run_at.map(time),
                last_success: overview.collector.last_success_at.map(time),
                last_error: overview.collector.last_error,
                files_read: overview.collector.files_read,
                rows_skipped: overview.rows_skipped,
                data_age: data_age(overview.data_through, now),
            },
            pool: overview.org.map(|org| PoolView {
                max: org.daily_api_max,
                remaining: org.daily_api_remaining,
                at: time(org.at),
            }),
            contractors: overview
                .contractors
                .into_iter()
                .map(|c| contractor(c, now))
                .collect(),
            top: overview
                .top
                .into_iter()
                .map(|c| ConsumerView {
                    user: c.username.unwrap_or_else(|| c.user_key.clone()),
                    company: c.company,
                    last_24_hours: c.last_24_hours,
                    share_of_pool: share(c.share_of_pool),
                })
                .collect(),
            anomalies: super::anomaly::recent_views(&self.db, ANOMALIES_SHOWN).await?,
            licences: LicenceView {
                total: licences.total,
                used: licences.used,
                by_portcullis: licences.by_portcullis,
                included: licences.included,
                price: usd(licences.price_cents),
                billable: licences.billable,
                monthly_cost: usd(licences.monthly_cost_cents),
                freed_total,
                freed,
            },
        })
    }

    /// The contractor's own usage behind status link `token`; None for a link that is not
    /// one of ours.
    pub async fn own_usage(&self, token: &str) -> Result<Option<OwnUsage>, sqlx::Error> {
        let now = self.clock.now_ms();
        Ok(
            match report::for_status_token(&self.db, token, now).await? {
                None => None,
                Some(Some(usage)) => Some(OwnUsage::Usage(Box::new(contractor(usage, now)))),
                Some(None) => {
                    let company = self
                        .status(token)
                        .await?
                        .map(|s| s.company)
                        .unwrap_or_default();
                    Some(OwnUsage::NotYet { company })
                }
            },
        )
    }

    /// Reads the org's usage files now (as the collector job does on its interval) and
    /// checks the budgets; says what the run did.
    pub async fn collect_usage_now(&self) -> Result<String, CollectError> {
        let report = self.usage_collector().run_once().await?;
        Ok(run_summary(&report))
    }

    /// An approver lifts the suspension of grant `grant_id`: its integration user is
    /// unfrozen in Salesforce and the grant works again.
    pub async fn lift_suspension(
        &self,
        grant_id: &shared::GrantId,
        actor: &crate::audit::Actor,
        reason: &str,
    ) -> Result<(), super::budgets::LiftError> {
        super::budgets::lift(
            &self.db,
            &self.salesforce,
            grant_id,
            actor,
            reason,
            self.clock.as_ref(),
        )
        .await
    }
}
