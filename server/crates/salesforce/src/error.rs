//! The client's one error type, and decoding of Salesforce's error bodies into it.
//!
//! Error messages never contain tokens, secrets or request bodies; response bodies are
//! quoted only when they are not Salesforce's structured error shape, and then truncated.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::metadata::{DeployMessage, DeployStatus, SpecError};
use crate::soql::SoqlError;
use crate::wire;

/// Longest piece of an unstructured response body quoted in an error message.
pub(crate) const MAX_BODY_IN_MESSAGE: usize = 500;
/// A deploy's failures listed in its error (a real deploy of one app has a handful).
const MAX_DEPLOY_FAILURES: usize = 100;

/// One entry of a REST error body (§2.3): `{"message", "errorCode", "fields"}`. Per-record
/// results (sObject Collections, SaveResults) name the code `statusCode`; both decode here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    #[serde(
        rename = "errorCode",
        alias = "statusCode",
        default,
        deserialize_with = "wire::lenient_string"
    )]
    pub error_code: String,
    #[serde(default, deserialize_with = "wire::lenient_string")]
    pub message: String,
    #[serde(
        default,
        deserialize_with = "wire::one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub fields: Vec<String>,
}

impl ApiError {
    pub fn new(error_code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error_code: error_code.into(),
            message: message.into(),
            fields: Vec::new(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.error_code.is_empty() {
            f.write_str(&self.message)?;
        } else {
            write!(f, "{}: {}", self.error_code, self.message)?;
        }
        if !self.fields.is_empty() {
            write!(f, " (fields: {})", self.fields.join(", "))?;
        }
        Ok(())
    }
}

/// How a request failed below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// No connection could be made (DNS, refused, TLS handshake, connect timeout): the
    /// request certainly did not reach Salesforce.
    Connect,
    /// No complete response in time. The request may have been processed.
    Timeout,
    /// The connection broke while the request or response was under way. The request may
    /// have been processed.
    Interrupted,
}

impl TransportKind {
    /// Whether the request certainly did not reach the server.
    pub fn certainly_not_sent(self) -> bool {
        matches!(self, TransportKind::Connect)
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportKind::Connect => "could not connect to Salesforce (request not sent)",
            TransportKind::Timeout => "Salesforce did not answer in time (outcome unknown)",
            TransportKind::Interrupted => "the connection to Salesforce broke (outcome unknown)",
        })
    }
}

