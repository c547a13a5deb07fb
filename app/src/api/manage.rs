//! Owners' and approvers' management: the access catalog (approvers may look, owners
//! change it), roles and settings.

// A server function's arguments are its form's fields, one each.
#![allow(clippy::too_many_arguments)]

use std::collections::HashMap;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use shared::FieldErrors;
use shared::auth::Role;
use shared::budget::Budget;

use crate::api::admin::OrgObjectRow;

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
    pub objects: Vec<OrgObjectRow>,
    /// The viewer is an owner, who alone may add and remove packages.
    pub can_edit: bool,
}

#[server(endpoint = "catalog")]
pub async fn catalog() -> Result<CatalogView, ServerFnError> {
    use super::ssr::{internal, portal, require};
    let (_, viewer) = require(&[Role::Approver, Role::Owner]).await?;
    let portal = portal()?;
    let packages = portal.packages().await.map_err(internal)?;
    let objects = portal.org_objects().await.map_err(internal)?;
    Ok(CatalogView {
        packages: packages
            .into_iter()
            .map(|p| PackageRow {
                access: p
                    .scope
                    .items()
                    .into_iter()
                    .map(|(k, v)| format!("{k}: {}", v.as_str()))
                    .collect(),
                records: p.scope.visibility.rule.describe().to_string(),
                id: p.id,
                name: p.name,
                description: p.description,
                budget: p.budget,
                updated_by: p.created_by,
            })
            .collect(),
        objects: objects
            .into_iter()
            .map(|o| OrgObjectRow {
                fields: o
                    .fields
                    .into_iter()
                    .filter(|f| f.permissionable)
                    .map(|f| crate::api::admin::OrgFieldRow {
                        name: f.name,
                        label: f.label,
                        editable: f.editable,
                    })
                    .collect(),
                name: o.name,
                label: o.label,
            })
            .collect(),
        can_edit: viewer.roles.owner,
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SaveResult {
    Saved,
    Invalid(FieldErrors),
}

#[server(endpoint = "save_package")]
pub async fn save_package(
    name: String,
    description: String,
    object_level: Option<HashMap<String, String>>,
    field_level: Option<HashMap<String, String>>,
    visibility: Option<String>,
    calls_per_day: String,
    calls_per_7_days: String,
    warn_percent: String,
    hard_action: Option<String>,
) -> Result<SaveResult, ServerFnError> {
    use super::ssr::{actor, internal, portal, require, status};
    use services::catalog::CatalogError;
    let (user, _) = require(&[Role::Owner]).await?;
    let portal = portal()?;
    let mut errors = FieldErrors::default();
    let selection = super::intake::ssr::Selection {
        packages: HashMap::new(),
        objects: object_level.unwrap_or_default(),
        fields: field_level.unwrap_or_default(),
        visibility: visibility.unwrap_or_default(),
    };
    let scope = match super::intake::ssr::scope_from_selection(&portal, &selection).await {
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
        &calls_per_day,
        &calls_per_7_days,
        &warn_percent,
        hard_action.as_deref().unwrap_or("none"),
    ) {
        Ok(b) => Some(b),
        Err(problems) => {
            errors.0.extend(problems.0);
            None
        }
    };
    let (Some(scope), Some(budget)) = (scope, budget) else {
        status(422);
        return Ok(SaveResult::Invalid(errors));
    };
    let actor = actor(&user.username).await;
    match portal
        .save_package(None, &name, &description, scope, budget, &actor)
        .await
    {
        Ok(_) => Ok(SaveResult::Saved),
        Err(CatalogError::Invalid(errors)) => {
            status(422);
            Ok(SaveResult::Invalid(errors.renamed("scope", "access")))
        }
        Err(e) => Err(internal(e)),
    }
}

#[server(endpoint = "delete_package")]
pub async fn delete_package(id: String) -> Result<bool, ServerFnError> {
    use super::ssr::{actor, internal, portal, require, status};
    let (user, _) = require(&[Role::Owner]).await?;
    let portal = portal()?;
    let actor = actor(&user.username).await;
    let deleted = portal
        .delete_package(id.trim(), &actor)
        .await
        .map_err(internal)?;
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
    pub mapping: Vec<String>,
    pub approvals_required: i64,
    pub max_end_days: i64,
}

#[server(endpoint = "settings")]
pub async fn load_settings() -> Result<SettingsView, ServerFnError> {
    use super::ssr::{internal, portal, require};
    require(&[Role::Owner]).await?;
    let portal = portal()?;
    let grants = portal.role_grants().await.map_err(internal)?;
    let settings = portal.settings_view().await.map_err(internal)?;
    let mapping = &portal.settings.roles;
    let mut lines = Vec::new();
    for (label, names, set) in [
        (
            "Approvers",
            &mapping.approvers,
            &mapping.approver_permission_set,
        ),
        (
            "Security reviewers",
            &mapping.security_reviewers,
            &mapping.security_reviewer_permission_set,
        ),
        ("Owners", &mapping.owners, &mapping.owner_permission_set),
    ] {
        let mut parts = Vec::new();
        if !names.is_empty() {
            parts.push(format!("usernames {}", names.join(", ")));
        }
        if let Some(set) = set {
            parts.push(format!("holders of the permission set {set}"));
        }
        lines.push(format!(
            "{label}: {}",
            if parts.is_empty() {
                "none from configuration".to_string()
            } else {
                parts.join("; ")
            }
        ));
    }
    Ok(SettingsView {
        grants: grants
            .into_iter()
            .map(|g| GrantRow {
                username: g.username,
                role: g.role,
                granted_by: g.granted_by,
            })
            .collect(),
        mapping: lines,
        approvals_required: settings.approvals_required,
        max_end_days: settings.max_end_days,
    })
}

#[server(endpoint = "set_role")]
pub async fn set_role(
    username: String,
    role: String,
    granted: String,
) -> Result<SaveResult, ServerFnError> {
    use super::ssr::{actor, internal, portal, require, status};
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
        status(422);
        return Ok(SaveResult::Invalid(errors));
    };
    let actor = actor(&user.username).await;
    portal
        .set_role(&username, role, granted, &actor)
        .await
        .map_err(internal)?;
    Ok(SaveResult::Saved)
}

#[server(endpoint = "save_settings")]
pub async fn save_settings(
    approvals_required: String,
    max_end_days: String,
) -> Result<SaveResult, ServerFnError> {
    use super::ssr::{actor, portal, require, status};
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
        status(422);
        return Ok(SaveResult::Invalid(errors));
    };
    let actor = actor(&user.username).await;
    match portal
        .update_settings(approvals as i64, days as i64, &actor)
        .await
    {
        Ok(()) => Ok(SaveResult::Saved),
        Err(services::settings::SettingsError::Invalid(errors)) => {
            status(422);
            Ok(SaveResult::Invalid(errors))
        }
        Err(services::settings::SettingsError::Database(e)) => Err(super::ssr::internal(e)),
    }
}
