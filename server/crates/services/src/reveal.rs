//! Handing the credential over: the gated one-time reveal.
//!
//! When a grant is ready its contractor is emailed a reveal link (a capability URL: a 256-bit
//! token of which only the hash is kept, valid for 72 hours by default). Opening the link
//! changes nothing (mail scanners and chat previews open links). On the page the contractor
//! asks for a one-time code, which is mailed to the verified contact email (6 digits, valid
//! for 10 minutes; 5 wrong codes lock the link and alert the approvers), enters it and
//! presses "Reveal now".
//!
//! The secret is never stored: it is read from the org at that moment (Connect REST
//! credentials, `part=keyandsecret`) and goes out in that one response. The reveal is a
//! claim on the link row (`open` → `revealing` → `revealed`) made under the row's write lock,
//! so of any number of concurrent attempts exactly one gets the secret; if the org does not
//! answer, the claim is given back and nothing is used up.
//!
//! Opening a revealed link again offers "I did not do this": with a one-time code mailed for
//! the report (the reveal's own code does not do), from the newest link of the grant and
//! within a window after the reveal (`reveal_report_hours`, 7 days by default), the approvers
//! are alerted and the secret is rotated in the org (staged credentials, then rotate), so
//! whatever was revealed stops working. An old link left in a mailbox reports nothing. An
//! approver can send a new link (which also rotates the secret); so can they for a link that
//! expired or locked without being used.

use secrecy::SecretString;
use serde_json::json;
use sqlx::{Any, Row, Transaction};

pub use shared::reveal::{CredentialStatus, LinkState, LinkView, Report};

use crate::Portal;
use crate::audit::{self, Actor, Event, Outcome};
use crate::clock::{now_ms, rfc3339};
use crate::db::DatabaseKind;
use crate::mail::{Mail, Mailer};
use crate::requests::add_event;
use crate::tokens;
use crate::vault::{self, Vault};

/// How long a sealed secret may wait for its link to be issued before the sweeper may
/// destroy it (a rotation seals first, then sends the link).
const SEALED_GRACE_MS: i64 = 10 * 60 * 1000;

/// The secret sealed for `grant_id`, or a new one sealed now (the row is written before
/// the secret is deployed, so a crash in between loses nothing).
pub(crate) async fn sealed_or_new(
    db: &crate::Database,
    vault: &Vault,
    grant_id: &str,
) -> Result<SecretString, String> {
    let existing: Option<String> =
        sqlx::query_scalar("SELECT sealed FROM sealed_secrets WHERE grant_id = $1")
            .bind(grant_id)
            .fetch_optional(db.pool())
            .await
            .map_err(|e| format!("the sealed secret could not be read: {e}"))?;
    if let Some(sealed) = existing {
        return vault.open(grant_id, &sealed).map_err(|e| e.to_string());
    }
    let secret = vault::new_secret();
    store_sealed(db, vault, grant_id, &secret)
        .await
        .map_err(|e| format!("the chosen secret could not be kept: {e}"))?;
    Ok(secret)
}

/// Seals `secret` as the grant's (replacing any earlier one); returns what it replaced.
async fn store_sealed(
    db: &crate::Database,
    vault: &Vault,
    grant_id: &str,
    secret: &SecretString,
) -> Result<Option<String>, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let previous: Option<String> =
        sqlx::query_scalar("SELECT sealed FROM sealed_secrets WHERE grant_id = $1")
            .bind(grant_id)
            .fetch_optional(&mut *tx.tx)
            .await?;
    sqlx::query(
        "INSERT INTO sealed_secrets (grant_id, sealed, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (grant_id) DO UPDATE SET sealed = excluded.sealed, created_at = excluded.created_at",
    )
    .bind(grant_id)
    .bind(vault.seal(grant_id, secret))
    .bind(now_ms())
    .execute(&mut *tx.tx)
    .await?;
    tx.commit().await?;
    Ok(previous)
}

