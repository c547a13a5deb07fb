//! The landing page: what Portcullis does, and a way in for each of its audiences.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

#[component]
pub fn Home() -> impl IntoView {
    view! {
        <Title text="" />
        <section class="hero">
            <h1>"Portcullis"</h1>
            <p class="lead">
                "Safe, cheap, monitored API access to your Salesforce org for outside contractors: "
                "requested in a browser, approved by an admin, provisioned least-privilege, "
                "handed over once, and watched."
            </p>
        </section>
        <section class="audiences" aria-label="Where to start">
            <article class="card">
                <h2>"Contractors"</h2>
                <p>
                    "Ask for the API access your work needs. You will verify your email, follow "
                    "the review, and collect your credential once it is ready."
                </p>
                <A href="/request" attr:class="button">"Request access"</A>
            </article>
            <article class="card">
                <h2>"Approvers"</h2>
                <p>
                    "Review requests, see exactly what would be granted, narrow it, set an API "
                    "budget and an end date, and approve."
                </p>
                <A href="/admin" attr:class="button">"Open the admin dashboard"</A>
            </article>
            <article class="card">
                <h2>"Security reviewers"</h2>
                <p>
                    "Read the tamper-evident audit log, verify its chain and export evidence for "
                    "any grant."
                </p>
                <A href="/audit" attr:class="button">"Open the audit log"</A>
            </article>
        </section>
    }
}
