//! The frame every page shares: a header with navigation for the three audiences
//! (contractors, approvers, security reviewers), the main region and a footer.

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_location;

use crate::api::session::get_viewer;
use crate::pages::error::ErrorPage;

#[component]
pub fn Layout(children: Children) -> impl IntoView {
    view! {
        // rel="external": the browser, not the router, follows the link, so the focus moves
        // to <main> (the router would only scroll to it).
        <a class="skip-link" href="#main" rel="external">"Skip to content"</a>
        <Header />
        <main id="main" tabindex="-1">
            <ErrorBoundary fallback=|errors| {
                let message = errors
                    .get()
                    .into_iter()
                    .next()
                    .map(|(_, e)| e.to_string())
                    .unwrap_or_else(|| "The page could not be shown.".to_string());
                view! { <ErrorPage status=500 message /> }
            }>{children()}</ErrorBoundary>
        </main>
        <footer class="site-footer">
            <p>"Portcullis · least-privilege Salesforce access for contractors"</p>
        </footer>
    }
}

/// The site header. On narrow screens the navigation folds behind a "Menu" button; the
/// button only works once the page has hydrated, so without JavaScript the navigation is
/// simply always shown (the `js-collapsible` class is added by the browser side only).
#[component]
fn Header() -> impl IntoView {
    let (open, set_open) = signal(false);
    // Only true in the browser after hydration: until then (and without JavaScript) the
    // menu must not hide the links.
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));
    // Following a link closes the menu, as on any site.
    let location = use_location();
    Effect::watch(
        move || location.pathname.get(),
        move |_, _, _| set_open.set(false),
        false,
    );

    view! {
        <header class="site-header">
            <A href="/" attr:class="brand">
                <span aria-hidden="true" class="brand-mark">"▥"</span>
                " Portcullis"
            </A>
            <button
                type="button"
                class="menu-toggle"
                aria-controls="site-nav"
                aria-expanded=move || if open.get() { "true" } else { "false" }
                on:click=move |_| set_open.update(|o| *o = !*o)
            >
                "Menu"
            </button>
            <nav
                id="site-nav"
                aria-label="Main"
                class:collapsed=move || hydrated.get() && !open.get()
            >
                <ul>
                    <li>
                        <A href="/request">"Request access"</A>
                    </li>
                    <li>
                        <A href="/admin">"Admin dashboard"</A>
                    </li>
                    <li>
                        <A href="/audit">"Audit log"</A>
                    </li>
                </ul>
                <SignInStatus />
            </nav>
        </header>
    }
}

/// Who is signed in, with sign-in and sign-out.
#[component]
fn SignInStatus() -> impl IntoView {
    let viewer = Resource::new(|| (), |_| async { get_viewer().await });
    view! {
        <div class="signin">
            <Transition fallback=|| ()>
                {move || viewer.get().map(|result| match result.ok().and_then(|v| v.user) {
                    Some(user) => view! {
                        <span class="who">{if user.name.is_empty() { user.username.clone() } else { user.name.clone() }}</span>
                        <form method="post" action="/auth/logout" class="inline-form">
                            <button type="submit" class="link-button">"Sign out"</button>
                        </form>
                    }.into_any(),
                    None => view! { <a rel="external" href="/auth/login">"Sign in"</a> }.into_any(),
                })}
            </Transition>
        </div>
    }
}
