//! Revealing: what a link shows, the one-time code mailed for it, and the reveal itself (a
//! claim on the link row, the credential read from the org or the vault, once).

use secrecy::SecretString;
use serde_json::json;
use shared::grant::GrantState;
use sqlx::{Any, Transaction};

use super::link::{
    CodeKind, LINK_COLUMNS, Link, code_hash, count_wrong_code, lock_link, wrong_code_error,
};
use super::{
    CLAIM_MS, LinkState, LinkView, MAX_ATTEMPTS, MAX_CODES, Report, RevealError, Revealed,
    from_salesforce, mask_email,
};
use crate::Portal;
use crate::audit::{self, Actor, AuditAction, Outcome, Target};
use crate::clock::rfc3339;
use crate::eca;
use crate::mail::Mail;
use crate::org_name::OrgName;
use crate::requests::add_event;
use crate::tokens;

/// A link with what its grant gives, for the reveal page.
#[derive(sqlx::FromRow)]
struct LinkForPage {
    #[sqlx(flatten)]
    link: Link,
    end_date: String,
    scope: String,
}

impl Portal {
    /// What a reveal link is for and where it stands. Reading changes nothing.
    pub async fn reveal_link(&self, token: &str) -> Result<Option<LinkView>, sqlx::Error> {
        if !tokens::looks_like_token(token) {
            return Ok(None);
        }
        let Some(LinkForPage {
            link,
            end_date,
            scope,
        }) = sqlx::query_as(&format!(
            "SELECT {LINK_COLUMNS}, g.end_date, g.scope FROM reveal_links l \
             JOIN grants g ON g.id = l.grant_id WHERE l.token_hash = $1"
        ))
        .bind(tokens::hash(token))
        .fetch_optional(self.db.pool())
        .await?
        else {
            return Ok(None);
        };
        let scope: Option<shared::scope::Scope> = serde_json::from_str(&scope).ok();
        let org = self.org_name().await;
        let now = self.clock().now_ms();
        let state = match link.state.as_str() {
            "superseded" => LinkState::Superseded,
            "locked" => LinkState::Locked,
            "revealed" => LinkState::Revealed {
                revealed_at: rfc3339(link.revealed_at.unwrap_or_default()),
                disowned_at: link.disowned_at.map(rfc3339),
                report: {
                    let window = self.report_window_ms();
                    let until = rfc3339(link.revealed_at.unwrap_or_default() + window);
                    match link.unreportable(now, window, &org) {
                        Some(RevealError::Superseded) => Report::Superseded,
                        Some(RevealError::ReportTooLate(..)) => Report::TooLate { until },
                        _ => Report::Open {
                            until,
                            code_sent_to: link
                                .disown_code_expires_at
                                .filter(|at| *at > now && link.disown_code_hash.is_some())
                                .map(|_| mask_email(&link.contact_email)),
                            attempts_left: (MAX_ATTEMPTS - link.disown_attempts).max(0),
                        },
                    }
                },
            },
            _ if link.expires_at <= now => LinkState::Expired {
                expired_at: rfc3339(link.expires_at),
            },
            _ => LinkState::Open {
                expires_at: rfc3339(link.expires_at),
                code_sent_to: link
                    .code_expires_at
                    .filter(|at| *at > now && link.code_hash.is_some())
                    .map(|_| mask_email(&link.contact_email)),
                attempts_left: (MAX_ATTEMPTS - link.code_attempts).max(0),
            },
        };
        Ok(Some(LinkView {
            org_name: org.to_string(),
            company: link.company,
            end_date,
            // Labelled by API name here; the page's server function labels them from the
            // org's describe.
            access: scope.map(|s| s.lines(&[])).unwrap_or_default(),
            state,
        }))
    }

    /// Mails a new one-time code for the link to the grant's verified contact email (the
    /// previous code stops working). Returns the masked address it went to.
    pub async fn send_reveal_code(
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
        if let Some(refusal) = link.unusable(now, &org) {
            return Err(refusal);
        }
        if link.codes_sent >= MAX_CODES {
            return Err(RevealError::TooManyCodes(org));
        }
        self.issue_code(&mut tx.tx, &link, CodeKind::Reveal, actor, now, |code| {
            Mail {
                to: link.contact_email.clone(),
                subject: format!("Your code to reveal {}'s API credential", link.company),
                body: format!(
                    "Hello,\n\nYour one-time code is {code}\n\nEnter it on the reveal page within \
                 10 minutes. If you did not ask for it, ignore this email: nothing is \
                 revealed without the code.\n"
                ),
            }
        })
        .await?;
        tx.commit().await?;
        self.mail.wake();
        Ok(mask_email(&link.contact_email))
    }

