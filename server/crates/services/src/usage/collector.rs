//! The usage collector: on each run it lists the org's ApiTotalUsage event log files created
//! since its cursor, streams each new (or re-delivered) file through [`ingest`], and stores
//! the file's calls per user and hour in one transaction with the file's record and the
//! cursor. It then records the org's DailyApiRequests (`/limits`) and its Salesforce
//! Integration licences, and checks every grant's budget ([`super::budgets`]).
//!
//! Restarts neither skip nor repeat a file: a file is read, counted and marked read in one
//! transaction, so a crash before the commit leaves no trace of it and the next run reads it
//! again; files already read are recognised by their id. The cursor (the newest CreatedDate
//! read) only moves past a file once every file created before it has been read, and each
//! listing reaches an hour behind it, so a file the org publishes late is still found.
//!
//! A re-delivered daily file (the same day, a newer CreatedDate) replaces the rows of the
//! one before it; an older copy arriving after a newer one is recorded as superseded and not
//! counted. A late hourly file is different: Salesforce says it "lists only the new
//! events", so it is added to its hour, never put in the place of the hour's earlier files
//! (each file is still read once, by its id). A malformed row is skipped and counted in the
//! file's record (`rows_skipped`), shown on the dashboard. Rows whose time lies outside the file's own period (latent duplicates) are not
//! counted either.
//!
//! One instance collects at a time: a run takes a lease on the collector's row first.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use salesforce::composite::{CompositeRequest, ReferenceId, Subrequest};
use salesforce::eventlog::{API_TOTAL_USAGE, EventLogFileRow, EventLogQuery, LogInterval};
use salesforce::query::QueryPage;
use salesforce::{Client, Soql};
use serde::Deserialize;
use tracing::Instrument;

use super::ingest::{FileTotals, Ingest, IngestError};
use crate::clock::{SharedClock, to_datetime};
use crate::db::Database;
use crate::licence::INTEGRATION_LICENCE;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Where a run is, for tests that stop it at a chosen point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checkpoint {
    /// A file was downloaded and its rows written in its transaction, not yet committed.
    BeforeCommit { file_id: String },
}

/// Called at each [`Checkpoint`]; the run waits for the returned future.
pub type Hook = Arc<dyn Fn(Checkpoint) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Why a run did not happen or stopped.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("another instance is collecting usage right now")]
    Busy,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("listing the org's event log files failed: {0}")]
    Listing(salesforce::Error),
}

/// A file that could not be read this run (it is tried again next run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFailure {
    pub file_id: String,
    pub error: String,
}

/// What the org reported about its API allocation and licences (a row of
/// `org_usage_snapshots`).
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct OrgSnapshot {
    pub at: i64,
    pub daily_api_max: Option<i64>,
    pub daily_api_remaining: Option<i64>,
    pub integration_licences_total: Option<i64>,
    pub integration_licences_used: Option<i64>,
}

/// What one run did.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// Files the listing returned.
    pub listed: usize,
    /// Files read and counted now (ids).
    pub read: Vec<String>,
    /// Data rows in those files.
    pub rows: u64,
    /// Files listed that had been read before.
    pub already_read: usize,
    /// Older copies of a period a newer file already speaks for.
    pub superseded: usize,
    pub failed: Vec<FileFailure>,
    pub org: OrgSnapshot,
    /// Problems reading `/limits` or the licences (the run still counts usage).
    pub warnings: Vec<String>,
    pub budgets: super::budgets::Evaluation,
}

/// The usage collector. Cheap to clone.
#[derive(Clone)]
pub struct Collector {
    db: Database,
    salesforce: Client,
    alerts: super::budgets::Alerts,
    owner: String,
    lease: Duration,
    overlap: Duration,
    look_back: Duration,
    download_attempts: u32,
    hook: Option<Hook>,
    /// When a run happened, what it read at, and the budgets' windows.
    clock: SharedClock,
    /// Where runs and the files read are counted (the portal's).
    metrics: Arc<crate::metrics::Metrics>,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LicenceRow {
    #[serde(default)]
    total_licenses: Option<i64>,
    #[serde(default)]
    used_licenses: Option<i64>,
}

/// How one listed file was handled.
enum Handled {
    Read { rows: u64 },
    AlreadyRead,
    Superseded,
}

impl Collector {
    pub fn new(db: Database, salesforce: Client, alerts: super::budgets::Alerts) -> Self {
        Self {
            db,
            salesforce,
            alerts,
            owner: format!("collector-{}", uuid::Uuid::new_v4()),
            lease: Duration::from_secs(600),
            overlap: Duration::from_secs(3600),
            look_back: Duration::from_secs(30 * 24 * 3600),
            download_attempts: 3,
            hook: None,
            clock: crate::clock::system(),
            metrics: crate::metrics::detached(),
        }
    }

