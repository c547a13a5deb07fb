//! A set-up grant proved again, later (the assurance room's drift detection): what was
//! approved and made for it (its scope, names and the steps' recorded outputs), and the
//! least-privilege proof run again as the contractor — the provisioning step's own checks
//! ([`super::proof`]), not a copy.
//!
//! The credential is tried as the teardown tries it: the secret read from the org (or the
//! sealed copy where the org's credentials API returns none), held in memory only. Unlike the
//! proof step, a re-proof never chooses and deploys a new secret: that would change a
//! credential the contractor already holds.

use salesforce::{Client, PortalAuth};
use shared::grant::StepState;
use shared::scope::Scope;

use super::Step;
use super::context::{Checkpointer, Context};
use super::outputs::Outputs;
use super::proof::{Check, checks_as};
use crate::clock::SharedClock;
use crate::db::Database;
use crate::eca::{DeployPoll, GrantApp};
use crate::names::Names;
use crate::org_failure::OrgFailure;
use crate::vault::Vault;

/// What was approved for a grant and what its run made, as recorded.
#[derive(Debug, Clone)]
pub struct Approved {
    pub grant_id: String,
    pub company: String,
    pub names: Names,
    pub scope: Scope,
    pub end_date: String,
    pub ip_ranges: Vec<String>,
    /// What each succeeded step recorded.
    pub outputs: Outputs,
}

impl Approved {
    /// The grant's app as it was approved.
    pub fn app(&self, contact_email: &str) -> GrantApp {
        GrantApp {
            grant_id: self.grant_id.clone(),
            names: self.names.clone(),
            company: self.company.clone(),
            ip_ranges: self.ip_ranges.clone(),
            contact_email: contact_email.to_string(),
        }
    }
}

/// What grant `grant_id` was approved and made with (`None`: no such grant).
pub async fn approved(db: &Database, grant_id: &str) -> Result<Option<Approved>, sqlx::Error> {
    let Some((company, scope, end_date, ip_ranges)): Option<(String, String, String, String)> =
        sqlx::query_as("SELECT company, scope, end_date, ip_ranges FROM grants WHERE id = $1")
            .bind(grant_id)
            .fetch_optional(db.pool())
            .await?
    else {
        return Ok(None);
    };
    let scope: Scope =
        serde_json::from_str(&scope).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    let ip_ranges: Vec<String> =
        serde_json::from_str(&ip_ranges).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT step, output FROM provisioning_steps WHERE grant_id = $1 AND state = $2",
    )
    .bind(grant_id)
    .bind(StepState::Succeeded.as_str())
    .fetch_all(db.pool())
    .await?;
    let mut outputs = Outputs::default();
    for (step, output) in rows {
        if let (Ok(step), Some(output)) = (Step::parse(&step), output) {
            outputs.insert(step, &output);
        }
    }
    let mut names = Names::for_grant(grant_id, &company);
    super::context::use_current_app(db, grant_id, &mut names, &mut outputs).await?;
    Ok(Some(Approved {
        grant_id: grant_id.to_string(),
        names,
        company,
        scope,
        end_date,
        ip_ranges,
        outputs,
    }))
}

/// A re-proof's result: the proof's checks (passed or not), and the scopes the credential's
/// token was issued with (`None`: no token).
#[derive(Debug, Clone)]
pub struct Reproof {
    pub checks: Vec<Check>,
    pub token_scopes: Option<String>,
}

/// Where a re-proof gets what the proof step gets from its engine.
pub struct ReproofParts<'a> {
    pub db: &'a Database,
    pub vault: Option<&'a Vault>,
    pub contact_email: &'a str,
    pub clock: SharedClock,
}

/// Runs the least-privilege proof again for a set-up grant, as the contractor. A credential
/// that is refused, or that cannot be tried, is a failed check (the contractor's access no
/// longer works as approved); a transient failure of the org is an error (try again later).
pub async fn reprove(
    client: &Client,
    parts: &ReproofParts<'_>,
    approved: &Approved,
) -> Result<Reproof, OrgFailure> {
    let cx = Context {
        grant_id: approved.grant_id.clone(),
        names: approved.names.clone(),
        scope: approved.scope.clone(),
        end_date: approved.end_date.clone(),
        ip_ranges: approved.ip_ranges.clone(),
        company: approved.company.clone(),
        contact_email: parts.contact_email.to_string(),
        deploy_poll: DeployPoll::default(),
        outputs: approved.outputs.clone(),
        first_attempt: false,
        checkpoint: None,
        saver: Checkpointer::detached(parts.db.clone(), &approved.grant_id),
        vault: parts.vault.cloned(),
        clock: parts.clock.clone(),
        rotation_app: None,
    };
    let failed = |observed: String| Reproof {
        checks: vec![Check {
            check: "the contractor's credential: token".into(),
            expected: "a token (client credentials)".into(),
            observed,
            pass: false,
            wider: false,
        }],
        token_scopes: None,
    };
    let Some(consumer) = cx.outputs.consumer().cloned() else {
        return Ok(failed("no consumer was recorded".into()));
    };
    let Some(secret) =
        super::teardown::secret(client, &cx, &consumer.app_id, &consumer.consumer_id).await?
    else {
        return Ok(failed(
            "cannot be tried: the org's credentials API returns no secret and no sealed copy is kept"
                .into(),
        ));
    };
    let token = salesforce::oauth_web::OAuthEndpoints::new(client.http().clone())
        .client_credentials_token(client.instance_url(), &consumer.consumer_key, &secret)
        .await;
    drop(secret);
    let token = match token {
        Ok(token) => token,
        Err(e) if e.is_transient() => return Err(e.into()),
        Err(e) => {
            return Ok(failed(format!(
                "refused ({})",
                e.error_code().unwrap_or("error")
            )));
        }
    };
    let scopes = token.scope.clone();
    let contractor = client.acting_as(&PortalAuth::AccessToken(token.access_token))?;
    let checks = checks_as(client, &cx, &contractor).await?;
    Ok(Reproof {
        checks,
        token_scopes: scopes,
    })
}
