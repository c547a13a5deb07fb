//! The audit page's "Streaming" box: one small card per configured sink (syslog, Splunk
//! HEC, signed webhook) with its acknowledged entry, its lag, its last error and its last
//! success. Nothing when no sink is configured.

use leptos::prelude::*;

use crate::api::audit::{StreamSinkView, audit_stream_status, reviewer_or_owner};
use crate::pages::admin::load_for;
use crate::pages::time::Time;

#[component]
pub fn StreamSinks() -> impl IntoView {
    // Read in the browser only, once the page has hydrated, and again every 5 seconds: a
    // sink's cursor moves between the server's markup and hydration, and the two must
    // never disagree (as the verification box does).
    let tick = RwSignal::new(0u32);
    let sinks = LocalResource::new(move || {
        tick.track();
        load_for(reviewer_or_owner, audit_stream_status())
    });
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));
    Effect::new(move |_| {
        let handle = set_interval_with_handle(
            move || tick.update(|t| *t += 1),
            std::time::Duration::from_secs(5),
        );
        on_cleanup(move || {
            if let Ok(handle) = handle {
                handle.clear();
            }
        });
    });
    view! {
        {move || hydrated.get().then(|| view! {
            <Transition fallback=|| ()>
                {move || sinks.get().map(|loaded| match loaded {
                    Ok(Some(sinks)) if !sinks.is_empty() => view! { <Sinks sinks /> }.into_any(),
                    Ok(_) => ().into_any(),
                    Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
                })}
            </Transition>
        })}
    }
}

#[component]
fn Sinks(sinks: Vec<StreamSinkView>) -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="stream-heading">
            <h2 id="stream-heading">"Streaming"</h2>
            <p class="hint">"Every entry goes to these sinks in order, at least once, with its number as its id; a sink that fails is retried from the last entry it acknowledged."</p>
            <div class="stream-sinks">
                {sinks.into_iter().map(|sink| view! { <SinkCard sink /> }).collect_view()}
            </div>
        </section>
    }
}

#[component]
fn SinkCard(sink: StreamSinkView) -> impl IntoView {
    let label = format!("Sink {}", sink.name);
    let lag = if sink.lag == 0 {
        "up to date".to_string()
    } else {
        format!("{} entries behind", sink.lag)
    };
    // The last error stands out while the sink is failing; after a success it is history.
    let error_class = if sink.failures > 0 {
        "notice error"
    } else {
        "hint"
    };
    view! {
        <div class="card stream-sink" role="group" aria-label=label>
            <h3>{sink.name.clone()}</h3>
            <p class="muted">{sink.target.clone()}</p>
            <dl>
                <dt>"Acknowledged through entry"</dt><dd>{sink.acked_seq}</dd>
                <dt>"Lag"</dt><dd>{lag}</dd>
                <dt>"Failures"</dt>
                <dd>{format!("{} in a row, {} in all", sink.failures, sink.failures_total)}</dd>
                <dt>"Last success"</dt>
                <dd>{match sink.last_success_at.clone() {
                    Some(at) => view! { <Time at /> }.into_any(),
                    None => view! { "never" }.into_any(),
                }}</dd>
            </dl>
            {sink.last_error.clone().map(|error| view! {
                <p class=error_class role="status">
                    "Last error"
                    {sink.last_error_at.clone().map(|at| view! { " (" <Time at /> ")" })}
                    ": " {error}
                </p>
            })}
        </div>
    }
}
