//! Per-contractor API usage: reading the org's ApiTotalUsage event log files.

pub mod ingest;
