//! The one error every server function answers with: an HTTP status and a message the
//! browser may show (never internals), and, for a form, what is wrong with each field.
//! Which status and message a domain error gets is decided here, once (the `From` impls);
//! server functions use `?`. It travels as Leptos's server-function error
//! ([`FromServerFnError`], JSON), so the page gets it back as it was sent.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};
use shared::FieldErrors;

/// A refused or failed server-function call. On the wire (JSON) a form's problems are
/// `{"Invalid":[{"field":…,"message":…}]}` and anything else
/// `{"Refused":{"status":409,"message":…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ApiError {
    /// A form with problems, each on its field (422).
    #[error("Some answers need another look.")]
    Invalid(FieldErrors),
    /// Refused or failed: the HTTP status, and what the browser shows.
    #[error("{message}")]
    Refused { status: u16, message: String },
}

/// What a 500 says: nothing about the cause, which goes to the log.
pub const INTERNAL_MESSAGE: &str = "Something went wrong on our side; please try again.";

impl ApiError {
    /// An error with `status` and `message`; on the server, the answer gets the status.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        #[cfg(feature = "ssr")]
        super::ssr::status(status);
        ApiError::Refused {
            status,
            message: message.into(),
        }
    }

    /// A form with problems on its fields (422).
    pub fn invalid(fields: FieldErrors) -> Self {
        #[cfg(feature = "ssr")]
        super::ssr::status(422);
        ApiError::Invalid(fields)
    }

    /// Logs an internal error and returns one that says nothing about it (500).
    pub fn internal(error: impl std::fmt::Display) -> Self {
        #[cfg(feature = "ssr")]
        tracing::error!(error = %error, "server function failed");
        #[cfg(not(feature = "ssr"))]
        let _ = &error;
        Self::new(500, INTERNAL_MESSAGE)
    }

    /// The HTTP status of the answer.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::Invalid(_) => 422,
            ApiError::Refused { status, .. } => *status,
        }
    }

    /// The problem with form field `field`, if any.
    pub fn field(&self, field: &str) -> Option<String> {
        match self {
            ApiError::Invalid(fields) => fields.message_for(field),
            ApiError::Refused { .. } => None,
        }
    }

    /// What to show for the form as a whole: the message of a refusal; nothing for a
    /// form with problems (each field shows its own).
    pub fn form_message(&self) -> Option<String> {
        match self {
            ApiError::Invalid(_) => None,
            ApiError::Refused { message, .. } => Some(message.clone()),
        }
    }
}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    /// The framework's own errors: arguments that do not decode are the caller's mistake
    /// (400, naming the problem); the others are ours or the network's.
    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        let status = match value {
            ServerFnErrorErr::Args(_)
            | ServerFnErrorErr::MissingArg(_)
            | ServerFnErrorErr::Deserialization(_) => 400,
            ServerFnErrorErr::Request(_) => 503,
            _ => 500,
        };
        ApiError::Refused {
            status,
            message: value.to_string(),
        }
    }
}

#[cfg(feature = "ssr")]
mod domain {
    //! Each domain error's status and message.

    use services::catalog::CatalogError;
    use services::decisions::DecisionError;
    use services::provisioning::{CancelError, RetryError, RevokeError};
    use services::records::RecordSearchError;
    use services::renewal::ExtensionError;
    use services::requests::IntakeError;
    use services::reveal::RevealError;
    use services::settings::SettingsError;
    use services::usage::budgets::LiftError;
    use services::usage::collector::CollectError;

    use super::ApiError;

    impl From<services::sqlx::Error> for ApiError {
        fn from(e: services::sqlx::Error) -> Self {
            ApiError::internal(e)
        }
    }

    /// The org could not be asked: the cause goes to the log.
    impl From<services::salesforce::Error> for ApiError {
        fn from(e: services::salesforce::Error) -> Self {
            ApiError::internal(e)
        }
    }

    impl From<RecordSearchError> for ApiError {
        fn from(e: RecordSearchError) -> Self {
            match e {
                RecordSearchError::Invalid(errors) => ApiError::invalid(errors),
                RecordSearchError::Org(e) => ApiError::internal(e),
            }
        }
    }

    impl From<DecisionError> for ApiError {
        fn from(e: DecisionError) -> Self {
            match e {
                // The form calls the scope "access".
                DecisionError::Invalid(errors) => {
                    ApiError::invalid(errors.renamed("scope", "access"))
                }
                DecisionError::Database(e) => ApiError::internal(e),
                other => ApiError::new(409, other.to_string()),
            }
        }
    }