    /// Reveals the credential: checks the code, claims the link, reads the key and secret
    /// from the org, and records the reveal. Exactly one of any number of concurrent calls
    /// succeeds.
    pub async fn reveal(
        &self,
        token: &str,
        code: &str,
        actor: &Actor,
    ) -> Result<Revealed, RevealError> {
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(RevealError::MalformedCode);
        }
        let org = self.org_name().await;
        // 1. Check the code and claim the link, under its row lock.
        let (link, app_id, consumer_id) = {
            let mut tx = self.db.begin_write().await?;
            let link = lock_link(&mut tx.tx, self.db.kind(), token)
                .await?
                .ok_or(RevealError::NotFound)?;
            let now = self.clock().now_ms();
            if let Some(refusal) = link.unusable(now, &org) {
                return Err(refusal);
            }
            let Some(expected) = link.code_hash.as_deref() else {
                return Err(RevealError::NoCode);
            };
            if link.code_expires_at.unwrap_or(0) <= now {
                return Err(RevealError::CodeExpired);
            }
            if !tokens::constant_time_eq(&code_hash(&self.code_key, &link.id, code), expected) {
                return Err(self.wrong_code(tx, &link, actor, &org).await?);
            }
            let Some((app_id, consumer_id)) =
                eca::recorded_consumer(&mut tx.tx, &link.grant_id).await?
            else {
                return Err(RevealError::NotAllowed(format!(
                    "This credential's app is not recorded; ask {org}'s admin for a new link."
                )));
            };
            sqlx::query(
                "UPDATE reveal_links SET state = 'revealing', claim_until = $1, updated_at = $2 WHERE id = $3",
            )
            .bind(now + CLAIM_MS)
            .bind(now)
            .bind(&link.id)
            .execute(&mut *tx.tx)
            .await?;
            tx.commit().await?;
            (link, app_id, consumer_id)
        };

        // 2. Read the credential from the org; on failure give the claim back.
        let credential = match &link.staged_key {
            Some(staged_key) => self.staged_credential(&link.grant_id, staged_key).await,
            None => {
                self.credential_for(&link.grant_id, &app_id, &consumer_id)
                    .await
            }
        };
        let (key, secret, source) = match credential {
            Ok(c) => c,
            Err(e) => {
                let mut tx = self.db.begin_write().await?;
                sqlx::query(
                    "UPDATE reveal_links SET state = 'open', claim_until = NULL, updated_at = $1 \
                     WHERE id = $2 AND state = 'revealing'",
                )
                .bind(self.clock().now_ms())
                .bind(&link.id)
                .execute(&mut *tx.tx)
                .await?;
                audit::record_outcome(
                    &mut tx.tx,
                    actor,
                    AuditAction::SecretRevealFailed,
                    Outcome::Failure,
                    Target::Grant,
                    &link.grant_id,
                    json!({ "link": link.id, "error": e.detail() }),
                )
                .await?;
                tx.commit().await?;
                return Err(e);
            }
        };

