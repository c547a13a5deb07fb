//! The page the emailed reveal link opens. Opening it shows what it is for and changes
//! nothing (mail scanners and chat previews open links); the contractor asks for a code,
//! enters it and presses "Reveal now", and the credential is shown this once.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::{Meta, Title};
use leptos_router::hooks::use_params_map;
use shared::reveal::{LinkState, LinkView, Report, RevealedCredential};

use super::time::Time;
use crate::api::reveal::{DisownReveal, RevealNow, SendDisownCode, SendRevealCode, reveal_link};

#[component]
pub fn Reveal() -> impl IntoView {
    let params = use_params_map();
    let token = Signal::derive(move || params.read().get("token").unwrap_or_default());
    let disown = ServerAction::<DisownReveal>::new();
    let link = Resource::new(
        move || (token.get(), disown.version().get()),
        |(token, _)| reveal_link(token),
    );
    view! {
        <Title text="Collect your API credential" />
        <Meta name="referrer" content="no-referrer" />
        <h1>"Your API credential"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || link.get().map(|result| match result {
                Ok(Some(view)) => view! { <LinkPage view token disown /> }.into_any(),
                Ok(None) => view! {
                    <p class="notice error" role="alert">
                        "This link is not valid. Use the newest link from your email."
                    </p>
                }.into_any(),
                Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
            })}
        </Suspense>
    }
}

#[component]
fn LinkPage(
    view: LinkView,
    token: Signal<String>,
    disown: ServerAction<DisownReveal>,
) -> impl IntoView {
    let org = view.org_name.clone();
    let about = view! {
        <p>
            "This link hands over the API credential " {org.clone()} " set up for " <strong>{view.company.clone()}</strong>
            ", until " <Time at=view.end_date.clone() /> ", with this access:"
        </p>
        <super::AccessList lines=view.access.clone() label="The credential's access" />
    };
    let body = match view.state {
        LinkState::Open { expires_at, code_sent_to, attempts_left } => view! {
            <RevealForm token expires_at code_sent_to attempts_left />
        }.into_any(),
        LinkState::Revealed { revealed_at, disowned_at, report } => view! {
            <p class="notice" role="status">"Already revealed: this credential was revealed on " <Time at=revealed_at absolute_first=true /> ". The link cannot show it again."</p>
            {match (disowned_at, report) {
                (Some(at), _) => view! {
                    <p class="notice" role="status">"You reported on " <Time at absolute_first=true /> {format!(" that this was not you. The secret was changed, so what was revealed no longer works; {org}'s admins will send you a new link.")}</p>
                }.into_any(),
                (None, Report::Open { attempts_left, .. }) if attempts_left <= 0 => view! {
                    <p class="notice error" role="alert">{format!("Too many wrong codes were entered to report this reveal from this link. If you did not reveal it, tell {org}'s admin.")}</p>
                }.into_any(),
                (None, Report::Open { until, code_sent_to, attempts_left }) => view! {
                    <ReportForm token disown until code_sent_to attempts_left org=org.clone() />
                }.into_any(),
                (None, Report::Superseded) => view! {
                    <p class="notice" role="status">"A newer link was sent for this credential: to report anything, use the newest link from your email."</p>
                }.into_any(),
                (None, Report::TooLate { until }) => view! {
                    <p class="notice" role="status">"It is too late to report this reveal from this link: reports were taken until " <Time at=until absolute_first=true /> {format!(". If you think someone else has the credential, tell {org}'s admin.")}</p>
                }.into_any(),
            }}
        }.into_any(),
        LinkState::Expired { expired_at } => view! {
            <p class="notice error" role="alert">"This link expired on " <Time at=expired_at absolute_first=true /> {format!(" without being used. Ask {org}'s admin for a new one.")}</p>
        }.into_any(),
        LinkState::Locked => view! {
            <p class="notice error" role="alert">{format!("This link is locked after too many wrong codes, and revealed nothing. {org}'s admins have been told; ask them for a new link.")}</p>
        }.into_any(),
        LinkState::Superseded => view! {
            <p class="notice error" role="alert">"A newer link was sent for this credential. Use the newest link from your email."</p>
        }.into_any(),
    };
    view! { {about} {body} }
}

/// "I did not do this": a code mailed for the report first, then the report with it.
#[component]
fn ReportForm(
    token: Signal<String>,
    disown: ServerAction<DisownReveal>,
    until: String,
    code_sent_to: Option<String>,
    attempts_left: i64,
    /// The org's name (whose admins are alerted).
    org: String,
) -> impl IntoView {
    let send = ServerAction::<SendDisownCode>::new();
    let sent_to = Signal::derive(move || {
        send.value()
            .get()
            .and_then(|r| r.ok())
            .or_else(|| code_sent_to.clone())
    });
    view! {
        <p>"If you did not reveal it, tell us (until " <Time at=until absolute_first=true /> {format!("): {org}'s admins are alerted and the secret is changed at once, so whatever was revealed stops working. We first email a one-time code to the address that asked for access.")}</p>
        <ol class="steps">
            <li>
                <ActionForm action=send attr:aria-label="Email me a code to report it">
                    <input type="hidden" name="token" value=token.get_untracked() />
                    <button type="submit" disabled=move || send.pending().get()>"Email me a code to report it"</button>
                </ActionForm>
                {move || match send.value().get() {
                    Some(Err(e)) => Some(view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any()),
                    _ => sent_to.get().map(|to| view! {
                        <p class="notice" role="status">{format!("We sent a code to {to}. It works for 10 minutes.")}</p>
                    }.into_any()),
                }}
            </li>
            <li>
                <ActionForm action=disown attr:aria-label="Report a reveal that was not you">
                    <input type="hidden" name="token" value=token.get_untracked() />
                    <label for="report-code">"Code from the email"</label>
                    <input id="report-code" name="code" inputmode="numeric" autocomplete="one-time-code"
                        pattern="[0-9]{6}" maxlength="6" required />
                    <button class="danger" type="submit" disabled=move || disown.pending().get()>"I did not do this"</button>
                </ActionForm>
                <p class="hint">{format!("{attempts_left} wrong codes end reporting from this link.")}</p>
                {move || disown.value().get().and_then(|r| r.err()).map(|e| view! {
                    <p class="notice error" role="alert">{e.to_string()}</p>
                })}
            </li>
        </ol>
    }
}

