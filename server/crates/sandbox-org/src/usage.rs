//! API usage: every counted call is recorded per user and app, the org's rolling 24-hour
//! `DailyApiRequests` is enforced, and the calls are materialised as EventLogFile records of
//! type ApiTotalUsage (Daily, and Hourly when enabled) whose LogFile is the CSV of the
//! reference §6.2.
//!
//! Files are published once their period has traffic older than the org's publishing
//! latency (`eventLogLatencySeconds`, 0 by default). When more calls arrive, a daily file is
//! re-delivered (a new record replacing the old one, with a new CreatedDate), and an hourly
//! one gets a late file beside it that "lists only the new events", as Salesforce documents
//! for hourly event log files, so a collector sees both behaviours on every run.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Duration, DurationRound, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::store::{OrgData, Record, iso_millis, sf_datetime};

/// One API call, as ApiTotalUsage reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UsageEvent {
    pub at: DateTime<Utc>,
    pub request_id: String,
    pub user_id: String,
    pub username: String,
    pub app_id: Option<String>,
    pub app_name: Option<String>,
    pub api_version: String,
    pub resource: String,
    pub method: String,
    pub status: u16,
    pub entity: String,
    pub client_name: String,
    pub client_ip: String,
    pub counts: bool,
}

/// The columns of our ApiTotalUsage files, in order.
pub const COLUMNS: &[(&str, &str)] = &[
    ("EVENT_TYPE", "String"),
    ("TIMESTAMP", "String"),
    ("REQUEST_ID", "String"),
    ("ORGANIZATION_ID", "Id"),
    ("USER_ID", "Id"),
    ("USER_NAME", "String"),
    ("API_FAMILY", "String"),
    ("API_VERSION", "Number"),
    ("API_RESOURCE", "String"),
    ("HTTP_METHOD", "String"),
    ("STATUS_CODE", "Number"),
    ("ENTITY_NAME", "Set"),
    ("CLIENT_NAME", "String"),
    ("CLIENT_IP", "String"),
    ("CONNECTED_APP_ID", "String"),
    ("CONNECTED_APP_NAME", "String"),
    ("COUNTS_AGAINST_API_LIMIT", "Boolean"),
    ("API_CLIENT_CATEGORY", "String"),
    ("TIMESTAMP_DERIVED", "DateTime"),
];

/// Where a published file's content comes from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum FileContent {
    /// `count` calls of the period after its first `skip` (calls are appended in time
    /// order; `skip` is what earlier hourly files of the period already listed).
    Usage {
        #[serde(default)]
        skip: usize,
        count: usize,
    },
    /// A file placed by the sandbox control API (tests of unusual files).
    Literal(String),
}

/// A published EventLogFile.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublishedFile {
    pub interval: Interval,
    pub start: DateTime<Utc>,
    pub content: FileContent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Interval {
    Daily,
    Hourly,
}

impl Interval {
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Daily => "Daily",
            Interval::Hourly => "Hourly",
        }
    }

    fn length(self) -> Duration {
        match self {
            Interval::Daily => Duration::days(1),
            Interval::Hourly => Duration::hours(1),
        }
    }

    fn period_start(self, at: DateTime<Utc>) -> DateTime<Utc> {
        at.duration_trunc(self.length()).unwrap_or(at)
    }
}

/// The usage log and the published files.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Usage {
    pub events: Vec<UsageEvent>,
    /// Timestamps of counted calls in the last 24 hours (for the daily limit).
    #[serde(skip)]
    window: VecDeque<DateTime<Utc>>,
    /// file id → what it holds
    pub files: BTreeMap<String, PublishedFile>,
    /// (interval, period start) → current file id
    #[serde(skip)]
    current: BTreeMap<(Interval, DateTime<Utc>), String>,
    /// How many events were already accounted for in published files.
    pub published_upto: usize,
}

impl Usage {
    /// Rebuilds the indexes after loading from disk.
    pub fn reindex(&mut self, now: DateTime<Utc>) {
        let since = now - Duration::hours(24);
        self.window = self
            .events
            .iter()
            .filter(|e| e.counts && e.at > since)
            .map(|e| e.at)
            .collect();
        self.current = self
            .files
            .iter()
            .map(|(id, f)| ((f.interval, f.start), id.clone()))
            .collect();
    }

    /// Counted calls in the rolling 24 hours before `now`.
    pub fn used_last_24h(&mut self, now: DateTime<Utc>) -> u64 {
        let since = now - Duration::hours(24);
        while self.window.front().is_some_and(|t| *t <= since) {
            self.window.pop_front();
        }
        self.window.len() as u64
    }

