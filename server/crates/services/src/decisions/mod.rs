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
use sqlx::{Any, Transaction};

use crate::Portal;
use crate::audit::{self, Actor, AuditAction, Target};
use crate::db::DatabaseKind;
use crate::mail::Mail;
use crate::names::is_api_name;
use crate::org_name::OrgName;
use crate::requests::add_event;

mod queue;
mod terms;

pub use terms::scope_changes;
use terms::*;

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

pub(crate) fn reason(raw: &str) -> Result<String, String> {
    if raw.trim().is_empty() {
        return Err("Give a reason for the decision.".into());
    }
    fields::paragraph(raw, "reason", 3, 1000)
}

/// The name decisions are recorded under: one per person, whatever the case they typed.
pub(crate) fn approver_key(approver: &SignedInUser) -> Result<String, DecisionError> {
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

#[derive(sqlx::FromRow)]
struct PendingRow {
    state: String,
    company: String,
    contact_email: String,
    scope: String,
    approvals_required: i64,
    calls_per_day: i64,
    ip_ranges: String,
    end_date: String,
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
        let Some(row) = sqlx::query_as::<_, PendingRow>(&format!(
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
        let state = RequestState::parse(&row.state).ok_or_else(|| {
            sqlx::Error::Decode(
                format!("access_requests.state has an unknown value '{}'", row.state).into(),
            )
        })?;
        Ok(Some(Pending {
            state,
            company: row.company,
            contact_email: row.contact_email,
            scope: parse_scope(&row.scope),
            approvals_required: row.approvals_required,
            calls_per_day: row.calls_per_day,
            ip_ranges: row.ip_ranges,
            end_date: row.end_date,
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
        let today = self.clock().today();
        let max_end_days = self
            .setting_i64("max_end_days")
            .await?
            .unwrap_or(self.settings.max_end_days);
        let approval =
            validate_approval(input, today, max_end_days).map_err(DecisionError::Invalid)?;
        self.check_record_sharing(&approval.scope).await?;
        let org = self.org_name().await;
        let mut tx = self.db.begin_write().await?;
        let pending = self.begin_decision(&mut tx.tx, id, &approver_name).await?;

        type Earlier = (
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let earlier: Vec<Earlier> = sqlx::query_as(
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
        for (approver, scope, budget, end_date, ip_ranges) in &earlier {
            let terms = Terms::stored(
                scope.as_deref(),
                budget.as_deref(),
                end_date.as_deref(),
                ip_ranges.as_deref(),
            );
            let wider = match &terms {
                Some(terms) => widenings(terms, &granted),
                None => vec!["its recorded terms could not be read".to_string()],
            };
            if wider.is_empty() {
                vouching += 1;
            } else {
                not_counted.push(json!({
                    "approver": approver,
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
        let now = self.clock().now_ms();

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
            self.clock().now_ms(),
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
                self.clock().now_ms(),
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
            self.clock().now_ms(),
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
            .queue(
                &mut tx.tx,
                &approval_mail(&org, &pending, &approval, &ip_ranges),
            )
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
        let org = self.org_name().await;
        let mut tx = self.db.begin_write().await?;
        let pending = self.begin_decision(&mut tx.tx, id, &approver_name).await?;
        let approvals_before: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM decisions WHERE request_id = $1 AND decision = 'approved'",
        )
        .bind(id)
        .fetch_one(&mut *tx.tx)
        .await?;
        let now = self.clock().now_ms();
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
            self.clock().now_ms(),
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
            self.clock().now_ms(),
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
                        "Hello,\n\n{}'s approvers did not approve {}'s request for API access.\n\n\
                         Their reason:\n\n    {}\n\n\
                         You are welcome to send a new request that takes this into account.\n",
                        org,
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
pub(crate) fn approver_display(approver: &SignedInUser, key: &str) -> String {
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

fn approval_mail(
    org: &OrgName,
    pending: &Pending,
    approval: &Approval,
    ip_ranges: &[String],
) -> Mail {
    let budget = &approval.budget;
    Mail {
        to: pending.contact_email.clone(),
        subject: format!("{}'s access request was approved", pending.company),
        body: format!(
            "Hello,\n\n{}'s approvers approved {}'s request for API access. It is being set up now; \
             you will get another email when the credential is ready to collect.\n\n\
             Approved access:\n{}\n    records: {}\n\n\
             Access ends on {}.\n\
             API budget: {} calls per day, {} per 7 days.\n\
             Source IP ranges: {}\n",
            org,
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
mod tests;
