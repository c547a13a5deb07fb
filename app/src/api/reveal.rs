//! The contractor's side of the credential hand-over (behind the emailed reveal link), and
//! the approvers' "send a new link". Reading a link changes nothing; the code and the
//! reveal are explicit POSTs. The reveal's answer is the only response that ever carries
//! the secret, and it is never cached (see the server's security headers).

use leptos::prelude::*;
use shared::reveal::{LinkView, RevealedCredential};

use super::ApiError;

/// What the link is for and where it stands (404 for a link that is not one of ours).
#[server(endpoint = "reveal_link")]
pub async fn reveal_link(token: String) -> Result<Option<LinkView>, ApiError> {
    let portal = super::ssr::portal()?;
    let mut view = portal.reveal_link(token.trim()).await?;
    match view.as_mut() {
        Some(view) => super::ssr::label_access(&portal, &mut view.access).await,
        None => super::ssr::status(404),
    }
    Ok(view)
}

/// Mails a one-time code to the contractor's verified address; returns it masked.
#[server(endpoint = "send_reveal_code")]
pub async fn send_reveal_code(token: String) -> Result<String, ApiError> {
    let portal = super::ssr::portal()?;
    let actor = super::ssr::actor("contractor").await;
    Ok(portal.send_reveal_code(token.trim(), &actor).await?)
}

/// "Reveal now": the code from the email; answers with the credential, once.
#[server(endpoint = "reveal_now")]
pub async fn reveal_now(token: String, code: String) -> Result<RevealedCredential, ApiError> {
    use secrecy::ExposeSecret;
    let portal = super::ssr::portal()?;
    let actor = super::ssr::actor("contractor").await;
    let revealed = portal.reveal(token.trim(), &code, &actor).await?;
    Ok(RevealedCredential {
        consumer_key: revealed.consumer_key,
        consumer_secret: revealed.consumer_secret.expose_secret().to_string(),
        instance_url: revealed.instance_url,
        token_url: revealed.token_url,
        api_version: revealed.api_version,
        revealed_at: revealed.revealed_at,
    })
}

/// Mails a one-time code for reporting a reveal as not the contractor's; returns the
/// address it went to, masked.
#[server(endpoint = "send_disown_code")]
pub async fn send_disown_code(token: String) -> Result<String, ApiError> {
    let portal = super::ssr::portal()?;
    let actor = super::ssr::actor("contractor").await;
    Ok(portal.send_disown_code(token.trim(), &actor).await?)
}

/// "I did not do this", with the code mailed for the report: alerts the approvers and
/// changes the secret.
#[server(endpoint = "disown_reveal")]
pub async fn disown_reveal(token: String, code: Option<String>) -> Result<(), ApiError> {
    let portal = super::ssr::portal()?;
    let actor = super::ssr::actor("contractor").await;
    Ok(portal
        .disown_reveal(token.trim(), code.as_deref(), &actor)
        .await?)
}

/// An approver sends the contractor a new reveal link; the secret is changed first.
#[server(endpoint = "reissue_reveal_link")]
pub async fn reissue_reveal_link(request_id: String) -> Result<(), ApiError> {
    use super::ssr::{actor, portal, require};
    use shared::auth::Role;
    let (user, _) = require(&[Role::Approver]).await?;
    let portal = portal()?;
    let Some(grant_id) = portal.grant_of_request(request_id.trim()).await? else {
        return Err(ApiError::new(404, "There is no grant for this request."));
    };
    let actor = actor(&user.username).await;
    // A signed-in approver gets the whole error, Salesforce's text included.
    portal
        .reissue_reveal_link(&grant_id, &actor)
        .await
        .map_err(ApiError::for_admin)
}
