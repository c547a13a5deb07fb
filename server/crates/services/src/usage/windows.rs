//! What the anomaly rules ([`super::anomaly`]) need from an ApiTotalUsage file, per user and
//! hour (a *window*): every call, the calls answered 4xx (`STATUS_CODE`), and the distinct
//! objects (`ENTITY_NAME`), addresses (`CLIENT_IP`) and apps (`CONNECTED_APP_ID`) with the
//! calls that carried each and the latest of them.
//!
//! Kept apart from the budgets' totals in [`super::ingest`]: the reader hands each row it
//! counted to [`Windows::row`], and [`store`] writes a file's windows in the collector's
//! transaction, beside its `usage_hours`. The four columns are optional: a file without
//! them gives windows with calls only, and the rules that need a column judge nothing.
//!
//! `ENTITY_NAME` is documented as a "Set": how several names are separated is not
//! (UNCONFIRMED), so a value is split on commas and semicolons.

use std::collections::HashMap;

const STATUS_CODE: &str = "STATUS_CODE";
const ENTITY_NAME: &str = "ENTITY_NAME";
const CLIENT_IP: &str = "CLIENT_IP";
const CONNECTED_APP_ID: &str = "CONNECTED_APP_ID";

/// Distinct values of one kind kept per window at most (more are not kept: a window
/// that touches more than this many objects or addresses is unusual already, and the
/// first ones are enough to alert on).
pub const MAX_VALUES: usize = 200;
/// The longest value kept (longer ones are cut).
const MAX_VALUE_LEN: usize = 120;

/// Which column a window value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ValueKind {
    /// `ENTITY_NAME`: the object a call touched.
    Entity,
    /// `CLIENT_IP`: where the call came from.
    Ip,
    /// `CONNECTED_APP_ID`: the app whose token made it.
    App,
}

impl ValueKind {
    pub const ALL: [ValueKind; 3] = [ValueKind::Entity, ValueKind::Ip, ValueKind::App];

    pub fn as_str(self) -> &'static str {
        match self {
            ValueKind::Entity => "entity",
            ValueKind::Ip => "ip",
            ValueKind::App => "app",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    fn index(self) -> usize {
        match self {
            ValueKind::Entity => 0,
            ValueKind::Ip => 1,
            ValueKind::App => 2,
        }
    }
}

/// One distinct value of a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowValue {
    pub kind: ValueKind,
    pub value: String,
    pub calls: u64,
    /// The latest call carrying it, Unix milliseconds.
    pub last_at_ms: i64,
}

/// One user's hour, as the anomaly rules read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserWindow {
    /// The 15-character user id the file carries.
    pub user_id15: String,
    /// The start of the hour, Unix milliseconds (UTC).
    pub hour_ms: i64,
    /// Every call (counted against the org's limit or not).
    pub calls: u64,
    /// Calls answered 400 to 499.
    pub client_errors: u64,
    /// Sorted by kind, then value.
    pub values: Vec<WindowValue>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Columns {
    status: Option<usize>,
    entity: Option<usize>,
    ip: Option<usize>,
    app: Option<usize>,
}

#[derive(Debug, Default)]
struct Tally {
    calls: u64,
    client_errors: u64,
    /// Per kind: value → (calls, latest call).
    values: [HashMap<Box<str>, (u64, i64)>; 3],
}

/// The windows of one file as it is read.
#[derive(Debug, Default)]
pub struct Windows {
    columns: Columns,
    windows: HashMap<([u8; 15], i64), Tally>,
}

impl Windows {
    /// The file's header row: where the four columns are (each may be missing).
    pub(super) fn header(&mut self, header: &[String]) {
        let find = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
        self.columns = Columns {
            status: find(STATUS_CODE),
            entity: find(ENTITY_NAME),
            ip: find(CLIENT_IP),
            app: find(CONNECTED_APP_ID),
        };
    }

    /// A row the budgets counted: `user`'s call at `at_ms` in the hour starting `hour_ms`;
    /// `record` holds the row's values back to back and `ends` where each ends.
    pub(super) fn row(
        &mut self,
        user: [u8; 15],
        hour_ms: i64,
        at_ms: i64,
        record: &[u8],
        ends: &[usize],
    ) {
        let value = |index: Option<usize>| value_at(record, ends, index);
        let columns = self.columns;
        let tally = self.windows.entry((user, hour_ms)).or_default();
        tally.calls += 1;
        if is_client_error(value(columns.status)) {
            tally.client_errors += 1;
        }
        let entities = value(columns.entity);
        for entity in entities.split(|b| *b == b',' || *b == b';') {
            tally.add(ValueKind::Entity, entity, at_ms);
        }
        tally.add(ValueKind::Ip, value(columns.ip), at_ms);
        tally.add(ValueKind::App, value(columns.app), at_ms);
    }

