//! What the review pages show: the campaigns, a campaign's items (the grant, the last
//! proof's table, the objects and fields the contractor used in the window) and the CSV of
//! decisions.

use shared::access_review::{
    CampaignRow as CampaignDto, CampaignSelection, CampaignState, CampaignView, Droppable,
    ProofLine, ReviewDecision, ReviewItemView, ReviewsView, UsedObject,
};
use shared::grant::GrantState;
use shared::scope::Scope;

use super::{CAMPAIGN_COLUMNS, CampaignRow, campaign};
use crate::clock::rfc3339;
use crate::db::Database;
use crate::provisioning::outputs::ProofMade;

const DAY_MS: i64 = 86_400_000;

/// The last proof of grant `grant_id` and when it ran: the newest of the provisioning
/// proof, the proofs access reviews ran after narrowing it and the re-proofs of drift
/// detection (`crate::assurance::last_proof`, whose table also has the live configuration's
/// lines). The one place the reviews read a proof.
pub async fn proof_of(
    db: &Database,
    grant_id: &str,
) -> Result<Option<(Vec<ProofLine>, Option<i64>)>, sqlx::Error> {
    let mut proofs: Vec<(Vec<ProofLine>, Option<i64>)> = Vec::new();
    // A re-proof that could not run has no table worth showing.
    if let Some(record) = crate::assurance::last_proof(db, grant_id).await?
        && record.error.is_none()
    {
        let at = chrono::DateTime::parse_from_rfc3339(&record.proved_at)
            .ok()
            .map(|t| t.timestamp_millis());
        proofs.push((record.checks, at));
    }
    let narrowed: Option<(Option<String>, Option<i64>)> = sqlx::query_as(
        "SELECT narrow_proof, narrowed_at FROM review_items \
         WHERE grant_id = $1 AND narrow_state = 'done' ORDER BY narrowed_at DESC LIMIT 1",
    )
    .bind(grant_id)
    .fetch_optional(db.pool())
    .await?;
    if let Some((Some(raw), at)) = narrowed
        && let Ok(proof) = serde_json::from_str::<ProofMade>(&raw)
    {
        proofs.push((crate::assurance::proof_lines(&proof.checks), at));
    }
    // Both come after the grant's provisioning (a re-proof needs its proof to have passed,
    // a narrowing a live grant), whatever the clocks said: the newer of the two by the
    // portal's clock, which wrote both; on a tie the re-proof.
    if !proofs.is_empty() {
        return Ok(proofs
            .into_iter()
            .rev()
            .max_by_key(|(_, at)| at.unwrap_or(i64::MIN)));
    }
    let step: Option<(Option<String>, Option<i64>)> = sqlx::query_as(
        "SELECT output, finished_at FROM provisioning_steps WHERE grant_id = $1 AND step = $2",
    )
    .bind(grant_id)
    .bind(shared::grant::StepName::Proof.as_str())
    .fetch_optional(db.pool())
    .await?;
    Ok(step.and_then(|(output, at)| {
        let proof = serde_json::from_str::<ProofMade>(&output?).ok()?;
        Some((crate::assurance::proof_lines(&proof.checks), at))
    }))
}

/// The grant's integration user, as the user step recorded it (15 characters).
async fn user_key(db: &Database, grant_id: &str) -> Result<Option<String>, sqlx::Error> {
    let output: Option<Option<String>> = sqlx::query_scalar(
        "SELECT output FROM provisioning_steps WHERE grant_id = $1 AND step = $2",
    )
    .bind(grant_id)
    .bind(shared::grant::StepName::User.as_str())
    .fetch_optional(db.pool())
    .await?;
    Ok(output
        .flatten()
        .and_then(|o| serde_json::from_str::<crate::provisioning::outputs::UserMade>(&o).ok())
        .and_then(|u| salesforce::SalesforceId::parse(&u.user_id).ok())
        .map(|id| id.as_15().to_string()))
}

fn selection_label(row: &CampaignRow) -> String {
    let value = row.selection_value.clone().unwrap_or_default();
    match CampaignSelection::parse(&row.selection_kind) {
        Ok(CampaignSelection::Package) => format!("access package {value}"),
        Ok(CampaignSelection::Object) => format!("grants that reach {value}"),
        _ => CampaignSelection::All.label().to_string(),
    }
}

