//! A grant's External Client App: how it is described (client credentials running as the
//! integration user, pre-authorised through the grant's app permission set, trusted IP
//! ranges), deployed, waited for, found again by Connect REST, and its OAuth consumer.
//!
//! Below both the provisioning workflow (which deploys, proves and restricts the app, and
//! deletes it on cancel) and the reveal (which reads its credential and, where the org's
//! credentials API is closed, redeploys it with a secret the portal chose). The consumer
//! step records the app and consumer ids on the grant ([`record_consumer`]); the reveal
//! reads them from there ([`recorded_consumer`]).
//!
//! A grant has one app, except during a rotation by a second app (where the org cannot
//! stage credentials, `rotation`): a second app for the same integration user and
//! permission set, named by [`second_app_name`], which becomes the grant's app when the old
//! one is retired ([`current_app`]: its name, ids and key on the grant). Until then a
//! teardown removes it too ([`open_rotation_app`], [`end_open_rotations`]).

use std::time::Duration;

use salesforce::Client;
use salesforce::metadata::{
    ApiName, DeployId, DeployOptions, DeployResult, ExternalClientAppSpec, SpecError,
    TrustedIpRange,
};
use secrecy::SecretString;
use sqlx::{Any, Transaction};

use crate::db::Database;
use crate::names::Names;
use crate::org_failure::OrgFailure;
use crate::vault::{self, Vault};

/// How a deploy is polled. Each status check is an API call, so the first waits about
/// as long as such a deploy takes (`first_check`), then every `interval`, for at most
/// `timeout` per attempt (then the step is retried later, still polling the same deploy).
#[derive(Debug, Clone, Copy)]
pub struct DeployPoll {
    pub first_check: Duration,
    pub interval: Duration,
    pub timeout: Duration,
}

impl Default for DeployPoll {
    fn default() -> Self {
        Self {
            first_check: Duration::from_secs(1),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(120),
        }
    }
}

/// What a grant's app is made from. `names.app` is the grant's current app: the one
/// provisioning made, or, after a rotation by a second app, that app ([`current_app`]).
#[derive(Debug, Clone)]
pub struct GrantApp {
    pub grant_id: String,
    pub names: Names,
    pub company: String,
    /// CIDR ranges the app trusts (empty: no restriction beyond the org's).
    pub ip_ranges: Vec<String>,
    /// The app's contact (the org's administrators).
    pub contact_email: String,
}

impl GrantApp {
    /// The app of grant `grant_id`, from its row (`None`: no such grant).
    pub async fn load(
        db: &Database,
        grant_id: &str,
        contact_email: &str,
    ) -> Result<Option<Self>, sqlx::Error> {
        let Some((company, ip_ranges, app_name)): Option<(String, String, Option<String>)> =
            sqlx::query_as("SELECT company, ip_ranges, app_name FROM grants WHERE id = $1")
                .bind(grant_id)
                .fetch_optional(db.pool())
                .await?
        else {
            return Ok(None);
        };
        let ip_ranges: Vec<String> =
            serde_json::from_str(&ip_ranges).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        let mut names = Names::for_grant(grant_id, &company);
        if let Some(current) = app_name {
            names.app = current;
        }
        Ok(Some(Self {
            grant_id: grant_id.to_string(),
            names,
            company,
            ip_ranges,
            contact_email: contact_email.to_string(),
        }))
    }

    /// The app as the grant describes it: client credentials running as the integration
    /// user, admin-approved for the grant's permission set only, trusted IP ranges when
    /// given.
    pub fn spec(&self, with_ranges: bool) -> Result<ExternalClientAppSpec, OrgFailure> {
        let mut trusted = Vec::new();
        for raw in self.ip_ranges.iter().filter(|_| with_ranges) {
            let cidr = shared::fields::Cidr::parse(raw)
                .map_err(|e| OrgFailure::permanent(format!("the grant's IP range {e}")))?;
            trusted.push(TrustedIpRange::new(
                cidr.network(),
                cidr.last(),
                format!(
                    "{} ({raw})",
                    self.company.chars().take(40).collect::<String>()
                ),
            ));
        }
        Ok(ExternalClientAppSpec {
            name: ApiName::parse(&self.names.app).map_err(spec_failure)?,
            label: format!(
                "Portcullis: {}",
                self.company.chars().take(60).collect::<String>()
            ),
            contact_email: self.contact_email.clone(),
            description: format!(
                "API access for {}, made by Portcullis. Do not edit by hand.",
                self.company.chars().take(100).collect::<String>()
            ),
            scopes: vec!["Api".into()],
            client_credentials_run_as: self.names.username.clone(),
            // Pre-authorised through the licence-less app permission set (issue 14, item 3).
            permission_set_names: vec![
                ApiName::parse(&self.names.app_permission_set).map_err(spec_failure)?,
            ],
            trusted_ip_ranges: trusted,
            callback_url: salesforce::Url::parse(
                "https://login.salesforce.com/services/oauth2/success",
            )
            .map_err(|e| OrgFailure::permanent(format!("callback URL: {e}")))?,
            pkce_required: true,
        })
    }
}

