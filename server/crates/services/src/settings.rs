//! Settings an owner edits in the portal: how many approvals a request needs and how far
//! ahead an end date may be. Stored in `settings` (overriding the configured defaults),
//! every change audited.

use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::FieldErrors;

use crate::Portal;
use crate::audit::{self, Actor, AuditAction, Target};

/// The owner-editable settings as they are now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsView {
    /// Approvals a newly verified, non-risky request needs (1 or 2; risky ones always 2).
    pub approvals_required: i64,
    /// How many days ahead an end date may be (1 to 730).
    pub max_end_days: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{0}")]
    Invalid(FieldErrors),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl Portal {
    /// The longest term a request may ask for, in days (the setting, else the default).
    pub async fn max_end_days(&self) -> Result<i64, sqlx::Error> {
        Ok(self
            .setting_i64("max_end_days")
            .await?
            .unwrap_or(self.settings.max_end_days))
    }

    pub async fn settings_view(&self) -> Result<SettingsView, sqlx::Error> {
        Ok(SettingsView {
            approvals_required: self
                .setting_i64("approvals_required")
                .await?
                .unwrap_or(self.settings.approvals_required)
                .clamp(1, 2),
            max_end_days: self
                .setting_i64("max_end_days")
                .await?
                .unwrap_or(self.settings.max_end_days),
        })
    }

    /// Changes the settings (owners only; checked by the caller). A change applies to
    /// requests verified from now on: each request keeps the number of approvals it was
    /// given. Audited as `settings.changed` with the old and new values.
    pub async fn update_settings(
        &self,
        approvals_required: i64,
        max_end_days: i64,
        actor: &Actor,
    ) -> Result<(), SettingsError> {
        let mut errors = FieldErrors::default();
        if !(1..=2).contains(&approvals_required) {
            errors.add("approvals_required", "Choose 1 or 2 approvals.");
        }
        if !(1..=730).contains(&max_end_days) {
            errors.add(
                "max_end_days",
                "The longest access must be between 1 and 730 days.",
            );
        }
        if !errors.is_empty() {
            return Err(SettingsError::Invalid(errors));
        }
        let mut tx = self.db.begin_write().await?;
        let mut changes = serde_json::Map::new();
        for (key, default, new) in [
            (
                "approvals_required",
                self.settings.approvals_required,
                approvals_required,
            ),
            ("max_end_days", self.settings.max_end_days, max_end_days),
        ] {
            // Read in the transaction, so the audit entry's "from" is what was replaced.
            let old = sqlx::query_scalar::<_, String>("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_optional(&mut *tx.tx)
                .await?
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(default);
            sqlx::query(
                "INSERT INTO settings (key, value, updated_by, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_by = excluded.updated_by, \
                 updated_at = excluded.updated_at",
            )
            .bind(key)
            .bind(new.to_string())
            .bind(&actor.name)
            .bind(self.clock().now_ms())
            .execute(&mut *tx.tx)
            .await?;
            if old != new {
                changes.insert(key.to_string(), json!({ "from": old, "to": new }));
            }
        }
        if changes.is_empty() {
            // Nothing changed: no audit entry (and nothing to commit that matters).
            return Ok(());
        }
        audit::record(
            &mut tx.tx,
            actor,
            AuditAction::SettingsChanged,
            Target::Settings,
            "portal",
            serde_json::Value::Object(changes),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