async fn dto(db: &Database, row: &CampaignRow) -> Result<CampaignDto, sqlx::Error> {
    let (items, decided): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(decision) FROM review_items WHERE campaign_id = $1")
            .bind(&row.id)
            .fetch_one(db.pool())
            .await?;
    Ok(CampaignDto {
        id: row.id.clone(),
        name: row.name.clone(),
        state: CampaignState::parse(&row.state).unwrap_or(CampaignState::Open),
        due_date: row.due_date.clone(),
        default_decision: row.default(),
        selection: selection_label(row),
        items,
        decided,
        started_by: row.started_by.clone(),
        created_at: rfc3339(row.created_at),
    })
}

#[derive(sqlx::FromRow)]
struct ItemRow {
    grant_id: String,
    request_id: String,
    company: String,
    contact_email: String,
    state: String,
    end_date: String,
    scope: String,
    decision: Option<String>,
    decided_by: Option<String>,
    comment: Option<String>,
    decided_at: Option<i64>,
    narrow_state: Option<String>,
    narrow_error: Option<String>,
}

/// One item as the page shows it.
async fn item_view(
    db: &Database,
    campaign: &CampaignRow,
    row: ItemRow,
    viewer: &str,
    now: i64,
) -> Result<ReviewItemView, sqlx::Error> {
    let scope: Option<Scope> = serde_json::from_str(&row.scope).ok();
    let proof = proof_of(db, &row.grant_id).await?;
    let window_end = now.min(campaign.due_at).max(campaign.window_start);
    let used = match user_key(db, &row.grant_id).await? {
        Some(user) => {
            crate::usage::entities::used_between(
                db,
                &user,
                campaign.window_start.div_euclid(DAY_MS) * DAY_MS,
                window_end + DAY_MS,
            )
            .await?
        }
        None => Vec::new(),
    };
    let used: Vec<UsedObject> = used
        .into_iter()
        .map(|u| {
            let access = scope.as_ref().and_then(|s| s.object(&u.entity));
            UsedObject {
                granted_fields: access
                    .map(|a| {
                        a.fields
                            .iter()
                            .map(|(f, l)| format!("{}.{f} ({})", a.object, l.as_str()))
                            .collect()
                    })
                    .unwrap_or_default(),
                granted: access.is_some(),
                object: u.entity,
                calls: u.calls,
                days: u.days,
            }
        })
        .collect();
    let used_object = |object: &str| {
        used.iter()
            .any(|u| u.granted && u.object.eq_ignore_ascii_case(object))
    };
    let droppable = scope
        .as_ref()
        .map(|s| {
            s.items()
                .into_keys()
                .map(|key| {
                    let object = key.split('.').next().unwrap_or_default().to_string();
                    Droppable {
                        label: key.clone(),
                        used: used_object(&object),
                        key,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let grant_state = GrantState::parse(&row.state).unwrap_or(GrantState::Ready);
    let decision = row
        .decision
        .as_deref()
        .and_then(|d| ReviewDecision::parse(d).ok());
    Ok(ReviewItemView {
        can_decide: decision.is_none()
            && campaign.state == CampaignState::Open.as_str()
            && campaign.may_review(viewer),
        access: scope.as_ref().map(Scope::summary).unwrap_or_default(),
        proof_at: proof.as_ref().and_then(|(_, at)| *at).map(rfc3339),
        proof: proof.map(|(lines, _)| lines).unwrap_or_default(),
        used,
        droppable,
        decision,
        decided_by: row.decided_by,
        comment: row.comment,
        decided_at: row.decided_at.map(rfc3339),
        narrow_state: row.narrow_state,
        narrow_error: row.narrow_error,
        grant_id: row.grant_id,
        request_id: row.request_id,
        company: row.company,
        contact_email: row.contact_email,
        grant_state,
        end_date: row.end_date,
    })
}

const ITEM_SQL: &str = "SELECT i.grant_id, g.request_id, g.company, g.contact_email, g.state, g.end_date, g.scope, \
     i.decision, i.decided_by, i.comment, i.decided_at, i.narrow_state, i.narrow_error \
     FROM review_items i JOIN grants g ON g.id = i.grant_id WHERE i.campaign_id = $1 ORDER BY g.company, i.grant_id";

/// One row of the decisions' CSV.
#[derive(sqlx::FromRow)]
struct DecisionRow {
    grant_id: String,
    company: String,
    contact_email: String,
    decision: Option<String>,
    decided_by: Option<String>,
    comment: Option<String>,
    decided_at: Option<i64>,
    narrow_state: Option<String>,
    narrow_scope: Option<String>,
}

/// One CSV field (RFC 4180 quoting); a value a spreadsheet would run as a formula gets a
/// leading `'`.
fn csv_field(out: &mut String, value: &str) {
    let risky = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky || value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        if risky {
            out.push('\'');
        }
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

impl crate::Portal {
    /// The page `/admin/reviews` for `viewer` (`can_start`: an owner).
    pub async fn reviews_view(&self, can_start: bool) -> Result<ReviewsView, sqlx::Error> {
        let rows: Vec<CampaignRow> = sqlx::query_as(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM review_campaigns ORDER BY created_at DESC, id LIMIT 200"
        ))
        .fetch_all(self.db.pool())
        .await?;
        let mut campaigns = Vec::with_capacity(rows.len());
        for row in &rows {
            campaigns.push(dto(&self.db, row).await?);
        }
        let packages = self.packages().await?.into_iter().map(|p| p.name).collect();
        let tomorrow = self.clock.now_ms().div_euclid(DAY_MS) * DAY_MS + DAY_MS;
        Ok(ReviewsView {
            campaigns,
            packages,
            can_start,
            min_due_date: rfc3339(tomorrow).chars().take(10).collect(),
        })
    }

    /// The page `/admin/reviews/<id>` for reviewer `viewer`; None for an unknown campaign.
    pub async fn review_campaign(
        &self,
        id: &str,
        viewer: &str,
    ) -> Result<Option<CampaignView>, sqlx::Error> {
        let Some(row) = campaign(&self.db, id).await? else {
            return Ok(None);
        };
        let now = self.clock.now_ms();
        let items: Vec<ItemRow> = sqlx::query_as(ITEM_SQL)
            .bind(id)
            .fetch_all(self.db.pool())
            .await?;
        let mut views = Vec::with_capacity(items.len());
        for item in items {
            views.push(item_view(&self.db, &row, item, viewer, now).await?);
        }
        Ok(Some(CampaignView {
            campaign: dto(&self.db, &row).await?,
            reviewers: row.reviewers(),
            window_start: rfc3339(row.window_start),
            items: views,
        }))
    }

    /// The decisions of campaign `id` as CSV (a header and one line per item); None for an
    /// unknown campaign.
    pub async fn review_decisions_csv(&self, id: &str) -> Result<Option<String>, sqlx::Error> {
        let Some(row) = campaign(&self.db, id).await? else {
            return Ok(None);
        };
        let items: Vec<DecisionRow> = sqlx::query_as(
            "SELECT i.grant_id, g.company, g.contact_email, i.decision, i.decided_by, i.comment, i.decided_at, \
                 i.narrow_state, i.narrow_scope \
             FROM review_items i JOIN grants g ON g.id = i.grant_id WHERE i.campaign_id = $1 ORDER BY g.company, i.grant_id",
        )
        .bind(id)
        .fetch_all(self.db.pool())
        .await?;
        let mut out = String::from(
            "campaign,campaign_name,due_date,grant_id,company,contact_email,decision,decided_by,decided_at,comment,narrow_state,narrowed_to\r\n",
        );
        for item in items {
            let narrowed_to = item
                .narrow_scope
                .as_deref()
                .and_then(|s| serde_json::from_str::<Scope>(s).ok())
                .map(|s| s.summary().join("; "))
                .unwrap_or_default();
            let fields = [
                row.id.clone(),
                row.name.clone(),
                row.due_date.clone(),
                item.grant_id,
                item.company,
                item.contact_email,
                item.decision.unwrap_or_default(),
                item.decided_by.unwrap_or_default(),
                item.decided_at.map(rfc3339).unwrap_or_default(),
                item.comment.unwrap_or_default(),
                item.narrow_state.unwrap_or_default(),
                narrowed_to,
            ];
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                csv_field(&mut out, f);
            }
            out.push_str("\r\n");
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        let mut out = String::new();
        csv_field(&mut out, "plain");
        out.push(',');
        csv_field(&mut out, "a, \"b\"");
        out.push(',');
        csv_field(&mut out, "=SUM(A1)");
        assert_eq!(out, "plain,\"a, \"\"b\"\"\",\"'=SUM(A1)\"");
    }
}
