//! Per-contractor API usage: the org's ApiTotalUsage event log files read as they stream in
//! ([`ingest`]) by a collector job ([`collector`]), budgets and their alerts, suspension and
//! freeze ([`budgets`], [`webhook`]), and what the usage pages show ([`report`]).

pub mod anomaly;
pub mod budgets;
pub mod collector;
pub mod entities;
pub mod ingest;
pub mod report;
pub mod view;
pub mod webhook;
pub mod windows;
