//! API usage pages: the approvers' dashboard (`/admin/usage`) and the contractor's own
//! usage behind their status link (`/status/<token>/usage`). The charts are SVG drawn on
//! the server, so they read without JavaScript; each has its numbers in a table too.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::{Meta, Title};
use leptos_router::hooks::use_params_map;

use crate::api::admin::GrantActionResult;
use crate::api::usage::{
    BudgetStatus, CollectUsageNow, ContractorView, DayBar, LicenceView, LiftSuspension, OwnUsage,
    UsageOverview, my_usage, usage_dashboard,
};
use crate::pages::admin::{AdminNav, RequireRole, approver_or_owner, load_for};
use crate::pages::time::{Time, plain};
use crate::pages::usage_anomalies::UsageAnomalies;

/// The chart's drawing area, in SVG units.
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 12.0;

/// Calls per day as bars, with the budget and the warning level drawn across.
#[component]
pub fn UsageChart(company: String, days: Vec<DayBar>, budget: u64, warn_at: u64) -> impl IntoView {
    let highest = days.iter().map(|d| d.calls).max().unwrap_or(0);
    let scale_max = (highest.max(budget) as f64 * 1.15).max(1.0);
    let plot_h = HEIGHT - TOP - BOTTOM;
    let y = move |calls: u64| TOP + plot_h * (1.0 - calls as f64 / scale_max);
    let slot = (WIDTH - LEFT) / days.len().max(1) as f64;
    let over_days = days.iter().filter(|d| d.calls >= budget).count();
    let label = format!(
        "{company}: API calls per day over the last {} days, against a budget of {budget} per day ({over_days} day{} over budget)",
        days.len(),
        if over_days == 1 { "" } else { "s" }
    );
    let first = days.first().map(|d| plain(&d.day)).unwrap_or_default();
    let last = days.last().map(|d| plain(&d.day)).unwrap_or_default();
    let bars = days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let top = y(d.calls);
            let class = if d.calls >= budget {
                "bar over"
            } else if d.calls >= warn_at {
                "bar warning"
            } else {
                "bar"
            };
            view! {
                <rect
                    class=class
                    x=format!("{:.1}", LEFT + i as f64 * slot + slot * 0.15)
                    y=format!("{top:.1}")
                    width=format!("{:.1}", slot * 0.7)
                    height=format!("{:.1}", (HEIGHT - BOTTOM - top).max(0.0))
                >
                    <title>{format!("{}: {} calls", plain(&d.day), d.calls)}</title>
                </rect>
            }
        })
        .collect_view();
    let budget_y = y(budget);
    let warn_y = y(warn_at);
    let rows = days.clone();
    view! {
        <figure class="usage-chart">
            <svg
                viewBox=format!("0 0 {WIDTH} {HEIGHT}")
                role="img"
                aria-label=label.clone()
                preserveAspectRatio="none"
            >
                <title>{label.clone()}</title>
                <line class="axis" x1=LEFT y1=HEIGHT - BOTTOM x2=WIDTH y2=HEIGHT - BOTTOM />
                {bars}
                <line class="warn-line" x1=LEFT y1=format!("{warn_y:.1}") x2=WIDTH y2=format!("{warn_y:.1}") />
                <line class="budget-line" x1=LEFT y1=format!("{budget_y:.1}") x2=WIDTH y2=format!("{budget_y:.1}") />
                <text class="tick" x=LEFT - 4.0 y=format!("{:.1}", budget_y + 4.0) text-anchor="end">{budget.to_string()}</text>
                <text class="tick" x=LEFT - 4.0 y=HEIGHT - BOTTOM text-anchor="end">"0"</text>
                <text class="tick" x=LEFT y=HEIGHT - 6.0>{first}</text>
                <text class="tick" x=WIDTH y=HEIGHT - 6.0 text-anchor="end">{last}</text>
            </svg>
            <figcaption class="muted">
                "Bars: calls per UTC day. Red line: the budget (" {budget.to_string()}
                " a day). Amber line: the warning (" {warn_at.to_string()} ")."
            </figcaption>
            <details>
                <summary>"The numbers"</summary>
                <table class="data" aria-label=format!("{company}: calls per day")>
                    <thead><tr><th>"Day (UTC)"</th><th>"Calls"</th></tr></thead>
                    <tbody>
                        {rows.into_iter().rev().map(|d| view! { <tr><td><Time at=d.day /></td><td>{d.calls}</td></tr> }).collect_view()}
                    </tbody>
                </table>
            </details>
        </figure>
    }
}

