//! `/admin/org`: whether the org is ready for grants (owners), the checks of
//! `portcullis doctor`.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use shared::doctor::{Check, CheckStatus};

use crate::api::org::{CheckAgain, org_checks};
use crate::pages::admin::{AdminNav, RequireRole, load_for, owner};

fn status_class(status: CheckStatus) -> &'static str {
    match status {
        CheckStatus::Ok => "check-ok",
        CheckStatus::Warn => "check-warn",
        CheckStatus::Fail => "check-fail",
    }
}

#[component]
pub fn OrgPage() -> impl IntoView {
    let again = ServerAction::<CheckAgain>::new();
    let checks = Resource::new(
        move || again.version().get(),
        |_| load_for(owner, org_checks()),
    );
    view! {
        <Title text="Org readiness" />
        <h1>"Org readiness"</h1>
        <AdminNav />
        <RequireRole allow=owner>
            <p class="lead">
                "What the portal needs from the Salesforce org, checked now through the org's own APIs (the same checks as "
                <code>"portcullis doctor"</code>"). Setup steps: docs/real-org.md."
            </p>
            <ActionForm action=again attr:aria-label="Check the org again">
                <button class="primary" type="submit">"Check again"</button>
            </ActionForm>
            <Suspense fallback=|| view! { <p role="status">"Checking the org…"</p> }>
                {move || checks.get().map(|result| match result {
                    Ok(None) => ().into_any(),
                    Ok(Some(checks)) => view! { <CheckTable checks /> }.into_any(),
                    Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
                })}
            </Suspense>
        </RequireRole>
    }
}

#[component]
fn CheckTable(checks: Vec<Check>) -> impl IntoView {
    let failed = checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .count();
    view! {
        {if failed == 0 {
            view! { <p class="notice" role="status">"Nothing failed: the org is ready for grants."</p> }.into_any()
        } else {
            view! { <p class="notice error" role="status">{format!("{failed} check(s) failed.")}</p> }.into_any()
        }}
        <table class="data" aria-label="Org checks" tabindex="0">
            <thead><tr><th>"Result"</th><th>"Check"</th><th>"Found"</th><th>"What to change"</th></tr></thead>
            <tbody>
                {checks.into_iter().map(|c| view! {
                    <tr data-check=c.id.clone()>
                        <td class=status_class(c.status)>{c.status.label()}</td>
                        <td>{c.title.clone()}<br /><code>{c.id.clone()}</code></td>
                        <td>{c.detail.clone()}</td>
                        <td>{c.fix.clone().unwrap_or_default()}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}
