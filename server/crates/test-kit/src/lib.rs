//! Portcullis's test support, one crate for every crate's tests and benches:
//!
//! - [`db`]: a fresh, migrated database per test on SQLite or PostgreSQL ([`TestDb`],
//!   [`PgDatabase`]); PostgreSQL tests print a loud `!!! SKIPPED` line when PostgreSQL is
//!   unreachable, and fail when `CI` is set;
//! - [`both_databases!`]: one test body declared for both engines;
//! - [`portal`]: a [`services::Portal`] over a test database, with or without an in-process
//!   sandbox org, and the requests, approvals and audit checks the domain tests share;
//! - [`sandbox`]: the sandbox org's control API (fault rules, call log);
//! - [`smtp`]: a real SMTP server (aiosmtpd) that keeps what it receives;
//! - [`syslog`]: a real syslog receiver (Python, RFC 5424 over TCP or TLS) for the audit
//!   stream, killed and restarted at will;
//! - [`usage_files`]: crafted ApiTotalUsage files placed in the sandbox org;
//! - [`bench`]: settings and memory figures for benchmarks.
//!
//! It depends on `services`; `services` uses it only as a dev-dependency of its integration
//! tests and benches (never of its unit tests in `src/`, which would see two copies of the
//! services crate).

// Test support: a failed set-up is a failed test, so unwrap, expect and panic say why.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod bench;
pub mod db;
pub mod portal;
pub mod sandbox;
pub mod smtp;
pub mod syslog;
pub mod usage_files;

pub use db::{
    Engine, PgDatabase, TestDb, audit_fill, audit_fill_with, postgres_admin_url, postgres_available,
};

/// Declares one test for both databases: a module `<name>` holding the tests `sqlite` and
/// `postgres` (multi-threaded Tokio tests). The PostgreSQL one returns early, after a loud
/// `!!! SKIPPED` line, when PostgreSQL is unreachable (outside CI; in CI it fails).
///
/// - `both_databases!(name, |engine| { … })`: the body with `engine` bound to the
///   [`Engine`].
/// - `both_databases!(name, setup, |app| { … })`: the body with `app` bound to what the
///   async `setup(engine) -> Option<_>` gives (`None` means PostgreSQL is unreachable);
///   `setup` is a path such as `portal_with_org` or `TestApp::spawn`.
/// - `both_databases!(name)`: calls the async `fn name(engine)` of the enclosing module.
/// - `both_databases!(name, with setup, body)`: calls the async `fn body(app)` with what
///   `setup(engine)` gives, as above.
#[macro_export]
macro_rules! both_databases {
    ($name:ident, |$engine:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $engine = $crate::Engine::Sqlite;
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let $engine = $crate::Engine::Postgres;
                if !$crate::postgres_available(stringify!($name)).await {
                    return;
                }
                $body
            }
        }
    };
    ($name:ident, $setup:path, |$app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $app = ($setup)($crate::Engine::Sqlite)
                    .await
                    .expect("SQLite is always available");
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some($app) = ($setup)($crate::Engine::Postgres).await else {
                    return;
                };
                $body
            }
        }
    };
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::Engine::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::Engine::Postgres).await;
            }
        }
    };
    ($name:ident, with $setup:expr, $body:ident) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = ($setup)($crate::Engine::Sqlite)
                    .await
                    .expect("SQLite is always available");
                super::$body(app).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = ($setup)($crate::Engine::Postgres).await {
                    super::$body(app).await;
                }
            }
        }
    };
}
