//! The "Secret rotation" part of a grant's page.

use shared::rotation::{RotationSummary, RotationView};

use super::{DAY_MS, ROTATABLE, ROTATION_COLUMNS, RotationRow};
use crate::Portal;
use crate::clock::rfc3339;

impl Portal {
    /// The grant's secret, its age against the maximum, and its rotations (`None`: no such
    /// grant).
    pub async fn rotation_view(&self, grant_id: &str) -> Result<Option<RotationView>, sqlx::Error> {
        let grant: Option<(String, Option<i64>, Option<i64>, i64)> = sqlx::query_as(
            "SELECT state, secret_max_age_days, secret_issued_at, created_at FROM grants WHERE id = $1",
        )
        .bind(grant_id)
        .fetch_optional(self.db.pool())
        .await?;
        let Some((state, own_max, issued_at, created_at)) = grant else {
            return Ok(None);
        };
        let rotations: Vec<RotationRow> = sqlx::query_as(&format!(
            "SELECT {ROTATION_COLUMNS} FROM secret_rotations r WHERE r.grant_id = $1 \
             ORDER BY r.started_at DESC, r.id DESC"
        ))
        .bind(grant_id)
        .fetch_all(self.db.pool())
        .await?;
        let default = self.settings.secret_max_age_days;
        let max_age_days = own_max.unwrap_or(default);
        let since = issued_at.unwrap_or(created_at);
        let under_way = rotations
            .iter()
            .any(|r| matches!(r.state.as_str(), "staging" | "staged"));
        Ok(Some(RotationView {
            grant_id: grant_id.to_string(),
            max_age_days,
            max_age_is_override: own_max.is_some(),
            default_max_age_days: default,
            secret_since: rfc3339(since),
            due_at: (max_age_days > 0).then(|| rfc3339(since + max_age_days * DAY_MS)),
            can_rotate: ROTATABLE.iter().any(|s| s.as_str() == state) && !under_way,
            rotations: rotations
                .into_iter()
                .map(|r| RotationSummary {
                    state: r.rotation_state(),
                    method: r.rotation_method(),
                    new_app: r.new_app_name.clone(),
                    id: r.id,
                    reason: r.reason,
                    started_by: r.started_by,
                    started_at: rfc3339(r.started_at),
                    deadline_at: rfc3339(r.deadline_at),
                    collected: r.collected == 1,
                    completed_at: r.completed_at.map(rfc3339),
                    error: r.error,
                })
                .collect(),
        }))
    }
}
