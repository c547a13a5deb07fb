//! The org's objects and fields as the scope pickers show them (from the describe).

use serde::{Deserialize, Serialize};

/// An object of the org, as the scope pickers show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgObject {
    pub name: String,
    pub label: String,
    /// Every field of the describe, in its order.
    pub fields: Vec<OrgField>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgField {
    pub name: String,
    pub label: String,
    /// `updateable` in the describe: edit access can mean something.
    pub editable: bool,
    /// Field-level security applies. Fields that are not permissionable come with object
    /// access (Id, Name, system fields, required fields).
    pub permissionable: bool,
}

impl OrgObject {
    pub fn field(&self, name: &str) -> Option<&OrgField> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The object with only the fields a scope can grant (field-level security applies).
    pub fn grantable(mut self) -> Self {
        self.fields.retain(|f| f.permissionable);
        self
    }
}
