//! Access reviews (issue 18): an owner starts a campaign over the live grants (all of them,
//! an access package's, or those that reach one object) with a due date, reviewers and a
//! default; each grant is an item a reviewer keeps, narrows or revokes, next to what the
//! credential can do (the last proof's table, [`view::proof_of`]) and what it used in the
//! review window (`ENTITY_NAME` of the usage files, [`crate::usage::entities`]).
//!
//! - Keep: recorded, nothing changes in the org.
//! - Narrow: the approved narrower scope (a subset of the granted one) is recorded on the
//!   grant and on the item (`narrow_state` pending) in one transaction with the audit entry;
//!   then [`crate::provisioning::Engine::narrow`] takes the dropped permissions out of the
//!   grant's permission set and proves the narrower scope as the contractor. A narrowing that
//!   did not finish (a crash, a transient fault) is carried on by the reviews job, so the
//!   org ends as approved; one Salesforce refuses for good is `failed` and says why.
//! - Revoke: the item is recorded, then the end-of-access teardown starts
//!   ([`crate::Portal::revoke_access`], reason "access review <campaign>"); the job starts
//!   it again should the process stop between the two.
//! - At the due date (the portal's clock) every unanswered item takes the campaign's
//!   default (`review.item_defaulted`), and the campaign closes (`review.closed`); it also
//!   closes as soon as every item is decided.

pub mod view;

use std::collections::{BTreeMap, HashSet};

use serde_json::json;
use shared::access_review::{CampaignSelection, CampaignState, ReviewDecision};
use shared::grant::GrantState;
use shared::scope::{Level, Scope};
use shared::{FieldErrors, Target};

use crate::audit::{self, Actor, AuditAction};
use crate::clock::Clock;
use crate::db::Database;
use crate::mail::Mail;

/// How far back the usage a reviewer sees goes, from the campaign's start.
pub const WINDOW_DAYS: i64 = 30;
const DAY_MS: i64 = 86_400_000;
/// The longest comment kept (characters).
pub const MAX_COMMENT_CHARS: usize = 1_000;

/// Grants a campaign reviews: those whose access is live.
const REVIEWED_STATES: &[GrantState] = &[GrantState::Ready, GrantState::Active];

/// What starting a campaign takes (the form's values).
#[derive(Debug, Clone, Default)]
pub struct CampaignInput {
    pub name: String,
    /// all, package or object.
    pub selection: String,
    /// The package's name or the object's API name.
    pub selection_value: String,
    /// `YYYY-MM-DD`.
    pub due_date: String,
    /// Usernames, separated by commas, spaces or lines; empty: any approver.
    pub reviewers: String,
    /// keep or revoke.
    pub default_decision: String,
}

/// What a reviewer decides for one item.
#[derive(Debug, Clone, Default)]
pub struct DecisionInput {
    /// keep, narrow or revoke.
    pub decision: String,
    pub comment: String,
    /// For a narrowing: the granted objects (`Case`) and fields (`Case.Status`) to drop.
    pub drop: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("{0}")]
    Invalid(FieldErrors),
    #[error("There is no such access review or item.")]
    NotFound,
    /// The item cannot be decided now (decided already, the campaign closed, the grant not
    /// live any more).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

fn invalid(field: &str, message: impl Into<String>) -> ReviewError {
    let mut errors = FieldErrors::default();
    errors.add(field, message);
    ReviewError::Invalid(errors)
}

/// A campaign's row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct CampaignRow {
    pub id: String,
    pub name: String,
    pub selection_kind: String,
    pub selection_value: Option<String>,
    pub due_date: String,
    pub due_at: i64,
    pub window_start: i64,
    pub reviewers: String,
    pub default_decision: String,
    pub state: String,
    pub started_by: String,
    pub created_at: i64,
}

pub(crate) const CAMPAIGN_COLUMNS: &str = "id, name, selection_kind, selection_value, due_date, due_at, window_start, \
     reviewers, default_decision, state, started_by, created_at";

impl CampaignRow {
    pub(crate) fn reviewers(&self) -> Vec<String> {
        serde_json::from_str(&self.reviewers).unwrap_or_default()
    }

    pub(crate) fn default(&self) -> ReviewDecision {
        ReviewDecision::parse(&self.default_decision).unwrap_or(ReviewDecision::Keep)
    }

