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
#[cfg(feature = "admin")]
use crate::pages::{
    admin::{AdminDashboard, AdminRequest},
    assurance::AssurancePage,
    audit::{AuditEntry, AuditLog},
    auth_failed::AuthFailed,
    manage::{CatalogPage, SettingsPage},
    org::OrgPage,
    outbox::OutboxPage,
    renewal::AdminExtension,
    reviews::{ReviewCampaignPage, ReviewsPage},
    usage::UsagePage,
};
use crate::pages::{
    home::Home, not_found::NotFound, request::RequestAccess, reveal::Reveal, status::Status,
    usage::MyUsagePage, verify::VerifyEmail,
};

/// The wasm bundle of the contractor's pages is `<output-name>-contractor.{js,wasm}` beside
/// the full bundle in the site's pkg directory (`scripts/build` builds both).
pub const CONTRACTOR_BUNDLE_SUFFIX: &str = "-contractor";

/// Whether `path` is one of the contractor's pages: `/`, `/request`, `/verify/<token>`,
/// `/status/<token>`, `/status/<token>/usage`, `/reveal/<token>` — the routes the router
/// has without the `admin` feature (`PortalRoutes`), and the pages the server sends the
/// contractor's bundle with. Strict on purpose: a path it does not recognise (a trailing
/// slash, an empty segment) gets the full bundle, which hydrates every page.
pub fn contractor_page(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return false;
    }
    matches!(
        segments.as_slice(),
        ["request"] | ["verify", _] | ["status", _] | ["status", _, "usage"] | ["reveal", _]
    )
}

/// The options `HydrationScripts` gets for the page at `path`: the contractor's bundle for a
/// contractor's page when it has been built (`scripts/leptos watch` builds only the full
/// one), else the full bundle.
#[cfg(feature = "ssr")]
fn bundle_for(mut options: LeptosOptions, path: Option<&str>) -> LeptosOptions {
    if !path.is_some_and(contractor_page) {
        return options;
    }
    let name = format!("{}{CONTRACTOR_BUNDLE_SUFFIX}", options.output_name);
    let built = ["js", "wasm"].iter().all(|ext| {
        std::path::Path::new(options.site_root.as_ref())
            .join(options.site_pkg_dir.as_ref())
            .join(format!("{name}.{ext}"))
            .is_file()
    });
    if !built {
        return options;
    }
    options.output_name = name.into();
    options
}

/// The HTML document around the application, rendered on the server only. A contractor's
/// page loads the contractor's bundle, every other page the full one.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    let bundle_options = |options: LeptosOptions| {
        let parts = use_context::<http::request::Parts>();
        bundle_for(options, parts.as_ref().map(|p| p.uri.path()))
    };
    #[cfg(not(feature = "ssr"))]
    let bundle_options = |options: LeptosOptions| options;
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light" />
                <AutoReload options=options.clone() />
                <HydrationScripts options=bundle_options(options) />
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
                <PortalRoutes />
            </Layout>
        </Router>
    }
}

/// Every page: the server's router and the full bundle's.
#[cfg(feature = "admin")]
#[component]
fn PortalRoutes() -> impl IntoView {
    view! {
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
    }
}

/// The contractor's bundle's pages: the same routes and views as the full router's for the
/// paths `contractor_page` accepts (the pages' markup is the same, so the server's rendering
/// hydrates with either bundle). Any other path reached in the browser (a link to the admin
/// dashboard, say) is not in this bundle: `OnServer` loads it from the server, which sends
/// it with the full bundle.
#[cfg(not(feature = "admin"))]
#[component]
fn PortalRoutes() -> impl IntoView {
    view! {
        <Routes fallback=OnServer>
            <Route path=StaticSegment("") view=Home />
            <Route path=StaticSegment("request") view=RequestAccess />
            <Route path=(StaticSegment("status"), ParamSegment("token")) view=Status />
            <Route path=(StaticSegment("status"), ParamSegment("token"), StaticSegment("usage")) view=MyUsagePage />
            <Route path=(StaticSegment("verify"), ParamSegment("token")) view=VerifyEmail />
            <Route path=(StaticSegment("reveal"), ParamSegment("token")) view=Reveal />
        </Routes>
    }
}

/// A page the contractor's bundle does not have: once in the browser, the page is loaded
/// from the server, which sends it with the full bundle. A path the server would answer with
/// this same bundle is not loaded again (that would never end): it shows "Page not found",
/// as the full router would.
#[cfg(not(feature = "admin"))]
#[component]
fn OnServer() -> impl IntoView {
    #[cfg(feature = "hydrate")]
    {
        // The router's location is the new one already; the address bar may not be yet.
        let location = leptos_router::hooks::use_location();
        let path = location.pathname.get_untracked();
        if !contractor_page(&path) {
            let mut href = path;
            let search = location.search.get_untracked();
            if !search.is_empty() {
                href.push('?');
                href.push_str(&search);
            }
            let hash = location.hash.get_untracked();
            if !hash.is_empty() && !hash.starts_with('#') {
                href.push('#');
            }
            href.push_str(&hash);
            if let Some(window) = web_sys::window() {
                // Nothing to do if it fails: the page then says it was not found.
                let _ = window.location().assign(&href);
            }
            return ().into_any();
        }
    }
    view! { <NotFound /> }.into_any()
}

#[cfg(test)]
mod tests {
    use super::contractor_page;

    #[test]
    fn the_contractors_pages_are_recognised_and_nothing_else() {
        for path in [
            "/",
            "/request",
            "/verify/abc",
            "/status/abc",
            "/status/abc/usage",
            "/reveal/a.b-c_d",
        ] {
            assert!(contractor_page(path), "{path} is a contractor's page");
        }
        for path in [
            "",
            "request",
            "/admin",
            "/admin/requests/1",
            "/audit",
            "/audit/entries/3",
            "/outbox",
            "/auth/failed",
            "/request/",
            "/request/x",
            "//request",
            "/verify",
            "/verify/",
            "/status/abc/",
            "/status/abc/other",
            "/status/abc/usage/x",
            "/reveal",
            "/nothing",
        ] {
            assert!(!contractor_page(path), "{path} is not a contractor's page");
        }
    }
}