    impl From<ExtensionError> for ApiError {
        fn from(e: ExtensionError) -> Self {
            match e {
                ExtensionError::Invalid(errors) => ApiError::invalid(errors),
                ExtensionError::NotFound => {
                    ApiError::new(404, "There is no such request for more time.")
                }
                ExtensionError::Database(e) => ApiError::internal(e),
                own @ ExtensionError::OwnAccess => ApiError::new(403, sentence(&own.to_string())),
                other => ApiError::new(409, sentence(&other.to_string())),
            }
        }
    }

    impl From<services::reviews::ReviewError> for ApiError {
        fn from(e: services::reviews::ReviewError) -> Self {
            use services::reviews::ReviewError;
            match e {
                ReviewError::Invalid(errors) => ApiError::invalid(errors),
                ReviewError::NotFound => ApiError::new(404, e.to_string()),
                ReviewError::Forbidden(message) => ApiError::new(403, message),
                ReviewError::Conflict(message) => ApiError::new(409, message),
                ReviewError::Database(e) => ApiError::internal(e),
            }
        }
    }

    /// A domain message as the page shows it: capitalised, with a full stop.
    fn sentence(message: &str) -> String {
        let mut chars = message.chars();
        match chars.next() {
            Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
            None => String::new(),
        }
    }

    impl From<IntakeError> for ApiError {
        fn from(e: IntakeError) -> Self {
            match e {
                IntakeError::Invalid(errors) => ApiError::invalid(errors),
                IntakeError::RateLimited {
                    retry_after_minutes,
                } => ApiError::new(
                    429,
                    format!(
                        "Too many requests from your network. Try again in {retry_after_minutes} minutes."
                    ),
                ),
                IntakeError::NotAllowed(message) => ApiError::new(409, message),
                IntakeError::Database(e) => ApiError::internal(e),
            }
        }
    }

    impl From<CatalogError> for ApiError {
        fn from(e: CatalogError) -> Self {
            match e {
                CatalogError::Invalid(errors) => {
                    ApiError::invalid(errors.renamed("scope", "access"))
                }
                CatalogError::NotFound => ApiError::new(404, "There is no such package."),
                other => ApiError::internal(other),
            }
        }
    }

    impl From<SettingsError> for ApiError {
        fn from(e: SettingsError) -> Self {
            match e {
                SettingsError::Invalid(errors) => ApiError::invalid(errors),
                SettingsError::Database(e) => ApiError::internal(e),
            }
        }
    }

    impl From<RetryError> for ApiError {
        fn from(e: RetryError) -> Self {
            match e {
                RetryError::Database(e) => ApiError::internal(e),
                other => ApiError::new(409, other.to_string()),
            }
        }
    }

    impl From<CancelError> for ApiError {
        fn from(e: CancelError) -> Self {
            match e {
                CancelError::Database(e) => ApiError::internal(e),
                other => ApiError::new(409, other.to_string()),
            }
        }
    }

    /// A revoke's reason is the form's `reason` field; a grant that cannot be revoked in its
    /// state is a conflict.
    impl From<RevokeError> for ApiError {
        fn from(e: RevokeError) -> Self {
            match e {
                RevokeError::Reason(message) => {
                    let mut fields = shared::FieldErrors::default();
                    fields.add(RevokeError::REASON_FIELD, message);
                    ApiError::invalid(fields)
                }
                e @ RevokeError::NotFound(_) => ApiError::new(404, e.to_string()),
                e @ RevokeError::NotRevocable(_) => ApiError::new(409, e.to_string()),
                RevokeError::Database(e) => ApiError::internal(e),
            }
        }
    }

    /// A rotation the grant's state or the org does not allow is a conflict; a bad maximum
    /// age is the form's field.
    impl From<services::rotation::RotationError> for ApiError {
        fn from(e: services::rotation::RotationError) -> Self {
            use services::rotation::RotationError;
            match e {
                RotationError::Database(e) => ApiError::internal(e),
                e @ RotationError::NoSuchGrant => ApiError::new(404, e.to_string()),
                e @ RotationError::InvalidMaxAge => {
                    let mut fields = shared::FieldErrors::default();
                    fields.add("max_age_days", e.to_string());
                    ApiError::invalid(fields)
                }
                e @ (RotationError::Salesforce(_) | RotationError::SecondApp(..)) => {
                    ApiError::new(503, e.to_string())
                }
                other => ApiError::new(409, other.to_string()),
            }
        }
    }

    impl From<services::assurance::AssuranceError> for ApiError {
        fn from(e: services::assurance::AssuranceError) -> Self {
            use services::assurance::AssuranceError;
            match e {
                e @ AssuranceError::NotFound => ApiError::new(404, e.to_string()),
                e @ AssuranceError::NotProvable(_) => ApiError::new(409, e.to_string()),
                AssuranceError::Database(e) => ApiError::internal(e),
            }
        }
    }

