//! One module per page.

use leptos::prelude::*;

pub mod admin;
pub mod audit;
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
pub mod scope_picker;
pub mod status;
pub mod time;
pub mod usage;
pub mod verify;

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