    pub fn record(&mut self, event: UsageEvent) {
        if event.counts {
            self.window.push_back(event.at);
        }
        self.events.push(event);
    }

    /// Publishes or re-delivers files for periods with new calls. Returns whether anything
    /// changed.
    pub fn publish(&mut self, data: &mut OrgData, hourly: bool, now: DateTime<Utc>) -> bool {
        // Calls younger than the latency are not in any file yet.
        let ready_before =
            now - Duration::seconds(data.settings.event_log_latency_seconds.min(7 * 86_400) as i64);
        // The calls not in a file yet, oldest first: the org's clock may have been moved
        // back (`clockOffsetSeconds`), so a call recorded later can be older than one
        // recorded before it, and a call stamped in a future the clock left must not hold
        // back the ones made since (it is published once the clock reaches it again).
        let start = self.published_upto.min(self.events.len());
        self.events[start..].sort_by_key(|e| e.at);
        let upto = self.published_upto
            + self.events[self.published_upto.min(self.events.len())..]
                .iter()
                .take_while(|e| e.at <= ready_before)
                .count();
        if self.published_upto >= upto {
            return false;
        }
        let mut touched: BTreeMap<(Interval, DateTime<Utc>), ()> = BTreeMap::new();
        for event in &self.events[self.published_upto..upto] {
            touched.insert(
                (Interval::Daily, Interval::Daily.period_start(event.at)),
                (),
            );
            if hourly {
                touched.insert(
                    (Interval::Hourly, Interval::Hourly.period_start(event.at)),
                    (),
                );
            }
        }
        self.published_upto = upto;
        for (interval, start) in touched.into_keys() {
            let end = start + interval.length();
            let total = self.events[..upto]
                .iter()
                .filter(|e| e.at >= start && e.at < end)
                .count();
            // An hourly period's earlier files stay; the new one lists only the new calls.
            let skip = match interval {
                Interval::Hourly => self.listed(interval, start),
                Interval::Daily => 0,
            };
            let count = total.saturating_sub(skip);
            if count == 0 {
                continue;
            }
            let csv = self.csv_for(&data.org_id, interval, start, skip, count);
            if interval == Interval::Daily
                && let Some(old) = self.current.remove(&(interval, start))
            {
                data.remove("EventLogFile", &old);
                self.files.remove(&old);
            }
            let id = data.new_id("0AT");
            let record = log_file_record(id.as_str(), interval, start, csv.len(), now);
            data.insert("EventLogFile", id.as_str(), record);
            self.files.insert(
                id.as_str().to_string(),
                PublishedFile {
                    interval,
                    start,
                    content: FileContent::Usage { skip, count },
                },
            );
            self.current
                .insert((interval, start), id.as_str().to_string());
        }
        true
    }

    /// Calls of a period the published files already list.
    fn listed(&self, interval: Interval, start: DateTime<Utc>) -> usize {
        self.files
            .values()
            .filter(|f| f.interval == interval && f.start == start)
            .map(|f| match f.content {
                FileContent::Usage { count, .. } => count,
                FileContent::Literal(_) => 0,
            })
            .sum()
    }

    /// Places a literal file (for tests of unusual content). A daily file replaces the
    /// day's; an hourly one is a late file beside the hour's others.
    pub fn place_literal(
        &mut self,
        data: &mut OrgData,
        interval: Interval,
        start: DateTime<Utc>,
        csv: String,
        now: DateTime<Utc>,
    ) -> String {
        let start = interval.period_start(start);
        if interval == Interval::Daily
            && let Some(old) = self.current.remove(&(interval, start))
        {
            data.remove("EventLogFile", &old);
            self.files.remove(&old);
        }
        let id = data.new_id("0AT");
        let record = log_file_record(id.as_str(), interval, start, csv.len(), now);
        data.insert("EventLogFile", id.as_str(), record);
        self.files.insert(
            id.as_str().to_string(),
            PublishedFile {
                interval,
                start,
                content: FileContent::Literal(csv),
            },
        );
        self.current
            .insert((interval, start), id.as_str().to_string());
        id.as_str().to_string()
    }

    /// The CSV of a published file.
    pub fn file_csv(&self, org_id: &str, id: &str) -> Option<String> {
        let file = self.files.get(id)?;
        Some(match &file.content {
            FileContent::Usage { skip, count } => {
                self.csv_for(org_id, file.interval, file.start, *skip, *count)
            }
            FileContent::Literal(csv) => csv.clone(),
        })
    }

