//! The security reviewers' view of the tamper-evident audit log.

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn AuditLog() -> impl IntoView {
    view! {
        <Title text="Audit log" />
        <h1>"Audit log"</h1>
        <p class="lead">
            "Every request, approval, provisioning step and credential reveal, hash-chained so "
            "that any change to the record shows."
        </p>
        <p class="notice" role="status">
            "Security reviewers sign in with Salesforce. Sign-in is not enabled on this portal yet."
        </p>
    }
}