    /// Whether `username` may decide its items (a listed reviewer; anyone the page lets in
    /// when none is listed).
    pub(crate) fn may_review(&self, username: &str) -> bool {
        let reviewers = self.reviewers();
        reviewers.is_empty() || reviewers.iter().any(|r| r.eq_ignore_ascii_case(username))
    }
}

pub(crate) async fn campaign(db: &Database, id: &str) -> Result<Option<CampaignRow>, sqlx::Error> {
    sqlx::query_as::<_, CampaignRow>(&format!(
        "SELECT {CAMPAIGN_COLUMNS} FROM review_campaigns WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db.pool())
    .await
}

/// The usernames of a reviewers field.
fn parse_reviewers(raw: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for name in raw.split(|c: char| c == ',' || c.is_whitespace()) {
        let name = name.trim();
        if name.is_empty() {
            continue;
        }
        if name.len() > 200 || !name.contains('@') {
            return Err(format!(
                "'{}' is not a Salesforce username (they look like name@company.com).",
                name.chars().take(60).collect::<String>()
            ));
        }
        if !out.iter().any(|o| o.eq_ignore_ascii_case(name)) {
            out.push(name.to_string());
        }
    }
    if out.len() > 50 {
        return Err("At most 50 reviewers.".into());
    }
    Ok(out)
}

/// A live grant's id and scope, for selecting.
#[derive(sqlx::FromRow)]
struct GrantScopeRow {
    id: String,
    scope: String,
}

/// Starts a campaign: its items are the live grants it selects. The caller checks the
/// role (owners). Returns its id.
pub async fn start(
    db: &Database,
    input: &CampaignInput,
    started_by: &str,
    actor: &Actor,
    clock: &dyn Clock,
    invite: &Invitation<'_>,
) -> Result<String, ReviewError> {
    let now = clock.now_ms();
    let mut errors = FieldErrors::default();
    let name = errors.check("name", shared::fields::line(&input.name, "Name", 1, 120));
    let selection = match CampaignSelection::parse(input.selection.trim()) {
        Ok(s) => Some(s),
        Err(_) => {
            errors.add("selection", "Choose which grants to review.");
            None
        }
    };
    let value = input.selection_value.trim().to_string();
    if selection.is_some_and(|s| s != CampaignSelection::All) && value.is_empty() {
        errors.add(
            "selection_value",
            "Name the access package or the object whose grants are reviewed.",
        );
    }
    let today = now.div_euclid(DAY_MS) * DAY_MS;
    let due_at = match crate::provisioning::teardown::access_ends_at_ms(input.due_date.trim()) {
        Some(due_at) if due_at > today + DAY_MS => Some(due_at),
        Some(_) => {
            errors.add("due_date", "The due date must be after today.");
            None
        }
        None => {
            errors.add("due_date", "Give the due date as YYYY-MM-DD.");
            None
        }
    };
    let reviewers = errors.check("reviewers", parse_reviewers(&input.reviewers));
    let default = match ReviewDecision::parse(input.default_decision.trim()) {
        Ok(d @ (ReviewDecision::Keep | ReviewDecision::Revoke)) => Some(d),
        _ => {
            errors.add(
                "default_decision",
                "Choose what an unanswered item becomes: keep or revoke.",
            );
            None
        }
    };
    let (Some(name), Some(selection), Some(due_at), Some(reviewers), Some(default)) =
        (name, selection, due_at, reviewers, default)
    else {
        return Err(ReviewError::Invalid(errors));
    };
    if !errors.is_empty() {
        return Err(ReviewError::Invalid(errors));
    }

    let mut tx = db.begin_write().await?;
    let mut query = crate::db::QueryBuilder::new("SELECT id, scope FROM grants WHERE state IN (");
    query
        .push_binds(REVIEWED_STATES.iter().map(|s| s.as_str()))
        .push(") ORDER BY created_at, id");
    let grants: Vec<GrantScopeRow> = query
        .build_query_as::<GrantScopeRow>()
        .fetch_all(&mut *tx.tx)
        .await?;
    let chosen: Vec<String> = grants
        .into_iter()
        .filter(|g| {
            let Ok(scope) = serde_json::from_str::<Scope>(&g.scope) else {
                return false;
            };
            match selection {
                CampaignSelection::All => true,
                CampaignSelection::Package => scope
                    .packages
                    .iter()
                    .any(|p| p.eq_ignore_ascii_case(&value)),
                CampaignSelection::Object => scope.object(&value).is_some(),
            }
        })
        .map(|g| g.id)
        .collect();
    if chosen.is_empty() {
        tx.commit().await?;
        return Err(invalid(
            "selection",
            "No ready or active grant matches: there is nothing to review.",
        ));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let value = (selection != CampaignSelection::All).then_some(value);
    sqlx::query(
        "INSERT INTO review_campaigns (id, name, selection_kind, selection_value, due_date, due_at, window_start, \
             reviewers, default_decision, state, started_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&id)
    .bind(&name)
    .bind(selection.as_str())
    .bind(&value)
    .bind(input.due_date.trim())
    .bind(due_at)
    .bind(now - WINDOW_DAYS * DAY_MS)
    .bind(serde_json::to_string(&reviewers).unwrap_or_else(|_| "[]".into()))
    .bind(default.as_str())
    .bind(CampaignState::Open.as_str())
    .bind(started_by)
    .bind(now)
    .execute(&mut *tx.tx)
    .await?;
    for grant in &chosen {
        sqlx::query("INSERT INTO review_items (campaign_id, grant_id) VALUES ($1, $2)")
            .bind(&id)
            .bind(grant)
            .execute(&mut *tx.tx)
            .await?;
    }
    audit::record(
        &mut tx.tx,
        actor,
        AuditAction::ReviewStarted,
        Target::ReviewCampaign,
        &id,
        json!({
            "name": name, "selection": selection.as_str(), "selection_value": value,
            "due_date": input.due_date.trim(), "reviewers": reviewers,
            "default": default.as_str(), "grants": chosen,
        }),
    )
    .await?;
    let mail = Mail {
        to: String::new(),
        subject: format!("Access review to do: {name}"),
        body: format!(
            "Hello,\n\nAn access review was started and you are one of its reviewers: \
             {name}, {} grant{}, due {} (UTC).\n\nFor each grant, keep, narrow or revoke \
             it; what is left unanswered at the due date becomes \"{}\".\n\n    {}/admin/reviews/{id}\n",
            chosen.len(),
            if chosen.len() == 1 { "" } else { "s" },
            input.due_date.trim(),
            default.as_str(),
            invite.public_url,
        ),
    };
    for to in reviewer_emails(&mut tx.tx, &reviewers).await? {
        invite
            .mailer
            .queue(&mut tx.tx, &Mail { to, ..mail.clone() })
            .await?;
    }
    tx.commit().await?;
    invite.mailer.wake();
    Ok(id)
}

/// Where a campaign's invitations go: the reviewers named, or every approver when none is.
pub struct Invitation<'a> {
    pub mailer: &'a crate::mail::Mailer,
    pub public_url: &'a str,
}

/// The addresses of a campaign's reviewers: those named who have signed in (the portal
/// knows their email from Salesforce; a username is not always a mailbox), or every
/// approver who has signed in when none is named.
async fn reviewer_emails(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    reviewers: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    if reviewers.is_empty() {
        return crate::roles::approver_emails(tx).await;
    }
    let mut emails: Vec<String> = Vec::new();
    for reviewer in reviewers {
        let email: Option<String> = sqlx::query_scalar(
            "SELECT email FROM portal_users WHERE LOWER(username) = LOWER($1) AND email <> ''",
        )
        .bind(reviewer)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(email) = email
            && !emails.iter().any(|e| e.eq_ignore_ascii_case(&email))
        {
            emails.push(email);
        }
    }
    Ok(emails)
}

/// The scope left when `drop` (granted objects and `Object.Field`s) is taken out of
/// `scope`: a strict subset, every object keeping at least one field.
pub fn narrowed(scope: &Scope, drop: &[String]) -> Result<Scope, String> {
    let items = scope.items();
    let mut objects: HashSet<String> = HashSet::new();
    let mut fields: HashSet<String> = HashSet::new();
    for raw in drop {
        let key = raw.trim();
        if key.is_empty() {
            continue;
        }
        if !items.keys().any(|k| k.eq_ignore_ascii_case(key)) {
            return Err(format!("'{key}' is not part of this grant's access."));
        }
        match key.split_once('.') {
            Some(_) => fields.insert(key.to_ascii_lowercase()),
            None => objects.insert(key.to_ascii_lowercase()),
        };
    }
    if objects.is_empty() && fields.is_empty() {
        return Err("Choose at least one object or field to drop.".into());
    }
    let mut out = scope.clone();
    out.objects
        .retain(|o| !objects.contains(&o.object.to_ascii_lowercase()));
    for object in &mut out.objects {
        let prefix = object.object.to_ascii_lowercase();
        object
            .fields
            .retain(|f, _| !fields.contains(&format!("{prefix}.{}", f.to_ascii_lowercase())));
        if object.fields.is_empty() {
            return Err(format!(
                "{} would keep no field: drop the object instead.",
                object.object
            ));
        }
        // An object keeps Edit only while one of its fields does.
        if object.level == Level::Edit && !object.fields.values().any(|l| *l == Level::Edit) {
            object.level = Level::Read;
        }
    }
    if out.objects.is_empty() {
        return Err("Nothing would be left: revoke the access instead.".into());
    }
    Ok(out)
}

/// An item with its grant, as a decision needs it.
#[derive(sqlx::FromRow)]
struct ItemRow {
    decision: Option<String>,
    scope: String,
    state: String,
}

/// What a decision started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decided {
    Kept,
    /// The narrowing is recorded; it is being applied and proven.
    Narrowing,
    /// The teardown started.
    Revoking,
}

/// Records a reviewer's decision on one item (the caller checks the role; the campaign's
/// reviewers are checked here). A narrowing or a revoke is then carried out by
/// [`crate::Portal::decide_review_item`].
async fn record_decision(
    db: &Database,
    campaign_id: &str,
    grant_id: &str,
    reviewer: &str,
    input: &DecisionInput,
    actor: &Actor,
    clock: &dyn Clock,
) -> Result<(CampaignRow, Decided), ReviewError> {
    let decision = ReviewDecision::parse(input.decision.trim())
        .map_err(|_| invalid("decision", "Choose keep, narrow or revoke."))?;
    let comment = input.comment.trim().to_string();
    let chars = comment.chars().count();
    if chars > MAX_COMMENT_CHARS {
        return Err(invalid(
            "comment",
            format!("Comment: at most {MAX_COMMENT_CHARS} characters ({chars} given)."),
        ));
    }
    if decision != ReviewDecision::Keep && comment.is_empty() {
        return Err(invalid(
            "comment",
            "Comment: say why the access is narrowed or revoked (the audit log keeps it).",
        ));
    }
    let campaign = campaign(db, campaign_id)
        .await?
        .ok_or(ReviewError::NotFound)?;
    if campaign.state != CampaignState::Open.as_str() {
        return Err(ReviewError::Conflict(
            "This access review is closed.".into(),
        ));
    }
    if !campaign.may_review(reviewer) {
        return Err(ReviewError::Forbidden(
            "You are not one of this access review's reviewers.".into(),
        ));
    }
    let now = clock.now_ms();
    let mut tx = db.begin_write().await?;
    let item: ItemRow = sqlx::query_as(
        "SELECT i.decision, g.scope, g.state FROM review_items i JOIN grants g ON g.id = i.grant_id \
         WHERE i.campaign_id = $1 AND i.grant_id = $2",
    )
    .bind(campaign_id)
    .bind(grant_id)
    .fetch_optional(&mut *tx.tx)
    .await?
    .ok_or(ReviewError::NotFound)?;
    if item.decision.is_some() {
        tx.commit().await?;
        return Err(ReviewError::Conflict(
            "This item is decided already.".into(),
        ));
    }
    let live = GrantState::parse(&item.state).is_ok_and(|s| REVIEWED_STATES.contains(&s));
    if !live && decision != ReviewDecision::Keep {
        tx.commit().await?;
        return Err(ReviewError::Conflict(format!(
            "This grant is {} now: only a ready or active grant can be narrowed or revoked.",
            item.state
        )));
    }
    let mut details = json!({
        "campaign": campaign.id, "campaign_name": campaign.name,
        "decision": decision.as_str(), "comment": comment,
    });
    let (action, narrow_scope) = match decision {
        ReviewDecision::Keep => (AuditAction::ReviewItemKept, None),
        ReviewDecision::Revoke => (AuditAction::ReviewItemRevoked, None),
        ReviewDecision::Narrow => {
            let scope: Scope =
                serde_json::from_str(&item.scope).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            let narrower = narrowed(&scope, &input.drop).map_err(|m| invalid("drop", m))?;
            details["dropped"] = json!(input.drop);
            details["scope"] = json!(narrower);
            details["previous_scope"] = json!(scope);
            (AuditAction::ReviewItemNarrowed, Some(narrower))
        }
    };
    let narrow_json = narrow_scope
        .as_ref()
        .map(|s| serde_json::to_string(s).unwrap_or_default());
    let updated = sqlx::query(
        "UPDATE review_items SET decision = $1, decided_by = $2, comment = $3, decided_at = $4, \
             narrow_scope = $5, narrow_state = $6 \
         WHERE campaign_id = $7 AND grant_id = $8 AND decision IS NULL",
    )
    .bind(decision.as_str())
    .bind(reviewer)
    .bind(&comment)
    .bind(now)
    .bind(&narrow_json)
    .bind(narrow_json.as_ref().map(|_| "pending"))
    .bind(campaign_id)
    .bind(grant_id)
    .execute(&mut *tx.tx)
    .await?;
    if updated.rows_affected() != 1 {
        tx.commit().await?;
        return Err(ReviewError::Conflict(
            "This item is decided already.".into(),
        ));
    }
    // The approved access is the narrower one from now on: later proofs expect it.
    if let Some(scope) = &narrow_json {
        sqlx::query("UPDATE grants SET scope = $1, updated_at = $2 WHERE id = $3")
            .bind(scope)
            .bind(now)
            .bind(grant_id)
            .execute(&mut *tx.tx)
            .await?;
    }
    audit::record(&mut tx.tx, actor, action, Target::Grant, grant_id, details).await?;
    close_if_done(&mut tx.tx, &campaign.id, now).await?;
    tx.commit().await?;
    Ok((
        campaign,
        match decision {
            ReviewDecision::Keep => Decided::Kept,
            ReviewDecision::Narrow => Decided::Narrowing,
            ReviewDecision::Revoke => Decided::Revoking,
        },
    ))
}

/// Closes the campaign once no item is left unanswered.
async fn close_if_done(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    campaign_id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let left: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM review_items WHERE campaign_id = $1 AND decision IS NULL",
    )
    .bind(campaign_id)
    .fetch_one(&mut **tx)
    .await?;
    if left > 0 {
        return Ok(());
    }
    let closed = sqlx::query(
        "UPDATE review_campaigns SET state = $1, closed_at = $2 WHERE id = $3 AND state = $4",
    )
    .bind(CampaignState::Closed.as_str())
    .bind(now)
    .bind(campaign_id)
    .bind(CampaignState::Open.as_str())
    .execute(&mut **tx)
    .await?;
    if closed.rows_affected() == 1 {
        let decisions: Vec<(String, i64)> = sqlx::query_as(
            "SELECT decision, COUNT(*) FROM review_items WHERE campaign_id = $1 GROUP BY decision",
        )
        .bind(campaign_id)
        .fetch_all(&mut **tx)
        .await?;
        let counts: BTreeMap<String, i64> = decisions.into_iter().collect();
        audit::record(
            tx,
            &Actor::system(),
            AuditAction::ReviewClosed,
            Target::ReviewCampaign,
            campaign_id,
            json!({ "decisions": counts }),
        )
        .await?;
    }
    Ok(())
}

/// The reason a review's revoke gives the teardown (and the contractor).
fn revoke_reason(campaign: &str, comment: &str) -> String {
    let reason = if comment.trim().is_empty() {
        format!("access review {campaign}")
    } else {
        format!("access review {campaign}: {}", comment.trim())
    };
    reason
        .chars()
        .take(crate::provisioning::teardown::MAX_REASON_CHARS)
        .collect()
}

/// What the reviews job did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReviewsRun {
    /// Items that took their campaign's default.
    pub defaulted: usize,
    /// Narrowings applied and proven.
    pub narrowed: usize,
    /// Teardowns started for revoked items.
    pub revoked: usize,
}

