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
//!
//! The rooms: [`link`] (the link rows, issuing a link), [`collect`] (the code and the
//! reveal itself), [`report`] ("I did not do this", rotation, a new link, the credential's
//! status). The app and consumer ids come from the grant ([`crate::eca`]); a secret the
//! portal chose is kept by [`crate::vault`]. Nothing here depends on the provisioning
//! workflow, which depends on this (it issues the first link).

use secrecy::SecretString;
use serde_json::json;
use shared::grant::GrantState;

pub use shared::reveal::{CredentialStatus, LinkState, LinkView, Report};

use crate::Portal;
use crate::audit::{self, Actor, AuditAction, Target};
use crate::clock::{Clock, SharedClock};
use crate::mail::Mailer;
use crate::org_name::{OrgName, OrgNameCache};
use crate::vault::Vault;

mod collect;
mod link;
mod report;

pub use self::link::StagedHandover;
pub(crate) use self::link::{issue_link, issue_staged_link};

/// How long a sealed secret may wait for its link to be issued before the sweeper may
/// destroy it (a rotation seals first, then sends the link).
const SEALED_GRACE_MS: i64 = 10 * 60 * 1000;

/// Destroys sealed secrets that can no longer be collected: the grant is set up and has no
/// link that still works (expired, locked, revealed or reported). Returns how many.
pub async fn destroy_uncollectable(
    db: &crate::Database,
    clock: &dyn Clock,
) -> Result<u64, sqlx::Error> {
    let now = clock.now_ms();
    let mut tx = db.begin_write().await?;
    let grants: Vec<String> = sqlx::query_scalar(
        "SELECT s.grant_id FROM sealed_secrets s JOIN grants g ON g.id = s.grant_id \
         WHERE g.state IN ($3, $4) AND s.created_at < $1 \
         AND NOT EXISTS (SELECT 1 FROM reveal_links l WHERE l.grant_id = s.grant_id \
             AND l.state IN ('open', 'revealing') AND l.expires_at > $2)",
    )
    .bind(now - SEALED_GRACE_MS)
    .bind(now)
    .bind(GrantState::Ready.as_str())
    .bind(GrantState::Active.as_str())
    .fetch_all(&mut *tx.tx)
    .await?;
    for grant_id in &grants {
        sqlx::query("DELETE FROM sealed_secrets WHERE grant_id = $1")
            .bind(grant_id)
            .execute(&mut *tx.tx)
            .await?;
        audit::record(
            &mut tx.tx,
            &Actor::system(),
            AuditAction::SecretSealedDestroyed,
            Target::Grant,
            grant_id,
            json!({ "reason": "no link can reveal it any more" }),
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
    /// Where the link's issue and expiry times come from.
    pub clock: SharedClock,
    /// The org's name for the link's mail (the portal's cache: read before the
    /// transaction that sends the link).
    pub org_name: OrgNameCache,
}

impl Default for Handover {
    fn default() -> Self {
        Self {
            mail: Mailer::outbox(),
            public_url: crate::PortalSettings::default().public_url,
            link_ttl_hours: crate::PortalSettings::default().reveal_link_hours,
            vault: None,
            app_contact_email: "salesforce-admins@integrations.portcullis.invalid".into(),
            clock: crate::clock::system(),
            org_name: OrgNameCache::default(),
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
    #[error("This link expired on {0} without being used. Ask {1}'s admin for a new one.")]
    Expired(String, OrgName),
    #[error("A newer link was sent for this credential. Use the newest link from your email.")]
    Superseded,
    #[error(
        "This link is locked after {MAX_ATTEMPTS} wrong codes. {0}'s admins have been told; ask them for a new link."
    )]
    Locked(OrgName),
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
        "Too many codes were sent for this link. Use the newest code, or ask {0}'s admin for a new link."
    )]
    TooManyCodes(OrgName),
    #[error("This credential has not been revealed, so there is nothing to report.")]
    NotRevealed,
    #[error(
        "It is too late to report this reveal from this link: reports were taken until {0}. Ask {1}'s admin for help."
    )]
    ReportTooLate(String, OrgName),
    #[error("Ask for a code first: we email it to you, to confirm the report.")]
    NoReportCode,
    #[error("Too many wrong codes were entered to report this reveal. Ask {0}'s admin for help.")]
    ReportLocked(OrgName),
    #[error("Too many attempts from your address. Try again in {0} minutes.")]
    RateLimited(i64),
    #[error("This was already reported, on {0}; the secret was changed then.")]
    AlreadyDisowned(String),
    #[error("{0}")]
    NotAllowed(String),
    /// What Salesforce said stays with the admins ([`RevealError::detail`]): whoever holds a
    /// link sees only that it failed.
    #[error(
        "Salesforce did not answer as expected. Nothing was used up; try again in a few minutes, or ask {1}'s admin."
    )]
    Salesforce(String, OrgName),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl RevealError {
    /// The error in full, for the audit log, the logs and signed-in admins (the message
    /// shown to link holders leaves Salesforce's own text out).
    pub fn detail(&self) -> String {
        match self {
            RevealError::Salesforce(detail, _) => {
                format!("Salesforce did not answer as expected: {detail}")
            }
            other => other.to_string(),
        }
    }

    /// The HTTP status that fits.
    pub fn status(&self) -> u16 {
        match self {
            RevealError::NotFound => 404,
            RevealError::Expired(..) | RevealError::Superseded | RevealError::ReportTooLate(..) => {
                410
            }
            RevealError::Locked(_) | RevealError::ReportLocked(_) => 423,
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
            RevealError::TooManyCodes(_) | RevealError::RateLimited(_) => 429,
            RevealError::Salesforce(..) => 503,
            RevealError::Database(_) => 500,
        }
    }
}

fn from_salesforce(error: &salesforce::Error, org: &OrgName) -> RevealError {
    RevealError::Salesforce(error.to_string(), org.clone())
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

impl Portal {
    /// What the workflow uses to send links for this portal.
    pub fn handover(&self) -> Handover {
        Handover {
            mail: self.mail.clone(),
            public_url: self.settings.public_url.clone(),
            link_ttl_hours: self.settings.reveal_link_hours,
            vault: self.vault.clone(),
            app_contact_email: self.app_contact_email.clone(),
            clock: self.clock().clone(),
            org_name: self.org_name.clone(),
        }
    }

    /// How long after a reveal it can be reported as not the contractor's.
    fn report_window_ms(&self) -> i64 {
        self.settings.reveal_report_hours.max(1) * 3_600_000
    }
}
