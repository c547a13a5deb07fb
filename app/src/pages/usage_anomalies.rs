//! The anomalies on the usage dashboard (`/admin/usage`): what the usage rules raised
//! (`usage.anomaly`), newest hour first — the contractor, the kind, the hour it was seen in,
//! the observed figures and what was done.

use leptos::prelude::*;

use crate::api::usage::AnomalyView;
use crate::pages::time::Time;

#[component]
pub fn UsageAnomalies(items: Vec<AnomalyView>) -> impl IntoView {
    view! {
        <section aria-labelledby="anomalies-heading">
            <h2 id="anomalies-heading">"Anomalies"</h2>
            {if items.is_empty() {
                view! { <p>"No unusual usage seen in the usage files."</p> }.into_any()
            } else {
                view! {
                    <table class="data" aria-label="Anomalies" tabindex="0">
                        <thead><tr><th>"Contractor"</th><th>"Kind"</th><th>"Hour"</th><th>"Figures"</th><th>"Action"</th></tr></thead>
                        <tbody>
                            {items.into_iter().map(|a| view! {
                                <tr data-kind=a.kind.clone()>
                                    <td><a href=format!("/admin/requests/{}", a.request_id)>{a.company}</a></td>
                                    <td>{a.label}</td>
                                    <td><Time at=a.window absolute_first=true /></td>
                                    <td>{a.summary}</td>
                                    <td>{if a.action == "freeze" { "Suspended and frozen" } else { "Alert" }}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}
