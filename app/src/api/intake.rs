//! The contractor's side: the request form, email verification, the status page, and the
//! sandbox-only mail outbox.

// A server function's arguments are its form's fields, one each.
#![allow(clippy::too_many_arguments)]

use std::collections::HashMap;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use shared::FieldErrors;
use shared::request::StatusView;

/// A field the request form offers (field-level security applies to it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldOption {
    pub name: String,
    pub label: String,
    pub editable: bool,
}

/// An object the request form offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectOption {
    pub name: String,
    pub label: String,
    pub fields: Vec<FieldOption>,
}

/// An access catalog package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageOption {
    pub id: String,
    pub name: String,
    pub description: String,
    pub summary: Vec<String>,
}

/// What the request form needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormOptions {
    pub objects: Vec<ObjectOption>,
    pub packages: Vec<PackageOption>,
    pub min_end_date: String,
    pub max_end_date: String,
    /// A fresh key per rendering: submitting the same form twice creates one request.
    pub submission_key: String,
}

#[server(endpoint = "request_form")]
pub async fn request_form() -> Result<FormOptions, ServerFnError> {
    use super::ssr::{internal, portal};
    let portal = portal()?;
    let objects = portal.org_objects().await.map_err(internal)?;
    let packages = portal.packages().await.map_err(internal)?;
    let max_days = portal
        .setting_i64("max_end_days")
        .await
        .map_err(internal)?
        .unwrap_or(portal.settings.max_end_days);
    let today = portal.clock().today();
    Ok(FormOptions {
        objects: objects
            .into_iter()
            .map(|o| ObjectOption {
                fields: o
                    .fields
                    .into_iter()
                    .filter(|f| f.permissionable)
                    .map(|f| FieldOption {
                        name: f.name,
                        label: f.label,
                        editable: f.editable,
                    })
                    .collect(),
                name: o.name,
                label: o.label,
            })
            .collect(),
        packages: packages
            .into_iter()
            .map(|p| PackageOption {
                summary: p
                    .scope
                    .items()
                    .into_iter()
                    .map(|(k, v)| format!("{k}: {}", v.as_str()))
                    .collect(),
                id: p.id,
                name: p.name,
                description: p.description,
            })
            .collect(),
        min_end_date: (today + chrono::Duration::days(1)).to_string(),
        max_end_date: (today + chrono::Duration::days(max_days)).to_string(),
        submission_key: uuid::Uuid::new_v4().simple().to_string(),
    })
}

/// The answer to a submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubmitOutcome {
    Submitted {
        request_id: String,
        contact_email: String,
    },
    Invalid(FieldErrors),
    Refused(String),
}

#[server(endpoint = "submit_request")]
pub async fn submit_request(
    company: String,
    contact_name: String,
    contact_email: String,
    justification: String,
    package: Option<HashMap<String, String>>,
    object_level: Option<HashMap<String, String>>,
    field_level: Option<HashMap<String, String>>,
    visibility: Option<String>,
    calls_per_day: String,
    ip_ranges: String,
    end_date: String,
    submission_key: String,
) -> Result<SubmitOutcome, ServerFnError> {
    use super::ssr::{actor, internal, portal, status};
    use services::requests::{IntakeError, SubmitInput};
    let portal = portal()?;
    let actor = actor(&format!(
        "contractor:{}",
        contact_email.trim().to_ascii_lowercase()
    ))
    .await;
    let selection = ssr::Selection {
        packages: package.unwrap_or_default(),
        objects: object_level.unwrap_or_default(),
        fields: field_level.unwrap_or_default(),
        visibility: visibility.unwrap_or_default(),
    };
    let (scope, scope_error) = match ssr::scope_from_selection(&portal, &selection).await {
        Ok(scope) => (Some(scope), None),
        Err(error) => (None, Some(error)),
    };
    let input = SubmitInput {
        company,
        contact_name,
        contact_email,
        justification,
        scope,
        scope_error,
        calls_per_day,
        ip_ranges,
        end_date,
        submission_key,
    };
    match portal.submit(input, &actor).await {
        Ok(done) => Ok(SubmitOutcome::Submitted {
            request_id: done.request_id,
            contact_email: done.contact_email,
        }),
        Err(IntakeError::Invalid(errors)) => {
            status(422);
            Ok(SubmitOutcome::Invalid(errors))
        }
        Err(IntakeError::RateLimited {
            retry_after_minutes,
        }) => {
            status(429);
            Ok(SubmitOutcome::Refused(format!(
                "Too many requests from your network. Try again in {retry_after_minutes} minutes."
            )))
        }
        Err(IntakeError::NotAllowed(message)) => Ok(SubmitOutcome::Refused(message)),
        Err(IntakeError::Database(e)) => Err(internal(e)),
    }
}

