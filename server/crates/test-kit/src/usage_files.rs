//! Crafted ApiTotalUsage event log files, as the usage collector reads them, placed in the
//! sandbox org through its control API (`POST /__sandbox/event-log-files`).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// The reference's column order (§6.2's simulator sample); every value is quoted.
pub const HEADER: &[&str] = &[
    "EVENT_TYPE",
    "TIMESTAMP",
    "REQUEST_ID",
    "ORGANIZATION_ID",
    "USER_ID",
    "USER_NAME",
    "API_FAMILY",
    "API_VERSION",
    "API_RESOURCE",
    "HTTP_METHOD",
    "STATUS_CODE",
    "ENTITY_NAME",
    "CLIENT_NAME",
    "CLIENT_IP",
    "CONNECTED_APP_ID",
    "CONNECTED_APP_NAME",
    "COUNTS_AGAINST_API_LIMIT",
    "API_CLIENT_CATEGORY",
    "TIMESTAMP_DERIVED",
];

/// One CSV value, quoted, inner quotes doubled.
pub fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\"\""))
}

/// A file: the header, then the rows, every value quoted.
pub fn csv(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = header
        .iter()
        .map(|h| quote(h))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    for row in rows {
        out.push_str(&row.iter().map(|v| quote(v)).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

/// A time in milliseconds as a UTC date-time.
pub fn at(ms: i64) -> DateTime<Utc> {
    services::clock::to_datetime(ms)
}

/// Places a file (`interval` "Daily" or "Hourly", for the period starting `log_date` ms) in
/// the sandbox org at `org_url`; returns the file's id.
pub async fn place(org_url: &str, interval: &str, log_date: i64, csv: String) -> String {
    let response = reqwest::Client::new()
        .post(format!("{org_url}/__sandbox/event-log-files"))
        .json(&json!({ "interval": interval, "logDate": at(log_date).to_rfc3339(), "csv": csv }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}
