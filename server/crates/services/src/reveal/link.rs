//! The link rows: reading one for a decision (under its row lock), the codes' stored
//! forms, and issuing a new link (earlier ones stop working, the contractor is mailed).

use serde_json::json;
use sqlx::{Any, Transaction};

use super::{Handover, MAX_ATTEMPTS, RevealError};
use crate::audit::{self, Actor, AuditAction, Outcome, Target};
use crate::clock::rfc3339;
use crate::db::DatabaseKind;
use crate::mail::Mail;
use crate::org_name::OrgName;
use crate::requests::add_event;
use crate::tokens;

/// A link row as read for a decision (selected as [`LINK_COLUMNS`]).
#[derive(sqlx::FromRow)]
pub(super) struct Link {
    pub(super) id: String,
    pub(super) grant_id: String,
    pub(super) request_id: String,
    pub(super) state: String,
    pub(super) expires_at: i64,
    pub(super) code_hash: Option<String>,
    pub(super) code_expires_at: Option<i64>,
    pub(super) codes_sent: i64,
    pub(super) code_attempts: i64,
    pub(super) claim_until: Option<i64>,
    pub(super) revealed_at: Option<i64>,
    pub(super) disowned_at: Option<i64>,
    pub(super) contact_email: String,
    pub(super) company: String,
    pub(super) disown_code_hash: Option<String>,
    pub(super) disown_code_expires_at: Option<i64>,
    pub(super) disown_codes_sent: i64,
    pub(super) disown_attempts: i64,
    /// 1 when no later link was sent for the grant, else 0.
    pub(super) newest: i64,
    /// The consumer key of staged credentials this link hands over (a rotation's new pair,
    /// whose secret is the grant's sealed one); `None`: the app's primary credentials.
    pub(super) staged_key: Option<String>,
}

pub(super) const LINK_COLUMNS: &str = "l.id, l.grant_id, g.request_id, l.state, l.expires_at, l.code_hash, \
     l.code_expires_at, l.codes_sent, l.code_attempts, l.claim_until, l.revealed_at, \
     l.disowned_at, g.contact_email, g.company, l.disown_code_hash, l.disown_code_expires_at, \
     l.disown_codes_sent, l.disown_attempts, l.staged_key, \
     CASE WHEN EXISTS (SELECT 1 FROM reveal_links n WHERE n.grant_id = l.grant_id \
         AND (n.created_at > l.created_at OR (n.created_at = l.created_at AND n.id > l.id))) \
     THEN 0 ELSE 1 END AS newest";

impl Link {
    /// The refusal for reporting this link's reveal now, if any: it must be revealed, not
    /// reported yet, the newest link of its grant, and within `window_ms` of the reveal.
    pub(super) fn unreportable(
        &self,
        now: i64,
        window_ms: i64,
        org: &OrgName,
    ) -> Option<RevealError> {
        let Some(revealed_at) = self.revealed_at.filter(|_| self.state == "revealed") else {
            return Some(RevealError::NotRevealed);
        };
        if let Some(at) = self.disowned_at {
            return Some(RevealError::AlreadyDisowned(rfc3339(at)));
        }
        if self.newest == 0 {
            return Some(RevealError::Superseded);
        }
        if revealed_at + window_ms <= now {
            return Some(RevealError::ReportTooLate(
                rfc3339(revealed_at + window_ms),
                org.clone(),
            ));
        }
        if self.disown_attempts >= MAX_ATTEMPTS {
            return Some(RevealError::ReportLocked(org.clone()));
        }
        None
    }

    /// The refusal for a link that cannot be used for a code or a reveal now, if any.
    pub(super) fn unusable(&self, now: i64, org: &OrgName) -> Option<RevealError> {
        match self.state.as_str() {
            "superseded" => Some(RevealError::Superseded),
            "locked" => Some(RevealError::Locked(org.clone())),
            "revealed" => Some(RevealError::AlreadyRevealed(rfc3339(
                self.revealed_at.unwrap_or_default(),
            ))),
            "revealing" if self.claim_until.unwrap_or(0) > now => Some(RevealError::InProgress),
            _ if self.expires_at <= now => {
                Some(RevealError::Expired(rfc3339(self.expires_at), org.clone()))
            }
            _ => None,
        }
    }
}

/// The code's stored form: keyed ([`tokens::CodeKey`]) and bound to the link, so one
/// link's code hash says nothing about another's.
pub(super) fn code_hash(key: &tokens::CodeKey, link_id: &str, code: &str) -> String {
    key.hash(&format!("reveal:{link_id}"), code)
}

/// A report code's stored form: bound to the link and the purpose, so a reveal code is never
/// taken for a report code.
pub(super) fn report_code_hash(key: &tokens::CodeKey, link_id: &str, code: &str) -> String {
    key.hash(&format!("report:{link_id}"), code)
}

