//! A failure of work done in the Salesforce org (a provisioning step, an app deploy): what
//! went wrong, in words an admin can act on, and whether trying again later may help.
//!
//! Below both the provisioning workflow and the reveal, which both deploy the grant's app.

/// A failure of one piece of work in the org.
#[derive(Debug, Clone)]
pub struct OrgFailure {
    /// For the admin: what went wrong and what to do.
    pub message: String,
    pub transient: bool,
}

impl OrgFailure {
    /// A failure that trying again will not mend.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: false,
        }
    }

    /// A failure that may pass (the org is busy, a deploy still runs).
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: true,
        }
    }
}

/// How a failure for want of a Salesforce Integration licence begins (the request's page
/// then lists the grants that end soonest: `ending::ending_soonest`).
pub(crate) const NO_LICENCE: &str = "The org has no free Salesforce Integration licence";

/// Whether `attention` (a grant's stored reason for needing attention) says the org had no
/// free Salesforce Integration licence.
pub fn is_licence_shortage(attention: &str) -> bool {
    attention.contains(NO_LICENCE)
}

impl From<salesforce::Error> for OrgFailure {
    fn from(error: salesforce::Error) -> Self {
        let transient = error.is_transient();
        let message = match error.error_code() {
            Some("LICENSE_LIMIT_EXCEEDED") => format!(
                "{NO_LICENCE} (or API integration permission set licence). Free one (revoke a grant), or buy more, then retry. Salesforce said: {error}"
            ),
            Some("INVALID_FIELD") | Some("INVALID_FIELD_FOR_INSERT_UPDATE") => format!(
                "A field in the approved scope does not exist in the org (or cannot be permissioned). Check the scope against the org, then retry. Salesforce said: {error}"
            ),
            _ => format!("Salesforce refused the step: {error}"),
        };
        Self { message, transient }
    }
}

/// `what` was not found in the org: a permanent failure.
pub fn not_found(what: &str) -> OrgFailure {
    OrgFailure::permanent(format!("{what} was not found in the org"))
}
