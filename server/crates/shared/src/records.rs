//! The record picker's answer: an object's records whose name matches a search, as the
//! portal's connection to the org sees them, a page at a time, with how many match in all.

use serde::{Deserialize, Serialize};

/// Records shown per page of the record picker.
pub const RECORDS_PER_PAGE: u32 = 20;

/// One record found: its 18-character id and its name (the object's name field's value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordHit {
    pub id: String,
    pub name: String,
}

/// One page of a record search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSearch {
    /// The object searched (`Case`).
    pub object: String,
    /// The object's name field searched and shown (`CaseNumber`), and its label.
    pub name_field: String,
    pub name_label: String,
    /// The records of this page, by name.
    pub records: Vec<RecordHit>,
    /// How many records match in all.
    pub total: u64,
    /// How many matching records come before this page.
    pub offset: u32,
}

impl RecordSearch {
    /// "Showing 1–20 of 134", "No records match".
    pub fn summary(&self) -> String {
        match self.records.len() {
            0 => "No records match.".to_string(),
            n => format!(
                "Showing {}–{} of {}",
                u64::from(self.offset) + 1,
                u64::from(self.offset) + n as u64,
                self.total
            ),
        }
    }

    /// Whether more records follow this page.
    pub fn has_more(&self) -> bool {
        u64::from(self.offset) + (self.records.len() as u64) < self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(offset: u32, shown: usize, total: u64) -> RecordSearch {
        RecordSearch {
            object: "Case".into(),
            name_field: "CaseNumber".into(),
            name_label: "Case Number".into(),
            records: (0..shown)
                .map(|i| RecordHit {
                    id: format!("id{i}"),
                    name: format!("n{i}"),
                })
                .collect(),
            total,
            offset,
        }
    }

    #[test]
    fn summary_and_more() {
        assert_eq!(page(0, 20, 134).summary(), "Showing 1–20 of 134");
        assert!(page(0, 20, 134).has_more());
        assert_eq!(page(120, 14, 134).summary(), "Showing 121–134 of 134");
        assert!(!page(120, 14, 134).has_more());
        assert_eq!(page(0, 0, 0).summary(), "No records match.");
        assert!(!page(0, 0, 0).has_more());
    }
}
