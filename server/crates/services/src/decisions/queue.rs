//! The approvers' queue (filters, counts, keyset paging) and everything about one request
//! for the review page.

use super::*;
use crate::db::QueryBuilder;

pub(super) fn cursor_encode(created_at: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{created_at}:{id}"))
}

pub(super) fn cursor_decode(cursor: &str) -> Option<(i64, String)> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (at, id) = text.split_once(':')?;
    Some((at.parse().ok()?, id.to_string()))
}

/// `%` and `_` in the user's text match themselves in `LIKE ... ESCAPE '\'`.
pub(super) fn like_contains(text: &str) -> String {
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

/// The company and age filters, which narrow both the counts and the page.
fn push_filters(query: &mut QueryBuilder, filter: &QueueFilter, now: i64) {
    if let Some(company) = filter
        .company
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        query
            .and_where()
            .push("LOWER(company) LIKE LOWER(")
            .push_bind(like_contains(company))
            .push(") ESCAPE '\\'");
    }
    if let Some(hours) = filter.min_age_hours {
        query
            .and_where()
            .push("created_at <= ")
            .push_bind(now.saturating_sub(hours.max(0).saturating_mul(3_600_000)));
    }
    if let Some(hours) = filter.max_age_hours {
        query
            .and_where()
            .push("created_at >= ")
            .push_bind(now.saturating_sub(hours.max(0).saturating_mul(3_600_000)));
    }
}

#[derive(sqlx::FromRow)]
struct QueueRow {
    id: String,
    company: String,
    contact_name: String,
    contact_email: String,
    state: String,
    created_at: i64,
    /// 1 or 0 (selected as a number: SQLite has no booleans).
    risky: i64,
    approvals_required: i64,
    approvals: i64,
    end_date: String,
    calls_per_day: i64,
}

impl From<QueueRow> for QueueItem {
    fn from(row: QueueRow) -> Self {
        QueueItem {
            id: row.id,
            company: row.company,
            contact_name: row.contact_name,
            contact_email: row.contact_email,
            state: parse_state(&row.state),
            created_at: row.created_at,
            risky: row.risky != 0,
            approvals_required: row.approvals_required,
            approvals: row.approvals,
            end_date: row.end_date,
            calls_per_day: row.calls_per_day,
        }
    }
}

#[derive(sqlx::FromRow)]
struct RequestRow {
    id: String,
    company: String,
    contact_name: String,
    contact_email: String,
    justification: String,
    state: String,
    scope: String,
    calls_per_day: i64,
    ip_ranges: String,
    end_date: String,
    created_at: i64,
    verified_at: Option<i64>,
    risky: i64,
    approvals_required: i64,
}

#[derive(sqlx::FromRow)]
struct DecisionRow {
    approver: String,
    decision: String,
    reason: String,
    at: i64,
    scope: Option<String>,
    budget: Option<String>,
    end_date: Option<String>,
    ip_ranges: Option<String>,
}

impl DecisionRow {
    /// The decision, with how it changed `requested`.
    fn view(self, requested: &Scope) -> DecisionView {
        let granted = self.scope.map(|g| parse_scope(&g));
        DecisionView {
            approver: self.approver,
            decision: self.decision,
            reason: self.reason,
            at: self.at,
            scope_changes: granted
                .as_ref()
                .map(|g| scope_changes(requested, g))
                .unwrap_or_default(),
            scope: granted,
            budget: self.budget.and_then(|b| serde_json::from_str(&b).ok()),
            end_date: self.end_date,
            ip_ranges: self
                .ip_ranges
                .and_then(|r| serde_json::from_str(&r).ok())
                .unwrap_or_default(),
        }
    }
}

#[derive(sqlx::FromRow)]
struct EventRow {
    at: i64,
    kind: String,
    message: String,
    visible: i64,
}

impl From<EventRow> for EventView {
    fn from(row: EventRow) -> Self {
        EventView {
            at: row.at,
            kind: row.kind,
            message: row.message,
            visible_to_contractor: row.visible != 0,
        }
    }
}

