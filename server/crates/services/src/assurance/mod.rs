//! Continuous assurance: every ready or active grant is proved again (a job, every
//! `ASSURANCE_INTERVAL_HOURS`, and "Re-prove all grants now"), and any difference from what
//! was approved is drift.
//!
//! A re-proof compares the grant's live configuration, read as the portal ([`live`]:
//! permission sets assigned, their object and field permissions, group memberships, manual
//! shares, records owned), with what was approved and made, and runs the least-privilege
//! proof again as the contractor (`provisioning::reproof`, the provisioning step's own
//! checks). Every re-proof is kept (`assurance_proofs`, [`last_proof`]).
//!
//! A drift (the failed lines) raises `grant.drift_detected` once: its fingerprint is kept
//! per grant, so the next run finds the same drift and raises nothing; a changed drift, or
//! the same one after it cleared, raises again. The alert takes the budgets' path (the
//! approvers' mail and the signed webhook, through the outbox, in the transaction of the
//! audit entry). Then the grant's policy: alert only, freeze (the grant suspended and its
//! integration user frozen, as a budget's freeze does), or re-apply ([`reapply`]: the
//! approved configuration put back, then proved again).
//!
//! Grants are re-proved a few at a time ([`AssuranceSettings::concurrency`]) so a real org's
//! limits hold.

mod app;
pub mod live;
mod reapply;
mod store;

use futures::StreamExt;
use serde_json::json;
use sha2::{Digest, Sha256};
use shared::assurance::{
    AssuranceOverview, AssuranceRow, DriftPolicy, GrantAssurance, ProofLine, ProofRecord,
    ReproveSummary,
};
use shared::grant::{GrantId, GrantState, StepName, StepState};

use crate::Portal;
use crate::audit::{self, Actor, AuditAction, Target};
use crate::clock::rfc3339;
use crate::org_failure::OrgFailure;
use crate::provisioning::proof::Check;
use crate::provisioning::reproof::{self, Approved, ReproofParts};

pub use self::store::{last_proof, lines as proof_lines};

/// How drift detection runs.
#[derive(Debug, Clone)]
pub struct AssuranceSettings {
    /// The policy of grants that have none of their own (`ASSURANCE_DRIFT_POLICY`).
    pub default_policy: DriftPolicy,
    /// How often the job re-proves every grant (`ASSURANCE_INTERVAL_HOURS`).
    pub interval_hours: u64,
    /// Grants re-proved at a time (`ASSURANCE_CONCURRENCY`).
    pub concurrency: usize,
}

/// Grants re-proved at a time by default: a handful, so a real org's concurrent request
/// limit (25 long-running requests) is never approached.
pub const DEFAULT_CONCURRENCY: usize = 4;

