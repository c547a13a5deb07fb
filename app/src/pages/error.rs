//! The page shown when something went wrong on our side. It never shows internals: the
//! details are in the server's log, under the reference the page gives.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

/// A full error page, for failures the server turns into a response.
#[component]
pub fn ErrorPage(
    /// The HTTP status shown to the user.
    status: u16,
    /// A sentence the user can act on.
    #[prop(into)]
    message: String,
    /// A reference to quote when asking for help (matches the server's log entry).
    #[prop(optional, into)]
    reference: Option<String>,
) -> impl IntoView {
    view! {
        <Title text="Something went wrong" />
        <h1>"Something went wrong"</h1>
        <p>{message}</p>
        <p class="muted">"Status " {status}</p>
        {reference.map(|r| view! { <p class="muted">"Reference: " <code>{r}</code></p> })}
        <p>
            <A href="/">"Go to the start page"</A>
        </p>
    }
}