#[component]
fn RevealForm(
    token: Signal<String>,
    expires_at: String,
    code_sent_to: Option<String>,
    attempts_left: i64,
) -> impl IntoView {
    let send = ServerAction::<SendRevealCode>::new();
    let reveal = ServerAction::<RevealNow>::new();
    let sent_to = move || {
        send.value()
            .get()
            .and_then(|r| r.ok())
            .or_else(|| code_sent_to.clone())
    };
    let sent_to = Signal::derive(sent_to);
    view! {
        {move || match reveal.value().get() {
            Some(Ok(credential)) => view! { <Credential credential /> }.into_any(),
            other => view! {
                <p>"The link works until " <Time at=expires_at.clone() absolute_first=true /> " and shows the secret once. We first email a one-time code to the address that asked for access."</p>
                <ol class="steps">
                    <li>
                        <ActionForm action=send attr:aria-label="Email me a code">
                            <input type="hidden" name="token" value=token.get_untracked() />
                            <button type="submit" disabled=move || send.pending().get()>"Email me a code"</button>
                        </ActionForm>
                        {move || match send.value().get() {
                            Some(Err(e)) => Some(view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any()),
                            _ => sent_to.get().map(|to| view! {
                                <p class="notice" role="status">{format!("We sent a code to {to}. It works for 10 minutes.")}</p>
                            }.into_any()),
                        }}
                    </li>
                    <li>
                        <ActionForm action=reveal attr:aria-label="Reveal the credential">
                            <input type="hidden" name="token" value=token.get_untracked() />
                            <label for="reveal-code">"Code from the email"</label>
                            <input id="reveal-code" name="code" inputmode="numeric" autocomplete="one-time-code"
                                pattern="[0-9]{6}" maxlength="6" required />
                            <button class="primary" type="submit" disabled=move || reveal.pending().get()>"Reveal now"</button>
                        </ActionForm>
                        <p class="hint">{format!("{attempts_left} wrong codes lock the link.")}</p>
                        {other.and_then(|r| r.err()).map(|e| view! {
                            <p class="notice error" role="alert">{e.to_string()}</p>
                        })}
                    </li>
                </ol>
            }.into_any(),
        }}
    }
}

/// The credential, shown once: key, secret, copy buttons, the token URL and the example.
#[component]
fn Credential(credential: RevealedCredential) -> impl IntoView {
    let example = credential.example();
    view! {
        <p class="notice" role="status">
            "Revealed on " <Time at=credential.revealed_at.clone() absolute_first=true /> ". Copy the secret now: this page will not show it again."
        </p>
        <dl class="facts credential">
            <dt id="consumer-key-label">"Consumer key"</dt>
            <dd>
                <code aria-labelledby="consumer-key-label" data-testid="consumer-key">{credential.consumer_key.clone()}</code>
                <CopyButton label="Copy the consumer key" text=credential.consumer_key.clone() />
            </dd>
            <dt id="consumer-secret-label">"Consumer secret"</dt>
            <dd>
                <code aria-labelledby="consumer-secret-label" data-testid="consumer-secret">{credential.consumer_secret.clone()}</code>
                <CopyButton label="Copy the consumer secret" text=credential.consumer_secret.clone() />
            </dd>
            <dt id="token-url-label">"Token URL"</dt>
            <dd><code aria-labelledby="token-url-label" data-testid="token-url">{credential.token_url.clone()}</code></dd>
        </dl>
        <h2>"Try it"</h2>
        <p>"With " <code>"curl"</code> " and " <code>"jq"</code> ": exchange the key and secret for a token (client credentials), then list what you can see."</p>
        <pre aria-label="Example commands"><code>{example.clone()}</code></pre>
        <CopyButton label="Copy the example" text=example />
    }
}

#[component]
fn CopyButton(label: &'static str, text: String) -> impl IntoView {
    let copied = RwSignal::new(false);
    let on_click = move |_| {
        #[cfg(feature = "hydrate")]
        {
            if let Some(window) = web_sys::window() {
                let _ = window.navigator().clipboard().write_text(&text);
                copied.set(true);
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = &text;
    };
    view! {
        <button type="button" class="copy" aria-label=label on:click=on_click>
            {move || if copied.get() { "Copied" } else { "Copy" }}
        </button>
    }
}
