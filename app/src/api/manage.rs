//! Owners' and approvers' management: the access catalog (approvers may look, owners
//! change it), roles and settings.

#[cfg(feature = "ssr")]
use std::collections::HashMap;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
#[cfg(feature = "ssr")]
use shared::FieldErrors;
use shared::auth::Role;
use shared::budget::Budget;
use shared::org::OrgObject;
use shared::scope::ScopeSelection;

use super::ApiError;

/// An access catalog package, as the catalog page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub access: Vec<String>,
    pub records: String,
    pub budget: Budget,
    pub updated_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogView {
    pub packages: Vec<PackageRow>,
    /// The org's objects with the fields a scope can grant.
    pub objects: Vec<OrgObject>,
    /// The viewer is an owner, who alone may add and remove packages.
    pub can_edit: bool,
}

#[server(endpoint = "catalog")]
pub async fn catalog() -> Result<CatalogView, ApiError> {
    use super::ssr::{portal, require};
    let (_, viewer) = require(&[Role::Approver, Role::Owner]).await?;
    let portal = portal()?;
    let packages = portal.packages().await?;
    let objects = portal.org_objects().await?;
    Ok(CatalogView {
        packages: packages
            .into_iter()
            .map(|p| PackageRow {
                access: p.scope.summary(),
                records: p.scope.visibility.rule.describe().to_string(),
                id: p.id,
                name: p.name,
                description: p.description,
                budget: p.budget,
                updated_by: p.created_by,
            })
            .collect(),
        objects: objects.into_iter().map(OrgObject::grantable).collect(),
        can_edit: viewer.roles.owner,
    })
}

/// The new-package form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageForm {
    pub name: String,
    pub description: String,
    /// The objects and fields the package grants, and its visibility rule.
    #[serde(flatten)]
    pub scope: ScopeSelection,
    pub calls_per_day: String,
    pub calls_per_7_days: String,
    pub warn_percent: String,
    pub hard_action: Option<String>,
}

/// A package as the catalog saves it.
#[cfg(feature = "ssr")]
pub struct NewPackage {
    pub name: String,
    pub description: String,
    pub scope: shared::scope::Scope,
    pub budget: Budget,
}

#[cfg(feature = "ssr")]
impl PackageForm {
    /// The package, its scope checked against the org; the fields' problems are a 422.
    pub async fn parse(self, portal: &services::Portal) -> Result<NewPackage, ApiError> {
        let mut errors = FieldErrors::default();
        // A package is made of objects and fields, not of other packages.
        let selection = ScopeSelection {
            packages: HashMap::new(),
            ..self.scope
        };
        let scope = match portal.scope_from_selection(&selection).await {
            Ok(scope) if scope.is_empty() => {
                errors.add("access", "A package grants at least one object.");
                None
            }
            Ok(scope) => Some(scope),
            Err(e) => {
                errors.0.push(e);
                None
            }
        };
        let budget = match Budget::parse(
            &self.calls_per_day,
            &self.calls_per_7_days,
            &self.warn_percent,
            self.hard_action.as_deref().unwrap_or("none"),
        ) {
            Ok(b) => Some(b),
            Err(problems) => {
                errors.0.extend(problems.0);
                None
            }
        };
        match (scope, budget) {
            (Some(scope), Some(budget)) => Ok(NewPackage {
                name: self.name,
                description: self.description,
                scope,
                budget,
            }),
            _ => Err(ApiError::invalid(errors)),
        }
    }
}

/// What saving did, `"Saved"` (a refusal is an [`ApiError`], 422 with the fields' problems).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SaveResult {
    Saved,
}

#[server(endpoint = "save_package")]
pub async fn save_package(#[server(flatten)] form: PackageForm) -> Result<SaveResult, ApiError> {
    use super::ssr::{actor, portal, require};
    let (user, _) = require(&[Role::Owner]).await?;
    let portal = portal()?;
    let package = form.parse(&portal).await?;
    let actor = actor(&user.username).await;
    portal
        .save_package(
            None,
            &package.name,
            &package.description,
            package.scope,
            package.budget,
            &actor,
        )
        .await?;
    Ok(SaveResult::Saved)
}

#[server(endpoint = "delete_package")]
pub async fn delete_package(id: String) -> Result<bool, ApiError> {
    use super::ssr::{actor, portal, require, status};
    let (user, _) = require(&[Role::Owner]).await?;
    let portal = portal()?;
    let actor = actor(&user.username).await;
    let deleted = portal.delete_package(id.trim(), &actor).await?;
    if !deleted {
        status(404);
    }
    Ok(deleted)
}

/// A role grant as the settings page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRow {
    pub username: String,
    pub role: Role,
    pub granted_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsView {
    pub grants: Vec<GrantRow>,
    /// Who holds each role by configuration, one line per role.
    pub mapping: Vec<String>,
    pub approvals_required: i64,
    pub max_end_days: i64,
}

#[server(endpoint = "settings")]
pub async fn load_settings() -> Result<SettingsView, ApiError> {
    use super::ssr::{portal, require};
    require(&[Role::Owner]).await?;
    let portal = portal()?;
    let grants = portal.role_grants().await?;
    let settings = portal.settings_view().await?;
    Ok(SettingsView {
        grants: grants
            .into_iter()
            .map(|g| GrantRow {
                username: g.username,
                role: g.role,
                granted_by: g.granted_by,
            })
            .collect(),
        mapping: portal.role_mapping_lines(),
        approvals_required: settings.approvals_required,
        max_end_days: settings.max_end_days,
    })
}

#[server(endpoint = "set_role")]
pub async fn set_role(
    username: String,
    role: String,
    granted: String,
) -> Result<SaveResult, ApiError> {
    use super::ssr::{actor, portal, require};
    let (user, _) = require(&[Role::Owner]).await?;
    let portal = portal()?;
    let mut errors = FieldErrors::default();
    let role = Role::parse(&role);
    if role.is_none() {
        errors.add("role", "Choose a role.");
    }
    let granted = match granted.as_str() {
        "grant" | "true" => Some(true),
        "revoke" | "false" => Some(false),
        _ => {
            errors.add("granted", "Choose grant or revoke.");
            None
        }
    };
    let username = username.trim().to_ascii_lowercase();
    if username.len() < 3 || !username.contains('@') || username.len() > 80 {
        errors.add(
            "username",
            "Enter a Salesforce username (it looks like an email address).",
        );
    }
    let (Some(role), Some(granted)) = (role, granted.filter(|_| errors.is_empty())) else {
        return Err(ApiError::invalid(errors));
    };
    let actor = actor(&user.username).await;
    portal.set_role(&username, role, granted, &actor).await?;
    Ok(SaveResult::Saved)
}

#[server(endpoint = "save_settings")]
pub async fn save_settings(
    approvals_required: String,
    max_end_days: String,
) -> Result<SaveResult, ApiError> {
    use super::ssr::{actor, portal, require};
    let (user, _) = require(&[Role::Owner]).await?;
    let portal = portal()?;
    let mut errors = FieldErrors::default();
    let approvals = errors.check(
        "approvals_required",
        shared::fields::whole_number(&approvals_required, "number of approvals", 1, 2),
    );
    let days = errors.check(
        "max_end_days",
        shared::fields::whole_number(&max_end_days, "longest term in days", 1, 730),
    );
    let (Some(approvals), Some(days)) = (approvals, days) else {
        return Err(ApiError::invalid(errors));
    };
    let actor = actor(&user.username).await;
    portal
        .update_settings(approvals as i64, days as i64, &actor)
        .await?;
    Ok(SaveResult::Saved)
}
