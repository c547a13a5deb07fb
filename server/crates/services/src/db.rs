//! The database: one pool over SQLite (the embedded default) or PostgreSQL (several portal
//! instances), with the migrations for that engine. Queries are written once, with `$1`
//! placeholders, which both engines accept.
//!
//! Writes go through [`Database::begin_write`]: on SQLite it also takes a process-wide lock,
//! because a deferred SQLite transaction that read before writing fails (rather than waits)
//! when another writer committed in between; PostgreSQL transactions need no such help.
//!
//! Rows become types with `#[derive(sqlx::FromRow)]` (over `AnyRow`, as every query here
//! runs on the `Any` pool); statements put together from optional filters use
//! [`QueryBuilder`], which numbers its placeholders as the written queries do.

use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyArguments, AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::query::{Query, QueryAs, QueryScalar};
use sqlx::{Any, AnyPool, Executor, FromRow, Transaction};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../../migrations/postgres");

/// Which engine a database runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

/// Why the database could not be opened. Messages name `DATABASE_URL` and never contain
/// its password (callers pass the redacted URL for display).
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("DATABASE_URL: cannot create the SQLite database {path} or its directory: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("DATABASE_URL: cannot open the database {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("DATABASE_URL: applying the migrations to {url} failed: {source}")]
    Migrate {
        url: String,
        source: sqlx::migrate::MigrateError,
    },
}

/// Creates a SQLite database file that does not exist yet readable by this user only
/// (0600; SQLite gives its -wal and -shm files the same mode), in a directory created 0700.
fn create_private_file(file: &std::path::Path) -> std::io::Result<()> {
    if file.exists() {
        return Ok(());
    }
    if let Some(parent) = file.parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(file).map(drop)
}

/// A handle to the portal's database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Database {
    pool: AnyPool,
    kind: DatabaseKind,
    write_lock: Arc<tokio::sync::Mutex<()>>,
}

/// A write transaction (holding the SQLite write lock while it lives).
pub struct WriteTx {
    pub tx: Transaction<'static, Any>,
    _guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = Transaction<'static, Any>;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// A statement put together from optional parts (search filters, a paging cursor), each
/// value bound where it is pushed, in the manner of `sqlx::QueryBuilder`. That one cannot
/// serve here: over `Any` it writes `?` placeholders, which PostgreSQL rejects; this one
/// writes `$1, $2, …`, which both engines accept.
#[derive(Debug, Clone, Default)]
pub struct QueryBuilder {
    sql: String,
    binds: Vec<Bind>,
    /// Whether a WHERE condition was started (the next one is joined with AND).
    conditions: bool,
}

/// A value bound to a [`QueryBuilder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    Text(String),
    Int(i64),
}

impl From<String> for Bind {
    fn from(value: String) -> Self {
        Bind::Text(value)
    }
}

impl From<&str> for Bind {
    fn from(value: &str) -> Self {
        Bind::Text(value.to_string())
    }
}

impl From<i64> for Bind {
    fn from(value: i64) -> Self {
        Bind::Int(value)
    }
}

impl QueryBuilder {
    pub fn new(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            ..Self::default()
        }
    }

    /// Appends SQL text (never a user's value: those go through [`Self::push_bind`]).
    pub fn push(&mut self, sql: impl std::fmt::Display) -> &mut Self {
        use std::fmt::Write;
        let _ = write!(self.sql, "{sql}");
        self
    }

    /// Appends a placeholder for `value`.
    pub fn push_bind(&mut self, value: impl Into<Bind>) -> &mut Self {
        self.binds.push(value.into());
        let n = self.binds.len();
        self.push(format_args!("${n}"))
    }

    /// Appends placeholders for `values`, separated by commas (for `IN (…)`).
    pub fn push_binds<T: Into<Bind>>(&mut self, values: impl IntoIterator<Item = T>) -> &mut Self {
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.push_bind(value);
        }
        self
    }

    /// Starts the next condition of the WHERE clause: ` WHERE ` for the first, ` AND `
    /// after it.
    pub fn and_where(&mut self) -> &mut Self {
        let joint = if self.conditions { " AND " } else { " WHERE " };
        self.conditions = true;
        self.push(joint)
    }

    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The statement with its values bound, to execute or fetch rows from.
    pub fn build(&self) -> Query<'_, Any, AnyArguments<'_>> {
        self.binds
            .iter()
            .fold(sqlx::query(&self.sql), |query, bind| match bind {
                Bind::Text(text) => query.bind(text.as_str()),
                Bind::Int(value) => query.bind(*value),
            })
    }

    /// The statement with its values bound, fetching rows as `T`.
    pub fn build_query_as<T>(&self) -> QueryAs<'_, Any, T, AnyArguments<'_>>
    where
        T: for<'r> FromRow<'r, AnyRow>,
    {
        self.binds
            .iter()
            .fold(sqlx::query_as(&self.sql), |query, bind| match bind {
                Bind::Text(text) => query.bind(text.as_str()),
                Bind::Int(value) => query.bind(*value),
            })
    }

    /// The statement with its values bound, fetching the first column as `T`.
    pub fn build_query_scalar<T>(&self) -> QueryScalar<'_, Any, T, AnyArguments<'_>>
    where
        (T,): for<'r> FromRow<'r, AnyRow>,
    {
        self.binds
            .iter()
            .fold(sqlx::query_scalar(&self.sql), |query, bind| match bind {
                Bind::Text(text) => query.bind(text.as_str()),
                Bind::Int(value) => query.bind(*value),
            })
    }
}