    fn csv_for(
        &self,
        org_id: &str,
        interval: Interval,
        start: DateTime<Utc>,
        skip: usize,
        count: usize,
    ) -> String {
        let end = start + interval.length();
        let mut out = String::new();
        let header: Vec<String> = COLUMNS.iter().map(|(name, _)| quote(name)).collect();
        out.push_str(&header.join(","));
        out.push('\n');
        for event in self
            .events
            .iter()
            .filter(|e| e.at >= start && e.at < end)
            .skip(skip)
            .take(count)
        {
            let row = [
                "ApiTotalUsage".to_string(),
                event.at.format("%Y%m%d%H%M%S%.3f").to_string(),
                event.request_id.clone(),
                org_id.get(..15).unwrap_or(org_id).to_string(),
                event
                    .user_id
                    .get(..15)
                    .unwrap_or(&event.user_id)
                    .to_string(),
                event.username.clone(),
                "REST".to_string(),
                event.api_version.clone(),
                event.resource.clone(),
                event.method.clone(),
                event.status.to_string(),
                event.entity.clone(),
                event.client_name.clone(),
                event.client_ip.clone(),
                event.app_id.clone().unwrap_or_default(),
                event.app_name.clone().unwrap_or_default(),
                if event.counts { "true" } else { "false" }.to_string(),
                if event.app_id.is_some() {
                    "EXTERNAL_APPLICATION"
                } else {
                    "UNKNOWN"
                }
                .to_string(),
                iso_millis(event.at),
            ];
            let quoted: Vec<String> = row.iter().map(|v| quote(v)).collect();
            out.push_str(&quoted.join(","));
            out.push('\n');
        }
        out
    }
}

/// Event log quoting: every value in double quotes, embedded quotes tripled... as the
/// reference documents (`"""example message"""` for a value that is `"example message"`):
/// each `"` inside a value is written as `""` within the surrounding quotes, which for a
/// value starting and ending with a quote gives three quotes in a row.
pub fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\"\""))
}

fn log_file_record(
    id: &str,
    interval: Interval,
    start: DateTime<Utc>,
    length: usize,
    now: DateTime<Utc>,
) -> Record {
    let mut record = Record::new();
    let created = sf_datetime(now);
    let names: Vec<&str> = COLUMNS.iter().map(|(n, _)| *n).collect();
    let types: Vec<&str> = COLUMNS.iter().map(|(_, t)| *t).collect();
    let sequence = match interval {
        Interval::Daily => 0,
        Interval::Hourly => 1 + i64::from(chrono::Timelike::hour(&start)),
    };
    for (key, value) in [
        ("Id", json!(id)),
        ("EventType", json!("ApiTotalUsage")),
        ("LogDate", json!(sf_datetime(start))),
        (
            "LogFile",
            json!(format!(
                "/services/data/v{}/sobjects/EventLogFile/{id}/LogFile",
                crate::rest::LATEST_VERSION
            )),
        ),
        ("LogFileLength", json!(length as f64)),
        ("LogFileContentType", json!("CSV")),
        ("LogFileFieldNames", json!(names.join(","))),
        ("LogFileFieldTypes", json!(types.join(","))),
        ("Interval", json!(interval.as_str())),
        ("Sequence", json!(sequence)),
        (
            "ApiVersion",
            json!(crate::rest::LATEST_VERSION.parse::<f64>().unwrap_or(66.0)),
        ),
        ("IsDeleted", json!(false)),
        ("CreatedDate", json!(created)),
        ("CreatedById", Value::Null),
        ("LastModifiedDate", json!(created)),
        ("LastModifiedById", Value::Null),
        ("SystemModstamp", json!(created)),
    ] {
        record.insert(key.into(), value);
    }
    record
}

use serde_json::Value;