    /// The windows, sorted by user then hour.
    pub(super) fn finish(self) -> Vec<UserWindow> {
        let mut windows: Vec<UserWindow> = self
            .windows
            .into_iter()
            .map(|((user, hour_ms), tally)| {
                let mut values: Vec<WindowValue> = ValueKind::ALL
                    .into_iter()
                    .zip(tally.values)
                    .flat_map(|(kind, map)| {
                        map.into_iter()
                            .map(move |(value, (calls, last_at_ms))| WindowValue {
                                kind,
                                value: value.into_string(),
                                calls,
                                last_at_ms,
                            })
                    })
                    .collect();
                values.sort_by(|a, b| (a.kind, &a.value).cmp(&(b.kind, &b.value)));
                UserWindow {
                    user_id15: String::from_utf8_lossy(&user).into_owned(),
                    hour_ms,
                    calls: tally.calls,
                    client_errors: tally.client_errors,
                    values,
                }
            })
            .collect();
        windows.sort_by(|a, b| (&a.user_id15, a.hour_ms).cmp(&(&b.user_id15, b.hour_ms)));
        windows
    }
}

impl Tally {
    fn add(&mut self, kind: ValueKind, raw: &[u8], at_ms: i64) {
        let raw = raw.trim_ascii();
        if raw.is_empty() {
            return;
        }
        let map = &mut self.values[kind.index()];
        let text = String::from_utf8_lossy(raw);
        let text = match text.char_indices().nth(MAX_VALUE_LEN) {
            Some((cut, _)) => &text[..cut],
            None => text.as_ref(),
        };
        if let Some((calls, last)) = map.get_mut(text) {
            *calls += 1;
            *last = (*last).max(at_ms);
        } else if map.len() < MAX_VALUES {
            map.insert(text.into(), (1, at_ms));
        }
    }
}

/// Value `index` of a record (empty when the column is missing).
fn value_at<'a>(record: &'a [u8], ends: &[usize], index: Option<usize>) -> &'a [u8] {
    let Some(index) = index.filter(|i| *i < ends.len()) else {
        return b"";
    };
    let start = if index == 0 { 0 } else { ends[index - 1] };
    record.get(start..ends[index]).unwrap_or_default()
}

/// `STATUS_CODE` 400 to 499 (a missing or unreadable code is not an error).
fn is_client_error(raw: &[u8]) -> bool {
    let raw = raw.trim_ascii();
    raw.len() == 3 && raw[0] == b'4' && raw[1..].iter().all(u8::is_ascii_digit)
}

/// Writes a file's windows (those inside its period) in the collector's transaction. A
/// file that `replaces` its period (a daily file) first removes the period's rows; a late
/// hourly file adds to its hour.
pub(super) async fn store(
    tx: &mut crate::db::WriteTx,
    interval: &str,
    period_start: i64,
    windows: &[&UserWindow],
    replaces: bool,
) -> Result<(), sqlx::Error> {
    if replaces {
        for table in ["usage_windows", "usage_window_values"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE log_interval = $1 AND period_start = $2"
            ))
            .bind(interval)
            .bind(period_start)
            .execute(&mut *tx.tx)
            .await?;
        }
    }
    for chunk in windows.chunks(200) {
        let sql = values_sql(
            "INSERT INTO usage_windows (log_interval, period_start, user_key, hour_start, calls, client_errors)",
            6,
            chunk.len(),
            "ON CONFLICT (log_interval, period_start, user_key, hour_start) DO UPDATE SET \
             calls = usage_windows.calls + excluded.calls, \
             client_errors = usage_windows.client_errors + excluded.client_errors",
        );
        let mut query = sqlx::query(&sql);
        for window in chunk {
            query = query
                .bind(interval)
                .bind(period_start)
                .bind(&window.user_id15)
                .bind(window.hour_ms)
                .bind(window.calls as i64)
                .bind(window.client_errors as i64);
        }
        query.execute(&mut *tx.tx).await?;
    }
    let values: Vec<(&UserWindow, &WindowValue)> = windows
        .iter()
        .flat_map(|w| w.values.iter().map(move |v| (*w, v)))
        .collect();
    for chunk in values.chunks(100) {
        let sql = values_sql(
            "INSERT INTO usage_window_values (log_interval, period_start, user_key, hour_start, kind, value, calls, last_at)",
            8,
            chunk.len(),
            "ON CONFLICT (log_interval, period_start, user_key, hour_start, kind, value) DO UPDATE SET \
             calls = usage_window_values.calls + excluded.calls, \
             last_at = CASE WHEN excluded.last_at > usage_window_values.last_at THEN excluded.last_at ELSE usage_window_values.last_at END",
        );
        let mut query = sqlx::query(&sql);
        for (window, value) in chunk {
            query = query
                .bind(interval)
                .bind(period_start)
                .bind(&window.user_id15)
                .bind(window.hour_ms)
                .bind(value.kind.as_str())
                .bind(&value.value)
                .bind(value.calls as i64)
                .bind(value.last_at_ms);
        }
        query.execute(&mut *tx.tx).await?;
    }
    Ok(())
}