#[derive(sqlx::FromRow)]
struct PendingNarrowing {
    campaign_id: String,
    grant_id: String,
    narrow_scope: Option<String>,
}

#[derive(sqlx::FromRow)]
struct RevokeDue {
    grant_id: String,
    name: String,
    comment: Option<String>,
}

impl crate::Portal {
    /// Starts an access review campaign ([`start`]); its id. The caller checks the role
    /// (owners).
    pub async fn start_review(
        &self,
        input: &CampaignInput,
        started_by: &str,
        actor: &Actor,
    ) -> Result<String, ReviewError> {
        let invite = Invitation {
            mailer: &self.mail,
            public_url: &self.settings.public_url,
        };
        start(
            &self.db,
            input,
            started_by,
            actor,
            self.clock.as_ref(),
            &invite,
        )
        .await
    }

    /// A reviewer's decision on one item: recorded, then carried out (a narrowing applied
    /// and proven, a revoke's teardown started). The caller checks the role (approvers and
    /// owners).
    pub async fn decide_review_item(
        &self,
        campaign_id: &str,
        grant_id: &str,
        reviewer: &str,
        input: &DecisionInput,
        actor: &Actor,
    ) -> Result<Decided, ReviewError> {
        let (campaign, decided) = record_decision(
            &self.db,
            campaign_id,
            grant_id,
            reviewer,
            input,
            actor,
            self.clock.as_ref(),
        )
        .await?;
        match decided {
            Decided::Kept => {}
            Decided::Narrowing => {
                self.apply_narrowing(campaign_id, grant_id).await?;
            }
            Decided::Revoking => {
                self.revoke_for_review(
                    grant_id,
                    &revoke_reason(&campaign.name, &input.comment),
                    actor,
                )
                .await?;
            }
        }
        Ok(decided)
    }

