//! The review dashboard and its decisions: the approvers' queue (filters, counts, keyset
//! paging), everything about one request, and approve / reject with separation of duties.
//! A decision, its request events, audit entries, mail and (on the final approval) the
//! grant are written in one transaction, so none of them exists without the others.

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::FieldErrors;
use shared::auth::SignedInUser;
use shared::budget::{Budget, HardAction};
use shared::fields::{self, Cidr};
use shared::request::RequestState;
use shared::scope::{Level, Scope, ScopeChange, Visibility, VisibilityRule};
use sqlx::any::AnyArguments;
use sqlx::{Any, Row, Transaction};

use crate::Portal;
use crate::audit::{self, Actor, AuditAction, Target};
use crate::clock::now_ms;
use crate::db::DatabaseKind;
use crate::mail::Mail;
use crate::requests::add_event;

/// The page size when a filter does not say, and the most one page may hold.
pub const DEFAULT_QUEUE_LIMIT: i64 = 50;
pub const MAX_QUEUE_LIMIT: i64 = 200;

/// Which requests the queue shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueFilter {
    /// One state only. Without it the queue shows every state except those of requests
    /// that never reached approvers (waiting for email verification, or expired so).
    pub state: Option<RequestState>,
    /// Part of the company name, any case.
    pub company: Option<String>,
    /// Requests at least this old (hours since submission). Negative values count as 0.
    pub min_age_hours: Option<i64>,
    /// Requests at most this old.
    pub max_age_hours: Option<i64>,
    /// Page size, clamped to 1..=200.
    pub limit: i64,
    /// Where the page starts: [`QueueView::next_cursor`] of the page before. A cursor that
    /// cannot be read starts from the beginning.
    pub before: Option<String>,
}

impl Default for QueueFilter {
    fn default() -> Self {
        Self {
            state: None,
            company: None,
            min_age_hours: None,
            max_age_hours: None,
            limit: DEFAULT_QUEUE_LIMIT,
            before: None,
        }
    }
}

/// One row of the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueItem {
    pub id: String,
    pub company: String,
    pub contact_name: String,
    pub contact_email: String,
    pub state: RequestState,
    pub created_at: i64,
    pub risky: bool,
    pub approvals_required: i64,
    /// Approvals recorded so far.
    pub approvals: i64,
    pub end_date: String,
    pub calls_per_day: i64,
}

/// A page of the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueView {
    pub items: Vec<QueueItem>,
    /// Every state (in [`RequestState::ALL`] order) with the number of requests in it that
    /// match the company and age filters; the state filter is not applied, so the counts
    /// work as tabs.
    pub counts: Vec<(RequestState, i64)>,
    /// Pass as [`QueueFilter::before`] for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Everything about one request, for the review page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestDetail {
    pub id: String,
    pub company: String,
    pub contact_name: String,
    pub contact_email: String,
    pub justification: String,
    pub state: RequestState,
    /// What the contractor asked for.
    pub scope: Scope,
    pub calls_per_day: i64,
    pub ip_ranges: Vec<String>,
    pub end_date: String,
    pub created_at: i64,
    pub verified_at: Option<i64>,
    pub risky: bool,
    pub risks: Vec<String>,
    pub approvals_required: i64,
    pub decisions: Vec<DecisionView>,
    /// The whole history, including internal events the contractor never sees.
    pub events: Vec<EventView>,
    pub grant_id: Option<String>,
}

/// One approver's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionView {
    /// The approver's Salesforce username.
    pub approver: String,
    /// `approved` or `rejected`.
    pub decision: String,
    pub reason: String,
    pub at: i64,
    /// How the approved scope differs from the requested one (empty for rejections).
    pub scope_changes: Vec<ScopeChange>,
    /// What this approver approved (None for rejections), so a second approver can start
    /// from it: the scope, budget, end date and IP ranges.
    pub scope: Option<Scope>,
    pub budget: Option<Budget>,
    pub end_date: Option<String>,
    pub ip_ranges: Vec<String>,
}

/// One entry of a request's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    pub at: i64,
    /// `submitted`, `verified`, `approval_recorded`, `approved`, `rejected`, `decision` ...
    pub kind: String,
    pub message: String,
    pub visible_to_contractor: bool,
}

/// What an approver grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalInput {
    pub scope: Scope,
    pub budget: Budget,
    /// `YYYY-MM-DD`, in the future and within the `max_end_days` setting.
    pub end_date: String,
    /// CIDR ranges, one per line or comma-separated; empty means any address.
    pub ip_ranges: String,
    /// Why (3 to 1000 characters); kept with the decision and in the audit log.
    pub reason: String,
}

/// What a decision led to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DecisionOutcome {
    /// An approval was recorded; more are needed.
    Recorded {
        approvals: i64,
        required: i64,
    },
    /// The request is approved and became this grant.
    Approved {
        grant_id: String,
    },
    Rejected,
}

#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    #[error("there is no such request")]
    NotFound,
    #[error("this request is {} and can no longer be approved or rejected", .0.label())]
    NotAwaitingDecision(RequestState),
    #[error(
        "you have already decided on this request; another approval must come from a different approver"
    )]
    AlreadyDecided,
    #[error("{0}")]
    Invalid(FieldErrors),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Checks the shape of a scope an approver or the catalog hands in: something is granted,