/// Destroys sealed secrets that can no longer be collected: the grant is set up and has no
/// link that still works (expired, locked, revealed or reported). Returns how many.
pub async fn destroy_uncollectable(db: &crate::Database) -> Result<u64, sqlx::Error> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let grants: Vec<String> = sqlx::query_scalar(
        "SELECT s.grant_id FROM sealed_secrets s JOIN grants g ON g.id = s.grant_id \
         WHERE g.state IN ('ready', 'active') AND s.created_at < $1 \
         AND NOT EXISTS (SELECT 1 FROM reveal_links l WHERE l.grant_id = s.grant_id \
             AND l.state IN ('open', 'revealing') AND l.expires_at > $2)",
    )
    .bind(now - SEALED_GRACE_MS)
    .bind(now)
    .fetch_all(&mut *tx.tx)
    .await?;
    for grant_id in &grants {
        sqlx::query("DELETE FROM sealed_secrets WHERE grant_id = $1")
            .bind(grant_id)
            .execute(&mut *tx.tx)
            .await?;
        audit::append(
            &mut tx.tx,
            Event {
                actor: &Actor::system(),
                action: "secret.sealed_destroyed",
                target_type: "grant",
                target_id: grant_id,
                outcome: Outcome::Success,
                details: json!({ "reason": "no link can reveal it any more" }),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(grants.len() as u64)
}

/// How long a mailed code is valid.
pub const CODE_TTL_MS: i64 = 10 * 60 * 1000;
/// Wrong codes a link takes before it locks.
pub const MAX_ATTEMPTS: i64 = 5;
/// Codes a link may have mailed (each is mail to the contractor's inbox).
pub const MAX_CODES: i64 = 10;
/// How long one request may hold the claim while it reads the secret from the org; a
/// request that died holding it gives the link back after this.
const CLAIM_MS: i64 = 60_000;

/// What the workflow needs to send a reveal link when a grant becomes ready.
#[derive(Clone, Debug)]
pub struct Handover {
    pub mail: Mailer,
    /// The portal's public base URL (no trailing slash), for the link.
    pub public_url: String,
    pub link_ttl_hours: i64,
    /// For orgs whose credentials API returns no secrets: seals the secret the portal
    /// chooses instead (see [`crate::vault`]). `None`: such orgs cannot be served.
    pub vault: Option<Vault>,
    /// The apps' contact (the provisioning engine's), for redeploying an app's secret.
    pub app_contact_email: String,
}

impl Default for Handover {
    fn default() -> Self {
        Self {
            mail: Mailer::outbox(),
            public_url: crate::PortalSettings::default().public_url,
            link_ttl_hours: crate::PortalSettings::default().reveal_link_hours,
            vault: None,
            app_contact_email: "salesforce-admins@integrations.portcullis.invalid".into(),
        }
    }
}

/// The credential, once. `Debug` never shows the secret.
#[derive(Debug, Clone)]
pub struct Revealed {
    pub consumer_key: String,
    pub consumer_secret: SecretString,
    /// The org's base URL (My Domain), for the token request and the API.
    pub instance_url: String,
    pub token_url: String,
    pub api_version: String,
    pub revealed_at: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RevealError {
    #[error("This link is not valid. Use the newest link from your email.")]
    NotFound,
    #[error("This link expired on {0} without being used. Ask Acme's admin for a new one.")]
    Expired(String),
    #[error("A newer link was sent for this credential. Use the newest link from your email.")]
    Superseded,
    #[error(
        "This link is locked after {MAX_ATTEMPTS} wrong codes. Acme's admins have been told; ask them for a new link."
    )]
    Locked,
    #[error("The credential was already revealed, on {0}.")]
    AlreadyRevealed(String),
    #[error("The credential is being revealed in another window. Reload the page in a minute.")]
    InProgress,
    #[error("Ask for a code first: we email it to you.")]
    NoCode,
    #[error("The code expired. Ask for a new one.")]
    CodeExpired,
    #[error("The code is the 6 digits from the email.")]
    MalformedCode,
    #[error("{0}")]
    WrongCode(String),
    #[error(
        "Too many codes were sent for this link. Use the newest code, or ask Acme's admin for a new link."
    )]
    TooManyCodes,
    #[error("This credential has not been revealed, so there is nothing to report.")]
    NotRevealed,
    #[error(
        "It is too late to report this reveal from this link: reports were taken until {0}. Ask Acme's admin for help."
    )]
    ReportTooLate(String),
    #[error("Ask for a code first: we email it to you, to confirm the report.")]
    NoReportCode,
    #[error("Too many wrong codes were entered to report this reveal. Ask Acme's admin for help.")]
    ReportLocked,
    #[error("Too many attempts from your address. Try again in {0} minutes.")]
    RateLimited(i64),
    #[error("This was already reported, on {0}; the secret was changed then.")]
    AlreadyDisowned(String),
    #[error("{0}")]
    NotAllowed(String),
    /// What Salesforce said stays with the admins ([`RevealError::detail`]): whoever holds a
    /// link sees only that it failed.
    #[error(
        "Salesforce did not answer as expected. Nothing was used up; try again in a few minutes, or ask Acme's admin."
    )]
    Salesforce(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl RevealError {
    /// The error in full, for the audit log, the logs and signed-in admins (the message
    /// shown to link holders leaves Salesforce's own text out).
    pub fn detail(&self) -> String {
        match self {
            RevealError::Salesforce(detail) => {
                format!("Salesforce did not answer as expected: {detail}")
            }
            other => other.to_string(),
        }
    }

    /// The HTTP status that fits.
    pub fn status(&self) -> u16 {
        match self {
            RevealError::NotFound => 404,
            RevealError::Expired(_) | RevealError::Superseded | RevealError::ReportTooLate(_) => {
                410
            }
            RevealError::Locked | RevealError::ReportLocked => 423,
            RevealError::AlreadyRevealed(_)
            | RevealError::InProgress
            | RevealError::NotRevealed
            | RevealError::AlreadyDisowned(_)
            | RevealError::NotAllowed(_) => 409,
            RevealError::NoCode
            | RevealError::NoReportCode
            | RevealError::CodeExpired
            | RevealError::MalformedCode
            | RevealError::WrongCode(_) => 400,
            RevealError::TooManyCodes | RevealError::RateLimited(_) => 429,
            RevealError::Salesforce(_) => 503,
            RevealError::Database(_) => 500,
        }
    }
}

fn from_salesforce(error: &salesforce::Error) -> RevealError {
    RevealError::Salesforce(error.to_string())
}

/// `a•••@example.com`: enough for the contractor to know which inbox to look in.
fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}•••@{domain}")
        }
        None => "your email".into(),
    }
}

