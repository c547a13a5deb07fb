//! The access a contractor asks for and an approver grants: objects and fields, each read
//! or edit, and which records become visible.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// One object or field of a scope as a person reads it: "Case — Description (read)", with
/// its API name (`Case.Description`) kept beside the label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessLine {
    /// `Case` or `Case.Description`.
    pub api_name: String,
    /// "Case (read)" or "Case — Description (read)".
    pub label: String,
    pub level: Level,
}

impl AccessLine {
    /// The line of `api_name` at `level`, labelled from the org's describe.
    pub fn new(api_name: String, level: Level, described: &[crate::org::OrgObject]) -> Self {
        let (object, field) = match api_name.split_once('.') {
            Some((object, field)) => (object, Some(field)),
            None => (api_name.as_str(), None),
        };
        let found = described
            .iter()
            .find(|o| o.name.eq_ignore_ascii_case(object));
        let object_label = found
            .map(|o| o.label.trim())
            .filter(|l| !l.is_empty())
            .unwrap_or(object);
        let label = match field {
            None => format!("{object_label} ({})", level.as_str()),
            Some(field) => {
                let field_label = found
                    .and_then(|o| o.field(field))
                    .map(|f| f.label.trim())
                    .filter(|l| !l.is_empty())
                    .unwrap_or(field);
                format!("{object_label} — {field_label} ({})", level.as_str())
            }
        };
        Self {
            label,
            api_name,
            level,
        }
    }

    /// The same line labelled again from `described` (the services label without the org's
    /// describe; the pages' server functions, which may read it, label with it).
    pub fn relabel(lines: &mut [AccessLine], described: &[crate::org::OrgObject]) {
        for line in lines {
            *line = AccessLine::new(std::mem::take(&mut line.api_name), line.level, described);
        }
    }
}

/// Read or edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Read,
    Edit,
}

impl Level {
    pub fn parse(raw: &str) -> Option<Option<Level>> {
        match raw.trim() {
            "" | "none" => Some(None),
            "read" => Some(Some(Level::Read)),
            "edit" => Some(Some(Level::Edit)),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Read => "read",
            Level::Edit => "edit",
        }
    }
}

/// Access to one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectAccess {
    pub object: String,
    /// Read records, or read and edit them.
    pub level: Level,
    /// Fields governed by field-level security, each read or edit.
    pub fields: BTreeMap<String, Level>,
    /// See every record of the object, whatever the sharing (risky).
    #[serde(default)]
    pub view_all: bool,
    /// Change every record of the object (risky).
    #[serde(default)]
    pub modify_all: bool,
}

/// How the contractor's integration user comes to see records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VisibilityRule {
    /// Chosen records are transferred to the integration user.
    Owned,
    /// Chosen records are shared with it (manual shares).
    Shared,
    /// It joins a public group that already sees records.
    Group,
}

impl VisibilityRule {
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim() {
            "owned" => Ok(Self::Owned),
            "shared" => Ok(Self::Shared),
            "group" => Ok(Self::Group),
            "" => Err("Choose how the contractor's records are picked.".into()),
            other => Err(format!("'{other}' is not a record visibility rule.")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owned => "owned",
            Self::Shared => "shared",
            Self::Group => "group",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::Owned => "records owned by the integration user",
            Self::Shared => "records shared with the integration user",
            Self::Group => "records visible to a public group",
        }
    }
}

/// Which records: the rule, the chosen record ids (owned/shared), or the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visibility {
    pub rule: VisibilityRule,
    #[serde(default)]
    pub record_ids: Vec<String>,
    #[serde(default)]
    pub group: Option<String>,
}

/// The whole access of a request or grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub objects: Vec<ObjectAccess>,
    pub visibility: Visibility,
    /// Access catalog packages this scope was built from (for display).
    #[serde(default)]
    pub packages: Vec<String>,
}