/// Which of a link's one-time codes was entered: the one that reveals the credential, or the
/// one that reports a reveal as not the contractor's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CodeKind {
    Reveal,
    Report,
}

/// Counts a wrong `kind` code on `link` inside `tx` and audits it; returns the attempts so
/// far. The last allowed reveal code also locks the link (its code stops working); report
/// codes run out without changing the link's state.
pub(super) async fn count_wrong_code(
    tx: &mut Transaction<'static, Any>,
    link: &Link,
    kind: CodeKind,
    actor: &Actor,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let (attempts, update, action) = match kind {
        CodeKind::Reveal => {
            let attempts = link.code_attempts + 1;
            let update = if attempts >= MAX_ATTEMPTS {
                "UPDATE reveal_links SET code_attempts = $1, state = 'locked', code_hash = NULL, \
                 updated_at = $2 WHERE id = $3"
            } else {
                "UPDATE reveal_links SET code_attempts = $1, updated_at = $2 WHERE id = $3"
            };
            (attempts, update, AuditAction::RevealCodeRejected)
        }
        CodeKind::Report => (
            link.disown_attempts + 1,
            "UPDATE reveal_links SET disown_attempts = $1, updated_at = $2 WHERE id = $3",
            AuditAction::RevealDisownCodeRejected,
        ),
    };
    sqlx::query(update)
        .bind(attempts)
        .bind(now)
        .bind(&link.id)
        .execute(&mut **tx)
        .await?;
    audit::record_outcome(
        tx,
        actor,
        action,
        Outcome::Denied,
        Target::Grant,
        &link.grant_id,
        json!({ "link": link.id, "attempt": attempts }),
    )
    .await?;
    Ok(attempts)
}

impl crate::Portal {
    /// Issues a new `kind` code for `link` inside `tx` (the previous one stops working): stores
    /// its keyed hash and expiry, counts it, queues `mail(code)` and audits the sending.
    pub(super) async fn issue_code(
        &self,
        tx: &mut Transaction<'static, Any>,
        link: &Link,
        kind: CodeKind,
        actor: &Actor,
        now: i64,
        mail: impl FnOnce(&str) -> Mail,
    ) -> Result<(), sqlx::Error> {
        let code = tokens::new_code();
        let (hash, update, number, action) = match kind {
            CodeKind::Reveal => (
                code_hash(&self.code_key, &link.id, &code),
                "UPDATE reveal_links SET code_hash = $1, code_expires_at = $2, \
                 codes_sent = codes_sent + 1, updated_at = $3 WHERE id = $4",
                link.codes_sent + 1,
                AuditAction::RevealCodeSent,
            ),
            CodeKind::Report => (
                report_code_hash(&self.code_key, &link.id, &code),
                "UPDATE reveal_links SET disown_code_hash = $1, disown_code_expires_at = $2, \
                 disown_codes_sent = disown_codes_sent + 1, updated_at = $3 WHERE id = $4",
                link.disown_codes_sent + 1,
                AuditAction::RevealDisownCodeSent,
            ),
        };
        sqlx::query(update)
            .bind(hash)
            .bind(now + super::CODE_TTL_MS)
            .bind(now)
            .bind(&link.id)
            .execute(&mut **tx)
            .await?;
        self.mail.queue(tx, &mail(&code)).await?;
        audit::record(
            tx,
            actor,
            action,
            Target::Grant,
            &link.grant_id,
            json!({ "link": link.id, "sent_to": link.contact_email, "code_number": number }),
        )
        .await?;
        Ok(())
    }
}

/// What the contractor is told after a wrong code that leaves `left` attempts.
pub(super) fn wrong_code_error(left: i64) -> RevealError {
    RevealError::WrongCode(format!(
        "That code is not right. {left} attempt{} left.",
        if left == 1 { "" } else { "s" }
    ))
}

/// Reads a link by its token inside `tx`, holding its row for the rest of the transaction
/// (on SQLite the write transaction already holds the database).
pub(super) async fn lock_link(
    tx: &mut Transaction<'static, Any>,
    kind: DatabaseKind,
    token: &str,
) -> Result<Option<Link>, sqlx::Error> {
    if !tokens::looks_like_token(token) {
        return Ok(None);
    }
    let lock = match kind {
        DatabaseKind::Postgres => " FOR UPDATE OF l",
        DatabaseKind::Sqlite => "",
    };
    sqlx::query_as(&format!(
        "SELECT {LINK_COLUMNS} FROM reveal_links l JOIN grants g ON g.id = l.grant_id \
         WHERE l.token_hash = $1{lock}"
    ))
    .bind(tokens::hash(token))
    .fetch_optional(&mut **tx)
    .await
}

