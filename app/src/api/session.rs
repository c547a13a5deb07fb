//! Who is signed in.

use leptos::prelude::*;
use shared::auth::Viewer;

/// The viewer of the page: the signed-in user (if any) and their roles.
#[server(endpoint = "viewer")]
pub async fn get_viewer() -> Result<Viewer, ServerFnError> {
    super::ssr::viewer().await
}
