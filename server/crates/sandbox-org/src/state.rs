//! The running org: its data, tokens, usage, call log, fault rules and open query cursors,
//! each behind its own lock so that reads (queries, token checks) proceed in parallel.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::faults::FaultRule;
use crate::store::OrgData;
use crate::usage::Usage;

/// An issued access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenInfo {
    pub user_id: String,
    pub app_id: Option<String>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The refresh token (its hash) this access token came from, if any.
    pub refresh: Option<String>,
}

/// An issued refresh token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshInfo {
    pub user_id: String,
    pub app_id: String,
    pub issued_at: DateTime<Utc>,
}

/// A pending authorization code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthCode {
    pub user_id: String,
    pub app_id: String,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub expires_at: DateTime<Utc>,
}

/// Tokens are kept by the SHA-256 of their value: the org can check them without storing
/// anything that would let a reader of its state directory use them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tokens {
    pub access: HashMap<String, TokenInfo>,
    pub refresh: HashMap<String, RefreshInfo>,
    pub codes: HashMap<String, AuthCode>,
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// One request as the sandbox's call log keeps it (for tests and benchmarks).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub user_id: Option<String>,
    pub app_id: Option<String>,
    /// What the call changed, e.g. `create User 005…`.
    pub effects: Vec<String>,
    pub counted: bool,
}

/// Where the call log keeps its entries (bounded).
#[derive(Debug, Default)]
pub struct CallLog {
    pub entries: VecDeque<CallRecord>,
    pub next_seq: u64,
}

const CALL_LOG_LIMIT: usize = 200_000;

impl CallLog {
    pub fn push(&mut self, mut record: CallRecord) {
        self.next_seq += 1;
        record.seq = self.next_seq;
        if self.entries.len() >= CALL_LOG_LIMIT {
            self.entries.pop_front();
        }
        self.entries.push_back(record);
    }
}

/// A query's remaining rows, for `nextRecordsUrl`.
#[derive(Debug, Clone)]
pub struct QueryCursor {
    pub user_id: String,
    pub records: Vec<serde_json::Value>,
    pub total_size: usize,
    pub position: usize,
    pub batch_size: usize,
    pub created: DateTime<Utc>,
}

/// The org.
pub struct Org {
    data: RwLock<OrgData>,
    tokens: RwLock<Tokens>,
    usage: Mutex<Usage>,
    calls: Mutex<CallLog>,
    faults: RwLock<Vec<FaultRule>>,
    cursors: Mutex<HashMap<String, QueryCursor>>,
    base_url: RwLock<String>,
    pub state_dir: Option<PathBuf>,
    dirty: AtomicBool,
    pub changed: Notify,
    pub request_counter: AtomicU64,
    /// The portal app's JWT private key (PEM), when the org seeded one.
    pub portal_key_pem: RwLock<Option<String>>,
}

fn recover<T>(result: Result<T, std::sync::PoisonError<T>>) -> T {
    // A panic while holding a lock must not take the whole org down with it: the data is
    // plain values, valid after any completed statement.
    result.unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Org {
    pub fn new(data: OrgData, tokens: Tokens, usage: Usage, state_dir: Option<PathBuf>) -> Self {
        Self {
            data: RwLock::new(data),
            tokens: RwLock::new(tokens),
            usage: Mutex::new(usage),
            calls: Mutex::new(CallLog::default()),
            faults: RwLock::new(Vec::new()),
            cursors: Mutex::new(HashMap::new()),
            base_url: RwLock::new(String::new()),
            state_dir,
            dirty: AtomicBool::new(false),
            changed: Notify::new(),
            request_counter: AtomicU64::new(0),
            portal_key_pem: RwLock::new(None),
        }
    }

    /// The org's clock ([`OrgData::now`]). Takes the data's read lock: never call it while
    /// holding the write lock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.read().now()
    }

    pub fn read(&self) -> RwLockReadGuard<'_, OrgData> {
        recover(self.data.read())
    }

    /// Write access to the data; marks the org as changed (for persistence).
    pub fn write(&self) -> RwLockWriteGuard<'_, OrgData> {
        self.mark_dirty();
        recover(self.data.write())
    }

    pub fn tokens(&self) -> RwLockReadGuard<'_, Tokens> {
        recover(self.tokens.read())
    }

    pub fn tokens_mut(&self) -> RwLockWriteGuard<'_, Tokens> {
        self.mark_dirty();
        recover(self.tokens.write())
    }

    pub fn usage(&self) -> MutexGuard<'_, Usage> {
        recover(self.usage.lock())
    }

    pub fn calls(&self) -> MutexGuard<'_, CallLog> {
        recover(self.calls.lock())
    }

    pub fn cursors(&self) -> MutexGuard<'_, HashMap<String, QueryCursor>> {
        recover(self.cursors.lock())
    }

    pub fn faults(&self) -> RwLockReadGuard<'_, Vec<FaultRule>> {
        recover(self.faults.read())
    }

    pub fn set_faults(&self, rules: Vec<FaultRule>) {
        *recover(self.faults.write()) = rules;
    }

    /// What the fault rules say about a request (counting down a rule's `times`).
    pub fn fault_verdict(&self, method: &str, path: &str) -> crate::faults::Verdict {
        crate::faults::decide(&mut recover(self.faults.write()), method, path)
    }

    pub fn base_url(&self) -> String {
        recover(self.base_url.read()).clone()
    }

    pub fn set_base_url(&self, url: String) {
        *recover(self.base_url.write()) = url;
    }

    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
        self.changed.notify_one();
    }

    /// Clears and returns the dirty flag.
    pub fn take_dirty(&self) -> bool {
        self.dirty.swap(false, Ordering::AcqRel)
    }

    pub fn portal_key(&self) -> Option<String> {
        recover(self.portal_key_pem.read()).clone()
    }

    pub fn set_portal_key(&self, pem: Option<String>) {
        *recover(self.portal_key_pem.write()) = pem;
    }
}
