//! Who is signed in.

use leptos::prelude::*;
use shared::auth::Viewer;

use super::ApiError;

/// The viewer of the page: the signed-in user (if any) and their roles.
#[server(endpoint = "viewer")]
pub async fn get_viewer() -> Result<Viewer, ApiError> {
    super::ssr::viewer().await
}