impl Database {
    /// Opens a pool and checks that the database answers. `display` is the URL with any
    /// password hidden, for messages.
    pub async fn connect(
        url: &str,
        kind: DatabaseKind,
        max_connections: u32,
        display: &str,
        sqlite_file: Option<&std::path::Path>,
    ) -> Result<Self, DatabaseError> {
        sqlx::any::install_default_drivers();
        if let Some(file) = sqlite_file {
            create_private_file(file).map_err(|source| DatabaseError::CreateDir {
                path: file.display().to_string(),
                source,
            })?;
        }
        let connect_error = |source| DatabaseError::Connect {
            url: display.to_string(),
            source,
        };
        let options: AnyConnectOptions = url.parse().map_err(connect_error)?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if kind == DatabaseKind::Sqlite {
                        // WAL lets readers proceed during a write; the busy timeout makes
                        // writers from other processes wait for each other.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; \
                             PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(connect_error)?;
        let db = Self {
            pool,
            kind,
            write_lock: Arc::new(tokio::sync::Mutex::new(())),
        };
        db.ping().await.map_err(connect_error)?;
        Ok(db)
    }

    /// Applies the migrations of this database's engine that are not applied yet.
    pub async fn migrate(&self, display: &str) -> Result<(), DatabaseError> {
        let migrator = match self.kind {
            DatabaseKind::Sqlite => &SQLITE_MIGRATIONS,
            DatabaseKind::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&self.pool)
            .await
            .map_err(|source| DatabaseError::Migrate {
                url: display.to_string(),
                source,
            })
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    /// Begins a transaction that will write.
    ///
    /// On SQLite the transaction takes the write lock at `BEGIN IMMEDIATE`: a deferred
    /// transaction that reads first and writes later fails at once with "database is
    /// locked" (the busy timeout does not apply) when another connection, e.g. a plain
    /// `UPDATE` or the session store, committed in between.
    pub async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        let (guard, tx) = match self.kind {
            DatabaseKind::Sqlite => (
                Some(self.write_lock.clone().lock_owned().await),
                self.pool.begin_with("BEGIN IMMEDIATE").await?,
            ),
            DatabaseKind::Postgres => (None, self.pool.begin().await?),
        };
        Ok(WriteTx { tx, _guard: guard })
    }

    /// Closes every connection; used at shutdown.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn sqlx_query_builder_over_any_writes_question_marks() {
        // Why [`QueryBuilder`] exists: should sqlx number `Any` placeholders one day, this
        // fails and sqlx's own builder can take over.
        let mut query = sqlx::QueryBuilder::<Any>::new("SELECT ");
        query.push_bind(1i64);
        assert_eq!(query.sql(), "SELECT ?");
    }

    #[test]
    fn conditions_are_joined_and_placeholders_numbered() {
        let mut query = QueryBuilder::new("SELECT key FROM settings");
        query
            .and_where()
            .push("key IN (")
            .push_binds(["a", "b"])
            .push(")");
        query.and_where().push("updated_at >= ").push_bind(5i64);
        query.push(" ORDER BY key");
        assert_eq!(
            query.sql(),
            "SELECT key FROM settings WHERE key IN ($1, $2) AND updated_at >= $3 ORDER BY key"
        );
        assert_eq!(QueryBuilder::new("SELECT 1").sql(), "SELECT 1");
    }
}