/// Whether the files show a call by user `user_id` (15 or 18 characters) through app
/// `app_id` (`CONNECTED_APP_ID`; 15 or 18 characters, compared on the first 15, the
/// case-sensitive id) at or after `since_ms`. A rotation by a second app reads it: calls on
/// the second app mean the contractor switched.
pub async fn app_called_since(
    db: &crate::db::Database,
    user_id: &str,
    app_id: &str,
    since_ms: i64,
) -> Result<bool, sqlx::Error> {
    let (Some(user), Some(app)) = (user_id.get(..15), app_id.get(..15)) else {
        return Ok(false);
    };
    let calls: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(SUM(calls) AS BIGINT) FROM usage_window_values_effective \
         WHERE user_key = $1 AND kind = $2 AND substr(value, 1, 15) = $3 AND last_at >= $4",
    )
    .bind(user)
    .bind(ValueKind::App.as_str())
    .bind(app)
    .bind(since_ms)
    .fetch_one(db.pool())
    .await?;
    Ok(calls.unwrap_or(0) > 0)
}

/// `insert VALUES ($1, …), (…) tail` for `rows` rows of `columns` values.
fn values_sql(insert: &str, columns: usize, rows: usize, tail: &str) -> String {
    let values: Vec<String> = (0..rows)
        .map(|row| {
            let row: Vec<String> = (1..=columns)
                .map(|c| format!("${}", row * columns + c))
                .collect();
            format!("({})", row.join(", "))
        })
        .collect();
    format!("{insert} VALUES {} {tail}", values.join(", "))
}

#[cfg(test)]
mod tests {
    use super::super::ingest::ingest_bytes;
    use super::*;

    #[test]
    fn windows_keep_status_entities_addresses_and_apps() {
        let file = "\"USER_ID\",\"STATUS_CODE\",\"ENTITY_NAME\",\"CLIENT_IP\",\"CONNECTED_APP_ID\",\"COUNTS_AGAINST_API_LIMIT\",\"TIMESTAMP_DERIVED\"\n\
                    \"005000000000001\",\"200\",\"Case\",\"203.0.113.7\",\"0H4000000000001\",\"true\",\"2026-03-01T10:15:00.000Z\"\n\
                    \"005000000000001\",\"404\",\"Account\",\"203.0.113.7\",\"0H4000000000001\",\"true\",\"2026-03-01T10:20:00.000Z\"\n\
                    \"005000000000001\",\"400\",\"Case, Contact\",\"198.51.100.9\",\"\",\"false\",\"2026-03-01T10:25:00.000Z\"\n\
                    \"005000000000001\",\"500\",\"\",\"203.0.113.7\",\"0H4000000000001\",\"true\",\"2026-03-01T11:05:00.000Z\"\n";
        let totals = ingest_bytes(file.as_bytes()).unwrap();
        assert_eq!(totals.windows.len(), 2);
        let ten = &totals.windows[0];
        assert_eq!((ten.calls, ten.client_errors), (3, 2));
        let shown: Vec<(&str, &str, u64)> = ten
            .values
            .iter()
            .map(|v| (v.kind.as_str(), v.value.as_str(), v.calls))
            .collect();
        assert_eq!(
            shown,
            [
                ("entity", "Account", 1),
                ("entity", "Case", 2),
                ("entity", "Contact", 1),
                ("ip", "198.51.100.9", 1),
                ("ip", "203.0.113.7", 2),
                ("app", "0H4000000000001", 2),
            ]
        );
        let eleven = &totals.windows[1];
        assert_eq!(
            (eleven.calls, eleven.client_errors),
            (1, 0),
            "a 5xx is not a 4xx"
        );
    }

    #[test]
    fn a_file_without_the_columns_gives_calls_only() {
        let totals = ingest_bytes(
            b"USER_ID,COUNTS_AGAINST_API_LIMIT,TIMESTAMP\n005000000000001,true,20260301101500\n",
        )
        .unwrap();
        assert_eq!(totals.windows.len(), 1);
        assert_eq!(totals.windows[0].calls, 1);
        assert!(totals.windows[0].values.is_empty());
    }

    #[test]
    fn status_codes() {
        assert!(is_client_error(b"404"));
        assert!(is_client_error(b" 429 "));
        assert!(!is_client_error(b"200"));
        assert!(!is_client_error(b"500"));
        assert!(!is_client_error(b"4"));
        assert!(!is_client_error(b""));
    }
}