/// A link row as read for a decision.
struct Link {
    id: String,
    grant_id: String,
    request_id: String,
    state: String,
    expires_at: i64,
    code_hash: Option<String>,
    code_expires_at: Option<i64>,
    codes_sent: i64,
    code_attempts: i64,
    claim_until: Option<i64>,
    revealed_at: Option<i64>,
    disowned_at: Option<i64>,
    contact_email: String,
    company: String,
    disown_code_hash: Option<String>,
    disown_code_expires_at: Option<i64>,
    disown_codes_sent: i64,
    disown_attempts: i64,
    /// No later link was sent for the grant.
    newest: bool,
}

const LINK_COLUMNS: &str = "l.id, l.grant_id, g.request_id, l.state, l.expires_at, l.code_hash, \
     l.code_expires_at, l.codes_sent, l.code_attempts, l.claim_until, l.revealed_at, \
     l.disowned_at, g.contact_email, g.company, l.disown_code_hash, l.disown_code_expires_at, \
     l.disown_codes_sent, l.disown_attempts, \
     CASE WHEN EXISTS (SELECT 1 FROM reveal_links n WHERE n.grant_id = l.grant_id \
         AND (n.created_at > l.created_at OR (n.created_at = l.created_at AND n.id > l.id))) \
     THEN 0 ELSE 1 END AS newest";

impl Link {
    fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            grant_id: row.try_get("grant_id")?,
            request_id: row.try_get("request_id")?,
            state: row.try_get("state")?,
            expires_at: row.try_get("expires_at")?,
            code_hash: row.try_get("code_hash")?,
            code_expires_at: row.try_get("code_expires_at")?,
            codes_sent: row.try_get("codes_sent")?,
            code_attempts: row.try_get("code_attempts")?,
            claim_until: row.try_get("claim_until")?,
            revealed_at: row.try_get("revealed_at")?,
            disowned_at: row.try_get("disowned_at")?,
            contact_email: row.try_get("contact_email")?,
            company: row.try_get("company")?,
            disown_code_hash: row.try_get("disown_code_hash")?,
            disown_code_expires_at: row.try_get("disown_code_expires_at")?,
            disown_codes_sent: row.try_get("disown_codes_sent")?,
            disown_attempts: row.try_get("disown_attempts")?,
            newest: row.try_get::<i64, _>("newest")? != 0,
        })
    }

    /// The refusal for reporting this link's reveal now, if any: it must be revealed, not
    /// reported yet, the newest link of its grant, and within `window_ms` of the reveal.
    fn unreportable(&self, now: i64, window_ms: i64) -> Option<RevealError> {
        let Some(revealed_at) = self.revealed_at.filter(|_| self.state == "revealed") else {
            return Some(RevealError::NotRevealed);
        };
        if let Some(at) = self.disowned_at {
            return Some(RevealError::AlreadyDisowned(rfc3339(at)));
        }
        if !self.newest {
            return Some(RevealError::Superseded);
        }
        if revealed_at + window_ms <= now {
            return Some(RevealError::ReportTooLate(rfc3339(revealed_at + window_ms)));
        }
        if self.disown_attempts >= MAX_ATTEMPTS {
            return Some(RevealError::ReportLocked);
        }
        None
    }

    /// The refusal for a link that cannot be used for a code or a reveal now, if any.
    fn unusable(&self, now: i64) -> Option<RevealError> {
        match self.state.as_str() {
            "superseded" => Some(RevealError::Superseded),
            "locked" => Some(RevealError::Locked),
            "revealed" => Some(RevealError::AlreadyRevealed(rfc3339(
                self.revealed_at.unwrap_or_default(),
            ))),
            "revealing" if self.claim_until.unwrap_or(0) > now => Some(RevealError::InProgress),
            _ if self.expires_at <= now => Some(RevealError::Expired(rfc3339(self.expires_at))),
            _ => None,
        }
    }
}

