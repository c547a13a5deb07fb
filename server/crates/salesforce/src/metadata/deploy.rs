//! `deployRequest` over REST (§4.4): start a deploy (multipart `json` + `file` parts), read
//! its status, wait for it, cancel it.
//!
//! Deploy results are decoded tolerantly: the documented GET example writes booleans as
//! strings (`"checkOnly" : "false"`), numbers may be strings too, and a single component
//! failure may arrive as an object instead of a one-element list.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::package::DeployZip;
use crate::client::{ApiRequest, Body, Client};
use crate::error::{Error, Result};
use crate::id::SalesforceId;
use crate::retry::Idempotency;
use crate::wire;

/// Which Apex tests a deploy runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TestLevel {
    NoTestRun,
    RunSpecifiedTests,
    RunRelevantTests,
    RunLocalTests,
    RunAllTestsInOrg,
}

/// `deployOptions`. The default suits the portal's app deploys: one package, rolled back
/// on any error, no tests named (Salesforce runs none for a package without Apex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployOptions {
    pub allow_missing_files: bool,
    pub check_only: bool,
    /// Needed when rotating ECA consumer keys through metadata.
    pub ignore_warnings: bool,
    pub purge_on_delete: bool,
    /// Must be true for production orgs.
    pub rollback_on_error: bool,
    pub single_package: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_level: Option<TestLevel>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub run_tests: Vec<String>,
}

impl Default for DeployOptions {
    fn default() -> Self {
        Self {
            allow_missing_files: false,
            check_only: false,
            ignore_warnings: false,
            purge_on_delete: false,
            rollback_on_error: true,
            single_package: true,
            test_level: None,
            run_tests: Vec::new(),
        }
    }
}

/// A deploy's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeployStatus {
    Pending,
    InProgress,
    Finalizing,
    Succeeded,
    SucceededPartial,
    Failed,
    Canceling,
    Canceled,
    /// A value the reference does not list (e.g. `FinalizingDeploy`), kept as sent.
    Other(String),
}

impl DeployStatus {
    pub fn parse(raw: &str) -> Self {
        match raw {
            "Pending" => Self::Pending,
            "InProgress" => Self::InProgress,
            "Finalizing" => Self::Finalizing,
            "Succeeded" => Self::Succeeded,
            "SucceededPartial" => Self::SucceededPartial,
            "Failed" => Self::Failed,
            "Canceling" => Self::Canceling,
            "Canceled" => Self::Canceled,
            other => Self::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "Pending",
            Self::InProgress => "InProgress",
            Self::Finalizing => "Finalizing",
            Self::Succeeded => "Succeeded",
            Self::SucceededPartial => "SucceededPartial",
            Self::Failed => "Failed",
            Self::Canceling => "Canceling",
            Self::Canceled => "Canceled",
            Self::Other(other) => other,
        }
    }

    /// Whether the deploy can no longer change.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::SucceededPartial | Self::Failed | Self::Canceled
        )
    }
}

impl fmt::Display for DeployStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DeployStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        wire::lenient_string(deserializer).map(|s| Self::parse(&s))
    }
}

impl Serialize for DeployStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A deploy's id (`0Af...`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeployId(pub SalesforceId);

impl fmt::Display for DeployId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One component's outcome (`DeployMessage`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeployMessage {
    #[serde(deserialize_with = "wire::lenient_string")]
    pub component_type: String,
    #[serde(deserialize_with = "wire::lenient_string")]
    pub full_name: String,
    #[serde(deserialize_with = "wire::lenient_string")]
    pub file_name: String,
    #[serde(deserialize_with = "wire::lenient_string")]
    pub problem: String,
    /// `Warning` or `Error`.
    pub problem_type: Option<String>,
    pub id: Option<String>,
    #[serde(deserialize_with = "wire::lenient_bool")]
    pub success: bool,
    #[serde(deserialize_with = "wire::lenient_bool")]
    pub created: bool,
    #[serde(deserialize_with = "wire::lenient_bool")]
    pub changed: bool,
    #[serde(deserialize_with = "wire::lenient_bool")]
    pub deleted: bool,
    #[serde(deserialize_with = "wire::lenient_opt_u64")]
    pub line_number: Option<u64>,
    #[serde(deserialize_with = "wire::lenient_opt_u64")]
    pub column_number: Option<u64>,
}

