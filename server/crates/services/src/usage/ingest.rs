//! Reading one ApiTotalUsage event log file as it streams in, keeping only what the budgets
//! need: per user and hour, the calls made and the calls that count against the org's limit.
//!
//! The CSV is read with `csv-core` (the allocation-free state machine under the `csv` crate
//! and `xsv`), chunk by chunk as the download arrives, so a file of any size costs a few
//! kilobytes plus one entry per user and hour. Quoted values (with commas, newlines and
//! doubled quotes inside) are handled by the state machine; the column order comes from the
//! file's header row, and columns we do not use are never looked at.
//!
//! A file that ends part-way through a row (a cut-off download) is refused as a whole: its
//! totals are never half-counted. A malformed row inside a file (followed by a line break,
//! so not a cut-off) is skipped and counted, not a reason to refuse the whole file.

use std::collections::HashMap;

use csv_core::{ReadRecordResult, Reader};

/// The columns read; every other column is skipped.
const USER_ID: &str = "USER_ID";
const TIMESTAMP_DERIVED: &str = "TIMESTAMP_DERIVED";
const TIMESTAMP: &str = "TIMESTAMP";
const COUNTS: &str = "COUNTS_AGAINST_API_LIMIT";
/// Optional: the username next to each user id, kept once per user for the dashboard.
const USER_NAME: &str = "USER_NAME";
/// Optional: the address each call came from (checked against a grant's IP ranges).
const CLIENT_IP: &str = "CLIENT_IP";
/// Distinct (user, address) pairs kept per file at most.
const MAX_CLIENT_IPS: usize = 10_000;

/// Why a file cannot be counted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("the file is empty: it has no header row")]
    NoHeader,
    #[error("the header row has no {0} column")]
    MissingColumn(&'static str),
    #[error(
        "row {row} has {found} values where the header has {expected}: the file is cut off or malformed"
    )]
    FieldCount {
        row: u64,
        found: usize,
        expected: usize,
    },
    #[error("row {row}: '{value}' is not a time")]
    BadTime { row: u64, value: String },
    #[error("row {row}: '{value}' is not true or false (COUNTS_AGAINST_API_LIMIT)")]
    BadFlag { row: u64, value: String },
    #[error("row {row}: '{value}' is not a Salesforce user id")]
    BadUser { row: u64, value: String },
}

/// Calls in one hour by one user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Every call the file lists.
    pub calls: u64,
    /// The calls that count against the org's daily limit.
    pub counted: u64,
}

/// One user's hour, as the file reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserHour {
    /// The 15-character user id the file carries.
    pub user_id15: String,
    /// The start of the hour, Unix milliseconds (UTC).
    pub hour_ms: i64,
    pub totals: Totals,
}

/// What a whole file said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileTotals {
    /// Data rows counted (the header and skipped rows excluded).
    pub rows: u64,
    /// Malformed rows skipped (too few or too many values, a bad user id, time or flag).
    pub skipped: u64,
    /// Per user and hour, sorted by user then hour.
    pub hours: Vec<UserHour>,
    /// Each user's username (from `USER_NAME`, when the file has it), sorted by user id.
    pub usernames: Vec<(String, String)>,
    /// The addresses each user called from (`CLIENT_IP`, when the file has it), sorted.
    pub client_ips: Vec<ClientIp>,
    /// Per user and hour, what the anomaly rules read ([`super::windows`]).
    pub windows: Vec<super::windows::UserWindow>,
    /// The objects each user called per day (`ENTITY_NAME`, when the file has it), sorted
    /// (access reviews: what the contractor actually used).
    pub entities: Vec<UserDayEntity>,
}

/// Calls of one user on one object in one UTC day (access reviews).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserDayEntity {
    pub user_id15: String,
    /// The start of the UTC day, Unix milliseconds.
    pub day_ms: i64,
    pub entity: String,
    pub calls: u64,
}

/// Optional: the object a call was about (access reviews).
const ENTITY_NAME: &str = "ENTITY_NAME";
/// Distinct (user, day, object) triples kept per file at most.
const MAX_ENTITIES: usize = 10_000;
const DAY_MS: i64 = 86_400_000;

/// What the reviews keep of each row: (user, day, object) → calls.
#[derive(Debug, Default)]
struct EntityTally {
    column: Option<usize>,
    calls: HashMap<(UserKey, i64, String), u64>,
}