    /// Starts a review's revoke; a grant no longer live is left as it is.
    async fn revoke_for_review(
        &self,
        grant_id: &str,
        reason: &str,
        actor: &Actor,
    ) -> Result<bool, ReviewError> {
        match self.revoke_access(grant_id, actor, reason).await {
            Ok(_) => Ok(true),
            Err(crate::provisioning::RevokeError::Database(e)) => Err(e.into()),
            Err(e) => {
                tracing::warn!(grant_id, error = %e, "an access review's revoke was not started");
                Ok(false)
            }
        }
    }

    /// Applies and proves a pending narrowing; whether it is done (false: it failed, or
    /// waits to be tried again).
    async fn apply_narrowing(
        &self,
        campaign_id: &str,
        grant_id: &str,
    ) -> Result<bool, ReviewError> {
        let scope: Option<Option<String>> = sqlx::query_scalar(
            "SELECT narrow_scope FROM review_items WHERE campaign_id = $1 AND grant_id = $2 AND narrow_state = 'pending'",
        )
        .bind(campaign_id)
        .bind(grant_id)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(Some(scope)) = scope else {
            return Ok(false);
        };
        let scope: Scope =
            serde_json::from_str(&scope).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        let outcome = self.provisioning_engine().narrow(grant_id, &scope).await;
        let now = self.clock.now_ms();
        let mut tx = self.db.begin_write().await?;
        let done = match outcome {
            Ok(narrowed) => {
                let proof = serde_json::to_string(&narrowed.proof).unwrap_or_default();
                sqlx::query(
                    "UPDATE review_items SET narrow_state = 'done', narrow_error = NULL, narrow_proof = $1, narrowed_at = $2 \
                     WHERE campaign_id = $3 AND grant_id = $4 AND narrow_state = 'pending'",
                )
                .bind(&proof)
                .bind(now)
                .bind(campaign_id)
                .bind(grant_id)
                .execute(&mut *tx.tx)
                .await?;
                sqlx::query("UPDATE grants SET api_calls = api_calls + $1 WHERE id = $2")
                    .bind(narrowed.api_calls as i64)
                    .bind(grant_id)
                    .execute(&mut *tx.tx)
                    .await?;
                audit::record(
                    &mut tx.tx,
                    &Actor::system(),
                    AuditAction::ReviewNarrowApplied,
                    Target::Grant,
                    grant_id,
                    json!({
                        "campaign": campaign_id, "salesforce": narrowed.removed,
                        "proof": narrowed.proof, "api_calls": narrowed.api_calls,
                    }),
                )
                .await?;
                true
            }
            Err(crate::provisioning::narrow::NarrowError::Org {
                message,
                transient: true,
            }) => {
                // Left pending: the reviews job tries again.
                sqlx::query(
                    "UPDATE review_items SET narrow_error = $1 WHERE campaign_id = $2 AND grant_id = $3",
                )
                .bind(&message)
                .bind(campaign_id)
                .bind(grant_id)
                .execute(&mut *tx.tx)
                .await?;
                false
            }
            Err(e) => {
                let message = e.to_string();
                sqlx::query(
                    "UPDATE review_items SET narrow_state = 'failed', narrow_error = $1 \
                     WHERE campaign_id = $2 AND grant_id = $3 AND narrow_state = 'pending'",
                )
                .bind(&message)
                .bind(campaign_id)
                .bind(grant_id)
                .execute(&mut *tx.tx)
                .await?;
                audit::record_outcome(
                    &mut tx.tx,
                    &Actor::system(),
                    AuditAction::ReviewNarrowFailed,
                    audit::Outcome::Failure,
                    Target::Grant,
                    grant_id,
                    json!({ "campaign": campaign_id, "error": message }),
                )
                .await?;
                false
            }
        };
        tx.commit().await?;
        Ok(done)
    }

