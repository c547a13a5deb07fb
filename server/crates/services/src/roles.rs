//! Roles: approver, security reviewer, owner. A person has a role when the configuration
//! names their Salesforce username, or a permission set they hold, or an owner granted it
//! in the portal (stored in `roles`, every change audited).

use serde_json::json;
use shared::auth::{Role, Roles, SignedInUser};
use sqlx::FromRow;

use crate::Portal;
use crate::audit::{self, Actor, AuditAction, Target};

/// Emails of the people who hold the approver role and have signed in: alerts go to them.
pub(crate) async fn approver_emails(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT email FROM portal_users WHERE is_approver = $1 AND email <> '' ORDER BY email",
    )
    .bind(true)
    .fetch_all(&mut **tx)
    .await
}

/// Queues `subject` and `body` in `tx` to every approver who has signed in (the alerts'
/// mail: budgets, anomalies, drift).
pub(crate) async fn mail_approvers(
    mailer: &crate::mail::Mailer,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    subject: &str,
    body: &str,
) -> Result<(), sqlx::Error> {
    for to in approver_emails(tx).await? {
        let mail = crate::mail::Mail {
            to,
            subject: subject.to_string(),
            body: body.to_string(),
        };
        mailer.queue(tx, &mail).await?;
    }
    Ok(())
}

/// How roles map from Salesforce, per configuration.
#[derive(Debug, Clone, Default)]
pub struct RoleMapping {
    pub approvers: Vec<String>,
    pub security_reviewers: Vec<String>,
    pub owners: Vec<String>,
    pub approver_permission_set: Option<String>,
    pub security_reviewer_permission_set: Option<String>,
    pub owner_permission_set: Option<String>,
}

impl RoleMapping {
    fn grants(&self, user: &SignedInUser, role: Role) -> bool {
        let (names, permission_set) = match role {
            Role::Approver => (&self.approvers, &self.approver_permission_set),
            Role::SecurityReviewer => (
                &self.security_reviewers,
                &self.security_reviewer_permission_set,
            ),
            Role::Owner => (&self.owners, &self.owner_permission_set),
        };
        names.iter().any(|n| n.eq_ignore_ascii_case(&user.username))
            || permission_set.as_ref().is_some_and(|ps| {
                user.permission_sets
                    .iter()
                    .any(|held| held.eq_ignore_ascii_case(ps))
            })
    }
}

/// A role granted in the portal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RoleGrant {
    pub username: String,
    pub role: Role,
    pub granted_by: String,
    pub granted_at: i64,
}

impl Portal {
    /// Who holds each role by configuration, one line per role, for the settings page
    /// (`Approvers: usernames a@x, b@x; holders of the permission set Approve`).
    pub fn role_mapping_lines(&self) -> Vec<String> {
        let mapping = &self.settings.roles;
        let mut lines = Vec::new();
        for (label, names, set) in [
            (
                "Approvers",
                &mapping.approvers,
                &mapping.approver_permission_set,
            ),
            (
                "Security reviewers",
                &mapping.security_reviewers,
                &mapping.security_reviewer_permission_set,
            ),
            ("Owners", &mapping.owners, &mapping.owner_permission_set),
        ] {
            let mut parts = Vec::new();
            if !names.is_empty() {
                parts.push(format!("usernames {}", names.join(", ")));
            }
            if let Some(set) = set {
                parts.push(format!("holders of the permission set {set}"));
            }
            lines.push(format!(
                "{label}: {}",
                if parts.is_empty() {
                    "none from configuration".to_string()
                } else {
                    parts.join("; ")
                }
            ));
        }
        lines
    }

    /// The roles `user` has now.
    pub async fn roles_of(&self, user: &SignedInUser) -> Result<Roles, sqlx::Error> {
        let granted: Vec<String> = sqlx::query_scalar("SELECT role FROM roles WHERE username = $1")
            .bind(user.username.to_ascii_lowercase())
            .fetch_all(self.db.pool())
            .await?;
        let has = |role: Role| {
            self.settings.roles.grants(user, role) || granted.iter().any(|g| g == role.as_str())
        };
        Ok(Roles {
            approver: has(Role::Approver),
            security_reviewer: has(Role::SecurityReviewer),
            owner: has(Role::Owner),
        })
    }