/// "Over budget" and the like, as a badge.
#[component]
fn Badge(status: BudgetStatus, what: &'static str) -> impl IntoView {
    view! {
        <strong class=format!("budget-badge {}", status.class())>
            {format!("{}{what}", status.label())}
        </strong>
    }
}

/// A contractor's numbers: today, 7 days, pool share, forecast.
#[component]
fn Numbers(c: ContractorView) -> impl IntoView {
    view! {
        <dl class="facts usage-facts">
            <dt>"Today (UTC)"</dt>
            <dd>
                {format!("{} of {} calls ", c.today, c.calls_per_day)}
                <Badge status=c.day_status what=" today" />
            </dd>
            <dt>"Last 7 days"</dt>
            <dd>
                {format!("{} of {} calls ", c.last_7_days, c.calls_per_7_days)}
                <Badge status=c.week_status what=" this week" />
            </dd>
            <dt>"Last 24 hours"</dt>
            <dd>
                {c.last_24_hours}
                {c.share_of_pool.clone().map(|share| format!(" calls, {share} of the org's daily pool"))}
            </dd>
            <dt>"Forecast"</dt>
            <dd>{c.forecast.clone()}</dd>
            <dt>"When the budget is used up"</dt>
            <dd>{format!("{}; warning at {}%", c.hard_action, c.warn_percent)}</dd>
            <dt>"Data age"</dt>
            <dd class="data-age">{c.data_age.clone()}</dd>
        </dl>
    }
}

#[component]
pub fn UsagePage() -> impl IntoView {
    let collect = ServerAction::<CollectUsageNow>::new();
    let lift = ServerAction::<LiftSuspension>::new();
    let dashboard = Resource::new(
        move || (collect.version().get(), lift.version().get()),
        |_| load_for(approver_or_owner, usage_dashboard()),
    );
    view! {
        <Title text="API usage" />
        <h1>"API usage"</h1>
        <RequireRole allow=approver_or_owner>
            <AdminNav />
            <p class="lead">
                "Each contractor's API calls, read from the org's ApiTotalUsage event log files, against the budget its approver set. Salesforce limits only the whole org; Portcullis watches each contractor."
            </p>
            <ActionForm action=collect attr:aria-label="Collect usage now" attr:class="inline-actions">
                <button type="submit" disabled=move || collect.pending().get()>"Collect usage now"</button>
            </ActionForm>
            {move || collect.value().get().map(|result| match result {
                Ok(message) => view! { <p class="notice" role="status">{message}</p> }.into_any(),
                Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
            })}
            {move || lift.value().get().map(|result| match result {
                Ok(GrantActionResult::Done(m)) => view! { <p class="notice" role="status">{m}</p> }.into_any(),
                Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
            })}
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || dashboard.get().map(|result| match result {
                    Ok(Some(d)) => view! { <Dashboard d lift /> }.into_any(),
                    Ok(None) => ().into_any(),
                    Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
                })}
            </Transition>
        </RequireRole>
    }
}

