//! Anchors for the audit chain: now and then the hash of an entry, with an HMAC under a key
//! kept outside the database (`AUDIT_ANCHOR_KEY_FILE`), stored in `audit_anchors`.
//!
//! The hash chain alone shows that entries follow each other; someone who can write the
//! database can drop the triggers, change an entry and recompute every hash after it and the
//! chain head, and the chain is consistent again. They cannot make an anchor for the new
//! hashes without the key. An anchor at entry *n* vouches for entries 1 to *n* (each hash
//! covers the one before it); after the newest anchor the log is only self-consistent.
//!
//! The portal anchors every `AUDIT_ANCHOR_EVERY` entries (a background task, [`Anchorer::catch_up`],
//! which first checks that the entries since the last anchor chain onto it) and the head at
//! shutdown ([`Anchorer::anchor_head`]). What an anchor does not prove: anything after it, and
//! — if anchor rows are deleted — anything after the newest one left (a running portal
//! remembers the newest anchor it made and reports the deletion; after a restart only the
//! rows are left, and "verify" shows how far they reach).

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::{COLUMNS, Entry, GENESIS, Problem, Verification};
use crate::clock::{Clock, SystemClock, rfc3339};
use crate::db::Database;

/// An anchor row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Anchor {
    pub seq: i64,
    pub hash: String,
    pub at: i64,
    /// `interval` or `shutdown`.
    pub reason: String,
    /// The interval in force when it was made.
    pub every: i64,
    /// Which key made it (a fingerprint, not the key).
    pub key_id: String,
    pub mac: String,
}

/// Makes and checks anchors with one key. Share it (it remembers the newest anchor it made
/// or checked, which deleting rows cannot take from it).
pub struct Anchorer {
    key: ring::hmac::Key,
    key_id: String,
    every: i64,
    newest: Mutex<Option<(i64, String)>>,
}

impl std::fmt::Debug for Anchorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anchorer")
            .field("key_id", &self.key_id)
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

pub use shared::audit::AnchorReport;

/// A verification with what the anchors say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checked {
    #[serde(flatten)]
    pub chain: Verification,
    pub anchors: AnchorReport,
}

impl Anchorer {
    /// An anchorer with `key` that anchors every `every` entries (at least 1).
    pub fn new(key: &[u8; 32], every: i64) -> Self {
        let fingerprint = ring::digest::digest(
            &ring::digest::SHA256,
            &[b"portcullis-audit-anchor-key/1\n".as_slice(), key].concat(),
        );
        Self {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
            key_id: hex::encode(&fingerprint.as_ref()[..8]),
            every: every.max(1),
            newest: Mutex::new(None),
        }
    }

    /// With a random key (tests, and portals whose anchors need not outlive the process).
    pub fn ephemeral(every: i64) -> Self {
        Self::new(&crate::keys::random(), every)
    }

