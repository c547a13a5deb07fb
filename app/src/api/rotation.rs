//! The rotation policy on the approvers' pages (issue 18): a grant's secret with its age
//! and maximum, "Rotate now", retiring the old secret once the contractor has the new one,
//! the grant's own maximum age; and the secrets that are overdue (the assurance page's
//! list, on the admin dashboard until that page exists).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::ApiError;

pub use shared::rotation::{OverdueSecret, RotationView};

/// Grants whose secret is past its maximum age, or whose rotation is past its deadline.
#[server(endpoint = "secrets_overdue")]
pub async fn secrets_overdue() -> Result<Vec<OverdueSecret>, ApiError> {
    use super::ssr::{portal, require};
    use shared::auth::Role;
    require(&[Role::Approver, Role::Owner, Role::SecurityReviewer]).await?;
    Ok(portal()?.overdue_secrets().await?)
}

/// The "Secret rotation" part of the request `id`'s page (`None`: the request has no grant).
#[server(endpoint = "secret_rotation")]
pub async fn secret_rotation(id: String) -> Result<Option<RotationView>, ApiError> {
    use super::ssr::{portal, require};
    use shared::auth::Role;
    require(&[Role::Approver, Role::Owner]).await?;
    let portal = portal()?;
    let Some(grant) = portal.grant_of_request(id.trim()).await? else {
        return Ok(None);
    };
    Ok(portal.rotation_view(&grant).await?)
}

/// A rotation action on the request `id`'s grant: `rotate` ("Rotate now") or `retire`
/// (retire the old secret now).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationForm {
    pub id: String,
    pub action: String,
}

#[server(endpoint = "rotate_secret")]
pub async fn rotate_secret(#[server(flatten)] form: RotationForm) -> Result<String, ApiError> {
    use super::ssr::{actor, portal, require};
    use services::rotation::RotationReason;
    use shared::auth::Role;
    let (user, _) = require(&[Role::Approver, Role::Owner]).await?;
    let portal = portal()?;
    let Some(grant) = portal.grant_of_request(form.id.trim()).await? else {
        return Err(ApiError::new(404, "This request has no grant."));
    };
    let actor = actor(&user.username).await;
    match form.action.as_str() {
        "rotate" => {
            let started = portal
                .start_rotation(&grant, &actor, RotationReason::Manual)
                .await?;
            Ok(match started.method {
                shared::rotation::RotationMethod::Staged => "A new secret was staged beside the current one and the contractor was emailed a link to it. Both work until the old one is retired.",
                shared::rotation::RotationMethod::SecondApp => "The org cannot stage a new secret, so a second app was made for the same user and permission set, and the contractor was emailed a link to its credential. Both work until the old app is retired.",
            }
            .into())
        }
        "retire" => {
            portal.retire_old_secret(&grant, &actor).await?;
            Ok("The old secret was retired: only the new one works now.".into())
        }
        other => Err(ApiError::new(
            400,
            format!("'{other}' is not a rotation action: rotate or retire."),
        )),
    }
}

/// The grant's own maximum secret age: days (0: never), or empty for the portal's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaxAgeForm {
    pub id: String,
    pub max_age_days: String,
}

impl MaxAgeForm {
    pub const FIELD: &'static str = "max_age_days";

    /// `None`: the default; a message for the field when it is not a whole number of days.
    pub fn days(&self) -> Result<Option<i64>, String> {
        let raw = self.max_age_days.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        match raw.parse::<i64>() {
            Ok(days) if (0..=3_650).contains(&days) => Ok(Some(days)),
            _ => Err("Enter a whole number of days from 0 (never) to 3650, or leave it empty for the default.".into()),
        }
    }
}

#[server(endpoint = "set_secret_max_age")]
pub async fn set_secret_max_age(#[server(flatten)] form: MaxAgeForm) -> Result<String, ApiError> {
    use super::ssr::{actor, portal, require};
    use shared::auth::Role;
    let (user, _) = require(&[Role::Approver]).await?;
    let days = form.days().map_err(|message| {
        let mut fields = shared::FieldErrors::default();
        fields.add(MaxAgeForm::FIELD, message);
        ApiError::invalid(fields)
    })?;
    let portal = portal()?;
    let Some(grant) = portal.grant_of_request(form.id.trim()).await? else {
        return Err(ApiError::new(404, "This request has no grant."));
    };
    let actor = actor(&user.username).await;
    portal.set_secret_max_age(&grant, days, &actor).await?;
    Ok(match days {
        None => "The grant now follows the portal's maximum secret age.".into(),
        Some(0) => "This grant's secret is never rotated for its age.".into(),
        Some(d) => format!("This grant's secret is rotated when it is {d} days old."),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_max_age_field_takes_days_or_nothing() {
        let form = |raw: &str| MaxAgeForm {
            id: "r".into(),
            max_age_days: raw.into(),
        };
        assert_eq!(form("").days(), Ok(None));
        assert_eq!(form(" 30 ").days(), Ok(Some(30)));
        assert_eq!(form("0").days(), Ok(Some(0)));
        assert!(form("-1").days().is_err());
        assert!(form("3651").days().is_err());
        assert!(form("ninety").days().is_err());
    }
}
