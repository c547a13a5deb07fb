//! The access catalog, and roles and settings (owners).

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use shared::auth::Role;

use super::FieldMessage;
use super::scope_picker::{PickerFor, ScopePicker};
use crate::api::ApiError;
use crate::api::manage::{
    DeletePackage, SavePackage, SaveResult, SaveSettings, SetRole, catalog, load_settings,
};
use crate::pages::admin::{RequireRole, approver_or_owner, load_for, owner};

fn field_error(outcome: Option<Result<SaveResult, ApiError>>, field: &str) -> Option<String> {
    match outcome {
        Some(Err(e)) if field == "form" => e.form_message(),
        Some(Err(e)) => e.field(field),
        _ => None,
    }
}

#[component]
pub fn CatalogPage() -> impl IntoView {
    let save = ServerAction::<SavePackage>::new();
    let delete = ServerAction::<DeletePackage>::new();
    let data = Resource::new(
        move || (save.version().get(), delete.version().get()),
        |_| load_for(approver_or_owner, catalog()),
    );
    let outcome = save.value();
    let error =
        move |field: &'static str| Signal::derive(move || field_error(outcome.get(), field));
    view! {
        <Title text="Access catalog" />
        <h1>"Access catalog"</h1>
        <RequireRole allow=approver_or_owner>
            <p class="lead">"Named packages of object and field access that contractors can ask for, built from the org's own objects."</p>
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || data.get().map(|result| match result {
                    Ok(None) => ().into_any(),
                    Ok(Some(view)) => {
                    let can_edit = view.can_edit;
                    view! {
                        {(!can_edit).then(|| view! { <p class="muted">"Only owners add and remove packages."</p> })}
                        <table class="data" aria-label="Packages">
                            <thead><tr><th>"Package"</th><th>"Access"</th><th>"Records"</th><th>"Default budget"</th><th><span class="visually-hidden">"Actions"</span></th></tr></thead>
                            <tbody>
                                {view.packages.clone().into_iter().map(|p| {
                                    let form_label = format!("Remove {}", p.name);
                                    let button_label = format!("Remove the package {}", p.name);
                                    let id = p.id.clone();
                                    view! {
                                    <tr>
                                        <td><strong>{p.name.clone()}</strong><br /><span class="muted">{p.description.clone()}</span></td>
                                        <td>{p.access.join(", ")}</td>
                                        <td>{p.records.clone()}</td>
                                        <td>{format!("{} calls/day", p.budget.calls_per_day)}</td>
                                        <td>
                                            {can_edit.then(|| view! {
                                                <ActionForm action=delete attr:aria-label=form_label>
                                                    <input type="hidden" name="id" value=id />
                                                    <button type="submit" aria-label=button_label>"Remove"</button>
                                                </ActionForm>
                                            })}
                                        </td>
                                    </tr>
                                }}).collect_view()}
                            </tbody>
                        </table>
                        {can_edit.then(|| view! {
                        <h2>"New package"</h2>
                        {move || (outcome.get() == Some(Ok(SaveResult::Saved))).then(|| view! { <p class="notice" role="status">"Package saved."</p> })}
                        <ActionForm action=save attr:aria-label="New package" attr:class="stacked-form">
                            <label for="package-name">"Name"</label>
                            <input id="package-name" name="name" type="text" required maxlength="80" aria-describedby="name-error" />
                            <FieldMessage id="name-error" message=error("name") />
                            <label for="package-description">"Description"</label>
                            <input id="package-description" name="description" type="text" maxlength="1000" aria-describedby="description-error" />
                            <FieldMessage id="description-error" message=error("description") />
                            <FieldMessage id="access-error" message=error("access") />
                            <ScopePicker objects=view.objects.clone() on=PickerFor::Package />
                            <label for="package-visibility">"Which records"</label>
                            <select id="package-visibility" name="visibility" aria-describedby="visibility-error">
                                <option value="shared">"Records shared with the integration user"</option>
                                <option value="owned">"Records owned by the integration user"</option>
                                <option value="group">"Records visible to a public group"</option>
                            </select>
                            <FieldMessage id="visibility-error" message=error("visibility") />
                            <label for="package-calls">"Default calls per day"</label>
                            <input id="package-calls" aria-describedby="calls_per_day-error" name="calls_per_day" type="number" min="1" value="1000" />
                            <FieldMessage id="calls_per_day-error" message=error("calls_per_day") />
                            <label for="package-calls-7">"Default calls per 7 days"</label>
                            <input id="package-calls-7" aria-describedby="calls_per_7_days-error" name="calls_per_7_days" type="number" min="1" value="7000" />
                            <FieldMessage id="calls_per_7_days-error" message=error("calls_per_7_days") />
                            <label for="package-warn">"Warn at (%)"</label>
                            <input id="package-warn" aria-describedby="warn_percent-error" name="warn_percent" type="number" min="1" max="99" value="80" />
                            <FieldMessage id="warn_percent-error" message=error("warn_percent") />
                            <label for="package-hard-action">"When the budget is used up"</label>
                            <select id="package-hard-action" name="hard_action" aria-describedby="hard_action-error">
                                <option value="none">"Alert only"</option>
                                <option value="freeze">"Alert and freeze the integration user"</option>
                            </select>
                            <FieldMessage id="hard_action-error" message=error("hard_action") />
                            <button class="primary" type="submit">"Save package"</button>
                        </ActionForm>
                        })}
                    }.into_any()
                    }

                    Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
                })}
            </Suspense>
        </RequireRole>
    }
}

