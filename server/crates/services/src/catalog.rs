//! The access catalog: named packages of object and field permissions, a record visibility
//! rule and a default budget, which contractors pick from and approvers start from. Packages
//! are checked against the org's describe (cached for a few minutes), so only objects and
//! fields that exist can be saved.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::FieldErrors;
use shared::budget::Budget;
use shared::fields;
use shared::scope::{Level, ObjectAccess, Scope, Visibility, VisibilityRule};

use crate::Portal;
use crate::audit::{self, Actor, AuditAction, Target};
use crate::decisions::scope_problems;

/// The objects the portal grants access to.
pub const CATALOG_OBJECTS: [&str; 4] = ["Account", "Contact", "Case", "Task"];

/// How long a describe of the org is reused: field changes in Setup show up after this.
pub const ORG_CACHE_TTL: Duration = Duration::from_secs(5 * 60);

pub use shared::org::{OrgField, OrgObject};

/// A named package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub id: String,
    pub name: String,
    pub description: String,
    pub scope: Scope,
    pub budget: Budget,
    pub created_by: String,
    pub updated_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{0}")]
    Invalid(FieldErrors),
    #[error("there is no such package")]
    NotFound,
    #[error("the org's objects could not be read: {0}")]
    Salesforce(#[from] salesforce::Error),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// The describe cache kept in the [`Portal`]. Refreshing holds the lock, so concurrent
/// page loads after expiry cost one round of describes, not one each.
#[derive(Clone, Default)]
pub struct OrgCache(Arc<tokio::sync::Mutex<Option<Described>>>);

/// A describe of the org and when it was read.
struct Described {
    at: Instant,
    objects: Vec<OrgObject>,
}

impl std::fmt::Debug for OrgCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OrgCache")
    }
}

fn to_org_object(describe: salesforce::rest::Describe) -> OrgObject {
    OrgObject {
        name: describe.name,
        label: describe.label,
        fields: describe
            .fields
            .into_iter()
            .map(|f| OrgField {
                name: f.name,
                label: f.label,
                editable: f.updateable,
                permissionable: f.permissionable,
            })
            .collect(),
    }
}

