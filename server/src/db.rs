//! Opening the portal's database from its configured URL (the database itself lives in the
//! services crate).

pub use services::db::{Database, DatabaseError, DatabaseKind, WriteTx};

use crate::config::DatabaseUrl;

/// Connects to `url` and checks that the database answers.
pub async fn open(url: &DatabaseUrl, max_connections: u32) -> Result<Database, DatabaseError> {
    Database::connect(
        url.expose(),
        url.kind(),
        max_connections,
        &url.to_string(),
        url.sqlite_path().as_deref(),
    )
    .await
}
