//! The end of access, as the pages show it (issue 17): "Revoke access now" on an approver's
//! request page, how a grant's access ended (revoked or expired) there and on the
//! contractor's status page, and, for a run stopped for lack of a licence, the grants that
//! end soonest.

use leptos::form::ActionForm;
use leptos::prelude::*;

use super::FieldMessage;
use super::time::Time;
use crate::api::revoke::{RevokeAccess, RevokeResult};
use shared::ending::{AccessEnd, EndingGrant};

/// "Revoke access now" for a ready, active or suspended grant (or one whose teardown
/// stopped, which revoking again carries on): the button opens the form (a confirm step),
/// which takes the reason and ends the access. The action lives with the page, which
/// refreshes the grant (and its history) when it completes.
#[component]
pub fn RevokeAccessForm(
    request_id: String,
    /// Whether the grant can be revoked now.
    revocable: bool,
    /// The access has ended (the revoke's "Revoking…" message has done its job).
    ended: bool,
    company: String,
    revoke: ServerAction<RevokeAccess>,
) -> impl IntoView {
    let confirming = RwSignal::new(false);
    let outcome = revoke.value();
    let reason_error = Signal::derive(move || match outcome.get() {
        Some(Err(e)) => e.field("reason"),
        _ => None,
    });
    let refused = move || match outcome.get() {
        Some(Err(e)) => e.form_message(),
        _ => None,
    };
    view! {
        {move || match outcome.get() {
            Some(Ok(RevokeResult::Revoking(message))) if !ended => Some(view! { <p class="notice" role="status">{message}</p> }),
            _ => None,
        }}
        {revocable.then(|| view! {
            <section aria-labelledby="revoke-heading">
                <h2 id="revoke-heading">"End access"</h2>
                <p class="muted">{format!("Revoking ends {company}'s access at once: the credential's tokens are revoked and the integration user deactivated first, then the app, shares and permissions are removed from Salesforce. The contractor is told, with your reason.")}</p>
                <button type="button" class="danger" aria-expanded=move || confirming.get().to_string() aria-controls="revoke-form" on:click=move |_| confirming.update(|c| *c = !*c)>
                    "Revoke access now"
                </button>
                <div id="revoke-form" hidden=move || !confirming.get()>
                    <ActionForm action=revoke attr:aria-label="Revoke access" attr:class="stacked-form">
                        <input type="hidden" name="id" value=request_id.clone() />
                        <label for="revoke_reason">"Reason for revoking"</label>
                        <textarea id="revoke_reason" name="reason" rows="2" required maxlength="2000" aria-describedby="reason-error"></textarea>
                        <FieldMessage id="reason-error" message=reason_error />
                        {move || refused().map(|m| view! { <p class="notice error" role="alert">{m}</p> })}
                        <div class="actions">
                            <button type="submit" class="danger" disabled=move || revoke.pending().get()>"Confirm: revoke access"</button>
                            " "
                            <button type="button" on:click=move |_| confirming.set(false)>"Keep access"</button>
                        </div>
                    </ActionForm>
                </div>
            </section>
        })}
    }
}

/// How a grant's access ended, or is ending: the state, the day, the reason and, on the
/// approvers' page, who ended it; and whether the credential still works.
#[component]
pub fn AccessEnded(end: AccessEnd) -> impl IntoView {
    let headline = end.headline();
    let at = end
        .ended_at
        .clone()
        .unwrap_or_else(|| end.requested_at.clone());
    let credential = if end.done() {
        "The credential no longer works: Salesforce refuses its token."
    } else if end.stopped() {
        "Taking the access away stopped (see below); revoking again carries on from there."
    } else {
        "The credential is being switched off: its tokens are revoked and the integration user deactivated first."
    };
    let when = match (end.revoked, end.done()) {
        (true, true) => "Revoked on ",
        (true, false) => "Revoke asked for on ",
        (false, true) => "Expired on ",
        (false, false) => "End date passed; ending since ",
    };
    view! {
        <section aria-labelledby="access-end-heading" class="card">
            <h2 id="access-end-heading">"Access ended"</h2>
            <p role="status" class="state-line">"Access: " <strong class=format!("state state-{}", end.state.as_str())>{headline}</strong></p>
            <dl class="facts" aria-label="How access ended">
                <dt>"When"</dt>
                <dd>{when} <Time at absolute_first=true /></dd>
                {end.by.clone().map(|by| view! { <dt>"By"</dt><dd>{by}</dd> })}
                {end.reason.clone().map(|reason| view! { <dt>"Reason"</dt><dd>{reason}</dd> })}
            </dl>
            <p>{credential}</p>
        </section>
    }
}

/// For a run stopped for lack of a Salesforce Integration licence: the grants holding one
/// that end soonest (a licence comes free when one of them ends or is revoked).
#[component]
pub fn EndingSoonest(grants: Vec<EndingGrant>) -> impl IntoView {
    (!grants.is_empty()).then(|| {
        view! {
            <section aria-labelledby="ending-soonest-heading">
                <h2 id="ending-soonest-heading">"Grants that end soonest"</h2>
                <p>"A licence comes free when one of these ends (or is revoked); then retry the failed step."</p>
                <table class="data" aria-label="Grants that end soonest">
                    <thead><tr><th>"Grant"</th><th>"State"</th><th>"Ends"</th></tr></thead>
                    <tbody>
                        {grants.into_iter().map(|g| view! {
                            <tr>
                                <td><a href=format!("/admin/requests/{}", g.request_id)>{g.company}</a></td>
                                <td>{g.state.label()}</td>
                                <td><Time at=g.end_date /></td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </section>
        }
    })
}
