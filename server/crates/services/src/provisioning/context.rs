//! One step's view of its grant: the grant's names, scope and ranges, what the earlier
//! steps recorded (typed, see [`outputs`](super::outputs)), and the checkpoint the step
//! saved before acting.

use salesforce::SalesforceId;
use shared::scope::Scope;

use super::engine::{Engine, EngineError, Leased};
use super::outputs::{Checkpoint, Outputs};
use super::{Step, StepFailure};
use crate::db::Database;
use crate::eca::{DeployPoll, GrantApp};
use crate::names::Names;

/// One step's view of its grant.
pub(super) struct Context {
    pub(super) grant_id: String,
    pub(super) names: Names,
    pub(super) scope: Scope,
    pub(super) end_date: String,
    /// CIDR ranges the app trusts (empty: no restriction beyond the org's).
    pub(super) ip_ranges: Vec<String>,
    pub(super) company: String,
    /// The External Client App's contact (the org's administrators).
    pub(super) contact_email: String,
    pub(super) deploy_poll: DeployPoll,
    /// What earlier steps recorded.
    pub(super) outputs: Outputs,
    /// No earlier attempt of this step ever started, so nothing it makes can exist yet and
    /// the look-ups are skipped (each costs an API call). Should a stalled earlier worker
    /// race a later one, Salesforce's own uniqueness (usernames, permission set names,
    /// one assignment per user and set) refuses the second create.
    pub(super) first_attempt: bool,
    /// What an earlier attempt of this step saved before acting (see [`Checkpointer`]).
    pub(super) checkpoint: Option<Checkpoint>,
    pub(super) saver: Checkpointer,
    /// Seals a secret the portal chooses, for orgs whose credentials API returns none.
    pub(super) vault: Option<crate::vault::Vault>,
    /// The engine's clock.
    pub(super) clock: crate::clock::SharedClock,
    /// The second app of a rotation under way (a teardown removes it too).
    pub(super) rotation_app: Option<crate::eca::RotationApp>,
}

/// The grant's current app in place of the one provisioning made, after a rotation by a
/// second app: its name in `names.app` (what the app's undo deletes, what assurance reads)
/// and its consumer in `outputs` (what the cut-off and the re-proof try).
pub(super) async fn use_current_app(
    db: &Database,
    grant_id: &str,
    names: &mut Names,
    outputs: &mut Outputs,
) -> Result<(), sqlx::Error> {
    if let Some(current) = crate::eca::current_app(db, grant_id).await? {
        names.app = current.name;
        outputs.set_consumer(super::outputs::ConsumerMade {
            app_id: current.app_id,
            consumer_id: current.consumer_id,
            consumer_key: current.consumer_key,
        });
    }
    Ok(())
}

/// Saves what a step needs kept *before* it acts in Salesforce (the records' previous
/// owners, say), so a crash between acting and recording cannot lose it.
pub(super) struct Checkpointer {
    pub(super) db: Database,
    grant_id: String,
    step: Step,
    owner: String,
}

impl Checkpointer {
    /// A checkpointer outside a run (a re-proof): it holds no lease, so it saves nothing.
    pub(super) fn detached(db: Database, grant_id: &str) -> Self {
        Self {
            db,
            grant_id: grant_id.to_string(),
            step: Step::Proof,
            owner: String::new(),
        }
    }

    pub(super) async fn save(&self, checkpoint: &Checkpoint) -> Result<(), StepFailure> {
        let lost = || StepFailure {
            message: "another worker took the step over".into(),
            transient: true,
        };
        let database = |e: sqlx::Error| StepFailure {
            message: format!("the portal's database: {e}"),
            transient: true,
        };
        let value = serde_json::to_string(checkpoint).map_err(|e| StepFailure {
            message: format!("the checkpoint could not be written: {e}"),
            transient: false,
        })?;
        let mut tx = self.db.begin_write().await.map_err(database)?;
        let saved = sqlx::query(
            "UPDATE provisioning_steps SET checkpoint = $1 \
             WHERE grant_id = $2 AND step = $3 AND lease_owner = $4",
        )
        .bind(value)
        .bind(&self.grant_id)
        .bind(self.step.as_str())
        .bind(&self.owner)
        .execute(&mut *tx.tx)
        .await
        .map_err(database)?;
        tx.commit().await.map_err(database)?;
        if saved.rows_affected() == 1 {
            Ok(())
        } else {
            Err(lost())
        }
    }
}

