//! Finding and making records in the org the way every step does: look up before
//! creating (skipped on a first attempt), composite requests and their answers, and the
//! results of collections, with Salesforce's refusals as step failures.

use salesforce::composite::{CompositeResponse, ReferenceId};
use salesforce::{Client, Cond, SalesforceId, Soql};
use serde::Deserialize;
use serde_json::Value;

use super::StepFailure;
use super::context::Context;

#[derive(Deserialize)]
pub(super) struct IdRow {
    #[serde(rename = "Id")]
    pub(super) id: SalesforceId,
}

/// The id of the first `object` record matching `cond`, if any; on a first attempt,
/// `None` without asking (see [`Context::first_attempt`]).
pub(super) async fn look_up(
    client: &Client,
    cx: &Context,
    object: &str,
    cond: Cond,
) -> Result<Option<SalesforceId>, StepFailure> {
    if cx.first_attempt {
        return Ok(None);
    }
    find(client, object, cond).await
}

/// The id of the first `object` record matching `cond`, if any.
pub(super) async fn find(
    client: &Client,
    object: &str,
    cond: Cond,
) -> Result<Option<SalesforceId>, StepFailure> {
    let query = soql(Soql::select(&["Id"]).from(object).filter(cond).build())?;
    let page = client.query::<IdRow>(&query).await?;
    Ok(page.records.into_iter().next().map(|r| r.id))
}

/// The `object` record matching `cond` (looked up as [`look_up`] does), or one created
/// from `body`: its id, and whether it was found.
pub(super) async fn find_or_create(
    client: &Client,
    cx: &Context,
    object: &str,
    cond: Cond,
    body: &Value,
) -> Result<(SalesforceId, bool), StepFailure> {
    match look_up(client, cx, object, cond).await? {
        Some(id) => Ok((id, true)),
        None => Ok((client.create(object, body).await?, false)),
    }
}

pub(super) fn soql(result: Result<Soql, salesforce::soql::SoqlError>) -> Result<Soql, StepFailure> {
    result.map_err(|e| StepFailure {
        message: format!("could not build a query: {e}"),
        transient: false,
    })
}

pub(super) fn reference(name: &str) -> Result<ReferenceId, StepFailure> {
    ReferenceId::new(name).map_err(composite_failure)
}

pub(super) fn composite_failure(e: salesforce::Error) -> StepFailure {
    StepFailure {
        message: format!("could not build a composite request: {e}"),
        transient: false,
    }
}

/// The first record id a query subrequest found (`None`: no record), or its error.
pub(super) fn first_record(
    response: &CompositeResponse,
    query: &ReferenceId,
) -> Result<Option<SalesforceId>, StepFailure> {
    let result = response.get(query).ok_or_else(|| StepFailure {
        message: format!(
            "Salesforce did not answer the subrequest {}",
            query.as_str()
        ),
        transient: true,
    })?;
    if let Some(error) = result.error() {
        return Err(error.into());
    }
    Ok(result.body["records"][0]["Id"]
        .as_str()
        .and_then(|id| SalesforceId::parse(id).ok()))
}

/// The id a create subrequest made, or the composite's explaining failure.
pub(super) fn created(
    response: CompositeResponse,
    create: &ReferenceId,
) -> Result<SalesforceId, StepFailure> {
    let response = response.ensure_success()?;
    response
        .get(create)
        .and_then(|r| r.created_id())
        .ok_or_else(|| StepFailure {
            message: format!("Salesforce returned no id for {}", create.as_str()),
            transient: true,
        })
}

/// The ids of a collection's saved records, or the first record's errors.
pub(super) fn check_saved(
    results: Vec<salesforce::rest::SaveResult>,
) -> Result<Vec<SalesforceId>, StepFailure> {
    results
        .into_iter()
        .map(|result| result.into_result(400).map_err(StepFailure::from))
        .collect()
}