#[component]
fn Dashboard(d: UsageOverview, lift: ServerAction<LiftSuspension>) -> impl IntoView {
    let collector = d.collector.clone();
    let anomalies = d.anomalies.clone();
    view! {
        <p class="muted">
            {match collector.last_run.clone() {
                Some(at) => view! { "Usage last collected " <Time at /> {format!("; {} files read so far.", collector.files_read)} }.into_any(),
                None => "Usage has not been collected yet.".into_any(),
            }}
        </p>
        {collector.last_error.clone().map(|e| view! { <p class="notice error" role="alert">{format!("The last collection had a problem: {e}")}</p> })}
        <p class="muted data-age">{collector.data_age.clone()}</p>
        {(collector.rows_skipped > 0).then(|| view! {
            <p class="notice" role="status">{format!(
                "{} malformed row(s) in the usage files were skipped (not counted); the rest of each file was.",
                collector.rows_skipped
            )}</p>
        })}
        <section aria-labelledby="pool-heading">
            <h2 id="pool-heading">"The org's daily pool"</h2>
            {match d.pool.clone() {
                Some(pool) => view! {
                    <p>
                        {match (pool.max, pool.remaining) {
                            (Some(max), Some(remaining)) => format!(
                                "DailyApiRequests: {} of {max} used in the last 24 hours ({remaining} left), as the org said at ",
                                max - remaining
                            ),
                            _ => "The org did not report DailyApiRequests at ".to_string(),
                        }}
                        <Time at=pool.at absolute_first=true />
                        "."
                    </p>
                }.into_any(),
                None => view! { <p>"Not read from the org yet."</p> }.into_any(),
            }}
        </section>
        <section aria-labelledby="contractors-heading">
            <h2 id="contractors-heading">"Contractors"</h2>
            {if d.contractors.is_empty() {
                view! { <p>"No contractor has a working grant yet."</p> }.into_any()
            } else {
                d.contractors.into_iter().map(|c| view! { <Contractor c lift /> }).collect_view().into_any()
            }}
        </section>
        <UsageAnomalies items=anomalies />
        <section aria-labelledby="top-heading">
            <h2 id="top-heading">"Top consumers (last 24 hours)"</h2>
            {if d.top.is_empty() {
                view! { <p>"No calls recorded in the last 24 hours."</p> }.into_any()
            } else {
                view! {
                    <table class="data" aria-label="Top consumers" tabindex="0">
                        <thead><tr><th>"User"</th><th>"Contractor"</th><th>"Calls"</th><th>"Share of the daily pool"</th></tr></thead>
                        <tbody>
                            {d.top.into_iter().map(|t| view! {
                                <tr>
                                    <td>{t.user}</td>
                                    <td>{t.company.unwrap_or_else(|| "—".into())}</td>
                                    <td>{t.last_24_hours}</td>
                                    <td>{t.share_of_pool.unwrap_or_else(|| "—".into())}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
        <Licences l=d.licences />
    }
}

#[component]
fn Contractor(c: ContractorView, lift: ServerAction<LiftSuspension>) -> impl IntoView {
    let heading = format!("usage-{}", c.grant_id);
    let labelled_by = heading.clone();
    let over = c.day_status == BudgetStatus::Over || c.week_status == BudgetStatus::Over;
    view! {
        <article class="card usage-card" aria-labelledby=labelled_by>
            <h3 id=heading>
                <a href=format!("/admin/requests/{}", c.request_id)>{c.company.clone()}</a>
                " "
                {over.then(|| view! { <span class="budget-badge over">"Over budget"</span> })}
                {c.suspended.then(|| view! { <span class="budget-badge suspended">{if c.frozen { "Suspended (frozen in Salesforce)" } else { "Suspended (freeze pending)" }}</span> })}
            </h3>
            <Numbers c=c.clone() />
            <UsageChart company=c.company.clone() days=c.days.clone() budget=c.calls_per_day warn_at=c.warn_at />
            {c.suspended.then(|| view! {
                <ActionForm action=lift attr:aria-label=format!("Lift the suspension of {}", c.company) attr:class="stacked-form">
                    <input type="hidden" name="id" value=c.request_id.clone() />
                    <label for=format!("lift-reason-{}", c.grant_id)>"Reason for lifting the suspension"</label>
                    <textarea id=format!("lift-reason-{}", c.grant_id) name="reason" rows="2" required></textarea>
                    <button type="submit" class="primary" disabled=move || lift.pending().get()>"Lift the suspension"</button>
                </ActionForm>
            })}
        </article>
    }
}

#[component]
fn Licences(l: LicenceView) -> impl IntoView {
    view! {
        <section aria-labelledby="licences-heading">
            <h2 id="licences-heading">"Salesforce Integration licences"</h2>
            <dl class="facts" aria-label="Licences and cost">
                <dt>"Used"</dt>
                <dd>{match (l.used, l.total) {
                    (Some(used), Some(total)) => format!("{used} of {total}"),
                    _ => "not read from the org yet".to_string(),
                }}</dd>
                <dt>"Made by Portcullis"</dt>
                <dd>{l.by_portcullis}</dd>
                <dt>"Included"</dt>
                <dd>{format!("{} at no cost", l.included)}</dd>
                <dt>"Monthly cost beyond them"</dt>
                <dd>{format!("{} ({} licence{} × {})", l.monthly_cost, l.billable, if l.billable == 1 { "" } else { "s" }, l.price)}</dd>
                <dt>"Given back by ending access"</dt>
                <dd>{l.freed_total}</dd>
            </dl>
            {(!l.freed.is_empty()).then(|| view! {
                <table class="data" aria-label="Licences given back">
                    <thead><tr><th>"Grant"</th><th>"Ended"</th><th>"On"</th></tr></thead>
                    <tbody>
                        {l.freed.iter().map(|f| view! {
                            <tr>
                                <td><a href=format!("/admin/requests/{}", f.request_id)>{f.company.clone()}</a></td>
                                <td>{if f.state == shared::GrantState::Expired { "Expired" } else { "Revoked" }}</td>
                                <td><Time at=f.at.clone() /></td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            })}
        </section>
    }
}

/// The contractor's own usage, through their status link.
#[component]
pub fn MyUsagePage() -> impl IntoView {
    let params = use_params_map();
    let token = move || params.read().get("token").unwrap_or_default();
    let usage = Resource::new(token, |token| async move { my_usage(token).await });
    view! {
        <Title text="Your API usage" />
        <Meta name="referrer" content="no-referrer" />
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || usage.get().map(|result| match result {
                Ok(Some(OwnUsage::Usage(c))) => view! { <MyUsageView c=*c token=token() /> }.into_any(),
                Ok(Some(OwnUsage::NotYet { company })) => view! {
                    <h1>{format!("{company}'s API usage")}</h1>
                    <p>"Your access is not set up yet: usage appears here once it is."</p>
                    <p><a href=format!("/status/{}", token())>"Back to your request"</a></p>
                }.into_any(),
                Ok(None) => view! {
                    <h1>"Usage not found"</h1>
                    <p class="notice error" role="alert">"This link is not valid. Use the status link from your confirmation email."</p>
                }.into_any(),
                Err(e) => view! { <h1>"Your API usage"</h1><p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
            })}
        </Suspense>
    }
}

#[component]
fn MyUsageView(c: ContractorView, token: String) -> impl IntoView {
    let throttled = if c.suspended {
        "Yes: your calls are refused (the integration user is suspended) until an approver lifts the suspension."
    } else if c.day_status == BudgetStatus::Over || c.week_status == BudgetStatus::Over {
        "Not yet, but your budget is used up: tell the company's approver if the work needs more."
    } else {
        "No."
    };
    let over = c.day_status == BudgetStatus::Over || c.week_status == BudgetStatus::Over;
    view! {
        <h1>{format!("{}'s API usage", c.company)}</h1>
        {over.then(|| view! { <p class="notice error" role="alert"><strong class="budget-badge over">"Over budget"</strong>" Your calls have used up the budget."</p> })}
        <dl class="facts">
            <dt>"Throttled"</dt>
            <dd>{throttled}</dd>
        </dl>
        <Numbers c=c.clone() />
        <UsageChart company=c.company.clone() days=c.days.clone() budget=c.calls_per_day warn_at=c.warn_at />
        <p class="muted">"Counted from the org's usage logs, which arrive with some delay. A composite request counts as one call."</p>
        <p><a href=format!("/status/{token}")>"Back to your request"</a></p>
    }
}