/// The start of the UTC day of `at`.
pub fn day_start(at: DateTime<Utc>) -> DateTime<Utc> {
    Utc.from_utc_datetime(&at.date_naive().and_hms_opt(0, 0, 0).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at: DateTime<Utc>, counts: bool) -> UsageEvent {
        UsageEvent {
            at,
            request_id: "req".into(),
            user_id: "005000000000001AAA".into(),
            username: "a@b.example".into(),
            app_id: None,
            app_name: None,
            api_version: "66.0".into(),
            resource: "/v66.0/query".into(),
            method: "GET".into(),
            status: 200,
            entity: "Case".into(),
            client_name: "say \"hi\", please".into(),
            client_ip: "127.0.0.1".into(),
            counts,
        }
    }

    #[test]
    fn quoting_doubles_embedded_quotes() {
        assert_eq!(quote("plain"), "\"plain\"");
        assert_eq!(quote("\"example message\""), "\"\"\"example message\"\"\"");
    }

    #[test]
    fn the_rolling_window_forgets_calls_older_than_a_day() {
        let mut usage = Usage::default();
        let now = Utc::now();
        usage.record(event(now - Duration::hours(25), true));
        usage.record(event(now - Duration::hours(1), true));
        usage.record(event(now - Duration::minutes(1), false));
        assert_eq!(usage.used_last_24h(now), 1);
    }

    /// A daily file is re-delivered whole; a late hourly file lists only the new calls and
    /// stays beside the hour's first (Salesforce's hourly event log files; before issue 14
    /// the hourly file was replaced like the daily one).
    #[test]
    fn files_are_re_delivered_as_calls_arrive() {
        let mut usage = Usage::default();
        let mut data = OrgData {
            org_id: "00D5g0000000001AAA".into(),
            ..Default::default()
        };
        let now = Utc::now();
        usage.record(event(now, true));
        assert!(usage.publish(&mut data, true, now));
        assert_eq!(
            data.table("EventLogFile").count(),
            2,
            "one daily, one hourly"
        );
        let interval_of = |data: &OrgData, id: &str| {
            data.get("EventLogFile", id)
                .and_then(|r| r.get("Interval"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let first: Vec<String> = data
            .table("EventLogFile")
            .map(|(id, _)| id.clone())
            .collect();
        let first_hourly = first
            .iter()
            .find(|id| interval_of(&data, id) == "Hourly")
            .unwrap()
            .clone();
        usage.record(event(now, true));
        usage.publish(&mut data, true, now);
        let second: Vec<String> = data
            .table("EventLogFile")
            .map(|(id, _)| id.clone())
            .collect();
        assert_eq!(second.len(), 3, "the daily replaced, a late hourly added");
        assert!(
            second.contains(&first_hourly),
            "the first hourly file stays"
        );
        let daily: Vec<&String> = second
            .iter()
            .filter(|id| interval_of(&data, id) == "Daily")
            .collect();
        assert_eq!(daily.len(), 1);
        assert!(!first.contains(daily[0]), "the daily file was re-delivered");
        let csv = usage.file_csv(&data.org_id, daily[0]).unwrap();
        assert_eq!(csv.lines().count(), 3, "header and two calls");
        assert!(csv.contains("\"say \"\"hi\"\", please\""));
        let late = second
            .iter()
            .find(|id| interval_of(&data, id) == "Hourly" && **id != first_hourly)
            .unwrap();
        let csv = usage.file_csv(&data.org_id, late).unwrap();
        assert_eq!(csv.lines().count(), 2, "header and only the new call");
        assert!(!usage.publish(&mut data, true, now), "nothing new");
    }

    #[test]
    fn a_call_stamped_before_the_clock_moved_back_does_not_hold_back_later_ones() {
        let mut usage = Usage::default();
        let mut data = OrgData {
            org_id: "00D5g0000000001AAA".into(),
            ..Default::default()
        };
        let now = Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap();
        // Made while the org's clock stood three days ahead, then the clock moved back.
        usage.record(event(now + Duration::days(3), true));
        usage.record(event(now - Duration::minutes(5), true));
        assert!(usage.publish(&mut data, false, now));
        let (id, _) = data.table("EventLogFile").next().unwrap();
        let csv = usage.file_csv(&data.org_id, &id.clone()).unwrap();
        assert_eq!(csv.lines().count(), 2, "the call made since: {csv}");
        assert!(
            !usage.publish(&mut data, false, now),
            "the future call waits"
        );
        assert!(usage.publish(&mut data, false, now + Duration::days(3)));
        assert_eq!(
            data.table("EventLogFile").count(),
            2,
            "one daily file a day"
        );
    }

    #[test]
    fn calls_younger_than_the_latency_are_not_published_yet() {
        let mut usage = Usage::default();
        let mut data = OrgData {
            org_id: "00D5g0000000001AAA".into(),
            ..Default::default()
        };
        data.settings.event_log_latency_seconds = 600;
        let now = Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap();
        usage.record(event(now - Duration::minutes(20), true));
        usage.record(event(now - Duration::minutes(5), true));
        assert!(usage.publish(&mut data, false, now));
        let (id, _) = data.table("EventLogFile").next().unwrap();
        let id = id.clone();
        assert_eq!(
            usage.file_csv(&data.org_id, &id).unwrap().lines().count(),
            2
        );
        assert!(
            !usage.publish(&mut data, false, now),
            "the newer call waits"
        );
        assert!(usage.publish(&mut data, false, now + Duration::minutes(6)));
    }
}
