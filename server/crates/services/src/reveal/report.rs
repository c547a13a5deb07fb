//! After a reveal: "I did not do this" (a code mailed for the report, the approvers
//! alerted, the secret rotated in the org), a new link from an approver, and what the
//! request's page shows of the credential.

use serde_json::json;
use shared::grant::GrantState;
use sqlx::{Any, Transaction};

use super::link::{
    CodeKind, count_wrong_code, issue_link, lock_link, report_code_hash, wrong_code_error,
};
use super::{CredentialStatus, MAX_ATTEMPTS, MAX_CODES, RevealError, from_salesforce, mask_email};
use crate::Portal;
use crate::audit::{self, Actor, AuditAction, Outcome, Target};
use crate::clock::rfc3339;
use crate::eca;
use crate::mail::Mail;
use crate::requests::add_event;
use crate::tokens;
use crate::vault;

/// Report codes and reports from one client address: at most this many an hour.
const REPORTS_PER_HOUR: i64 = 20;

/// Counts a report action (a code mailed or a code checked) against the client's address.
async fn report_rate_limit(
    tx: &mut Transaction<'static, Any>,
    now: i64,
    actor: &Actor,
) -> Result<(), RevealError> {
    match crate::requests::rate_limit(
        tx,
        now,
        &crate::client::client_bucket("report", &actor.ip),
        REPORTS_PER_HOUR,
        3_600_000,
    )
    .await?
    {
        Ok(()) => Ok(()),
        Err(minutes) => Err(RevealError::RateLimited(minutes)),
    }
}

impl Portal {
    /// Replaces the app's key and secret in the org: new staged credentials, then rotate.
    /// Whatever was revealed before stops working. The new secret is not kept.
    async fn rotate(&self, grant_id: &str) -> Result<(), RevealError> {
        let org = self.org_name().await;
        let mut tx = self.db.begin_write().await?;
        let consumer = eca::recorded_consumer(&mut tx.tx, grant_id).await?;
        tx.commit().await?;
        let Some((app_id, consumer_id)) = consumer else {
            return Err(RevealError::NotAllowed(
                "This grant's app is not recorded, so its secret cannot be changed.".into(),
            ));
        };
        // Where the org cannot stage (an API older than 65.0, or its credentials API
        // closed), a new secret is deployed as the app's instead.
        let version = self.salesforce.api_version();
        if salesforce::connect::staging_refused(version, None).is_some() {
            return self.rotate_by_deploy(grant_id).await;
        }
        let staged = match self.salesforce.create_staged(&app_id, &consumer_id).await {
            Ok(staged) => staged,
            Err(e) if salesforce::connect::staging_refused(version, Some(&e)).is_some() => {
                return self.rotate_by_deploy(grant_id).await;
            }
            Err(e) => return Err(from_salesforce(&e, &org)),
        };
        self.salesforce
            .rotate_staged(&app_id, &consumer_id, &staged.id)
            .await
            .map_err(|e| from_salesforce(&e, &org))?;
        // Other staged pairs still work until they are rotated in or expire: a rotation's new
        // pair (perhaps the one just reported) must stop working too.
        let others = self
            .salesforce
            .staged_credentials(&app_id, &consumer_id)
            .await
            .map_err(|e| from_salesforce(&e, &org))?;
        for other in others.iter().filter(|s| {
            s.id != staged.id && s.state == Some(salesforce::connect::StagedState::Active)
        }) {
            self.salesforce
                .delete_staged(&app_id, &consumer_id, &other.id)
                .await
                .map_err(|e| from_salesforce(&e, &org))?;
        }
        Ok(())
    }