/// The code's stored form: keyed ([`tokens::CodeKey`]) and bound to the link, so one
/// link's code hash says nothing about another's.
fn code_hash(key: &tokens::CodeKey, link_id: &str, code: &str) -> String {
    key.hash(&format!("reveal:{link_id}"), code)
}

/// A report code's stored form: bound to the link and the purpose, so a reveal code is never
/// taken for a report code.
fn report_code_hash(key: &tokens::CodeKey, link_id: &str, code: &str) -> String {
    key.hash(&format!("report:{link_id}"), code)
}

/// Reads a link by its token inside `tx`, holding its row for the rest of the transaction
/// (on SQLite the write transaction already holds the database).
async fn lock_link(
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
    let row = sqlx::query(&format!(
        "SELECT {LINK_COLUMNS} FROM reveal_links l JOIN grants g ON g.id = l.grant_id \
         WHERE l.token_hash = $1{lock}"
    ))
    .bind(tokens::hash(token))
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref().map(Link::from_row).transpose()
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
    let grant = sqlx::query("SELECT request_id, company, contact_email FROM grants WHERE id = $1")
        .bind(grant_id)
        .fetch_one(&mut **tx)
        .await?;
    let request_id: String = grant.try_get("request_id")?;
    let company: String = grant.try_get("company")?;
    let contact_email: String = grant.try_get("contact_email")?;
    let now = now_ms();
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
    let expires_at = now + handover.link_ttl_hours.max(1) * 3_600_000;
    sqlx::query(
        "INSERT INTO reveal_links (id, grant_id, token_hash, state, issued_by, created_at, expires_at, updated_at) \
         VALUES ($1, $2, $3, 'open', $4, $5, $6, $5)",
    )
    .bind(&link_id)
    .bind(grant_id)
    .bind(&token_hash)
    .bind(&actor.name)
    .bind(now)
    .bind(expires_at)
    .execute(&mut **tx)
    .await?;
    handover
        .mail
        .queue(
            tx,
            &Mail {
                to: contact_email.clone(),
                subject: format!("Your API credential for Acme's Salesforce org ({company})"),
                body: format!(
                    "Hello,\n\nThe API access Acme approved for {company} is set up. Collect the \
                     credential (consumer key and secret) here:\n\n{}/reveal/{token}\n\n\
                     The link works until {} and shows the secret once. Opening it is safe: the \
                     page asks for a one-time code we send to this address before it reveals \
                     anything. Do not forward this email.\n",
                    handover.public_url,
                    rfc3339(expires_at)
                ),
            },
        )
        .await?;
    add_event(
        tx,
        &request_id,
        "reveal_link_sent",
        "Your access is ready: we emailed you a link to collect the credential.",
        true,
    )
    .await?;
    audit::append(
        tx,
        Event {
            actor,
            action: "reveal.link_issued",
            target_type: "grant",
            target_id: grant_id,
            outcome: Outcome::Success,
            details: json!({
                "link": link_id,
                "reason": reason,
                "expires_at": rfc3339(expires_at),
                "sent_to": contact_email,
                "links_superseded": superseded,
            }),
        },
    )
    .await?;
    Ok(())
}

/// The app and consumer the grant's provisioning recorded.
async fn consumer_of(
    tx: &mut Transaction<'static, Any>,
    grant_id: &str,
) -> Result<Option<(String, String)>, sqlx::Error> {
    let output: Option<String> = sqlx::query_scalar(
        "SELECT output FROM provisioning_steps WHERE grant_id = $1 AND step = 'consumer' AND state = 'succeeded'",
    )
    .bind(grant_id)
    .fetch_optional(&mut **tx)
    .await?
    .flatten();
    let Some(value) = output.and_then(|o| serde_json::from_str::<serde_json::Value>(&o).ok())
    else {
        return Ok(None);
    };
    Ok(value["app_id"]
        .as_str()
        .zip(value["consumer_id"].as_str())
        .map(|(a, c)| (a.to_string(), c.to_string())))
}

/// Report codes and reports from one client address: at most this many an hour.
const REPORTS_PER_HOUR: i64 = 20;

