//! The page an emailed confirmation link opens. Opening it changes nothing (mail scanners
//! open links); the button does.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::intake::{VerifyLink, VerifyOutcome, verification_link};

#[component]
pub fn VerifyEmail() -> impl IntoView {
    let params = use_params_map();
    let token = move || params.read().get("token").unwrap_or_default();
    let info = Resource::new(token, |token| async move { verification_link(token).await });
    let confirm = ServerAction::<VerifyLink>::new();
    let outcome = confirm.value();
    view! {
        <Title text="Confirm your email" />
        <h1>"Confirm your email"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || info.get().map(|result| match result {
                Ok(Some(link)) if link.pending => view! {
                    <p>"Confirm that this address belongs to the person who asked for access for " <strong>{link.company.clone()}</strong> "."</p>
                    {move || match outcome.get() {
                        Some(Ok(VerifyOutcome::Verified)) => view! {
                            <p class="notice" role="status">"Thank you: your email is confirmed. We emailed you a link to follow the request."</p>
                        }.into_any(),
                        Some(Err(e)) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
                        None => view! {
                            <ActionForm action=confirm>
                                <input type="hidden" name="token" value=token() />
                                <button class="primary" type="submit">"Confirm my email"</button>
                            </ActionForm>
                        }.into_any(),
                    }}
                }.into_any(),
                Ok(Some(_)) => view! { <p class="notice" role="status">"This email address is already confirmed."</p> }.into_any(),
                Ok(None) => view! { <p class="notice error" role="alert">"This confirmation link is not valid or has expired."</p> }.into_any(),
                Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
            })}
        </Suspense>
    }
}
