//! The audit log: append-only (the database refuses UPDATE and DELETE), hash-chained (each
//! entry's hash covers the previous entry's hash and its own canonical form), anchored now
//! and then with a key kept outside the database ([`anchor`]), and written in the same
//! transaction as the change it records.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{Any, Transaction};

use crate::clock::{Clock, SystemClock};
use crate::db::Database;

pub use shared::audit::{AuditAction, Target};

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who did something, from where.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// A Salesforce username, `contractor:<email>`, or `system`.
    pub name: String,
    pub ip: String,
    pub user_agent: String,
}

impl Actor {
    pub fn system() -> Self {
        Self {
            name: "system".into(),
            ip: String::new(),
            user_agent: String::new(),
        }
    }
}

/// Whether the action happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

/// An event to record with [`append`]: what [`record`] and [`record_outcome`] write, the
/// only ways in, so every entry's action is one of [`AuditAction::ALL`].
#[derive(Debug, Clone)]
struct Event<'a> {
    actor: &'a Actor,
    /// `object.action`, e.g. `request.submitted`.
    action: AuditAction,
    target_type: Target,
    target_id: &'a str,
    outcome: Outcome,
    /// Never secrets: tokens, codes and credentials are not audit details.
    details: Value,
}

/// A stored entry (a row of `audit_log`, selected as [`COLUMNS`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Entry {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub actor_ip: String,
    pub user_agent: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub outcome: String,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// JSON with object keys sorted, so the same content always hashes the same.
pub fn canonical_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        Value::String((*k).clone()),
                        canonical_json(&map[*k])
                    )
                })
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(canonical_json)
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.to_string(),
    }
}

impl Entry {
    /// The canonical form the hash covers (everything but the hashes themselves).
    pub fn canonical(&self) -> String {
        canonical_json(&serde_json::json!([
            self.seq,
            self.at,
            self.actor,
            self.actor_ip,
            self.user_agent,
            self.action,
            self.target_type,
            self.target_id,
            self.outcome,
            self.details,
        ]))
    }

    pub fn compute_hash(prev_hash: &str, canonical: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(prev_hash.as_bytes());
        hasher.update(b"\n");
        hasher.update(canonical.as_bytes());
        hex::encode(hasher.finalize())
    }

    /// The details as indented JSON, for reading.
    pub fn pretty_details(&self) -> String {
        serde_json::from_str::<Value>(&self.details)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| self.details.clone())
    }

    /// The entry as one JSON object: the stored record exactly as it is hashed (every
    /// column, `details` as the canonical text the hash covers) plus `at_utc`, the time in
    /// words. The JSON Lines export writes it a line each, and the audit stream
    /// (`audit_stream`) sends it to every sink, so a receiver can check the chain from
    /// what it received alone (parse it back into an [`Entry`] and feed a [`ChainCheck`]).
    pub fn json(&self) -> Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        value["at_utc"] = Value::String(crate::clock::rfc3339(self.at));
        value
    }

    /// [`Entry::json`] as text, without a line break.
    pub fn json_line(&self) -> String {
        self.json().to_string()
    }

    /// The entry in a row selected as [`COLUMNS`] (for callers without `sqlx::FromRow` in
    /// scope).
    pub fn from_row(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        <Self as sqlx::FromRow<'_, sqlx::any::AnyRow>>::from_row(row)
    }
}

pub const COLUMNS: &str = "seq, at, actor, actor_ip, user_agent, action, target_type, target_id, outcome, details, prev_hash, hash";

/// `INSERT INTO audit_log` of `rows` entries, with numbered placeholders (which the Any
/// driver passes to either database); bind each entry with [`bind_entry`].
pub fn insert_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|row| {
            let columns: Vec<String> = (1..=12).map(|c| format!("${}", row * 12 + c)).collect();
            format!("({})", columns.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO audit_log ({COLUMNS}) VALUES {}",
        values.join(", ")
    )
}

/// Binds an entry's columns to `query`, in [`COLUMNS`] order.
pub fn bind_entry<'q>(
    query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    entry: &'q Entry,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(entry.seq)
        .bind(entry.at)
        .bind(&entry.actor)
        .bind(&entry.actor_ip)
        .bind(&entry.user_agent)
        .bind(&entry.action)
        .bind(&entry.target_type)
        .bind(&entry.target_id)
        .bind(&entry.outcome)
        .bind(&entry.details)
        .bind(&entry.prev_hash)
        .bind(&entry.hash)
}

/// Records, in `tx`, that `actor` did `action` to the `target` with id `target_id`, and it
/// happened; returns the new entry's sequence number. `details` are never secrets: tokens,
/// codes and credentials are not audit details.
pub async fn record(
    tx: &mut Transaction<'static, Any>,
    actor: &Actor,
    action: AuditAction,
    target: Target,
    target_id: &str,
    details: Value,
) -> Result<i64, sqlx::Error> {
    record_outcome(
        tx,
        actor,
        action,
        Outcome::Success,
        target,
        target_id,
        details,
    )
    .await
}