    /// The reviews job ([`ReviewsRun`]): unanswered items of campaigns past their due date
    /// take the default, narrowings not finished are carried on, and revoked items whose
    /// teardown did not start are started.
    pub async fn run_reviews(&self) -> Result<ReviewsRun, ReviewError> {
        let now = self.clock.now_ms();
        let mut run = ReviewsRun::default();
        let due: Vec<CampaignRow> = sqlx::query_as::<_, CampaignRow>(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM review_campaigns WHERE state = $1 AND due_at <= $2 ORDER BY due_at, id"
        ))
        .bind(CampaignState::Open.as_str())
        .bind(now)
        .fetch_all(self.db.pool())
        .await?;
        for campaign in due {
            let default = campaign.default();
            let mut tx = self.db.begin_write().await?;
            let unanswered: Vec<String> = sqlx::query_scalar(
                "SELECT grant_id FROM review_items WHERE campaign_id = $1 AND decision IS NULL ORDER BY grant_id",
            )
            .bind(&campaign.id)
            .fetch_all(&mut *tx.tx)
            .await?;
            for grant_id in &unanswered {
                sqlx::query(
                    "UPDATE review_items SET decision = $1, decided_by = 'default', comment = $2, decided_at = $3 \
                     WHERE campaign_id = $4 AND grant_id = $5 AND decision IS NULL",
                )
                .bind(default.as_str())
                .bind("not answered by the due date")
                .bind(now)
                .bind(&campaign.id)
                .bind(grant_id)
                .execute(&mut *tx.tx)
                .await?;
                audit::record(
                    &mut tx.tx,
                    &Actor::system(),
                    AuditAction::ReviewItemDefaulted,
                    Target::Grant,
                    grant_id,
                    json!({
                        "campaign": campaign.id, "campaign_name": campaign.name,
                        "decision": default.as_str(), "due_date": campaign.due_date,
                    }),
                )
                .await?;
            }
            close_if_done(&mut tx.tx, &campaign.id, now).await?;
            tx.commit().await?;
            run.defaulted += unanswered.len();
        }