    /// Rotation where the credentials API is closed: a new secret of the portal's choosing,
    /// sealed first, then deployed as the app's. If the deploy fails the earlier sealed
    /// secret (still the app's) is put back.
    pub(super) async fn rotate_by_deploy(&self, grant_id: &str) -> Result<(), RevealError> {
        let Some(vault) = self.vault.as_ref() else {
            return Err(RevealError::NotAllowed(
                "The org does not let Portcullis rotate this secret (its credentials API is closed and no credential key is configured); rotate it in Setup.".into(),
            ));
        };
        let secret = vault::new_secret();
        let previous =
            vault::store_sealed(&self.db, vault, grant_id, &secret, self.clock().as_ref()).await?;
        let deployed = eca::redeploy_secret(
            &self.db,
            &self.salesforce,
            &self.app_contact_email,
            grant_id,
            &secret,
        )
        .await;
        if let Err(failure) = deployed {
            let message = failure.message;
            let mut tx = self.db.begin_write().await?;
            match previous {
                Some(sealed) => {
                    sqlx::query("UPDATE sealed_secrets SET sealed = $1 WHERE grant_id = $2")
                        .bind(sealed)
                        .bind(grant_id)
                        .execute(&mut *tx.tx)
                        .await?
                }
                None => {
                    sqlx::query("DELETE FROM sealed_secrets WHERE grant_id = $1")
                        .bind(grant_id)
                        .execute(&mut *tx.tx)
                        .await?
                }
            };
            tx.commit().await?;
            return Err(RevealError::Salesforce(message, self.org_name().await));
        }
        Ok(())
    }

    /// Mails a one-time code for reporting the link's reveal as not the contractor's (the
    /// previous report code stops working). Only the newest link of the grant, within the
    /// report window after its reveal, gets one. Returns the masked address it went to.
    pub async fn send_disown_code(
        &self,
        token: &str,
        actor: &Actor,
    ) -> Result<String, RevealError> {
        let org = self.org_name().await;
        let mut tx = self.db.begin_write().await?;
        let link = lock_link(&mut tx.tx, self.db.kind(), token)
            .await?
            .ok_or(RevealError::NotFound)?;
        let now = self.clock().now_ms();
        if let Some(refusal) = link.unreportable(now, self.report_window_ms(), &org) {
            return Err(refusal);
        }
        if link.disown_codes_sent >= MAX_CODES {
            return Err(RevealError::TooManyCodes(org.clone()));
        }
        report_rate_limit(&mut tx.tx, now, actor).await?;
        self.issue_code(&mut tx.tx, &link, CodeKind::Report, actor, now, |code| Mail {
            to: link.contact_email.clone(),
            subject: format!(
                "Your code to report a reveal of {}'s API credential",
                link.company
            ),
            body: format!(
                "Hello,\n\nYour one-time code is {code}\n\nSomeone asked, on the reveal page, to \
                 report that {}'s API credential was revealed by someone else. Enter the code \
                 there within 10 minutes to report it: {}'s admins are alerted and the \
                 secret is changed at once. If you did not ask for it, ignore this email.\n",
                link.company, org
            ),
        })
        .await?;
        tx.commit().await?;
        self.mail.wake();
        Ok(mask_email(&link.contact_email))
    }

