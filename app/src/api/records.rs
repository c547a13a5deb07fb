//! The record picker on the decision form: an object's records found by name, for
//! approvers and owners.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::ApiError;

pub use shared::records::{RecordHit, RecordSearch};

/// The picker's search: the object, the text its name must contain (blank: every record)
/// and how many matching records to skip.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSearchForm {
    pub object: String,
    pub text: String,
    #[serde(default)]
    pub offset: u32,
}

/// Not flattened (`form[object]=…`): the offset is a number, which a flattened form cannot
/// carry over the URL encoding.
#[server(endpoint = "search_records")]
pub async fn search_records(form: RecordSearchForm) -> Result<RecordSearch, ApiError> {
    use super::ssr::{portal, require};
    use shared::auth::Role;
    require(&[Role::Approver, Role::Owner]).await?;
    Ok(portal()?
        .search_records(form.object.trim(), &form.text, form.offset)
        .await?)
}
