//! Narrowing a live grant to a smaller scope (access reviews, issue 18): the grant's own
//! permission set loses what the narrower scope does not grant
//! ([`permissions::narrow_permission_set`](super::permissions)), then the proof step runs
//! again with the narrower scope as the contractor ([`proof::run`](super::proof)): the same
//! credential keeps working, and what was dropped is no longer readable. The user, the app,
//! the consumer and the record visibility are left as they are.
//!
//! Both parts read the org before acting, so running a narrowing again (after a crash, or
//! a transient failure) finishes it; the caller keeps the approved narrower scope durably
//! before calling (see `crate::reviews`), and carries a narrowing that did not finish on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use shared::scope::Scope;

use super::engine::{Engine, Leased};
use super::outputs::ProofMade;
use super::{Step, StepFailure, permissions, proof};

/// What a narrowing did.
#[derive(Debug, Clone)]
pub struct Narrowed {
    /// What was removed from the permission set (evidence).
    pub removed: Value,
    /// The proof with the narrower scope (it passed).
    pub proof: ProofMade,
    /// API calls the narrowing made.
    pub api_calls: u64,
}

/// Why a narrowing did not finish.
#[derive(Debug, thiserror::Error)]
pub enum NarrowError {
    #[error("There is no grant {0}.")]
    NotFound(String),
    /// Salesforce refused, or the proof found other access than the narrower scope;
    /// `transient`: worth trying again.
    #[error("{message}")]
    Org { message: String, transient: bool },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<StepFailure> for NarrowError {
    fn from(f: StepFailure) -> Self {
        Self::Org {
            message: f.message,
            transient: f.transient,
        }
    }
}

impl From<super::EngineError> for NarrowError {
    fn from(e: super::EngineError) -> Self {
        match e {
            super::EngineError::Database(e) => Self::Database(e),
        }
    }
}

impl Engine {
    /// Narrows grant `grant_id` to `scope` (a subset of its scope) in the org and proves
    /// it as the contractor.
    pub async fn narrow(&self, grant_id: &str, scope: &Scope) -> Result<Narrowed, NarrowError> {
        // The proof's view of the grant: what its steps recorded, with the narrower scope.
        let leased = Leased {
            grant_id: grant_id.to_string(),
            step: Step::Proof,
            attempt: 1,
            first_attempt: false,
            undo: false,
            teardown: false,
        };
        let mut cx = self
            .context(&leased)
            .await?
            .ok_or_else(|| NarrowError::NotFound(grant_id.to_string()))?;
        cx.scope = scope.clone();
        let calls = Arc::new(AtomicU64::new(0));
        let client = self.salesforce.counting(calls.clone());
        let removed = permissions::narrow_permission_set(&client, &cx).await?;
        let proof = proof::run(&client, &cx).await?;
        Ok(Narrowed {
            removed,
            proof,
            api_calls: calls.load(Ordering::Relaxed),
        })
    }
}
