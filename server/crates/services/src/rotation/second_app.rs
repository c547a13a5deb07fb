//! Rotation by a second app, where the org cannot stage credentials (its API is older than
//! 65.0, or its credentials API is closed): a second External Client App for the same
//! integration user and permission set, with the same policies (the grant's app spec under
//! another name, [`crate::eca::second_app_name`]), deployed and waited for as provisioning
//! does ([`crate::eca`]). Its secret is read from the org, or — where the org returns no
//! secrets — chosen by the portal, sealed first and deployed with the app. The contractor
//! collects the new pair through the same staged reveal link as a staged pair.
//!
//! Retiring the old secret deletes the old app (its undo, as a teardown does) and records
//! the second app as the grant's ([`crate::eca::current_app`]): from then on the teardown,
//! drift detection, the reveal and "I did not do this" act on it. Unlike a staged pair, the
//! two pairs belong to different apps, so usage tells them apart: ApiTotalUsage names the
//! app of each call (`CONNECTED_APP_ID`, kept per user and hour by the collector for the
//! anomaly rules), and calls on the second app retire the old one at the next policy run
//! ([`crate::usage::windows::app_called_since`]).

use std::time::Duration;

use secrecy::SecretString;
use serde_json::json;
use shared::rotation::{RotationMethod, RotationState};

use super::{RotationError, RotationReason, RotationRow, StartedRotation};
use crate::Portal;
use crate::audit::{self, Actor, AuditAction, Target};
use crate::clock::rfc3339;
use crate::eca::{self, DeployPoll, GrantApp};
use crate::names::Names;
use crate::org_failure::OrgFailure;
use crate::reveal::StagedHandover;

/// How many times a new app's id and consumer are looked for after its deploy (a real org
/// lists a new app, and creates its consumer, a little later), half a second apart.
const LOOKUPS: u32 = 20;

/// Runs `f` until it succeeds, fails for good, or [`LOOKUPS`] tries were made.
async fn retried<T, F, Fut>(mut f: F) -> Result<T, OrgFailure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, OrgFailure>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match f().await {
            Err(e) if e.transient && tries < LOOKUPS => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            other => return other,
        }
    }
}

impl Portal {
    /// The second half of [`Portal::start_rotation`] where the org cannot stage (`why`):
    /// rotation `id` (claimed, `staging`) deploys a second app and hands its pair over.
    pub(super) async fn start_second_app(
        &self,
        id: &str,
        grant_id: &str,
        actor: &Actor,
        reason: RotationReason,
        deadline: i64,
        why: &'static str,
    ) -> Result<StartedRotation, RotationError> {
        let vault = self.vault.clone().ok_or(RotationError::NoVault)?;
        let Some(current) = GrantApp::load(&self.db, grant_id, &self.app_contact_email).await?
        else {
            return Err(RotationError::NoSuchGrant);
        };
        // 1. Name the second app, recorded before its deploy starts (a teardown meanwhile
        //    finds it by that name).
        let first = Names::for_grant(grant_id, &current.company).app;
        let earlier: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM secret_rotations WHERE grant_id = $1 AND method = $2",
        )
        .bind(grant_id)
        .bind(RotationMethod::SecondApp.as_str())
        .fetch_one(self.db.pool())
        .await?;
        let name = eca::second_app_name(&first, earlier + 1);
        {
            let mut tx = self.db.begin_write().await?;
            sqlx::query(
                "UPDATE secret_rotations SET method = $1, new_app_name = $2, old_app_name = $3, \
                 old_app_id = (SELECT app_id FROM grants WHERE id = $4) WHERE id = $5 AND state = $6",
            )
            .bind(RotationMethod::SecondApp.as_str())
            .bind(&name)
            .bind(&current.names.app)
            .bind(grant_id)
            .bind(id)
            .bind(RotationState::Staging.as_str())
            .execute(&mut *tx.tx)
            .await?;
            tx.commit().await?;
        }
        let mut second = current.clone();
        second.names.app = name.clone();

