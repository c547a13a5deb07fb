//! Contractor requests: submission (validated, idempotent, rate-limited), email
//! verification by code or link, the contractor's status page, and expiry of requests that
//! were never verified.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::fields::{self, ContractorEmail};
use shared::request::{HistoryItem, RequestState, StatusView};
use shared::scope::Scope;
use shared::{FieldError, FieldErrors};
use sqlx::{Any, Transaction};

use crate::audit::{self, Actor, AuditAction, Outcome, Target};
use crate::clock::rfc3339;
use crate::mail::Mail;
use crate::org_name::OrgName;
use crate::{Portal, tokens};

/// What a contractor submits (already split into fields; the scope already parsed).
#[derive(Debug, Clone, Default)]
pub struct SubmitInput {
    pub company: String,
    pub contact_name: String,
    pub contact_email: String,
    pub justification: String,
    pub scope: Option<Scope>,
    /// Set when the access part of the form could not be read.
    pub scope_error: Option<FieldError>,
    pub calls_per_day: String,
    pub ip_ranges: String,
    pub end_date: String,
    /// A random key the form carries, so submitting twice creates one request.
    pub submission_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submitted {
    pub request_id: String,
    /// True when this was a repeat of an earlier submission.
    pub duplicate: bool,
    pub contact_email: String,
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("{0}")]
    Invalid(FieldErrors),
    #[error("too many requests from this address; try again in {retry_after_minutes} minutes")]
    RateLimited { retry_after_minutes: i64 },
    #[error("{0}")]
    NotAllowed(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// A validated request, ready to store.
struct NewRequest {
    company: String,
    contact_name: String,
    contact_email: ContractorEmail,
    justification: String,
    scope: Scope,
    calls_per_day: u64,
    ip_ranges: Vec<shared::fields::Cidr>,
    end_date: NaiveDate,
}

fn validate(
    input: &SubmitInput,
    today: NaiveDate,
    max_end_days: i64,
) -> Result<NewRequest, FieldErrors> {
    let mut errors = FieldErrors::default();
    let company = errors.check(
        "company",
        fields::line(&input.company, "company name", 2, 100),
    );
    let contact_name = errors.check(
        "contact_name",
        fields::line(&input.contact_name, "contact name", 2, 100),
    );
    let contact_email = errors.check(
        "contact_email",
        ContractorEmail::parse(&input.contact_email),
    );
    let justification = errors.check(
        "justification",
        fields::paragraph(&input.justification, "work", 20, 2000),
    );
    let calls_per_day = errors.check(
        "calls_per_day",
        fields::whole_number(
            &input.calls_per_day,
            "expected API calls per day",
            1,
            100_000,
        ),
    );
    let ip_ranges = errors.check("ip_ranges", fields::cidr_list(&input.ip_ranges));
    let end_date = errors.check(
        "end_date",
        fields::end_date(&input.end_date, today, max_end_days),
    );
    if let Some(error) = &input.scope_error {
        errors.0.push(error.clone());
    }
    let scope = match &input.scope {
        Some(scope) if !scope.is_empty() => Some(scope.clone()),
        Some(_) | None if input.scope_error.is_none() => {
            errors.add(
                "access",
                "Choose at least one package or object the work needs.",
            );
            None
        }
        _ => None,
    };
    if input.submission_key.trim().len() < 16 || input.submission_key.len() > 100 {
        errors.add(
            "submission_key",
            "The form is out of date; reload the page and submit again.",
        );
    }
    match (
        company,
        contact_name,
        contact_email,
        justification,
        calls_per_day,
        ip_ranges,
        end_date,
        scope,
    ) {
        (
            Some(company),
            Some(contact_name),
            Some(contact_email),
            Some(justification),
            Some(calls_per_day),
            Some(ip_ranges),
            Some(end_date),
            Some(scope),
        ) if errors.is_empty() => Ok(NewRequest {
            company,
            contact_name,
            contact_email,
            justification,
            scope,
            calls_per_day,
            ip_ranges,
            end_date,
        }),
        _ => Err(errors),
    }
}

/// Counts one more use of `bucket` in the current window; Err(minutes to wait) when over.
///
/// One statement reads and counts (the row's lock on PostgreSQL, the write lock on
/// SQLite), so concurrent uses cannot all read the same count and all pass: the limit
/// holds exactly. Uses beyond the limit are counted too, which changes nothing.
pub async fn rate_limit(
    tx: &mut Transaction<'static, Any>,
    now: i64,
    bucket: &str,
    limit: i64,
    window_ms: i64,
) -> Result<Result<(), i64>, sqlx::Error> {
    let (start, count): (i64, i64) = sqlx::query_as(
        "INSERT INTO rate_limits (bucket, window_start, count) VALUES ($1, $2, 1) \
         ON CONFLICT (bucket) DO UPDATE SET \
         window_start = CASE WHEN $2 - rate_limits.window_start >= $3 THEN $2 ELSE rate_limits.window_start END, \
         count = CASE WHEN $2 - rate_limits.window_start >= $3 THEN 1 ELSE rate_limits.count + 1 END \
         RETURNING window_start, count",
    )
    .bind(bucket)
    .bind(now)
    .bind(window_ms)
    .fetch_one(&mut **tx)
    .await?;
    if count > limit {
        let minutes = ((start + window_ms - now) / 60_000).max(1);
        return Ok(Err(minutes));
    }
    Ok(Ok(()))
}

/// A request waiting for its email to be confirmed, as a code is checked against it.
#[derive(sqlx::FromRow)]
struct Unverified {
    state: String,
    created_at: i64,
    verification_code_hash: Option<String>,
    verification_expires_at: Option<i64>,
    verification_attempts: i64,
}

/// What the contractor's status page shows of a request.
#[derive(sqlx::FromRow)]
struct StatusRow {
    id: String,
    company: String,
    contact_name: String,
    state: String,
    created_at: i64,
    end_date: String,
    scope: String,
}

pub(crate) async fn add_event(
    tx: &mut Transaction<'static, Any>,
    at: i64,
    request_id: &str,
    kind: &str,
    message: &str,
    visible_to_contractor: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO request_events (id, request_id, at, kind, message, visible_to_contractor) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(request_id)
        .bind(at)
        .bind(kind)
        .bind(message)
        .bind(visible_to_contractor)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// How long the mailed confirmation code works (the link works `verification_ttl_hours`).
pub const CODE_TTL_MS: i64 = 30 * 60 * 1000;

/// What a request's confirmation code is stored under.
fn code_purpose(request_id: &str) -> String {
    format!("verify:{request_id}")
}

fn verification_mail(
    portal: &Portal,
    org: &OrgName,
    to: &str,
    company: &str,
    code: &str,
    token: &str,
) -> Mail {
    Mail {
        to: to.to_string(),
        subject: format!("Confirm your email to send {company}'s access request"),
        body: format!(
            "Hello,\n\nsomeone (hopefully you) asked for API access to {}'s Salesforce org for {company}.\n\
             To confirm this address, enter this code on the request page:\n\n    {code}\n\n\
             or open this link:\n\n    {}/verify/{token}\n\n\
             The code works for 30 minutes and the link for {} hours. If you did not ask for access, ignore this message.\n",
            org, portal.settings.public_url, portal.settings.verification_ttl_hours
        ),
    }
}

impl Portal {
    /// Submits a request. Repeating a submission (same form key) returns the first request.
    pub async fn submit(
        &self,
        input: SubmitInput,
        actor: &Actor,
    ) -> Result<Submitted, IntakeError> {
        let today = self.clock().today();
        let max_end_days = self
            .setting_i64("max_end_days")
            .await?
            .unwrap_or(self.settings.max_end_days);
        let request = validate(&input, today, max_end_days).map_err(IntakeError::Invalid)?;
        let risky = !request.scope.risks().is_empty();
        // Read before the transaction: inside it, this would wait for a second pooled
        // connection while holding one, and concurrent submissions would starve the pool.
        let approvals = self.approvals_required(risky).await?;
        let org = self.org_name().await;
        let mut tx = self.db.begin_write().await?;
        if let Some((request_id, contact_email)) = sqlx::query_as(
            "SELECT id, contact_email FROM access_requests WHERE submission_key = $1",
        )
        .bind(input.submission_key.trim())
        .fetch_optional(&mut *tx.tx)
        .await?
        {
            return Ok(Submitted {
                request_id,
                duplicate: true,
                contact_email,
            });
        }
        if let Err(minutes) = rate_limit(
            &mut tx.tx,
            self.clock().now_ms(),
            &crate::client::client_bucket("submit", &actor.ip),
            self.settings.submissions_per_hour,
            3_600_000,
        )
        .await?
        {
            return Err(IntakeError::RateLimited {
                retry_after_minutes: minutes,
            });
        }
        let id = uuid::Uuid::now_v7().to_string();
        let code = tokens::new_code();
        let (token, token_hash) = tokens::new_token();
        let now = self.clock().now_ms();
        sqlx::query(
            "INSERT INTO access_requests (id, submission_key, state, company, contact_name, contact_email, justification, scope, \
             calls_per_day, ip_ranges, end_date, submitter_ip, created_at, updated_at, verification_code_hash, \
             verification_token_hash, verification_expires_at, verification_attempts, risky, approvals_required) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, 0, $18, $19)",
        )
        .bind(&id)
        .bind(input.submission_key.trim())
        .bind(RequestState::PendingVerification.as_str())
        .bind(&request.company)
        .bind(&request.contact_name)
        .bind(request.contact_email.as_str())
        .bind(&request.justification)
        .bind(serde_json::to_string(&request.scope).unwrap_or_default())
        .bind(request.calls_per_day as i64)
        .bind(serde_json::to_string(&request.ip_ranges).unwrap_or_default())
        .bind(request.end_date.to_string())
        .bind(&actor.ip)
        .bind(now)
        .bind(now)
        .bind(self.code_key.hash(&code_purpose(&id), &code))
        .bind(&token_hash)
        .bind(now + self.settings.verification_ttl_hours * 3_600_000)
        .bind(risky)
        .bind(approvals)
        .execute(&mut *tx.tx)
        .await?;
        add_event(
            &mut tx.tx,
            self.clock().now_ms(),
            &id,
            "submitted",
            "Request submitted; waiting for the contact email to be confirmed.",
            true,
        )
        .await?;
        audit::record(
            &mut tx.tx,
            actor,
            AuditAction::RequestSubmitted,
            Target::Request,
            &id,
            json!({
                "company": request.company,
                "contact_email": request.contact_email.as_str(),
                "scope": request.scope.items(),
                "calls_per_day": request.calls_per_day,
                "end_date": request.end_date.to_string(),
                "risky": risky,
            }),
        )
        .await?;
        self.mail
            .queue(
                &mut tx.tx,
                &verification_mail(
                    self,
                    &org,
                    request.contact_email.as_str(),
                    &request.company,
                    &code,
                    &token,
                ),
            )
            .await?;
        tx.commit().await?;
        self.mail.wake();
        Ok(Submitted {
            request_id: id,
            duplicate: false,
            contact_email: request.contact_email.to_string(),
        })
    }

    /// How many approvals a request needs: the configured number, and always 2 when risky.
    pub async fn approvals_required(&self, risky: bool) -> Result<i64, sqlx::Error> {
        let configured = self
            .setting_i64("approvals_required")
            .await?
            .unwrap_or(self.settings.approvals_required)
            .clamp(1, 2);
        Ok(if risky { 2 } else { configured })
    }

    /// An owner-editable setting, if it was set.
    pub async fn setting_i64(&self, key: &str) -> Result<Option<i64>, sqlx::Error> {
        let value: Option<String> = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(value.and_then(|v| v.parse().ok()))
    }

    /// Confirms the contact email with the code from the mail.
    pub async fn verify_code(
        &self,
        request_id: &str,
        code: &str,
        actor: &Actor,
    ) -> Result<(), IntakeError> {
        let mut tx = self.db.begin_write().await?;
        // The row is locked while its attempts are read and counted (PostgreSQL; SQLite's
        // write transaction already excludes other writers): concurrent guesses cannot all
        // read the same count and all be compared.
        let lock = match self.db.kind() {
            crate::db::DatabaseKind::Postgres => " FOR UPDATE",
            crate::db::DatabaseKind::Sqlite => "",
        };
        let row = sqlx::query_as::<_, Unverified>(&format!("SELECT state, created_at, verification_code_hash, verification_expires_at, verification_attempts FROM access_requests WHERE id = $1{lock}"))
            .bind(request_id)
            .fetch_optional(&mut *tx.tx)
            .await?
            .ok_or_else(|| IntakeError::NotAllowed("There is no such request.".into()))?;
        if row.state != RequestState::PendingVerification.as_str() {
            return Err(IntakeError::NotAllowed(
                "This request has already been confirmed or has ended.".into(),
            ));
        }
        let attempts = row.verification_attempts;
        let expires = row.verification_expires_at.unwrap_or(0);
        if expires <= self.clock().now_ms() {
            return Err(IntakeError::NotAllowed(
                "The code has expired. Submit the request again.".into(),
            ));
        }
        let created_at = row.created_at;
        if created_at + CODE_TTL_MS <= self.clock().now_ms() {
            return Err(IntakeError::NotAllowed(
                "The code has expired (codes work for 30 minutes). Use the link in the same email, or submit the request again."
                    .into(),
            ));
        }
        if attempts >= 5 {
            return Err(IntakeError::NotAllowed(
                "Too many wrong codes. Submit the request again.".into(),
            ));
        }
        let expected = row.verification_code_hash.unwrap_or_default();
        let code = code.trim();
        if code.len() != 6
            || !code.bytes().all(|b| b.is_ascii_digit())
            || !tokens::constant_time_eq(
                &self.code_key.hash(&code_purpose(request_id), code),
                &expected,
            )
        {
            sqlx::query("UPDATE access_requests SET verification_attempts = verification_attempts + 1, updated_at = $1 WHERE id = $2")
                .bind(self.clock().now_ms())
                .bind(request_id)
                .execute(&mut *tx.tx)
                .await?;
            audit::record_outcome(
                &mut tx.tx,
                actor,
                AuditAction::RequestVerificationFailed,
                Outcome::Failure,
                Target::Request,
                request_id,
                json!({ "attempt": attempts + 1 }),
            )
            .await?;
            tx.commit().await?;
            let left = 4 - attempts;
            let mut errors = FieldErrors::default();
            errors.add(
                "code",
                if left > 0 {
                    format!("That code is not right. {left} attempt{} left.", if left == 1 { "" } else { "s" })
                } else {
                    "That code is not right, and that was the last attempt. Submit the request again.".into()
                },
            );
            return Err(IntakeError::Invalid(errors));
        }
        self.mark_verified(tx, request_id, actor, "code").await
    }

    /// Confirms the contact email through the emailed link (a POST from its page: opening
    /// the link alone changes nothing).
    pub async fn verify_link(&self, token: &str, actor: &Actor) -> Result<String, IntakeError> {
        let invalid = || {
            IntakeError::NotAllowed("This confirmation link is not valid or has expired.".into())
        };
        if !tokens::looks_like_token(token) {
            return Err(invalid());
        }
        let mut tx = self.db.begin_write().await?;
        let (id, state, expires_at): (String, String, Option<i64>) = sqlx::query_as("SELECT id, state, verification_expires_at FROM access_requests WHERE verification_token_hash = $1")
            .bind(tokens::hash(token))
            .fetch_optional(&mut *tx.tx)
            .await?
            .ok_or_else(invalid)?;
        if state != RequestState::PendingVerification.as_str() {
            return Err(IntakeError::NotAllowed(
                "This request has already been confirmed or has ended.".into(),
            ));
        }
        if expires_at.unwrap_or(0) <= self.clock().now_ms() {
            return Err(invalid());
        }
        self.mark_verified(tx, &id, actor, "link").await?;
        Ok(id)
    }

    /// What the verification link page shows (without changing anything).
    pub async fn verification_link_info(
        &self,
        token: &str,
    ) -> Result<Option<(String, String, String)>, sqlx::Error> {
        if !tokens::looks_like_token(token) {
            return Ok(None);
        }
        sqlx::query_as(
            "SELECT id, company, state FROM access_requests WHERE verification_token_hash = $1",
        )
        .bind(tokens::hash(token))
        .fetch_optional(self.db.pool())
        .await
    }

    async fn mark_verified(
        &self,
        mut tx: crate::db::WriteTx,
        request_id: &str,
        actor: &Actor,
        how: &str,
    ) -> Result<(), IntakeError> {
        let (status_token, status_hash) = tokens::new_token();
        let now = self.clock().now_ms();
        let org = self.org_name().await;
        let (company, email): (String, String) = sqlx::query_as(
            "UPDATE access_requests SET state = $1, verified_at = $2, updated_at = $2, status_token_hash = $3, \
             verification_code_hash = NULL, verification_token_hash = NULL WHERE id = $4 AND state = $5 \
             RETURNING company, contact_email",
        )
        .bind(RequestState::Submitted.as_str())
        .bind(now)
        .bind(&status_hash)
        .bind(request_id)
        .bind(RequestState::PendingVerification.as_str())
        .fetch_optional(&mut *tx.tx)
        .await?
        .ok_or_else(|| IntakeError::NotAllowed("This request has already been confirmed or has ended.".into()))?;
        add_event(
            &mut tx.tx,
            self.clock().now_ms(),
            request_id,
            "verified",
            "Email confirmed; the request is waiting for review.",
            true,
        )
        .await?;
        audit::record(
            &mut tx.tx,
            actor,
            AuditAction::RequestVerified,
            Target::Request,
            request_id,
            json!({ "method": how }),
        )
        .await?;
        self.mail
            .queue(
                &mut tx.tx,
                &Mail {
                    to: email,
                    subject: format!("{company}'s access request was received"),
                    body: format!(
                        "Thank you: your email is confirmed and the request is with {}'s approvers.\n\n\
                         Follow its progress here (keep this link to yourself; it is your key to the request):\n\n    {}/status/{status_token}\n",
                        org, self.settings.public_url
                    ),
                },
            )
            .await?;
        for approver in crate::roles::approver_emails(&mut tx.tx).await? {
            self.mail
                .queue(
                    &mut tx.tx,
                    &Mail {
                        to: approver,
                        subject: format!("New access request from {company}"),
                        body: format!(
                            "{company} asked for API access to the org. Review it here:\n\n    {}/admin/requests/{request_id}\n",
                            self.settings.public_url
                        ),
                    },
                )
                .await?;
        }
        tx.commit().await?;
        self.mail.wake();
        Ok(())
    }

    /// The contractor's view of their request, through the status link.
    pub async fn status(&self, token: &str) -> Result<Option<StatusView>, sqlx::Error> {
        if !tokens::looks_like_token(token) {
            return Ok(None);
        }
        let Some(row) = sqlx::query_as::<_, StatusRow>(
            // The grant's end date once there is a grant (an extension moves it).
            "SELECT id, company, contact_name, state, created_at, \
             COALESCE((SELECT g.end_date FROM grants g WHERE g.request_id = access_requests.id), end_date) AS end_date, \
             scope FROM access_requests WHERE status_token_hash = $1",
        )
        .bind(tokens::hash(token))
        .fetch_optional(self.db.pool())
        .await?
        else {
            return Ok(None);
        };
        let events: Vec<(i64, String)> = sqlx::query_as(
            "SELECT at, message FROM request_events WHERE request_id = $1 AND visible_to_contractor = $2 ORDER BY at, id",
        )
        .bind(&row.id)
        .bind(true)
        .fetch_all(self.db.pool())
        .await?;
        let scope: Option<Scope> = serde_json::from_str(&row.scope).ok();
        Ok(Some(StatusView {
            company: row.company,
            contact_name: row.contact_name,
            state: RequestState::parse(&row.state).unwrap_or(RequestState::Submitted),
            submitted_at: rfc3339(row.created_at),
            end_date: row.end_date,
            // Labelled by API name here; the page's server function labels them from the
            // org's describe.
            access: scope.map(|s| s.lines(&[])).unwrap_or_default(),
            history: events
                .into_iter()
                .map(|(at, message)| HistoryItem {
                    at: rfc3339(at),
                    message,
                })
                .collect(),
            access_end: crate::ending::access_end(
                &self.db,
                &row.id,
                crate::ending::Reader::Contractor,
            )
            .await?,
        }))
    }

    /// Marks unverified requests whose time ran out as expired; returns how many.
    pub async fn expire_unverified(&self) -> Result<u64, sqlx::Error> {
        let mut tx = self.db.begin_write().await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM access_requests WHERE state = $1 AND verification_expires_at <= $2",
        )
        .bind(RequestState::PendingVerification.as_str())
        .bind(self.clock().now_ms())
        .fetch_all(&mut *tx.tx)
        .await?;
        for id in &ids {
            sqlx::query("UPDATE access_requests SET state = $1, updated_at = $2, verification_code_hash = NULL, verification_token_hash = NULL WHERE id = $3")
                .bind(RequestState::Expired.as_str())
                .bind(self.clock().now_ms())
                .bind(id)
                .execute(&mut *tx.tx)
                .await?;
            add_event(
                &mut tx.tx,
                self.clock().now_ms(),
                id,
                "expired",
                "The email address was not confirmed in time; the request expired.",
                true,
            )
            .await?;
            audit::record(
                &mut tx.tx,
                &Actor::system(),
                AuditAction::RequestExpired,
                Target::Request,
                id,
                json!({}),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(ids.len() as u64)
    }
}
