//! Server functions: thin layers that authenticate and authorise, parse the form into a
//! domain input, call a method of the portal and return a DTO from `shared`. Every error is
//! an [`ApiError`] (status and message decided in `error.rs`). Each has a fixed endpoint
//! under `/api` (no hash), so tests and tools can call them by name.

pub mod admin;
pub mod assurance;
pub mod audit;
pub mod error;
pub mod intake;
pub mod manage;
pub mod org;
pub mod records;
pub mod renewal;
pub mod reveal;
pub mod reviews;
pub mod revoke;
pub mod rotation;
pub mod session;
pub mod usage;

pub use error::ApiError;

#[cfg(feature = "ssr")]
pub mod ssr {
    //! What server functions share on the server side.

    use leptos::prelude::*;
    use services::Portal;
    use services::audit::Actor;
    use shared::auth::{Role, SignedInUser, Viewer};

    use super::ApiError;

    /// The session key the sign-in routes store the user under.
    pub const USER_KEY: &str = "auth.user";

    pub fn portal() -> Result<Portal, ApiError> {
        use_context::<Portal>()
            .ok_or_else(|| ApiError::internal("the portal's services are not available"))
    }

    /// Labels access lines from the org's describe (cached by the portal); when the org
    /// cannot be read they keep their API names.
    pub async fn label_access(portal: &Portal, lines: &mut [shared::scope::AccessLine]) {
        match portal.org_objects().await {
            Ok(described) => shared::scope::AccessLine::relabel(lines, &described),
            Err(e) => {
                tracing::debug!(error = %e, "access shown by API name: the org's describe could not be read")
            }
        }
    }

    /// Sets the HTTP status of the server function's response.
    pub fn status(code: u16) {
        if let (Some(response), Ok(status)) = (
            use_context::<leptos_axum::ResponseOptions>(),
            http::StatusCode::from_u16(code),
        ) {
            response.set_status(status);
        }
    }

    pub async fn session() -> Result<tower_sessions::Session, ApiError> {
        leptos_axum::extract::<tower_sessions::Session>()
            .await
            .map_err(ApiError::internal)
    }

    /// Who is looking, and what they may do.
    pub async fn viewer() -> Result<Viewer, ApiError> {
        let portal = portal()?;
        let user: Option<SignedInUser> = session()
            .await?
            .get(USER_KEY)
            .await
            .map_err(ApiError::internal)?;
        let roles = match &user {
            Some(user) => portal.roles_of(user).await?,
            None => Default::default(),
        };
        Ok(Viewer { user, roles })
    }

    /// The signed-in user holding any of `roles`; 401 when nobody is signed in, 403 when
    /// the user lacks them.
    pub async fn require(roles: &[Role]) -> Result<(SignedInUser, Viewer), ApiError> {
        let viewer = viewer().await?;
        let Some(user) = viewer.user.clone() else {
            return Err(ApiError::new(401, "Sign in with Salesforce first."));
        };
        let allowed = roles.iter().any(|role| match role {
            Role::Approver => viewer.roles.approver,
            Role::SecurityReviewer => viewer.roles.security_reviewer,
            Role::Owner => viewer.roles.owner,
        });
        if !allowed {
            return Err(ApiError::new(
                403,
                "You are signed in, but not authorised to do this.",
            ));
        }
        Ok((user, viewer))
    }

    /// The caller, for the audit log: the client address the server decided (behind a
    /// trusted proxy, the client's own), else the TCP peer.
    pub async fn actor(name: &str) -> Actor {
        let parts = use_context::<http::request::Parts>();
        let ip = parts
            .as_ref()
            .and_then(|p| {
                p.extensions
                    .get::<services::client::ClientAddr>()
                    .map(|c| c.0)
                    .or_else(|| {
                        p.extensions
                            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                            .map(|c| c.0.ip())
                    })
            })
            .map(|ip| ip.to_string())
            .unwrap_or_default();
        let user_agent = parts
            .as_ref()
            .and_then(|p| p.headers.get(http::header::USER_AGENT))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .take(300)
            .collect();
        Actor {
            name: name.to_string(),
            ip,
            user_agent,
        }
    }
}