/// Everything that can go wrong talking to Salesforce.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A REST, Connect or Metadata call was refused with Salesforce's error body.
    #[error(
        "Salesforce refused the request (HTTP {status}): {}",
        join_errors(errors)
    )]
    Api { status: u16, errors: Vec<ApiError> },

    /// The OAuth token, revoke or userinfo endpoint refused (§1.7).
    #[error("Salesforce OAuth error (HTTP {status}): {error}: {description}")]
    OAuth {
        status: u16,
        error: String,
        description: String,
    },

    /// 403 `REQUEST_LIMIT_EXCEEDED`: the org's API allocation (or concurrency limit) is used up.
    #[error("the org's API request limit is exceeded: {message}")]
    RequestLimitExceeded { message: String },

    /// The request failed below HTTP; `kind` says whether it can have reached Salesforce.
    #[error("{kind}: {message}")]
    Transport {
        kind: TransportKind,
        message: String,
    },

    /// A request that is not safe to repeat failed after it was sent (timeout, broken
    /// connection, HTTP 500/504): Salesforce may have applied it. Callers look the effect
    /// up (by its deterministic name) before trying again.
    #[error(
        "{method} {path} failed after it was sent and may or may not have taken effect; look it up before retrying: {cause}"
    )]
    OutcomeUnknown {
        method: String,
        path: String,
        cause: Box<Error>,
    },

    /// A response did not have the shape the reference documents.
    #[error("unexpected response from Salesforce ({context}): {message}")]
    Decode { context: String, message: String },

    /// A metadata deployment finished without succeeding.
    #[error("{}", deploy_summary(id, status, message.as_deref(), failures))]
    Deploy {
        id: String,
        status: DeployStatus,
        message: Option<String>,
        failures: Vec<DeployMessage>,
    },

    /// A metadata deployment was still running when the caller stopped waiting.
    #[error("deployment {id} was still {status} after {waited:?}")]
    DeployTimedOut {
        id: String,
        status: DeployStatus,
        waited: Duration,
    },

    /// The request was refused before sending (too many subrequests, an unsafe URL, ...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    #[error(transparent)]
    Soql(#[from] SoqlError),

    #[error(transparent)]
    Spec(#[from] SpecError),

    #[error("Salesforce client configuration: {0}")]
    Version(#[from] crate::version::VersionError),

    /// The client configuration is unusable (unreadable CA file, bad private key, ...).
    #[error("Salesforce client configuration: {0}")]
    Config(String),
}

fn join_errors(errors: &[ApiError]) -> String {
    if errors.is_empty() {
        return "(no error details)".to_string();
    }
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn deploy_summary(
    id: &str,
    status: &DeployStatus,
    message: Option<&str>,
    failures: &[DeployMessage],
) -> String {
    let mut text = format!("deployment {id} ended {status}");
    if let Some(message) = message.filter(|m| !m.is_empty()) {
        text.push_str(": ");
        text.push_str(message);
    }
    // Every failure, whole (the step's last error is what an admin acts on; issue 14).
    for failure in failures.iter().take(MAX_DEPLOY_FAILURES) {
        text.push_str(&format!(
            "; {} {}: {}",
            failure.component_type, failure.full_name, failure.problem
        ));
        let mut place = Vec::new();
        if let Some(kind) = failure.problem_type.as_deref().filter(|k| !k.is_empty()) {
            place.push(kind.to_string());
        }
        if !failure.file_name.is_empty() {
            place.push(failure.file_name.clone());
        }
        match (failure.line_number, failure.column_number) {
            (Some(line), Some(column)) => place.push(format!("line {line}, column {column}")),
            (Some(line), None) => place.push(format!("line {line}")),
            _ => {}
        }
        if !place.is_empty() {
            text.push_str(&format!(" [{}]", place.join(", ")));
        }
    }
    if failures.len() > MAX_DEPLOY_FAILURES {
        text.push_str(&format!(
            "; and {} more",
            failures.len() - MAX_DEPLOY_FAILURES
        ));
    }
    text
}

impl Error {
    /// Whether trying again later may succeed: transport failures, HTTP 5xx and 429,
    /// `REQUEST_LIMIT_EXCEEDED`, and an unknown outcome. Other 4xx are final.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport { .. } | Error::RequestLimitExceeded { .. } => true,
            Error::OutcomeUnknown { .. } => true,
            Error::Api { status, .. } | Error::OAuth { status, .. } => {
                *status >= 500 || *status == 429
            }
            _ => false,
        }
    }

    /// The first Salesforce error code (`errorCode`, `statusCode` or the OAuth `error`).
    pub fn error_code(&self) -> Option<&str> {
        match self {
            Error::Api { errors, .. } => errors
                .iter()
                .map(|e| e.error_code.as_str())
                .find(|c| !c.is_empty()),
            Error::OAuth { error, .. } if !error.is_empty() => Some(error),
            Error::RequestLimitExceeded { .. } => Some("REQUEST_LIMIT_EXCEEDED"),
            Error::OutcomeUnknown { cause, .. } => cause.error_code(),
            _ => None,
        }
    }

    /// The HTTP status Salesforce answered with, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } | Error::OAuth { status, .. } => Some(*status),
            Error::RequestLimitExceeded { .. } => Some(403),
            Error::OutcomeUnknown { cause, .. } => cause.status(),
            _ => None,
        }
    }

    /// Whether a state-changing request may have been applied although it failed.
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Error::OutcomeUnknown { .. })
    }

    /// 401 `INVALID_SESSION_ID`: the access token is expired or revoked.
    pub fn is_invalid_session(&self) -> bool {
        matches!(self, Error::Api { status: 401, .. })
            && matches!(self.error_code(), None | Some("INVALID_SESSION_ID"))
    }

    /// HTTP 404 or a `NOT_FOUND` code (e.g. inside a composite subrequest).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404) || matches!(self.error_code(), Some("NOT_FOUND"))
    }

    pub(crate) fn decode(context: impl Into<String>, message: impl fmt::Display) -> Self {
        Error::Decode {
            context: context.into(),
            message: wire::truncate(&message.to_string(), MAX_BODY_IN_MESSAGE),
        }
    }

    /// Decodes an unsuccessful REST/Connect/Metadata response body (§2.3): an error array,
    /// a bare error object, or a SaveResult with `statusCode` errors. An OAuth-shaped body
    /// (`{"error", "error_description"}`) becomes [`Error::OAuth`];
    /// `REQUEST_LIMIT_EXCEEDED` becomes [`Error::RequestLimitExceeded`]. Anything else is
    /// kept, truncated, as the message of one code-less [`ApiError`].
    pub fn from_response(status: u16, body: &[u8]) -> Self {
        let json: Option<Value> = serde_json::from_slice(body).ok();
        if let Some(Value::Object(map)) = &json
            && let Some(Value::String(error)) = map.get("error")
        {
            let description = map
                .get("error_description")
                .and_then(Value::as_str)
                .unwrap_or_default();
            return Error::OAuth {
                status,
                error: error.clone(),
                description: wire::truncate(description, MAX_BODY_IN_MESSAGE),
            };
        }
        let errors = match json {
            Some(value) => api_errors_from_value(value),
            None => unstructured(body),
        };
        if let Some(limit) = errors
            .iter()
            .find(|e| e.error_code == "REQUEST_LIMIT_EXCEEDED")
        {
            return Error::RequestLimitExceeded {
                message: limit.message.clone(),
            };
        }
        Error::Api { status, errors }
    }

    /// Decodes an unsuccessful OAuth endpoint response (§1.7).
    pub fn from_oauth_response(status: u16, body: &[u8]) -> Self {
        match Self::from_response(status, body) {
            oauth @ Error::OAuth { .. } => oauth,
            Error::Api { errors, .. } => Error::OAuth {
                status,
                error: errors
                    .first()
                    .map(|e| e.error_code.clone())
                    .unwrap_or_default(),
                description: errors
                    .first()
                    .map(|e| e.message.clone())
                    .unwrap_or_default(),
            },
            other => other,
        }
    }
}