/// Checks `scope` against the org and returns it with the org's spelling of every name.
fn against_org(scope: &Scope, org: &[OrgObject]) -> Result<Scope, FieldErrors> {
    let mut errors = FieldErrors::default();
    let mut out = scope.clone();
    for object in &mut out.objects {
        let Some(org_object) = org
            .iter()
            .find(|o| o.name.eq_ignore_ascii_case(&object.object))
        else {
            errors.add(
                "scope",
                format!(
                    "There is no object {} in the org (packages can use {}).",
                    object.object,
                    org.iter()
                        .map(|o| o.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            continue;
        };
        object.object = org_object.name.clone();
        let mut fields = BTreeMap::new();
        for (name, level) in &object.fields {
            match org_object.field(name) {
                None => errors.add(
                    "scope",
                    format!("There is no field {}.{name} in the org.", org_object.name),
                ),
                Some(field) if *level == Level::Edit && !field.editable => errors.add(
                    "scope",
                    format!(
                        "{}.{} is read-only in the org; grant it as read.",
                        org_object.name, field.name
                    ),
                ),
                Some(field) => {
                    let entry = fields.entry(field.name.clone()).or_insert(*level);
                    *entry = (*entry).max(*level);
                }
            }
        }
        object.fields = fields;
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Packages merged: each object and field at the highest level any package gives it,
/// View All / Modify All if any package has them, and the first package's visibility rule
/// (visibility rules do not combine: one integration user sees records one way).
pub fn merge(packages: &[&Package]) -> Option<Scope> {
    let first = packages.first()?;
    let mut objects: Vec<ObjectAccess> = Vec::new();
    for package in packages {
        for object in &package.scope.objects {
            match objects
                .iter_mut()
                .find(|o| o.object.eq_ignore_ascii_case(&object.object))
            {
                Some(merged) => {
                    merged.level = merged.level.max(object.level);
                    merged.view_all |= object.view_all;
                    merged.modify_all |= object.modify_all;
                    for (field, level) in &object.fields {
                        let key = merged
                            .fields
                            .keys()
                            .find(|k| k.eq_ignore_ascii_case(field))
                            .cloned()
                            .unwrap_or_else(|| field.clone());
                        let entry = merged.fields.entry(key).or_insert(*level);
                        *entry = (*entry).max(*level);
                    }
                }
                None => objects.push(object.clone()),
            }
        }
    }
    Some(Scope {
        objects,
        visibility: first.scope.visibility.clone(),
        packages: packages.iter().map(|p| p.name.clone()).collect(),
    })
}

fn decode_error(what: &str, e: serde_json::Error) -> sqlx::Error {
    sqlx::Error::Decode(format!("access_catalog.{what} is not valid JSON: {e}").into())
}

/// A row of `access_catalog`, selected as [`PACKAGE_COLUMNS`].
#[derive(sqlx::FromRow)]
struct PackageRow {
    id: String,
    name: String,
    description: String,
    scope: String,
    budget: String,
    created_by: String,
    updated_at: i64,
}

impl TryFrom<PackageRow> for Package {
    type Error = sqlx::Error;

    fn try_from(row: PackageRow) -> Result<Self, sqlx::Error> {
        Ok(Package {
            id: row.id,
            name: row.name,
            description: row.description,
            scope: serde_json::from_str(&row.scope).map_err(|e| decode_error("scope", e))?,
            budget: serde_json::from_str(&row.budget).map_err(|e| decode_error("budget", e))?,
            created_by: row.created_by,
            updated_at: row.updated_at,
        })
    }
}

const PACKAGE_COLUMNS: &str = "id, name, description, scope, budget, created_by, updated_at";

fn default_packages() -> Vec<(&'static str, &'static str, Scope)> {
    let object = |name: &str, fields: &[&str]| ObjectAccess {
        object: name.into(),
        level: Level::Edit,
        fields: fields
            .iter()
            .map(|f| (f.to_string(), Level::Read))
            .collect(),
        view_all: false,
        modify_all: false,
    };
    let visibility = |rule| Visibility {
        rule,
        record_ids: Vec::new(),
        group: None,
    };
    vec![
        (
            "Case handling",
            "Work on support cases shared with the contractor: read and update them, seeing their subject, description and priority.",
            Scope {
                objects: vec![object("Case", &["Subject", "Description", "Priority"])],
                visibility: visibility(VisibilityRule::Shared),
                packages: Vec::new(),
            },
        ),
        (
            "Task updates",
            "Update tasks the contractor's integration user owns (for example, mark them complete), seeing their subject, due date and description.",
            Scope {
                objects: vec![object("Task", &["Subject", "ActivityDate", "Description"])],
                visibility: visibility(VisibilityRule::Owned),
                packages: Vec::new(),
            },
        ),
    ]
}

fn unique_name(e: sqlx::Error, taken: &dyn Fn() -> CatalogError) -> CatalogError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => taken(),
        _ => CatalogError::Database(e),
    }
}

impl Portal {
    /// The objects a scope can use, from the org's describe (cached for [`ORG_CACHE_TTL`]).
    /// An object the org does not have (or hides from the portal's user) is left out.
    pub async fn org_objects(&self) -> Result<Vec<OrgObject>, salesforce::Error> {
        let mut cache = self.org_cache.0.lock().await;
        if let Some(described) = cache.as_ref()
            && described.at.elapsed() < ORG_CACHE_TTL
        {
            return Ok(described.objects.clone());
        }
        let sf = &self.salesforce;
        let described = tokio::join!(
            sf.describe(CATALOG_OBJECTS[0]),
            sf.describe(CATALOG_OBJECTS[1]),
            sf.describe(CATALOG_OBJECTS[2]),
            sf.describe(CATALOG_OBJECTS[3]),
        );
        let mut objects = Vec::new();
        for result in [described.0, described.1, described.2, described.3] {
            match result {
                Ok(describe) => objects.push(to_org_object(describe)),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        *cache = Some(Described {
            at: Instant::now(),
            objects: objects.clone(),
        });
        Ok(objects)
    }

    /// Forgets the cached describe, so the next [`Portal::org_objects`] reads the org.
    pub async fn forget_org_objects(&self) {
        *self.org_cache.0.lock().await = None;
    }

    /// Every package, by name.
    pub async fn packages(&self) -> Result<Vec<Package>, sqlx::Error> {
        sqlx::query_as::<_, PackageRow>(&format!(
            "SELECT {PACKAGE_COLUMNS} FROM access_catalog ORDER BY name, id"
        ))
        .fetch_all(self.db.pool())
        .await?
        .into_iter()
        .map(Package::try_from)
        .collect()
    }

    /// Creates a package (`id` None) or replaces one. The name (2 to 80 characters) must be
    /// unique regardless of case; every object and field must exist in the org, and edit
    /// only on fields the org lets anyone edit. Names are stored as the org spells them.
    /// Audited as `catalog.package_saved`.
    pub async fn save_package(
        &self,
        id: Option<&str>,
        name: &str,
        description: &str,
        scope: Scope,
        budget: Budget,
        actor: &Actor,
    ) -> Result<Package, CatalogError> {
        let mut errors = FieldErrors::default();
        let name = errors.check("name", fields::line(name, "package name", 2, 80));
        let description = errors.check(
            "description",
            fields::paragraph(description, "description", 0, 1000),
        );
        errors.0.extend(scope_problems(&scope).0);
        errors.0.extend(budget.problems().0);
        let scope = if errors.get("scope").is_none() {
            let org = self.org_objects().await?;
            match against_org(&scope, &org) {
                Ok(scope) => Some(scope),
                Err(problems) => {
                    errors.0.extend(problems.0);
                    None
                }
            }
        } else {
            None
        };
        let (Some(name), Some(description), Some(mut scope)) = (name, description, scope) else {
            return Err(CatalogError::Invalid(errors));
        };
        if !errors.is_empty() {
            return Err(CatalogError::Invalid(errors));
        }
        // A package is a template, not built from other packages.
        scope.packages.clear();
        let taken = || {
            let mut errors = FieldErrors::default();
            errors.add("name", format!("A package named '{name}' already exists."));
            CatalogError::Invalid(errors)
        };

        let mut tx = self.db.begin_write().await?;
        let clash: Option<String> = sqlx::query_scalar(
            "SELECT id FROM access_catalog WHERE LOWER(name) = LOWER($1) AND id <> $2",
        )
        .bind(&name)
        .bind(id.unwrap_or(""))
        .fetch_optional(&mut *tx.tx)
        .await?;
        if clash.is_some() {
            return Err(taken());
        }
        let now = self.clock().now_ms();
        let scope_json = serde_json::to_string(&scope).unwrap_or_default();
        let budget_json = serde_json::to_string(&budget).unwrap_or_default();
        let (package_id, created) = match id {
            Some(id) => {
                let updated = sqlx::query(
                    "UPDATE access_catalog SET name = $1, description = $2, scope = $3, budget = $4, updated_at = $5 WHERE id = $6",
                )
                .bind(&name)
                .bind(&description)
                .bind(&scope_json)
                .bind(&budget_json)
                .bind(now)
                .bind(id)
                .execute(&mut *tx.tx)
                .await
                .map_err(|e| unique_name(e, &taken))?;
                if updated.rows_affected() == 0 {
                    return Err(CatalogError::NotFound);
                }
                (id.to_string(), false)
            }
            None => {
                let id = uuid::Uuid::now_v7().to_string();
                sqlx::query(
                    "INSERT INTO access_catalog (id, name, description, scope, budget, created_by, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&id)
                .bind(&name)
                .bind(&description)
                .bind(&scope_json)
                .bind(&budget_json)
                .bind(&actor.name)
                .bind(now)
                .execute(&mut *tx.tx)
                .await
                .map_err(|e| unique_name(e, &taken))?;
                (id, true)
            }
        };
        audit::record(
            &mut tx.tx,
            actor,
            AuditAction::CatalogPackageSaved,
            Target::Package,
            &package_id,
            json!({
                "name": name,
                "created": created,
                "scope": scope.items(),
                "visibility": scope.visibility,
                "risks": scope.risks(),
                "budget": budget,
            }),
        )
        .await?;
        let package = sqlx::query_as::<_, PackageRow>(&format!(
            "SELECT {PACKAGE_COLUMNS} FROM access_catalog WHERE id = $1"
        ))
        .bind(&package_id)
        .fetch_one(&mut *tx.tx)
        .await
        .and_then(Package::try_from)?;
        tx.commit().await?;
        Ok(package)
    }

    /// Deletes a package; false when there was none. Requests already built from it keep
    /// their scope. Audited as `catalog.package_deleted`.
    pub async fn delete_package(&self, id: &str, actor: &Actor) -> Result<bool, sqlx::Error> {
        let mut tx = self.db.begin_write().await?;
        let Some(name) =
            sqlx::query_scalar::<_, String>("SELECT name FROM access_catalog WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx.tx)
                .await?
        else {
            return Ok(false);
        };
        sqlx::query("DELETE FROM access_catalog WHERE id = $1")
            .bind(id)
            .execute(&mut *tx.tx)
            .await?;
        audit::record(
            &mut tx.tx,
            actor,
            AuditAction::CatalogPackageDeleted,
            Target::Package,
            id,
            json!({ "name": name }),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The scope of the named packages (by id or by name, any case), merged as [`merge`]
    /// says. Unknown names are field errors on `packages`.
    pub async fn scope_from_packages(
        &self,
        names_or_ids: &[String],
    ) -> Result<Scope, CatalogError> {
        let all = self.packages().await?;
        let mut errors = FieldErrors::default();
        let mut chosen: Vec<&Package> = Vec::new();
        for key in names_or_ids {
            let key = key.trim();
            if key.is_empty() {
                continue;
            }
            match all
                .iter()
                .find(|p| p.id == key || p.name.eq_ignore_ascii_case(key))
            {
                Some(p) if !chosen.iter().any(|c| c.id == p.id) => chosen.push(p),
                Some(_) => {}
                None => errors.add("packages", format!("There is no package named '{key}'.")),
            }
        }
        if !errors.is_empty() {
            return Err(CatalogError::Invalid(errors));
        }
        merge(&chosen).ok_or_else(|| {
            let mut errors = FieldErrors::default();
            errors.add("packages", "Choose at least one package.");
            CatalogError::Invalid(errors)
        })
    }

    /// The scope a picker's choices ask for, checked against the org's describe: the chosen
    /// packages merged, widened by the objects and fields chosen one by one (the rules are
    /// [`crate::scope::build`]'s). An error is on the form's `access` (or `visibility`).
    pub async fn scope_from_selection(
        &self,
        selection: &crate::scope::Selection,
    ) -> Result<Scope, shared::FieldError> {
        use crate::scope::access_error;
        let objects = self.org_objects().await.map_err(|_| {
            access_error("The org's objects could not be read; try again in a moment.")
        })?;
        let chosen = selection.chosen_packages();
        let from_packages = if chosen.is_empty() {
            None
        } else {
            Some(
                self.scope_from_packages(&chosen)
                    .await
                    .map_err(|e| access_error(e.to_string()))?,
            )
        };
        crate::scope::build(&objects, from_packages, selection)
    }

    /// Fills an empty catalog with "Case handling" and "Task updates" (budget 1000 calls a
    /// day). Does nothing when any package exists; safe to run from several instances.
    pub async fn seed_default_packages(&self, actor: &Actor) -> Result<(), CatalogError> {
        let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM access_catalog")
            .fetch_one(self.db.pool())
            .await?;
        if existing > 0 {
            return Ok(());
        }
        for (name, description, scope) in default_packages() {
            match self
                .save_package(
                    None,
                    name,
                    description,
                    scope,
                    Budget::default_for(1000),
                    actor,
                )
                .await
            {
                // Another instance seeded it first.
                Err(CatalogError::Invalid(errors)) if errors.get("name").is_some() => {}
                other => {
                    other?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(
        name: &str,
        object: &str,
        fields: &[(&str, Level)],
        rule: VisibilityRule,
    ) -> Package {
        Package {
            id: name.to_lowercase(),
            name: name.into(),
            description: String::new(),
            scope: Scope {
                objects: vec![ObjectAccess {
                    object: object.into(),
                    level: Level::Read,
                    fields: fields.iter().map(|(f, l)| (f.to_string(), *l)).collect(),
                    view_all: false,
                    modify_all: false,
                }],
                visibility: Visibility {
                    rule,
                    record_ids: vec![],
                    group: None,
                },
                packages: vec![],
            },
            budget: Budget::default_for(10),
            created_by: "x".into(),
            updated_at: 0,
        }
    }

    #[test]
    fn merging_takes_the_highest_level_and_the_first_visibility() {
        let a = package(
            "A",
            "Case",
            &[("Subject", Level::Read), ("Priority", Level::Edit)],
            VisibilityRule::Shared,
        );
        let mut b = package(
            "B",
            "case",
            &[("subject", Level::Edit)],
            VisibilityRule::Owned,
        );
        b.scope.objects[0].level = Level::Edit;
        let c = package(
            "C",
            "Task",
            &[("Subject", Level::Read)],
            VisibilityRule::Group,
        );
        let merged = merge(&[&a, &b, &c]).unwrap();
        assert_eq!(merged.visibility.rule, VisibilityRule::Shared);
        assert_eq!(merged.packages, vec!["A", "B", "C"]);
        let case = merged.object("Case").unwrap();
        assert_eq!(case.level, Level::Edit);
        assert_eq!(case.fields.get("Subject"), Some(&Level::Edit));
        assert_eq!(case.fields.get("Priority"), Some(&Level::Edit));
        assert_eq!(case.fields.len(), 2);
        assert!(merged.object("Task").is_some());
        assert!(merge(&[]).is_none());
    }

    #[test]
    fn org_names_are_enforced_and_normalised() {
        let org = vec![OrgObject {
            name: "Case".into(),
            label: "Case".into(),
            fields: vec![
                OrgField {
                    name: "Subject".into(),
                    label: "Subject".into(),
                    editable: true,
                    permissionable: true,
                },
                OrgField {
                    name: "CaseNumber".into(),
                    label: "Case Number".into(),
                    editable: false,
                    permissionable: true,
                },
            ],
        }];
        let good = package(
            "P",
            "case",
            &[("SUBJECT", Level::Edit)],
            VisibilityRule::Owned,
        );
        let checked = against_org(&good.scope, &org).unwrap();
        assert_eq!(checked.objects[0].object, "Case");
        assert_eq!(checked.objects[0].fields.get("Subject"), Some(&Level::Edit));
        let bad = package(
            "P",
            "Case",
            &[("Nope", Level::Read), ("CaseNumber", Level::Edit)],
            VisibilityRule::Owned,
        );
        let errors = against_org(&bad.scope, &org).unwrap_err().to_string();
        assert!(errors.contains("Case.Nope"), "{errors}");
        assert!(errors.contains("CaseNumber is read-only"), "{errors}");
    }
}