impl EntityTally {
    fn add(&mut self, user: UserKey, hour_ms: i64, raw: &[u8]) {
        let entity = String::from_utf8_lossy(raw).trim().to_string();
        // Calls about no object (limits, versions) and absurd values are not kept.
        if entity.is_empty() || entity.len() > 100 {
            return;
        }
        let key = (user, hour_ms.div_euclid(DAY_MS) * DAY_MS, entity);
        let full = self.calls.len() >= MAX_ENTITIES;
        match self.calls.get_mut(&key) {
            Some(calls) => *calls += 1,
            None if !full => {
                self.calls.insert(key, 1);
            }
            None => {}
        }
    }

    fn finish(self) -> Vec<UserDayEntity> {
        let mut out: Vec<UserDayEntity> = self
            .calls
            .into_iter()
            .map(|((user, day_ms, entity), calls)| UserDayEntity {
                user_id15: String::from_utf8_lossy(&user).into_owned(),
                day_ms,
                entity,
                calls,
            })
            .collect();
        out.sort_by(|a, b| {
            (&a.user_id15, a.day_ms, &a.entity).cmp(&(&b.user_id15, b.day_ms, &b.entity))
        });
        out
    }
}

/// Calls of one user from one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIp {
    pub user_id15: String,
    pub ip: String,
    pub calls: u64,
    /// The latest call's time, Unix milliseconds.
    pub last_at_ms: i64,
}

#[derive(Debug, Clone, Copy)]
struct Columns {
    user: usize,
    /// TIMESTAMP_DERIVED when present (ISO 8601), else TIMESTAMP (`yyyyMMddHHmmss.SSS`).
    time: usize,
    time_is_derived: bool,
    counts: usize,
    username: Option<usize>,
    client_ip: Option<usize>,
    count: usize,
}

/// A 15-character id without allocating (longer ids are cut to their case-sensitive 15).
type UserKey = [u8; 15];

/// The streaming reader: [`feed`](Self::feed) it the download's chunks, then
/// [`finish`](Self::finish).
///
/// Whole records are read with one call each (`csv_core::Reader::read_record`, the call
/// the `csv` crate and `xsv count` are built on); a record's values land in one buffer that
/// is reused for every row, and only the three columns the budgets need are looked at.
pub struct Ingest {
    reader: Reader,
    /// The current record's values, back to back, and where each ends.
    record: Vec<u8>,
    ends: Vec<usize>,
    /// How much of `record` and `ends` the current (unfinished) record has filled.
    record_len: usize,
    ends_len: usize,
    columns: Option<Columns>,
    rows: u64,
    skipped: u64,
    /// The reader is at the end of the file: a malformed last row is a cut-off download.
    at_end: bool,
    bytes: u64,
    totals: HashMap<(UserKey, i64), Totals>,
    /// The last (user, hour) counted: consecutive rows usually share it.
    last: Option<((UserKey, i64), Totals)>,
    usernames: HashMap<UserKey, String>,
    client_ips: HashMap<(UserKey, String), (u64, i64)>,
    /// The anomaly rules' windows ([`super::windows`]).
    windows: super::windows::Windows,
    entities: EntityTally,
}

impl Default for Ingest {
    fn default() -> Self {
        Self::new()
    }
}

impl Ingest {
    pub fn new() -> Self {
        Self {
            reader: Reader::new(),
            record: vec![0; 4096],
            ends: vec![0; 64],
            record_len: 0,
            ends_len: 0,
            columns: None,
            rows: 0,
            skipped: 0,
            at_end: false,
            bytes: 0,
            totals: HashMap::new(),
            last: None,
            usernames: HashMap::new(),
            client_ips: HashMap::new(),
            windows: super::windows::Windows::default(),
            entities: EntityTally::default(),
        }
    }

    /// The bytes fed so far (to compare with the length the org announced).
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// Reads from `input` until it is used up or a record ends (empty input is the end of
    /// the file). Returns the bytes read and whether the reader needs more input (or the
    /// file has ended).
    fn advance(&mut self, input: &[u8]) -> Result<(usize, bool), IngestError> {
        let (result, read, written, ended) = self.reader.read_record(
            input,
            &mut self.record[self.record_len..],
            &mut self.ends[self.ends_len..],
        );
        self.record_len += written;
        self.ends_len += ended;
        match result {
            ReadRecordResult::InputEmpty | ReadRecordResult::End => Ok((read, true)),
            ReadRecordResult::OutputFull => {
                let grown = self.record.len() * 2;
                self.record.resize(grown, 0);
                Ok((read, false))
            }
            ReadRecordResult::OutputEndsFull => {
                let grown = self.ends.len() * 2;
                self.ends.resize(grown, 0);
                Ok((read, false))
            }
            ReadRecordResult::Record => {
                let fields = self.ends_len;
                self.record_len = 0;
                self.ends_len = 0;
                self.end_record(fields)?;
                Ok((read, false))
            }
        }
    }