/// The id an earlier step recorded under `key`, or the failure saying it recorded none.
fn recorded(step: Step, key: &str, id: Option<&str>) -> Result<SalesforceId, StepFailure> {
    id.and_then(|id| SalesforceId::parse(id).ok())
        .ok_or_else(|| StepFailure {
            message: format!("the {} step recorded no {key}", step.as_str()),
            transient: false,
        })
}

impl Context {
    /// The integration user, as the user step recorded it.
    pub(super) fn user_id(&self) -> Result<SalesforceId, StepFailure> {
        let made = self.outputs.user().map(|o| o.user_id.as_str());
        recorded(Step::User, "user_id", made)
    }

    /// The permission set licence, as the licence step recorded it.
    pub(super) fn licence_id(&self) -> Result<SalesforceId, StepFailure> {
        let made = self.outputs.licence().map(|o| o.licence_id.as_str());
        recorded(Step::Licence, "licence_id", made)
    }

    /// The permission set, as its step recorded it.
    pub(super) fn permission_set_id(&self) -> Result<SalesforceId, StepFailure> {
        let made = self
            .outputs
            .permission_set()
            .map(|o| o.permission_set_id.as_str());
        recorded(Step::PermissionSet, "permission_set_id", made)
    }

    /// The app's deploy, as the app step recorded it.
    pub(super) fn deploy_id(&self) -> Result<SalesforceId, StepFailure> {
        let made = self.outputs.app().map(|o| o.deploy_id.as_str());
        recorded(Step::App, "deploy_id", made)
    }

    /// What the grant's External Client App is made from.
    pub(super) fn app(&self) -> GrantApp {
        GrantApp {
            grant_id: self.grant_id.clone(),
            names: self.names.clone(),
            company: self.company.clone(),
            ip_ranges: self.ip_ranges.clone(),
            contact_email: self.contact_email.clone(),
        }
    }
}

impl Engine {
    /// The leased step's view of its grant (`None`: the grant no longer exists).
    pub(super) async fn context(&self, leased: &Leased) -> Result<Option<Context>, EngineError> {
        let grant_id = leased.grant_id.as_str();
        let Some((company, scope, end_date, ip_ranges)): Option<(String, String, String, String)> =
            sqlx::query_as("SELECT company, scope, end_date, ip_ranges FROM grants WHERE id = $1")
                .bind(grant_id)
                .fetch_optional(self.db.pool())
                .await?
        else {
            return Ok(None);
        };
        let scope: Scope =
            serde_json::from_str(&scope).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        let ip_ranges: Vec<String> =
            serde_json::from_str(&ip_ranges).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        // Outputs of steps that succeeded (and, when undoing, of steps that did and were
        // undone since): what they found or made.
        let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT step, output, checkpoint FROM provisioning_steps WHERE grant_id = $1",
        )
        .bind(grant_id)
        .fetch_all(self.db.pool())
        .await?;
        let mut outputs = Outputs::default();
        let mut checkpoint = None;
        for (step, output, stored_checkpoint) in rows {
            if step == leased.step.as_str() {
                checkpoint =
                    stored_checkpoint.and_then(|c| serde_json::from_str::<Checkpoint>(&c).ok());
            }
            if let (Some(step), Some(output)) = (Step::parse(&step).ok(), output) {
                outputs.insert(step, &output);
            }
        }
        let mut names = Names::for_grant(grant_id, &company);
        use_current_app(&self.db, grant_id, &mut names, &mut outputs).await?;
        let rotation_app = crate::eca::open_rotation_app(&self.db, grant_id).await?;
        Ok(Some(Context {
            grant_id: grant_id.to_string(),
            names,
            scope,
            end_date,
            ip_ranges,
            company,
            contact_email: self.contact_email.clone(),
            deploy_poll: self.deploy_poll,
            outputs,
            first_attempt: leased.first_attempt && !leased.undo,
            checkpoint,
            saver: Checkpointer {
                db: self.db.clone(),
                grant_id: grant_id.to_string(),
                step: leased.step,
                owner: self.owner.clone(),
            },
            vault: self.handover.vault.clone(),
            clock: self.clock.clone(),
            rotation_app,
        }))
    }
}