    /// Counts runs and the files read in `metrics` (the portal's: see
    /// [`crate::Portal::usage_collector`]).
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Reads the time from `clock` (the portal's: see [`crate::Portal::usage_collector`]).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Stops at each [`Checkpoint`] until `hook`'s future completes (tests).
    pub fn with_hook(mut self, hook: Hook) -> Self {
        self.hook = Some(hook);
        self
    }

    /// How long a run may hold the collector before another instance may take over.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// One collector run: files, the org's limits and licences, then the budgets.
    pub async fn run_once(&self) -> Result<RunReport, CollectError> {
        let span = tracing::info_span!(
            "usage_collect",
            outcome = tracing::field::Empty,
            files = tracing::field::Empty,
            rows = tracing::field::Empty,
        );
        let result = self.run_leased().instrument(span.clone()).await;
        // One outcome word, files and rows for both the trace and the metrics.
        let (outcome, files, rows) = match &result {
            Ok(report) if report.failed.is_empty() => ("ok", report.read.len() as u64, report.rows),
            Ok(report) => ("partial", report.read.len() as u64, report.rows),
            Err(CollectError::Busy) => ("busy", 0, 0),
            Err(_) => ("failed", 0, 0),
        };
        span.record("outcome", outcome);
        if result.is_ok() {
            span.record("files", files);
            span.record("rows", rows);
        }
        self.metrics.collector_run(outcome, files, rows);
        result
    }

    async fn run_leased(&self) -> Result<RunReport, CollectError> {
        let now = self.clock.now_ms();
        if !self.take_lease(now).await? {
            return Err(CollectError::Busy);
        }
        let result = self.collect(now).await;
        let (success, error) = match &result {
            Ok(report) if report.failed.is_empty() => (Some(now), None),
            Ok(report) => (
                None,
                Some(format!(
                    "{} file(s) could not be read; the first: {} ({})",
                    report.failed.len(),
                    report.failed[0].file_id,
                    report.failed[0].error
                )),
            ),
            Err(e) => (None, Some(e.to_string())),
        };
        sqlx::query(
            "UPDATE usage_collector SET lease_owner = NULL, lease_expires_at = NULL, last_run_at = $1, \
             last_success_at = COALESCE($2, last_success_at), last_error = $3 WHERE id = 1 AND lease_owner = $4",
        )
        .bind(now)
        .bind(success)
        .bind(error.map(|e| e.chars().take(500).collect::<String>()))
        .bind(&self.owner)
        .execute(self.db.pool())
        .await?;
        result
    }

    async fn take_lease(&self, now: i64) -> Result<bool, sqlx::Error> {
        let taken = sqlx::query(
            "UPDATE usage_collector SET lease_owner = $1, lease_expires_at = $2 \
             WHERE id = 1 AND (lease_owner IS NULL OR lease_expires_at < $3 OR lease_owner = $1)",
        )
        .bind(&self.owner)
        .bind(now + self.lease.as_millis() as i64)
        .bind(now)
        .execute(self.db.pool())
        .await?;
        Ok(taken.rows_affected() == 1)
    }

    async fn collect(&self, now: i64) -> Result<RunReport, CollectError> {
        let mut report = RunReport::default();
        let cursor: Option<i64> =
            sqlx::query_scalar("SELECT created_cursor FROM usage_collector WHERE id = 1")
                .fetch_one(self.db.pool())
                .await?;
        let (mut files, licences) = self.list(now, cursor).await?;
        report.listed = files.len();
        // In the order the org created them, so the cursor can follow.
        files.sort_by(|a, b| (created_ms(a), a.id.as_str()).cmp(&(created_ms(b), b.id.as_str())));
        let mut cursor_may_move = true;
        for file in &files {
            let span = tracing::info_span!("usage_file", file = %file.id);
            match self.handle(file, cursor_may_move).instrument(span).await {
                Ok(Handled::Read { rows }) => {
                    report.read.push(file.id.as_str().to_string());
                    report.rows += rows;
                }
                Ok(Handled::AlreadyRead) => report.already_read += 1,
                Ok(Handled::Superseded) => report.superseded += 1,
                Err(FileError::Database(e)) => return Err(e.into()),
                Err(FileError::Unreadable(error)) => {
                    tracing::warn!(file = %file.id, %error, "an ApiTotalUsage file could not be read; it is tried again next run");
                    // Later files are still read, but the cursor stays before this one.
                    cursor_may_move = false;
                    report.failed.push(FileFailure {
                        file_id: file.id.as_str().to_string(),
                        error,
                    });
                }
            }
        }

        report.org.at = now;
        match licences {
            Ok(Some(row)) => {
                report.org.integration_licences_total = row.total_licenses;
                report.org.integration_licences_used = row.used_licenses;
            }
            Ok(None) => report.warnings.push(format!(
                "the org has no '{INTEGRATION_LICENCE}' user licence"
            )),
            Err(e) => report.warnings.push(format!("licences: {e}")),
        }
        match self.salesforce.limits().await {
            Ok(limits) => match limits.daily_api_requests() {
                Some(daily) => {
                    report.org.daily_api_max = Some(daily.max);
                    report.org.daily_api_remaining = Some(daily.remaining);
                }
                None => report
                    .warnings
                    .push("/limits has no DailyApiRequests".to_string()),
            },
            Err(e) => report.warnings.push(format!("/limits: {e}")),
        }
        for warning in &report.warnings {
            tracing::warn!(%warning, "usage collector");
        }
        sqlx::query(
            "INSERT INTO org_usage_snapshots (at, daily_api_max, daily_api_remaining, integration_licences_total, integration_licences_used) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (at) DO NOTHING",
        )
        .bind(report.org.at)
        .bind(report.org.daily_api_max)
        .bind(report.org.daily_api_remaining)
        .bind(report.org.integration_licences_total)
        .bind(report.org.integration_licences_used)
        .execute(self.db.pool())
        .await?;
        // A month of snapshots is what the dashboard shows.
        sqlx::query("DELETE FROM org_usage_snapshots WHERE at < $1")
            .bind(now - 31 * DAY_MS)
            .execute(self.db.pool())
            .await?;

        report.budgets = self
            .alerts
            .evaluate(&self.db, &self.salesforce, now)
            .await?;
        Ok(report)
    }

    /// The files to consider, and the integration licence row, in one composite request
    /// (one API call) plus a call per further page of files.
    async fn list(
        &self,
        now: i64,
        cursor: Option<i64>,
    ) -> Result<
        (
            Vec<EventLogFileRow>,
            Result<Option<LicenceRow>, salesforce::Error>,
        ),
        CollectError,
    > {
        let query = EventLogQuery {
            event_type: API_TOTAL_USAGE.to_string(),
            // Hourly where the org makes them, daily files too: an hour is counted from
            // its hourly file when there is one, else from the day's (`usage_effective`).
            interval: None,
            log_date_from: Some(to_datetime(now - self.look_back.as_millis() as i64)),
            created_after: cursor.map(|c| to_datetime(c - self.overlap.as_millis() as i64)),
        };
        let licences = Soql::select(&["Id", "Name", "TotalLicenses", "UsedLicenses"])
            .from("UserLicense")
            .filter(crate::licence::integration_licence())
            .limit(1)
            .build()
            .map_err(|e| CollectError::Listing(e.into()))?;
        let soql = query
            .to_soql()
            .map_err(|e| CollectError::Listing(e.into()))?;
        let (files_ref, licences_ref) = (reference("files")?, reference("licences")?);
        let mut request = CompositeRequest::new(false);
        request
            .push(Subrequest::query(files_ref.clone(), &soql))
            .and_then(|r| r.push(Subrequest::query(licences_ref.clone(), &licences)))
            .map_err(CollectError::Listing)?;
        let response = self
            .salesforce
            .composite(&request)
            .await
            .map_err(CollectError::Listing)?;
        let page = |reference: &ReferenceId| -> Result<serde_json::Value, salesforce::Error> {
            response
                .get(reference)
                .cloned()
                .ok_or_else(|| decode_error("composite", "a subrequest has no result".into()))?
                .into_result()
        };
        let mut files: QueryPage<EventLogFileRow> = page(&files_ref)
            .and_then(|body| {
                serde_json::from_value(body)
                    .map_err(|e| decode_error("EventLogFile query", e.to_string()))
            })
            .map_err(CollectError::Listing)?;
        let mut rows = std::mem::take(&mut files.records);
        while let (false, Some(next)) = (files.done, files.next_records_url.take()) {
            files = self
                .salesforce
                .query_more(&next)
                .await
                .map_err(CollectError::Listing)?;
            rows.append(&mut files.records);
        }
        let licence = page(&licences_ref).and_then(|body| {
            let page: QueryPage<LicenceRow> = serde_json::from_value(body)
                .map_err(|e| decode_error("UserLicense query", e.to_string()))?;
            Ok(page.records.into_iter().next())
        });
        Ok((rows, licence))
    }

    async fn handle(
        &self,
        file: &EventLogFileRow,
        cursor_may_move: bool,
    ) -> Result<Handled, FileError> {
        let file_id = file.id.as_str();
        let read: Option<i64> = sqlx::query_scalar("SELECT 1 FROM usage_files WHERE file_id = $1")
            .bind(file_id)
            .fetch_optional(self.db.pool())
            .await?;
        if read.is_some() {
            return Ok(Handled::AlreadyRead);
        }
        let interval = match file.interval {
            Some(LogInterval::Daily) | None => LogInterval::Daily,
            Some(LogInterval::Hourly) => LogInterval::Hourly,
            Some(LogInterval::Unknown) => {
                return Err(FileError::Unreadable(
                    "its Interval is neither Daily nor Hourly".into(),
                ));
            }
        };
        let period_start = file.log_date.timestamp_millis();
        let period_end = period_start
            + match interval {
                LogInterval::Hourly => HOUR_MS,
                _ => DAY_MS,
            };
        let created = created_ms(file);
        // Hourly files are deltas: none supersedes another.
        let replaces = interval != LogInterval::Hourly;
        if replaces && self.newer_copy(interval, period_start, created).await? {
            let mut tx = self.db.begin_write().await?;
            record_file(
                &mut tx,
                self.clock.now_ms(),
                file,
                interval,
                FileRecord::superseded(0),
            )
            .await?;
            if cursor_may_move {
                advance_cursor(&mut tx, created).await?;
            }
            tx.commit().await?;
            return Ok(Handled::Superseded);
        }

        let (totals, bytes) = self.download(file).await?;
        let (inside, outside): (Vec<_>, Vec<_>) = totals
            .hours
            .iter()
            .partition(|h| (period_start..period_end).contains(&h.hour_ms));
        let rows_outside: u64 = outside.iter().map(|h| h.totals.calls).sum();

        let mut tx = self.db.begin_write().await?;
        // Checked again under the write lock: another copy may have been stored meanwhile.
        let current: Option<i64> = sqlx::query_scalar(
            "SELECT created_date FROM usage_periods WHERE log_interval = $1 AND period_start = $2",
        )
        .bind(interval.as_str())
        .bind(period_start)
        .fetch_optional(&mut *tx.tx)
        .await?;
        if replaces && current.is_some_and(|c| c > created) {
            record_file(
                &mut tx,
                self.clock.now_ms(),
                file,
                interval,
                FileRecord::superseded(bytes),
            )
            .await?;
            tx.commit().await?;
            return Ok(Handled::Superseded);
        }
        if replaces {
            sqlx::query("DELETE FROM usage_hours WHERE log_interval = $1 AND period_start = $2")
                .bind(interval.as_str())
                .bind(period_start)
                .execute(&mut *tx.tx)
                .await?;
        }
        for chunk in inside.chunks(200) {
            let sql = insert_hours_sql(chunk.len());
            let mut query = sqlx::query(&sql);
            for hour in chunk {
                query = query
                    .bind(interval.as_str())
                    .bind(period_start)
                    .bind(&hour.user_id15)
                    .bind(hour.hour_ms)
                    .bind(hour.totals.calls as i64)
                    .bind(hour.totals.counted as i64);
            }
            query.execute(&mut *tx.tx).await?;
        }
        // The objects called per user and day, for access reviews (usage::entities).
        super::entities::store(
            &mut tx.tx,
            interval.as_str(),
            period_start,
            replaces,
            &totals.entities,
        )
        .await?;
        sqlx::query(
            "INSERT INTO usage_periods (log_interval, period_start, file_id, created_date) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (log_interval, period_start) DO UPDATE SET file_id = excluded.file_id, created_date = excluded.created_date \
             WHERE excluded.created_date >= usage_periods.created_date",
        )
        .bind(interval.as_str())
        .bind(period_start)
        .bind(file_id)
        .bind(created)
        .execute(&mut *tx.tx)
        .await?;
        // What the anomaly rules read, per user and hour (usage::windows).
        let windows: Vec<_> = totals
            .windows
            .iter()
            .filter(|w| (period_start..period_end).contains(&w.hour_ms))
            .collect();
        super::windows::store(&mut tx, interval.as_str(), period_start, &windows, replaces).await?;
        // Where each user called from, over all time. No longer read: the IP-range rule
        // (usage::anomaly) reads CLIENT_IP per hour from usage_window_values. Left until the
        // ingest changes of issue 18 are merged, then to be dropped with the table.
        for ip in &totals.client_ips {
            sqlx::query(
                "INSERT INTO usage_client_ips (user_key, client_ip, calls, last_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (user_key, client_ip) DO UPDATE SET calls = usage_client_ips.calls + excluded.calls, \
                 last_at = CASE WHEN excluded.last_at > usage_client_ips.last_at THEN excluded.last_at ELSE usage_client_ips.last_at END",
            )
            .bind(&ip.user_id15)
            .bind(ip.ip.chars().take(64).collect::<String>())
            .bind(ip.calls as i64)
            .bind(ip.last_at_ms)
            .execute(&mut *tx.tx)
            .await?;
        }
        let now = self.clock.now_ms();
        for (user, name) in &totals.usernames {
            sqlx::query(
                "INSERT INTO usage_users (user_key, username, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_key) DO UPDATE SET username = excluded.username, updated_at = excluded.updated_at",
            )
            .bind(user)
            .bind(name.chars().take(200).collect::<String>())
            .bind(now)
            .execute(&mut *tx.tx)
            .await?;
        }
        let read = FileRecord {
            outcome: "read",
            rows: totals.rows,
            rows_outside,
            bytes,
        };
        record_file(&mut tx, self.clock.now_ms(), file, interval, read).await?;
        if totals.skipped > 0 {
            sqlx::query("UPDATE usage_files SET rows_skipped = $1 WHERE file_id = $2")
                .bind(totals.skipped as i64)
                .bind(file_id)
                .execute(&mut *tx.tx)
                .await?;
            tracing::warn!(file = %file_id, skipped = totals.skipped, "skipped malformed rows of an ApiTotalUsage file");
        }
        if cursor_may_move {
            advance_cursor(&mut tx, created).await?;
        }
        if let Some(hook) = &self.hook {
            hook(Checkpoint::BeforeCommit {
                file_id: file_id.to_string(),
            })
            .await;
        }
        tx.commit().await?;
        tracing::info!(file = %file_id, interval = interval.as_str(), rows = totals.rows, "read an ApiTotalUsage file");
        Ok(Handled::Read { rows: totals.rows })
    }

    async fn newer_copy(
        &self,
        interval: LogInterval,
        period_start: i64,
        created: i64,
    ) -> Result<bool, sqlx::Error> {
        let current: Option<i64> = sqlx::query_scalar(
            "SELECT created_date FROM usage_periods WHERE log_interval = $1 AND period_start = $2",
        )
        .bind(interval.as_str())
        .bind(period_start)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(current.is_some_and(|c| c > created))
    }

    /// Streams the file through the reader, retrying a download that breaks off or comes
    /// up short of the length the org announced. A file whose CSV is malformed is not
    /// retried.
    async fn download(&self, file: &EventLogFileRow) -> Result<(FileTotals, i64), FileError> {
        let mut last_error = String::new();
        for attempt in 1..=self.download_attempts {
            match self.download_once(file).await {
                Ok(done) => return Ok(done),
                Err(Attempt::Malformed(e)) => {
                    return Err(FileError::Unreadable(format!("its CSV is malformed: {e}")));
                }
                Err(Attempt::Broken(e)) => {
                    tracing::info!(file = %file.id, attempt, error = %e, "an ApiTotalUsage download broke off; retrying");
                    last_error = e;
                }
            }
            if attempt < self.download_attempts {
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
        }
        Err(FileError::Unreadable(format!(
            "the download failed {} times; the last: {last_error}",
            self.download_attempts
        )))
    }

    async fn download_once(&self, file: &EventLogFileRow) -> Result<(FileTotals, i64), Attempt> {
        let stream = self
            .salesforce
            .download_log_file(&file.id)
            .await
            .map_err(|e| Attempt::Broken(e.to_string()))?;
        let mut stream = std::pin::pin!(stream);
        let mut ingest = Ingest::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| Attempt::Broken(e.to_string()))?;
            ingest.feed(&chunk).map_err(Attempt::Malformed)?;
        }
        let bytes = ingest.bytes_read();
        if let Some(expected) = file.log_file_length
            && expected != bytes
        {
            return Err(Attempt::Broken(format!(
                "{bytes} bytes arrived of the {expected} the org announced"
            )));
        }
        let totals = ingest.finish().map_err(Attempt::Malformed)?;
        Ok((totals, bytes as i64))
    }
}

enum Attempt {
    Broken(String),
    Malformed(IngestError),
}

enum FileError {
    Database(sqlx::Error),
    Unreadable(String),
}

impl From<sqlx::Error> for FileError {
    fn from(e: sqlx::Error) -> Self {
        FileError::Database(e)
    }
}

fn decode_error(context: &str, message: String) -> salesforce::Error {
    salesforce::Error::Decode {
        context: context.to_string(),
        message,
    }
}

fn reference(name: &str) -> Result<ReferenceId, CollectError> {
    ReferenceId::new(name).map_err(CollectError::Listing)
}

fn created_ms(file: &EventLogFileRow) -> i64 {
    file.created_date
        .unwrap_or(file.log_date)
        .timestamp_millis()
}

fn insert_hours_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|row| {
            let columns: Vec<String> = (1..=6).map(|c| format!("${}", row * 6 + c)).collect();
            format!("({})", columns.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO usage_hours (log_interval, period_start, user_key, hour_start, calls, counted) VALUES {} \
         ON CONFLICT (log_interval, period_start, user_key, hour_start) \
         DO UPDATE SET calls = usage_hours.calls + excluded.calls, counted = usage_hours.counted + excluded.counted",
        values.join(", ")
    )
}

/// What became of one usage file, as `usage_files` records it.
struct FileRecord {
    /// `read` or `superseded`.
    outcome: &'static str,
    rows: u64,
    /// Rows for hours outside the file's period (not counted).
    rows_outside: u64,
    bytes: i64,
}

impl FileRecord {
    /// A file not counted because a newer copy of its period was read (after downloading
    /// `bytes` of it, or none).
    fn superseded(bytes: i64) -> Self {
        Self {
            outcome: "superseded",
            rows: 0,
            rows_outside: 0,
            bytes,
        }
    }
}

async fn record_file(
    tx: &mut crate::db::WriteTx,
    read_at: i64,
    file: &EventLogFileRow,
    interval: LogInterval,
    record: FileRecord,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO usage_files (file_id, log_interval, period_start, created_date, outcome, rows_read, rows_outside, bytes, read_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(file.id.as_str())
    .bind(interval.as_str())
    .bind(file.log_date.timestamp_millis())
    .bind(created_ms(file))
    .bind(record.outcome)
    .bind(record.rows as i64)
    .bind(record.rows_outside as i64)
    .bind(record.bytes)
    .bind(read_at)
    .execute(&mut *tx.tx)
    .await?;
    Ok(())
}

async fn advance_cursor(tx: &mut crate::db::WriteTx, created: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE usage_collector SET created_cursor = CASE WHEN created_cursor IS NULL OR created_cursor < $1 THEN $1 ELSE created_cursor END WHERE id = 1",
    )
    .bind(created)
    .execute(&mut *tx.tx)
    .await?;
    Ok(())
}

/// Frees the collector's lease (a single SQLite instance at start-up: whoever held it died).
pub async fn release_lease(db: &Database) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE usage_collector SET lease_owner = NULL, lease_expires_at = NULL WHERE id = 1",
    )
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Where the collector stands, for the dashboard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectorStatus {
    pub last_run_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub last_error: Option<String>,
    pub files_read: i64,
    /// The newest CreatedDate read.
    pub cursor: Option<i64>,
}

pub async fn status(db: &Database) -> Result<CollectorStatus, sqlx::Error> {
    let (last_run_at, last_success_at, last_error, cursor) = sqlx::query_as(
        "SELECT last_run_at, last_success_at, last_error, created_cursor FROM usage_collector WHERE id = 1",
    )
    .fetch_one(db.pool())
    .await?;
    let files_read: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM usage_files WHERE outcome = 'read'")
            .fetch_one(db.pool())
            .await?;
    Ok(CollectorStatus {
        last_run_at,
        last_success_at,
        last_error,
        files_read,
        cursor,
    })
}

impl crate::Portal {
    /// Frees the collector's lease a previous process left (single-instance start-up).
    pub async fn release_usage_lease(&self) -> Result<(), sqlx::Error> {
        release_lease(&self.db).await
    }
}
