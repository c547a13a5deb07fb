//! One module per page.

use leptos::prelude::*;

pub mod admin;
pub mod assurance;
pub mod audit;
pub mod audit_stream;
pub mod auth_failed;
pub mod ending;
pub mod error;
pub mod home;
pub mod manage;
pub mod not_found;
pub mod org;
pub mod outbox;
pub mod record_picker;
pub mod renewal;
pub mod request;
pub mod reveal;
pub mod reviews;
pub mod rotation;
pub mod scope_picker;
pub mod status;
pub mod time;
pub mod usage;
pub mod usage_anomalies;
pub mod verify;

/// Access as people read it: one item per object or field ("Case — Description (read)"),
/// its API name beside it for those who write the integration.
#[component]
pub fn AccessList(
    lines: Vec<shared::scope::AccessLine>,
    #[prop(into)] label: String,
) -> impl IntoView {
    view! {
        <ul class="access-list" aria-label=label>
            {lines.into_iter().map(|l| {
                let same = l.label.starts_with(&l.api_name);
                view! {
                    <li>
                        {l.label}
                        {(!same).then(|| view! { " " <code class="api-name">{l.api_name}</code> })}
                    </li>
                }
            }).collect_view()}
        </ul>
    }
}

/// The message next to a form field: `<p id="{field}-error">`, which the field's
/// `aria-describedby` points at. Every field name a server function can return in its
/// `FieldErrors` has one of these on its form.
#[component]
pub fn FieldMessage(#[prop(into)] id: String, message: Signal<Option<String>>) -> impl IntoView {
    view! {
        <p class="field-error" id=id role="alert" aria-live="polite">
            {move || message.get()}
        </p>
    }
}
