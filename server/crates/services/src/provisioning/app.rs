//! The grant's External Client App as steps of the run: the deploy started (its own step,
//! so a restart resumes polling rather than deploying again), the deploy waited for, the
//! app's OAuth consumer (recorded on the grant too, for the reveal), and, after the proof,
//! the trusted IP ranges. What the app is and how it is deployed lives in [`crate::eca`].

use salesforce::Client;
use salesforce::metadata::DeployId;

use super::StepFailure;
use super::context::Context;
use super::outputs::{AppDeployedMade, AppMade, ConsumerMade, RestrictMade};
use crate::eca;

/// Starts the deploy. Deploying the same app again is an update of the same components,
/// so a repeated start makes no second app. The app trusts no IP ranges yet: the proof runs
/// from the portal's host, which the contractor's ranges need not include; the ranges are
/// applied after it ([`restrict`]), which can only narrow what the proof saw.
pub(super) async fn app(client: &Client, cx: &Context) -> Result<AppMade, StepFailure> {
    let id = eca::deploy(client, &cx.app(), false).await?;
    Ok(AppMade {
        deploy_id: id.0.as_str().to_string(),
        app: cx.names.app.clone(),
    })
}

/// Waits for the deploy the `app` step started (see [`eca::wait_for_deploy`]).
pub(super) async fn app_deployed(
    client: &Client,
    cx: &Context,
) -> Result<AppDeployedMade, StepFailure> {
    let id = DeployId(cx.deploy_id()?);
    if cx.first_attempt {
        tokio::time::sleep(cx.deploy_poll.first_check).await;
    }
    let result =
        eca::wait_for_deploy(client, &cx.deploy_poll, &id, "the External Client App").await?;
    let app_id = eca::find_app_id(client, &cx.names.app).await?;
    Ok(AppDeployedMade {
        app_id,
        deploy_id: result.id,
        deployed_at: Some(cx.clock.now_ms()),
    })
}

/// The app's OAuth consumer: its id, and the consumer key (not a secret). The secret is
/// never read here: it is read once, at reveal.
pub(super) async fn consumer(client: &Client, cx: &Context) -> Result<ConsumerMade, StepFailure> {
    let app_id = cx
        .outputs
        .app_deployed()
        .map(|o| o.app_id.as_str())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| StepFailure {
            message: "the app_deployed step recorded no app_id".into(),
            transient: false,
        })?;
    let consumer = eca::consumer(client, app_id).await?;
    Ok(ConsumerMade {
        app_id: consumer.app_id,
        consumer_id: consumer.consumer_id,
        consumer_key: consumer.consumer_key,
    })
}

/// Applies the grant's trusted IP ranges to the proven app (a deploy of the same app with
/// them, waited for), or does nothing when the grant has none. Run again after a crash, it
/// deploys the same spec again: an update, not a second app.
pub(super) async fn restrict(client: &Client, cx: &Context) -> Result<RestrictMade, StepFailure> {
    if cx.ip_ranges.is_empty() {
        return Ok(RestrictMade {
            ip_ranges: Vec::new(),
            deployed: false,
            deploy_id: None,
        });
    }
    let id = eca::deploy(client, &cx.app(), true).await?;
    tokio::time::sleep(cx.deploy_poll.first_check).await;
    let result =
        eca::wait_for_deploy(client, &cx.deploy_poll, &id, "the trusted IP ranges").await?;
    Ok(RestrictMade {
        ip_ranges: cx.ip_ranges.clone(),
        deployed: true,
        deploy_id: Some(result.id),
    })
}
