//! The contractor's status page, reached through the capability link we emailed.

use leptos::prelude::*;
use leptos_meta::{Meta, Title};
use leptos_router::hooks::use_params_map;

use super::ending::AccessEnded;
use super::time::Time;
use crate::api::intake::request_status;
use crate::pages::renewal::MoreTime;

#[component]
pub fn Status() -> impl IntoView {
    let params = use_params_map();
    let token = move || params.read().get("token").unwrap_or_default();
    let status = Resource::new(token, |token| async move { request_status(token).await });
    view! {
        <Title text="Your request" />
        <Meta name="referrer" content="no-referrer" />
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || status.get().map(|result| match result {
                Ok(Some(view)) => view! {
                    <h1>{format!("{}'s access request", view.company)}</h1>
                    <p class="state-line">"Status: " <strong class=format!("state state-{}", view.state.as_str())>{view.state.label()}</strong></p>
                    <dl class="facts">
                        <dt>"Contact"</dt><dd>{view.contact_name.clone()}</dd>
                        <dt>"Sent"</dt><dd><Time at=view.submitted_at.clone() /></dd>
                        <dt>"Access until"</dt><dd><Time at=view.end_date.clone() /></dd>
                        <dt>"Access asked for"</dt><dd><super::AccessList lines=view.access.clone() label="Access asked for" /></dd>
                    </dl>
                    {view.access_end.clone().map(|end| view! { <AccessEnded end /> })}
                    <p><a href=format!("/status/{}/usage", token())>"Your API usage"</a></p>
                    <h2>"History"</h2>
                    <ol class="history">
                        {view.history.iter().map(|item| view! {
                            <li><Time at=item.at.clone() /> " " {item.message.clone()}</li>
                        }).collect_view()}
                    </ol>
                }.into_any(),
                Ok(None) => view! {
                    <h1>"Request not found"</h1>
                    <p class="notice error" role="alert">"This status link is not valid. Use the link from your confirmation email."</p>
                }.into_any(),
                Err(e) => view! { <h1>"Your request"</h1><p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
            })}
        </Suspense>
        <MoreTime token=Signal::derive(token) />
    }
}