        // Revoked items (by a reviewer or by default) whose grant is still live.
        let mut query = crate::db::QueryBuilder::new(
            "SELECT i.grant_id, c.name, i.comment FROM review_items i \
             JOIN review_campaigns c ON c.id = i.campaign_id JOIN grants g ON g.id = i.grant_id \
             WHERE i.decision = ",
        );
        query
            .push_bind(ReviewDecision::Revoke.as_str())
            .push(" AND g.state IN (")
            .push_binds(REVIEWED_STATES.iter().map(|s| s.as_str()))
            .push(")");
        let revokes: Vec<RevokeDue> = query
            .build_query_as::<RevokeDue>()
            .fetch_all(self.db.pool())
            .await?;
        for item in revokes {
            let comment = item.comment.unwrap_or_default();
            let reason = revoke_reason(&item.name, &comment);
            if self
                .revoke_for_review(&item.grant_id, &reason, &Actor::system())
                .await?
            {
                run.revoked += 1;
            }
        }

        let pending: Vec<PendingNarrowing> = sqlx::query_as(
            "SELECT campaign_id, grant_id, narrow_scope FROM review_items WHERE narrow_state = 'pending' \
             ORDER BY decided_at",
        )
        .fetch_all(self.db.pool())
        .await?;
        for item in pending {
            if item.narrow_scope.is_some()
                && self
                    .apply_narrowing(&item.campaign_id, &item.grant_id)
                    .await?
            {
                run.narrowed += 1;
            }
        }
        Ok(run)
    }
}