/// Sends a new reveal link for a grant inside `tx`: earlier links stop working, the
/// contractor is mailed, and the issue is audited. Call `handover.mail.wake()` after commit.
pub(crate) async fn issue_link(
    tx: &mut Transaction<'static, Any>,
    handover: &Handover,
    grant_id: &str,
    actor: &Actor,
    reason: &str,
) -> Result<(), sqlx::Error> {
    issue(tx, handover, grant_id, actor, reason, None).await
}

/// A new pair of credentials staged beside the grant's current one (a rotation), to hand
/// over through a link: the staged consumer key (the secret is sealed for the grant with
/// [`crate::vault`] before the link is issued) and when the current pair stops working
/// (the link works until then).
#[derive(Debug, Clone)]
pub struct StagedHandover {
    pub consumer_key: String,
    pub old_pair_until_ms: i64,
}

/// Like [`issue_link`], for a rotation's staged credentials: the link reveals the staged
/// key and the sealed secret, works until the old pair stops working, and its mail says a
/// new pair replaces the current one.
pub(crate) async fn issue_staged_link(
    tx: &mut Transaction<'static, Any>,
    handover: &Handover,
    grant_id: &str,
    actor: &Actor,
    reason: &str,
    staged: &StagedHandover,
) -> Result<(), sqlx::Error> {
    issue(tx, handover, grant_id, actor, reason, Some(staged)).await
}

async fn issue(
    tx: &mut Transaction<'static, Any>,
    handover: &Handover,
    grant_id: &str,
    actor: &Actor,
    reason: &str,
    staged: Option<&StagedHandover>,
) -> Result<(), sqlx::Error> {
    let (request_id, company, contact_email): (String, String, String) =
        sqlx::query_as("SELECT request_id, company, contact_email FROM grants WHERE id = $1")
            .bind(grant_id)
            .fetch_one(&mut **tx)
            .await?;
    let now = handover.clock.now_ms();
    let org = handover.org_name.current();
    let superseded = sqlx::query(
        "UPDATE reveal_links SET state = 'superseded', code_hash = NULL, updated_at = $1 \
         WHERE grant_id = $2 AND state IN ('open', 'revealing')",
    )
    .bind(now)
    .bind(grant_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let (token, token_hash) = tokens::new_token();
    let link_id = uuid::Uuid::now_v7().to_string();
    let expires_at = match staged {
        Some(staged) => staged.old_pair_until_ms.max(now + 3_600_000),
        None => now + handover.link_ttl_hours.max(1) * 3_600_000,
    };
    sqlx::query(
        "INSERT INTO reveal_links (id, grant_id, token_hash, state, issued_by, created_at, expires_at, updated_at, staged_key) \
         VALUES ($1, $2, $3, 'open', $4, $5, $6, $5, $7)",
    )
    .bind(&link_id)
    .bind(grant_id)
    .bind(&token_hash)
    .bind(&actor.name)
    .bind(now)
    .bind(expires_at)
    .bind(staged.map(|s| s.consumer_key.clone()))
    .execute(&mut **tx)
    .await?;
    let mail = match staged {
        None => Mail {
            to: contact_email.clone(),
            subject: format!("Your API credential for {org}'s Salesforce org ({company})"),
            body: format!(
                "Hello,\n\nThe API access {org} approved for {company} is set up. Collect the \
                 credential (consumer key and secret) here:\n\n{}/reveal/{token}\n\n\
                 The link works until {} and shows the secret once. Opening it is safe: the \
                 page asks for a one-time code we send to this address before it reveals \
                 anything. Do not forward this email.\n",
                handover.public_url,
                rfc3339(expires_at)
            ),
        },
        Some(_) => Mail {
            to: contact_email.clone(),
            subject: format!("A new API credential for {org}'s Salesforce org ({company})"),
            body: format!(
                "Hello,\n\n{org} is replacing the API credential of {company}'s access. Your \
                 current consumer key and secret keep working until {until}; the new ones work \
                 already. Collect the new credential (consumer key and secret) here and switch \
                 your integration to it before then:\n\n{}/reveal/{token}\n\n\
                 The link shows the secret once. Opening it is safe: the page asks for a \
                 one-time code we send to this address before it reveals anything. Do not \
                 forward this email.\n",
                handover.public_url,
                until = rfc3339(expires_at)
            ),
        },
    };
    handover.mail.queue(tx, &mail).await?;
    add_event(
        tx,
        now,
        &request_id,
        "reveal_link_sent",
        if staged.is_some() {
            "Your credential is being replaced: we emailed you a link to collect the new one."
        } else {
            "Your access is ready: we emailed you a link to collect the credential."
        },
        true,
    )
    .await?;
    audit::record(
        tx,
        actor,
        AuditAction::RevealLinkIssued,
        Target::Grant,
        grant_id,
        json!({
            "link": link_id,
            "reason": reason,
            "expires_at": rfc3339(expires_at),
            "sent_to": contact_email,
            "links_superseded": superseded,
            "staged_key": staged.map(|s| s.consumer_key.clone()),
        }),
    )
    .await?;
    Ok(())
}
