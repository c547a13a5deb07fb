//! Salesforce-shaped errors. REST errors are a JSON array of `{message, errorCode, fields}`;
//! OAuth errors are `{error, error_description}`. Nothing else ever leaves the sandbox org:
//! bad input of any kind becomes one of these, never a 500 with a Rust message.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A REST API error.
#[derive(Debug, Clone, PartialEq)]
pub struct SfError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub fields: Vec<String>,
}

impl SfError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
            fields: Vec::new(),
        }
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn with_fields<I, S>(mut self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.fields = fields.into_iter().map(Into::into).collect();
        self
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        )
    }

    pub fn invalid_session() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        )
    }

    pub fn insufficient_access() -> Self {
        Self::bad_request(
            "INSUFFICIENT_ACCESS_OR_READONLY",
            "insufficient access rights on object id",
        )
    }

    pub fn json_parse(detail: impl std::fmt::Display) -> Self {
        Self::bad_request("JSON_PARSER_ERROR", detail.to_string())
    }

    /// The error as it appears in a composite subresponse body or a REST body.
    pub fn body(&self) -> serde_json::Value {
        let mut item = json!({ "message": self.message, "errorCode": self.code });
        if !self.fields.is_empty() {
            item["fields"] = json!(self.fields);
        }
        json!([item])
    }

    /// The per-record form used by sObject Collections (`statusCode`, always `fields`).
    pub fn save_result_error(&self) -> serde_json::Value {
        json!({ "statusCode": self.code, "message": self.message, "fields": self.fields })
    }
}

impl IntoResponse for SfError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

impl std::fmt::Display for SfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// An OAuth endpoint error.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error,
            description: description.into(),
        }
    }

    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        (
            self.status,
            [(axum::http::header::CACHE_CONTROL, "no-store")],
            Json(json!({ "error": self.error, "error_description": self.description })),
        )
            .into_response()
    }
}

pub type SfResult<T> = Result<T, SfError>;