/// Fields whose edit access is flagged as risky in reviews.
pub const SENSITIVE_FIELDS: &[&str] = &[
    "Account.AnnualRevenue",
    "Account.Phone",
    "Contact.Email",
    "Contact.Phone",
    "Case.SuppliedEmail",
    "Case.Description",
];

/// One line of a scope comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeChange {
    /// `Case` or `Case.Subject`.
    pub item: String,
    pub requested: Option<Level>,
    pub granted: Option<Level>,
}

impl ScopeChange {
    /// More than was asked for.
    pub fn is_widening(&self) -> bool {
        match (self.requested, self.granted) {
            (None, Some(_)) => true,
            (Some(r), Some(g)) => g > r,
            _ => false,
        }
    }

    pub fn is_narrowing(&self) -> bool {
        match (self.requested, self.granted) {
            (Some(_), None) => true,
            (Some(r), Some(g)) => g < r,
            _ => false,
        }
    }
}

impl Scope {
    pub fn object(&self, name: &str) -> Option<&ObjectAccess> {
        self.objects
            .iter()
            .find(|o| o.object.eq_ignore_ascii_case(name))
    }

    /// Every object and field with its level, flattened (`Case`, `Case.Subject`).
    pub fn items(&self) -> BTreeMap<String, Level> {
        let mut out = BTreeMap::new();
        for object in &self.objects {
            out.insert(object.object.clone(), object.level);
            for (field, level) in &object.fields {
                out.insert(format!("{}.{field}", object.object), *level);
            }
        }
        out
    }

    /// Every object and field with its level as people read them: labels from the org's
    /// describe (`described`; an object or field it does not have keeps its API name), the
    /// API names beside them. Objects in the scope's order, each followed by its fields.
    pub fn lines(&self, described: &[crate::org::OrgObject]) -> Vec<AccessLine> {
        let mut out = Vec::new();
        for object in &self.objects {
            out.push(AccessLine::new(
                object.object.clone(),
                object.level,
                described,
            ));
            for (field, level) in &object.fields {
                out.push(AccessLine::new(
                    format!("{}.{field}", object.object),
                    *level,
                    described,
                ));
            }
        }
        out
    }

    /// Every object and field with its level, one line each (`Case.Subject: read`).
    pub fn summary(&self) -> Vec<String> {
        self.items()
            .into_iter()
            .map(|(item, level)| format!("{item}: {}", level.as_str()))
            .collect()
    }

    /// Differences between what was asked for (`self`) and `granted`.
    pub fn diff(&self, granted: &Scope) -> Vec<ScopeChange> {
        let requested = self.items();
        let given = granted.items();
        let mut keys: Vec<&String> = requested.keys().chain(given.keys()).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .filter_map(|k| {
                let change = ScopeChange {
                    item: k.clone(),
                    requested: requested.get(k).copied(),
                    granted: given.get(k).copied(),
                };
                (change.requested != change.granted).then_some(change)
            })
            .collect()
    }

