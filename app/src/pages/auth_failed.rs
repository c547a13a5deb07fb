//! Where a failed sign-in lands, with a reason that never echoes the request.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn AuthFailed() -> impl IntoView {
    let query = use_query_map();
    let message = move || match query.read().get("reason").as_deref() {
        Some("denied") => "Salesforce did not authorise the sign-in (it was cancelled or refused).",
        Some("state") => {
            "The sign-in could not be matched to this browser session. Start it again from this portal."
        }
        Some("expired") => {
            "There is no sign-in in progress for this browser: it was already used or has expired. Start again."
        }
        Some("exchange") => {
            "Salesforce did not accept the sign-in. Start again; if it keeps failing, ask an administrator."
        }
        Some("org") => {
            "You signed in to another Salesforce org than the one this portal works with. Sign in with your account in the portal's org."
        }
        _ => "The sign-in did not complete. Start again.",
    };
    view! {
        <Title text="Sign-in failed" />
        <h1>"Sign-in failed"</h1>
        <p class="notice error" role="alert">{message}</p>
        <p><a class="button" rel="external" href="/auth/login">"Log in with Salesforce"</a></p>
    }
}