    /// Reads the next chunk of the file.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<(), IngestError> {
        self.bytes += input.len() as u64;
        // csv-core takes empty input as the end of the file: only `finish` gives it that.
        while !input.is_empty() {
            let (read, stop) = self.advance(input)?;
            input = &input[read..];
            if stop {
                break;
            }
        }
        Ok(())
    }

    /// The end of the download: the last row (which may lack a line break) is read, and
    /// the totals returned. A file that stops inside a row is refused.
    pub fn finish(mut self) -> Result<FileTotals, IngestError> {
        self.at_end = true;
        while !self.advance(&[])?.1 {}
        // A header row that names the wrong columns was refused when it ended; no columns
        // now means there was no header at all.
        if self.columns.is_none() {
            return Err(IngestError::NoHeader);
        }
        self.flush_last();
        let mut hours: Vec<UserHour> = self
            .totals
            .into_iter()
            .map(|((user, hour_ms), totals)| UserHour {
                user_id15: String::from_utf8_lossy(&user).into_owned(),
                hour_ms,
                totals,
            })
            .collect();
        hours.sort_by(|a, b| (&a.user_id15, a.hour_ms).cmp(&(&b.user_id15, b.hour_ms)));
        let mut usernames: Vec<(String, String)> = self
            .usernames
            .into_iter()
            .map(|(user, name)| (String::from_utf8_lossy(&user).into_owned(), name))
            .collect();
        usernames.sort();
        let mut client_ips: Vec<ClientIp> = self
            .client_ips
            .into_iter()
            .map(|((user, ip), (calls, last_at_ms))| ClientIp {
                user_id15: String::from_utf8_lossy(&user).into_owned(),
                ip,
                calls,
                last_at_ms,
            })
            .collect();
        client_ips.sort_by(|a, b| (&a.user_id15, &a.ip).cmp(&(&b.user_id15, &b.ip)));
        Ok(FileTotals {
            windows: self.windows.finish(),
            entities: self.entities.finish(),
            client_ips,
            rows: self.rows,
            skipped: self.skipped,
            hours,
            usernames,
        })
    }

    fn row_number(&self) -> u64 {
        // The header is row 1 of the file; data rows follow.
        self.rows + self.skipped + 2
    }

    /// Value `index` of the record just read (`fields` values).
    fn value(&self, index: usize) -> &[u8] {
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        &self.record[start..self.ends[index]]
    }

    fn end_record(&mut self, fields: usize) -> Result<(), IngestError> {
        match self.read_row(fields) {
            // A row the file goes on after is malformed, not cut off: skip it and count it.
            Err(error) if !self.at_end && self.columns.is_some() && !is_header_error(&error) => {
                tracing::debug!(%error, "skipped a malformed usage row");
                self.skipped += 1;
                Ok(())
            }
            other => other,
        }
    }

    fn read_row(&mut self, fields: usize) -> Result<(), IngestError> {
        // A blank line (one empty value) is not a row, nor a header.
        if fields == 0 || (fields == 1 && self.ends[0] == 0) {
            return Ok(());
        }
        let Some(columns) = self.columns else {
            let header: Vec<String> = (0..fields)
                .map(|i| String::from_utf8_lossy(self.value(i)).trim().to_string())
                .collect();
            self.columns = Some(resolve_header(&header)?);
            self.windows.header(&header);
            self.entities.column = header
                .iter()
                .position(|h| h.eq_ignore_ascii_case(ENTITY_NAME));
            return Ok(());
        };
        if fields != columns.count {
            return Err(IngestError::FieldCount {
                row: self.row_number(),
                found: fields,
                expected: columns.count,
            });
        }
        let raw = self.value(columns.user);
        let user = user_key(raw).ok_or_else(|| IngestError::BadUser {
            row: self.row_number(),
            value: String::from_utf8_lossy(raw).into_owned(),
        })?;
        let raw = self.value(columns.time);
        let hour = if columns.time_is_derived {
            hour_of_iso(raw)
        } else {
            hour_of_compact(raw)
        }
        .ok_or_else(|| IngestError::BadTime {
            row: self.row_number(),
            value: String::from_utf8_lossy(raw).into_owned(),
        })?;
        let counts = match self.value(columns.counts) {
            b"true" | b"TRUE" | b"True" | b"1" => true,
            b"false" | b"FALSE" | b"False" | b"0" => false,
            other => {
                return Err(IngestError::BadFlag {
                    row: self.row_number(),
                    value: String::from_utf8_lossy(other).into_owned(),
                });
            }
        };
        if let Some(column) = columns.client_ip {
            let ip = String::from_utf8_lossy(self.value(column))
                .trim()
                .to_string();
            if !ip.is_empty() {
                let raw = self.value(columns.time);
                let at = hour + offset_in_hour(raw, columns.time_is_derived);
                let full = self.client_ips.len() >= MAX_CLIENT_IPS;
                let key = (user, ip);
                match self.client_ips.get_mut(&key) {
                    Some((calls, last)) => {
                        *calls += 1;
                        *last = (*last).max(at);
                    }
                    None if !full => {
                        self.client_ips.insert(key, (1, at));
                    }
                    None => {}
                }
            }
        }
        let at = hour + offset_in_hour(self.value(columns.time), columns.time_is_derived);
        self.windows
            .row(user, hour, at, &self.record, &self.ends[..fields]);
        if let Some(column) = self.entities.column {
            // Disjoint fields: the record is read while the tally is written, no copy.
            let start = if column == 0 {
                0
            } else {
                self.ends[column - 1]
            };
            let raw = &self.record[start..self.ends[column]];
            self.entities.add(user, hour, raw);
        }
        let key = (user, hour);
        match &mut self.last {
            Some((last, totals)) if *last == key => totals.add(counts),
            _ => {
                self.flush_last();
                if let Some(column) = columns.username
                    && !self.usernames.contains_key(&user)
                {
                    let name = String::from_utf8_lossy(self.value(column)).into_owned();
                    self.usernames.insert(user, name);
                }
                let mut totals = Totals::default();
                totals.add(counts);
                self.last = Some((key, totals));
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Adds the run of rows kept in `last` to the totals.
    fn flush_last(&mut self) {
        if let Some((key, run)) = self.last.take() {
            let totals = self.totals.entry(key).or_default();
            totals.calls += run.calls;
            totals.counted += run.counted;
        }
    }
}

impl Totals {
    fn add(&mut self, counts: bool) {
        self.calls += 1;
        self.counted += u64::from(counts);
    }
}

fn is_header_error(error: &IngestError) -> bool {
    matches!(error, IngestError::NoHeader | IngestError::MissingColumn(_))
}

fn resolve_header(header: &[String]) -> Result<Columns, IngestError> {
    let find = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
    let user = find(USER_ID).ok_or(IngestError::MissingColumn(USER_ID))?;
    let counts = find(COUNTS).ok_or(IngestError::MissingColumn(COUNTS))?;
    let (time, time_is_derived) = match (find(TIMESTAMP_DERIVED), find(TIMESTAMP)) {
        (Some(i), _) => (i, true),
        (None, Some(i)) => (i, false),
        (None, None) => return Err(IngestError::MissingColumn(TIMESTAMP_DERIVED)),
    };
    Ok(Columns {
        user,
        time,
        time_is_derived,
        counts,
        username: find(USER_NAME),
        client_ip: find(CLIENT_IP),
        count: header.len(),
    })
}

fn user_key(raw: &[u8]) -> Option<UserKey> {
    if (raw.len() != 15 && raw.len() != 18) || !raw.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    let mut key = [0u8; 15];
    key.copy_from_slice(&raw[..15]);
    Some(key)
}

fn digits(raw: &[u8]) -> Option<i64> {
    if raw.is_empty() {
        return None;
    }
    raw.iter().try_fold(0i64, |n, b| {
        b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0'))
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> Option<i64> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

fn hour_ms(year: i64, month: i64, day: i64, hour: i64) -> Option<i64> {
    if !(0..24).contains(&hour) {
        return None;
    }
    Some((days_from_civil(year, month, day)? * 24 + hour) * 3_600_000)
}

/// `2026-03-01T10:15:00.123Z` → the start of its hour (the file's times are UTC).
fn hour_of_iso(raw: &[u8]) -> Option<i64> {
    if raw.len() < 13 || raw[4] != b'-' || raw[7] != b'-' || !matches!(raw[10], b'T' | b' ') {
        return None;
    }
    hour_ms(
        digits(&raw[0..4])?,
        digits(&raw[5..7])?,
        digits(&raw[8..10])?,
        digits(&raw[11..13])?,
    )
}

/// Minutes, seconds and milliseconds into the hour of a time (0 when they are not there).
fn offset_in_hour(raw: &[u8], iso: bool) -> i64 {
    let (minute, second, fraction) = if iso {
        (raw.get(14..16), raw.get(17..19), raw.get(20..23))
    } else {
        (raw.get(10..12), raw.get(12..14), raw.get(15..18))
    };
    let part = |p: Option<&[u8]>| p.and_then(digits).unwrap_or(0);
    let (m, s, f) = (part(minute), part(second), part(fraction));
    if m > 59 || s > 60 || f > 999 {
        return 0;
    }
    (m * 60 + s) * 1000 + f
}

/// `20260301101500.123` → the start of its hour.
fn hour_of_compact(raw: &[u8]) -> Option<i64> {
    if raw.len() < 10 {
        return None;
    }
    hour_ms(
        digits(&raw[0..4])?,
        digits(&raw[4..6])?,
        digits(&raw[6..8])?,
        digits(&raw[8..10])?,
    )
}

/// Reads a whole file held in memory (for tests and small files).
pub fn ingest_bytes(file: &[u8]) -> Result<FileTotals, IngestError> {
    let mut ingest = Ingest::new();
    ingest.feed(file)?;
    ingest.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(iso: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(iso)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn times_are_read_in_both_formats() {
        assert_eq!(
            hour_of_iso(b"2026-03-01T10:15:00.123Z"),
            Some(at("2026-03-01T10:00:00Z"))
        );
        assert_eq!(
            hour_of_compact(b"20260301101500.123"),
            Some(at("2026-03-01T10:00:00Z"))
        );
        assert_eq!(
            hour_of_iso(b"2024-02-29T23:59:59Z"),
            Some(at("2024-02-29T23:00:00Z"))
        );
        assert_eq!(hour_of_iso(b"2026-13-01T10:00:00Z"), None);
        assert_eq!(hour_of_iso(b"yesterday"), None);
        assert_eq!(hour_of_compact(b"2026030125"), None);
    }

    #[test]
    fn quoted_values_with_commas_newlines_and_doubled_quotes_are_one_value() {
        let file = "\"EVENT_TYPE\",\"USER_ID\",\"CLIENT_NAME\",\"COUNTS_AGAINST_API_LIMIT\",\"TIMESTAMP_DERIVED\"\n\
                    \"ApiTotalUsage\",\"0055g00000XyZab\",\"a, b\",\"true\",\"2026-03-01T10:15:00.000Z\"\n\
                    \"ApiTotalUsage\",\"0055g00000XyZab\",\"line one\nline two\",\"true\",\"2026-03-01T10:20:00.000Z\"\n\
                    \"ApiTotalUsage\",\"0055g00000XyZab\",\"say \"\"hi\"\"\"\"\",\"false\",\"2026-03-01T11:00:00.000Z\"\n";
        let totals = ingest_bytes(file.as_bytes()).unwrap();
        assert_eq!(totals.rows, 3);
        assert_eq!(
            totals.hours,
            vec![
                UserHour {
                    user_id15: "0055g00000XyZab".into(),
                    hour_ms: at("2026-03-01T10:00:00Z"),
                    totals: Totals {
                        calls: 2,
                        counted: 2
                    },
                },
                UserHour {
                    user_id15: "0055g00000XyZab".into(),
                    hour_ms: at("2026-03-01T11:00:00Z"),
                    totals: Totals {
                        calls: 1,
                        counted: 0
                    },
                },
            ]
        );
    }

    #[test]
    fn the_header_sets_the_column_order_and_unknown_columns_are_skipped() {
        let file = "NEW_THING,COUNTS_AGAINST_API_LIMIT,TIMESTAMP,USER_ID,ANOTHER\r\n\
                    x,1,20260301101500.123,0055g00000XyZabAAA,\"y,z\"\r\n\
                    x,0,20260301111500.123,005000000000001,\r\n\
                    x,1,20260301111500.123,005000000000001,";
        let totals = ingest_bytes(file.as_bytes()).unwrap();
        assert_eq!(totals.rows, 3, "the last row needs no line break");
        assert_eq!(totals.hours.len(), 2);
        assert_eq!(totals.hours[0].user_id15, "005000000000001");
        assert_eq!(
            totals.hours[0].totals,
            Totals {
                calls: 2,
                counted: 1
            }
        );
        assert_eq!(
            totals.hours[1].user_id15, "0055g00000XyZab",
            "18-character ids are keyed by their 15"
        );
        assert_eq!(totals.hours[1].hour_ms, at("2026-03-01T10:00:00Z"));
    }

    #[test]
    fn chunk_boundaries_anywhere_give_the_same_totals() {
        let file = "\"USER_ID\",\"NOTE\",\"COUNTS_AGAINST_API_LIMIT\",\"TIMESTAMP_DERIVED\"\n\
                    \"005000000000001\",\"a \"\"quoted\"\", multi\nline value\",\"true\",\"2026-03-01T10:15:00.000Z\"\n\
                    \"005000000000002\",\"\",\"false\",\"2026-03-01T12:15:00.000Z\"\n";
        let whole = ingest_bytes(file.as_bytes()).unwrap();
        for size in 1..file.len() {
            let mut ingest = Ingest::new();
            for chunk in file.as_bytes().chunks(size) {
                ingest.feed(chunk).unwrap();
            }
            assert_eq!(ingest.finish().unwrap(), whole, "chunks of {size} bytes");
        }
    }

    #[test]
    fn a_cut_off_file_is_refused_whole() {
        let file = "USER_ID,CLIENT_NAME,COUNTS_AGAINST_API_LIMIT,TIMESTAMP_DERIVED\n\
                    005000000000001,a,true,2026-03-01T10:15:00.000Z\n\
                    005000000000001,\"cut in the mid";
        assert!(matches!(
            ingest_bytes(file.as_bytes()),
            Err(IngestError::FieldCount {
                row: 3,
                found: 2,
                expected: 4
            })
        ));
        let file =
            "USER_ID,COUNTS_AGAINST_API_LIMIT,TIMESTAMP_DERIVED\n005000000000001,true,2026-03-0";
        assert!(matches!(
            ingest_bytes(file.as_bytes()),
            Err(IngestError::BadTime { row: 2, .. })
        ));
    }

    #[test]
    fn bad_files_name_the_problem() {
        assert_eq!(ingest_bytes(b""), Err(IngestError::NoHeader));
        assert_eq!(
            ingest_bytes(b"USER_ID,TIMESTAMP_DERIVED\n"),
            Err(IngestError::MissingColumn(COUNTS))
        );
        // A bad value in a row the file goes on after is that row's problem only: the row
        // is skipped and counted (issue 14, item 8; these used to refuse the whole file).
        let totals = ingest_bytes(
            b"USER_ID,COUNTS_AGAINST_API_LIMIT,TIMESTAMP\nnot-an-id,true,20260301101500\n005000000000001,true,20260301101500\n",
        )
        .unwrap();
        assert_eq!((totals.rows, totals.skipped), (1, 1));
        let totals = ingest_bytes(
            b"USER_ID,COUNTS_AGAINST_API_LIMIT,TIMESTAMP\n005000000000001,maybe,20260301101500\n",
        )
        .unwrap();
        assert_eq!((totals.rows, totals.skipped), (0, 1));
        // The same bad values in a last row without a line break: a cut-off download.
        assert!(matches!(
            ingest_bytes(
                b"USER_ID,COUNTS_AGAINST_API_LIMIT,TIMESTAMP\nnot-an-id,true,20260301101500"
            ),
            Err(IngestError::BadUser { row: 2, .. })
        ));
        assert!(matches!(
            ingest_bytes(
                b"USER_ID,COUNTS_AGAINST_API_LIMIT,TIMESTAMP\n005000000000001,maybe,20260301101500"
            ),
            Err(IngestError::BadFlag { row: 2, .. })
        ));
        // Blank lines are not rows.
        let totals = ingest_bytes(
            b"USER_ID,COUNTS_AGAINST_API_LIMIT,TIMESTAMP\n\n005000000000001,true,20260301101500\n\n",
        )
        .unwrap();
        assert_eq!(totals.rows, 1);
    }
}