        // 3. Record the reveal.
        let now = self.clock().now_ms();
        let mut tx = self.db.begin_write().await?;
        let recorded = sqlx::query(
            "UPDATE reveal_links SET state = 'revealed', claim_until = NULL, code_hash = NULL, \
             revealed_at = $1, revealed_ip = $2, revealed_user_agent = $3, updated_at = $1 \
             WHERE id = $4 AND state = 'revealing'",
        )
        .bind(now)
        .bind(&actor.ip)
        .bind(&actor.user_agent)
        .bind(&link.id)
        .execute(&mut *tx.tx)
        .await?
        .rows_affected();
        if recorded != 1 {
            // The claim ran out and another request took the link over: this one reveals
            // nothing (the secret read above is dropped here).
            return Err(RevealError::InProgress);
        }
        sqlx::query("UPDATE grants SET state = $3, updated_at = $1 WHERE id = $2 AND state = $4")
            .bind(now)
            .bind(&link.grant_id)
            .bind(GrantState::Active.as_str())
            .bind(GrantState::Ready.as_str())
            .execute(&mut *tx.tx)
            .await?;
        // Revealed: a sealed copy (orgs that return no secrets) is destroyed with the reveal.
        sqlx::query("DELETE FROM sealed_secrets WHERE grant_id = $1")
            .bind(&link.grant_id)
            .execute(&mut *tx.tx)
            .await?;
        add_event(
            &mut tx.tx,
            self.clock().now_ms(),
            &link.request_id,
            "secret_revealed",
            &format!(
                "You collected the credential on {}. The link cannot show it again.",
                rfc3339(now)
            ),
            true,
        )
        .await?;
        audit::record(
            &mut tx.tx,
            actor,
            AuditAction::SecretRevealed,
            Target::Grant,
            &link.grant_id,
            json!({
                "link": link.id,
                "consumer_key": key,
                "app": app_id,
                "source": source,
            }),
        )
        .await?;
        tx.commit().await?;
        let instance = self
            .salesforce
            .instance_url()
            .as_str()
            .trim_end_matches('/');
        Ok(Revealed {
            consumer_key: key,
            consumer_secret: secret,
            instance_url: instance.to_string(),
            token_url: format!("{instance}/services/oauth2/token"),
            api_version: self.salesforce.api_version().to_string(),
            revealed_at: rfc3339(now),
        })
    }

    /// The key and secret: read from the org, or — where its credentials API returns no
    /// secrets — the key from the org and the secret the portal sealed.
    pub(super) async fn credential_for(
        &self,
        grant_id: &str,
        app_id: &str,
        consumer_id: &str,
    ) -> Result<(String, SecretString, &'static str), RevealError> {
        use salesforce::connect::CredentialPart;
        let org = self.org_name().await;
        let error = match self
            .salesforce
            .consumer_credential(app_id, consumer_id, CredentialPart::KeyAndSecret)
            .await
        {
            Ok(c) => {
                return match (c.key, c.secret) {
                    (Some(key), Some(secret)) => Ok((key, secret, "salesforce")),
                    _ => Err(RevealError::Salesforce(
                        "the org returned no key or no secret".into(),
                        org,
                    )),
                };
            }
            Err(e) => e,
        };
        if !salesforce::connect::is_secret_access_disabled(&error) {
            return Err(from_salesforce(&error, &org));
        }
        let sealed: Option<String> =
            sqlx::query_scalar("SELECT sealed FROM sealed_secrets WHERE grant_id = $1")
                .bind(grant_id)
                .fetch_optional(self.db.pool())
                .await?;
        let (Some(vault), Some(sealed)) = (self.vault.as_ref(), sealed) else {
            return Err(RevealError::NotAllowed(format!(
                "The org does not hand out this secret and Portcullis holds no copy of it; ask {org}'s admin for a new link."
            )));
        };
        let secret = vault.open(grant_id, &sealed).map_err(|e| {
            RevealError::NotAllowed(format!("{e}; ask {org}'s admin for a new link."))
        })?;
        let key = self
            .salesforce
            .consumer_credential(app_id, consumer_id, CredentialPart::Key)
            .await
            .map_err(|e| from_salesforce(&e, &org))?
            .key
            .ok_or_else(|| {
                RevealError::Salesforce("the org returned no consumer key".into(), org.clone())
            })?;
        Ok((key, secret, "sealed"))
    }

    /// A rotation's staged pair: the key the link names and the secret sealed for the grant
    /// when the credentials were staged (the org's answer to the staging was the only time
    /// the portal saw it).
    async fn staged_credential(
        &self,
        grant_id: &str,
        staged_key: &str,
    ) -> Result<(String, SecretString, &'static str), RevealError> {
        let org = self.org_name().await;
        let sealed: Option<String> =
            sqlx::query_scalar("SELECT sealed FROM sealed_secrets WHERE grant_id = $1")
                .bind(grant_id)
                .fetch_optional(self.db.pool())
                .await?;
        let (Some(vault), Some(sealed)) = (self.vault.as_ref(), sealed) else {
            return Err(RevealError::NotAllowed(format!(
                "Portcullis holds no copy of this new secret any more; ask {org}'s admin to rotate the credential again."
            )));
        };
        let secret = vault.open(grant_id, &sealed).map_err(|e| {
            RevealError::NotAllowed(format!("{e}; ask {org}'s admin for a new link."))
        })?;
        Ok((staged_key.to_string(), secret, "staged"))
    }

    /// Counts a wrong code; the last allowed one locks the link and alerts the approvers.
    pub(super) async fn wrong_code(
        &self,
        mut tx: crate::db::WriteTx,
        link: &Link,
        actor: &Actor,
        org: &OrgName,
    ) -> Result<RevealError, sqlx::Error> {
        let now = self.clock().now_ms();
        let attempts = count_wrong_code(&mut tx.tx, link, CodeKind::Reveal, actor, now).await?;
        let locks = attempts >= MAX_ATTEMPTS;
        if locks {
            self.alert_approvers(
                &mut tx.tx,
                &format!("{}'s credential link was locked", link.company),
                &format!(
                    "Hello,\n\nSomeone entered {MAX_ATTEMPTS} wrong codes on the link that reveals \
                     {}'s API credential, so the link is locked and revealed nothing. If the \
                     contractor still needs the credential, send them a new link from the \
                     request's page:\n\n{}/admin/requests/{}\n",
                    link.company, self.settings.public_url, link.request_id
                ),
            )
            .await?;
            audit::record_outcome(
                &mut tx.tx,
                actor,
                AuditAction::RevealLocked,
                Outcome::Denied,
                Target::Grant,
                &link.grant_id,
                json!({ "link": link.id, "attempts": attempts }),
            )
            .await?;
        }
        tx.commit().await?;
        self.mail.wake();
        Ok(if locks {
            RevealError::Locked(org.clone())
        } else {
            wrong_code_error(MAX_ATTEMPTS - attempts)
        })
    }

    pub(super) async fn alert_approvers(
        &self,
        tx: &mut Transaction<'static, Any>,
        subject: &str,
        body: &str,
    ) -> Result<usize, sqlx::Error> {
        let emails = crate::roles::approver_emails(tx).await?;
        for to in &emails {
            self.mail
                .queue(
                    tx,
                    &Mail {
                        to: to.clone(),
                        subject: subject.to_string(),
                        body: body.to_string(),
                    },
                )
                .await?;
        }
        Ok(emails.len())
    }
}
