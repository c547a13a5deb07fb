//! Renewal: before a grant ends, reminders to the contractor and the approvers (14, 3 and 1
//! days before its end date, each once: [`reminders`]); the contractor's request for more
//! time from the status page, which approvers approve or refuse under the rules of a
//! decision ([`extension`]); an approved one moves the permission set assignments'
//! `ExpirationDate` in Salesforce and the grant's end date, and nothing else (no new user,
//! app or secret: the credential the contractor holds keeps working).
//!
//! Above `decisions` (it uses the decision's rules: one decision per approver, the reason)
//! and `provisioning` (it reads the assignment step's output for the assignments' ids).

use shared::GrantState;
use shared::request::RequestState;
use sqlx::{Any, Transaction};

use crate::Portal;
use crate::db::DatabaseKind;

pub mod extension;
pub mod reminders;
mod view;

pub use extension::{ExtensionError, ExtensionInput, ExtensionOutcome};
pub use reminders::{REMINDER_DAYS, ReminderRun};

/// The grant states in which a grant may be extended and its end reminded of.
pub const RENEWABLE: [GrantState; 3] =
    [GrantState::Ready, GrantState::Active, GrantState::Suspended];

/// A grant with what renewal needs of it and of its request.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct GrantRow {
    pub id: String,
    pub request_id: String,
    pub state: String,
    pub company: String,
    pub contact_email: String,
    pub scope: String,
    pub end_date: String,
    /// The approvals its request needed (1 or 2).
    pub approvals_required: i64,
}

impl GrantRow {
    pub fn grant_state(&self) -> Option<GrantState> {
        GrantState::parse(&self.state).ok()
    }

    pub fn renewable(&self) -> bool {
        self.grant_state().is_some_and(|s| RENEWABLE.contains(&s))
    }

    /// `Case: read`, … : what the grant gives.
    pub fn access(&self) -> Vec<String> {
        crate::decisions::parse_scope(&self.scope)
            .items()
            .into_iter()
            .map(|(item, level)| format!("{item}: {}", level.as_str()))
            .collect()
    }

    /// Approvals an extension of this grant needs: as many as its request needed, and two
    /// when what it grants is risky (the two-person rule of a decision).
    pub fn approvals_for_extension(&self) -> i64 {
        let risky = !crate::decisions::parse_scope(&self.scope)
            .risks()
            .is_empty();
        let required = self.approvals_required.clamp(1, 2);
        if risky { 2 } else { required }
    }
}

const GRANT_COLUMNS: &str = "g.id, g.request_id, g.state, g.company, g.contact_email, g.scope, \
     g.end_date, r.approvals_required";

/// The grant `id` (locked on PostgreSQL when `lock`; SQLite's write transaction already
/// excludes other writers).
pub(crate) async fn grant_in(
    tx: &mut Transaction<'static, Any>,
    kind: DatabaseKind,
    id: &str,
) -> Result<Option<GrantRow>, sqlx::Error> {
    let lock = match kind {
        DatabaseKind::Postgres => " FOR UPDATE OF g",
        DatabaseKind::Sqlite => "",
    };
    sqlx::query_as::<_, GrantRow>(&format!(
        "SELECT {GRANT_COLUMNS} FROM grants g JOIN access_requests r ON r.id = g.request_id \
         WHERE g.id = $1{lock}"
    ))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await
}

impl Portal {
    /// The request a status link is for, when it is one.
    pub(crate) async fn request_of_status_token(
        &self,
        token: &str,
    ) -> Result<Option<(String, RequestState)>, sqlx::Error> {
        if !crate::tokens::looks_like_token(token) {
            return Ok(None);
        }
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT id, state FROM access_requests WHERE status_token_hash = $1")
                .bind(crate::tokens::hash(token))
                .fetch_optional(self.db.pool())
                .await?;
        Ok(row.map(|(id, state)| {
            (
                id,
                RequestState::parse(&state).unwrap_or(RequestState::Submitted),
            )
        }))
    }

    /// The grant a request became, if it did.
    pub(crate) async fn grant_of_request_row(
        &self,
        request_id: &str,
    ) -> Result<Option<GrantRow>, sqlx::Error> {
        sqlx::query_as::<_, GrantRow>(&format!(
            "SELECT {GRANT_COLUMNS} FROM grants g JOIN access_requests r ON r.id = g.request_id \
             WHERE g.request_id = $1"
        ))
        .bind(request_id)
        .fetch_optional(self.db.pool())
        .await
    }
}

/// A visible line in the request's history (what the contractor's status page lists).
pub(crate) async fn history(
    tx: &mut Transaction<'static, Any>,
    now: i64,
    request_id: &str,
    kind: &str,
    message: &str,
    visible: bool,
) -> Result<(), sqlx::Error> {
    crate::requests::add_event(tx, now, request_id, kind, message, visible).await
}