/// Counts a report action (a code mailed or a code checked) against the client's address.
async fn report_rate_limit(
    tx: &mut Transaction<'static, Any>,
    actor: &Actor,
) -> Result<(), RevealError> {
    match crate::requests::rate_limit(
        tx,
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
    /// What the workflow uses to send links for this portal.
    pub fn handover(&self) -> Handover {
        Handover {
            mail: self.mail.clone(),
            public_url: self.settings.public_url.clone(),
            link_ttl_hours: self.settings.reveal_link_hours,
            vault: self.vault.clone(),
            app_contact_email: self.app_contact_email.clone(),
        }
    }

    /// How long after a reveal it can be reported as not the contractor's.
    fn report_window_ms(&self) -> i64 {
        self.settings.reveal_report_hours.max(1) * 3_600_000
    }

    /// What a reveal link is for and where it stands. Reading changes nothing.
    pub async fn reveal_link(&self, token: &str) -> Result<Option<LinkView>, sqlx::Error> {
        if !tokens::looks_like_token(token) {
            return Ok(None);
        }
        let Some(row) = sqlx::query(&format!(
            "SELECT {LINK_COLUMNS}, g.end_date, g.scope FROM reveal_links l \
             JOIN grants g ON g.id = l.grant_id WHERE l.token_hash = $1"
        ))
        .bind(tokens::hash(token))
        .fetch_optional(self.db.pool())
        .await?
        else {
            return Ok(None);
        };
        let link = Link::from_row(&row)?;
        let scope: Option<shared::scope::Scope> =
            serde_json::from_str(&row.try_get::<String, _>("scope")?).ok();
        let now = now_ms();
        let state = match link.state.as_str() {
            "superseded" => LinkState::Superseded,
            "locked" => LinkState::Locked,
            "revealed" => LinkState::Revealed {
                revealed_at: rfc3339(link.revealed_at.unwrap_or_default()),
                disowned_at: link.disowned_at.map(rfc3339),
                report: {
                    let window = self.report_window_ms();
                    let until = rfc3339(link.revealed_at.unwrap_or_default() + window);
                    match link.unreportable(now, window) {
                        Some(RevealError::Superseded) => Report::Superseded,
                        Some(RevealError::ReportTooLate(_)) => Report::TooLate { until },
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
            company: link.company,
            end_date: row.try_get("end_date")?,
            access: scope
                .map(|s| {
                    s.items()
                        .into_iter()
                        .map(|(k, v)| format!("{k}: {}", v.as_str()))
                        .collect()
                })
                .unwrap_or_default(),
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
        let mut tx = self.db.begin_write().await?;
        let link = lock_link(&mut tx.tx, self.db.kind(), token)
            .await?
            .ok_or(RevealError::NotFound)?;
        let now = now_ms();
        if let Some(refusal) = link.unusable(now) {
            return Err(refusal);
        }
        if link.codes_sent >= MAX_CODES {
            return Err(RevealError::TooManyCodes);
        }
        let code = tokens::new_code();
        sqlx::query(
            "UPDATE reveal_links SET code_hash = $1, code_expires_at = $2, codes_sent = codes_sent + 1, \
             updated_at = $3 WHERE id = $4",
        )
        .bind(code_hash(&self.code_key, &link.id, &code))
        .bind(now + CODE_TTL_MS)
        .bind(now)
        .bind(&link.id)
        .execute(&mut *tx.tx)
        .await?;
        self.mail
            .queue(
                &mut tx.tx,
                &Mail {
                    to: link.contact_email.clone(),
                    subject: format!("Your code to reveal {}'s API credential", link.company),
                    body: format!(
                        "Hello,\n\nYour one-time code is {code}\n\nEnter it on the reveal page within \
                         10 minutes. If you did not ask for it, ignore this email: nothing is \
                         revealed without the code.\n"
                    ),
                },
            )
            .await?;
        audit::append(
            &mut tx.tx,
            Event {
                actor,
                action: "reveal.code_sent",
                target_type: "grant",
                target_id: &link.grant_id,
                outcome: Outcome::Success,
                details: json!({ "link": link.id, "sent_to": link.contact_email, "code_number": link.codes_sent + 1 }),
            },
        )
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
        // 1. Check the code and claim the link, under its row lock.
        let (link, app_id, consumer_id) = {
            let mut tx = self.db.begin_write().await?;
            let link = lock_link(&mut tx.tx, self.db.kind(), token)
                .await?
                .ok_or(RevealError::NotFound)?;
            let now = now_ms();
            if let Some(refusal) = link.unusable(now) {
                return Err(refusal);
            }
            let Some(expected) = link.code_hash.as_deref() else {
                return Err(RevealError::NoCode);
            };
            if link.code_expires_at.unwrap_or(0) <= now {
                return Err(RevealError::CodeExpired);
            }
            if !tokens::constant_time_eq(&code_hash(&self.code_key, &link.id, code), expected) {
                return Err(self.wrong_code(tx, &link, actor).await?);
            }
            let Some((app_id, consumer_id)) = consumer_of(&mut tx.tx, &link.grant_id).await? else {
                return Err(RevealError::NotAllowed(
                    "This credential's app is not recorded; ask Acme's admin for a new link."
                        .into(),
                ));
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
        let credential = self
            .credential_for(&link.grant_id, &app_id, &consumer_id)
            .await;
        let (key, secret, source) = match credential {
            Ok(c) => c,
            Err(e) => {
                let mut tx = self.db.begin_write().await?;
                sqlx::query(
                    "UPDATE reveal_links SET state = 'open', claim_until = NULL, updated_at = $1 \
                     WHERE id = $2 AND state = 'revealing'",
                )
                .bind(now_ms())
                .bind(&link.id)
                .execute(&mut *tx.tx)
                .await?;
                audit::append(
                    &mut tx.tx,
                    Event {
                        actor,
                        action: "secret.reveal_failed",
                        target_type: "grant",
                        target_id: &link.grant_id,
                        outcome: Outcome::Failure,
                        details: json!({ "link": link.id, "error": e.detail() }),
                    },
                )
                .await?;
                tx.commit().await?;
                return Err(e);
            }
        };

        // 3. Record the reveal.
        let now = now_ms();
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
        sqlx::query(
            "UPDATE grants SET state = 'active', updated_at = $1 WHERE id = $2 AND state = 'ready'",
        )
        .bind(now)
        .bind(&link.grant_id)
        .execute(&mut *tx.tx)
        .await?;
        // Revealed: a sealed copy (orgs that return no secrets) is destroyed with the reveal.
        sqlx::query("DELETE FROM sealed_secrets WHERE grant_id = $1")
            .bind(&link.grant_id)
            .execute(&mut *tx.tx)
            .await?;
        add_event(
            &mut tx.tx,
            &link.request_id,
            "secret_revealed",
            &format!(
                "You collected the credential on {}. The link cannot show it again.",
                rfc3339(now)
            ),
            true,
        )
        .await?;
        audit::append(
            &mut tx.tx,
            Event {
                actor,
                action: "secret.revealed",
                target_type: "grant",
                target_id: &link.grant_id,
                outcome: Outcome::Success,
                details: json!({
                    "link": link.id,
                    "consumer_key": key,
                    "app": app_id,
                    "source": source,
                }),
            },
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
    async fn credential_for(
        &self,
        grant_id: &str,
        app_id: &str,
        consumer_id: &str,
    ) -> Result<(String, SecretString, &'static str), RevealError> {
        use salesforce::connect::CredentialPart;
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
                    )),
                };
            }
            Err(e) => e,
        };
        if !salesforce::connect::is_secret_access_disabled(&error) {
            return Err(from_salesforce(&error));
        }
        let sealed: Option<String> =
            sqlx::query_scalar("SELECT sealed FROM sealed_secrets WHERE grant_id = $1")
                .bind(grant_id)
                .fetch_optional(self.db.pool())
                .await?;
        let (Some(vault), Some(sealed)) = (self.vault.as_ref(), sealed) else {
            return Err(RevealError::NotAllowed(
                "The org does not hand out this secret and Portcullis holds no copy of it; ask Acme's admin for a new link."
                    .into(),
            ));
        };
        let secret = vault.open(grant_id, &sealed).map_err(|e| {
            RevealError::NotAllowed(format!("{e}; ask Acme's admin for a new link."))
        })?;
        let key = self
            .salesforce
            .consumer_credential(app_id, consumer_id, CredentialPart::Key)
            .await
            .map_err(|e| from_salesforce(&e))?
            .key
            .ok_or_else(|| RevealError::Salesforce("the org returned no consumer key".into()))?;
        Ok((key, secret, "sealed"))
    }

    /// Counts a wrong code; the last allowed one locks the link and alerts the approvers.
    async fn wrong_code(
        &self,
        mut tx: crate::db::WriteTx,
        link: &Link,
        actor: &Actor,
    ) -> Result<RevealError, sqlx::Error> {
        let attempts = link.code_attempts + 1;
        let locks = attempts >= MAX_ATTEMPTS;
        let now = now_ms();
        let update = if locks {
            "UPDATE reveal_links SET code_attempts = $1, state = 'locked', code_hash = NULL, \
             updated_at = $2 WHERE id = $3"
        } else {
            "UPDATE reveal_links SET code_attempts = $1, updated_at = $2 WHERE id = $3"
        };
        sqlx::query(update)
            .bind(attempts)
            .bind(now)
            .bind(&link.id)
            .execute(&mut *tx.tx)
            .await?;
        audit::append(
            &mut tx.tx,
            Event {
                actor,
                action: "reveal.code_rejected",
                target_type: "grant",
                target_id: &link.grant_id,
                outcome: Outcome::Denied,
                details: json!({ "link": link.id, "attempt": attempts }),
            },
        )
        .await?;
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
            audit::append(
                &mut tx.tx,
                Event {
                    actor,
                    action: "reveal.locked",
                    target_type: "grant",
                    target_id: &link.grant_id,
                    outcome: Outcome::Denied,
                    details: json!({ "link": link.id, "attempts": attempts }),
                },
            )
            .await?;
        }
        tx.commit().await?;
        self.mail.wake();
        Ok(if locks {
            RevealError::Locked
        } else {
            let left = MAX_ATTEMPTS - attempts;
            RevealError::WrongCode(format!(
                "That code is not right. {left} attempt{} left.",
                if left == 1 { "" } else { "s" }
            ))
        })
    }

    async fn alert_approvers(
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

    /// Replaces the app's key and secret in the org: new staged credentials, then rotate.
    /// Whatever was revealed before stops working. The new secret is not kept.
    async fn rotate(&self, grant_id: &str) -> Result<(), RevealError> {
        let mut tx = self.db.begin_write().await?;
        let consumer = consumer_of(&mut tx.tx, grant_id).await?;
        tx.commit().await?;
        let Some((app_id, consumer_id)) = consumer else {
            return Err(RevealError::NotAllowed(
                "This grant's app is not recorded, so its secret cannot be changed.".into(),
            ));
        };
        let staged = match self.salesforce.create_staged(&app_id, &consumer_id).await {
            Ok(staged) => staged,
            Err(e) if salesforce::connect::is_secret_access_disabled(&e) => {
                return self.rotate_by_deploy(grant_id).await;
            }
            Err(e) => return Err(from_salesforce(&e)),
        };
        self.salesforce
            .rotate_staged(&app_id, &consumer_id, &staged.id)
            .await
            .map_err(|e| from_salesforce(&e))?;
        Ok(())
    }

    /// Rotation where the credentials API is closed: a new secret of the portal's choosing,
    /// sealed first, then deployed as the app's. If the deploy fails the earlier sealed
    /// secret (still the app's) is put back.
    async fn rotate_by_deploy(&self, grant_id: &str) -> Result<(), RevealError> {
        let Some(vault) = self.vault.as_ref() else {
            return Err(RevealError::NotAllowed(
                "The org does not let Portcullis rotate this secret (its credentials API is closed and no credential key is configured); rotate it in Setup.".into(),
            ));
        };
        let secret = vault::new_secret();
        let previous = store_sealed(&self.db, vault, grant_id, &secret).await?;
        let handover = self.handover();
        let engine = crate::provisioning::Engine::new(self.db.clone(), self.salesforce.clone())
            .with_contact_email(handover.app_contact_email.clone())
            .with_handover(handover);
        if let Err(message) = engine.deploy_chosen_secret(grant_id, &secret).await {
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
            return Err(RevealError::Salesforce(message));
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
        let mut tx = self.db.begin_write().await?;
        let link = lock_link(&mut tx.tx, self.db.kind(), token)
            .await?
            .ok_or(RevealError::NotFound)?;
        let now = now_ms();
        if let Some(refusal) = link.unreportable(now, self.report_window_ms()) {
            return Err(refusal);
        }
        if link.disown_codes_sent >= MAX_CODES {
            return Err(RevealError::TooManyCodes);
        }
        report_rate_limit(&mut tx.tx, actor).await?;
        let code = tokens::new_code();
        sqlx::query(
            "UPDATE reveal_links SET disown_code_hash = $1, disown_code_expires_at = $2, \
             disown_codes_sent = disown_codes_sent + 1, updated_at = $3 WHERE id = $4",
        )
        .bind(report_code_hash(&self.code_key, &link.id, &code))
        .bind(now + CODE_TTL_MS)
        .bind(now)
        .bind(&link.id)
        .execute(&mut *tx.tx)
        .await?;
        self.mail
            .queue(
                &mut tx.tx,
                &Mail {
                    to: link.contact_email.clone(),
                    subject: format!(
                        "Your code to report a reveal of {}'s API credential",
                        link.company
                    ),
                    body: format!(
                        "Hello,\n\nYour one-time code is {code}\n\nSomeone asked, on the reveal page, to \
                         report that {}'s API credential was revealed by someone else. Enter the code \
                         there within 10 minutes to report it: Acme's admins are alerted and the \
                         secret is changed at once. If you did not ask for it, ignore this email.\n",
                        link.company
                    ),
                },
            )
            .await?;
        audit::append(
            &mut tx.tx,
            Event {
                actor,
                action: "reveal.disown_code_sent",
                target_type: "grant",
                target_id: &link.grant_id,
                outcome: Outcome::Success,
                details: json!({ "link": link.id, "sent_to": link.contact_email, "code_number": link.disown_codes_sent + 1 }),
            },
        )
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
        let link = {
            let mut tx = self.db.begin_write().await?;
            let link = lock_link(&mut tx.tx, self.db.kind(), token)
                .await?
                .ok_or(RevealError::NotFound)?;
            let now = now_ms();
            if let Some(refusal) = link.unreportable(now, self.report_window_ms()) {
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
            report_rate_limit(&mut tx.tx, actor).await?;
            if !tokens::constant_time_eq(
                &report_code_hash(&self.code_key, &link.id, code),
                expected,
            ) {
                let attempts = link.disown_attempts + 1;
                sqlx::query(
                    "UPDATE reveal_links SET disown_attempts = $1, updated_at = $2 WHERE id = $3",
                )
                .bind(attempts)
                .bind(now)
                .bind(&link.id)
                .execute(&mut *tx.tx)
                .await?;
                audit::append(
                    &mut tx.tx,
                    Event {
                        actor,
                        action: "reveal.disown_code_rejected",
                        target_type: "grant",
                        target_id: &link.grant_id,
                        outcome: Outcome::Denied,
                        details: json!({ "link": link.id, "attempt": attempts }),
                    },
                )
                .await?;
                tx.commit().await?;
                let left = MAX_ATTEMPTS - attempts;
                return Err(if left <= 0 {
                    RevealError::ReportLocked
                } else {
                    RevealError::WrongCode(format!(
                        "That code is not right. {left} attempt{} left.",
                        if left == 1 { "" } else { "s" }
                    ))
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
            audit::append(
                &mut tx.tx,
                Event {
                    actor,
                    action: "secret.disowned",
                    target_type: "grant",
                    target_id: &link.grant_id,
                    outcome: Outcome::Success,
                    details: json!({ "link": link.id, "revealed_at": link.revealed_at.map(rfc3339) }),
                },
            )
            .await?;
            tx.commit().await?;
            link
        };
        let rotated = self.rotate(&link.grant_id).await;
        let now = now_ms();
        let mut tx = self.db.begin_write().await?;
        audit::append(
            &mut tx.tx,
            Event {
                actor,
                action: "secret.rotated",
                target_type: "grant",
                target_id: &link.grant_id,
                outcome: if rotated.is_ok() {
                    Outcome::Success
                } else {
                    Outcome::Failure
                },
                details: json!({
                    "reason": "contractor reported a reveal they did not make",
                    "error": rotated.as_ref().err().map(RevealError::detail),
                }),
            },
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
        sqlx::query(
            "UPDATE grants SET state = 'ready', updated_at = $1 WHERE id = $2 AND state = 'active'",
        )
        .bind(now)
        .bind(&link.grant_id)
        .execute(&mut *tx.tx)
        .await?;
        add_event(
            &mut tx.tx,
            &link.request_id,
            "secret_disowned",
            "You reported a reveal you did not make. The secret was changed; Acme's admins will send you a new link.",
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
            audit::append(
                &mut tx.tx,
                Event {
                    actor,
                    action: "secret.rotated",
                    target_type: "grant",
                    target_id: grant_id,
                    outcome: Outcome::Failure,
                    details: json!({ "reason": "new link", "error": e.detail() }),
                },
            )
            .await?;
            tx.commit().await?;
            return Err(e);
        }
        let mut tx = self.db.begin_write().await?;
        audit::append(
            &mut tx.tx,
            Event {
                actor,
                action: "secret.rotated",
                target_type: "grant",
                target_id: grant_id,
                outcome: Outcome::Success,
                details: json!({ "reason": "new link" }),
            },
        )
        .await?;
        issue_link(&mut tx.tx, &self.handover(), grant_id, actor, "reissued").await?;
        sqlx::query(
            "UPDATE grants SET state = 'ready', updated_at = $1 WHERE id = $2 AND state = 'active'",
        )
        .bind(now_ms())
        .bind(grant_id)
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
        let latest = sqlx::query(
            "SELECT state, expires_at, revealed_at, disowned_at, code_attempts FROM reveal_links \
             WHERE grant_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(grant_id)
        .fetch_optional(self.db.pool())
        .await?;
        let set_up = matches!(grant_state.as_deref(), Some("ready" | "active"));
        let now = now_ms();
        let (status, summary) = match &latest {
            None => (
                "not_sent",
                "No credential link has been sent yet.".to_string(),
            ),
            Some(row) => {
                let state: String = row.try_get("state")?;
                let expires_at: i64 = row.try_get("expires_at")?;
                let revealed_at: Option<i64> = row.try_get("revealed_at")?;
                let disowned_at: Option<i64> = row.try_get("disowned_at")?;
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
