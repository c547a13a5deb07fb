//! A fresh, migrated database per test on SQLite or PostgreSQL.
//!
//! PostgreSQL tests run when the server at `PORTCULLIS_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) answers. When it does not, they print a
//! loud SKIPPED line — unless `CI` is set: then they fail.

use std::io::Write;
use std::time::Duration;

use sqlx::{Connection, Executor};
use tokio::sync::OnceCell;

use services::db::{Database, DatabaseKind};

/// Which engine a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

pub fn postgres_admin_url() -> String {
    std::env::var("PORTCULLIS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

static POSTGRES: OnceCell<Result<(), String>> = OnceCell::const_new();

/// Whether PostgreSQL tests can run. Panics in CI when they cannot.
pub async fn postgres_available(test: &str) -> bool {
    let status = POSTGRES
        .get_or_init(|| async {
            match tokio::time::timeout(
                Duration::from_secs(5),
                sqlx::PgConnection::connect(&postgres_admin_url()),
            )
            .await
            {
                Ok(Ok(conn)) => {
                    let _ = conn.close().await;
                    Ok(())
                }
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("connection timed out".to_string()),
            }
        })
        .await;
    match status {
        Ok(()) => true,
        Err(reason) if required() => panic!(
            "PostgreSQL is required (CI is set) but unreachable at {}: {reason}",
            postgres_admin_url()
        ),
        Err(reason) => {
            // Straight to stderr: the harness captures eprintln! of passing tests.
            let _ = writeln!(
                std::io::stderr(),
                "\n!!! SKIPPED {test} on PostgreSQL: no server at {} ({reason}). Set CI=1 to make this a failure.\n",
                postgres_admin_url()
            );
            false
        }
    }
}

/// A fresh, empty PostgreSQL database, dropped when this value is dropped.
pub struct PgDatabase {
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create() -> Self {
        let name = format!("portcullis_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&postgres_admin_url())
            .await
            .expect("connect to PostgreSQL");
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create a test database");
        let _ = admin.close().await;
        let mut url = reqwest::Url::parse(&postgres_admin_url()).expect("admin URL");
        url.set_path(&format!("/{name}"));
        Self {
            name,
            url: url.to_string(),
        }
    }

    /// Drops the database now, with its open connections.
    pub async fn drop_now(name: &str) {
        if let Ok(mut admin) = sqlx::PgConnection::connect(&postgres_admin_url()).await {
            let _ = admin
                .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                .await;
            let _ = admin.close().await;
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(PgDatabase::drop_now(&name));
            }
        })
        .join();
    }
}

/// A migrated database for one test; keeps its files or PostgreSQL database alive.
pub struct TestDb {
    pub db: Database,
    pub engine: Engine,
    pub url: String,
    pub pg: Option<PgDatabase>,
    pub dir: tempfile::TempDir,
}

impl TestDb {
    /// A fresh database, or `None` when PostgreSQL is unavailable (outside CI).
    pub async fn new(engine: Engine) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (url, pg, kind, file) = match engine {
            Engine::Sqlite => {
                let file = dir.path().join("portcullis.db");
                (
                    format!("sqlite://{}?mode=rwc", file.display()),
                    None,
                    DatabaseKind::Sqlite,
                    Some(file),
                )
            }
            Engine::Postgres => {
                let test = std::thread::current()
                    .name()
                    .unwrap_or("a test")
                    .to_string();
                if !postgres_available(&test).await {
                    return None;
                }
                let pg = PgDatabase::create().await;
                (pg.url.clone(), Some(pg), DatabaseKind::Postgres, None)
            }
        };
        let db = Database::connect(&url, kind, 5, "test database", file.as_deref())
            .await
            .expect("open the test database");
        db.migrate("test database")
            .await
            .expect("migrate the test database");
        Some(Self {
            db,
            engine,
            url,
            pg,
            dir,
        })
    }
}

/// Appends `n` varied entries to the audit log, properly chained, in bulk (for paging tests
/// and the audit page's benchmark): actors, actions, targets and outcomes cycle through
/// realistic values; times start at `start_ms` and advance `step_ms` per entry; one entry
/// in 1,000 mentions "needle" in its details. Returns the last sequence number.
pub async fn audit_fill(db: &Database, n: i64, start_ms: i64, step_ms: i64) -> i64 {
    audit_fill_with(db, n, start_ms, step_ms, |seq| {
        let mut details = serde_json::json!({
            "note": format!("generated entry {seq}"),
            "api_calls": seq % 17,
        });
        if seq % 1_000 == 0 {
            details["note"] = serde_json::json!(format!("the Needle in entry {seq}"));
        }
        details
    })
    .await
}

/// [`audit_fill`] with each entry's details made by `details` from its seq (the audit
/// search benchmark's realistic ones).
pub async fn audit_fill_with(
    db: &Database,
    n: i64,
    start_ms: i64,
    step_ms: i64,
    details: impl Fn(i64) -> serde_json::Value,
) -> i64 {
    use services::audit::{AuditAction, Entry, canonical_json};
    use sqlx::Row;

    const ACTORS: &[&str] = &[
        "admin@acme-sandbox.example",
        "approver@acme-sandbox.example",
        "system",
        "contractor:dev@kinetic.example",
        "contractor:ops@northwind.example",
    ];
    const TYPES: &[&str] = &["request", "grant", "user", "package"];
    let mut seq = 0i64;
    let mut done = 0i64;
    while done < n {
        let batch = (n - done).min(1_000);
        let mut tx = db.pool().begin().await.expect("begin");
        // The head is read under its write lock, as `append` does, so entries the portal
        // appends meanwhile (at start-up, say) chain in before or after a batch.
        let head = sqlx::query(
            "UPDATE audit_head SET last_seq = last_seq WHERE id = 1 RETURNING last_seq, last_hash, last_at",
        )
        .fetch_one(&mut *tx)
        .await
        .expect("read the audit head");
        seq = head.get("last_seq");
        let mut prev: String = head.get("last_hash");
        let mut at: i64 = head.get::<i64, _>("last_at").max(start_ms + step_ms * done);
        let mut entries = Vec::with_capacity(batch as usize);
        for _ in 0..batch {
            seq += 1;
            at += step_ms;
            let i = seq as usize;
            let details = details(seq);
            let mut entry = Entry {
                seq,
                at,
                actor: ACTORS[i % ACTORS.len()].to_string(),
                actor_ip: format!("192.0.2.{}", i % 250),
                user_agent: "audit-fill".into(),
                action: AuditAction::ALL[i % AuditAction::ALL.len()].to_string(),
                target_type: TYPES[i % TYPES.len()].to_string(),
                target_id: format!("target-{}", i % 5_000),
                outcome: ["success", "success", "success", "failure", "denied"][(i / 7) % 5]
                    .to_string(),
                details: canonical_json(&details),
                prev_hash: prev.clone(),
                hash: String::new(),
            };
            entry.hash = Entry::compute_hash(&entry.prev_hash, &entry.canonical());
            prev = entry.hash.clone();
            entries.push(entry);
        }
        let sql = services::audit::insert_sql(entries.len());
        let query = entries
            .iter()
            .fold(sqlx::query(&sql), services::audit::bind_entry);
        query.execute(&mut *tx).await.expect("insert audit entries");
        sqlx::query(
            "UPDATE audit_head SET last_seq = $1, last_hash = $2, last_at = $3 WHERE id = 1",
        )
        .bind(seq)
        .bind(&prev)
        .bind(at)
        .execute(&mut *tx)
        .await
        .expect("move the audit head");
        tx.commit().await.expect("commit");
        done += batch;
    }
    seq
}
