//! The sandbox org's integration tests, one binary: its API over HTTP as Salesforce documents it,
//! bad input, its security model and the control API.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod bad_input;
mod common;
mod control_api;
mod documented;
mod security;
