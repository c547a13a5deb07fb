//! Portcullis's user interface: the pages and components rendered on the server and hydrated
//! in the browser, and the types shared by both sides.
//!
//! The crate is compiled twice: with `ssr` into the server, with `hydrate` into the wasm
//! bundle. Anything that must never reach the browser stays behind `#[cfg(feature = "ssr")]`.

// The workspace denies unwrap, expect and panic; unit tests may use them.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod api;
pub mod layout;
pub mod pages;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    ParamSegment, StaticSegment,
    components::{Route, Router, Routes},
};

use crate::layout::Layout;
use crate::pages::{
    admin::{AdminDashboard, AdminRequest},
    assurance::AssurancePage,
    audit::{AuditEntry, AuditLog},
    auth_failed::AuthFailed,
    home::Home,
    manage::{CatalogPage, SettingsPage},
    not_found::NotFound,
    org::OrgPage,
    outbox::OutboxPage,
    renewal::AdminExtension,
    request::RequestAccess,
    reveal::Reveal,
    reviews::{ReviewCampaignPage, ReviewsPage},
    status::Status,
    usage::{MyUsagePage, UsagePage},
    verify::VerifyEmail,
};

/// The HTML document around the application, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The root component: meta tags, the stylesheet and the routes.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // The reader's clock, for times in relative words (set once the page has hydrated).
    pages::time::provide_reader_now();

    view! {
        <Stylesheet id="leptos" href="/pkg/portcullis.css" />
        <Title formatter=|page: String| {
            if page.is_empty() { "Portcullis".to_string() } else { format!("{page} · Portcullis") }
        } />
        <Router>
            <Layout>
                <Routes fallback=NotFound>
                    <Route path=StaticSegment("") view=Home />
                    <Route path=StaticSegment("request") view=RequestAccess />
                    <Route path=StaticSegment("admin") view=AdminDashboard />
                    <Route path=(StaticSegment("admin"), StaticSegment("requests"), ParamSegment("id")) view=AdminRequest />
                    <Route path=(StaticSegment("admin"), StaticSegment("extensions"), ParamSegment("id")) view=AdminExtension />
                    <Route path=(StaticSegment("admin"), StaticSegment("usage")) view=UsagePage />
                    <Route path=(StaticSegment("admin"), StaticSegment("catalog")) view=CatalogPage />
                    <Route path=(StaticSegment("admin"), StaticSegment("settings")) view=SettingsPage />
                    <Route path=(StaticSegment("admin"), StaticSegment("org")) view=OrgPage />
                    <Route path=(StaticSegment("admin"), StaticSegment("reviews")) view=ReviewsPage />
                    <Route path=(StaticSegment("admin"), StaticSegment("reviews"), ParamSegment("id")) view=ReviewCampaignPage />
                    <Route path=(StaticSegment("admin"), StaticSegment("assurance")) view=AssurancePage />
                    <Route path=StaticSegment("audit") view=AuditLog />
                    <Route path=(StaticSegment("audit"), StaticSegment("entries"), ParamSegment("seq")) view=AuditEntry />
                    <Route path=(StaticSegment("status"), ParamSegment("token")) view=Status />
                    <Route path=(StaticSegment("status"), ParamSegment("token"), StaticSegment("usage")) view=MyUsagePage />
                    <Route path=(StaticSegment("verify"), ParamSegment("token")) view=VerifyEmail />
                    <Route path=(StaticSegment("reveal"), ParamSegment("token")) view=Reveal />
                    <Route path=StaticSegment("outbox") view=OutboxPage />
                    <Route path=(StaticSegment("auth"), StaticSegment("failed")) view=AuthFailed />
                </Routes>
            </Layout>
        </Router>
    }
}