/// names are plain Salesforce names, and the visibility rule has what it needs. Whether the
/// objects and fields exist in the org is the blast-radius preview's and the catalog's job.
pub(crate) fn scope_problems(scope: &Scope) -> FieldErrors {
    let mut errors = FieldErrors::default();
    if scope.is_empty() {
        errors.add("scope", "Grant at least one object.");
    }
    let mut seen = BTreeSet::new();
    for object in &scope.objects {
        if !is_api_name(&object.object) {
            errors.add(
                "scope",
                format!("'{}' is not a Salesforce object name.", object.object),
            );
            continue;
        }
        if !seen.insert(object.object.to_ascii_lowercase()) {
            errors.add(
                "scope",
                format!("{} is listed more than once.", object.object),
            );
        }
        let mut fields_seen = BTreeSet::new();
        for field in object.fields.keys() {
            if !fields_seen.insert(field.to_ascii_lowercase()) {
                errors.add(
                    "scope",
                    format!("{}.{field} is listed more than once.", object.object),
                );
            }
            if !is_api_name(field) {
                errors.add(
                    "scope",
                    format!(
                        "'{}.{field}' is not a Salesforce field name.",
                        object.object
                    ),
                );
            }
        }
    }
    let visibility = &scope.visibility;
    match visibility.rule {
        VisibilityRule::Group => {
            if visibility
                .group
                .as_deref()
                .is_none_or(|g| g.trim().is_empty())
            {
                errors.add(
                    "visibility",
                    "Name the public group whose records the contractor sees.",
                );
            }
        }
        VisibilityRule::Owned | VisibilityRule::Shared => {
            let bad: Vec<&str> = visibility
                .record_ids
                .iter()
                .map(String::as_str)
                .filter(|id| salesforce::SalesforceId::parse(id.trim()).is_err())
                .collect();
            if !bad.is_empty() {
                errors.add(
                    "visibility",
                    format!("Not Salesforce record ids: {}.", bad.join(", ")),
                );
            }
            if visibility.record_ids.len() > 2000 {
                errors.add("visibility", "Choose at most 2000 records.");
            }
        }
    }
    errors
}

/// `Case`, `Subject`, `Custom_Field__c`: a letter, then letters, digits and underscores.
pub(crate) fn is_api_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 80
}

/// How `granted` differs from `requested`: the object and field levels of
/// [`Scope::diff`], plus View All / Modify All, which the flat diff does not carry; they
/// appear as `Case: View All` (granted as read) and `Case: Modify All` (granted as edit).
pub fn scope_changes(requested: &Scope, granted: &Scope) -> Vec<ScopeChange> {
    let mut changes = requested.diff(granted);
    let flag = |scope: &Scope, object: &str, which: &str| {
        scope.object(object).is_some_and(|o| match which {
            "View All" => o.view_all,
            _ => o.modify_all,
        })
    };
    let mut objects: Vec<&str> = requested
        .objects
        .iter()
        .chain(&granted.objects)
        .map(|o| o.object.as_str())
        .collect();
    objects.sort_unstable_by_key(|o| o.to_ascii_lowercase());
    objects.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    for object in objects {
        for (which, level) in [("View All", Level::Read), ("Modify All", Level::Edit)] {
            let asked = flag(requested, object, which);
            let given = flag(granted, object, which);
            if asked != given {
                changes.push(ScopeChange {
                    item: format!("{object}: {which}"),
                    requested: asked.then_some(level),
                    granted: given.then_some(level),
                });
            }
        }
    }
    changes
}

/// Whether `granted` may show records `requested` would not: another rule or group, or
/// chosen records that were not asked for. (Dropping records is narrowing.)
fn visibility_widens(requested: &Visibility, granted: &Visibility) -> bool {
    requested.rule != granted.rule
        || (granted.rule == VisibilityRule::Group && requested.group != granted.group)
        || granted
            .record_ids
            .iter()
            .any(|id| !requested.record_ids.contains(id))
}

/// Where `granted` gives more access than `approved`: widening scope changes and records
/// `approved` did not show.
fn scope_widenings(approved: &Scope, granted: &Scope) -> Vec<String> {
    let mut out: Vec<String> = scope_changes(approved, granted)
        .iter()
        .filter(|c| c.is_widening())
        .map(|c| {
            format!(
                "access: {} ({} instead of {})",
                c.item,
                c.granted.map_or("none", Level::as_str),
                c.requested.map_or("none", Level::as_str)
            )
        })
        .collect();
    if visibility_widens(&approved.visibility, &granted.visibility) {
        out.push(format!(
            "records: {} instead of {}",
            granted.visibility.rule.describe(),
            approved.visibility.rule.describe()
        ));
    }
    out
}

/// Whether an earlier approval of `approved` covers the scope `granted` gives.
#[cfg(test)]
fn covers(approved: &Scope, granted: &Scope) -> bool {
    scope_widenings(approved, granted).is_empty()
}

/// Everything a decision grants (or a request asks for), field by field.
struct Terms {
    scope: Scope,
    budget: Budget,
    end_date: NaiveDate,
    /// Empty: any address.
    ip_ranges: Vec<Cidr>,
}

impl Terms {
    /// An approval as stored in `decisions`; `None` when a part cannot be read (such an
    /// approval covers nothing).
    fn stored(
        scope: Option<&str>,
        budget: Option<&str>,
        end_date: Option<&str>,
        ip_ranges: Option<&str>,
    ) -> Option<Terms> {
        let scope: Scope = serde_json::from_str(scope?).ok()?;
        let budget: Budget = serde_json::from_str(budget?).ok()?;
        let end_date = NaiveDate::parse_from_str(end_date?, "%Y-%m-%d").ok()?;
        let ranges: Vec<String> = serde_json::from_str(ip_ranges?).ok()?;
        let ip_ranges = ranges
            .iter()
            .map(|r| Cidr::parse(r).ok())
            .collect::<Option<Vec<_>>>()?;
        Some(Terms {
            scope,
            budget,
            end_date,
            ip_ranges,
        })
    }