/// `details` of a deploy result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeployDetails {
    #[serde(deserialize_with = "wire::one_or_many")]
    pub component_successes: Vec<DeployMessage>,
    #[serde(deserialize_with = "wire::one_or_many")]
    pub component_failures: Vec<DeployMessage>,
}

/// `deployResult`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployResult {
    pub id: String,
    pub status: DeployStatus,
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub done: bool,
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub success: bool,
    #[serde(default, deserialize_with = "wire::lenient_bool")]
    pub check_only: bool,
    #[serde(default, deserialize_with = "wire::lenient_u64")]
    pub number_components_deployed: u64,
    #[serde(default, deserialize_with = "wire::lenient_u64")]
    pub number_components_total: u64,
    #[serde(default, deserialize_with = "wire::lenient_u64")]
    pub number_component_errors: u64,
    #[serde(default)]
    pub state_detail: Option<String>,
    #[serde(default)]
    pub error_message: Option<String>,
    #[serde(default)]
    pub error_status_code: Option<String>,
    #[serde(default, deserialize_with = "wire::opt_datetime")]
    pub created_date: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "wire::opt_datetime")]
    pub completed_date: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "details")]
    pub details: DeployDetails,
}

fn details<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<DeployDetails, D::Error> {
    Option::<DeployDetails>::deserialize(deserializer).map(Option::unwrap_or_default)
}

impl DeployResult {
    /// Whether the deploy ended and every component was deployed.
    pub fn succeeded(&self) -> bool {
        self.done && self.success && self.status == DeployStatus::Succeeded
    }

    /// `Ok` for a successful finished deploy, [`Error::Deploy`] for a finished one that
    /// did not fully succeed (failed, partial, canceled). Unfinished deploys are `Ok`.
    pub fn into_outcome(self) -> Result<Self> {
        let finished = self.done || self.status.is_final();
        if !finished || self.succeeded() {
            return Ok(self);
        }
        Err(Error::Deploy {
            id: self.id,
            status: self.status,
            message: self.error_message,
            failures: self.details.component_failures,
        })
    }
}

/// The envelope of `deployRequest` answers.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeployEnvelope {
    pub id: DeployId,
    #[serde(default)]
    pub deploy_result: Option<DeployResult>,
}

impl Client {
    /// `POST /metadata/deployRequest` (201): starts a deploy and returns its id. Record
    /// the id before waiting, so a crash while waiting can resume with
    /// [`Client::wait_for_deploy`].
    pub async fn deploy(&self, zip: &DeployZip, options: &DeployOptions) -> Result<DeployId> {
        let json = serde_json::to_vec(&json!({ "deployOptions": options }))
            .map_err(|e| Error::InvalidRequest(format!("cannot encode deploy options: {e}")))?;
        let mut request =
            ApiRequest::new(Method::POST, self.rest_url(&["metadata", "deployRequest"])?)
                .idempotency(Idempotency::NonIdempotent);
        request.body = Body::Deploy {
            json: Bytes::from(json),
            zip: zip.clone().into_bytes(),
        };
        let envelope: DeployEnvelope = self.send_json(&request).await?;
        Ok(envelope.id)
    }

    /// `GET /metadata/deployRequest/{id}[?includeDetails=true]`.
    pub async fn deploy_status(
        &self,
        id: &DeployId,
        include_details: bool,
    ) -> Result<DeployResult> {
        let mut url = self.rest_url(&["metadata", "deployRequest", id.0.as_str()])?;
        if include_details {
            url.query_pairs_mut().append_pair("includeDetails", "true");
        }
        let envelope: DeployEnvelope = self.get_json(&url).await?;
        envelope
            .deploy_result
            .ok_or_else(|| Error::decode("deploy status", "no deployResult in the answer"))
    }