    /// Roles granted in the portal (not those from configuration).
    pub async fn role_grants(&self) -> Result<Vec<RoleGrant>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT username, role, granted_by, granted_at FROM roles ORDER BY username, role",
        )
        .fetch_all(self.db.pool())
        .await?;
        // A row this portal cannot read (a role it does not know) is left out.
        rows.iter()
            .filter_map(|row| {
                let (username, role, granted_by, granted_at) =
                    <(String, String, String, i64)>::from_row(row).ok()?;
                Some(Ok(RoleGrant {
                    username,
                    role: Role::parse(&role)?,
                    granted_by,
                    granted_at,
                }))
            })
            .collect()
    }

    /// Grants or revokes a role (owners only; checked by the caller). Audited.
    pub async fn set_role(
        &self,
        username: &str,
        role: Role,
        granted: bool,
        actor: &Actor,
    ) -> Result<bool, sqlx::Error> {
        let username = username.trim().to_ascii_lowercase();
        let mut tx = self.db.begin_write().await?;
        let changed = if granted {
            sqlx::query("INSERT INTO roles (username, role, granted_by, granted_at) VALUES ($1, $2, $3, $4) ON CONFLICT (username, role) DO NOTHING")
                .bind(&username)
                .bind(role.as_str())
                .bind(&actor.name)
                .bind(self.clock().now_ms())
                .execute(&mut *tx.tx)
                .await?
                .rows_affected()
        } else {
            sqlx::query("DELETE FROM roles WHERE username = $1 AND role = $2")
                .bind(&username)
                .bind(role.as_str())
                .execute(&mut *tx.tx)
                .await?
                .rows_affected()
        };
        if changed > 0 {
            audit::record(
                &mut tx.tx,
                actor,
                AuditAction::RoleChanged,
                Target::User,
                &username,
                json!({ "role": role.as_str(), "granted": granted }),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(changed > 0)
    }

    /// Records the roles a signed-in person holds now, after the org was asked again (the
    /// change itself happened, and is recorded, in Salesforce).
    pub async fn refresh_roles(&self, username: &str, roles: &Roles) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE portal_users SET is_approver = $1, is_security_reviewer = $2, is_owner = $3 WHERE username = $4",
        )
        .bind(roles.approver)
        .bind(roles.security_reviewer)
        .bind(roles.owner)
        .bind(username.to_ascii_lowercase())
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Records a sign-in (who, with which roles), audited in the same transaction.
    pub async fn record_sign_in(
        &self,
        user: &SignedInUser,
        roles: &Roles,
        actor: &Actor,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.db.begin_write().await?;
        sqlx::query(
            "INSERT INTO portal_users (username, user_id, name, email, is_approver, is_security_reviewer, is_owner, last_sign_in) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (username) DO UPDATE SET user_id = excluded.user_id, \
             name = excluded.name, email = excluded.email, is_approver = excluded.is_approver, \
             is_security_reviewer = excluded.is_security_reviewer, is_owner = excluded.is_owner, last_sign_in = excluded.last_sign_in",
        )
        .bind(user.username.to_ascii_lowercase())
        .bind(&user.user_id)
        .bind(&user.name)
        .bind(&user.email)
        .bind(roles.approver)
        .bind(roles.security_reviewer)
        .bind(roles.owner)
        .bind(self.clock().now_ms())
        .execute(&mut *tx.tx)
        .await?;
        audit::record(
            &mut tx.tx,
            actor,
            AuditAction::AuthSignedIn,
            Target::User,
            &user.username,
            json!({ "roles": roles.names(), "user_id": user.user_id }),
        )
        .await?;
        tx.commit().await
    }
}
