//! The contractor's reveal page and the approvers' view of a grant's credential: what the
//! server tells the browser (never the secret itself, which has its own one response).

use serde::{Deserialize, Serialize};

/// Where a link stands, as its page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LinkState {
    /// Usable until `expires_at`; `code_sent_to` when a code is out (masked address).
    Open {
        expires_at: String,
        code_sent_to: Option<String>,
        attempts_left: i64,
    },
    Expired {
        expired_at: String,
    },
    Locked,
    Revealed {
        revealed_at: String,
        disowned_at: Option<String>,
        /// Whether "I did not do this" can be used from this link now.
        report: Report,
    },
    Superseded,
}

/// Whether a revealed link can still report the reveal as not the contractor's: only the
/// newest link of the grant can, within a window after the reveal, with a code mailed for
/// the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "report", rename_all = "snake_case")]
pub enum Report {
    /// Reports are taken until `until`; `code_sent_to` when a report code is out (masked).
    Open {
        until: String,
        code_sent_to: Option<String>,
        attempts_left: i64,
    },
    /// A newer link was sent for the credential: only that one can report.
    Superseded,
    /// The window closed at `until`.
    TooLate { until: String },
}

/// What a reveal link is for (reading it changes nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkView {
    /// The org's name as Salesforce gives it, or a neutral wording ("your company") when
    /// it could not be read: who set the credential up and whose admins to ask.
    pub org_name: String,
    pub company: String,
    pub end_date: String,
    /// The access the credential has, labelled (see [`crate::scope::AccessLine`]).
    pub access: Vec<crate::scope::AccessLine>,
    pub state: LinkState,
}

/// Where the credential of a grant stands, for the approvers' page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialStatus {
    /// `not_sent`, `waiting`, `not_collected` (expired unrevealed), `locked`, `revealed`,
    /// `disowned`.
    pub status: String,
    pub summary: String,
    pub links_sent: i64,
    /// Whether an approver may send a new link now.
    pub can_reissue: bool,
}

/// The one response that carries the secret. Its `Debug` leaves the secret out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevealedCredential {
    pub consumer_key: String,
    pub consumer_secret: String,
    /// The org's base URL (My Domain).
    pub instance_url: String,
    pub token_url: String,
    /// e.g. `66.0`
    pub api_version: String,
    pub revealed_at: String,
}

impl std::fmt::Debug for RevealedCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevealedCredential")
            .field("consumer_key", &self.consumer_key)
            .field("consumer_secret", &"[redacted]")
            .field("instance_url", &self.instance_url)
            .finish_non_exhaustive()
    }
}

impl RevealedCredential {
    /// The seed's ready-to-run example: exchange the key and secret for a token (client
    /// credentials), then list the objects the credential can see.
    pub fn example(&self) -> String {
        format!(
            "#!/bin/sh\n\
             BASE_URL='{base}'\n\
             ACCESS_TOKEN=$(curl \"$BASE_URL/services/oauth2/token\" \\\n    \
             --silent \\\n    \
             --user '{key}:{secret}' \\\n    \
             --data \"grant_type=client_credentials\" | jq --raw-output '.access_token')\n\
             \n\
             curl \"$BASE_URL/services/data/v{version}/sobjects/\" \\\n    \
             --silent \\\n    \
             --header \"Authorization: Bearer $ACCESS_TOKEN\" | \\\n\
             jq '.sobjects[] | {{name}}'\n",
            base = self.instance_url,
            key = self.consumer_key,
            secret = self.consumer_secret,
            version = self.api_version,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_uses_the_real_url_and_the_debug_form_hides_the_secret() {
        let c = RevealedCredential {
            consumer_key: "3MVGkey".into(),
            consumer_secret: "S3CRET".into(),
            instance_url: "https://acme.my.salesforce.com".into(),
            token_url: "https://acme.my.salesforce.com/services/oauth2/token".into(),
            api_version: "66.0".into(),
            revealed_at: "2026-11-22T10:00:00Z".into(),
        };
        let script = c.example();
        assert!(script.contains("BASE_URL='https://acme.my.salesforce.com'"));
        assert!(script.contains("--user '3MVGkey:S3CRET'"));
        assert!(script.contains("/services/data/v66.0/sobjects/"));
        assert!(!format!("{c:?}").contains("S3CRET"));
    }
}
