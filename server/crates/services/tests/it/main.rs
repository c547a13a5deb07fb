//! The services' integration tests, one binary: the domain on SQLite and PostgreSQL,
//! against an in-process sandbox org where it calls the org. The fixtures are the test
//! kit's (`test_kit::portal`, here `common`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use test_kit::portal as common;

mod alerts;
mod anomalies;
mod assurance;
mod audit;
mod audit_index;
mod audit_job;
mod audit_stream;
mod blast;
mod catalog;
mod clock;
mod counters;
mod decisions;
mod ending;
mod intake;
mod org_name;
mod provisioning;
mod queue;
mod records;
mod renewal;
mod reviews;
mod rotation;
mod teardown;
mod usage;
