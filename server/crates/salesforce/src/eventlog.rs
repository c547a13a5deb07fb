//! Event log files (§6): finding the org's `ApiTotalUsage` files and streaming their CSV.
//!
//! The CSV is streamed chunk by chunk and never held whole: daily files of a busy org run
//! to many megabytes. Parsing the CSV is the usage monitor's business.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{Stream, TryStreamExt};
use reqwest::Method;
use reqwest::header::{ACCEPT, HeaderValue};
use serde::Deserialize;

use crate::client::{ApiRequest, Client};
use crate::error::Result;
use crate::http;
use crate::id::SalesforceId;
use crate::soql::{Cond, Order, Soql, SoqlError};
use crate::wire;

/// The free event type that counts API calls per user.
pub const API_TOTAL_USAGE: &str = "ApiTotalUsage";

/// The fields [`EventLogQuery`] selects.
const FIELDS: [&str; 8] = [
    "Id",
    "EventType",
    "LogDate",
    "Interval",
    "Sequence",
    "CreatedDate",
    "LogFileLength",
    "LogFile",
];

/// How much time one file covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum LogInterval {
    Daily,
    Hourly,
    #[serde(other)]
    Unknown,
}

impl LogInterval {
    pub fn as_str(self) -> &'static str {
        match self {
            LogInterval::Daily => "Daily",
            LogInterval::Hourly => "Hourly",
            LogInterval::Unknown => "Unknown",
        }
    }
}

/// One `EventLogFile` row.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventLogFileRow {
    pub id: SalesforceId,
    pub event_type: String,
    /// The start of the day (daily) or hour (hourly) the file covers.
    #[serde(deserialize_with = "required_datetime")]
    pub log_date: DateTime<Utc>,
    #[serde(default)]
    pub interval: Option<LogInterval>,
    /// 0 for daily files, 1.. for hourly ones.
    #[serde(default, deserialize_with = "wire::lenient_opt_u64")]
    pub sequence: Option<u64>,
    /// A re-delivered file replaces the earlier one with a newer `CreatedDate`.
    #[serde(default, deserialize_with = "wire::opt_datetime")]
    pub created_date: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "wire::lenient_opt_u64")]
    pub log_file_length: Option<u64>,
    /// The relative URL of the CSV (`/services/data/vXX.X/sobjects/EventLogFile/{id}/LogFile`).
    #[serde(default)]
    pub log_file: Option<String>,
}

fn required_datetime<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<DateTime<Utc>, D::Error> {
    wire::opt_datetime(deserializer)?.ok_or_else(|| serde::de::Error::custom("missing LogDate"))
}

/// Which event log files to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLogQuery {
    pub event_type: String,
    pub interval: Option<LogInterval>,
    /// Files whose `LogDate` is at or after this.
    pub log_date_from: Option<DateTime<Utc>>,
    /// Files created (or re-delivered) after this.
    pub created_after: Option<DateTime<Utc>>,
}

impl EventLogQuery {
    /// Daily `ApiTotalUsage` files, the ones the usage monitor reads.
    pub fn api_total_usage_daily() -> Self {
        Self {
            event_type: API_TOTAL_USAGE.to_string(),
            interval: Some(LogInterval::Daily),
            log_date_from: None,
            created_after: None,
        }
    }

    /// The SOQL for this query, ordered by `LogDate`, then `Sequence`.
    pub fn to_soql(&self) -> std::result::Result<Soql, SoqlError> {
        let mut builder = Soql::select(&FIELDS)
            .from("EventLogFile")
            .filter(Cond::eq("EventType", self.event_type.as_str()));
        if let Some(interval) = self.interval {
            builder = builder.filter(Cond::eq("Interval", interval.as_str()));
        }
        if let Some(from) = self.log_date_from {
            builder = builder.filter(Cond::ge("LogDate", from));
        }
        if let Some(after) = self.created_after {
            builder = builder.filter(Cond::gt("CreatedDate", after));
        }
        builder
            .order_by("LogDate", Order::Asc)
            .order_by("Sequence", Order::Asc)
            .build()
    }
}