pub(crate) fn spec_failure(e: SpecError) -> OrgFailure {
    OrgFailure::permanent(format!(
        "the External Client App cannot be described to Salesforce: {e}"
    ))
}

fn package_failure(e: SpecError) -> OrgFailure {
    OrgFailure::permanent(format!(
        "the External Client App package could not be built: {e}"
    ))
}

/// Starts a deploy of the grant's app, with or without its trusted IP ranges. Deploying the
/// same app again is an update of the same components, so a repeated start makes no second
/// app.
pub async fn deploy(
    client: &Client,
    app: &GrantApp,
    with_ranges: bool,
) -> Result<DeployId, OrgFailure> {
    let spec = app.spec(with_ranges)?;
    spec.validate().map_err(spec_failure)?;
    let zip = spec
        .build_zip(client.api_version())
        .map_err(package_failure)?;
    Ok(client.deploy(&zip, &DeployOptions::default()).await?)
}

/// Like [`deploy`], choosing the app's consumer secret.
pub async fn deploy_with_secret(
    client: &Client,
    app: &GrantApp,
    with_ranges: bool,
    secret: &SecretString,
) -> Result<DeployId, OrgFailure> {
    let spec = app.spec(with_ranges)?;
    let zip = spec
        .build_zip_with_secret(client.api_version(), secret)
        .map_err(package_failure)?;
    Ok(client.deploy(&zip, &DeployOptions::default()).await?)
}

