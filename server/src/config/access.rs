//! Settings of who may do what, and of the access the portal hands out: roles, approvals,
//! provisioning and credential reveal.

use super::ConfigError;
use super::setting::{Source, number, settings};

settings! {
    /// Roles, approvals, provisioning and reveal.
    pub const ACCESS = [
        ROLE_APPROVERS: Vec<String> {
            default: None,
            parse: usernames,
            help: "comma-separated Salesforce usernames given the approver role",
        },
        ROLE_SECURITY_REVIEWERS: Vec<String> {
            default: None,
            parse: usernames,
            help: "comma-separated Salesforce usernames given the security reviewer role",
        },
        ROLE_OWNERS: Vec<String> {
            default: None,
            parse: usernames,
            help: "comma-separated Salesforce usernames given the owner role",
        },
        ROLE_APPROVER_PERMISSION_SET: Option<String> {
            default: Value("Portcullis_Approver"),
            parse: permission_set,
            help: "holders of this permission set in the org are approvers (`-`: none)",
        },
        ROLE_SECURITY_REVIEWER_PERMISSION_SET: Option<String> {
            default: Value("Portcullis_Security_Reviewer"),
            parse: permission_set,
            help: "holders are security reviewers (`-`: none)",
        },
        ROLE_OWNER_PERMISSION_SET: Option<String> {
            default: Value("Portcullis_Owner"),
            parse: permission_set,
            help: "holders are owners (`-`: none)",
        },
        PROVISIONING_WORKERS: usize {
            default: Value("2"),
            parse: |raw| number(raw, 0..=16).map(|n| n as usize),
            help: "provisioning workers in this instance (`0`: none, another instance on the same PostgreSQL provisions)",
        },
        GRANT_EXPIRY_SECONDS: u64 {
            default: Value("60"),
            parse: |raw| number(raw, 1..=86_400),
            help: "how often grants past their end date are looked for and torn down (1 to 86400 seconds; every instance looks, each grant is taken once)",
        },
        REVIEWS_SECONDS: u64 {
            default: Value("300"),
            parse: |raw| number(raw, 1..=86_400),
            help: "how often access reviews past their due date give unanswered items the default, and unfinished narrowings and revokes are carried on (1 to 86400 seconds)",
        },
        APPROVALS_REQUIRED: i64 {
            default: Value("1"),
            parse: |raw| number(raw, 1..=2).map(|n| n as i64),
            help: "approvals a request needs (1 or 2) when the database is new; owners change it later in `/admin/settings`",
        },
        REVEAL_LINK_HOURS: i64 {
            default: Value("72"),
            parse: |raw| number(raw, 1..=720).map(|n| n as i64),
            help: "how long a contractor's credential reveal link works (1 to 720 hours)",
        },
        REVEAL_REPORT_HOURS: i64 {
            default: Value("168"),
            parse: |raw| number(raw, 1..=720).map(|n| n as i64),
            help: "how long after a reveal the contractor can report it as not theirs (\"I did not do this\", from the newest link, with a mailed code; 1 to 720 hours)",
        },
        SUBMISSIONS_PER_HOUR: i64 {
            default: Value("10"),
            parse: |raw| number(raw, 1..=100_000).map(|n| n as i64),
            help: "access requests one client (an IPv4 address, an IPv6 /64) may submit an hour; more get 429",
        },
    ];
}

/// A comma-separated list of usernames, compared in lower case.
fn usernames(raw: &str) -> Result<Vec<String>, String> {
    Ok(raw
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect())
}

/// A permission set's API name, or `-` for none.
fn permission_set(raw: &str) -> Result<Option<String>, String> {
    Ok(match raw.trim() {
        "-" => None,
        name => Some(name.to_string()),
    })
}

/// How roles map from Salesforce.
pub(super) fn roles(source: &Source) -> Result<services::roles::RoleMapping, ConfigError> {
    Ok(services::roles::RoleMapping {
        approvers: ROLE_APPROVERS.get(source)?.unwrap_or_default(),
        security_reviewers: ROLE_SECURITY_REVIEWERS.get(source)?.unwrap_or_default(),
        owners: ROLE_OWNERS.get(source)?.unwrap_or_default(),
        approver_permission_set: ROLE_APPROVER_PERMISSION_SET.read(source)?,
        security_reviewer_permission_set: ROLE_SECURITY_REVIEWER_PERMISSION_SET.read(source)?,
        owner_permission_set: ROLE_OWNER_PERMISSION_SET.read(source)?,
    })
}