    /// Why this scope needs extra scrutiny (empty when it does not).
    pub fn risks(&self) -> Vec<String> {
        let mut risks = Vec::new();
        for object in &self.objects {
            if object.modify_all {
                risks.push(format!(
                    "Modify All on {} (Salesforce grants it only with Delete and View All)",
                    object.object
                ));
            } else if object.view_all {
                risks.push(format!("View All on {}", object.object));
            }
            for (field, level) in &object.fields {
                let path = format!("{}.{field}", object.object);
                // Salesforce names are case-insensitive: `case.description` is the same field.
                if *level == Level::Edit
                    && SENSITIVE_FIELDS
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(&path))
                {
                    risks.push(format!("Edit on the sensitive field {path}"));
                }
            }
        }
        risks
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_lines_read_in_the_orgs_labels_with_api_names_beside_them() {
        use crate::org::{OrgField, OrgObject};
        let described = vec![OrgObject {
            name: "Case".into(),
            label: "Support Case".into(),
            fields: vec![OrgField {
                name: "Description".into(),
                label: "Problem Description".into(),
                editable: true,
                permissionable: true,
            }],
        }];
        let s = scope(
            &[("Description", Level::Read), ("Custom__c", Level::Edit)],
            Level::Edit,
        );
        let lines = s.lines(&described);
        let labels: Vec<(&str, &str)> = lines
            .iter()
            .map(|l| (l.label.as_str(), l.api_name.as_str()))
            .collect();
        assert_eq!(
            labels,
            vec![
                ("Support Case (edit)", "Case"),
                // A field the describe does not have keeps its API name.
                ("Support Case — Custom__c (edit)", "Case.Custom__c"),
                (
                    "Support Case — Problem Description (read)",
                    "Case.Description"
                ),
            ]
        );
        // Without the describe, API names; relabelled once it is known.
        let mut bare = s.lines(&[]);
        assert_eq!(bare[2].label, "Case — Description (read)");
        AccessLine::relabel(&mut bare, &described);
        assert_eq!(bare, lines);
    }

    fn scope(fields: &[(&str, Level)], object_level: Level) -> Scope {
        Scope {
            objects: vec![ObjectAccess {
                object: "Case".into(),
                level: object_level,
                fields: fields.iter().map(|(f, l)| (f.to_string(), *l)).collect(),
                view_all: false,
                modify_all: false,
            }],
            visibility: Visibility {
                rule: VisibilityRule::Shared,
                record_ids: vec![],
                group: None,
            },
            packages: vec![],
        }
    }

    #[test]
    fn diffs_show_narrowing_and_widening() {
        let asked = scope(
            &[("Subject", Level::Read), ("Description", Level::Read)],
            Level::Read,
        );
        let granted = scope(&[("Subject", Level::Edit)], Level::Read);
        let diff = asked.diff(&granted);
        assert_eq!(diff.len(), 2);
        assert!(
            diff.iter()
                .any(|c| c.item == "Case.Description" && c.is_narrowing())
        );
        assert!(
            diff.iter()
                .any(|c| c.item == "Case.Subject" && c.is_widening())
        );
    }

    #[test]
    fn risky_scopes_are_named() {
        let mut risky = scope(&[("Description", Level::Edit)], Level::Edit);
        risky.objects[0].view_all = true;
        let risks = risky.risks();
        assert!(risks.iter().any(|r| r.contains("View All on Case")));
        assert!(risks.iter().any(|r| r.contains("Case.Description")));
        let lower = scope(&[("description", Level::Edit)], Level::Edit);
        assert_eq!(lower.risks().len(), 1, "any letter case is the same field");
        assert!(
            scope(&[("Subject", Level::Read)], Level::Read)
                .risks()
                .is_empty()
        );
    }
}

/// What a scope picker sends (the request form, the decision form, the catalog's package
/// form): chosen packages, each object's and field's level, and the visibility rule, under
/// the form's field names. The services check it against the org and build a [`Scope`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeSelection {
    /// package id → "on" (or "true"): the package is chosen.
    #[serde(default, rename = "package")]
    pub packages: HashMap<String, String>,
    /// object → none|read|edit
    #[serde(default, rename = "object_level")]
    pub objects: HashMap<String, String>,
    /// Object.Field → none|read|edit
    #[serde(default, rename = "field_level")]
    pub fields: HashMap<String, String>,
    /// owned|shared|group, or empty for the packages' rule (else shared).
    #[serde(default)]
    pub visibility: String,
}

impl ScopeSelection {
    /// The chosen packages' ids, sorted.
    pub fn chosen_packages(&self) -> Vec<String> {
        let mut chosen: Vec<String> = self
            .packages
            .iter()
            .filter(|(_, v)| v.as_str() == "on" || v.as_str() == "true")
            .map(|(k, _)| k.clone())
            .collect();
        chosen.sort();
        chosen
    }
}