/// The answer to a verification attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerifyOutcome {
    Verified,
    Invalid(FieldErrors),
    Refused(String),
}

#[cfg(feature = "ssr")]
fn verify_outcome(
    result: Result<(), services::requests::IntakeError>,
) -> Result<VerifyOutcome, ServerFnError> {
    use services::requests::IntakeError;
    match result {
        Ok(()) => Ok(VerifyOutcome::Verified),
        Err(IntakeError::Invalid(errors)) => {
            super::ssr::status(422);
            Ok(VerifyOutcome::Invalid(errors))
        }
        Err(IntakeError::NotAllowed(message)) => {
            super::ssr::status(409);
            Ok(VerifyOutcome::Refused(message))
        }
        Err(IntakeError::RateLimited { .. }) => {
            Ok(VerifyOutcome::Refused("Too many attempts.".into()))
        }
        Err(IntakeError::Database(e)) => Err(super::ssr::internal(e)),
    }
}

#[server(endpoint = "verify_code")]
pub async fn verify_code(request_id: String, code: String) -> Result<VerifyOutcome, ServerFnError> {
    let portal = super::ssr::portal()?;
    let actor = super::ssr::actor("contractor").await;
    verify_outcome(portal.verify_code(request_id.trim(), &code, &actor).await)
}

/// What a verification link is for (opening it changes nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkInfo {
    pub company: String,
    pub pending: bool,
}

#[server(endpoint = "verification_link")]
pub async fn verification_link(token: String) -> Result<Option<LinkInfo>, ServerFnError> {
    let portal = super::ssr::portal()?;
    let info = portal
        .verification_link_info(&token)
        .await
        .map_err(super::ssr::internal)?;
    if info.is_none() {
        super::ssr::status(404);
    }
    Ok(info.map(|(_, company, state)| LinkInfo {
        company,
        pending: state == "pending_verification",
    }))
}

#[server(endpoint = "verify_link")]
pub async fn verify_link(token: String) -> Result<VerifyOutcome, ServerFnError> {
    let portal = super::ssr::portal()?;
    let actor = super::ssr::actor("contractor").await;
    verify_outcome(portal.verify_link(&token, &actor).await.map(|_| ()))
}

#[server(endpoint = "request_status")]
pub async fn request_status(token: String) -> Result<Option<StatusView>, ServerFnError> {
    let portal = super::ssr::portal()?;
    let view = portal.status(&token).await.map_err(super::ssr::internal)?;
    if view.is_none() {
        super::ssr::status(404);
    }
    Ok(view)
}

/// A message in the sandbox outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxItem {
    pub id: String,
    pub at: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
}

/// The local mail outbox: only in the default (sandbox) mode with no SMTP server.
#[server(endpoint = "outbox")]
pub async fn outbox() -> Result<Vec<OutboxItem>, ServerFnError> {
    use super::ssr::{internal, portal, refuse};
    let portal = portal()?;
    if !portal.settings.sandbox_mode || !portal.mail.is_outbox() {
        return Err(refuse(
            404,
            "There is no outbox: mail goes to the configured SMTP server.",
        ));
    }
    let mails = services::mail::outbox(&portal.db, None, 200)
        .await
        .map_err(internal)?;
    Ok(mails
        .into_iter()
        .map(|m| OutboxItem {
            id: m.id,
            at: services::clock::rfc3339(m.created_at),
            recipient: m.recipient,
            subject: m.subject,
            body: m.body,
        })
        .collect())
}

#[cfg(feature = "ssr")]
pub mod ssr {
    //! Turning the form's access choices into a scope, against the org's describe.

    use std::collections::{BTreeMap, HashMap};

    use shared::FieldError;
    use shared::scope::{Level, ObjectAccess, Scope, Visibility, VisibilityRule};