    pub fn every(&self) -> i64 {
        self.every
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    fn message(seq: i64, hash: &str, at: i64, reason: &str, every: i64) -> String {
        format!("portcullis-audit-anchor/1\n{seq}\n{hash}\n{at}\n{reason}\n{every}")
    }

    fn mac(&self, seq: i64, hash: &str, at: i64, reason: &str, every: i64) -> String {
        let message = Self::message(seq, hash, at, reason, every);
        hex::encode(ring::hmac::sign(&self.key, message.as_bytes()).as_ref())
    }

    fn holds(&self, a: &Anchor) -> bool {
        let Ok(mac) = hex::decode(&a.mac) else {
            return false;
        };
        let message = Self::message(a.seq, &a.hash, a.at, &a.reason, a.every);
        ring::hmac::verify(&self.key, message.as_bytes(), &mac).is_ok()
    }

    /// The newest anchor this process made or checked.
    fn remembered(&self) -> Option<(i64, String)> {
        self.newest.lock().map(|n| n.clone()).unwrap_or(None)
    }

    fn remember(&self, seq: i64, hash: &str) {
        if let Ok(mut newest) = self.newest.lock()
            && newest.as_ref().is_none_or(|(s, _)| *s < seq)
        {
            *newest = Some((seq, hash.to_string()));
        }
    }

    /// Where anchoring goes on from: the newest anchor remembered, else the newest row made
    /// with this key (which must hold and match its entry), else the start of the log.
    /// `None` when the newest row does not hold: then nothing more is anchored (verify
    /// reports why).
    async fn base(&self, db: &Database) -> Result<Option<(i64, String)>, sqlx::Error> {
        if let Some(newest) = self.remembered() {
            return Ok(Some(newest));
        }
        let Some(anchor) = newest_row(db, &self.key_id).await? else {
            return Ok(Some((0, GENESIS.to_string())));
        };
        let entry_hash = hash_of(db, anchor.seq).await?;
        if !self.holds(&anchor) || entry_hash.as_deref() != Some(anchor.hash.as_str()) {
            tracing::error!(
                anchor = anchor.seq,
                "the newest audit anchor does not hold; not anchoring until the log is checked"
            );
            return Ok(None);
        }
        self.remember(anchor.seq, &anchor.hash);
        Ok(Some((anchor.seq, anchor.hash)))
    }

    /// Anchors each entry at a multiple of the interval that the log has reached and that is
    /// not anchored yet, after checking that the entries since the last anchor chain onto it.
    /// Returns how many anchors it made.
    pub async fn catch_up(&self, db: &Database) -> Result<usize, sqlx::Error> {
        let Some((mut seq, mut hash)) = self.base(db).await? else {
            return Ok(0);
        };
        let head: i64 = sqlx::query_scalar("SELECT last_seq FROM audit_head WHERE id = 1")
            .fetch_one(db.pool())
            .await?;
        let mut made = 0;
        loop {
            let target = (seq / self.every + 1) * self.every;
            if target > head {
                break;
            }
            let Some(target_hash) = chained(db, seq, &hash, target).await? else {
                tracing::error!(
                    from = seq + 1,
                    to = target,
                    "audit entries do not chain onto the last anchor; not anchoring them"
                );
                break;
            };
            self.write(db, target, &target_hash, "interval").await?;
            made += 1;
            (seq, hash) = (target, target_hash);
        }
        Ok(made)
    }

    /// Anchors the chain head (at shutdown), after the interval anchors still due. Returns
    /// the entry anchored, if there was one not anchored yet.
    pub async fn anchor_head(
        &self,
        db: &Database,
        reason: &str,
    ) -> Result<Option<i64>, sqlx::Error> {
        self.catch_up(db).await?;
        let Some((seq, hash)) = self.base(db).await? else {
            return Ok(None);
        };
        let head: i64 = sqlx::query_scalar("SELECT last_seq FROM audit_head WHERE id = 1")
            .fetch_one(db.pool())
            .await?;
        if head <= seq {
            return Ok(None);
        }
        let Some(head_hash) = chained(db, seq, &hash, head).await? else {
            tracing::error!(
                from = seq + 1,
                to = head,
                "audit entries do not chain onto the last anchor; not anchoring the head"
            );
            return Ok(None);
        };
        self.write(db, head, &head_hash, reason).await?;
        Ok(Some(head))
    }

    async fn write(
        &self,
        db: &Database,
        seq: i64,
        hash: &str,
        reason: &str,
    ) -> Result<(), sqlx::Error> {
        // The wall clock: when the anchor was really written (see `audit::append`).
        let at = SystemClock.now_ms();
        sqlx::query(
            "INSERT INTO audit_anchors (seq, key_id, hash, at, reason, every, mac) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (seq, key_id) DO NOTHING",
        )
        .bind(seq)
        .bind(&self.key_id)
        .bind(hash)
        .bind(at)
        .bind(reason)
        .bind(self.every)
        .bind(self.mac(seq, hash, at, reason, self.every))
        .execute(db.pool())
        .await?;
        self.remember(seq, hash);
        tracing::debug!(seq, reason, "audit chain anchored");
        Ok(())
    }
}

async fn newest_row(db: &Database, key_id: &str) -> Result<Option<Anchor>, sqlx::Error> {
    sqlx::query_as(
        "SELECT seq, hash, at, reason, every, key_id, mac FROM audit_anchors \
         WHERE key_id = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(key_id)
    .fetch_optional(db.pool())
    .await
}

async fn hash_of(db: &Database, seq: i64) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT hash FROM audit_log WHERE seq = $1")
        .bind(seq)
        .fetch_optional(db.pool())
        .await
}

/// The hash of entry `to` if entries `from + 1 ..= to` are all there, each matches its hash
/// and follows the one before, starting from `from_hash`; `None` otherwise.
async fn chained(
    db: &Database,
    from: i64,
    from_hash: &str,
    to: i64,
) -> Result<Option<String>, sqlx::Error> {
    const PAGE: i64 = 2_000;
    let (mut seq, mut hash) = (from, from_hash.to_string());
    while seq < to {
        let rows = sqlx::query_as::<_, Entry>(&format!(
            "SELECT {COLUMNS} FROM audit_log WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT {PAGE}"
        ))
        .bind(seq)
        .bind(to)
        .fetch_all(db.pool())
        .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        for entry in rows {
            if entry.seq != seq + 1
                || entry.prev_hash != hash
                || Entry::compute_hash(&entry.prev_hash, &entry.canonical()) != entry.hash
            {
                return Ok(None);
            }
            (seq, hash) = (entry.seq, entry.hash);
        }
    }
    Ok(Some(hash))
}

/// Verifies the chain over `from..=to` (the whole log by default) as [`super::verify`]
/// does, and then its anchors: each made with this key must hold (its HMAC) and match its
/// entry's hash now. A consistent rewrite shows up as an anchored entry whose hash changed
/// (`rewritten`), a made-up anchor as one that does not hold (`forged`), and anchor rows
/// deleted from under a running portal as `unanchored`. The report says how far the anchors
/// vouch and from which entry on the log is only self-consistent.
pub async fn verify_anchored(
    db: &Database,
    anchorer: &Anchorer,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Checked, sqlx::Error> {
    let chain = super::verify(db, from, to).await?;
    with_anchors(db, anchorer, from, to, chain).await
}

/// What the anchors over `from..=to` (the whole log when `to` is `None`) say, beside
/// `chain`, the chain check of the same entries ([`verify_anchored`]'s second half; the
/// background verification's end).
pub async fn with_anchors(
    db: &Database,
    anchorer: &Anchorer,
    from: Option<i64>,
    to: Option<i64>,
    chain: Verification,
) -> Result<Checked, sqlx::Error> {
    let lo = from.unwrap_or(1).max(1);
    let hi = to.unwrap_or(i64::MAX);
    // The last entry the chain check covered.
    let checked_to = match &chain {
        Verification::Intact { last_seq, .. } => *last_seq,
        Verification::Broken { seq, .. } => seq - 1,
    };
    let anchors = sqlx::query_as::<_, Anchor>(
        "SELECT seq, hash, at, reason, every, key_id, mac FROM audit_anchors \
         WHERE seq >= $1 AND seq <= $2 ORDER BY seq, key_id",
    )
    .bind(lo)
    .bind(hi)
    .fetch_all(db.pool())
    .await?;
    let mut report = AnchorReport {
        every: anchorer.every,
        checked: 0,
        anchored_through: 0,
        self_consistent_from: None,
        other_keys: 0,
        overdue: false,
    };
    let mut problem: Option<(i64, Problem, String)> = None;
    // The entry after the last anchor that holds: where a rewrite would begin.
    let mut vouched_to = lo - 1;
    for anchor in anchors {
        if anchor.key_id != anchorer.key_id {
            report.other_keys += 1;
            continue;
        }
        if !anchorer.holds(&anchor) {
            problem = Some((
                anchor.seq,
                Problem::Forged,
                format!(
                    "the anchor of entry {} does not verify with this portal's anchor key: it was made or changed by someone without the key",
                    anchor.seq
                ),
            ));
            break;
        }
        if hash_of(db, anchor.seq).await?.as_deref() != Some(anchor.hash.as_str()) {
            problem = Some((
                vouched_to + 1,
                Problem::Rewritten,
                format!(
                    "entry {} no longer has the hash anchored on {}: entries from {} on were rewritten and their hashes recomputed (they agree with each other, not with the anchor); the log is only self-consistent from entry {} on",
                    anchor.seq,
                    rfc3339(anchor.at),
                    vouched_to + 1,
                    vouched_to + 1
                ),
            ));
            break;
        }
        report.checked += 1;
        vouched_to = anchor.seq;
        report.anchored_through = anchor.seq;
    }
    // Anchors deleted from under this process, which remembers the newest it made.
    if problem.is_none()
        && to.is_none()
        && let Some((seq, hash)) = anchorer.remembered()
        && seq > report.anchored_through
    {
        problem = Some(
            if hash_of(db, seq).await?.as_deref() == Some(hash.as_str()) {
                (
                    report.anchored_through + 1,
                    Problem::Unanchored,
                    format!(
                        "this portal anchored entry {seq}, but that anchor is gone from the database: anchors were deleted; the log is only self-consistent from entry {} on",
                        report.anchored_through + 1
                    ),
                )
            } else {
                (
                    report.anchored_through + 1,
                    Problem::Rewritten,
                    format!(
                        "entry {seq} no longer has the hash this portal anchored, and its anchor is gone: entries from {} on were rewritten; the log is only self-consistent from entry {} on",
                        report.anchored_through + 1,
                        report.anchored_through + 1
                    ),
                )
            },
        );
    }
    if report.anchored_through < checked_to {
        report.self_consistent_from = Some(report.anchored_through.max(lo - 1) + 1);
    }
    report.overdue = to.is_none() && checked_to - report.anchored_through > 2 * anchorer.every;
    let chain = match (chain, problem) {
        // The chain's own problem comes first: it is where the log stops following itself.
        (broken @ Verification::Broken { .. }, _) => broken,
        (Verification::Intact { .. }, Some((seq, problem, detail))) => Verification::Broken {
            seq,
            problem,
            detail,
        },
        (intact, None) => intact,
    };
    Ok(Checked {
        chain,
        anchors: report,
    })
}

impl crate::Portal {
    /// Anchors the entries written since the last anchor ([`Anchorer::catch_up`]).
    pub async fn anchor_audit_chain(&self) -> Result<usize, sqlx::Error> {
        self.audit_anchor.catch_up(&self.db).await
    }

    /// Anchors the chain's head now, for `reason` ([`Anchorer::anchor_head`]).
    pub async fn anchor_audit_head(&self, reason: &str) -> Result<Option<i64>, sqlx::Error> {
        self.audit_anchor.anchor_head(&self.db, reason).await
    }
}
