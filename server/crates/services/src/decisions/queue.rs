//! The approvers' queue (filters, counts, keyset paging) and everything about one request
//! for the review page.

use super::*;

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

/// A WHERE clause built from optional filters, with its arguments in placeholder order.
#[derive(Default)]
pub(super) struct Conditions {
    clauses: Vec<String>,
    args: Vec<Arg>,
}

pub(super) enum Arg {
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

impl Portal {
    /// The approvers' queue: newest first, one page at a time.
    pub async fn queue(&self, filter: &QueueFilter) -> Result<QueueView, sqlx::Error> {
        let now = self.clock().now_ms();
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
}