    /// What the contractor asked for: their scope, calls per day (with the budget the
    /// decision form starts from: 7 days' worth a week, a warning at 80%, alerts only),
    /// end date and IP ranges.
    fn requested(pending: &Pending) -> Option<Terms> {
        let calls = u64::try_from(pending.calls_per_day).unwrap_or(1).max(1);
        let ranges: Vec<String> = serde_json::from_str(&pending.ip_ranges).ok()?;
        Terms::stored(
            Some(&to_json(&pending.scope)),
            Some(&to_json(&Budget::default_for(calls))),
            Some(&pending.end_date),
            Some(&to_json(&ranges)),
        )
    }
}

fn ranges_text(ranges: &[Cidr]) -> String {
    if ranges.is_empty() {
        "any address".into()
    } else {
        ranges
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Where `later` gives more than `earlier`, in words; empty when `earlier` covers all of
/// it. Every field counts: the scope and records, calls per day and per 7 days, the warning
/// percentage (a later warning is less warning), the over-budget action (alert only is less
/// than freeze), the end date, and the IP ranges (each of `later`'s inside `earlier`'s;
/// none means any address, the widest).
///
/// When a request needs two approvals, each approval counted must cover all of the final
/// grant: a second approver who widens anything the first approved does not get the first
/// approval counted, and a third person must agree. Narrowing is always fine: the grant
/// takes the last approver's values (see [`Portal::approve`]).
fn widenings(earlier: &Terms, later: &Terms) -> Vec<String> {
    let mut out = scope_widenings(&earlier.scope, &later.scope);
    let (was, now) = (&earlier.budget, &later.budget);
    if now.calls_per_day > was.calls_per_day {
        out.push(format!(
            "calls per day: {} instead of {}",
            now.calls_per_day, was.calls_per_day
        ));
    }
    if now.calls_per_7_days > was.calls_per_7_days {
        out.push(format!(
            "calls per 7 days: {} instead of {}",
            now.calls_per_7_days, was.calls_per_7_days
        ));
    }
    if now.warn_percent > was.warn_percent {
        out.push(format!(
            "warning at {}% instead of {}%",
            now.warn_percent, was.warn_percent
        ));
    }
    if was.hard_action == HardAction::Freeze && now.hard_action != HardAction::Freeze {
        out.push(format!(
            "over budget: {} instead of {}",
            now.hard_action.label(),
            was.hard_action.label()
        ));
    }
    if later.end_date > earlier.end_date {
        out.push(format!(
            "end date: {} instead of {}",
            later.end_date, earlier.end_date
        ));
    }
    if !earlier.ip_ranges.is_empty() {
        let outside: Vec<&Cidr> = if later.ip_ranges.is_empty() {
            Vec::new()
        } else {
            later
                .ip_ranges
                .iter()
                .filter(|r| !r.covered_by(&earlier.ip_ranges))
                .collect()
        };
        if later.ip_ranges.is_empty() || !outside.is_empty() {
            out.push(format!(
                "IP ranges: {} not within {}",
                if outside.is_empty() {
                    "any address".to_string()
                } else {
                    outside
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                },
                ranges_text(&earlier.ip_ranges)
            ));
        }
    }
    out
}

/// A validated approval.
struct Approval {
    scope: Scope,
    budget: Budget,
    end_date: NaiveDate,
    ip_ranges: Vec<Cidr>,
    reason: String,
}

fn validate_approval(
    input: ApprovalInput,
    today: NaiveDate,
    max_end_days: i64,
) -> Result<Approval, FieldErrors> {
    let mut errors = scope_problems(&input.scope);
    errors.0.extend(input.budget.problems().0);
    let end_date = errors.check(
        "end_date",
        fields::end_date(&input.end_date, today, max_end_days),
    );
    let ip_ranges = errors.check("ip_ranges", fields::cidr_list(&input.ip_ranges));
    let reason = errors.check("reason", reason(&input.reason));
    match (end_date, ip_ranges, reason) {
        (Some(end_date), Some(ip_ranges), Some(reason)) if errors.is_empty() => Ok(Approval {
            scope: input.scope,
            budget: input.budget,
            end_date,
            ip_ranges,
            reason,
        }),
        _ => Err(errors),
    }
}

fn reason(raw: &str) -> Result<String, String> {
    if raw.trim().is_empty() {
        return Err("Give a reason for the decision.".into());
    }
    fields::paragraph(raw, "reason", 3, 1000)
}

/// The name decisions are recorded under: one per person, whatever the case they typed.
fn approver_key(approver: &SignedInUser) -> Result<String, DecisionError> {
    let key = approver.username.trim().to_ascii_lowercase();
    if key.is_empty() {
        let mut errors = FieldErrors::default();
        errors.add(
            "approver",
            "Sign in again: your Salesforce username is unknown.",
        );
        return Err(DecisionError::Invalid(errors));
    }
    Ok(key)
}

/// The request row a decision works on.
struct Pending {
    state: RequestState,
    company: String,
    contact_email: String,
    scope: Scope,
    approvals_required: i64,
    calls_per_day: i64,
    /// JSON, as stored.
    ip_ranges: String,
    end_date: String,
}

fn cursor_encode(created_at: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{created_at}:{id}"))
}

fn cursor_decode(cursor: &str) -> Option<(i64, String)> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (at, id) = text.split_once(':')?;
    Some((at.parse().ok()?, id.to_string()))
}

/// `%` and `_` in the user's text match themselves in `LIKE ... ESCAPE '\'`.
fn like_contains(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// A WHERE clause built from optional filters, with its arguments in placeholder order.
#[derive(Default)]
struct Conditions {
    clauses: Vec<String>,
    args: Vec<Arg>,
}

enum Arg {
    Text(String),
    Int(i64),
}

impl Conditions {
    /// Adds an argument and returns its placeholder number.
    fn arg(&mut self, arg: Arg) -> usize {
        self.args.push(arg);
        self.args.len()
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }

    fn bind<'q>(
        &self,
        mut query: sqlx::query::Query<'q, Any, AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, Any, AnyArguments<'q>> {
        for arg in &self.args {
            query = match arg {
                Arg::Text(text) => query.bind(text.clone()),
                Arg::Int(value) => query.bind(*value),
            };
        }
        query
    }
}

fn parse_state(raw: &str) -> RequestState {
    // States are only written from RequestState::as_str; an unknown one would be a newer
    // portal's state, shown as waiting rather than failing the whole page.
    RequestState::parse(raw).unwrap_or(RequestState::Submitted)
}

/// A stored scope (an unreadable one as no access at all).
pub fn parse_scope(raw: &str) -> Scope {
    serde_json::from_str(raw).unwrap_or_else(|_| Scope {
        objects: Vec::new(),
        visibility: Visibility {
            rule: VisibilityRule::Owned,
            record_ids: Vec::new(),
            group: None,
        },
        packages: Vec::new(),
    })
}

fn access_lines(scope: &Scope) -> String {
    scope
        .items()
        .into_iter()
        .map(|(item, level)| format!("    {item}: {}", level.as_str()))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Portal {
    /// The approvers' queue: newest first, one page at a time.
    pub async fn queue(&self, filter: &QueueFilter) -> Result<QueueView, sqlx::Error> {
        let now = now_ms();
        let mut conditions = Conditions::default();
        if let Some(company) = filter
            .company
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            let n = conditions.arg(Arg::Text(like_contains(company)));
            conditions
                .clauses
                .push(format!("LOWER(company) LIKE LOWER(${n}) ESCAPE '\\'"));
        }
        if let Some(hours) = filter.min_age_hours {
            let n = conditions.arg(Arg::Int(
                now.saturating_sub(hours.max(0).saturating_mul(3_600_000)),
            ));
            conditions.clauses.push(format!("created_at <= ${n}"));
        }
        if let Some(hours) = filter.max_age_hours {
            let n = conditions.arg(Arg::Int(
                now.saturating_sub(hours.max(0).saturating_mul(3_600_000)),
            ));
            conditions.clauses.push(format!("created_at >= ${n}"));
        }

        let count_rows = conditions
            .bind(sqlx::query(&format!(
                "SELECT state, COUNT(*) AS n FROM access_requests{} GROUP BY state",
                conditions.sql()
            )))
            .fetch_all(self.db.pool())
            .await?;
        let mut counts: Vec<(RequestState, i64)> =
            RequestState::ALL.iter().map(|s| (*s, 0)).collect();
        for row in &count_rows {
            let state: String = row.try_get("state")?;
            let n: i64 = row.try_get("n")?;
            if let Some(entry) = counts.iter_mut().find(|(s, _)| s.as_str() == state) {
                entry.1 += n;
            }
        }

        match filter.state {
            Some(state) => {
                let n = conditions.arg(Arg::Text(state.as_str().into()));
                conditions.clauses.push(format!("state = ${n}"));
            }
            None => {
                // Unverified requests never reach approvers, unless asked for by name.
                let a =
                    conditions.arg(Arg::Text(RequestState::PendingVerification.as_str().into()));
                let b = conditions.arg(Arg::Text(RequestState::Expired.as_str().into()));
                conditions
                    .clauses
                    .push(format!("state NOT IN (${a}, ${b})"));
            }
        }
        if let Some((at, id)) = filter.before.as_deref().and_then(cursor_decode) {
            let a = conditions.arg(Arg::Int(at));
            let b = conditions.arg(Arg::Text(id));
            conditions.clauses.push(format!(
                "(created_at < ${a} OR (created_at = ${a} AND id < ${b}))"
            ));
        }
        let limit = filter.limit.clamp(1, MAX_QUEUE_LIMIT);
        let rows = conditions
            .bind(sqlx::query(&format!(
                "SELECT id, company, contact_name, contact_email, state, created_at, \
                 CASE WHEN risky THEN 1 ELSE 0 END AS risky, approvals_required, end_date, calls_per_day, \
                 (SELECT COUNT(*) FROM decisions d WHERE d.request_id = access_requests.id AND d.decision = 'approved') AS approvals \
                 FROM access_requests{} ORDER BY created_at DESC, id DESC LIMIT {}",
                conditions.sql(),
                limit + 1
            )))
            .fetch_all(self.db.pool())
            .await?;
        let mut items = rows
            .iter()
            .map(|row| {
                Ok(QueueItem {
                    id: row.try_get("id")?,
                    company: row.try_get("company")?,
                    contact_name: row.try_get("contact_name")?,
                    contact_email: row.try_get("contact_email")?,
                    state: parse_state(&row.try_get::<String, _>("state")?),
                    created_at: row.try_get("created_at")?,
                    risky: row.try_get::<i64, _>("risky")? != 0,
                    approvals_required: row.try_get("approvals_required")?,
                    approvals: row.try_get("approvals")?,
                    end_date: row.try_get("end_date")?,
                    calls_per_day: row.try_get("calls_per_day")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let next_cursor = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items
                .last()
                .map(|last| cursor_encode(last.created_at, &last.id))
        } else {
            None
        };
        Ok(QueueView {
            items,
            counts,
            next_cursor,
        })
    }

    /// Everything about one request, for the review page.
    pub async fn request_detail(&self, id: &str) -> Result<Option<RequestDetail>, sqlx::Error> {
        let Some(row) = sqlx::query(
            "SELECT id, company, contact_name, contact_email, justification, state, scope, calls_per_day, \
             ip_ranges, end_date, created_at, verified_at, CASE WHEN risky THEN 1 ELSE 0 END AS risky, \
             approvals_required FROM access_requests WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?
        else {
            return Ok(None);
        };
        let scope = parse_scope(&row.try_get::<String, _>("scope")?);
        let decisions = sqlx::query(
            "SELECT approver, decision, reason, at, scope, budget, end_date, ip_ranges FROM decisions \
             WHERE request_id = $1 ORDER BY at, id",
        )
        .bind(id)
        .fetch_all(self.db.pool())
        .await?
        .iter()
        .map(|d| {
            let granted = d
                .try_get::<Option<String>, _>("scope")?
                .map(|g| parse_scope(&g));
            Ok(DecisionView {
                approver: d.try_get("approver")?,
                decision: d.try_get("decision")?,
                reason: d.try_get("reason")?,
                at: d.try_get("at")?,
                scope_changes: granted
                    .as_ref()
                    .map(|g| scope_changes(&scope, g))
                    .unwrap_or_default(),
                scope: granted,
                budget: d
                    .try_get::<Option<String>, _>("budget")?
                    .and_then(|b| serde_json::from_str(&b).ok()),
                end_date: d.try_get("end_date")?,
                ip_ranges: d
                    .try_get::<Option<String>, _>("ip_ranges")?
                    .and_then(|r| serde_json::from_str(&r).ok())
                    .unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let events = sqlx::query(
            "SELECT at, kind, message, CASE WHEN visible_to_contractor THEN 1 ELSE 0 END AS visible \
             FROM request_events WHERE request_id = $1 ORDER BY at, id",
        )
        .bind(id)
        .fetch_all(self.db.pool())
        .await?
        .iter()
        .map(|e| {
            Ok(EventView {
                at: e.try_get("at")?,
                kind: e.try_get("kind")?,
                message: e.try_get("message")?,
                visible_to_contractor: e.try_get::<i64, _>("visible")? != 0,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let grant_id: Option<String> =
            sqlx::query_scalar("SELECT id FROM grants WHERE request_id = $1")
                .bind(id)
                .fetch_optional(self.db.pool())
                .await?;
        let ip_ranges: Vec<String> =
            serde_json::from_str(&row.try_get::<String, _>("ip_ranges")?).unwrap_or_default();
        Ok(Some(RequestDetail {
            id: row.try_get("id")?,
            company: row.try_get("company")?,
            contact_name: row.try_get("contact_name")?,
            contact_email: row.try_get("contact_email")?,
            justification: row.try_get("justification")?,
            state: parse_state(&row.try_get::<String, _>("state")?),
            risks: scope.risks(),
            scope,
            calls_per_day: row.try_get("calls_per_day")?,
            ip_ranges,
            end_date: row.try_get("end_date")?,
            created_at: row.try_get("created_at")?,
            verified_at: row.try_get("verified_at")?,
            risky: row.try_get::<i64, _>("risky")? != 0,
            approvals_required: row.try_get("approvals_required")?,
            decisions,
            events,
            grant_id,
        }))
    }

    /// Loads the request for a decision, locking its row on PostgreSQL (SQLite's write
    /// transaction already excludes other writers), so two decisions on one request happen
    /// one after the other.
    async fn pending_for_decision(
        &self,
        tx: &mut Transaction<'static, Any>,
        id: &str,
    ) -> Result<Option<Pending>, sqlx::Error> {
        let lock = match self.db.kind() {
            DatabaseKind::Postgres => " FOR UPDATE",
            DatabaseKind::Sqlite => "",
        };
        let Some(row) = sqlx::query(&format!(
            "SELECT state, company, contact_email, scope, approvals_required, calls_per_day, ip_ranges, end_date \
             FROM access_requests WHERE id = $1{lock}"
        ))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        else {
            return Ok(None);
        };
        // Strict here (unlike the pages): a state this portal does not know is never
        // taken for one that can be decided.
        let state: String = row.try_get("state")?;
        let state = RequestState::parse(&state).ok_or_else(|| {
            sqlx::Error::Decode(
                format!("access_requests.state has an unknown value '{state}'").into(),
            )
        })?;
        Ok(Some(Pending {
            state,
            company: row.try_get("company")?,
            contact_email: row.try_get("contact_email")?,
            scope: parse_scope(&row.try_get::<String, _>("scope")?),
            approvals_required: row.try_get("approvals_required")?,
            calls_per_day: row.try_get("calls_per_day")?,
            ip_ranges: row.try_get("ip_ranges")?,
            end_date: row.try_get("end_date")?,
        }))
    }

    /// The checks every decision starts with, in this order: the request exists; this
    /// approver has not decided it yet (so a double-clicked button reads "already decided"
    /// even after the first click approved the request); it is waiting for a decision.
    async fn begin_decision(
        &self,
        tx: &mut Transaction<'static, Any>,
        id: &str,
        approver: &str,
    ) -> Result<Pending, DecisionError> {
        let pending = self
            .pending_for_decision(tx, id)
            .await?
            .ok_or(DecisionError::NotFound)?;
        let decided: Option<String> =
            sqlx::query_scalar("SELECT id FROM decisions WHERE request_id = $1 AND approver = $2")
                .bind(id)
                .bind(approver)
                .fetch_optional(&mut **tx)
                .await?;
        if decided.is_some() {
            return Err(DecisionError::AlreadyDecided);
        }
        if pending.state != RequestState::Submitted {
            return Err(DecisionError::NotAwaitingDecision(pending.state));
        }
        Ok(pending)
    }

    /// Approves a request (or records one of the approvals it needs).
    ///
    /// Separation of duties: a request needs the approvals stored with it (the configured
    /// number when it was verified, 2 when its requested scope was risky), and 2 whenever
    /// the scope this approver grants is risky. Each person decides a request once (the
    /// `decisions (request_id, approver)` unique key is the final guard), so the approvals
    /// come from different people. An earlier approval counts only if it covers every field
    /// of this one (see [`widenings`]): scope and records, both budgets, the warning
    /// percentage, the over-budget action, the end date and the IP ranges. The audit entry
    /// lists the approvals that did not count and why (`not_counted`).
    ///
    /// The grant takes the **last** approver's scope, budget, end date and IP ranges: the
    /// final approver saw what the earlier ones decided and is the one who completes it, and
    /// every approval counted covers them. Granting more than was requested is allowed; the
    /// decision records the difference (see [`scope_changes`]), and the audit entry says
    /// `widened: true` and lists every field that is wider than the request (`widenings`).
    /// Record sharing is offered only where the objects' sharing models (read from the org)
    /// allow a manual share: an approval that shares records of a Controlled by Parent or
    /// Public Read/Write object (or Read under Public Read Only) is refused, naming the
    /// object and its model. An org that cannot be read now does not block the approval:
    /// provisioning checks again before it shares.
    async fn check_record_sharing(&self, scope: &Scope) -> Result<(), DecisionError> {
        if scope.visibility.rule != VisibilityRule::Shared {
            return Ok(());
        }
        let sf = &self.salesforce;
        let Ok(objects) =
            crate::sharing_model::objects_of_records(sf, &scope.visibility.record_ids).await
        else {
            return Ok(());
        };
        let objects: Vec<&str> = objects.iter().map(String::as_str).collect();
        match crate::sharing_model::refusals(sf, scope, &objects).await {
            Ok(refusals) if !refusals.is_empty() => {
                let mut errors = FieldErrors::default();
                for refusal in refusals {
                    errors.add("visibility", refusal);
                }
                Err(DecisionError::Invalid(errors))
            }
            _ => Ok(()),
        }
    }

    pub async fn approve(
        &self,
        id: &str,
        approver: &SignedInUser,
        input: ApprovalInput,
        actor: &Actor,
    ) -> Result<DecisionOutcome, DecisionError> {
        let approver_name = approver_key(approver)?;
        let today = chrono::Utc::now().date_naive();
        let max_end_days = self
            .setting_i64("max_end_days")
            .await?
            .unwrap_or(self.settings.max_end_days);
        let approval =
            validate_approval(input, today, max_end_days).map_err(DecisionError::Invalid)?;
        self.check_record_sharing(&approval.scope).await?;
        let mut tx = self.db.begin_write().await?;
        let pending = self.begin_decision(&mut tx.tx, id, &approver_name).await?;

        let earlier = sqlx::query(
            "SELECT approver, scope, budget, end_date, ip_ranges FROM decisions \
             WHERE request_id = $1 AND decision = 'approved' ORDER BY at, id",
        )
        .bind(id)
        .fetch_all(&mut *tx.tx)
        .await?;
        let risks = approval.scope.risks();
        let required = if risks.is_empty() {
            pending.approvals_required.max(1)
        } else {
            pending.approvals_required.max(2)
        };
        let granted = Terms {
            scope: approval.scope.clone(),
            budget: approval.budget.clone(),
            end_date: approval.end_date,
            ip_ranges: approval.ip_ranges.clone(),
        };
        // An earlier approval counts only if it covers every field of this grant.
        let mut vouching = 0i64;
        let mut not_counted = Vec::new();
        for row in &earlier {
            let terms = Terms::stored(
                row.try_get::<Option<String>, _>("scope")?.as_deref(),
                row.try_get::<Option<String>, _>("budget")?.as_deref(),
                row.try_get::<Option<String>, _>("end_date")?.as_deref(),
                row.try_get::<Option<String>, _>("ip_ranges")?.as_deref(),
            );
            let wider = match &terms {
                Some(terms) => widenings(terms, &granted),
                None => vec!["its recorded terms could not be read".to_string()],
            };
            if wider.is_empty() {
                vouching += 1;
            } else {
                not_counted.push(json!({
                    "approver": row.try_get::<String, _>("approver")?,
                    "wider_in": wider,
                }));
            }
        }
        let approvals = 1 + vouching;
        let changes = scope_changes(&pending.scope, &approval.scope);
        let visibility_changed = pending.scope.visibility != approval.scope.visibility;
        let wider_than_requested = match Terms::requested(&pending) {
            Some(requested) => widenings(&requested, &granted),
            None => vec!["the request's terms could not be read".to_string()],
        };
        let widened = !wider_than_requested.is_empty();
        let ip_ranges: Vec<String> = approval.ip_ranges.iter().map(ToString::to_string).collect();
        let now = now_ms();

        let inserted = sqlx::query(
            "INSERT INTO decisions (id, request_id, approver, decision, reason, scope, budget, end_date, ip_ranges, at) \
             VALUES ($1, $2, $3, 'approved', $4, $5, $6, $7, $8, $9)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(id)
        .bind(&approver_name)
        .bind(&approval.reason)
        .bind(to_json(&approval.scope))
        .bind(to_json(&approval.budget))
        .bind(approval.end_date.to_string())
        .bind(to_json(&ip_ranges))
        .bind(now)
        .execute(&mut *tx.tx)
        .await;
        already_decided_on_conflict(inserted)?;

        let details = json!({
            "approver": approver_name,
            "reason": approval.reason,
            "scope": approval.scope.items(),
            "scope_changes": changes,
            "widened": widened,
            "widenings": wider_than_requested,
            "not_counted": not_counted,
            "visibility": {
                "requested": pending.scope.visibility,
                "approved": approval.scope.visibility,
                "changed": visibility_changed,
            },
            "budget": approval.budget,
            "end_date": approval.end_date.to_string(),
            "ip_ranges": ip_ranges,
            "risks": risks,
            "approvals": approvals,
            "required": required,
        });
        add_event(
            &mut tx.tx,
            id,
            "decision",
            &format!(
                "Approved by {} ({approvals} of {required} approvals){}: {}",
                approver_display(approver, &approver_name),
                if widened {
                    "; wider than requested"
                } else {
                    ""
                },
                approval.reason
            ),
            false,
        )
        .await?;

        if approvals < required {
            // Keep what this request now needs with it, so the queue shows it.
            sqlx::query(
                "UPDATE access_requests SET approvals_required = $1, updated_at = $2 WHERE id = $3",
            )
            .bind(required)
            .bind(now)
            .bind(id)
            .execute(&mut *tx.tx)
            .await?;
            add_event(
                &mut tx.tx,
                id,
                "approval_recorded",
                "One approval recorded; waiting for a second approver.",
                true,
            )
            .await?;
            audit::record(
                &mut tx.tx,
                actor,
                AuditAction::RequestApprovalRecorded,
                Target::Request,
                id,
                details,
            )
            .await?;
            tx.commit().await?;
            return Ok(DecisionOutcome::Recorded {
                approvals,
                required,
            });
        }

        let updated = sqlx::query(
            "UPDATE access_requests SET state = $1, approvals_required = $2, updated_at = $3 WHERE id = $4 AND state = $5",
        )
        .bind(RequestState::Approved.as_str())
        .bind(required)
        .bind(now)
        .bind(id)
        .bind(RequestState::Submitted.as_str())
        .execute(&mut *tx.tx)
        .await?;
        if updated.rows_affected() != 1 {
            // The row lock makes this unreachable; refuse rather than grant twice.
            return Err(DecisionError::NotAwaitingDecision(RequestState::Approved));
        }
        let grant_id = uuid::Uuid::now_v7().to_string();
        sqlx::query(
            "INSERT INTO grants (id, request_id, state, company, contact_email, scope, budget, end_date, ip_ranges, created_at, updated_at) \
             VALUES ($1, $2, $10, $3, $4, $5, $6, $7, $8, $9, $9)",
        )
        .bind(&grant_id)
        .bind(id)
        .bind(&pending.company)
        .bind(&pending.contact_email)
        .bind(to_json(&approval.scope))
        .bind(to_json(&approval.budget))
        .bind(approval.end_date.to_string())
        .bind(to_json(&ip_ranges))
        .bind(now)
        .bind(shared::GrantState::Approved.as_str())
        .execute(&mut *tx.tx)
        .await?;
        // The provisioning run is planned with the grant, so an approval is never left
        // without one.
        crate::provisioning::plan(&mut tx.tx, &grant_id, now).await?;
        add_event(
            &mut tx.tx,
            id,
            "approved",
            "Approved. Access is being set up; you will get an email when it is ready.",
            true,
        )
        .await?;
        audit::record(
            &mut tx.tx,
            actor,
            AuditAction::RequestApproved,
            Target::Request,
            id,
            {
                let mut details = details;
                details["grant_id"] = json!(grant_id);
                details
            },
        )
        .await?;
        audit::record(
            &mut tx.tx,
            actor,
            AuditAction::GrantCreated,
            Target::Grant,
            &grant_id,
            json!({
                "request_id": id,
                "company": pending.company,
                "scope": approval.scope.items(),
                "visibility": approval.scope.visibility,
                "budget": approval.budget,
                "end_date": approval.end_date.to_string(),
                "ip_ranges": ip_ranges,
                "risks": risks,
            }),
        )
        .await?;
        self.mail
            .queue(&mut tx.tx, &approval_mail(&pending, &approval, &ip_ranges))
            .await?;
        tx.commit().await?;
        self.mail.wake();
        Ok(DecisionOutcome::Approved { grant_id })
    }

    /// Rejects a request. Any approver who has not decided it yet may; the reason is
    /// required and goes to the contractor.
    pub async fn reject(
        &self,
        id: &str,
        approver: &SignedInUser,
        reason_text: &str,
        actor: &Actor,
    ) -> Result<DecisionOutcome, DecisionError> {
        let approver_name = approver_key(approver)?;
        let reason = reason(reason_text).map_err(|message| {
            let mut errors = FieldErrors::default();
            errors.add("reason", message);
            DecisionError::Invalid(errors)
        })?;
        let mut tx = self.db.begin_write().await?;
        let pending = self.begin_decision(&mut tx.tx, id, &approver_name).await?;
        let approvals_before: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM decisions WHERE request_id = $1 AND decision = 'approved'",
        )
        .bind(id)
        .fetch_one(&mut *tx.tx)
        .await?;
        let now = now_ms();
        let inserted = sqlx::query(
            "INSERT INTO decisions (id, request_id, approver, decision, reason, at) VALUES ($1, $2, $3, 'rejected', $4, $5)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(id)
        .bind(&approver_name)
        .bind(&reason)
        .bind(now)
        .execute(&mut *tx.tx)
        .await;
        already_decided_on_conflict(inserted)?;
        let updated = sqlx::query(
            "UPDATE access_requests SET state = $1, updated_at = $2 WHERE id = $3 AND state = $4",
        )
        .bind(RequestState::Rejected.as_str())
        .bind(now)
        .bind(id)
        .bind(RequestState::Submitted.as_str())
        .execute(&mut *tx.tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Err(DecisionError::NotAwaitingDecision(pending.state));
        }
        add_event(
            &mut tx.tx,
            id,
            "decision",
            &format!(
                "Rejected by {}: {reason}",
                approver_display(approver, &approver_name)
            ),
            false,
        )
        .await?;
        add_event(
            &mut tx.tx,
            id,
            "rejected",
            &format!("Rejected: {reason}"),
            true,
        )
        .await?;
        audit::record(
            &mut tx.tx,
            actor,
            AuditAction::RequestRejected,
            Target::Request,
            id,
            json!({
                "approver": approver_name,
                "reason": reason,
                "approvals_before": approvals_before,
                "risks": pending.scope.risks(),
            }),
        )
        .await?;
        self.mail
            .queue(
                &mut tx.tx,
                &Mail {
                    to: pending.contact_email.clone(),
                    subject: format!("{}'s access request was not approved", pending.company),
                    body: format!(
                        "Hello,\n\nAcme's approvers did not approve {}'s request for API access.\n\n\
                         Their reason:\n\n    {}\n\n\
                         You are welcome to send a new request that takes this into account.\n",
                        pending.company,
                        reason.replace('\n', "\n    ")
                    ),
                },
            )
            .await?;
        tx.commit().await?;
        self.mail.wake();
        Ok(DecisionOutcome::Rejected)
    }
}

/// How internal notes name an approver: their name and the username decisions are
/// recorded under.
fn approver_display(approver: &SignedInUser, key: &str) -> String {
    if approver.name.trim().is_empty() {
        key.to_string()
    } else {
        format!("{} ({key})", approver.name.trim())
    }
}

fn to_json<T: Serialize>(value: &T) -> String {
    // These types serialize infallibly (plain structs, strings and maps with string keys).
    serde_json::to_string(value).unwrap_or_default()
}

/// The unique key on decisions (request_id, approver) is the last guard against one person
/// deciding twice (e.g. two portal instances racing); it reads as "already decided".
fn already_decided_on_conflict(
    result: Result<sqlx::any::AnyQueryResult, sqlx::Error>,
) -> Result<(), DecisionError> {
    match result {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(DecisionError::AlreadyDecided)
        }
        Err(e) => Err(e.into()),
    }
}

fn approval_mail(pending: &Pending, approval: &Approval, ip_ranges: &[String]) -> Mail {
    let budget = &approval.budget;
    Mail {
        to: pending.contact_email.clone(),
        subject: format!("{}'s access request was approved", pending.company),
        body: format!(
            "Hello,\n\nAcme's approvers approved {}'s request for API access. It is being set up now; \
             you will get another email when the credential is ready to collect.\n\n\
             Approved access:\n{}\n    records: {}\n\n\
             Access ends on {}.\n\
             API budget: {} calls per day, {} per 7 days.\n\
             Source IP ranges: {}\n",
            pending.company,
            access_lines(&approval.scope),
            approval.scope.visibility.rule.describe(),
            approval.end_date,
            budget.calls_per_day,
            budget.calls_per_7_days,
            if ip_ranges.is_empty() {
                "any".to_string()
            } else {
                ip_ranges.join(", ")
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::scope::ObjectAccess;

    fn case_scope(fields: &[(&str, Level)], view_all: bool) -> Scope {
        Scope {
            objects: vec![ObjectAccess {
                object: "Case".into(),
                level: Level::Edit,
                fields: fields.iter().map(|(f, l)| (f.to_string(), *l)).collect(),
                view_all,
                modify_all: false,
            }],
            visibility: Visibility {
                rule: VisibilityRule::Shared,
                record_ids: vec![],
                group: None,
            },
            packages: vec![],
        }
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_ignored() {
        let c = cursor_encode(1_700_000_000_000, "0193-abc");
        assert_eq!(
            cursor_decode(&c),
            Some((1_700_000_000_000, "0193-abc".to_string()))
        );
        assert_eq!(cursor_decode("!!"), None);
        assert_eq!(cursor_decode(&URL_SAFE_NO_PAD.encode("nope")), None);
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_contains("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }

    #[test]
    fn flags_show_up_in_scope_changes() {
        let asked = case_scope(&[("Subject", Level::Read)], false);
        let granted = case_scope(&[("Subject", Level::Read)], true);
        let changes = scope_changes(&asked, &granted);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].item, "Case: View All");
        assert!(changes[0].is_widening());
        assert!(scope_changes(&granted, &asked)[0].is_narrowing());
    }

    #[test]
    fn adding_records_or_changing_the_rule_widens_visibility() {
        let asked = case_scope(&[], false).visibility;
        let mut more = asked.clone();
        more.record_ids.push("500000000000001AAA".into());
        assert!(visibility_widens(&asked, &more));
        assert!(!visibility_widens(&more, &asked));
        let mut group = asked.clone();
        group.rule = VisibilityRule::Group;
        assert!(visibility_widens(&asked, &group));
        assert!(!visibility_widens(&asked, &asked));
    }

    #[test]
    fn an_earlier_approval_covers_only_what_it_agreed_to() {
        let plain = case_scope(&[("Subject", Level::Read)], false);
        let more = case_scope(
            &[("Subject", Level::Read), ("Description", Level::Edit)],
            false,
        );
        let view_all = case_scope(&[("Subject", Level::Read)], true);
        assert!(covers(&plain, &plain));
        // Putting back a field, or adding View All, is more than was approved.
        assert!(!covers(&plain, &more));
        assert!(!covers(&plain, &view_all));
        // Narrowing what was approved is fine.
        assert!(covers(&more, &plain));
        assert!(covers(&view_all, &plain));
        // Records the approval did not name widen; dropping records narrows.
        let mut records = plain.clone();
        records
            .visibility
            .record_ids
            .push("500000000000001AAA".into());
        assert!(!covers(&plain, &records));
        assert!(covers(&records, &plain));
    }

    #[test]
    fn scope_shapes_are_checked() {
        let mut scope = case_scope(&[("Bad Name", Level::Read)], false);
        scope.visibility.record_ids = vec!["not-an-id".into()];
        let errors = scope_problems(&scope);
        assert!(errors.get("scope").is_some());
        assert!(errors.get("visibility").is_some());
        scope.visibility.rule = VisibilityRule::Group;
        assert!(
            scope_problems(&scope)
                .get("visibility")
                .unwrap()
                .contains("group")
        );
    }
}
