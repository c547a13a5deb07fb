//! Assurance (issue 18): `/admin/assurance` lists every grant with its last re-proof (when,
//! the result, the drift), with "Re-prove all grants now"; and on a request page, the
//! grant's drift policy and its last proof's table.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

use super::FieldMessage;
use crate::api::assurance::{ReproveAll, SetDriftPolicy, assurance_page, grant_drift};
use crate::pages::admin::{AdminNav, RequireRole, approver_or_owner, load_for};
use crate::pages::time::Time;
use shared::assurance::{DriftPolicy, ProofLine, ProofRecord};

fn result_words(last: &Option<ProofRecord>) -> String {
    match last {
        None => "not re-proved yet".into(),
        Some(p) if p.error.is_some() => "could not be proved".into(),
        Some(p) if p.passed => "passed".into(),
        Some(_) => "drift".into(),
    }
}

/// A proof's table: every line, or only the drift.
#[component]
pub fn ProofTable(lines: Vec<ProofLine>, #[prop(into)] label: String) -> impl IntoView {
    view! {
        <table class="data" aria-label=label tabindex="0">
            <thead><tr><th scope="col">"Check"</th><th scope="col">"Expected"</th><th scope="col">"Observed"</th><th scope="col">"Result"</th></tr></thead>
            <tbody>
                {lines.into_iter().map(|l| view! {
                    <tr>
                        <td>{l.check}</td>
                        <td>{l.expected}</td>
                        <td>{l.observed}</td>
                        <td>{if l.pass { "as approved" } else if l.wider { "MORE than approved" } else { "differs" }}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

#[component]
pub fn AssurancePage() -> impl IntoView {
    let reprove = ServerAction::<ReproveAll>::new();
    let overview = Resource::new(
        move || reprove.version().get(),
        |_| load_for(approver_or_owner, assurance_page()),
    );
    view! {
        <Title text="Assurance" />
        <h1>"Assurance"</h1>
        <RequireRole allow=approver_or_owner>
            <AdminNav />
            <p class="lead">
                "Every ready or active grant is proved again: its live configuration in Salesforce against what was approved, and the least-privilege proof as the contractor. Any difference is drift: the approvers are mailed and the webhook is posted, once per drift."
            </p>
            <ActionForm action=reprove attr:aria-label="Re-prove all grants" attr:class="inline-actions">
                <button type="submit" disabled=move || reprove.pending().get()>"Re-prove all grants now"</button>
            </ActionForm>
            {move || reprove.pending().get().then(|| view! { <p role="status">"Re-proving…"</p> })}
            {move || reprove.value().get().map(|result| match result {
                Ok(s) => view! {
                    <p class="notice" role="status">{format!(
                        "Re-proved {} grants: {} as approved, {} drifted ({} newly raised), {} could not be proved.",
                        s.proved, s.passed, s.drifted, s.raised, s.failed
                    )}</p>
                }.into_any(),
                Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
            })}
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || overview.get().map(|result| match result {
                    Ok(Some(o)) => view! {
                        <p class="muted">{format!(
                            "Every grant is re-proved every {} hours; grants without a policy of their own: {}.",
                            o.interval_hours, o.default_policy.label()
                        )}</p>
                        {if o.rows.is_empty() {
                            view! { <p>"No ready or active grants."</p> }.into_any()
                        } else {
                            view! {
                                <table class="data" aria-label="Grants and their last proof">
                                    <thead><tr>
                                        <th scope="col">"Contractor"</th>
                                        <th scope="col">"Grant"</th>
                                        <th scope="col">"Last proof"</th>
                                        <th scope="col">"Result"</th>
                                        <th scope="col">"Drift"</th>
                                        <th scope="col">"Policy"</th>
                                    </tr></thead>
                                    <tbody>
                                        {o.rows.into_iter().map(|r| {
                                            let result = result_words(&r.last);
                                            let drift = r.last.as_ref().map(|p| {
                                                if let Some(e) = &p.error { e.clone() }
                                                else if p.drift.is_empty() { "none".to_string() }
                                                else {
                                                    p.drift.iter().map(|l| format!("{}: expected {}, observed {}", l.check, l.expected, l.observed)).collect::<Vec<_>>().join("; ")
                                                }
                                            }).unwrap_or_default();
                                            let at = r.last.as_ref().map(|p| p.proved_at.clone());
                                            view! {
                                                <tr>
                                                    <td><a href=format!("/admin/requests/{}", r.request_id)>{r.company.clone()}</a></td>
                                                    <td>{r.state.clone()}</td>
                                                    <td>{match at { Some(at) => view! { <Time at /> }.into_any(), None => "never".into_any() }}</td>
                                                    <td>{result}</td>
                                                    <td>{drift}</td>
                                                    <td>{format!("{}{}", r.policy.label(), if r.policy_is_default { " (default)" } else { "" })}</td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any()
                        }}
                    }.into_any(),
                    Ok(None) => ().into_any(),
                    Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
                })}
            </Transition>
            <super::rotation::SecretsOverdue />
        </RequireRole>
    }
}

/// On a request page: the grant's drift policy (settable by approvers and owners) and its
/// last proof's table. Rendered in the browser only, once the page has hydrated (it sits in
/// the provisioning part, which the page refreshes while it runs): the server's markup has
/// nothing of it, so hydration never meets nodes it did not render.
#[component]
pub fn GrantDrift(request_id: String) -> impl IntoView {
    let mounted = RwSignal::new(false);
    Effect::new(move |_| mounted.set(true));
    move || {
        let request_id = request_id.clone();
        mounted
            .get()
            .then(move || view! { <GrantDriftSection request_id /> })
    }
}

#[component]
fn GrantDriftSection(request_id: String) -> impl IntoView {
    let set = ServerAction::<SetDriftPolicy>::new();
    let id = request_id.clone();
    // Loaded in the browser only (the request page's provisioning part, which this sits in,
    // is itself refreshed while it runs): the server renders the fallback, so hydration
    // never meets a resource it did not serialise.
    let assurance = LocalResource::new(move || {
        set.version().get();
        let id = id.clone();
        async move { grant_drift(id).await }
    });
    let error = Signal::derive(move || match set.value().get() {
        Some(Err(e)) => e.field("policy"),
        _ => None,
    });
    view! {
        <Transition fallback=|| ()>
            {move || assurance.get().map(|result| match result {
                Ok(Some(a)) => {
                    let request_id = request_id.clone();
                    view! {
                        <section aria-labelledby="drift-heading">
                            <h2 id="drift-heading">"Drift from the approved access"</h2>
                            {match a.last.clone() {
                                None => view! { <p>"Not re-proved yet."</p> }.into_any(),
                                Some(p) => view! {
                                    <p>"Last proof " <Time at=p.proved_at.clone() /> {format!(": {}.", result_words(&Some(p.clone())))}
                                        {p.action.clone().map(|a| format!(" ({a})"))}</p>
                                    {(!p.drift.is_empty()).then(|| view! { <ProofTable lines=p.drift.clone() label="Drift: expected and observed" /> })}
                                    <details>
                                        <summary>"The last proof's table"</summary>
                                        <ProofTable lines=p.checks.clone() label="The last proof's table" />
                                    </details>
                                }.into_any(),
                            }}
                            <ActionForm action=set attr:aria-label="Drift policy" attr:class="inline-actions">
                                <input type="hidden" name="id" value=request_id />
                                <label for="drift-policy">"When drift is found"</label>
                                <select id="drift-policy" name="policy" aria-describedby="policy-error">
                                    {DriftPolicy::ALL.iter().map(|p| view! {
                                        <option value=p.as_str() selected=*p == a.policy>{p.label()}</option>
                                    }).collect_view()}
                                </select>
                                <button type="submit" disabled=move || set.pending().get()>"Set drift policy"</button>
                                <FieldMessage id="policy-error" message=error />
                            </ActionForm>
                            {a.policy_is_default.then(|| view! { <p class="muted">"This grant follows the portal's default policy."</p> })}
                            {move || set.value().get().and_then(|r| r.err()).and_then(|e| e.form_message()).map(|m| view! { <p class="notice error" role="alert">{m}</p> })}
                        </section>
                    }.into_any()
                }
                Ok(None) => ().into_any(),
                Err(_) => ().into_any(),
            })}
        </Transition>
    }
}
