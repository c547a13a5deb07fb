//! Sign-in sessions kept in the portal's own database (SQLite or PostgreSQL), so that they
//! survive restarts and are shared by every instance behind a load balancer.
//!
//! The table holds the SHA-256 of each session id, not the id: whoever reads the database
//! (a backup, a replica) cannot use the sessions in it. A session also has an absolute
//! lifetime from when it began (`SESSION_MAX_HOURS`), however active it stays.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::AnyPool;
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

/// A `tower-sessions` store over the `sessions` table.
#[derive(Clone, Debug)]
pub struct DbSessionStore {
    pool: AnyPool,
    max_lifetime: Duration,
}

/// What the table keeps for a session id.
fn key(id: &Id) -> String {
    services::tokens::hash(&id.to_string())
}

impl DbSessionStore {
    pub fn new(pool: AnyPool, max_lifetime: Duration) -> Self {
        Self { pool, max_lifetime }
    }

    /// Sessions that began before this (Unix seconds) are over.
    fn born_after(&self) -> i64 {
        OffsetDateTime::now_utc().unix_timestamp() - self.max_lifetime.as_secs() as i64
    }

    /// Removes sessions that have expired or outlived their lifetime; returns how many.
    pub async fn delete_expired(&self) -> Result<u64, sqlx::Error> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR created_at <= $2")
            .bind(now)
            .bind(self.born_after())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

fn backend(e: sqlx::Error) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

fn encode(record: &Record) -> session_store::Result<String> {
    serde_json::to_string(&record.data).map_err(|e| session_store::Error::Encode(e.to_string()))
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let data = encode(record)?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        // A fresh random id colliding with a live one is astronomically unlikely, but the
        // primary key makes it detectable, so pick another id instead of overwriting.
        loop {
            let inserted = sqlx::query(
                "INSERT INTO sessions (id, data, expires_at, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(key(&record.id))
            .bind(&data)
            .bind(record.expiry_date.unix_timestamp())
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
            if inserted.rows_affected() == 1 {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    /// Updates a session that exists; never brings back one that was ended meanwhile (by
    /// sign-out, or by a re-check that found the person deactivated) in another request.
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        sqlx::query("UPDATE sessions SET data = $1, expires_at = $2 WHERE id = $3")
            .bind(encode(record)?)
            .bind(record.expiry_date.unix_timestamp())
            .bind(key(&record.id))
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT data, expires_at FROM sessions WHERE id = $1 AND expires_at > $2 AND created_at > $3",
        )
        .bind(key(id))
        .bind(OffsetDateTime::now_utc().unix_timestamp())
        .bind(self.born_after())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        let Some((data, expires_at)) = row else {
            return Ok(None);
        };
        let data =
            serde_json::from_str(&data).map_err(|e| session_store::Error::Decode(e.to_string()))?;
        let expiry_date = OffsetDateTime::from_unix_timestamp(expires_at)
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(key(id))
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}
