//! The blast-radius preview's answer: what a scope would expose if it were granted (the
//! services read it from the org; the review page shows it).

use serde::{Deserialize, Serialize};

use crate::scope::Level;

/// What a scope would expose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlastRadius {
    pub objects: Vec<ObjectBlast>,
    /// From [`crate::scope::Scope::risks`]: View All, Modify All, edit on sensitive fields.
    pub risks: Vec<String>,
    /// What cannot be granted as it stands: objects or fields the org does not have,
    /// chosen records that do not exist or belong to no granted object, an unknown group,
    /// edit on read-only fields.
    pub problems: Vec<String>,
}

/// One object of the scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectBlast {
    /// As the org spells it (as asked when the org does not have it).
    pub object: String,
    pub level: Level,
    /// Fields governed by field-level security, with the level granted.
    pub fields: Vec<(String, Level)>,
    /// Fields the org does not have (also listed in [`BlastRadius::problems`]).
    pub unknown_fields: Vec<String>,
    /// Fields in the scope that field-level security does not govern: they come with
    /// object access whatever the scope says (not a problem, but worth knowing).
    pub object_access_fields: Vec<String>,
    /// Records the visibility rule would expose; `None` when it cannot be counted. What is
    /// counted (also said in words in `counted`):
    /// - View All / Modify All: every record of the object.
    /// - owned / shared: the chosen record ids of this object (matched by key prefix) that
    ///   exist (`COUNT() ... WHERE Id IN (...)`).
    /// - group: records shared with the group through the object's share object
    ///   (`COUNT()` of e.g. `CaseShare` rows for the group) plus records the group (a queue)
    ///   owns. Objects without a share object (sharing controlled by the parent record)
    ///   are not counted.
    pub record_count: Option<u64>,
    /// How `record_count` was found, in words.
    pub counted: String,
    /// `COUNT()` of all records of the object, for contrast.
    pub total_records: u64,
}