    impl From<LiftError> for ApiError {
        fn from(e: LiftError) -> Self {
            match e {
                LiftError::Database(e) => ApiError::internal(e),
                LiftError::NoReason => ApiError::new(422, LiftError::NoReason.to_string()),
                e @ LiftError::Salesforce(_) => {
                    tracing::warn!(error = %e, "lifting a suspension");
                    ApiError::new(502, e.to_string())
                }
                other => ApiError::new(409, other.to_string()),
            }
        }
    }

    impl From<CollectError> for ApiError {
        fn from(e: CollectError) -> Self {
            match e {
                CollectError::Busy => ApiError::new(
                    409,
                    "Usage is being collected right now; look again in a moment.",
                ),
                CollectError::Listing(e) => {
                    tracing::warn!(error = %e, "collecting usage: the org did not answer");
                    ApiError::new(
                        502,
                        "The org did not list its usage files; try again later.",
                    )
                }
                CollectError::Database(e) => ApiError::internal(e),
            }
        }
    }

    /// A reveal link holder (no session) sees the refusal without Salesforce's own text,
    /// which goes to the log (and the audit log) instead.
    impl From<RevealError> for ApiError {
        fn from(e: RevealError) -> Self {
            match e {
                RevealError::Database(e) => ApiError::internal(e),
                other => {
                    if matches!(other, RevealError::Salesforce(..)) {
                        tracing::warn!(error = %other.detail(), "a reveal link's call failed at Salesforce");
                    }
                    ApiError::new(other.status(), other.to_string())
                }
            }
        }
    }

    impl From<services::audit::view::AuditViewError> for ApiError {
        fn from(e: services::audit::view::AuditViewError) -> Self {
            use services::audit::view::AuditViewError;
            match e {
                AuditViewError::Database(e) => ApiError::internal(e),
                other => ApiError::new(400, other.to_string()),
            }
        }
    }

    impl ApiError {
        /// A signed-in approver gets a reveal error in full, Salesforce's text included.
        pub fn for_admin(e: RevealError) -> Self {
            match e {
                RevealError::Database(e) => ApiError::internal(e),
                other => ApiError::new(other.status(), other.detail()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
    use shared::FieldErrors;

    use super::ApiError;

    #[test]
    fn a_form_with_problems_is_422_and_keeps_its_wire_shape() {
        let mut fields = FieldErrors::default();
        fields.add("company", "Enter the company's name.");
        let error = ApiError::Invalid(fields);
        assert_eq!(error.status(), 422);
        assert_eq!(
            error.field("company").as_deref(),
            Some("Enter the company's name.")
        );
        assert_eq!(error.form_message(), None, "each field shows its own");
        let wire = error.ser();
        let json = String::from_utf8_lossy(&wire).to_string();
        assert!(
            json.starts_with(r#"{"Invalid":[{"field":"company","#),
            "{json}"
        );
        assert_eq!(ApiError::de(wire), error, "the page gets it back as sent");
    }

    #[test]
    fn a_refusal_carries_its_status_and_message() {
        let error = ApiError::Refused {
            status: 409,
            message: "this request is approved".into(),
        };
        assert_eq!(error.status(), 409);
        assert_eq!(error.to_string(), "this request is approved");
        assert_eq!(
            error.form_message().as_deref(),
            Some("this request is approved")
        );
        assert_eq!(error.field("company"), None);
        let wire = error.ser();
        let json = String::from_utf8_lossy(&wire).to_string();
        assert!(json.starts_with(r#"{"Refused":{"status":409"#), "{json}");
        assert_eq!(ApiError::de(wire), error);
    }

    #[test]
    fn arguments_that_do_not_decode_are_the_callers_mistake() {
        for framework in [
            ServerFnErrorErr::Args("missing field `company`".into()),
            ServerFnErrorErr::MissingArg("company".into()),
        ] {
            let error = ApiError::from_server_fn_error(framework);
            assert_eq!(error.status(), 400, "{error}");
            assert!(error.to_string().contains("company"), "{error}");
        }
        let ours = ApiError::from_server_fn_error(ServerFnErrorErr::Response("x".into()));
        assert_eq!(ours.status(), 500);
    }

    #[test]
    fn internal_errors_say_nothing_about_their_cause() {
        let error = ApiError::internal("password=hunter2 in the connection string");
        assert_eq!(error.status(), 500);
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert_eq!(error.to_string(), super::INTERNAL_MESSAGE);
    }
}