    /// Polls a deploy every `poll_interval` until it is done; its failures become
    /// [`Error::Deploy`] with the component failures, and still running after `timeout`
    /// becomes [`Error::DeployTimedOut`].
    pub async fn wait_for_deploy(
        &self,
        id: &DeployId,
        poll_interval: Duration,
        timeout: Duration,
    ) -> Result<DeployResult> {
        let started = tokio::time::Instant::now();
        loop {
            let result = self.deploy_status(id, true).await?;
            if result.done || result.status.is_final() {
                return result.into_outcome();
            }
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(Error::DeployTimedOut {
                    id: id.to_string(),
                    status: result.status,
                    waited,
                });
            }
            tokio::time::sleep(poll_interval.min(timeout - waited)).await;
        }
    }

    /// [`Client::deploy`] then [`Client::wait_for_deploy`].
    pub async fn deploy_and_wait(
        &self,
        zip: &DeployZip,
        options: &DeployOptions,
        poll_interval: Duration,
        timeout: Duration,
    ) -> Result<DeployResult> {
        let id = self.deploy(zip, options).await?;
        tracing::info!(deploy_id = %id, "metadata deploy started");
        self.wait_for_deploy(&id, poll_interval, timeout).await
    }

    /// `PATCH /metadata/deployRequest/{id}` with status `Canceling` (202).
    pub async fn cancel_deploy(&self, id: &DeployId) -> Result<()> {
        let request = ApiRequest::new(
            Method::PATCH,
            self.rest_url(&["metadata", "deployRequest", id.0.as_str()])?,
        )
        .json(&json!({ "deployResult": { "status": "Canceling" } }))?;
        self.send_no_content(&request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_serialise_as_documented() {
        let value =
            serde_json::to_value(json!({ "deployOptions": DeployOptions::default() })).unwrap();
        assert_eq!(
            value,
            json!({ "deployOptions": { "allowMissingFiles": false, "checkOnly": false,
              "ignoreWarnings": false, "purgeOnDelete": false, "rollbackOnError": true,
              "singlePackage": true } })
        );
        let with_tests = DeployOptions {
            test_level: Some(TestLevel::RunSpecifiedTests),
            run_tests: vec!["MyTest".into()],
            ..DeployOptions::default()
        };
        let value = serde_json::to_value(&with_tests).unwrap();
        assert_eq!(value["testLevel"], "RunSpecifiedTests");
        assert_eq!(value["runTests"], json!(["MyTest"]));
    }

    #[test]
    fn the_201_answer_decodes() {
        let body = r#"{ "id" : "0Afxx00000001VPCAY",
  "deployOptions" : { "checkOnly" : false, "singlePackage" : false, "allowMissingFiles" : false, "performRetrieve" : false,
     "autoUpdatePackage" : false, "rollbackOnError" : true, "ignoreWarnings" : false, "purgeOnDelete" : false, "runAllTests" : false },
  "deployResult" : { "id" : "0Afxx00000001VPCAY", "success" : false, "checkOnly" : false, "ignoreWarnings" : false,
     "rollbackOnError" : true, "status" : "Pending", "runTestsEnabled" : false, "done" : false } }"#;
        let envelope: DeployEnvelope = serde_json::from_str(body).unwrap();
        assert_eq!(envelope.id.to_string(), "0Afxx00000001VPCAY");
        let result = envelope.deploy_result.unwrap();
        assert_eq!(result.status, DeployStatus::Pending);
        assert!(!result.done);
        assert!(result.clone().into_outcome().is_ok());
    }

    #[test]
    fn status_with_booleans_as_strings_decodes() {
        let body = r#"{ "id" : "0Afxx00000001VPCAY", "url" : "/services/data/v66.0/metadata/deployRequest/0Afxx00000001VPCAY",
  "deployResult" : { "id" : "0Afxx00000001VPCAY", "checkOnly" : "false", "done" : "true", "success" : "false",
     "status" : "Failed", "numberComponentsDeployed" : "3", "numberComponentErrors" : 1,
     "numberComponentsTotal" : "4", "errorMessage" : null, "createdDate" : "2026-03-01T10:15:00.000+0000",
     "completedDate" : "2026-03-01T10:15:09.000Z",
     "details" : { "componentSuccesses" : [
         { "changed" : "true", "componentType" : "ExternalClientApplication", "created" : "true",
           "deleted" : "false", "fileName" : "externalClientApps/Acme.eca", "fullName" : "Acme",
           "id" : "0xIxx0000000001AAA", "success" : "true" } ],
       "componentFailures" : { "changed" : "false", "columnNumber" : "5", "componentType" : "ExtlClntAppOauthConfigurablePolicies",
           "created" : "false", "deleted" : "false", "fileName" : "extlClntAppOauthPolicies/Acme.ecaOauthPlcy",
           "fullName" : "Acme", "lineNumber" : "3", "problem" : "clientCredentialsFlowUser: user not found",
           "problemType" : "Error", "success" : "false" } } } }"#;
        let envelope: DeployEnvelope = serde_json::from_str(body).unwrap();
        let result = envelope.deploy_result.unwrap();
        assert!(result.done);
        assert!(!result.success);
        assert!(!result.check_only);
        assert_eq!(result.number_components_deployed, 3);
        assert_eq!(result.number_component_errors, 1);
        assert_eq!(result.number_components_total, 4);
        assert_eq!(
            result.created_date.unwrap().to_rfc3339(),
            "2026-03-01T10:15:00+00:00"
        );
        assert_eq!(result.details.component_successes.len(), 1);
        assert!(result.details.component_successes[0].created);
        let failure = &result.details.component_failures[0];
        assert_eq!(
            failure.component_type,
            "ExtlClntAppOauthConfigurablePolicies"
        );
        assert_eq!(failure.line_number, Some(3));
        assert_eq!(failure.problem_type.as_deref(), Some("Error"));
        match result.into_outcome().unwrap_err() {
            Error::Deploy {
                id,
                status,
                failures,
                ..
            } => {
                assert_eq!(id, "0Afxx00000001VPCAY");
                assert_eq!(status, DeployStatus::Failed);
                assert_eq!(failures.len(), 1);
                assert_eq!(
                    failures[0].problem,
                    "clientCredentialsFlowUser: user not found"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn successful_and_in_progress_results() {
        let ok: DeployResult = serde_json::from_value(json!({
            "id": "0Afxx00000001VPCAY", "status": "Succeeded", "done": true, "success": true,
            "numberComponentsDeployed": 4, "details": null
        }))
        .unwrap();
        assert!(ok.succeeded());
        assert!(ok.into_outcome().is_ok());

        let running: DeployResult = serde_json::from_value(json!({
            "id": "0Afxx00000001VPCAY", "status": "FinalizingDeploy", "done": false
        }))
        .unwrap();
        assert_eq!(
            running.status,
            DeployStatus::Other("FinalizingDeploy".into())
        );
        assert!(!running.status.is_final());
        assert!(running.into_outcome().is_ok());

        let partial: DeployResult = serde_json::from_value(json!({
            "id": "0Afxx00000001VPCAY", "status": "SucceededPartial", "done": true, "success": true
        }))
        .unwrap();
        assert!(matches!(partial.into_outcome(), Err(Error::Deploy { .. })));
    }

    #[test]
    fn deploy_errors_summarise_failures() {
        let err = Error::Deploy {
            id: "0Afxx00000001VPCAY".into(),
            status: DeployStatus::Failed,
            message: Some("boom".into()),
            failures: vec![DeployMessage {
                component_type: "ExternalClientApplication".into(),
                full_name: "Acme".into(),
                problem: "Opt in to External Client Apps is off".into(),
                ..DeployMessage::default()
            }],
        };
        let text = err.to_string();
        assert!(text.contains("Failed"));
        assert!(text.contains("ExternalClientApplication Acme: Opt in"));
        assert!(!err.is_transient());
    }
}