        // 2. Deploy it, find it, read or choose its secret; seal the secret.
        let made = match self.deploy_second_app(&second, &vault).await {
            Ok(made) => match crate::vault::store_sealed(
                &self.db,
                &vault,
                grant_id,
                &made.1,
                &**self.clock(),
            )
            .await
            {
                Ok(_) => Ok(made.0),
                Err(e) => Err(OrgFailure::transient(format!(
                    "the new secret could not be sealed: {e}"
                ))),
            },
            Err(failure) => Err(failure),
        };
        let consumer = match made {
            Ok(consumer) => consumer,
            Err(failure) => {
                // Nothing was handed over: the half-made app goes (best effort; a teardown
                // or a later look by an admin finds it by its name otherwise).
                let _ = eca::delete(&self.salesforce, &second, &DeployPoll::default()).await;
                let error = RotationError::SecondApp(why, failure.message);
                self.rotation_failed(id, grant_id, actor, &error).await?;
                return Err(error);
            }
        };

        // 3. Record it, and mail the link to the new pair.
        let mut tx = self.db.begin_write().await?;
        let recorded = sqlx::query(
            "UPDATE secret_rotations SET state = $1, new_key = $2, new_app_id = $3, \
             new_consumer_id = $4 WHERE id = $5 AND state = $6",
        )
        .bind(RotationState::Staged.as_str())
        .bind(&consumer.consumer_key)
        .bind(&consumer.app_id)
        .bind(&consumer.consumer_id)
        .bind(id)
        .bind(RotationState::Staging.as_str())
        .execute(&mut *tx.tx)
        .await?
        .rows_affected();
        if recorded != 1 {
            // The rotation was ended meanwhile (the grant's access ended): the app goes.
            drop(tx);
            let _ = eca::delete(&self.salesforce, &second, &DeployPoll::default()).await;
            return Err(RotationError::NotRotatable(
                "ending (its access ended during the rotation)".into(),
            ));
        }
        let handover = self.handover();
        crate::reveal::issue_staged_link(
            &mut tx.tx,
            &handover,
            grant_id,
            actor,
            "rotation",
            &StagedHandover {
                consumer_key: consumer.consumer_key.clone(),
                old_pair_until_ms: deadline,
            },
        )
        .await?;
        audit::record(
            &mut tx.tx,
            actor,
            AuditAction::SecretRotationStarted,
            Target::Grant,
            grant_id,
            json!({
                "rotation": id,
                "reason": reason.as_str(),
                "method": RotationMethod::SecondApp.as_str(),
                "cannot_stage": why,
                "old_app": current.names.app,
                "new_app": name,
                "new_app_id": consumer.app_id,
                "new_consumer_key": consumer.consumer_key,
                "old_secret_works_until": rfc3339(deadline),
            }),
        )
        .await?;
        tx.commit().await?;
        self.mail.wake();
        Ok(StartedRotation {
            id: id.to_string(),
            method: RotationMethod::SecondApp,
        })
    }

    /// Deploys the second app (with the grant's trusted IP ranges: the same policies as the
    /// current app), waits for it, finds its id and consumer, and reads its secret — or,
    /// where the org's credentials API returns none, seals one the portal chooses and
    /// deploys the app again with it, as provisioning does.
    async fn deploy_second_app(
        &self,
        app: &GrantApp,
        vault: &crate::vault::Vault,
    ) -> Result<(eca::Consumer, SecretString), OrgFailure> {
        use salesforce::connect::CredentialPart;
        let client = &self.salesforce;
        let poll = DeployPoll::default();
        let deploy = eca::deploy(client, app, true).await?;
        eca::wait_for_deploy(client, &poll, &deploy, "the second External Client App").await?;
        let app_id = retried(|| eca::find_app_id(client, &app.names.app)).await?;
        let consumer = retried(|| eca::consumer(client, &app_id)).await?;
        let error = match client
            .consumer_credential(
                &consumer.app_id,
                &consumer.consumer_id,
                CredentialPart::Secret,
            )
            .await
        {
            Ok(credential) => {
                let secret = credential.secret.ok_or_else(|| {
                    OrgFailure::transient("Salesforce did not return the second app's secret")
                })?;
                return Ok((consumer, secret));
            }
            Err(e) => e,
        };
        if !salesforce::connect::is_secret_access_disabled(&error) {
            return Err(error.into());
        }
        let secret = crate::vault::new_secret();
        crate::vault::store_sealed(&self.db, vault, &app.grant_id, &secret, &**self.clock())
            .await
            .map_err(|e| {
                OrgFailure::transient(format!("the new secret could not be sealed: {e}"))
            })?;
        let deploy = eca::deploy_with_secret(client, app, true, &secret).await?;
        eca::wait_for_deploy(client, &poll, &deploy, "the second app's chosen secret").await?;
        Ok((consumer, secret))
    }

    /// The switch of a rotation by a second app: the old app's tokens for the integration
    /// user are revoked and the old app deleted (its undo, as a teardown does), so the old
    /// pair is refused. `None`: done (the caller records it); otherwise how it went.
    pub(super) async fn retire_old_app(
        &self,
        rotation: &RotationRow,
        actor: &Actor,
    ) -> Result<Option<super::job::Completion>, sqlx::Error> {
        use super::job::Completion;
        let (Some(old_name), Some(_), Some(_)) = (
            rotation.old_app_name.clone(),
            rotation.new_app_id.as_ref(),
            rotation.new_consumer_id.as_ref(),
        ) else {
            return self
                .fail_switch(rotation, actor, "the old or the second app is not recorded")
                .await
                .map(Some);
        };
        let Some(mut old) =
            GrantApp::load(&self.db, &rotation.grant_id, &self.app_contact_email).await?
        else {
            return Ok(Some(Completion::Failed("there is no such grant".into())));
        };
        old.names.app = old_name;
        // The old app's tokens first (a token issued before the deletion stops at once).
        if let (Some(app_id), Some(user_id)) = (
            rotation.old_app_id.as_ref(),
            self.integration_user(&rotation.grant_id).await?,
        ) && let Err(e) = self
            .salesforce
            .revoke_user_app_tokens(app_id, &user_id)
            .await
            && e.status() != Some(404)
        {
            return Ok(Some(Completion::Later(e.to_string())));
        }
        match eca::delete(&self.salesforce, &old, &DeployPoll::default()).await {
            Ok(_) => Ok(None),
            Err(failure) if failure.transient => Ok(Some(Completion::Later(failure.message))),
            Err(failure) => self
                .fail_switch(
                    rotation,
                    actor,
                    &format!("the old app could not be deleted: {}", failure.message),
                )
                .await
                .map(Some),
        }
    }

    /// The grant's integration user's id, as its user step recorded it.
    pub(super) async fn integration_user(
        &self,
        grant_id: &str,
    ) -> Result<Option<String>, sqlx::Error> {
        let output: Option<Option<String>> = sqlx::query_scalar(
            "SELECT output FROM provisioning_steps WHERE grant_id = $1 AND step = 'user'",
        )
        .bind(grant_id)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(output
            .flatten()
            .and_then(|o| serde_json::from_str::<serde_json::Value>(&o).ok())
            .and_then(|v| v["user_id"].as_str().map(str::to_string))
            .filter(|id| !id.is_empty()))
    }

    /// Whether usage shows calls by the grant's integration user on the rotation's second
    /// app since the rotation started (the collector's windows, [`crate::usage::windows`]).
    pub(super) async fn second_app_called(
        &self,
        rotation: &RotationRow,
    ) -> Result<bool, sqlx::Error> {
        let (Some(app_id), Some(user_id)) = (
            rotation.new_app_id.as_deref(),
            self.integration_user(&rotation.grant_id).await?,
        ) else {
            return Ok(false);
        };
        crate::usage::windows::app_called_since(&self.db, &user_id, app_id, rotation.started_at)
            .await
    }
}