    pub struct Selection {
        /// package id → "on"
        pub packages: HashMap<String, String>,
        /// object → none|read|edit
        pub objects: HashMap<String, String>,
        /// Object.Field → none|read|edit
        pub fields: HashMap<String, String>,
        pub visibility: String,
    }

    fn access_error(message: impl Into<String>) -> FieldError {
        FieldError {
            field: "access".into(),
            message: message.into(),
        }
    }

    /// The scope the selection asks for, checked against the org (objects and fields must
    /// exist; field edit needs object edit).
    pub async fn scope_from_selection(
        portal: &services::Portal,
        selection: &Selection,
    ) -> Result<Scope, FieldError> {
        let objects = portal.org_objects().await.map_err(|_| {
            access_error("The org's objects could not be read; try again in a moment.")
        })?;
        let chosen_packages: Vec<String> = selection
            .packages
            .iter()
            .filter(|(_, v)| v.as_str() == "on" || v.as_str() == "true")
            .map(|(k, _)| k.clone())
            .collect();
        let mut scope = if chosen_packages.is_empty() {
            None
        } else {
            Some(
                portal
                    .scope_from_packages(&chosen_packages)
                    .await
                    .map_err(|e| access_error(e.to_string()))?,
            )
        };
        let mut custom: Vec<ObjectAccess> = Vec::new();
        for (object, raw) in &selection.objects {
            let level = Level::parse(raw).ok_or_else(|| {
                access_error(format!("'{raw}' is not an access level for {object}."))
            })?;
            let Some(level) = level else { continue };
            let Some(org_object) = objects.iter().find(|o| o.name == *object) else {
                return Err(access_error(format!(
                    "There is no object {object} in the org."
                )));
            };
            let mut fields = BTreeMap::new();
            for (path, raw) in &selection.fields {
                let Some((owner, field)) = path.split_once('.') else {
                    return Err(access_error(format!("'{path}' is not a field.")));
                };
                if owner != object {
                    continue;
                }
                let Some(field_level) = Level::parse(raw).ok_or_else(|| {
                    access_error(format!("'{raw}' is not an access level for {path}."))
                })?
                else {
                    continue;
                };
                let Some(org_field) = org_object
                    .fields
                    .iter()
                    .find(|f| f.name == field && f.permissionable)
                else {
                    return Err(access_error(format!(
                        "There is no field {path} the org can grant."
                    )));
                };
                if field_level == Level::Edit && (!org_field.editable || level != Level::Edit) {
                    return Err(access_error(format!(
                        "{path} can only be edited when {object} records can be edited and the field itself is editable."
                    )));
                }
                fields.insert(field.to_string(), field_level);
            }
            custom.push(ObjectAccess {
                object: object.clone(),
                level,
                fields,
                view_all: false,
                modify_all: false,
            });
        }
        for (path, raw) in &selection.fields {
            let object = path.split('.').next().unwrap_or("");
            let chosen = Level::parse(raw).flatten().is_some();
            if chosen
                && !custom.iter().any(|o| o.object == object)
                && scope.as_ref().and_then(|s| s.object(object)).is_none()
            {
                return Err(access_error(format!(
                    "Choose read or edit for {object} before choosing its fields."
                )));
            }
        }
        let rule = if selection.visibility.trim().is_empty() {
            scope
                .as_ref()
                .map(|s| s.visibility.rule)
                .unwrap_or(VisibilityRule::Shared)
        } else {
            VisibilityRule::parse(&selection.visibility).map_err(|message| FieldError {
                field: "visibility".into(),
                message,
            })?
        };
        let mut merged = scope.take().unwrap_or(Scope {
            objects: Vec::new(),
            visibility: Visibility {
                rule,
                record_ids: Vec::new(),
                group: None,
            },
            packages: Vec::new(),
        });
        merged.visibility.rule = rule;
        for object in custom {
            match merged
                .objects
                .iter_mut()
                .find(|o| o.object == object.object)
            {
                Some(existing) => {
                    existing.level = existing.level.max(object.level);
                    for (field, level) in object.fields {
                        let entry = existing.fields.entry(field).or_insert(level);
                        *entry = (*entry).max(level);
                    }
                }
                None => merged.objects.push(object),
            }
        }
        merged.objects.sort_by(|a, b| a.object.cmp(&b.object));
        Ok(merged)
    }
}
