//! The Portcullis server as a library, so that tests start the real application
//! (`Application::build(config)` on port 0) exactly as `main` does.

// The workspace denies unwrap, expect and panic; unit tests may use them.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod backfill;
pub mod config;
pub mod db;
pub mod http;
pub mod jobs;
pub mod org;
pub mod session_store;
pub mod startup;
pub mod telemetry;

pub use config::Config;
pub use startup::{Application, StartupError};

/// Installs the process-wide TLS crypto provider (ring) used by every outgoing HTTPS
/// connection. Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