/// Waits (as [`DeployPoll`] says) for deploy `id` of `what`: a deploy still running when the
/// wait ends is a transient failure (polled again later), a failed deploy a permanent one.
pub async fn wait_for_deploy(
    client: &Client,
    poll: &DeployPoll,
    id: &DeployId,
    what: &str,
) -> Result<DeployResult, OrgFailure> {
    match client
        .wait_for_deploy(id, poll.interval, poll.timeout)
        .await
    {
        Ok(result) => Ok(result),
        Err(salesforce::Error::DeployTimedOut { waited, .. }) => {
            Err(OrgFailure::transient(format!(
                "the deploy of {what} was still running after {} s",
                waited.as_secs()
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// Deletes the app by a destructive deploy, after any deploy of it still running (deploys
/// run one at a time per org, in order, so a deploy a crashed run started but did not
/// record finishes before this one deletes what it made). Returns whether the deploy
/// deleted the app, and the deploy's id.
pub async fn delete(
    client: &Client,
    app: &GrantApp,
    poll: &DeployPoll,
) -> Result<(bool, DeployId), OrgFailure> {
    let name = ApiName::parse(&app.names.app).map_err(spec_failure)?;
    let zip = ExternalClientAppSpec::deletion_zip(&name, client.api_version()).map_err(|e| {
        OrgFailure::permanent(format!("the deletion package could not be built: {e}"))
    })?;
    let options = DeployOptions {
        ignore_warnings: true,
        ..DeployOptions::default()
    };
    // A deletion started before (and lost in a crash) is simply done again.
    let id = client.deploy(&zip, &options).await?;
    let result = wait_for_deploy(client, poll, &id, "the External Client App's deletion").await?;
    let deleted = result
        .details
        .component_successes
        .iter()
        .any(|c| c.component_type == ExternalClientAppSpec::ECA_TYPE && c.deleted);
    Ok((deleted, id))
}

/// The id Connect REST knows the app `name` by, looked up after its deploy: which id a
/// deploy result reports for an External Client App (and whether it is this one) is not
/// documented, so it is not trusted. The app list (`GET /apps/oauth/usage`) names each
/// app's `developerName` and `identifier`. A new app not listed yet is retried (a real org
/// may take a while; that it lists apps nobody has used yet is UNCONFIRMED).
pub async fn find_app_id(client: &Client, name: &str) -> Result<String, OrgFailure> {
    let apps = client.oauth_usage_apps().await?;
    apps.into_iter()
        .find(|a| a.developer_name.eq_ignore_ascii_case(name))
        .map(|a| a.identifier)
        .ok_or_else(|| {
            OrgFailure::transient(format!(
                "Salesforce does not list the External Client App {name} yet (GET /apps/oauth/usage); trying again"
            ))
        })
}

/// An app's OAuth consumer: its ids and its consumer key (not a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    pub app_id: String,
    pub consumer_id: String,
    pub consumer_key: String,
}

/// The OAuth consumer of app `app_id`. The secret is never read here.
pub async fn consumer(client: &Client, app_id: &str) -> Result<Consumer, OrgFailure> {
    let consumers = client.app_credentials(app_id).await?;
    let consumer = consumers.into_iter().next().ok_or_else(|| {
        // Salesforce creates the consumer with the app, a little later on a busy org.
        OrgFailure::transient("the External Client App has no OAuth consumer yet")
    })?;
    let key = match consumer.key {
        Some(key) => key,
        None => client
            .consumer_credential(
                app_id,
                &consumer.id,
                salesforce::connect::CredentialPart::Key,
            )
            .await?
            .key
            .ok_or_else(|| OrgFailure::transient("Salesforce returned no consumer key"))?,
    };
    Ok(Consumer {
        app_id: app_id.to_string(),
        consumer_id: consumer.id,
        consumer_key: key,
    })
}

/// Records the app and consumer ids on the grant (in the transaction that records the
/// consumer step).
pub(crate) async fn record_consumer(
    tx: &mut Transaction<'static, Any>,
    grant_id: &str,
    consumer: Option<(&str, &str)>,
) -> Result<(), sqlx::Error> {
    let (app_id, consumer_id) = consumer.unzip();
    sqlx::query("UPDATE grants SET app_id = $1, consumer_id = $2 WHERE id = $3")
        .bind(app_id)
        .bind(consumer_id)
        .bind(grant_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The app and consumer ids recorded on the grant (`None`: its consumer step has not
/// succeeded, or was undone).
pub(crate) async fn recorded_consumer(
    tx: &mut Transaction<'static, Any>,
    grant_id: &str,
) -> Result<Option<(String, String)>, sqlx::Error> {
    let ids: Option<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT app_id, consumer_id FROM grants WHERE id = $1")
            .bind(grant_id)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(ids.and_then(|(app_id, consumer_id)| app_id.zip(consumer_id)))
}

/// The app's secret, for the proof: read from the org; or, where the org's credentials API
/// returns no secrets, one the portal chooses, seals (kept until the reveal) and deploys.
/// A retry reuses the secret an earlier attempt sealed.
pub async fn contractor_secret(
    client: &Client,
    db: &Database,
    vault: Option<&Vault>,
    app: &GrantApp,
    poll: &DeployPoll,
    consumer: (&str, &str),
    clock: &dyn crate::clock::Clock,
) -> Result<SecretString, OrgFailure> {
    use salesforce::connect::CredentialPart;
    let (app_id, consumer_id) = consumer;
    let error = match client
        .consumer_credential(app_id, consumer_id, CredentialPart::Secret)
        .await
    {
        Ok(credential) => {
            return credential.secret.ok_or_else(|| {
                OrgFailure::transient("Salesforce did not return the app's secret for the proof")
            });
        }
        Err(e) => e,
    };
    if !salesforce::connect::is_secret_access_disabled(&error) {
        return Err(error.into());
    }
    let vault = vault.ok_or_else(|| {
        OrgFailure::permanent(
            "the org does not let the credentials API return consumer secrets \
             (enableClientSecretInRestApiAccess), and no credential key is configured \
             to keep one the portal chooses",
        )
    })?;
    let secret = vault::sealed_or_new(db, vault, &app.grant_id, clock)
        .await
        .map_err(OrgFailure::transient)?;
    let id = deploy_with_secret(client, app, false, &secret).await?;
    wait_for_deploy(client, poll, &id, "the app's chosen secret").await?;
    Ok(secret)
}

/// Deploys `secret` as the consumer secret of a set-up grant's app (with its trusted IP
/// ranges), for orgs whose credentials API cannot rotate or return secrets. Waits for the
/// deploy.
pub async fn redeploy_secret(
    db: &Database,
    client: &Client,
    contact_email: &str,
    grant_id: &str,
    secret: &SecretString,
) -> Result<(), OrgFailure> {
    let app = GrantApp::load(db, grant_id, contact_email)
        .await
        .map_err(|e| OrgFailure::transient(format!("database: {e}")))?
        .ok_or_else(|| OrgFailure::permanent("there is no such grant"))?;
    let id = deploy_with_secret(client, &app, true, secret).await?;
    wait_for_deploy(client, &DeployPoll::default(), &id, "the app's new secret").await?;
    Ok(())
}

/// The name of a grant's `n`th second app (a rotation's; `n` from 1): the grant's first
/// app's name with `_R<n>`. Deterministic, so a teardown finds a second app whose deploy a
/// crash interrupted.
pub fn second_app_name(first: &str, n: i64) -> String {
    format!("{first}_R{n}")
}

/// The grant's current app when it is a rotation's second app (`None`: the app provisioning
/// made, which the steps' outputs describe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentApp {
    pub name: String,
    pub app_id: String,
    pub consumer_id: String,
    pub consumer_key: String,
}

/// See [`CurrentApp`].
pub async fn current_app(db: &Database, grant_id: &str) -> Result<Option<CurrentApp>, sqlx::Error> {
    type Row = (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT app_name, app_id, consumer_id, app_consumer_key FROM grants WHERE id = $1",
    )
    .bind(grant_id)
    .fetch_optional(db.pool())
    .await?;
    Ok(match row {
        Some((Some(name), Some(app_id), Some(consumer_id), Some(consumer_key))) => {
            Some(CurrentApp {
                name,
                app_id,
                consumer_id,
                consumer_key,
            })
        }
        _ => None,
    })
}

/// The second app of a rotation under way (staging or staged) for the grant: its name
/// (known before its deploy starts) and, once made, its ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationApp {
    pub rotation_id: String,
    pub name: String,
    pub app_id: Option<String>,
    pub consumer_id: Option<String>,
    pub consumer_key: Option<String>,
}

/// See [`RotationApp`].
pub async fn open_rotation_app(
    db: &Database,
    grant_id: &str,
) -> Result<Option<RotationApp>, sqlx::Error> {
    type Row = (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT id, new_app_name, new_app_id, new_consumer_id, new_key FROM secret_rotations \
         WHERE grant_id = $1 AND state IN ('staging', 'staged') AND method = 'second_app'",
    )
    .bind(grant_id)
    .fetch_optional(db.pool())
    .await?;
    Ok(
        row.and_then(|(rotation_id, name, app_id, consumer_id, consumer_key)| {
            Some(RotationApp {
                rotation_id,
                name: name?,
                app_id,
                consumer_id,
                consumer_key,
            })
        }),
    )
}

/// Ends the grant's rotations under way because its access ends (a revoke or an expiry):
/// each fails with `why`, audited. Returns how many.
pub async fn end_open_rotations(
    db: &Database,
    grant_id: &str,
    why: &str,
    now_ms: i64,
) -> Result<u64, sqlx::Error> {
    use crate::audit::{self, Actor, AuditAction, Outcome, Target};
    let mut tx = db.begin_write().await?;
    let open: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM secret_rotations WHERE grant_id = $1 AND state IN ('staging', 'staged')",
    )
    .bind(grant_id)
    .fetch_all(&mut *tx.tx)
    .await?;
    for id in &open {
        sqlx::query(
            "UPDATE secret_rotations SET state = 'failed', error = $1, completed_at = $2 WHERE id = $3",
        )
        .bind(why)
        .bind(now_ms)
        .bind(id)
        .execute(&mut *tx.tx)
        .await?;
        audit::record_outcome(
            &mut tx.tx,
            &Actor::system(),
            AuditAction::SecretRotationFailed,
            Outcome::Failure,
            Target::Grant,
            grant_id,
            serde_json::json!({ "rotation": id, "error": why }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(open.len() as u64)
}