impl Portal {
    /// The approvers' queue: newest first, one page at a time.
    pub async fn queue(&self, filter: &QueueFilter) -> Result<QueueView, sqlx::Error> {
        let now = self.clock().now_ms();
        let mut count_query = QueryBuilder::new("SELECT state, COUNT(*) AS n FROM access_requests");
        push_filters(&mut count_query, filter, now);
        count_query.push(" GROUP BY state");
        let count_rows: Vec<(String, i64)> = count_query
            .build_query_as()
            .fetch_all(self.db.pool())
            .await?;
        let mut counts: Vec<(RequestState, i64)> =
            RequestState::ALL.iter().map(|s| (*s, 0)).collect();
        for (state, n) in &count_rows {
            if let Some(entry) = counts.iter_mut().find(|(s, _)| s.as_str() == state) {
                entry.1 += n;
            }
        }

        let mut query = QueryBuilder::new(
            "SELECT id, company, contact_name, contact_email, state, created_at, \
             CASE WHEN risky THEN 1 ELSE 0 END AS risky, approvals_required, end_date, calls_per_day, \
             (SELECT COUNT(*) FROM decisions d WHERE d.request_id = access_requests.id AND d.decision = 'approved') AS approvals \
             FROM access_requests",
        );
        push_filters(&mut query, filter, now);
        match filter.state {
            Some(state) => {
                query.and_where().push("state = ").push_bind(state.as_str());
            }
            None => {
                // Unverified requests never reach approvers, unless asked for by name.
                query.and_where().push("state NOT IN (").push_binds([
                    RequestState::PendingVerification.as_str(),
                    RequestState::Expired.as_str(),
                ]);
                query.push(")");
            }
        }
        if let Some((at, id)) = filter.before.as_deref().and_then(cursor_decode) {
            query
                .and_where()
                .push("(created_at < ")
                .push_bind(at)
                .push(" OR (created_at = ")
                .push_bind(at)
                .push(" AND id < ")
                .push_bind(id)
                .push("))");
        }
        let limit = filter.limit.clamp(1, MAX_QUEUE_LIMIT);
        query.push(format_args!(
            " ORDER BY created_at DESC, id DESC LIMIT {}",
            limit + 1
        ));
        let mut items: Vec<QueueItem> = query
            .build_query_as::<QueueRow>()
            .fetch_all(self.db.pool())
            .await?
            .into_iter()
            .map(QueueItem::from)
            .collect();
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
        let Some(row) = sqlx::query_as::<_, RequestRow>(
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
        let scope = parse_scope(&row.scope);
        let decisions = sqlx::query_as::<_, DecisionRow>(
            "SELECT approver, decision, reason, at, scope, budget, end_date, ip_ranges FROM decisions \
             WHERE request_id = $1 ORDER BY at, id",
        )
        .bind(id)
        .fetch_all(self.db.pool())
        .await?
        .into_iter()
        .map(|d| d.view(&scope))
        .collect();
        let events = sqlx::query_as::<_, EventRow>(
            "SELECT at, kind, message, CASE WHEN visible_to_contractor THEN 1 ELSE 0 END AS visible \
             FROM request_events WHERE request_id = $1 ORDER BY at, id",
        )
        .bind(id)
        .fetch_all(self.db.pool())
        .await?
        .into_iter()
        .map(EventView::from)
        .collect();
        let grant_id: Option<String> =
            sqlx::query_scalar("SELECT id FROM grants WHERE request_id = $1")
                .bind(id)
                .fetch_optional(self.db.pool())
                .await?;
        let ip_ranges: Vec<String> = serde_json::from_str(&row.ip_ranges).unwrap_or_default();
        Ok(Some(RequestDetail {
            id: row.id,
            company: row.company,
            contact_name: row.contact_name,
            contact_email: row.contact_email,
            justification: row.justification,
            state: parse_state(&row.state),
            risks: scope.risks(),
            scope,
            calls_per_day: row.calls_per_day,
            ip_ranges,
            end_date: row.end_date,
            created_at: row.created_at,
            verified_at: row.verified_at,
            risky: row.risky != 0,
            approvals_required: row.approvals_required,
            decisions,
            events,
            grant_id,
        }))
    }
}
