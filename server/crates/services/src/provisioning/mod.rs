//! The provisioning workflow: an approved grant becomes Salesforce configuration, one
//! durable step at a time.
//!
//! Every step of a grant's run is a row in `provisioning_steps` (state, attempts, last
//! error, what it found or made). A worker *leases* the next runnable step (a compare-and-set
//! on the row, and `FOR UPDATE SKIP LOCKED` on PostgreSQL so concurrent workers do not queue
//! on one row), runs it, and records the outcome only while it still holds the lease. A
//! worker that dies leaves an expired lease, and the step is run again by whoever comes next.
//!
//! So a step may run twice (the first run acted in Salesforce, then the process died before
//! recording it): every step is idempotent. Names are deterministic (from the grant id and
//! the company), and each step looks up what it would create before creating it.
//!
//! Transient failures (network, 5xx, `REQUEST_LIMIT_EXCEEDED`, an unknown outcome) are
//! retried with exponential backoff and jitter; anything else stops the run and puts the
//! grant in `needs_attention` with the Salesforce error in words an admin can act on.
//!
//! The steps: the integration user (with its API integration licence, in one composite
//! request), the licence step recording it, the permission set with exactly the approved
//! object and field permissions and its assignment (expiring with the grant; one composite),
//! the assignment step recording it, record visibility (manual shares, ownership, or group
//! membership), the External Client App (Metadata deploy, then polling the deploy as its own
//! step so a restart resumes the poll rather than deploying again), its OAuth consumer, the
//! least-privilege proof ([`proof`]): the contractor's own credential is used to check that
//! it reaches exactly what was approved (a proof that finds anything wider stops the run,
//! and the grant is not released), and last the grant's trusted IP ranges on the app.
//!
//! Cancelling undoes a run in reverse order ([`cancel`]); revoking a grant or its end date
//! passing tears it down the same way ([`teardown`]), cutting the credential off first.
//!
//! The rooms: [`engine`] (leasing, running and recording a step, forward or undoing),
//! [`context`] (one step's view of its grant), [`outputs`] (what each step records, typed),
//! the steps by family ([`user`], [`permissions`], [`visibility`] with [`sharing`], [`app`],
//! [`proof`]), [`undo`] (cancelling) and [`admin`] (progress and retry). The External Client
//! App itself is [`crate::eca`], shared with the reveal.

use shared::grant::StepState;
use sqlx::{Any, Transaction};

use self::context::Context;
use self::outputs::StepOutput;

pub mod admin;
mod app;
mod context;
pub mod engine;
pub mod narrow;
pub mod outputs;
mod permissions;
pub mod proof;
mod records;
pub mod reproof;
mod sharing;
pub mod teardown;
mod undo;
mod user;
mod visibility;

pub use self::admin::{Progress, RetryError, StepProgress, grant_of_request, progress, retry};
pub use self::engine::{Engine, EngineError, Leased, Ran, RetryPolicy, release_leases};
pub use self::permissions::{FieldPerm, ObjectPerm, is_activity, wanted_permissions};
pub use self::sharing::share_object;
pub use self::teardown::{EndKind, RevokeError, RevokeOutcome, expire_due, revoke};
pub use self::undo::{CancelError, Cancelled, cancel};
pub use self::user::set_frozen;
pub use crate::eca::DeployPoll;
pub use crate::names::Names;

/// A failure of one step (see [`OrgFailure`](crate::org_failure::OrgFailure)).
pub(crate) use crate::org_failure::OrgFailure as StepFailure;

/// One step of a run, in order: the shared vocabulary's [`StepName`](shared::grant::StepName)
/// (its position in `ALL` is the step's `position` column).
pub use shared::grant::StepName as Step;

/// The step whose success makes the grant ready.
pub(crate) const LAST_STEP: Step = Step::Restrict;

/// Where `step` comes in the run (the `position` column).
fn position(step: Step) -> i64 {
    Step::ALL.iter().position(|s| *s == step).unwrap_or(0) as i64
}

/// Creates the run's steps for a new grant, in the approval's transaction.
pub(crate) async fn plan(
    tx: &mut Transaction<'static, Any>,
    grant_id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    for &step in Step::ALL {
        sqlx::query(
            "INSERT INTO provisioning_steps (grant_id, step, position, state, next_attempt_at, updated_at) \
             VALUES ($1, $2, $3, $5, $4, $4)",
        )
        .bind(grant_id)
        .bind(step.as_str())
        .bind(position(step))
        .bind(now)
        .bind(StepState::Pending.as_str())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Runs one step; what it found or made.
async fn run_step(
    client: &salesforce::Client,
    step: Step,
    cx: &Context,
) -> Result<StepOutput, StepFailure> {
    Ok(match step {
        Step::User => StepOutput::User(user::user(client, cx).await?),
        Step::Licence => StepOutput::Licence(user::licence(client, cx).await?),
        Step::PermissionSet => {
            StepOutput::PermissionSet(permissions::permission_set(client, cx).await?)
        }
        Step::Assignment => StepOutput::Assignment(permissions::assignment(client, cx).await?),
        Step::Visibility => StepOutput::Visibility(visibility::visibility(client, cx).await?),
        Step::App => StepOutput::App(app::app(client, cx).await?),
        Step::AppDeployed => StepOutput::AppDeployed(app::app_deployed(client, cx).await?),
        Step::Consumer => StepOutput::Consumer(app::consumer(client, cx).await?),
        Step::Proof => StepOutput::Proof(proof::run(client, cx).await?),
        Step::Restrict => StepOutput::Restrict(app::restrict(client, cx).await?),
    })
}