fn unstructured(body: &[u8]) -> Vec<ApiError> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return Vec::new();
    }
    vec![ApiError::new("", wire::truncate(text, MAX_BODY_IN_MESSAGE))]
}

/// The errors in a decoded error body (see [`Error::from_response`]).
pub fn api_errors_from_value(value: Value) -> Vec<ApiError> {
    match value {
        Value::Array(items) => items.into_iter().flat_map(api_errors_from_value).collect(),
        Value::Object(map) => {
            // A SaveResult (`{"success":false,"errors":[...]}`) carries its errors inside.
            if let Some(inner @ Value::Array(_)) = map.get("errors")
                && !map.contains_key("errorCode")
                && !map.contains_key("statusCode")
            {
                return api_errors_from_value(inner.clone());
            }
            let object = Value::Object(map);
            match serde_json::from_value::<ApiError>(object.clone()) {
                Ok(error) if !error.error_code.is_empty() || !error.message.is_empty() => {
                    vec![error]
                }
                _ => vec![ApiError::new(
                    "",
                    wire::truncate(&object.to_string(), MAX_BODY_IN_MESSAGE),
                )],
            }
        }
        Value::Null => Vec::new(),
        Value::String(text) => vec![ApiError::new(
            "",
            wire::truncate(&text, MAX_BODY_IN_MESSAGE),
        )],
        other => vec![ApiError::new(
            "",
            wire::truncate(&other.to_string(), MAX_BODY_IN_MESSAGE),
        )],
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, body: &str) -> (u16, Vec<ApiError>) {
        match Error::from_response(status, body.as_bytes()) {
            Error::Api { status, errors } => (status, errors),
            other => panic!("expected Api, got {other:?}"),
        }
    }

    #[test]
    fn reference_error_arrays_decode() {
        let (status, errors) = api(
            400,
            r#"[ { "fields" : [ "Id" ], "message" : "Account ID: id value of incorrect type: 001900K0001pPuOAAU", "errorCode" : "MALFORMED_ID" } ]"#,
        );
        assert_eq!(status, 400);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].error_code, "MALFORMED_ID");
        assert_eq!(errors[0].fields, vec!["Id"]);
        assert!(errors[0].message.starts_with("Account ID"));

        let (_, errors) = api(
            404,
            r#"[ { "message" : "The requested resource does not exist", "errorCode" : "NOT_FOUND" } ]"#,
        );
        assert_eq!(errors[0].error_code, "NOT_FOUND");
        assert!(errors[0].fields.is_empty());

        let (_, errors) = api(
            400,
            r#"[{"message":"field integrity exception: unknown","errorCode":"FIELD_INTEGRITY_EXCEPTION","fields":["X__c"]}]"#,
        );
        assert_eq!(errors[0].fields, vec!["X__c"]);
    }

    #[test]
    fn bare_object_and_status_code_forms_decode() {
        let err = Error::from_response(
            404,
            br#"{"message":"The requested resource does not exist","errorCode":"NOT_FOUND"}"#,
        );
        assert_eq!(err.error_code(), Some("NOT_FOUND"));
        assert!(err.is_not_found());

        let (_, errors) = api(
            400,
            r#"[{"statusCode":"DUPLICATES_DETECTED","message":"Use one of these records?","fields":[]}]"#,
        );
        assert_eq!(errors[0].error_code, "DUPLICATES_DETECTED");

        // A failed SaveResult carries its errors inside.
        let (_, errors) = api(
            400,
            r#"{"success":false,"errors":[{"statusCode":"MALFORMED_ID","message":"malformed id 001RM000003oLrB000","fields":[]}]}"#,
        );
        assert_eq!(errors[0].error_code, "MALFORMED_ID");
    }

    #[test]
    fn invalid_session_is_recognised() {
        let err = Error::from_response(
            401,
            br#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#,
        );
        assert!(err.is_invalid_session());
        assert!(!err.is_transient());
        assert_eq!(err.status(), Some(401));
    }

    #[test]
    fn request_limit_is_its_own_error() {
        let err = Error::from_response(
            403,
            br#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#,
        );
        assert!(
            matches!(&err, Error::RequestLimitExceeded { message } if message == "TotalRequests Limit exceeded.")
        );
        assert_eq!(err.error_code(), Some("REQUEST_LIMIT_EXCEEDED"));
        assert!(err.is_transient());
    }

    #[test]
    fn oauth_errors_decode() {
        let err = Error::from_oauth_response(
            400,
            br#"{ "error":"invalid_grant", "error_description":"Audience validation failed" }"#,
        );
        match &err {
            Error::OAuth {
                status,
                error,
                description,
            } => {
                assert_eq!(*status, 400);
                assert_eq!(error, "invalid_grant");
                assert_eq!(description, "Audience validation failed");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(err.error_code(), Some("invalid_grant"));
        assert!(!err.is_transient());

        let err = Error::from_oauth_response(503, b"<html>down</html>");
        assert!(err.is_transient());
        assert!(
            matches!(err, Error::OAuth { ref description, .. } if description.contains("down"))
        );
    }

    #[test]
    fn unstructured_bodies_are_truncated() {
        let huge = "x".repeat(10_000);
        let err = Error::from_response(502, huge.as_bytes());
        let text = err.to_string();
        assert!(text.len() < 1_000, "{}", text.len());
        assert!(text.contains("10000 bytes"));
        assert!(err.is_transient());
        assert_eq!(err.error_code(), None);

        let (_, errors) = api(500, "");
        assert!(errors.is_empty());
    }

    #[test]
    fn api_errors_serialize_in_rest_form() {
        let error = ApiError::new("NOT_FOUND", "gone");
        assert_eq!(
            serde_json::to_value(&error).unwrap(),
            serde_json::json!({"errorCode":"NOT_FOUND","message":"gone"})
        );
    }

    #[test]
    fn outcome_unknown_delegates_to_its_cause() {
        let err = Error::OutcomeUnknown {
            method: "POST".into(),
            path: "/services/data/v66.0/sobjects/User".into(),
            cause: Box::new(Error::Api {
                status: 500,
                errors: vec![ApiError::new("UNKNOWN_EXCEPTION", "boom")],
            }),
        };
        assert!(err.is_transient());
        assert!(err.is_outcome_unknown());
        assert_eq!(err.error_code(), Some("UNKNOWN_EXCEPTION"));
        assert_eq!(err.status(), Some(500));
        assert!(err.to_string().contains("look it up before retrying"));
    }
}
