//! The local mail outbox of the default (sandbox) mode: the mail Portcullis would have sent,
//! readable here because no SMTP server is configured.

use leptos::prelude::*;
use leptos_meta::Title;

use super::time::Time;
use crate::api::intake::outbox;

#[component]
pub fn OutboxPage() -> impl IntoView {
    let mail = Resource::new(|| (), |_| async { outbox().await });
    view! {
        <Title text="Mail outbox" />
        <h1>"Mail outbox"</h1>
        <p class="lead">"With no SMTP server configured, the portal keeps its mail here. Newest first."</p>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || mail.get().map(|result| match result {
                Ok(items) if items.is_empty() => view! { <p>"No mail yet."</p> }.into_any(),
                Ok(items) => view! {
                    <ul class="outbox">
                        {items.into_iter().map(|m| view! {
                            <li>
                                <article class="mail" aria-label=format!("Mail to {}: {}", m.recipient, m.subject)>
                                    <h2>{m.subject.clone()}</h2>
                                    <p class="muted">"To " {m.recipient.clone()} " · " <Time at=m.at.clone() /></p>
                                    <pre>{m.body.clone()}</pre>
                                </article>
                            </li>
                        }).collect_view()}
                    </ul>
                }.into_any(),
                Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
            })}
        </Suspense>
    }
}
