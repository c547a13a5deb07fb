//! `portcullis audit-stream --from SEQ [--sink NAME]`: sends the audit log from `SEQ` to
//! the log's head again to the configured sinks (or the one named), then exits. The live
//! stream's cursors are left as they are — not moved back (the running portal would send
//! everything since `SEQ` again), nor forward (a backfill is not a promise about what the
//! live stream delivered) — so it can run beside a running portal; receivers de-duplicate
//! by `seq`.

use std::sync::Arc;

use services::audit_stream::{AuditStream, BackfillError, SinkKind, Streamer};

use crate::config::Config;
use crate::startup::StartupError;

/// Why a backfill could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum BackfillFailed {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("{0}")]
    Backfill(#[from] BackfillError),
}

/// Opens the database (migrating it, as the portal does), builds the configured sinks and
/// sends entries `from..=head` to `sink` (or every sink). The entries each sink took.
pub async fn run(
    config: Config,
    from: i64,
    sink: Option<SinkKind>,
) -> Result<Vec<(SinkKind, i64)>, BackfillFailed> {
    let db = crate::db::open(&config.database_url, config.database_max_connections)
        .await
        .map_err(StartupError::from)?;
    db.migrate(&config.database_url.to_string())
        .await
        .map_err(StartupError::from)?;
    let clock = services::clock::system();
    let stream =
        AuditStream::new(config.audit_stream.clone(), clock.clone()).map_err(StartupError::from)?;
    let streamer = Streamer::new(
        db.clone(),
        Arc::new(stream),
        clock,
        services::metrics::detached(),
    );
    let sent = streamer.backfill(from, sink).await;
    db.close().await;
    Ok(sent?)
}
