//! The record picker's search: an object's records whose name field contains the
//! approver's text, read with the portal's connection (the records the portal can share),
//! a page at a time, with how many match in all.
//!
//! Two queries built with the SOQL builder, so the approver's text is always a `LIKE` value,
//! escaped (`'`, `\`, and `%`/`_` match themselves), never query text:
//! `SELECT Id, <name field> FROM <object> WHERE <name field> LIKE '%text%' ORDER BY <name
//! field>, Id LIMIT 20 OFFSET n` and `SELECT COUNT() FROM <object> WHERE …` for the total.
//! The name field is the one the object's describe marks `nameField` (`Name`, `Subject`,
//! `CaseNumber`). Only the objects the scope picker offers can be searched.

use serde_json::Value;
use shared::FieldErrors;
use shared::records::{RECORDS_PER_PAGE, RecordHit, RecordSearch};

use salesforce::soql::MAX_OFFSET;
use salesforce::{Cond, Soql};

use crate::Portal;

/// The longest search text taken (Salesforce's text fields are at most 255 characters).
pub const MAX_SEARCH_CHARS: usize = 255;

/// Why a search was refused.
#[derive(Debug, thiserror::Error)]
pub enum RecordSearchError {
    /// The object or the text cannot be searched; the problem is on the `record_search`
    /// field.
    #[error("{0}")]
    Invalid(FieldErrors),
    /// The org could not be asked.
    #[error(transparent)]
    Org(#[from] salesforce::Error),
}

fn invalid(message: impl Into<String>) -> RecordSearchError {
    let mut errors = FieldErrors::default();
    errors.add("record_search", message);
    RecordSearchError::Invalid(errors)
}

impl Portal {
    /// The page of `object`'s records starting at `offset` whose name contains `text`
    /// (every record when `text` is blank), ordered by name.
    pub async fn search_records(
        &self,
        object: &str,
        text: &str,
        offset: u32,
    ) -> Result<RecordSearch, RecordSearchError> {
        let text = text.trim();
        if text.chars().count() > MAX_SEARCH_CHARS {
            return Err(invalid(format!(
                "The search text is longer than {MAX_SEARCH_CHARS} characters."
            )));
        }
        if offset > MAX_OFFSET {
            return Err(invalid(format!(
                "Salesforce pages through the first {MAX_OFFSET} records only: narrow the search."
            )));
        }
        let objects = self.org_objects().await?;
        let Some(known) = objects.iter().find(|o| o.name == object) else {
            return Err(invalid(format!(
                "'{object}' is not an object whose records can be picked."
            )));
        };
        let describe = self.salesforce.describe(&known.name).await?;
        let Some(name) = describe.fields.iter().find(|f| f.name_field) else {
            return Err(invalid(format!(
                "{} has no name field to search by.",
                known.label
            )));
        };
        let filter = (!text.is_empty()).then(|| Cond::like_contains(&name.name, text));
        let mut page = Soql::select(&["Id", &name.name])
            .from(&describe.name)
            .order_by(&name.name, salesforce::soql::Order::Asc)
            .order_by("Id", salesforce::soql::Order::Asc)
            .limit(RECORDS_PER_PAGE);
        if offset > 0 {
            page = page.offset(offset);
        }
        let mut count = Soql::count().from(&describe.name);
        if let Some(filter) = filter {
            page = page.filter(filter.clone());
            count = count.filter(filter);
        }
        let rows: Vec<Value> = self
            .salesforce
            .query_all(&page.build().map_err(salesforce::Error::from)?)
            .await?;
        let total = self
            .salesforce
            .count(&count.build().map_err(salesforce::Error::from)?)
            .await?;
        let records = rows
            .iter()
            .filter_map(|row| {
                let id = row.get("Id")?.as_str()?.to_string();
                let name = match row.get(name.name.as_str()) {
                    Some(Value::String(s)) => s.clone(),
                    _ => String::new(),
                };
                Some(RecordHit { id, name })
            })
            .collect();
        Ok(RecordSearch {
            object: describe.name.clone(),
            name_field: name.name.clone(),
            name_label: name.label.clone(),
            records,
            total,
            offset,
        })
    }
}
