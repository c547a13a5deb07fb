//! The org's data: every record of every object, the OAuth apps, org settings, and the id
//! generator. Held in memory behind one lock (operations are short) and written to the
//! state directory by `persist`.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use salesforce::SalesforceId;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::apps::App;
use crate::metadata::Deploy;

/// A record: canonical field name → JSON value. Datetimes are Salesforce-formatted
/// strings (`2026-11-22T10:00:00.000+0000`), dates `2026-11-22`.
pub type Record = serde_json::Map<String, Value>;

/// What kind of org the sandbox org stands in for. It decides which JWT bearer audiences
/// the token endpoint accepts (`portcullis sandbox-org --kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OrgKind {
    Production,
    /// The strictest: refuses `https://login.salesforce.com` as every sandbox does.
    #[default]
    Sandbox,
    Developer,
}

impl OrgKind {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "production" => Some(Self::Production),
            "sandbox" => Some(Self::Sandbox),
            "developer" => Some(Self::Developer),
            _ => None,
        }
    }
}

/// Org-level switches, changeable at start-up and through the sandbox control API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OrgSettings {
    /// `DailyApiRequests` Max (rolling 24 hours).
    pub daily_api_limit: u64,
    /// ExternalClientAppSettings.enableClientSecretInRestApiAccess.
    pub enable_client_secret_in_rest_api_access: bool,
    /// Connected App creation is restricted since Spring '26; legacy orgs may allow it.
    pub allow_connected_app_creation: bool,
    /// Whether ApiTotalUsage files are also produced hourly.
    pub hourly_event_logs: bool,
    /// Access tokens expire after this many minutes without use... (Salesforce: session
    /// timeout); here simply after issue.
    pub session_timeout_minutes: u64,
    /// ExternalClientAppSettings.enableExternalClientApps: off, deploys of External Client
    /// App components fail.
    pub external_client_apps: bool,
    /// ExternalClientAppSettings.enableConsumerSecretApiAccess ("Allow access to OAuth
    /// consumer secrets via Metadata API"): off, a deploy that sets `consumerSecret` fails.
    pub consumer_secrets_via_metadata: bool,
    /// User Management Settings, "Permission Set and Permission Set Group Assignment
    /// Expiration Details": off, `PermissionSetAssignment.ExpirationDate` cannot be set
    /// (describe says it is not createable; a create that sets it is refused).
    /// UNCONFIRMED: how a real org without the setting shows and refuses the field.
    pub permset_assignment_expiration: bool,
    /// API Access Control (ConnectedAppSettings.enableAdminApprovedAppsOnly, enabled by
    /// Salesforce Support). On, the "Use Any API Client" user permission
    /// (`PermissionsUseAnyApiClient`) appears in PermissionSet and Profile describes.
    /// UNCONFIRMED: that the field appears only with API Access Control on (3P). The
    /// allow-list itself is not modelled: tokens are not refused.
    pub api_access_control: bool,
    /// Production, sandbox or Developer Edition.
    pub kind: OrgKind,
    /// A newly deployed app's credentials work only this long after the deploy (a real
    /// org can take minutes: issue 14, item 4).
    pub app_activation_seconds: u64,
    /// Calls appear in event log files only once they are this old (Salesforce publishes
    /// hourly files within hours and daily files the next day).
    pub event_log_latency_seconds: u64,
    /// The org's clock runs this many seconds ahead of (or, negative, behind) the machine's:
    /// everything the org decides by time (token expiry, permission set assignments'
    /// `ExpirationDate`, app activation, usage and its files) reads [`OrgData::now`]. Tests
    /// move it with the portal's clock (issue 17); a real org's clock cannot be moved.
    pub clock_offset_seconds: i64,
}

impl Default for OrgSettings {
    fn default() -> Self {
        Self {
            daily_api_limit: 15_000,
            enable_client_secret_in_rest_api_access: true,
            allow_connected_app_creation: false,
            hourly_event_logs: true,
            session_timeout_minutes: 120,
            external_client_apps: true,
            consumer_secrets_via_metadata: true,
            permset_assignment_expiration: true,
            api_access_control: false,
            kind: OrgKind::default(),
            app_activation_seconds: 2,
            event_log_latency_seconds: 0,
            clock_offset_seconds: 0,
        }
    }
}

