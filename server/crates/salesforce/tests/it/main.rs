//! The Salesforce client's integration tests, one binary: id properties, and what the client sends
//! where a real org is strict.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod id_properties;
mod real_org;