impl Client {
    /// The event log files matching `query`, all pages.
    pub async fn event_log_files(&self, query: &EventLogQuery) -> Result<Vec<EventLogFileRow>> {
        self.query_all(&query.to_soql()?).await
    }

    /// Streams the CSV of event log file `id` (`.../sobjects/EventLogFile/{id}/LogFile`).
    /// The request is retried like any GET until the answer starts; a failure while
    /// streaming ends the stream with an error, and the caller starts over.
    pub async fn download_log_file(
        &self,
        id: &SalesforceId,
    ) -> Result<impl Stream<Item = Result<Bytes>> + Send + 'static + use<>> {
        let url = self.rest_url(&["sobjects", "EventLogFile", id.as_str(), "LogFile"])?;
        let mut request = ApiRequest::new(Method::GET, url).header(
            ACCEPT,
            HeaderValue::from_static("text/csv, application/octet-stream, */*"),
        );
        request.streaming = true;
        let response = self.execute(&request).await?;
        Ok(response.bytes_stream().map_err(http::transport_error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn rows_decode_from_the_reference_sample() {
        let page: crate::query::QueryPage<EventLogFileRow> = serde_json::from_str(
            r#"{"totalSize":1,"done":true,"records":[{"attributes":{"type":"EventLogFile","url":"/services/data/v66.0/sobjects/EventLogFile/0ATD000000001bROAQ"},
              "Id":"0ATD000000001bROAQ","EventType":"API","LogFile":"/services/data/v66.0/sobjects/EventLogFile/0ATD000000001bROAQ/LogFile",
              "LogDate":"2014-03-14T00:00:00.000+0000","LogFileLength":2692.0}]}"#,
        )
        .unwrap();
        let row = &page.records[0];
        assert_eq!(row.id.as_str(), "0ATD000000001bROAQ");
        assert_eq!(row.event_type, "API");
        assert_eq!(
            row.log_date,
            Utc.with_ymd_and_hms(2014, 3, 14, 0, 0, 0).unwrap()
        );
        assert_eq!(row.log_file_length, Some(2692));
        assert_eq!(
            row.log_file.as_deref(),
            Some("/services/data/v66.0/sobjects/EventLogFile/0ATD000000001bROAQ/LogFile")
        );
        assert!(row.interval.is_none());
    }

    #[test]
    fn rows_with_interval_and_sequence_decode() {
        let row: EventLogFileRow = serde_json::from_value(serde_json::json!({
            "Id": "0ATD000000001bR", "EventType": "ApiTotalUsage", "LogDate": "2026-03-01T10:00:00.000+0000",
            "Interval": "Hourly", "Sequence": 3, "CreatedDate": "2026-03-01T15:02:11.000+0000",
            "LogFileLength": "1024", "LogFile": "/services/data/v66.0/sobjects/EventLogFile/0ATD000000001bROAQ/LogFile"
        }))
        .unwrap();
        assert_eq!(row.interval, Some(LogInterval::Hourly));
        assert_eq!(row.sequence, Some(3));
        assert_eq!(row.log_file_length, Some(1024));
        assert!(row.created_date.unwrap() > row.log_date);
    }

    #[test]
    fn query_is_built_safely() {
        let mut query = EventLogQuery::api_total_usage_daily();
        query.log_date_from = Some(Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap());
        assert_eq!(
            query.to_soql().unwrap().as_str(),
            "SELECT Id, EventType, LogDate, Interval, Sequence, CreatedDate, LogFileLength, LogFile \
             FROM EventLogFile WHERE EventType = 'ApiTotalUsage' AND Interval = 'Daily' \
             AND LogDate >= 2026-03-01T00:00:00Z ORDER BY LogDate ASC, Sequence ASC"
        );
        let hostile = EventLogQuery {
            event_type: "API' OR EventType != '".into(),
            interval: None,
            log_date_from: None,
            created_after: None,
        };
        assert!(
            hostile
                .to_soql()
                .unwrap()
                .as_str()
                .contains(r"EventType = 'API\' OR EventType != \''")
        );
    }
}