    /// "I did not do this": with the code mailed for the report, from the newest link and
    /// within the report window, records the report, alerts the approvers and rotates the
    /// secret, so the one that was revealed stops working. The grant waits for an approver
    /// to send a new link.
    pub async fn disown_reveal(
        &self,
        token: &str,
        code: Option<&str>,
        actor: &Actor,
    ) -> Result<(), RevealError> {
        let org = self.org_name().await;
        let link = {
            let mut tx = self.db.begin_write().await?;
            let link = lock_link(&mut tx.tx, self.db.kind(), token)
                .await?
                .ok_or(RevealError::NotFound)?;
            let now = self.clock().now_ms();
            if let Some(refusal) = link.unreportable(now, self.report_window_ms(), &org) {
                return Err(refusal);
            }
            let code = code.map(str::trim).unwrap_or_default();
            if code.is_empty() {
                return Err(RevealError::NoReportCode);
            }
            if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(RevealError::MalformedCode);
            }
            let Some(expected) = link.disown_code_hash.as_deref() else {
                return Err(RevealError::NoReportCode);
            };
            if link.disown_code_expires_at.unwrap_or(0) <= now {
                return Err(RevealError::CodeExpired);
            }
            report_rate_limit(&mut tx.tx, now, actor).await?;
            if !tokens::constant_time_eq(
                &report_code_hash(&self.code_key, &link.id, code),
                expected,
            ) {
                let attempts =
                    count_wrong_code(&mut tx.tx, &link, CodeKind::Report, actor, now).await?;
                tx.commit().await?;
                let left = MAX_ATTEMPTS - attempts;
                return Err(if left <= 0 {
                    RevealError::ReportLocked(org)
                } else {
                    wrong_code_error(left)
                });
            }
            // The code is used up and the report recorded before anything is rotated, under
            // the row's lock: a second report (or a double click) finds it reported.
            sqlx::query(
                "UPDATE reveal_links SET disowned_at = $1, disown_code_hash = NULL, updated_at = $1 \
                 WHERE id = $2",
            )
            .bind(now)
            .bind(&link.id)
            .execute(&mut *tx.tx)
            .await?;
            audit::record(
                &mut tx.tx,
                actor,
                AuditAction::SecretDisowned,
                Target::Grant,
                &link.grant_id,
                json!({ "link": link.id, "revealed_at": link.revealed_at.map(rfc3339) }),
            )
            .await?;
            tx.commit().await?;
            link
        };
        let rotated = self.rotate(&link.grant_id).await;
        let now = self.clock().now_ms();
        let mut tx = self.db.begin_write().await?;
        audit::record_outcome(
            &mut tx.tx,
            actor,
            AuditAction::SecretRotated,
            if rotated.is_ok() {
                Outcome::Success
            } else {
                Outcome::Failure
            },
            Target::Grant,
            &link.grant_id,
            json!({
                "reason": "contractor reported a reveal they did not make",
                "error": rotated.as_ref().err().map(RevealError::detail),
            }),
        )
        .await?;
        let rotation = match &rotated {
            Ok(()) => {
                "The secret has been changed in Salesforce, so the revealed one no longer works."
                    .to_string()
            }
            Err(e) => format!(
                "Changing the secret in Salesforce FAILED ({}); the revealed secret still works. \
                 Send a new link from the request's page (it changes the secret too), or rotate it in Setup.",
                e.detail()
            ),
        };
        self.alert_approvers(
            &mut tx.tx,
            &format!(
                "{}: a credential reveal was reported as not theirs",
                link.company
            ),
            &format!(
                "Hello,\n\nThe contractor for {} says they did not reveal the API credential that \
                 was revealed on {}. {rotation}\n\nIf they still need access, send them a new link \
                 from the request's page:\n\n{}/admin/requests/{}\n",
                link.company,
                rfc3339(link.revealed_at.unwrap_or_default()),
                self.settings.public_url,
                link.request_id
            ),
        )
        .await?;
        sqlx::query("UPDATE grants SET state = $3, updated_at = $1 WHERE id = $2 AND state = $4")
            .bind(now)
            .bind(&link.grant_id)
            .bind(GrantState::Ready.as_str())
            .bind(GrantState::Active.as_str())
            .execute(&mut *tx.tx)
            .await?;
        add_event(
            &mut tx.tx,
            self.clock().now_ms(),
            &link.request_id,
            "secret_disowned",
            &format!("You reported a reveal you did not make. The secret was changed; {}'s admins will send you a new link.", org),
            true,
        )
        .await?;
        tx.commit().await?;
        self.mail.wake();
        rotated
    }

    /// An approver sends the contractor a new link, changing the secret first so that
    /// nothing an earlier link showed (or could still show) works.
    pub async fn reissue_reveal_link(
        &self,
        grant_id: &str,
        actor: &Actor,
    ) -> Result<(), RevealError> {
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM grants WHERE id = $1")
            .bind(grant_id)
            .fetch_optional(self.db.pool())
            .await?;
        match state.as_deref() {
            None => return Err(RevealError::NotFound),
            Some("ready" | "active") => {}
            Some(other) => {
                return Err(RevealError::NotAllowed(format!(
                    "A new link can be sent only for a grant that is set up (this one is {}).",
                    other.replace('_', " ")
                )));
            }
        }
        if let Err(e) = self.rotate(grant_id).await {
            let mut tx = self.db.begin_write().await?;
            audit::record_outcome(
                &mut tx.tx,
                actor,
                AuditAction::SecretRotated,
                Outcome::Failure,
                Target::Grant,
                grant_id,
                json!({ "reason": "new link", "error": e.detail() }),
            )
            .await?;
            tx.commit().await?;
            return Err(e);
        }
        // The link's mail names the org: read its name before the transaction.
        self.org_name().await;
        let mut tx = self.db.begin_write().await?;
        audit::record(
            &mut tx.tx,
            actor,
            AuditAction::SecretRotated,
            Target::Grant,
            grant_id,
            json!({ "reason": "new link" }),
        )
        .await?;
        issue_link(&mut tx.tx, &self.handover(), grant_id, actor, "reissued").await?;
        sqlx::query(
            "UPDATE grants SET state = $3, updated_at = $1 \
             WHERE id = $2 AND state = $4",
        )
        .bind(self.clock().now_ms())
        .bind(grant_id)
        .bind(GrantState::Ready.as_str())
        .bind(GrantState::Active.as_str())
        .execute(&mut *tx.tx)
        .await?;
        tx.commit().await?;
        self.mail.wake();
        Ok(())
    }

    /// Where the grant's credential stands (for the approvers' request page).
    pub async fn credential_status(&self, grant_id: &str) -> Result<CredentialStatus, sqlx::Error> {
        let grant_state: Option<String> =
            sqlx::query_scalar("SELECT state FROM grants WHERE id = $1")
                .bind(grant_id)
                .fetch_optional(self.db.pool())
                .await?;
        let links: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM reveal_links WHERE grant_id = $1")
                .bind(grant_id)
                .fetch_one(self.db.pool())
                .await?;
        let latest: Option<(String, i64, Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT state, expires_at, revealed_at, disowned_at FROM reveal_links \
             WHERE grant_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(grant_id)
        .fetch_optional(self.db.pool())
        .await?;
        let set_up = matches!(
            grant_state.as_deref().map(GrantState::parse),
            Some(Ok(GrantState::Ready | GrantState::Active))
        );
        let now = self.clock().now_ms();
        let (status, summary) = match latest {
            None => (
                "not_sent",
                "No credential link has been sent yet.".to_string(),
            ),
            Some((state, expires_at, revealed_at, disowned_at)) => {
                match (state.as_str(), disowned_at) {
                    ("revealed", Some(at)) => (
                        "disowned",
                        format!(
                            "The contractor reported on {} that they did not reveal it; the secret was changed. Send a new link.",
                            rfc3339(at)
                        ),
                    ),
                    ("revealed", None) => (
                        "revealed",
                        format!(
                            "Collected by the contractor on {}.",
                            rfc3339(revealed_at.unwrap_or_default())
                        ),
                    ),
                    ("locked", _) => (
                        "locked",
                        "The link locked after too many wrong codes; nothing was revealed."
                            .to_string(),
                    ),
                    _ if expires_at <= now => (
                        "not_collected",
                        format!(
                            "Credential not collected: the link expired on {} unused.",
                            rfc3339(expires_at)
                        ),
                    ),
                    _ => (
                        "waiting",
                        format!(
                            "Link sent; waiting for the contractor (the link works until {}).",
                            rfc3339(expires_at)
                        ),
                    ),
                }
            }
        };
        Ok(CredentialStatus {
            status: status.to_string(),
            summary,
            links_sent: links,
            can_reissue: set_up,
        })
    }
}
