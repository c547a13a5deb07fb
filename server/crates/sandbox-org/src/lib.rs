//! The sandbox org: a local, stateful stand-in for a Salesforce org that speaks Salesforce's
//! HTTP API (OAuth, REST, SOQL, composite, Metadata deploy, Connect REST credentials, event
//! log files) and enforces its security model (API access, object permissions, field-level
//! security, record visibility, frozen and inactive users, licences, the daily API limit).
//!
//! It is the portal's embedded default (try everything without a Salesforce account) and the
//! stand-in every test runs against. Where `reference/salesforce-api.md` documents a rule,
//! the sandbox org enforces it; where the reference marks something unconfirmed, the choice
//! made here is commented at the place it is made.

// The workspace denies unwrap, expect and panic; unit tests may use them.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod access;
pub mod apps;
pub mod composite;
pub mod connect;
pub mod control;
pub mod describe;
pub mod error;
pub mod faults;
pub mod metadata;
pub mod oauth;
pub mod persist;
pub mod query;
pub mod records;
pub mod rest;
pub mod schema;
pub mod seed;
pub mod server;
pub mod session;
pub mod soap;
pub mod state;
pub mod store;
pub mod tls;
pub mod usage;

pub use faults::FaultRule;
pub use server::{SandboxConfig, SandboxError, SandboxOrg};