/// [`record`] for an action that failed or was refused ([`Outcome::Failure`],
/// [`Outcome::Denied`]), or whose outcome is decided at run time.
pub async fn record_outcome(
    tx: &mut Transaction<'static, Any>,
    actor: &Actor,
    action: AuditAction,
    outcome: Outcome,
    target: Target,
    target_id: &str,
    details: Value,
) -> Result<i64, sqlx::Error> {
    append(
        tx,
        Event {
            actor,
            action,
            target_type: target,
            target_id,
            outcome,
            details,
        },
    )
    .await
}

/// Appends an event in `tx`; returns the new entry's sequence number.
async fn append(tx: &mut Transaction<'static, Any>, event: Event<'_>) -> Result<i64, sqlx::Error> {
    // Taking the head row first serialises appends (a row lock on PostgreSQL, the write
    // lock on SQLite), so the chain never forks.
    let (seq, prev_hash, last_at): (i64, String, i64) = sqlx::query_as(
        "UPDATE audit_head SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq, last_hash, last_at",
    )
    .fetch_one(&mut **tx)
    .await?;
    let mut entry = Entry {
        seq,
        // Never before the entry it follows (clocks of several instances differ a little),
        // so that time order is chain order and a time range is a range of entries. The
        // wall clock, not the portal's: `record` is called in ~30 places that hold no clock
        // (a follow-up of issue 16 passes one); entries say when they were really written.
        at: SystemClock.now_ms().max(last_at),
        actor: event.actor.name.clone(),
        actor_ip: event.actor.ip.clone(),
        user_agent: event.actor.user_agent.chars().take(400).collect(),
        action: event.action.as_str().to_string(),
        target_type: event.target_type.as_str().to_string(),
        target_id: event.target_id.to_string(),
        outcome: event.outcome.as_str().to_string(),
        details: canonical_json(&event.details),
        prev_hash,
        hash: String::new(),
    };
    entry.hash = Entry::compute_hash(&entry.prev_hash, &entry.canonical());
    let sql = insert_sql(1);
    bind_entry(sqlx::query(&sql), &entry)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE audit_head SET last_hash = $1, last_at = $2 WHERE id = 1")
        .bind(&entry.hash)
        .bind(entry.at)
        .execute(&mut **tx)
        .await?;
    crate::metrics::audit_entry_appended(event.action);
    Ok(seq)
}

/// Entries in the log: its head's sequence number (one row; the committed count).
pub async fn length(db: &Database) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT last_seq FROM audit_head WHERE id = 1")
        .fetch_optional(db.pool())
        .await
        .map(Option::unwrap_or_default)
}

pub mod anchor;
pub mod job;
pub mod search;
pub mod view;

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Verification {
    Intact {
        entries: i64,
        last_seq: i64,
    },
    Broken {
        seq: i64,
        problem: Problem,
        detail: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Problem {
    /// The entry's content no longer matches its hash.
    Changed,
    /// One or more entries before this one are gone.
    Missing,
    /// The entry does not follow the one before it, or is not part of the chain.
    Inserted,
    /// Entries were changed and every hash after them recomputed: the chain agrees with
    /// itself but not with an anchor made before (see [`anchor`]).
    Rewritten,
    /// An anchor does not verify with the anchor key.
    Forged,
    /// Anchor rows the running portal made are gone from the database.
    Unanchored,
}

impl Problem {
    pub fn as_str(self) -> &'static str {
        match self {
            Problem::Changed => "changed",
            Problem::Missing => "missing",
            Problem::Inserted => "inserted",
            Problem::Rewritten => "rewritten",
            Problem::Forged => "forged",
            Problem::Unanchored => "unanchored",
        }
    }

    /// The problem named `name` ([`Problem::as_str`]).
    pub fn parse(name: &str) -> Option<Self> {
        [
            Problem::Changed,
            Problem::Missing,
            Problem::Inserted,
            Problem::Rewritten,
            Problem::Forged,
            Problem::Unanchored,
        ]
        .into_iter()
        .find(|p| p.as_str() == name)
    }
}

/// A problem found: the entry, what is wrong, and a sentence saying so.
pub type Found = (i64, Problem, String);

/// The chain recomputed entry by entry, in order: what [`verify`] and the background
/// verification ([`job`]) share. After a problem it carries on from the entry that has it,
/// so a run can count the problems after the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainCheck {
    /// The entry expected next, and the hash it must follow.
    pub expected_seq: i64,
    pub expected_prev: String,
    /// Entries looked at.
    pub checked: i64,
    /// The last entry looked at.
    pub last_seq: i64,
}

impl ChainCheck {
    /// A check of the entries from `from` on (at least 1), following the stored hash of the
    /// entry before (the genesis hash before entry 1).
    pub async fn starting_at(db: &Database, from: i64) -> Result<Self, sqlx::Error> {
        let from = from.max(1);
        let expected_prev = if from <= 1 {
            GENESIS.to_string()
        } else {
            sqlx::query_scalar::<_, String>("SELECT hash FROM audit_log WHERE seq = $1")
                .bind(from - 1)
                .fetch_optional(db.pool())
                .await?
                .unwrap_or_else(|| GENESIS.to_string())
        };
        Ok(Self::resume(from - 1, expected_prev, 0))
    }

