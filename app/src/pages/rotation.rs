//! The rotation policy on the approvers' pages (issue 18): [`SecretsOverdue`] (the list the
//! assurance page shows; on the admin dashboard until that page exists) and
//! [`SecretRotation`] (a grant's secret on its request page: age, maximum, "Rotate now",
//! retiring the old secret, the grant's own maximum age).
//!
//! Both load in the browser ([`LocalResource`]) and show their data only once the page is
//! hydrated ([`hydrated`]): the server renders their frame and nothing that depends on the
//! data, so they can be put anywhere on a page, inside a role check's `<Suspense>` too,
//! without taking part in the server's rendering (and its hydration ids).

use leptos::form::ActionForm;
use leptos::prelude::*;

use super::FieldMessage;
use super::time::Time;
use crate::api::rotation::{
    MaxAgeForm, RotateSecret, RotationView, SetSecretMaxAge, secret_rotation, secrets_overdue,
};

/// A signal that turns true once the page is hydrated (effects run only in the browser,
/// after hydration): what reads a [`LocalResource`] renders behind it, so the server and
/// the hydrating browser both render nothing there.
fn hydrated() -> ReadSignal<bool> {
    let (done, set_done) = signal(false);
    Effect::new(move |_| set_done.set(true));
    done
}

/// "Overdue secrets": grants whose secret is past its maximum age, or whose rotation is past
/// its deadline, oldest first, each linked to its request page.
#[component]
pub fn SecretsOverdue() -> impl IntoView {
    let overdue = LocalResource::new(secrets_overdue);
    let hydrated = hydrated();
    view! {
        <section aria-labelledby="overdue-secrets-heading">
            <h2 id="overdue-secrets-heading">"Overdue secrets"</h2>
            {move || hydrated.get().then(|| view! {
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || overdue.get().map(|result| match result {
                    Ok(list) if list.is_empty() => view! { <p>"No secret is overdue."</p> }.into_any(),
                    Ok(list) => view! {
                        <table class="data" aria-label="Overdue secrets" tabindex="0">
                            <thead><tr><th>"Grant"</th><th>"Why"</th><th>"Since"</th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|s| view! {
                                    <tr>
                                        <td><a href=format!("/admin/requests/{}", s.request_id)>{s.company}</a></td>
                                        <td>{s.reason.label()}</td>
                                        <td><Time at=s.since /></td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                    Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
                })}
            </Transition>
            })}
        </section>
    }
}

/// A grant's secret on its request page: how old it is, when it is due, "Rotate now" (a new
/// secret staged beside the old one and mailed to the contractor), "Retire the old secret
/// now" once the contractor collected the new one, and the grant's own maximum age. Read
/// again after each action.
#[component]
pub fn SecretRotation(request_id: String) -> impl IntoView {
    let rotate = ServerAction::<RotateSecret>::new();
    let max_age = ServerAction::<SetSecretMaxAge>::new();
    let id = request_id.clone();
    let view_of = LocalResource::new(move || {
        // Read again after each action.
        rotate.version().track();
        max_age.version().track();
        secret_rotation(id.clone())
    });
    let max_age_error = Signal::derive(move || match max_age.value().get() {
        Some(Err(e)) => e.field(MaxAgeForm::FIELD),
        _ => None,
    });
    let message = move || {
        [rotate.value().get(), max_age.value().get()]
            .into_iter()
            .flatten()
            .last()
            .map(|result| match result {
                Ok(m) => view! { <p class="notice" role="status">{m}</p> }.into_any(),
                Err(e) if e.field(MaxAgeForm::FIELD).is_some() => ().into_any(),
                Err(e) => {
                    view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any()
                }
            })
    };
    let hydrated = hydrated();
    view! {
        {move || hydrated.get().then(|| {
            let request_id = request_id.clone();
            view! {
                <Transition fallback=|| ()>
                    {move || view_of.get().map(|result| match result {
                        Ok(Some(v)) => view! {
                            <RotationSection request_id=request_id.clone() v rotate max_age max_age_error />
                            {message}
                        }.into_any(),
                        Ok(None) => ().into_any(),
                        Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
                    })}
                </Transition>
            }
        })}
    }
}

#[component]
fn RotationSection(
    request_id: String,
    v: RotationView,
    rotate: ServerAction<RotateSecret>,
    max_age: ServerAction<SetSecretMaxAge>,
    max_age_error: Signal<Option<String>>,
) -> impl IntoView {
    let under_way = v
        .rotations
        .iter()
        .find(|r| {
            matches!(
                r.state,
                shared::rotation::RotationState::Staging | shared::rotation::RotationState::Staged
            )
        })
        .cloned();
    let max_age_text = match (v.max_age_days, v.max_age_is_override) {
        (0, _) => "never rotated for its age".to_string(),
        (d, true) => format!("{d} days (this grant's own)"),
        (d, false) => format!("{d} days (the portal's default)"),
    };
    let (rotate_id, retire_id) = (request_id.clone(), request_id.clone());
    let own = if v.max_age_is_override {
        v.max_age_days.to_string()
    } else {
        String::new()
    };
    view! {
        <section aria-labelledby="rotation-heading">
            <h2 id="rotation-heading">"Secret rotation"</h2>
            <dl class="facts" aria-label="The grant's secret">
                <dt>"Current secret since"</dt>
                <dd><Time at=v.secret_since.clone() /></dd>
                <dt>"Maximum age"</dt>
                <dd>{max_age_text}</dd>
                {v.due_at.clone().map(|due| view! { <dt>"Due for rotation"</dt><dd><Time at=due /></dd> })}
            </dl>
            {under_way.clone().map(|r| view! {
                <p role="status">
                    {match r.method {
                        shared::rotation::RotationMethod::Staged => "A rotation is under way (a staged pair on the same app)".to_string(),
                        shared::rotation::RotationMethod::SecondApp => format!(
                            "A rotation is under way (a second app{}, as the org cannot stage credentials; it replaces the old app when usage shows calls on it)",
                            r.new_app.clone().map(|a| format!(", {a}")).unwrap_or_default()
                        ),
                    }}
                    ": both secrets work until " <Time at=r.deadline_at.clone() absolute_first=true />
                    {if r.collected { ". The contractor collected the new secret." } else { ". The contractor has not collected the new secret yet." }}
                </p>
            })}
            {v.can_rotate.then(|| view! {
                <ActionForm action=rotate attr:aria-label="Rotate the secret">
                    <input type="hidden" name="id" value=rotate_id.clone() />
                    <input type="hidden" name="action" value="rotate" />
                    <button type="submit" disabled=move || rotate.pending().get()>"Rotate now"</button>
                </ActionForm>
            })}
            {under_way.filter(|r| r.collected).map(|_| view! {
                <ActionForm action=rotate attr:aria-label="Retire the old secret">
                    <input type="hidden" name="id" value=retire_id.clone() />
                    <input type="hidden" name="action" value="retire" />
                    <button type="submit" disabled=move || rotate.pending().get()>"Retire the old secret now"</button>
                </ActionForm>
            })}
            <ActionForm action=max_age attr:aria-label="Maximum secret age" attr:class="stacked-form">
                <input type="hidden" name="id" value=request_id.clone() />
                <label for="max_age_days">{format!("Maximum secret age (days; 0: never; empty: the default, {})", v.default_max_age_days)}</label>
                <input id="max_age_days" name="max_age_days" type="number" min="0" max="3650" value=own aria-describedby="max_age_days-error" />
                <FieldMessage id="max_age_days-error" message=max_age_error />
                <button type="submit" disabled=move || max_age.pending().get()>"Save maximum age"</button>
            </ActionForm>
            {(!v.rotations.is_empty()).then(|| view! {
                <table class="data" aria-label="Rotations" tabindex="0">
                    <thead><tr><th>"Started"</th><th>"By"</th><th>"Method"</th><th>"State"</th><th>"Old secret until"</th></tr></thead>
                    <tbody>
                        {v.rotations.iter().map(|r| view! {
                            <tr>
                                <td><Time at=r.started_at.clone() /></td>
                                <td>{r.started_by.clone()}</td>
                                <td>{r.method.label()}</td>
                                <td>{r.state.label()}{r.error.clone().map(|e| format!(": {e}"))}</td>
                                <td><Time at=r.completed_at.clone().unwrap_or_else(|| r.deadline_at.clone()) /></td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            })}
        </section>
    }
}
