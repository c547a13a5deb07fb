//! Renewal on the pages: "Ask for more time" on the contractor's status page, the
//! extensions waiting in the approvers' queue, and an extension's page with its decision.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use super::FieldMessage;
use super::admin::{RequireRole, approver_or_owner, load_for};
use super::time::Time;
use crate::api::renewal::{
    AskForMoreTime, DecideExtension, ExtensionDecisionResult, ExtensionQueueRow, ExtensionView,
    MoreTimeResult, admin_extension, renewal_status,
};
use shared::renewal::ExtensionState;

/// The status page's part about the end of access: the end date, the requests for more
/// time, and the form "Ask for more time" while the grant is ready, active or suspended.
#[component]
pub fn MoreTime(#[prop(into)] token: Signal<String>) -> impl IntoView {
    let ask = ServerAction::<AskForMoreTime>::new();
    let renewal = Resource::new(
        move || (token.get(), ask.version().get()),
        |(token, _)| async move { renewal_status(token).await },
    );
    let outcome = ask.value();
    let error = move |field: &'static str| {
        Signal::derive(move || match outcome.get() {
            Some(Err(e)) => e.field(field),
            _ => None,
        })
    };
    let banner = move || {
        match outcome.get() {
        Some(Ok(MoreTimeResult::Asked)) => Some((
            "notice",
            "Your request for more time is with the approvers; you will get an email when they decide.".to_string(),
        )),
        Some(Err(e)) => e.form_message().map(|m| ("notice error", m)),
        None => None,
    }
    };
    view! {
        <Suspense fallback=|| ()>
            {move || renewal.get().map(|result| match result {
                Ok(Some(view)) if view.end_date.is_some() => {
                    let end = view.end_date.clone().unwrap_or_default();
                    view! {
                        <section aria-labelledby="more-time-heading">
                            <h2 id="more-time-heading">"The end of access"</h2>
                            <p>"Access ends at the end of the day, UTC, on " <Time at=end /> "."</p>
                            {(!view.extensions.is_empty()).then(|| view! {
                                <ul aria-label="Requests for more time">
                                    {view.extensions.iter().map(|e| {
                                        let state = if e.waiting_for_salesforce {
                                            "approved, being set in Salesforce".to_string()
                                        } else {
                                            e.state.label().to_string()
                                        };
                                        view! {
                                            <li>"Until " <Time at=e.new_end_date.clone() /> " (asked " <Time at=e.asked_at.clone() /> {format!("): {state}.")}</li>
                                        }
                                    }).collect_view()}
                                </ul>
                            })}
                            {view.can_ask.then(|| view! {
                                <ActionForm action=ask attr:aria-label="Ask for more time" attr:class="stacked-form">
                                    <input type="hidden" name="token" value=token.get_untracked() />
                                    <label for="new_end_date">"New end date"</label>
                                    <input id="new_end_date" aria-describedby="new_end_date-error" name="new_end_date" type="date"
                                        min=view.min_new_end_date.clone() max=view.max_new_end_date.clone() />
                                    <FieldMessage id="new_end_date-error" message=error("new_end_date") />
                                    <label for="more_time_reason">"Reason"</label>
                                    <textarea id="more_time_reason" aria-describedby="reason-error" name="reason" rows="3"></textarea>
                                    <FieldMessage id="reason-error" message=error("reason") />
                                    <p class="muted">"Only the end date changes: the access stays as approved, and your credential stays the same."</p>
                                    <div class="actions">
                                        <button class="primary" type="submit" disabled=move || ask.pending().get()>"Ask for more time"</button>
                                    </div>
                                </ActionForm>
                            })}
                        </section>
                    }.into_any()
                }
                _ => ().into_any(),
            })}
            {move || banner().map(|(class, message)| view! { <p class=class role="status">{message}</p> })}
        </Suspense>
    }
}