    /// A check carried on after entry `last_seq`, whose hash the next must follow.
    pub fn resume(last_seq: i64, expected_prev: String, checked: i64) -> Self {
        Self {
            expected_seq: last_seq + 1,
            expected_prev,
            checked,
            last_seq,
        }
    }

    /// Checks the next entry (entries come in seq order); the problem it shows, if any.
    pub fn feed(&mut self, entry: &Entry) -> Option<Found> {
        let found = if entry.seq > self.expected_seq {
            Some((
                self.expected_seq,
                Problem::Missing,
                format!(
                    "entries {} to {} are missing (the log jumps to {})",
                    self.expected_seq,
                    entry.seq - 1,
                    entry.seq
                ),
            ))
        } else if Entry::compute_hash(&entry.prev_hash, &entry.canonical()) != entry.hash {
            Some((
                entry.seq,
                Problem::Changed,
                format!(
                    "entry {} was changed after it was written: its content no longer matches its hash",
                    entry.seq
                ),
            ))
        } else if entry.prev_hash != self.expected_prev {
            Some((
                entry.seq,
                Problem::Inserted,
                format!(
                    "entry {} does not follow entry {}: it was inserted, or the entry before it was replaced",
                    entry.seq,
                    entry.seq - 1
                ),
            ))
        } else {
            None
        };
        self.expected_prev = entry.hash.clone();
        self.expected_seq = entry.seq + 1;
        self.last_seq = entry.seq;
        self.checked += 1;
        found
    }
}

/// At most `limit` entries after `after`, up to `to`, in order.
pub async fn entries_after(
    db: &Database,
    after: i64,
    to: i64,
    limit: i64,
) -> Result<Vec<Entry>, sqlx::Error> {
    sqlx::query_as::<_, Entry>(&format!(
        "SELECT {COLUMNS} FROM audit_log WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT {limit}"
    ))
    .bind(after)
    .bind(to)
    .fetch_all(db.pool())
    .await
}

/// The chain head and the newest entry, read together (one statement, one snapshot): a
/// verification of the whole log checks the entries up to this head, so entries written
/// while it runs are neither missing nor extra.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Head {
    pub last_seq: i64,
    pub last_hash: String,
    /// The largest seq in the log (0 when empty).
    pub max_seq: i64,
}

pub async fn head(db: &Database) -> Result<Head, sqlx::Error> {
    sqlx::query_as(
        "SELECT last_seq, last_hash, COALESCE((SELECT MAX(seq) FROM audit_log), 0) AS max_seq \
         FROM audit_head WHERE id = 1",
    )
    .fetch_one(db.pool())
    .await
}

/// What the end of the log shows against the `head` read before the entries: an entry
/// after the head (written outside the portal), entries missing at the end, or a last
/// entry that is not the head's. `check` has looked at the entries up to the head.
pub fn end_problem(head: &Head, check: &ChainCheck) -> Option<Found> {
    if head.max_seq > head.last_seq {
        return Some((
            head.last_seq + 1,
            Problem::Inserted,
            format!(
                "entry {} was added outside the portal (the chain ends at {})",
                head.last_seq + 1,
                head.last_seq
            ),
        ));
    }
    if check.last_seq < head.last_seq {
        return Some((
            check.last_seq + 1,
            Problem::Missing,
            format!(
                "entries {} to {} are missing from the end of the log",
                check.last_seq + 1,
                head.last_seq
            ),
        ));
    }
    if check.checked > 0 && head.last_hash != check.expected_prev {
        return Some((
            check.last_seq,
            Problem::Changed,
            format!("entry {} does not match the chain head", check.last_seq),
        ));
    }
    None
}

/// Entries read a page at a time.
pub const VERIFY_PAGE: i64 = 5_000;

/// Recomputes the chain over entries `from..=to` (the whole log by default: up to the chain
/// head as it is when the check begins), stopping at the first problem.
pub async fn verify(
    db: &Database,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Verification, sqlx::Error> {
    let from = from.unwrap_or(1).max(1);
    let head = match to {
        None => Some(head(db).await?),
        Some(_) => None,
    };
    let to = match (&head, to) {
        (Some(head), _) => head.last_seq,
        (None, to) => to.unwrap_or(i64::MAX),
    };
    let mut check = ChainCheck::starting_at(db, from).await?;
    loop {
        let rows = entries_after(db, check.last_seq, to, VERIFY_PAGE).await?;
        for entry in &rows {
            if let Some((seq, problem, detail)) = check.feed(entry) {
                return Ok(Verification::Broken {
                    seq,
                    problem,
                    detail,
                });
            }
        }
        if (rows.len() as i64) < VERIFY_PAGE {
            break;
        }
    }
    // The head records the last entry written through the portal: anything beyond it, or a
    // head that is ahead of the entries, means entries were added or removed at the end.
    if let Some(head) = &head
        && let Some((seq, problem, detail)) = end_problem(head, &check)
    {
        return Ok(Verification::Broken {
            seq,
            problem,
            detail,
        });
    }
    Ok(Verification::Intact {
        entries: check.checked,
        last_seq: check.last_seq,
    })
}