/// Everything the org stores, except tokens and usage (kept apart, see `state`).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct OrgData {
    pub org_id: String,
    pub name: String,
    /// object name → id → record
    pub records: BTreeMap<String, BTreeMap<String, Record>>,
    /// key prefix → last number used
    pub counters: BTreeMap<String, u64>,
    /// user id → salted password hash (seeded people only)
    pub passwords: BTreeMap<String, String>,
    pub apps: BTreeMap<String, App>,
    pub settings: OrgSettings,
    pub deploys: BTreeMap<String, Deploy>,
    pub next_case_number: u64,
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

impl OrgData {
    /// The org's clock: the machine's moved by `clock_offset_seconds`.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + chrono::Duration::seconds(self.settings.clock_offset_seconds)
    }

    /// A fresh id for an object with key prefix `prefix`: prefix + instance + counter.
    pub fn new_id(&mut self, prefix: &str) -> SalesforceId {
        let counter = self.counters.entry(prefix.to_string()).or_insert(0);
        *counter += 1;
        let mut n = *counter;
        let mut body = [b'0'; 9];
        for slot in body.iter_mut().rev() {
            *slot = BASE62[(n % 62) as usize];
            n /= 62;
        }
        let body: String = body.iter().map(|b| *b as char).collect();
        SalesforceId::from_generated(&format!("{prefix}5g0{body}"))
    }

    pub fn table(&self, object: &str) -> impl Iterator<Item = (&String, &Record)> {
        self.records.get(object).into_iter().flat_map(|t| t.iter())
    }

    pub fn get(&self, object: &str, id: &str) -> Option<&Record> {
        self.records.get(object).and_then(|t| t.get(id))
    }

    pub fn get_mut(&mut self, object: &str, id: &str) -> Option<&mut Record> {
        self.records.get_mut(object).and_then(|t| t.get_mut(id))
    }

    pub fn insert(&mut self, object: &str, id: &str, record: Record) {
        self.records
            .entry(object.to_string())
            .or_default()
            .insert(id.to_string(), record);
    }

    pub fn remove(&mut self, object: &str, id: &str) -> Option<Record> {
        self.records.get_mut(object).and_then(|t| t.remove(id))
    }

    /// Finds a record of `object` whose text field `field` equals `value` (case-insensitive).
    pub fn find_by(&self, object: &str, field: &str, value: &str) -> Option<(&String, &Record)> {
        self.table(object).find(|(_, r)| {
            r.get(field)
                .and_then(Value::as_str)
                .is_some_and(|v| v.eq_ignore_ascii_case(value))
        })
    }

    /// Which object an 18-character id belongs to, if the record exists.
    pub fn object_of(&self, id: &str) -> Option<&'static str> {
        let def = crate::schema::object_by_prefix(id.get(..3)?)?;
        self.get(def.name, id).map(|_| def.name)
    }
}

/// Salesforce's datetime format in JSON: `2026-11-22T10:00:00.000+0000`.
pub fn sf_datetime(at: DateTime<Utc>) -> String {
    format!("{}+0000", at.format("%Y-%m-%dT%H:%M:%S%.3f"))
}

/// Parses the datetime formats Salesforce accepts in JSON bodies.
pub fn parse_sf_datetime(raw: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Some(at.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z"] {
        if let Ok(at) = DateTime::parse_from_str(raw, format) {
            return Some(at.with_timezone(&Utc));
        }
    }
    None
}

/// ISO-8601 with milliseconds and `Z`, as in ApiTotalUsage's TIMESTAMP_DERIVED.
pub fn iso_millis(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid_unique_and_prefixed() {
        let mut data = OrgData::default();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..5000 {
            let id = data.new_id("005");
            assert_eq!(id.key_prefix(), "005");
            assert!(SalesforceId::parse(id.as_str()).is_ok());
            assert!(seen.insert(id));
        }
    }

    #[test]
    fn datetimes_round_trip() {
        let at = parse_sf_datetime("2026-11-22T10:11:12.345+0000").unwrap();
        assert_eq!(sf_datetime(at), "2026-11-22T10:11:12.345+0000");
        assert!(parse_sf_datetime("2026-11-22T10:11:12Z").is_some());
        assert!(parse_sf_datetime("yesterday").is_none());
    }
}