#[component]
pub fn SettingsPage() -> impl IntoView {
    let set_role = ServerAction::<SetRole>::new();
    let save = ServerAction::<SaveSettings>::new();
    let data = Resource::new(
        move || (set_role.version().get(), save.version().get()),
        |_| load_for(owner, load_settings()),
    );
    let role_outcome = set_role.value();
    let settings_outcome = save.value();
    view! {
        <Title text="Roles and settings" />
        <h1>"Roles and settings"</h1>
        <RequireRole allow=owner>
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || data.get().map(|result| match result {
                    Ok(None) => ().into_any(),
                    Ok(Some(view)) => view! {
                        <section aria-labelledby="settings-heading">
                            <h2 id="settings-heading">"Review settings"</h2>
                            {move || (settings_outcome.get() == Some(Ok(SaveResult::Saved))).then(|| view! { <p class="notice" role="status">"Settings saved."</p> })}
                            <ActionForm action=save attr:aria-label="Review settings" attr:class="stacked-form">
                                <label for="approvals_required">"Approvals required"</label>
                                <select id="approvals_required" name="approvals_required" aria-describedby="approvals_required-error">
                                    <option value="1" selected=view.approvals_required == 1>"1 (risky requests always need 2)"</option>
                                    <option value="2" selected=view.approvals_required == 2>"2, from two different people"</option>
                                </select>
                                <FieldMessage id="approvals_required-error" message=Signal::derive(move || field_error(settings_outcome.get(), "approvals_required")) />
                                <label for="max_end_days">"Longest term (days)"</label>
                                <input id="max_end_days" aria-describedby="max_end_days-error" name="max_end_days" type="number" min="1" max="730" value=view.max_end_days.to_string() />
                                <FieldMessage id="max_end_days-error" message=Signal::derive(move || field_error(settings_outcome.get(), "max_end_days")) />
                                <button class="primary" type="submit">"Save settings"</button>
                            </ActionForm>
                        </section>
                        <section aria-labelledby="roles-heading">
                            <h2 id="roles-heading">"Roles"</h2>
                            <p>"From configuration:"</p>
                            <ul>{view.mapping.iter().map(|line| view! { <li>{line.clone()}</li> }).collect_view()}</ul>
                            <table class="data" aria-label="Roles granted here">
                                <thead><tr><th>"Username"</th><th>"Role"</th><th>"Granted by"</th></tr></thead>
                                <tbody>
                                    {view.grants.iter().map(|g| view! {
                                        <tr><td>{g.username.clone()}</td><td>{g.role.label()}</td><td>{g.granted_by.clone()}</td></tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                            <ActionForm action=set_role attr:aria-label="Change a role" attr:class="stacked-form">
                                <label for="role-username">"Salesforce username"</label>
                                <input id="role-username" name="username" type="text" required aria-describedby="username-error" />
                                <FieldMessage id="username-error" message=Signal::derive(move || field_error(role_outcome.get(), "username")) />
                                <label for="role-role">"Role"</label>
                                <select id="role-role" name="role" aria-describedby="role-error">
                                    {Role::ALL.iter().map(|r| view! { <option value=r.as_str()>{r.label()}</option> }).collect_view()}
                                </select>
                                <FieldMessage id="role-error" message=Signal::derive(move || field_error(role_outcome.get(), "role")) />
                                <label for="role-change">"Change"</label>
                                <select id="role-change" name="granted" aria-describedby="granted-error">
                                    <option value="grant">"Grant"</option>
                                    <option value="revoke">"Revoke"</option>
                                </select>
                                <FieldMessage id="granted-error" message=Signal::derive(move || field_error(role_outcome.get(), "granted")) />
                                <button class="primary" type="submit">"Apply"</button>
                            </ActionForm>
                        </section>
                    }.into_any(),
                    Err(e) => view! { <p class="notice error" role="alert">{e.to_string()}</p> }.into_any(),
                })}
            </Suspense>
        </RequireRole>
    }
}
