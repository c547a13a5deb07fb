//! What the pages show of renewal: the contractor's part of the status page, the
//! extensions waiting in the approvers' queue, and an extension's page.

use shared::auth::SignedInUser;
use shared::grant::GrantState;
use shared::renewal::{
    ExtensionDecisionRow, ExtensionQueueRow, ExtensionState, ExtensionSummary, ExtensionView,
    RenewalView,
};

use crate::Portal;
use crate::clock::rfc3339;

use super::extension::{EXTENSION_COLUMNS, ExtensionRow};

impl Portal {
    /// The renewal part of the status page behind `token` (None: not a status link).
    pub async fn renewal_view(&self, token: &str) -> Result<Option<RenewalView>, sqlx::Error> {
        let Some((request_id, _)) = self.request_of_status_token(token).await? else {
            return Ok(None);
        };
        let today = self.clock().today();
        let max_end_days = self.max_end_days().await?;
        let grant = self.grant_of_request_row(&request_id).await?;
        let extensions: Vec<ExtensionRow> = match &grant {
            Some(grant) => {
                sqlx::query_as(&format!(
                    "SELECT {EXTENSION_COLUMNS} FROM extension_requests WHERE grant_id = $1 \
                     ORDER BY created_at DESC, id DESC"
                ))
                .bind(&grant.id)
                .fetch_all(self.db.pool())
                .await?
            }
            None => Vec::new(),
        };
        let waiting = extensions
            .iter()
            .any(|e| e.extension_state() == ExtensionState::Pending);
        let min = grant
            .as_ref()
            .and_then(|g| chrono::NaiveDate::parse_from_str(&g.end_date, "%Y-%m-%d").ok())
            .map_or(today, |end| end.max(today))
            + chrono::Duration::days(1);
        Ok(Some(RenewalView {
            grant_state: grant.as_ref().and_then(|g| g.grant_state()),
            end_date: grant.as_ref().map(|g| g.end_date.clone()),
            can_ask: grant.as_ref().is_some_and(|g| g.renewable()) && !waiting,
            min_new_end_date: min.to_string(),
            max_new_end_date: (today + chrono::Duration::days(max_end_days)).to_string(),
            extensions: extensions
                .into_iter()
                .map(|e| ExtensionSummary {
                    state: e.extension_state(),
                    waiting_for_salesforce: e.extension_state() == ExtensionState::Approved
                        && e.applied_at.is_none(),
                    current_end_date: e.current_end_date,
                    new_end_date: e.new_end_date,
                    reason: e.reason,
                    asked_at: rfc3339(e.created_at),
                })
                .collect(),
        }))
    }

    /// The extensions waiting for approvers, oldest first.
    pub async fn extension_queue(&self) -> Result<Vec<ExtensionQueueRow>, sqlx::Error> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: String,
            company: String,
            contact_email: String,
            current_end_date: String,
            new_end_date: String,
            approvals_required: i64,
            created_at: i64,
            approvals: i64,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT e.id, g.company, g.contact_email, e.current_end_date, e.new_end_date, \
             e.approvals_required, e.created_at, \
             (SELECT COUNT(*) FROM extension_decisions d WHERE d.extension_id = e.id AND d.decision = 'approved') AS approvals \
             FROM extension_requests e JOIN grants g ON g.id = e.grant_id \
             WHERE e.state = $1 AND g.state IN ($2, $3, $4) ORDER BY e.created_at, e.id",
        )
        .bind(ExtensionState::Pending.as_str())
        // A grant whose access ended (or is ending) has nothing left to extend.
        .bind(GrantState::Ready.as_str())
        .bind(GrantState::Active.as_str())
        .bind(GrantState::Suspended.as_str())
        .fetch_all(self.db.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| ExtensionQueueRow {
                id: r.id,
                company: r.company,
                contact_email: r.contact_email,
                current_end_date: r.current_end_date,
                new_end_date: r.new_end_date,
                approvals: r.approvals,
                approvals_required: r.approvals_required,
                asked_at: rfc3339(r.created_at),
            })
            .collect())
    }

    /// Extension `id` as `viewer` (an approver or owner) sees it.
    pub async fn extension_view(
        &self,
        id: &str,
        viewer: &SignedInUser,
    ) -> Result<Option<ExtensionView>, sqlx::Error> {
        let Some(extension) = sqlx::query_as::<_, ExtensionRow>(&format!(
            "SELECT {EXTENSION_COLUMNS} FROM extension_requests WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?
        else {
            return Ok(None);
        };
        let Some(grant) = self.grant_of_request_row(&extension.request_id).await? else {
            return Ok(None);
        };
        let decisions: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT approver, decision, reason, at FROM extension_decisions \
             WHERE extension_id = $1 ORDER BY at, id",
        )
        .bind(id)
        .fetch_all(self.db.pool())
        .await?;
        let approvals = decisions.iter().filter(|d| d.1 == "approved").count() as i64;
        let viewer_key = viewer.username.trim().to_ascii_lowercase();
        let state = extension.extension_state();
        let contact = grant.contact_email.trim().to_ascii_lowercase();
        let own = viewer_key == contact || viewer.email.trim().to_ascii_lowercase() == contact;
        let can_decide = state == ExtensionState::Pending
            && grant.renewable()
            && !own
            && !decisions.iter().any(|d| d.0 == viewer_key);
        Ok(Some(ExtensionView {
            id: extension.id,
            grant_id: grant.id.clone(),
            request_id: grant.request_id.clone(),
            company: grant.company.clone(),
            contact_email: grant.contact_email.clone(),
            grant_state: grant
                .grant_state()
                .unwrap_or(shared::GrantState::NeedsAttention),
            state,
            current_end_date: extension.current_end_date,
            new_end_date: extension.new_end_date,
            reason: extension.reason,
            asked_at: rfc3339(extension.created_at),
            access: grant.access(),
            approvals,
            approvals_required: extension.approvals_required,
            decisions: decisions
                .into_iter()
                .map(|(approver, decision, reason, at)| ExtensionDecisionRow {
                    approver,
                    decision,
                    reason,
                    at: rfc3339(at),
                })
                .collect(),
            apply_error: extension.apply_error,
            can_decide,
        }))
    }
}
