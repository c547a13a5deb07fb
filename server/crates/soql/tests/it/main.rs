//! The SOQL parser's integration tests, one binary: every construct, every error, properties.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod errors;
mod parse;
mod properties;
