//! Time as the database stores it: Unix milliseconds, read from a [`Clock`].
//!
//! The services never read the wall clock themselves: the [`Portal`](crate::Portal), the
//! provisioning engine, the usage collector and the mail and webhook senders each hold a
//! [`SharedClock`] ([`SystemClock`] unless given another), and everything they stamp into the
//! database or decide by (expiry, windows, due dates) comes from it. Tests give them a
//! [`TestClock`] and move time with [`TestClock::advance`] instead of rewriting rows.
//! (Elapsed real time — timeouts, polling, backoff sleeps — is `tokio::time`, not this.)

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};

/// Where the services read the time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now, in Unix milliseconds.
    fn now_ms(&self) -> i64;

    /// Today's date (UTC).
    fn today(&self) -> NaiveDate {
        to_datetime(self.now_ms()).date_naive()
    }
}

/// A clock the services share (cheap to clone).
pub type SharedClock = Arc<dyn Clock>;

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        Utc::now().timestamp_millis()
    }
}

/// The wall clock, shared.
pub fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that stands still until moved. Clones share one time, so a test keeps a clone
/// and moves the time of everything it gave one to.
#[derive(Debug, Clone)]
pub struct TestClock {
    ms: Arc<AtomicI64>,
}

impl TestClock {
    /// A clock standing at `ms`.
    pub fn at(ms: i64) -> Self {
        Self {
            ms: Arc::new(AtomicI64::new(ms)),
        }
    }

    /// A clock standing at the wall clock's time now.
    pub fn starting_now() -> Self {
        Self::at(SystemClock.now_ms())
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.ms.fetch_add(by, Ordering::SeqCst);
    }

    /// Sets the time to `ms` (forward or back).
    pub fn set(&self, ms: i64) {
        self.ms.store(ms, Ordering::SeqCst);
    }

    /// This clock, shared (the same time as `self`).
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.ms.load(Ordering::SeqCst)
    }
}

/// The wall clock moved forward by an offset that can grow (browser tests reach a due date
/// with it: the server's `SANDBOX_CLOCK_CONTROL`). Clones share the offset.
#[derive(Debug, Clone, Default)]
pub struct OffsetClock {
    offset_ms: Arc<std::sync::atomic::AtomicI64>,
}

impl OffsetClock {
    /// Moves the clock forward by `ms`.
    pub fn advance_ms(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }

    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::SeqCst)
    }

    /// This clock, shared (the same offset as `self`).
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }
}

impl Clock for OffsetClock {
    fn now_ms(&self) -> i64 {
        SystemClock.now_ms() + self.offset_ms()
    }
}

/// The wall clock's time now, for code outside the services (the server's HTTP layer,
/// tests and benches). The services' modules never call it (a test in `layering.rs` checks):
/// they read the clock they hold.
pub fn now_ms() -> i64 {
    SystemClock.now_ms()
}

pub fn to_datetime(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

pub fn rfc3339(ms: i64) -> String {
    to_datetime(ms).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_clock_stands_still_until_moved_and_its_clones_move_with_it() {
        let clock = TestClock::at(1_000);
        let shared = clock.shared();
        assert_eq!(shared.now_ms(), 1_000);
        assert_eq!(shared.now_ms(), 1_000);
        clock.advance(Duration::from_secs(2));
        assert_eq!(shared.now_ms(), 3_000);
        clock.set(500);
        assert_eq!(shared.now_ms(), 500);
        assert_eq!(
            TestClock::at(86_400_000 - 1).today(),
            NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()
        );
        assert_eq!(
            TestClock::at(86_400_000).today(),
            NaiveDate::from_ymd_opt(1970, 1, 2).unwrap()
        );
    }

    #[test]
    fn the_system_clock_reads_the_wall_clock() {
        let before = Utc::now().timestamp_millis();
        let now = SystemClock.now_ms();
        assert!(now >= before && now - before < 60_000);
    }
}