/// The extensions waiting for approvers, on the queue page.
#[component]
pub fn ExtensionQueue(rows: Vec<ExtensionQueueRow>) -> impl IntoView {
    (!rows.is_empty()).then(|| view! {
        <section aria-labelledby="extensions-heading">
            <h2 id="extensions-heading">"Requests for more time"</h2>
            <table class="data" aria-label="Requests for more time">
                <thead><tr><th>"Company"</th><th>"Contact"</th><th>"Ends on"</th><th>"Asks until"</th><th>"Approvals"</th></tr></thead>
                <tbody>
                    {rows.into_iter().map(|row| view! {
                        <tr>
                            <td><a href=format!("/admin/extensions/{}", row.id)>{row.company.clone()}</a> " " <span class="muted">"extension"</span></td>
                            <td>{row.contact_email.clone()}</td>
                            <td><Time at=row.current_end_date.clone() /></td>
                            <td><Time at=row.new_end_date.clone() /></td>
                            <td>{format!("{} of {}", row.approvals, row.approvals_required)}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </section>
    })
}

/// `/admin/extensions/<id>`: a request for more time, approved or refused by approvers.
#[component]
pub fn AdminExtension() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let decide = ServerAction::<DecideExtension>::new();
    let extension = Resource::new(
        move || (id(), decide.version().get()),
        |(id, _)| load_for(approver_or_owner, admin_extension(id)),
    );
    view! {
        <Title text="Request for more time" />
        <RequireRole allow=approver_or_owner>
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || extension.get().map(|result| match result {
                    Ok(None) => ().into_any(),
                    Ok(Some(Some(view))) => view! { <ExtensionPage view decide /> }.into_any(),
                    Ok(Some(None)) => view! { <h1>"Not found"</h1><p>"There is no request for more time with this id."</p> }.into_any(),
                    Err(e) => view! { <h1>"Request for more time"</h1><p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
                })}
            </Suspense>
        </RequireRole>
    }
}

#[component]
fn ExtensionPage(view: ExtensionView, decide: ServerAction<DecideExtension>) -> impl IntoView {
    let outcome = decide.value();
    let error = move |field: &'static str| {
        Signal::derive(move || match outcome.get() {
            Some(Err(e)) => e.field(field),
            _ => None,
        })
    };
    let banner = move || {
        match outcome.get() {
        Some(Ok(ExtensionDecisionResult::Approved { applied: true })) => Some((
            "notice",
            "Approved: the new end date is set in Salesforce and on the grant; the contractor has been told.".to_string(),
        )),
        Some(Ok(ExtensionDecisionResult::Approved { applied: false })) => Some((
            "notice error",
            "Approved, but Salesforce did not take the new end date yet; it is tried again.".to_string(),
        )),
        Some(Ok(ExtensionDecisionResult::Recorded { approvals, required })) => Some((
            "notice",
            format!("Your approval is recorded ({approvals} of {required}); another approver must approve too."),
        )),
        Some(Ok(ExtensionDecisionResult::Refused)) => Some((
            "notice",
            "Refused: access ends on the old date; the contractor has been told why.".to_string(),
        )),
        Some(Err(e)) => e.form_message().map(|m| ("notice error", m)),
        None => None,
    }
    };
    let state = match view.state {
        ExtensionState::Approved if view.apply_error.is_some() => {
            "approved, not yet set in Salesforce".to_string()
        }
        other => other.label().to_string(),
    };
    view! {
        <h1>{format!("{} asks for more time", view.company)}</h1>
        {move || banner().map(|(class, message)| view! { <p class=class role="status">{message}</p> })}
        <p class="state-line">"Status: " <strong>{state}</strong></p>
        <dl class="facts">
            <dt>"Contact"</dt><dd>{view.contact_email.clone()}</dd>
            <dt>"Access ends on"</dt><dd><Time at=view.current_end_date.clone() /></dd>
            <dt>"Asks until"</dt><dd><Time at=view.new_end_date.clone() /></dd>
            <dt>"Reason"</dt><dd>{view.reason.clone()}</dd>
            <dt>"Asked"</dt><dd><Time at=view.asked_at.clone() /></dd>
            <dt>"Grant"</dt><dd>{view.grant_state.label()}</dd>
            <dt>"Approvals"</dt><dd>{format!("{} of {}", view.approvals, view.approvals_required)}</dd>
        </dl>
        <p><a href=format!("/admin/requests/{}", view.request_id)>"The original request"</a></p>
        <p class="notice" role="note">"An extension moves the end date only: the access below, the records, the budget and the IP ranges stay as approved. It never widens access; wider access needs a new request."</p>
        <ul aria-label="Access, unchanged">
            {view.access.iter().map(|a| view! { <li>{a.clone()}</li> }).collect_view()}
        </ul>
        {view.apply_error.clone().map(|e| view! { <p class="notice error" role="alert">{e}</p> })}
        {(!view.decisions.is_empty()).then(|| view! {
            <h2>"Decisions"</h2>
            <ul aria-label="Decisions">
                {view.decisions.iter().map(|d| view! {
                    <li>{format!("{} {} ", d.approver, d.decision)} <Time at=d.at.clone() /> {format!(": {}", d.reason)}</li>
                }).collect_view()}
            </ul>
        })}
        {view.can_decide.then(|| view! {
            <section aria-labelledby="decide-extension-heading">
                <h2 id="decide-extension-heading">"Decide"</h2>
                <p class="muted">"The same rules as a request: each approver decides once, risky access needs two approvers, and nobody decides on their own access."</p>
                <ActionForm action=decide attr:aria-label="Decision on more time" attr:class="stacked-form">
                    <input type="hidden" name="id" value=view.id.clone() />
                    <label for="extension_reason">"Reason for the decision"</label>
                    <textarea id="extension_reason" aria-describedby="reason-error" name="reason" rows="2" required></textarea>
                    <FieldMessage id="reason-error" message=error("reason") />
                    <div class="actions">
                        <button class="primary" type="submit" name="action" value="approve" disabled=move || decide.pending().get()>"Approve"</button>
                        " "
                        <button type="submit" name="action" value="refuse" disabled=move || decide.pending().get()>"Refuse"</button>
                    </div>
                </ActionForm>
            </section>
        })}
    }
}
