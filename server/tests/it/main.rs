//! The server's integration tests, one binary: the real application on port 0 through HTTP
//! as a browser would, the `portcullis` binary itself (crash tests SIGKILL it; two-instance
//! tests share one PostgreSQL), the standalone sandbox org. The harness is `../common`
//! (shared with the benches) over the test kit (`test_kit`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

mod audit;
mod audit_stream;
mod client_addr;
mod crash;
mod doctor;
mod embedded_org_https;
mod foundation;
mod hardening;
mod mail_outbox;
mod metrics;
mod pages_under_load;
mod portal;
mod provisioning;
mod real_org;
mod record_sharing;
mod renewal;
mod reveal;
mod rotation;
mod salesforce;
mod secret_leaks;
mod sign_in;
mod traces;
mod two_instances;
mod usage;