impl Default for AssuranceSettings {
    fn default() -> Self {
        Self {
            default_policy: DriftPolicy::Alert,
            interval_hours: 24,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

/// Why a policy could not be set or a grant re-proved.
#[derive(Debug, thiserror::Error)]
pub enum AssuranceError {
    #[error("There is no grant with this id.")]
    NotFound,
    #[error("Only a ready or active grant is re-proved (this one is {0}).")]
    NotProvable(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[derive(sqlx::FromRow, Clone)]
struct Provable {
    id: String,
    request_id: String,
    company: String,
    state: String,
}

/// Ready and active grants whose proof step succeeded.
async fn provable(db: &crate::db::Database) -> Result<Vec<Provable>, sqlx::Error> {
    sqlx::query_as(
        "SELECT g.id, g.request_id, g.company, g.state FROM grants g \
         JOIN provisioning_steps s ON s.grant_id = g.id AND s.step = $1 AND s.state = $2 \
         WHERE g.state IN ($3, $4) ORDER BY g.company, g.id",
    )
    .bind(StepName::Proof.as_str())
    .bind(StepState::Succeeded.as_str())
    .bind(GrantState::Ready.as_str())
    .bind(GrantState::Active.as_str())
    .fetch_all(db.pool())
    .await
}

/// A stable fingerprint of a drift: its lines, in order of their checks.
fn fingerprint(drift: &[ProofLine]) -> String {
    let mut lines: Vec<String> = drift
        .iter()
        .map(|l| format!("{}\u{1f}{}\u{1f}{}", l.check, l.expected, l.observed))
        .collect();
    lines.sort();
    hex::encode(Sha256::digest(lines.join("\u{1e}").as_bytes()))
}

/// The scopes the credential's token carried, against the approved app's.
fn scope_line(token_scopes: Option<&str>) -> Option<Check> {
    let observed = token_scopes?;
    let mut seen: Vec<&str> = observed.split_whitespace().collect();
    seen.sort_unstable();
    let observed = seen.join(" ");
    Some(Check {
        check: "App: OAuth scopes of the credential's token".into(),
        pass: observed == "api",
        wider: observed != "api",
        expected: "api".into(),
        observed,
    })
}

/// What a wave read for one grant before its proof: its live configuration and its app's
/// policies (or the org's failure).
struct Prefetched {
    live: Result<live::Live, OrgFailure>,
    app: Result<Vec<Check>, OrgFailure>,
}

/// Grants whose live configuration and app policies are read together (a wave): the
/// queries cover them all, so the calls per grant fall as the wave grows, while the IN
/// lists stay short (twenty users, forty permission sets).
const WAVE: usize = 20;

/// A wave's per-grant results, or its failure for each of its `n` grants.
fn each_of<T>(
    all: Result<Vec<Result<T, OrgFailure>>, OrgFailure>,
    n: usize,
) -> Vec<Result<T, OrgFailure>> {
    match all {
        Ok(each) => each,
        Err(e) => (0..n).map(|_| Err(e.clone())).collect(),
    }
}

/// One re-proof's observations: every line, or the org's failure.
struct Observed {
    checks: Vec<Check>,
    extras: live::Extras,
}

impl Portal {
    /// How drift detection runs here.
    pub fn assurance_settings(&self) -> &AssuranceSettings {
        &self.assurance
    }

    /// Sets how drift detection runs.
    pub fn with_assurance(mut self, settings: AssuranceSettings) -> Self {
        self.assurance = std::sync::Arc::new(settings);
        self
    }

    async fn observe(
        &self,
        client: &salesforce::Client,
        approved: &Approved,
        prefetched: Option<Prefetched>,
    ) -> Result<Observed, OrgFailure> {
        let parts = ReproofParts {
            db: &self.db,
            vault: self.vault.as_ref(),
            contact_email: &self.app_contact_email,
            clock: self.clock.clone(),
        };
        let shared = async {
            match prefetched {
                Some(p) => (p.live, p.app),
                None => tokio::join!(
                    live::read(client, approved),
                    app::read(client, approved, &self.app_contact_email)
                ),
            }
        };
        let ((live, app), proof) = tokio::join!(shared, reproof::reprove(client, &parts, approved));
        let (live, app, proof) = (live?, app?, proof?);
        let mut checks = live.lines;
        checks.extend(app);
        checks.extend(scope_line(proof.token_scopes.as_deref()));
        checks.extend(proof.checks);
        Ok(Observed {
            checks,
            extras: live.extras,
        })
    }

    /// Re-proves every ready or active grant: wave by wave ([`WAVE`]) the live
    /// configurations and app policies are read together, then each grant's proof runs as
    /// its contractor, a few at a time; what it found.
    pub async fn reprove_all(&self) -> Result<ReproveSummary, sqlx::Error> {
        let grants = provable(&self.db).await?;
        let mut summary = ReproveSummary::default();
        for wave in grants.chunks(WAVE) {
            let mut approved = Vec::with_capacity(wave.len());
            for grant in wave {
                approved.push(reproof::approved(&self.db, &grant.id).await?);
            }
            let present: Vec<&Approved> = approved.iter().flatten().collect();
            let calls = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            let client = self.salesforce.counting(calls.clone());
            let (lives, apps) = tokio::join!(
                live::read_wave(&client, &present),
                app::read_wave(&client, &present, &self.app_contact_email)
            );
            // Each grant's record carries its share of the wave's calls.
            let share = calls
                .load(std::sync::atomic::Ordering::Relaxed)
                .div_ceil(present.len().max(1) as u64);
            let n = present.len();
            let mut prefetched: std::collections::HashMap<String, Prefetched> = present
                .iter()
                .map(|a| a.grant_id.clone())
                .zip(each_of(lives, n).into_iter().zip(each_of(apps, n)))
                .map(|(id, (live, app))| (id, Prefetched { live, app }))
                .collect();
            // Owned, so the futures borrow nothing from this loop (they must be Send).
            let jobs: Vec<(Provable, Option<Approved>, Option<Prefetched>)> = wave
                .iter()
                .cloned()
                .zip(approved)
                .map(|(grant, approved)| {
                    let pre = prefetched.remove(&grant.id);
                    (grant, approved, pre)
                })
                .collect();
            let results: Vec<Result<(ProofRecord, bool), sqlx::Error>> =
                futures::stream::iter(jobs)
                    .map(|(grant, approved, pre)| async move {
                        self.reprove_one(&grant, approved, pre, share).await
                    })
                    .buffer_unordered(self.assurance.concurrency.max(1))
                    .collect()
                    .await;
            for result in results {
                let (record, raised) = result?;
                summary.proved += 1;
                summary.raised += u32::from(raised);
                if record.error.is_some() {
                    summary.failed += 1;
                } else if record.drift.is_empty() {
                    summary.passed += 1;
                } else {
                    summary.drifted += 1;
                }
            }
        }
        Ok(summary)
    }

    /// Re-proves one grant now.
    pub async fn reprove_grant(&self, grant_id: &GrantId) -> Result<ProofRecord, AssuranceError> {
        let grants = provable(&self.db).await?;
        let Some(grant) = grants.into_iter().find(|g| g.id == grant_id.as_str()) else {
            let state: Option<String> =
                sqlx::query_scalar("SELECT state FROM grants WHERE id = $1")
                    .bind(grant_id.as_str())
                    .fetch_optional(self.db.pool())
                    .await?;
            return Err(match state {
                None => AssuranceError::NotFound,
                Some(state) => AssuranceError::NotProvable(state),
            });
        };
        let approved = reproof::approved(&self.db, &grant.id).await?;
        Ok(self.reprove_one(&grant, approved, None, 0).await?.0)
    }

    /// Re-proves `grant` (what it was approved with: `approved`; its live configuration
    /// and app policies if a wave read them, and the wave's calls it is counted for), keeps
    /// the result, raises new drift and applies the policy. The record, and whether drift
    /// was raised now.
    async fn reprove_one(
        &self,
        grant: &Provable,
        approved: Option<Approved>,
        prefetched: Option<Prefetched>,
        wave_calls: u64,
    ) -> Result<(ProofRecord, bool), sqlx::Error> {
        let now = self.clock.now_ms();
        let Some(approved) = approved else {
            return Ok((
                failed_record(&grant.id, now, "the grant is gone".into()),
                false,
            ));
        };
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(wave_calls));
        let client = self.salesforce.counting(calls.clone());
        let observed = match self.observe(&client, &approved, prefetched).await {
            Ok(observed) => observed,
            Err(e) => {
                // The org could not be read: no verdict, nothing raised; tried next run.
                let record = failed_record(&grant.id, now, e.message.clone());
                let mut tx = self.db.begin_write().await?;
                store::insert(&mut tx.tx, &grant.id, now, &record, None).await?;
                tx.commit().await?;
                tracing::warn!(grant = %grant.id, error = %e.message, "re-proof could not run");
                return Ok((record, false));
            }
        };
        let checks = store::lines(&observed.checks);
        let drift: Vec<ProofLine> = checks.iter().filter(|l| !l.pass).cloned().collect();
        let mut record = ProofRecord {
            grant_id: grant.id.clone(),
            proved_at: rfc3339(now),
            passed: drift.is_empty(),
            checks,
            drift: drift.clone(),
            action: None,
            error: None,
            calls: Some(calls.load(std::sync::atomic::Ordering::Relaxed) as u32),
        };
        let mut tx = self.db.begin_write().await?;
        let (own_policy, raised) = store::grant_state(&mut tx.tx, &grant.id).await?;
        if drift.is_empty() {
            store::insert(&mut tx.tx, &grant.id, now, &record, None).await?;
            if raised.is_some() {
                store::set_raised(&mut tx.tx, &grant.id, None, now).await?;
            }
            tx.commit().await?;
            return Ok((record, false));
        }
        let print = fingerprint(&drift);
        if raised.as_deref() == Some(print.as_str()) {
            // The same drift as raised before: kept, not raised again.
            record.action = Some("already raised".into());
            store::insert(&mut tx.tx, &grant.id, now, &record, Some(&print)).await?;
            tx.commit().await?;
            return Ok((record, false));
        }
        // Nothing is held open while the org is called (re-apply): the entry is written
        // after it, with what it did.
        tx.commit().await?;
        let policy = own_policy.unwrap_or(self.assurance.default_policy);
        let mut reapplied = None;
        let mut after = None;
        if policy == DriftPolicy::Reapply {
            match reapply::run(
                &self.salesforce,
                &approved,
                &self.app_contact_email,
                &observed.extras,
            )
            .await
            {
                Ok(evidence) => {
                    let again = self.observe(&self.salesforce, &approved, None).await;
                    let again = match again {
                        Ok(o) => store::lines(&o.checks),
                        Err(e) => vec![ProofLine {
                            check: "Proof after re-applying".into(),
                            expected: "run".into(),
                            observed: format!("could not run: {}", e.message),
                            pass: false,
                            wider: false,
                        }],
                    };
                    reapplied = Some(evidence);
                    after = Some(again);
                }
                Err(e) => {
                    reapplied = Some(json!({ "failed": e.message }));
                }
            }
        }
        let after_passed = after.as_ref().is_some_and(|a| a.iter().all(|l| l.pass));
        record.action = Some(match policy {
            DriftPolicy::Alert => "alerted".into(),
            DriftPolicy::Freeze => "frozen".into(),
            DriftPolicy::Reapply if after_passed => "re-applied; the proof passes again".into(),
            DriftPolicy::Reapply => "re-apply attempted; still drifting".into(),
        });

        let mut tx = self.db.begin_write().await?;
        store::insert(&mut tx.tx, &grant.id, now, &record, Some(&print)).await?;
        let system = Actor::system();
        let table: Vec<serde_json::Value> = drift
            .iter()
            .map(|l| json!({ "check": l.check, "expected": l.expected, "observed": l.observed, "wider": l.wider }))
            .collect();
        audit::record(
            &mut tx.tx,
            &system,
            AuditAction::GrantDriftDetected,
            Target::Grant,
            &grant.id,
            json!({
                "company": grant.company,
                "drift": table,
                "fingerprint": print,
                "policy": policy.as_str(),
                "action": record.action,
            }),
        )
        .await?;
        if let (Some(evidence), Some(after)) = (&reapplied, &after) {
            let when = self.clock.now_ms();
            let after_record = ProofRecord {
                proved_at: rfc3339(when),
                passed: after_passed,
                drift: after.iter().filter(|l| !l.pass).cloned().collect(),
                checks: after.clone(),
                action: Some("proved again after re-applying".into()),
                ..record.clone()
            };
            store::insert(
                &mut tx.tx,
                &grant.id,
                when.max(now + 1),
                &after_record,
                None,
            )
            .await?;
            audit::record(
                &mut tx.tx,
                &system,
                AuditAction::GrantReapplied,
                Target::Grant,
                &grant.id,
                json!({ "company": grant.company, "evidence": evidence, "proof_passed": after_passed }),
            )
            .await?;
        }
        // A cleared drift (re-applied and proved) raises again should it come back.
        let keep = if after_passed {
            None
        } else {
            Some(print.as_str())
        };
        store::set_raised(&mut tx.tx, &grant.id, keep, now).await?;
        let mut froze = false;
        if policy == DriftPolicy::Freeze {
            froze = self.suspend(&mut tx.tx, grant, now).await?;
        }
        let subject = format!(
            "Portcullis: {}'s Salesforce access drifted from what was approved",
            grant.company
        );
        let lines: Vec<String> = drift
            .iter()
            .map(|l| {
                format!(
                    "- {}: expected {}, observed {}",
                    l.check, l.expected, l.observed
                )
            })
            .collect();
        let action = match policy {
            DriftPolicy::Alert => "Nothing was changed (this grant's drift policy is alert). Put the configuration back in Setup, or set the policy to re-apply on the grant's page.".to_string(),
            DriftPolicy::Freeze => "Portcullis has suspended the grant and frozen its integration user: its calls are refused until an approver lifts the suspension.".to_string(),
            DriftPolicy::Reapply if after_passed => "Portcullis has put the approved configuration back and the proof passes again.".to_string(),
            DriftPolicy::Reapply => "Portcullis tried to put the approved configuration back, but the grant still differs: look at it now.".to_string(),
        };
        let url = &self.settings.public_url;
        let body = format!(
            "A re-proof of {company}'s grant found differences from what was approved:\n{lines}\n\n{action}\n\nThe grant: {url}/admin/requests/{request}\nAssurance: {url}/admin/assurance\n",
            company = grant.company,
            lines = lines.join("\n"),
            request = grant.request_id,
        );
        crate::roles::mail_approvers(&self.mail, &mut tx.tx, &subject, &body).await?;
        if let Some(webhook) = &self.webhook {
            let payload = json!({
                "text": crate::usage::webhook::bullet_text(
                    &subject,
                    drift.iter().map(|l| format!("{}: expected {}, observed {}", l.check, l.expected, l.observed)),
                ),
                "event": AuditAction::GrantDriftDetected.as_str(),
                "grant_id": grant.id,
                "request_id": grant.request_id,
                "company": grant.company,
                "drift": table,
                "policy": policy.as_str(),
                "action": record.action,
                "page": format!("{url}/admin/requests/{}", grant.request_id),
                "at": rfc3339(now),
            });
            webhook
                .queue(
                    &mut tx.tx,
                    AuditAction::GrantDriftDetected.as_str(),
                    &payload,
                )
                .await?;
        }
        tx.commit().await?;
        self.mail.wake();
        if let Some(webhook) = &self.webhook {
            webhook.wake();
        }
        if froze {
            let mut evaluation = crate::usage::budgets::Evaluation::default();
            crate::usage::budgets::apply_freezes(&self.db, &self.salesforce, now, &mut evaluation)
                .await?;
        }
        tracing::info!(grant = %grant.id, policy = policy.as_str(), "drift detected");
        Ok((record, true))
    }

    /// Suspends the grant as a budget's freeze does (the freeze itself follows).
    async fn suspend(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        grant: &Provable,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let suspended = sqlx::query(
            "UPDATE grants SET suspended_from = state, state = $1, frozen_at = NULL, updated_at = $2 \
             WHERE id = $3 AND state IN ($4, $5)",
        )
        .bind(GrantState::Suspended.as_str())
        .bind(now)
        .bind(&grant.id)
        .bind(GrantState::Ready.as_str())
        .bind(GrantState::Active.as_str())
        .execute(&mut **tx)
        .await?;
        if suspended.rows_affected() != 1 {
            return Ok(false);
        }
        audit::record(
            tx,
            &Actor::system(),
            AuditAction::GrantSuspended,
            Target::Grant,
            &grant.id,
            json!({
                "reason": "drift from the approved access (drift policy: freeze)",
                "previous_state": grant.state,
            }),
        )
        .await?;
        crate::requests::add_event(
            tx,
            now,
            &grant.request_id,
            "suspended",
            "API access suspended: the grant's access in Salesforce drifted from what was approved. An approver can lift the suspension.",
            true,
        )
        .await?;
        Ok(true)
    }

    /// Sets a grant's drift policy (approvers and owners; the server function checks).
    pub async fn set_drift_policy(
        &self,
        grant_id: &GrantId,
        policy: DriftPolicy,
        actor: &Actor,
    ) -> Result<(), AssuranceError> {
        let mut tx = self.db.begin_write().await?;
        let exists: Option<String> = sqlx::query_scalar("SELECT state FROM grants WHERE id = $1")
            .bind(grant_id.as_str())
            .fetch_optional(&mut *tx.tx)
            .await?;
        if exists.is_none() {
            return Err(AssuranceError::NotFound);
        }
        let (before, _) = store::grant_state(&mut tx.tx, grant_id.as_str()).await?;
        store::set_policy(&mut tx.tx, grant_id.as_str(), policy).await?;
        audit::record(
            &mut tx.tx,
            actor,
            AuditAction::GrantDriftPolicyChanged,
            Target::Grant,
            grant_id.as_str(),
            json!({
                "policy": policy.as_str(),
                "previous": before.unwrap_or(self.assurance.default_policy).as_str(),
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A grant's assurance for its request page.
    pub async fn grant_assurance(&self, grant_id: &GrantId) -> Result<GrantAssurance, sqlx::Error> {
        let own = store::policies(&self.db)
            .await?
            .into_iter()
            .find(|(g, _)| g == grant_id.as_str())
            .map(|(_, p)| p);
        Ok(GrantAssurance {
            grant_id: grant_id.as_str().to_string(),
            policy: own.unwrap_or(self.assurance.default_policy),
            policy_is_default: own.is_none(),
            last: last_proof(&self.db, grant_id.as_str()).await?,
        })
    }

    /// The assurance page: every ready, active or suspended grant with its last proof.
    pub async fn assurance_overview(&self) -> Result<AssuranceOverview, sqlx::Error> {
        let grants: Vec<Provable> = sqlx::query_as(
            "SELECT id, request_id, company, state FROM grants WHERE state IN ($1, $2, $3) ORDER BY company, id",
        )
        .bind(GrantState::Ready.as_str())
        .bind(GrantState::Active.as_str())
        .bind(GrantState::Suspended.as_str())
        .fetch_all(self.db.pool())
        .await?;
        let policies = store::policies(&self.db).await?;
        let mut rows = Vec::with_capacity(grants.len());
        for g in grants {
            let own = policies.iter().find(|(id, _)| *id == g.id).map(|(_, p)| *p);
            rows.push(AssuranceRow {
                last: last_proof(&self.db, &g.id).await?,
                grant_id: g.id,
                request_id: g.request_id,
                company: g.company,
                state: g.state,
                policy: own.unwrap_or(self.assurance.default_policy),
                policy_is_default: own.is_none(),
            });
        }
        Ok(AssuranceOverview {
            rows,
            default_policy: self.assurance.default_policy,
            interval_hours: self.assurance.interval_hours,
        })
    }
}

fn failed_record(grant_id: &str, now: i64, error: String) -> ProofRecord {
    ProofRecord {
        grant_id: grant_id.to_string(),
        proved_at: rfc3339(now),
        passed: false,
        checks: Vec::new(),
        drift: Vec::new(),
        action: None,
        error: Some(error),
        calls: None,
    }
}
